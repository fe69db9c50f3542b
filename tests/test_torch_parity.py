"""Live parity with ``torch.nn.functional`` in float64: values and gradients.

Every torch-named loss is run three ways and held against PyTorch itself: on torch tensors with
no extra (the ATen delegation), on torch tensors with a keyword that selects the generic
array-API path without changing the value, and on NumPy arrays (always the generic path).
Gradients are taken with autograd through the library and compared with autograd through
``torch.nn.functional``.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest

import crossentropy as ce
import crossentropy.nn as cnn

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

RTOL = 1e-10
ATOL = 1e-12
REDUCTIONS = ("none", "mean", "sum", "batchmean")
LAYOUTS = ("C", "NC", "NCd", "NCdd")


def _close(actual, desired, rtol=RTOL, atol=ATOL):
    if isinstance(actual, torch.Tensor):
        actual = actual.detach().numpy()
    if isinstance(desired, torch.Tensor):
        desired = desired.detach().numpy()
    assert np.shape(actual) == np.shape(desired)
    assert np.asarray(actual).dtype == np.asarray(desired).dtype == np.float64
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _t(a):
    return torch.from_numpy(np.array(a, dtype=np.asarray(a).dtype))


def _batch(shape):
    return shape[0] if len(shape) > 1 else 1


def _torch_ref(fn, reduction, batch, *args, **kwargs):
    """``fn`` with torch's reductions, ``batchmean`` being ``sum / batch``."""
    if reduction == "batchmean":
        return fn(*args, reduction="sum", **kwargs) / batch
    return fn(*args, reduction=reduction, **kwargs)


def _value_and_grads(fn, arrays, cotangent):
    """``fn(*leaves)`` and the gradients of ``sum(fn(*leaves) * cotangent)`` w.r.t. the leaves."""
    leaves = [_t(a).requires_grad_(True) for a in arrays]
    out = fn(*leaves)
    grads = torch.autograd.grad((out * cotangent).sum(), leaves)
    return out.detach().numpy(), [g.numpy() for g in grads]


def _cotangent(rng, shape):
    return _t(rng.standard_normal(shape))


def _class_shapes(rng, layout):
    """Input shape (classes on axis 1, or 0 for 1-D) and the class-index target's shape."""
    c = int(rng.integers(3, 8))
    n = int(rng.integers(1, 9))
    d1, d2 = (int(v) for v in rng.integers(1, 5, size=2))
    return {
        "C": ((c,), ()),
        "NC": ((n, c), (n,)),
        "NCd": ((n, c, d1), (n, d1)),
        "NCdd": ((n, c, d1, d2), (n, d1, d2)),
    }[layout]


# ---------------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------------

INDEX_CASES = list(
    itertools.product(
        (False, True), ("none", "default", "custom"), (0.0, 0.1, 0.3), REDUCTIONS, LAYOUTS
    )
)
SOFT_CASES = list(itertools.product((False, True), (0.0, 0.1, 0.3), REDUCTIONS, LAYOUTS))


def _index_case_id(case):
    weighted, ignore, eps, reduction, layout = case
    return f"{layout}-{reduction}-ls{eps}-ignore_{ignore}-{'w' if weighted else 'now'}"


def _soft_case_id(case):
    weighted, eps, reduction, layout = case
    return f"{layout}-{reduction}-ls{eps}-{'w' if weighted else 'now'}"


def _index_case(case):
    weighted, ignore, eps, reduction, layout = case
    rng = _rng("ce-index", case)
    x_shape, t_shape = _class_shapes(rng, layout)
    c = x_shape[0] if layout == "C" else x_shape[1]
    x = rng.standard_normal(x_shape) * rng.uniform(0.5, 5.0)
    target = rng.integers(0, c, size=t_shape)
    kwargs = {}
    if ignore != "none":
        ignore_index = -100 if ignore == "default" else 1
        if ignore == "custom":
            kwargs["ignore_index"] = 1
        mask = rng.random(t_shape) < 0.3
        if mask.ndim:
            mask.flat[0] = True
            if mask.size > 1:
                mask.flat[-1] = False
        else:
            mask = np.asarray(bool(rng.integers(0, 2)))
        target = np.where(mask, ignore_index, target)
        if ignore == "custom" and mask.ndim and mask.size > 1:
            target.flat[-1] = 0  # keep one valid class that is not the ignored id
    weight = rng.uniform(0.1, 3.0, size=c) if weighted else None
    return rng, x, np.asarray(target, dtype=np.int64), weight, eps, reduction, kwargs


@pytest.mark.parametrize("case", INDEX_CASES, ids=[_index_case_id(c) for c in INDEX_CASES])
def test_cross_entropy_class_indices(case):
    rng, x, target, weight, eps, reduction, kwargs = _index_case(case)
    tt, wt = _t(target), None if weight is None else _t(weight)
    batch = _batch(x.shape)

    def ref_fn(a):
        return _torch_ref(
            F.cross_entropy, reduction, batch, a, tt, weight=wt, label_smoothing=eps, **kwargs
        )

    cot = _cotangent(rng, tuple(ref_fn(_t(x)).shape))
    ref, (ref_gx,) = _value_and_grads(ref_fn, [x], cot)

    # ATen delegation (torch tensors, no extra keyword).
    val, (gx,) = _value_and_grads(
        lambda a: ce.cross_entropy(a, tt, wt, reduction=reduction, label_smoothing=eps, **kwargs),
        [x],
        cot,
    )
    _close(val, ref)
    _close(gx, ref_gx)

    # Generic path on torch: for class indices mean_divisor="weight" is PyTorch's own divisor.
    val, (gx,) = _value_and_grads(
        lambda a: ce.cross_entropy(
            a, tt, wt, reduction=reduction, label_smoothing=eps, mean_divisor="weight", **kwargs
        ),
        [x],
        cot,
    )
    _close(val, ref)
    _close(gx, ref_gx)

    # Generic path on NumPy.
    out = ce.cross_entropy(x, target, weight, reduction=reduction, label_smoothing=eps, **kwargs)
    assert isinstance(out, np.ndarray | np.generic)
    _close(np.asarray(out), ref)


