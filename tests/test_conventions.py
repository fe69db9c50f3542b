"""Each convention keyword reproduces the library it names (docs/conventions.md).

Live libraries (torch, scikit-learn) are called; Keras, optax and segmentation-models-pytorch
are not installed in the test environment, so their numbers are recorded values, each with the
library version and the call that produced it (float64 unless noted).
"""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy as ce

X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
Y = [1, 2]
W = [1.0, 2.0, 3.0]
ONE_HOT = np.eye(3)[Y]
Z = [0.5, -1.0, 2.0]
T = [1.0, 0.0, 1.0]


def _torch_ce(target, **kw):
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    t = torch.tensor(target)
    return float(F.cross_entropy(torch.tensor(X, dtype=torch.float64), t, **kw))


# --- 1. weighted-mean normalisation ------------------------------------------------------------


def test_class_index_weighted_mean_divides_by_target_weights_like_torch():
    torch = pytest.importorskip("torch")
    ours = float(ce.cross_entropy(X, Y, weight=W))
    assert ours == pytest.approx(_torch_ce(Y, weight=torch.tensor(W, dtype=torch.float64)))
    assert ours == pytest.approx(0.8076059644443804, rel=1e-14)


def test_probability_target_weighted_mean_divides_by_n_like_torch():
    torch = pytest.importorskip("torch")
    ours = float(ce.cross_entropy(X, ONE_HOT, weight=W))
    assert ours == pytest.approx(_torch_ce(ONE_HOT, weight=torch.tensor(W, dtype=torch.float64)))
    assert ours == pytest.approx(2.019014911110951, rel=1e-14)


def test_mean_divisor_weight_makes_one_hot_probabilities_agree_with_indices():
    soft = float(ce.cross_entropy(X, ONE_HOT, weight=W, mean_divisor="weight"))
    assert soft == pytest.approx(float(ce.cross_entropy(X, Y, weight=W)), rel=1e-14)


def test_keras_sum_over_batch_size_is_batchmean():
    # keras 3.15.1: SparseCategoricalCrossentropy(from_logits=True)(y, X, sample_weight=[2, 3])
    # with the default reduction "sum_over_batch_size" -> 2.0190149111109505
    ours = float(ce.cross_entropy(X, Y, weight=W, reduction="batchmean"))
    assert ours == pytest.approx(2.0190149111109505, rel=1e-14)


def test_keras_mean_with_sample_weight_is_torch_mean():
    # keras 3.15.1: same call with reduction="mean_with_sample_weight" -> 0.8076059644443803
    assert float(ce.cross_entropy(X, Y, weight=W)) == pytest.approx(0.8076059644443803)


def test_sklearn_sample_weight_mean_on_probabilities():
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    p = np.asarray(ce.softmax(X))
    ours = float(ce.cross_entropy(p, Y, weight=W, from_logits=False))
    theirs = log_loss(Y, p, sample_weight=[2.0, 3.0], labels=[0, 1, 2])
    assert ours == pytest.approx(theirs, rel=1e-12)


# --- 2. label smoothing with class weights -----------------------------------------------------


def test_label_smoothing_with_weights_like_torch():
    torch = pytest.importorskip("torch")
    ours = float(ce.cross_entropy(X, Y, weight=W, label_smoothing=0.1))
    theirs = _torch_ce(Y, weight=torch.tensor(W, dtype=torch.float64), label_smoothing=0.1)
    assert ours == pytest.approx(theirs, rel=1e-14)
    assert ours == pytest.approx(0.8127871784888262, rel=1e-14)


def test_label_smoothing_with_weights_like_keras():
    # keras 3.15.1: CategoricalCrossentropy(from_logits=True, label_smoothing=0.1,
    # reduction="mean_with_sample_weight")(one_hot(y), X, sample_weight=[2, 3])
    # -> 0.86760596444438
    ours = float(ce.cross_entropy(X, Y, weight=W, label_smoothing=0.1, weight_mode="per_sample"))
    assert ours == pytest.approx(0.86760596444438, rel=1e-12)


