"""Validation of metric inputs: probabilities and class labels, with the first bad row named."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crossentropy._lib.checks import (
    first_index,
    in_unit_domain,
    nan_outside,
    row_sum_tolerance,
    shape_str,
)
from crossentropy._lib.host import to_host
from crossentropy._lib.namespace import Array, Namespace, is_numpy
from crossentropy._lib.policy import reads
from crossentropy.metrics._fast import BITS_OF_ONE

__all__ = [
    "ProbabilityError",
    "check_index_labels",
    "check_proba_matrix",
    "check_probabilities",
    "describe_probability",
    "row_sum_tolerance",
]


class ProbabilityError(ValueError):
    """A value that is not a probability: its ``index`` in the checked array and its ``value``,
    so that a caller can name the place its own way (a file, its data row and column)."""

    def __init__(self, message: str, index: tuple[int, ...], value: float) -> None:
        super().__init__(message)
        self.index, self.value = index, value


def describe_probability(value: float, *, scores: bool = False) -> str:
    """What is wrong with a value that is not a probability, in words (NaN, infinite,
    negative, or above 1); ``scores``: of rows to be divided by their sums, which take any
    finite value >= 0."""
    if math.isnan(value):
        return "probability is NaN"
    if math.isinf(value):
        return f"probability is {'-' if value < 0 else ''}infinite"
    if scores:
        return f"score {value!r} is negative (rows to renormalize take finite scores >= 0)"
    side = "negative" if value < 0 else "greater than 1"
    return f"probability {value!r} is {side} (probabilities must lie in [0, 1])"


def _all_in_range_numpy(p: np.ndarray[Any, Any], bounded: bool) -> bool:
    """One read pass: are all entries of a float NumPy array in [+0, 1] (``bounded``), or
    finite and >= +0 (the bit patterns of non-negative floats order as their values)?

    False does not mean an entry is bad (-0.0 is fine): the caller then looks closer.
    """
    kind = BITS_OF_ONE.get(p.dtype)
    if kind is None or p.size == 0 or not p.flags.c_contiguous:
        return bool(p.size == 0)
    utype, one = kind
    top = int(p.reshape(-1).view(utype).max())
    return top <= one if bounded else top < int(np.array(np.inf, p.dtype).view(utype))


def _row_of(index: tuple[int, ...]) -> str:
    return f"row {index[0]}" + (f", column {index[1]}" if len(index) > 1 else "")


def check_probabilities(xp: Namespace, p: Array, name: str, *, scores: bool = False) -> Array:
    """Raise :class:`ProbabilityError` (a ``ValueError``) at the first entry of a concrete
    ``p``, in row-major order, that is not a probability (NaN, inf, or outside [0, 1]; with
    ``scores``, rows to be divided by their sums, NaN, inf or negative), naming its row and
    column; returns ``p``. A lazy array cannot be inspected without computing it: its entries
    outside [0, 1] (NaN and inf included) become NaN, so a bad input gives a NaN metric, never
    a silently wrong number."""
    if not reads(None, p):
        return nan_outside(xp, p, scores)
    if is_numpy(p) and _all_in_range_numpy(p, bounded=not scores):
        return p
    idx = first_index(xp, ~in_unit_domain(p, scores))  # NaN fails both comparisons
    if idx is None:
        return p
    value = float(to_host(p)[idx])
    if math.isfinite(value):
        message = f"{name} must hold probabilities in [0, 1]; got {value!r} at {_row_of(idx)}"
    else:
        message = f"{name} must be finite; got {value} at {_row_of(idx)}"
    raise ProbabilityError(message, idx, value)


def check_proba_matrix(
    proba: Any, name: str, *, n_classes: int | None = None, scores: bool = False
) -> np.ndarray[Any, Any]:
    """A C-contiguous NumPy matrix ``(n, C)`` of probabilities, validated: float32 as given
    (float16 widened to it), so it is checked and clipped at its own precision as the one-shot
    metrics do; float64 for every other dtype. With ``scores``, rows to be divided by their
    sums: finite and non-negative entries, any size (Kaggle's rescaling)."""
    p = to_host(proba, name)
    if p.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got an array of dtype {p.dtype}")
    p = np.ascontiguousarray(
        p, dtype=np.float32 if p.dtype in (np.float16, np.float32) else np.float64
    )
    if p.ndim != 2 or (n_classes is not None and p.shape[1] != n_classes):
        expected = "(n, C)" if n_classes is None else f"(n, {n_classes})"
        raise ValueError(f"{name} must have shape {expected}; got {shape_str(p.shape)}")
    check_probabilities(np, p, name, scores=scores)
    return p


def check_index_labels(
    y: Any, name: str, n_classes: int, n_rows: int
) -> np.ndarray[Any, np.dtype[np.intp]]:
    """A NumPy vector of ``n_rows`` class indices in [0, n_classes), validated."""
    a = to_host(y, name)
    if a.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer class indices; got dtype {a.dtype}")
    if a.shape != (n_rows,):
        raise ValueError(
            f"{name} must be a 1-D array of {n_rows} class indices (one per row); got shape "
            f"{shape_str(a.shape)}"
        )
    if n_rows:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= n_classes:
            row = int(np.argmax((a < 0) | (a >= n_classes)))
            raise ValueError(
                f"{name} holds class index {int(a[row])} at row {row}; class indices must lie "
                f"in [0, {n_classes})"
            )
    return a.astype(np.intp, copy=False)
