r"""Regression losses: MSE, RMSE, L1, Huber, smooth L1 and log-cosh, with PyTorch's numbers.

Element weights follow PyTorch 2.13: ``weight`` multiplies each element's loss; the weighted
``"mean"`` of ``mse_loss`` and ``l1_loss`` divides by the sum of the weights, while that of
``huber_loss`` divides by the number of elements. ``mean_divisor`` picks either rule for any of
them (docs/conventions.md).
"""

from __future__ import annotations

import math
from typing import Any

from crossentropy._lib import (
    Array,
    Namespace,
    as_float,
    check_empty_mean,
    check_reduction,
    divide,
    is_torch,
    namespace,
    reduce,
    restore_dtype,
)
from crossentropy._lib._reduction import MEAN_DIVISORS, MeanDivisor, Reduction
from crossentropy._lib._validation import (
    check_choice,
    check_finite_number,
    element_weight,
    shape_str,
)
from crossentropy._special import _axis, softplus_

__all__ = [
    "huber_loss",
    "l1_loss",
    "log_cosh_loss",
    "mse_loss",
    "rmse_loss",
    "smooth_l1_loss",
]

_LOG2 = math.log(2.0)
# PyTorch 2.13's divisor of a weighted "mean": the sum of the weights or the element count.
WEIGHTED_MEAN = {
    "mse_loss": "weight",
    "l1_loss": "weight",
    "huber_loss": "count",
    "smooth_l1_loss": "count",
    "log_cosh_loss": "weight",
}


def _prepare(
    input: Array, target: Array, weight: Array | None
) -> tuple[Namespace, Array, Array, Array | None, Any]:
    """Namespace; input, target and weight broadcast together in the compute dtype."""
    xp, (x, t, w) = namespace(input, target, weight, names=["input", "target", "weight"])
    xf, out_dtype = as_float(xp, x, "input")
    tf, _ = as_float(xp, t, "target")
    tf = xp.astype(tf, xf.dtype) if tf.dtype != xf.dtype else tf
    try:
        xf, tf = xp.broadcast_arrays(xf, tf)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"target of shape {shape_str(tf.shape)} does not broadcast with input of shape "
            f"{shape_str(xf.shape)}"
        ) from None
    wf = None if w is None else element_weight(xp, w, "weight", xf)
    return xp, xf, tf, wf, out_dtype


def _finish(
    xp: Namespace,
    per: Array,
    w: Array | None,
    reduction: object,
    mean_divisor: object,
    empty_mean: object,
    weighted_mean_default: str,
    out_dtype: Any,
) -> Array:
    """Weight, reduce and cast back: the one home of the regression losses' weighting rules."""
    red = check_reduction(reduction)
    check_choice(mean_divisor, "mean_divisor", MEAN_DIVISORS)
    empty = check_empty_mean(empty_mean)
    den = None
    if w is not None:
        per = per * w
        rule = weighted_mean_default if mean_divisor == "auto" else mean_divisor
        if rule == "weight":
            den = xp.sum(xp.broadcast_to(w, per.shape))
    return restore_dtype(xp, reduce(xp, per, red, denominator=den, empty_mean=empty), out_dtype)


def _aten(
    name: str,
    xp: Namespace,
    x: Array,
    t: Array,
    w: Array | None,
    reduction: object,
    mean_divisor: object,
    empty_mean: object,
    out_dtype: Any,
    **kwargs: float,
) -> Array | None:
    """ATen's kernel for an unweighted torch call with a PyTorch reduction, else None."""
    check_choice(mean_divisor, "mean_divisor", MEAN_DIVISORS)
    if w is not None or not is_torch(x) or reduction not in ("none", "mean", "sum"):
        return None
    if not math.isnan(check_empty_mean(empty_mean)):
        return None
    import torch.nn.functional as F

    return restore_dtype(xp, getattr(F, name)(x, t, reduction=reduction, **kwargs), out_dtype)


def log_cosh_(xp: Namespace, err: Array) -> Array:
    """``log cosh e``: ``log1p(expm1(a)^2 / (2 e^a))`` for ``a = |e| < 1`` (no cancellation near
    0), ``a + softplus(-2a) - log 2`` beyond (no overflow); each branch fed a safe value."""
    a = xp.abs(err)
    small = a < 1
    a_small = xp.where(small, a, xp.zeros_like(a))
    a_large = xp.where(small, xp.ones_like(a), a)
    em1 = xp.expm1(a_small)
    near = xp.log1p(em1 * em1 / (2 * xp.exp(a_small)))
    far = a_large + softplus_(xp, -2 * a_large) - _LOG2
    return xp.where(small, near, far)