def test_one_hot_with_weights_and_smoothing_like_torch():
    torch = pytest.importorskip("torch")
    ours = float(ce.cross_entropy(X, ONE_HOT, weight=W, label_smoothing=0.1))
    theirs = _torch_ce(ONE_HOT, weight=torch.tensor(W, dtype=torch.float64), label_smoothing=0.1)
    assert ours == pytest.approx(theirs, rel=1e-14)
    assert ours == pytest.approx(2.0319679462220654, rel=1e-14)


# --- 3. binary label smoothing -------------------------------------------------------------------


def test_binary_smoothing_uniform_is_keras():
    # keras 3.15.1: BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(T, Z)
    # -> 0.3630888942471007
    ours = float(ce.binary_cross_entropy_with_logits(Z, T, label_smoothing=0.1))
    assert ours == pytest.approx(0.3630888942471007, rel=1e-14)


def test_binary_smoothing_flip_is_segmentation_models_pytorch():
    # segmentation-models-pytorch 0.6.0: SoftBCEWithLogitsLoss(smooth_factor=0.1)(Z, T)
    # -> 0.42142222758043396
    ours = float(
        ce.binary_cross_entropy_with_logits(Z, T, label_smoothing=0.1, smoothing_mode="flip")
    )
    assert ours == pytest.approx(0.42142222758043396, rel=1e-14)


# --- 4. mean over zero valid targets ---------------------------------------------------------


def test_ignored_targets_leave_the_divisor_like_torch_and_keras():
    # keras 3.15.1: SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
    # ([1, -100], X) -> 1.4076059644443804 (same as torch)
    ours = float(ce.cross_entropy(X, [1, -100]))
    assert ours == pytest.approx(_torch_ce([1, -100]), rel=1e-14)
    assert ours == pytest.approx(1.4076059644443804, rel=1e-14)


def test_all_ignored_mean_is_nan_like_torch_or_zero_like_keras_and_liger():
    assert np.isnan(float(ce.cross_entropy(X, [-100, -100])))
    assert np.isnan(_torch_ce([-100, -100]))
    # keras 3.15.1: SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
    # ([-100, -100], X) -> 0.0
    assert float(ce.cross_entropy(X, [-100, -100], empty_mean=0.0)) == 0.0


# --- 5. multi-label reduction ------------------------------------------------------------------

ML_X = [[0.5, -1.0, 2.0], [1.0, 0.0, -2.0]]
ML_T = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_multilabel_mean_over_all_elements_like_torch():
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    ours = float(ce.binary_cross_entropy_with_logits(ML_X, ML_T))
    theirs = float(
        F.binary_cross_entropy_with_logits(
            torch.tensor(ML_X, dtype=torch.float64), torch.tensor(ML_T, dtype=torch.float64)
        )
    )
    assert ours == pytest.approx(theirs, rel=1e-14)
    assert ours == pytest.approx(0.5079339269770737, rel=1e-14)


def test_multilabel_sum_over_classes_mean_over_batch_like_the_tutorials():
    ours = float(ce.binary_cross_entropy_with_logits(ML_X, ML_T, reduction="batchmean"))
    total = float(ce.binary_cross_entropy_with_logits(ML_X, ML_T, reduction="sum"))
    assert total == pytest.approx(3.0476035618624424, rel=1e-14)
    assert ours == pytest.approx(total / 2, rel=1e-14)


# --- 6. probability clipping -------------------------------------------------------------------


def test_clip_torch_caps_the_log_at_minus_100():
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    assert float(ce.binary_cross_entropy([0.0], [1.0])) == 100.0
    theirs = float(F.binary_cross_entropy(torch.tensor([0.0]), torch.tensor([1.0])))
    assert theirs == 100.0


