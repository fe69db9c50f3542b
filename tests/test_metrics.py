"""``crossentropy.metrics`` one-shot functions: scikit-learn parity on randomised cases (labels
of every type, sample weights, ``labels=``, binary vectors, float32), calibration against
``sklearn.calibration.calibration_curve`` and a direct computation, every array library, the
NumPy fast path against the generic path, warnings, and bad input.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import metrics

WORDS = np.array(["ant", "bee", "cat", "dog", "emu", "owl", "yak", "zebra"])


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _proba(rng: np.random.Generator, n: int, c: int, dtype: type = np.float64) -> np.ndarray:
    """Random rows on the simplex, some very confident (tiny and zero entries)."""
    logits = rng.standard_normal((n, c)) * rng.choice([0.5, 3.0, 30.0])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p.astype(dtype)


def _labels(rng: np.random.Generator, kind: str, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes sorted, labels with every class present)."""
    if kind == "int":
        classes = np.sort(rng.choice(np.arange(-5, 40), size=c, replace=False))
    elif kind == "str":
        classes = np.sort(rng.choice(WORDS, size=c, replace=False))
    elif kind == "bool":
        classes = np.array([False, True])
    else:  # float labels with integral values
        classes = np.sort(rng.choice(np.arange(0.0, 9.0), size=c, replace=False))
    y = classes[rng.integers(0, c, n)]
    y[rng.choice(n, size=c, replace=False)] = classes
    return classes, y


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _close(a: float, b: float, tol: float = 1e-12) -> None:
    assert isinstance(a, float), type(a)
    assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), (a, b)


# ---------------------------------------------------------------------------------------------
# scikit-learn parity.
# ---------------------------------------------------------------------------------------------

KINDS = ["int", "str", "bool", "float"]


@pytest.mark.parametrize("kind", KINDS)
def test_log_loss_matches_sklearn(kind: str) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(25):
        rng = _rng("log_loss", kind, trial)
        c = 2 if kind == "bool" else int(rng.integers(2, 7))
        n = int(rng.integers(c, 60))
        _, y = _labels(rng, kind, n, c)
        p = _proba(rng, n, c)
        w = rng.random(n) * 3 if trial % 2 else None
        normalize = trial % 5 != 0
        got = metrics.log_loss(y, p, sample_weight=w, normalize=normalize)
        _close(got, skm.log_loss(y, p, sample_weight=w, normalize=normalize))
        if c == 2:  # the positive-class vector
            got = metrics.log_loss(y, p[:, 1], sample_weight=w)
            _close(got, skm.log_loss(y, p[:, 1], sample_weight=w))
            got = metrics.log_loss(list(y), p[:, 1:].tolist(), sample_weight=w)
            _close(got, skm.log_loss(list(y), p[:, 1:].tolist(), sample_weight=w))


@pytest.mark.parametrize("kind", ["int", "str"])
def test_log_loss_labels_with_classes_missing_from_y(kind: str) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(15):
        rng = _rng("labels", kind, trial)
        c = int(rng.integers(3, 7))
        n = int(rng.integers(1, 30))
        classes, _ = _labels(rng, kind, c, c)
        y = classes[rng.integers(0, 2, n)]  # only two of the classes occur (or one)
        p = _proba(rng, n, c)
        w = rng.random(n) if trial % 2 else None
        for fn in ("log_loss", "d2_log_loss_score", "brier_score_loss", "d2_brier_score"):
            if fn.startswith("d2") and n < 2:
                continue
            got = getattr(metrics, fn)(y, p, sample_weight=w, labels=classes)
            _close(got, getattr(skm, fn)(y, p, sample_weight=w, labels=classes))


def test_float32_matches_sklearn() -> None:
    """Per-row losses in float32 (clipped at float32's eps) as scikit-learn; weighted means are
    then float64 on both sides (exact), unweighted means differ by sklearn's float32 mean."""
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(20):
        rng = _rng("f32", trial)
        c = int(rng.integers(2, 6))
        n = int(rng.integers(c, 80))
        y = rng.integers(0, c, n)
        y[:c] = np.arange(c)
        p = _proba(rng, n, c, np.float32)
        w = rng.random(n)
        got = metrics.log_loss(y, p, sample_weight=w)
        _close(got, _quiet(skm.log_loss, y, p, sample_weight=w))
        got = metrics.log_loss(y, p)
        _close(got, _quiet(skm.log_loss, y, p), tol=1e-6)
    # p = 0 for the true class: -log(eps) of each dtype, as sklearn
    _close(metrics.log_loss([1, 0], [[1.0, 0.0], [1.0, 0.0]]), 36.04365338911715 / 2)
    f32 = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    _close(metrics.log_loss([1, 0], f32), _quiet(skm.log_loss, [1, 0], f32), tol=1e-6)


def test_log_loss_recorded_values() -> None:
    """Values recorded from scikit-learn 1.9.1 (docs/ecosystem notes)."""
    _close(
        metrics.log_loss(
            ["spam", "ham", "ham", "spam"], [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]]
        ),
        0.21616187468057912,
    )
    _close(metrics.log_loss([0, 1, 1], [0.2, 0.7, 0.4]), 0.49870307570903244)
    _close(
        metrics.log_loss([0, 1, 1], [0.2, 0.7, 0.4], sample_weight=[1, 2, 3]), 0.6142276058023566
    )
    x = np.array([[1.0, 2, 3], [4, 5, 6]])
    _close(metrics.log_loss([1, 2], ce.softmax(x), labels=[0, 1, 2]), 0.9076059644443802, tol=1e-15)
    with pytest.warns(UserWarning, match="do not sum to one"):
        _close(metrics.log_loss([1], [[0.2, 0.3]], labels=[0, 1]), 1.2039728043259361)


@pytest.mark.parametrize("kind", KINDS)
def test_brier_matches_sklearn(kind: str) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(20):
        rng = _rng("brier", kind, trial)
        c = 2 if kind == "bool" else int(rng.integers(2, 6))
        n = int(rng.integers(c, 50))
        classes, y = _labels(rng, kind, n, c)
        p = _proba(rng, n, c)
        w = rng.random(n) if trial % 2 else None
        half = ["auto", True, False][trial % 3]
        got = metrics.brier_score_loss(y, p, sample_weight=w, scale_by_half=half)
        _close(got, skm.brier_score_loss(y, p, sample_weight=w, scale_by_half=half))
        if c == 2:
            pos = classes[trial % 2] if kind == "str" or trial % 4 == 1 else None
            col = p[:, 1] if pos is None or pos == classes[1] else p[:, 0]
            got = metrics.brier_score_loss(y, col, sample_weight=w, pos_label=pos)
            _close(got, skm.brier_score_loss(y, col, sample_weight=w, pos_label=pos))


def test_brier_binary_pos_label_rules() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    p = np.array([0.1, 0.9, 0.8, 0.3])
    for y in ([0, 1, 1, 0], [-1, 1, 1, -1], [2, 5, 5, 2], [1, 1, 1, 1], [0, 0, 0, 0], [7, 7, 7, 7]):
        _close(metrics.brier_score_loss(y, p), skm.brier_score_loss(y, p))
    _close(metrics.brier_score_loss([0, 1, 1, 0], p > 0.5), 0.0)
    with pytest.raises(ValueError, match="pos_label"):
        metrics.brier_score_loss(["a", "b", "b", "a"], p)
    with pytest.raises(ValueError, match="binary"):
        metrics.brier_score_loss([0, 1, 2, 0], p)
    with pytest.raises(ValueError, match="continuous"):
        metrics.brier_score_loss([0.5, 1, 1, 0], p)
    with pytest.raises(ValueError, match="scale_by_half"):
        metrics.brier_score_loss([0, 1, 1, 0], p, scale_by_half="yes")
    # NumPy's booleans and scalars are taken, as scikit-learn takes them; a pos_label that is
    # not one label (an array or a set would be compared row by row) is refused
    y = [0, 1, 1, 0]
    _close(
        metrics.brier_score_loss(y, p, scale_by_half=np.True_, pos_label=np.int64(1)),
        skm.brier_score_loss(y, p, scale_by_half=np.True_, pos_label=np.int64(1)),
    )
    _close(
        metrics.brier_score_loss(y, p, pos_label=np.array(0)),
        skm.brier_score_loss(y, p, pos_label=0),
    )
    for bad in (np.array([0, 1]), {1}, [1]):
        with pytest.raises(TypeError, match="pos_label must be one label"):
            metrics.brier_score_loss(y, p, pos_label=bad)


