"""Gradients of every differentiable public function.

``torch.autograd.gradcheck`` in float64 on small shapes (through the ATen delegation and the
generic array-API path), finite gradients at the numerical edges (saturated logits, zero
probabilities, ``-inf`` logits), JAX gradients against torch gradients, and the property that
the cross-entropy gradient with respect to the logits is ``softmax(x) - target``.
"""

from __future__ import annotations

import itertools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

import crossentropy as ce
from crossentropy import information

REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _t(a, requires_grad=False):
    out = torch.from_numpy(np.array(a, dtype=np.asarray(a).dtype))
    return out.requires_grad_(requires_grad)


def _check(fn, *inputs):
    """gradcheck ``fn`` w.r.t. every float64 input (the others are passed through)."""
    args = tuple(
        _t(a, requires_grad=np.asarray(a).dtype == np.float64) if isinstance(a, np.ndarray) else a
        for a in inputs
    )
    assert gradcheck(fn, args, eps=1e-6, atol=1e-6, rtol=1e-5)


def _torch_grads(fn, arrays, cotangent=None):
    leaves = [_t(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    cot = torch.ones_like(out) if cotangent is None else _t(cotangent)
    return [g.numpy() for g in torch.autograd.grad((out * cot).sum(), leaves)]


def _jax_grads(fn, arrays, cotangent=None):
    def scalar(*args):
        out = fn(*args)
        cot = jnp.ones_like(out) if cotangent is None else jnp.asarray(cotangent)
        return jnp.sum(out * cot)

    args = [jnp.asarray(a) for a in arrays]
    grads = jax.grad(scalar, argnums=tuple(range(len(args))))(*args)
    assert all(g.dtype == jnp.float64 for g in grads)
    return [np.asarray(g) for g in grads]


def _probs(rng, shape, low=0.05, high=0.95):
    return rng.uniform(low, high, size=shape)


# ---------------------------------------------------------------------------------------------
# gradcheck: special functions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("axis", "keepdims"), [(0, False), (1, True), (-1, False)])
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_gradcheck_axis_functions(name, axis, keepdims):
    x = _rng(name, axis).standard_normal((3, 4, 2)) * 3
    if name == "logsumexp":
        _check(lambda a: ce.logsumexp(a, axis=axis, keepdims=keepdims), x)
    else:
        _check(lambda a: getattr(ce, name)(a, axis=axis), x)


@pytest.mark.parametrize("fn", [ce.sigmoid, ce.log_sigmoid, ce.softplus])
def test_gradcheck_elementwise(fn):
    x = _rng(fn.__name__).standard_normal((3, 4)) * 4
    x[0, 0] = 0.0
    _check(fn, x)


def test_gradcheck_xlogy_both_arguments():
    rng = _rng("xlogy")
    _check(ce.xlogy, rng.uniform(0.1, 2.0, (3, 4)), rng.uniform(0.1, 2.0, (3, 4)))
    _check(ce.xlogy, rng.uniform(0.1, 2.0, (3, 1)), rng.uniform(0.1, 2.0, (4,)))


# ---------------------------------------------------------------------------------------------
# gradcheck: information theory
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"base": 2}, {"axis": 0}, {"normalize": True}], ids=["nats", "bits", "ax0", "n"]
)
@pytest.mark.parametrize(
    "fn",
    [
        information.cross_entropy,
        ce.kl_divergence,
        ce.js_divergence,
    ],
    ids=["cross_entropy", "kl_divergence", "js_divergence"],
)
def test_gradcheck_two_distribution_functions(fn, kwargs):
    rng = _rng("info2", fn.__name__, kwargs)
    _check(lambda p, q: fn(p, q, **kwargs), _probs(rng, (3, 4)), _probs(rng, (3, 4)))


