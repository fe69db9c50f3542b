r"""A streaming Poisson bootstrap whose weights are a function of a row key.

Each row :math:`i` gets, in replicate :math:`b`, a weight :math:`w_{bi}` from
:math:`\mathrm{Poisson}(1)`, drawn from a counter-based hash of ``(seed, key_i, b)``
(splitmix64, 16 bits per weight, inverse CDF). Because a weight depends on the row's key only,
prediction sets scored one after the other, in any batch sizes, on any workers, give each row
the same weights: their bootstrap totals pair up row by row without ever holding two sets at
once, and the difference of their replicate means is the paired bootstrap of the difference.
Memory is ``replicates × (metrics + 1)`` numbers.

With sample weights :math:`s_i` the totals are :math:`\sum_i w_{bi} s_i v_i` and
:math:`\sum_i w_{bi} s_i`: the replicate means are weighted means of the resampled rows.

The 16-bit inverse CDF puts each probability of Poisson(1) within :math:`2^{-16}` of its
value (mean 1 to ~1e-5).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crossentropy._lib.checks import check_int
from crossentropy.metrics._calibration import check_seed

__all__ = ["BootstrapTotals", "poisson_weights"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Steele, Lea & Flood's splitmix64 finaliser, elementwise on uint64 (wrapping)."""
    z: np.ndarray[Any, Any] = x + _GOLDEN
    t = z >> np.uint64(30)
    z ^= t
    z *= _M1
    np.right_shift(z, np.uint64(27), out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z


def _poisson_table() -> np.ndarray[Any, Any]:
    """Poisson(1) by inverse CDF of a 16-bit uniform: ``table[u]`` for ``u`` in 0..65535."""
    cdf, k, p = [], 0, math.exp(-1.0)
    total = 0.0
    while total < 1 - 2**-20:
        total += p
        cdf.append(total)
        k += 1
        p /= k
    edges = np.round(np.array(cdf) * 65536.0)
    out: np.ndarray[Any, Any] = np.searchsorted(edges, np.arange(65536), side="right").astype(
        np.uint8
    )
    return out


_TABLE = _poisson_table()

#: Rows whose weights are drawn at once (their float64 weights take ``_CHUNK * 8 *
#: replicates`` bytes: 13 MB for 200 replicates).
_CHUNK = 8192


def poisson_weights(keys: np.ndarray[Any, Any], replicates: int, seed: int) -> np.ndarray[Any, Any]:
    """The ``(n, replicates)`` uint8 Poisson(1) weights of rows with integer ``keys``."""
    n = keys.shape[0]
    words = -(-replicates // 4)  # four 16-bit draws per 64-bit hash
    base = keys.astype(np.uint64) * np.uint64(words)
    salt = splitmix64(np.array([seed], dtype=np.uint64))[0]
    x = (base[:, None] + np.arange(words, dtype=np.uint64)) ^ salt
    draws = splitmix64(x).view(np.uint16).reshape(n, 4 * words)[:, :replicates]
    out: np.ndarray[Any, Any] = _TABLE[draws]
    return out


class BootstrapTotals:
    """Replicate totals of per-row values under key-determined Poisson weights, mergeable.

    Parameters
    ----------
    names : sequence of str
        The per-row values (columns of ``update``'s ``values``).
    replicates : int
        Bootstrap replicates.
    seed : int
        The weights' seed: totals of two prediction sets pair up only with the same seed.
    """

    def __init__(self, names: list[str], replicates: int, seed: int) -> None:
        self.names = list(names)
        self.replicates = check_int(replicates, "replicates")
        if self.replicates < 1:
            raise ValueError(f"replicates must be >= 1; got {self.replicates}")
        self.seed = check_seed(seed)
        self.weight = np.zeros(self.replicates)
        self.totals = np.zeros((self.replicates, len(self.names)))
        self.n = 0
        # an order-free fingerprint of (key, label, weight) triples: the targets two sets were
        # scored on
        self.fingerprint = 0

    def update(
        self,
        keys: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        labels: np.ndarray[Any, Any] | None = None,
        sample_weight: np.ndarray[Any, Any] | None = None,
    ) -> BootstrapTotals:
        """Add rows: integer ``keys`` ``(n,)``, ``values`` ``(n, len(names))``, the labels
        (class indices) that the fingerprint records, and the rows' sample weights (checked
        by the caller: finite, >= 0)."""
        k = np.asarray(keys).astype(np.uint64)
        v = np.asarray(values, dtype=np.float64)
        s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        for lo in range(0, k.shape[0], _CHUNK):  # weights of a chunk: _CHUNK x replicates
            w = poisson_weights(k[lo : lo + _CHUNK], self.replicates, self.seed)
            w64 = w.astype(np.float64)
            if s is not None:
                w64 *= s[lo : lo + _CHUNK, None]
            self.weight += w64.sum(axis=0)
            self.totals += w64.T @ v[lo : lo + _CHUNK]
        self.n += int(k.shape[0])
        if labels is not None:
            tag = splitmix64(k * np.uint64(1 << 20) + np.asarray(labels).astype(np.uint64))
            if s is not None:  # a weight other than 1 is part of the target (1: as unweighted)
                bits = (s + 0.0).view(np.uint64)  # + 0.0: -0.0 is 0.0
                tag += np.where(s != 1, splitmix64(bits ^ splitmix64(k)), np.uint64(0))
            self.fingerprint = (self.fingerprint + int(np.sum(tag, dtype=np.uint64))) % 2**64
        return self

    def merge(self, other: BootstrapTotals) -> BootstrapTotals:
        """Add the rows of ``other`` (same names, replicates and seed)."""
        if (other.names, other.replicates, other.seed) != (self.names, self.replicates, self.seed):
            raise ValueError("other must have the same names, replicates and seed")
        self.weight += other.weight
        self.totals += other.totals
        self.n += other.n
        self.fingerprint = (self.fingerprint + other.fingerprint) % 2**64
        return self

    def means(self) -> np.ndarray[Any, Any]:
        """Replicate means ``(replicates, len(names))`` (NaN for a replicate of weight 0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray[Any, Any] = self.totals / self.weight[:, None]
        return out
