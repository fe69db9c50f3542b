"""Streaming accumulators and ``ScoreAccumulator``: a stream of batches and any tree of merged
workers give the one-shot answer (1e-12), pickling, the class rules, and bad input."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crossentropy as ce
from crossentropy import metrics

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _proba(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    logits = rng.standard_normal((n, c)) * rng.choice([0.5, 3.0, 30.0])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _data(seed: int, c: int, n: int, strings: bool = False, weighted: bool = True):
    rng = _rng("data", seed, c, n)
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)
    rng.shuffle(y)
    p = _proba(rng, n, c)
    w = rng.random(n) * 2 if weighted else None
    if strings:
        classes = np.array(["ant", "bee", "cat", "dog", "emu", "fox", "gnu"][:c])
        return classes[y], p, w, classes
    return y, p, w, None


def _splits(rng: np.random.Generator, n: int, k: int) -> list[tuple[int, int]]:
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(k - 1, n - 1), replace=False))
    bounds = [0, *cuts.tolist(), n]
    return list(itertools.pairwise(bounds))


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# (accumulator factory, one-shot function, options, binary vector allowed)
CASES = {
    "log_loss": (metrics.LogLoss, metrics.log_loss, {}),
    "log_loss_sum": (metrics.LogLoss, metrics.log_loss, {"normalize": False}),
    "perplexity": (metrics.Perplexity, metrics.perplexity, {}),
    "d2": (metrics.D2LogLoss, metrics.d2_log_loss_score, {}),
    "d2_brier": (metrics.D2BrierScore, metrics.d2_brier_score, {}),
    "brier": (metrics.BrierScore, metrics.brier_score_loss, {}),
    "brier_unscaled": (metrics.BrierScore, metrics.brier_score_loss, {"scale_by_half": False}),
    "ece": (metrics.CalibrationError, metrics.calibration_error, {"n_bins": 10}),
    "mce": (metrics.CalibrationError, metrics.calibration_error, {"norm": "max"}),
    "rmsce_quantile": (
        metrics.CalibrationError,
        metrics.calibration_error,
        {"strategy": "quantile", "norm": "l2", "n_bins": 7},
    ),
    "per_class": (metrics.LogLossPerClass, metrics.log_loss_per_class, {}),
}


def _one_shot(name, y, p, w, classes):
    _, fn, opts = CASES[name]
    kwargs = dict(opts)
    if classes is not None:
        kwargs["labels"] = classes
    return fn(y, p, sample_weight=w, **kwargs)


def _new(name, classes):
    factory, _, opts = CASES[name]
    return factory(**opts, labels=classes) if classes is not None else factory(**opts)


def _value(result):
    if isinstance(result, metrics.ClassLogLoss):
        return np.concatenate([result.log_loss, result.count])
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_stream_equals_one_shot(name: str) -> None:
    for trial in range(6):
        rng = _rng("stream", name, trial)
        c = int(rng.integers(2, 6))
        n = int(rng.integers(c + 2, 300))
        y, p, w, classes = _data(trial, c, n, strings=trial % 2 == 1, weighted=trial % 3 != 0)
        expected = _value(_one_shot(name, y, p, w, classes))
        acc = _new(name, classes)
        for lo, hi in _splits(rng, n, int(rng.integers(1, 8))):
            acc.update(y[lo:hi], p[lo:hi], None if w is None else w[lo:hi])
        _close(_value(acc.result()), expected)


@pytest.mark.parametrize("name", ["log_loss", "brier", "d2", "d2_brier", "ece", "rmsce_quantile"])
def test_stream_of_binary_vectors(name: str) -> None:
    rng = _rng("binary-stream", name)
    y, p, w, _ = _data(3, 2, 200)
    acc = _new(name, None)
    for lo, hi in _splits(rng, 200, 5):
        acc.update(y[lo:hi], p[lo:hi, 1], w[lo:hi])
    _close(acc.result(), _one_shot(name, y, p[:, 1], w, None))


@SETTINGS
@given(
    name=st.sampled_from(sorted(CASES)),
    seed=st.integers(0, 10_000),
    k=st.integers(1, 7),
    data=st.data(),
)
def test_merge_in_any_grouping(name: str, seed: int, k: int, data: st.DataObject) -> None:
    """Workers see slices, pickle their accumulators, and merge in a random tree."""
    rng = _rng("merge", seed)
    c = int(rng.integers(2, 5))
    n = int(rng.integers(max(k, c) + 2, 200))
    y, p, w, classes = _data(seed, c, n, strings=seed % 2 == 1)
    parts = []
    for lo, hi in _splits(rng, n, k):
        acc = _new(name, classes).update(y[lo:hi], p[lo:hi], w[lo:hi])
        parts.append(pickle.loads(pickle.dumps(acc)))
    if data.draw(st.booleans()):
        parts.append(_new(name, classes))  # an idle worker
    while len(parts) > 1:
        i = data.draw(st.integers(0, len(parts) - 2))
        right = parts.pop(i + 1)
        left = parts.pop(i)
        parts.insert(i, left.merge(right))
    _close(_value(parts[0].result()), _value(_one_shot(name, y, p, w, classes)))


def test_pickled_mid_stream_goes_on() -> None:
    y, p, w, _ = _data(1, 3, 100)
    acc = metrics.LogLoss().update(y[:40], p[:40], w[:40])
    acc = pickle.loads(pickle.dumps(acc)).update(y[40:], p[40:], w[40:])
    _close(acc.result(), metrics.log_loss(y, p, sample_weight=w))


def test_streams_take_every_array_library(backend) -> None:
    y, p, w, _ = _data(2, 4, 60)
    for name in ("log_loss", "brier", "ece", "per_class", "d2", "d2_brier"):
        acc = _new(name, None)
        for lo, hi in ((0, 25), (25, 60)):
            acc.update(
                backend.asarray(y[lo:hi]), backend.asarray(p[lo:hi]), backend.asarray(w[lo:hi])
            )
        out = acc.result()
        assert not isinstance(out, float) or type(out) is float
        _close(_value(out), _value(_one_shot(name, y, p, w, None)))


# ---------------------------------------------------------------------------------------------
# The class rules and bad input.
# ---------------------------------------------------------------------------------------------


def test_classes_default_to_column_indices() -> None:
    acc = metrics.LogLoss().update([0, 2], [[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    assert acc.classes.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"label 3 at row 1, which is not one of the classes"):
        acc.update([0, 3], [[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    with pytest.raises(ValueError, match="4 columns but the stream has 3 classes"):
        acc.update([0], [[0.25, 0.25, 0.25, 0.25]])
    with pytest.raises(ValueError, match="pass labels="):
        metrics.LogLoss().update(["a", "b"], [[0.5, 0.5], [0.5, 0.5]])
    acc = metrics.LogLoss(labels=["a", "b"])
    with pytest.raises(ValueError, match="'z' at row 1"):
        acc.update(["a", "z"], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.warns(UserWarning, match="sorted order"):
        metrics.LogLoss(labels=["b", "a"])
    with pytest.raises(ValueError, match="two distinct"):
        metrics.LogLoss(labels=["a"])


def test_a_single_class_per_batch_is_fine() -> None:
    """What the one-shot function refuses per batch (one label) is fine in a stream."""
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    acc = metrics.LogLoss().update(y[:2], p[:2]).update(y[2:], p[2:])
    _close(acc.result(), metrics.log_loss(y, p))


def test_merge_refuses_mismatches() -> None:
    a = metrics.LogLoss().update([0, 1], [0.2, 0.7])
    with pytest.raises(TypeError, match="LogLoss"):
        a.merge(metrics.BrierScore())
    with pytest.raises(ValueError, match="options"):
        a.merge(metrics.LogLoss(normalize=False))
    with pytest.raises(ValueError, match="classes"):
        a.merge(metrics.LogLoss(labels=["x", "y"]))
    with pytest.raises(ValueError, match="options"):
        metrics.CalibrationError(n_bins=3).merge(metrics.CalibrationError(n_bins=4))
    # a refused merge leaves the accumulator as it was, its row count too
    brier = metrics.BrierScore().update([0, 1, 2], np.eye(3) * 0.8 + 0.2 / 3)
    with pytest.raises(ValueError, match="other has 2 classes; expected 3"):
        brier.merge(metrics.BrierScore().update([0, 1], [0.3, 0.6]))
    assert brier.n == 3


def test_brier_stream_binary_rules() -> None:
    acc = metrics.BrierScore().update([0, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="binary"):
        acc.update([2], [0.5])
    with pytest.raises(ValueError, match="pos_label"):
        metrics.BrierScore().update([2, 5], [0.2, 0.9])
    got = metrics.BrierScore(pos_label="ham").update(["ham", "spam"], [0.9, 0.2]).result()
    _close(got, metrics.brier_score_loss(["ham", "spam"], [0.9, 0.2], pos_label="ham"))
    # {-1, 0} has no 1: the one-shot function takes 0 as positive, a stream cannot know it
    y, p = [-1, 0, 0, -1], [0.1, 0.8, 0.7, 0.2]
    with pytest.raises(ValueError, match=r"takes values in \[-1, 0\] and pos_label"):
        metrics.BrierScore().update(y, p)
    _close(metrics.BrierScore(pos_label=0).update(y, p).result(), metrics.brier_score_loss(y, p))
    stream = metrics.BrierScore().update([-1], [0.1])  # {-1} alone is {-1, 1}'s
    with pytest.raises(ValueError, match="pos_label"):
        stream.update([0], [0.8])
    _close(stream.update([1], [0.7]).result(), metrics.brier_score_loss([-1, 1], [0.1, 0.7]))
    # merging is held to the same rules as updating, and a refused batch leaves no trace
    with pytest.raises(ValueError, match=r"seen the labels \[-1, 0, 1\]"):
        metrics.BrierScore().update([0, 1], [0.2, 0.7]).merge(stream)
    zeros = metrics.BrierScore().update([0, 0], [0.2, 0.3])
    with pytest.raises(ValueError, match="pos_label"):
        zeros.merge(metrics.BrierScore().update([-1], [0.4]))
    _close(zeros.update([1], [0.9]).result(), metrics.brier_score_loss([0, 0, 1], [0.2, 0.3, 0.9]))
    # pos_label is one label (NumPy's scalars and booleans too), as scikit-learn takes it
    for bad in (np.array([0, 1]), {1}, [1]):
        with pytest.raises(TypeError, match="pos_label must be one label"):
            metrics.BrierScore(pos_label=bad)
    _close(
        metrics.BrierScore(pos_label=np.int64(1), scale_by_half=np.True_)
        .update([0, 1], [0.2, 0.9])
        .result(),
        metrics.brier_score_loss([0, 1], [0.2, 0.9]),
    )


def test_an_empty_batch_adds_nothing() -> None:
    """A stream's last (or filtered) batch may be empty, a Python list's too: nothing is
    added, and a first empty batch fixes no classes."""
    empty = np.zeros(0, dtype=int)
    y, p = [0, 1, 1], [0.2, 0.7, 0.6]
    _close(
        metrics.BrierScore().update(y, p).update(empty, np.zeros(0)).result(),
        metrics.brier_score_loss(y, p),
    )
    _close(metrics.LogLoss().update([], []).update(y, p).result(), metrics.log_loss(y, p))
    p3 = [[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]
    _close(
        metrics.LogLoss().update([], []).update([0, 1, 2], p3).result(),
        metrics.log_loss([0, 1, 2], p3),
    )
    assert math.isnan(metrics.BrierScore().update([], []).result())
    _close(
        metrics.BrierScore().update([], []).update([0, 1, 2], p3).result(),
        metrics.brier_score_loss([0, 1, 2], p3),
    )


def test_empty_streams() -> None:
    assert math.isnan(metrics.LogLoss().result())
    assert math.isnan(metrics.BrierScore().result())
    assert math.isnan(metrics.CalibrationError().result())
    assert math.isnan(metrics.CalibrationError(strategy="quantile").result())
    for d2 in (metrics.D2LogLoss, metrics.D2BrierScore):
        with pytest.warns(UserWarning, match="two samples"):
            assert math.isnan(d2().result())
    with pytest.raises(ZeroDivisionError):
        metrics.LogLoss().update([0, 1], [0.5, 0.5], [0.0, 0.0]).result()


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_stream_holds_weights_as_calibration_error(strategy: str) -> None:
    """Negative weights are refused, and a zero total weight is a ``ZeroWeightError``, as
    :func:`calibration_error` holds them (was a meaningless number and NaN)."""
    y, p = [0, 1, 1], [0.3, 0.7, 0.2]
    for one_shot in (True, False):
        call = (
            (lambda w: metrics.calibration_error(y, p, sample_weight=w, strategy=strategy))
            if one_shot
            else (lambda w: metrics.CalibrationError(strategy=strategy).update(y, p, w).result())
        )
        with pytest.raises(ValueError, match=r"finite and >= 0; got -1.0 at row 0"):
            call([-1.0, 2.0, 1.0])
        with pytest.raises(metrics.ZeroWeightError):
            call([0.0, 0.0, 0.0])
    w = [1.0, 2.0, 0.0]
    want = metrics.calibration_error(y, p, sample_weight=w, strategy=strategy)
    _close(metrics.CalibrationError(strategy=strategy).update(y, p, w).result(), want)


def test_row_checks_apply_to_every_batch() -> None:
    acc = metrics.LogLoss()
    with pytest.raises(ValueError, match="nan at row 1"):
        acc.update([0, 1], [[0.5, 0.5], [np.nan, 0.5]])
    with pytest.warns(UserWarning, match="do not sum to one"):
        acc.update([0, 1], [[0.5, 0.5], [0.2, 0.5]])


# ---------------------------------------------------------------------------------------------
# ScoreAccumulator.
# ---------------------------------------------------------------------------------------------


def _score(seed: int, c: int, n: int, batches: int, worst: int = 5):
    rng = _rng("score", seed)
    classes = [f"class {j}" for j in range(c)]
    y, p, _, _ = _data(seed, c, n, weighted=False)
    acc = metrics.ScoreAccumulator(classes, n_bins=8, worst=worst)
    for lo, hi in _splits(rng, n, batches):
        acc.update(y[lo:hi], p[lo:hi])
    return acc, y, p, classes


@pytest.mark.parametrize("c", [2, 3, 6])
def test_score_accumulator_matches_the_functions(c: int) -> None:
    acc, y, p, classes = _score(c, c, 500, 6)
    r = acc.result()
    json.dumps(r, allow_nan=False)  # plain, JSON-serialisable values
    assert r["n"] == 500
    _close(r["log_loss"], metrics.log_loss(y, p))
    _close(r["accuracy"], float(np.mean(p.argmax(axis=1) == y)))
    _close(r["brier"], metrics.brier_score_loss(y, p))
    _close(r["ece"], metrics.calibration_error(y, p, n_bins=8))
    _close(r["mean_entropy"], float(np.mean(ce.entropy(p))))
    per = metrics.log_loss_per_class(y, p)
    assert [d["label"] for d in r["per_class"]] == classes
    _close([d["log_loss"] for d in r["per_class"]], per.log_loss)
    assert [d["count"] for d in r["per_class"]] == per.count.astype(int).tolist()
    losses = -np.log(np.clip(p[np.arange(500), y], 2.0**-52, 1 - 2.0**-52))
    order = np.lexsort((np.arange(500), -losses))[:5]
    assert [d["row"] for d in r["worst"]] == order.tolist()
    assert [d["label"] for d in r["worst"]] == [classes[y[i]] for i in order]
    _close([d["loss"] for d in r["worst"]], losses[order])
    _close([d["p_true"] for d in r["worst"]], p[order, y[order]])
    assert sum(b["count"] for b in r["reliability"]) == 500
    assert len(r["reliability"]) == 8
    hist = r["loss_histogram"]
    assert len(hist["edges"]) == len(hist["counts"]) + 1
    assert hist["counts"] == np.histogram(losses, bins=hist["edges"])[0].tolist()
    gaps = [
        b["count"] / 500 * abs(b["accuracy"] - b["confidence"])
        for b in r["reliability"]
        if b["count"]
    ]
    _close(sum(gaps), r["ece"])


def test_score_accumulator_keeps_float32_precision_as_log_loss() -> None:
    """float32 probabilities are clipped and checked at float32's eps, as metrics.log_loss
    does with the same array (not at float64's)."""
    y, p, _, _ = _data(32, 4, 400, weighted=False)
    p = p.astype(np.float32)
    p[0], y[0] = np.array([1, 0, 0, 0], np.float32), 1  # p_true = 0
    r = metrics.ScoreAccumulator(list(range(4))).update(y, p).result()
    _close(r["log_loss"], metrics.log_loss(y, p))
    assert r["rows_not_summing_to_one"] == 0
    assert r["worst"][0]["loss"] == pytest.approx(-np.log(np.finfo(np.float32).eps))


@SETTINGS
@given(seed=st.integers(0, 1000), k=st.integers(1, 6), data=st.data())
def test_score_accumulator_merges_in_any_grouping(seed: int, k: int, data: st.DataObject) -> None:
    rng = _rng("score-merge", seed)
    c = int(rng.integers(2, 5))
    n = int(rng.integers(k + c, 150))
    y, p, _, _ = _data(seed, c, n, weighted=False)
    whole = metrics.ScoreAccumulator(list(range(c)), worst=4, bootstrap=20).update(y, p).result()
    parts = []
    for lo, hi in _splits(rng, n, k):
        acc = metrics.ScoreAccumulator(list(range(c)), worst=4, bootstrap=20)
        acc.update(y[lo:hi], p[lo:hi], row_ids=np.arange(lo, hi))
        parts.append(pickle.loads(pickle.dumps(acc)))
    while len(parts) > 1:
        i = data.draw(st.integers(0, len(parts) - 2))
        right = parts.pop(i + 1)
        parts[i] = parts[i].merge(right)
    merged = parts[0].result()
    for key, value in whole.items():
        if isinstance(value, float):
            _close(merged[key], value)
        elif key == "per_class":
            _close(
                [d["log_loss"] or 0.0 for d in merged[key]], [d["log_loss"] or 0.0 for d in value]
            )
            assert [d["count"] for d in merged[key]] == [d["count"] for d in value]
        elif key == "reliability":
            assert [b["count"] for b in merged[key]] == [b["count"] for b in value]
            for a, b in zip(merged[key], value, strict=True):
                for field in ("confidence", "accuracy"):
                    if b[field] is not None:
                        _close(a[field], b[field])
        elif key == "worst":
            assert [d["row"] for d in merged[key]] == [d["row"] for d in value]
        elif key == "calibration":
            _close_tree(merged[key], value, key)
        else:
            assert merged[key] == value, key


def test_score_accumulator_gives_the_same_digits_in_any_merge_order() -> None:
    """Every sum of the report is exact, so accumulators merged in another order (the engine's
    threads finish in any order) give bit-identical numbers, the class-wise bins included."""
    y, p, _, _ = _data(11, 5, 3000, weighted=False)
    parts = []
    for lo in range(0, 3000, 1000):
        acc = metrics.ScoreAccumulator(list(range(5)), bootstrap=0)
        parts.append(
            acc.update(y[lo : lo + 1000], p[lo : lo + 1000], row_ids=np.arange(lo, lo + 1000))
        )
    a = pickle.loads(pickle.dumps(parts[0])).merge(parts[1]).merge(parts[2]).result()
    b = pickle.loads(pickle.dumps(parts[2])).merge(parts[1]).merge(parts[0]).result()
    assert a["calibration"]["classwise"] == b["calibration"]["classwise"]
    assert a["log_loss"] == b["log_loss"]
    assert a["brier"] == b["brier"]


def _close_tree(a: object, b: object, where: str) -> None:
    """Equal structure; floats equal to rounding (sums in another order)."""
    if isinstance(b, dict):
        assert isinstance(a, dict), where
        assert a.keys() == b.keys(), where
        for k in b:
            _close_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(b, list):
        assert isinstance(a, list), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close_tree(x, y, f"{where}[{i}]")
    elif isinstance(b, float) and isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-7, abs=1e-10, nan_ok=True), where
    else:
        assert a == b, where


