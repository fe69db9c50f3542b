"""Overlap losses (``dice_loss``, ``jaccard_loss``, ``tversky_loss``): the recorded
segmentation-models-pytorch / optax / Keras values, a live torch reference formula for every mode,
aggregate and absent-class rule, gradients, empty masks and saturated probabilities, every backend,
and bad inputs (NaN for bad labels on lazy arrays)."""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np
import pytest

import crossentropy as ce
from _helpers import check_on_backend

LOSSES = {"dice": ce.dice_loss, "jaccard": ce.jaccard_loss, "tversky": ce.tversky_loss}
AB = {"dice": (0.5, 0.5), "jaccard": (1.0, 1.0), "tversky": (0.3, 0.7)}
MODES = ("binary", "multiclass", "multilabel")
AGGREGATES = ("batch", "sample", "global")
ABSENT = ("zero", "skip", "keep")
SHAPES = ((2, 3, 5, 7), (3, 4, 3, 5), (1, 2, 7, 3))


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _t(a, requires_grad=False):
    torch = pytest.importorskip("torch")
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad)
    return torch.as_tensor(a)


def _assert_close(actual, expected, tol=1e-12):
    torch = pytest.importorskip("torch")
    a = actual.detach().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert a.shape == e.shape, (a.shape, e.shape)
    np.testing.assert_allclose(a, e, rtol=tol, atol=tol)


def _kwargs(name, **kw):
    """Keyword arguments for the library function ``name`` (alpha/beta only for Tversky)."""
    if name == "tversky":
        kw.setdefault("alpha", AB["tversky"][0])
        kw.setdefault("beta", AB["tversky"][1])
    else:
        kw.pop("gamma", None)
    return kw


# ---------------------------------------------------------------------------------------------
# The reference formula, written in torch
# ---------------------------------------------------------------------------------------------


