"""``crossentropy.losses.classification``: cross_entropy and nll_loss. Huge and ``-inf`` logits,
all-ignored and empty batches, soft targets padded with ``ignore_index`` rows, NaN, labels out of
range (an error on eager arrays, NaN on Dask and under ``jax.jit``), the checks of target shapes
and dtypes and of class weights, and gradients: ``torch.autograd.gradcheck`` over the options,
JAX against torch, and ``softmax(x) - target``."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

import crossentropy as ce
from _helpers import (
    REDUCTIONS,
    cotangent_for,
    gradcheck_float64,
    jax_grads,
    keyed_rng,
    lazy_inputs,
    lib_labels,
    lib_logits,
    lib_probs,
    lib_scalar,
    native_values,
    to_torch,
    torch_grads,
    uniform_probs,
)

INF = math.inf
LN2 = math.log(2.0)

X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
Y = [1, 2]
W = [1.0, 2.0, 3.0]


# ---------------------------------------------------------------------------------------------
# Huge and -inf logits.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_cross_entropy_exact(backend, dtype):
    x = backend.asarray([[1e4, 0.0], [0.0, 1e4], [1e4, 1e4], [-1e4, 1e4], [-1e4, -1e4]], dtype)
    y = backend.asarray([1, 1, 0, 0, 1])
    out = native_values(ce.cross_entropy(x, y, reduction="none"), backend)
    assert out.dtype == dtype
    # 1e4 + ln 2 is rounded to the dtype's spacing at 1e4 before 1e4 is subtracted again.
    atol = 1e4 * np.finfo(dtype).eps
    np.testing.assert_allclose(out, [1e4, 0.0, LN2, 2e4, LN2], rtol=1e-7, atol=atol)
    single = native_values(
        ce.cross_entropy(backend.asarray([[1e4, 0.0]], dtype), backend.asarray([1])), backend
    )
    np.testing.assert_allclose(single, 1e4, rtol=1e-7)


def test_huge_logits_cross_entropy_generic_paths(backend):
    # Options that leave torch's ATen fast path: z-loss, empty_mean, soft targets, smoothing.
    x = backend.asarray([[1e4, 0.0], [0.0, -1e4]])
    y = backend.asarray([1, 0])
    out = native_values(ce.cross_entropy(x, y, reduction="none", empty_mean=0.0), backend)
    np.testing.assert_allclose(out, [1e4, 0.0], atol=1e-9)
    soft = backend.asarray([[0.0, 1.0], [1.0, 0.0]])
    out = native_values(ce.cross_entropy(x, soft, reduction="none"), backend)
    np.testing.assert_allclose(out, [1e4, 0.0], atol=1e-9)
    out = native_values(ce.cross_entropy(x, y, reduction="none", label_smoothing=0.2), backend)
    np.testing.assert_allclose(out, [0.9 * 1e4, 0.1 * 1e4], rtol=1e-12)
    out = native_values(ce.cross_entropy(x, y, reduction="none", z_loss=1e-4), backend)
    np.testing.assert_allclose(out, [1e4 + 1e-4 * 1e8, 0.0], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("offset", [1e4, 1e7])
def test_z_loss_gradient_of_large_logits_under_autograd(offset):
    """The z-loss's gradient under autograd is 2 z lse softmax to float32's rounding at large
    logits: its log-sum-exp shifts the max out (torch.logsumexp's backward divided by its
    rounded value: 5e-4 off at 1e4, 26 % at 1e7)."""
    torch = pytest.importorskip("torch")
    base = torch.tensor([[0.0, -1.0, -2.0], [0.0, 0.0, -20.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = (base + offset).to(dtype).requires_grad_()
        ce.cross_entropy(x, y, z_loss=1e-4).backward()
        grads.append(x.grad.double())
    torch.testing.assert_close(grads[0], grads[1], rtol=4e-7, atol=1e-12)


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


def test_masked_logits_cross_entropy(backend):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    x = np.array([[-INF, 2.0, -INF, 0.5], [1.0, -INF, 3.0, -INF], [0.0, -INF, -INF, -INF]])
    y = np.array([1, 2, 0])
    out = native_values(
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
    out = native_values(ce.cross_entropy(x, backend.asarray([1, 2]), reduction="none"), backend)
    assert out[0] == INF
    assert np.isfinite(out[1])


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"soft": True}])
def test_plus_inf_logit_gives_nan_like_torch(backend, kwargs):
    # A +inf logit leaves its row without a normaliser: torch's loss is NaN whatever the
    # target (not inf - z_y); an ignored row stays 0 and the other rows are untouched.
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    kwargs = dict(kwargs)
    x = np.array([[INF, 1.0, 2.0], [INF, 1.0, 2.0], [0.0, 1.0, 2.0], [INF, 0.0, 0.0]])
    y = np.array([1, 0, 2, -100])
    t: np.ndarray = y
    if kwargs.pop("soft", False):
        t = np.eye(3)[[1, 0, 2, 0]]
        x, t = x[:3], t[:3]
    got = native_values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(t), reduction="none", **kwargs),
        backend,
    )
    want = F.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(t), reduction="none", **kwargs
    ).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[2:], want[2:], rtol=1e-12)


def test_masked_logits_soft_targets_zero_log_zero(backend):
    # Zero target mass on masked classes: 0 * log 0 = 0, the loss is that of the unmasked ones.
    x = backend.asarray([[0.0, -INF, 1.0]])
    t = backend.asarray([[0.3, 0.0, 0.7]])
    out = native_values(ce.cross_entropy(x, t, reduction="none"), backend)
    expected = -(0.3 * (0.0 - np.logaddexp(0.0, 1.0)) + 0.7 * (1.0 - np.logaddexp(0.0, 1.0)))
    np.testing.assert_allclose(out, [expected], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# All-ignored and empty batches.
# ---------------------------------------------------------------------------------------------


X_IGN = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 4.0]])
Y_IGN = np.array([-100, -100])
W_IGN = np.array([0.2, 1.0, 3.0])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_ignored_matches_torch(backend, reduction, weighted):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
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
    np.testing.assert_array_equal(native_values(got, backend), expected)
    if reduction == "mean":
        assert np.isnan(expected)
    elif reduction == "sum":
        assert expected == 0.0


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-3}])
def test_all_ignored_empty_mean_zero(backend, kwargs):
    x, y = backend.asarray(X_IGN), backend.asarray(Y_IGN)
    assert np.isnan(native_values(ce.cross_entropy(x, y, **kwargs), backend))
    zero = native_values(ce.cross_entropy(x, y, empty_mean=0.0, **kwargs), backend)
    assert zero == 0.0
    # the mean over no target is empty_mean, the z-loss adding nothing (as the fused op)
    five = native_values(ce.cross_entropy(x, y, empty_mean=5.0, **kwargs), backend)
    assert five == 5.0
    assert native_values(ce.cross_entropy(x, y, reduction="sum", **kwargs), backend) == 0.0
    nll = native_values(ce.nll_loss(x, y, empty_mean=0.0), backend)
    assert nll == 0.0
    assert np.isnan(native_values(ce.nll_loss(x, y), backend))


def test_all_ignored_custom_ignore_index(backend):
    x = backend.asarray(X_IGN)
    y = backend.asarray([2, 2])
    assert np.isnan(native_values(ce.cross_entropy(x, y, ignore_index=2), backend))
    assert native_values(ce.cross_entropy(x, y, ignore_index=2, empty_mean=0.0), backend) == 0.0


def test_all_ignored_soft_targets(backend):
    x = backend.asarray(X_IGN)
    t = backend.asarray(np.full(X_IGN.shape, -100.0))
    assert np.isnan(native_values(ce.cross_entropy(x, t), backend))
    assert native_values(ce.cross_entropy(x, t, empty_mean=0.0), backend) == 0.0
    assert native_values(ce.cross_entropy(x, t, reduction="sum"), backend) == 0.0


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"empty_mean": 0.0}])
def test_empty_batch_cross_entropy(backend, kwargs):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    x = backend.asarray(np.zeros((0, 4)))
    y = backend.asarray(np.zeros((0,), dtype=np.int64))
    mean = native_values(ce.cross_entropy(x, y, **kwargs), backend)
    if "empty_mean" in kwargs:
        assert mean == 0.0
    else:
        assert np.isnan(mean)
    assert native_values(ce.cross_entropy(x, y, reduction="sum", **kwargs), backend) == 0.0
    none = native_values(ce.cross_entropy(x, y, reduction="none", **kwargs), backend)
    assert none.shape == (0,)
    assert none.dtype == np.float64
    tx, ty = torch.zeros((0, 4), dtype=torch.float64), torch.zeros((0,), dtype=torch.int64)
    if not kwargs:
        assert np.isnan(F.cross_entropy(tx, ty).item())
        assert F.cross_entropy(tx, ty, reduction="sum").item() == 0.0


def test_empty_batch_soft_targets_and_binary(backend):
    x = backend.asarray(np.zeros((0, 3)))
    t = backend.asarray(np.zeros((0, 3)))
    assert np.isnan(native_values(ce.cross_entropy(x, t), backend))
    assert native_values(ce.cross_entropy(x, t, reduction="sum"), backend) == 0.0
    for fn in (ce.binary_cross_entropy, ce.binary_cross_entropy_with_logits):
        assert np.isnan(native_values(fn(x, t), backend))
        assert native_values(fn(x, t, reduction="sum"), backend) == 0.0
        assert native_values(fn(x, t, reduction="none"), backend).shape == (0, 3)
    assert np.isnan(native_values(ce.kl_div(x, t), backend))


def test_empty_batch_spatial(backend):
    x = backend.asarray(np.zeros((2, 3, 0)))
    y = backend.asarray(np.zeros((2, 0), dtype=np.int64))
    assert np.isnan(native_values(ce.cross_entropy(x, y), backend))
    assert native_values(ce.cross_entropy(x, y, reduction="none"), backend).shape == (2, 0)


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
    none = native_values(ce.cross_entropy(bx, bt, reduction="none", **kwargs), backend)
    np.testing.assert_array_equal(none[~keep], 0.0)
    kept = ce.cross_entropy(x[keep], t[keep], reduction="none", **kwargs)
    np.testing.assert_allclose(none[keep], kept, rtol=1e-12)
    mean = native_values(ce.cross_entropy(bx, bt, **kwargs), backend)
    np.testing.assert_allclose(mean, np.mean(kept), rtol=1e-12)
    total = native_values(ce.cross_entropy(bx, bt, reduction="sum", **kwargs), backend)
    np.testing.assert_allclose(total, np.sum(kept), rtol=1e-12)


def test_soft_targets_padded_rows_match_torch_on_kept_rows(backend):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    x, t, keep = _padded()
    w = np.array([0.5, 2.0, 1.0, 1.5])
    got = native_values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(t), backend.asarray(w)), backend
    )
    expected = F.cross_entropy(
        torch.from_numpy(x[keep]), torch.from_numpy(t[keep]), torch.from_numpy(w)
    )
    np.testing.assert_allclose(got, expected.item(), rtol=1e-12)


def test_soft_targets_padded_spatial(backend):
    # (N, C, d): padding marks single positions along the class axis.
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 4))
    t = rng.random((2, 3, 4))
    t /= t.sum(axis=1, keepdims=True)
    t[0, :, 1] = -100.0
    t[1, :, 3] = -100.0
    none = native_values(
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
    mean = native_values(ce.cross_entropy(backend.asarray(x), backend.asarray(t)), backend)
    np.testing.assert_allclose(mean, ref[keep].mean(), rtol=1e-12)


def test_soft_targets_refuse_ignore_index_that_is_a_probability():
    with pytest.raises(ValueError, match="ignore_index"):
        ce.cross_entropy(X, [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], ignore_index=0)


# ---------------------------------------------------------------------------------------------
# NaN propagation.
# ---------------------------------------------------------------------------------------------


def test_nan_logits_propagate(backend):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    x = np.array([[np.nan, 1.0, 0.0], [1.0, 2.0, 3.0]])
    y = np.array([1, 2])
    got = native_values(
        ce.cross_entropy(backend.asarray(x), backend.asarray(y), reduction="none"), backend
    )
    ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(y), reduction="none").numpy()
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    assert np.isnan(
        native_values(ce.cross_entropy(backend.asarray(x), backend.asarray(y)), backend)
    )
    assert np.isnan(
        native_values(
            ce.cross_entropy(
                backend.asarray(x), backend.asarray(y), label_smoothing=0.1, empty_mean=0.0
            ),
            backend,
        )
    )
    soft = backend.asarray([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert np.isnan(native_values(ce.cross_entropy(backend.asarray(x), soft), backend))
    # nll_loss reads only the target entry: NaN there propagates, NaN elsewhere does not.
    nll = ce.nll_loss(backend.asarray(x), backend.asarray([0, 2]), reduction="none")
    np.testing.assert_array_equal(native_values(nll, backend), [np.nan, -3.0])


# ---------------------------------------------------------------------------------------------
# Labels out of range: an error on eager arrays, NaN on lazy and traced ones.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [3, 7, -1, -99, -101])
def test_label_out_of_range(lib, bad):
    y = lib_labels(lib, (0, bad))
    with pytest.raises(ValueError, match="target") as info:
        ce.cross_entropy(lib_logits(lib), y)
    message = str(info.value)
    assert str(bad) in message
    assert "[0, 3)" in message
    with pytest.raises(ValueError, match="target"):
        ce.nll_loss(lib_logits(lib), y)
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(lib_logits(lib), y, reduction="none")
    # Off ATen's fast path on torch as well.
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(lib_logits(lib), y, empty_mean=0.0, label_smoothing=0.1)


def test_label_out_of_range_with_custom_ignore_index(lib):
    y = lib_labels(lib, (0, -100))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(lib_logits(lib), y, ignore_index=-1)
    # -1 is fine when it is the ignore_index.
    ce.cross_entropy(lib_logits(lib), lib_labels(lib, (0, -1)), ignore_index=-1)


def test_label_out_of_range_one_dimensional(lib):
    # A single sample: input (C,), target ().
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(lib.asarray(np.zeros(3)), lib_scalar(lib, 3, np.int64))


@pytest.mark.parametrize("bad", [3, -1])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_torch_out_of_range_label_is_value_error(fn, bad):
    # ATen raises IndexError (or a RuntimeError); the library must raise ValueError first.
    torch = pytest.importorskip("torch")
    x = torch.randn(4, 3, dtype=torch.float32)
    y = torch.tensor([0, 1, bad, 2])
    with pytest.raises(ValueError, match="target"):
        getattr(ce, fn)(x, y)
    with pytest.raises(ValueError, match="target"):
        getattr(ce, fn)(x, y.int(), weight=torch.ones(3))
    with pytest.raises(ValueError, match="target"):
        getattr(ce, fn)(x.reshape(1, 3, 4).contiguous(), y.reshape(1, 4))
    # an IndexError too, as PyTorch raises: code written for torch's losses catches it
    with pytest.raises(IndexError):
        getattr(torch.nn.functional, fn)(x, y)
    with pytest.raises(IndexError, match=r"^target holds label"):
        getattr(ce, fn)(x, y)


def test_eager_jax_out_of_range_label_raises():
    # Eager JAX arrays are concrete (see _lib.is_concrete): their labels are checked.
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, jnp.asarray([0, 3]))


X_OOR = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.5], [0.0, 0.0, 0.0]])
Y_OOR = np.array([0, 5, -100])
Y_NEG = np.array([0, -3, -100])


@pytest.mark.parametrize("labels", [Y_OOR, Y_NEG], ids=["too-large", "negative"])
def test_dask_out_of_range_label_gives_nan(labels):
    da = pytest.importorskip("dask.array")
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
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    fn = jax.jit(lambda x, y: ce.cross_entropy(x, y, reduction="none", label_smoothing=0.1))
    got = np.asarray(fn(jnp.asarray(X_OOR), jnp.asarray(labels)))
    assert np.isnan(got[1])
    assert np.isfinite(got[0])
    assert got[2] == 0.0
    mean = jax.jit(lambda x, y: ce.cross_entropy(x, y))(jnp.asarray(X_OOR), jnp.asarray(labels))
    assert np.isnan(np.asarray(mean))


def test_jit_with_captured_out_of_range_label_gives_nan():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(X)
    assert np.isnan(float(jax.jit(lambda x: ce.cross_entropy(x, jnp.asarray([1, 7])))(x)))


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes and values of the arguments.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3,), (2, 1), (1, 2), ()])
def test_class_index_target_wrong_shape(lib, shape):
    y = (
        lib_scalar(lib, 0, np.int64)
        if shape == ()
        else lib.asarray(np.zeros(shape, dtype=np.int64))
    )
    with pytest.raises(ValueError, match="target") as info:
        ce.cross_entropy(lib_logits(lib), y)
    assert "(2," in str(info.value)  # names the expected shape
    with pytest.raises(ValueError, match="target"):
        ce.nll_loss(lib_logits(lib), y)


def test_spatial_target_wrong_shape(lib):
    x = lib_logits(lib, (2, 3, 4))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, lib.asarray(np.zeros((2, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, lib.asarray(np.zeros((2, 4), dtype=np.int64)), axis=-1)


def test_integer_target_of_the_input_shape_is_refused_with_a_hint(lib):
    # class probabilities must be floating, as in PyTorch; integers are class indices
    t = lib.asarray(np.array([[0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match="class probabilities must be floating"):
        ce.cross_entropy(lib_logits(lib), t)


@pytest.mark.parametrize("shape", [(2, 2), (2,), (3, 3), (2, 3, 1)])
def test_probability_target_wrong_shape(lib, shape):
    t = lib.asarray(np.full(shape, 0.5))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(lib_logits(lib), t)


def test_zero_dimensional_input(lib):
    with pytest.raises(ValueError, match="input"):
        ce.cross_entropy(lib_scalar(lib, 1.0), lib_scalar(lib, 0, np.int64))


def test_zero_classes_raise():
    with pytest.raises(ValueError, match="at least one class"):
        ce.cross_entropy(np.zeros((2, 0)), [-100, -100])


def test_string_target():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(np.zeros((2, 3)), np.array(["a", "b"]))
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(torch.zeros(2, 3), ["a", "b"])
    with pytest.raises(TypeError, match="input"):
        ce.cross_entropy([["a", "b"]], [0])


def test_bool_target_for_cross_entropy(lib):
    t = lib.asarray(np.array([True, False]))
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(lib_logits(lib), t)
    with pytest.raises(TypeError, match="target"):
        ce.nll_loss(lib_logits(lib), t)


def test_float_target_for_nll_loss(lib):
    with pytest.raises(TypeError, match="target"):
        ce.nll_loss(lib_logits(lib), lib_probs(lib, [[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]]))


def test_cross_entropy_probabilities_out_of_range(lib):
    x = lib.asarray(np.array([[0.2, 0.8], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, lib.asarray(np.array([[1.2, -0.2], [0.5, 0.5]])))
    with pytest.raises(ValueError, match="input"):
        ce.cross_entropy(
            lib.asarray(np.array([[1.2, -0.2], [0.5, 0.5]])),
            lib_labels(lib, (0, 1)),
            from_logits=False,
        )
    with pytest.raises(ValueError, match="target"):
        ce.kl_div(x, lib.asarray(np.array([[1.2, -0.2], [0.5, 0.5]])))


def test_numpy_scalar_hyperparameters_are_accepted():
    a = ce.cross_entropy(
        X, Y, ignore_index=np.int64(-100), label_smoothing=np.float32(0.1), axis=np.int64(1)
    )
    b = ce.cross_entropy(X, Y, label_smoothing=0.1)
    assert float(a) == pytest.approx(float(b), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Class weights.
# ---------------------------------------------------------------------------------------------


def test_negative_class_weight_as_torch(lib):
    # PyTorch takes any real class weights (its OpInfo samples use negative ones): same numbers.
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    w = np.array([1.0, -0.5, 2.0])
    x, y, p = lib_logits(lib), lib_labels(lib), lib_probs(lib)
    tx, ty, tp, tw = (torch.as_tensor(lib.to_numpy(a)) for a in (x, y, p, lib.asarray(w)))
    pairs = [
        (ce.cross_entropy(x, y, lib.asarray(w)), F.cross_entropy(tx, ty, tw)),
        (ce.nll_loss(x, y, lib.asarray(w)), F.nll_loss(tx, ty, tw)),
        (ce.cross_entropy(x, p, lib.asarray(w)), F.cross_entropy(tx, tp, tw)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(lib.to_numpy(ours), theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("y", "w", "smoothing"),
    [
        ([0, 0, 1], [0.0, 0.0, 1.0], 0.1),  # every target of weight 0: NaN (inf before)
        ([0, 0, 0], [0.0, 1.0, 1.0], 0.1),
        ([0, 1, 1], [2.0, -1.0, 1.0], 0.1),  # weights summing to 0: NaN (-inf before)
        ([0, 1, 1], [2.0, -1.0, 1.0], 0.0),  # without smoothing: -inf, as before
        ([0, 1, 2], [1.0, 2.0, 3.0], 0.1),
    ],
)
def test_smoothed_weighted_mean_over_a_zero_weight_is_torchs(lib, y, w, smoothing):
    """PyTorch divides the smoothed loss's two terms by the weights' sum apart: where that sum
    is 0, 0 / 0 + x / 0 is NaN, not the combined term's inf."""
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    z = np.array([[1.0, 0.5, -0.2], [0.2, -1.0, 0.3], [-0.3, 0.8, 0.1]])
    want = F.cross_entropy(
        torch.tensor(z),
        torch.tensor(y),
        weight=torch.tensor(w, dtype=torch.float64),
        label_smoothing=smoothing,
    )
    yl, wl = lib.asarray(np.array(y)), lib.asarray(np.array(w))
    got = ce.cross_entropy(lib.asarray(z), yl, wl, label_smoothing=smoothing)
    np.testing.assert_allclose(lib.to_numpy(got), want.numpy(), rtol=1e-12)
    if lib.name == "numpy":  # and under jax.jit, its smoothing traced
        jax = pytest.importorskip("jax")
        jnp = jax.numpy

        def loss(z, y, w, eps):
            return ce.cross_entropy(z, y, w, label_smoothing=eps)

        traced = jax.jit(loss)(jnp.asarray(z), jnp.asarray(y), jnp.asarray(w), smoothing)
        np.testing.assert_allclose(np.asarray(traced), want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(2,), (4,), (1, 3), ()])
