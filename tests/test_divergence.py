"""``crossentropy.losses.divergence``: kl_div (torch's ``F.kl_div``). Shapes that do not
broadcast, the per-row sum that is optax's ``kl_divergence``, and gradients:
``torch.autograd.gradcheck`` for every reduction and both target conventions, and JAX against
torch."""

from __future__ import annotations

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
    torch_grads,
    uniform_probs,
)

X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def test_kl_div_shapes_that_do_not_broadcast(lib):
    with pytest.raises(ValueError, match="input"):
        ce.kl_div(lib.asarray(np.zeros((2, 3))), lib.asarray(np.full((2, 4), 0.25)))


@pytest.mark.parametrize(("input_shape", "target_shape"), [((3,), (2, 3)), ((1, 3), (4, 3))])
def test_batchmean_divides_by_the_inputs_first_axis_as_torch(input_shape, target_shape):
    torch = pytest.importorskip("torch")
    rng = keyed_rng("kl_div-batchmean", input_shape)
    logq = np.log(uniform_probs(rng, input_shape))
    p = uniform_probs(rng, target_shape)
    expected = torch.nn.functional.kl_div(
        torch.tensor(logq), torch.tensor(p), reduction="batchmean"
    )
    assert float(ce.kl_div(logq, p, reduction="batchmean")) == pytest.approx(
        float(expected), rel=1e-13
    )