def reference(
    x,
    target,
    *,
    alpha,
    beta,
    gamma=1.0,
    mode="binary",
    from_logits=True,
    smooth=0.0,
    eps=1e-7,
    aggregate="batch",
    absent="zero",
    ignore_index=None,
    classes=None,
    intersection="product",
    log_loss=False,
    reduction="mean",
    axis=1,
    dice_form=False,
):
    """Per class (or per sample and class): I = sum p t, P = sum p, T = sum t, and
    score = (I + s) / max(I + alpha (P - I) + beta (T - I) + s, eps) (Dice written as
    (2I + 2s) / max(P + T + 2s, 2 eps)); loss (1 - score)^gamma or -log(max(score, eps))^gamma;
    absent classes (T = 0): "zero" (loss 0, counted), "skip" (not counted), "keep"."""
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    n = x.shape[0]
    if mode == "binary":
        p = torch.sigmoid(x) if from_logits else x
        p = p.reshape(n, 1, -1)
        t = target.reshape(n, 1, -1).to(x.dtype)
        if ignore_index is not None:
            keep = (t != ignore_index).to(x.dtype)
            p, t = p * keep, t * keep
    else:
        x = torch.movedim(x, axis, 1)
        c = x.shape[1]
        if mode == "multiclass" and not target.is_floating_point():
            p = torch.softmax(x, dim=1) if from_logits else x
            p = p.reshape(n, c, -1)
            labels = target.reshape(n, -1).long()
            keep = torch.ones_like(labels, dtype=torch.bool)
            if ignore_index is not None:
                keep = labels != ignore_index
            onehot = F.one_hot(torch.where(keep, labels, 0), c).permute(0, 2, 1).to(x.dtype)
            keep = keep[:, None, :].to(x.dtype)
            p, t = p * keep, onehot * keep
        else:
            if not from_logits:
                p = x
            elif mode == "multiclass":  # probability maps as targets
                p = torch.softmax(x, dim=1)
            else:
                p = torch.sigmoid(x)
            p = p.reshape(n, c, -1)
            t = torch.movedim(target, axis, 1).reshape(n, c, -1).to(x.dtype)
            if ignore_index is not None:
                keep = (t != ignore_index).to(x.dtype)
                p, t = p * keep, t * keep
    dims = {"batch": (0, 2), "sample": (2,), "global": (0, 1, 2)}[aggregate]
    inter = (torch.minimum(p, t) if intersection == "min" else p * t).sum(dims)
    big_p, big_t = p.sum(dims), t.sum(dims)
    if dice_form:
        score = (2 * inter + 2 * smooth) / (big_p + big_t + 2 * smooth).clamp_min(2 * eps)
    else:
        den = inter + alpha * (big_p - inter) + beta * (big_t - inter) + smooth
        score = (inter + smooth) / den.clamp_min(eps)
    loss = -torch.log(score.clamp_min(eps)) if log_loss else 1 - score
    if gamma != 1:
        loss = loss.clamp_min(0) ** gamma
    present = big_t > 0
    if classes is not None:
        loss, present = loss[..., classes], present[..., classes]
    if absent in ("zero", "skip"):
        loss = torch.where(present, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if absent == "skip":
        return loss.sum() / present.sum()
    return loss.mean()


def _ref_kwargs(name, kw):
    a, b = (kw.pop("alpha", AB[name][0]), kw.pop("beta", AB[name][1]))
    return {"alpha": a, "beta": b, "dice_form": name == "dice", **kw}


def _case(mode, shape, seed, *, ignore_index=None, channel_last=False, scale=2.0):
    """Logits and targets for ``mode``; some classes are absent from some samples, and the last
    class is absent from the whole batch in multiclass cases with more than two classes."""
    rng = _rng(mode, shape, seed, ignore_index)
    n, c = shape[:2]
    x = rng.standard_normal(shape) * scale
    if mode == "binary":
        x = x[:, :1]
        t = (rng.uniform(size=x.shape) < 0.4).astype(np.float64)
        t[0] = 0.0  # an all-background sample
        if ignore_index is not None:
            t[rng.uniform(size=t.shape) < 0.2] = ignore_index
    elif mode == "multiclass":
        top = c - 1 if c > 2 else c
        t = rng.integers(0, top, size=(n, *shape[2:]))
        t[0][t[0] == 1] = 0  # class 1 absent from sample 0
        if ignore_index is not None:
            t[rng.uniform(size=t.shape) < 0.2] = ignore_index
    else:
        t = (rng.uniform(size=shape) < 0.35).astype(np.float64)
        t[0, -1] = 0.0  # the last class absent from sample 0
        if ignore_index is not None:
            t[rng.uniform(size=t.shape) < 0.2] = ignore_index
    if channel_last and mode != "binary":
        x = np.moveaxis(x, 1, -1).copy()
        if mode == "multilabel":
            t = np.moveaxis(t, 1, -1).copy()
    return x, t


def _value_and_grad(fn, x, *args, **kwargs):
    torch = pytest.importorskip("torch")
    leaf = _t(x, requires_grad=True)
    out = fn(leaf, *args, **kwargs)
    cot = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
    (grad,) = torch.autograd.grad((out * cot).sum(), leaf)
    return out.detach(), grad


def _compare(name, x, t, tol=1e-12, **kw):
    """The library against the reference on torch (values and gradients) and on NumPy."""
    lib_kw = _kwargs(name, **kw)
    ref_kw = _ref_kwargs(name, dict(lib_kw))
    ours = _value_and_grad(LOSSES[name], x, _t(t), **lib_kw)
    ref = _value_and_grad(reference, x, _t(t), **ref_kw)
    _assert_close(ours[0], ref[0], tol)
    _assert_close(ours[1], ref[1], tol * 10)
    _assert_close(LOSSES[name](x, t, **lib_kw), ref[0], tol)
    return ref[0]


# ---------------------------------------------------------------------------------------------
# Recorded values (ecosystem-conventions.md, worked example 10)
# ---------------------------------------------------------------------------------------------

P = [0.9, 0.2, 0.6, 0.1]
G = [1.0, 0.0, 1.0, 0.0]
G_SOFT = [0.5, 0.0, 1.0, 0.0]

RECORDED = [
    # segmentation-models-pytorch 0.6.0: DiceLoss("binary", from_logits=False)(p, g), smooth 0
    ("dice-smooth0", ce.dice_loss, P, G, {}, 0.21052631578947367, 1e-14),
    # segmentation-models-pytorch 0.6.0 (>= 0.4): DiceLoss("binary", from_logits=False,
    # smooth=1.0)(p, g); optax 0.2.8 dice_loss with smooth=1: the same number
    ("dice-smooth1", ce.dice_loss, P, G, {"smooth": 1.0}, 0.13793103448275856, 1e-14),
    # segmentation-models-pytorch < 0.4: (2I + s) / (P + T + s) with s = 1 -> smooth=0.5 here
    ("dice-old-smp", ce.dice_loss, P, G, {"smooth": 0.5}, 0.16666666666666663, 1e-14),
    # segmentation-models-pytorch 0.6.0: JaccardLoss("binary", from_logits=False)(p, g)
    ("jaccard", ce.jaccard_loss, P, G, {}, 0.34782608695652173, 1e-14),
    # segmentation-models-pytorch 0.6.0: TverskyLoss("binary", from_logits=False, alpha=0.3,
    # beta=0.7)(p, g)
    ("tversky-smp", ce.tversky_loss, P, G, {"alpha": 0.3, "beta": 0.7}, 0.22680412371134018, 1e-14),
    # keras 3.15.1 (jax backend): keras.losses.Tversky(alpha=0.3, beta=0.7)(g, p), float32;
    # Keras <= 3.15.1 swaps alpha and beta, so its value is alpha=0.7, beta=0.3 here
    (
        "tversky-keras-swapped",
        ce.tversky_loss,
        P,
        G,
        {"alpha": 0.7, "beta": 0.3, "aggregate": "global", "absent": "keep"},
        0.1935484,
        5e-7,
    ),
    # segmentation-models-pytorch 0.6.0: DiceLoss("binary", from_logits=False)(p, g_soft),
    # which intersects soft targets with sum(min(p, t))
    ("dice-soft-smp", ce.dice_loss, P, G_SOFT, {"intersection": "min"}, 0.33333333333333337, 1e-14),
    # keras 3.15.1 (jax backend): keras.losses.Dice()(g_soft, p), float32: sum(p * t)
    (
        "dice-soft-keras",
        ce.dice_loss,
        P,
        G_SOFT,
        {"aggregate": "global", "absent": "keep"},
        0.3636364,
        5e-7,
    ),
]


@pytest.mark.parametrize(
    ("fn", "p", "g", "kwargs", "expected", "tol"),
    [r[1:] for r in RECORDED],
    ids=[r[0] for r in RECORDED],
)
def test_recorded_values(fn, p, g, kwargs, expected, tol):
    for lib in (np.asarray, _t):
        out = fn(lib(p), lib(g), from_logits=False, **kwargs)
        assert abs(float(out) - expected) <= tol * max(1.0, abs(expected)), float(out)


def test_soft_target_intersections_differ_and_agree_on_hard_targets():
    prod = ce.dice_loss(P, G_SOFT, from_logits=False)
    low = ce.dice_loss(P, G_SOFT, from_logits=False, intersection="min")
    assert abs(float(prod) - float(low)) > 0.03
    for fn in LOSSES.values():
        _assert_close(
            fn(P, G, from_logits=False, intersection="min"), fn(P, G, from_logits=False), 1e-15
        )


def test_keras_dice_is_global_with_smooth_zero():
    # keras.losses.Dice: 1 - 2 sum(p t) / (sum(t) + sum(p) + 1e-7) over everything.
    rng = _rng("keras-dice")
    p = rng.uniform(size=(3, 2, 4, 5))
    t = (rng.uniform(size=(3, 2, 4, 5)) < 0.5).astype(np.float64)
    keras = 1 - 2 * (p * t).sum() / (t.sum() + p.sum() + 1e-7)
    for mode in ("binary", "multilabel"):
        out = ce.dice_loss(p, t, mode=mode, from_logits=False, aggregate="global", absent="keep")
        _assert_close(out, keras, 1e-8)


# ---------------------------------------------------------------------------------------------
# The torch reference: modes, aggregates, absent classes, options
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("absent", ABSENT)
@pytest.mark.parametrize("aggregate", AGGREGATES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_matches_reference(name, mode, aggregate, absent):
    for shape, seed in zip(SHAPES, (0, 1, 2), strict=True):
        x, t = _case(mode, shape, seed)
        for reduction, smooth in (("mean", 0.0), ("none", 1.0), ("sum", 0.0)):
            _compare(
                name,
                x,
                t,
                mode=mode,
                aggregate=aggregate,
                absent=absent,
                reduction=reduction,
                smooth=smooth,
            )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_ignore_index(name, mode):
    torch = pytest.importorskip("torch")
    ignore = -1 if mode == "binary" else 255
    for aggregate, absent in itertools.product(AGGREGATES, ("zero", "skip")):
        x, t = _case(mode, (2, 3, 5, 7), 3, ignore_index=ignore)
        ref = _compare(name, x, t, mode=mode, aggregate=aggregate, absent=absent,
                       ignore_index=ignore)  # fmt: skip
        assert np.isfinite(ref.numpy()).all()
    # Multiclass: the ignored pixels' logits get no gradient.
    if mode == "multiclass":
        x, t = _case(mode, (2, 3, 5, 7), 3, ignore_index=ignore)
        _, grad = _value_and_grad(
            LOSSES[name], x, _t(t), **_kwargs(name, mode=mode, ignore_index=ignore)
        )
        ignored = torch.as_tensor(t == ignore)[:, None].expand_as(grad)
        assert (grad[ignored] == 0).all()
        assert (grad[~ignored] != 0).any()


def test_ignore_index_equals_dropping_the_pixels():
    # Binary: one sample whose ignored pixels are removed outright.
    rng = _rng("drop")
    x = rng.standard_normal(20)
    t = (rng.uniform(size=20) < 0.5).astype(np.float64)
    t[[2, 5, 11]] = 255.0
    keep = t != 255.0
    for name, fn in LOSSES.items():
        kw = _kwargs(name, gamma=1.5)
        ours = fn(x[None], t[None], ignore_index=255, **kw)
        _assert_close(ours, fn(x[keep][None], t[keep][None], **kw), 1e-13)


@pytest.mark.parametrize("aggregate", ["batch", "sample"])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_classes_subset(name, mode, aggregate):
    x, t = _case(mode, (3, 4, 3, 5), 4)
    for classes, absent in itertools.product(([0], [3, 1], (2, 0, 3)), ABSENT):
        _compare(name, x, t, mode=mode, aggregate=aggregate, absent=absent, classes=classes)
    # reduction="none" keeps one entry per listed class, in the order given.
    full = LOSSES[name](x, t, mode=mode, aggregate=aggregate, reduction="none", absent="keep")
    sub = LOSSES[name](
        x, t, mode=mode, aggregate=aggregate, reduction="none", absent="keep", classes=[3, 1]
    )
    _assert_close(sub, full[..., [3, 1]], 0.0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_log_loss(name, mode):
    x, t = _case(mode, (2, 3, 5, 7), 5)
    for aggregate, absent in itertools.product(AGGREGATES, ABSENT):
        _compare(name, x, t, mode=mode, aggregate=aggregate, absent=absent, log_loss=True)
    # log_loss = -log(max(score, eps)) per cell, score = 1 - plain loss.
    kw = _kwargs(name, mode=mode, aggregate="sample", absent="keep", reduction="none")
    plain = LOSSES[name](x, t, **kw)
    _assert_close(
        LOSSES[name](x, t, log_loss=True, **kw), -np.log(np.maximum(1 - plain, 1e-7)), 1e-12
    )


@pytest.mark.parametrize("gamma", [0.5, 0.75, 2.0, 4.0 / 3.0])
@pytest.mark.parametrize("mode", MODES)
def test_focal_tversky_gamma(mode, gamma):
    x, t = _case(mode, (2, 3, 5, 7), 6)
    for aggregate, absent in itertools.product(AGGREGATES, ABSENT):
        _compare("tversky", x, t, mode=mode, aggregate=aggregate, absent=absent, gamma=gamma)
    # gamma applies to each cell's loss: (1 - TI)^gamma.
    kw = {"mode": mode, "aggregate": "sample", "absent": "keep", "reduction": "none"}
    base = ce.tversky_loss(x, t, alpha=0.3, beta=0.7, **kw)
    _assert_close(ce.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=gamma, **kw), base**gamma)


def test_focal_tversky_gamma_applies_with_log_loss():
    # The docstring: "gamma applies to each class's loss"; with log_loss that loss is
    # -log(TI). segmentation-models-pytorch 0.6.0 TverskyLoss(log_loss=True, gamma=g) also
    # raises the (mean) log loss to g. gamma must not be silently dropped.
    x, t = _case("multilabel", (2, 3, 5, 7), 7)
    kw = {"mode": "multilabel", "aggregate": "sample", "absent": "keep", "reduction": "none"}
    log1 = ce.tversky_loss(x, t, alpha=0.3, beta=0.7, log_loss=True, **kw)
    log2 = ce.tversky_loss(x, t, alpha=0.3, beta=0.7, log_loss=True, gamma=2.0, **kw)
    _assert_close(log2, log1**2)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_channel_last_equals_channel_first(name, mode):
    ignore = 255 if mode == "multiclass" else None
    x, t = _case(mode, (2, 3, 5, 7), 8, ignore_index=ignore)
    xl, tl = _case(mode, (2, 3, 5, 7), 8, ignore_index=ignore, channel_last=True)
    for aggregate, reduction in itertools.product(AGGREGATES, ("mean", "none")):
        kw = _kwargs(name, mode=mode, aggregate=aggregate, reduction=reduction, ignore_index=ignore)
        first = LOSSES[name](x, t, **kw)
        _assert_close(LOSSES[name](xl, tl, axis=-1, **kw), first, 1e-13)
        _assert_close(LOSSES[name](xl, tl, axis=3, **kw), first, 1e-13)
        ours = _value_and_grad(LOSSES[name], xl, _t(tl), axis=-1, **kw)
        ref = _value_and_grad(reference, xl, _t(tl), axis=3, **_ref_kwargs(name, dict(kw)))
        _assert_close(ours[0], ref[0])
        _assert_close(ours[1], ref[1], 1e-11)


def test_binary_input_with_a_channel_axis():
    # SMP's binary masks: input (N, 1, H, W), target (N, H, W) or (N, 1, H, W).
    x, t = _case("binary", (2, 3, 5, 7), 9)
    for name, fn in LOSSES.items():
        kw = _kwargs(name)
        _assert_close(fn(x, t[:, 0], **kw), fn(x, t, **kw), 0.0)
        _assert_close(fn(x[:, 0], t[:, 0], **kw), fn(x, t, **kw), 0.0)


@pytest.mark.parametrize("name", list(LOSSES))
def test_probability_inputs_and_soft_targets(name):
    # from_logits=False, soft targets in multilabel / binary mode, both intersections.
    for mode, intersection in itertools.product(("binary", "multilabel"), ("product", "min")):
        rng = _rng("soft", name, mode, intersection)
        shape = (2, 1, 5, 7) if mode == "binary" else (2, 3, 5, 7)
        p = rng.uniform(size=shape)
        t = rng.uniform(size=shape) * (rng.uniform(size=shape) < 0.6)
        _compare(name, p, t, mode=mode, from_logits=False, intersection=intersection)
        _compare(name, p, t, mode=mode, from_logits=False, intersection=intersection, smooth=0.5,
                 aggregate="sample", absent="skip")  # fmt: skip
    # multiclass with probability maps as targets (same shape as input).
    rng = _rng("soft-mc", name)
    x = rng.standard_normal((2, 3, 5, 7))
    t = np.moveaxis(rng.dirichlet(np.ones(3), size=(2, 5, 7)), -1, 1)
    ref = reference(_t(x), _t(t), mode="multiclass", **_ref_kwargs(name, {}))
    _assert_close(LOSSES[name](x, t, mode="multiclass", **_kwargs(name)), ref)


def test_absent_class_rules_by_hand():
    # Three classes, class 2 in no target pixel: "zero" counts it as 0 (SMP), "skip" drops it.
    x = np.asarray([[[[2.0, -1.0, 0.5, 0.0]], [[0.0, 1.0, 0.0, 0.3]], [[-1.0, 0.0, 1.0, 0.2]]]])
    y = np.asarray([[[0, 1, 1, 0]]])
    per = ce.dice_loss(x, y, mode="multiclass", reduction="none", absent="keep")
    assert per.shape == (3,)
    assert per[2] == pytest.approx(1.0)  # no target pixel: score 0 / (P / 2)
    zero = ce.dice_loss(x, y, mode="multiclass")
    skip = ce.dice_loss(x, y, mode="multiclass", absent="skip")
    keep = ce.dice_loss(x, y, mode="multiclass", absent="keep")
    assert float(zero) == pytest.approx((per[0] + per[1]) / 3, rel=1e-14)
    assert float(skip) == pytest.approx((per[0] + per[1]) / 2, rel=1e-14)
    assert float(keep) == pytest.approx(per.mean(), rel=1e-14)
    _assert_close(
        ce.dice_loss(x, y, mode="multiclass", reduction="none"), [per[0], per[1], 0.0], 1e-14
    )


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aggregate", AGGREGATES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck(name, mode, aggregate):
    gradcheck = pytest.importorskip("torch.autograd").gradcheck
    x, t = _case(mode, (2, 3, 3, 3), 10, scale=1.0)
    variants = [
        {"absent": "zero"},
        {"absent": "skip", "smooth": 1.0, "log_loss": True},
        {"absent": "keep", "reduction": "none", "gamma": 0.75},
    ]
    for kw in variants:
        lib_kw = _kwargs(name, mode=mode, aggregate=aggregate, **kw)
        assert gradcheck(
            lambda a, k=lib_kw: LOSSES[name](a, _t(t), **k),
            (_t(x, requires_grad=True),),
            eps=1e-6,
            atol=1e-7,
            rtol=1e-5,
        )


def test_gradcheck_probabilities_and_soft_targets():
    gradcheck = pytest.importorskip("torch.autograd").gradcheck
    rng = _rng("gc-probs")
    p = rng.uniform(0.05, 0.95, size=(2, 3, 3, 3))
    t = rng.uniform(size=(2, 3, 3, 3))
    for name, intersection in itertools.product(LOSSES, ("product", "min")):
        kw = _kwargs(name, mode="multilabel", from_logits=False, intersection=intersection)
        assert gradcheck(
            lambda a, k=kw, n=name: LOSSES[n](a, _t(t), **k),
            (_t(p, requires_grad=True),),
            eps=1e-7,
            atol=1e-7,
            rtol=1e-5,
        )


JAX_CASES = {
    "dice-multiclass-ignore": (
        lambda x, y: ce.dice_loss(x, y, mode="multiclass", ignore_index=255, smooth=0.5),
        "multiclass",
    ),
    "jaccard-multilabel-sample-log": (
        lambda x, t: ce.jaccard_loss(x, t, mode="multilabel", aggregate="sample", log_loss=True),
        "multilabel",
    ),
    "tversky-binary-gamma": (
        lambda x, t: ce.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=0.75, absent="skip"),
        "binary",
    ),
}


@pytest.mark.parametrize("name", list(JAX_CASES))
def test_jax_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")

    fn, mode = JAX_CASES[name]
    x, t = _case(mode, (2, 3, 5, 7), 12, ignore_index=255 if mode == "multiclass" else None)
    leaf = _t(x, requires_grad=True)
    (g_torch,) = torch.autograd.grad(fn(leaf, _t(t)), leaf)
    g_jax = jax.grad(lambda a: fn(a, jnp.asarray(t)))(jnp.asarray(x))
    assert g_jax.dtype == jnp.float64
    _assert_close(np.asarray(g_jax), g_torch, 1e-12)


# ---------------------------------------------------------------------------------------------
# Edge cases: empty masks, p exactly 0 and 1
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.parametrize("absent", ABSENT)
@pytest.mark.parametrize("name", list(LOSSES))
def test_all_background_image(name, absent, smooth):
    torch = pytest.importorskip("torch")
    rng = _rng("empty", name, absent, smooth)
    x = rng.standard_normal((2, 1, 4, 5))
    t = np.zeros((2, 1, 4, 5))
    kw = _kwargs(name, absent=absent, smooth=smooth, gamma=0.5)
    ours = _value_and_grad(LOSSES[name], x, _t(t), **kw)
    ref = _value_and_grad(reference, x, _t(t), **_ref_kwargs(name, dict(kw)))
    assert torch.isfinite(ours[1]).all()
    if absent == "skip":
        assert torch.isnan(ours[0])  # nothing to average: the default empty_mean is NaN
        out = LOSSES[name](x, t, empty_mean=0.0, **kw)
        assert float(out) == 0.0
        return
    assert torch.isfinite(ours[0])
    _assert_close(ours[0], ref[0])
    _assert_close(ours[1], ref[1])
    if absent == "zero":
        assert float(ours[0]) == 0.0
        assert (ours[1] == 0).all()
    elif smooth == 0.0:
        assert float(ours[0]) == pytest.approx(1.0)  # score 0 / (alpha * sum p)


@pytest.mark.parametrize("name", list(LOSSES))
def test_class_absent_everywhere_multiclass(name):
    torch = pytest.importorskip("torch")
    rng = _rng("absent-everywhere", name)
    x = rng.standard_normal((2, 4, 3, 5))
    y = rng.integers(0, 3, size=(2, 3, 5))  # class 3 never appears
    for absent, aggregate in itertools.product(ABSENT, ("batch", "sample")):
        kw = _kwargs(name, mode="multiclass", absent=absent, aggregate=aggregate, gamma=0.5)
        ours = _value_and_grad(LOSSES[name], x, _t(y), **kw)
        ref = _value_and_grad(reference, x, _t(y), **_ref_kwargs(name, dict(kw)))
        assert torch.isfinite(ours[0])
        assert torch.isfinite(ours[1]).all()
        _assert_close(ours[0], ref[0])
        _assert_close(ours[1], ref[1])


@pytest.mark.parametrize("name", list(LOSSES))
def test_all_background_keep_smooth0_is_defined_by_the_eps_clamp(name):
    # p = 0 and t = 0 everywhere: I = FP = FN = 0, the denominator is clamped at eps, score 0.
    torch = pytest.importorskip("torch")
    p = np.zeros((2, 1, 3, 3))
    kw = _kwargs(name, from_logits=False, absent="keep", smooth=0.0)
    out, grad = _value_and_grad(LOSSES[name], p, _t(np.zeros_like(p)), **kw)
    assert float(out) == 1.0
    assert torch.isfinite(grad).all()
    out, grad = _value_and_grad(LOSSES[name], p, _t(np.zeros_like(p)), log_loss=True, **kw)
    assert float(out) == pytest.approx(-np.log(1e-7), rel=1e-12)
    assert torch.isfinite(grad).all()
    for lib in (np.asarray, _t):
        assert float(LOSSES[name](lib(p), lib(np.zeros_like(p)), **kw)) == 1.0


@pytest.mark.parametrize("gamma", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_probabilities_exactly_0_and_1(name, mode, gamma):
    torch = pytest.importorskip("torch")
    rng = _rng("exact", name, mode)
    if mode == "multiclass":
        y = rng.integers(0, 3, size=(2, 4, 5))
        y[0, 0, :3] = [0, 1, 2]
        t = np.moveaxis(np.eye(3)[y], -1, 1)  # one-hot probabilities: perfect prediction
        target = y
    else:
        shape = (2, 1, 4, 5) if mode == "binary" else (2, 3, 4, 5)
        t = (rng.uniform(size=shape) < 0.5).astype(np.float64)
        t[:, :, 0, :2] = [1.0, 0.0]
        target = t
    kw = _kwargs(name, mode=mode, from_logits=False, gamma=gamma)
    for absent in ABSENT:
        perfect, g_perfect = _value_and_grad(LOSSES[name], t, _t(target), absent=absent, **kw)
        assert float(perfect) == 0.0
        assert torch.isfinite(g_perfect).all()
        if mode != "multiclass":
            wrong, g_wrong = _value_and_grad(LOSSES[name], 1 - t, _t(target), absent=absent, **kw)
            assert float(wrong) == pytest.approx(1.0)  # I = 0: score 0
            assert torch.isfinite(g_wrong).all()
            ref = reference(_t(1 - t), _t(target), absent=absent, **_ref_kwargs(name, dict(kw)))
            _assert_close(wrong, ref)
            logw, g_log = _value_and_grad(
                LOSSES[name], 1 - t, _t(target), absent=absent, log_loss=True, **kw
            )
            assert torch.isfinite(logw)
            assert torch.isfinite(g_log).all()


# ---------------------------------------------------------------------------------------------
# Every backend
# ---------------------------------------------------------------------------------------------

RNG = np.random.default_rng(11)
BX = RNG.standard_normal((2, 3, 5, 3)) * 2
BY = RNG.integers(0, 3, size=(2, 5, 3))
BY[0, 0, :2] = 255
BT = (RNG.uniform(size=(2, 3, 5, 3)) < 0.4).astype(np.float64)
BP = RNG.uniform(size=(2, 3, 5, 3))

BACKEND_CASES = {
    "dice-multiclass-ignore": (
        lambda x, y: ce.dice_loss(x, y, mode="multiclass", ignore_index=255),
        (BX, BY),
    ),
    "jaccard-multilabel-global": (
        lambda x, t: ce.jaccard_loss(x, t, mode="multilabel", aggregate="global", smooth=1.0),
        (BX, BT),
    ),
    "tversky-binary-gamma": (
        lambda x, t: ce.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=0.75),
        (BX[:, :1].copy(), BT[:, :1].copy()),
    ),
    "tversky-channel-last-sample-classes": (
        lambda x, y: ce.tversky_loss(
            x,
            y,
            mode="multiclass",
            axis=-1,
            classes=[2, 0],
            ignore_index=255,
            aggregate="sample",
            absent="skip",
            reduction="none",
        ),
        (np.moveaxis(BX, 1, -1).copy(), BY),
    ),
    "dice-probs-min-log-skip": (
        lambda p, t: ce.dice_loss(
            p,
            t,
            mode="multilabel",
            from_logits=False,
            intersection="min",
            log_loss=True,
            absent="skip",
        ),
        (BP, BT),
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(BACKEND_CASES))
def test_every_backend(backend, name, dtype):
    fn, arrays = BACKEND_CASES[name]
    check_on_backend(backend, fn, arrays, dtype)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.int16])
