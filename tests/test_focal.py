"""Focal losses: ``sigmoid_focal_loss`` against torchvision's formula (live, in torch) and the
recorded torchvision / segmentation-models-pytorch values, its keyword conventions (optax, Keras);
``focal_loss`` against ``cross_entropy``, a torch reference formula and Keras'
``CategoricalFocalCrossentropy`` formula; gradients, saturated logits, every backend, bad inputs.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest

import crossentropy as ce
from _helpers import check_on_backend

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")
gradcheck = pytest.importorskip("torch.autograd").gradcheck

ALPHAS = (0.25, 0.7, -1.0)
GAMMAS = (0.0, 0.5, 2.0, 3.5)
SHAPES = ((7,), (4, 5), (2, 3, 5))
SEEDS = (0, 1, 2)


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _t(a, requires_grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _reduce(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def torchvision_sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, written out (torchvision is not installed here)."""
    p = torch.sigmoid(x)
    ce_loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce_loss * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return _reduce(loss, reduction)


def _binary_case(seed, shape, soft, scale=2.5):
    rng = _rng("binary", seed, shape, soft)
    x = rng.standard_normal(shape) * scale
    t = rng.uniform(size=shape) if soft else rng.integers(0, 2, size=shape).astype(np.float64)
    return x, t


def _value_and_grad(fn, x, *args, **kwargs):
    """``fn(x, *args, **kwargs)`` and its gradient w.r.t. ``x`` (a fixed cotangent)."""
    leaf = _t(x, requires_grad=True)
    out = fn(leaf, *args, **kwargs)
    cot = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
    (grad,) = torch.autograd.grad((out * cot).sum(), leaf)
    return out.detach().numpy(), grad.numpy()


def _assert_close(actual, expected, tol=1e-12):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# sigmoid_focal_loss: torchvision's formula, live
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_sigmoid_focal_matches_torchvision_formula(alpha, gamma, soft):
    cases = itertools.product(zip(SEEDS, SHAPES, strict=True), ("none", "mean", "sum"))
    for (seed, shape), reduction in cases:
        x, t = _binary_case(seed, shape, soft)
        kw = {"alpha": alpha, "gamma": gamma, "reduction": reduction}
        ours = _value_and_grad(ce.sigmoid_focal_loss, x, _t(t), **kw)
        ref = _value_and_grad(torchvision_sigmoid_focal_loss, x, _t(t), **kw)
        _assert_close(ours[0], ref[0], 1e-11)
        _assert_close(ours[1], ref[1], 1e-10)
        # The NumPy (generic) path gives the same numbers.
        _assert_close(
            ce.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction),
            ref[0],
            1e-11,
        )


def test_sigmoid_focal_defaults_are_torchvision_defaults():
    x, t = _binary_case(5, (3, 4), False)
    out = ce.sigmoid_focal_loss(_t(x), _t(t))
    assert out.shape == (3, 4)  # reduction="none"
    _assert_close(out, torchvision_sigmoid_focal_loss(_t(x), _t(t)), 1e-12)  # alpha .25, gamma 2


Z, T = [2.0, -1.0, 0.5], [1.0, 1.0, 0.0]


def test_sigmoid_focal_recorded_values():
    # torchvision ops/focal_loss.py (run beside torch 2.13, CPU float64):
    # torchvision.ops.sigmoid_focal_loss(z, t, alpha=0.25, gamma=2, reduction="none")
    tv_alpha = [0.00045089070881009483, 0.17546707585284624, 0.28305870064455735]
    # ... with reduction="mean"
    tv_alpha_mean = 0.15299222240207122
    # torchvision.ops.sigmoid_focal_loss(z, t, alpha=-1, gamma=2, reduction="none")
    tv_no_alpha = [0.0018035628352403748, 0.701868303411385, 0.3774116008594097]
    # segmentation-models-pytorch 0.6.0: FocalLoss(mode="binary", alpha=None, gamma=2)(z, t)
    smp_mean = 0.3603611557020117
    for lib in (np.asarray, _t):
        z, t = lib(Z), lib(T)
        _assert_close(ce.sigmoid_focal_loss(z, t, alpha=0.25, gamma=2.0), tv_alpha, 1e-14)
        _assert_close(ce.sigmoid_focal_loss(z, t, reduction="mean"), tv_alpha_mean, 1e-14)
        _assert_close(ce.sigmoid_focal_loss(z, t, alpha=-1.0, gamma=2.0), tv_no_alpha, 1e-14)
        _assert_close(ce.sigmoid_focal_loss(z, t, alpha=None), tv_no_alpha, 1e-14)
        _assert_close(ce.sigmoid_focal_loss(z, t, alpha=None, reduction="mean"), smp_mean, 1e-14)