@pytest.mark.parametrize("kind", KINDS)
def test_d2_log_loss_matches_sklearn(kind: str) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(20):
        rng = _rng("d2", kind, trial)
        c = 2 if kind == "bool" else int(rng.integers(2, 6))
        n = int(rng.integers(max(c, 2), 50))
        _, y = _labels(rng, kind, n, c)
        p = _proba(rng, n, c)
        w = rng.random(n) if trial % 2 else None
        _close(
            metrics.d2_log_loss_score(y, p, sample_weight=w),
            skm.d2_log_loss_score(y, p, sample_weight=w),
        )
        if c == 2:
            _close(metrics.d2_log_loss_score(y, p[:, 1]), skm.d2_log_loss_score(y, p[:, 1]))
    with pytest.warns(UserWarning, match="less than two samples"):
        assert math.isnan(metrics.d2_log_loss_score([1], [[0.2, 0.8]]))


def test_perplexity_and_per_class() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(10):
        rng = _rng("pp", trial)
        c = int(rng.integers(2, 6))
        n = int(rng.integers(c, 50))
        classes, y = _labels(rng, "str", n, c)
        p = _proba(rng, n, c)
        w = rng.random(n) if trial % 2 else None
        loss = metrics.log_loss(y, p, sample_weight=w)
        _close(metrics.perplexity(y, p, sample_weight=w), math.exp(loss))
        per = metrics.log_loss_per_class(y, p, sample_weight=w)
        assert per.classes.tolist() == classes.tolist()
        weights = np.ones(n) if w is None else w
        for j, cls in enumerate(classes):
            rows = y == cls
            _close(float(per.count[j]), float(np.sum(weights[rows])))
            expected = skm.log_loss(y[rows], p[rows], sample_weight=weights[rows], labels=classes)
            _close(float(per.log_loss[j]), expected)
        _close(float(np.sum(per.count * per.log_loss) / np.sum(per.count)), loss)
    per = metrics.log_loss_per_class([0, 0, 2], _proba(_rng("pc"), 3, 3), labels=[0, 1, 2])
    assert per.count.tolist() == [2.0, 0.0, 1.0]
    assert math.isnan(per.log_loss[1])


# ---------------------------------------------------------------------------------------------
# Calibration.
# ---------------------------------------------------------------------------------------------


def _ece_from_curve(y, p, n_bins, strategy):
    """ECE from scikit-learn's calibration curve and the bin counts of the same edges."""
    calibration_curve = pytest.importorskip("sklearn.calibration").calibration_curve
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)  # sklearn's expression
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred))), prob_true, prob_pred


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_binary_matches_calibration_curve(strategy: str) -> None:
    for trial in range(20):
        rng = _rng("cal", strategy, trial)
        n = int(rng.integers(5, 200))
        p = rng.random(n) ** rng.choice([0.3, 1.0, 3.0])
        if trial % 3 == 0:
            p = np.round(p, 1)  # values on the bin edges
        y = (rng.random(n) < p).astype(int)
        y[:2] = [0, 1]
        n_bins = int(rng.integers(1, 20))
        expected, prob_true, prob_pred = _ece_from_curve(y, p, n_bins, strategy)
        _close(metrics.calibration_error(y, p, n_bins=n_bins, strategy=strategy), expected)
        both = np.stack([1 - p, p], axis=1)
        _close(metrics.calibration_error(y, both, n_bins=n_bins, strategy=strategy), expected)
        gaps = np.abs(prob_true - prob_pred)
        _close(
            metrics.calibration_error(y, p, n_bins=n_bins, strategy=strategy, norm="max"),
            float(gaps.max()),
        )
        words = np.array(["no", "yes"])[y]
        _close(metrics.calibration_error(words, p, n_bins=n_bins, strategy=strategy), expected)


def _top_label_reference(y, p, n_bins, norm, w=None):
    """Top-label calibration error, computed directly with a loop over bins."""
    w = np.ones(len(y)) if w is None else w
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    total, worst, square = 0.0, 0.0, 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        rows = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if b == n_bins - 1:
            rows = conf > lo if b else np.ones(len(y), bool)
        if not rows.any():
            continue
        share = w[rows].sum() / w.sum()
        gap = abs(np.average(hit[rows], weights=w[rows]) - np.average(conf[rows], weights=w[rows]))
        total += share * gap
        square += share * gap**2
        worst = max(worst, gap)
    return {"l1": total, "max": worst, "l2": math.sqrt(square)}[norm]


@pytest.mark.parametrize("norm", ["l1", "max", "l2"])
def test_calibration_top_label(norm: str) -> None:
    for trial in range(15):
        rng = _rng("top", norm, trial)
        c = int(rng.integers(3, 7))
        n = int(rng.integers(c, 150))
        y = rng.integers(0, c, n)
        y[:c] = np.arange(c)
        p = _proba(rng, n, c)
        w = rng.random(n) if trial % 2 else None
        n_bins = int(rng.integers(1, 16))
        got = metrics.calibration_error(y, p, n_bins=n_bins, norm=norm, sample_weight=w)
        _close(got, _top_label_reference(y, p, n_bins, norm, w))


def test_calibration_quantile_weighted_and_options() -> None:
    rng = _rng("calq")
    p = _proba(rng, 100, 4)
    y = rng.integers(0, 4, 100)
    y[:4] = np.arange(4)
    w = np.full(100, 2.5)  # constant weights change nothing
    for strategy in ("uniform", "quantile"):
        _close(
            metrics.calibration_error(y, p, strategy=strategy, sample_weight=w),
            metrics.calibration_error(y, p, strategy=strategy),
        )
    with pytest.raises(ValueError, match="strategy"):
        metrics.calibration_error(y, p, strategy="kmeans")
    with pytest.raises(ValueError, match="norm"):
        metrics.calibration_error(y, p, norm="l3")
    with pytest.raises(ValueError, match="n_bins"):
        metrics.calibration_error(y, p, n_bins=0)
    with pytest.raises(TypeError, match="n_bins"):
        metrics.calibration_error(y, p, n_bins=2.5)


# ---------------------------------------------------------------------------------------------
# Array libraries, return types and the fast path.
# ---------------------------------------------------------------------------------------------
# Label indicator y_true and the deprecated y_pred= (scikit-learn 1.9).
# ---------------------------------------------------------------------------------------------

INDICATOR_METRICS = ["log_loss", "brier_score_loss", "d2_log_loss_score", "d2_brier_score"]


def test_narrow_integer_labels_far_apart_do_not_overflow() -> None:
    """int8 labels -100 and 100: counted in int64, not in int8 (where 100 - (-100) wraps)."""
    skm = pytest.importorskip("sklearn.metrics")
    y, p = np.array([-100, 100, 100], dtype=np.int8), [0.1, 0.9, 0.8]
    _close(metrics.brier_score_loss(y, p), skm.brier_score_loss(y, p))
    _close(metrics.log_loss(y, p), skm.log_loss(y, p))


@pytest.mark.parametrize("kind", ["str", "int"])
def test_object_labels_as_pandas_gives_them_match_sklearn(kind: str) -> None:
    """Labels of dtype object (a pandas column of strings) are encoded through a hash table;
    the classes, their order and every number are scikit-learn's."""
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(8):
        rng = _rng("object-labels", kind, trial)
        c = int(rng.integers(2, 6))
        n = int(rng.integers(c, 60))
        classes, y = _labels(rng, kind, n, c)
        ref = y  # scikit-learn refuses integers held as objects: it gets them as int64
        y = np.array(y.tolist(), dtype=object)
        p = _proba(rng, n, c)
        for fn in ("log_loss", "brier_score_loss", "d2_log_loss_score", "d2_brier_score"):
            _close(getattr(metrics, fn)(y, p), getattr(skm, fn)(ref, p))
        given = list(classes) + (["zzz"] if kind == "str" else [99])
        wide = np.column_stack([p, np.zeros(n)])
        expected = _quiet(skm.log_loss, ref, wide, labels=given)
        _close(metrics.log_loss(y, wide, labels=given), expected)
    with pytest.raises(ValueError, match="label 'zz' at row 2"):
        metrics.log_loss(np.array(["a", "b", "zz"], dtype=object), P2, labels=["a", "b"])
    with pytest.raises(TypeError, match="one comparable type"):  # as scikit-learn's sorting
        metrics.log_loss(np.array([0, 1, "a"], dtype=object), [[0.5, 0.5]] * 3)
    import pandas as pd

    # a missing label (None, or pandas' NaN among text labels): a ValueError naming its row,
    # as scikit-learn's "Unknown label type" for [0, None, 2] (it was a TypeError of sorting)
    missing = [
        [0, None, 2],
        np.array(["a", None, "b"], dtype=object),
        pd.Series(pd.Categorical(["a", np.nan, "b"])),
    ]
    for y in missing:
        with pytest.raises(ValueError, match=r"must not be missing; got (nan|None) at row 1"):
            metrics.log_loss(y, np.full((3, 3), 1 / 3))


