"""crossentropy.grad: closed-form (value, gradient) pairs equal torch autograd's, every option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import grad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)
X = RNG.standard_normal((5, 4, 3)) * 2
Y = RNG.integers(0, 4, (5, 3))
Y[0, 0] = -100
W = RNG.uniform(0.5, 2.0, 4)
P = np.moveaxis(np.asarray(ce.softmax(RNG.standard_normal((5, 3, 4)))), -1, 1)
Z = RNG.standard_normal((4, 3)) * 3
T = RNG.uniform(size=(4, 3))
T[0] = [0.0, 1.0, 1.0]
EW = RNG.uniform(0.1, 1.0, (4, 3))
CLASSES_KEPT = RNG.uniform(size=X.shape) < 0.7  # a where of the input's shape (optax's)
for (n, d), y in np.ndenumerate(Y):
    if y >= 0:
        CLASSES_KEPT[n, y, d] = True  # the target class is never masked (an infinite loss)
CLASSES_KEPT[1, :, 2] = False  # a fully masked row
ROWS_KEPT = RNG.uniform(size=Y.shape) < 0.7  # a where of the target's shape
PW = np.asarray([0.5, 2.0, 1.0])


def _torch(v):
    return torch.tensor(v) if isinstance(v, np.ndarray) else v


def _autograd(fn, x, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, **{k: _torch(v) for k, v in kwargs.items()})
    out.sum().backward()
    return out.detach().numpy(), xt.grad.numpy()


def _check(ours, ref):
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-9, atol=1e-12)


CE_OPTIONS = [
    {},
    {"weight": W, "label_smoothing": 0.2},
    {"weight": W, "label_smoothing": 0.2, "weight_mode": "per_sample"},
    {"z_loss": 1e-2, "softcap": 2.0},
    {"reduction": "none", "weight": W},
    {"reduction": "sum", "label_smoothing": 0.1},
    {"reduction": "batchmean", "weight": W, "z_loss": 1e-3},
    {"weight": W, "mean_divisor": "count", "label_smoothing": 0.3},
    {"empty_mean": 0.0, "axis": 1},
    {"where": CLASSES_KEPT, "weight": W, "label_smoothing": 0.2},
    {"where": CLASSES_KEPT, "label_smoothing": 0.1, "reduction": "none", "z_loss": 1e-2},
    {"where": ROWS_KEPT, "weight": W, "label_smoothing": 0.2, "z_loss": 1e-2},
]


@pytest.mark.parametrize("options", CE_OPTIONS)
@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_matches_autograd(options, soft):
    target = P if soft else Y
    ref = _autograd(lambda x, **kw: ce.cross_entropy(x, torch.tensor(target), **kw), X, **options)
    _check(grad.cross_entropy(X, target, **options), ref)


@pytest.mark.parametrize("clip", [None, "torch", "sklearn", "keras", 1e-3])
def test_cross_entropy_on_probabilities_matches_autograd(clip):
    p = np.asarray(ce.softmax(X, axis=1))
    p[1, 0, 0] = 1e-5  # inside the 1e-3 clip: zero gradient there
    kw = {"from_logits": False, "clip": clip, "label_smoothing": 0.1, "weight": W}
    ref = _autograd(lambda x, **k: ce.cross_entropy(x, torch.tensor(Y), **k), p, **kw)
    _check(grad.cross_entropy(p, Y, **kw), ref)


@pytest.mark.parametrize(
    ("gamma", "alpha", "options"),
    list(
        itertools.product(
            [0.0, 0.5, 2.0],
            [None, 0.3, "vector"],
            [
                {},
                {"weight": W, "label_smoothing": 0.1},
                {"reduction": "sum"},
                {"where": CLASSES_KEPT, "label_smoothing": 0.1},
            ],
        )
    ),
)
@pytest.mark.parametrize("soft", [False, True])
def test_focal_loss_matches_autograd(gamma, alpha, options, soft):
    a = W if alpha == "vector" else alpha
    target = P if soft else Y
    kw = {**options, "gamma": gamma, "alpha": a}
    ref = _autograd(lambda x, **k: ce.focal_loss(x, torch.tensor(target), **k), X, **kw)
    _check(grad.focal_loss(X, target, **kw), ref)


@pytest.mark.parametrize("name", ["cross_entropy", "focal_loss"])
def test_batchmean_of_an_empty_batch_has_an_empty_gradient(name):
    x, y = np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    value, g = getattr(grad, name)(x, y, reduction="batchmean")
    assert g.shape == (0, 3)
    assert np.isnan(value)  # 0 / 0, as the loss itself (and PyTorch's kl_div)
    assert np.isnan(getattr(ce, name)(x, y, reduction="batchmean"))


def test_focal_gradient_is_finite_when_the_target_probability_is_one():
    x = np.asarray([[1e4, 0.0, -1e4], [50.0, 0.0, 0.0]])
    for gamma in (0.5, 2.0):
        value, g = grad.focal_loss(x, [0, 0], gamma=gamma)
        assert np.isfinite(value)
        assert np.isfinite(g).all()


BCE_OPTIONS = [
    {},
    {"pos_weight": PW, "weight": EW},
    {"label_smoothing": 0.1, "smoothing_mode": "flip", "reduction": "sum"},
    {"weight": EW, "mean_divisor": "weight"},
    {"reduction": "batchmean"},
    {"reduction": "none", "label_smoothing": 0.2},
]


@pytest.mark.parametrize("options", BCE_OPTIONS)
def test_bce_with_logits_matches_autograd(options):
    ref = _autograd(
        lambda x, **k: ce.binary_cross_entropy_with_logits(x, torch.tensor(T), **k), Z, **options
    )
    _check(grad.binary_cross_entropy_with_logits(Z, T, **options), ref)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("options", [o for o in BCE_OPTIONS if "pos_weight" not in o])
def test_sigmoid_focal_loss_matches_autograd(gamma, alpha, options):
    kw = {**options, "gamma": gamma, "alpha": alpha}
    ref = _autograd(lambda x, **k: ce.sigmoid_focal_loss(x, torch.tensor(T), **k), Z, **kw)
    _check(grad.sigmoid_focal_loss(Z, T, **kw), ref)


def test_sigmoid_focal_gradient_finite_at_huge_logits():
    value, g = grad.sigmoid_focal_loss([1e4, -1e4, 1e4], [1.0, 0.0, 0.0], gamma=0.5)
    assert np.isfinite(value).all()
    assert np.isfinite(g).all()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight": EW},
        {"weight": EW, "mean_divisor": "count"},
        {"reduction": "none"},
        {"reduction": "batchmean", "weight": EW, "mean_divisor": "weight"},
    ],
)
@pytest.mark.parametrize("name", ["mse_loss", "huber_loss"])
def test_regression_matches_autograd(name, options):
    kw = dict(options, delta=0.7) if name == "huber_loss" else options
    fn = getattr(ce, name)
    ref = _autograd(lambda x, **k: fn(x, torch.tensor(T), **k), Z, **kw)
    _check(getattr(grad, name)(Z, T, **kw), ref)


def test_gradient_of_a_broadcast_input_is_summed_back():
    ref = _autograd(lambda x: ce.mse_loss(x, torch.tensor(T)), Z[:1])
    value, g = grad.mse_loss(Z[:1], T)
    assert g.shape == (1, 3)
    _check((value, g), ref)


def test_all_ignored_batch_has_zero_gradient_with_empty_mean_zero():
    value, g = grad.cross_entropy(X, np.full_like(Y, -100), empty_mean=0.0)
    assert float(value) == 0.0
    assert not g.any()


def test_cross_entropy_gradient_is_softmax_minus_target():
    _value, g = grad.cross_entropy(X, P, reduction="sum")
    np.testing.assert_allclose(g, np.asarray(ce.softmax(X, axis=1)) - P, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_on_every_backend(backend, dtype):
    x = backend.asarray(X, dtype=dtype)
    y = backend.asarray(Y)
    value, g = grad.cross_entropy(x, y, weight=backend.asarray(W, dtype=dtype), label_smoothing=0.1)
    assert backend.is_native(g)
    assert str(g.dtype).endswith(np.dtype(dtype).name)
    ref_value, ref_g = grad.cross_entropy(X, Y, weight=W, label_smoothing=0.1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(backend.to_numpy(g), ref_g, rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(value), ref_value, rtol=tol)


def test_unknown_keyword_raises():
    with pytest.raises(TypeError, match="unexpected keyword"):
        grad.cross_entropy(X, Y, lable_smoothing=0.1)


# ---------------------------------------------------------------------------------------------
# Finite and exact gradients at the edges.
# ---------------------------------------------------------------------------------------------


def test_grad_focal_is_finite_at_masked_logits_and_certain_classes():
    from crossentropy import grad

    for target in ([1], [[0.0, 0.5, 0.5]]):
        x = torch.tensor([[-np.inf, 1.0, 2.0]], dtype=torch.float64, requires_grad=True)
        ce.focal_loss(x, torch.tensor(target)).backward()
        _, g = grad.focal_loss(np.asarray([[-np.inf, 1.0, 2.0]]), target)
        np.testing.assert_allclose(g, x.grad.numpy(), atol=1e-12)
    _, g = grad.focal_loss([[0.0, 800.0]], [1], gamma=0.0)
    np.testing.assert_array_equal(g, [[0.0, 0.0]])


def test_grad_on_probabilities_is_zero_for_untargeted_zero_probabilities():
    from crossentropy import grad

    _, g = grad.cross_entropy([[0.0, 0.3, 0.7]], [1], from_logits=False)
    np.testing.assert_allclose(g, [[0.0, -1 / 0.3, 0.0]])


def test_grad_sigmoid_focal_has_no_cancellation_for_confident_positives():
    from crossentropy import grad

    x = torch.tensor([15.0, 17.0, 30.0], dtype=torch.float64, requires_grad=True)
    ce.sigmoid_focal_loss(x, torch.ones(3, dtype=torch.float64)).sum().backward()
    _, g = grad.sigmoid_focal_loss(np.asarray([15.0, 17.0, 30.0]), np.ones(3))
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("mse_loss", np.zeros((4, 3))),
        ("binary_cross_entropy_with_logits", T),
        ("cross_entropy", np.full((4, 3), 1 / 3)),
    ],
)
def test_a_float64_target_promotes_the_loss_and_the_gradient_keeps_the_inputs_dtype(name, target):
    z = Z.astype(np.float32)
    value, g = getattr(grad, name)(z, target)
    assert value.dtype == np.float64  # as NumPy (and PyTorch) promote
    assert g.dtype == np.float32
    ref_value, ref_g = getattr(grad, name)(Z.astype(np.float32).astype(np.float64), target)
    np.testing.assert_allclose(value, ref_value, rtol=1e-15)
    np.testing.assert_allclose(g, ref_g.astype(np.float32), rtol=1e-6)
    value, g = getattr(grad, name)(z, target.astype(np.float32))
    assert value.dtype == g.dtype == np.float32