def test_class_weight_wrong_shape(lib, shape):
    w = lib.asarray(np.ones(shape))
    with pytest.raises(ValueError, match="weight") as info:
        ce.cross_entropy(lib_logits(lib), lib_labels(lib), w)
    assert "(3,)" in str(info.value)
    with pytest.raises(ValueError, match="weight"):
        ce.nll_loss(lib_logits(lib), lib_labels(lib), w)


def test_z_loss_is_not_class_weighted():
    # Liger (ops/cross_entropy.py): lse_square_scale * lse^2 averaged over the valid tokens,
    # added to the class-weighted mean of the cross-entropy.
    x = np.asarray(X)
    lse = np.log(np.exp(x).sum(axis=1))
    expected = float(ce.cross_entropy(X, [1, -100], weight=W)) + 1e-2 * lse[0] ** 2
    got = float(ce.cross_entropy(X, [1, -100], weight=W, z_loss=1e-2))
    assert got == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------------------------------------
# Under jax.jit.
# ---------------------------------------------------------------------------------------------


def test_jax_cross_entropy_under_jit():
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x, y, _, _, _ = lazy_inputs()
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


def test_jax_grad_under_jit_is_softmax_minus_onehot():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x, y, _, _, _ = lazy_inputs()
    keep = y != -100
    g = jax.jit(jax.grad(lambda x: ce.cross_entropy(x, jnp.asarray(y), reduction="sum")))(
        jnp.asarray(x)
    )
    sm = np.exp(x - np.logaddexp.reduce(x, axis=1, keepdims=True))
    onehot = np.eye(4)[np.where(keep, y, 0)]
    expected = np.where(keep[:, None], sm - onehot, 0.0)
    np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Gradients: gradcheck over the options, at -inf logits, JAX against torch.
