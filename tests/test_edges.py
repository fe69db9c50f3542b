"""Edge cases: huge and -inf logits, ignored and empty batches, half precision, NaN, laziness."""

from __future__ import annotations

import math

import dask.array as da
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from dask.callbacks import Callback

import crossentropy as ce
from crossentropy import information

INF = math.inf
LN2 = math.log(2.0)


def _values(out, backend):
    assert backend.is_native(out), type(out)
    return backend.to_numpy(out)


# ---------------------------------------------------------------------------------------------
# Logits of magnitude 1e4.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_cross_entropy_exact(backend, dtype):
    x = backend.asarray([[1e4, 0.0], [0.0, 1e4], [1e4, 1e4], [-1e4, 1e4], [-1e4, -1e4]], dtype)
    y = backend.asarray([1, 1, 0, 0, 1])
    out = _values(ce.cross_entropy(x, y, reduction="none"), backend)
    assert out.dtype == dtype
    # 1e4 + ln 2 is rounded to the dtype's spacing at 1e4 before 1e4 is subtracted again.
    atol = 1e4 * np.finfo(dtype).eps
    np.testing.assert_allclose(out, [1e4, 0.0, LN2, 2e4, LN2], rtol=1e-7, atol=atol)
    single = _values(
        ce.cross_entropy(backend.asarray([[1e4, 0.0]], dtype), backend.asarray([1])), backend
    )
    np.testing.assert_allclose(single, 1e4, rtol=1e-7)


def test_huge_logits_cross_entropy_generic_paths(backend):
    # Options that leave torch's ATen fast path: z-loss, empty_mean, soft targets, smoothing.
    x = backend.asarray([[1e4, 0.0], [0.0, -1e4]])
    y = backend.asarray([1, 0])
    out = _values(ce.cross_entropy(x, y, reduction="none", empty_mean=0.0), backend)
    np.testing.assert_allclose(out, [1e4, 0.0], atol=1e-9)
    soft = backend.asarray([[0.0, 1.0], [1.0, 0.0]])
    out = _values(ce.cross_entropy(x, soft, reduction="none"), backend)
    np.testing.assert_allclose(out, [1e4, 0.0], atol=1e-9)
    out = _values(ce.cross_entropy(x, y, reduction="none", label_smoothing=0.2), backend)
    np.testing.assert_allclose(out, [0.9 * 1e4, 0.1 * 1e4], rtol=1e-12)
    out = _values(ce.cross_entropy(x, y, reduction="none", z_loss=1e-4), backend)
    np.testing.assert_allclose(out, [1e4 + 1e-4 * 1e8, 0.0], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_bce_with_logits_exact(backend, dtype):
    x = backend.asarray([1e4, -1e4, 1e4, -1e4, 0.0], dtype)
    t = backend.asarray([0.0, 1.0, 1.0, 0.0, 1.0], dtype)
    out = _values(ce.binary_cross_entropy_with_logits(x, t, reduction="none"), backend)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, [1e4, 1e4, 0.0, 0.0, LN2], rtol=1e-6, atol=1e-30)
    smoothed = ce.binary_cross_entropy_with_logits(x, t, reduction="none", label_smoothing=0.1)
    # uniform smoothing: t' = t * 0.9 + 0.05, so a wrong-signed 1e4 logit costs 0.95e4.
    np.testing.assert_allclose(
        _values(smoothed, backend), [0.95e4, 0.95e4, 0.05e4, 0.05e4, LN2], rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_log_softmax_and_logsumexp(backend, dtype):
    x = backend.asarray([[0.0, 1e4], [1e4, 1e4], [-1e4, -1e4]], dtype)
    ls = _values(ce.log_softmax(x), backend)
    assert ls.dtype == dtype
    atol = 1e4 * np.finfo(dtype).eps  # the spacing of the dtype at 1e4
    np.testing.assert_allclose(ls, [[-1e4, 0.0], [-LN2, -LN2], [-LN2, -LN2]], atol=atol)
    lse = _values(ce.logsumexp(x), backend)
    np.testing.assert_allclose(lse, [1e4, 1e4 + LN2, -1e4 + LN2], rtol=1e-7)
    sm = _values(ce.softmax(x), backend)
    np.testing.assert_allclose(sm, [[0.0, 1.0], [0.5, 0.5], [0.5, 0.5]], atol=1e-7)


# ---------------------------------------------------------------------------------------------
# -inf logits (masks).
# ---------------------------------------------------------------------------------------------


def test_masked_logits_cross_entropy(backend):
    x = np.array([[-INF, 2.0, -INF, 0.5], [1.0, -INF, 3.0, -INF], [0.0, -INF, -INF, -INF]])
    y = np.array([1, 2, 0])
    out = _values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(y), reduction="none"), backend
    )
    expected = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(y), reduction="none")
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        out, [np.logaddexp(2.0, 0.5) - 2.0, np.logaddexp(1.0, 3.0) - 3.0, 0.0], rtol=1e-12
    )