def _soft_case(case):
    weighted, eps, reduction, layout = case
    rng = _rng("ce-soft", case)
    x_shape, _ = _class_shapes(rng, layout)
    axis = 0 if layout == "C" else 1
    c = x_shape[axis]
    x = rng.standard_normal(x_shape) * rng.uniform(0.5, 5.0)
    batch_shape = tuple(s for i, s in enumerate(x_shape) if i != axis)
    probs = rng.dirichlet(np.full(c, 0.7), size=batch_shape)
    target = np.moveaxis(probs, -1, axis)
    weight = rng.uniform(0.1, 3.0, size=c) if weighted else None
    return rng, x, target, weight, eps, reduction


@pytest.mark.parametrize("case", SOFT_CASES, ids=[_soft_case_id(c) for c in SOFT_CASES])
def test_cross_entropy_soft_targets(case):
    rng, x, target, weight, eps, reduction = _soft_case(case)
    wt = None if weight is None else _t(weight)
    batch = _batch(x.shape)

    def ref_fn(a, t):
        return _torch_ref(F.cross_entropy, reduction, batch, a, t, weight=wt, label_smoothing=eps)

    cot = _cotangent(rng, tuple(ref_fn(_t(x), _t(target)).shape))
    ref, (ref_gx, ref_gt) = _value_and_grads(ref_fn, [x, target], cot)

    # Probability targets: ATen where the values are read and finite, the generic path where
    # they are not (validate=False)
    for validate in (None, False):
        val, (gx, gt) = _value_and_grads(
            lambda a, t, v=validate: ce.cross_entropy(
                a, t, wt, reduction=reduction, label_smoothing=eps, validate=v
            ),
            [x, target],
            cot,
        )
        _close(val, ref)
        _close(gx, ref_gx)
        _close(gt, ref_gt)

    out = ce.cross_entropy(x, target, weight, reduction=reduction, label_smoothing=eps)
    assert isinstance(out, np.ndarray | np.generic)
    _close(np.asarray(out), ref)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probs"])
def test_cross_entropy_batchmean_is_sum_over_n(layout, soft):
    rng = _rng("batchmean", layout, soft)
    x_shape, t_shape = _class_shapes(rng, layout)
    axis = 0 if layout == "C" else 1
    x = rng.standard_normal(x_shape)
    if soft:
        target = np.moveaxis(rng.dirichlet(np.ones(x_shape[axis]), size=t_shape), -1, axis)
    else:
        target = rng.integers(0, x_shape[axis], size=t_shape)
    n = x_shape[0] if len(x_shape) > 1 else 1
    expected = F.cross_entropy(_t(x), _t(target), reduction="sum") / n
    _close(ce.cross_entropy(_t(x), _t(target), reduction="batchmean"), expected)
    _close(ce.cross_entropy(x, target, reduction="batchmean"), expected)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"reduction": "sum"}])
def test_probability_targets_of_finite_logits_are_aten_bit_for_bit(options):
    """Probability targets, read eagerly and found finite and in [0, 1], are ATen's call:
    PyTorch's numbers and gradients bit for bit (with class weights too); a -inf logit keeps
    the generic path's 0 log 0 = 0 (ATen gives NaN)."""
    g = torch.Generator().manual_seed(16)
    x = torch.randn(64, 10, generator=g)
    t = torch.randn(64, 10, generator=g).softmax(-1)
    w = torch.rand(10, generator=g) + 0.5
    for weight in (None, w):
        a, b = (x.clone().requires_grad_(True) for _ in range(2))
        ours = ce.cross_entropy(a, t, weight, **options)
        theirs = F.cross_entropy(b, t, weight, **options)
        ours.backward()
        theirs.backward()
        assert torch.equal(ours, theirs)
        assert torch.equal(a.grad, b.grad)
    masked, hard = x.clone(), t.clone()
    masked[0, 3], hard[0] = -math.inf, torch.eye(10)[0]
    assert math.isnan(float(F.cross_entropy(masked, hard)))
    assert math.isfinite(float(ce.cross_entropy(masked, hard)))


def test_cross_entropy_soft_target_gradient_at_zero_probability():
    """d/dt of -Σ t log softmax(x) is -log softmax(x), also where a target entry is exactly 0."""
    x = np.array([[0.3, -1.2, 2.0, 0.5], [1.0, 0.0, -0.5, 0.25]])
    target = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0]])
    cot = 1.0
    ref, (ref_gx, ref_gt) = _value_and_grads(lambda a, t: F.cross_entropy(a, t), [x, target], cot)
    val, (gx, gt) = _value_and_grads(lambda a, t: ce.cross_entropy(a, t), [x, target], cot)
    _close(val, ref)
    _close(gx, ref_gx)
    _close(gt, ref_gt)


# ---------------------------------------------------------------------------------------------
# nll_loss
# ---------------------------------------------------------------------------------------------

NLL_CASES = list(
    itertools.product((False, True), ("none", "default", "custom"), REDUCTIONS, LAYOUTS)
)


