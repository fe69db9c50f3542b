r"""Closed-form gradients, for NumPy users who have no autograd.

Each function returns ``(value, gradient)``: the loss exactly as the functional API computes it
(same arguments, same conventions) and its gradient with respect to ``input``. For
``reduction="none"`` the gradient is that of the sum of the returned losses (what
``loss.backward(ones)`` gives). The value comes from the functional core in one forward pass.
For the softmax family the gradient reuses the core's intermediates (the log-sum-exp, the masks,
the divisors); for the element-wise losses it recomputes the element-wise terms. Either way the
gradient costs O(input) more work. Every function works on any array library, like the rest of
the package; tests hold each gradient against PyTorch's autograd.

Softmax family (``cross_entropy``, ``focal_loss``): writing the loss as
:math:`\ell = -\sum_c a_c\, \alpha_c\, \varphi(q_c)` with :math:`q = \operatorname{softmax}(x)`,
:math:`\varphi(q) = (1 - q)^\gamma \log q` and target coefficients :math:`a` (class weights,
label smoothing and the mask folded in),

.. math::

    \frac{\partial \ell}{\partial x} = -h + q \sum_c h_c, \qquad
    h_c = a_c \alpha_c\, q_c \varphi'(q_c)
        = a_c \alpha_c (1 - q_c)^\gamma \Bigl(1 - \gamma\, q_c \frac{\log q_c}{1 - q_c}\Bigr),

which is :math:`(\sum_c a_c)\, q - a` for plain cross-entropy: softmax minus target.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from crossentropy import _classification as _cls
from crossentropy import _focal
from crossentropy import _regression as _reg
from crossentropy._lib import Array, Namespace, device_of, is_numpy, quiet, restore_dtype
from crossentropy._lib._reduction import Reduction
from crossentropy._lib._validation import check_finite_number
from crossentropy._special import log_sigmoid_, sigmoid_

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "focal_loss",
    "huber_loss",
    "mse_loss",
    "sigmoid_focal_loss",
]


def _inverse(xp: Namespace, den: Array) -> Array:
    """``1 / den`` with 0 where ``den == 0`` (no element contributes then)."""
    nonzero = den != 0
    return xp.where(nonzero, 1 / xp.where(nonzero, den, xp.ones_like(den)), xp.zeros_like(den))


def _focal_g(xp: Namespace, logq: Array, gamma: float) -> Array:
    """``q φ'(q)`` for ``φ(q) = (1 - q)^γ log q``: ``(1 - q)^γ (1 - γ q log q / (1 - q))``.

    Written from ``log q``: ``q log q / (1 - q)`` tends to -1 as ``q -> 1`` and to 0 as
    ``q -> 0`` (a ``-inf`` logit); both limits are taken explicitly, so no ``0 * inf`` arises.
    """
    if not gamma:
        return xp.ones_like(logq)
    m = _cls.focal_factor(xp, logq, gamma, None)
    at_one = logq >= 0
    at_zero = logq == -xp.inf
    safe = xp.where(at_one | at_zero, xp.full_like(logq, -1.0), logq)
    q_ratio = xp.exp(safe) * safe / -xp.expm1(safe)
    q_ratio = xp.where(at_one, xp.full_like(logq, -1.0), q_ratio)
    q_ratio = xp.where(at_zero, xp.zeros_like(logq), q_ratio)
    return m * (1 - gamma * q_ratio)


def _log_softmax(xp: Namespace, xc: Array, parts: dict[str, Any]) -> Array:
    """The core's log-softmax from its two-part log-sum-exp: ``(x - m) - log_sum``."""
    m, log_sum = parts["shift"]
    return (xc - m) - log_sum


def _scales(xp: Namespace, parts: dict[str, Any]) -> tuple[Any, Any]:
    """d(reduced loss)/d(element loss) for the cross-entropy part and the z-loss part."""
    reduction = parts["reduction"]
    if reduction == "mean":
        return _inverse(xp, parts["den"]), _inverse(xp, parts["count"])
    if reduction == "batchmean":
        return 1.0 / parts["batch"], 1.0 / parts["batch"]
    return 1.0, 1.0