def test_masked_target_logit_gives_inf(backend):
    # The target class is masked out: probability 0, loss +inf (as torch).
    x = backend.asarray([[0.0, -INF, 1.0], [0.0, 1.0, 2.0]])
    out = _values(ce.cross_entropy(x, backend.asarray([1, 2]), reduction="none"), backend)
    assert out[0] == INF
    assert np.isfinite(out[1])


def test_masked_logits_soft_targets_zero_log_zero(backend):
    # Zero target mass on masked classes: 0 * log 0 = 0, the loss is that of the unmasked ones.
    x = backend.asarray([[0.0, -INF, 1.0]])
    t = backend.asarray([[0.3, 0.0, 0.7]])
    out = _values(ce.cross_entropy(x, t, reduction="none"), backend)
    expected = -(0.3 * (0.0 - np.logaddexp(0.0, 1.0)) + 0.7 * (1.0 - np.logaddexp(0.0, 1.0)))
    np.testing.assert_allclose(out, [expected], rtol=1e-12)


def test_all_minus_inf_row_logsumexp_is_minus_inf(backend):
    x = backend.asarray([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    lse = _values(ce.logsumexp(x), backend)
    assert lse[0] == -INF
    np.testing.assert_allclose(lse[1], np.logaddexp(0.0, 1.0))
    lse_keep = _values(ce.logsumexp(x, keepdims=True), backend)
    assert lse_keep.shape == (2, 1)
    assert lse_keep[0, 0] == -INF


def test_all_minus_inf_row_log_softmax_is_nan_like_torch(backend):
    # Documented: a -inf logit gives -inf when its row has a finite entry; an all -inf row has
    # no distribution and gives NaN, as torch.log_softmax (its logsumexp is -inf, not NaN).
    x = np.array([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    ls = _values(ce.log_softmax(backend.asarray(x)), backend)
    assert np.isnan(ls[0]).all()
    assert np.isnan(torch.log_softmax(torch.from_numpy(x[0]), 0).numpy()).all()
    np.testing.assert_allclose(ls[1], [-np.logaddexp(0.0, 1.0), -INF, 1 - np.logaddexp(0.0, 1.0)])


def test_all_minus_inf_row_softmax_is_nan(backend):
    # Documented: an all -inf row has no distribution and gives NaN (as torch.softmax).
    x = np.array([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    sm = _values(ce.softmax(backend.asarray(x)), backend)
    assert np.isnan(sm[0]).all()
    np.testing.assert_allclose(sm[1], torch.softmax(torch.from_numpy(x[1]), 0).numpy())
    assert np.isnan(torch.softmax(torch.from_numpy(x[0]), 0).numpy()).all()


# ---------------------------------------------------------------------------------------------
# All-ignored and empty batches.
# ---------------------------------------------------------------------------------------------

X_IGN = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 4.0]])
Y_IGN = np.array([-100, -100])
W_IGN = np.array([0.2, 1.0, 3.0])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_ignored_matches_torch(backend, reduction, weighted):
    w = W_IGN if weighted else None
    got = ce.cross_entropy(
        backend.asarray(X_IGN),
        backend.asarray(Y_IGN),
        None if w is None else backend.asarray(w),
        reduction=reduction,
    )
    expected = F.cross_entropy(
        torch.from_numpy(X_IGN),
        torch.from_numpy(Y_IGN),
        None if w is None else torch.from_numpy(w),
        reduction=reduction,
    ).numpy()
    np.testing.assert_array_equal(_values(got, backend), expected)
    if reduction == "mean":
        assert np.isnan(expected)
    elif reduction == "sum":
        assert expected == 0.0


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-3}])
def test_all_ignored_empty_mean_zero(backend, kwargs):
    x, y = backend.asarray(X_IGN), backend.asarray(Y_IGN)
    assert np.isnan(_values(ce.cross_entropy(x, y, **kwargs), backend))
    zero = _values(ce.cross_entropy(x, y, empty_mean=0.0, **kwargs), backend)
    assert zero == 0.0
    assert _values(ce.cross_entropy(x, y, reduction="sum", **kwargs), backend) == 0.0
    nll = _values(ce.nll_loss(x, y, empty_mean=0.0), backend)
    assert nll == 0.0
    assert np.isnan(_values(ce.nll_loss(x, y), backend))