def test_clip_keras_is_1e_minus_7():
    # keras 3.15.1: BinaryCrossentropy()([1.0], [0.0]) -> 16.11809565095832
    ours = float(ce.binary_cross_entropy([0.0], [1.0], clip="keras"))
    assert ours == pytest.approx(16.11809565095832, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_sklearn_is_the_dtype_eps(dtype):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    p = np.asarray([0.0, 0.2, 0.7, 0.4], dtype=dtype)
    t = np.asarray([1.0, 0.0, 1.0, 1.0], dtype=dtype)
    ours = float(ce.binary_cross_entropy(p, t, clip="sklearn"))
    theirs = log_loss(t.astype(int), p)
    assert ours == pytest.approx(theirs, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_clip_sklearn_with_sample_weight():
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    p, t, sw = [0.2, 0.7, 0.4], [0.0, 1.0, 1.0], [1.0, 2.0, 3.0]
    ours = float(ce.binary_cross_entropy(p, t, sw, clip="sklearn", mean_divisor="weight"))
    assert ours == pytest.approx(log_loss([0, 1, 1], p, sample_weight=sw), rel=1e-12)
    assert ours == pytest.approx(0.6142276058023566, rel=1e-12)


# --- 7. extras: z-loss and softcap (Liger's formulas) --------------------------------------------


def test_z_loss_adds_mean_squared_logsumexp():
    # Liger (read from ops/cross_entropy.py): lse_square_scale * lse^2, mean over valid tokens.
    assert float(ce.cross_entropy(X, Y, z_loss=1e-4)) == pytest.approx(0.9102394240746053)


def test_softcap_applies_cap_tanh_before_the_loss():
    assert float(ce.cross_entropy(X, Y, softcap=2.0)) == pytest.approx(1.0655554132840175)


# --- 8. KL divergence reductions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reduction", "value"),
    [("mean", 0.24323574016419225), ("batchmean", 0.7297072204925767), ("sum", 1.4594144409851535)],
)
def test_kl_div_reductions_like_torch(reduction, value):
    x = ce.log_softmax(X)
    t = ce.softmax([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    assert float(ce.kl_div(x, t, reduction=reduction)) == pytest.approx(value, rel=1e-13)
    # optax 0.2.8: kl_divergence(log_predictions, targets) per row, summed -> the "sum" value.


def test_optax_integer_label_ce_is_per_example():
    # optax 0.2.8: softmax_cross_entropy_with_integer_labels(X, y)
    # -> [1.4076059644443804, 0.4076059644443804]
    np.testing.assert_allclose(
        ce.cross_entropy(X, Y, reduction="none"), [1.4076059644443804, 0.4076059644443804]
    )


# ---------------------------------------------------------------------------------------------
# 15. Masks; 16. when values are read; 17. mixed precision and weights.
# ---------------------------------------------------------------------------------------------


def test_where_is_ignore_index_for_whole_samples():
    a = ce.cross_entropy(X, Y, where=[True, False])
    b = ce.cross_entropy(X, [1, -100])
    assert float(a) == float(b) == pytest.approx(1.4076059644443804, rel=1e-14)


def test_a_label_on_a_masked_logit_has_probability_zero():
    # optax takes the masked logit anyway (a finite loss); here its probability is 0.
    out = ce.cross_entropy(X, Y, where=[[True, False, True], [True, True, True]], reduction="none")
    assert np.isinf(out[0])
    assert np.isfinite(out[1])


def test_validation_table():
    bad = [1, 7]
    with pytest.raises(ValueError, match="label 7"):
        ce.cross_entropy(X, bad)
    assert np.isnan(ce.cross_entropy(X, bad, validate=False))
    with pytest.raises(ValueError, match="nan"):
        ce.binary_cross_entropy([np.nan, 0.5], [1.0, 0.0])
    assert np.isnan(ce.binary_cross_entropy([np.nan, 0.5], [1.0, 0.0], validate=False))


def test_mixed_precision_and_negative_weights_as_pytorch():
    torch = pytest.importorskip("torch")
    x = torch.tensor(X, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ce.cross_entropy(x, torch.tensor(Y)).dtype == torch.float32
        assert ce.softmax(x).dtype == torch.bfloat16
    w = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    xt = torch.tensor(X, dtype=torch.float64)
    torch.testing.assert_close(
        ce.cross_entropy(xt, torch.tensor(Y), w),
        torch.nn.functional.cross_entropy(xt, torch.tensor(Y), w),
    )