@pytest.mark.parametrize("kwargs", [{}, {"base": 2}, {"normalize": True}], ids=["e", "2", "n"])
def test_gradcheck_entropy(kwargs):
    _check(lambda p: ce.entropy(p, **kwargs), _probs(_rng("entropy", kwargs), (3, 5)))


def test_gradcheck_perplexity():
    rng = _rng("perplexity")
    _check(ce.perplexity, _probs(rng, (3, 4)))
    _check(ce.perplexity, _probs(rng, (3, 4)), _probs(rng, (3, 4)))
    _check(lambda p, q: ce.perplexity(p, q, normalize=True), _probs(rng, (4,)), _probs(rng, (4,)))


@pytest.mark.parametrize("base", [np.e, 2])
def test_gradcheck_elementwise_information(base):
    rng = _rng("elementwise-info", base)
    _check(lambda p: ce.self_information(p, base=base), _probs(rng, (3, 4)))
    _check(lambda p: ce.binary_entropy(p, base=base), _probs(rng, (3, 4)))


# ---------------------------------------------------------------------------------------------
# gradcheck: losses
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
    x = rng.standard_normal(shape) * 2 if from_logits else _probs(rng, shape)
    if soft:
        target = _probs(rng, shape)
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
    x, target, weight, kwargs = _ce_inputs(_rng("ce", case), CE_OPTIONS[name], soft)
    w = None if weight is None else _t(weight)
    # With soft targets the gradient is checked w.r.t. the logits and the target.
    _check(lambda a, t: ce.cross_entropy(a, t, w, reduction=reduction, **kwargs), x, target)


@pytest.mark.parametrize("axis", [0, -1])
def test_gradcheck_cross_entropy_other_axes(axis):
    rng = _rng("ce-axis", axis)
    if axis == 0:
        x, y = rng.standard_normal(5), np.asarray(rng.integers(0, 5))
    else:
        x, y = rng.standard_normal((3, 2, 5)), rng.integers(0, 5, size=(3, 2))
    _check(lambda a: ce.cross_entropy(a, _t(y), axis=axis, label_smoothing=0.1), x)
    _check(lambda a: ce.cross_entropy(a, _t(y), axis=axis, mean_divisor="weight"), x)


NLL_CASES = list(itertools.product((False, True), ({}, {"mean_divisor": "weight"}), REDUCTIONS))


@pytest.mark.parametrize(
    "case",
    NLL_CASES,
    ids=[f"{'w' if w else 'now'}-{'generic' if e else 'aten'}-{r}" for w, e, r in NLL_CASES],
)
def test_gradcheck_nll_loss(case):
    weighted, extra, reduction = case
    rng = _rng("nll", weighted, reduction, bool(extra))
    x = rng.standard_normal((4, 3, 2))
    y = rng.integers(0, 3, size=(4, 2))
    y[1, 1] = -100
    w = _t(rng.uniform(0.2, 2.0, 3)) if weighted else None
    _check(lambda a: ce.nll_loss(a, _t(y), w, reduction=reduction, **extra), x)


BCE_CASES = list(itertools.product(("torch", "sklearn", "keras", None, 0.01), REDUCTIONS))


@pytest.mark.parametrize("case", BCE_CASES, ids=[f"clip_{c}-{r}" for c, r in BCE_CASES])
def test_gradcheck_binary_cross_entropy(case):
    clip, reduction = case
    rng = _rng("bce", case)
    p, t = _probs(rng, (3, 4)), _probs(rng, (3, 4))
    w = _t(rng.uniform(0.2, 2.0, 4))
    _check(lambda a, b: ce.binary_cross_entropy(a, b, w, reduction=reduction, clip=clip), p, t)


@pytest.mark.parametrize("mode", ["uniform", "flip"])
def test_gradcheck_binary_cross_entropy_label_smoothing(mode):
    rng = _rng("bce-ls", mode)
    p, t = _probs(rng, (3, 4)), _probs(rng, (3, 4))
    _check(
        lambda a, b: ce.binary_cross_entropy(a, b, label_smoothing=0.1, smoothing_mode=mode), p, t
    )