def test_all_ignored_custom_ignore_index(backend):
    x = backend.asarray(X_IGN)
    y = backend.asarray([2, 2])
    assert np.isnan(_values(ce.cross_entropy(x, y, ignore_index=2), backend))
    assert _values(ce.cross_entropy(x, y, ignore_index=2, empty_mean=0.0), backend) == 0.0


def test_all_ignored_soft_targets(backend):
    x = backend.asarray(X_IGN)
    t = backend.asarray(np.full(X_IGN.shape, -100.0))
    assert np.isnan(_values(ce.cross_entropy(x, t), backend))
    assert _values(ce.cross_entropy(x, t, empty_mean=0.0), backend) == 0.0
    assert _values(ce.cross_entropy(x, t, reduction="sum"), backend) == 0.0


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"empty_mean": 0.0}])
def test_empty_batch_cross_entropy(backend, kwargs):
    x = backend.asarray(np.zeros((0, 4)))
    y = backend.asarray(np.zeros((0,), dtype=np.int64))
    mean = _values(ce.cross_entropy(x, y, **kwargs), backend)
    if "empty_mean" in kwargs:
        assert mean == 0.0
    else:
        assert np.isnan(mean)
    assert _values(ce.cross_entropy(x, y, reduction="sum", **kwargs), backend) == 0.0
    none = _values(ce.cross_entropy(x, y, reduction="none", **kwargs), backend)
    assert none.shape == (0,)
    assert none.dtype == np.float64
    tx, ty = torch.zeros((0, 4), dtype=torch.float64), torch.zeros((0,), dtype=torch.int64)
    if not kwargs:
        assert np.isnan(F.cross_entropy(tx, ty).item())
        assert F.cross_entropy(tx, ty, reduction="sum").item() == 0.0


def test_empty_batch_soft_targets_and_binary(backend):
    x = backend.asarray(np.zeros((0, 3)))
    t = backend.asarray(np.zeros((0, 3)))
    assert np.isnan(_values(ce.cross_entropy(x, t), backend))
    assert _values(ce.cross_entropy(x, t, reduction="sum"), backend) == 0.0
    for fn in (ce.binary_cross_entropy, ce.binary_cross_entropy_with_logits):
        assert np.isnan(_values(fn(x, t), backend))
        assert _values(fn(x, t, reduction="sum"), backend) == 0.0
        assert _values(fn(x, t, reduction="none"), backend).shape == (0, 3)
    assert np.isnan(_values(ce.kl_div(x, t), backend))


def test_empty_batch_spatial(backend):
    x = backend.asarray(np.zeros((2, 3, 0)))
    y = backend.asarray(np.zeros((2, 0), dtype=np.int64))
    assert np.isnan(_values(ce.cross_entropy(x, y), backend))
    assert _values(ce.cross_entropy(x, y, reduction="none"), backend).shape == (2, 0)


@pytest.mark.parametrize(
    "fn", [ce.softmax, ce.log_softmax, ce.sigmoid, ce.log_sigmoid, ce.softplus]
)
def test_special_functions_on_empty_arrays(backend, fn):
    out = _values(fn(backend.asarray(np.zeros((0, 3)))), backend)
    assert out.shape == (0, 3)
    assert out.dtype == np.float64


