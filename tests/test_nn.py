"""``crossentropy.nn``: the module drop-ins against the same-named ``torch.nn`` modules (values and
input gradients, bit-identical where no extra keyword is used), extras as constructor keywords
against the functional API and independent torch formulas, the modules torch lacks, buffers,
``state_dict``, pickling, ``torch.compile``, ``repr`` and errors (options at construction, arrays
at forward time).
"""

from __future__ import annotations

import copy
import inspect
import pickle
import zlib

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import crossentropy as ce  # noqa: E402
import crossentropy.nn as cnn  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated"),
    pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss"),
]

DTYPES = (torch.float64, torch.float32)
REDUCTIONS = ("none", "mean", "sum")
# Input shape (classes on axis 1, or 0 for 1-D input) and the class-index target's shape.
LAYOUTS = {
    "C": ((5,), ()),
    "NC": ((6, 5), (6,)),
    "NCd": ((3, 4, 7), (3, 7)),
    "NCdd": ((2, 3, 4, 5), (2, 4, 5)),
}
LEGACY = (
    (None, False),
    (None, True),
    (False, None),
    (True, None),
    (False, False),
    (True, False),
    (False, True),
    (True, True),
)


def _gen(*key):
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _randn(g, shape, dtype, scale=1.0):
    return torch.randn(shape, generator=g, dtype=dtype) * scale