@pytest.mark.parametrize("rows", ["one-hot", "multi-label", "empty rows", "missing class"])
@pytest.mark.parametrize("fn", INDICATOR_METRICS)
def test_label_indicator_y_true_matches_sklearn(fn: str, rows: str) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    for trial in range(6):
        rng = _rng("indicator", fn, rows, trial)
        n, c = int(rng.integers(4, 40)), int(rng.integers(3, 6))
        y = rng.integers(0, c, n)
        y[:c] = np.arange(c)
        t = np.eye(c, dtype=np.int64)[y]
        if rows == "multi-label":
            t[rng.random((n, c)) < 0.3] = 1
        elif rows == "empty rows":
            t[rng.random(n) < 0.3] = 0
        elif rows == "missing class":
            t[:, 0], t[y == 0, 1] = 0, 1  # column 0 never set: still a class
        t = t.astype(np.float64) if trial % 2 else t
        p = _proba(rng, n, c)
        w = rng.random(n) if trial % 3 else None
        ours = getattr(metrics, fn)(t, p, sample_weight=w)
        _close(ours, getattr(skm, fn)(t, p, sample_weight=w))
        if rows == "one-hot":  # the same as its class labels
            _close(ours, getattr(metrics, fn)(y, p, sample_weight=w))


def test_label_indicator_y_true_on_every_backend(backend) -> None:
    rng = _rng("indicator-backend")
    p = _proba(rng, 12, 3)
    t = (rng.random((12, 3)) < 0.5).astype(np.int64)
    for fn in ("log_loss", "brier_score_loss"):
        out = getattr(metrics, fn)(backend.asarray(t), backend.asarray(p))
        expected = getattr(metrics, fn)(t, p)
        np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-12)


def test_label_indicator_rules() -> None:
    p = [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]
    one_hot = [[0, 1], [1, 0], [1, 0]]
    # string class names for the columns; one 1 per row for the binary vector form
    _close(metrics.log_loss(one_hot, p, labels=["a", "b"]), metrics.log_loss([1, 0, 0], p))
    _close(
        metrics.brier_score_loss(one_hot, [0.8, 0.4, 0.5]),
        metrics.brier_score_loss([1, 0, 0], [0.8, 0.4, 0.5]),
    )
    with pytest.raises(ValueError, match="2 columns, but labels holds 3 classes"):
        metrics.log_loss(one_hot, p, labels=[0, 1, 2])
    # metrics of one label per row refuse multi-label rows
    for fn in ("calibration_error", "log_loss_per_class"):
        with pytest.raises(ValueError, match="exactly one label per row"):
            getattr(metrics, fn)([[1, 1], [1, 0], [1, 0]], p)
    _close(metrics.calibration_error(one_hot, p), metrics.calibration_error([1, 0, 0], p))
    with pytest.raises(ValueError, match="two columns and one 1 per row"):
        metrics.brier_score_loss([[1, 1], [1, 0], [1, 0]], [0.8, 0.4, 0.5])


@pytest.mark.parametrize("fn", ["log_loss", "d2_log_loss_score"])
def test_deprecated_y_pred_keyword_as_sklearn(fn: str) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    y, p = [0, 1, 2, 1], [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]]
    with pytest.warns(FutureWarning, match="y_pred was renamed to y_proba") as record:
        ours = getattr(metrics, fn)(y, y_pred=p)
    assert record[0].filename == __file__  # the warning points at the caller
    with pytest.warns(FutureWarning):
        _close(ours, getattr(skm, fn)(y, y_pred=p))
    _close(ours, getattr(metrics, fn)(y, p))
    with pytest.raises(ValueError, match="Cannot use both y_pred and y_proba"):
        getattr(metrics, fn)(y, p, y_pred=p)
    with pytest.raises(ValueError, match="Cannot use both"):
        getattr(skm, fn)(y, p, y_pred=p)
    with pytest.raises(TypeError, match="y_proba is required"):
        getattr(metrics, fn)(y)


def test_d2_zero_total_weight_is_a_value_error_as_sklearn() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    y, p, w = [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        metrics.d2_log_loss_score(y, p, sample_weight=w)
    with pytest.raises(ValueError, match="at least one non-zero"):
        skm.d2_log_loss_score(y, p, sample_weight=w)
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.d2_log_loss_score(y[:3], p)


# ---------------------------------------------------------------------------------------------

FUNCTIONS = [
    "log_loss",
    "brier_score_loss",
    "d2_log_loss_score",
    "d2_brier_score",
    "perplexity",
    "calibration_error",
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fn", FUNCTIONS)
def test_every_backend(backend, fn: str, dtype: type) -> None:
    rng = _rng("backend", fn)
    n, c = 13, 4
    p = _proba(rng, n, c)
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)
    w = rng.random(n)
    func = getattr(metrics, fn)
    out = func(
        backend.asarray(y), backend.asarray(p, dtype=dtype), sample_weight=backend.asarray(w)
    )
    if backend.name == "numpy":
        assert type(out) is float  # as scikit-learn
    else:
        assert backend.is_native(out), type(out)
        assert out.shape == ()
        assert str(out.dtype).endswith(np.dtype(dtype).name), out.dtype
    expected = func(y, p.astype(dtype), sample_weight=w)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=tol, atol=tol)
    # binary vectors and the unweighted mean too
    yb = (y > 1).astype(np.int64)
    out = func(backend.asarray(yb), backend.asarray(p[:, 0], dtype=dtype))
    expected = func(yb, p[:, 0].astype(dtype))
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=tol, atol=tol)


def test_per_class_every_backend(backend) -> None:
    rng = _rng("per-class-backend")
    p = _proba(rng, 11, 3)
    y = np.array([0, 1, 2, 0, 0, 1, 2, 2, 2, 1, 0])
    r = metrics.log_loss_per_class(backend.asarray(y), backend.asarray(p))
    assert backend.is_native(r.log_loss)
    expected = metrics.log_loss_per_class(y, p)
    np.testing.assert_allclose(backend.to_numpy(r.log_loss), expected.log_loss, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(r.count), expected.count)


def test_numpy_and_lists_give_python_floats() -> None:
    out = metrics.log_loss([0, 1], [[0.8, 0.2], [0.3, 0.7]])
    assert type(out) is float
    assert type(metrics.brier_score_loss(np.array([0, 1]), np.array([0.2, 0.7]))) is float
    assert type(metrics.calibration_error([0, 1], [0.2, 0.7])) is float


def test_fast_path_equals_generic_path() -> None:
    """NumPy float32/float64 take the one-pass fast path (non-contiguous input is copied
    first); array-api-strict arrays take the generic array-API path. Same numbers."""
    xps = pytest.importorskip("array_api_strict")
    for dtype in (np.float64, np.float32):
        for trial in range(5):
            rng = _rng("fast", trial)
            c = int(rng.integers(2, 12))
            n = int(rng.integers(c, 3000))
            p = _proba(rng, n, c, dtype)
            p[rng.random(p.shape) < 0.1] = 0.0
            p[0, 0] = -0.0  # fine: -0.0 >= 0, as scikit-learn
            y = rng.integers(0, c, n)
            y[:c] = np.arange(c)
            w = rng.random(n)
            fast = _quiet(metrics.log_loss, y, p, sample_weight=w)
            generic = _quiet(
                metrics.log_loss, xps.asarray(y), xps.asarray(p), sample_weight=xps.asarray(w)
            )
            # the generic answer is a 0-D array in the input's dtype
            _close(float(dtype(fast)), float(generic), tol=1e-15)
            for layout in (np.asfortranarray(p), np.repeat(p, 2, axis=1)[:, ::2]):
                assert _quiet(metrics.log_loss, y, layout, sample_weight=w) == fast


def test_row_sum_warning_matches_sklearn() -> None:
    """scikit-learn warns when a row sum is off 1 by more than 1e-8 + sqrt(eps); so do we."""
    skm = pytest.importorskip("sklearn.metrics")
    base = np.array([[0.25, 0.75], [0.5, 0.5], [0.1, 0.9]])
    y = [0, 1, 1]
    for dtype in (np.float64, np.float32):
        tol = 1e-8 + math.sqrt(np.finfo(dtype).eps)
        for off in (0.0, 0.5 * tol, 0.99 * tol, 1.5 * tol, 10 * tol, 0.1, -1.5 * tol):
            p = base.astype(dtype)
            p[1, 1] = dtype(0.5 + off)
            with warnings.catch_warnings(record=True) as ours:
                warnings.simplefilter("always")
                metrics.log_loss(y, p)
            with warnings.catch_warnings(record=True) as theirs:
                warnings.simplefilter("always")
                skm.log_loss(y, p)
            assert len(ours) == len(theirs), (dtype, off, ours, theirs)
            if ours:
                assert "row 1" in str(ours[0].message)


def test_unsorted_labels_warn_like_sklearn() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    p = [[0.1, 0.9], [0.8, 0.2]]
    with pytest.warns(UserWarning, match="sorted order"):
        got = metrics.log_loss(["b", "a"], p, labels=["b", "a"])
    with pytest.warns(UserWarning, match="ordered lexicographically"):
        expected = skm.log_loss(["b", "a"], p, labels=["b", "a"])
    _close(got, expected)