def test_logsumexp_and_information_on_empty(backend):
    empty_rows = backend.asarray(np.zeros((0, 3)))
    assert _values(ce.logsumexp(empty_rows), backend).shape == (0,)
    assert _values(ce.entropy(empty_rows), backend).shape == (0,)
    assert _values(ce.kl_divergence(empty_rows, empty_rows), backend).shape == (0,)
    assert _values(ce.xlogy(empty_rows, empty_rows), backend).shape == (0, 3)
    # logsumexp over an empty axis is the log of an empty sum: -inf (as scipy).
    lse = _values(ce.logsumexp(backend.asarray(np.zeros((2, 0)))), backend)
    np.testing.assert_array_equal(lse, [-INF, -INF])
    lse_keep = _values(ce.logsumexp(backend.asarray(np.zeros((2, 0))), keepdims=True), backend)
    np.testing.assert_array_equal(lse_keep, [[-INF], [-INF]])
    # Entropy of an empty distribution is an empty sum: 0.
    np.testing.assert_array_equal(
        _values(ce.entropy(backend.asarray(np.zeros((2, 0)))), backend), [0.0, 0.0]
    )


# ---------------------------------------------------------------------------------------------
# Half precision.
# ---------------------------------------------------------------------------------------------

HALF_CASES = {
    "numpy-float16": ("numpy", np.float16, 2e-3),
    "torch-float16": ("torch", torch.float16, 2e-3),
    "torch-bfloat16": ("torch", torch.bfloat16, 1e-2),
    "jax-bfloat16": ("jax", jnp.bfloat16, 1e-2),
}


def _half(kind, a):
    lib, dtype, _ = HALF_CASES[kind]
    if lib == "numpy":
        return np.asarray(a).astype(dtype)
    if lib == "torch":
        return torch.tensor(np.asarray(a), dtype=dtype)
    return jnp.asarray(np.asarray(a), dtype=dtype)


def _to_float64(x):
    if isinstance(x, torch.Tensor):
        return x.double().numpy()
    return np.asarray(x).astype(np.float64)


def _half_inputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(6, 5))
    probs = rng.uniform(0.02, 0.98, size=(6, 5))
    soft = rng.random((6, 5))
    soft /= soft.sum(axis=1, keepdims=True)
    labels = np.array([0, 4, 2, -100, 1, 3])
    weight = np.array([0.5, 1.0, 2.0, 1.5, 0.25])
    return logits, probs, soft, labels, weight


HALF_FUNCTIONS = {
    "cross_entropy": lambda x, p, s, y, w: ce.cross_entropy(x, y),
    "cross_entropy_weight_smooth": lambda x, p, s, y, w: ce.cross_entropy(
        x, y, w, label_smoothing=0.1
    ),
    "cross_entropy_none": lambda x, p, s, y, w: ce.cross_entropy(x, y, reduction="none"),
    "cross_entropy_soft": lambda x, p, s, y, w: ce.cross_entropy(x, s),
    "cross_entropy_z_loss": lambda x, p, s, y, w: ce.cross_entropy(x, y, z_loss=1e-3),
    "nll_loss": lambda x, p, s, y, w: ce.nll_loss(ce.log_softmax(x, axis=1), y, w),
    "binary_cross_entropy": lambda x, p, s, y, w: ce.binary_cross_entropy(p, s),
    "bce_with_logits": lambda x, p, s, y, w: ce.binary_cross_entropy_with_logits(x, s),
    "kl_div": lambda x, p, s, y, w: ce.kl_div(ce.log_softmax(x), s, reduction="batchmean"),
    "logsumexp": lambda x, p, s, y, w: ce.logsumexp(x),
    "softmax": lambda x, p, s, y, w: ce.softmax(x),
    "log_softmax": lambda x, p, s, y, w: ce.log_softmax(x),
    "entropy": lambda x, p, s, y, w: ce.entropy(s),
    "information_cross_entropy": lambda x, p, s, y, w: information.cross_entropy(s, p),
}


@pytest.mark.parametrize("name", list(HALF_FUNCTIONS))
@pytest.mark.parametrize("kind", list(HALF_CASES))
def test_half_precision_dtype_and_value(kind, name):
    logits, probs, soft, labels, weight = _half_inputs()
    lib, dtype, tol = HALF_CASES[kind]
    floats = [_half(kind, a) for a in (logits, probs, soft)]
    y = {"numpy": np.asarray, "torch": torch.from_numpy, "jax": jnp.asarray}[lib](labels)
    w = _half(kind, weight)
    out = HALF_FUNCTIONS[name](*floats, y, w)
    assert out.dtype == dtype
    assert type(out).__module__.split(".")[0] == type(floats[0]).__module__.split(".")[0]
    # The float32 computation on the same (rounded) values.
    f32 = [_to_float64(a).astype(np.float32) for a in (*floats, w)]
    ref = HALF_FUNCTIONS[name](f32[0], f32[1], f32[2], labels, f32[3])
    assert ref.dtype == np.float32
    np.testing.assert_allclose(_to_float64(out), ref, rtol=tol, atol=tol * 1e-2)