# ---------------------------------------------------------------------------------------------


CE_OPTIONS = {
    "plain": {},
    "generic": {"mean_divisor": "weight"},
    "weight": {"weight": True},
    "weight-generic": {"weight": True, "mean_divisor": "weight"},
    "smoothing": {"label_smoothing": 0.2},
    "weight-smoothing": {"weight": True, "label_smoothing": 0.2},
    "per_sample": {"weight": True, "label_smoothing": 0.2, "weight_mode": "per_sample"},
    "count": {"weight": True, "mean_divisor": "count"},
    "z_loss": {"z_loss": 1e-2},
    "softcap": {"softcap": 2.0},
    "z_loss-softcap-weight": {"z_loss": 1e-2, "softcap": 3.0, "weight": True},
    "probs": {"from_logits": False},
    "probs-keras": {"from_logits": False, "clip": "keras", "weight": True},
    "probs-smoothing": {"from_logits": False, "label_smoothing": 0.1},
}
CE_GRAD_CASES = list(itertools.product(CE_OPTIONS, (False, True), REDUCTIONS))


def _ce_inputs(rng, options, soft, shape=(2, 3, 2)):
    c = shape[1]
    from_logits = options.get("from_logits", True)
    x = rng.standard_normal(shape) * 2 if from_logits else uniform_probs(rng, shape)
    if soft:
        target = uniform_probs(rng, shape)
    else:
        target = rng.integers(0, c, size=(shape[0], *shape[2:]))
        target[0, 0] = -100
    kwargs = dict(options)
    weight = rng.uniform(0.2, 2.0, size=c) if kwargs.pop("weight", False) else None
    return x, target, weight, kwargs