@pytest.mark.parametrize(
    "case",
    NLL_CASES,
    ids=[f"{lay}-{red}-ignore_{ig}-{'w' if w else 'now'}" for w, ig, red, lay in NLL_CASES],
)
def test_nll_loss(case):
    weighted, ignore, reduction, layout = case
    rng, x, target, weight, _, _, kwargs = _index_case((weighted, ignore, 0.0, reduction, layout))
    x = np.asarray(F.log_softmax(_t(x), dim=0 if layout == "C" else 1))
    tt, wt = _t(target), None if weight is None else _t(weight)
    batch = _batch(x.shape)

    def ref_fn(a):
        return _torch_ref(F.nll_loss, reduction, batch, a, tt, weight=wt, **kwargs)

    cot = _cotangent(rng, tuple(ref_fn(_t(x)).shape))
    ref, (ref_gx,) = _value_and_grads(ref_fn, [x], cot)

    for extra in ({}, {"mean_divisor": "weight"}):  # ATen delegation, then the generic path
        val, (gx,) = _value_and_grads(
            lambda a, extra=extra: ce.nll_loss(a, tt, wt, reduction=reduction, **kwargs, **extra),
            [x],
            cot,
        )
        _close(val, ref)
        _close(gx, ref_gx)

    out = ce.nll_loss(x, target, weight, reduction=reduction, **kwargs)
    assert isinstance(out, np.ndarray | np.generic)
    _close(np.asarray(out), ref)


def test_nll_loss_equals_cross_entropy_of_log_softmax():
    rng = _rng("nll=ce")
    x = rng.standard_normal((5, 4, 3))
    y = rng.integers(0, 4, size=(5, 3))
    _close(ce.nll_loss(ce.log_softmax(x, axis=1), y), F.cross_entropy(_t(x), _t(y)))


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy and binary_cross_entropy_with_logits
# ---------------------------------------------------------------------------------------------

BINARY_SHAPES = ((6,), (5, 4), (3, 4, 2))
WEIGHT_KINDS = ("none", "last", "first", "full")


def _binary_weight(rng, shape, kind):
    if kind == "none":
        return None
    if kind == "last":
        return rng.uniform(0.1, 3.0, size=shape[-1:])
    if kind == "first":
        return rng.uniform(0.1, 3.0, size=(shape[0],) + (1,) * (len(shape) - 1))
    return rng.uniform(0.1, 3.0, size=shape)


BCE_CASES = list(itertools.product(BINARY_SHAPES, WEIGHT_KINDS, REDUCTIONS))


def _bce_id(case):
    shape, kind, reduction = case
    return f"{'x'.join(map(str, shape))}-w_{kind}-{reduction}"


@pytest.mark.parametrize("case", BCE_CASES, ids=[_bce_id(c) for c in BCE_CASES])
def test_binary_cross_entropy_values_with_exact_zeros_and_ones(case):
    shape, kind, reduction = case
    rng = _rng("bce-values", case)
    p = rng.uniform(0.0, 1.0, size=shape)
    p.flat[0], p.flat[-1] = 0.0, 1.0
    p[rng.random(shape) < 0.2] = 0.0
    p[rng.random(shape) < 0.2] = 1.0
    t = rng.uniform(0.0, 1.0, size=shape)
    t[rng.random(shape) < 0.4] = 0.0
    t[rng.random(shape) < 0.4] = 1.0
    t.flat[0], t.flat[-1] = 0.5, 0.5  # log 0 met with a non-zero target: the -100 clamp
    w = _binary_weight(rng, shape, kind)
    wt = None if w is None else _t(w).expand(shape)
    ref = _torch_ref(F.binary_cross_entropy, reduction, shape[0], _t(p), _t(t), weight=wt)
    assert np.all(np.isfinite(ref.numpy()))
    wt = None if w is None else _t(w)
    _close(ce.binary_cross_entropy(_t(p), _t(t), wt, reduction=reduction), ref)
    _close(ce.binary_cross_entropy(_t(p), _t(t), wt, reduction=reduction, empty_mean=0.0), ref)
    out = ce.binary_cross_entropy(p, t, w, reduction=reduction)
    assert isinstance(out, np.ndarray | np.generic)
    _close(np.asarray(out), ref)


@pytest.mark.parametrize("case", BCE_CASES, ids=[_bce_id(c) for c in BCE_CASES])
def test_binary_cross_entropy_gradients(case):
    shape, kind, reduction = case
    rng = _rng("bce-grads", case)
    p = rng.uniform(0.05, 0.95, size=shape)
    t = rng.uniform(0.05, 0.95, size=shape)
    w = _binary_weight(rng, shape, kind)
    wt = None if w is None else _t(w)
    wt_full = None if w is None else _t(w).expand(shape)
    batch = shape[0]

    def ref_fn(a, b):
        return _torch_ref(F.binary_cross_entropy, reduction, batch, a, b, weight=wt_full)

    cot = _cotangent(rng, tuple(ref_fn(_t(p), _t(t)).shape))
    ref, ref_grads = _value_and_grads(ref_fn, [p, t], cot)
    # ATen delegation, then the generic path (empty_mean=0.0 only matters for empty input).
    for extra in ({}, {"empty_mean": 0.0}):
        val, grads = _value_and_grads(
            lambda a, b, extra=extra: ce.binary_cross_entropy(
                a, b, wt, reduction=reduction, **extra
            ),
            [p, t],
            cot,
        )
        _close(val, ref)
        for g, rg in zip(grads, ref_grads, strict=True):
            _close(g, rg)