def test_every_backend_small_integer_labels(backend, label_dtype):
    # Segmentation masks often come as uint8: the labels' integer type must not change the loss.
    x = BX.astype(np.float64)
    y = RNG.integers(0, 3, size=(2, 5, 3))
    expected = np.asarray(ce.dice_loss(x, y.astype(np.int64), mode="multiclass", reduction="none"))
    out = ce.dice_loss(
        backend.asarray(x),
        backend.asarray(y.astype(label_dtype)),
        mode="multiclass",
        reduction="none",
    )
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------

X4 = np.zeros((2, 3, 4, 4))
Y4 = np.zeros((2, 4, 4), dtype=np.int64)
T4 = np.zeros((2, 3, 4, 4))
XB, TB = np.zeros((2, 4)), np.zeros((2, 4))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: ce.dice_loss(XB, TB, mode="multi"), ValueError, "mode"),
        (lambda: ce.dice_loss(XB, TB, aggregate="image"), ValueError, "aggregate"),
        (lambda: ce.jaccard_loss(XB, TB, absent="ignore"), ValueError, "absent"),
        (lambda: ce.tversky_loss(XB, TB, intersection="max"), ValueError, "intersection"),
        (lambda: ce.dice_loss(XB, TB, reduction="batchmean"), ValueError, "reduction"),
        (lambda: ce.dice_loss(XB, TB[:, :3]), ValueError, "target"),
        (lambda: ce.dice_loss(X4, Y4[:, :3], mode="multiclass"), ValueError, "target"),
        (lambda: ce.dice_loss(X4, Y4[0], mode="multiclass"), ValueError, "target"),
        (lambda: ce.jaccard_loss(X4, T4[:, :2], mode="multilabel"), ValueError, "target"),
        (lambda: ce.jaccard_loss(X4, Y4, mode="multilabel"), ValueError, "target"),
        (lambda: ce.dice_loss(XB, TB + 2), ValueError, "target"),
        (lambda: ce.dice_loss(XB + 2, TB, from_logits=False), ValueError, "input"),
        (
            lambda: ce.dice_loss(np.zeros(3), np.zeros(3, int), mode="multiclass"),
            ValueError,
            "input",
        ),
        (lambda: ce.dice_loss(X4, Y4 + 3, mode="multiclass"), ValueError, "label"),
        (lambda: ce.dice_loss(X4, Y4 - 1, mode="multiclass"), ValueError, "label"),
        (
            lambda: ce.dice_loss(X4, Y4 + 3, mode="multiclass", ignore_index=255),
            ValueError,
            "label",
        ),
        (lambda: ce.dice_loss(X4, Y4, mode="multiclass", classes=[3]), ValueError, "classes"),
        (lambda: ce.dice_loss(X4, Y4, mode="multiclass", classes=[-1]), ValueError, "classes"),
        (lambda: ce.dice_loss(X4, Y4, mode="multiclass", classes=[]), ValueError, "classes"),
        (lambda: ce.dice_loss(X4, Y4, mode="multiclass", classes=[0.5]), TypeError, "classes"),
        (
            lambda: ce.dice_loss(X4, Y4, mode="multiclass", classes=[0], aggregate="global"),
            ValueError,
            "classes",
        ),
        (lambda: ce.dice_loss(XB, TB, smooth=-1.0), ValueError, "smooth"),
        (lambda: ce.dice_loss(XB, TB, smooth="1"), TypeError, "smooth"),
        (lambda: ce.dice_loss(XB, TB, eps=-1e-7), ValueError, "eps"),
        (lambda: ce.tversky_loss(XB, TB, alpha=-0.1), ValueError, "alpha"),
        (lambda: ce.tversky_loss(XB, TB, beta=-0.1), ValueError, "beta"),
        (lambda: ce.tversky_loss(XB, TB, gamma=0.0), ValueError, "gamma"),
        (lambda: ce.dice_loss(XB, TB, from_logits="yes"), TypeError, "from_logits"),
        (lambda: ce.dice_loss(XB, TB, log_loss=1), TypeError, "log_loss"),
        (lambda: ce.dice_loss(XB, TB, ignore_index=0.5), TypeError, "ignore_index"),
        (lambda: ce.dice_loss(X4, Y4, mode="multiclass", axis=4), ValueError, "axis"),
    ],
)
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_inputs_on_torch():
    torch = pytest.importorskip("torch")
    x, y = torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="label"):
        ce.dice_loss(x, y + 3, mode="multiclass")
    with pytest.raises(ValueError, match="classes"):
        ce.jaccard_loss(x, y, mode="multiclass", classes=[5])
    with pytest.raises(ValueError, match="target"):
        ce.tversky_loss(x, y[:, :2], mode="multiclass")
    with pytest.raises(ValueError, match="class probabilities must be floating"):
        ce.dice_loss(x, torch.zeros(2, 3, 4, 4, dtype=torch.long), mode="multiclass")
    with pytest.raises(ValueError, match="aggregate"):
        ce.tversky_loss(x, y, mode="multiclass", aggregate="pixel")