@pytest.mark.parametrize(
    "case", CE_GRAD_CASES, ids=[f"{o}-{'soft' if s else 'index'}-{r}" for o, s, r in CE_GRAD_CASES]
)
def test_gradcheck_cross_entropy(case):
    name, soft, reduction = case
    x, target, weight, kwargs = _ce_inputs(keyed_rng("ce", case), CE_OPTIONS[name], soft)
    w = None if weight is None else to_torch(weight)
    # With soft targets the gradient is checked w.r.t. the logits and the target.
    gradcheck_float64(
        lambda a, t: ce.cross_entropy(a, t, w, reduction=reduction, **kwargs), x, target
    )


@pytest.mark.parametrize("axis", [0, -1])
def test_gradcheck_cross_entropy_other_axes(axis):
    rng = keyed_rng("ce-axis", axis)
    if axis == 0:
        x, y = rng.standard_normal(5), np.asarray(rng.integers(0, 5))
    else:
        x, y = rng.standard_normal((3, 2, 5)), rng.integers(0, 5, size=(3, 2))
    gradcheck_float64(lambda a: ce.cross_entropy(a, to_torch(y), axis=axis, label_smoothing=0.1), x)
    gradcheck_float64(
        lambda a: ce.cross_entropy(a, to_torch(y), axis=axis, mean_divisor="weight"), x
    )


