r"""The sigmoid family: binary cross-entropy on probabilities and on logits, and the binary
focal loss, element-wise.

``binary_cross_entropy`` and ``binary_cross_entropy_with_logits`` take PyTorch's names,
positional order and defaults and give PyTorch's numbers. One engine serves the family
(:func:`binary_loss`, :func:`binary_value_and_grad`); on PyTorch tensors ATen computes the
calls it has (:func:`aten_applies`, :func:`aten_loss`), the generic :func:`forward` everything
else, and is the reference tests hold ATen against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from crossentropy import _formulas as fm
from crossentropy._lib.checks import check_unit_interval, element_weight, first_index, shape_str
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_loss_float,
    hyper,
    is_torch,
    namespace,
    quiet,
    restore_dtype,
    with_target,
)
from crossentropy._lib.policy import Validate, reads
from crossentropy._lib.reduction import (
    MeanDivisor,
    Reduction,
    reduce,
    reduction_scale,
    weight_total,
)
from crossentropy.losses.options import BinaryOptions, Clip, Hyper, is_off, is_on

__all__ = [
    "BinaryInputs",
    "aten_applies",
    "aten_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_loss",
    "binary_value_and_grad",
    "forward",
    "gradient",
    "prepare",
    "smooth_binary",
]


@dataclass(frozen=True)
class BinaryInputs:
    """Validated inputs of one call, in the compute dtype: ``x`` and ``target`` of one shape,
    element weights ``weight`` and ``pos_weight`` broadcastable to it."""

    xp: Namespace
    x: Array
    target: Array
    weight: Array | None
    pos_weight: Array | None
    out_dtype: Any  # the loss's: input's and a floating target's promoted
    input_dtype: Any  # input's (its gradient's, and the precision probabilities are clipped at)
    check: bool


def _check_probabilities(xp: Namespace, p: Array, name: str) -> None:
    """Probabilities in [0, 1]; NaN refused too (as PyTorch's ``binary_cross_entropy``)."""
    idx = first_index(xp, xp.isnan(p))
    if idx is not None:
        raise ValueError(f"{name} must hold probabilities in [0, 1]; got nan at index {idx}")
    check_unit_interval(xp, p, name)


def prepare(
    input: Array,
    target: Array,
    weight: Array | None,
    pos_weight: Array | None,
    o: BinaryOptions,
) -> BinaryInputs:
    """Resolve, convert and check the arrays of a call."""
    xp, (x, t, w, pw) = namespace(
        input, target, weight, pos_weight, names=["input", "target", "weight", "pos_weight"]
    )
    xf, input_dtype = as_loss_float(xp, x, "input")
    if tuple(t.shape) != tuple(xf.shape):
        raise ValueError(
            f"target must have the shape of input {shape_str(xf.shape)}; got {shape_str(t.shape)}"
        )
    xf, tf, out_dtype = with_target(xp, xf, input_dtype, t, target)
    check = reads(o.validate, xf, tf, w, pw)
    if check:
        if o.from_logits:  # a target outside [0, 1] or NaN is refused (PyTorch computes on
            check_unit_interval(xp, tf, "target")  # with logits: a number, or NaN) ...
        else:  # ... and with probabilities, as PyTorch refuses them and a NaN probability
            _check_probabilities(xp, xf, "input")
            _check_probabilities(xp, tf, "target")
    wf = None if w is None else element_weight(xp, w, "weight", xf)
    pwf = None if pw is None else element_weight(xp, pw, "pos_weight", xf)
    return BinaryInputs(xp, xf, tf, wf, pwf, out_dtype, input_dtype, check)


def smooth_binary(t: Array, eps: Any, mode: str) -> Array:
    """Binary label smoothing: ``t(1-ε)+ε/2`` (``"uniform"``, Keras) or ``t(1-ε)+(1-t)ε``
    (``"flip"``, segmentation-models-pytorch)."""
    if is_off(eps):
        return t
    if mode == "uniform":
        return t * (1 - eps) + eps / 2
    return t * (1 - eps) + (1 - t) * eps


def _bce_terms(xp: Namespace, log_p: Array, log_q: Array, t: Array, pw: Array | None) -> Array:
    """Element-wise ``-(pw t log p + (1 - t) log q)`` with ``0 log 0 = 0``."""
    pos = fm.mul_log(xp, t, log_p)
    if pw is not None:
        pos = pw * pos
    return -(pos + fm.mul_log(xp, 1 - t, log_q))


def _logs(inp: BinaryInputs, o: BinaryOptions) -> tuple[Array, Array]:
    """``log p`` and ``log(1 - p)`` of probabilities, under the clipping convention."""
    xp, x = inp.xp, inp.x
    dt = inp.input_dtype
    return fm.prob_log(xp, x, o.clip, dt), fm.prob_log1m(xp, x, o.clip, dt)


def _denominator(inp: BinaryInputs, o: BinaryOptions, shape: tuple[int, ...]) -> Array | None:
    if inp.weight is not None and o.mean_divisor == "weight":
        return weight_total(inp.xp, inp.weight, shape)
    return None


def forward(inp: BinaryInputs, o: BinaryOptions) -> Array:
    """The loss on any array library."""
    xp, x = inp.xp, inp.x
    t = smooth_binary(
        inp.target, hyper(xp, o.label_smoothing, x, "label_smoothing"), o.smoothing_mode
    )
    gamma = hyper(xp, o.gamma, x, "gamma")
    gamma = gamma if gamma is not None and is_on(gamma) else None
    alpha = hyper(xp, o.balance, x, "alpha")
    if o.from_logits:
        per = fm.binary_logit_loss(xp, x, t, pos_weight=inp.pos_weight, gamma=gamma, alpha=alpha)
    else:
        log_p, log_q = _logs(inp, o)
        per = _bce_terms(xp, log_p, log_q, t, inp.pos_weight)
        if gamma is not None:
            per = per * xp.exp(gamma * fm.log_one_minus_pt(xp, log_p, log_q, t))
        alpha_t = fm.class_balance(t, alpha)
        if alpha_t is not None:
            per = per * alpha_t
    if inp.weight is not None:
        per = per * inp.weight
    den = _denominator(inp, o, tuple(per.shape))
    return reduce(xp, per, o.reduction, denominator=den, empty_mean=o.empty_mean)


def gradient(inp: BinaryInputs, o: BinaryOptions) -> Array:
    r"""The gradient with respect to the logits (``from_logits=True``).

    Binary cross-entropy :math:`B`: :math:`w G` with :math:`G = (1 - t)\sigma(x) - p_w t
    \sigma(-x)`. Focal, with :math:`M = (1 - p_t)^\gamma` and
    :math:`1 - p_t = t\sigma(-x) + (1 - t)\sigma(x)`:
    :math:`\alpha_t M (\gamma (1 - 2t) \frac{\sigma(x)\sigma(-x)}{1 - p_t} B + G)`,
    the ratio formed in log space so it stays finite as :math:`p_t \to 1`.
    """
    if not o.from_logits:
        raise ValueError("the closed-form gradient is on logits; it needs from_logits=True")
    xp, x = inp.xp, inp.x
    t = smooth_binary(
        inp.target, hyper(xp, o.label_smoothing, x, "label_smoothing"), o.smoothing_mode
    )
    pos = t if inp.pos_weight is None else inp.pos_weight * t
    g = (1 - t) * fm.sigmoid(xp, x) - pos * fm.sigmoid(xp, -x)  # no cancellation
    gamma = hyper(xp, o.gamma, x, "gamma")
    if gamma is not None and is_on(gamma):
        log_p, log_q = fm.log_sigmoid(xp, x), fm.log_sigmoid(xp, -x)
        ce = _bce_terms(xp, log_p, log_q, t, inp.pos_weight)
        log_1m_pt = fm.log_one_minus_pt(xp, log_p, log_q, t)
        finite = log_1m_pt > -math.inf
        rho = xp.exp(log_p + log_q - xp.where(finite, log_1m_pt, xp.zeros_like(log_1m_pt)))
        rho = xp.where(finite, rho, xp.zeros_like(rho))
        g = xp.exp(gamma * log_1m_pt) * (gamma * (1 - 2 * t) * rho * ce + g)
    alpha_t = fm.class_balance(t, hyper(xp, o.balance, x, "alpha"))
    if alpha_t is not None:
        g = g * alpha_t
    if inp.weight is not None:
        g = g * inp.weight
    den = _denominator(inp, o, tuple(g.shape))
    g = g * reduction_scale(xp, g, o.reduction, denominator=den)
    return restore_dtype(xp, g, inp.input_dtype)


# ---------------------------------------------------------------------------------------------
# ATen delegation (PyTorch): one predicate, next to the delegation.
# ---------------------------------------------------------------------------------------------


def aten_applies(inp: BinaryInputs, o: BinaryOptions) -> bool:
    """Whether ATen computes this call: PyTorch tensors, no smoothing or focal term,
    PyTorch's divisor, and for probabilities PyTorch's clamp on values already checked
    (ATen refuses NaN and asserts on accelerators for values outside [0, 1])."""
    if not is_torch(inp.x) or o.gamma is not None or is_on(o.label_smoothing):
        return False
    if o.mean_divisor == "weight" and inp.weight is not None:
        return False
    if not math.isnan(o.empty_mean):
        return False
    return o.from_logits or (o.clip == "torch" and inp.check)


def aten_loss(inp: BinaryInputs, o: BinaryOptions) -> Array:
    """The loss through ATen (see :func:`aten_applies`); ``batchmean`` is the sum divided by
    the batch size."""
    import torch.nn.functional as F

    red = "sum" if o.reduction == "batchmean" else o.reduction
    if o.from_logits:
        out = F.binary_cross_entropy_with_logits(
            inp.x, inp.target, weight=inp.weight, pos_weight=inp.pos_weight, reduction=red
        )
    else:
        w = None if inp.weight is None else inp.weight.expand_as(inp.x)
        out = F.binary_cross_entropy(inp.x, inp.target, weight=w, reduction=red)
    if o.reduction == "batchmean":
        out = out / (inp.x.shape[0] if inp.x.ndim else 1)
    return out


# ---------------------------------------------------------------------------------------------
# Entry points and public functions.
# ---------------------------------------------------------------------------------------------


def binary_loss(
    input: Array,
    target: Array,
    weight: Array | None,
    o: BinaryOptions,
    *,
    pos_weight: Array | None = None,
) -> Array:
    """The loss of a sigmoid-family call: ATen where :func:`aten_applies`, else
    :func:`forward`."""
    inp = prepare(input, target, weight, pos_weight, o)
    if aten_applies(inp, o):
        out = aten_loss(inp, o)
    else:
        with quiet(inp.x):
            out = forward(inp, o)
    return restore_dtype(inp.xp, out, inp.out_dtype)


def binary_value_and_grad(
    input: Array,
    target: Array,
    weight: Array | None,
    o: BinaryOptions,
    *,
    pos_weight: Array | None = None,
) -> tuple[Array, Array]:
    """The loss (generic path) and its gradient with respect to the logits."""
    inp = prepare(input, target, weight, pos_weight, o)
    with quiet(inp.x):
        value = forward(inp, o)
        g = gradient(inp, o)
    return restore_dtype(inp.xp, value, inp.out_dtype), g


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    *,
    clip: Clip = "torch",
    label_smoothing: Hyper = 0.0,
    smoothing_mode: str = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: MeanDivisor = "auto",
    validate: Validate | None = None,
) -> Array:
    r"""Binary cross-entropy between predicted probabilities and targets, element-wise.

    .. math::

        \ell = -w \bigl(t \log p + (1 - t) \log (1 - p)\bigr)

    Follows :func:`torch.nn.functional.binary_cross_entropy` (same positional parameters and
    numbers): ``input`` and ``target`` have the same shape, ``weight`` broadcasts to it, each
    log is clamped at -100 so ``p = 0`` or 1 gives a finite loss, ``reduction="mean"`` averages
    over all elements, and a probability outside [0, 1] or NaN is refused (where values are
    checked, see ``validate``). For multi-label classification as the tutorials define it (sum
    over classes, mean over the batch) use ``reduction="batchmean"``.

    Parameters
    ----------
    input : array_like
        Probabilities in [0, 1].
    target : array_like
        Targets in [0, 1] (hard 0/1 labels or soft).
    weight : array_like, optional
        Element weights, broadcast to the input.
    size_average, reduce : bool, optional
        Deprecated (PyTorch's legacy arguments): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        ``"batchmean"`` is the sum divided by the size of the first axis.
    clip : {"torch", "sklearn", "keras", None} or float, default "torch"
        How probabilities meet the log. ``"torch"``: ``log`` clamped at -100.
        ``"sklearn"``: ``p`` clipped to ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of
        the input's dtype (:func:`sklearn.metrics.log_loss`). ``"keras"``: clipped to
        ``[1e-7, 1 - 1e-7]``. A float ``c``: clipped to ``[c, 1 - c]``. None: the plain log.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`, applied to the target.
    smoothing_mode : {"uniform", "flip"}, default "uniform"
        ``"uniform"``: :math:`t(1 - \varepsilon) + \varepsilon / 2` (Keras). ``"flip"``:
        :math:`t(1 - \varepsilon) + (1 - t)\varepsilon` (segmentation-models-pytorch).
    empty_mean : float, default nan
        The mean of an empty input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"`` when ``weight`` is given: the number of elements (PyTorch;
        "auto" and "count") or the sum of the weights broadcast to the input ("weight", as
        scikit-learn's ``sample_weight``).
    validate : {None, "auto", True, False}
        When probabilities are checked (None: the mode in force;
        see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.binary_cross_entropy([0.9, 0.2], [1.0, 0.0]).round(6)
    np.float64(0.164252)
    >>> ce.binary_cross_entropy([0.0], [1.0])  # torch's clamp: log 0 -> -100
    np.float64(100.0)
    >>> ce.binary_cross_entropy([0.0], [1.0], clip="keras").round(4)
    np.float64(16.1181)
    """
    options = BinaryOptions.from_arguments(locals(), from_logits=False)
    return binary_loss(input, target, weight, options)


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    pos_weight: Array | None = None,
    *,
    label_smoothing: Hyper = 0.0,
    smoothing_mode: str = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: MeanDivisor = "auto",
    validate: Validate | None = None,
) -> Array:
    r"""Binary cross-entropy on logits, element-wise, computed stably through log-sigmoid.

    .. math::

        \ell = -w \bigl(p_w\, t \log \sigma(x) + (1 - t) \log \sigma(-x)\bigr)

    using :math:`\log(1 - \sigma(x)) = \log \sigma(-x)`, finite for logits of any size.
    Follows :func:`torch.nn.functional.binary_cross_entropy_with_logits` (same positional
    parameters and numbers): ``weight`` and ``pos_weight`` (:math:`p_w`, broadcast along the
    last axis: one per class) broadcast to the input, ``reduction="mean"`` averages over all
    elements. Multi-label classification as the tutorials define it (sigmoid per class, binary
    cross-entropy summed over the classes, averaged over the batch) is
    ``reduction="batchmean"``. Logits and targets of two floating dtypes give the promoted
    dtype, as PyTorch's other losses do (PyTorch's op gives the target's: float16 for float32
    logits and float16 targets). On PyTorch tensors without smoothing, ATen computes it
    (PyTorch's numbers to the bit), whose formula keeps no digits of a loss far below 1 (2e-9
    at logit -20 and target 0 comes out 3e-7 relative off, 4e-18 at -40 as 0); the other
    arrays, and smoothing, take the log-sigmoid path, exact there.

    Parameters
    ----------
    input : array_like
        Logits.
    target : array_like
        Targets in [0, 1], the input's shape; a target outside it, or NaN, is refused where
        values are checked (PyTorch computes a number from it, or NaN).
    weight : array_like, optional
        Element weights.
    size_average, reduce : bool, optional
        Deprecated (PyTorch's legacy arguments): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    pos_weight : array_like, optional
        Weight of the positive term, e.g. ``negatives / positives`` per class.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`, applied to the target.
    smoothing_mode : {"uniform", "flip"}, default "uniform"
        ``"uniform"``: :math:`t(1 - \varepsilon) + \varepsilon / 2` (Keras). ``"flip"``:
        :math:`t(1 - \varepsilon) + (1 - t)\varepsilon` (segmentation-models-pytorch
        ``SoftBCEWithLogitsLoss``).
    empty_mean : float, default nan
        The mean of an empty input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"`` when ``weight`` is given: the number of elements (PyTorch;
        "auto" and "count") or the sum of the weights broadcast to the input ("weight", as
        scikit-learn's ``sample_weight``).
    validate : {None, "auto", True, False}
        When target values are checked (None: the mode in force;
        see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.binary_cross_entropy_with_logits([0.5, -1.0, 2.0], [1.0, 0.0, 1.0])
    np.float64(0.3047555609137673)
    >>> x = [[0.5, -1.0, 2.0], [1.0, 0.0, -2.0]]
    >>> t = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    >>> ce.binary_cross_entropy_with_logits(x, t, reduction="batchmean").round(6)  # multi-label
    np.float64(1.523802)
    """
    options = BinaryOptions.from_arguments(locals(), from_logits=True, clip=None)
    return binary_loss(input, target, weight, options, pos_weight=pos_weight)
