r"""Regression losses: MSE, RMSE, L1, Huber, smooth L1 and log-cosh, with PyTorch's numbers.

As in PyTorch, ``input`` and ``target`` broadcast together, with PyTorch's warning when their shapes
differ. Element weights follow PyTorch 2.13: ``weight`` multiplies each element's loss; the weighted
``"mean"`` of ``mse_loss`` and ``l1_loss`` divides by the sum of the weights (PyTorch's: as they
broadcast with the input, not with a larger target), while that of
``huber_loss`` and ``smooth_l1_loss`` divides by the number of elements (``log_cosh_loss`` and
``rmse_loss``, which PyTorch lacks, divide by the sum of the weights). ``mean_divisor`` picks either
rule for any of them but ``rmse_loss`` (docs/conventions.md). One engine serves the family
(:func:`regression_loss`, :func:`regression_value_and_grad`); unweighted PyTorch calls are delegated
to ATen.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from crossentropy import _formulas as fm
from crossentropy._lib.axes import Axes
from crossentropy._lib.checks import element_weight, shape_str
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_loss_float,
    hyper,
    is_torch,
    namespace,
    quiet,
    restore_dtype,
    stop_gradient,
    with_target,
)
from crossentropy._lib.policy import torch_compiling
from crossentropy._lib.reduction import (
    MeanDivisor,
    Reduction,
    broadcast_shape,
    divide,
    reduce,
    reduction_scale,
    weight_total,
)
from crossentropy.losses.options import Hyper, RegressionOptions

__all__ = [
    "SIZE_WARNING",
    "RegressionInputs",
    "aten_applies",
    "aten_loss",
    "gradient",
    "huber_loss",
    "l1_loss",
    "log_cosh_loss",
    "mse_loss",
    "prepare",
    "regression_loss",
    "regression_value_and_grad",
    "rmse_loss",
    "smooth_l1_loss",
]

#: PyTorch's warning when the target's size differs from the input's (then both broadcast).
SIZE_WARNING = (
    "Using a target size ({target}) that is different to the input size ({input}). "
    "This will likely lead to incorrect results due to broadcasting. "
    "Please ensure they have the same size."
)


@dataclass(frozen=True)
class RegressionInputs:
    """Input and target broadcast together in the compute dtype; the weight broadcasts to
    them; ``input_shape`` is the caller's (for the gradient)."""

    xp: Namespace
    x: Array
    target: Array
    weight: Array | None
    out_dtype: Any  # the loss's: input's and a floating target's promoted
    input_dtype: Any  # input's (its gradient's)
    input_shape: tuple[int, ...]


def prepare(input: Array, target: Array, weight: Array | None) -> RegressionInputs:
    """Resolve, convert, warn about differing shapes (as PyTorch) and broadcast."""
    xp, (x, t, w) = namespace(input, target, weight, names=["input", "target", "weight"])
    xf, input_dtype = as_loss_float(xp, x, "input")
    xf, tf, out_dtype = with_target(xp, xf, input_dtype, t, target)
    shape = tuple(xf.shape)
    if tuple(tf.shape) != shape:
        try:
            xf, tf = xp.broadcast_arrays(xf, tf)
        except (ValueError, RuntimeError, TypeError):
            raise ValueError(
                f"target of shape {shape_str(tf.shape)} does not broadcast with input of shape "
                f"{shape_str(xf.shape)}"
            ) from None
        # PyTorch's warning, for shapes that do broadcast (it also warns before its error);
        # not while torch.compile traces, where a warning would break the graph
        if not torch_compiling():
            warnings.warn(
                SIZE_WARNING.format(
                    target=t.size() if is_torch(t) else tuple(t.shape),
                    input=x.size() if is_torch(x) else tuple(x.shape),
                ),
                UserWarning,
                stacklevel=4,
            )
    wf = None if w is None else element_weight(xp, w, "weight", xf)
    return RegressionInputs(xp, xf, tf, wf, out_dtype, input_dtype, shape)


def _element_loss(xp: Namespace, err: Array, o: RegressionOptions) -> Array:
    """The loss of each error under ``o.loss``."""
    if o.loss in ("mse", "rmse"):
        return err * err
    if o.loss == "l1":
        return fm.abs_error(xp, err)
    if o.loss == "huber":
        return fm.huber(xp, err, hyper(xp, o.delta, err, "delta"))
    if o.loss == "smooth_l1":
        return fm.smooth_l1(xp, err, hyper(xp, o.beta, err, "beta"))
    return fm.log_cosh(xp, err)


