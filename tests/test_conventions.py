"""Each convention keyword reproduces the library it names (docs/conventions.md).

Live libraries (torch, scikit-learn, optax) are called; Keras and segmentation-models-pytorch
are not installed in the test environment, so their numbers are recorded values, each with the
library version and the call that produced it (float64 unless noted).

Keras 3.15.1 was run on the JAX backend with ``jax_enable_x64`` and
``keras.config.set_floatx("float64")``; its ``keras.ops.mean`` still computes in float32, so
the Keras losses that average over an axis (binary cross-entropy, binary focal) match the
float64 values here to about 1e-7 relative. segmentation-models-pytorch was run from its wheel,
``segmentation_models_pytorch/losses`` alone (it needs only torch), beside torch 2.13.0.
"""

from __future__ import annotations

import warnings

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


def test_mean_divisor_weight_of_probability_targets_on_torch():
    """Torch tensors of probability targets went to ATen, which divides by the row count
    whatever ``mean_divisor`` says (0.63 where 0.70 is the weighted mean)."""
    torch = pytest.importorskip("torch")
    cnn = pytest.importorskip("crossentropy.nn")
    indices = float(ce.cross_entropy(X, Y, weight=W))
    tensors = [torch.tensor(a, dtype=torch.float64) for a in (X, ONE_HOT, W)]
    got = ce.cross_entropy(*tensors, mean_divisor="weight")
    assert float(got) == pytest.approx(indices, rel=1e-14)
    module = cnn.CrossEntropyLoss(weight=tensors[2], mean_divisor="weight")
    assert float(module(*tensors[:2])) == pytest.approx(indices, rel=1e-14)
    x, t = np.array([[0.3, -1.2], [2.0, 0.5]]), np.array([[0.2, 0.8], [0.6, 0.4]])
    w = np.array([1.5, 0.5])
    expected = float(ce.cross_entropy(x, t, w, mean_divisor="weight"))
    assert expected == pytest.approx(0.7014132779827525, rel=1e-14)
    on_torch = ce.cross_entropy(*map(torch.tensor, (x, t, w)), mean_divisor="weight")
    assert float(on_torch) == pytest.approx(expected, rel=1e-14)


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


X_LAST = np.moveaxis(np.arange(24.0).reshape(2, 3, 4) % 5 - 2.0, 1, -1)  # (N, d, C), C last
Y_LAST = np.asarray([[0, 2, 1, 1], [2, 2, 0, 1]])


def test_optax_cross_entropy_is_per_example_with_classes_last():
    # optax 0.2.8: softmax_cross_entropy_with_integer_labels(X, y)
    # -> [1.4076059644443801, 0.4076059644443806]
    ours = ce.cross_entropy(X, Y, axis=-1, reduction="none")
    np.testing.assert_allclose(ours, [1.4076059644443804, 0.4076059644443804], rtol=1e-14)
    assert float(ce.cross_entropy(X, Y, axis=-1)) == pytest.approx(float(ours.mean()))
    optax = pytest.importorskip("optax")
    for x, y in ((np.asarray(X), np.asarray(Y)), (X_LAST, Y_LAST)):
        onehot = np.eye(x.shape[-1])[y]
        np.testing.assert_allclose(
            ce.cross_entropy(x, y, axis=-1, reduction="none"),
            optax.softmax_cross_entropy_with_integer_labels(x, y),
            rtol=1e-12,
        )
        smooth = 0.9 * onehot + 0.1 / x.shape[-1]
        np.testing.assert_allclose(
            ce.cross_entropy(x, smooth, axis=-1, reduction="none"),
            optax.softmax_cross_entropy(x, smooth),
            rtol=1e-12,
        )


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
    # -> 0.3630889058113098 (its mean over the last axis in float32)
    ours = float(ce.binary_cross_entropy_with_logits(Z, T, label_smoothing=0.1))
    assert ours == pytest.approx(0.3630889058113098, rel=1e-7)
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
    # optax 0.2.8: masked examples give 0 each
    optax = pytest.importorskip("optax")
    masked = optax.softmax_cross_entropy_with_integer_labels(
        np.asarray(X), np.asarray(Y), where=np.asarray([False, False])
    )
    np.testing.assert_array_equal(masked, [0.0, 0.0])
    ours = ce.cross_entropy(X, Y, where=[False, False], axis=-1, reduction="none")
    np.testing.assert_array_equal(ours, [0.0, 0.0])


