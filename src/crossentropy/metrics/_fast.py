"""The NumPy fast path of the metrics: validation, row sums and the gather in one read pass.

scikit-learn's ``log_loss`` binarises the labels into an ``(n, C)`` matrix and sums rows of
``xlogy``; almost all of its time goes there and into the row-sum check. Here a C-contiguous
float matrix is walked in row blocks that stay in cache, and for each block:

- the largest bit pattern (as unsigned integers) says whether every entry is in [+0, 1]
  (negatives, NaN and inf have larger patterns): one pass for the range and finiteness checks;
- a matrix-vector product with a vector of ones (BLAS) gives the row sums, of which only the
  smallest and the largest are kept (scikit-learn's warning needs no more). Measured on the
  2-core reference machine, 1M x 10 float64: 8.2-8.7 ms for the whole log loss, against
  10.1-10.5 ms with ``einsum("ij->i")``. On a machine whose other cores are busy, BLAS threads
  can wait for them: ``einsum`` is steadier there, BLAS faster when the cores are free;
- a flat ``take`` gathers ``p[i, y_i]``, and an optional ``reduce`` callback turns the block of
  gathered probabilities into a partial sum while it is hot (the log loss of the block), so no
  temporary of ``n`` values is allocated.

Apart from BLAS, the pass is single-threaded: splitting the blocks between two threads on the
2-core reference machine measured no gain. The generic array-API path computes
the same values; tests hold this one against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["BITS_OF_ONE", "RowsPass", "rows_pass", "top_label"]

# Rows per block: about this many elements (4 MiB of float64, measured best: the block stays in
# the last-level cache between its passes while the per-block overhead stays small).
_BLOCK_ELEMENTS = 1 << 19

#: Unsigned view dtype and the bit pattern of 1.0 for each floating dtype of the fast path.
BITS_OF_ONE: dict[np.dtype[Any], tuple[type[np.unsignedinteger[Any]], int]] = {
    np.dtype(np.float64): (np.uint64, int(np.float64(1.0).view(np.uint64))),
    np.dtype(np.float32): (np.uint32, int(np.float32(1.0).view(np.uint32))),
}

Vector = np.ndarray[Any, Any]
#: ``reduce(lo, hi, p_true_block)``: a partial sum for rows ``[lo, hi)``.
Reduce = Callable[[int, int, Vector], float]


class RowsPass(NamedTuple):
    """What one pass over the rows found."""

    p_true: Vector
    in_unit_interval: bool
    sum_range: tuple[float, float] | None
    total: float


def rows_pass(
    p: np.ndarray[Any, Any],
    index: Vector,
    *,
    sums: bool = True,
    reduce: Reduce | None = None,
    keep: bool = True,
) -> RowsPass:
    """Gather ``p[i, index[i]]``, check the range, and find the smallest and largest row sums.

    ``p`` is a C-contiguous float32 or float64 matrix ``(n, C)``, ``index`` a vector of valid
    column indices. ``in_unit_interval`` False means some entry is negative (``-0.0``
    included), NaN, inf or above 1: the caller looks closer. ``total`` is the sum of
    ``reduce`` over the blocks (0 without ``reduce``). With ``keep=False`` the gathered
    probabilities only go through ``reduce`` (a block-sized buffer; ``p_true`` is empty), and
    without ``reduce`` they are not gathered at all.
    """
    n, c = p.shape
    utype, one = BITS_OF_ONE[p.dtype]
    flat = p.reshape(-1)
    bits = flat.view(utype)
    p_true = np.empty(n if keep else 0, dtype=p.dtype)
    rows = max(1, _BLOCK_ELEMENTS // max(c, 1))
    offsets = np.arange(0, rows * c, c, dtype=np.intp)
    idx = index if index.dtype == np.intp else index.astype(np.intp)

    def run(first: int, last: int) -> tuple[int, float, float, float]:
        """The blocks of rows ``[first, last)``: top bit pattern, row-sum range, total."""
        top, low, high, total = 0, np.inf, -np.inf, 0.0
        size = min(rows, last - first)
        row_sums = np.empty(size, dtype=p.dtype)
        ones = np.ones(c, dtype=p.dtype)
        where = np.empty(size, dtype=np.intp)
        gathered = np.empty(0 if keep else size, dtype=p.dtype)
        for lo in range(first, last, rows):
            hi = min(lo + rows, last)
            m = hi - lo
            block = flat[lo * c : hi * c]
            if sums:  # first: it streams the block into cache
                s = np.matmul(p[lo:hi], ones, out=row_sums[:m])
                low, high = min(low, float(s.min())), max(high, float(s.max()))
            top = max(top, int(bits[lo * c : hi * c].max()))
            if keep or reduce is not None:
                np.add(offsets[:m], idx[lo:hi], out=where[:m])
                # indices are valid (encoded labels): "wrap" skips the bounds-error path
                out = p_true[lo:hi] if keep else gathered[:m]
                np.take(block, where[:m], out=out, mode="wrap")
            if reduce is not None:
                total += reduce(lo, hi, out)
        return top, low, high, total

    if n == 0 or c == 0:
        return RowsPass(p_true, True, None, 0.0)
    top, low, high, total = run(0, n)
    return RowsPass(p_true, top <= one, (low, high) if sums else None, total)


#: From this many entries on, :func:`top_label` splits the rows between two threads.
_THREADED_TOP = 1 << 21


def top_label(p: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The top label of each row and its probability: ``argmax(p, axis=1)`` and
    ``p[i, argmax_i]``, block by block (the gather reads the block while it is in cache).

    Unlike the memory-bound read pass, the row argmax is compute-bound (about 4 ns an entry for
    10 columns), so large matrices are split between two threads (NumPy releases the GIL):
    0.6 of the time on the 2-core reference machine.
    """
    p = np.ascontiguousarray(p)
    n, c = p.shape
    if c == 0:
        raise ValueError("p must have at least one column to hold a top label")
    top = np.empty(n, dtype=np.intp)
    conf = np.empty(n, dtype=p.dtype)
    rows = max(1, _BLOCK_ELEMENTS // max(c, 1))
    flat = p.reshape(-1)

    def run(first: int, last: int) -> None:
        offsets = np.arange(0, rows * c, c, dtype=np.intp)
        where = np.empty(rows, dtype=np.intp)
        for lo in range(first, last, rows):
            hi = min(lo + rows, last)
            m = hi - lo
            np.argmax(p[lo:hi], axis=1, out=top[lo:hi])
            np.add(offsets[:m], top[lo:hi], out=where[:m])
            np.take(flat[lo * c : hi * c], where[:m], out=conf[lo:hi], mode="wrap")

    if p.size < _THREADED_TOP:
        run(0, n)
        return top, conf
    from concurrent.futures import ThreadPoolExecutor

    half = n // 2
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(run, half, n)
        run(0, half)
        other.result()  # its error, if any, is raised here
    return top, conf