def huber_(xp: Namespace, err: Array, delta: float) -> Array:
    """Huber's function of the error: quadratic within ``delta``, linear beyond."""
    a = xp.abs(err)
    quad = 0.5 * err * err
    return xp.where(a <= delta, quad, delta * (a - 0.5 * delta))


def mse_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Mean squared error, element-wise :math:`\ell = w (x - y)^2`.

    .. math::

        \mathrm{MSE} = \frac{\sum_i w_i (x_i - y_i)^2}{\sum_i w_i}

    Follows :func:`torch.nn.functional.mse_loss` (PyTorch 2.13, with ``weight``): without
    weights the mean is over all elements; with weights it divides by the sum of the weights
    (``mean_divisor="count"`` divides by the number of elements instead).

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    weight : array_like, optional
        Non-negative element weights, broadcast to the input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of a weighted ``"mean"``; "auto" is PyTorch's ("weight" here).
    empty_mean : float, default nan
        The mean of an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.mse_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2])
    np.float64(2.885)
    >>> ce.mse_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2], weight=[1.0, 2.0, 3.0, 4.0])
    np.float64(3.191)
    """
    xp, x, t, w, out_dtype = _prepare(input, target, weight)
    fast = _aten("mse_loss", xp, x, t, w, reduction, mean_divisor, empty_mean, out_dtype)
    if fast is not None:
        return fast
    err = x - t
    return _finish(
        xp, err * err, w, reduction, mean_divisor, empty_mean, WEIGHTED_MEAN["mse_loss"], out_dtype
    )


def l1_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Mean absolute error, element-wise :math:`\ell = w |x - y|`.

    .. math::

        \mathrm{MAE} = \frac{\sum_i w_i |x_i - y_i|}{\sum_i w_i}

    Follows :func:`torch.nn.functional.l1_loss` (PyTorch 2.13): a weighted mean divides by the
    sum of the weights. Parameters as :func:`mse_loss`.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.l1_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2], weight=[1.0, 2.0, 3.0, 4.0])
    np.float64(1.33)
    """
    xp, x, t, w, out_dtype = _prepare(input, target, weight)
    fast = _aten("l1_loss", xp, x, t, w, reduction, mean_divisor, empty_mean, out_dtype)
    if fast is not None:
        return fast
    return _finish(
        xp,
        xp.abs(x - t),
        w,
        reduction,
        mean_divisor,
        empty_mean,
        WEIGHTED_MEAN["l1_loss"],
        out_dtype,
    )


def rmse_loss(
    input: Array,
    target: Array,
    *,
    axis: int | tuple[int, ...] | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    empty_mean: float = math.nan,
) -> Array:
    r"""Root mean squared error, with a finite gradient at zero error.

    .. math::

        \mathrm{RMSE} = \sqrt{\frac{\sum_i w_i (x_i - y_i)^2}{\sum_i w_i}}

    The mean is taken over ``axis`` (all axes by default, as
    ``torchmetrics.MeanSquaredError(squared=False)``); ``reduction`` then combines the
    remaining RMSE values (e.g. one per sample with ``axis=-1``). The square root is taken
    through a double ``where``, so at zero error the value is 0 and the gradient is 0 instead of
    NaN.

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together.
    axis : int or tuple of int, optional
        Axes the squared errors are averaged over before the root; None for all.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the per-row RMSE values are combined (a scalar is left as is).
    weight : array_like, optional
        Non-negative element weights: a weighted mean of squared errors.
    empty_mean : float, default nan
        The value for an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.rmse_loss([0.0, 0.0], [3.0, 4.0]).round(6)
    np.float64(3.535534)
    >>> float(ce.rmse_loss([1.0, 2.0], [1.0, 2.0]))
    0.0
    """
    xp, x, t, w, out_dtype = _prepare(input, target, weight)
    red = check_reduction(reduction)
    empty = check_empty_mean(empty_mean)
    if axis is not None:
        axes = axis if isinstance(axis, tuple) else (axis,)
        axis = tuple(_axis(a, x.ndim) for a in axes)
    err = x - t
    sq = err * err
    if w is not None:
        w = xp.broadcast_to(w, sq.shape)
        num = xp.sum(sq * w, axis=axis)
        den = xp.sum(w, axis=axis)
    else:
        num = xp.sum(sq, axis=axis)
        den = xp.sum(xp.ones_like(sq), axis=axis)
    msq = divide(xp, num, den, empty)
    pos = msq > 0
    root = xp.where(pos, xp.sqrt(xp.where(pos, msq, xp.ones_like(msq))), msq)
    out = root if root.ndim == 0 else reduce(xp, root, red, empty_mean=empty)
    return restore_dtype(xp, out, out_dtype)