# ---------------------------------------------------------------------------------------------
# sigmoid_focal_loss: keyword conventions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_focal_alpha_none_is_optax_default_and_keras_ignores_alpha(gamma):
    x, t = _binary_case(3, (4, 5), True)
    no_alpha = torchvision_sigmoid_focal_loss(_t(x), _t(t), alpha=-1.0, gamma=gamma)
    # optax.sigmoid_focal_loss(logits, labels, alpha=None, gamma=gamma): no alpha term.
    _assert_close(ce.sigmoid_focal_loss(x, t, alpha=None, gamma=gamma), no_alpha)
    # keras BinaryFocalCrossentropy(apply_class_balancing=False, alpha=...): alpha ignored.
    for alpha in (0.25, 0.7):
        _assert_close(
            ce.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, apply_class_balancing=False),
            no_alpha,
        )
        # apply_class_balancing=True (default) does apply it.
        with_alpha = ce.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma)
        _assert_close(
            with_alpha, torchvision_sigmoid_focal_loss(_t(x), _t(t), alpha=alpha, gamma=gamma)
        )
        assert not np.allclose(with_alpha, no_alpha.numpy())


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_sigmoid_focal_gamma0_no_alpha_is_bce_with_logits(reduction, soft):
    x, t = _binary_case(4, (3, 4, 2), soft)
    w = _rng("w").uniform(0.2, 2.0, size=(4, 2))
    for lib in (np.asarray, _t):
        for weight in (None, lib(w)):
            ours = ce.sigmoid_focal_loss(
                lib(x), lib(t), weight=weight, alpha=None, gamma=0.0, reduction=reduction
            )
            bce = ce.binary_cross_entropy_with_logits(lib(x), lib(t), weight, reduction=reduction)
            _assert_close(ours, bce, 1e-13)
            tw = None if weight is None else _t(w)
            if reduction != "batchmean":
                torch_ref = F.binary_cross_entropy_with_logits(
                    _t(x), _t(t), weight=tw, reduction=reduction
                )
                _assert_close(ours, torch_ref, 1e-13)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [0.25, None])
def test_sigmoid_focal_from_probabilities_equals_logits(alpha, gamma):
    for soft in (False, True):
        x, t = _binary_case(6, (5, 3), soft, scale=2.0)
        p = 1 / (1 + np.exp(-x))
        for reduction in ("none", "mean", "sum"):
            kw = {"alpha": alpha, "gamma": gamma, "reduction": reduction}
            logits = ce.sigmoid_focal_loss(x, t, **kw)
            probs = ce.sigmoid_focal_loss(p, t, from_logits=False, clip=None, **kw)
            _assert_close(probs, logits, 1e-10)
            # torch, with gradients through the probabilities: d/dx = d/dp * p (1 - p).
            leaf = _t(x, requires_grad=True)
            out = ce.sigmoid_focal_loss(
                torch.sigmoid(leaf), _t(t), from_logits=False, clip=None, **kw
            )
            (g_probs,) = torch.autograd.grad(out.sum(), leaf)
            leaf2 = _t(x, requires_grad=True)
            (g_logits,) = torch.autograd.grad(
                ce.sigmoid_focal_loss(leaf2, _t(t), **kw).sum(), leaf2
            )
            _assert_close(g_probs, g_logits, 1e-9)


@pytest.mark.parametrize(
    ("mode", "smooth"),
    [
        ("uniform", lambda t, e: t * (1 - e) + e / 2),
        ("flip", lambda t, e: t * (1 - e) + (1 - t) * e),
    ],
)
@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_sigmoid_focal_label_smoothing_modes(mode, smooth, eps):
    # uniform: keras BinaryFocalCrossentropy(label_smoothing=eps) (smooths, then alpha_t and
    # p_t from the smoothed target); flip: segmentation-models-pytorch's y(1-s)+(1-y)s.
    for soft in (False, True):
        x, t = _binary_case(7, (4, 3), soft)
        ts = smooth(t, eps)
        for alpha, gamma in [(0.25, 2.0), (None, 0.5), (0.7, 0.0)]:
            ref = _value_and_grad(
                torchvision_sigmoid_focal_loss, x, _t(ts), -1.0 if alpha is None else alpha, gamma
            )
            ours = _value_and_grad(
                ce.sigmoid_focal_loss,
                x,
                _t(t),
                alpha=alpha,
                gamma=gamma,
                label_smoothing=eps,
                smoothing_mode=mode,
            )
            _assert_close(ours[0], ref[0])
            _assert_close(ours[1], ref[1], 1e-11)
            _assert_close(
                ce.sigmoid_focal_loss(
                    x, t, alpha=alpha, gamma=gamma, label_smoothing=eps, smoothing_mode=mode
                ),
                ref[0],
            )
        # gamma 0 and no alpha: the BCE with the same smoothing.
        _assert_close(
            ce.sigmoid_focal_loss(
                x, t, alpha=None, gamma=0.0, label_smoothing=eps, smoothing_mode=mode
            ),
            ce.binary_cross_entropy_with_logits(
                x, t, reduction="none", label_smoothing=eps, smoothing_mode=mode
            ),
        )


@pytest.mark.parametrize("wshape", [(4, 3), (3,), (4, 1), ()])
def test_sigmoid_focal_weight_and_mean_divisor(wshape):
    x, t = _binary_case(8, (4, 3), True)
    w = _rng("w", wshape).uniform(0.1, 3.0, size=wshape)
    for lib in (np.asarray, _t):
        per = torchvision_sigmoid_focal_loss(_t(x), _t(t), 0.25, 2.0).numpy()
        wb = np.broadcast_to(w, per.shape)
        args = (lib(x), lib(t))
        kw = {"weight": lib(w)}
        _assert_close(ce.sigmoid_focal_loss(*args, **kw), per * wb)
        _assert_close(ce.sigmoid_focal_loss(*args, **kw, reduction="sum"), (per * wb).sum())
        count_mean = (per * wb).sum() / per.size
        _assert_close(ce.sigmoid_focal_loss(*args, **kw, reduction="mean"), count_mean)
        _assert_close(
            ce.sigmoid_focal_loss(*args, **kw, reduction="mean", mean_divisor="count"), count_mean
        )
        _assert_close(
            ce.sigmoid_focal_loss(*args, **kw, reduction="mean", mean_divisor="weight"),
            (per * wb).sum() / wb.sum(),
        )
        _assert_close(
            ce.sigmoid_focal_loss(*args, **kw, reduction="batchmean"),
            (per * wb).sum() / per.shape[0],
        )