BCEL_OPTIONS = {
    "plain": {},
    "generic": {"empty_mean": 0.0},
    "pos_weight": {"pos_weight": True, "weight": True},
    "pos_weight-generic": {"pos_weight": True, "weight": True, "empty_mean": 0.0},
    "uniform": {"pos_weight": True, "label_smoothing": 0.1, "smoothing_mode": "uniform"},
    "flip": {"pos_weight": True, "label_smoothing": 0.1, "smoothing_mode": "flip"},
}
BCEL_CASES = list(itertools.product(BCEL_OPTIONS, REDUCTIONS))


@pytest.mark.parametrize("case", BCEL_CASES, ids=[f"{o}-{r}" for o, r in BCEL_CASES])
def test_gradcheck_binary_cross_entropy_with_logits(case):
    name, reduction = case
    rng = _rng("bcel", case)
    x, t = rng.standard_normal((3, 4)) * 3, _probs(rng, (3, 4))
    kwargs = dict(BCEL_OPTIONS[name])
    w = _t(rng.uniform(0.2, 2.0, (3, 1))) if kwargs.pop("weight", False) else None
    if kwargs.pop("pos_weight", False):
        kwargs["pos_weight"] = _t(rng.uniform(0.2, 3.0, 4))
    _check(
        lambda a, b: ce.binary_cross_entropy_with_logits(a, b, w, reduction=reduction, **kwargs),
        x,
        t,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_gradcheck_kl_div(log_target, reduction):
    rng = _rng("kl_div", log_target, reduction)
    logq = np.log(_probs(rng, (3, 4)))
    p = _probs(rng, (3, 4))
    target = np.log(p) if log_target else p
    _check(lambda a, b: ce.kl_div(a, b, reduction=reduction, log_target=log_target), logq, target)


# ---------------------------------------------------------------------------------------------
# Finite gradients at the edges
# ---------------------------------------------------------------------------------------------

EDGE_X = np.array([0.0, 1e4, -1e4, -0.0])
EDGE_DERIVATIVES = {
    "softplus": np.array([0.5, 1.0, 0.0, 0.5]),
    "log_sigmoid": np.array([0.5, 0.0, 1.0, 0.5]),
    "sigmoid": np.array([0.25, 0.0, 0.0, 0.25]),
}


@pytest.mark.parametrize("lib", ["torch", "jax"])
@pytest.mark.parametrize("name", list(EDGE_DERIVATIVES))
def test_elementwise_derivatives_at_zero_and_saturation(name, lib):
    fn = getattr(ce, name)
    grads = _torch_grads if lib == "torch" else _jax_grads
    (g,) = grads(fn, [EDGE_X])
    np.testing.assert_array_equal(g, EDGE_DERIVATIVES[name])


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_entropy_gradient_finite_at_zero_probability(lib):
    p = np.array([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]])
    grads = _torch_grads if lib == "torch" else _jax_grads
    (g,) = grads(ce.entropy, [p])
    assert np.all(np.isfinite(g))
    nz = p > 0
    np.testing.assert_allclose(g[nz], -(np.log(p[nz]) + 1), rtol=1e-12)
    (g,) = grads(ce.binary_entropy, [np.array([0.0, 1.0, 0.5, 0.25])])
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[2:], [0.0, np.log(3.0)], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_kl_and_js_gradients_finite_at_zero_probability(lib):
    p = np.array([[0.0, 0.4, 0.6], [1.0, 0.0, 0.0]])
    q = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    grads = _torch_grads if lib == "torch" else _jax_grads
    gp, gq = grads(ce.kl_divergence, [p, q])
    assert np.all(np.isfinite(gp))
    assert np.all(np.isfinite(gq))
    nz = p > 0
    np.testing.assert_allclose(gp[nz], np.log(p[nz] / q[nz]) + 1, rtol=1e-12)
    np.testing.assert_allclose(gq, -p / q, rtol=1e-12)
    gp, gq = grads(ce.js_divergence, [p, q])
    assert np.all(np.isfinite(gp))
    assert np.all(np.isfinite(gq))
    gp, gq = grads(information.cross_entropy, [p, q])
    assert np.all(np.isfinite(gp))
    np.testing.assert_allclose(gq, -p / q, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs", [{}, {"mean_divisor": "weight"}, {"z_loss": 1e-3}], ids=["aten", "generic", "z"]
)
@pytest.mark.parametrize("soft", [False, True], ids=["index", "soft"])
def test_cross_entropy_gradient_finite_with_minus_inf_logits(soft, kwargs):
    x = np.array([[1.0, -np.inf, 0.5, 2.0], [-np.inf, 0.3, -np.inf, -1.0]])
    y = np.array([0, 3])
    target = np.eye(4)[y] if soft else y
    expected = scipy.special.softmax(x, axis=1) - np.eye(4)[y]
    tt = _t(target)
    value = ce.cross_entropy(_t(x), tt, reduction="sum", **kwargs)
    assert np.isfinite(value.item())
    (g,) = _torch_grads(lambda a: ce.cross_entropy(a, tt, reduction="sum", **kwargs), [x])
    assert np.all(np.isfinite(g))
    if not kwargs:
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)
    (gj,) = _jax_grads(
        lambda a: ce.cross_entropy(a, jnp.asarray(target), reduction="sum", **kwargs), [x]
    )
    np.testing.assert_allclose(gj, g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_xlogy_gradient_finite_at_zero(lib):
    x = np.array([0.0, 0.0, 0.5, 2.0])
    y = np.array([0.0, 0.3, 0.0, 1.5])
    grads = _torch_grads if lib == "torch" else _jax_grads
    gx, gy = grads(ce.xlogy, [x, y])
    assert np.all(np.isfinite(gx[[0, 1, 3]]))
    assert np.all(np.isfinite(gy[[0, 1, 3]]))
    np.testing.assert_allclose(gy[[1, 3]], x[[1, 3]] / y[[1, 3]], rtol=1e-12)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_xlogy_gradient_at_zero_x_matches_torch(lib):
    """d/dx (x log y) = log y, also at x = 0 when y > 0 (as torch.special.xlogy)."""
    x = np.array([0.0, 0.0, 2.0])
    y = np.array([0.3, 1.0, 1.5])
    grads = _torch_grads if lib == "torch" else _jax_grads
    gx, gy = grads(ce.xlogy, [x, y])
    tx, ty = _torch_grads(torch.special.xlogy, [x, y])
    np.testing.assert_allclose(tx, np.log(y), rtol=1e-12)
    np.testing.assert_allclose(gx, tx, rtol=1e-12)
    np.testing.assert_allclose(gy, ty, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# JAX gradients equal torch gradients
# ---------------------------------------------------------------------------------------------


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


def _cotangent_for(out_shape, rng):
    return rng.standard_normal(out_shape) if out_shape else None


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(JAX_CE_OPTIONS))
def test_jax_matches_torch_cross_entropy_class_indices(name, reduction):
    rng = _rng("jax-ce-index", name, reduction)
    x, y, w = _index_data(rng)
    kwargs = JAX_CE_OPTIONS[name]
    if not kwargs.get("from_logits", True):
        x = scipy.special.softmax(x, axis=1)
    cot = _cotangent_for(y.shape if reduction == "none" else (), rng)
    (tg,) = _torch_grads(
        lambda a: ce.cross_entropy(a, _t(y), _t(w), reduction=reduction, **kwargs), [x], cot
    )
    (jg,) = _jax_grads(
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
    rng = _rng("jax-ce-soft", name, reduction)
    x = rng.standard_normal((4, 5)) * 2
    t = rng.dirichlet(np.ones(5), size=4)
    w = rng.uniform(0.2, 2.0, 5)
    kwargs = JAX_CE_OPTIONS[name]
    if not kwargs.get("from_logits", True):
        x = scipy.special.softmax(x, axis=1)
    cot = _cotangent_for((4,) if reduction == "none" else (), rng)
    tg = _torch_grads(
        lambda a, b: ce.cross_entropy(a, b, _t(w), reduction=reduction, **kwargs), [x, t], cot
    )
    jg = _jax_grads(
        lambda a, b: ce.cross_entropy(a, b, jnp.asarray(w), reduction=reduction, **kwargs),
        [x, t],
        cot,
    )
    for a, b in zip(jg, tg, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_jax_matches_torch_binary_cross_entropy_with_logits(smoothing, reduction):
    rng = _rng("jax-bcel", smoothing, reduction)
    x = rng.standard_normal((4, 3)) * 3
    x[0, 0], x[1, 1] = 1e4, -1e4
    t = _probs(rng, (4, 3))
    pw, w = rng.uniform(0.2, 3.0, 3), rng.uniform(0.2, 2.0, (4, 1))
    cot = _cotangent_for((4, 3) if reduction == "none" else (), rng)
    kwargs = {"reduction": reduction, "label_smoothing": smoothing}
    tg = _torch_grads(
        lambda a, b: ce.binary_cross_entropy_with_logits(a, b, _t(w), pos_weight=_t(pw), **kwargs),
        [x, t],
        cot,
    )
    jg = _jax_grads(
        lambda a, b: ce.binary_cross_entropy_with_logits(
            a, b, jnp.asarray(w), pos_weight=jnp.asarray(pw), **kwargs
        ),
        [x, t],
        cot,
    )
    for a, b in zip(jg, tg, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_jax_matches_torch_kl_div(log_target, reduction):
    rng = _rng("jax-kl_div", log_target, reduction)
    logq = np.log(rng.dirichlet(np.ones(4), size=3))
    p = rng.dirichlet(np.ones(4), size=3)
    target = np.log(p) if log_target else p
    cot = _cotangent_for((3, 4) if reduction == "none" else (), rng)

    def fn(a, b):
        return ce.kl_div(a, b, reduction=reduction, log_target=log_target)

    for a, b in zip(
        _jax_grads(fn, [logq, target], cot), _torch_grads(fn, [logq, target], cot), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("base", [np.e, 2])
def test_jax_matches_torch_entropy_and_kl_divergence(base):
    rng = _rng("jax-info", base)
    p = rng.dirichlet(np.ones(5), size=3)
    q = rng.dirichlet(np.ones(5), size=3)
    p[0, 1] = 0.0  # the 0 log 0 convention, on both backends
    cot = rng.standard_normal(3)

    def entropy(a):
        return ce.entropy(a, base=base)

    def kl(a, b):
        return ce.kl_divergence(a, b, base=base)

    for fn, arrays in ((entropy, [p]), (kl, [p, q])):
        jg, tg = _jax_grads(fn, arrays, cot), _torch_grads(fn, arrays, cot)
        for a, b in zip(jg, tg, strict=True):
            assert np.all(np.isfinite(b))
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Property: the gradient of the summed cross-entropy is softmax(x) - target
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
    tt = _t(target)
    # ATen delegation (class indices only), then the generic path; soft targets are generic.
    for extra in ({}, {"mean_divisor": "count"}):
        (g,) = _torch_grads(
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
    rng = _rng("softmax-minus-target", soft, eps, seed)
    x, target, expected = _softmax_minus_target_case(rng, 4, 5, soft, eps, 10.0**seed)
    (g,) = _jax_grads(
        lambda a: ce.cross_entropy(a, jnp.asarray(target), reduction="sum", label_smoothing=eps),
        [x],
    )
    np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-12)
