r"""Overlap losses for segmentation: Dice, Jaccard (IoU) and Tversky, with focal-Tversky.

All three are one formula, the Tversky index over soft counts,

.. math::

    \mathrm{TI} = \frac{I + s}{I + \alpha\,\mathrm{FP} + \beta\,\mathrm{FN} + s}, \qquad
    I = \sum p\,t, \quad \mathrm{FP} = \sum p\,(1 - t), \quad \mathrm{FN} = \sum (1 - p)\,t,

(with ``intersection="min"``, :math:`I = \sum \min(p, t)`, :math:`\mathrm{FP} = P - I` and
:math:`\mathrm{FN} = T - I`), with Dice at :math:`\alpha = \beta = \tfrac12`
(:math:`\frac{2I + 2s}{P + T + 2s}`) and Jaccard at :math:`\alpha = \beta = 1`
(:math:`\frac{I + s}{P + T - I + s}`); the loss is :math:`(1 - \mathrm{TI})^\gamma`. The
denominator is clamped at ``eps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from crossentropy import _formulas as fm
from crossentropy._lib.axes import normalize_axis
from crossentropy._lib.checks import check_unit_interval, shape_str
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_float,
    as_loss_float,
    cast,
    device_of,
    hyper,
    move_axis,
    namespace,
    quiet,
    restore_dtype,
)
from crossentropy._lib.policy import Validate, reads
from crossentropy._lib.reduction import divide, reduce
from crossentropy.losses.classification import index_targets
from crossentropy.losses.options import Hyper, OverlapOptions

__all__ = ["dice_loss", "jaccard_loss", "overlap_loss", "tversky_loss"]

Mode = Literal["binary", "multiclass", "multilabel"]
Aggregate = Literal["batch", "sample", "global"]
Absent = Literal["zero", "skip", "keep"]


def _probabilities_and_targets(
    xp: Namespace, x: Array, t: Array, o: OverlapOptions, check: bool
) -> tuple[Array, Array]:
    """Probabilities and targets as ``(N, C, S)`` arrays, ignored pixels zeroed in both."""
    if math.prod(x.shape) == 0:
        raise ValueError(f"input must not be empty; got shape {shape_str(x.shape)}")
    n = x.shape[0] if x.ndim else 1
    mode = o.mode
    given_x, given_t = x, t  # as given: a bad value is named at its index there
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
        ax = 1 if o.axis is None else normalize_axis(o.axis, x.ndim)
        shape = tuple(x.shape)
        x = move_axis(xp, x, ax, 1)
        soft_target = mode == "multilabel" or xp.isdtype(t.dtype, "real floating")
        if soft_target:
            if tuple(t.shape) != shape:
                raise ValueError(
                    f"target must have the shape of input {shape_str(shape)} in {mode} mode; "
                    f"got {shape_str(t.shape)}"
                )
            t = xp.reshape(move_axis(xp, t, ax, 1), (n, x.shape[1], -1))
        else:
            if not xp.isdtype(t.dtype, "integral"):
                raise TypeError(f"target must hold integer class labels; got dtype {t.dtype}")
            expected = (x.shape[0], *x.shape[2:])
            if tuple(t.shape) != expected:
                raise ValueError(
                    f"target of class indices must have shape {shape_str(expected)} for input of "
                    f"shape {shape_str(shape)}; got {shape_str(t.shape)}"
                    + (
                        " (class probabilities must be floating)"
                        if tuple(t.shape) == tuple(shape)
                        else ""
                    )
                )
        x = xp.reshape(x, (n, x.shape[1], -1))
    n_classes = x.shape[1]
    if o.from_logits:
        p = fm.softmax(xp, x, 1) if mode == "multiclass" else fm.sigmoid(xp, x)
    else:
        if check:
            check_unit_interval(xp, given_x, "input")
        p = x
    if soft_target:
        ignored = None if o.ignore_index is None else t == o.ignore_index
        t = cast(xp, as_float(xp, t, "target")[0], p.dtype)
        if check:
            given = as_float(xp, given_t, "target")[0]
            skip = None if o.ignore_index is None else given_t == o.ignore_index
            check_unit_interval(xp, given, "target", skip=skip)
        if ignored is not None:
            t = xp.where(ignored, xp.zeros_like(t), t)
            p = xp.where(ignored, xp.zeros_like(p), p)
        return p, t
    it = index_targets(xp, t, n_classes, o.ignore_index, check=check)  # errors at t's indices

    def flat(a: Array) -> Array:
        return xp.reshape(a, (n, -1))

    classes = xp.reshape(
        xp.arange(n_classes, dtype=it.labels.dtype, device=device_of(p)), (1, -1, 1)
    )
    onehot = cast(xp, xp.expand_dims(flat(it.labels), axis=1) == classes, p.dtype)
    if o.ignore_index is None and it.bad is None:  # every pixel counts
        return p, onehot
    keep = cast(xp, xp.expand_dims(flat(it.valid), axis=1), p.dtype)
    if it.bad is not None:  # unchecked labels out of range poison their sample with NaN
        bad = xp.expand_dims(flat(it.bad), axis=1)
        keep = xp.where(bad, xp.full_like(keep, math.nan), keep)
    return p * keep, onehot * keep


def overlap_loss(input: Array, target: Array, o: OverlapOptions) -> Array:
    """The one home of the overlap losses (see the module's formula)."""
    xp, (x, t) = namespace(input, target, names=["input", "target"])
    xf, out_dtype = as_loss_float(xp, x, "input")
    check = reads(o.validate, xf, t)
    with quiet(xf):
        p, tt = _probabilities_and_targets(xp, xf, t, o, check)
        a, b = hyper(xp, o.alpha, p, "alpha"), hyper(xp, o.beta, p, "beta")
        g, s = hyper(xp, o.gamma, p, "gamma"), hyper(xp, o.smooth, p, "smooth")
        dims: tuple[int, ...] = {"batch": (0, 2), "sample": (2,), "global": (0, 1, 2)}[o.aggregate]
        # FP = sum p (1 - t) = P - I and FN = sum (1 - p) t = T - I (or with min(p, t))
        inter = xp.sum(p * tt if o.intersection == "product" else xp.minimum(p, tt), axis=dims)
        total_t = xp.sum(tt, axis=dims)
        fp = xp.sum(p, axis=dims) - inter
        fn = total_t - inter
        den = inter + a * fp + b * fn + s
        e = o.eps
        score = (inter + s) / xp.maximum(den, xp.full_like(den, e))
        loss = -xp.log(xp.maximum(score, xp.full_like(score, e))) if o.log_loss else 1 - score
        if not (isinstance(g, float) and g == 1.0):
            # 0 (and negative rounding) through the zero branch, so the gradient of the power
            # at 0 is 0, not NaN; NaN stays NaN
            keep = (loss > 0) | xp.isnan(loss)
            loss = xp.where(keep, loss, xp.zeros_like(loss)) ** g
        # NaN (an unchecked bad label) must stay NaN, not count as an absent class.
        present = ~(total_t == 0)
        if o.classes is not None:
            n_classes = p.shape[1]
            idx = list(o.classes)
            if not idx or any(not 0 <= c < n_classes for c in idx):
                raise ValueError(f"classes must list class indices in [0, {n_classes}); got {idx}")
            sel = xp.asarray(idx, device=device_of(loss))
            loss = xp.take(loss, sel, axis=loss.ndim - 1)
            present = xp.take(present, sel, axis=present.ndim - 1)
        if o.absent in ("zero", "skip"):  # an absent class's loss is 0, unless it is NaN
            loss = xp.where(present | xp.isnan(loss), loss, xp.zeros_like(loss))
        if o.absent == "skip" and o.reduction == "mean":
            count = xp.sum(cast(xp, present, loss.dtype))
            out = divide(xp, xp.sum(loss), count, o.empty_mean)
        else:
            out = reduce(xp, loss, o.reduction, empty_mean=o.empty_mean)
    return restore_dtype(xp, out, out_dtype)


def tversky_loss(
    input: Array,
    target: Array,
    *,
    alpha: Hyper = 0.5,
    beta: Hyper = 0.5,
    gamma: Hyper = 1.0,
    mode: Mode = "binary",
    from_logits: bool = True,
    smooth: Hyper = 0.0,
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
    validate: Validate | None = None,
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

    Parameters
    ----------
    input : array_like
        Logits (probabilities with ``from_logits=False``). ``"binary"``: ``(N, ...)``, one
        class; ``"multiclass"`` and ``"multilabel"``: ``(N, C, ...)``, classes on ``axis``.
    target : array_like
        ``"binary"``: 0/1 (or soft) targets with the input's elements; ``"multiclass"``:
        class indices ``(N, ...)`` or probabilities of the input's shape; ``"multilabel"``: 0/1
        targets of the input's shape.
    alpha : float, default 0.5
        Weight of the false positives.
    beta : float, default 0.5
        Weight of the false negatives.
    gamma : float, default 1.0
        Focal exponent (> 0) applied to each class's loss (also with ``log_loss``).
    mode : {"binary", "multiclass", "multilabel"}, default "binary"
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
        (segmentation-models-pytorch >= 0.4, for soft targets); equal for 0/1 targets. Either
        way :math:`\mathrm{FP} = P - I` and :math:`\mathrm{FN} = T - I`.
    log_loss : bool, default False
        Return :math:`-\log(\mathrm{score})` instead of :math:`1 - \mathrm{score}`.
    reduction : {"mean", "sum", "none"}, default "mean"
        Over the per-class (or per-sample-and-class) losses.
    axis : int, optional
        The class axis (default 1), of the multiclass and multilabel modes.
    empty_mean : float, default nan
        The mean when no cell is counted (``absent="skip"`` and no class present).
    validate : {None, "auto", True, False}
        When labels and probabilities are checked (None: the mode in force;
        see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> p, g = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]
    >>> ce.tversky_loss(p, g, alpha=0.3, beta=0.7, from_logits=False).round(6)
    np.float64(0.226804)
    """
    return overlap_loss(input, target, OverlapOptions.from_arguments(locals()))


def dice_loss(
    input: Array,
    target: Array,
    *,
    mode: Mode = "binary",
    from_logits: bool = True,
    smooth: Hyper = 0.0,
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
    validate: Validate | None = None,
) -> Array:
    r"""Soft Dice loss: one minus the Dice coefficient (the F1 score of soft counts).

    .. math::

        \ell = 1 - \frac{2I + 2s}{P + T + 2s}, \qquad I = \sum p\,t, \quad P = \sum p,
        \quad T = \sum t

    the Tversky loss at :math:`\alpha = \beta = \tfrac12`. ``smooth`` :math:`s` is
    segmentation-models-pytorch >= 0.4's and optax's; Keras' ``Dice`` is ``smooth=0`` with
    ``from_logits=False, aggregate="global", absent="keep"``; segmentation-models-pytorch < 0.4
    wrote :math:`(2I + s)/(P + T + s)`, which is ``smooth=s/2`` here.

    Parameters
    ----------
    input : array_like
        Logits (probabilities with ``from_logits=False``). ``"binary"``: ``(N, ...)``, one
        class; ``"multiclass"`` and ``"multilabel"``: ``(N, C, ...)``, classes on ``axis``.
    target : array_like
        ``"binary"``: 0/1 (or soft) targets with the input's elements; ``"multiclass"``:
        class indices ``(N, ...)`` or probabilities of the input's shape; ``"multilabel"``: 0/1
        targets of the input's shape.
    mode : {"binary", "multiclass", "multilabel"}, default "binary"
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
        (segmentation-models-pytorch >= 0.4, for soft targets); equal for 0/1 targets. Either
        way :math:`\mathrm{FP} = P - I` and :math:`\mathrm{FN} = T - I`.
    log_loss : bool, default False
        Return :math:`-\log(\mathrm{score})` instead of :math:`1 - \mathrm{score}`.
    reduction : {"mean", "sum", "none"}, default "mean"
        Over the per-class (or per-sample-and-class) losses.
    axis : int, optional
        The class axis (default 1), of the multiclass and multilabel modes.
    empty_mean : float, default nan
        The mean when no cell is counted (``absent="skip"`` and no class present).
    validate : {None, "auto", True, False}
        When labels and probabilities are checked (None: the mode in force;
        see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> p, g = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]
    >>> ce.dice_loss(p, g, from_logits=False).round(6)
    np.float64(0.210526)
    >>> ce.dice_loss(p, g, from_logits=False, smooth=1.0).round(6)
    np.float64(0.137931)
    """
    options = OverlapOptions.from_arguments(locals(), alpha=0.5, beta=0.5, gamma=1.0)
    return overlap_loss(input, target, options)


def jaccard_loss(
    input: Array,
    target: Array,
    *,
    mode: Mode = "binary",
    from_logits: bool = True,
    smooth: Hyper = 0.0,
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
    validate: Validate | None = None,
) -> Array:
    r"""Soft Jaccard (IoU) loss: one minus intersection over union of soft counts.

    .. math::

        \ell = 1 - \frac{I + s}{P + T - I + s}

    the Tversky loss at :math:`\alpha = \beta = 1` (segmentation-models-pytorch's
    ``JaccardLoss``).

    Parameters
    ----------
    input : array_like
        Logits (probabilities with ``from_logits=False``). ``"binary"``: ``(N, ...)``, one
        class; ``"multiclass"`` and ``"multilabel"``: ``(N, C, ...)``, classes on ``axis``.
    target : array_like
        ``"binary"``: 0/1 (or soft) targets with the input's elements; ``"multiclass"``:
        class indices ``(N, ...)`` or probabilities of the input's shape; ``"multilabel"``: 0/1
        targets of the input's shape.
    mode : {"binary", "multiclass", "multilabel"}, default "binary"
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
        (segmentation-models-pytorch >= 0.4, for soft targets); equal for 0/1 targets. Either
        way :math:`\mathrm{FP} = P - I` and :math:`\mathrm{FN} = T - I`.
    log_loss : bool, default False
        Return :math:`-\log(\mathrm{score})` instead of :math:`1 - \mathrm{score}`.
    reduction : {"mean", "sum", "none"}, default "mean"
        Over the per-class (or per-sample-and-class) losses.
    axis : int, optional
        The class axis (default 1), of the multiclass and multilabel modes.
    empty_mean : float, default nan
        The mean when no cell is counted (``absent="skip"`` and no class present).
    validate : {None, "auto", True, False}
        When labels and probabilities are checked (None: the mode in force;
        see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> p, g = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]
    >>> ce.jaccard_loss(p, g, from_logits=False).round(6)
    np.float64(0.347826)
    """
    options = OverlapOptions.from_arguments(locals(), alpha=1.0, beta=1.0, gamma=1.0)
    return overlap_loss(input, target, options)
