"""``crossentropy.losses.options``: the keyword options of the losses, validated once per loss
family. An unknown or ill-typed ``reduction``, ``empty_mean``, ``label_smoothing``,
``ignore_index``, ``z_loss``, ``softcap``, ``mean_divisor``, ``weight_mode``, ``smoothing_mode``,
``clip`` or flag raises ``ValueError`` / ``TypeError`` naming the option, for every loss that
takes it; so do options that cannot go together."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import crossentropy as ce
from _helpers import lib_labels, lib_logits, lib_probs

LOSS_CALLS = {
    "cross_entropy": lambda lib, **kw: ce.cross_entropy(lib_logits(lib), lib_labels(lib), **kw),
    "nll_loss": lambda lib, **kw: ce.nll_loss(lib_logits(lib), lib_labels(lib), **kw),
    "binary_cross_entropy": lambda lib, **kw: ce.binary_cross_entropy(
        lib_probs(lib), lib_probs(lib), **kw
    ),
    "binary_cross_entropy_with_logits": lambda lib, **kw: ce.binary_cross_entropy_with_logits(
        lib_logits(lib), lib_probs(lib), **kw
    ),
    "kl_div": lambda lib, **kw: ce.kl_div(lib_logits(lib), lib_probs(lib), **kw),
}


@pytest.mark.parametrize("reduction", ["avg", "MEAN", "", None, 1])
@pytest.mark.parametrize("name", list(LOSS_CALLS))
def test_unknown_reduction(lib, name, reduction):
    with pytest.raises(ValueError, match="reduction"):
        LOSS_CALLS[name](lib, reduction=reduction)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "binary_cross_entropy", "kl_div"])
@pytest.mark.parametrize("empty_mean", ["nan", None, True])
def test_empty_mean_wrong_type(lib, name, empty_mean):
    with pytest.raises(TypeError, match="empty_mean"):
        LOSS_CALLS[name](lib, empty_mean=empty_mean)


def test_empty_mean_infinite(lib):
    with pytest.raises(ValueError, match="empty_mean"):
        LOSS_CALLS["cross_entropy"](lib, empty_mean=math.inf)


@pytest.mark.parametrize("eps", [-0.1, 1.5, math.nan, math.inf])
@pytest.mark.parametrize(
    "name", ["cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits"]
)
def test_label_smoothing_outside_unit_interval(lib, name, eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        LOSS_CALLS[name](lib, label_smoothing=eps)


def test_label_smoothing_wrong_type(lib):
    with pytest.raises(TypeError, match="label_smoothing"):
        LOSS_CALLS["cross_entropy"](lib, label_smoothing="0.1")


@pytest.mark.parametrize("ignore_index", [-100.0, "-100", None, 1.5])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_non_integer_ignore_index(lib, name, ignore_index):
    with pytest.raises(TypeError, match="ignore_index"):
        LOSS_CALLS[name](lib, ignore_index=ignore_index)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_ignore_index_as_an_integer_array_is_its_value(lib, name):
    """A one-element integer array or 0-d tensor is read as its integer, as PyTorch reads one;
    a float or bool array, or one of several elements, is refused naming the argument."""
    torch = pytest.importorskip("torch")
    want = LOSS_CALLS[name](lib, ignore_index=1)
    for given in (torch.tensor(1), np.array(1), np.int16(1), torch.tensor([1])):
        got = LOSS_CALLS[name](lib, ignore_index=given)
        np.testing.assert_array_equal(lib.to_numpy(got), lib.to_numpy(want))
    for bad in (torch.tensor(1.0), torch.tensor(True), np.array(True), torch.tensor([1, 2])):
        with pytest.raises(TypeError, match="ignore_index must be an integer"):
            LOSS_CALLS[name](lib, ignore_index=bad)


@pytest.mark.parametrize("z", [-1e-4, -1.0, math.nan, math.inf])
def test_bad_z_loss(lib, z):
    with pytest.raises(ValueError, match="z_loss"):
        LOSS_CALLS["cross_entropy"](lib, z_loss=z)


@pytest.mark.parametrize("cap", [0, 0.0, -1.0, math.inf, math.nan])
def test_bad_softcap(lib, cap):
    with pytest.raises(ValueError, match="softcap"):
        LOSS_CALLS["cross_entropy"](lib, softcap=cap)


@pytest.mark.parametrize("value", ["sum", "Weight", "", None, 1])
def test_unknown_mean_divisor(lib, value):
    with pytest.raises(ValueError, match="mean_divisor"):
        LOSS_CALLS["cross_entropy"](lib, mean_divisor=value)
    for name in ("nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        with pytest.raises(ValueError, match="mean_divisor"):
            LOSS_CALLS[name](lib, mean_divisor=value)


@pytest.mark.parametrize("value", ["sample", "per-class", None])
def test_unknown_weight_mode(lib, value):
    with pytest.raises(ValueError, match="weight_mode"):
        LOSS_CALLS["cross_entropy"](lib, weight_mode=value)


@pytest.mark.parametrize("value", ["keras", "Uniform", None])
@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_unknown_smoothing_mode(lib, name, value):
    with pytest.raises(ValueError, match="smoothing_mode"):
        LOSS_CALLS[name](lib, smoothing_mode=value, label_smoothing=0.1)


@pytest.mark.parametrize("clip", ["tf", "Torch", 0.0, 0.5, -0.1, 1.0, math.nan])
def test_unknown_clip(lib, clip):
    with pytest.raises(ValueError, match="clip"):
        LOSS_CALLS["binary_cross_entropy"](lib, clip=clip)
    with pytest.raises(ValueError, match="clip"):
        ce.cross_entropy(lib_probs(lib), lib_labels(lib), from_logits=False, clip=clip)


def test_clip_needs_probabilities(lib):
    with pytest.raises(ValueError, match="clip"):
        LOSS_CALLS["cross_entropy"](lib, clip="keras")


def test_z_loss_and_softcap_need_logits(lib):
    with pytest.raises(ValueError, match="z_loss"):
        ce.cross_entropy(lib_probs(lib), lib_labels(lib), from_logits=False, z_loss=1e-3)
    with pytest.raises(ValueError, match="softcap"):
        ce.cross_entropy(lib_probs(lib), lib_labels(lib), from_logits=False, softcap=30.0)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bool_flags_wrong_type(lib, value):
    with pytest.raises(TypeError, match="from_logits"):
        LOSS_CALLS["cross_entropy"](lib, from_logits=value)
    with pytest.raises(TypeError, match="log_target"):
        LOSS_CALLS["kl_div"](lib, log_target=value)


def test_grad_takes_exactly_the_functions_keywords():
    from crossentropy import grad

    with pytest.raises(TypeError, match=r"grad.cross_entropy\(\).*'zloss'.*'z_loss'"):
        grad.cross_entropy([[1.0, 2.0]], [0], zloss=1e-3)
    with pytest.raises(TypeError, match="gamma"):
        grad.cross_entropy([[1.0, 2.0]], [0], gamma=2.0)  # a focal-loss keyword
    value, _ = grad.cross_entropy([[1.0, 2.0]], [0], z_loss=1e-3, reduction="sum")
    assert float(value) == pytest.approx(float(ce.cross_entropy([[1.0, 2.0]], [0], z_loss=1e-3)))


def test_options_are_frozen_validated_and_replaced_with_validation():
    from dataclasses import FrozenInstanceError

    from crossentropy.losses.options import SoftmaxOptions

    o = SoftmaxOptions(label_smoothing=0.1)
    with pytest.raises(FrozenInstanceError):
        o.label_smoothing = 0.2  # type: ignore[misc]
    with pytest.raises(ValueError, match="label_smoothing"):
        o.replace(label_smoothing=2.0)
    assert o.replace(reduction="sum").reduction == "sum"
    assert o.changed() == {"label_smoothing": 0.1}


def test_hyperparameters_may_be_0d_arrays_checked_where_readable():
    np_h = np.asarray(0.25)
    assert float(ce.focal_loss([[1.0, 2.0]], [0], gamma=np_h)) == pytest.approx(
        float(ce.focal_loss([[1.0, 2.0]], [0], gamma=0.25))
    )
    with pytest.raises(ValueError, match="label_smoothing"):
        ce.cross_entropy([[1.0, 2.0]], [0], label_smoothing=np.asarray([0.1, 0.2]))
    with pytest.raises(ValueError, match="label_smoothing"):
        ce.cross_entropy([[1.0, 2.0]], [0], label_smoothing=np.asarray(1.5))


def test_a_hyperparameter_of_another_array_library_is_read_as_a_number():
    """A concrete JAX scalar given to a torch loss (or a torch one to a JAX loss) counts as
    its number; a traced one cannot be read: a TypeError that says so (was an AttributeError
    from inside)."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    expected = ce.focal_loss(x, y, gamma=2.0, label_smoothing=0.1)
    got = ce.focal_loss(x, y, gamma=jax.numpy.asarray(2.0), label_smoothing=jax.numpy.asarray(0.1))
    assert float(got) == float(expected)
    with pytest.raises(TypeError, match=r"gamma \(of another array library than the input"):
        jax.jit(lambda g: ce.focal_loss(x, y, gamma=g))(2.0)
    with pytest.raises(TypeError, match=r"^label_smoothing \(of another .* is traced by JAX"):
        jax.jit(lambda e: ce.cross_entropy(x.numpy(), y.numpy(), label_smoothing=e))(0.1)