def _subtract_at(xp: Namespace, g: Array, idx: Array, values: Array) -> Array:
    """``g[..., idx] -= values`` along the last axis (in place on NumPy's fresh ``g``)."""
    if is_numpy(g):
        pos = idx[..., None]
        np.put_along_axis(g, pos, np.take_along_axis(g, pos, axis=-1) - values[..., None], -1)
        return g
    classes = xp.arange(g.shape[-1], dtype=idx.dtype, device=device_of(g))
    hit = xp.expand_dims(idx, axis=-1) == classes
    return g - xp.where(hit, xp.expand_dims(values, axis=-1), xp.zeros_like(g))


def _index_logits_grad(xp: Namespace, parts: dict[str, Any], xc: Array) -> Array:
    """Class-index targets on logits, without materialising the target matrix.

    The weighted, smoothed target is ``a = c e_y + d u`` per row (``u`` the class weights or
    ones), so the gradient is ``softmax * sum(a) - d u - c e_y``: three passes over the logits.
    The focal loss without smoothing scales ``c`` by ``alpha_y g(q_y)`` (see ``_focal_g``).
    """
    scale, zscale = _scales(xp, parts)
    n_classes = xc.shape[-1]
    valid = xp.astype(parts["valid"], xc.dtype)
    w = parts["weight"]
    eps = parts["label_smoothing"]
    w_y = parts["w_y"] if w is not None else None
    logz = parts["logz"]
    target = parts["target"]
    c = (1 - eps) * valid * scale if w_y is None else (1 - eps) * w_y * valid * scale
    focal = parts["focal"]
    if focal is not None:  # only without smoothing (see _softmax_family)
        gamma, alpha = focal
        m, log_sum = (xp.squeeze(a, axis=-1) for a in parts["shift"])
        logq_y = (_cls._gather(xp, xc, target) - m) - log_sum
        c = c * _focal_g(xp, logq_y, gamma)
        if alpha is not None:
            c = c * (_cls._take(xp, alpha, target) if _cls._is_vector(alpha) else alpha)
    if parts["weight_mode"] == "per_class" or w_y is None:
        d = (eps / n_classes) * valid * scale
        u = w
    else:
        d = (eps / n_classes) * w_y * valid * scale
        u = None
    row_sum = c + d * (xp.sum(u) if u is not None else n_classes) if eps else c
    if parts["z_loss"]:
        row_sum = row_sum + 2 * parts["z_loss"] * logz * valid * zscale
    g = xp.exp(_log_softmax(xp, xc, parts)) * xp.expand_dims(row_sum, axis=-1)
    if eps:
        d_col = xp.expand_dims(d, axis=-1)
        g = g - (d_col * u if u is not None else d_col)
    return _subtract_at(xp, g, target, c)


def _softmax_family(parts: dict[str, Any], value: Array) -> tuple[Array, Array]:
    xp = parts["xp"]
    x = parts["x"]
    cap = parts["cap"]
    xc = cap * xp.tanh(x / cap) if cap is not None else x
    logits = parts["kind"] == "logits"
    sparse = parts["focal"] is None or not parts["label_smoothing"]
    if logits and not parts["soft"] and sparse:
        g = _index_logits_grad(xp, parts, xc)
    else:
        g = _general_grad(xp, parts, x, xc)
    if logits and cap is not None:
        th = xp.tanh(x / cap)
        g = g * (1 - th * th)
    if parts["bad"] is not None:
        g = xp.where(xp.expand_dims(parts["bad"], axis=-1), xp.full_like(g, math.nan), g)
    g = xp.moveaxis(g, -1, parts["axis"])
    return value, restore_dtype(xp, g, parts["out_dtype"])