BCEL_SHAPES = ((6,), (5, 4), (3, 2, 4))
BCEL_CASES = list(itertools.product(BCEL_SHAPES, WEIGHT_KINDS, (False, True), REDUCTIONS))


def _bcel_id(case):
    shape, kind, pos, reduction = case
    return f"{'x'.join(map(str, shape))}-w_{kind}-{'pw' if pos else 'nopw'}-{reduction}"


def _bcel_data(rng, shape, kind, pos, *, hard=False):
    x = rng.standard_normal(shape) * 3.0
    if hard:
        x.flat[0], x.flat[-1] = 1e4, -1e4
        x[rng.random(shape) < 0.2] = 1e4
        x[rng.random(shape) < 0.2] = -1e4
        t = rng.uniform(0.0, 1.0, size=shape)
        t[rng.random(shape) < 0.3] = 0.0
        t[rng.random(shape) < 0.3] = 1.0
    else:
        t = rng.uniform(0.05, 0.95, size=shape)
    w = _binary_weight(rng, shape, kind)
    pw = rng.uniform(0.2, 4.0, size=shape[-1:]) if pos else None
    return x, t, w, pw


@pytest.mark.parametrize("case", BCEL_CASES, ids=[_bcel_id(c) for c in BCEL_CASES])
def test_binary_cross_entropy_with_logits_values_large_logits(case):
    shape, kind, pos, reduction = case
    rng = _rng("bcel-values", case)
    x, t, w, pw = _bcel_data(rng, shape, kind, pos, hard=True)
    wt, pwt = (None if a is None else _t(a) for a in (w, pw))
    ref = _torch_ref(
        F.binary_cross_entropy_with_logits,
        reduction,
        shape[0],
        _t(x),
        _t(t),
        weight=wt,
        pos_weight=pwt,
    )
    assert np.all(np.isfinite(ref.numpy()))
    for extra in ({}, {"empty_mean": 0.0}):  # ATen delegation, then the generic path
        got = ce.binary_cross_entropy_with_logits(
            _t(x), _t(t), wt, reduction=reduction, pos_weight=pwt, **extra
        )
        _close(got, ref)
    out = ce.binary_cross_entropy_with_logits(x, t, w, reduction=reduction, pos_weight=pw)
    assert isinstance(out, np.ndarray | np.generic)
    _close(np.asarray(out), ref)


@pytest.mark.parametrize("case", BCEL_CASES, ids=[_bcel_id(c) for c in BCEL_CASES])
def test_binary_cross_entropy_with_logits_gradients(case):
    shape, kind, pos, reduction = case
    rng = _rng("bcel-grads", case)
    x, t, w, pw = _bcel_data(rng, shape, kind, pos)
    x.flat[0] = 1e4
    x.flat[-1] = -1e4
    wt, pwt = (None if a is None else _t(a) for a in (w, pw))
    batch = shape[0]

    def ref_fn(a, b):
        return _torch_ref(
            F.binary_cross_entropy_with_logits, reduction, batch, a, b, weight=wt, pos_weight=pwt
        )

    cot = _cotangent(rng, tuple(ref_fn(_t(x), _t(t)).shape))
    ref, ref_grads = _value_and_grads(ref_fn, [x, t], cot)
    for extra in ({}, {"empty_mean": 0.0}):  # ATen delegation, then the generic path
        val, grads = _value_and_grads(
            lambda a, b, extra=extra: ce.binary_cross_entropy_with_logits(
                a, b, wt, reduction=reduction, pos_weight=pwt, **extra
            ),
            [x, t],
            cot,
        )
        _close(val, ref)
        for g, rg in zip(grads, ref_grads, strict=True):
            _close(g, rg)


HARD_X = np.array([[0.5, -1.5, 2.0], [1.0, 0.0, -0.3]])
HARD_T = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
HARD_PW = np.array([2.0, 0.5, 1.5])


@pytest.mark.parametrize(
    ("ours", "theirs", "x"),
    [
        (
            lambda a, b: ce.binary_cross_entropy_with_logits(a, b, pos_weight=_t(HARD_PW)),
            lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=_t(HARD_PW)),
            HARD_X,
        ),
        (
            lambda a, b: ce.binary_cross_entropy_with_logits(
                a, b, pos_weight=_t(HARD_PW), empty_mean=0.0
            ),
            lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=_t(HARD_PW)),
            HARD_X,
        ),
        (ce.binary_cross_entropy, F.binary_cross_entropy, 1 / (1 + np.exp(-HARD_X))),
        (
            lambda a, b: ce.binary_cross_entropy(a, b, empty_mean=0.0),
            F.binary_cross_entropy,
            1 / (1 + np.exp(-HARD_X)),
        ),
    ],
    ids=["with_logits-aten", "with_logits-generic", "probs-aten", "probs-generic"],
)
def test_binary_target_gradient_at_hard_labels(ours, theirs, x):
    """d/dt of the binary loss is -(pw log σ(x) - log σ(-x)), also where t is exactly 0 or 1."""
    ref, ref_grads = _value_and_grads(theirs, [x, HARD_T], 1.0)
    val, grads = _value_and_grads(ours, [x, HARD_T], 1.0)
    _close(val, ref)
    for g, rg in zip(grads, ref_grads, strict=True):
        _close(g, rg)


# ---------------------------------------------------------------------------------------------
# kl_div
# ---------------------------------------------------------------------------------------------

KL_CASES = list(itertools.product(((5,), (4, 3), (3, 4, 2)), (False, True), REDUCTIONS))


KL_MEAN_WARNING = "ignore:reduction. 'mean' divides the total loss:UserWarning"


