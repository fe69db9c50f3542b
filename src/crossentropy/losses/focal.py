r"""Focal losses (Lin et al. 2017): cross-entropy that down-weights well-classified examples.

``sigmoid_focal_loss`` is the binary / multi-label form with torchvision's numbers, on the
sigmoid family's engine; ``focal_loss`` is the multi-class softmax form, on the softmax
family's engine, and exactly :func:`~crossentropy.cross_entropy` at ``gamma=0`` without
``alpha``. The softmax form computes :math:`(1 - p_t)^\gamma` as
:math:`\exp(\gamma \log(1 - p_t))` with a stable :math:`\log(1 - p_t)`; the sigmoid form on
logits as a power of :math:`1 - p_t = t\sigma(-x) + (1 - t)\sigma(x)`, each sigmoid without
cancellation (:func:`crossentropy._formulas.binary_logit_loss`). Values and gradients stay
finite as :math:`p_t \to 1`.
"""

from __future__ import annotations

import math
from typing import Any

from crossentropy._lib.namespace import Array, is_array
from crossentropy._lib.policy import Validate
from crossentropy._lib.reduction import MeanDivisor, Reduction
from crossentropy.losses.binary import binary_loss
from crossentropy.losses.classification import softmax_loss
from crossentropy.losses.options import BinaryOptions, Clip, Hyper, SoftmaxOptions

__all__ = ["focal_loss", "sigmoid_focal_loss", "split_alpha"]


def split_alpha(alpha: Any) -> tuple[Any, Any]:
    """The focal ``alpha`` as ``(scalar, per-class array)``, one of them None: a scalar (or a
    0-d array) is an option, a sequence or a 1-D array an array argument."""
    vector = isinstance(alpha, (list, tuple)) or (is_array(alpha) and getattr(alpha, "ndim", 0) > 0)
    return (None, alpha) if vector else (alpha, None)


def sigmoid_focal_loss(
    input: Array,
    target: Array,
    alpha: Hyper | None = 0.25,
    gamma: Hyper = 2.0,
    reduction: Reduction = "none",
    *,
    weight: Array | None = None,
    apply_class_balancing: bool = True,
    from_logits: bool = True,
    clip: Clip = "torch",
    label_smoothing: Hyper = 0.0,
    smoothing_mode: str = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: MeanDivisor = "auto",
    validate: Validate | None = None,
) -> Array:
    r"""Binary focal loss on logits, element-wise (RetinaNet; torchvision's numbers).

    .. math::

        \ell = -\alpha_t (1 - p_t)^\gamma \log p_t, \qquad
        p_t = \begin{cases} p & t = 1 \\ 1 - p & t = 0 \end{cases}, \qquad
        \alpha_t = \alpha t + (1 - \alpha)(1 - t)

    with :math:`p = \sigma(x)`; for soft targets :math:`-\log p_t` is the binary cross-entropy
    and :math:`1 - p_t = t(1 - p) + (1 - t)p`.

    Follows :func:`torchvision.ops.sigmoid_focal_loss` (its positional parameters, and
    ``alpha=0.25``, ``gamma=2``, ``reduction="none"``); a negative ``alpha`` disables the α
    term. ``alpha=None`` is optax's ``sigmoid_focal_loss`` default;
    ``apply_class_balancing=False`` is Keras' ``BinaryFocalCrossentropy`` default (α ignored).
    segmentation-models-pytorch's ``FocalLoss(mode="binary")`` is ``alpha=None,
    reduction="mean"``. With ``gamma=0`` and no α it is
    :func:`binary_cross_entropy_with_logits`.

    Parameters
    ----------
    input : array_like
        Logits (probabilities with ``from_logits=False``).
    target : array_like
        Targets in [0, 1], the input's shape.
    alpha : float or None, default 0.25
        Weight of the positive class in [0, 1]; None or negative: no α term (may be a traced
        0-d array).
    gamma : float, default 2.0
        Focusing parameter, >= 0 (may be a traced 0-d array).
    reduction : {"none", "mean", "sum", "batchmean"}, default "none"
        How the element losses are combined.
    weight : array_like, optional
        Element weights, broadcast to the input (keyword-only, as every option after
        torchvision's ``inputs, targets, alpha, gamma, reduction``).
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
    validate : {None, "auto", True, False}
        When values are checked (None: the mode in force; see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.sigmoid_focal_loss([2.0, -1.0, 0.5], [1.0, 1.0, 0.0]).round(6)
    array([0.000451, 0.175467, 0.283059])
    >>> x, t = [2.0, -1.0, 0.5], [1.0, 1.0, 0.0]
    >>> ce.sigmoid_focal_loss(x, t, alpha=None, reduction="mean").round(10)
    np.float64(0.3603611557)
    """
    options = BinaryOptions.from_arguments(locals(), focal=True)
    return binary_loss(input, target, weight, options)