def test_score_accumulator_bad_input() -> None:
    acc = metrics.ScoreAccumulator(["a", "b", "c"])
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"proba must have shape \(n, 3\)"):
        acc.update(np.array([0, 1]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="y_index holds class index 3 at row 1"):
        acc.update(np.array([0, 3]), p)
    with pytest.raises(TypeError, match="y_index must hold integer"):
        acc.update(np.array([0.0, 1.0]), p)
    with pytest.raises(ValueError, match="proba must be finite; got nan at row 1"):
        acc.update(np.array([0, 1]), np.array([[0.2, 0.3, 0.5], [np.nan, 0.5, 0.5]]))
    with pytest.raises(ValueError, match="row_ids"):
        acc.update(np.array([0, 1]), p, row_ids=np.array([1]))
    with pytest.raises(ValueError, match="at least two"):
        metrics.ScoreAccumulator(["a"])
    with pytest.raises(ValueError, match="same classes"):
        acc.merge(metrics.ScoreAccumulator(["a", "b"]))
    assert acc.result()["n"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = acc.result()
    assert math.isnan(r["log_loss"])
    off = acc.update(np.array([0]), np.array([[0.2, 0.2, 0.2]])).result()
    assert off["rows_not_summing_to_one"] == 1


def test_a_shallow_copy_is_updated_on_its_own():
    """``copy.copy`` of an accumulator shared its running sums: updating the copy changed the
    original's result (0.4004 for 0.2899)."""
    import copy

    y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]])
    y2, p2 = np.array([1, 0]), np.array([[0.6, 0.4], [0.9, 0.1]])
    cases = (
        (metrics.LogLoss(), p, p2),
        (metrics.ScoreAccumulator([0, 1]), p, p2),
        (metrics.CalibrationAccumulator(), p[:, 1], p2[:, 1]),
    )
    for a, first, second in cases:
        a.update(y, first)
        before = repr(a.result())
        b = copy.copy(a)
        b.update(y2, second)
        assert repr(a.result()) == before
        assert repr(b.result()) != before