@pytest.mark.parametrize(
    ("loss", "kw"),
    [
        ("cross_entropy", {"label_smoothing": 1.5}),
        ("cross_entropy", {"z_loss": -1.0}),
        ("cross_entropy", {"softcap": 0.0}),
        ("cross_entropy", {"label_smoothing": math.nan}),
        ("focal_loss", {"alpha": -1.0}),
        ("focal_loss", {"gamma": -0.5}),
        ("sigmoid_focal_loss", {"alpha": 2.0}),
        ("huber_loss", {"delta": 0.0}),
    ],
)
def test_an_unread_hyperparameter_out_of_range_gives_nan(loss: str, kw: dict[str, float]):
    """A hyperparameter that cannot be read (traced by jax.jit; a tensor with validation
    off) and is out of range gives NaN, not a silent number (cross_entropy gave 1.66 for
    label_smoothing 1.5, focal_loss -0.42 for alpha -1); read, it is a ValueError; in range,
    the same number as a Python float."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    torch = pytest.importorskip("torch")
    name, value = next(iter(kw.items()))
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if loss == "sigmoid_focal_loss" else [1, 2]
    y = x[:, :1] * 0.5 if loss == "huber_loss" else y
    x = x[:, :1] if loss == "huber_loss" else x
    fn = getattr(ce, loss)
    if loss == "sigmoid_focal_loss":  # torchvision's default reduction is "none"
        fn = functools.partial(fn, reduction="mean")
    good = {"label_smoothing": 0.1, "z_loss": 0.1, "softcap": 5.0, "alpha": 0.25}
    good |= {"gamma": 2.0, "delta": 1.0}
    traced = jax.jit(lambda h: fn(jnp.asarray(x), jnp.asarray(y), **{name: h}))
    assert math.isnan(float(traced(value)))
    assert float(traced(good[name])) == pytest.approx(
        float(fn(jnp.asarray(x), jnp.asarray(y), **{name: good[name]})), rel=1e-6
    )
    xt, yt = torch.as_tensor(x), torch.as_tensor(np.asarray(y))
    with ce.validation(False):
        assert math.isnan(float(fn(xt, yt, **{name: torch.tensor(value)})))
    with pytest.raises(ValueError, match=name):
        fn(xt, yt, **{name: torch.tensor(value)})


def test_an_unread_integer_hyperparameter_is_a_number():
    """A 0-d integer hyperparameter that cannot be read is compared and kept as a float (an
    array-api-strict one raised on the float bounds)."""
    xps = pytest.importorskip("array_api_strict")
    torch = pytest.importorskip("torch")
    x, y = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2]
    want = float(ce.focal_loss(np.asarray(x), np.asarray(y), gamma=2.0))
    with ce.validation(False):
        got = ce.focal_loss(xps.asarray(x), xps.asarray(y), gamma=xps.asarray(2))
        assert float(got) == pytest.approx(want, rel=1e-12)
        assert math.isnan(
            float(ce.focal_loss(xps.asarray(x), xps.asarray(y), gamma=xps.asarray(-1)))
        )
        got = ce.focal_loss(
            torch.tensor(x, dtype=torch.float64), torch.tensor(y), gamma=torch.tensor(2)
        )
        assert float(got) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("ignore_index", [2**63, -(2**63) - 1, 2**70])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_ignore_index_beyond_64_bits_is_refused_on_every_backend(lib, name, ignore_index):
    """An ignore_index no 64-bit label can equal: one ValueError naming it (torch raised
    "Overflow when unpacking long long", NumPy took it silently)."""
    with pytest.raises(ValueError, match=r"ignore_index must lie in \[-2\*\*63, 2\*\*63\)"):
        LOSS_CALLS[name](lib, ignore_index=ignore_index)
    if ignore_index == 2**70:  # the other losses and the fused ops too
        x = lib.asarray([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]) if lib.name != "dask" else None
        if x is not None:
            with pytest.raises(ValueError, match="ignore_index must lie in"):
                ce.dice_loss(x, lib.asarray([1, 2]), mode="multiclass", ignore_index=ignore_index)
    edge = LOSS_CALLS[name](lib, ignore_index=-(2**63))  # the edge itself: a label never equals
    np.testing.assert_allclose(lib.to_numpy(edge), lib.to_numpy(LOSS_CALLS[name](lib)))
