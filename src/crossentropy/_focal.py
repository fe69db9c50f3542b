r"""Focal losses (Lin et al. 2017): cross-entropy that down-weights well-classified examples.

``sigmoid_focal_loss`` is the binary / multi-label form with torchvision's numbers;
``focal_loss`` is the multi-class softmax form, which is exactly :func:`cross_entropy` at
``gamma=0`` without ``alpha``. Both compute :math:`(1 - p_t)^\gamma` as
:math:`\exp(\gamma \log(1 - p_t))` with a stable :math:`\log(1 - p_t)`, so values and gradients
stay finite as :math:`p_t \to 1`.
"""

from __future__ import annotations

import math
from typing import Literal

from crossentropy._classification import (
    Clip,
    _bce_terms,
    _binary_options,
    _check_clip,
    _cross_entropy,
    _prepare_binary,
    _prob_log,
    _smooth_binary,
    _weighted_reduce,
)
from crossentropy._lib import Array, Namespace, restore_dtype
from crossentropy._lib._reduction import Reduction
from crossentropy._lib._validation import check_finite_number, check_in_unit_interval
from crossentropy._special import log_sigmoid_, safe_log

__all__ = ["focal_loss", "sigmoid_focal_loss"]


def log_one_minus_pt(xp: Namespace, log_p: Array, log_q: Array, t: Array) -> Array:
    """``log(1 - p_t) = log(t (1 - p) + (1 - t) p)`` as a log-sum-exp of the two branches."""
    return xp.logaddexp(safe_log(xp, t) + log_q, safe_log(xp, 1 - t) + log_p)


def class_balance(t: Array, alpha: float | None, apply: bool) -> Array | None:
    """``alpha_t = alpha t + (1 - alpha)(1 - t)``, or None when α is off (None, < 0, or not
    applied)."""
    if alpha is None or alpha < 0 or not apply:
        return None
    return alpha * t + (1 - alpha) * (1 - t)


def sigmoid_focal_loss(
    input: Array,
    target: Array,
    *,
    weight: Array | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "none",
    apply_class_balancing: bool = True,
    from_logits: bool = True,
    clip: Clip = "torch",
    label_smoothing: float = 0.0,
    smoothing_mode: Literal["uniform", "flip"] = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
) -> Array:
    r"""Binary focal loss on logits, element-wise (RetinaNet; torchvision's numbers).

    .. math::

        \ell = -\alpha_t (1 - p_t)^\gamma \log p_t, \qquad
        p_t = \begin{cases} p & t = 1 \\ 1 - p & t = 0 \end{cases}, \qquad
        \alpha_t = \alpha t + (1 - \alpha)(1 - t)

    with :math:`p = \sigma(x)`; for soft targets :math:`-\log p_t` is the binary cross-entropy
    and :math:`1 - p_t = t(1 - p) + (1 - t)p`.

    Follows :func:`torchvision.ops.sigmoid_focal_loss`: ``alpha=0.25``, ``gamma=2``,
    ``reduction="none"``; a negative ``alpha`` disables the α term. ``alpha=None`` is optax's
    ``sigmoid_focal_loss`` default; ``apply_class_balancing=False`` is Keras'
    ``BinaryFocalCrossentropy`` default (α ignored). segmentation-models-pytorch's
    ``FocalLoss(mode="binary")`` is ``alpha=None, reduction="mean"``; its multi-class mode sums,
    over the classes, this loss's mean on each one-hot column. With ``gamma=0`` and no α it is
    :func:`binary_cross_entropy_with_logits`.

    Parameters
    ----------
    input : array_like
        Logits (probabilities with ``from_logits=False``).
    target : array_like
        Targets in [0, 1], the input's shape.
    weight : array_like, optional
        Non-negative element weights, broadcast to the input.
    alpha : float or None, default 0.25
        Weight of the positive class in [0, 1]; None or negative: no α term.
    gamma : float, default 2.0
        Focusing parameter, >= 0.
    reduction : {"none", "mean", "sum", "batchmean"}, default "none"
        How the element losses are combined.
    apply_class_balancing : bool, default True
        False ignores ``alpha`` (Keras' default).
    from_logits : bool, default True
        False: ``input`` holds probabilities, logged under ``clip``.
    clip : {"torch", "sklearn", "keras", None} or float, default "torch"
        Probability clipping with ``from_logits=False`` (see :func:`binary_cross_entropy`).
    label_smoothing : float, default 0.0
        Applied to the target first, as in :func:`binary_cross_entropy_with_logits`.
    smoothing_mode : {"uniform", "flip"}, default "uniform"
        ``t(1-ε)+ε/2`` (Keras) or ``t(1-ε)+(1-t)ε`` (segmentation-models-pytorch).
    empty_mean : float, default nan
        The mean of an empty input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of a weighted ``"mean"``: the element count, or the sum of the weights.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.sigmoid_focal_loss([2.0, -1.0, 0.5], [1.0, 1.0, 0.0]).round(6)
    array([0.000451, 0.175467, 0.283059])
    >>> x, t = [2.0, -1.0, 0.5], [1.0, 1.0, 0.0]
    >>> ce.sigmoid_focal_loss(x, t, alpha=None, reduction="mean").round(10)
    np.float64(0.3603611557)
    """
    xp, xf, tf, w, _, out_dtype = _prepare_binary(input, target, weight, None)
    red, eps, mode, empty, divisor = _binary_options(
        reduction, label_smoothing, smoothing_mode, empty_mean, mean_divisor
    )
    g = check_finite_number(gamma, "gamma", low=0.0)
    a = None if alpha is None else check_finite_number(alpha, "alpha", high=1.0)
    if not isinstance(apply_class_balancing, bool):
        raise TypeError("apply_class_balancing must be a bool")
    if not isinstance(from_logits, bool):
        raise TypeError(f"from_logits must be a bool; got {type(from_logits).__name__}")
    clip = _check_clip(clip)
    if from_logits:
        log_p, log_q = log_sigmoid_(xp, xf), log_sigmoid_(xp, -xf)
    else:
        check_in_unit_interval(xp, xf, "input")
        log_p, log_q = _prob_log(xp, xf, clip, out_dtype), _prob_log(xp, 1 - xf, clip, out_dtype)
    t = _smooth_binary(tf, eps, mode)
    per = _bce_terms(xp, log_p, log_q, t, None)
    if g:
        per = per * xp.exp(g * log_one_minus_pt(xp, log_p, log_q, t))
    alpha_t = class_balance(t, a, apply_class_balancing)
    if alpha_t is not None:
        per = per * alpha_t
    out = _weighted_reduce(xp, per, w, red, empty, divisor)
    return restore_dtype(xp, out, out_dtype)