def test_import_pulls_no_framework() -> None:
    code = (
        "import sys, crossentropy.metrics as m; m.log_loss([0, 1], [0.2, 0.7]); "
        "print(sorted(k for k in ('torch', 'jax', 'dask') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_metrics_not_in_top_level_namespace() -> None:
    assert "metrics" not in ce.__all__


# ---------------------------------------------------------------------------------------------
# Bad input: the same conditions as scikit-learn, messages that name the argument.
# ---------------------------------------------------------------------------------------------

P2 = [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]

BAD = [
    # (kwargs, exception, match, sklearn raises too)
    ({"y_true": [1, 1, 1], "y_proba": P2}, ValueError, r"only one label \(1\);", True),
    ({"y_true": [0, 1, 2], "y_proba": P2}, ValueError, "different numbers of classes", True),
    ({"y_true": [0, 1, 1], "y_proba": P2, "labels": [0, 1, 2]}, ValueError, "labels", True),
    ({"y_true": [0, 1], "y_proba": P2}, ValueError, "same number of rows", True),
    ({"y_true": [0, 1, 5], "y_proba": P2, "labels": [0, 1]}, ValueError, "row 2", True),
    ({"y_true": [0, 1, 1], "y_proba": P2, "labels": [1]}, ValueError, "two distinct", True),
    (
        {"y_true": [0, 1, 1], "y_proba": [[0.2, 0.8], [np.nan, 0.4], [0.5, 0.5]]},
        ValueError,
        r"y_proba must be finite; got nan at row 1",
        True,
    ),
    (
        {"y_true": [0, 1, 1], "y_proba": [[0.2, 0.8], [0.6, 0.4], [0.5, np.inf]]},
        ValueError,
        r"y_proba must be finite; got inf at row 2",
        True,
    ),
    (
        {"y_true": [0, 1, 1], "y_proba": [[0.2, 0.8], [1.5, -0.5], [0.5, 0.5]]},
        ValueError,
        r"\[0, 1\]; got 1.5 at row 1, column 0",
        True,
    ),
    (
        {"y_true": [0, 1, 1], "y_proba": [[0.2, 0.8], [0.6, 0.4], [-0.1, 1.1]]},
        ValueError,
        "at row 2",
        True,
    ),
    (
        {"y_true": [0, 1, 1], "y_proba": P2, "sample_weight": [1.0, 2.0]},
        ValueError,
        "sample_weight",
        True,
    ),
    (
        {"y_true": [0, 1, 1], "y_proba": P2, "sample_weight": [1.0, np.nan, 2.0]},
        ValueError,
        "sample_weight must be finite; got nan at row 1",
        True,
    ),
    (
        {"y_true": [0, 1, 1], "y_proba": P2, "sample_weight": [0.0, 0.0, 0.0]},
        ZeroDivisionError,
        "sample_weight sums to zero",
        True,
    ),
    ({"y_true": [0, 1, 1], "y_proba": [[[0.5]]]}, ValueError, "y_proba must have shape", True),
    (
        {"y_true": [[0, 1], [2, 0], [1, 0]], "y_proba": P2},
        ValueError,
        "must hold 0s and 1s; got 2 at row 1, column 0",
        True,
    ),
    (
        {"y_true": [[[0, 1]], [[1, 0]], [[1, 0]]], "y_proba": P2},
        ValueError,
        "y_true must be a 1-D array of class labels or a label indicator matrix",
        False,
    ),
    ({"y_true": [0, 1, np.nan], "y_proba": P2}, ValueError, "y_true must hold finite", True),
    ({"y_true": [0, 1, 1], "y_proba": [["a", "b"]] * 3}, TypeError, "y_proba", True),
    ({"y_true": [0, 1, 1], "y_proba": P2, "normalize": 1}, TypeError, "normalize", True),
]


@pytest.mark.parametrize(("kwargs", "exc", "match", "sklearn_too"), BAD)
def test_log_loss_bad_input(kwargs, exc, match, sklearn_too) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    with pytest.raises(exc, match=match):
        _quiet(metrics.log_loss, **kwargs)
    if sklearn_too:
        with pytest.raises((ValueError, TypeError, ZeroDivisionError)):
            _quiet(skm.log_loss, **kwargs)


@pytest.mark.parametrize(
    "name", ["log_loss", "brier_score_loss", "d2_log_loss_score", "d2_brier_score"]
)
def test_ragged_probabilities_are_a_type_error_naming_y_proba(name) -> None:
    """Rows of different lengths: the TypeError of log_loss from each metric (the Brier score
    and D² let NumPy's "inhomogeneous shape" ValueError through)."""
    with pytest.raises(TypeError, match=r"^y_proba must be an array or a sequence of numbers"):
        getattr(metrics, name)([0, 1, 1], [[0.3, 0.7], [0.4], [0.2, 0.8]])


def test_zero_weight_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="sample_weight"):
        metrics.log_loss([0, 1], [0.3, 0.6], sample_weight=[0, 0])
    assert issubclass(metrics.ZeroWeightError, ZeroDivisionError)


def test_a_zero_total_weight_is_refused_by_every_metric_as_by_sklearn() -> None:
    """scikit-learn refuses all-zero weights with ``normalize=False`` too; so do the one-shot
    functions and the accumulators (``normalize=False`` gave 0.0, ``calibration_error`` and
    ``D2LogLoss`` NaN)."""
    skm = pytest.importorskip("sklearn.metrics")
    y, p, w = np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.6, 0.1]), np.zeros(4)
    calls = [
        lambda: metrics.log_loss(y, p, normalize=False, sample_weight=w),
        lambda: metrics.log_loss(y, p, sample_weight=w),
        lambda: metrics.brier_score_loss(y, p, sample_weight=w),
        lambda: metrics.d2_log_loss_score(y, p, sample_weight=w),
        lambda: metrics.calibration_error(y, p, sample_weight=w),
        lambda: metrics.LogLoss(normalize=False).update(y, p, sample_weight=w).result(),
        lambda: metrics.LogLoss().update(y, p, sample_weight=w).result(),
        lambda: metrics.D2LogLoss().update(y, p, sample_weight=w).result(),
    ]
    for call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "invalid value" warning before the error
            with pytest.raises(metrics.ZeroWeightError, match="sample_weight sums to zero"):
                call()
    with pytest.raises(ValueError, match="non-zero"):
        skm.log_loss(y, p, normalize=False, sample_weight=w)


def _every_weighted_metric(y, p, w) -> list:
    """Callables computing each weighted metric, one-shot and streaming, of ``(y, p, w)``."""
    return [
        lambda: metrics.log_loss(y, p, normalize=False, sample_weight=w),
        lambda: metrics.log_loss(y, p, sample_weight=w),
        lambda: metrics.brier_score_loss(y, p, sample_weight=w),
        lambda: metrics.d2_log_loss_score(y, p, sample_weight=w),
        lambda: metrics.calibration_error(y, p, sample_weight=w),
        lambda: metrics.LogLoss().update(y, p, sample_weight=w).result(),
        lambda: metrics.D2LogLoss().update(y, p, sample_weight=w).result(),
        lambda: metrics.BrierScore().update(y, p, sample_weight=w).result(),
        lambda: metrics.CalibrationError().update(y, p, sample_weight=w).result(),
        lambda: metrics.smooth_calibration_error(y, p, sample_weight=w),
        lambda: metrics.LogLossPerClass().update(y, p, sample_weight=w).result(),
    ]


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_weights_whose_sums_would_overflow_are_refused_by_every_metric(lib) -> None:
    """A total of sample weights near float64's largest makes every weighted sum overflow
    (scikit-learn gives 0.0): refused with a ValueError, before any overflow warning."""
    y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.6, 0.1])
    convert = np.asarray if lib == "numpy" else pytest.importorskip("torch").tensor
    # 4e304 each: below float64's largest over 1024, where the smooth ECE's sums overflowed
    for w in (np.full(4, 1e308), np.array([1e306, 1.0, 1.0, 1.0]), np.full(4, 4e304)):
        for call in _every_weighted_metric(convert(y), convert(p), convert(w)):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with pytest.raises(ValueError, match="the weighted sums would overflow"):
                    call()
    # the bound holds across the updates of an accumulator
    for name in ("LogLoss", "LogLossPerClass", "CalibrationError", "BrierScore"):
        half = getattr(metrics, name)().update(y, p, sample_weight=np.full(4, 6e297))
        with pytest.raises(ValueError, match="the weighted sums would overflow"):
            half.update(y, p, sample_weight=np.full(4, 6e297)).result()
    # below the bound, every weighted metric is the unweighted one at any scale, no warning
    big = np.full(4, 1e298)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pairs = zip(
            _every_weighted_metric(y, p, big), _every_weighted_metric(y, p, None), strict=True
        )
        for i, (call, plain) in enumerate(pairs):
            got, want = call(), plain()
            if isinstance(got, float):  # the first, a weighted sum (normalize=False), scales
                assert got == pytest.approx(want * (1e298 if i == 0 else 1.0), rel=1e-12)