def test_sigmoid_focal_weight_gradient():
    x, t = _binary_case(9, (4, 3), False)
    w = _rng("wg").uniform(0.1, 3.0, size=(3,))

    def ours(a):
        return ce.sigmoid_focal_loss(
            a, _t(t), weight=_t(w), reduction="mean", mean_divisor="weight"
        )

    def ref(a):
        per = torchvision_sigmoid_focal_loss(a, _t(t), 0.25, 2.0) * _t(w)
        return per.sum() / (_t(w).sum() * 4)

    o, r = _value_and_grad(ours, x), _value_and_grad(ref, x)
    _assert_close(o[0], r[0])
    _assert_close(o[1], r[1])


# ---------------------------------------------------------------------------------------------
# sigmoid_focal_loss: stability and gradcheck
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [0.25, None])
def test_sigmoid_focal_saturated_logits(alpha, gamma, dtype):
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 50.0, -50.0], dtype=dtype, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=dtype)
    out = ce.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert out.dtype == dtype
    assert torch.isfinite(out).all(), out
    assert torch.isfinite(grad).all(), grad
    a_pos, a_neg = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    # Right with certainty: loss 0 and gradient 0; wrong: 1 - p_t = 1, loss alpha_t * |x|.
    expected = [0.0, 0.0, a_neg * 1e4, a_pos * 1e4]
    np.testing.assert_allclose(out[:4].detach().double().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(grad[:4].double().numpy(), [0.0, 0.0, a_neg, -a_pos], rtol=1e-6)
    assert (out[4:] >= 0).all()
    assert (out[4:] < 1e-20).all()
    # The same on NumPy.
    np_out = ce.sigmoid_focal_loss(x.detach().numpy(), t.numpy(), alpha=alpha, gamma=gamma)
    assert np.isfinite(np_out).all()
    np.testing.assert_allclose(np_out[:4], expected, rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9, 2.0])
def test_sigmoid_focal_gradient_as_p_t_tends_to_one(gamma):
    # t = 1, x -> +inf: loss = q^gamma * softplus(-x), q = sigmoid(-x); in closed form
    # dl/dx = -q^gamma * (gamma (1 - q) softplus(-x) + q), finite for gamma < 1 too.
    xs = np.asarray([5.0, 20.0, 40.0, 200.0, 700.0])
    leaf = _t(xs, requires_grad=True)
    out = ce.sigmoid_focal_loss(leaf, _t(np.ones_like(xs)), alpha=None, gamma=gamma)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    log_q = -np.logaddexp(0.0, xs)
    sp = np.log1p(np.exp(-xs))
    q = np.exp(log_q)
    expected_val = np.exp(gamma * log_q) * sp
    expected_grad = -np.exp(gamma * log_q) * (gamma * (1 - q) * sp + q)
    assert torch.isfinite(grad).all()
    np.testing.assert_allclose(out.detach().numpy(), expected_val, rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=1e-12, atol=0)
    # Mirror: t = 0, x -> -inf.
    leaf = _t(-xs, requires_grad=True)
    out = ce.sigmoid_focal_loss(leaf, _t(np.zeros_like(xs)), alpha=None, gamma=gamma)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    np.testing.assert_allclose(out.detach().numpy(), expected_val, rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad.numpy(), -expected_grad, rtol=1e-12, atol=0)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"alpha": None, "gamma": 0.5},
        {"alpha": 0.7, "gamma": 3.5, "label_smoothing": 0.1},
        {"alpha": 0.25, "gamma": 1.5, "smoothing_mode": "flip", "label_smoothing": 0.2},
        {"gamma": 2.0, "weight": True, "mean_divisor": "weight"},
    ],
    ids=["default", "g0.5", "g3.5-ls", "flip", "weight"],
)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_sigmoid_focal_gradcheck(kwargs, reduction, soft):
    x, t = _binary_case(10, (3, 4), soft, scale=1.5)
    kw = dict(kwargs)
    w = _t(_rng("gc").uniform(0.2, 2.0, size=(4,))) if kw.pop("weight", False) else None
    assert gradcheck(
        lambda a: ce.sigmoid_focal_loss(a, _t(t), weight=w, reduction=reduction, **kw),
        (_t(x, requires_grad=True),),
        eps=1e-6,
        atol=1e-6,
        rtol=1e-5,
    )


def test_sigmoid_focal_gradcheck_probabilities():
    rng = _rng("gc-probs")
    p = rng.uniform(0.05, 0.95, size=(3, 4))
    t = rng.uniform(size=(3, 4))
    for gamma in (0.5, 2.0):
        assert gradcheck(
            lambda a, g=gamma: ce.sigmoid_focal_loss(a, _t(t), gamma=g, from_logits=False),
            (_t(p, requires_grad=True),),
            eps=1e-7,
            atol=1e-6,
            rtol=1e-5,
        )