def _element_slope(xp: Namespace, err: Array, o: RegressionOptions) -> Array:
    """The derivative of :func:`_element_loss` with respect to the error."""
    if o.loss == "mse":
        return 2 * err
    if o.loss == "l1":
        return xp.sign(err)
    if o.loss == "huber":
        delta = hyper(xp, o.delta, err, "delta")
        return (
            xp.clip(err, -delta, delta)
            if isinstance(delta, float)
            else xp.where(xp.abs(err) <= delta, err, delta * xp.sign(err))
        )
    if o.loss == "smooth_l1":
        return fm.smooth_l1_slope(xp, err, hyper(xp, o.beta, err, "beta"))
    if o.loss == "log_cosh":
        return xp.tanh(err)
    raise ValueError(f"no closed-form gradient for {o.loss}")


def _denominator(inp: RegressionInputs, o: RegressionOptions) -> Any:
    """The divisor of a weighted ``"mean"`` by the weights (None: the number of elements):
    their sum over the losses, but for PyTorch's ``mse_loss`` and ``l1_loss`` (the default
    divisor), whose sum is over the weights as they broadcast with the input, so that an input
    that broadcasts against a larger target counts each of its weights once."""
    if inp.weight is None or o.divisor_rule != "weight":
        return None
    shape = tuple(inp.x.shape)  # (input and target broadcast together)
    if o.mean_divisor == "auto" and o.loss in ("mse", "l1"):
        shape = broadcast_shape(tuple(inp.weight.shape), inp.input_shape)
    return weight_total(inp.xp, inp.weight, shape)


def forward(inp: RegressionInputs, o: RegressionOptions) -> Array:
    """The loss on any array library (RMSE: see :func:`rmse_loss`)."""
    xp = inp.xp
    if o.loss == "rmse":
        return _rmse(inp, o, inp.x - inp.target)
    per = _element_loss(xp, inp.x - inp.target, o)
    if inp.weight is not None:
        per = per * inp.weight
    den = _denominator(inp, o)
    return reduce(xp, per, o.reduction, denominator=den, empty_mean=o.empty_mean)


def _rmse(inp: RegressionInputs, o: RegressionOptions, err: Array) -> Array:
    """The root of the (weighted) mean square of the errors ``err``, over ``o.axis``: the
    errors divided by their largest magnitude first (no gradient: the root is homogeneous),
    so squares of 1e200 do not overflow, nor those of 1e-300 underflow (as ``hypot``)."""
    xp = inp.xp
    axis = None
    if o.axis is not None:
        axis = Axes.of(o.axis, tuple(err.shape)).axes
    scale = xp.ones_like(xp.sum(err, axis=axis, keepdims=True))
    if 0 not in err.shape:  # (an empty maximum is an error)
        top = stop_gradient(xp, xp.max(xp.abs(err), axis=axis, keepdims=True))
        scale = xp.where((top > 0) & (top < xp.inf), top, scale)  # (0, inf, NaN: as they are)
    sq = err / scale
    sq = sq * sq
    if inp.weight is not None:
        w = xp.broadcast_to(inp.weight, sq.shape)
        num, den = xp.sum(sq * w, axis=axis), xp.sum(w, axis=axis)
    else:
        num, den = xp.sum(sq, axis=axis), xp.sum(xp.ones_like(sq), axis=axis)
    msq = divide(xp, num, den, o.empty_mean)
    pos = msq > 0  # the root through a double where: value 0 and gradient 0 at zero error
    root = xp.where(pos, xp.sqrt(xp.where(pos, msq, xp.ones_like(msq))), msq)
    root = root * xp.reshape(scale, tuple(root.shape))
    return root if root.ndim == 0 else reduce(xp, root, o.reduction, empty_mean=o.empty_mean)