def _general_grad(xp: Namespace, parts: dict[str, Any], x: Array, xc: Array) -> Array:
    """Soft targets, focal losses and probability inputs: the target matrix ``a`` in full."""
    n_classes = x.shape[-1]
    valid = xp.expand_dims(parts["valid"], axis=-1)
    w = parts["weight"]
    eps = parts["label_smoothing"]
    per_class = parts["weight_mode"] == "per_class"
    target = parts["target"]
    if parts["soft"]:
        a = target if w is None else (target * w if per_class else target)
        if w is not None and not per_class:
            a = xp.expand_dims(parts["w_y"], axis=-1) * a
    else:
        classes = xp.arange(n_classes, dtype=target.dtype, device=device_of(x))
        onehot = xp.astype(xp.expand_dims(target, axis=-1) == classes, x.dtype)
        if w is None:
            a = (1 - eps) * onehot + eps / n_classes if eps else onehot
        else:
            w_y = xp.expand_dims(parts["w_y"], axis=-1)
            if per_class:
                a = (1 - eps) * w_y * onehot + (eps / n_classes) * w if eps else w_y * onehot
            else:
                a = w_y * ((1 - eps) * onehot + eps / n_classes if eps else onehot)
    a = xp.where(valid, a, xp.zeros_like(a))
    if parts["kind"] == "logits":
        logq = _log_softmax(xp, xc, parts)
    else:
        logq = _cls._prob_log(xp, x, parts["clip"], parts["out_dtype"])
    focal = parts["focal"]
    h = a
    if focal is not None:
        gamma, alpha = focal
        h = a * _focal_g(xp, logq, gamma)
        if alpha is not None:
            h = h * alpha
    scale, zscale = _scales(xp, parts)
    if parts["kind"] != "logits":
        with quiet(h):
            g = -h * _prob_log_derivative(xp, x, parts["clip"], parts["out_dtype"]) * scale
        return xp.where(h == 0, xp.zeros_like(g), g)  # no 0 * inf where a class has no target
    q = xp.exp(logq)
    g = (q * xp.sum(h, axis=-1, keepdims=True) - h) * scale
    if parts["z_loss"]:
        logz = xp.expand_dims(parts["logz"], axis=-1)
        zg = 2 * parts["z_loss"] * logz * q * zscale
        g = g + xp.where(valid, zg, xp.zeros_like(zg))
    return g


def _prob_log_derivative(xp: Namespace, p: Array, clip: Any, eps_dtype: Any) -> Array:
    """d log(p) / dp under a clipping convention (0 where the clip or clamp is active)."""
    zero = p == 0
    inv = 1 / xp.where(zero, xp.ones_like(p), p)
    if clip is None:
        return xp.where(zero, xp.full_like(p, math.inf), inv)
    if clip == "torch":
        return xp.where(p > math.exp(-100.0), inv, xp.zeros_like(p))
    eps = (
        float(xp.finfo(eps_dtype).eps)
        if clip == "sklearn"
        else (_cls._KERAS_EPSILON if clip == "keras" else float(clip))
    )
    inside = (p >= eps) & (p <= 1 - eps)
    return xp.where(inside, inv, xp.zeros_like(p))