# ---------------------------------------------------------------------------------------------
# Bad labels on lazy arrays, and the batch size in binary mode.
# ---------------------------------------------------------------------------------------------


def test_overlap_losses_keep_nan_for_bad_labels_on_lazy_arrays():
    da = pytest.importorskip("dask.array")

    x = da.from_array(np.random.default_rng(0).standard_normal((2, 3, 4)))
    y = da.from_array(np.asarray([[0, 1, 7, 2], [1, 1, 0, 2]]))
    for aggregate in ("batch", "sample", "global"):
        out = ce.dice_loss(x, y, mode="multiclass", aggregate=aggregate).compute()
        assert np.isnan(out)


def test_binary_overlap_mode_checks_the_batch_size():
    with pytest.raises(ValueError, match="batch size"):
        ce.dice_loss(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("shape", "labels", "index"),
    [((6, 4), [0, 1, 2, 3, 4, 0], "(4,)"), ((2, 4, 3), [[0, 1, 2], [3, 4, 0]], "(1, 1)")],
)
def test_a_label_out_of_range_is_named_at_its_index_in_target(shape, labels, index):
    x = np.full(shape, 0.25)
    with pytest.raises(ValueError, match=rf"label 4 at index {re.escape(index)};"):
        ce.dice_loss(x, np.array(labels), mode="multiclass", axis=-1 if len(shape) == 2 else 1)