def test_d2_log_loss_score_takes_dask_dataframes_as_the_other_metrics() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    rng = _rng("d2-dask-frame")
    p = _proba(rng, 60, 3)
    y = rng.integers(0, 3, 60)
    y[:3] = [0, 1, 2]
    frame = dd.from_pandas(pd.DataFrame(p, columns=["a", "b", "c"]), npartitions=3)
    labels = dd.from_pandas(pd.Series(y), npartitions=3)
    got = metrics.d2_log_loss_score(labels, frame)
    _close(float(got), skm.d2_log_loss_score(y, p))


def test_bad_rows_on_lazy_arrays_give_nan(backend) -> None:
    """A lazy array is not computed to be checked: its bad entries make the metric NaN."""
    rng = _rng("bad-rows")
    p = _proba(rng, 200, 5)
    y = rng.integers(0, 5, 200)
    y[:5] = np.arange(5)
    for bad in (np.nan, np.inf, -0.5, 1.5):
        q = p.copy()
        q[123, int(y[123])] = bad
        if not backend.lazy:
            with pytest.raises(ValueError, match="row 123"):
                metrics.log_loss(backend.asarray(y), backend.asarray(q))
            continue
        out = metrics.log_loss(backend.asarray(y), backend.asarray(q))
        assert np.isnan(backend.to_numpy(out))
        assert np.isnan(
            backend.to_numpy(metrics.brier_score_loss(backend.asarray(y), backend.asarray(q)))
        )


def test_bad_rows_found_on_the_fast_path_and_every_backend(backend) -> None:
    rng = _rng("bad-rows")
    p = _proba(rng, 2000, 5)
    y = rng.integers(0, 5, 2000)
    y[:5] = np.arange(5)
    q = p.copy()
    q[1234, 3] = np.nan
    q[1500, 0] = -0.5
    if backend.lazy:  # not computed to be checked: the bad entries make the metrics NaN
        out = metrics.log_loss(backend.asarray(y), backend.asarray(q))
        assert np.isnan(backend.to_numpy(out))
        q[1234, 3] = 0.5
        out = metrics.brier_score_loss(backend.asarray(y), backend.asarray(q))
        assert np.isnan(backend.to_numpy(out))
        return
    with pytest.raises(ValueError, match="got nan at row 1234, column 3"):
        metrics.log_loss(backend.asarray(y), backend.asarray(q))
    q[1234, 3] = 0.5
    with pytest.raises(ValueError, match=r"got -0.5 at row 1500, column 0"):
        metrics.brier_score_loss(backend.asarray(y), backend.asarray(q))


def test_labels_of_another_type_than_y() -> None:
    with pytest.raises(ValueError, match="y_true"):
        metrics.log_loss(["a", "b"], [[0.5, 0.5], [0.5, 0.5]], labels=[0, 1])


def test_mixed_text_and_numeric_labels_are_refused_as_scikit_learn() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    p = [[0.5, 0.5], [0.2, 0.8]]
    with pytest.raises(ValueError, match="Mix of label input types"):
        skm.log_loss([0, "a"], p)
    for name in ("log_loss", "brier_score_loss"):
        with pytest.raises(ValueError, match="y_true mixes text and numeric labels"):
            getattr(metrics, name)([0, "a"], p)
        with pytest.raises(ValueError, match="labels mixes text and numeric labels"):
            getattr(metrics, name)(["0", "a"], p, labels=[0, "a"])


def test_empty_input() -> None:
    """No rows is refused by one message, before any class is inferred from the labels."""
    message = "y_true and y_proba must have at least one row; got none"
    with pytest.raises(ValueError, match=message):
        metrics.log_loss(np.zeros(0, int), np.zeros((0, 2)), labels=[0, 1])
    for name in ("log_loss", "brier_score_loss", "calibration_error", "log_loss_per_class"):
        with pytest.raises(ValueError, match=message):
            getattr(metrics, name)([], [])


def test_large_inputs_span_several_blocks() -> None:
    """The fast path walks row blocks: bad rows, warnings and sums past the first block."""
    xps = pytest.importorskip("array_api_strict")
    skm = pytest.importorskip("sklearn.metrics")
    rng = _rng("blocks")
    n, c = 120_000, 10  # about 52k rows per block
    p = _proba(rng, n, c)
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)
    w = rng.random(n)
    generic = metrics.log_loss(xps.asarray(y), xps.asarray(p), sample_weight=xps.asarray(w))
    _close(metrics.log_loss(y, p, sample_weight=w), float(generic))
    _close(metrics.log_loss(y, p), skm.log_loss(y, p))
    q = p.copy()
    q[100_001, 4] = np.inf
    with pytest.raises(ValueError, match="got inf at row 100001, column 4"):
        metrics.log_loss(y, q)
    q[100_001] = p[100_001]
    q[70_000, 0] += 1e-6
    with pytest.warns(UserWarning, match="first off at row 70000"):
        metrics.log_loss(y, q)


def test_rare_and_missing_integer_classes() -> None:
    """Class inference on integers: a class seen once, and gaps between the labels."""
    skm = pytest.importorskip("sklearn.metrics")
    rng = _rng("rare")
    n = 5000
    p = _proba(rng, n, 3)
    y = rng.integers(0, 2, n)
    y[3217] = 2  # once: a strided sample of the labels misses it
    _close(metrics.log_loss(y, p), skm.log_loss(y, p))
    gaps = np.array([-3, 5, 40])[y]
    _close(metrics.log_loss(gaps, p), skm.log_loss(gaps, p))
    with pytest.raises(ValueError, match="different numbers of classes: 2 vs 3"):
        metrics.log_loss(np.where(y == 2, 1, y), p)


def test_public_api_documents_math_and_examples() -> None:
    for name in metrics.__all__:
        obj = getattr(metrics, name)
        # result tuples and an exception
        if name in ("ClassLogLoss", "Decomposition", "MurphyDecomposition", "ZeroWeightError"):
            continue
        doc = obj.__doc__ or ""
        assert ".. math::" in doc, name
        assert ">>> " in doc, name
        assert "Examples" in doc, name
    assert metrics.__all__ == sorted(metrics.__all__)


def test_brier_of_no_rows_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        metrics.brier_score_loss([], [], labels=[0, 1])


def test_dask_arrays_of_unknown_size_get_a_clear_error() -> None:
    da = pytest.importorskip("dask.array")

    y = da.from_array(np.array([0, 1, 1, 0]), chunks=2)
    p = da.from_array(np.array([[0.5, 0.5], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]]), chunks=2)
    keep = y >= 0
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        metrics.log_loss(y[keep], p[keep])
    expected = metrics.log_loss(y.compute(), p.compute())
    got = float(metrics.log_loss(y[keep], p[keep].compute_chunk_sizes()).compute())
    assert got == pytest.approx(expected, rel=1e-12)


def test_the_first_entry_that_is_not_a_probability_is_named() -> None:
    """Row-major order, whatever is wrong with it; the error carries its place and value."""
    from crossentropy.metrics._checks import ProbabilityError

    p = np.array([[0.5, 0.5], [1.2, np.nan], [np.nan, 0.5]])
    with pytest.raises(ProbabilityError, match=r"\[0, 1\]; got 1\.2 at row 1, column 0") as info:
        metrics.log_loss([0, 1, 1], p)
    assert info.value.index == (1, 0)
    assert info.value.value == 1.2
    with pytest.raises(ValueError, match="must be finite; got nan at row 1, column 0"):
        metrics.log_loss([0, 1, 1], p[:, ::-1].copy())


