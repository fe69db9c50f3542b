r"""The softmax family: cross-entropy, negative log-likelihood and the softmax focal loss.

``cross_entropy`` and ``nll_loss`` take PyTorch's names, positional order and defaults and give
PyTorch's numbers; keyword-only extras reproduce the other libraries' conventions
(docs/conventions.md) and never change the default result.

One engine serves the family (:func:`softmax_loss`, :func:`softmax_value_and_grad`):

1. :func:`prepare` resolves the array library, moves the class axis (or axes) last, checks
   shapes and dtypes, and, where the validation policy allows, label ranges and probabilities;
2. on PyTorch tensors with class-index targets, :func:`aten_applies` decides whether ATen's
   ``cross_entropy`` / ``nll_loss`` compute the loss (the same semantics, faster; z-loss,
   softcap and divisors other than PyTorch's are added around it), and :func:`aten_loss` does it;
3. otherwise :func:`forward` computes it on any array library and returns the typed
   intermediates (:class:`SoftmaxForward`) that :func:`gradient` turns into the closed-form
   gradient. The generic path is the reference that tests hold the delegation against.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from crossentropy import _formulas as fm
from crossentropy._lib.axes import Axes
from crossentropy._lib.checks import (
    LabelRangeError,
    check_unit_interval,
    first_index,
    per_class,
    shape_str,
)
from crossentropy._lib.host import to_host
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_loss_float,
    autocast_enabled,
    cast,
    device_of,
    hyper,
    index_dtype,
    is_floating,
    is_integral,
    is_numpy,
    is_torch,
    namespace,
    quiet,
    restore_dtype,
    with_target,
)
from crossentropy._lib.policy import Validate, get_validation, reads
from crossentropy._lib.reduction import (
    MeanDivisor,
    Reduction,
    divide,
    over_zero,
    reduce,
    reduction_scale,
)
from crossentropy.losses.options import Clip, Hyper, SoftmaxOptions, is_off, is_on

__all__ = [
    "IndexTargets",
    "SoftmaxForward",
    "SoftmaxInputs",
    "aten_applies",
    "aten_loss",
    "cross_entropy",
    "forward",
    "gradient",
    "index_targets",
    "nll_loss",
    "prepare",
    "softmax_loss",
    "softmax_value_and_grad",
]


# ---------------------------------------------------------------------------------------------
# Class-index targets: validity, safe labels, and the label check (one home).
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class IndexTargets:
    """Class-index targets made safe to gather with.

    ``valid`` marks the elements that count (not ``ignore_index``, not masked by ``where``);
    ``labels`` are the targets in the default integer dtype with 0 where not valid; ``bad``
    marks valid elements with a label out of range when the labels were not checked (their loss
    becomes NaN), None when they were.
    """

    valid: Array
    labels: Array
    bad: Array | None


#: PyTorch's unsigned dtypes wider than uint8, whose CPU comparisons are not implemented.
_WIDE_UNSIGNED = ("torch.uint16", "torch.uint32", "torch.uint64")


def index_targets(
    xp: Namespace,
    target: Array,
    n_classes: int,
    ignore_index: int | None,
    *,
    check: bool,
    mask: Array | None = None,
    name: str = "target",
) -> IndexTargets:
    """Validity, safe labels and (unchecked) out-of-range labels of class-index targets.

    With ``check``, a valid label outside ``[0, n_classes)`` raises ``ValueError`` naming the
    label, its index and the argument (``name``), an ``IndexError`` too (PyTorch's type).
    Works for every integer dtype: an ``ignore_index`` (or class count) that the dtype cannot
    hold is never compared against it.
    """
    wrapped, given = None, target
    if is_torch(target) and str(target.dtype) in _WIDE_UNSIGNED:
        # PyTorch compares no such tensor on the CPU: as int64, where a label of 2**63 or more
        # (negative there) stays out of range, whatever ignore_index is
        wide = str(target.dtype) == "torch.uint64"
        target = target.long()
        wrapped = target < 0 if wide else None
    info = xp.iinfo(target.dtype)
    if ignore_index is None or not info.min <= ignore_index <= info.max:
        valid = xp.ones(target.shape, dtype=xp.bool, device=device_of(target))
    else:
        valid = target != ignore_index
    if wrapped is not None:
        valid = valid | wrapped
    if mask is not None:
        valid = valid & mask
    too_big = target >= n_classes if n_classes <= info.max else xp.zeros_like(valid)
    too_small = target < 0 if info.min < 0 else xp.zeros_like(valid)
    out_of_range = valid & (too_small | too_big)
    bad: Array | None = None
    if check:
        idx = first_index(xp, out_of_range)
        if idx is not None:
            value = int(to_host(given)[idx])  # (as given: a uint64 label is not shown wrapped)
            allowed = "" if ignore_index is None else f" or equal ignore_index={ignore_index}"
            raise LabelRangeError(
                f"{name} holds label {value} at index {idx}; class labels must lie in "
                f"[0, {n_classes}){allowed}"
            )
    else:
        bad = out_of_range
    dtype = index_dtype(xp, target)
    labels = cast(xp, target, dtype)
    keep = valid if bad is None else valid & ~bad
    safe = xp.where(keep, labels, xp.zeros_like(labels))
    return IndexTargets(valid, safe, bad)


# ---------------------------------------------------------------------------------------------
# Preparation.
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SoftmaxInputs:
    """Validated inputs of one call, classes on the last axis, in the compute dtype.

    ``x`` is ``(*batch, C)``; ``target`` is ``(*batch)`` integer labels or ``(*batch, C)``
    probabilities (``soft``); ``weight`` and a per-class ``alpha`` are ``(C,)``;
    ``row_mask`` (``(*batch)``) and ``class_mask`` (``(*batch, C)``) come from ``where``;
    ``axes`` restores the caller's layout; ``check`` says whether values were checked.
    """

    xp: Namespace
    x: Array
    target: Array
    soft: bool
    weight: Array | None
    alpha: Any
    row_mask: Array | None
    class_mask: Array | None
    out_dtype: Any  # the loss's: input's and a floating target's promoted
    input_dtype: Any  # input's (its gradient's, and the precision probabilities are clipped at)
    axes: Axes
    n_classes: int
    check: bool


def _class_axes(o: SoftmaxOptions, shape: tuple[int, ...]) -> Axes:
    if not shape:
        raise ValueError("input must have at least one dimension (the classes); got a 0-d array")
    if o.axis is None:  # PyTorch's: 1, or 0 for a single sample
        return Axes((0 if len(shape) == 1 else 1,), shape)
    return Axes.of(o.axis, shape)


def _check_where(
    xp: Namespace, where: Array, batch: tuple[int, ...], full: tuple[int, ...]
) -> Array:
    """``where`` broadcast to the batch shape (a mask of samples) when it has at most the
    batch's rank, else to the input's shape (a mask of logits): its rank decides, so a mask's
    meaning never depends on whether two sizes happen to be equal."""
    if not xp.isdtype(where.dtype, "bool"):
        raise TypeError(f"where must be a boolean mask; got dtype {where.dtype}")
    shape = batch if len(where.shape) <= len(batch) else full
    try:
        return xp.broadcast_to(where, shape)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"where of shape {shape_str(where.shape)} must broadcast to the batch shape "
            f"{shape_str(batch)} (a mask of samples, of at most {len(batch)} dimensions) or "
            f"to the input's shape {shape_str(full)} (a mask of logits, of {len(full)})"
        ) from None


def prepare(
    input: Array,
    target: Array,
    weight: Array | None,
    o: SoftmaxOptions,
    *,
    alpha: Array | None = None,
    where: Array | None = None,
) -> SoftmaxInputs:
    """Resolve, convert and check the arrays of a call (see :class:`SoftmaxInputs`)."""
    xp, (x, t, w, a, m) = namespace(
        input, target, weight, alpha, where, names=["input", "target", "weight", "alpha", "where"]
    )
    xf, input_dtype = as_loss_float(xp, x, "input")
    out_dtype = input_dtype
    axes = _class_axes(o, tuple(xf.shape))
    n_classes = axes.size
    if n_classes == 0:
        raise ValueError(f"input must have at least one class on axis {axes.axes}; got 0 classes")
    check = reads(o.validate, xf, t, w, a, m)
    soft = is_floating(xp, t)
    batch = axes.batch_shape
    if soft and o.log_probs:
        raise TypeError(f"target must hold integer class labels; got dtype {t.dtype}")
    if soft:
        if tuple(t.shape) != tuple(xf.shape):
            labels = tuple(t.shape) == tuple(batch)  # one value per sample: meant as labels?
            raise ValueError(
                f"target of probabilities must have the shape of input {shape_str(xf.shape)}; "
                f"got {shape_str(t.shape)}"
                + (f" (class labels must be integers; got dtype {t.dtype})" if labels else "")
            )
        if 0 <= o.ignore_index <= 1:
            raise ValueError(
                "with probability targets, ignore_index marks rows filled with it, so it must "
                f"lie outside [0, 1]; got {o.ignore_index}"
            )
        xf, t, out_dtype = with_target(xp, xf, input_dtype, t, target)  # a float64 target promotes
        t = axes.to_last(xp, t)
    else:
        if not is_integral(xp, t):
            raise TypeError(f"target must hold integer class labels; got dtype {t.dtype}")
        if tuple(t.shape) != batch:
            raise ValueError(
                f"target of class indices must have shape {shape_str(batch)} for input of "
                f"shape {shape_str(xf.shape)} with classes on axis "
                f"{axes.axes[0] if axes.single else axes.axes}; got {shape_str(t.shape)}"
                + (
                    " (class probabilities must be floating, as in PyTorch)"
                    if tuple(t.shape) == tuple(xf.shape)
                    else ""
                )
            )
    if o.kind == "probs" and check:
        check_unit_interval(xp, xf, "input")
    wf = None if w is None else per_class(xp, w, "weight", n_classes, xf.dtype, check=check)
    if a is not None and o.gamma is None:
        raise TypeError("alpha is a focal-loss argument; cross_entropy takes none")
    af = (
        per_class(
            xp,
            a,
            "alpha",
            n_classes,
            xf.dtype,
            check=check,
            nonnegative=True,
            what="a number or ",
        )
        if a is not None
        else hyper(xp, o.alpha, xf, "alpha")
    )
    row_mask = class_mask = None
    if m is not None:
        full = _check_where(xp, m, batch, tuple(xf.shape))
        if tuple(full.shape) == batch:
            row_mask = full
        elif o.kind != "logits":
            raise ValueError(
                "a where of the input's shape masks logits, so it applies to logits only "
                f"(here the input holds {'log-probabilities' if o.log_probs else 'probabilities'}"
                "); mask whole samples with a where of the target's shape"
            )
        else:
            class_mask = axes.to_last(xp, full)
    inp = SoftmaxInputs(
        xp,
        axes.to_last(xp, xf),
        t,
        soft,
        wf,
        af,
        row_mask,
        class_mask,
        out_dtype,
        input_dtype,
        axes,
        n_classes,
        check,
    )
    rows = _row_mask(inp)
    if rows is not None:  # rows left out by where (optax's): a finite stand-in input, so
        # that no NaN or inf of theirs reaches a gradient (0 * NaN), as optax gives them none
        x = inp.x
        inp.x = xp.where(xp.expand_dims(rows, axis=-1), x, xp.full_like(x, o.kind == "probs"))
    return inp


# ---------------------------------------------------------------------------------------------
# The generic path.
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SoftmaxForward:
    """What the forward pass leaves for the gradient (classes last).

    ``z`` the logits after softcap and class masking (probabilities or log-probabilities for
    the other input kinds); ``m`` and ``log_sum`` the two parts of the log-sum-exp (keepdims;
    None unless logits); ``logz`` the per-row log-sum-exp; ``valid`` the counted rows; ``bad``
    unchecked out-of-range labels; ``target`` the safe labels or the masked (unsmoothed)
    probability targets; ``w_y`` each row's target weight; ``den`` and ``count`` the mean's
    divisors (loss and z-loss); ``batch`` the batchmean divisor.
    """

    z: Array
    m: Array  # None unless logits (so are log_sum and logz)
    log_sum: Array
    logz: Array
    valid: Array
    bad: Array | None
    target: Array
    w_y: Array | None
    den: Array | None
    count: Array | None
    batch: int


def _batch(shape: tuple[int, ...]) -> int:
    """The batch size (the first axis; 1 for a 0-d loss), as the shape holds it: under
    ``torch.compile`` and ``torch.export`` a symbolic size (``int()`` would fix it)."""
    return shape[0] if len(shape) else 1


def _logits(inp: SoftmaxInputs, o: SoftmaxOptions) -> Array:
    """The logits the softmax sees: softcapped, masked classes at ``-inf`` (a fully masked row
    keeps its logits, and is left out as a whole)."""
    xp, z = inp.xp, inp.x
    cap = hyper(xp, o.softcap, z, "softcap")
    if cap is not None:
        z = cap * xp.tanh(z / cap)
    if inp.class_mask is not None:
        keep = inp.class_mask | ~xp.any(inp.class_mask, axis=-1, keepdims=True)
        z = xp.where(keep, z, xp.full_like(z, -xp.inf))
    return z


def _row_mask(inp: SoftmaxInputs) -> Array | None:
    xp = inp.xp
    rows = inp.row_mask
    if inp.class_mask is not None:
        any_class = xp.any(inp.class_mask, axis=-1)
        rows = any_class if rows is None else rows & any_class
    return rows


def forward(inp: SoftmaxInputs, o: SoftmaxOptions) -> tuple[Array, SoftmaxForward]:
    """The loss on any array library, and the intermediates of its gradient."""
    xp, x = inp.xp, inp.x
    kind = o.kind
    z = _logits(inp, o) if kind == "logits" else x
    n_classes = inp.n_classes
    eps = hyper(xp, o.label_smoothing, x, "label_smoothing")
    zl = hyper(xp, o.z_loss, x, "z_loss")
    gamma = hyper(xp, o.gamma, x, "gamma")
    alpha = inp.alpha
    w = inp.weight
    per_class_mode = o.weight_mode == "per_class"
    m = log_sum = logz = None
    if kind == "logits":
        m, log_sum = fm.lse_parts(xp, z, -1)
        logz = xp.squeeze(m + log_sum, axis=-1)
    rows = _row_mask(inp)

    def log_probs() -> Array:
        if kind == "logits":
            return fm.log_softmax_of_parts(xp, z, m, log_sum, masked_rows=True)
        if kind == "probs":
            return fm.prob_log(xp, z, o.clip, inp.input_dtype)
        return z

    bad = None
    split: tuple[Array, Array, Any] | None = None  # weighted smoothing's terms, its eps / C
    if inp.soft:
        target = inp.target
        valid = ~xp.all(target == o.ignore_index, axis=-1)
        if rows is not None:
            valid = valid & rows
        if inp.check:
            skip = xp.broadcast_to(xp.expand_dims(~valid, axis=-1), target.shape)
            check_unit_interval(xp, target, "target", skip=skip)
        keep = xp.expand_dims(valid, axis=-1)
        if inp.class_mask is not None:  # optax's where: a masked class's term is left out
            keep = keep & inp.class_mask
        t = xp.where(keep, target, xp.zeros_like(target))
        w_t = xp.sum(t * w, axis=-1) if w is not None else None  # expected weight, unsmoothed
        ts = t if is_off(eps) else xp.where(keep, (1 - eps) * t + eps / n_classes, t)
        lp = log_probs()
        # a logit's log-probability is -inf where x - m is (the rows' log-sum-exp is finite,
        # or 0 for a row of -inf; +inf makes the row NaN): the mask read off the logits
        infinite = (z - m) == -xp.inf if kind == "logits" else None
        terms = fm.mul_log(xp, ts, lp, infinite)
        if gamma is not None:
            terms = terms * fm.focal_factor(xp, lp, gamma)
            if alpha is not None:
                terms = terms * alpha
        if w is not None and per_class_mode:
            per = 0 - xp.sum(terms * w, axis=-1)  # +0.0 for a row with no target
        elif w_t is not None:
            per = -w_t * xp.sum(terms, axis=-1)
        else:
            per = 0 - xp.sum(terms, axis=-1)
        w_y = w_t
        saved_target = t
    else:
        it = index_targets(xp, inp.target, n_classes, o.ignore_index, check=inp.check, mask=rows)
        valid, labels, bad = it.valid, it.labels, it.bad
        if kind == "logits":
            # a +inf logit makes the row NaN, as PyTorch's log_softmax does (not inf - z_y)
            norm = xp.squeeze(fm.nan_where_inf(xp, log_sum), axis=-1)
            nll = (xp.squeeze(m, axis=-1) - fm.gather(xp, z, labels)) + norm
        else:
            nll = -fm.gather(xp, log_probs(), labels)
        w_y = fm.take(xp, w, labels) if w is not None else None
        if gamma is not None:
            # an ignored row's stand-in label may sit on a -inf logit: a finite stand-in loss
            # (1, where the focal factor and its derivatives are finite), so no 0 * inf in the
            # gradient; the row's loss is set to 0 below
            nll = xp.where(valid, nll, xp.ones_like(nll))
            nll = nll * fm.focal_factor(xp, -nll, gamma)
            if alpha is not None:
                nll = nll * (fm.take(xp, alpha, labels) if _is_vector(alpha) else alpha)
        smooth = None
        if is_on(eps):
            lp = log_probs()
            terms = lp
            if gamma is not None or inp.class_mask is not None:
                # left-out rows and (optax's where) masked classes give 0, with no 0 * inf in
                # the gradient where their log-probability is -inf
                keep = xp.expand_dims(valid, axis=-1)
                if inp.class_mask is not None:
                    keep = keep & inp.class_mask
                terms = fm.mul_log(xp, cast(xp, keep, lp.dtype), lp)
            if gamma is not None:
                # a -inf log-probability (a -inf logit) keeps its -inf term, and its focal
                # factor (1) is taken at a finite stand-in: no 0 * inf in the gradient when a
                # traced epsilon of 0 takes none of the term
                finite = lp > -math.inf
                safe = xp.where(finite, lp, xp.full_like(lp, -1.0))
                terms = xp.where(finite, terms * fm.focal_factor(xp, safe, gamma), terms)
                if alpha is not None:
                    terms = terms * alpha
            smooth = -xp.sum(terms * w if (w is not None and per_class_mode) else terms, axis=-1)
        if per_class_mode and w_y is not None:
            nll = w_y * nll
        if smooth is not None:
            # a traced label smoothing of 0 takes none of the smoothing term, even where it is
            # inf (a -inf logit) or NaN (a -inf logit of class weight 0)
            c = eps / n_classes
            term = c * smooth if isinstance(c, float) else fm.unless_zero(xp, c, smooth)
            if per_class_mode and w_y is not None:  # PyTorch's two means, apart (see below)
                split = ((1 - eps) * nll, term, c)
            nll = (1 - eps) * nll + term
        per = nll
        if not per_class_mode and w_y is not None:
            per = w_y * per
        saved_target = labels
    zero = xp.zeros_like(per)
    per = xp.where(valid, per, zero)
    if bad is not None:
        per = xp.where(bad, xp.full_like(per, math.nan), per)
    zterm = None
    if is_on(zl) and logz is not None:
        finite_z = fm.zero_where_minus_inf(xp, logz)
        zterm = xp.where(valid, zl * finite_z * finite_z, zero)
    count = xp.sum(cast(xp, valid, per.dtype))
    use_weight = o.divisor_rule(inp.soft) == "weight"
    den = xp.sum(xp.where(valid, w_y, zero)) if use_weight and w_y is not None else count
    batch = _batch(tuple(per.shape))
    saved = SoftmaxForward(z, m, log_sum, logz, valid, bad, saved_target, w_y, den, count, batch)
    red = o.reduction
    if red == "none":
        return (per if zterm is None else per + zterm), saved
    if red in ("sum", "batchmean"):
        total = per if zterm is None else per + zterm
        return reduce(xp, total, red, batch_size=batch, empty_mean=o.empty_mean), saved
    out = divide(xp, xp.sum(per), den, o.empty_mean)
    if split is not None and use_weight and math.isnan(o.empty_mean):
        # PyTorch divides the smoothed loss's two terms by the weights' sum apart: at a sum of
        # 0 (every target of class weight 0), 0 / 0 + x / 0 is NaN where one quotient is inf
        parts = [xp.where(valid, part, zero) for part in split[:2]]
        if bad is not None:  # a label out of range left unread: NaN, as the loss is
            parts[0] = xp.where(bad, xp.full_like(parts[0], math.nan), parts[0])
        a, b = (xp.sum(part) for part in parts)
        tail = over_zero(xp, b)
        if not isinstance(split[2], float):  # a traced smoothing of 0 has no term (not 0 / 0)
            tail = xp.where(split[2] == 0, xp.zeros_like(tail), tail)
        out = xp.where(den == 0, over_zero(xp, a) + tail, out)
    if zterm is not None:
        out = out + divide(xp, xp.sum(zterm), count, _z_fill(o.empty_mean))
    return out, saved


def _z_fill(empty_mean: float) -> float:
    """The z-loss term's mean over no valid target: nothing to add to the loss's
    ``empty_mean`` (0), or NaN with a NaN ``empty_mean`` (PyTorch's 0 / 0)."""
    return empty_mean if math.isnan(empty_mean) else 0.0


def _is_vector(a: Any) -> bool:
    return a is not None and not isinstance(a, float) and getattr(a, "ndim", 0) == 1


# ---------------------------------------------------------------------------------------------
# The closed-form gradient (for ``crossentropy.grad``; tests hold it against autograd).
# ---------------------------------------------------------------------------------------------


def _scales(xp: Namespace, f: SoftmaxForward, reduction: str) -> tuple[Any, Any]:
    """d(reduced loss)/d(element loss) for the cross-entropy part and the z-loss part."""
    loss = reduction_scale(xp, f.z, reduction, denominator=f.den, batch_size=f.batch)
    zloss = reduction_scale(xp, f.z, reduction, denominator=f.count, batch_size=f.batch)
    return loss, zloss


def _subtract_at(xp: Namespace, g: Array, idx: Array, values: Array) -> Array:
    """``g[..., idx] -= values`` along the last axis (in place on NumPy's fresh ``g``)."""
    if is_numpy(g):
        import numpy as np

        pos = idx[..., None]
        np.put_along_axis(g, pos, np.take_along_axis(g, pos, axis=-1) - values[..., None], -1)
        return g
    classes = xp.arange(g.shape[-1], dtype=idx.dtype, device=device_of(g))
    hit = xp.expand_dims(idx, axis=-1) == classes
    return g - xp.where(hit, xp.expand_dims(values, axis=-1), xp.zeros_like(g))


def _index_logits_grad(inp: SoftmaxInputs, f: SoftmaxForward, o: SoftmaxOptions) -> Array:
    """Class-index targets on logits, without materialising the target matrix.

    The weighted, smoothed target is ``a = c e_y + d u`` per row (``u`` the class weights or
    ones), so the gradient is ``softmax * sum(a) - d u - c e_y``: three passes over the logits.
    The focal loss without smoothing scales ``c`` by ``alpha_y g(q_y)`` (see
    :func:`crossentropy._formulas.focal_slope`).
    """
    xp, z = inp.xp, f.z
    scale, zscale = _scales(xp, f, o.reduction)
    n_classes = z.shape[-1]
    valid = cast(xp, f.valid, z.dtype)
    w = inp.weight
    eps = hyper(xp, o.label_smoothing, z, "label_smoothing")
    smoothing = is_on(eps)
    eps_v = eps if smoothing else 0.0
    w_y = f.w_y
    c = (1 - eps_v) * valid * scale if w_y is None else (1 - eps_v) * w_y * valid * scale
    gamma = hyper(xp, o.gamma, z, "gamma")
    if gamma is not None:  # only without smoothing (see gradient)
        logq_y = (fm.gather(xp, z, f.target) - xp.squeeze(f.m, axis=-1)) - xp.squeeze(
            f.log_sum, axis=-1
        )
        c = c * fm.focal_slope(xp, logq_y, gamma)
        alpha = inp.alpha
        if alpha is not None:
            c = c * (fm.take(xp, alpha, f.target) if _is_vector(alpha) else alpha)
    if o.weight_mode == "per_class" or w_y is None:
        d = (eps_v / n_classes) * valid * scale
        u = w
    else:
        d = (eps_v / n_classes) * w_y * valid * scale
        u = None
    if smoothing and inp.class_mask is not None:  # masked classes take no smoothing mass
        kept = cast(xp, inp.class_mask, z.dtype)
        u = kept if u is None else u * kept
    if not smoothing:
        row_sum = c
    elif u is None:
        row_sum = c + d * n_classes
    else:
        row_sum = c + d * xp.sum(u, axis=-1)
    zl = hyper(xp, o.z_loss, z, "z_loss")
    if is_on(zl):
        finite_z = fm.zero_where_minus_inf(xp, f.logz)
        row_sum = row_sum + 2 * zl * finite_z * valid * zscale
    g = xp.exp(fm.log_softmax_of_parts(xp, f.z, f.m, f.log_sum, masked_rows=True)) * xp.expand_dims(
        row_sum, axis=-1
    )
    if smoothing:
        d_col = xp.expand_dims(d, axis=-1)
        g = g - (d_col * u if u is not None else d_col)
    return _subtract_at(xp, g, f.target, c)


def _general_grad(inp: SoftmaxInputs, f: SoftmaxForward, o: SoftmaxOptions) -> Array:
    """Soft targets, focal losses and probability inputs: the target matrix ``a`` in full."""
    xp, x = inp.xp, inp.x
    n_classes = x.shape[-1]
    valid = xp.expand_dims(f.valid, axis=-1)
    w = inp.weight
    eps = hyper(xp, o.label_smoothing, x, "label_smoothing")
    smoothing = is_on(eps)
    per_class_mode = o.weight_mode == "per_class"
    target = f.target
    if inp.soft:
        a = target if not smoothing else (1 - eps) * target + eps / n_classes
        if w is not None:
            a = a * w if per_class_mode else xp.expand_dims(f.w_y, axis=-1) * a
    else:
        classes = xp.arange(n_classes, dtype=target.dtype, device=device_of(x))
        onehot = cast(xp, xp.expand_dims(target, axis=-1) == classes, x.dtype)
        base = (1 - eps) * onehot + eps / n_classes if smoothing else onehot
        if w is None:
            a = base
        else:
            w_y = xp.expand_dims(f.w_y, axis=-1)
            if per_class_mode:
                a = (1 - eps) * w_y * onehot + (eps / n_classes) * w if smoothing else w_y * onehot
            else:
                a = w_y * base
    keep = valid if inp.class_mask is None else valid & inp.class_mask
    a = xp.where(keep, a, xp.zeros_like(a))
    kind = o.kind
    if kind == "logits":
        logq = fm.log_softmax_of_parts(xp, f.z, f.m, f.log_sum, masked_rows=True)
    elif kind == "probs":
        logq = fm.prob_log(xp, x, o.clip, inp.input_dtype)
    else:
        logq = x
    gamma = hyper(xp, o.gamma, x, "gamma")
    h = a
    if gamma is not None:
        h = a * fm.focal_slope(xp, logq, gamma)
        alpha = inp.alpha
        if alpha is not None:
            h = h * alpha
    scale, zscale = _scales(xp, f, o.reduction)
    if kind == "probs":
        with quiet(h):
            g = -h * fm.prob_log_derivative(xp, x, o.clip, inp.input_dtype) * scale
        return xp.where(h == 0, xp.zeros_like(g), g)  # no 0 * inf where a class has no target
    if kind == "log_probs":
        return -h * scale
    q = xp.exp(logq)
    g = (q * xp.sum(h, axis=-1, keepdims=True) - h) * scale
    zl = hyper(xp, o.z_loss, x, "z_loss")
    if is_on(zl):
        finite_z = fm.zero_where_minus_inf(xp, f.logz)
        zg = 2 * zl * xp.expand_dims(finite_z, axis=-1) * q * zscale
        g = g + xp.where(valid, zg, xp.zeros_like(zg))
    return g


def gradient(inp: SoftmaxInputs, f: SoftmaxForward, o: SoftmaxOptions) -> Array:
    """The gradient of the (reduced) loss with respect to the input, in the caller's layout
    (for ``reduction="none"``: of the sum of the per-element losses)."""
    xp, x = inp.xp, inp.x
    logits = o.kind == "logits"
    sparse = o.gamma is None or is_off(o.label_smoothing)
    if logits and not inp.soft and sparse:
        g = _index_logits_grad(inp, f, o)
    else:
        g = _general_grad(inp, f, o)
    cap = hyper(xp, o.softcap, x, "softcap")
    if logits and cap is not None:
        th = xp.tanh(x / cap)
        g = g * (1 - th * th)
    if inp.class_mask is not None:
        g = xp.where(inp.class_mask, g, xp.zeros_like(g))
    if f.bad is not None:
        g = xp.where(xp.expand_dims(f.bad, axis=-1), xp.full_like(g, math.nan), g)
    return restore_dtype(xp, inp.axes.from_last(xp, g), inp.input_dtype)


# ---------------------------------------------------------------------------------------------
# ATen delegation (PyTorch): one predicate, next to the delegation.
# ---------------------------------------------------------------------------------------------


def aten_applies(inp: SoftmaxInputs, o: SoftmaxOptions) -> bool:
    """Whether ATen's ``cross_entropy`` / ``nll_loss`` compute this call: PyTorch tensors,
    class-index targets on logits or log-probabilities, no focal term, no class mask, class
    weights per class, every hyperparameter a Python number, and no label smoothing under
    ``torch.func.vmap`` (:func:`_smoothing_under_vmap`). Softcap, z-loss, row masks,
    ``batchmean``, ``empty_mean`` and the divisors are added around the ATen call."""
    return (
        is_torch(inp.x)
        and not inp.soft
        and o.kind != "probs"
        and o.gamma is None
        and inp.class_mask is None
        and (o.weight_mode == "per_class" or inp.weight is None)
        and all(v is None or isinstance(v, float) for v in (o.label_smoothing, o.z_loss, o.softcap))
        and not _smoothing_under_vmap(o)
    )


def aten_loss(inp: SoftmaxInputs, o: SoftmaxOptions) -> Array:
    """The loss through ATen (see :func:`aten_applies`): the per-element losses or their sum
    from ATen, softcap applied before and the z-loss and the divisor after, so the numbers are
    the generic path's to rounding. With checked values, a label out of range raises our
    ``ValueError`` (ATen's own error is translated)."""
    import torch
    import torch.nn.functional as F

    x, t, w = inp.x, inp.target, inp.weight
    xp = inp.xp
    ignore = o.ignore_index
    if t.dtype != torch.int64:
        info = torch.iinfo(t.dtype)
        if not info.min <= ignore <= info.max:  # cannot occur in this dtype: nothing ignored
            ignore = -(2**63)
        t = t.long()
    if inp.row_mask is not None:  # masked rows become ignored ones (their input a stand-in)
        t = torch.where(inp.row_mask, t, torch.full_like(t, ignore))
    if o.softcap is not None:
        x = o.softcap * torch.tanh(x / o.softcap)
    red = o.reduction
    plain = (
        red in ("none", "sum")
        or (red == "mean" and math.isnan(o.empty_mean) and o.divisor_rule(soft=False) == "weight")
    ) and not o.z_loss
    aten_red = red if plain else ("none" if o.z_loss else "sum")
    # ATen wants the classes on axis 1: (C,), (N, C) or (N, C, d...); ours are last.
    xa = torch.movedim(x, -1, 1) if x.ndim > 2 else x
    try:
        if o.log_probs:
            out = F.nll_loss(xa, t, weight=w, ignore_index=ignore, reduction=aten_red)
        else:
            out = F.cross_entropy(
                xa,
                t,
                weight=w,
                ignore_index=ignore,
                reduction=aten_red,
                label_smoothing=o.label_smoothing,
            )
    except (IndexError, RuntimeError):
        if inp.check:  # ATen refused a label: say which, as the generic path does
            index_targets(
                xp, inp.target, inp.n_classes, o.ignore_index, check=True, mask=inp.row_mask
            )
        raise
    if plain:
        return out
    valid = t != ignore
    if o.z_loss:
        # (the max shifted out without a gradient: torch.logsumexp's backward divides by its
        # rounded value, 5e-4 off the softmax at float32 logits of 1e4)
        logz = fm.logsumexp(xp, x, -1)
        zterm = torch.where(valid, o.z_loss * logz * logz, torch.zeros_like(logz))
        if red == "none":
            return out + zterm
        out_sum, z_sum = out.sum(), zterm.sum()
    else:
        out_sum, z_sum = out, None
    if red in ("sum", "batchmean"):
        total = out_sum if z_sum is None else out_sum + z_sum
        return total / _batch(tuple(t.shape)) if red == "batchmean" else total
    count = valid.sum(dtype=x.dtype)
    if w is not None and o.divisor_rule(soft=False) == "weight":
        den = torch.where(
            valid, fm.take(xp, w, torch.where(valid, t, torch.zeros_like(t))), 0
        ).sum()
    else:
        den = count
    value = divide(xp, out_sum, den, o.empty_mean)
    if z_sum is not None:
        value = value + divide(xp, z_sum, count, _z_fill(o.empty_mean))
    return value


# ---------------------------------------------------------------------------------------------
# Entry points.
# ---------------------------------------------------------------------------------------------


def _smoothing_under_vmap(o: SoftmaxOptions) -> bool:
    """Whether this is label smoothing under ``torch.func.vmap``, which ATen's
    ``cross_entropy`` cannot be batched for: it fills its smoothing term in place by a mask
    of the targets (batched labels of unbatched logits fail) and, with class weights, takes
    a masked mean; the generic path computes it then."""
    torch = sys.modules["torch"]
    if not o.label_smoothing:
        return False
    if torch.compiler.is_compiling():  # (Dynamo reads this flag, not the levels: under any
        return bool(torch._C._are_functorch_transforms_active())  # transform, generic)
    functorch = torch._C._functorch
    if functorch.maybe_current_level() is None:
        return False
    vmap = functorch.TransformType.Vmap  # under grad or jacrev alone ATen's path stays
    return any(level.key() == vmap for level in functorch.get_interpreter_stack() or ())


def _aten_direct(input: Array, target: Array, weight: Array | None, o: SoftmaxOptions) -> Any:
    """PyTorch's own call, straight to ATen, for float32/float64 tensors with int64 class-index
    targets and PyTorch's options (``o.torch_call``); None when ATen refuses the arguments, so
    that :func:`prepare` names the problem (a label out of range, a shape), or when the mode in
    force would read values ATen does not check (``validate=True`` off the CPU).

    Probability targets of the input's shape and dtype go to ATen too where the values are
    read (eagerly) and found to be finite logits and targets in [0, 1]: there ATen's numbers
    are the generic path's (which alone keeps ``0 log 0 = 0`` at a ``-inf`` logit, and names
    a target outside [0, 1]), about 5x faster than it on the CPU."""
    torch = sys.modules.get("torch")
    if (
        torch is None
        or not isinstance(input, torch.Tensor)
        or not isinstance(target, torch.Tensor)
        or (weight is not None and (not isinstance(weight, torch.Tensor) or weight.is_complex()))
        or _smoothing_under_vmap(o)
    ):  # (a complex weight, which ATen takes with probability targets, is refused by prepare)
        return None
    # under autocast PyTorch's losses compute half-precision tensors in float32: so does ATen
    # called here (the call's own cast), and its numbers are torch's
    half = (torch.float16, torch.bfloat16) if autocast_enabled(input.device.type) else ()
    dtype = torch.float32 if input.dtype in half else input.dtype
    if dtype not in (torch.float32, torch.float64):
        return None
    if target.is_floating_point():
        if (
            o.log_probs
            or (o.reduction == "mean" and o.divisor_rule(soft=True) != "count")  # ATen's
            or (torch.float32 if target.dtype in half else target.dtype) != dtype
            or target.shape != input.shape
            or not reads(o.validate, input, target)
        ):
            return None
        # one pass each: a NaN makes the extremes NaN, an infinite logit the sum (as would
        # an overflowing one, which the generic path then takes)
        low, high = torch.aminmax(target) if target.numel() else (target.new_zeros(()),) * 2
        if not bool((low >= 0) & (high <= 1) & torch.isfinite(input.sum(dtype=dtype))):
            return None
    elif target.dtype != torch.int64:  # (ATen refuses others: told apart before tracing)
        return None
    if (
        input.device.type != "cpu"
        and (get_validation() if o.validate is None else o.validate) is True
    ):
        return None
    import torch.nn.functional as F

    try:
        if o.log_probs:
            return F.nll_loss(
                input, target, weight, ignore_index=o.ignore_index, reduction=o.reduction
            )
        return F.cross_entropy(
            input,
            target,
            weight,
            ignore_index=o.ignore_index,
            reduction=o.reduction,
            label_smoothing=o.label_smoothing,
        )
    except (RuntimeError, IndexError, ValueError, TypeError):
        return None


def softmax_loss(
    input: Array,
    target: Array,
    weight: Array | None,
    o: SoftmaxOptions,
    *,
    alpha: Array | None = None,
    where: Array | None = None,
) -> Array:
    """The loss of a softmax-family call: PyTorch's own call straight to ATen where it is one
    (:func:`_aten_direct`), else ATen through :func:`prepare` where :func:`aten_applies`, else
    :func:`forward`."""
    if o.torch_call and alpha is None and where is None:
        out = _aten_direct(input, target, weight, o)
        if out is not None:
            return out
    inp = prepare(input, target, weight, o, alpha=alpha, where=where)
    if aten_applies(inp, o):
        out = aten_loss(inp, o)
    else:
        with quiet(inp.x):
            out, _ = forward(inp, o)
    return restore_dtype(inp.xp, out, inp.out_dtype)


def softmax_value_and_grad(
    input: Array,
    target: Array,
    weight: Array | None,
    o: SoftmaxOptions,
    *,
    alpha: Array | None = None,
    where: Array | None = None,
) -> tuple[Array, Array]:
    """The loss (generic path) and its gradient with respect to ``input``."""
    inp = prepare(input, target, weight, o, alpha=alpha, where=where)
    with quiet(inp.x):
        value, saved = forward(inp, o)
        g = gradient(inp, saved, o)
    return restore_dtype(inp.xp, value, inp.out_dtype), g


# ---------------------------------------------------------------------------------------------
# Public functions.
# ---------------------------------------------------------------------------------------------


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    label_smoothing: Hyper = 0.0,
    *,
    axis: int | tuple[int, ...] | None = None,
    from_logits: bool = True,
    z_loss: Hyper = 0.0,
    softcap: Hyper | None = None,
    clip: Clip = None,
    empty_mean: float = math.nan,
    mean_divisor: MeanDivisor = "auto",
    weight_mode: str = "per_class",
    where: Array | None = None,
    validate: Validate | None = None,
) -> Array:
    r"""Cross-entropy loss between logits and class indices or class probabilities.

    With class indices :math:`y_n` and class weights :math:`w`, the per-element loss is

    .. math::

        \ell_n = -w_{y_n} \log \operatorname{softmax}(x_n)_{y_n}
               = w_{y_n} \bigl(\operatorname{logsumexp}(x_n) - x_{n, y_n}\bigr)

    and with class probabilities :math:`t_n` it is
    :math:`\ell_n = -\sum_c w_c\, t_{n,c} \log \operatorname{softmax}(x_n)_c`. Label smoothing
    :math:`\varepsilon` mixes the target with the uniform distribution,
    :math:`t \leftarrow (1 - \varepsilon)\, t + \varepsilon / C`.

    Follows :func:`torch.nn.functional.cross_entropy` (same positional parameters, defaults and
    numbers, legacy ``size_average`` / ``reduce`` included): input ``(C)``, ``(N, C)`` or
    ``(N, C, d1, ..., dK)`` (classes on axis 1), target of class indices ``()``, ``(N)`` or
    ``(N, d1, ..., dK)`` with ``ignore_index`` entries skipped, or of probabilities with the
    input's shape. ``reduction="mean"`` divides by :math:`\sum_n w_{y_n}` over non-ignored
    elements for class indices, and by the number of non-ignored elements for probabilities; a
    mean over zero valid targets is NaN. ``"batchmean"`` divides the sum by the batch size
    ``N`` (for ``(N, C)`` input, Keras' ``sum_over_batch_size``). Class weights may be any real
    numbers, as in PyTorch.

    Parameters
    ----------
    input : array_like
        Logits (or probabilities with ``from_logits=False``).
    target : array_like
        Integer class indices, or floating class probabilities of the input's shape.
    weight : array_like, optional
        A weight per class, shape ``(C,)``.
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    ignore_index : int, default -100
        Class-index targets equal to it contribute nothing (not even to the mean's divisor).
        With probability targets, a sample whose target entries all equal ``ignore_index`` is
        ignored (pad a probability target with ``-100`` rows); PyTorch refuses this.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the per-element losses are combined.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]` (may be a traced 0-d array).
    axis : int or tuple of int, optional
        The class axis; default PyTorch's (1, or 0 for 1-D input). ``axis=-1`` for
        channel-last data (optax's convention); a tuple of axes holds the classes flattened
        (class-index targets are then flat indices, as optax).
    from_logits : bool, default True
        If False, ``input`` holds probabilities and the loss is the tutorials'
        :math:`-\sum_i y_i \log p_i` (no softmax).
    z_loss : float, default 0.0
        Adds :math:`z \cdot \operatorname{logsumexp}(x_n)^2` per valid element (PaLM's z-loss),
        of the logits the softmax sees (after ``softcap`` and a ``where`` mask); with
        ``"mean"`` it is averaged over valid elements, not class-weighted (as Liger).
    softcap : float, optional
        Replace logits by :math:`\mathrm{cap} \cdot \tanh(x / \mathrm{cap})` first (Gemma 2).
    clip : {None, "torch", "sklearn", "keras"} or float, default None
        With ``from_logits=False``: how probabilities are clipped before the log (see
        :func:`binary_cross_entropy`). None takes the plain log, so ``p = 0`` gives ``inf``.
    empty_mean : float, default nan
        Value of a mean over zero valid targets: NaN as PyTorch, 0.0 as Keras and Liger (the
        z-loss term then adds nothing; over valid targets whose class weights sum to 0 it
        keeps its mean over them).
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"``: the sum of target weights (PyTorch for class indices; for
        probabilities :math:`\sum_n \sum_c w_c t_{n,c}`) or the number of valid elements
        (PyTorch for probabilities; Keras). "auto" is PyTorch's choice.
    weight_mode : {"per_class", "per_sample"}, default "per_class"
        How class weights meet label smoothing and soft targets: each class's term weighted by
        its own weight (PyTorch), or the whole sample's loss weighted by its target's weight
        (Keras ``class_weight`` / sample weights).
    where : array_like of bool, optional
        optax's mask. Of the target's (batch) shape: False elements contribute 0 and leave
        the mean's divisor. Of the input's shape: False logits are left out of the softmax
        (probability 0); a row with no logit left contributes 0 and leaves the divisor. Its
        number of dimensions decides: at most the batch's, it broadcasts to the batch shape
        (a ``(C,)`` mask of an ``(N, C)`` input is refused unless ``N == C``; a class mask
        for every row is ``(1, C)``), else to the input's shape.
    validate : {None, "auto", True, False}
        When label ranges and probabilities are checked; default: the mode in force
        (:func:`crossentropy.validation`, normally ``"auto"``: concrete CPU arrays only).

    Returns
    -------
    array
        The loss, in the input's namespace, device and floating dtype (float32 under
        ``torch.autocast``); shape of the target's batch for ``reduction="none"``, else a
        scalar.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.cross_entropy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2]).round(6)
    np.float64(0.907606)
    >>> ce.cross_entropy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2], [1.0, 2.0, 3.0]).round(6)
    np.float64(0.807606)
    >>> ce.cross_entropy([[0.7, 0.2, 0.1]], [0], from_logits=False).round(4)
    np.float64(0.3567)
    >>> x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    >>> ce.cross_entropy(x, [1, 2], where=[True, False]).round(6)
    np.float64(1.407606)
    """
    options = SoftmaxOptions.from_arguments(locals())
    return softmax_loss(input, target, weight, options, where=where)


def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    *,
    axis: int | tuple[int, ...] | None = None,
    empty_mean: float = math.nan,
    mean_divisor: MeanDivisor = "auto",
    where: Array | None = None,
    validate: Validate | None = None,
) -> Array:
    r"""Negative log-likelihood loss on log-probabilities and class indices.

    .. math::

        \ell_n = -w_{y_n}\, x_{n, y_n}

    Follows :func:`torch.nn.functional.nll_loss` (same positional parameters and numbers):
    ``input`` holds log-probabilities (e.g. from :func:`log_softmax`), shapes and
    ``ignore_index`` as :func:`cross_entropy`; ``reduction="mean"`` divides by
    :math:`\sum_n w_{y_n}` over non-ignored elements.
    ``cross_entropy(x, y) == nll_loss(log_softmax(x), y)``.

    Parameters
    ----------
    input : array_like
        Log-probabilities, classes on ``axis``.
    target : array_like
        Integer class indices.
    weight : array_like, optional
        A weight per class.
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    ignore_index : int, default -100
        Targets equal to it contribute nothing.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the per-element losses are combined.
    axis : int or tuple of int, optional
        The class axis, as in :func:`cross_entropy` (default PyTorch's: 1, or 0 for 1-D input).
    empty_mean : float, default nan
        Value of a mean over zero valid targets: NaN as PyTorch, 0.0 as Keras and Liger.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"``: the sum of the target weights or the number of valid elements,
        as in :func:`cross_entropy`.
    where : array_like of bool, optional
        optax's mask, of the target's shape: False elements contribute 0 and leave the
        mean's divisor.
    validate : {None, "auto", True, False}
        When label ranges and probabilities are checked; default: the mode in force
        (:func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> x = ce.log_softmax([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> ce.nll_loss(x, [1, 2]).round(6)
    np.float64(0.907606)
    """
    options = SoftmaxOptions.from_arguments(locals(), log_probs=True)
    return softmax_loss(input, target, weight, options, where=where)