NLL_CASES = list(itertools.product((False, True), ({}, {"mean_divisor": "weight"}), REDUCTIONS))


@pytest.mark.parametrize(
    "case",
    NLL_CASES,
    ids=[f"{'w' if w else 'now'}-{'generic' if e else 'aten'}-{r}" for w, e, r in NLL_CASES],
)
def test_gradcheck_nll_loss(case):
    weighted, extra, reduction = case
    rng = keyed_rng("nll", weighted, reduction, bool(extra))
    x = rng.standard_normal((4, 3, 2))
    y = rng.integers(0, 3, size=(4, 2))
    y[1, 1] = -100
    w = to_torch(rng.uniform(0.2, 2.0, 3)) if weighted else None
    gradcheck_float64(lambda a: ce.nll_loss(a, to_torch(y), w, reduction=reduction, **extra), x)


@pytest.mark.parametrize(
    "kwargs", [{}, {"mean_divisor": "weight"}, {"z_loss": 1e-3}], ids=["aten", "generic", "z"]
)
@pytest.mark.parametrize("soft", [False, True], ids=["index", "soft"])
def test_cross_entropy_gradient_finite_with_minus_inf_logits(soft, kwargs):
    jnp = pytest.importorskip("jax.numpy")
    x = np.array([[1.0, -np.inf, 0.5, 2.0], [-np.inf, 0.3, -np.inf, -1.0]])
    y = np.array([0, 3])
    target = np.eye(4)[y] if soft else y
    expected = scipy.special.softmax(x, axis=1) - np.eye(4)[y]
    tt = to_torch(target)
    value = ce.cross_entropy(to_torch(x), tt, reduction="sum", **kwargs)
    assert np.isfinite(value.item())
    (g,) = torch_grads(lambda a: ce.cross_entropy(a, tt, reduction="sum", **kwargs), [x])
    assert np.all(np.isfinite(g))
    if not kwargs:
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)
    (gj,) = jax_grads(
        lambda a: ce.cross_entropy(a, jnp.asarray(target), reduction="sum", **kwargs), [x]
    )
    np.testing.assert_allclose(gj, g, rtol=1e-12, atol=1e-15)