@pytest.mark.filterwarnings(KL_MEAN_WARNING)
@pytest.mark.parametrize(
    "case",
    KL_CASES,
    ids=[f"{'x'.join(map(str, s))}-logt_{lt}-{r}" for s, lt, r in KL_CASES],
)
def test_kl_div(case):
    shape, log_target, reduction = case
    rng = _rng("kl_div", case)
    logq = np.log(rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]))
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    target = np.log(p) if log_target else p
    tt = _t(target)
    ref = F.kl_div(_t(logq), tt, reduction=reduction, log_target=log_target)
    got = ce.kl_div(_t(logq), tt, reduction=reduction, log_target=log_target)
    _close(got, ref)
    out = ce.kl_div(logq, target, reduction=reduction, log_target=log_target)
    assert isinstance(out, np.ndarray | np.generic)
    _close(np.asarray(out), ref)

    cot = _cotangent(rng, tuple(ref.shape))
    ref, ref_grads = _value_and_grads(
        lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
        [logq, target],
        cot,
    )
    val, grads = _value_and_grads(
        lambda a, b: ce.kl_div(a, b, reduction=reduction, log_target=log_target),
        [logq, target],
        cot,
    )
    _close(val, ref)
    for g, rg in zip(grads, ref_grads, strict=True):
        _close(g, rg)


@pytest.mark.filterwarnings(KL_MEAN_WARNING)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_div_target_with_zeros(reduction):
    logq = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    p = np.array([[0.0, 0.4, 0.6], [1.0, 0.0, 0.0]])
    ref = F.kl_div(_t(logq), _t(p), reduction=reduction)
    _close(ce.kl_div(_t(logq), _t(p), reduction=reduction), ref)
    _close(np.asarray(ce.kl_div(logq, p, reduction=reduction)), ref)
    cot = _cotangent(_rng("kl0", reduction), tuple(ref.shape))
    _, (ref_gx,) = _value_and_grads(lambda a: F.kl_div(a, _t(p), reduction=reduction), [logq], cot)
    _, (gx,) = _value_and_grads(lambda a: ce.kl_div(a, _t(p), reduction=reduction), [logq], cot)
    _close(gx, ref_gx)


# ---------------------------------------------------------------------------------------------
# Special functions
# ---------------------------------------------------------------------------------------------

SPECIAL_SHAPE = (3, 4, 5)
AXES = (0, 1, 2, -1, -2)


def _special_data(key):
    rng = _rng("special", key)
    x = rng.standard_normal(SPECIAL_SHAPE) * 4.0
    x[0, 0, 0], x[1, 2, 3], x[2, 3, 4] = 1e4, -1e4, 0.0
    return rng, x


def _check_special(key, ours, theirs):
    rng, x = _special_data(key)
    ref = theirs(_t(x))
    _close(np.asarray(ours(x)), ref)
    cot = _cotangent(rng, tuple(ref.shape))
    ref, (ref_g,) = _value_and_grads(theirs, [x], cot)
    val, (g,) = _value_and_grads(ours, [x], cot)
    _close(val, ref)
    _close(g, ref_g)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_logsumexp(axis, keepdims):
    _check_special(
        ("lse", axis, keepdims),
        lambda a: ce.logsumexp(a, axis=axis, keepdims=keepdims),
        lambda a: torch.logsumexp(a, dim=axis, keepdim=keepdims),
    )


@pytest.mark.parametrize("axis", AXES)
def test_softmax(axis):
    _check_special(
        ("softmax", axis),
        lambda a: ce.softmax(a, axis=axis),
        lambda a: torch.softmax(a, dim=axis),
    )


@pytest.mark.parametrize("axis", AXES)
def test_log_softmax(axis):
    _check_special(
        ("log_softmax", axis),
        lambda a: ce.log_softmax(a, axis=axis),
        lambda a: F.log_softmax(a, dim=axis),
    )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (ce.sigmoid, torch.sigmoid),
        (ce.log_sigmoid, F.logsigmoid),
        (ce.softplus, F.softplus),
    ],
    ids=["sigmoid", "log_sigmoid", "softplus"],
)
def test_elementwise(ours, theirs):
    _check_special(("elementwise", ours.__name__), ours, theirs)


def test_special_default_axis_is_last():
    _, x = _special_data("default")
    _close(ce.logsumexp(_t(x)), torch.logsumexp(_t(x), dim=-1))
    _close(ce.softmax(_t(x)), torch.softmax(_t(x), dim=-1))
    _close(ce.log_softmax(_t(x)), F.log_softmax(_t(x), dim=-1))


# ---------------------------------------------------------------------------------------------
# PyTorch's own sample inputs (OpInfo) for every torch-named loss: values, dtypes, gradients.
# ---------------------------------------------------------------------------------------------

OPINFO = {
    "nn.functional.cross_entropy": ce.cross_entropy,
    "nn.functional.nll_loss": ce.nll_loss,
    "nn.functional.binary_cross_entropy": ce.binary_cross_entropy,
    "nn.functional.binary_cross_entropy_with_logits": ce.binary_cross_entropy_with_logits,
    "nn.functional.kl_div": ce.kl_div,
    "nn.functional.mse_loss": ce.mse_loss,
    "nn.functional.l1_loss": ce.l1_loss,
    "nn.functional.huber_loss": ce.huber_loss,
    "nn.functional.smooth_l1_loss": ce.smooth_l1_loss,
    "logsumexp": ce.logsumexp,
    "nn.functional.softplus": ce.softplus,
    "nn.functional.logsigmoid": ce.log_sigmoid,
    "sigmoid": ce.sigmoid,
    "xlogy": ce.xlogy,
}


