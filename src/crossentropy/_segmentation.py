r"""Overlap losses for segmentation: Dice, Jaccard (IoU) and Tversky, with focal-Tversky.

All three are one formula, the Tversky index over soft counts,

.. math::

    \mathrm{TI} = \frac{I + s}{I + \alpha\,\mathrm{FP} + \beta\,\mathrm{FN} + s}, \qquad
    I = \sum p\,t, \quad \mathrm{FP} = \sum p\,(1 - t), \quad \mathrm{FN} = \sum (1 - p)\,t,

with Dice at :math:`\alpha = \beta = \tfrac12` (:math:`\frac{2I + 2s}{P + T + 2s}`) and Jaccard at
:math:`\alpha = \beta = 1` (:math:`\frac{I + s}{P + T - I + s}`); the loss is
:math:`(1 - \mathrm{TI})^\gamma`. The denominator is clamped at ``eps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from crossentropy._classification import _check_dtype_integral, _index_targets
from crossentropy._lib import (
    Array,
    Namespace,
    as_float,
    check_empty_mean,
    check_reduction,
    device_of,
    divide,
    namespace,
    reduce,
    restore_dtype,
)
from crossentropy._lib._validation import (
    check_choice,
    check_finite_number,
    check_in_unit_interval,
    check_int,
    shape_str,
)
from crossentropy._special import _axis, sigmoid_, softmax_

__all__ = ["dice_loss", "jaccard_loss", "tversky_loss"]

Mode = Literal["binary", "multiclass", "multilabel"]
Aggregate = Literal["batch", "sample", "global"]
Absent = Literal["zero", "skip", "keep"]
_MODES = ("binary", "multiclass", "multilabel")
_AGGREGATES = ("batch", "sample", "global")
_ABSENT = ("zero", "skip", "keep")
_INTERSECTIONS = ("product", "min")
_REDUCTIONS = ("none", "mean", "sum")


def _probabilities_and_targets(
    xp: Namespace,
    x: Array,
    t: Array,
    mode: str,
    axis: int | None,
    from_logits: bool,
    ignore_index: int | None,
) -> tuple[Array, Array]:
    """Probabilities and targets as ``(N, C, S)`` arrays, ignored pixels zeroed in both."""
    if math.prod(x.shape) == 0:
        raise ValueError(f"input must not be empty; got shape {shape_str(x.shape)}")
    n = x.shape[0] if x.ndim else 1
    if mode == "binary":
        if (t.shape[0] if t.ndim else 1) != n or math.prod(t.shape) != math.prod(x.shape):
            raise ValueError(
                f"target must have the batch size and the number of elements of input "
                f"{shape_str(x.shape)} in binary mode; got {shape_str(t.shape)}"
            )
        x = xp.reshape(x, (n, 1, -1))
        t = xp.reshape(t, (n, 1, -1))
        soft_target = True
    else:
        if x.ndim < 2:
            raise ValueError(
                f"input must have shape (N, C, ...) in {mode} mode; got {shape_str(x.shape)}"
            )
        ax = 1 if axis is None else _axis(axis, x.ndim)
        shape = tuple(x.shape)
        x = xp.moveaxis(x, ax, 1)
        soft_target = mode == "multilabel" or xp.isdtype(t.dtype, "real floating")
        if soft_target:
            if tuple(t.shape) != shape:
                raise ValueError(
                    f"target must have the shape of input {shape_str(shape)} in {mode} mode; "
                    f"got {shape_str(t.shape)}"
                )
            t = xp.reshape(xp.moveaxis(t, ax, 1), (n, x.shape[1], -1))
        else:
            _check_dtype_integral(xp, t, "target")
            expected = (x.shape[0], *x.shape[2:])
            if tuple(t.shape) != expected:
                raise ValueError(
                    f"target of class indices must have shape {shape_str(expected)} for input of "
                    f"shape {shape_str(shape)}; got {shape_str(t.shape)}"
                )
        x = xp.reshape(x, (n, x.shape[1], -1))
    n_classes = x.shape[1]
    if from_logits:
        p = softmax_(xp, x, 1) if mode == "multiclass" else sigmoid_(xp, x)
    else:
        check_in_unit_interval(xp, x, "input")
        p = x
    if soft_target:
        ignored = None if ignore_index is None else t == ignore_index
        t = xp.astype(t, p.dtype) if t.dtype != p.dtype else t
        if ignored is not None:
            t = xp.where(ignored, xp.zeros_like(t), t)
            p = xp.where(ignored, xp.zeros_like(p), p)
        check_in_unit_interval(xp, t, "target")
        return p, t
    labels = xp.reshape(t, (n, -1))
    valid, safe, bad = _index_targets(xp, labels, n_classes, ignore_index)
    classes = xp.reshape(xp.arange(n_classes, dtype=safe.dtype, device=device_of(p)), (1, -1, 1))
    onehot = xp.astype(xp.expand_dims(safe, axis=1) == classes, p.dtype)
    keep = xp.astype(xp.expand_dims(valid, axis=1), p.dtype)
    if bad is not None:  # lazy arrays: a label out of range poisons its sample with NaN
        keep = xp.where(xp.expand_dims(bad, axis=1), xp.full_like(keep, math.nan), keep)
    return p * keep, onehot * keep


def _tversky(
    input: Array,
    target: Array,
    *,
    alpha: object,
    beta: object,
    gamma: object,
    mode: object,
    from_logits: object,
    smooth: object,
    eps: object,
    aggregate: object,
    absent: object,
    ignore_index: object,
    classes: Sequence[int] | None,
    intersection: object,
    log_loss: object,
    reduction: object,
    axis: int | None,
    empty_mean: object,
) -> Array:
    """The one home of the overlap losses."""
    a = check_finite_number(alpha, "alpha", low=0.0)
    b = check_finite_number(beta, "beta", low=0.0)
    g = check_finite_number(gamma, "gamma", low=0.0, low_open=True)
    s = check_finite_number(smooth, "smooth", low=0.0)
    e = check_finite_number(eps, "eps", low=0.0)
    check_choice(mode, "mode", _MODES)
    check_choice(aggregate, "aggregate", _AGGREGATES)
    check_choice(absent, "absent", _ABSENT)
    check_choice(intersection, "intersection", _INTERSECTIONS)
    red = check_reduction(reduction, _REDUCTIONS)
    empty = check_empty_mean(empty_mean)
    ignore = None if ignore_index is None else check_int(ignore_index, "ignore_index")
    for flag, name in ((from_logits, "from_logits"), (log_loss, "log_loss")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool; got {type(flag).__name__}")
    xp, (x, t) = namespace(input, target, names=["input", "target"])
    xf, out_dtype = as_float(xp, x, "input")
    p, tt = _probabilities_and_targets(xp, xf, t, str(mode), axis, bool(from_logits), ignore)
    dims: tuple[int, ...] = {"batch": (0, 2), "sample": (2,), "global": (0, 1, 2)}[str(aggregate)]
    if intersection == "product":
        inter = xp.sum(p * tt, axis=dims)
        fp = xp.sum(p * (1 - tt), axis=dims)
        fn = xp.sum((1 - p) * tt, axis=dims)
    else:
        low = xp.minimum(p, tt)
        inter = xp.sum(low, axis=dims)
        fp = xp.sum(p - low, axis=dims)
        fn = xp.sum(tt - low, axis=dims)
    den = inter + a * fp + b * fn + s
    score = (inter + s) / xp.maximum(den, xp.full_like(den, e))
    loss = -xp.log(xp.maximum(score, xp.full_like(score, e))) if log_loss else 1 - score
    if g != 1:
        loss = xp.where(loss > 0, loss, xp.zeros_like(loss)) ** g
    # NaN (a bad label on a lazy array) must stay NaN, not count as an absent class.
    present = ~(xp.sum(tt, axis=dims) == 0)
    if classes is not None:
        if aggregate == "global":
            raise ValueError("classes needs per-class scores; it cannot go with aggregate='global'")
        idx = [check_int(c, "classes") for c in classes]
        n_classes = p.shape[1]
        if not idx or any(not 0 <= c < n_classes for c in idx):
            raise ValueError(f"classes must list class indices in [0, {n_classes}); got {idx}")
        sel = xp.asarray(idx, device=device_of(loss))
        loss = xp.take(loss, sel, axis=loss.ndim - 1)
        present = xp.take(present, sel, axis=present.ndim - 1)
    if absent == "zero":
        loss = xp.where(present, loss, xp.zeros_like(loss))
    elif absent == "skip":
        loss = xp.where(present, loss, xp.zeros_like(loss))
        if red == "mean":
            count = xp.sum(xp.astype(present, loss.dtype))
            return restore_dtype(xp, divide(xp, xp.sum(loss), count, empty), out_dtype)
    return restore_dtype(xp, reduce(xp, loss, red, empty_mean=empty), out_dtype)


_PARAMS_DOC = r"""
    Parameters
    ----------
    input : array_like
        Logits (probabilities with ``from_logits=False``). ``"binary"``: ``(N, ...)``, one
        class; ``"multiclass"`` and ``"multilabel"``: ``(N, C, ...)``, classes on ``axis``.
    target : array_like
        ``"binary"``: 0/1 (or soft) targets with the input's elements; ``"multiclass"``:
        class indices ``(N, ...)`` or probabilities of the input's shape; ``"multilabel"``: 0/1
        targets of the input's shape.