def _rand(g, shape, dtype, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(shape, generator=g, dtype=dtype)


def _tol(dtype):
    return (
        {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    )


def _class_axis(x):
    return 0 if x.ndim == 1 else 1


def _labels(g, x, target_shape, ignore_index=-100, ignore_frac=0.25):
    """Class indices for ``x``; about ``ignore_frac`` of them set to ``ignore_index``, never the
    first (so a mean always has something to average)."""
    n_classes = x.shape[_class_axis(x)]
    t = torch.randint(0, n_classes, target_shape, generator=g)
    if t.ndim:
        drop = torch.rand(target_shape, generator=g) < ignore_frac
        t = torch.where(drop, torch.full_like(t, ignore_index), t)
    if int(t.view(-1)[0]) == ignore_index:
        t.view(-1)[0] = (ignore_index + 1) % n_classes
    return t


def _value_and_grad(module, x, *rest, **kwargs):
    leaf = x.detach().clone().requires_grad_(True)
    out = module(leaf, *rest, **kwargs)
    cot = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    (grad,) = torch.autograd.grad((out * cot).sum(), leaf)
    return out.detach(), grad


def _assert_same(ours, theirs, x, *rest, exact=True, **kwargs):
    """Equal values and input gradients: first within a tight tolerance, then (``exact``)
    bit for bit."""
    a, ga = _value_and_grad(ours, x, *rest, **kwargs)
    b, gb = _value_and_grad(theirs, x, *rest, **kwargs)
    torch.testing.assert_close(a, b, **_tol(x.dtype))
    torch.testing.assert_close(ga, gb, **_tol(x.dtype))
    if exact:
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m: "value not identical\n" + m)
        torch.testing.assert_close(
            ga, gb, rtol=0, atol=0, msg=lambda m: "gradient not identical\n" + m
        )


def _weight(g, n, dtype):
    return _rand(g, (n,), dtype, 0.2, 2.0)


# ---------------------------------------------------------------------------------------------
# Parity with torch.nn: constructor arguments of torch, no extra keyword -> bit-identical.
# ---------------------------------------------------------------------------------------------

CE_CONFIGS = {
    "plain": {},
    "weight": {"weight": True},
    "ignore_index": {"ignore_index": 2},
    "label_smoothing": {"label_smoothing": 0.15},
    "weight+smoothing": {"weight": True, "label_smoothing": 0.2},
    "all": {"weight": True, "ignore_index": 0, "label_smoothing": 0.1},
}


def _class_kwargs(g, config, n_classes, dtype):
    kw = dict(config)
    if kw.pop("weight", False):
        kw["weight"] = _weight(g, n_classes, dtype)
    return kw


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", CE_CONFIGS)
def test_cross_entropy_loss_matches_torch(config, dtype, layout, reduction):
    g = _gen("ce", config, dtype, layout, reduction)
    shape, tshape = LAYOUTS[layout]
    x = _randn(g, shape, dtype, 3.0)
    kw = _class_kwargs(g, CE_CONFIGS[config], shape[_class_axis(x)], dtype)
    t = _labels(g, x, tshape, kw.get("ignore_index", -100))
    ours = cnn.CrossEntropyLoss(reduction=reduction, **kw)
    theirs = torch.nn.CrossEntropyLoss(reduction=reduction, **kw)
    _assert_same(ours, theirs, x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", ["plain", "weight", "ignore_index", "weight+ignore"])
def test_nll_loss_matches_torch(config, dtype, layout, reduction):
    g = _gen("nll", config, dtype, layout, reduction)
    shape, tshape = LAYOUTS[layout]
    x = torch.log_softmax(_randn(g, shape, dtype, 2.0), dim=0 if len(shape) == 1 else 1)
    base = {
        "plain": {},
        "weight": {"weight": True},
        "ignore_index": {"ignore_index": 1},
        "weight+ignore": {"weight": True, "ignore_index": 3},
    }[config]
    kw = _class_kwargs(g, base, shape[_class_axis(x)], dtype)
    t = _labels(g, x, tshape, kw.get("ignore_index", -100))
    _assert_same(
        cnn.NLLLoss(reduction=reduction, **kw), torch.nn.NLLLoss(reduction=reduction, **kw), x, t
    )


ELEMENT_SHAPES = {"N": (7,), "NC": (6, 5), "NCd": (3, 4, 7), "NCdd": (2, 3, 4, 5)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ELEMENT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weight"])
def test_bce_loss_matches_torch(weighted, dtype, layout, reduction):
    g = _gen("bce", weighted, dtype, layout, reduction)
    shape = ELEMENT_SHAPES[layout]
    p = _rand(g, shape, dtype, 0.01, 0.99)
    p.view(-1)[:2] = torch.tensor([0.0, 1.0], dtype=dtype)  # torch's log clamp at -100
    t = _rand(g, shape, dtype)
    t.view(-1)[:2] = torch.tensor([1.0, 0.0], dtype=dtype)
    kw = {"weight": _weight(g, shape[-1], dtype)} if weighted else {}
    _assert_same(
        cnn.BCELoss(reduction=reduction, **kw), torch.nn.BCELoss(reduction=reduction, **kw), p, t
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ELEMENT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", ["plain", "weight", "pos_weight", "both"])
def test_bce_with_logits_loss_matches_torch(config, dtype, layout, reduction):
    g = _gen("bcel", config, dtype, layout, reduction)
    shape = ELEMENT_SHAPES[layout]
    x = _randn(g, shape, dtype, 4.0)
    t = _rand(g, shape, dtype)
    kw = {}
    if config in ("weight", "both"):
        kw["weight"] = _weight(g, shape[-1], dtype)
    if config in ("pos_weight", "both"):
        kw["pos_weight"] = _rand(g, (shape[-1],), dtype, 0.5, 4.0)
    _assert_same(
        cnn.BCEWithLogitsLoss(reduction=reduction, **kw),
        torch.nn.BCEWithLogitsLoss(reduction=reduction, **kw),
        x,
        t,
    )


REGRESSION = {
    "MSELoss": {},
    "L1Loss": {},
    "HuberLoss": {},
    "HuberLoss-delta": {"delta": 0.7},
    "SmoothL1Loss": {},
    "SmoothL1Loss-beta": {"beta": 0.5},
    "SmoothL1Loss-beta0": {"beta": 0.0},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ELEMENT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", REGRESSION)
def test_regression_losses_match_torch(case, dtype, layout, reduction):
    g = _gen("reg", case, dtype, layout, reduction)
    shape = ELEMENT_SHAPES[layout]
    x, y = _randn(g, shape, dtype, 2.0), _randn(g, shape, dtype, 2.0)
    name, kw = case.split("-")[0], REGRESSION[case]
    ours = getattr(cnn, name)(reduction=reduction, **kw)
    theirs = getattr(torch.nn, name)(reduction=reduction, **kw)
    _assert_same(ours, theirs, x, y)


@pytest.mark.parametrize("layout", ELEMENT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("log_target", [False, True], ids=["probs", "log_target"])
def test_kl_div_loss_matches_torch(log_target, dtype, layout):
    g = _gen("kl", log_target, dtype, layout)
    shape = ELEMENT_SHAPES[layout]
    x = torch.log_softmax(_randn(g, shape, dtype), dim=-1)
    t = torch.softmax(_randn(g, shape, dtype), dim=-1)
    if log_target:
        t = t.log()
    for reduction in (*REDUCTIONS, "batchmean"):
        # Documented exception: KLDivLoss runs the generic path (0 log 0 = 0 convention), equal
        # to PyTorch to rounding rather than bit for bit.
        _assert_same(
            cnn.KLDivLoss(reduction=reduction, log_target=log_target),
            torch.nn.KLDivLoss(reduction=reduction, log_target=log_target),
            x,
            t,
            exact=False,
        )


@pytest.mark.parametrize("layout", ["C", "NC", "NCdd"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", ["plain", "weight", "label_smoothing", "weight+smoothing"])
def test_cross_entropy_loss_probability_targets_match_torch(config, dtype, layout):
    g = _gen("ce-soft", config, dtype, layout)
    shape, _ = LAYOUTS[layout]
    x = _randn(g, shape, dtype, 3.0)
    t = torch.softmax(_randn(g, shape, dtype, 2.0), dim=_class_axis(x))
    kw = _class_kwargs(g, CE_CONFIGS[config], shape[_class_axis(x)], dtype)
    for reduction in REDUCTIONS:
        # Documented exception: probability targets run the generic path (0 log 0 = 0 and
        # ignore rows), equal to PyTorch to rounding rather than bit for bit.
        _assert_same(
            cnn.CrossEntropyLoss(reduction=reduction, **kw),
            torch.nn.CrossEntropyLoss(reduction=reduction, **kw),
            x,
            t,
            exact=False,
        )


def _legacy_case(name, g):
    """Module name, extra constructor arguments, and inputs for the legacy-argument test."""
    x = _randn(g, (6, 5), torch.float64, 2.0)
    labels = _labels(g, x, (6,))
    probs = _rand(g, (6, 5), torch.float64, 0.02, 0.98)
    target = _rand(g, (6, 5), torch.float64)
    w = _weight(g, 5, torch.float64)
    return {
        "CrossEntropyLoss": ({"weight": w, "label_smoothing": 0.1}, (x, labels)),
        "NLLLoss": ({"weight": w}, (torch.log_softmax(x, 1), labels)),
        "BCELoss": ({"weight": w}, (probs, target)),
        "BCEWithLogitsLoss": ({"pos_weight": w}, (x, target)),
        "KLDivLoss": ({}, (torch.log_softmax(x, 1), torch.softmax(target, 1))),
        "MSELoss": ({}, (x, target)),
        "L1Loss": ({}, (x, target)),
        "SmoothL1Loss": ({"beta": 0.5}, (x, target)),
    }[name]


@pytest.mark.parametrize(("size_average", "reduce"), LEGACY)
@pytest.mark.parametrize(
    "name",
    [
        "CrossEntropyLoss",
        "NLLLoss",
        "BCELoss",
        "BCEWithLogitsLoss",
        "KLDivLoss",
        "MSELoss",
        "L1Loss",
        "SmoothL1Loss",
    ],
)
def test_deprecated_size_average_and_reduce(name, size_average, reduce):
    g = _gen("legacy", name, size_average, reduce)
    kw, inputs = _legacy_case(name, g)
    # torch lets the legacy pair override an explicit reduction; so must we.
    kw = {"size_average": size_average, "reduce": reduce, "reduction": "sum", **kw}
    ours, theirs = getattr(cnn, name)(**kw), getattr(torch.nn, name)(**kw)
    assert ours.reduction == theirs.reduction
    _assert_same(ours, theirs, *inputs, exact=name != "KLDivLoss")


# ---------------------------------------------------------------------------------------------
# Extras as constructor keywords.
# ---------------------------------------------------------------------------------------------

CE_EXTRAS = {
    "z_loss": {"z_loss": 1e-3},
    "softcap": {"softcap": 2.0},
    "z_loss+smoothing+weight": {"z_loss": 1e-3, "label_smoothing": 0.1, "weight": True},
    "mean_divisor": {"mean_divisor": "count", "weight": True},
    "weight_mode": {"weight_mode": "per_sample", "weight": True, "label_smoothing": 0.2},
    "empty_mean": {"empty_mean": 0.0, "weight": True},
    "axis": {"axis": -1},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("extra", CE_EXTRAS)
def test_cross_entropy_loss_extras_equal_functional(extra, dtype, reduction):
    g = _gen("ce-extra", extra, dtype, reduction)
    x = _randn(g, (3, 4, 6), dtype, 3.0)
    kw = _class_kwargs(g, CE_EXTRAS[extra], 4, dtype)
    tshape = (3, 4) if extra == "axis" else (3, 6)
    t = _labels(g, x if extra != "axis" else x.movedim(-1, 1), tshape)
    module = cnn.CrossEntropyLoss(reduction=reduction, **kw)
    weight = kw.pop("weight", None)

    def functional(inp, tgt):
        return ce.cross_entropy(inp, tgt, weight, reduction=reduction, **kw)

    _assert_same(module, functional, x, t, exact=False)


def _ce_reference(extra, x, t, w):
    """Each CE extra in plain torch, reduction ``mean``."""
    valid = t != -100
    safe = torch.where(valid, t, torch.zeros_like(t))
    if extra == "z_loss":
        lse = torch.logsumexp(x, dim=1)
        return F.cross_entropy(x, t) + 1e-3 * (lse[valid] ** 2).mean()
    if extra == "softcap":
        return F.cross_entropy(2.0 * torch.tanh(x / 2.0), t)
    if extra == "z_loss+smoothing+weight":
        lse = torch.logsumexp(x, dim=1)
        plain = F.cross_entropy(x, t, weight=w, label_smoothing=0.1)
        return plain + 1e-3 * (lse[valid] ** 2).mean()
    if extra == "mean_divisor":
        return F.cross_entropy(x, t, weight=w, reduction="sum") / valid.sum()
    if extra == "weight_mode":
        per = F.cross_entropy(x, t, label_smoothing=0.2, reduction="none")
        w_y = torch.where(valid, w[safe], torch.zeros_like(per))
        return (w_y * per).sum() / w_y.sum()
    if extra == "empty_mean":
        return F.cross_entropy(x, t, weight=w)
    assert extra == "axis"
    return F.cross_entropy(x.movedim(-1, 1), t)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("extra", CE_EXTRAS)
def test_cross_entropy_loss_extras_match_torch_formulas(extra, dtype):
    g = _gen("ce-extra-ref", extra, dtype)
    x = _randn(g, (3, 4, 6), dtype, 3.0)
    kw = _class_kwargs(g, CE_EXTRAS[extra], 4, dtype)
    tshape = (3, 4) if extra == "axis" else (3, 6)
    t = _labels(g, x if extra != "axis" else x.movedim(-1, 1), tshape)
    module = cnn.CrossEntropyLoss(**kw)
    w = kw.get("weight")
    _assert_same(module, lambda inp, tgt: _ce_reference(extra, inp, tgt, w), x, t, exact=False)
    # The keyword is in effect: the value is not plain torch's (channel-last input is refused
    # by torch; empty_mean only shows on an all-ignored batch, tested below).
    if extra not in ("empty_mean", "axis"):
        plain = torch.nn.CrossEntropyLoss(weight=w)(x, t)
        assert not torch.allclose(module(x, t), plain, rtol=1e-4, atol=0)


def test_cross_entropy_loss_empty_mean_on_an_all_ignored_batch():
    x = _randn(_gen("all-ignored"), (4, 3), torch.float64).requires_grad_(True)
    t = torch.full((4,), -100)
    assert torch.isnan(torch.nn.CrossEntropyLoss()(x, t))
    assert torch.isnan(cnn.CrossEntropyLoss()(x, t))
    out = cnn.CrossEntropyLoss(empty_mean=0.0)(x, t)
    assert out.dtype == torch.float64
    assert float(out.detach()) == 0.0
    (grad,) = torch.autograd.grad(out, x)
    torch.testing.assert_close(grad, torch.zeros_like(x), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "extra",
    [
        {"label_smoothing": 0.1},
        {"label_smoothing": 0.2, "smoothing_mode": "flip"},
        {"label_smoothing": 0.1, "smoothing_mode": "uniform", "pos_weight": True},
        {"mean_divisor": "weight", "weight": True},
        {"mean_divisor": "count", "weight": True},
    ],
    ids=str,
)
def test_bce_with_logits_loss_extras(extra, dtype):
    g = _gen("bcel-extra", str(extra), dtype)
    x, t = _randn(g, (4, 2, 5), dtype, 3.0), (_rand(g, (4, 2, 5), dtype) > 0.5).to(dtype)
    kw = dict(extra)
    if kw.pop("weight", False):
        kw["weight"] = _weight(g, 5, dtype)
    if kw.pop("pos_weight", False):
        kw["pos_weight"] = _rand(g, (5,), dtype, 0.5, 3.0)
    weight = kw.get("weight")
    for reduction in (*REDUCTIONS, "batchmean"):
        module = cnn.BCEWithLogitsLoss(reduction=reduction, **kw)
        fkw = {k: v for k, v in kw.items() if k != "weight"}
        _assert_same(
            module,
            lambda i, tt, r=reduction, f=fkw: ce.binary_cross_entropy_with_logits(
                i, tt, weight, reduction=r, **f
            ),
            x,
            t,
            exact=False,
        )
    # Against torch on the smoothed target, or with the weighted mean spelled out.
    eps, mode = kw.get("label_smoothing", 0.0), kw.get("smoothing_mode", "uniform")
    smoothed = t * (1 - eps) + (eps / 2 if mode == "uniform" else (1 - t) * eps)
    tkw = {k: kw[k] for k in ("weight", "pos_weight") if k in kw}
    if kw.get("mean_divisor") == "weight":

        def reference(i, tt):
            total = F.binary_cross_entropy_with_logits(i, tt, reduction="sum", **tkw)
            return total / kw["weight"].expand_as(i).sum()
    else:

        def reference(i, tt):
            return F.binary_cross_entropy_with_logits(i, smoothed, **tkw)

    _assert_same(cnn.BCEWithLogitsLoss(**kw), reference, x, t, exact=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss"])
def test_regression_forward_weight_and_mean_divisor(name, dtype):
    g = _gen("reg-extra", name, dtype)
    x, y = _randn(g, (4, 6), dtype, 2.0), _randn(g, (4, 6), dtype, 2.0)
    w = _rand(g, (6,), dtype, 0.1, 3.0)
    fn = {
        "MSELoss": ce.mse_loss,
        "L1Loss": ce.l1_loss,
        "HuberLoss": ce.huber_loss,
        "SmoothL1Loss": ce.smooth_l1_loss,
    }[name]
    for reduction in (*REDUCTIONS, "batchmean"):
        for divisor in ("auto", "weight", "count"):
            module = getattr(cnn, name)(reduction=reduction, mean_divisor=divisor)
            a, ga = _value_and_grad(module, x, y, weight=w)
            b, gb = _value_and_grad(
                lambda i, t, r=reduction, d=divisor: fn(
                    i, t, reduction=r, weight=w, mean_divisor=d
                ),
                x,
                y,
            )
            torch.testing.assert_close(a, b, **_tol(dtype))
            torch.testing.assert_close(ga, gb, **_tol(dtype))
    # The divisors, spelled out in torch.
    per = getattr(torch.nn, name)(reduction="none")(x, y) * w
    count = getattr(cnn, name)(mean_divisor="count")(x, y, weight=w)
    by_weight = getattr(cnn, name)(mean_divisor="weight")(x, y, weight=w)
    torch.testing.assert_close(count, per.sum() / per.numel(), **_tol(dtype))
    torch.testing.assert_close(by_weight, per.sum() / w.expand_as(per).sum(), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "HuberLoss"])
def test_regression_forward_weight_matches_torch_functional(name, dtype):
    """PyTorch 2.13's functional ``weight=``; its modules' ``forward`` take none."""
    g = _gen("reg-weight", name, dtype)
    x, y = _randn(g, (3, 5, 4), dtype, 2.0), _randn(g, (3, 5, 4), dtype, 2.0)
    w = _rand(g, (3, 5, 4), dtype, 0.1, 3.0)  # torch wants the input's shape
    fn = {"MSELoss": F.mse_loss, "L1Loss": F.l1_loss, "HuberLoss": F.huber_loss}[name]
    for reduction in REDUCTIONS:
        a, ga = _value_and_grad(getattr(cnn, name)(reduction=reduction), x, y, weight=w)
        b, gb = _value_and_grad(lambda i, t, r=reduction: fn(i, t, reduction=r, weight=w), x, y)
        torch.testing.assert_close(a, b, **_tol(dtype))
        torch.testing.assert_close(ga, gb, **_tol(dtype))


def test_other_modules_pass_extras_through():
    g = _gen("other-extras")
    x = _randn(g, (5, 4), torch.float64, 2.0)
    lp = torch.log_softmax(x, 1)
    t = _labels(g, x, (5,))
    w = _weight(g, 4, torch.float64)
    torch.testing.assert_close(
        cnn.NLLLoss(w, mean_divisor="count")(lp, t),
        ce.nll_loss(lp, t, w, mean_divisor="count"),
        rtol=0,
        atol=0,
    )
    torch.testing.assert_close(
        cnn.NLLLoss(w, mean_divisor="count")(lp, t),
        F.nll_loss(lp, t, w, reduction="sum") / (t != -100).sum(),
        **_tol(torch.float64),
    )
    p, tb = torch.sigmoid(x), _rand(g, (5, 4), torch.float64)
    p.view(-1)[0] = 0.0
    tb.view(-1)[0] = 1.0
    torch.testing.assert_close(
        cnn.BCELoss(clip="keras")(p, tb),
        ce.binary_cross_entropy(p, tb, clip="keras"),
        rtol=0,
        atol=0,
    )
    assert float(cnn.BCELoss(clip="keras")(p, tb)) < float(cnn.BCELoss()(p, tb))
    empty = torch.zeros((0, 4), dtype=torch.float64)
    assert float(cnn.KLDivLoss(empty_mean=0.0)(empty, empty)) == 0.0
    assert torch.isnan(cnn.KLDivLoss()(empty, empty))


# ---------------------------------------------------------------------------------------------
# Modules torch lacks.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", ["plain", "weight", "ignore_index", "weight+smoothing", "all"])
def test_focal_loss_gamma_zero_is_cross_entropy_loss(config, dtype, layout):
    g = _gen("focal0", config, dtype, layout)
    shape, tshape = LAYOUTS[layout]
    x = _randn(g, shape, dtype, 3.0)
    kw = _class_kwargs(g, CE_CONFIGS[config], shape[_class_axis(x)], dtype)
    t = _labels(g, x, tshape, kw.get("ignore_index", -100))
    weight = kw.pop("weight", None)
    for reduction in REDUCTIONS:
        _assert_same(
            cnn.FocalLoss(weight, gamma=0.0, reduction=reduction, **kw),
            cnn.CrossEntropyLoss(weight, reduction=reduction, **kw),
            x,
            t,
            exact=False,
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "alpha", [None, 0.25, "tensor"], ids=["no-alpha", "scalar-alpha", "tensor-alpha"]
)
def test_focal_loss_equals_functional_and_formula(alpha, dtype):
    g = _gen("focal", str(alpha), dtype)
    x = _randn(g, (3, 4, 5), dtype, 2.0)
    t = _labels(g, x, (3, 5))
    w = _weight(g, 4, dtype)
    a = _rand(g, (4,), dtype, 0.1, 1.0) if alpha == "tensor" else alpha
    for reduction in REDUCTIONS:
        module = cnn.FocalLoss(w, alpha=a, gamma=1.5, reduction=reduction)
        _assert_same(
            module,
            lambda i, tt, r=reduction: ce.focal_loss(
                i, tt, weight=w, alpha=a, gamma=1.5, reduction=r
            ),
            x,
            t,
            exact=False,
        )
    # -w_y alpha_y (1 - p_y)^gamma log p_y, mean divided by sum of w_y over valid targets.
    valid = t != -100
    safe = torch.where(valid, t, torch.zeros_like(t))
    logp = torch.log_softmax(x, 1).gather(1, safe.unsqueeze(1)).squeeze(1)
    a_y = 1.0 if a is None else (a[safe] if isinstance(a, torch.Tensor) else a)
    per = -w[safe] * a_y * (1 - logp.exp()) ** 1.5 * logp
    per = torch.where(valid, per, torch.zeros_like(per))
    expected = per.sum() / torch.where(valid, w[safe], torch.zeros_like(per)).sum()
    torch.testing.assert_close(cnn.FocalLoss(w, alpha=a, gamma=1.5)(x, t), expected, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sigmoid_focal_loss_module_defaults_to_mean(dtype):
    g = _gen("sfl", dtype)
    x, t = _randn(g, (4, 3, 5), dtype, 3.0), (_rand(g, (4, 3, 5), dtype) > 0.6).to(dtype)
    module = cnn.SigmoidFocalLoss()
    assert module.reduction == "mean"
    _assert_same(
        module, lambda i, tt: ce.sigmoid_focal_loss(i, tt, reduction="mean"), x, t, exact=False
    )
    # torchvision.ops.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2, reduction="mean")
    p = torch.sigmoid(x)
    p_t = p * t + (1 - p) * (1 - t)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    tv = ((0.25 * t + 0.75 * (1 - t)) * bce * (1 - p_t) ** 2).mean()
    torch.testing.assert_close(module(x, t), tv, **_tol(dtype))


@pytest.mark.parametrize("reduction", [*REDUCTIONS, "batchmean"])
def test_sigmoid_focal_loss_module_keywords(reduction):
    g = _gen("sfl-kw", reduction)
    x, t = _randn(g, (4, 5), torch.float64, 3.0), _rand(g, (4, 5), torch.float64)
    w = _weight(g, 5, torch.float64)
    kw = {"alpha": None, "gamma": 1.5, "label_smoothing": 0.1, "mean_divisor": "weight"}
    _assert_same(
        cnn.SigmoidFocalLoss(w, reduction=reduction, **kw),
        lambda i, tt: ce.sigmoid_focal_loss(i, tt, weight=w, reduction=reduction, **kw),
        x,
        t,
        exact=False,
    )


def _overlap_inputs(mode, dtype, g):
    if mode == "binary":
        return _randn(g, (3, 4, 4), dtype, 2.0), (_rand(g, (3, 4, 4), dtype) > 0.5).to(dtype)
    x = _randn(g, (2, 3, 4, 5), dtype, 2.0)
    if mode == "multiclass":
        return x, torch.randint(0, 3, (2, 4, 5), generator=g)
    return x, (_rand(g, (2, 3, 4, 5), dtype) > 0.5).to(dtype)


OVERLAP = {
    "DiceLoss": (cnn.DiceLoss, ce.dice_loss, {}),
    "JaccardLoss": (cnn.JaccardLoss, ce.jaccard_loss, {}),
    "TverskyLoss": (cnn.TverskyLoss, ce.tversky_loss, {"alpha": 0.3, "beta": 0.7, "gamma": 1.5}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize(
    "extra",
    [{}, {"smooth": 1.0, "aggregate": "sample"}, {"absent": "skip", "log_loss": True}],
    ids=["default", "smooth-sample", "skip-log"],
)
@pytest.mark.parametrize("name", OVERLAP)
def test_overlap_losses_equal_functional(name, extra, mode, dtype):
    cls, fn, own = OVERLAP[name]
    g = _gen("overlap", name, str(extra), mode, dtype)
    x, t = _overlap_inputs(mode, dtype, g)
    kw = {**own, **extra}
    for reduction in REDUCTIONS:
        _assert_same(
            cls(mode=mode, reduction=reduction, **kw),
            lambda i, tt, r=reduction: fn(i, tt, mode=mode, reduction=r, **kw),
            x,
            t,
            exact=False,
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dice_and_jaccard_modules_match_formulas(dtype):
    g = _gen("overlap-formula", dtype)
    x, t = _overlap_inputs("binary", dtype, g)
    p = torch.sigmoid(x)
    inter, total = (p * t).sum(), p.sum() + t.sum()
    torch.testing.assert_close(cnn.DiceLoss()(x, t), 1 - 2 * inter / total, **_tol(dtype))
    torch.testing.assert_close(cnn.JaccardLoss()(x, t), 1 - inter / (total - inter), **_tol(dtype))
    fp, fn = (p * (1 - t)).sum(), ((1 - p) * t).sum()
    tversky = 1 - inter / (inter + 0.3 * fp + 0.7 * fn)
    torch.testing.assert_close(cnn.TverskyLoss(alpha=0.3, beta=0.7)(x, t), tversky, **_tol(dtype))


# ---------------------------------------------------------------------------------------------
# Buffers, state_dict, pickling, deepcopy.
# ---------------------------------------------------------------------------------------------


def _class_data(g, dtype=torch.float32):
    x = _randn(g, (5, 4, 3), dtype, 2.0)
    return x, _labels(g, x, (5, 3))


def _binary_data(g, dtype=torch.float32):
    return _randn(g, (5, 4), dtype, 2.0), _rand(g, (5, 4), dtype)


def _buffered(name, seed=0, dtype=torch.float32):
    """A module with its tensors as buffers (name -> tensor), and inputs for it."""
    g = _gen("buffered", name, seed)
    w, v = _weight(g, 4, torch.float32), _rand(g, (4,), torch.float32, 0.1, 3.0)
    classes = name in ("CrossEntropyLoss", "NLLLoss", "FocalLoss")
    x, t = _class_data(g) if classes else _binary_data(g)
    # Drawn in float32 and cast, so every dtype holds the same values.
    w, v, x = w.to(dtype), v.to(dtype), x.to(dtype)
    t = t.to(dtype) if t.is_floating_point() else t
    if name == "CrossEntropyLoss":
        return cnn.CrossEntropyLoss(w, label_smoothing=0.1), {"weight": w}, (x, t)
    if name == "NLLLoss":
        return cnn.NLLLoss(w), {"weight": w}, (torch.log_softmax(x, 1), t)
    if name == "BCELoss":
        return cnn.BCELoss(w), {"weight": w}, (torch.sigmoid(x), t)
    if name == "BCEWithLogitsLoss":
        return cnn.BCEWithLogitsLoss(w, pos_weight=v), {"weight": w, "pos_weight": v}, (x, t)
    if name == "FocalLoss":
        return cnn.FocalLoss(w, alpha=v), {"weight": w, "alpha": v}, (x, t)
    assert name == "SigmoidFocalLoss"
    return cnn.SigmoidFocalLoss(w), {"weight": w}, (x, t)


BUFFERED = (
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "FocalLoss",
    "SigmoidFocalLoss",
)


def _state_tensor(module, key, tensor):
    """The ``state_dict`` entry holding ``tensor``: by name, or (focal ``alpha``) by value."""
    state = module.state_dict()
    if key in state:
        return state[key]
    hits = [v for k, v in state.items() if k != "weight" and torch.equal(v, tensor)]
    assert len(hits) == 1, sorted(state)
    return hits[0]


@pytest.mark.parametrize("name", BUFFERED)
def test_tensors_are_buffers_in_state_dict(name):
    module, tensors, _ = _buffered(name)
    state = module.state_dict()
    assert len(state) == len(tensors), sorted(state)
    buffers = dict(module.named_buffers())
    assert len(buffers) == len(tensors)
    for key, tensor in tensors.items():
        torch.testing.assert_close(_state_tensor(module, key, tensor), tensor, rtol=0, atol=0)
    assert list(module.parameters()) == []


@pytest.mark.parametrize("name", BUFFERED)
def test_buffers_follow_dtype_and_device_moves(name):
    module, tensors, (x, t) = _buffered(name)
    assert all(b.dtype == torch.float32 for b in module.buffers())
    reference, _, _ = _buffered(name, dtype=torch.float64)  # the same values in float64
    x64 = x.double()
    t64 = t.double() if t.is_floating_point() else t
    for move in (lambda m: m.double(), lambda m: m.to(torch.float64)):
        moved = move(copy.deepcopy(module))
        assert len(list(moved.buffers())) == len(tensors)
        assert all(b.dtype == torch.float64 for b in moved.buffers())
        out = moved(x64, t64)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, reference(x64, t64), rtol=0, atol=0)
    on_cpu = copy.deepcopy(module).to("cpu")
    assert all(b.device.type == "cpu" for b in on_cpu.buffers())
    assert len(list(on_cpu.buffers())) == len(tensors)
    back = module.double().float()
    assert all(b.dtype == torch.float32 for b in back.buffers())
    torch.testing.assert_close(back(x, t), _buffered(name)[0](x, t), rtol=0, atol=0)


@pytest.mark.parametrize("name", BUFFERED)
def test_load_state_dict_round_trip(name):
    source, _, (x, t) = _buffered(name, seed=0)
    target, _, _ = _buffered(name, seed=1)
    before = target(x, t)
    assert not torch.equal(before, source(x, t))
    target.load_state_dict(source.state_dict())
    torch.testing.assert_close(target(x, t), source(x, t), rtol=0, atol=0)
    for a, b in zip(target.buffers(), source.buffers(), strict=True):
        assert torch.equal(a, b)
    assert set(target.state_dict()) == set(source.state_dict())


def _every_module():
    g = _gen("every")
    x, t = _class_data(g, torch.float64)
    xb, tb = _binary_data(g, torch.float64)
    w = _weight(g, 4, torch.float64)
    xs, ts = _overlap_inputs("multiclass", torch.float64, g)
    return [
        (
            cnn.CrossEntropyLoss(w, label_smoothing=0.1, z_loss=1e-3, softcap=5.0),
            (x, t),
        ),
        (
            cnn.NLLLoss(w, ignore_index=1, mean_divisor="count"),
            (torch.log_softmax(x, 1), _labels(g, x, (5, 3), ignore_index=1)),
        ),
        (cnn.BCELoss(w, reduction="sum", clip="keras"), (torch.sigmoid(xb), tb)),
        (cnn.BCEWithLogitsLoss(w, pos_weight=w + 1, label_smoothing=0.2), (xb, tb)),
        (
            cnn.KLDivLoss(reduction="batchmean", log_target=True),
            (torch.log_softmax(xb, 1), torch.log_softmax(tb, 1)),
        ),
        (cnn.MSELoss(reduction="sum"), (xb, tb)),
        (cnn.L1Loss(reduction="none"), (xb, tb)),
        (cnn.HuberLoss(delta=0.5), (xb, tb)),
        (cnn.SmoothL1Loss(beta=0.3), (xb, tb)),
        (cnn.FocalLoss(w, alpha=w / 2, gamma=1.5, label_smoothing=0.05), (x, t)),
        (cnn.SigmoidFocalLoss(w, alpha=0.4, gamma=1.0, reduction="sum"), (xb, tb)),
        (cnn.DiceLoss(mode="multiclass", smooth=1.0), (xs, ts)),
        (cnn.JaccardLoss(mode="multiclass", aggregate="sample", reduction="none"), (xs, ts)),
        (cnn.TverskyLoss(mode="multiclass", alpha=0.3, beta=0.7, gamma=2.0), (xs, ts)),
        (
            cnn.LinearCrossEntropyLoss(
                4, 6, bias=True, dtype=torch.float64, z_loss=1e-3, chunk_size=2
            ),
            (xb, torch.tensor([0, 5, 2, -100, 3])),
        ),
    ]


EVERY = [type(m).__name__ for m, _ in _every_module()]


def test_every_module_class_is_covered():
    assert sorted(EVERY) == sorted(cnn.__all__)


@pytest.mark.parametrize("index", range(len(EVERY)), ids=EVERY)
@pytest.mark.parametrize(
    "clone",
    [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy],
    ids=["pickle", "deepcopy"],
)
def test_pickle_and_deepcopy(index, clone):
    module, inputs = _every_module()[index]
    twin = clone(module)
    assert type(twin) is type(module)
    assert twin is not module
    assert twin.reduction == module.reduction
    assert twin.extras == module.extras
    assert repr(twin) == repr(module)
    for a, b in zip(twin.buffers(), module.buffers(), strict=True):
        assert a is not b
        assert torch.equal(a, b)
    torch.testing.assert_close(twin(*inputs), module(*inputs), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# torch.compile.
# ---------------------------------------------------------------------------------------------


def _compile_cases():
    g = _gen("compile")
    x, t = _class_data(g, torch.float64)
    xb, tb = _binary_data(g, torch.float64)
    xs, ts = _overlap_inputs("multiclass", torch.float64, g)
    w = _weight(g, 4, torch.float64)
    return {
        "CrossEntropyLoss": (cnn.CrossEntropyLoss(), (x, t)),
        "CrossEntropyLoss-z_loss-smoothing": (
            cnn.CrossEntropyLoss(w, z_loss=1e-3, label_smoothing=0.1),
            (x, t),
        ),
        "BCEWithLogitsLoss": (cnn.BCEWithLogitsLoss(pos_weight=w), (xb, tb)),
        "FocalLoss": (cnn.FocalLoss(w, alpha=w / 3), (x, t)),
        "DiceLoss-multiclass": (cnn.DiceLoss(mode="multiclass"), (xs, ts)),
        "MSELoss": (cnn.MSELoss(), (xb, tb)),
    }


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", list(_compile_cases()))
def test_torch_compile_fullgraph(case, fresh_dynamo):
    module, (x, t) = _compile_cases()[case]
    compiled = torch.compile(module, backend="eager", fullgraph=True)
    a, ga = _value_and_grad(compiled, x, t)
    b, gb = _value_and_grad(module, x, t)
    torch.testing.assert_close(a, b, **_tol(torch.float64))
    torch.testing.assert_close(ga, gb, **_tol(torch.float64))
    assert torch.isfinite(ga).all()
    assert ga.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# repr.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "shown"),
    [
        (cnn.CrossEntropyLoss(), ["CrossEntropyLoss(", "reduction='mean'"]),
        (
            cnn.CrossEntropyLoss(reduction="sum", z_loss=0.001, softcap=30.0),
            ["reduction='sum'", "z_loss=0.001", "softcap=30.0"],
        ),
        (cnn.CrossEntropyLoss(size_average=False), ["reduction='sum'"]),
        (cnn.NLLLoss(reduce=False), ["reduction='none'"]),
        (
            cnn.CrossEntropyLoss(empty_mean=0.0, mean_divisor="count", weight_mode="per_sample"),
            ["empty_mean=0.0", "mean_divisor='count'", "weight_mode='per_sample'"],
        ),
        (
            cnn.BCEWithLogitsLoss(label_smoothing=0.1, smoothing_mode="flip"),
            ["reduction='mean'", "label_smoothing=0.1", "smoothing_mode='flip'"],
        ),
        (cnn.KLDivLoss(reduction="batchmean"), ["reduction='batchmean'"]),
        (cnn.MSELoss(mean_divisor="count"), ["reduction='mean'", "mean_divisor='count'"]),
        (cnn.HuberLoss(reduction="sum", delta=2.0), ["reduction='sum'", "delta=2.0"]),
        (cnn.SmoothL1Loss(beta=0.5), ["beta=0.5"]),
        (cnn.FocalLoss(empty_mean=0.0), ["FocalLoss(", "reduction='mean'", "empty_mean=0.0"]),
        (cnn.SigmoidFocalLoss(), ["reduction='mean'", "alpha=0.25", "gamma=2.0"]),
        (
            cnn.DiceLoss(mode="multiclass", smooth=1.0),
            ["reduction='mean'", "mode='multiclass'", "smooth=1.0"],
        ),
        (cnn.JaccardLoss(reduction="none"), ["reduction='none'", "mode='binary'"]),
        (
            cnn.TverskyLoss(alpha=0.3, beta=0.7, gamma=1.5),
            ["alpha=0.3", "beta=0.7", "gamma=1.5"],
        ),
    ],
    ids=repr,
)
def test_repr_shows_reduction_and_extras(module, shown):
    text = repr(module)
    for part in shown:
        assert part in text, text
    assert text.startswith(type(module).__name__ + "(")


# ---------------------------------------------------------------------------------------------
# Errors: bad options raise at construction, bad arrays at forward time, naming the argument.
# ---------------------------------------------------------------------------------------------


def _error_inputs(kind):
    g = _gen("errors", kind)
    x = _randn(g, (4, 3), torch.float32)
    if kind == "class":
        return x, torch.randint(0, 3, (4,), generator=g)
    if kind == "binary":
        return x, _rand(g, (4, 3), torch.float32)
    if kind == "probs":
        return torch.sigmoid(x), _rand(g, (4, 3), torch.float32)
    return _overlap_inputs("multiclass", torch.float32, g)


ERRORS = [
    (cnn.CrossEntropyLoss, {"reduction": "avg"}, "class", ValueError, "reduction"),
    (cnn.CrossEntropyLoss, {"label_smoothing": 2.0}, "class", ValueError, "label_smoothing"),
    (cnn.CrossEntropyLoss, {"label_smoothing": "0.1"}, "class", TypeError, "label_smoothing"),
    (cnn.CrossEntropyLoss, {"ignore_index": 1.5}, "class", TypeError, "ignore_index"),
    (cnn.CrossEntropyLoss, {"weight": torch.ones(4)}, "class", ValueError, "weight"),
    (cnn.CrossEntropyLoss, {"z_loss": -1.0}, "class", ValueError, "z_loss"),
    (cnn.CrossEntropyLoss, {"softcap": 0.0}, "class", ValueError, "softcap"),
    (cnn.CrossEntropyLoss, {"weight_mode": "keras"}, "class", ValueError, "weight_mode"),
    (cnn.CrossEntropyLoss, {"mean_divisor": "n"}, "class", ValueError, "mean_divisor"),
    (cnn.CrossEntropyLoss, {"empty_mean": "zero"}, "class", TypeError, "empty_mean"),
    (cnn.CrossEntropyLoss, {"bogus": 1}, "class", TypeError, "bogus"),
    (cnn.NLLLoss, {"reduction": "avg"}, "class", ValueError, "reduction"),
    (cnn.NLLLoss, {"mean_divisor": "n"}, "class", ValueError, "mean_divisor"),
    (cnn.BCELoss, {"reduction": "avg"}, "probs", ValueError, "reduction"),
    (cnn.BCELoss, {"clip": 0.7}, "probs", ValueError, "clip"),
    (cnn.BCEWithLogitsLoss, {"reduction": "avg"}, "binary", ValueError, "reduction"),
    (cnn.BCEWithLogitsLoss, {"label_smoothing": 1.5}, "binary", ValueError, "label_smoothing"),
    (cnn.BCEWithLogitsLoss, {"smoothing_mode": "x"}, "binary", ValueError, "smoothing_mode"),
    (cnn.BCEWithLogitsLoss, {"pos_weight": torch.ones(5)}, "binary", ValueError, "pos_weight"),
    (cnn.KLDivLoss, {"reduction": "avg"}, "binary", ValueError, "reduction"),
    (cnn.KLDivLoss, {"log_target": "yes"}, "binary", TypeError, "log_target"),
    (cnn.MSELoss, {"reduction": "avg"}, "binary", ValueError, "reduction"),
    (cnn.MSELoss, {"mean_divisor": "n"}, "binary", ValueError, "mean_divisor"),
    (cnn.L1Loss, {"reduction": "avg"}, "binary", ValueError, "reduction"),
    (cnn.L1Loss, {"mean_divisor": "n"}, "binary", ValueError, "mean_divisor"),
    (cnn.HuberLoss, {"delta": 0.0}, "binary", ValueError, "delta"),
    (cnn.HuberLoss, {"mean_divisor": "n"}, "binary", ValueError, "mean_divisor"),
    (cnn.SmoothL1Loss, {"beta": -1.0}, "binary", ValueError, "beta"),
    (cnn.SmoothL1Loss, {"mean_divisor": "n"}, "binary", ValueError, "mean_divisor"),
    (cnn.SmoothL1Loss, {"empty_mean": "nan"}, "binary", TypeError, "empty_mean"),
    (cnn.FocalLoss, {"reduction": "avg"}, "class", ValueError, "reduction"),
    (cnn.FocalLoss, {"gamma": -1.0}, "class", ValueError, "gamma"),
    (cnn.FocalLoss, {"alpha": -0.5}, "class", ValueError, "alpha"),
    (cnn.FocalLoss, {"alpha": torch.ones(4)}, "class", ValueError, "alpha"),
    (cnn.FocalLoss, {"label_smoothing": 2.0}, "class", ValueError, "label_smoothing"),
    (cnn.SigmoidFocalLoss, {"reduction": "avg"}, "binary", ValueError, "reduction"),
    (cnn.SigmoidFocalLoss, {"alpha": 2.0}, "binary", ValueError, "alpha"),
    (cnn.SigmoidFocalLoss, {"gamma": -2.0}, "binary", ValueError, "gamma"),
    (cnn.DiceLoss, {"mode": "foo"}, "seg", ValueError, "mode"),
    (
        cnn.DiceLoss,
        {"mode": "multiclass", "reduction": "batchmean"},
        "seg",
        ValueError,
        "reduction",
    ),
    (cnn.DiceLoss, {"mode": "multiclass", "smooth": -1.0}, "seg", ValueError, "smooth"),
    (cnn.DiceLoss, {"mode": "multiclass", "from_logits": "y"}, "seg", TypeError, "from_logits"),
    (cnn.JaccardLoss, {"mode": "multiclass", "aggregate": "px"}, "seg", ValueError, "aggregate"),
    (cnn.TverskyLoss, {"mode": "multiclass", "alpha": -1.0}, "seg", ValueError, "alpha"),
    (cnn.TverskyLoss, {"mode": "multiclass", "gamma": 0.0}, "seg", ValueError, "gamma"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "kind", "error", "name"),
    ERRORS,
    ids=[f"{e[0].__name__}-{e[4]}-{i}" for i, e in enumerate(ERRORS)],
)
def test_bad_constructor_values_raise(cls, kwargs, kind, error, name):
    # Options are validated at construction; arrays (buffers) meet the input's shape only at
    # forward time.
    if any(isinstance(v, torch.Tensor) for v in kwargs.values()):
        module = cls(**kwargs)
        with pytest.raises(error, match=name):
            module(*_error_inputs(kind))
    else:
        with pytest.raises(error, match=name):
            cls(**kwargs)


@pytest.mark.parametrize(
    ("cls", "keyword", "suggested"),
    [
        (cnn.CrossEntropyLoss, "zloss", "z_loss"),
        (cnn.CrossEntropyLoss, "label_smothing", "label_smoothing"),
        (cnn.NLLLoss, "ignore_idx", "ignore_index"),
        (cnn.BCEWithLogitsLoss, "label_smothing", "label_smoothing"),
        (cnn.FocalLoss, "gama", "gamma"),
        (cnn.MSELoss, "mean_divsor", "mean_divisor"),
        (cnn.DiceLoss, "smoth", "smooth"),
        (cnn.KLDivLoss, "empty_means", "empty_mean"),
    ],
)
def test_unknown_keyword_is_refused_at_construction_with_a_suggestion(cls, keyword, suggested):
    with pytest.raises(TypeError, match=f"{cls.__name__}.*'{keyword}'.*'{suggested}'"):
        cls(**{keyword: 1e-4})


def test_keywords_of_another_loss_are_refused():
    with pytest.raises(TypeError, match="gamma"):
        cnn.CrossEntropyLoss(gamma=2.0)  # a focal-loss keyword
    with pytest.raises(TypeError, match="pos_weight"):
        cnn.BCELoss(pos_weight=torch.ones(3))


def test_assigned_options_are_validated_and_used():
    g = _gen("assign")
    x, t = _randn(g, (4, 3), torch.float64), torch.tensor([0, 2, 1, 1])
    loss = cnn.CrossEntropyLoss()
    loss.reduction = "sum"
    torch.testing.assert_close(loss(x, t), F.cross_entropy(x, t, reduction="sum"))
    loss.label_smoothing = 0.1
    torch.testing.assert_close(
        loss(x, t), F.cross_entropy(x, t, reduction="sum", label_smoothing=0.1)
    )
    with pytest.raises(ValueError, match="reduction"):
        loss.reduction = "avg"
    assert loss.reduction == "sum"


@pytest.mark.parametrize(
    ("cls", "foreign"),
    [
        (cnn.CrossEntropyLoss, "gamma"),
        (cnn.NLLLoss, "z_loss"),
        (cnn.LinearCrossEntropyLoss, "gamma"),
        (cnn.LinearCrossEntropyLoss, "axis"),
        (cnn.LinearCrossEntropyLoss, "mean_divisor"),
        (cnn.FocalLoss, "focal"),
    ],
)
def test_only_the_functions_own_keywords_are_option_attributes(cls, foreign):
    # An option the module's function does not take is not an attribute that could change
    # the loss behind the module's back (a focal gamma on a cross-entropy module).
    module = cls(3, 4) if cls is cnn.LinearCrossEntropyLoss else cls()
    assert not hasattr(module, foreign)


def test_focal_module_refuses_a_missing_gamma():
    with pytest.raises(TypeError, match="gamma"):
        cnn.FocalLoss(gamma=None)
    loss = cnn.FocalLoss()
    with pytest.raises(TypeError, match="gamma"):
        loss.gamma = None


def test_linear_cross_entropy_module_takes_a_temperature():
    from crossentropy.fused import linear_cross_entropy

    g = _gen("temperature")
    x, y = _randn(g, (5, 3), torch.float64), torch.tensor([0, 1, 2, 3, 1])
    loss = cnn.LinearCrossEntropyLoss(3, 4, temperature=0.5, dtype=torch.float64)
    expected = ce.cross_entropy(x @ loss.linear.weight.T / 0.5, y)
    torch.testing.assert_close(loss(x, y), expected)
    loss.temperature = 2.0
    torch.testing.assert_close(
        loss(x, y), linear_cross_entropy(x, loss.linear.weight, y, temperature=2.0)
    )
    with pytest.raises(ValueError, match="temperature"):
        loss.temperature = 0.0


def test_linear_cross_entropy_module_refuses_sequence_parallel_without_a_group():
    """The module's process group and sequence parallelism are checked at construction (the
    distributed behaviour itself is tested on gloo ranks in ``test_distributed.py``)."""
    with pytest.raises(ValueError, match="sequence_parallel needs a process_group"):
        cnn.LinearCrossEntropyLoss(3, 4, sequence_parallel=True)
    with pytest.raises(TypeError, match="sequence_parallel must be True or False"):
        cnn.LinearCrossEntropyLoss(3, 4, sequence_parallel="yes")


def test_linear_cross_entropy_module_refuses_options_the_function_refuses():
    """PyTorch's chunking configuration or None, as the function takes (it was dropped)."""
    with pytest.raises(TypeError, match=r"options must be None or a torch\.nn\.LinearCross"):
        cnn.LinearCrossEntropyLoss(3, 4, options={"chunking_strategy": "batch"})
    options = torch.nn.LinearCrossEntropyOptions()
    assert cnn.LinearCrossEntropyLoss(3, 4, options=options).linear.weight.shape == (4, 3)


def test_linear_cross_entropy_module_checks_bias_and_class_weights_when_built():
    """``bias`` is a bool ("a" made a bias); class weights of the wrong length are refused when
    built, as PyTorch's module refuses them (were refused at the first call)."""
    with pytest.raises(TypeError, match="bias must be a bool; got str"):
        cnn.LinearCrossEntropyLoss(3, 4, bias="a")
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\); got \(5,\)"):
        cnn.LinearCrossEntropyLoss(3, 4, weight=torch.ones(5))
    with pytest.raises(RuntimeError, match="expected weight shape"):  # PyTorch's, for scale
        torch.nn.LinearCrossEntropyLoss(3, 4, weight=torch.ones(5))
    with pytest.raises(TypeError, match="weight must be a tensor"):
        cnn.LinearCrossEntropyLoss(3, 4, weight=[1.0] * 4)


def test_focal_loss_alpha_attribute_is_the_per_class_tensor_and_replaces_it():
    """A per-class alpha is the module's ``alpha`` (and its repr); assigning a number or None
    replaces it, and a tensor replaces a number (the attribute said None and an assignment
    left the per-class tensor in force, the repr and the loss disagreeing)."""
    torch.manual_seed(0)
    x, y, a = torch.randn(5, 3), torch.randint(0, 3, (5,)), torch.tensor([0.2, 0.3, 0.5])
    m = cnn.FocalLoss(alpha=a)
    assert torch.equal(m.alpha, a)
    assert "alpha=tensor([0.2000, 0.3000, 0.5000])" in repr(m)
    m.alpha = 0.5
    assert m.alpha == 0.5
    assert m.alpha_weight is None
    assert float(m(x, y)) == float(ce.focal_loss(x, y, alpha=0.5))
    m.alpha = None
    assert float(m(x, y)) == float(ce.focal_loss(x, y))
    m.alpha = [0.2, 0.3, 0.5]
    assert float(m(x, y)) == float(ce.focal_loss(x, y, alpha=a))
    assert list(m.state_dict()) == ["alpha_weight"]
    assert torch.equal(pickle.loads(pickle.dumps(m)).alpha, a)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        m.alpha = -1.0


def test_modules_built_inside_compiled_code_in_a_fresh_process():
    """A loss module constructed inside the compiled function, the first of its class in the
    process (no signature seen yet), compiles with fullgraph and no warning, as torch's, and
    once: losses built eagerly afterwards do not compile it again."""
    import subprocess
    import sys

    code = """
import warnings
import torch
import crossentropy.nn as cnn
warnings.simplefilter("error")
torch.manual_seed(0)
lin = torch.nn.Linear(4, 3)
def step(x, y):
    z = lin(x)
    return cnn.CrossEntropyLoss(label_smoothing=0.1)(z, y) + cnn.MSELoss()(z, torch.zeros(5, 3))
x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
graphs = []
def backend(gm, example_inputs):
    graphs.append(gm)
    return gm.forward
compiled = torch.compile(step, backend=backend, fullgraph=True)
got = compiled(x, y)
for name in ("NLLLoss", "L1Loss", "HuberLoss", "BCELoss", "KLDivLoss", "CrossEntropyLoss"):
    getattr(cnn, name)()  # other losses built eagerly: the compiled step is not compiled again
    torch.testing.assert_close(compiled(x, y), got)
assert len(graphs) == 1, len(graphs)
z = lin(x)
want = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(z, y)
want = want + torch.nn.MSELoss()(z, torch.zeros(5, 3))
torch.testing.assert_close(got, want)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_an_array_keyword_given_to_a_constructor_says_where_it_goes():
    """A per-call array given at construction: to each call where the module's forward takes
    it, else to the functional form."""
    with pytest.raises(TypeError, match=r"'num_items_in_batch'; pass it to each call \(forward\)"):
        cnn.LinearCrossEntropyLoss(4, 9, num_items_in_batch=3)
    with pytest.raises(TypeError, match="'where'; pass it to the functional cross_entropy"):
        cnn.CrossEntropyLoss(where=torch.ones(3, dtype=torch.bool))


def test_linear_cross_entropy_module_takes_torchs_default_out_features_only():
    """PyTorch's ``out_features=()`` (its default, as a tuple or a list) is taken; the
    K-dimensional weights of a non-empty one are refused, naming the argument."""
    for empty in ((), []):
        loss = cnn.LinearCrossEntropyLoss(5, 10, out_features=empty)
        theirs = torch.nn.LinearCrossEntropyLoss(5, 10, out_features=empty)
        assert (loss.num_classes, loss.options) == (theirs.num_classes, theirs.options)
        assert loss.out_features == ()
        assert loss.linear.weight.shape == (10, 5)
    with pytest.raises(ValueError, match=r"out_features must be \(\).*got \(4, 3\)"):
        cnn.LinearCrossEntropyLoss(5, 10, out_features=(4, 3))
    with pytest.raises(TypeError, match=r"out_features must be a tuple \(or a list\); got int"):
        cnn.LinearCrossEntropyLoss(5, 10, out_features=3)


@pytest.mark.parametrize("name", ["linear_weight", "linear_bias"])
def test_linear_cross_entropy_module_refuses_an_outside_head(name):
    """The functional's head arguments, given to the module that holds its own head, say so
    (not 'pass it to the functional' for one and 'did you mean' for the other)."""
    with pytest.raises(TypeError, match=rf"got '{name}': the module holds its own head"):
        cnn.LinearCrossEntropyLoss(5, 10, **{name: torch.zeros(10)})


@pytest.mark.parametrize(
    "name", [n for n in cnn.__all__ if hasattr(torch.nn, n)], ids=lambda n: str(n)
)
@pytest.mark.parametrize("method", ["__init__", "forward"])
def test_modules_take_every_parameter_of_torchs_module(name, method):
    """Each module with a torch.nn namesake takes every constructor and forward parameter of
    torch 2.13's, with the same kind, positional order and default (PyTorch's
    ``ignore_index=None`` is its -100, which is the default here)."""
    theirs = inspect.signature(getattr(getattr(torch.nn, name), method)).parameters
    ours = inspect.signature(getattr(getattr(cnn, name), method)).parameters
    assert [p for p in theirs if p not in ours] == []
    for p, param in theirs.items():
        assert ours[p].kind == param.kind, p
        same = ours[p].default == param.default
        assert same or (p, param.default, ours[p].default) == ("ignore_index", None, -100), p
    positional = [p for p, v in theirs.items() if v.kind == v.POSITIONAL_OR_KEYWORD]
    assert [p for p, v in ours.items() if v.kind == v.POSITIONAL_OR_KEYWORD][
        : len(positional)
    ] == positional


def test_linear_cross_entropy_module_names_an_input_of_the_wrong_width():
    """The input's width against the head's, the input named (the module's caller gave it,
    not the functional's linear_weight)."""
    loss = cnn.LinearCrossEntropyLoss(5, 10)
    with pytest.raises(ValueError, match=r"input has 4 features .*got input \(3, 4\) and"):
        loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"input must have at least one dimension"):
        loss(torch.tensor(1.0), torch.tensor(0))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((-1, 5), {}, ValueError, "in_features must be >= 0 and num_classes >= 1; got -1"),
        ((3, 0), {}, ValueError, "in_features must be >= 0 and num_classes >= 1; got 3 and 0"),
        ((3, None), {}, TypeError, "num_classes must be an integer"),
        ((3.0, 5), {}, TypeError, "in_features must be an integer"),
        ((3, 5), {"dtype": torch.int64}, TypeError, "dtype must be a floating-point"),
        ((3, 5), {"device": "bogus"}, ValueError, "device 'bogus' is not a device torch can use"),
    ],
)
def test_linear_cross_entropy_loss_refuses_bad_construction_by_name(args, kwargs, error, match):
    """Bad sizes, a non-floating dtype or an unknown device are named at construction (they
    were torch's errors from inside nn.Linear, or a module that failed in forward only)."""
    from crossentropy.nn import LinearCrossEntropyLoss

    with pytest.raises(error, match=match):
        LinearCrossEntropyLoss(*args, **kwargs)