# ---------------------------------------------------------------------------------------------
# focal_loss (softmax): cross_entropy at gamma 0
# ---------------------------------------------------------------------------------------------


def _multiclass_case(seed, shape, soft, ignore_index=-100, scale=2.0):
    rng = _rng("multiclass", seed, shape, soft, ignore_index)
    x = rng.standard_normal(shape) * scale
    c = shape[1]
    if soft:
        y = rng.dirichlet(np.ones(c), size=(shape[0], *shape[2:]))  # (N, d.., C)
        y = np.moveaxis(y, -1, 1)
        if ignore_index == -100:
            y[-1] = -100.0  # the last sample's target all ignore_index: ignored
    else:
        y = rng.integers(0, c, size=(shape[0], *shape[2:]))
        y.reshape(-1)[:2] = ignore_index
        y.reshape(-1)[-1] = 0 if ignore_index != 0 else 1
    return x, y


@pytest.mark.parametrize("soft", [False, True], ids=["index", "soft"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 5)], ids=["NC", "NCd"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
def test_focal_gamma0_is_cross_entropy(reduction, shape, soft):
    w = _rng("w-ce").uniform(0.2, 2.0, size=shape[1])
    ignores = (-100,) if soft else (-100, 1)
    for ignore_index, weighted, eps in itertools.product(ignores, (False, True), (0.0, 0.2)):
        x, y = _multiclass_case(11, shape, soft, ignore_index)
        kw = {"ignore_index": ignore_index, "label_smoothing": eps, "reduction": reduction}
        for lib in (np.asarray, torch.as_tensor):
            weight = lib(w) if weighted else None
            focal = ce.focal_loss(lib(x), lib(y), weight=weight, gamma=0.0, alpha=None, **kw)
            cross = ce.cross_entropy(lib(x), lib(y), weight, **kw)
            if lib is np.asarray:  # the same generic path: bit for bit
                np.testing.assert_array_equal(focal, cross)
            else:
                _assert_close(focal, cross, 1e-13)
            if not soft and lib is torch.as_tensor and reduction != "batchmean":
                ref = F.cross_entropy(torch.as_tensor(x), torch.as_tensor(y), weight, **kw)
                _assert_close(focal, ref, 1e-13)


def test_focal_gamma0_is_cross_entropy_gradients():
    x, y = _multiclass_case(12, (4, 5, 3), False, 2)
    w = _t(_rng("w-ce-g").uniform(0.2, 2.0, size=5))
    kw = {"ignore_index": 2, "label_smoothing": 0.15}
    o = _value_and_grad(
        lambda a: ce.focal_loss(a, torch.as_tensor(y), weight=w, gamma=0.0, **kw), x
    )
    r = _value_and_grad(lambda a: F.cross_entropy(a, torch.as_tensor(y), w, **kw), x)
    _assert_close(o[0], r[0], 1e-13)
    _assert_close(o[1], r[1], 1e-13)


# ---------------------------------------------------------------------------------------------
# focal_loss: a torch reference formula and Keras' CategoricalFocalCrossentropy
# ---------------------------------------------------------------------------------------------


def torch_focal_reference(x, y, weight=None, alpha=None, gamma=2.0, ignore_index=-100,
                          label_smoothing=0.0, reduction="mean"):  # fmt: skip
    """-alpha_y (1 - p_y)^gamma log p_y w_y, classes on axis 1; label smoothing spreads eps/C
    over every class's focal term; mean divides by sum of w_y over non-ignored targets."""
    c = x.shape[1]
    logp = torch.movedim(F.log_softmax(x, dim=1), 1, -1)  # (..., C)
    w = torch.ones(c, dtype=x.dtype) if weight is None else weight
    if alpha is None:
        a = torch.ones(c, dtype=x.dtype)
    elif isinstance(alpha, float):
        a = torch.full((c,), alpha, dtype=x.dtype)
    else:
        a = alpha
    terms = -a * w * (-torch.expm1(logp)) ** gamma * logp  # every class's focal term
    valid = y != ignore_index
    safe = torch.where(valid, y, torch.zeros_like(y))
    onehot = F.one_hot(safe, c).to(x.dtype)
    target = (1 - label_smoothing) * onehot + label_smoothing / c
    per = (target * terms).sum(-1) * valid
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / (w[safe] * valid).sum()


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha_kind", ["none", "scalar", "per-class"])
def test_focal_matches_torch_reference(alpha_kind, gamma):
    combos = [((6, 4), False, 0.0), ((3, 4, 5), True, 0.1), ((6, 4), True, 0.2)]
    for (shape, weighted, eps), reduction in itertools.product(combos, ("none", "mean", "sum")):
        rng = _rng("focal-ref", shape, weighted, eps, reduction, alpha_kind, gamma)
        x, y = _multiclass_case(13, shape, False, -100, scale=2.5)
        w = _t(rng.uniform(0.2, 2.0, size=shape[1])) if weighted else None
        alpha = {
            "none": None,
            "scalar": 0.25,
            "per-class": _t(rng.uniform(0.1, 1.5, size=shape[1])),
        }[alpha_kind]
        kw = {"gamma": gamma, "label_smoothing": eps, "reduction": reduction}
        yt = torch.as_tensor(y)
        ours = _value_and_grad(ce.focal_loss, x, yt, weight=w, alpha=alpha, **kw)
        ref = _value_and_grad(torch_focal_reference, x, yt, w, alpha, **kw)
        _assert_close(ours[0], ref[0], 1e-12)
        _assert_close(ours[1], ref[1], 1e-11)
        np_alpha = alpha.numpy() if isinstance(alpha, torch.Tensor) else alpha
        np_w = None if w is None else w.numpy()
        _assert_close(ce.focal_loss(x, y, weight=np_w, alpha=np_alpha, **kw), ref[0], 1e-12)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_from_probabilities_equals_logits(gamma):
    x, y = _multiclass_case(15, (5, 4, 3), False)
    p = np.asarray(ce.softmax(x, axis=1))
    w, a = _rng("probs-w").uniform(0.2, 2.0, size=(2, 4))
    kw = {"alpha": a, "gamma": gamma, "label_smoothing": 0.1}
    for reduction in ("none", "mean", "sum"):
        _assert_close(
            ce.focal_loss(p, y, weight=w, from_logits=False, reduction=reduction, **kw),
            ce.focal_loss(x, y, weight=w, reduction=reduction, **kw),
            1e-10,
        )


def test_focal_recorded_docstring_value_matches_reference():
    x = _t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = torch.tensor([1, 2])
    _assert_close(ce.focal_loss(x, y, gamma=2.0), torch_focal_reference(x, y, gamma=2.0))


def keras_categorical_focal(x, t, alpha=0.25, gamma=2.0):
    """keras.losses.categorical_focal_crossentropy(t, x, alpha, gamma, from_logits=True):
    softmax, renormalise, clip to [1e-7, 1 - 1e-7], sum over classes of
    -alpha t_c (1 - p_c)^gamma log p_c (alpha a scalar or one value per class)."""
    p = torch.softmax(x, dim=-1)
    p = p / p.sum(-1, keepdim=True)
    p = p.clamp(1e-7, 1 - 1e-7)
    return (alpha * (1 - p) ** gamma * (-t * torch.log(p))).sum(-1)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha_kind", ["scalar", "per-class"])
def test_focal_soft_targets_are_keras_categorical_focal(alpha_kind, gamma):
    for seed in SEEDS:
        rng = _rng("keras-focal", seed, alpha_kind, gamma)
        x = rng.standard_normal((6, 4)) * 2
        t = rng.dirichlet(np.ones(4), size=6)
        t[0] = np.eye(4)[2]  # a one-hot row among the soft ones
        alpha = 0.25 if alpha_kind == "scalar" else _t(rng.uniform(0.1, 1.0, size=4))
        per = _value_and_grad(keras_categorical_focal, x, _t(t), alpha, gamma)
        # reduction="none": Keras' per-sample loss.
        ours = _value_and_grad(ce.focal_loss, x, _t(t), alpha=alpha, gamma=gamma, reduction="none")
        _assert_close(ours[0], per[0], 1e-12)
        _assert_close(ours[1], per[1], 1e-11)
        # reduction="batchmean": Keras' default sum_over_batch_size.
        mean = _value_and_grad(
            lambda a, tt, al: keras_categorical_focal(a, tt, al, gamma).sum() / 6, x, _t(t), alpha
        )
        ours = _value_and_grad(
            ce.focal_loss, x, _t(t), alpha=alpha, gamma=gamma, reduction="batchmean"
        )
        _assert_close(ours[0], mean[0], 1e-12)
        _assert_close(ours[1], mean[1], 1e-11)
        np_alpha = alpha if isinstance(alpha, float) else alpha.numpy()
        _assert_close(
            ce.focal_loss(x, t, alpha=np_alpha, gamma=gamma, reduction="batchmean"), mean[0], 1e-12
        )
        # channel-last data with axis=-1 on a K-dim batch: the same per-position losses.
        x3, t3 = x.reshape(2, 3, 4), t.reshape(2, 3, 4)
        _assert_close(
            ce.focal_loss(x3, t3, alpha=np_alpha, gamma=gamma, reduction="none", axis=-1),
            per[0].reshape(2, 3),
            1e-12,
        )


def test_focal_soft_targets_with_weight_and_ignored_rows():
    rng = _rng("soft-w")
    x = rng.standard_normal((5, 3)) * 2
    t = rng.dirichlet(np.ones(3), size=5)
    t[1] = -100.0
    w = rng.uniform(0.2, 2.0, size=3)
    a = rng.uniform(0.1, 1.0, size=3)
    valid = np.ones(5, dtype=bool)
    valid[1] = False
    tt = np.where(valid[:, None], t, 0.0)
    per = keras_categorical_focal(_t(x), _t(tt) * _t(w), _t(a), 1.5).numpy() * valid
    _assert_close(ce.focal_loss(x, t, weight=w, alpha=a, gamma=1.5, reduction="none"), per)
    _assert_close(ce.focal_loss(x, t, weight=w, alpha=a, gamma=1.5, reduction="sum"), per.sum())
    # probability targets: the mean divides by the number of valid samples (as torch).
    _assert_close(ce.focal_loss(x, t, weight=w, alpha=a, gamma=1.5), per.sum() / 4)


# ---------------------------------------------------------------------------------------------
# focal_loss: gradcheck and saturated logits
# ---------------------------------------------------------------------------------------------

FOCAL_GC = {
    "plain": {},
    "g0.5": {"gamma": 0.5},
    "alpha": {"alpha": 0.25, "gamma": 3.5},
    "alpha-vec": {"alpha": "vec", "gamma": 2.0},
    "weight-ls-ignore": {"weight": True, "label_smoothing": 0.2, "gamma": 1.5},
    "probs": {"from_logits": False, "gamma": 2.0},
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("soft", [False, True], ids=["index", "soft"])
@pytest.mark.parametrize("name", list(FOCAL_GC))
def test_focal_gradcheck(name, soft, reduction):
    rng = _rng("focal-gc", name, soft)
    kw = dict(FOCAL_GC[name])
    x, y = _multiclass_case(14, (3, 4, 2), soft, -100, scale=1.5)
    if not kw.get("from_logits", True):
        x = rng.uniform(0.05, 0.95, size=x.shape)
    if kw.get("alpha") == "vec":
        kw["alpha"] = _t(rng.uniform(0.1, 1.0, size=4))
    w = _t(rng.uniform(0.2, 2.0, size=4)) if kw.pop("weight", False) else None
    target = _t(y) if soft else torch.as_tensor(y)
    assert gradcheck(
        lambda a: ce.focal_loss(a, target, weight=w, reduction=reduction, **kw),
        (_t(x, requires_grad=True),),
        eps=1e-7,
        atol=1e-6,
        rtol=1e-5,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_focal_saturated_logits(gamma, dtype):
    x = torch.tensor(
        [[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [0.0, 1e4, 0.0]],
        dtype=dtype,
        requires_grad=True,
    )
    y = torch.tensor([0, 2, 2, 1])
    for kw in ({}, {"alpha": 0.25}, {"label_smoothing": 0.1}):
        out = ce.focal_loss(x, y, gamma=gamma, reduction="none", **kw)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert out.dtype == dtype
        assert torch.isfinite(out).all(), (kw, out)
        assert torch.isfinite(grad).all(), (kw, grad)
        if not kw:
            # Right with certainty: 0; wrong by 2e4 with p_y -> 0: (1 - p_y)^gamma = 1.
            np.testing.assert_allclose(
                out.detach().double().numpy(), [0.0, 2e4, 0.0, 0.0], rtol=1e-6
            )
            np.testing.assert_allclose(
                grad[1].double().numpy(), [1.0, 0.0, -1.0], rtol=1e-6, atol=1e-6
            )
        np_out = ce.focal_loss(x.detach().numpy(), y.numpy(), gamma=gamma, reduction="none", **kw)
        assert np.isfinite(np_out).all()
        np.testing.assert_allclose(np_out, out.detach().numpy(), rtol=1e-6)


def test_focal_gradient_finite_as_p_y_tends_to_one_with_small_gamma():
    for big in (10.0, 30.0, 700.0):
        x = _t([[big, 0.0, 0.0]], requires_grad=True)
        out = ce.focal_loss(x, torch.tensor([0]), gamma=0.5)
        (grad,) = torch.autograd.grad(out, x)
        assert torch.isfinite(out)
        assert torch.isfinite(grad).all()
        # closed form: l = q^g * (-log(1 - q)), q = 1 - p_y = 2 e^-big / (1 + 2 e^-big)
        log_q = math.log(2.0) - big - math.log1p(2 * math.exp(-big))
        nll = math.log1p(2 * math.exp(-big))
        assert float(out.detach()) == pytest.approx(math.exp(0.5 * log_q) * nll, rel=1e-12)
        assert abs(float(grad.sum())) < 1e-12  # shift invariance of the softmax


JAX_CASES = {
    "sigmoid": (
        lambda x, t: ce.sigmoid_focal_loss(x, t, alpha=0.25, gamma=0.5, reduction="sum"),
        np.asarray([[1e4, -1e4, 3.0], [-1e4, 0.5, -2.0]]),
        np.asarray([[1.0, 0.0, 0.3], [1.0, 1.0, 0.0]]),
    ),
    "softmax-index": (
        lambda x, y: ce.focal_loss(x, y, alpha=0.25, gamma=0.5, label_smoothing=0.1),
        np.asarray([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [0.3, -1.2, 2.0]]),
        np.asarray([0, 2, 1]),
    ),
    "softmax-soft": (
        lambda x, t: ce.focal_loss(x, t, gamma=2.0, reduction="batchmean"),
        np.asarray([[1e4, 0.0, -1e4], [0.3, -1.2, 2.0]]),
        np.asarray([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]),
    ),
}


@pytest.mark.parametrize("name", list(JAX_CASES))
def test_jax_gradients_match_torch(name):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")

    fn, x, t = JAX_CASES[name]
    leaf = _t(x, requires_grad=True)
    target = torch.as_tensor(t)
    (g_torch,) = torch.autograd.grad(fn(leaf, target), leaf)
    g_jax = jax.grad(lambda a: fn(a, jnp.asarray(t)))(jnp.asarray(x))
    assert g_jax.dtype == jnp.float64
    assert np.isfinite(np.asarray(g_jax)).all()
    _assert_close(np.asarray(g_jax), g_torch.numpy(), 1e-12)


# ---------------------------------------------------------------------------------------------
# Every backend
# ---------------------------------------------------------------------------------------------

RNG = np.random.default_rng(2024)
BX = RNG.standard_normal((4, 3, 2)) * 2
BT = RNG.uniform(size=(4, 3, 2))
BY = RNG.integers(0, 3, size=(4, 2))
BY[0, 1] = -100
BP = np.moveaxis(RNG.dirichlet(np.ones(3), size=(4, 2)), -1, 1)
BW = np.asarray([0.5, 1.0, 2.0])
BA = np.asarray([0.2, 0.5, 0.9])

BACKEND_CASES = {
    "sigmoid-default": (lambda x, t: ce.sigmoid_focal_loss(x, t), (BX, BT)),
    "sigmoid-mean-smooth": (
        lambda x, t: ce.sigmoid_focal_loss(
            x, t, alpha=0.7, gamma=0.5, reduction="mean", label_smoothing=0.1
        ),
        (BX, BT),
    ),
    "sigmoid-weight": (
        lambda x, t, w: ce.sigmoid_focal_loss(
            x, t, weight=w[:2], alpha=None, gamma=3.5, reduction="mean", mean_divisor="weight"
        ),
        (BX, BT, BW),
    ),
    "sigmoid-probs": (
        lambda p, t: ce.sigmoid_focal_loss(p, t, from_logits=False, reduction="sum"),
        (BT[::-1].copy(), BT),
    ),
    "focal-index": (
        lambda x, y, w, a: ce.focal_loss(x, y, weight=w, alpha=a, gamma=2.0, label_smoothing=0.1),
        (BX, BY, BW, BA),
    ),
    "focal-index-none": (
        lambda x, y: ce.focal_loss(x, y, alpha=0.25, gamma=0.5, reduction="none"),
        (BX, BY),
    ),
    "focal-soft": (
        lambda x, p, a: ce.focal_loss(x, p, alpha=a, gamma=3.5, reduction="batchmean"),
        (BX, BP, BA),
    ),
    "focal-channel-last": (
        lambda x, y: ce.focal_loss(x, y, gamma=2.0, axis=-1, reduction="sum"),
        (np.moveaxis(BX, 1, -1).copy(), BY),
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(BACKEND_CASES))
def test_every_backend(backend, name, dtype):
    fn, arrays = BACKEND_CASES[name]
    check_on_backend(backend, fn, arrays, dtype)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int16, np.int32])
def test_every_backend_other_integer_label_dtypes(backend, label_dtype):
    # cross_entropy takes any integer labels (torch: converted for ATen); focal_loss shares its
    # conventions, so the labels' integer type must not change the loss (nor raise from inside).
    y = np.asarray([[0, 2], [1, 1], [2, 0], [1, 0]])
    expected = np.asarray(ce.focal_loss(BX, y, alpha=BA, gamma=2.0, reduction="none"))
    out = ce.focal_loss(
        backend.asarray(BX),
        backend.asarray(y.astype(label_dtype)),
        alpha=backend.asarray(BA),
        gamma=2.0,
        reduction="none",
    )
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------

X2, Y2 = np.zeros((2, 3)), np.asarray([0, 2])
XB, TB = np.zeros((2, 3)), np.ones((2, 3))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: ce.sigmoid_focal_loss(XB, TB, gamma=-0.5), ValueError, "gamma"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, gamma=math.inf), ValueError, "gamma"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, gamma="2"), TypeError, "gamma"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, alpha=1.5), ValueError, "alpha"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, alpha="0.25"), TypeError, "alpha"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, reduction="avg"), ValueError, "reduction"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, apply_class_balancing=1), TypeError, "apply_"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, from_logits="no"), TypeError, "from_logits"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, label_smoothing=1.5), ValueError, "label_smooth"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, smoothing_mode="keras"), ValueError, "smoothing_"),
        (lambda: ce.sigmoid_focal_loss(XB, TB, mean_divisor="sum"), ValueError, "mean_divisor"),
        (lambda: ce.sigmoid_focal_loss(XB, TB[:, :2]), ValueError, "target"),
        (lambda: ce.sigmoid_focal_loss(XB, TB * 2), ValueError, "target"),
        (lambda: ce.sigmoid_focal_loss(XB + 2, TB, from_logits=False), ValueError, "input"),
        (lambda: ce.focal_loss(X2, Y2, gamma=-1.0), ValueError, "gamma"),
        (lambda: ce.focal_loss(X2, Y2, gamma=None), TypeError, "gamma"),
        (lambda: ce.grad.focal_loss(X2, Y2, gamma=None), TypeError, "gamma"),
        (lambda: ce.focal_loss(X2, Y2, alpha=[0.5, 0.5]), ValueError, "alpha"),
        (lambda: ce.focal_loss(X2, Y2, alpha=np.ones((1, 3))), ValueError, "alpha"),
        (lambda: ce.focal_loss(X2, Y2, alpha=[0.5, -0.1, 0.5]), ValueError, "alpha"),
        (lambda: ce.focal_loss(X2, Y2, alpha=-0.25), ValueError, "alpha"),
        (lambda: ce.focal_loss(X2, Y2, alpha="x"), (TypeError, ValueError), "alpha"),
        (lambda: ce.focal_loss(X2, Y2, reduction="mean_over"), ValueError, "reduction"),
        (lambda: ce.focal_loss(X2, np.asarray([0, 3])), ValueError, "label"),
        (lambda: ce.focal_loss(X2, Y2, weight=[1.0, 2.0]), ValueError, "weight"),
        (lambda: ce.focal_loss(X2, np.ones((2, 2))), ValueError, "target"),
    ],
)
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_inputs_on_torch():
    x, y = torch.zeros(2, 3), torch.tensor([0, 2])
    with pytest.raises(ValueError, match="alpha"):
        ce.focal_loss(x, y, alpha=torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="alpha"):
        ce.focal_loss(x, y, alpha=torch.tensor([0.5, -1.0, 0.5]))
    with pytest.raises(ValueError, match="gamma"):
        ce.focal_loss(x, y, gamma=-2.0)
    with pytest.raises(ValueError, match="reduction"):
        ce.sigmoid_focal_loss(x, torch.ones(2, 3), reduction="elementwise")


