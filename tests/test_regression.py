"""Regression losses: live parity with ``torch.nn.functional`` 2.13 (values and gradients),
recorded worked values of other libraries, log-cosh and RMSE numerics, gradcheck, every
backend, and bad input.
"""

from __future__ import annotations

import itertools
import math
import warnings
import zlib

import numpy as np
import pytest

import crossentropy as ce

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

RTOL = 1e-12
ATOL = 1e-13
REDUCTIONS = ("none", "mean", "sum", "batchmean")
SEEDS = (0, 1, 2)

# name -> (our function, torch function, keyword of the loss, torch takes weight=, default rule)
LOSSES = {
    "mse": (ce.mse_loss, F.mse_loss, {}, True, "weight"),
    "l1": (ce.l1_loss, F.l1_loss, {}, True, "weight"),
    "huber_d0.5": (ce.huber_loss, F.huber_loss, {"delta": 0.5}, True, "count"),
    "huber_d1": (ce.huber_loss, F.huber_loss, {"delta": 1.0}, True, "count"),
    "huber_d2.5": (ce.huber_loss, F.huber_loss, {"delta": 2.5}, True, "count"),
    "smooth_l1_b0": (ce.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.0}, False, "count"),
    "smooth_l1_b0.5": (ce.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.5}, False, "count"),
    "smooth_l1_b1": (ce.smooth_l1_loss, F.smooth_l1_loss, {"beta": 1.0}, False, "count"),
    "smooth_l1_b2": (ce.smooth_l1_loss, F.smooth_l1_loss, {"beta": 2.0}, False, "count"),
}


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def _np(a):
    if isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    return np.asarray(a)


def _close(actual, desired, rtol=RTOL, atol=ATOL):
    actual, desired = _np(actual), _np(desired)
    assert actual.shape == desired.shape
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


def _shape(rng):
    ndim = int(rng.integers(0, 5))
    return tuple(int(s) for s in rng.integers(1, 6, size=ndim))


def _errors(rng, shape):
    """Errors over several scales, so that both branches of Huber / smooth L1 occur."""
    scale = rng.choice([0.1, 0.5, 1.0, 2.0, 5.0], size=shape)
    return rng.standard_normal(shape) * scale


def _torch_reduce(per, reduction, weight=None, divisor="count"):
    """Reduce an element-wise torch loss with torch's rules (``batchmean`` = sum / N)."""
    if weight is not None:
        per = per * weight
    if reduction == "none":
        return per
    total = per.sum()
    if reduction == "sum":
        return total
    if reduction == "batchmean":
        return total / (per.shape[0] if per.ndim else 1)
    if weight is not None and divisor == "weight":
        return total / weight.sum()
    return total / per.numel()


def _grads(out, leaves, cotangent):
    grads = torch.autograd.grad((out * cotangent).sum(), leaves, allow_unused=False)
    return [g.numpy() for g in grads]


# ---------------------------------------------------------------------------------------------
# live parity with torch 2.13
# ---------------------------------------------------------------------------------------------

PARITY_CASES = list(itertools.product(LOSSES, REDUCTIONS, SEEDS, (False, True)))