def test_dask_log_loss_runs_chunk_by_chunk_where_the_chunks_live() -> None:
    """Integer labels are encoded on the cluster (no copy of them in the graph) and each chunk
    of rows is scored by the NumPy fast path: equal to scikit-learn's for any chunking, with
    weights, float32 and labels of other types (through the host)."""
    da = pytest.importorskip("dask.array")
    sk = pytest.importorskip("sklearn.metrics")
    n, c = 3000, 4
    rng = da.random.default_rng(0)
    y = rng.integers(0, c, n, chunks=700)
    p = rng.random((n, c), chunks=(1100, 3))
    p = p / p.sum(axis=1, keepdims=True)
    w = rng.random(n, chunks=900)
    got = metrics.log_loss(y, p, sample_weight=w)
    big = [v for v in dict(got.__dask_graph__()).values() if getattr(v, "size", 0) >= n]
    assert big == []  # the labels stayed on the cluster
    yh, ph, wh = (a.compute() for a in (y, p, w))
    assert float(got) == pytest.approx(sk.log_loss(yh, ph, sample_weight=wh), rel=1e-12)
    assert float(metrics.perplexity(y, p)) == pytest.approx(np.exp(sk.log_loss(yh, ph)), rel=1e-12)
    f32 = metrics.log_loss(y, p.astype(np.float32))
    assert f32.dtype == np.float32
    assert float(f32) == pytest.approx(sk.log_loss(yh, ph.astype(np.float32)), rel=1e-6)
    names = da.from_array(np.array(["a", "b", "c", "d"])[yh], chunks=500)
    assert float(metrics.log_loss(names, p)) == pytest.approx(sk.log_loss(yh, ph), rel=1e-12)
    # a lazy input is not inspected: an entry outside [0, 1] in any column gives NaN
    bad = ph.copy()
    bad[5, (yh[5] + 1) % c] = 1.5
    assert np.isnan(float(metrics.log_loss(y, da.from_array(bad, chunks=(1000, c)))))
    # with the checks computed up front, the error names the entry
    with ce.validation(True), pytest.raises(ValueError, match=r"\[0, 1\]; got 1.5 at row 5"):
        metrics.log_loss(y, da.from_array(bad, chunks=(1000, c)))
    # a label that is not a class: the host path names its row
    other = da.from_array(np.where(np.arange(n) == 7, 9, yh), chunks=1000)
    with pytest.raises(ValueError, match="label 9 at row 7"):
        metrics.log_loss(other, p, labels=list(range(c)))
    # labels not sorted: one warning, at the caller's line, on either path
    backwards = list(range(c))[::-1]
    with pytest.warns(UserWarning, match="sorted order") as caught:
        metrics.log_loss(y, p, labels=backwards)
    assert [w.filename for w in caught] == [__file__]
    with (
        pytest.warns(UserWarning, match="sorted order") as caught,
        pytest.raises(ValueError, match="label 9"),
    ):
        metrics.log_loss(other, p, labels=backwards)
    assert [w.filename for w in caught] == [__file__]


# ---------------------------------------------------------------------------------------------
# Tensors as a metric meets them: half precision, requiring gradients, meta.
# ---------------------------------------------------------------------------------------------

METRICS_OF_TENSORS = ["log_loss", "brier_score_loss", "calibration_error", "perplexity"]


