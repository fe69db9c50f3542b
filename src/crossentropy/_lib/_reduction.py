"""The shared reductions: ``none``, ``mean``, ``sum`` and ``batchmean``."""

from __future__ import annotations

import math
import numbers
from typing import Literal

from crossentropy._lib._namespace import Array, Namespace, device_of, quiet
from crossentropy._lib._validation import check_choice

__all__ = [
    "MEAN_DIVISORS",
    "REDUCTIONS",
    "MeanDivisor",
    "Reduction",
    "check_empty_mean",
    "check_reduction",
    "divide",
    "reduce",
]

REDUCTIONS = ("none", "mean", "sum", "batchmean")
MEAN_DIVISORS = ("auto", "weight", "count")
Reduction = Literal["none", "mean", "sum", "batchmean"]
MeanDivisor = Literal["auto", "weight", "count"]


def check_reduction(reduction: object, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    """Validate ``reduction``."""
    check_choice(reduction, "reduction", allowed)
    return str(reduction)


def check_empty_mean(value: object) -> float:
    """Validate ``empty_mean``: the value of a mean over zero valid elements (NaN or a number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"empty_mean must be a number (nan or 0.0); got {type(value).__name__}")
    v = float(value)
    if math.isinf(v):
        raise ValueError(f"empty_mean must be nan or a finite number; got {v}")
    return v


def divide(xp: Namespace, num: Array, den: Array, empty_mean: float) -> Array:
    """``num / den``, with ``empty_mean`` where ``den == 0``.

    With ``empty_mean`` NaN this is the plain quotient (0/0 = NaN, as torch). Otherwise the
    denominator is replaced before dividing (a double ``where``), so gradients stay finite.
    """
    if math.isnan(empty_mean):
        with quiet(num):  # 0/0 -> nan, as torch
            return num / den
    nonzero = den != 0
    safe = xp.where(nonzero, den, xp.ones_like(den))
    fill = xp.asarray(empty_mean, dtype=num.dtype, device=device_of(num))
    return xp.where(nonzero, num / safe, fill)


def reduce(
    xp: Namespace,
    loss: Array,
    reduction: str,
    *,
    denominator: Array | None = None,
    batch_size: int | None = None,
    empty_mean: float = math.nan,
) -> Array:
    """Reduce an element-wise loss.

    ``mean`` divides the sum by ``denominator`` (the number of elements when it is None);
    ``batchmean`` divides the sum by ``batch_size`` (the size of the first axis when None).
    """
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    if reduction == "batchmean":
        n = batch_size if batch_size is not None else (loss.shape[0] if loss.ndim else 1)
        den = xp.asarray(float(n), dtype=total.dtype, device=device_of(total))
        return divide(xp, total, den, empty_mean)
    if denominator is None:
        size = 1
        for s in loss.shape:
            size *= int(s)
        denominator = xp.asarray(float(size), dtype=total.dtype, device=device_of(total))
    return divide(xp, total, denominator, empty_mean)
