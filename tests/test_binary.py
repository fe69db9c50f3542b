"""``crossentropy.losses.binary``: binary_cross_entropy and binary_cross_entropy_with_logits.
Huge logits, NaN, probabilities outside [0, 1], the checks of target, weight and pos_weight
shapes, negative weights as in torch, and gradients: ``torch.autograd.gradcheck`` over clipping,
smoothing and weights, and JAX against torch."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

import crossentropy as ce
from _helpers import (
    REDUCTIONS,
    cotangent_for,
    gradcheck_float64,
    jax_grads,
    keyed_rng,
    native_values,
    to_torch,
    torch_grads,
    uniform_probs,
)

LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------
# Huge logits and NaN.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_bce_with_logits_exact(backend, dtype):
    x = backend.asarray([1e4, -1e4, 1e4, -1e4, 0.0], dtype)
    t = backend.asarray([0.0, 1.0, 1.0, 0.0, 1.0], dtype)
    out = native_values(ce.binary_cross_entropy_with_logits(x, t, reduction="none"), backend)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, [1e4, 1e4, 0.0, 0.0, LN2], rtol=1e-6, atol=1e-30)
    smoothed = ce.binary_cross_entropy_with_logits(x, t, reduction="none", label_smoothing=0.1)
    # uniform smoothing: t' = t * 0.9 + 0.05, so a wrong-signed 1e4 logit costs 0.95e4.
    np.testing.assert_allclose(
        native_values(smoothed, backend), [0.95e4, 0.95e4, 0.05e4, 0.05e4, LN2], rtol=1e-6
    )


@pytest.mark.parametrize("clip", [None, "sklearn", "torch", 1e-12])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_keeps_the_digits_of_a_small_probability(backend, dtype, clip):
    """-log(1 - p) of a small p with target 0 is p to the last digit: log(1 - p) as
    log1p(-p) (1 - p rounded away p's digits: 4e8 eps at 1e-10; 0 at float32's 1e-8)."""
    p = np.array([1e-10, 1e-8, 1e-5, 0.3], dtype)
    low = {None: 0.0, "torch": 0.0, "sklearn": float(np.finfo(dtype).eps)}.get(clip, clip)
    want = [-math.log1p(-max(v, low)) for v in p.astype(np.float64).tolist()]
    x, t = backend.asarray(p, dtype), backend.asarray(np.zeros(4, dtype), dtype)
    out = native_values(ce.binary_cross_entropy(x, t, reduction="none", clip=clip), backend)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, want, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_nan_propagates_in_bce_with_logits_and_kl_div(backend):
    x = backend.asarray([np.nan, 0.5])
    t = backend.asarray([1.0, 0.0])
    got = native_values(ce.binary_cross_entropy_with_logits(x, t, reduction="none"), backend)
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], np.logaddexp(0.0, 0.5))
    kl = native_values(
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
        got = native_values(
            ce.binary_cross_entropy(x, t, reduction="none", validate=validate), backend
        )
        assert np.isnan(got[0])
        np.testing.assert_allclose(got[1], LN2)


# ---------------------------------------------------------------------------------------------
# Bad arguments.
# ---------------------------------------------------------------------------------------------


def test_binary_target_wrong_shape(lib):
    x = lib.asarray(np.full((2, 3), 0.5))
    t = lib.asarray(np.full((2, 2), 1.0))
    with pytest.raises(ValueError, match="target"):
        ce.binary_cross_entropy(x, t)
    with pytest.raises(ValueError, match="target"):
        ce.binary_cross_entropy_with_logits(x, t)


def test_binary_weight_that_does_not_broadcast(lib):
    x = lib.asarray(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="weight"):
        ce.binary_cross_entropy(x, x, lib.asarray(np.ones(2)))
    with pytest.raises(ValueError, match="pos_weight"):
        ce.binary_cross_entropy_with_logits(x, x, pos_weight=lib.asarray(np.ones(4)))


@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_binary_weights_may_not_enlarge_the_input(name):
    torch = pytest.importorskip("torch")
    kw = {name: np.ones((4, 2))}
    with pytest.raises(ValueError, match=name):
        ce.binary_cross_entropy_with_logits(np.zeros(2), np.ones(2), **kw)
    with pytest.raises(ValueError, match=name):
        ce.binary_cross_entropy_with_logits(
            torch.zeros(2), torch.ones(2), **{name: torch.ones(4, 2)}
        )


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


def test_eager_jax_probability_outside_unit_interval_raises():
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(ValueError, match="input"):
        ce.binary_cross_entropy(jnp.asarray([0.5, 1.5]), jnp.asarray([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.entropy(jnp.asarray([1.5, -0.5]))
    with pytest.raises(ValueError, match="label 3"):
        ce.cross_entropy(jnp.zeros((2, 3)), jnp.asarray([0, 3]))


def test_negative_binary_weights_as_torch(lib):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
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


# ---------------------------------------------------------------------------------------------
# Gradients: gradcheck, and JAX against torch.
# ---------------------------------------------------------------------------------------------


BCE_CASES = list(itertools.product(("torch", "sklearn", "keras", None, 0.01), REDUCTIONS))


@pytest.mark.parametrize("case", BCE_CASES, ids=[f"clip_{c}-{r}" for c, r in BCE_CASES])
def test_gradcheck_binary_cross_entropy(case):
    clip, reduction = case
    rng = keyed_rng("bce", case)
    p, t = uniform_probs(rng, (3, 4)), uniform_probs(rng, (3, 4))
    w = to_torch(rng.uniform(0.2, 2.0, 4))
    gradcheck_float64(
        lambda a, b: ce.binary_cross_entropy(a, b, w, reduction=reduction, clip=clip), p, t
    )


@pytest.mark.parametrize("mode", ["uniform", "flip"])
def test_gradcheck_binary_cross_entropy_label_smoothing(mode):
    rng = keyed_rng("bce-ls", mode)
    p, t = uniform_probs(rng, (3, 4)), uniform_probs(rng, (3, 4))
    gradcheck_float64(
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
    rng = keyed_rng("bcel", case)
    x, t = rng.standard_normal((3, 4)) * 3, uniform_probs(rng, (3, 4))
    kwargs = dict(BCEL_OPTIONS[name])
    w = to_torch(rng.uniform(0.2, 2.0, (3, 1))) if kwargs.pop("weight", False) else None
    if kwargs.pop("pos_weight", False):
        kwargs["pos_weight"] = to_torch(rng.uniform(0.2, 3.0, 4))
    gradcheck_float64(
        lambda a, b: ce.binary_cross_entropy_with_logits(a, b, w, reduction=reduction, **kwargs),
        x,
        t,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_jax_matches_torch_binary_cross_entropy_with_logits(smoothing, reduction):
    jnp = pytest.importorskip("jax.numpy")
    rng = keyed_rng("jax-bcel", smoothing, reduction)
    x = rng.standard_normal((4, 3)) * 3
    x[0, 0], x[1, 1] = 1e4, -1e4
    t = uniform_probs(rng, (4, 3))
    pw, w = rng.uniform(0.2, 3.0, 3), rng.uniform(0.2, 2.0, (4, 1))
    cot = cotangent_for((4, 3) if reduction == "none" else (), rng)
    kwargs = {"reduction": reduction, "label_smoothing": smoothing}
    tg = torch_grads(
        lambda a, b: ce.binary_cross_entropy_with_logits(
            a, b, to_torch(w), pos_weight=to_torch(pw), **kwargs
        ),
        [x, t],
        cot,
    )
    jg = jax_grads(
        lambda a, b: ce.binary_cross_entropy_with_logits(
            a, b, jnp.asarray(w), pos_weight=jnp.asarray(pw), **kwargs
        ),
        [x, t],
        cot,
    )
    for a, b in zip(jg, tg, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, t: ce.cross_entropy(x, t),
        lambda x, t: ce.kl_div(x, t),
        lambda x, t: ce.binary_cross_entropy_with_logits(x, t),
        lambda x, t: ce.sigmoid_focal_loss(x, t),
        lambda x, t: ce.focal_loss(x, t),
    ],
    ids=["cross_entropy", "kl_div", "bce_with_logits", "sigmoid_focal", "focal"],
)
def test_a_nan_probability_target_is_refused_not_scored(backend, call):
    """A NaN among target probabilities is bad input, refused where the values are read (it
    would give a NaN loss, silently); lazy arrays, not read before, give NaN, never a number."""
    x = backend.asarray([[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]])
    t = backend.asarray([[np.nan, 0.5, 0.5], [0.0, 1.0, 0.0]])
    if backend.lazy:
        assert np.isnan(native_values(call(x, t), backend)).any()
        return
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]; got nan"):
        call(x, t)


@pytest.mark.parametrize(
    ("value", "dtype", "shown"),
    [
        (1.000001, "float64", "1.000001"),
        (1.0000001, "float32", "1.0000001"),
        (-1e-30, "float64", "-1e-30"),
    ],
)
def test_a_probability_just_outside_0_1_is_shown_as_it_is(value, dtype, shown):
    """A target just above 1 is named by the digits that tell it from 1 in its dtype (it had
    been shown as 1, outside [0, 1])."""
    t = np.array([value, 0.5], dtype=dtype)
    with pytest.raises(ValueError, match=rf"in \[0, 1\]; got {re.escape(shown)} at index \(0,\)$"):
        ce.binary_cross_entropy_with_logits(np.zeros(2, dtype=dtype), t)
    with pytest.raises(ValueError, match=rf"got {re.escape(shown)} at index \(0,\)$"):
        ce.binary_cross_entropy(np.full(2, 0.5, dtype=dtype), t)