def _index_data(rng):
    x = rng.standard_normal((5, 4, 3)) * 2
    y = rng.integers(0, 4, size=(5, 3))
    y[0, 0] = y[3, 2] = -100
    w = rng.uniform(0.2, 2.0, 4)
    return x, y, w


JAX_CE_OPTIONS = {
    "weight-smoothing": {"label_smoothing": 0.15},
    "z_loss": {"z_loss": 1e-2},
    "softcap": {"softcap": 2.5, "label_smoothing": 0.1},
    "probs": {"from_logits": False},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(JAX_CE_OPTIONS))
def test_jax_matches_torch_cross_entropy_class_indices(name, reduction):
    jnp = pytest.importorskip("jax.numpy")
    rng = keyed_rng("jax-ce-index", name, reduction)
    x, y, w = _index_data(rng)
    kwargs = JAX_CE_OPTIONS[name]
    if not kwargs.get("from_logits", True):
        x = scipy.special.softmax(x, axis=1)
    cot = cotangent_for(y.shape if reduction == "none" else (), rng)
    (tg,) = torch_grads(
        lambda a: ce.cross_entropy(a, to_torch(y), to_torch(w), reduction=reduction, **kwargs),
        [x],
        cot,
    )
    (jg,) = jax_grads(
        lambda a: ce.cross_entropy(
            a, jnp.asarray(y), jnp.asarray(w), reduction=reduction, **kwargs
        ),
        [x],
        cot,
    )
    np.testing.assert_allclose(jg, tg, rtol=1e-10, atol=1e-13)
    assert np.all(tg[0, :, 0] == 0)  # an ignored element gets no gradient


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(JAX_CE_OPTIONS))
def test_jax_matches_torch_cross_entropy_soft_targets(name, reduction):
    jnp = pytest.importorskip("jax.numpy")
    rng = keyed_rng("jax-ce-soft", name, reduction)
    x = rng.standard_normal((4, 5)) * 2
    t = rng.dirichlet(np.ones(5), size=4)
    w = rng.uniform(0.2, 2.0, 5)
    kwargs = JAX_CE_OPTIONS[name]
    if not kwargs.get("from_logits", True):
        x = scipy.special.softmax(x, axis=1)
    cot = cotangent_for((4,) if reduction == "none" else (), rng)
    tg = torch_grads(
        lambda a, b: ce.cross_entropy(a, b, to_torch(w), reduction=reduction, **kwargs), [x, t], cot
    )
    jg = jax_grads(
        lambda a, b: ce.cross_entropy(a, b, jnp.asarray(w), reduction=reduction, **kwargs),
        [x, t],
        cot,
    )
    for a, b in zip(jg, tg, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Property: the gradient of the summed cross-entropy is softmax(x) - target.
# ---------------------------------------------------------------------------------------------


def _softmax_minus_target_case(rng, n, c, soft, eps, scale):
    x = rng.standard_normal((n, c)) * scale
    if soft:
        target = rng.dirichlet(np.ones(c), size=n)
        dist = target
    else:
        target = rng.integers(0, c, size=n)
        dist = np.eye(c)[target]
    expected = scipy.special.softmax(x, axis=1) - ((1 - eps) * dist + eps / c)
    return x, target, expected


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 8),
    c=st.integers(2, 7),
    soft=st.booleans(),
    eps=st.sampled_from([0.0, 0.1, 0.5]),
    scale=st.sampled_from([0.1, 1.0, 10.0, 100.0]),
)
def test_cross_entropy_gradient_is_softmax_minus_target_torch(seed, n, c, soft, eps, scale):
    x, target, expected = _softmax_minus_target_case(
        np.random.default_rng(seed), n, c, soft, eps, scale
    )
    tt = to_torch(target)
    # ATen delegation (class indices only), then the generic path; soft targets are generic.
    for extra in ({}, {"mean_divisor": "count"}):
        (g,) = torch_grads(
            lambda a, extra=extra: ce.cross_entropy(
                a, tt, reduction="sum", label_smoothing=eps, **extra
            ),
            [x],
        )
        np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("soft", [False, True], ids=["index", "soft"])
def test_cross_entropy_gradient_is_softmax_minus_target_jax(soft, eps, seed):
    # One shape only: JAX compiles its eager operations once per shape.
    jnp = pytest.importorskip("jax.numpy")
    rng = keyed_rng("softmax-minus-target", soft, eps, seed)
    x, target, expected = _softmax_minus_target_case(rng, 4, 5, soft, eps, 10.0**seed)
    (g,) = jax_grads(
        lambda a: ce.cross_entropy(a, jnp.asarray(target), reduction="sum", label_smoothing=eps),
        [x],
    )
    np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# where= (optax's mask), fully masked rows, tuple axes.
# ---------------------------------------------------------------------------------------------