%(extra)s    mode : {"binary", "multiclass", "multilabel"}, default "binary"
        Sigmoid for one class, softmax over classes, or a sigmoid per class.
    from_logits : bool, default True
        Whether ``input`` holds logits (segmentation-models-pytorch) or probabilities (Keras).
    smooth : float, default 0.0
        Additive smoothing :math:`s` of numerator and denominator.
    eps : float, default 1e-7
        Lower clamp of the denominator (and of the score with ``log_loss``).
    aggregate : {"batch", "sample", "global"}, default "batch"
        Where counts are summed: over the batch and pixels per class (one score per class,
        segmentation-models-pytorch), per sample and class (optax), or over everything
        (Keras with ``axis=None``).
    absent : {"zero", "skip", "keep"}, default "zero"
        Classes with no target pixels in a score's cell: loss 0 but counted in the mean
        (segmentation-models-pytorch), left out of the mean, or computed as they are.
    ignore_index : int, optional
        Target value of pixels left out of every count.
    classes : sequence of int, optional
        Only these classes enter the result.
    intersection : {"product", "min"}, default "product"
        Soft intersection :math:`\sum p t` (Keras, optax) or :math:`\sum \min(p, t)`
        (segmentation-models-pytorch >= 0.4, for soft targets); equal for 0/1 targets.
    log_loss : bool, default False
        Return :math:`-\log(\mathrm{score})` instead of :math:`1 - \mathrm{score}`.
    reduction : {"mean", "sum", "none"}, default "mean"
        Over the per-class (or per-sample-and-class) losses.
    axis : int, optional
        The class axis (default 1).
    empty_mean : float, default nan
        The mean when no cell is counted (``absent="skip"`` and no class present).
