"""Backend-native fast paths that the generic array-API code delegates to.

Each function here computes exactly what the generic code computes, with the backend's own
primitives; tests hold each one against the generic path.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["numpy_logsumexp_rows", "shared_executor"]

# Row blocks of about this many elements stay in the core's cache between the passes.
_BLOCK_ELEMENTS = 1 << 18
# Below this many elements, threads cost more than they save.
_THREAD_MIN_ELEMENTS = 1 << 21
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    """The process's thread pool for NumPy work that releases the GIL (one per core, at most
    eight); its tasks must not wait on tasks of the same pool. A forked child starts its own
    (the parent's threads do not exist there)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8))
        return _pool


def _forget_pool() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


Array = np.ndarray[Any, Any]


def _lse_block(x: Array, out_m: Array, out_s: Array, lo: int, hi: int) -> None:
    block = x[lo:hi]
    m = np.max(block, axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0
    buf = np.subtract(block, m)
    np.exp(buf, out=buf)
    with np.errstate(divide="ignore"):
        np.log(np.sum(buf, axis=1), out=out_s[lo:hi])
    out_m[lo:hi] = m[:, 0]


def numpy_logsumexp_rows(x: Array) -> tuple[Array, Array]:
    """Log-sum-exp over the last axis of a 2-D floating NumPy array, row block by row block,
    as its two parts ``(m, log(sum(exp(x - m))))`` (the sum is the log-sum-exp).

    The max, subtract, exp and sum passes run on blocks that fit in cache, and blocks run on a
    thread pool for large inputs (NumPy's ufuncs release the GIL). Same formula as the generic
    code, with a non-finite row max replaced by 0.
    """
    n, c = x.shape
    out_m = np.zeros(n, dtype=x.dtype)
    out_s = np.empty(n, dtype=x.dtype)
    if n == 0:
        return out_m, out_s
    if c == 0:
        out_s.fill(-np.inf)
        return out_m, out_s
    x = np.ascontiguousarray(x)
    rows = max(1, _BLOCK_ELEMENTS // c)
    bounds = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
    if x.size >= _THREAD_MIN_ELEMENTS and len(bounds) > 1 and (os.cpu_count() or 1) > 1:
        list(shared_executor().map(lambda b: _lse_block(x, out_m, out_s, b[0], b[1]), bounds))
    else:
        for lo, hi in bounds:
            _lse_block(x, out_m, out_s, lo, hi)
    return out_m, out_s
