"""Bad input raises ValueError or TypeError whose message names the argument."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import crossentropy as ce
from conftest import BACKENDS
from crossentropy import information

# The concrete backends whose values are validated eagerly.
LIBS = ["numpy", "torch", "array_api_strict"]


@pytest.fixture(params=LIBS)
def lib(request):
    return BACKENDS[request.param]


def _logits(lib, shape=(2, 3)):
    return lib.asarray(np.arange(math.prod(shape), dtype=np.float64).reshape(shape) / 10)


def _labels(lib, values=(0, 2)):
    return lib.asarray(np.asarray(values, dtype=np.int64))


def _scalar(lib, value, dtype=np.float64):
    """A 0-d array (the conftest helper turns 0-d input into 1-d tensors for torch)."""
    if lib.name == "torch":
        return torch.tensor(value, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
    return lib.asarray(np.asarray(value, dtype=dtype))


def _probs(lib, values=((0.2, 0.8, 0.0), (0.5, 0.25, 0.25))):
    return lib.asarray(np.asarray(values, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Shapes.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3,), (2, 1), (1, 2), ()])
def test_class_index_target_wrong_shape(lib, shape):
    y = _scalar(lib, 0, np.int64) if shape == () else lib.asarray(np.zeros(shape, dtype=np.int64))
    with pytest.raises(ValueError, match="target") as info:
        ce.cross_entropy(_logits(lib), y)
    assert "(2," in str(info.value)  # names the expected shape
    with pytest.raises(ValueError, match="target"):
        ce.nll_loss(_logits(lib), y)


def test_spatial_target_wrong_shape(lib):
    x = _logits(lib, (2, 3, 4))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, lib.asarray(np.zeros((2, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, lib.asarray(np.zeros((2, 4), dtype=np.int64)), axis=-1)


@pytest.mark.parametrize("shape", [(2, 2), (2,), (3, 3), (2, 3, 1)])
def test_probability_target_wrong_shape(lib, shape):
    t = lib.asarray(np.full(shape, 0.5))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(_logits(lib), t)


def test_binary_target_wrong_shape(lib):
    x = lib.asarray(np.full((2, 3), 0.5))
    t = lib.asarray(np.full((2, 2), 1.0))
    with pytest.raises(ValueError, match="target"):
        ce.binary_cross_entropy(x, t)
    with pytest.raises(ValueError, match="target"):
        ce.binary_cross_entropy_with_logits(x, t)


def test_zero_dimensional_input(lib):
    with pytest.raises(ValueError, match="input"):
        ce.cross_entropy(_scalar(lib, 1.0), _scalar(lib, 0, np.int64))


def test_distributions_that_do_not_broadcast(lib):
    p = lib.asarray(np.full((2, 3), 1 / 3))
    q = lib.asarray(np.full((2, 4), 1 / 4))
    for fn in (ce.kl_divergence, ce.js_divergence, information.cross_entropy):
        with pytest.raises(ValueError, match=r"p .* q"):
            fn(p, q)


def test_binary_weight_that_does_not_broadcast(lib):
    x = lib.asarray(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="weight"):
        ce.binary_cross_entropy(x, x, lib.asarray(np.ones(2)))
    with pytest.raises(ValueError, match="pos_weight"):
        ce.binary_cross_entropy_with_logits(x, x, pos_weight=lib.asarray(np.ones(4)))


def test_kl_div_shapes_that_do_not_broadcast(lib):
    with pytest.raises(ValueError, match="input"):
        ce.kl_div(lib.asarray(np.zeros((2, 3))), lib.asarray(np.full((2, 4), 0.25)))


# ---------------------------------------------------------------------------------------------
# Dtypes.
# ---------------------------------------------------------------------------------------------


def _complex(lib):
    z = np.array([[1 + 1j, 0.5, 0.0], [0.0, 1.0, 2.0]], dtype=np.complex128)
    return torch.from_numpy(z) if lib.name == "torch" else z


@pytest.mark.parametrize("lib_name", ["numpy", "torch"])
def test_complex_input(lib_name):
    lib = BACKENDS[lib_name]
    z = _complex(lib)
    with pytest.raises(TypeError, match="input"):
        ce.cross_entropy(z, _labels(lib))
    with pytest.raises(TypeError, match="input"):
        ce.binary_cross_entropy_with_logits(z, _probs(lib))
    with pytest.raises(TypeError, match=r"\bx\b"):
        ce.softmax(z)
    with pytest.raises(TypeError, match=r"\bx\b"):
        ce.logsumexp(z)
    with pytest.raises(TypeError, match=r"\bp\b"):
        ce.entropy(z)


def test_string_target():
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
        ce.cross_entropy(_logits(lib), t)
    with pytest.raises(TypeError, match="target"):
        ce.nll_loss(_logits(lib), t)


def test_float_target_for_nll_loss(lib):
    with pytest.raises(TypeError, match="target"):
        ce.nll_loss(_logits(lib), _probs(lib, [[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]]))


def test_not_an_array():
    with pytest.raises(TypeError, match="input"):
        ce.cross_entropy(object(), [0])
    with pytest.raises(TypeError, match=r"\bx\b"):
        ce.softmax({"a": 1})


# ---------------------------------------------------------------------------------------------
# Labels out of range.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [3, 7, -1, -99, -101])
def test_label_out_of_range(lib, bad):
    y = _labels(lib, (0, bad))
    with pytest.raises(ValueError, match="target") as info:
        ce.cross_entropy(_logits(lib), y)
    message = str(info.value)
    assert str(bad) in message
    assert "[0, 3)" in message
    with pytest.raises(ValueError, match="target"):
        ce.nll_loss(_logits(lib), y)
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(_logits(lib), y, reduction="none")
    # Off ATen's fast path on torch as well.
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(_logits(lib), y, empty_mean=0.0, label_smoothing=0.1)


def test_label_out_of_range_with_custom_ignore_index(lib):
    y = _labels(lib, (0, -100))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(_logits(lib), y, ignore_index=-1)
    # -1 is fine when it is the ignore_index.
    ce.cross_entropy(_logits(lib), _labels(lib, (0, -1)), ignore_index=-1)


def test_label_out_of_range_one_dimensional(lib):
    # A single sample: input (C,), target ().
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(lib.asarray(np.zeros(3)), _scalar(lib, 3, np.int64))


@pytest.mark.parametrize("bad", [3, -1])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_torch_out_of_range_label_is_value_error(fn, bad):
    # ATen raises IndexError (or a RuntimeError); the library must raise ValueError first.
    x = torch.randn(4, 3, dtype=torch.float32)
    y = torch.tensor([0, 1, bad, 2])
    with pytest.raises(ValueError, match="target"):
        getattr(ce, fn)(x, y)
    with pytest.raises(ValueError, match="target"):
        getattr(ce, fn)(x, y.int(), weight=torch.ones(3))
    with pytest.raises(ValueError, match="target"):
        getattr(ce, fn)(x.reshape(1, 3, 4).contiguous(), y.reshape(1, 4))


def test_eager_jax_out_of_range_label_raises():
    # Eager JAX arrays are concrete (see _lib.is_concrete): their labels are checked.
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, jnp.asarray([0, 3]))


def test_eager_jax_probability_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="input"):
        ce.binary_cross_entropy(jnp.asarray([0.5, 1.5]), jnp.asarray([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.entropy(jnp.asarray([1.5, -0.5]))
    with pytest.raises(ValueError, match="label 3"):
        ce.cross_entropy(jnp.zeros((2, 3)), jnp.asarray([0, 3]))


# ---------------------------------------------------------------------------------------------
# Probabilities outside [0, 1].
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, 1.5, -np.inf, np.inf])
def test_binary_cross_entropy_probability_out_of_range(lib, bad):
    ok = lib.asarray(np.array([0.2, 0.7, 1.0]))
    wrong = lib.asarray(np.array([0.2, bad, 1.0]))
    with pytest.raises(ValueError, match="input") as info:
        ce.binary_cross_entropy(wrong, ok)
    assert "(1,)" in str(info.value)  # the position of the bad entry
    with pytest.raises(ValueError, match="target"):
        ce.binary_cross_entropy(ok, wrong)
    with pytest.raises(ValueError, match="target"):
        ce.binary_cross_entropy_with_logits(ok, wrong)
    # Off torch's fast path too.
    with pytest.raises(ValueError, match="input"):
        ce.binary_cross_entropy(wrong, ok, clip="keras")


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_information_probability_out_of_range(lib, bad):
    ok = lib.asarray(np.array([[0.5, 0.5, 0.0]]))
    wrong = lib.asarray(np.array([[0.5, bad, 0.0]]))
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.entropy(wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.kl_divergence(wrong, ok)
    with pytest.raises(ValueError, match=r"\bq\b"):
        ce.kl_divergence(ok, wrong)
    with pytest.raises(ValueError, match=r"\bq\b"):
        information.cross_entropy(ok, wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.js_divergence(wrong, ok)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.binary_entropy(wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.self_information(wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.perplexity(wrong)


def test_cross_entropy_probabilities_out_of_range(lib):
    x = lib.asarray(np.array([[0.2, 0.8], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, lib.asarray(np.array([[1.2, -0.2], [0.5, 0.5]])))
    with pytest.raises(ValueError, match="input"):
        ce.cross_entropy(
            lib.asarray(np.array([[1.2, -0.2], [0.5, 0.5]])),
            _labels(lib, (0, 1)),
            from_logits=False,
        )
    with pytest.raises(ValueError, match="target"):
        ce.kl_div(x, lib.asarray(np.array([[1.2, -0.2], [0.5, 0.5]])))


# ---------------------------------------------------------------------------------------------
# Class weights.
# ---------------------------------------------------------------------------------------------


def test_negative_class_weight_as_torch(lib):
    # PyTorch takes any real class weights (its OpInfo samples use negative ones): same numbers.
    w = np.array([1.0, -0.5, 2.0])
    x, y, p = _logits(lib), _labels(lib), _probs(lib)
    tx, ty, tp, tw = (torch.as_tensor(lib.to_numpy(a)) for a in (x, y, p, lib.asarray(w)))
    pairs = [
        (ce.cross_entropy(x, y, lib.asarray(w)), F.cross_entropy(tx, ty, tw)),
        (ce.nll_loss(x, y, lib.asarray(w)), F.nll_loss(tx, ty, tw)),
        (ce.cross_entropy(x, p, lib.asarray(w)), F.cross_entropy(tx, tp, tw)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(lib.to_numpy(ours), theirs.numpy(), rtol=1e-12)


def test_negative_binary_weights_as_torch(lib):
    x = np.full((2, 3), 0.5)
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.5]])
    w = np.array([1.0, -1.0, 1.0])
    tx, tt, tw = (torch.as_tensor(a) for a in (x, t, w))
    pairs = [
        (
            ce.binary_cross_entropy(*map(lib.asarray, (x, t, w))),
            F.binary_cross_entropy(tx, tt, tw.expand_as(tx)),
        ),
        (
            ce.binary_cross_entropy_with_logits(*map(lib.asarray, (x, t, w))),
            F.binary_cross_entropy_with_logits(tx, tt, tw),
        ),
        (
            ce.binary_cross_entropy_with_logits(
                lib.asarray(x), lib.asarray(t), pos_weight=lib.asarray(w)
            ),
            F.binary_cross_entropy_with_logits(tx, tt, pos_weight=tw),
        ),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(lib.to_numpy(ours), theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(2,), (4,), (1, 3), ()])
def test_class_weight_wrong_shape(lib, shape):
    w = lib.asarray(np.ones(shape))
    with pytest.raises(ValueError, match="weight") as info:
        ce.cross_entropy(_logits(lib), _labels(lib), w)
    assert "(3,)" in str(info.value)
    with pytest.raises(ValueError, match="weight"):
        ce.nll_loss(_logits(lib), _labels(lib), w)


# ---------------------------------------------------------------------------------------------
# Keyword options.
# ---------------------------------------------------------------------------------------------

LOSS_CALLS = {
    "cross_entropy": lambda lib, **kw: ce.cross_entropy(_logits(lib), _labels(lib), **kw),
    "nll_loss": lambda lib, **kw: ce.nll_loss(_logits(lib), _labels(lib), **kw),
    "binary_cross_entropy": lambda lib, **kw: ce.binary_cross_entropy(
        _probs(lib), _probs(lib), **kw
    ),
    "binary_cross_entropy_with_logits": lambda lib, **kw: ce.binary_cross_entropy_with_logits(
        _logits(lib), _probs(lib), **kw
    ),
    "kl_div": lambda lib, **kw: ce.kl_div(_logits(lib), _probs(lib), **kw),
}


@pytest.mark.parametrize("reduction", ["avg", "MEAN", "", None, 1, "elementwise_mean"])
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


INFO_CALLS = {
    "entropy": lambda p, **kw: ce.entropy(p, **kw),
    "kl_divergence": lambda p, **kw: ce.kl_divergence(p, p, **kw),
    "js_divergence": lambda p, **kw: ce.js_divergence(p, p, **kw),
    "cross_entropy": lambda p, **kw: information.cross_entropy(p, p, **kw),
    "binary_entropy": lambda p, **kw: ce.binary_entropy(p, **kw),
    "self_information": lambda p, **kw: ce.self_information(p, **kw),
}


@pytest.mark.parametrize("base", [1, 1.0, 0.5, 0, -2, math.inf, math.nan])
@pytest.mark.parametrize("name", list(INFO_CALLS))
def test_bad_base(lib, name, base):
    with pytest.raises(ValueError, match="base"):
        INFO_CALLS[name](_probs(lib), base=base)


@pytest.mark.parametrize("base", ["2", None, True])
def test_base_wrong_type(lib, base):
    with pytest.raises(TypeError, match="base"):
        ce.entropy(_probs(lib), base=base)


@pytest.mark.parametrize("ignore_index", [-100.0, "-100", None, 1.5])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_non_integer_ignore_index(lib, name, ignore_index):
    with pytest.raises(TypeError, match="ignore_index"):
        LOSS_CALLS[name](lib, ignore_index=ignore_index)


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
        ce.cross_entropy(_probs(lib), _labels(lib), from_logits=False, clip=clip)


def test_clip_needs_probabilities(lib):
    with pytest.raises(ValueError, match="clip"):
        LOSS_CALLS["cross_entropy"](lib, clip="keras")


def test_z_loss_and_softcap_need_logits(lib):
    with pytest.raises(ValueError, match="z_loss"):
        ce.cross_entropy(_probs(lib), _labels(lib), from_logits=False, z_loss=1e-3)
    with pytest.raises(ValueError, match="softcap"):
        ce.cross_entropy(_probs(lib), _labels(lib), from_logits=False, softcap=30.0)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bool_flags_wrong_type(lib, value):
    with pytest.raises(TypeError, match="from_logits"):
        LOSS_CALLS["cross_entropy"](lib, from_logits=value)
    with pytest.raises(TypeError, match="log_target"):
        LOSS_CALLS["kl_div"](lib, log_target=value)


# ---------------------------------------------------------------------------------------------
# Mixed array libraries and axes.
# ---------------------------------------------------------------------------------------------


def test_mixing_numpy_and_torch():
    x_np, x_t = np.zeros((2, 3)), torch.zeros(2, 3, dtype=torch.float64)
    y_np, y_t = np.array([0, 1]), torch.tensor([0, 1])
    with pytest.raises(TypeError, match="input") as info:
        ce.cross_entropy(x_np, y_t)
    assert "target" in str(info.value)
    with pytest.raises(TypeError, match="weight"):
        ce.cross_entropy(x_t, y_t, np.ones(3))
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(x_t, y_np)
    with pytest.raises(TypeError, match="target"):
        ce.binary_cross_entropy_with_logits(x_t, np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"\bq\b"):
        ce.kl_divergence(np.full(3, 1 / 3), torch.full((3,), 1 / 3))
    with pytest.raises(TypeError, match="y"):
        ce.xlogy(x_np, x_t)


def test_mixing_numpy_and_jax():
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(jnp.zeros((2, 3)), np.array([0, 1]))


@pytest.mark.parametrize("axis", [2, -3, 10])
def test_axis_out_of_range(lib, axis):
    x = _logits(lib)
    for fn in (ce.softmax, ce.log_softmax, ce.logsumexp):
        with pytest.raises(ValueError, match="axis"):
            fn(x, axis=axis)
    for fn in (ce.entropy, ce.perplexity):
        with pytest.raises(ValueError, match="axis"):
            fn(_probs(lib), axis=axis)
    with pytest.raises(ValueError, match="axis"):
        ce.kl_divergence(_probs(lib), _probs(lib), axis=axis)
    with pytest.raises(ValueError, match="axis"):
        ce.cross_entropy(x, _labels(lib), axis=axis)


@pytest.mark.parametrize("axis", [1.0, "1", None])
def test_axis_wrong_type(lib, axis):
    with pytest.raises(TypeError, match="axis"):
        ce.softmax(_logits(lib), axis=axis)
    with pytest.raises(TypeError, match="axis"):
        ce.logsumexp(_logits(lib), axis=axis)
    if axis is not None:  # entropy(axis=None) is the entropy of the whole array
        with pytest.raises(TypeError, match="axis"):
            ce.entropy(_probs(lib), axis=axis)


def test_information_needs_a_distribution_axis(lib):
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.entropy(_scalar(lib, 0.5))