def _opinfo_samples():
    pytest.importorskip("expecttest")
    from torch.testing._internal.common_methods_invocations import op_db

    ops = {op.name: op for op in op_db if op.name in OPINFO and not op.variant_test_name}
    assert set(ops) == set(OPINFO)
    cases = []
    for name in sorted(ops):
        for dtype in (torch.float64, torch.float32):
            samples = ops[name].sample_inputs("cpu", dtype, requires_grad=True)
            cases.extend((name, dtype, i, s) for i, s in enumerate(samples))
    return cases


def _leaves(sample):
    return [
        t
        for t in (sample.input, *sample.args, *sample.kwargs.values())
        if isinstance(t, torch.Tensor) and t.requires_grad
    ]


@pytest.fixture(scope="module")
def opinfo_samples():
    return _opinfo_samples()


def test_opinfo_samples_agree_with_pytorch(opinfo_samples):
    """Every sample PyTorch tests its own losses with, called positionally and by keyword
    exactly as PyTorch is: the same value (to rounding), dtype and gradients."""
    import warnings

    checked = 0
    for name, dtype, index, sample in opinfo_samples:
        ours, theirs = OPINFO[name], None
        from torch.testing._internal.common_methods_invocations import op_db

        theirs = next(op for op in op_db if op.name == name and not op.variant_test_name).op
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's own (kl_div 'mean', sizes)
            expected = theirs(sample.input, *sample.args, **sample.kwargs)
            got = ours(sample.input, *sample.args, **sample.kwargs)
        where = f"{name} {dtype} sample {index}"
        assert got.dtype == expected.dtype, where
        assert got.shape == expected.shape, where
        tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {}
        torch.testing.assert_close(got, expected, equal_nan=True, msg=where, **tol)
        leaves = _leaves(sample)
        if not leaves or not expected.requires_grad:
            continue
        cot = torch.linspace(0.5, 1.5, expected.numel(), dtype=expected.dtype).reshape(
            expected.shape
        )
        g_exp = torch.autograd.grad((expected * cot).sum(), leaves, allow_unused=True)
        g_got = torch.autograd.grad((got * cot).sum(), leaves, allow_unused=True)
        for a, b in zip(g_got, g_exp, strict=True):
            if b is None:
                continue
            assert a is not None, where
            torch.testing.assert_close(a, b, equal_nan=True, msg=where, **tol)
        checked += 1
    assert checked > 150


# ---------------------------------------------------------------------------------------------
# PyTorch's legacy size_average / reduce, positionally and by keyword, with PyTorch's warning.
# ---------------------------------------------------------------------------------------------

LEGACY_CALLS = {
    "cross_entropy": (lambda f, a, b, s, r: f(a, b, None, s, -100, r), "class"),
    "nll_loss": (lambda f, a, b, s, r: f(a.log_softmax(1), b, None, s, -100, r), "class"),
    "binary_cross_entropy": (lambda f, a, b, s, r: f(a.sigmoid(), b, None, s, r), "binary"),
    "binary_cross_entropy_with_logits": (lambda f, a, b, s, r: f(a, b, None, s, r), "binary"),
    "kl_div": (lambda f, a, b, s, r: f(a.log_softmax(1), b.softmax(1), s, r), "binary"),
    "mse_loss": (lambda f, a, b, s, r: f(a, b, s, r), "binary"),
    "l1_loss": (lambda f, a, b, s, r: f(a, b, s, r), "binary"),
    "smooth_l1_loss": (lambda f, a, b, s, r: f(a, b, s, r), "binary"),
}


@pytest.mark.parametrize(("size_average", "reduce"), [(None, False), (False, None), (True, True)])
@pytest.mark.parametrize("name", list(LEGACY_CALLS))
def test_legacy_arguments_as_pytorch(name, size_average, reduce):
    import warnings

    call, kind = LEGACY_CALLS[name]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = (
        torch.randint(0, 3, (4,), generator=g)
        if kind == "class"
        else torch.rand(4, 3, generator=g, dtype=torch.float64)
    )
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        theirs = call(getattr(F, name), x, t, size_average, reduce)
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = call(getattr(ce, name), x, t, size_average, reduce)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)

    def legacy(caught):
        return [(w.category, str(w.message)) for w in caught if "size_average" in str(w.message)]

    assert legacy(ours_w) == legacy(theirs_w) != []


#: The first arguments of each torch-named function (inputs ``x``, ``t`` probabilities in
#: [0, 1], ``y`` class indices); ``reduction`` is given by keyword.
ELEMENTWISE_MEAN_ARGS = {
    "cross_entropy": lambda x, t, y: (x, y),
    "nll_loss": lambda x, t, y: (x.log_softmax(1), y),
    "binary_cross_entropy": lambda x, t, y: (x.sigmoid(), t),
    "binary_cross_entropy_with_logits": lambda x, t, y: (x, t),
    "kl_div": lambda x, t, y: (x.log_softmax(1), t.softmax(1)),
    "mse_loss": lambda x, t, y: (x, t),
    "l1_loss": lambda x, t, y: (x, t),
    "smooth_l1_loss": lambda x, t, y: (x, t),
    "huber_loss": lambda x, t, y: (x, t),
}