WHERE_X = np.random.default_rng(11).standard_normal((4, 5))
WHERE_Y = np.asarray([0, 3, 1, 4])
CLASS_MASK = np.asarray(
    [[1, 1, 1, 1, 0], [1, 1, 0, 1, 1], [0, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=bool
)
ROW_MASK = np.asarray([True, False, True, True])


def _masked_reference(mask):
    """-log softmax over the unmasked logits, per row; 0 for a row with nothing left."""
    out = []
    for x, y, m in zip(WHERE_X, WHERE_Y, mask, strict=True):
        if not m.any():
            out.append(0.0)
            continue
        out.append(scipy.special.logsumexp(x[m]) - x[y])
    return np.asarray(out)


@pytest.mark.parametrize("shape", ["rows", "logits"])
def test_where_masks_rows_or_logits_on_every_backend(backend, shape):
    mask = ROW_MASK if shape == "rows" else CLASS_MASK
    full = np.broadcast_to(mask[:, None], WHERE_X.shape) if shape == "rows" else mask
    expected = np.where(full.any(axis=1), _masked_reference(full), 0.0)
    x, y, m = (backend.asarray(a) for a in (WHERE_X, WHERE_Y, mask))
    per = native_values(ce.cross_entropy(x, y, where=m, reduction="none"), backend)
    np.testing.assert_allclose(per, expected, rtol=1e-12)
    counted = full.any(axis=1)
    mean = native_values(ce.cross_entropy(x, y, where=m), backend)
    np.testing.assert_allclose(mean, expected[counted].mean(), rtol=1e-12)


def test_where_agrees_with_optax():
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax.numpy")
    for mask in (ROW_MASK, CLASS_MASK):
        ours = ce.cross_entropy(WHERE_X, WHERE_Y, where=mask, reduction="none", axis=-1)
        theirs = optax.losses.softmax_cross_entropy_with_integer_labels(
            jnp.asarray(WHERE_X), jnp.asarray(WHERE_Y), where=jnp.asarray(mask)
        )
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-12)


def test_where_with_smoothing_or_soft_targets_agrees_with_optax():
    # optax leaves a masked class's term out, target or smoothing mass on it included
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax.numpy")
    x, m = jnp.asarray(WHERE_X), jnp.asarray(CLASS_MASK)
    smoothed = optax.smooth_labels(jnp.eye(5)[WHERE_Y], 0.1)
    soft = np.asarray(ce.softmax(np.cos(np.arange(20.0)).reshape(4, 5)))
    for ours, theirs in (
        (
            ce.cross_entropy(
                WHERE_X, WHERE_Y, where=CLASS_MASK, label_smoothing=0.1, reduction="none"
            ),
            optax.losses.softmax_cross_entropy(x, smoothed, where=m),
        ),
        (
            ce.cross_entropy(WHERE_X, soft, where=CLASS_MASK, reduction="none"),
            optax.losses.softmax_cross_entropy(x, jnp.asarray(soft), where=m),
        ),
        (
            ce.cross_entropy(WHERE_X, soft, where=ROW_MASK, reduction="none"),
            optax.losses.softmax_cross_entropy(x, jnp.asarray(soft), where=m | True)
            * jnp.asarray(ROW_MASK),
        ),
    ):
        assert np.isfinite(ours).all()
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-12)


def test_fully_masked_rows_have_zero_loss_and_zero_gradient():
    torch = pytest.importorskip("torch")
    x = torch.tensor(WHERE_X, requires_grad=True)
    loss = ce.cross_entropy(x, torch.tensor(WHERE_Y), where=torch.tensor(CLASS_MASK))
    loss.backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[3] == 0).all()
    assert (x.grad[~torch.tensor(CLASS_MASK)] == 0).all()
    empty = ce.cross_entropy(WHERE_X, WHERE_Y, where=np.zeros(4, bool), empty_mean=0.0)
    assert float(empty) == 0.0


def test_a_row_of_minus_inf_logits_with_a_zero_target_contributes_zero():
    # The 0 log 0 = 0 convention (optax's safe_softmax_cross_entropy): not NaN.
    x = [[10.0, 1.0, -2.0], [-np.inf, -np.inf, -np.inf]]
    t = [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    out = ce.cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(out, [9.000126, 0.0], rtol=1e-6)
    assert not np.signbit(out[1])
    assert np.isfinite(ce.cross_entropy(x, t))


@pytest.mark.parametrize("lib_name", ["torch", "jax"])
def test_a_row_of_minus_inf_logits_with_a_zero_target_has_a_zero_gradient(lib_name):
    """A padded row, masked by adding -inf to its logits and given an all-zero target,
    contributes 0 to the loss and 0 to the gradient (was NaN: 0 * inf in the log-sum-exp's
    gradient), so the other rows' gradients, and a weight shared by all rows, stay finite."""
    rng = keyed_rng("padded-row")
    x = rng.standard_normal((4, 5))
    x[3] = -np.inf
    t = scipy.special.softmax(rng.standard_normal((4, 5)), axis=1)
    t[3] = 0.0
    dense = scipy.special.softmax(x[:3], axis=1) - t[:3]
    if lib_name == "torch":
        tt = to_torch(t)
        (g,) = torch_grads(lambda a: ce.cross_entropy(a, tt, reduction="sum"), [x])
    else:
        jnp = pytest.importorskip("jax.numpy")
        (g,) = jax_grads(lambda a: ce.cross_entropy(a, jnp.asarray(t), reduction="sum"), [x])
    np.testing.assert_allclose(g[:3], dense, rtol=1e-12, atol=1e-15)
    assert np.all(g[3] == 0)


@pytest.mark.parametrize("lib_name", ["torch", "jax", "numpy"])
@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1}, {"softcap": 5.0}, {"z_loss": 1e-3}, "class-mask"]
)
def test_rows_left_out_by_where_get_no_gradient_whatever_their_logits(lib_name, options):
    """A row masked by ``where`` (padding) may hold NaN or inf logits: it adds nothing and
    gets a zero gradient, as optax gives it (was NaN, 0 * NaN through its own terms), and the
    other rows' gradients are those of the finite rows alone."""
    x = np.array([[1.0, 2.0, 3.0], [np.nan] * 3, [np.inf, 0.0, 1.0], [0.5, -1.0, 2.0]])
    y = np.array([0, 1, 2, 1])
    if options == "class-mask":  # a class-shaped where masking the whole rows
        mask, options = np.array([[True] * 3, [False] * 3, [False] * 3, [True, True, False]]), {}
    else:
        mask = np.array([True, False, False, True])
    kept = [0, 3]

    def loss(a, xs, rows):
        return ce.cross_entropy(
            a, xs.asarray(y[rows]), where=xs.asarray(mask[rows]), reduction="sum", **options
        )

    every = slice(None)
    if lib_name == "torch":
        torch = pytest.importorskip("torch")
        (g,) = torch_grads(lambda a: loss(a, torch, every), [x])
        (want,) = torch_grads(lambda a: loss(a, torch, kept), [x[kept]])
    elif lib_name == "jax":
        jnp = pytest.importorskip("jax.numpy")
        (g,) = jax_grads(lambda a: loss(a, jnp, every), [x])
        (want,) = jax_grads(lambda a: loss(a, jnp, kept), [x[kept]])
    else:  # the closed-form gradients of crossentropy.grad

        def closed(a, rows):
            kw = {"where": mask[rows], "reduction": "sum", **options}
            return ce.grad.cross_entropy(a, y[rows], **kw)[1]

        g, want = closed(x, every), closed(x[kept], kept)
    assert np.all(g[[1, 2]] == 0)
    np.testing.assert_allclose(g[kept], want, rtol=1e-12, atol=1e-15)