# ---------------------------------------------------------------------------------------------
# Arguments.
# ---------------------------------------------------------------------------------------------


def test_focal_alpha_accepts_numpy_scalars_and_refuses_other_libraries():
    a = ce.focal_loss(np.zeros((2, 2)), [0, 1], alpha=np.float32(0.3))
    b = ce.focal_loss(np.zeros((2, 2)), [0, 1], alpha=0.3)
    assert float(a) == pytest.approx(float(b))
    with pytest.raises(TypeError, match="same array library"):
        ce.focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), alpha=np.asarray([0.3, 0.7]))


def test_focal_losses_take_weight_by_keyword_only():
    """sigmoid_focal_loss takes torchvision's positional parameters (inputs, targets, alpha,
    gamma, reduction); the element weights, and every other option, by keyword only."""
    x, t = _binary_case(6, (3, 4), False)
    positional = ce.sigmoid_focal_loss(_t(x), _t(t), 0.5, 1.5, "sum")
    _assert_close(
        positional, ce.sigmoid_focal_loss(_t(x), _t(t), alpha=0.5, gamma=1.5, reduction="sum"), 0
    )
    want = torchvision_sigmoid_focal_loss(_t(x), _t(t), alpha=0.5, gamma=1.5).sum()
    _assert_close(positional, want, 1e-12)
    with pytest.raises(TypeError):
        ce.sigmoid_focal_loss(_t(x), _t(t), 0.5, 1.5, "sum", _t(t))