def test_optax_kl_divergence_is_kl_div_summed_per_row():
    # optax.kl_divergence(log_predictions, targets) is sum_c t (log t - log q) per row:
    # kl_div(..., reduction="none").sum(-1), which is also kl_divergence(t, q) in (p, q) order.
    logq = ce.log_softmax(X)
    t = ce.softmax([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    rows = np.asarray(ce.kl_div(logq, t, reduction="none")).sum(-1)
    np.testing.assert_allclose(rows, ce.kl_divergence(t, np.exp(logq)), rtol=1e-12)
    assert rows.sum() == pytest.approx(1.4594144409851535, rel=1e-13)


# ---------------------------------------------------------------------------------------------
# Gradients: gradcheck, and JAX against torch.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_gradcheck_kl_div(log_target, reduction):
    rng = keyed_rng("kl_div", log_target, reduction)
    logq = np.log(uniform_probs(rng, (3, 4)))
    p = uniform_probs(rng, (3, 4))
    target = np.log(p) if log_target else p
    gradcheck_float64(
        lambda a, b: ce.kl_div(a, b, reduction=reduction, log_target=log_target), logq, target
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_jax_matches_torch_kl_div(log_target, reduction):
    rng = keyed_rng("jax-kl_div", log_target, reduction)
    logq = np.log(rng.dirichlet(np.ones(4), size=3))
    p = rng.dirichlet(np.ones(4), size=3)
    target = np.log(p) if log_target else p
    cot = cotangent_for((3, 4) if reduction == "none" else (), rng)

    def fn(a, b):
        return ce.kl_div(a, b, reduction=reduction, log_target=log_target)

    for a, b in zip(
        jax_grads(fn, [logq, target], cot), torch_grads(fn, [logq, target], cot), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none", "elementwise_mean"])
def test_mean_warns_where_torch_warns(reduction, lib):
    """PyTorch's ``kl_div`` warns that ``"mean"`` is not the divergence per sample; so does
    ours, on every backend, for the function and the module (its reduction given or assigned),
    and for no other reduction (the deprecated ``"elementwise_mean"`` included)."""
    import warnings

    torch = pytest.importorskip("torch")
    from crossentropy.nn import KLDivLoss

    logq = np.log(np.array([[0.2, 0.8], [0.5, 0.5]]))
    p = np.array([[0.3, 0.7], [0.9, 0.1]])

    def caught(call):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call()
        return [w for w in got if "batchmean" in str(w.message)]

    theirs = caught(
        lambda: torch.nn.functional.kl_div(torch.tensor(logq), torch.tensor(p), reduction=reduction)
    )
    ours = caught(lambda: ce.kl_div(lib.asarray(logq), lib.asarray(p), reduction=reduction))
    module = caught(lambda: KLDivLoss(reduction=reduction)(torch.tensor(logq), torch.tensor(p)))

    def assigned(kind):
        loss = kind(reduction="sum")
        loss.reduction = reduction
        return caught(lambda: loss(torch.tensor(logq), torch.tensor(p)))

    theirs_assigned, ours_assigned = assigned(torch.nn.KLDivLoss), assigned(KLDivLoss)
    assert KLDivLoss(reduction=reduction).reduction == reduction  # as PyTorch's attribute
    counts = {len(w) for w in (ours, module, theirs, theirs_assigned, ours_assigned)}
    assert counts == {int(reduction == "mean")}
    assert all(w.category is UserWarning for w in ours + module + ours_assigned)


@pytest.mark.parametrize(("size_average", "reduce"), [(True, None), (None, True), (False, True)])
def test_the_legacy_arguments_do_not_warn_of_mean_as_torch(size_average, reduce):
    import warnings

    torch = pytest.importorskip("torch")
    logq = torch.log(torch.tensor([[0.2, 0.8], [0.5, 0.5]]))
    p = torch.tensor([[0.3, 0.7], [0.9, 0.1]])
    for fn in (torch.nn.functional.kl_div, ce.kl_div):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            fn(logq, p, size_average, reduce)
        assert [w for w in got if "batchmean" in str(w.message)] == [], fn


def test_a_log_target_of_minus_inf_is_a_probability_of_zero(backend):
    """``0 log 0 = 0`` with ``log_target=True`` too: a log-target of -inf (probability 0)
    contributes 0, as the same probability 0 without ``log_target`` does (PyTorch gives NaN),
    whatever the input (-inf included)."""
    x = np.array([[-1.0, -2.0, -np.inf], [-0.5, -1.5, -3.0]])
    p = np.array([[0.0, 1.0, 0.0], [0.25, 0.75, 0.0]])
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    got = ce.kl_div(backend.asarray(x), backend.asarray(logp), reduction="none", log_target=True)
    want = ce.kl_div(backend.asarray(x), backend.asarray(p), reduction="none")
    np.testing.assert_allclose(native_values(got, backend), native_values(want, backend))
    safe = np.where(p > 0, p, 1.0)
    expected = np.where(p > 0, safe * (np.log(safe) - np.where(p > 0, x, 0.0)), 0.0)
    np.testing.assert_allclose(native_values(got, backend), expected, rtol=1e-12)
    # a NaN input stays NaN there, as with the probability 0 (and in PyTorch)
    nan = ce.kl_div(
        backend.asarray([np.nan]), backend.asarray([-np.inf]), reduction="none", log_target=True
    )
    assert np.isnan(native_values(nan, backend)).all()


def test_a_log_target_of_minus_inf_has_finite_gradients():
    """The gradients at a log-target of -inf are 0, for the input and the target."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([-np.inf, 0.0], dtype=torch.float64, requires_grad=True)
    gx, gt = torch.autograd.grad(ce.kl_div(x, t, reduction="sum", log_target=True), (x, t))
    torch.testing.assert_close(gx, torch.tensor([0.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(gt, torch.tensor([0.0, 3.0], dtype=torch.float64))


def test_a_log_target_above_0_or_nan_is_refused_where_read(lib):
    """With ``log_target=True`` the target holds log-probabilities: an entry above 0 (a
    probability above 1) or NaN is a ValueError where values are read, as a probability
    target outside [0, 1] is without it; ``validate=False`` computes PyTorch's number."""
    x = lib.asarray([-1.0, -2.0])
    for bad, shown in (([1.0, -1.0], "1.0"), ([np.nan, -1.0], "nan")):
        t = lib.asarray(bad)
        if lib.lazy:  # values not read: a number (or NaN), as PyTorch computes
            ce.kl_div(x, t, log_target=True, reduction="sum")
            continue
        with pytest.raises(
            ValueError, match=rf"target must hold log-probabilities \(<= 0\); got {shown}"
        ):
            ce.kl_div(x, t, log_target=True, reduction="sum")
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.kl_div(
        torch.tensor([-1.0, -2.0]), torch.tensor([1.0, -1.0]), log_target=True, reduction="sum"
    )
    got = ce.kl_div(
        np.array([-1.0, -2.0]),
        np.array([1.0, -1.0]),
        log_target=True,
        reduction="sum",
        validate=False,
    )
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    ok = ce.kl_div(
        np.array([-1.0, -2.0]), np.array([0.0, -np.inf]), log_target=True, reduction="sum"
    )
    assert float(ok) == pytest.approx(1.0)  # a log-target of 0 and of -inf are probabilities