def test_where_refuses_bad_masks():
    with pytest.raises(TypeError, match="where"):
        ce.cross_entropy(WHERE_X, WHERE_Y, where=np.ones(4))
    with pytest.raises(ValueError, match="where"):
        ce.cross_entropy(WHERE_X, WHERE_Y, where=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"where .* logits only .*log-probabilities"):
        ce.nll_loss(WHERE_X, WHERE_Y, where=CLASS_MASK)
    # a mask of one row of classes, (C,), is of the batch's rank: a mask of samples, so it
    # must have the batch's size (it was taken as a class mask when C != N, a sample mask
    # when C == N); a class mask for every row is (1, C)
    with pytest.raises(ValueError, match=r"where of shape \(5,\) must broadcast to the batch"):
        ce.cross_entropy(WHERE_X, WHERE_Y, where=CLASS_MASK[0], reduction="none")
    np.testing.assert_allclose(
        ce.cross_entropy(WHERE_X, WHERE_Y, where=CLASS_MASK[1:2], reduction="none"),
        _masked_reference(np.repeat(CLASS_MASK[1:2], 4, axis=0)),
        rtol=1e-12,
    )


def test_tuple_axes_hold_flat_class_indices_as_optax():
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax.numpy")
    logits = np.arange(24, dtype=np.float64).reshape(1, 2, 3, 4) / 7
    labels = np.asarray([[5, 11]])
    ours = ce.cross_entropy(logits, labels, axis=(2, 3), reduction="none")
    theirs = optax.losses.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(logits), jnp.asarray(labels), axis=(2, 3)
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-12)


def test_negative_axis_is_the_class_axis_counted_from_the_end():
    x = np.moveaxis(np.asarray(WHERE_X), 1, -1)
    np.testing.assert_allclose(
        ce.cross_entropy(x, WHERE_Y, axis=-1), ce.cross_entropy(WHERE_X, WHERE_Y), rtol=1e-14
    )


def test_float_labels_are_told_to_be_integers(lib):
    x = lib.asarray(np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"got \(2,\) \(class labels must be integers; got dtype"):
        ce.cross_entropy(x, lib.asarray(np.array([1.5, 2.0])))


def test_vmap_of_a_weighted_smoothed_mean():
    """Class weights with label smoothing under torch.func.vmap: ATen's weighted mean selects
    with a mask vmap cannot batch (torch's own loss fails there too); the sum and the divisor
    are taken apart, the same numbers as each example alone."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch.func import grad, vmap

    torch.manual_seed(0)
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (5, 2))
    y[0, 0] = -100
    w = torch.rand(4, dtype=torch.float64) + 0.5
    kw = {"weight": w, "label_smoothing": 0.1}
    got = vmap(lambda a, b: ce.cross_entropy(a, b, **kw))(x, y)
    want = torch.stack([F.cross_entropy(x[i], y[i], **kw) for i in range(5)])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = vmap(grad(lambda a, b: ce.cross_entropy(a, b, **kw)))(x, y)
    for i in range(5):
        xi = x[i].clone().requires_grad_(True)
        F.cross_entropy(xi, y[i], **kw).backward()
        torch.testing.assert_close(g[i], xi.grad, rtol=1e-12, atol=1e-12)


def test_complex_class_weights_with_probability_targets_are_refused_on_torch():
    """ATen takes a complex weight with probability targets (a complex loss came back): the
    call is not delegated to it, and the weight is refused as on every other path."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6]], dtype=torch.float64)
    p = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], dtype=torch.float64)
    w = torch.tensor([1 + 5j, 2 - 3j, 3 + 0j])
    for target in (p, torch.tensor([1, 2])):
        with pytest.raises(TypeError, match="weight must have a real"):
            ce.cross_entropy(x, target, weight=w)


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_wide_unsigned_torch_labels_are_labels(dtype):
    """PyTorch compares no uint16/32/64 tensor on the CPU ("ge_cpu" not implemented): such
    labels are read as int64, so every loss takes them and one out of range is named; a
    uint64 label of 2**63 or more stays out of range, whatever ignore_index it wraps to."""
    torch = pytest.importorskip("torch")
    kind = getattr(torch, dtype)
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6]], dtype=torch.float64)
    good, bad = torch.tensor([1, 2]), torch.tensor([1, 7])
    calls = {
        "cross_entropy": lambda t: ce.cross_entropy(x, t),
        "nll_loss": lambda t: ce.nll_loss(x.log_softmax(1), t),
        "focal_loss": lambda t: ce.focal_loss(x, t),
        "dice_loss": lambda t: ce.dice_loss(x, t, mode="multiclass"),
    }
    for name, call in calls.items():
        torch.testing.assert_close(call(good.to(kind)), call(good), msg=name)
        with pytest.raises(ValueError, match="target holds label 7 at index"):
            call(bad.to(kind))
    if dtype == "uint64":
        wrapped = torch.tensor([-100, 1]).to(kind)  # 2**64 - 100
        with pytest.raises(ValueError, match=r"target holds label 18446744073709551516 at index"):
            ce.cross_entropy(x, wrapped)