def focal_loss(
    input: Array,
    target: Array,
    *,
    weight: Array | None = None,
    alpha: float | Array | None = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    axis: int | None = None,
    from_logits: bool = True,
    clip: Clip = None,
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
    weight_mode: Literal["per_class", "per_sample"] = "per_class",
) -> Array:
    r"""Multi-class (softmax) focal loss, with the conventions of :func:`cross_entropy`.

    .. math::

        \ell_n = -w_{y_n}\, \alpha_{y_n} (1 - p_{n,y_n})^\gamma \log p_{n,y_n}, \qquad
        p_n = \operatorname{softmax}(x_n)

    and for probability targets
    :math:`\ell_n = -\sum_c w_c \alpha_c t_{n,c} (1 - p_{n,c})^\gamma \log p_{n,c}`
    (Keras ``CategoricalFocalCrossentropy``). Shapes, ``ignore_index``, ``weight``,
    ``label_smoothing``, reductions and the ``"mean"`` divisor (:math:`\sum_n w_{y_n}`; α is
    not in the divisor) are those of :func:`cross_entropy`, which this is exactly at
    ``gamma=0`` without ``alpha``.

    Parameters
    ----------
    input : array_like
        Logits, classes on ``axis`` (probabilities with ``from_logits=False``).
    target : array_like
        Integer class indices, or class probabilities of the input's shape.
    weight : array_like, optional
        A non-negative weight per class.
    alpha : float or array_like, optional
        A scalar, or one non-negative value per class, multiplying each class's term.
    gamma : float, default 2.0
        Focusing parameter, >= 0.
    ignore_index, reduction, label_smoothing, axis, from_logits, clip, empty_mean,
    mean_divisor, weight_mode
        As in :func:`cross_entropy`.

    Examples
    --------
    >>> import crossentropy as ce
    >>> x, y = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2]
    >>> float(ce.focal_loss(x, y, gamma=0.0)) == float(ce.cross_entropy(x, y))
    True
    >>> ce.focal_loss(x, y, gamma=2.0).round(6)
    np.float64(0.424313)
    """
    g = check_finite_number(gamma, "gamma", low=0.0)
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        axis=axis,
        from_logits=from_logits,
        z_loss=0.0,
        softcap=None,
        clip=clip,
        empty_mean=empty_mean,
        mean_divisor=mean_divisor,
        weight_mode=weight_mode,
        gamma=g,
        alpha=alpha,
    )