def _unbroadcast(xp: Namespace, g: Array, shape: tuple[int, ...]) -> Array:
    """Sum a gradient over the axes along which the input was broadcast."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = xp.sum(g, axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return xp.sum(g, axis=axes, keepdims=True) if axes else g


def gradient(inp: RegressionInputs, o: RegressionOptions) -> Array:
    r"""The gradient with respect to the input: the slope of each element's loss
    (:math:`2e`, :math:`\operatorname{sign} e`, :math:`\operatorname{clip}(e, -\delta,
    \delta)`, ...), times the weight and the reduction's scale, summed over broadcast axes."""
    xp = inp.xp
    g = _element_slope(xp, inp.x - inp.target, o)
    if inp.weight is not None:
        g = g * inp.weight
    den = _denominator(inp, o)
    g = g * reduction_scale(xp, g, o.reduction, denominator=den)
    return restore_dtype(xp, _unbroadcast(xp, g, inp.input_shape), inp.input_dtype)


# ---------------------------------------------------------------------------------------------
# ATen delegation (PyTorch): one predicate, next to the delegation.
# ---------------------------------------------------------------------------------------------

_ATEN = {"mse": "mse_loss", "l1": "l1_loss", "huber": "huber_loss", "smooth_l1": "smooth_l1_loss"}


def aten_applies(inp: RegressionInputs, o: RegressionOptions) -> bool:
    """Whether ATen computes this call: PyTorch tensors, a loss ATen has, no weight, a
    PyTorch reduction (or ``batchmean`` as a sum), NaN for an empty mean, Python numbers."""
    return (
        is_torch(inp.x)
        and o.loss in _ATEN
        and inp.weight is None
        and math.isnan(o.empty_mean)
        and isinstance(o.delta, float)
        and isinstance(o.beta, float)
    )


def aten_loss(inp: RegressionInputs, o: RegressionOptions) -> Array:
    """The loss through ATen (see :func:`aten_applies`)."""
    import torch.nn.functional as F

    red = "sum" if o.reduction == "batchmean" else o.reduction
    kwargs = {"huber": {"delta": o.delta}, "smooth_l1": {"beta": o.beta}}.get(o.loss, {})
    out = getattr(F, _ATEN[o.loss])(inp.x, inp.target, reduction=red, **kwargs)
    if o.reduction == "batchmean":
        out = out / (inp.x.shape[0] if inp.x.ndim else 1)
    return out


# ---------------------------------------------------------------------------------------------
# Entry points and public functions.
# ---------------------------------------------------------------------------------------------


def regression_loss(
    input: Array, target: Array, weight: Array | None, o: RegressionOptions
) -> Array:
    """The loss of a regression call: ATen where :func:`aten_applies`, else :func:`forward`."""
    inp = prepare(input, target, weight)
    if aten_applies(inp, o):
        out = aten_loss(inp, o)
    else:
        with quiet(inp.x):
            out = forward(inp, o)
    return restore_dtype(inp.xp, out, inp.out_dtype)


def regression_value_and_grad(
    input: Array, target: Array, weight: Array | None, o: RegressionOptions
) -> tuple[Array, Array]:
    """The loss (generic path) and its gradient with respect to ``input``."""
    inp = prepare(input, target, weight)
    with quiet(inp.x):
        value = forward(inp, o)
        g = gradient(inp, o)
    return restore_dtype(inp.xp, value, inp.out_dtype), g