@pytest.mark.parametrize("name", METRICS_OF_TENSORS)
def test_metrics_of_bfloat16_and_grad_requiring_tensors(name):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(4)
    p = torch.rand(50, 3, generator=g, dtype=torch.float64).softmax(1)
    y = torch.randint(0, 3, (50,), generator=g)
    fn = getattr(metrics, name)
    expected = fn(y, p)
    leaf = p.clone().requires_grad_(True)
    got = fn(y, leaf)  # detached: a metric is not differentiable
    assert got.grad_fn is None
    assert not got.requires_grad
    torch.testing.assert_close(got, expected)
    half = fn(y, p.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    assert abs(float(half) - float(expected)) <= 2e-2 * abs(float(expected)) + 1e-2


@pytest.mark.parametrize("name", METRICS_OF_TENSORS)
def test_metrics_refuse_meta_tensors_clearly(name):
    torch = pytest.importorskip("torch")
    p = torch.rand(5, 3).softmax(1).to("meta")
    with pytest.raises(ValueError, match="y_proba is a meta tensor"):
        getattr(metrics, name)(torch.tensor([0, 1, 2, 1, 0]), p)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_calibration_error_of_large_inputs_equals_the_definition(dtype) -> None:
    """Above 2**21 entries the top labels are found on two threads: the same bins as the
    definition (first argmax on ties, the confidence at it) computed directly."""
    rng = np.random.default_rng(41)
    n, c = 240_000, 10
    p = rng.dirichlet(np.full(c, 0.3), n).astype(dtype)
    p[::7, 3] = p[::7, 5] = np.float32(0.5)  # ties for the top label
    p[::7] /= p[::7].sum(axis=1, keepdims=True)
    y = rng.integers(0, c, n)
    top = p.argmax(axis=1)
    conf = p.max(axis=1).astype(np.float64)
    b = np.searchsorted(np.linspace(0, 1, 16)[1:-1], conf, side="left")
    gap = np.abs(np.bincount(b, conf, 15) - np.bincount(b, (top == y).astype(float), 15))
    assert metrics.calibration_error(y, p) == pytest.approx(gap.sum() / n, rel=1e-12)


@pytest.mark.parametrize("norm", ["l1", "max", "l2"])
@pytest.mark.parametrize("classes", [2, 5])
def test_calibration_error_matches_torchmetrics(norm: str, classes: int) -> None:
    """torchmetrics computes the confidences in float32: the values agree to ~1e-6 relative on
    float32 inputs, and to float32 rounding (here 1e-4) on float64 ones, where ours equals the
    float64 definition."""
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(40 + classes)
    p = rng.dirichlet(np.ones(classes), 5000)
    y = np.array([rng.choice(classes, p=row) for row in p])
    y = np.where(rng.random(5000) < 0.2, rng.integers(0, classes, 5000), y)  # miscalibrated

    def theirs(q: np.ndarray) -> float:
        if classes == 2:
            out = tm.binary_calibration_error(
                torch.from_numpy(q[:, 1]), torch.from_numpy(y), n_bins=15, norm=norm
            )
        else:
            out = tm.multiclass_calibration_error(
                torch.from_numpy(q), torch.from_numpy(y), num_classes=classes, n_bins=15, norm=norm
            )
        return float(out)

    ours = metrics.calibration_error(y, p, n_bins=15, norm=norm)
    assert ours == pytest.approx(theirs(p), rel=1e-4)
    p32 = p.astype(np.float32)
    ours32 = metrics.calibration_error(y, p32, n_bins=15, norm=norm)
    theirs32 = theirs(p32)
    assert ours32 == pytest.approx(float(theirs32), rel=1e-5)


@pytest.mark.parametrize("dtype", ["Float64", "float64[pyarrow]"])
def test_nullable_and_arrow_backed_pandas_frames_are_numbers(dtype: str) -> None:
    """pandas' nullable and Arrow-backed columns give NumPy objects; they are read as numbers
    (they were refused as "dtype object"), and a missing value is a bad row, as NaN is."""
    skm = pytest.importorskip("sklearn.metrics")
    pd = pytest.importorskip("pandas")
    if "pyarrow" in dtype:
        pytest.importorskip("pyarrow")
    rng = _rng("nullable-frame", dtype)
    p = _proba(rng, 50, 3)
    y = rng.integers(0, 3, 50)
    y[:3] = [0, 1, 2]
    frame = pd.DataFrame(p, columns=["a", "b", "c"]).astype(dtype)
    for fn in ("log_loss", "brier_score_loss", "d2_log_loss_score", "d2_brier_score"):
        _close(getattr(metrics, fn)(y, frame), getattr(skm, fn)(y, p))
    _close(metrics.calibration_error(y, frame), metrics.calibration_error(y, p))
    frame.iloc[4, 1] = pd.NA
    with pytest.raises(ValueError, match="got nan at row 4, column 1"):
        metrics.log_loss(y, frame)
    text = pd.DataFrame(p.astype(str), columns=["a", "b", "c"]).astype("string")
    with pytest.raises(TypeError, match="must hold numbers"):  # text is not read as numbers
        metrics.log_loss(y, text)


def test_numbers_held_as_objects_are_read_as_scikit_learn_reads_them() -> None:
    """A NumPy array or pandas column of numbers of dtype object (scikit-learn's check_array
    reads them as float64) scores as the float64 array; an object that is not a number, text
    included, is a TypeError naming y_proba."""
    skm = pytest.importorskip("sklearn.metrics")
    pd = pytest.importorskip("pandas")
    rng = _rng("objects")
    p = _proba(rng, 40, 3)
    y = rng.integers(0, 3, 40)
    y[:3] = [0, 1, 2]
    v = p[:, 1]
    b = (y == 1).astype(int)
    for held in (p.astype(object), pd.DataFrame(p, dtype=object)):
        for fn in ("log_loss", "brier_score_loss", "d2_log_loss_score", "d2_brier_score"):
            _close(getattr(metrics, fn)(y, held), getattr(skm, fn)(y, p))
    for held in (v.astype(object), pd.Series(v, dtype=object)):
        _close(metrics.log_loss(b, held), skm.log_loss(b, v))
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(
        {"a": pl.Series(list(p[:, 0]), dtype=pl.Object), "b": p[:, 1], "c": p[:, 2]}
    )
    _close(metrics.log_loss(y, frame), skm.log_loss(y, p))
    for bad in ("0.5", b"0.5", [0.5]):
        mixed = v.astype(object)
        mixed[7] = bad
        with pytest.raises(TypeError, match=r"y_proba must hold numbers; got an array of obj"):
            metrics.log_loss(b, mixed)
    missing = v.astype(object)
    missing[7] = None  # NaN, as scikit-learn reads it: refused at its row
    with pytest.raises(ValueError, match="got nan at row 7"):
        metrics.log_loss(b, missing)


def test_sample_weights_held_as_objects_are_numbers_as_scikit_learn_reads_them() -> None:
    """Weights of dtype object (a NumPy array, a pandas column) are their numbers; text among
    them, or a ragged list, is an error naming sample_weight."""
    skm = pytest.importorskip("sklearn.metrics")
    pd = pytest.importorskip("pandas")
    y, p, w = [0, 1, 1], [0.2, 0.7, 0.6], [1.0, 2.0, 3.0]
    for held in (np.array(w, dtype=object), pd.Series(w, dtype=object)):
        for fn in ("log_loss", "brier_score_loss"):
            _close(
                getattr(metrics, fn)(y, p, sample_weight=held),
                getattr(skm, fn)(y, p, sample_weight=w),
            )
    with pytest.raises(TypeError, match="sample_weight must hold numbers"):
        metrics.log_loss(y, p, sample_weight=np.array(["a", "b", "c"], dtype=object))
    with pytest.raises(
        ValueError, match="sample_weight must be a 1-D array of numbers; got a ragged"
    ):
        metrics.log_loss(y, p, sample_weight=[[1], [1, 2], [3]])


@pytest.mark.parametrize("order", [">f8", ">f4", "<f8"])
def test_probabilities_in_either_byte_order(order: str) -> None:
    """Big-endian floats (a file's, np.frombuffer's) score as the same numbers in the
    machine's order (a NumPy casting error escaped before)."""
    skm = pytest.importorskip("sklearn.metrics")
    rng = _rng("byte order")
    p = _proba(rng, 30, 3)
    y = rng.integers(0, 3, 30)
    y[:3] = [0, 1, 2]
    held = p.astype(order)
    native = held.astype(held.dtype.newbyteorder("="))
    for fn in ("log_loss", "d2_log_loss_score", "brier_score_loss", "d2_brier_score"):
        _close(getattr(metrics, fn)(y, held), getattr(skm, fn)(y, native), tol=1e-6)
        _close(getattr(metrics, fn)(y, held), getattr(metrics, fn)(y, native), tol=0)
    _close(metrics.perplexity(y, held), metrics.perplexity(y, native), tol=0)
    _close(metrics.LogLoss().update(y, held).result(), metrics.log_loss(y, native), tol=0)


def test_missing_labels_of_pandas_nullable_dtypes_are_named() -> None:
    """pandas' ``NA`` among boolean or text labels is a missing label at its row, as None and
    NaN are (was a TypeError about comparing labels)."""
    pd = pytest.importorskip("pandas")
    for labels in (
        pd.Series([True, pd.NA, False], dtype="boolean"),
        pd.Series(["a", pd.NA, "b"], dtype="string"),
        pd.Series(["a", pd.NA, "b"], dtype=object),
    ):
        for call in (
            lambda y: metrics.log_loss(y, [0.2, 0.6, 0.5]),
            lambda y: metrics.calibration_error(y, [0.2, 0.6, 0.5]),
        ):
            with pytest.raises(
                ValueError, match="class labels must not be missing; got <NA> at row 1"
            ):
                call(labels)


def test_d2_of_fewer_than_two_rows_checks_the_input_first_as_sklearn() -> None:
    """scikit-learn checks the lengths and the numbers before it returns NaN for fewer than
    two rows: so do we (NaN was returned whatever the input)."""
    skm = pytest.importorskip("sklearn.metrics")
    for y, p in (
        ([0, 1, 0], [[0.3, 0.7]]),
        (["a", "b", "c"], [0.5]),
        ([0, 1, 0], np.zeros((0, 2))),
    ):
        with pytest.raises(ValueError, match="inconsistent"):
            skm.d2_log_loss_score(y, p)
        with pytest.raises(ValueError, match="the same number of rows"):
            metrics.d2_log_loss_score(y, p)
    with pytest.raises(ValueError, match="y_proba must have shape"):
        metrics.d2_log_loss_score([0, 1], 0.3)
    with pytest.raises(TypeError, match="y_proba must hold numbers"):
        metrics.d2_log_loss_score([0, 1], "ab")
    with pytest.raises(ValueError, match="sample_weight must be a 1-D array"):
        metrics.d2_log_loss_score([0], [[0.3, 0.7]], sample_weight=[1.0, 2.0])
    for y, p in (([0], [[0.3, 0.7]]), ([5], [[0.3, 0.7]]), ([1], [0.4]), ([], np.zeros((0, 2)))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert math.isnan(skm.d2_log_loss_score(y, p))
        with pytest.warns(UserWarning, match="less than two samples"):
            assert math.isnan(metrics.d2_log_loss_score(y, p))


def test_a_zero_total_weight_on_dask_is_nan_without_a_warning_or_refused_when_validated() -> None:
    da = pytest.importorskip("dask.array")
    y, p, w = np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.6, 0.1]), np.zeros(4)
    lazy = [da.from_array(a, chunks=2) for a in (y, p, w)]
    for fn in ("log_loss", "brier_score_loss", "perplexity"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "invalid value encountered" at compute time
            assert math.isnan(float(getattr(metrics, fn)(*lazy[:2], sample_weight=lazy[2])))
        with ce.validation(True), pytest.raises(metrics.ZeroWeightError):
            getattr(metrics, fn)(*lazy[:2], sample_weight=lazy[2])
    summed = metrics.log_loss(*lazy[:2], sample_weight=lazy[2], normalize=False)  # was 0.0
    assert math.isnan(float(summed))
    ones = da.from_array(np.ones(4), chunks=2)
    unweighted = metrics.log_loss(*lazy[:2], sample_weight=ones, normalize=False)
    assert float(unweighted) == pytest.approx(metrics.log_loss(y, p, normalize=False), rel=1e-12)


def test_calibration_error_on_dask_refuses_a_negative_weight_as_on_numpy() -> None:
    """calibration_error reads a Dask array's values anyway (the bins' totals): a negative
    weight is refused as on NumPy and by smooth_calibration_error (it gave 0.2597); with the
    checks off it is not read."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(3), 200)
    y = rng.integers(0, 3, 200)
    w = rng.random(200)
    w[177] = -1.0
    lazy = [da.from_array(a, chunks=50) for a in (y, p, w)]
    message = r"sample_weight must be finite and >= 0; got -1\.0 at row 177"
    for fn in (metrics.calibration_error, metrics.smooth_calibration_error):
        with pytest.raises(ValueError, match=message):
            fn(y, p, sample_weight=w)
        with pytest.raises(ValueError, match=message):
            fn(lazy[0], lazy[1], sample_weight=lazy[2])
    w[177] = 1.0
    good = float(metrics.calibration_error(lazy[0], lazy[1], sample_weight=da.from_array(w)))
    assert good == pytest.approx(metrics.calibration_error(y, p, sample_weight=w), rel=1e-12)


def test_a_numpy_weight_of_another_length_beside_dask_arrays_is_named() -> None:
    """A NumPy array or list of weights of the wrong length beside Dask arrays: the metric's
    own message (Dask's "Chunks do not add up to shape" came first)."""
    da = pytest.importorskip("dask.array")
    n = 100
    p = da.from_array(np.full((n, 3), 1 / 3), chunks=10)
    y = da.from_array(np.arange(n) % 3, chunks=10)
    message = r"^sample_weight must be a 1-D array of one weight per row \(100,\); got \(99,\)$"
    for weight in (np.ones(n - 1), [1.0] * (n - 1)):
        with pytest.raises(ValueError, match=message):
            metrics.log_loss(y, p, sample_weight=weight)
        with pytest.raises(ValueError, match=message):
            metrics.brier_score_loss(y > 0, p[:, 1], sample_weight=weight)


def test_calibration_error_on_dask_reads_each_input_once() -> None:
    """The binned calibration error needs its pairs on the host: the probabilities and the
    weights are read in one computation (twice and three times before), the labels once more
    for their distinct values; the value is NumPy's."""
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    rng = np.random.default_rng(5)
    p, y, w = rng.dirichlet(np.ones(4), 1000), rng.integers(0, 4, 1000), rng.random(1000)
    reads: dict[str, int] = {}

    def counted(name):
        def read(block):
            reads[name] = reads.get(name, 0) + 1
            return block

        return read

    for strategy in ("uniform", "quantile"):
        reads.clear()
        lazy = [
            da.from_array(a, chunks=250).map_blocks(counted(name), dtype=a.dtype)
            for a, name in ((y, "y"), (p, "p"), (w, "w"))
        ]
        with dask.config.set(scheduler="synchronous"):
            got = float(
                metrics.calibration_error(*lazy[:2], sample_weight=lazy[2], strategy=strategy)
            )
        assert {k: v // 4 for k, v in reads.items()} == {"y": 2, "p": 1, "w": 1}, reads
        want = metrics.calibration_error(y, p, sample_weight=w, strategy=strategy)
        assert got == pytest.approx(want, rel=1e-12)


def test_smooth_calibration_error_on_dask_names_the_bad_value_as_on_numpy() -> None:
    """The smooth ECE and the binned one read a Dask array's values: a bad one is named by its
    value, row and column as on NumPy (it was masked to NaN first, and named "nan" without its
    column, or gave a NaN calibration error); unchecked, it is not looked for."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(3), 300)
    y = rng.integers(0, 3, 300)
    for bad in (1.5, np.inf, -0.1):
        q = p.copy()
        q[213, 1] = bad
        with pytest.raises(ValueError, match=rf"got {bad!r} at row 213, column 1"):
            metrics.smooth_calibration_error(y, q)
        with pytest.raises(ValueError, match=rf"got {bad!r} at row 213, column 1"):
            metrics.smooth_calibration_error(da.from_array(y, 100), da.from_array(q, 100))
        for strategy in ("uniform", "quantile"):
            lazy = da.from_array(y, 100), da.from_array(q, 100)
            with pytest.raises(ValueError, match=rf"got {bad!r} at row 213, column 1"):
                metrics.calibration_error(*lazy, strategy=strategy)
    q[213, 1] = np.nan
    with ce.validation(False):
        value = metrics.calibration_error(da.from_array(y, 100), da.from_array(q, 100))
    assert math.isnan(float(value))


def test_weights_that_cancel_give_their_weighted_sum_as_sklearn() -> None:
    """With ``normalize=False`` only all-zero weights are refused: weights of both signs that
    sum to zero give the weighted sum, as scikit-learn's (was a ``ZeroWeightError``); the
    weighted mean of them stays refused."""
    skm = pytest.importorskip("sklearn.metrics")
    y, p, w = [0, 1, 1], [0.2, 0.7, 0.4], [1.0, -1.0, 0.0]
    expected = skm.log_loss(y, p, sample_weight=w, normalize=False)
    _close(metrics.log_loss(y, p, sample_weight=w, normalize=False), expected)
    stream = metrics.LogLoss(normalize=False).update(y[:1], p[:1], w[:1])
    stream.merge(metrics.LogLoss(normalize=False).update(y[1:], p[1:], w[1:]))
    _close(stream.result(), expected)
    with pytest.raises(metrics.ZeroWeightError):
        metrics.log_loss(y, p, sample_weight=w)
    zeros = metrics.LogLoss(normalize=False).update(y, p, [0.0, 0.0, 0.0])
    with pytest.raises(metrics.ZeroWeightError, match="every weight is zero"):
        zeros.result()


def test_masked_arrays_are_refused_where_a_value_is_masked() -> None:
    """NumPy's reductions skip masked values: the mean counted them in its divisor, not its sum
    (a number that was neither scikit-learn's nor the rows left's). Unmasked: the values."""
    skm = pytest.importorskip("sklearn.metrics")
    y, p, w = [0, 1, 1], [0.2, 0.7, 0.4], [1.0, 2.0, 3.0]
    one = np.ma.masked_array(p, mask=[True, False, False])
    for name, call in (
        ("y_proba", lambda: metrics.log_loss(y, one)),
        ("y_proba", lambda: metrics.d2_log_loss_score(y, one)),
        ("y_proba", lambda: metrics.brier_score_loss(y, one)),
        ("y_true", lambda: metrics.log_loss(np.ma.masked_array(y, mask=[1, 0, 0]), p)),
        (
            "sample_weight",
            lambda: metrics.log_loss(y, p, sample_weight=np.ma.masked_array(w, mask=[1, 0, 0])),
        ),
        ("y_proba", lambda: metrics.LogLoss().update(y, one)),
    ):
        with pytest.raises(ValueError, match=rf"^{name} is a masked array with 1 masked value"):
            call()
    whole = np.ma.masked_array(p)
    _close(
        metrics.log_loss(y, whole, sample_weight=np.ma.masked_array(w)),
        skm.log_loss(y, p, sample_weight=w),
    )


def test_sklearn_messages_and_categories_for_odd_arguments() -> None:
    """Sparse matrices, text or NaN in ``labels=``, dates as labels, option errors that are
    both ``ValueError`` and ``TypeError`` (scikit-learn's ``InvalidParameterError``), and D²'s
    ``UndefinedMetricWarning`` where scikit-learn's filters can see it."""
    skm = pytest.importorskip("sklearn.metrics")
    sparse = pytest.importorskip("scipy.sparse")
    from sklearn.exceptions import UndefinedMetricWarning

    p2 = np.array([[0.2, 0.8], [0.7, 0.3]])
    with pytest.raises(
        TypeError,
        match=r"^y_true must be an array; got a SciPy sparse csr_matrix of shape \(2, 2\)",
    ):
        metrics.log_loss(sparse.csr_matrix(np.eye(2)), p2)
    with pytest.raises(TypeError, match=r"^y_proba must be an array; got a SciPy sparse"):
        metrics.log_loss([0, 1], sparse.csr_matrix(p2))
    with pytest.raises(
        TypeError, match="labels must be a 1-D sequence of labels; got the str 'ab'"
    ):
        metrics.log_loss(["a", "b"], p2, labels="ab")
    with pytest.raises(
        ValueError, match="labels must not hold a missing label; got nan at position 2"
    ):
        metrics.log_loss([0.0, 1.0], p2, labels=[0.0, 1.0, np.nan])
    days = np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")
    _close(metrics.log_loss(days, [0.2, 0.7]), skm.log_loss(days, [0.2, 0.7]))
    with pytest.raises(ValueError, match="y_true must not hold a missing label; got NaT at row 1"):
        metrics.log_loss(np.array(["2020-01-01", "NaT"], dtype="datetime64[D]"), [0.2, 0.7])
    for call in (
        lambda: metrics.log_loss([0, 1], [0.2, 0.8], normalize=1),
        lambda: metrics.brier_score_loss([0, 1], [0.2, 0.8], pos_label=[1]),
        lambda: metrics.brier_score_loss([0, 1], [0.2, 0.8], scale_by_half=1),
    ):
        for kind in (ValueError, TypeError):
            with pytest.raises(kind):
                call()
    for d2 in (metrics.d2_log_loss_score, metrics.d2_brier_score):
        with pytest.warns(UndefinedMetricWarning, match="two samples") as record:
            assert math.isnan(d2([0], [[0.3, 0.7]], labels=[0, 1]))
        assert record[0].filename == __file__
    with pytest.warns(UndefinedMetricWarning, match="one class") as record:
        assert metrics.d2_brier_score([0, 0], [[0.3, 0.7], [0.4, 0.6]], labels=[0, 1]) == -math.inf
    assert record[0].filename == __file__
    three = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
    with pytest.warns(UserWarning, match="sorted order") as record:
        metrics.d2_brier_score(np.eye(3), three, labels=[2, 1, 0])
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="sorted order") as record:
        metrics.log_loss(
            np.eye(3), [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], labels=[2, 1, 0]
        )
    assert record[0].filename == __file__  # (pointed one frame above the call)


def test_fractional_labels_are_refused_as_sklearn_refuses_continuous_targets() -> None:
    """Probabilities given as ``y_true`` (a common slip) are not class labels: a ``ValueError``
    from every metric, as scikit-learn's "Unknown label type: continuous" (they were classes
    0.2 and 0.7, and a number came out); whole floats stay labels."""
    skm = pytest.importorskip("sklearn.metrics")
    y, p = [0.2, 0.7, 0.7], [0.3, 0.6, 0.8]
    with pytest.raises(ValueError, match="Unknown label type"):
        skm.log_loss(y, p)
    for call in (
        lambda: metrics.log_loss(y, p),
        lambda: metrics.d2_log_loss_score(y, p),
        lambda: metrics.calibration_error(y, p),
        lambda: metrics.log_loss_per_class(y, p),
        lambda: metrics.smooth_calibration_error(y, p),
        lambda: metrics.log_loss(np.array(y, dtype=object), p),  # (pandas' object columns)
    ):
        with pytest.raises(ValueError, match=r"^y_true must hold class labels; got 0\.2 at row 0"):
            call()
    with pytest.raises(ValueError, match=r"^labels must hold class labels; got 0\.2 at position 0"):
        metrics.LogLoss(labels=[0.2, 0.7])
    _close(metrics.log_loss([0.0, 1.0, 1.0], p), skm.log_loss([0.0, 1.0, 1.0], p))


def test_per_class_log_loss_of_a_class_whose_weights_cancel_is_nan() -> None:
    """A class whose weights sum to 0 has no mean: NaN, as a class without rows (was inf)."""
    y, p, w = [0, 1, 1, 0, 1], [0.1, 0.8, 0.6, 0.3, 0.95], [-1.0, 1.0, 1.0, 1.0, 1.0]
    for result in (
        metrics.log_loss_per_class(y, p, sample_weight=w),
        metrics.LogLossPerClass().update(y, p, sample_weight=w).result(),
    ):
        assert math.isnan(result.log_loss[0])
        assert result.count[0] == 0.0
        _close(
            float(result.log_loss[1]), metrics.log_loss([1, 1, 1], [0.8, 0.6, 0.95], labels=[0, 1])
        )