@pytest.mark.parametrize(
    ("name", "reduction", "seed", "weighted"),
    PARITY_CASES,
    ids=[f"{n}-{r}-s{s}-{'w' if w else 'now'}" for n, r, s, w in PARITY_CASES],
)
def test_parity_with_torch(name, reduction, seed, weighted):
    ours, theirs, kw, torch_weight, _ = LOSSES[name]
    rng = _rng("parity", name, reduction, seed, weighted)
    shape = _shape(rng)
    x = rng.standard_normal(shape) * 2
    t = x - _errors(rng, shape)
    w = rng.uniform(0.0, 3.0, size=shape) if weighted else None
    if weighted and np.ndim(w):
        w.flat[0] = 0.0  # a zero weight
    cot = _t(rng.standard_normal(shape))

    xs, ts = _t(x, True), _t(t, True)
    leaves = [xs, ts]
    ws = None
    if weighted:
        ws = _t(w, True)
        leaves.append(ws)
    got = ours(xs, ts, reduction=reduction, weight=ws, **kw)
    assert isinstance(got, torch.Tensor)
    got_grads = _grads(got, leaves, cot)

    xr, tr = _t(x, True), _t(t, True)
    ref_leaves = [xr, tr]
    wr = None
    if weighted:
        wr = _t(w, True)
        ref_leaves.append(wr)
    if weighted and not torch_weight:
        # smooth_l1 has no torch weight: torch's element-wise loss, weighted, mean over N
        ref = _torch_reduce(theirs(xr, tr, reduction="none", **kw), reduction, wr, "count")
    elif reduction == "batchmean":
        kwargs = {"weight": wr} if weighted else {}
        ref = theirs(xr, tr, reduction="sum", **kw, **kwargs) / (x.shape[0] if x.ndim else 1)
    elif weighted:
        ref = theirs(xr, tr, reduction=reduction, weight=wr, **kw)
    else:
        ref = theirs(xr, tr, reduction=reduction, **kw)
    ref_grads = _grads(ref, ref_leaves, cot)

    _close(got, ref)
    for g, r in zip(got_grads, ref_grads, strict=True):
        _close(g, r)
    # NumPy (generic path, no autograd) gives the same value
    _close(ours(x, t, reduction=reduction, weight=w, **kw), ref)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("divisor", ["auto", "weight", "count"])
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_divisor_switches_the_weighted_mean(name, divisor, seed):
    ours, theirs, kw, _, default = LOSSES[name]
    rng = _rng("divisor", name, divisor, seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    x = rng.standard_normal(shape)
    t = x - _errors(rng, shape)
    w = rng.uniform(0.1, 4.0, size=shape)
    cot = _t(rng.standard_normal(()))
    rule = default if divisor == "auto" else divisor

    xs, ws = _t(x, True), _t(w, True)
    got = ours(xs, _t(t), weight=ws, mean_divisor=divisor, **kw)
    xr, wr = _t(x, True), _t(w, True)
    ref = _torch_reduce(theirs(xr, _t(t), reduction="none", **kw), "mean", wr, rule)
    _close(got, ref)
    for g, r in zip(_grads(got, [xs, ws], cot), _grads(ref, [xr, wr], cot), strict=True):
        _close(g, r)
    if divisor == "auto" and name.startswith(("mse", "l1", "huber")):
        # the default is exactly torch 2.13's own weighted mean
        _close(got, theirs(_t(x), _t(t), weight=_t(w), **kw))
    # the divisors really differ when Σw ≠ N
    other = "count" if rule == "weight" else "weight"
    assert not np.isclose(float(ours(x, t, weight=w, mean_divisor=other, **kw)), float(_np(got)))


def test_default_weighted_means_are_torchs():
    """torch 2.13: weighted mse/l1 mean ÷ Σw, weighted huber mean ÷ N."""
    rng = _rng("defaults")
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    w = rng.uniform(0.5, 2.0, size=(4, 3))
    n, sw = x.size, w.sum()
    sq, ab = (x - t) ** 2, np.abs(x - t)
    np.testing.assert_allclose(ce.mse_loss(x, t, weight=w), (w * sq).sum() / sw, rtol=1e-14)
    np.testing.assert_allclose(ce.l1_loss(x, t, weight=w), (w * ab).sum() / sw, rtol=1e-14)
    hub = np.where(ab <= 1.0, 0.5 * sq, ab - 0.5)
    np.testing.assert_allclose(ce.huber_loss(x, t, weight=w), (w * hub).sum() / n, rtol=1e-14)
    for ours, theirs in ((ce.mse_loss, F.mse_loss), (ce.l1_loss, F.l1_loss)):
        _close(ours(x, t, weight=w), theirs(_t(x), _t(t), weight=_t(w)))
    _close(ce.huber_loss(x, t, weight=w), F.huber_loss(_t(x), _t(t), weight=_t(w)))


@pytest.mark.parametrize("name", [n for n, case in LOSSES.items() if case[3]])
def test_an_input_that_broadcasts_has_torchs_weighted_mean(name):
    """An input smaller than the target (N, 1) against (N, 3), with one weight per input
    element (PyTorch takes no other): PyTorch divides by the weights as given, not as
    broadcast with the target; values and gradients are its, every reduction."""
    ours, theirs, kw, _, _ = LOSSES[name]
    rng = _rng("input broadcasts", name)
    x = rng.standard_normal((4, 1)) * 2
    t, w = rng.standard_normal((4, 3)), rng.uniform(0.5, 2.0, size=(4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about the size mismatch
        for reduction in ("none", "mean", "sum"):
            xt = _t(x).requires_grad_(True)
            want = theirs(xt, _t(t), weight=_t(w), reduction=reduction, **kw)
            _close(ours(x, t, weight=w, reduction=reduction, **kw), want)
            xo = _t(x).requires_grad_(True)
            got = ours(xo, _t(t), weight=_t(w), reduction=reduction, **kw)
            _close(got, want)
            (g_ours,) = torch.autograd.grad(got.sum(), xo)
            (g_torch,) = torch.autograd.grad(want.sum(), xt)
            _close(g_ours, g_torch)


def test_other_weighted_means_of_an_input_that_broadcasts_are_over_the_losses():
    """PyTorch's divisor (each weight once) is mse_loss's and l1_loss's default only: with
    ``mean_divisor="weight"``, and for log_cosh and rmse, a weight of ones is no weight."""
    rng = _rng("broadcast, over the losses")
    x, t, ones = rng.standard_normal((4, 1)), rng.standard_normal((4, 3)), np.ones((4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the size mismatch
        for fn, kw in (
            (ce.mse_loss, {"mean_divisor": "weight"}),
            (ce.l1_loss, {"mean_divisor": "weight"}),
            (ce.huber_loss, {"mean_divisor": "weight"}),
            (ce.log_cosh_loss, {}),
        ):
            _close(fn(x, t, weight=ones, **kw), fn(x, t))
        _close(
            ce.rmse_loss(x, t, weight=ones) ** 2,
            ce.mse_loss(x, t, weight=ones, mean_divisor="weight"),
        )
        _close(ce.mse_loss(x, t, weight=ones), 3 * ce.mse_loss(x, t))  # PyTorch's: each weight once


@pytest.mark.parametrize("name", list(LOSSES))
def test_batchmean_is_sum_over_first_axis(name):
    ours, _, kw, _, _ = LOSSES[name]
    rng = _rng("batchmean", name)
    x, t = rng.standard_normal((5, 3, 2)), rng.standard_normal((5, 3, 2))
    w = rng.uniform(0.1, 2.0, size=(5, 3, 2))
    for weight in (None, w):
        total = ours(x, t, reduction="sum", weight=weight, **kw)
        _close(ours(x, t, reduction="batchmean", weight=weight, **kw), total / 5)


@pytest.mark.parametrize("name", list(LOSSES))
def test_target_broadcasts_as_in_torch(name):
    ours, theirs, kw, _, _ = LOSSES[name]
    rng = _rng("broadcast", name)
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((1, 3)) * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about the size mismatch
        for reduction in ("none", "mean", "sum"):
            _close(
                ours(x, t, reduction=reduction, **kw),
                theirs(_t(x), _t(t), reduction=reduction, **kw),
            )


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_huge_residuals(name, sign):
    ours, theirs, kw, _, _ = LOSSES[name]
    rng = _rng("huge", name, sign)
    x = rng.standard_normal(6)
    t = x - sign * 1e6 * rng.uniform(0.5, 2.0, size=6)
    for reduction in ("none", "mean", "sum"):
        xs, xr = _t(x, True), _t(x, True)
        got = ours(xs, _t(t), reduction=reduction, **kw)
        ref = theirs(xr, _t(t), reduction=reduction, **kw)
        assert np.all(np.isfinite(_np(got)))
        _close(got, ref)
        cot = _t(np.ones(got.shape))
        (g,), (r,) = _grads(got, [xs], cot), _grads(ref, [xr], cot)
        assert np.all(np.isfinite(g))
        _close(g, r)


@pytest.mark.parametrize("name", list(LOSSES))
def test_exact_zero_error(name):
    ours, theirs, kw, _, _ = LOSSES[name]
    x = np.array([[0.0, 1.5, -2.0], [3.0, 0.25, -1e6]])
    for reduction in ("none", "mean", "sum"):
        xs, xr = _t(x, True), _t(x, True)
        got = ours(xs, _t(x), reduction=reduction, **kw)
        ref = theirs(xr, _t(x), reduction=reduction, **kw)
        _close(got, np.zeros(got.shape))
        _close(got, ref)
        cot = _t(np.ones(got.shape))
        (g,), (r,) = _grads(got, [xs], cot), _grads(ref, [xr], cot)
        _close(g, np.zeros_like(x))
        _close(g, r)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_zero_error_gradient_on_jax_is_torchs(name, weighted):
    """JAX's autodiff of the loss where prediction equals target: 0, as torch's (JAX takes
    the derivative of ``abs`` at 0 as 1, which made L1's gradient 1/n there)."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    ours, theirs, kw, _, _ = LOSSES[name]
    x = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]])
    w = np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 4.0]]) if weighted else None
    extra = {} if w is None else {"weight": jnp.asarray(w)}
    for reduction in ("mean", "sum"):
        g = jax.grad(lambda a, r=reduction: ours(a, jnp.asarray(x), reduction=r, **kw, **extra))
        got = np.asarray(g(jnp.asarray(x)))
        xr = _t(x, True)
        ref = ours(xr, _t(x), reduction=reduction, **kw, **({} if w is None else {"weight": _t(w)}))
        (want,) = _grads(ref, [xr], _t(1.0))
        np.testing.assert_array_equal(got, np.zeros_like(x))
        np.testing.assert_array_equal(got, want)
    if not weighted:  # and equal to torch's own
        xt = _t(x, True)
        (want,) = _grads(theirs(xt, _t(x), **kw), [xt], _t(1.0))
        np.testing.assert_array_equal(want, np.zeros_like(x))


# ---------------------------------------------------------------------------------------------
# recorded worked values (ecosystem-conventions.md, worked example 10)
# ---------------------------------------------------------------------------------------------

PRED = [0.0, 0.0, 0.0, 0.0]
TARGET = [0.5, 1.5, -3.0, 0.2]
W = [1.0, 2.0, 3.0, 4.0]


def test_worked_example_10():
    # torch 2.13: F.huber_loss(zeros(4), tensor([.5, 1.5, -3, .2]), delta=1.0) -> 0.91125
    assert float(ce.huber_loss(PRED, TARGET)) == pytest.approx(0.91125, rel=1e-14)
    # torch 2.13: F.huber_loss(..., delta=2.0) -> 1.3175
    assert float(ce.huber_loss(PRED, TARGET, delta=2.0)) == pytest.approx(1.3175, rel=1e-14)
    # torch 2.13: F.smooth_l1_loss(..., beta=2.0) -> 0.65875
    assert float(ce.smooth_l1_loss(PRED, TARGET, beta=2.0)) == pytest.approx(0.65875, rel=1e-14)
    # torch 2.13: F.mse_loss(..., weight=tensor([1., 2, 3, 4])) -> 3.191 (÷ Σw)
    assert float(ce.mse_loss(PRED, TARGET, weight=W)) == pytest.approx(3.191, rel=1e-14)
    # torch 2.13: F.l1_loss(..., weight=tensor([1., 2, 3, 4])) -> 1.33 (÷ Σw)
    assert float(ce.l1_loss(PRED, TARGET, weight=W)) == pytest.approx(1.33, rel=1e-14)
    # torch 2.13: F.huber_loss(..., weight=tensor([1., 2, 3, 4])) -> 2.42625 (÷ N)
    assert float(ce.huber_loss(PRED, TARGET, weight=W)) == pytest.approx(2.42625, rel=1e-14)
    # keras 3.15.1: keras.losses.LogCosh()(target, pred) / optax 0.2.8:
    # optax.losses.log_cosh(pred, target).mean() -> 0.8261878135974666
    assert float(ce.log_cosh_loss(PRED, TARGET)) == pytest.approx(0.8261878135974666, rel=1e-13)


def test_worked_example_10_live_torch():
    p, y, w = _t(PRED), _t(TARGET), _t(W)
    _close(ce.huber_loss(PRED, TARGET), F.huber_loss(p, y))
    _close(ce.huber_loss(PRED, TARGET, delta=2.0), F.huber_loss(p, y, delta=2.0))
    _close(ce.smooth_l1_loss(PRED, TARGET, beta=2.0), F.smooth_l1_loss(p, y, beta=2.0))
    _close(ce.mse_loss(PRED, TARGET, weight=W), F.mse_loss(p, y, weight=w))
    _close(ce.l1_loss(PRED, TARGET, weight=W), F.l1_loss(p, y, weight=w))
    _close(ce.huber_loss(PRED, TARGET, weight=W), F.huber_loss(p, y, weight=w))


def test_smooth_l1_is_huber_over_beta():
    rng = _rng("smooth-huber")
    x, t = rng.standard_normal(20) * 3, rng.standard_normal(20)
    for beta in (0.25, 1.0, 3.0):
        _close(
            ce.smooth_l1_loss(x, t, beta=beta, reduction="none"),
            _np(ce.huber_loss(x, t, delta=beta, reduction="none")) / beta,
        )
    _close(ce.smooth_l1_loss(x, t, beta=0.0, reduction="none"), np.abs(x - t))


# ---------------------------------------------------------------------------------------------
# log-cosh
# ---------------------------------------------------------------------------------------------


def test_log_cosh_matches_numpy():
    rng = _rng("logcosh")
    e = np.concatenate([rng.standard_normal(50) * 5, [0.0, 1e-3, -1e-3, 30.0, -30.0, 300.0]])
    x = rng.standard_normal(e.shape)
    ref = np.log(np.cosh(e))
    _close(ce.log_cosh_loss(x + e, x, reduction="none"), ref, rtol=1e-12, atol=1e-15)
    _close(ce.log_cosh_loss(x + e, x), ref.mean(), rtol=1e-12, atol=1e-15)
    _close(ce.log_cosh_loss(x + e, x, reduction="sum"), ref.sum(), rtol=1e-12, atol=1e-15)
    w = rng.uniform(0.1, 2.0, size=e.shape)
    _close(ce.log_cosh_loss(x + e, x, weight=w), (w * ref).sum() / w.sum(), rtol=1e-12)
    _close(
        ce.log_cosh_loss(x + e, x, weight=w, mean_divisor="count"),
        (w * ref).sum() / e.size,
        rtol=1e-12,
    )


@pytest.mark.parametrize("magnitude", [1e4, 1e6, 1e300])
def test_log_cosh_far_out_is_abs_minus_log2(magnitude):
    e = np.array([magnitude, -magnitude])
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(np.log(np.cosh(e))))  # the naive formula overflows
    got = _np(ce.log_cosh_loss(e, np.zeros(2), reduction="none"))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, np.abs(e) - math.log(2.0), rtol=1e-15)
    xs = _t(e, True)
    (g,) = torch.autograd.grad(ce.log_cosh_loss(xs, _t(np.zeros(2))), [xs])
    np.testing.assert_allclose(g.numpy(), [0.5, -0.5], rtol=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_cosh_gradient_is_tanh_over_n(seed):
    rng = _rng("logcosh-grad", seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    x, t = rng.standard_normal(shape) * 3, rng.standard_normal(shape)
    xs, ts = _t(x, True), _t(t, True)
    gx, gt = torch.autograd.grad(ce.log_cosh_loss(xs, ts), [xs, ts])
    expected = np.tanh(x - t) / x.size
    _close(gx, expected, rtol=1e-12, atol=1e-15)
    _close(gt, -expected, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# RMSE
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_rmse_is_sqrt_of_mse(seed):
    rng = _rng("rmse", seed)
    shape = _shape(rng)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    w = rng.uniform(0.1, 3.0, size=shape)
    _close(ce.rmse_loss(x, t), np.sqrt(_np(ce.mse_loss(x, t))))
    _close(ce.rmse_loss(x, t, weight=w), np.sqrt(_np(ce.mse_loss(x, t, weight=w))))
    _close(ce.rmse_loss(x, t), np.sqrt(np.mean((x - t) ** 2)))
    # a scalar RMSE is left as is by the reduction
    for reduction in REDUCTIONS:
        _close(ce.rmse_loss(x, t, reduction=reduction), ce.rmse_loss(x, t))


@pytest.mark.parametrize(
    ("reduction", "weighted"), list(itertools.product(REDUCTIONS, (False, True)))
)
def test_rmse_per_row(reduction, weighted):
    rng = _rng("rmse-row", reduction, weighted)
    x, t = rng.standard_normal((5, 4, 7)), rng.standard_normal((5, 4, 7))
    w = rng.uniform(0.1, 3.0, size=x.shape) if weighted else None
    rows = np.sqrt(
        ((x - t) ** 2 * (1.0 if w is None else w)).sum(-1) / (7 if w is None else w.sum(-1))
    )
    ref = {
        "none": rows,
        "mean": rows.mean(),
        "sum": rows.sum(),
        "batchmean": rows.sum() / 5,
    }[reduction]
    _close(ce.rmse_loss(x, t, axis=-1, reduction=reduction, weight=w), ref)
    # torch autograd of sqrt(F.mse_loss(...)) row by row
    xs, xr = _t(x, True), _t(x, True)
    got = ce.rmse_loss(xs, _t(t), axis=-1, reduction=reduction, weight=None if w is None else _t(w))
    per = [
        torch.sqrt(F.mse_loss(xr[i, j], _t(t[i, j]), weight=None if w is None else _t(w[i, j])))
        for i in range(5)
        for j in range(4)
    ]
    rows_t = torch.stack(per).reshape(5, 4)
    ref_t = _torch_reduce(rows_t, reduction)
    _close(got, ref_t)
    cot = _t(rng.standard_normal(got.shape))
    _close(_grads(got, [xs], cot)[0], _grads(ref_t, [xr], cot)[0])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_rmse_gradient_matches_sqrt_of_torch_mse(seed, weighted):
    rng = _rng("rmse-grad", seed, weighted)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    w = rng.uniform(0.1, 3.0, size=shape) if weighted else None
    xs, ts, xr, tr = _t(x, True), _t(t, True), _t(x, True), _t(t, True)
    leaves, ref_leaves = [xs, ts], [xr, tr]
    ws = wr = None
    if weighted:
        ws, wr = _t(w, True), _t(w, True)
        leaves.append(ws)
        ref_leaves.append(wr)
    got = ce.rmse_loss(xs, ts, weight=ws)
    ref = torch.sqrt(F.mse_loss(xr, tr, weight=wr) if weighted else F.mse_loss(xr, tr))
    _close(got, ref)
    one = _t(1.0)
    for g, r in zip(_grads(got, leaves, one), _grads(ref, ref_leaves, one), strict=True):
        _close(g, r)


@pytest.mark.parametrize("size", [1e200, 1e-300, 1e20])
def test_rmse_of_huge_and_tiny_errors_neither_overflows_nor_underflows(size):
    """Errors of 1e200 (squares past float64) and 1e-300 (squares below it), and 1e20 in
    float32: the root mean square and its gradient as for errors of 1, scaled (squaring
    first gave inf or 0, and gradients of 0 or 1e-300)."""
    dtype = torch.float32 if size == 1e20 else torch.float64
    unit = torch.tensor([[3.0, -4.0], [1.0, 1.0]], dtype=dtype)
    want = ce.rmse_loss(unit, torch.zeros_like(unit), axis=1, reduction="none")
    x = (unit * size).requires_grad_()
    got = ce.rmse_loss(x, torch.zeros_like(x), axis=1, reduction="none")
    torch.testing.assert_close(got / size, want)
    (g,) = torch.autograd.grad(got.sum(), [x])
    (g1,) = torch.autograd.grad(
        ce.rmse_loss(unit.requires_grad_(), torch.zeros_like(unit), axis=1).sum() * 2, [unit]
    )
    torch.testing.assert_close(g, g1)
    assert float(ce.rmse_loss(np.array([size, -size]), np.zeros(2))) == pytest.approx(size)


def test_rmse_gradient_at_zero_error_is_zero():
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.5, 0.5]])
    xs, ts = _t(x, True), _t(x, True)
    out = ce.rmse_loss(xs, ts)
    assert float(_np(out)) == 0.0
    gx, gt = torch.autograd.grad(out, [xs, ts])
    _close(gx, np.zeros_like(x))
    _close(gt, np.zeros_like(x))
    # torch.sqrt(F.mse_loss) gives NaN here; ours stays finite
    xr = _t(x, True)
    (naive,) = torch.autograd.grad(torch.sqrt(F.mse_loss(xr, _t(x))), [xr])
    assert torch.isnan(naive).all()
    # per row: the zero row has a zero gradient, the other row the usual one
    t = x.copy()
    t[1] += np.array([1.0, -2.0, 0.5])
    xs = _t(x, True)
    got = ce.rmse_loss(xs, _t(t), axis=-1, reduction="sum")
    (g,) = torch.autograd.grad(got, [xs])
    g = g.numpy()
    assert np.all(np.isfinite(g))
    _close(g[0], np.zeros(3))
    e = x[1] - t[1]
    _close(g[1], e / (3 * np.sqrt(np.mean(e**2))))


# ---------------------------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------------------------


def _away_from_kinks(rng, shape, kink):
    """Errors with |e| in [0.2, kink − 0.2] ∪ [kink + 0.2, 3 kink] (both branches, no kink)."""
    lo = rng.uniform(0.2, max(0.2, kink - 0.2), size=shape)
    hi = rng.uniform(kink + 0.2, 3 * kink + 0.5, size=shape)
    mag = np.where(rng.random(shape) < 0.5, lo, hi)
    return mag * rng.choice([-1.0, 1.0], size=shape)


GRADCHECK = {
    "mse": (ce.mse_loss, {}, 1.0),
    "l1": (ce.l1_loss, {}, 1.0),
    "huber_d0.5": (ce.huber_loss, {"delta": 0.5}, 0.5),
    "huber_d2.5": (ce.huber_loss, {"delta": 2.5}, 2.5),
    "smooth_l1_b0": (ce.smooth_l1_loss, {"beta": 0.0}, 1.0),
    "smooth_l1_b1": (ce.smooth_l1_loss, {"beta": 1.0}, 1.0),
    "log_cosh": (ce.log_cosh_loss, {}, 1.0),
    "rmse": (ce.rmse_loss, {}, 1.0),
    "rmse_rows": (ce.rmse_loss, {"axis": -1}, 1.0),
}


@pytest.mark.parametrize("name", list(GRADCHECK))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck(name, reduction, weighted):
    fn, kw, kink = GRADCHECK[name]
    rng = _rng("gradcheck", name, reduction, weighted)
    x = rng.standard_normal((3, 4))
    t = x - _away_from_kinks(rng, (3, 4), kink)
    leaves = [_t(x, True), _t(t, True)]
    if weighted:
        leaves.append(_t(rng.uniform(0.2, 2.0, size=(3, 4)), True))

    def f(*args):
        w = args[2] if weighted else None
        return fn(args[0], args[1], reduction=reduction, weight=w, **kw)

    assert torch.autograd.gradcheck(f, tuple(leaves), eps=1e-6, atol=1e-8, rtol=1e-6)
    assert torch.autograd.gradgradcheck(f, tuple(leaves), eps=1e-6, atol=1e-7, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# every backend
# ---------------------------------------------------------------------------------------------

BACKEND_FNS = {
    "mse": (ce.mse_loss, {}),
    "l1": (ce.l1_loss, {}),
    "huber": (ce.huber_loss, {"delta": 0.7}),
    "smooth_l1": (ce.smooth_l1_loss, {"beta": 0.7}),
    "log_cosh": (ce.log_cosh_loss, {}),
    "rmse": (ce.rmse_loss, {}),
    "rmse_rows": (ce.rmse_loss, {"axis": -1}),
}


@pytest.mark.parametrize("name", list(BACKEND_FNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "batchmean"])
def test_backends(backend, name, dtype, weighted, reduction):
    fn, kw = BACKEND_FNS[name]
    rng = _rng("backends", name)
    x, t = rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5))
    w = rng.uniform(0.1, 2.0, size=(4, 5)) if weighted else None
    ref = _np(fn(x, t, reduction=reduction, weight=w, **kw))
    assert ref.dtype == np.float64
    args = [backend.asarray(x, dtype), backend.asarray(t, dtype)]
    wb = None if w is None else backend.asarray(w, dtype)
    got = fn(*args, reduction=reduction, weight=wb, **kw)
    assert backend.is_native(got), type(got)
    out = backend.to_numpy(got)
    assert out.dtype == dtype
    assert out.shape == ref.shape
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

ALL_FNS = {
    "mse": ce.mse_loss,
    "l1": ce.l1_loss,
    "huber": ce.huber_loss,
    "smooth_l1": ce.smooth_l1_loss,
    "log_cosh": ce.log_cosh_loss,
    "rmse": ce.rmse_loss,
}
X = np.zeros((3, 4))
BAD = {
    "target-shape": (
        lambda f: f(X, np.zeros((5,))),
        ValueError,
        r"target.*\(5,\).*\(3, 4\)",
    ),
    "weight-shape": (
        lambda f: f(X, X, weight=np.ones((2, 4))),
        ValueError,
        r"weight.*\(2, 4\)",
    ),
    "weight-complex": (lambda f: f(X, X, weight=X + 1j), TypeError, "weight"),
    "target-strings": (lambda f: f(X, [["a"] * 4] * 3), TypeError, "target"),
    "input-complex": (lambda f: f(X + 1j, X), TypeError, "input"),
    "mixed-libraries": (lambda f: f(_t(X), np.asarray(X)), TypeError, "input.*target"),
    "reduction": (lambda f: f(X, X, reduction="avg"), ValueError, "reduction.*'avg'"),
    "reduction-none-object": (lambda f: f(X, X, reduction=None), ValueError, "reduction"),
    "empty_mean": (lambda f: f(X, X, empty_mean="zero"), TypeError, "empty_mean"),
}


@pytest.mark.parametrize("fn_name", list(ALL_FNS))
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(fn_name, case):
    call, exc, match = BAD[case]
    with pytest.raises(exc, match=match):
        call(ALL_FNS[fn_name])


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_negative_weights_give_torchs_numbers(name, reduction):
    # PyTorch 2.13 takes any real element weights; so does every drop-in here.
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    t = torch.randn(3, 4, generator=g, dtype=torch.float64)
    w = torch.where(torch.eye(3, 4) > 0, -0.5, 1.0).double()
    ours = getattr(ce, name)(x, t, reduction=reduction, weight=w)
    theirs = getattr(F, name)(x, t, reduction=reduction, weight=w)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        getattr(ce, name)(x.numpy(), t.numpy(), reduction=reduction, weight=w.numpy()),
        theirs.numpy(),
        rtol=1e-12,
        atol=1e-14,
    )


def test_weight_must_broadcast_to_the_input_shape():
    # "weight: Non-negative element weights, broadcast to the input": a weight of more
    # dimensions than the input cannot broadcast to it (torch 2.13 requires weight.size() ==
    # input.size()); it must not silently widen the loss to the weight's shape.
    x = np.zeros(3)
    for fn in ALL_FNS.values():
        with pytest.raises(ValueError, match="weight"):
            fn(x, x + 1.0, weight=np.ones((2, 3)), reduction="none")


@pytest.mark.parametrize("fn_name", ["mse", "l1", "huber", "smooth_l1", "log_cosh"])
@pytest.mark.parametrize("value", ["avg", "", None, 1])
def test_bad_mean_divisor(fn_name, value):
    with pytest.raises(ValueError, match="mean_divisor"):
        ALL_FNS[fn_name](X, X, weight=np.ones((3, 4)), mean_divisor=value)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"delta": 0.0}, ValueError),
        ({"delta": -1.0}, ValueError),
        ({"delta": math.nan}, ValueError),
        ({"delta": -math.inf}, ValueError),  # (+inf is PyTorch's: the quadratic everywhere)
        ({"delta": "1"}, TypeError),
        ({"delta": None}, TypeError),
    ],
)
def test_bad_delta(kwargs, exc):
    with pytest.raises(exc, match="delta"):
        ce.huber_loss(X, X, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"beta": -0.1}, ValueError),
        ({"beta": -1e-300}, ValueError),
        ({"beta": math.nan}, ValueError),
        ({"beta": "1"}, TypeError),
        ({"beta": None}, TypeError),
    ],
)
def test_bad_beta(kwargs, exc):
    with pytest.raises(exc, match="beta"):
        ce.smooth_l1_loss(X, X, **kwargs)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="delta"):
        ce.mse_loss(X, X, delta=1.0)
    with pytest.raises(TypeError, match="mean_divisor"):
        ce.rmse_loss(X, X, mean_divisor="count")


# ---------------------------------------------------------------------------------------------
# Review regressions.
# ---------------------------------------------------------------------------------------------


def test_log_cosh_keeps_precision_near_zero_error():
    assert float(ce.log_cosh_loss([1e-9], [0.0])) == pytest.approx(5e-19, rel=1e-12)
    small = ce.log_cosh_loss(np.float32([1e-3]), np.float32([0.0]))
    assert float(small) == pytest.approx(np.log(np.cosh(1e-3)), rel=1e-6)
    assert float(ce.log_cosh_loss([1e4], [0.0])) == pytest.approx(1e4 - np.log(2.0))


def test_rmse_axis_must_be_integers():
    with pytest.raises(TypeError, match="axis"):
        ce.rmse_loss([1.0, 2.0], [0.0, 0.0], axis="a")


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize(
    ("x_shape", "t_shape"), [((3,), (3, 1)), ((2, 3), (3,)), ((2, 1), (2, 4)), ((3,), (3,))]
)
def test_differing_shapes_warn_and_broadcast_as_pytorch(name, x_shape, t_shape):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(x_shape, generator=g, dtype=torch.float64)
    t = torch.randn(t_shape, generator=g, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        theirs = getattr(F, name)(x, t)
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = getattr(ce, name)(x, t)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    assert [(w.category, str(w.message)) for w in ours_w] == [
        (w.category, str(w.message)) for w in theirs_w
    ]
    # NumPy arrays: the same condition, category and numbers.
    with warnings.catch_warnings(record=True) as np_w:
        warnings.simplefilter("always")
        got = getattr(ce, name)(x.numpy(), t.numpy())
    assert [w.category for w in np_w] == [w.category for w in theirs_w]
    np.testing.assert_allclose(got, theirs.numpy(), rtol=1e-12)


def test_the_issues_example_warns():
    with pytest.warns(UserWarning, match="target size"):
        out = ce.mse_loss(np.array([1.0, 2, 3]), np.array([[1.0], [2], [3]]))
    assert float(out) == pytest.approx(4 / 3)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "rmse_loss"])
def test_shapes_that_do_not_broadcast_raise_without_the_broadcast_warning(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Using a target size ..." before the error
        with pytest.raises(ValueError, match=r"target of shape \(3,\) does not broadcast"):
            getattr(ce, name)([1.0, 2.0], [1.0, 2.0, 3.0])


def test_an_infinite_delta_or_beta_is_pytorchs():
    """``delta=inf`` (Huber) is half the squared error and ``beta=inf`` (smooth L1) is 0, as
    PyTorch computes them, with finite gradients on every path (ATen, weighted, NumPy's closed
    form, JAX under jit); +inf was refused. NaN and -inf still are."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal(6) * 3, rng.standard_normal(6)
    w = rng.uniform(0.5, 2.0, 6)
    inf = math.inf
    xt = torch.tensor(x, requires_grad=True)
    want = F.huber_loss(xt, torch.tensor(t), delta=inf)
    (g_want,) = torch.autograd.grad(want, xt)
    assert float(want) == pytest.approx(np.mean(0.5 * (x - t) ** 2), rel=1e-12)
    for weight in (None, torch.tensor(w)):  # ATen, then the generic path
        xo = torch.tensor(x, requires_grad=True)
        got = ce.huber_loss(xo, torch.tensor(t), delta=inf, weight=weight)
        (g,) = torch.autograd.grad(got, xo)
        scale = 1.0 if weight is None else w
        assert float(got) == pytest.approx(np.mean(scale * 0.5 * (x - t) ** 2), rel=1e-12)
        np.testing.assert_allclose(g.numpy(), g_want.numpy() * scale, rtol=1e-12)
    assert float(ce.huber_loss(x, t, delta=inf)) == pytest.approx(float(want), rel=1e-12)
    _, g_np = ce.grad.huber_loss(x, t, delta=inf)
    np.testing.assert_allclose(g_np, g_want.numpy(), rtol=1e-12)

    def huber(xj, d):
        return ce.huber_loss(xj, jnp.asarray(t), delta=d)

    value, g_jax = jax.jit(jax.value_and_grad(huber))(jnp.asarray(x), jnp.asarray(inf))
    assert float(value) == pytest.approx(float(want), rel=1e-6)
    np.testing.assert_allclose(np.asarray(g_jax), g_want.numpy(), rtol=1e-6)
    assert float(ce.nn.HuberLoss(delta=inf)(xt, torch.tensor(t))) == float(want)
    xs = torch.tensor(x, requires_grad=True)
    smooth = ce.smooth_l1_loss(xs, torch.tensor(t), beta=inf, weight=torch.tensor(w))
    assert float(smooth) == float(F.smooth_l1_loss(torch.tensor(x), torch.tensor(t), beta=inf))
    assert float(smooth) == 0.0
    (gs,) = torch.autograd.grad(smooth, xs)
    assert not gs.any()
    for bad in (math.nan, -inf):
        with pytest.raises(ValueError, match="delta must be a number"):
            ce.huber_loss(x, t, delta=bad)