# ---------------------------------------------------------------------------------------------
# Soft targets padded with ignore_index rows.
# ---------------------------------------------------------------------------------------------


def _padded():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 4))
    t = rng.random((5, 4))
    t /= t.sum(axis=1, keepdims=True)
    keep = np.array([True, False, True, True, False])
    t[~keep] = -100.0
    return x, t, keep


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-2}])
def test_soft_targets_padded_rows_ignored(backend, kwargs):
    x, t, keep = _padded()
    bx, bt = backend.asarray(x), backend.asarray(t)
    none = _values(ce.cross_entropy(bx, bt, reduction="none", **kwargs), backend)
    np.testing.assert_array_equal(none[~keep], 0.0)
    kept = ce.cross_entropy(x[keep], t[keep], reduction="none", **kwargs)
    np.testing.assert_allclose(none[keep], kept, rtol=1e-12)
    mean = _values(ce.cross_entropy(bx, bt, **kwargs), backend)
    np.testing.assert_allclose(mean, np.mean(kept), rtol=1e-12)
    total = _values(ce.cross_entropy(bx, bt, reduction="sum", **kwargs), backend)
    np.testing.assert_allclose(total, np.sum(kept), rtol=1e-12)


def test_soft_targets_padded_rows_match_torch_on_kept_rows(backend):
    x, t, keep = _padded()
    w = np.array([0.5, 2.0, 1.0, 1.5])
    got = _values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(t), backend.asarray(w)), backend
    )
    expected = F.cross_entropy(
        torch.from_numpy(x[keep]), torch.from_numpy(t[keep]), torch.from_numpy(w)
    )
    np.testing.assert_allclose(got, expected.item(), rtol=1e-12)


def test_soft_targets_padded_spatial(backend):
    # (N, C, d): padding marks single positions along the class axis.
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 4))
    t = rng.random((2, 3, 4))
    t /= t.sum(axis=1, keepdims=True)
    t[0, :, 1] = -100.0
    t[1, :, 3] = -100.0
    none = _values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(t), reduction="none"), backend
    )
    assert none.shape == (2, 4)
    assert none[0, 1] == 0.0
    assert none[1, 3] == 0.0
    keep = np.ones((2, 4), dtype=bool)
    keep[0, 1] = keep[1, 3] = False
    ref = F.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(np.where(t < 0, 0.0, t)), reduction="none"
    ).numpy()
    np.testing.assert_allclose(none[keep], ref[keep], rtol=1e-12)
    mean = _values(ce.cross_entropy(backend.asarray(x), backend.asarray(t)), backend)
    np.testing.assert_allclose(mean, ref[keep].mean(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# NaN propagation.
# ---------------------------------------------------------------------------------------------


def test_nan_logits_propagate(backend):
    x = np.array([[np.nan, 1.0, 0.0], [1.0, 2.0, 3.0]])
    y = np.array([1, 2])
    got = _values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(y), reduction="none"), backend
    )
    ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(y), reduction="none").numpy()
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    assert np.isnan(_values(ce.cross_entropy(backend.asarray(x), backend.asarray(y)), backend))
    assert np.isnan(
        _values(
            ce.cross_entropy(
                backend.asarray(x), backend.asarray(y), label_smoothing=0.1, empty_mean=0.0
            ),
            backend,
        )
    )
    soft = backend.asarray([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert np.isnan(_values(ce.cross_entropy(backend.asarray(x), soft), backend))
    # nll_loss reads only the target entry: NaN there propagates, NaN elsewhere does not.
    nll = ce.nll_loss(backend.asarray(x), backend.asarray([0, 2]), reduction="none")
    np.testing.assert_array_equal(_values(nll, backend), [np.nan, -3.0])


def test_nan_propagates_in_bce_with_logits_and_kl_div(backend):
    x = backend.asarray([np.nan, 0.5])
    t = backend.asarray([1.0, 0.0])
    got = _values(ce.binary_cross_entropy_with_logits(x, t, reduction="none"), backend)
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], np.logaddexp(0.0, 0.5))
    kl = _values(
        ce.kl_div(backend.asarray([np.nan, -0.5]), backend.asarray([0.3, 0.7]), reduction="none"),
        backend,
    )
    assert np.isnan(kl[0])
    np.testing.assert_allclose(kl[1], 0.7 * (np.log(0.7) + 0.5))