def huber_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    delta: float = 1.0,
    weight: Array | None = None,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Huber loss: squared error for small errors, absolute error beyond ``delta``.

    .. math::

        \ell = w \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta (|e| - \tfrac12 \delta) & \text{otherwise} \end{cases}, \qquad e = x - y

    Robust to outliers: their gradient is capped at :math:`\pm\delta`. Follows
    :func:`torch.nn.functional.huber_loss` (PyTorch 2.13): a weighted ``"mean"`` divides by the
    number of elements (``mean_divisor="weight"`` divides by the sum of the weights, as
    :func:`mse_loss`). Keras ``Huber`` and optax ``huber_loss`` use the same function.

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    delta : float, default 1.0
        Where the quadratic turns linear, > 0.
    weight : array_like, optional
        Non-negative element weights.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of a weighted ``"mean"``; "auto" is PyTorch's ("count" here).
    empty_mean : float, default nan
        The mean of an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.huber_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2])
    np.float64(0.91125)
    >>> ce.huber_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2], delta=2.0)
    np.float64(1.3175)
    """
    d = check_finite_number(delta, "delta", low=0.0, low_open=True)
    xp, x, t, w, out_dtype = _prepare(input, target, weight)
    fast = _aten("huber_loss", xp, x, t, w, reduction, mean_divisor, empty_mean, out_dtype, delta=d)
    if fast is not None:
        return fast
    per = huber_(xp, x - t, d)
    return _finish(
        xp, per, w, reduction, mean_divisor, empty_mean, WEIGHTED_MEAN["huber_loss"], out_dtype
    )


def smooth_l1_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    beta: float = 1.0,
    weight: Array | None = None,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Smooth L1 loss: Huber loss divided by ``beta``.

    .. math::

        \ell = w \begin{cases} \tfrac12 e^2 / \beta & |e| < \beta \\
        |e| - \tfrac12 \beta & \text{otherwise} \end{cases}

    Follows :func:`torch.nn.functional.smooth_l1_loss` (``beta = 0`` is the L1 loss). Weights
    as :func:`huber_loss`.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.smooth_l1_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2], beta=2.0)
    np.float64(0.65875)
    """
    b = check_finite_number(beta, "beta", low=0.0)
    xp, x, t, w, out_dtype = _prepare(input, target, weight)
    fast = _aten(
        "smooth_l1_loss", xp, x, t, w, reduction, mean_divisor, empty_mean, out_dtype, beta=b
    )
    if fast is not None:
        return fast
    err = x - t
    per = xp.abs(err) if b == 0 else huber_(xp, err, b) / b
    return _finish(
        xp, per, w, reduction, mean_divisor, empty_mean, WEIGHTED_MEAN["smooth_l1_loss"], out_dtype
    )


def log_cosh_loss(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Log-cosh loss: :math:`\log\cosh(x - y)`, about :math:`e^2/2` near 0 and :math:`|e|`
    far out.

    .. math::

        \log\cosh e = |e| + \operatorname{softplus}(-2|e|) - \log 2
        = \log\Bigl(1 + \frac{(e^{|e|} - 1)^2}{2 e^{|e|}}\Bigr)

    computed in the first form for :math:`|e| \ge 1` (never overflows, ``cosh(1e4)`` does) and in
    the second below (no cancellation near zero error). Keras ``LogCosh`` and
    optax ``log_cosh`` (here with ``reduction="none"``). A weighted ``"mean"`` divides by the
    sum of the weights.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.log_cosh_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2]).round(10)
    np.float64(0.8261878136)
    """
    xp, x, t, w, out_dtype = _prepare(input, target, weight)
    per = log_cosh_(xp, x - t)
    return _finish(
        xp, per, w, reduction, mean_divisor, empty_mean, WEIGHTED_MEAN["log_cosh_loss"], out_dtype
    )