"""


def tversky_loss(
    input: Array,
    target: Array,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 1.0,
    mode: Mode = "binary",
    from_logits: bool = True,
    smooth: float = 0.0,
    eps: float = 1e-7,
    aggregate: Aggregate = "batch",
    absent: Absent = "zero",
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    intersection: Literal["product", "min"] = "product",
    log_loss: bool = False,
    reduction: Literal["mean", "sum", "none"] = "mean",
    axis: int | None = None,
    empty_mean: float = math.nan,
) -> Array:
    r"""Tversky loss, and the focal-Tversky loss with ``gamma``.

    .. math::

        \ell = \left(1 - \frac{I + s}{I + \alpha\,\mathrm{FP} + \beta\,\mathrm{FN} + s}
        \right)^{\gamma}

    ``alpha`` weighs false positives and ``beta`` false negatives, as in
    segmentation-models-pytorch and optax (Keras <= 3.15.1 swaps them: pass them the other way
    round to reproduce it). ``gamma`` applies to each class's loss (Abraham & Khan 2019);
    segmentation-models-pytorch raises the mean to ``gamma`` instead (use ``gamma=1`` and raise
    the result). Defaults are segmentation-models-pytorch's.

    %(params)s
    Examples
    --------
    >>> import crossentropy as ce
    >>> p, g = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]
    >>> ce.tversky_loss(p, g, alpha=0.3, beta=0.7, from_logits=False).round(6)
    np.float64(0.226804)
    """
    return _tversky(input, target, **_kwargs(locals()))


def dice_loss(
    input: Array,
    target: Array,
    *,
    mode: Mode = "binary",
    from_logits: bool = True,
    smooth: float = 0.0,
    eps: float = 1e-7,
    aggregate: Aggregate = "batch",
    absent: Absent = "zero",
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    intersection: Literal["product", "min"] = "product",
    log_loss: bool = False,
    reduction: Literal["mean", "sum", "none"] = "mean",
    axis: int | None = None,
    empty_mean: float = math.nan,
) -> Array:
    r"""Soft Dice loss: one minus the Dice coefficient (the F1 score of soft counts).

    .. math::

        \ell = 1 - \frac{2I + 2s}{P + T + 2s}, \qquad I = \sum p\,t, \quad P = \sum p,
        \quad T = \sum t

    the Tversky loss at :math:`\alpha = \beta = \tfrac12`. ``smooth`` :math:`s` is
    segmentation-models-pytorch >= 0.4's and optax's; Keras' ``Dice`` is ``smooth=0`` with
    ``from_logits=False, aggregate="global", absent="keep"``; segmentation-models-pytorch < 0.4
    wrote :math:`(2I + s)/(P + T + s)`, which is ``smooth=s/2`` here.
    %(params)s
    Examples
    --------
    >>> import crossentropy as ce
    >>> p, g = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]
    >>> ce.dice_loss(p, g, from_logits=False).round(6)
    np.float64(0.210526)
    >>> ce.dice_loss(p, g, from_logits=False, smooth=1.0).round(6)
    np.float64(0.137931)
    """
    return _tversky(input, target, alpha=0.5, beta=0.5, gamma=1.0, **_kwargs(locals()))


def jaccard_loss(
    input: Array,
    target: Array,
    *,
    mode: Mode = "binary",
    from_logits: bool = True,
    smooth: float = 0.0,
    eps: float = 1e-7,
    aggregate: Aggregate = "batch",
    absent: Absent = "zero",
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    intersection: Literal["product", "min"] = "product",
    log_loss: bool = False,
    reduction: Literal["mean", "sum", "none"] = "mean",
    axis: int | None = None,
    empty_mean: float = math.nan,
) -> Array:
    r"""Soft Jaccard (IoU) loss: one minus intersection over union of soft counts.

    .. math::

        \ell = 1 - \frac{I + s}{P + T - I + s}

    the Tversky loss at :math:`\alpha = \beta = 1` (segmentation-models-pytorch's
    ``JaccardLoss``).
    %(params)s
    Examples
    --------
    >>> import crossentropy as ce
    >>> p, g = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]
    >>> ce.jaccard_loss(p, g, from_logits=False).round(6)
    np.float64(0.347826)
    """
    return _tversky(input, target, alpha=1.0, beta=1.0, gamma=1.0, **_kwargs(locals()))


_TVERSKY_EXTRA = """\
    alpha : float, default 0.5
        Weight of the false positives.
    beta : float, default 0.5
        Weight of the false negatives.
    gamma : float, default 1.0
        Focal exponent (> 0) applied to each class's loss (also with ``log_loss``).
"""
for _fn, _extra in ((tversky_loss, _TVERSKY_EXTRA), (dice_loss, ""), (jaccard_loss, "")):
    _params = _PARAMS_DOC.lstrip("\n").replace("%(extra)s", _extra)
    _fn.__doc__ = (_fn.__doc__ or "").replace("    %(params)s\n", _params)


def _kwargs(local: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in local.items() if k not in ("input", "target")}