def test_nan_probability_in_binary_cross_entropy(backend):
    # As PyTorch, a NaN probability is refused where values are read; where they are not
    # (lazy arrays, validate=False) it propagates as NaN, never a number.
    x, t = backend.asarray([np.nan, 0.5]), backend.asarray([1.0, 0.0])
    if not backend.lazy:
        with pytest.raises(ValueError, match=r"input must hold probabilities.*nan"):
            ce.binary_cross_entropy(x, t, reduction="none")
    for validate in ([None] if backend.lazy else []) + [False]:
        got = _values(ce.binary_cross_entropy(x, t, reduction="none", validate=validate), backend)
        assert np.isnan(got[0])
        np.testing.assert_allclose(got[1], LN2)


def test_nan_propagates_in_special_and_information(backend):
    x = backend.asarray([[np.nan, 1.0], [0.0, 1.0]])
    for fn in (ce.logsumexp, ce.entropy):
        out = _values(fn(x), backend)
        assert np.isnan(out[0])
        assert not np.isnan(out[1])
    for fn in (ce.softmax, ce.log_softmax):
        out = _values(fn(x), backend)
        assert np.isnan(out[0]).all()
        assert not np.isnan(out[1]).any()


# ---------------------------------------------------------------------------------------------
# Laziness: Dask stays lazy, JAX works under jit.
# ---------------------------------------------------------------------------------------------


class _ComputeCounter(Callback):
    def __init__(self):
        super().__init__()
        self.computes = 0

    def _start(self, dsk):
        self.computes += 1


def _lazy_calls(x, y, soft, p, q):
    return {
        "cross_entropy": lambda: ce.cross_entropy(x, y, label_smoothing=0.1),
        "cross_entropy_soft": lambda: ce.cross_entropy(x, soft),
        "nll_loss": lambda: ce.nll_loss(x, y),
        "bce": lambda: ce.binary_cross_entropy(p, q),
        "bce_with_logits": lambda: ce.binary_cross_entropy_with_logits(x, q),
        "kl_div": lambda: ce.kl_div(x, q),
        "logsumexp": lambda: ce.logsumexp(x),
        "softmax": lambda: ce.softmax(x),
        "log_softmax": lambda: ce.log_softmax(x),
        "sigmoid": lambda: ce.sigmoid(x),
        "entropy": lambda: ce.entropy(p),
        "kl_divergence": lambda: ce.kl_divergence(p, q),
        "js_divergence": lambda: ce.js_divergence(p, q),
        "perplexity": lambda: ce.perplexity(p, q),
    }


def _lazy_inputs():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 4))
    y = np.array([0, 3, 1, -100, 2, 2])
    soft = rng.random((6, 4))
    soft /= soft.sum(axis=1, keepdims=True)
    p = rng.random((6, 4))
    p /= p.sum(axis=1, keepdims=True)
    q = rng.random((6, 4))
    q /= q.sum(axis=1, keepdims=True)
    return x, y, soft, p, q


@pytest.mark.parametrize("name", list(_lazy_calls(*[None] * 5)))
def test_dask_results_stay_lazy(name):
    arrays = _lazy_inputs()
    lazy = [da.from_array(a, chunks=(3, *a.shape[1:])) for a in arrays]
    with _ComputeCounter() as counter:
        out = _lazy_calls(*lazy)[name]()
    assert isinstance(out, da.Array)
    assert counter.computes == 0
    expected = _lazy_calls(*arrays)[name]()
    np.testing.assert_allclose(out.compute(), expected, rtol=1e-12)


def test_jax_cross_entropy_under_jit():
    x, y, _, _, _ = _lazy_inputs()
    w = np.array([0.5, 1.0, 2.0, 1.5])

    def loss(x, y, w):
        return ce.cross_entropy(x, y, w, label_smoothing=0.1)

    jx, jy, jw = jnp.asarray(x), jnp.asarray(y), jnp.asarray(w)
    jitted = jax.jit(loss)(jx, jy, jw)
    eager = loss(jx, jy, jw)
    assert isinstance(jitted, jax.Array)
    assert jitted.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-12)
    ref = F.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w), label_smoothing=0.1
    )
    np.testing.assert_allclose(np.asarray(jitted), ref.item(), rtol=1e-12)