X3 = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.5, -1.0, 2.0]]
Y3 = [1, -100, 0]


def test_keras_ignore_class_with_sample_weight_divides_by_the_valid_count():
    # keras 3.15.1 (jax backend, float64): SparseCategoricalCrossentropy(from_logits=True,
    # ignore_class=-100)(y3, X3, sample_weight=[2, 5, 1]) (the valid rows' weights are W[y])
    # -> 2.2782616127729587; all targets -100 -> 0.0
    ours = ce.cross_entropy(X3, Y3, weight=W, mean_divisor="count", empty_mean=0.0)
    assert float(ours) == pytest.approx(2.2782616127729587, rel=1e-14)
    none = ce.cross_entropy(X3, [-100] * 3, weight=W, mean_divisor="count", empty_mean=0.0)
    assert float(none) == 0.0
    # ... with reduction="mean_with_sample_weight" -> 1.5188410751819725 (all -100: 0.0)
    assert float(ce.cross_entropy(X3, Y3, weight=W)) == pytest.approx(1.5188410751819725)
    assert float(ce.cross_entropy(X3, [-100] * 3, weight=W, empty_mean=0.0)) == 0.0
    # ... default reduction, sample_weight=[0.3, 5, 1.7] (not a function of the class)
    # -> 1.6912554968252405: the weighted per-sample losses over the valid count
    per = np.asarray(ce.cross_entropy(X3, Y3, reduction="none"))
    valid = np.asarray(Y3) != -100
    assert (per * [0.3, 5.0, 1.7]).sum() / valid.sum() == pytest.approx(1.6912554968252405)


X4 = ((np.arange(24.0).reshape(2, 3, 2, 2) % 7) - 3) * 0.75  # (N, C, H, W)
Y4 = np.asarray([[[0, 2], [1, -100]], [[2, 2], [-100, 0]]])


def test_smp_soft_cross_entropy_averages_over_ignored_targets_too():
    # segmentation-models-pytorch 0.6.0 (and 0.5.0), ignore_index=-100 by default:
    # SoftCrossEntropyLoss(smooth_factor=0.1)(X, [2, -100]) -> 0.2538029822221902
    # SoftCrossEntropyLoss(smooth_factor=0.1)(X4, Y4) -> 1.7040473547245139
    # ... reduction="sum" -> 13.63237883779611; all targets -100 -> 0.0
    two_d = ce.cross_entropy(X, [2, -100], label_smoothing=0.1, reduction="batchmean")
    assert float(two_d) == pytest.approx(0.2538029822221902, rel=1e-14)
    per = ce.cross_entropy(X4, Y4, label_smoothing=0.1, reduction="none")
    assert float(per.mean()) == pytest.approx(1.7040473547245139, rel=1e-14)
    total = ce.cross_entropy(X4, Y4, label_smoothing=0.1, reduction="sum")
    assert float(total) == pytest.approx(13.63237883779611, rel=1e-14)
    empty = ce.cross_entropy(X4, np.full_like(Y4, -100), label_smoothing=0.1, reduction="none")
    assert float(empty.mean()) == 0.0
    # PyTorch's mean divides by the 6 valid targets instead of the 8.
    assert float(ce.cross_entropy(X4, Y4, label_smoothing=0.1)) == pytest.approx(
        float(per.mean()) * 8 / 6, rel=1e-14
    )


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
    # keras 3.15.1: BinaryCrossentropy(from_logits=True)(ML_T, ML_X) -> 0.5079339146614075
    assert ours == pytest.approx(0.5079339146614075, rel=1e-7)