def cross_entropy(
    input: Array, target: Array, weight: Array | None = None, **kwargs: Any
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.cross_entropy`, every option included.

    .. math::

        \frac{\partial \ell_n}{\partial x_n} = \Bigl(\sum_c a_{n,c}\Bigr)
        \operatorname{softmax}(x_n) - a_n

    where :math:`a_n` is the weighted (smoothed) target: :math:`w_{y_n} e_{y_n}` for class
    indices, :math:`w \odot t_n` for probabilities; z-loss adds
    :math:`2 z \operatorname{logsumexp}(x_n) \operatorname{softmax}(x_n)`, softcap multiplies by
    :math:`1 - \tanh^2(x / \mathrm{cap})`, and the reduction divides as the loss does.

    Parameters
    ----------
    input, target, weight, **kwargs
        Exactly as :func:`crossentropy.cross_entropy`.

    Returns
    -------
    (value, gradient)
        The loss and its gradient with respect to ``input`` (the input's shape).

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.cross_entropy([[1.0, 2.0, 3.0]], [2])
    >>> g.round(4)  # softmax - one-hot
    array([[ 0.09  ,  0.2447, -0.3348]])
    """
    parts: dict[str, Any] = {}
    defaults = dict(
        ignore_index=-100,
        reduction="mean",
        label_smoothing=0.0,
        axis=None,
        from_logits=True,
        z_loss=0.0,
        softcap=None,
        clip=None,
        empty_mean=math.nan,
        mean_divisor="auto",
        weight_mode="per_class",
    )
    _check_kwargs(kwargs, defaults, "cross_entropy")
    value = _cls._cross_entropy(input, target, weight, **{**defaults, **kwargs}, parts=parts)
    return _softmax_family(parts, value)


def focal_loss(
    input: Array, target: Array, *, weight: Array | None = None, **kwargs: Any
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.focal_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = -h + \operatorname{softmax}(x) \sum_c h_c,
        \qquad h_c = a_c \alpha_c (1 - q_c)^\gamma
        \Bigl(1 - \gamma\, q_c \tfrac{\log q_c}{1 - q_c}\Bigr)

    with :math:`q = \operatorname{softmax}(x)` and :math:`a` the weighted target; finite as
    :math:`q_c \to 1` for any :math:`\gamma \ge 0`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.focal_loss([[1.0, 2.0, 3.0]], [2], gamma=2.0)
    >>> g.shape
    (1, 3)
    """
    parts: dict[str, Any] = {}
    defaults = dict(
        alpha=None,
        gamma=2.0,
        ignore_index=-100,
        reduction="mean",
        label_smoothing=0.0,
        axis=None,
        from_logits=True,
        clip=None,
        empty_mean=math.nan,
        mean_divisor="auto",
        weight_mode="per_class",
    )
    _check_kwargs(kwargs, defaults, "focal_loss")
    kw = {**defaults, **kwargs}
    gamma = check_finite_number(kw.pop("gamma"), "gamma", low=0.0)
    value = _cls._cross_entropy(
        input, target, weight, z_loss=0.0, softcap=None, gamma=gamma, parts=parts, **kw
    )
    return _softmax_family(parts, value)


def _check_kwargs(kwargs: dict[str, Any], defaults: dict[str, Any], name: str) -> None:
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise TypeError(f"grad.{name} got unexpected keyword argument(s): {', '.join(unknown)}")


def _elementwise_scale(
    xp: Namespace, like: Array, w: Array | None, reduction: str, rule: str
) -> Array | float:
    """d(reduced loss) / d(element loss) for the element-wise losses."""
    if reduction in ("none", "sum"):
        return 1.0
    if reduction == "batchmean":
        return 1.0 / (like.shape[0] if like.ndim else 1)
    if w is not None and rule == "weight":
        return _inverse(xp, xp.sum(xp.broadcast_to(w, like.shape)))
    n = math.prod(like.shape)
    return 1.0 / n if n else 0.0


def _unbroadcast(xp: Namespace, g: Array, shape: tuple[int, ...]) -> Array:
    """Sum a gradient over the axes along which the input was broadcast."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = xp.sum(g, axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return xp.sum(g, axis=axes, keepdims=True) if axes else g


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    reduction: Reduction = "mean",
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    smoothing_mode: Literal["uniform", "flip"] = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.binary_cross_entropy_with_logits`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \bigl((1 - t)\, \sigma(x) - p_w\, t\, \sigma(-x)\bigr)

    which is :math:`w(\sigma(x) - t)` without ``pos_weight``; the reduction divides as the loss.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.binary_cross_entropy_with_logits([0.0, 2.0], [1.0, 0.0], reduction="sum")
    >>> g.round(4)
    array([-0.5   ,  0.8808])
    """
    value = _cls.binary_cross_entropy_with_logits(
        input,
        target,
        weight,
        reduction=reduction,
        pos_weight=pos_weight,
        label_smoothing=label_smoothing,
        smoothing_mode=smoothing_mode,
        empty_mean=empty_mean,
        mean_divisor=mean_divisor,
    )
    xp, x, t, w, pw, out_dtype = _cls._prepare_binary(input, target, weight, pos_weight)
    red, eps, mode, _, divisor = _cls._binary_options(
        reduction, label_smoothing, smoothing_mode, empty_mean, mean_divisor
    )
    t = _cls._smooth_binary(t, eps, mode)
    pos = t if pw is None else pw * t
    g = (1 - t) * sigmoid_(xp, x) - pos * sigmoid_(xp, -x)
    if w is not None:
        g = g * w
    g = g * _elementwise_scale(xp, g, w, red, divisor)
    return value, restore_dtype(xp, g, out_dtype)


def sigmoid_focal_loss(
    input: Array,
    target: Array,
    *,
    weight: Array | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "none",
    apply_class_balancing: bool = True,
    label_smoothing: float = 0.0,
    smoothing_mode: Literal["uniform", "flip"] = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.sigmoid_focal_loss` (on logits).

    With :math:`\ell = \alpha_t M B`, :math:`M = (1 - p_t)^\gamma`, :math:`B` the binary
    cross-entropy and :math:`1 - p_t = t\sigma(-x) + (1 - t)\sigma(x)`,

    .. math::

        \frac{\partial \ell}{\partial x} = \alpha_t M \Bigl(\gamma (1 - 2t)
        \frac{\sigma(x)\sigma(-x)}{1 - p_t} B + \sigma(x) - t\Bigr)

    where the ratio is formed in log space, so the gradient stays finite as :math:`p_t \to 1`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.sigmoid_focal_loss([2.0, -1.0, 0.5], [1.0, 1.0, 0.0])
    >>> g.round(5)
    array([-0.00122, -0.19206,  0.39461])
    """
    value = _focal.sigmoid_focal_loss(
        input,
        target,
        weight=weight,
        alpha=alpha,
        gamma=gamma,
        reduction=reduction,
        apply_class_balancing=apply_class_balancing,
        label_smoothing=label_smoothing,
        smoothing_mode=smoothing_mode,
        empty_mean=empty_mean,
        mean_divisor=mean_divisor,
    )
    xp, x, t, w, _, out_dtype = _cls._prepare_binary(input, target, weight, None)
    red, eps, mode, _, divisor = _cls._binary_options(
        reduction, label_smoothing, smoothing_mode, empty_mean, mean_divisor
    )
    t = _cls._smooth_binary(t, eps, mode)
    log_p, log_q = log_sigmoid_(xp, x), log_sigmoid_(xp, -x)
    ce = _cls._bce_terms(xp, log_p, log_q, t, None)
    g = (1 - t) * sigmoid_(xp, x) - t * sigmoid_(xp, -x)  # sigma(x) - t without cancellation
    if gamma:
        log_1m_pt = _focal.log_one_minus_pt(xp, log_p, log_q, t)
        finite = log_1m_pt > -math.inf
        rho = xp.exp(log_p + log_q - xp.where(finite, log_1m_pt, xp.zeros_like(log_1m_pt)))
        rho = xp.where(finite, rho, xp.zeros_like(rho))
        g = xp.exp(gamma * log_1m_pt) * (gamma * (1 - 2 * t) * rho * ce + g)
    alpha_t = _focal.class_balance(t, alpha, apply_class_balancing)
    if alpha_t is not None:
        g = g * alpha_t
    if w is not None:
        g = g * w
    g = g * _elementwise_scale(xp, g, w, red, divisor)
    return value, restore_dtype(xp, g, out_dtype)


def mse_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
    empty_mean: float = math.nan,
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.mse_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = 2 w (x - y) \big/ \textstyle\sum w
        \quad\text{(``"mean"``; } N \text{ without weights)}

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.mse_loss([1.0, 2.0], [0.0, 0.0])
    >>> g
    array([1., 2.])
    """
    value = _reg.mse_loss(
        input,
        target,
        reduction=reduction,
        weight=weight,
        mean_divisor=mean_divisor,
        empty_mean=empty_mean,
    )
    xp, x, t, w, out_dtype = _reg._prepare(input, target, weight)
    g = 2 * (x - t)
    return value, _finish_elementwise(
        xp, g, w, reduction, mean_divisor, "mse_loss", input, out_dtype
    )


def huber_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    delta: float = 1.0,
    weight: Array | None = None,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
    empty_mean: float = math.nan,
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.huber_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \operatorname{clip}(x - y, -\delta, \delta)

    divided by :math:`N` for ``"mean"`` (PyTorch's rule, also with weights).

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.huber_loss([0.0, 0.0], [0.5, 3.0], reduction="sum")
    >>> g
    array([-0.5, -1. ])
    """
    value = _reg.huber_loss(
        input,
        target,
        reduction=reduction,
        delta=delta,
        weight=weight,
        mean_divisor=mean_divisor,
        empty_mean=empty_mean,
    )
    xp, x, t, w, out_dtype = _reg._prepare(input, target, weight)
    g = xp.clip(x - t, -float(delta), float(delta))
    return value, _finish_elementwise(
        xp, g, w, reduction, mean_divisor, "huber_loss", input, out_dtype
    )


def _finish_elementwise(
    xp: Namespace,
    g: Array,
    w: Array | None,
    reduction: str,
    mean_divisor: str,
    name: str,
    input: Any,
    out_dtype: Any,
) -> Array:
    rule = _reg.WEIGHTED_MEAN[name] if mean_divisor == "auto" else mean_divisor
    if w is not None:
        g = g * w
    g = g * _elementwise_scale(xp, g, w, reduction, rule)
    shape = tuple(input.shape) if hasattr(input, "shape") else tuple(np.shape(input))
    return restore_dtype(xp, _unbroadcast(xp, g, shape), out_dtype)