def focal_loss(
    input: Array,
    target: Array,
    *,
    weight: Array | None = None,
    alpha: Hyper | Array | None = None,
    gamma: Hyper = 2.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: Hyper = 0.0,
    axis: int | tuple[int, ...] | None = None,
    from_logits: bool = True,
    clip: Clip = None,
    empty_mean: float = math.nan,
    mean_divisor: MeanDivisor = "auto",
    weight_mode: str = "per_class",
    where: Array | None = None,
    validate: Validate | None = None,
) -> Array:
    r"""Multi-class (softmax) focal loss, with the conventions of :func:`cross_entropy`.

    .. math::

        \ell_n = -w_{y_n}\, \alpha_{y_n} (1 - p_{n,y_n})^\gamma \log p_{n,y_n}, \qquad
        p_n = \operatorname{softmax}(x_n)

    and for probability targets
    :math:`\ell_n = -\sum_c w_c \alpha_c t_{n,c} (1 - p_{n,c})^\gamma \log p_{n,c}`
    (Keras ``CategoricalFocalCrossentropy``). Shapes, ``ignore_index``, ``weight``,
    ``label_smoothing``, ``where``, reductions and the ``"mean"`` divisor
    (:math:`\sum_n w_{y_n}`; α is not in the divisor) are those of :func:`cross_entropy`, which
    this is exactly at ``gamma=0`` without ``alpha``.

    Parameters
    ----------
    input : array_like
        Logits, classes on ``axis`` (probabilities with ``from_logits=False``).
    target : array_like
        Integer class indices, or class probabilities of the input's shape.
    weight : array_like, optional
        A weight per class.
    alpha : float or array_like, optional
        A scalar, or one non-negative value per class, multiplying each class's term.
    gamma : float, default 2.0
        Focusing parameter, >= 0 (may be a traced 0-d array).
    ignore_index : int, default -100
        Class-index targets equal to it contribute nothing, as in :func:`cross_entropy`.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the per-element losses are combined.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`, as in :func:`cross_entropy`.
    axis : int or tuple of int, optional
        The class axis, as in :func:`cross_entropy` (default PyTorch's: 1, or 0 for 1-D input).
    from_logits : bool, default True
        If False, ``input`` holds probabilities (no softmax).
    clip : {None, "torch", "sklearn", "keras"} or float, default None
        With ``from_logits=False``: how probabilities are clipped before the log, as in
        :func:`cross_entropy`.
    empty_mean : float, default nan
        Value of a mean over zero valid targets: NaN as PyTorch, 0.0 as Keras and Liger.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"``: the sum of the target weights or the number of valid elements,
        as in :func:`cross_entropy`.
    weight_mode : {"per_class", "per_sample"}, default "per_class"
        How class weights meet label smoothing and soft targets, as in :func:`cross_entropy`.
    where : array_like of bool, optional
        optax's mask, as in :func:`cross_entropy`: of the target's (batch) shape, False
        elements contribute 0 and leave the mean's divisor; of the input's shape, False logits
        are left out of the softmax (logits only).
    validate : {None, "auto", True, False}
        When label ranges and probabilities are checked; default: the mode in force
        (:func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> x, y = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2]
    >>> float(ce.focal_loss(x, y, gamma=0.0)) == float(ce.cross_entropy(x, y))
    True
    >>> ce.focal_loss(x, y, gamma=2.0).round(6)
    np.float64(0.424313)
    """
    scalar, vector = split_alpha(alpha)
    options = SoftmaxOptions.from_arguments({**locals(), "alpha": scalar}, focal=True)
    return softmax_loss(input, target, weight, options, alpha=vector, where=where)