@pytest.mark.parametrize(
    "name", [*ELEMENTWISE_MEAN_ARGS, "linear_cross_entropy", "module", "kl_module"]
)
def test_elementwise_mean_is_mean_with_pytorchs_warning(name):
    """PyTorch's deprecated ``reduction="elementwise_mean"`` is ``"mean"``, with its warning
    pointing at the caller's line, in the functions, the fused op and the modules."""
    import warnings

    from crossentropy.fused import linear_cross_entropy

    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.rand(4, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64)
    if name == "linear_cross_entropy":
        ours = lambda r: linear_cross_entropy(x, w, y, reduction=r)  # noqa: E731
        theirs = lambda r: F.linear_cross_entropy(x, w, y, reduction=r)  # noqa: E731
    elif name == "module":
        ours = lambda r: cnn.CrossEntropyLoss(reduction=r)(x, y)  # noqa: E731
        theirs = lambda r: torch.nn.CrossEntropyLoss(reduction=r)(x, y)  # noqa: E731
    elif name == "kl_module":
        args = ELEMENTWISE_MEAN_ARGS["kl_div"](x, t, y)
        ours = lambda r: cnn.KLDivLoss(reduction=r)(*args)  # noqa: E731
        theirs = lambda r: torch.nn.KLDivLoss(reduction=r)(*args)  # noqa: E731
    else:
        args = ELEMENTWISE_MEAN_ARGS[name](x, t, y)
        ours = lambda r: getattr(ce, name)(*args, reduction=r)  # noqa: E731
        theirs = lambda r: getattr(F, name)(*args, reduction=r)  # noqa: E731
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ours("elementwise_mean")
    with warnings.catch_warnings(record=True) as theirs_caught:
        warnings.simplefilter("always")
        want = theirs("elementwise_mean")
    torch.testing.assert_close(got, ours("mean"), rtol=0, atol=0)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    # the deprecation alone, as PyTorch (kl_div's "mean divides" warning is for "mean" only)
    deprecated = "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead."
    assert [str(w.message) for w in theirs_caught] == [deprecated]
    assert [str(w.message) for w in caught] == [deprecated]
    assert caught[0].filename == __file__