def test_classes_given_twice_and_an_axis_in_binary_mode_are_refused():
    """A class listed twice in ``classes`` counted twice in the mean; ``axis`` in binary mode
    (which has no class axis) was ignored whatever its value."""
    x, y = np.array([[1.0, 2, 3], [4, 5, 6]]), np.array([1, 2])
    with pytest.raises(ValueError, match="classes must be distinct class indices; got 1 twice"):
        ce.dice_loss(x, y, mode="multiclass", classes=[1, 1, 2])
    for axis in (7, 1, -1):
        with pytest.raises(ValueError, match="binary mode has none; got axis="):
            ce.dice_loss(np.array([0.5, -1, 2]), np.array([1.0, 0, 1]), axis=axis)
    got = ce.dice_loss(x, y, mode="multiclass", classes=[2, 1])
    assert float(got) == pytest.approx(float(ce.dice_loss(x, y, mode="multiclass", classes=[1, 2])))


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_a_bad_probability_is_named_at_its_index_as_given(mode):
    """Values outside [0, 1] are named at their index in the arrays as given (the loss's
    (N, C, pixels) layout, with the class axis moved to 1, is its own)."""
    t = np.zeros((2, 3, 6, 6))
    t[1, 2, 3, 4] = 2.0
    with pytest.raises(ValueError, match=re.escape("got 2.0 at index (1, 2, 3, 4)")):
        ce.dice_loss(np.zeros((2, 3, 6, 6)), t, mode=mode)
    x = np.full((2, 6, 6, 3), 0.5)
    x[1, 3, 4, 2] = 1.5
    axis = {} if mode == "binary" else {"axis": -1}  # (binary mode has no class axis)
    with pytest.raises(
        ValueError,
        match=re.escape("input must hold probabilities in [0, 1]; got 1.5 at index (1, 3, 4, 2)"),
    ):
        ce.jaccard_loss(x, np.zeros((2, 6, 6, 3)), mode=mode, from_logits=False, **axis)
    t = np.zeros((2, 3, 6, 6))
    t[0, 1, 2, 3] = 255.0  # ignored, not a probability to check
    t[1, 0, 0, 1] = -0.5
    with pytest.raises(ValueError, match=re.escape("got -0.5 at index (1, 0, 0, 1)")):
        ce.tversky_loss(np.zeros((2, 3, 6, 6)), t, mode=mode, ignore_index=255)
