"""Reductions and their divisors: one home for ``none``, ``mean``, ``sum`` and ``batchmean``,
for the weighted-mean divisor, for the derivative of each reduction, and for PyTorch's legacy
``size_average`` / ``reduce`` arguments."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Literal

from crossentropy._lib.checks import check_choice
from crossentropy._lib.namespace import Array, Namespace, device_of, is_dask, quiet
from crossentropy._lib.policy import torch_compiling, user_stacklevel

__all__ = [
    "MEAN_DIVISORS",
    "REDUCTIONS",
    "MeanDivisor",
    "Reduction",
    "broadcast_shape",
    "check_empty_mean",
    "check_reduction",
    "divide",
    "inverse",
    "legacy_reduction",
    "over_zero",
    "reduce",
    "reduction_scale",
    "weight_total",
]

REDUCTIONS = ("none", "mean", "sum", "batchmean")
MEAN_DIVISORS = ("auto", "weight", "count")
Reduction = Literal["none", "mean", "sum", "batchmean"]
MeanDivisor = Literal["auto", "weight", "count"]

LEGACY_WARNING = (
    "size_average and reduce args will be deprecated, please use reduction='{}' instead."
)


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's mapping of the deprecated ``size_average`` / ``reduce`` to ``reduction``,
    with PyTorch's warning; ``reduction`` itself when both are None."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else bool(size_average)
    reduce = True if reduce is None else bool(reduce)
    out = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn(LEGACY_WARNING.format(out), UserWarning, stacklevel=user_stacklevel())
    return out


#: PyTorch's warning for its deprecated spelling of ``"mean"``, which it still takes.
ELEMENTWISE_MEAN_WARNING = (
    "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead."
)


def check_reduction(reduction: object, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    """Validate ``reduction``; PyTorch's deprecated ``"elementwise_mean"`` is ``"mean"``, with
    PyTorch's warning."""
    if isinstance(reduction, str) and reduction == "elementwise_mean" and "mean" in allowed:
        if not torch_compiling():  # (a warning, or a frame walk, would break the graph)
            warnings.warn(ELEMENTWISE_MEAN_WARNING, UserWarning, stacklevel=user_stacklevel())
        return "mean"
    return str(check_choice(reduction, "reduction", allowed))


def check_empty_mean(value: object) -> float:
    """Validate ``empty_mean``: the value of a mean over zero valid elements (NaN or a number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"empty_mean must be a number (nan, or a finite number such as 0.0); got "
            f"{type(value).__name__}"
        )
    v = float(value)
    if math.isinf(v):
        raise ValueError(f"empty_mean must be nan or a finite number; got {v}")
    return v


def over_zero(xp: Namespace, num: Array) -> Array:
    """``num / +0`` without a division (no warning, no gradient): inf, -inf, or NaN for 0 and
    NaN."""
    inf = xp.full_like(num, xp.inf)
    return xp.where(num > 0, inf, xp.where(num < 0, -inf, xp.full_like(num, xp.nan)))


def divide(xp: Namespace, num: Array, den: Array, empty_mean: float) -> Array:
    """``num / den``, with ``empty_mean`` where ``den == 0``.

    With ``empty_mean`` NaN this is the plain quotient (0/0 = NaN, as torch). Otherwise the
    denominator is replaced before dividing (a double ``where``), so gradients stay finite.
    """
    if math.isnan(empty_mean):
        if is_dask(num) or is_dask(den):  # divided at compute time, past quiet(): 0/0 warned
            zero = den == 0
            return xp.where(zero, over_zero(xp, num), num / xp.where(zero, xp.ones_like(den), den))
        with quiet(num):  # 0/0 -> nan, as torch
            return num / den
    nonzero = den != 0
    safe = xp.where(nonzero, den, xp.ones_like(den))
    fill = xp.asarray(empty_mean, dtype=num.dtype, device=device_of(num))
    return xp.where(nonzero, num / safe, fill)


def inverse(xp: Namespace, den: Array) -> Array:
    """``1 / den``, 0 where ``den == 0``: the derivative of :func:`divide` with respect to its
    numerator (no element contributes to a mean over nothing)."""
    nonzero = den != 0
    return xp.where(nonzero, 1 / xp.where(nonzero, den, xp.ones_like(den)), xp.zeros_like(den))


def weight_total(xp: Namespace, w: Array, shape: tuple[int, ...]) -> Array:
    """The weighted-mean divisor: the sum of the weights broadcast to ``shape`` (the losses',
    or another a rule names)."""
    return xp.sum(xp.broadcast_to(w, shape))


def broadcast_shape(*shapes: tuple[Any, ...]) -> tuple[Any, ...]:
    """The shape that arrays of ``shapes`` broadcast to (of sizes that may be symbolic, as
    ``torch.compile`` traces them; the shapes are known to broadcast)."""
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    return tuple(next((d for d in dims if d != 1), 1) for dims in zip(*padded, strict=True))


def _divisor(
    xp: Namespace,
    like: Array,
    reduction: str,
    denominator: Array | None,
    batch_size: int | None,
) -> Array | None:
    """The divisor of a ``mean`` or ``batchmean`` of ``like`` (None for ``sum`` and ``none``):
    ``denominator`` (the number of elements when None), or the batch size (the first axis)."""
    if reduction == "batchmean":
        n = batch_size if batch_size is not None else (like.shape[0] if like.ndim else 1)
        return _count(xp, n, like)
    if reduction != "mean":
        return None
    if denominator is not None:
        return denominator
    return _count(xp, math.prod(like.shape), like)


def _count(xp: Namespace, n: Any, like: Array) -> Array:
    """A count ``n`` (an integer, or ``torch.compile``'s symbolic size) as a 0-d array of
    ``like``'s dtype and device: a one times ``n``, so that a symbolic size stays symbolic
    (``float(n)`` would fix the compiled graph to one batch size)."""
    return xp.ones((), dtype=like.dtype, device=device_of(like)) * n


def reduce(
    xp: Namespace,
    loss: Array,
    reduction: str,
    *,
    denominator: Array | None = None,
    batch_size: int | None = None,
    empty_mean: float = math.nan,
) -> Array:
    """Reduce an element-wise loss: ``mean`` divides the sum by ``denominator`` (the number of
    elements when None), ``batchmean`` by ``batch_size`` (the first axis when None)."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    den = _divisor(xp, total if loss.ndim == 0 else loss, reduction, denominator, batch_size)
    return total if den is None else divide(xp, total, den, empty_mean)


def reduction_scale(
    xp: Namespace,
    like: Array,
    reduction: str,
    *,
    denominator: Array | None = None,
    batch_size: int | None = None,
) -> Any:
    """The derivative of :func:`reduce` with respect to each element's loss: 1 for ``none``
    and ``sum``, the inverse of the divisor (0 for a zero divisor) for ``mean`` and
    ``batchmean``."""
    den = _divisor(xp, like, reduction, denominator, batch_size)
    return 1.0 if den is None else inverse(xp, den)