def test_torchs_positional_parameters():
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, 1, 2, 3])
    w = torch.rand(4, dtype=torch.float64) + 0.5
    t = torch.rand(5, 4, dtype=torch.float64)
    pairs = [
        (
            ce.cross_entropy(x, y, w, None, 3, None, "sum", 0.1),
            F.cross_entropy(x, y, w, None, 3, None, "sum", 0.1),
        ),
        (ce.nll_loss(x, y, w, None, 1, None, "none"), F.nll_loss(x, y, w, None, 1, None, "none")),
        (
            ce.binary_cross_entropy_with_logits(x, t, w, None, None, "sum", w),
            F.binary_cross_entropy_with_logits(x, t, w, None, None, "sum", w),
        ),
        (ce.huber_loss(x, t, "sum", 0.5), F.huber_loss(x, t, "sum", 0.5)),
        (ce.huber_loss(x, t, "mean", 0.5, w), F.huber_loss(x, t, "mean", 0.5, w.expand_as(x))),
        (
            ce.smooth_l1_loss(x, t, None, None, "sum", 0.3),
            F.smooth_l1_loss(x, t, None, None, "sum", 0.3),
        ),
        (
            ce.mse_loss(x, t, None, None, "sum", w),
            F.mse_loss(x, t, None, None, "sum", w.expand_as(x)),
        ),
        (
            ce.kl_div(x.log_softmax(1), t.softmax(1), None, None, "batchmean", False),
            F.kl_div(x.log_softmax(1), t.softmax(1), None, None, "batchmean", False),
        ),
        (ce.softplus(x, 2.0, 1.0), F.softplus(x, 2.0, 1.0)),
        (ce.logsumexp(x, (0, 1), True), torch.logsumexp(x, (0, 1), True)),
        (ce.softmax(x, 0), torch.softmax(x, 0)),
        (ce.log_softmax(x, 0), torch.log_softmax(x, 0)),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- mixed dtypes

MIXED = {
    "cross_entropy": (ce.cross_entropy, F.cross_entropy, "probs"),
    "binary_cross_entropy_with_logits": (
        ce.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        "unit",
    ),
    "kl_div": (
        lambda x, t: ce.kl_div(x, t, reduction="batchmean"),
        lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        "probs",
    ),
    "mse_loss": (ce.mse_loss, F.mse_loss, "any"),
    "l1_loss": (ce.l1_loss, F.l1_loss, "any"),
    "smooth_l1_loss": (ce.smooth_l1_loss, F.smooth_l1_loss, "any"),
}
DTYPE_PAIRS = [
    ("float32", "float64"),
    ("float64", "float32"),
    ("bfloat16", "float32"),
    ("float16", "float64"),
    ("float32", "float16"),
]


def _mixed_inputs(kind: str, key: str):
    rng = _rng("mixed", kind, key)
    x = torch.tensor(rng.standard_normal((6, 5)))
    if kind == "probs":
        t = torch.tensor(rng.dirichlet(np.ones(5), 6))
        if key == "kl_div":
            x = torch.log_softmax(x, 1)
    elif kind == "unit":
        t = torch.tensor(rng.uniform(size=(6, 5)))
    else:
        t = torch.tensor(rng.standard_normal((6, 5)))
    return x, t


@pytest.mark.parametrize(("x_dtype", "t_dtype"), DTYPE_PAIRS)
@pytest.mark.parametrize("name", sorted(MIXED))
def test_a_floating_target_promotes_the_loss_as_in_pytorch(name, x_dtype, t_dtype):
    """The loss's dtype is PyTorch's (input's and target's promoted), its value the float64
    loss of the same inputs to that dtype's precision; the input's gradient in the input's
    dtype; PyTorch's value agrees to the inputs' precision (some of its kernels compute
    intermediate steps in the input's)."""
    ours_fn, torch_fn, kind = MIXED[name]
    x64, t64 = _mixed_inputs(kind, name)
    x = x64.to(getattr(torch, x_dtype)).requires_grad_(True)
    t = t64.to(getattr(torch, t_dtype))
    ours = ours_fn(x, t)
    theirs = torch_fn(x, t)
    assert ours.dtype == torch.promote_types(x.dtype, t.dtype)
    if name == "binary_cross_entropy_with_logits":  # PyTorch's returns the target's dtype
        assert theirs.dtype == t.dtype
    else:
        assert theirs.dtype == ours.dtype
    # computed in the promoted dtype: the float64 loss of the same inputs to that precision
    exact = ours_fn(x.detach().double(), t.double())
    out_eps = torch.finfo(ours.dtype).eps
    torch.testing.assert_close(ours.double(), exact, rtol=4 * out_eps, atol=4 * out_eps)
    low = max(torch.finfo(x.dtype).eps, torch.finfo(t.dtype).eps)  # the inputs' precision
    torch.testing.assert_close(ours.double(), theirs.double(), rtol=16 * low, atol=16 * low)
    (g,) = torch.autograd.grad(ours, x)
    assert g.dtype == x.dtype


@pytest.mark.parametrize("name", sorted(MIXED))
def test_a_float64_target_promotes_under_autocast_as_in_pytorch(name):
    ours_fn, torch_fn, kind = MIXED[name]
    x64, t64 = _mixed_inputs(kind, name)
    x = x64.bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = ours_fn(x, t64), torch_fn(x, t64)
        low = ours_fn(x, t64.float())  # float32 target: float32, as PyTorch's
        assert low.dtype == torch_fn(x, t64.float()).dtype == torch.float32
    assert ours.dtype == theirs.dtype == torch.float64
    (g,) = torch.autograd.grad(ours, x)
    assert g.dtype == torch.bfloat16


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_probability_targets_under_autocast_are_torchs_bit_for_bit(half, reduction):
    """Half-precision logits of a model under autocast with float32 (or half) probability
    targets: PyTorch's values and gradients exactly, as for class indices (all cast to
    float32)."""
    gen = torch.Generator().manual_seed(11)
    model = torch.nn.Linear(6, 5)
    x = torch.randn(40, 6, generator=gen)
    p = torch.softmax(torch.randn(40, 5, generator=gen), 1)
    results = []
    for module, fn in (
        (cnn.CrossEntropyLoss, ce.cross_entropy),
        (torch.nn.CrossEntropyLoss, F.cross_entropy),
    ):
        model.zero_grad()
        with torch.autocast("cpu", dtype=half):
            scores = model(x)
            value = module(reduction=reduction)(scores, p)
            smoothed = fn(scores, p.to(half), label_smoothing=0.1, reduction=reduction)
        (value.sum() + smoothed.sum()).backward()
        results.append((value, smoothed, model.weight.grad.clone()))
    assert scores.dtype == half
    for ours, theirs in zip(*results, strict=True):
        assert ours.dtype == theirs.dtype == torch.float32
        assert torch.equal(ours, theirs)


def test_an_integer_target_keeps_the_inputs_dtype():
    x = torch.randn(4, 3)
    assert ce.mse_loss(x, torch.ones(4, 3, dtype=torch.int64)).dtype == torch.float32
    assert ce.cross_entropy(x, torch.tensor([0, 1, 2, 0])).dtype == torch.float32
    assert ce.cross_entropy(x.bfloat16(), torch.tensor([0, 1, 2, 0])).dtype == torch.bfloat16


_MIXED = [
    ("cross_entropy", lambda m, x, t: m.cross_entropy(x, t.softmax(-1))),
    ("mse_loss", lambda m, x, t: m.mse_loss(x, t)),
    ("l1_loss", lambda m, x, t: m.l1_loss(x, t)),
    ("smooth_l1_loss", lambda m, x, t: m.smooth_l1_loss(x, t)),
    ("kl_div", lambda m, x, t: m.kl_div(x, t, reduction="batchmean")),
    ("binary_cross_entropy_with_logits", lambda m, x, t: m.binary_cross_entropy_with_logits(x, t)),
    ("huber_loss", lambda m, x, t: m.huber_loss(x, t)),
]


@pytest.mark.parametrize(("name", "call"), _MIXED, ids=[n for n, _ in _MIXED])
def test_a_floating_target_of_another_dtype_promotes_as_documented(name, call):
    """The loss's dtype is the promotion of the input's and the target's (conventions §17):
    PyTorch's for five losses; its binary_cross_entropy_with_logits returns the target's
    dtype and its huber_loss the input's, as the conventions say."""
    floats = [torch.float64, torch.float32, torch.bfloat16, torch.float16]
    for a, b in itertools.permutations(floats, 2):
        x, t = torch.randn(4, 3, dtype=a), torch.rand(4, 3, dtype=b)
        ours, theirs = call(ce, x, t).dtype, call(F, x, t).dtype
        assert ours == torch.promote_types(a, b), (a, b)
        if name == "binary_cross_entropy_with_logits":
            assert theirs == b, (a, b)
            # and its binary_cross_entropy refuses the two dtypes, which ours promotes
            with pytest.raises(RuntimeError):
                F.binary_cross_entropy(torch.sigmoid(x), t)
            assert ce.binary_cross_entropy(torch.sigmoid(x), t).dtype == ours
        elif name == "huber_loss":
            assert theirs == a, (a, b)
        else:
            assert theirs == ours, (a, b)