def test_keras_multilabel_sum_averages_over_the_classes_first():
    # keras 3.15.1: BinaryCrossentropy(from_logits=True, reduction="sum")(ML_T, ML_X)
    # -> 1.015867829322815 (its mean over the last axis in float32)
    total = float(ce.binary_cross_entropy_with_logits(ML_X, ML_T, reduction="sum"))
    assert total / 3 == pytest.approx(1.015867829322815, rel=1e-7)


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
    # keras 3.15.1: BinaryCrossentropy()([1.0], [0.0]) -> 16.11809539794922 (float32 mean);
    # -log(1e-7) in float64 is 16.11809565095832
    ours = float(ce.binary_cross_entropy([0.0], [1.0], clip="keras"))
    assert ours == pytest.approx(16.11809539794922, rel=1e-7)
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
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's note on reduction="mean"
        theirs = F.kl_div(
            torch.tensor(np.asarray(x)), torch.tensor(np.asarray(t)), reduction=reduction
        )
    assert float(theirs) == pytest.approx(value, rel=1e-13)


def test_optax_kl_divergence_is_kl_div_summed_per_row():
    optax = pytest.importorskip("optax")  # checked with optax 0.2.8
    x = np.asarray(ce.log_softmax(X))
    t = np.asarray(ce.softmax([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]]))
    ours = np.asarray(ce.kl_div(x, t, reduction="none")).sum(-1)
    np.testing.assert_allclose(ours, np.asarray(optax.kl_divergence(x, t)), rtol=1e-12)
    assert ours.sum() == pytest.approx(1.4594144409851535, rel=1e-13)


def test_scipy_entropy_is_kl_divergence_with_base():
    entropy = pytest.importorskip("scipy.stats").entropy  # checked with scipy 1.17.1
    p, q = [0.2, 0.5, 0.3], [0.1, 0.6, 0.3]
    for base in (None, 2.0):
        ours = float(ce.kl_divergence(p, q) if base is None else ce.kl_divergence(p, q, base=base))
        assert ours == pytest.approx(entropy(p, q, base=base), rel=1e-12)


# --- 11. focal losses -------------------------------------------------------------------------

ONE_HOT4 = np.moveaxis(np.eye(3)[np.where(Y4 == -100, 0, Y4)], -1, 1)  # (N, C, H, W)
VALID4 = (Y4 != -100)[:, None].astype(np.float64)  # (N, 1, H, W)


def test_smp_multiclass_focal_is_the_mean_over_classes_since_0_6():
    # segmentation-models-pytorch 0.6.0: FocalLoss(mode="multiclass")(X, y) -> 2.0474634636725537
    # ... alpha=0.25 -> 1.535447299590145
    # ... class_weights=[1, 2, 3] -> 1.8965888732385983
    # ... ignore_index=-100 (X4, Y4) -> 0.6582979590019831
    # ... ignore_index=-100, class_weights=[1, 2, 3] (X4, Y4) -> 0.5610946709415879
    # ... (X4, Y4 with -100 replaced by 1) -> 0.604912285110984 (0.5.0: 1.8147368553329521)
    # segmentation-models-pytorch 0.5.0 summed the class losses (C = 3 times as much):
    # FocalLoss(mode="multiclass")(X, y) -> 6.142390391017661; alpha=0.25 -> 4.6063418987704345
    # ... ignore_index=-100 (X4, Y4) -> 1.9748938770059492
    kw = {"alpha": None, "gamma": 2.0}
    mean = float(ce.sigmoid_focal_loss(X, ONE_HOT, **kw, reduction="mean"))
    assert mean == pytest.approx(2.0474634636725537, rel=1e-14)
    a = float(ce.sigmoid_focal_loss(X, ONE_HOT, alpha=0.25, reduction="mean"))
    assert a == pytest.approx(1.535447299590145, rel=1e-14)
    cw = ce.sigmoid_focal_loss(X, ONE_HOT, **kw, weight=W, reduction="mean", mean_divisor="weight")
    assert float(cw) == pytest.approx(1.8965888732385983, rel=1e-14)
    ignored = ce.sigmoid_focal_loss(
        X4, ONE_HOT4, **kw, weight=VALID4, reduction="mean", mean_divisor="weight"
    )
    assert float(ignored) == pytest.approx(0.6582979590019831, rel=1e-14)
    w4 = VALID4 * np.asarray(W)[:, None, None]
    both = ce.sigmoid_focal_loss(
        X4, ONE_HOT4, **kw, weight=w4, reduction="mean", mean_divisor="weight"
    )
    assert float(both) == pytest.approx(0.5610946709415879, rel=1e-14)
    # 0.5.0: 3 times the 0.6.0 value; for (N, C) input that is reduction="batchmean".
    old = float(ce.sigmoid_focal_loss(X, ONE_HOT, **kw, reduction="batchmean"))
    assert old == pytest.approx(6.142390391017661, rel=1e-14)
    old_a = float(ce.sigmoid_focal_loss(X, ONE_HOT, alpha=0.25, reduction="batchmean"))
    assert old_a == pytest.approx(4.6063418987704345, rel=1e-14)
    assert 3 * float(ignored) == pytest.approx(1.9748938770059492, rel=1e-14)
    y4 = np.where(Y4 == -100, 1, Y4)
    full = ce.sigmoid_focal_loss(X4, np.moveaxis(np.eye(3)[y4], -1, 1), **kw, reduction="mean")
    assert float(full) == pytest.approx(0.604912285110984, rel=1e-14)
    assert 3 * float(full) == pytest.approx(1.8147368553329521, rel=1e-14)