def test_jax_other_losses_under_jit():
    x, y, soft, p, q = _lazy_inputs()
    calls = _lazy_calls
    args = [jnp.asarray(a) for a in (x, y, soft, p, q)]
    for name in (
        "cross_entropy_soft",
        "nll_loss",
        "bce",
        "bce_with_logits",
        "kl_div",
        "log_softmax",
        "entropy",
        "js_divergence",
    ):
        jitted = jax.jit(lambda *a, name=name: calls(*a)[name]())(*args)
        np.testing.assert_allclose(
            np.asarray(jitted), calls(x, y, soft, p, q)[name](), rtol=1e-12, err_msg=name
        )


def test_jax_grad_under_jit_is_softmax_minus_onehot():
    x, y, _, _, _ = _lazy_inputs()
    keep = y != -100
    g = jax.jit(jax.grad(lambda x: ce.cross_entropy(x, jnp.asarray(y), reduction="sum")))(
        jnp.asarray(x)
    )
    sm = np.exp(x - np.logaddexp.reduce(x, axis=1, keepdims=True))
    onehot = np.eye(4)[np.where(keep, y, 0)]
    expected = np.where(keep[:, None], sm - onehot, 0.0)
    np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Lazy backends: an out-of-range label gives NaN instead of raising.
# ---------------------------------------------------------------------------------------------

X_OOR = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.5], [0.0, 0.0, 0.0]])
Y_OOR = np.array([0, 5, -100])
Y_NEG = np.array([0, -3, -100])


@pytest.mark.parametrize("labels", [Y_OOR, Y_NEG], ids=["too-large", "negative"])
def test_dask_out_of_range_label_gives_nan(labels):
    x = da.from_array(X_OOR, chunks=(2, 3))
    y = da.from_array(labels, chunks=2)
    none = ce.cross_entropy(x, y, reduction="none")
    mean = ce.cross_entropy(x, y)
    assert isinstance(none, da.Array)
    got = none.compute()
    assert np.isnan(got[1])
    np.testing.assert_allclose(got[0], np.logaddexp.reduce(X_OOR[0]) - 1.0)
    assert got[2] == 0.0
    assert np.isnan(mean.compute())
    assert np.isnan(ce.nll_loss(x, y).compute())


@pytest.mark.parametrize("labels", [Y_OOR, Y_NEG], ids=["too-large", "negative"])
def test_jit_out_of_range_label_gives_nan(labels):
    fn = jax.jit(lambda x, y: ce.cross_entropy(x, y, reduction="none", label_smoothing=0.1))
    got = np.asarray(fn(jnp.asarray(X_OOR), jnp.asarray(labels)))
    assert np.isnan(got[1])
    assert np.isfinite(got[0])
    assert got[2] == 0.0
    mean = jax.jit(lambda x, y: ce.cross_entropy(x, y))(jnp.asarray(X_OOR), jnp.asarray(labels))
    assert np.isnan(np.asarray(mean))


@pytest.mark.parametrize("offset", [1e2, 1e4, 1e6])
def test_large_logits_lose_no_precision(backend, offset):
    """The log-softmax is formed as (x - m) - log(sum(exp(x - m))): no cancellation of
    x - logsumexp(x) when the logits are large (float32 holds 1e4 + 0.1 to 1e-3 only)."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((64, 20)) + offset).astype(np.float32)
    y = rng.integers(0, 20, 64)
    exact = x.astype(np.float64)
    exact_lsm = exact - exact.max(1, keepdims=True)
    exact_lsm -= np.log(np.exp(exact_lsm).sum(1, keepdims=True))
    got = backend.to_numpy(
        ce.cross_entropy(backend.asarray(x), backend.asarray(y), reduction="none")
    )
    np.testing.assert_allclose(got, -exact_lsm[np.arange(64), y], rtol=1e-5, atol=1e-5)
    got = backend.to_numpy(ce.log_softmax(backend.asarray(x)))
    np.testing.assert_allclose(got, exact_lsm, rtol=1e-5, atol=1e-5)
    if backend.name == "numpy":
        from crossentropy import grad

        _, g = grad.cross_entropy(x, y, reduction="sum")
        expected = np.exp(exact_lsm)
        expected[np.arange(64), y] -= 1
        np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)
