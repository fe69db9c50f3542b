"""Compensated float64 sums: the state of every streaming accumulator.

A running sum is kept as a pair ``(hi, lo)`` (Neumaier's compensated summation): ``hi`` is the
rounded sum and ``lo`` the rounding error accumulated so far. Adding a batch sum or merging
another pair loses no more than a few units in the last place of the total, whatever the
number of batches or the grouping of the merges, so a stream of batches and a tree of merged
workers give the one-shot answer to ~1e-16 relative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ExactSum"]

Float64 = np.ndarray[Any, np.dtype[np.float64]]


def _two_sum(a: Float64, b: Float64) -> tuple[Float64, Float64]:
    """``a + b`` rounded, and its exact rounding error (Knuth's branch-free TwoSum)."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err


class ExactSum:
    """A float64 array of running sums with a compensation term (picklable, mergeable)."""

    __slots__ = ("hi", "lo")

    def __init__(self, shape: int | tuple[int, ...] = ()) -> None:
        self.hi: Float64 = np.zeros(shape, dtype=np.float64)
        self.lo: Float64 = np.zeros(shape, dtype=np.float64)

    def add(self, value: Any) -> None:
        """Add ``value`` (broadcast to the shape of the sums)."""
        v = np.asarray(value, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            hi, err = _two_sum(self.hi, v)
        # inf + x: keep inf, do not let inf - inf poison the compensation
        self.lo = self.lo + np.where(np.isfinite(err), err, 0.0)
        self.hi = hi

    def merge(self, other: ExactSum) -> None:
        """Add another running sum (its compensation included)."""
        self.add(other.hi)
        self.lo = self.lo + other.lo

    def value(self) -> Float64:
        """The compensated total."""
        return self.hi + self.lo

    def __getstate__(self) -> tuple[Float64, Float64]:
        return self.hi, self.lo

    def __setstate__(self, state: tuple[Float64, Float64]) -> None:
        self.hi, self.lo = state