FOCAL_Z = np.asarray([20.0, -20.0, 20.0, -20.0, 2.0, -1.0, 0.5])
FOCAL_T = np.asarray([1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0])


def test_keras_binary_focal_clips_the_sigmoid():
    # keras 3.15.1 (jax backend, float64): BinaryFocalCrossentropy(from_logits=True,
    # reduction=None)(t[:, None], z[:, None]) on FOCAL_Z, FOCAL_T
    keras_none = [4.248354691766328e-25, 16.11809539794922, 16.11809539794922,
                  4.248354198728262e-25, 0.0018035628600046039, 0.7018682956695557,
                  0.3774116039276123]  # fmt: skip
    # ... apply_class_balancing=True (alpha=0.25)
    keras_alpha = [1.062088672941582e-25, 4.029523849487305, 12.088571548461914,
                   3.1862656490461966e-25, 0.00045089071500115097, 0.17546707391738892,
                   0.28305870294570923]  # fmt: skip
    # BinaryFocalCrossentropy(from_logits=True)(t, z) on [1, 1, 0], [2, -1, 0.5]
    # -> 0.3603611886501312; apply_class_balancing=True -> 0.15299223363399506
    p = ce.sigmoid(FOCAL_Z)
    kw = {"from_logits": False, "clip": "keras", "gamma": 2.0}
    # Keras computes (1 - p_t)^gamma from the unclipped sigmoid, here from the clipped
    # probability: 2e-7 relative apart, or both below 1e-20.
    for alpha, keras in ((None, keras_none), (0.25, keras_alpha)):
        ours = ce.sigmoid_focal_loss(p, FOCAL_T, alpha=alpha, **kw)
        np.testing.assert_allclose(ours, keras, rtol=3e-7, atol=1e-20)
    small_p, small_t = ce.sigmoid([2.0, -1.0, 0.5]), [1.0, 1.0, 0.0]
    mean = ce.sigmoid_focal_loss(small_p, small_t, alpha=None, reduction="mean", **kw)
    assert float(mean) == pytest.approx(0.3603611886501312, rel=3e-7)
    mean_a = ce.sigmoid_focal_loss(small_p, small_t, alpha=0.25, reduction="mean", **kw)
    assert float(mean_a) == pytest.approx(0.15299223363399506, rel=3e-7)
    # On logits nothing is clipped: a wrong logit of 20 costs 20, not -log(1e-7) = 16.118.
    logits = ce.sigmoid_focal_loss(FOCAL_Z, FOCAL_T, alpha=None, gamma=2.0)
    assert float(logits[1]) == pytest.approx(20.0, rel=1e-8)
    np.testing.assert_allclose(logits[4:], keras_none[4:], rtol=3e-7)