def mse_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    *,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Mean squared error, element-wise :math:`\ell = w (x - y)^2`.

    .. math::

        \mathrm{MSE} = \frac{\sum_i w_i (x_i - y_i)^2}{\sum_i w_i}

    Follows :func:`torch.nn.functional.mse_loss` (PyTorch 2.13, with ``weight``; same
    positional parameters): without weights the mean is over all elements; with weights it
    divides by the sum of the weights as they broadcast with the input (an input that
    broadcasts against a larger target counts each weight once, as PyTorch's does;
    ``mean_divisor="weight"`` divides by the weights over the losses, ``"count"`` by the
    number of elements).

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together (with PyTorch's warning when their shapes
        differ).
    size_average, reduce : bool, optional
        Deprecated (PyTorch's legacy arguments): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    weight : array_like, optional
        Element weights, broadcast to the input.
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
    return regression_loss(
        input, target, weight, RegressionOptions.from_arguments(locals(), loss="mse")
    )


def l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
    *,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Mean absolute error, element-wise :math:`\ell = w |x - y|`.

    .. math::

        \mathrm{MAE} = \frac{\sum_i w_i |x_i - y_i|}{\sum_i w_i}

    Follows :func:`torch.nn.functional.l1_loss` (PyTorch 2.13; same positional parameters):
    a weighted mean divides by the sum of the weights as they broadcast with the input, as
    :func:`mse_loss`.

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together (with PyTorch's warning when their shapes
        differ).
    size_average, reduce : bool, optional
        Deprecated (PyTorch's legacy arguments): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    weight : array_like, optional
        Element weights, broadcast to the input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of a weighted ``"mean"``; "auto" is PyTorch's ("weight" here).
    empty_mean : float, default nan
        The mean of an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.l1_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2], weight=[1.0, 2.0, 3.0, 4.0])
    np.float64(1.33)
    """
    return regression_loss(
        input, target, weight, RegressionOptions.from_arguments(locals(), loss="l1")
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
    NaN; the errors are divided by their largest magnitude before they are squared, so errors
    of 1e200 or 1e-300 (1e20 in float32) neither overflow nor underflow.

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together.
    axis : int or tuple of int, optional
        Axes the squared errors are averaged over before the root; None for all.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the per-row RMSE values are combined (a scalar is left as is).
    weight : array_like, optional
        Element weights: a weighted mean of squared errors.
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
    o = RegressionOptions.from_arguments(locals(), loss="rmse")
    inp = prepare(input, target, weight)
    with quiet(inp.x):
        out = forward(inp, o)
    return restore_dtype(inp.xp, out, inp.out_dtype)


def huber_loss(
    input: Array,
    target: Array,
    reduction: Reduction = "mean",
    delta: Hyper = 1.0,
    weight: Array | None = None,
    *,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Huber loss: squared error for small errors, absolute error beyond ``delta``.

    .. math::

        \ell = w \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta (|e| - \tfrac12 \delta) & \text{otherwise} \end{cases}, \qquad e = x - y

    Robust to outliers: their gradient is capped at :math:`\pm\delta`. Follows
    :func:`torch.nn.functional.huber_loss` (PyTorch 2.13; same positional parameters): a
    weighted ``"mean"`` divides by the number of elements (``mean_divisor="weight"`` divides by
    the sum of the weights, as :func:`mse_loss`). Keras ``Huber`` and optax ``huber_loss`` use
    the same function.

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    delta : float, default 1.0
        Where the quadratic turns linear, > 0 (may be a traced 0-d array); +inf, as PyTorch
        takes it, is half the squared error.
    weight : array_like, optional
        Element weights.
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
    return regression_loss(
        input, target, weight, RegressionOptions.from_arguments(locals(), loss="huber")
    )


def smooth_l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    beta: Hyper = 1.0,
    *,
    weight: Array | None = None,
    mean_divisor: MeanDivisor = "auto",
    empty_mean: float = math.nan,
) -> Array:
    r"""Smooth L1 loss: Huber loss divided by ``beta``.

    .. math::

        \ell = w \begin{cases} \tfrac12 e^2 / \beta & |e| < \beta \\
        |e| - \tfrac12 \beta & \text{otherwise} \end{cases}

    Follows :func:`torch.nn.functional.smooth_l1_loss` (same positional parameters;
    ``beta = 0`` is the L1 loss). Weights as :func:`huber_loss`.

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together (with PyTorch's warning when their shapes
        differ).
    size_average, reduce : bool, optional
        Deprecated (PyTorch's legacy arguments): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    beta : float, default 1.0
        Where the quadratic part meets the linear one, >= 0 (0: the L1 loss; +inf, as
        PyTorch takes it, gives 0).
    weight : array_like, optional
        Element weights, broadcast to the input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of a weighted ``"mean"``; "auto" is PyTorch's ("count" here).
    empty_mean : float, default nan
        The mean of an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.smooth_l1_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2], beta=2.0)
    np.float64(0.65875)
    """
    return regression_loss(
        input, target, weight, RegressionOptions.from_arguments(locals(), loss="smooth_l1")
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

    Parameters
    ----------
    input, target : array_like
        Predictions and targets, broadcast together (with PyTorch's warning when their shapes
        differ).
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    weight : array_like, optional
        Element weights, broadcast to the input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of a weighted ``"mean"``; "auto" is "weight" here (PyTorch has no log-cosh
        loss).
    empty_mean : float, default nan
        The mean of an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.log_cosh_loss([0.0, 0.0, 0.0, 0.0], [0.5, 1.5, -3.0, 0.2]).round(10)
    np.float64(0.8261878136)
    """
    return regression_loss(
        input, target, weight, RegressionOptions.from_arguments(locals(), loss="log_cosh")
    )
