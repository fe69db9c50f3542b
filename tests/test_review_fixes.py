"""Regressions found in review: tracing, compilation, argument types and edge semantics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import crossentropy as ce

X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
Y = [1, 2]
W = [1.0, 2.0, 3.0]


def test_jit_with_captured_weight_and_target():
    x, y, w = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(W)
    assert float(jax.jit(lambda x: ce.cross_entropy(x, y, w))(x)) == pytest.approx(
        0.8076059644443804
    )
    soft = jnp.eye(3)[y]
    assert float(jax.jit(lambda x: ce.cross_entropy(x, soft, w, label_smoothing=0.1))(x)) > 0
    assert np.isfinite(float(jax.jit(lambda x: ce.entropy(jnp.asarray([0.5, 0.5]) * x[0, 0]))(x)))
    out = jax.jit(lambda x: ce.binary_cross_entropy_with_logits(x, jnp.ones((2, 3)) / 2))(x)
    assert np.isfinite(float(out))


def test_jit_with_captured_out_of_range_label_gives_nan():
    x = jnp.asarray(X)
    assert np.isnan(float(jax.jit(lambda x: ce.cross_entropy(x, jnp.asarray([1, 7])))(x)))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, y: ce.cross_entropy(x, y, z_loss=1e-3, label_smoothing=0.1),
        lambda x, y: ce.cross_entropy(x, y, softcap=5.0, reduction="batchmean"),
        lambda x, y: ce.cross_entropy(x, F.one_hot(y, 5).double()),
        lambda x, y: ce.focal_loss(x, y, alpha=0.5),
        lambda x, y: ce.binary_cross_entropy(torch.sigmoid(x), torch.sigmoid(-x)),
        lambda x, y: ce.binary_cross_entropy_with_logits(x, torch.sigmoid(x), label_smoothing=0.1),
        lambda x, y: ce.kl_div(torch.log_softmax(x, 1), torch.softmax(x, 1)),
        lambda x, y: ce.dice_loss(x, y, mode="multiclass"),
        lambda x, y: ce.xlogy(torch.sigmoid(x), torch.sigmoid(x)).sum(),
    ],
)
def test_torch_compile_fullgraph(fn):
    torch._dynamo.reset()
    x = torch.randn(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 4, 2])
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x, y), fn(x, y))


def test_numpy_scalar_hyperparameters_are_accepted():
    a = ce.cross_entropy(
        X, Y, ignore_index=np.int64(-100), label_smoothing=np.float32(0.1), axis=np.int64(1)
    )
    b = ce.cross_entropy(X, Y, label_smoothing=0.1)
    assert float(a) == pytest.approx(float(b), rel=1e-6)


@pytest.mark.parametrize(
    "call", [lambda: ce.cross_entropy(None, Y), lambda: ce.cross_entropy(X, None)]
)
def test_none_arrays_raise_type_error_naming_the_argument(call):
    with pytest.raises(TypeError, match=r"(input|target) must be an array"):
        call()


def test_soft_targets_refuse_ignore_index_that_is_a_probability():
    with pytest.raises(ValueError, match="ignore_index"):
        ce.cross_entropy(X, [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], ignore_index=0)


def test_zero_classes_raise():
    with pytest.raises(ValueError, match="at least one class"):
        ce.cross_entropy(np.zeros((2, 0)), [-100, -100])


@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_binary_weights_may_not_enlarge_the_input(name):
    kw = {name: np.ones((4, 2))}
    with pytest.raises(ValueError, match=name):
        ce.binary_cross_entropy_with_logits(np.zeros(2), np.ones(2), **kw)
    with pytest.raises(ValueError, match=name):
        ce.binary_cross_entropy_with_logits(
            torch.zeros(2), torch.ones(2), **{name: torch.ones(4, 2)}
        )


def test_xlogy_zero_times_anything_but_nan_is_zero():
    np.testing.assert_array_equal(ce.xlogy([0.0, 0.0, 0.0], [-1.0, np.inf, 0.0]), [0.0, 0.0, 0.0])
    assert np.isnan(ce.xlogy([0.0], [np.nan])[0])


def test_xlogy_shapes_that_do_not_broadcast_name_the_arguments():
    with pytest.raises(ValueError, match="x of shape"):
        ce.xlogy(np.ones(2), np.ones(3))


def test_softmax_axis_is_checked_for_scalars():
    with pytest.raises(ValueError, match="axis"):
        ce.softmax(1.0, axis=3)


def test_no_warnings_for_all_minus_inf_rows_on_numpy(recwarn):
    ce.softmax(np.full((2, 3), -np.inf))
    ce.log_softmax(np.full((2, 3), -np.inf))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_self_information_of_a_certain_event_is_plus_zero():
    assert np.signbit(ce.self_information(1.0)) == np.False_


def test_z_loss_is_not_class_weighted():
    # Liger (ops/cross_entropy.py): lse_square_scale * lse^2 averaged over the valid tokens,
    # added to the class-weighted mean of the cross-entropy.
    x = np.asarray(X)
    lse = np.log(np.exp(x).sum(axis=1))
    expected = float(ce.cross_entropy(X, [1, -100], weight=W)) + 1e-2 * lse[0] ** 2
    got = float(ce.cross_entropy(X, [1, -100], weight=W, z_loss=1e-2))
    assert got == pytest.approx(expected, rel=1e-13)


def test_optax_kl_divergence_is_kl_div_summed_per_row():
    # optax.kl_divergence(log_predictions, targets) is sum_c t (log t - log q) per row:
    # kl_div(..., reduction="none").sum(-1), which is also kl_divergence(t, q) in (p, q) order.
    logq = ce.log_softmax(X)
    t = ce.softmax([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    rows = np.asarray(ce.kl_div(logq, t, reduction="none")).sum(-1)
    np.testing.assert_allclose(rows, ce.kl_divergence(t, np.exp(logq)), rtol=1e-12)
    assert rows.sum() == pytest.approx(1.4594144409851535, rel=1e-13)


# --- second review (issue 3) ----------------------------------------------------------------


def test_log_cosh_keeps_precision_near_zero_error():
    assert float(ce.log_cosh_loss([1e-9], [0.0])) == pytest.approx(5e-19, rel=1e-12)
    small = ce.log_cosh_loss(np.float32([1e-3]), np.float32([0.0]))
    assert float(small) == pytest.approx(np.log(np.cosh(1e-3)), rel=1e-6)
    assert float(ce.log_cosh_loss([1e4], [0.0])) == pytest.approx(1e4 - np.log(2.0))


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


def test_overlap_losses_keep_nan_for_bad_labels_on_lazy_arrays():
    import dask.array as da

    x = da.from_array(np.random.default_rng(0).standard_normal((2, 3, 4)))
    y = da.from_array(np.asarray([[0, 1, 7, 2], [1, 1, 0, 2]]))
    for aggregate in ("batch", "sample", "global"):
        out = ce.dice_loss(x, y, mode="multiclass", aggregate=aggregate).compute()
        assert np.isnan(out)


def test_binary_overlap_mode_checks_the_batch_size():
    with pytest.raises(ValueError, match="batch size"):
        ce.dice_loss(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize("bad", [None, 3, {"a": 1}])
def test_class_weights_need_a_sequence_of_labels(bad):
    with pytest.raises(TypeError, match="y must be"):
        ce.class_weights(bad)


def test_focal_alpha_accepts_numpy_scalars_and_refuses_other_libraries():
    a = ce.focal_loss(np.zeros((2, 2)), [0, 1], alpha=np.float32(0.3))
    b = ce.focal_loss(np.zeros((2, 2)), [0, 1], alpha=0.3)
    assert float(a) == pytest.approx(float(b))
    with pytest.raises(TypeError, match="same array library"):
        ce.focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), alpha=np.asarray([0.3, 0.7]))


def test_focal_losses_take_weight_by_keyword_only():
    with pytest.raises(TypeError):
        ce.sigmoid_focal_loss([0.0], [1.0], 0.5)  # torchvision's third argument is alpha


def test_rmse_axis_must_be_integers():
    with pytest.raises(TypeError, match="axis"):
        ce.rmse_loss([1.0, 2.0], [0.0, 0.0], axis="a")