FOCAL_X = [[20.0, 0.0, -20.0], [20.0, 0.0, -20.0], [0.3, -1.2, 2.0], [1.0, 2.0, 3.0]]
FOCAL_Y = [0, 2, 1, 2]


def test_keras_categorical_focal_clips_the_softmax():
    # keras 3.15.1 (jax backend, float64): CategoricalFocalCrossentropy(from_logits=True,
    # reduction=None)(one_hot(y), x) (alpha=0.25, gamma=2 by default)
    keras_none = [2.500000121052339e-22, 4.029523106834838, 0.7946941631651764,
                  0.011419449741971222]  # fmt: skip
    # ... default reduction -> 1.2089091799354963; alpha=[0.2, 0.5, 0.9] -> 4.034195382501717
    p = ce.softmax(FOCAL_X, axis=-1)
    kw = {"gamma": 2.0, "from_logits": False, "clip": "keras"}
    for target in (FOCAL_Y, np.eye(3)[FOCAL_Y]):
        ours = ce.focal_loss(p, target, alpha=0.25, reduction="none", **kw)
        np.testing.assert_allclose(ours, keras_none, rtol=1e-12)
        mean = ce.focal_loss(p, target, alpha=0.25, reduction="batchmean", **kw)
        assert float(mean) == pytest.approx(1.2089091799354963, rel=1e-12)
        vec = ce.focal_loss(p, target, alpha=[0.2, 0.5, 0.9], reduction="batchmean", **kw)
        assert float(vec) == pytest.approx(4.034195382501717, rel=1e-12)
    # On logits nothing is clipped: logits [20, 0, -20] with label 2 cost 0.25 * 40.
    logits = ce.focal_loss(FOCAL_X, FOCAL_Y, alpha=0.25, gamma=2.0, reduction="none")
    assert float(logits[1]) == pytest.approx(10.0, rel=1e-9)
    np.testing.assert_allclose(logits[2:], keras_none[2:], rtol=1e-12)


def test_optax_sigmoid_focal_has_no_alpha_by_default():
    optax = pytest.importorskip("optax")  # checked with optax 0.2.8
    z, t = np.asarray([2.0, -1.0, 0.5]), np.asarray([1.0, 1.0, 0.0])
    np.testing.assert_allclose(
        ce.sigmoid_focal_loss(z, t, alpha=None), optax.sigmoid_focal_loss(z, t), rtol=1e-12
    )
    np.testing.assert_allclose(
        ce.sigmoid_focal_loss(z, t, alpha=0.25),
        optax.sigmoid_focal_loss(z, t, alpha=0.25),
        rtol=1e-12,
    )


# --- 12. Dice and Tversky against optax -------------------------------------------------------


def test_optax_dice_and_tversky_smooth_by_one():
    optax = pytest.importorskip("optax")  # checked with optax 0.2.8
    p, g = np.asarray([0.9, 0.2, 0.6, 0.1]), np.asarray([1.0, 0.0, 1.0, 0.0])
    # optax's binary masks as two classes, background left out
    pp, gg = np.stack([1 - p, p], -1)[None], np.stack([1 - g, g], -1)[None]
    kw = {"apply_softmax": False, "ignore_background": True}
    dice = float(optax.losses.dice_loss(pp, gg, **kw)[0])
    assert float(ce.dice_loss(p, g, smooth=1.0, from_logits=False)) == pytest.approx(dice)
    assert dice == pytest.approx(0.13793103448275856, rel=1e-12)
    tv = float(optax.losses.dice_loss(pp, gg, alpha=0.3, beta=0.7, **kw)[0])
    ours = ce.tversky_loss(p, g, alpha=0.3, beta=0.7, smooth=1.0, from_logits=False)
    assert float(ours) == pytest.approx(tv, rel=1e-12)
    assert tv == pytest.approx(0.14965986394557818, rel=1e-12)


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
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    with pytest.raises(IndexError):
        F.cross_entropy(torch.tensor(X), torch.tensor(bad))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([np.nan, 0.5]), torch.tensor([1.0, 0.0]))


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