def test_focal_loss_of_an_ignored_row_on_a_minus_inf_logit_has_a_zero_gradient():
    # the ignored row's stand-in label (class 0) sits on a -inf logit: no 0 * inf
    x = torch.tensor([[-np.inf, 1.0, 2.0], [0.5, 0.1, -0.3]], requires_grad=True)
    for smoothing in (0.0, 0.1):
        x.grad = None
        ce.focal_loss(x, torch.tensor([-100, 1]), gamma=2.0, label_smoothing=smoothing).backward()
        assert (x.grad[0] == 0).all()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_gamma_gradient_with_a_certain_prediction(gamma):
    """A row predicted with p_y = 1 has the factor 0^gamma (1 at gamma = 0) and no gradient in
    gamma; the others' gradient in gamma, d/dgamma (1 - p)^gamma CE = log(1 - p) (1 - p)^gamma CE,
    is unchanged (was NaN for the batch: 0 * log 0). JAX traced and torch tensor gamma."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = np.array([[50.0, -50.0, 0.0], [1.0, 2.0, 3.0]])
    y = np.array([0, 1])
    p = np.exp(x[1, 1]) / np.exp(x[1]).sum()
    ce_1 = -np.log(p)
    expected = np.log1p(-p) * (1 - p) ** gamma * ce_1 / 2  # the mean over the two rows

    def loss(g):
        return ce.focal_loss(jnp.asarray(x), jnp.asarray(y), gamma=g)

    value = float(jax.jit(loss)(jnp.float64(gamma)))
    assert value == pytest.approx((1 - p) ** gamma * ce_1 / 2, rel=1e-12)
    assert float(jax.grad(loss)(jnp.float64(gamma))) == pytest.approx(expected, rel=1e-10)
    g_t = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
    ce.focal_loss(torch.tensor(x), torch.tensor(y), gamma=g_t).backward()
    assert float(g_t.grad) == pytest.approx(expected, rel=1e-10)


def test_sigmoid_focal_gamma_none_is_refused_everywhere():
    """``gamma=None`` is no focusing number: refused as ``focal_loss`` refuses it (it gave
    ``gamma=0`` on NumPy and, on torch, a plain BCE that dropped ``alpha``)."""
    import crossentropy.grad as grad
    import crossentropy.nn as cnn

    x, t = np.array([0.3, -1.2, 2.0, 0.1]), np.array([1.0, 0.0, 1.0, 0.0])
    for call in (
        lambda: ce.sigmoid_focal_loss(x, t, gamma=None),
        lambda: ce.sigmoid_focal_loss(torch.tensor(x), torch.tensor(t), gamma=None),
        lambda: grad.sigmoid_focal_loss(x, t, gamma=None),
        lambda: cnn.SigmoidFocalLoss(gamma=None),
    ):
        with pytest.raises(TypeError, match="gamma must be a real number; got None"):
            call()
    plain = ce.sigmoid_focal_loss(torch.tensor(x), torch.tensor(t), gamma=0.0)
    np.testing.assert_allclose(plain.numpy(), ce.sigmoid_focal_loss(x, t, gamma=0.0), rtol=1e-14)
