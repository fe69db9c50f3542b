r"""The per-row formulas of the metrics, written once against the Array API standard.

The one-shot functions, the streaming accumulators and :class:`ScoreAccumulator` all call these
on a prepared floating array ``proba`` of shape ``(n, C)`` and class indices ``y`` (0..C-1):

.. math::

    \ell_i = -\log \operatorname{clip}(p_{i, y_i}, \varepsilon, 1 - \varepsilon), \qquad
    b_i = \sum_c (\mathbb 1[c = y_i] - p_{ic})^2, \qquad
    H_i = -\sum_c p_{ic} \log p_{ic}

The clipped log is the core's scikit-learn clipping convention and the entropy the core's
``-sum(p log p)``; nothing here repeats a formula of the core.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from crossentropy import _formulas as fm
from crossentropy._lib.namespace import Array, Namespace, device_of

__all__ = [
    "LOSS_EDGES",
    "RENORMALIZE",
    "bin_index",
    "brier_scale",
    "brier_sum",
    "calibration_norm",
    "entropy_sum",
    "gather",
    "log_loss_sum",
    "loss_bin",
    "quantile_edges",
    "renormalized",
    "row_brier",
    "row_entropy",
    "row_log_loss",
    "uniform_edges",
]

#: Fixed edges of the per-row loss histogram (nats): 0.25 wide up to 10, then one bin to 37
#: (the largest loss is -log(eps) = 36.04 for float64), so histograms of workers merge exactly.
LOSS_EDGES: tuple[float, ...] = (*(i / 4 for i in range(41)), 37.0)


def loss_bin(loss: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The bin of each loss on :data:`LOSS_EDGES` (bins ``[lo, hi)``, the last one closed).

    ``floor(4 loss)`` is exact (a power-of-two scaling), so this is
    ``searchsorted(LOSS_EDGES, loss, side="right") - 1`` without the search.
    """
    last = len(LOSS_EDGES) - 2
    out: np.ndarray[Any, Any] = np.minimum(np.floor(loss * 4), last).astype(np.intp)
    return out


def gather(xp: Namespace, proba: Array, y: Array) -> Array:
    """``proba[i, y[i]]``: the core's gather (``take_along_axis`` where the backend has it)."""
    return fm.gather(xp, proba, y)


def row_log_loss(xp: Namespace, p_true: Array, eps_dtype: Any, clip: Any = "sklearn") -> Array:
    """``-log(clip(p_true, eps, 1 - eps))`` with ``eps`` of ``eps_dtype`` (scikit-learn's), or
    ``clip`` itself when it is a number."""
    return 0 - fm.prob_log(xp, p_true, clip, eps_dtype)


def brier_scale(n_classes: int, scale_by_half: bool | str = "auto") -> float:
    """The factor of the summed Brier score: ``0.5`` for two classes under ``"auto"`` (the
    binary Brier score, scikit-learn's), else as ``scale_by_half`` says."""
    half = n_classes < 3 if scale_by_half == "auto" else bool(scale_by_half)
    return 0.5 if half else 1.0


#: The ways of renormalising rows: Kaggle's (divide each row by its sum, then clip) and
#: scikit-learn's before 1.5 (clip, then divide by the clipped row's sum).
RENORMALIZE = ("before_clip", "after_clip")


def renormalized(p: np.ndarray[Any, Any], eps: float, order: str) -> np.ndarray[Any, Any]:
    r"""Probabilities as a renormalising convention scores them (float64):

    .. math::

        \text{before\_clip (Kaggle)}:\ \operatorname{clip}\Bigl(\frac{p_{ic}}{\sum_k p_{ik}},
            \varepsilon, 1 - \varepsilon\Bigr), \qquad
        \text{after\_clip (scikit-learn < 1.5)}:\ \frac{\operatorname{clip}(p_{ic},
            \varepsilon, 1 - \varepsilon)}{\sum_k \operatorname{clip}(p_{ik}, \varepsilon,
            1 - \varepsilon)}

    Before clipping, rows of ``p`` must have a positive sum (checked by the callers, who know
    the rows), and a row whose sum overflows float64 is divided by its largest entry first;
    after it, a row of zeros is uniform."""
    q = p.astype(np.float64)
    if order == "before_clip":
        with np.errstate(over="ignore"):
            total = q.sum(axis=1, keepdims=True)
        huge = np.isinf(total[:, 0])
        if huge.any():  # scores near float64's maximum: the same ratios, from scaled rows
            q[huge] /= q[huge].max(axis=1, keepdims=True)
            total[huge] = q[huge].sum(axis=1, keepdims=True)
        out: np.ndarray[Any, Any] = np.clip(q / total, eps, 1 - eps)
        return out
    q = np.clip(q, eps, 1 - eps)
    scaled: np.ndarray[Any, Any] = q / q.sum(axis=1, keepdims=True)
    return scaled


def log_loss_sum(xp: Namespace, p_true: Array, eps_dtype: Any, weight: Array | None) -> Array:
    """``sum_i w_i row_log_loss_i``, negating once after the sum (the same value: negation is
    exact and commutes with rounding)."""
    logs = fm.prob_log(xp, p_true, "sklearn", eps_dtype)
    return 0 - (xp.sum(logs) if weight is None else xp.sum(logs * weight))


def row_brier(xp: Namespace, proba: Array, p_true: Array) -> Array:
    """``sum_c (onehot_c - p_c)^2 = sum_c p_c^2 - 2 p_y + 1`` per row."""
    return xp.sum(proba * proba, axis=-1) - 2 * p_true + 1


def brier_sum(xp: Namespace, proba: Array, p_true: Array) -> Array:
    """``sum_i row_brier_i = sum(p^2) - 2 sum(p_true) + n``: the unweighted total of
    :func:`row_brier` from flat sums (no slow per-row reduction)."""
    if isinstance(proba, np.ndarray) and proba.dtype == np.float64:  # one pass, no temporary
        flat = proba.reshape(-1)
        squares: Array = np.einsum("i,i->", flat, flat)
    else:
        squares = xp.sum(proba * proba)
    return squares - 2 * xp.sum(p_true) + p_true.shape[0]


def row_entropy(xp: Namespace, proba: Array) -> Array:
    """``-sum_c p_c log p_c`` per row, in nats (``0 log 0 = 0``)."""
    return fm.cross_entropy(xp, proba, proba, -1)


def entropy_sum(xp: Namespace, proba: Array) -> Array:
    """The total of :func:`row_entropy` over the rows: the same terms, one flat sum.

    On NumPy float64 the terms ``x log x`` are summed in one pass (3x faster than
    :func:`row_entropy`'s formula); where ``x = 0`` the log is not taken and the term is 0.
    Other arrays go to :func:`row_entropy`'s formula."""
    if isinstance(proba, np.ndarray) and proba.dtype == np.float64:
        flat = proba.reshape(-1)
        if flat.size and flat.min() > 0:
            logs = np.log(flat)
        else:
            logs = np.zeros_like(flat)
            np.log(flat, out=logs, where=flat != 0)
        total: Array = 0 - np.einsum("i,i->", flat, logs)
        return total
    return fm.cross_entropy(xp, proba, proba, None)


def uniform_edges(n_bins: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``n_bins`` bins of equal width on [0, 1] (:func:`sklearn.calibration.calibration_curve`)."""
    return np.linspace(0.0, 1.0, n_bins + 1)


def quantile_edges(conf: np.ndarray[Any, Any], n_bins: int) -> np.ndarray[Any, Any]:
    """Equal-mass edges: the ``k / n_bins`` percentiles of ``conf`` (linear interpolation), as
    :func:`sklearn.calibration.calibration_curve` ``(strategy="quantile")``."""
    return np.asarray(np.percentile(conf, np.linspace(0, 1, n_bins + 1) * 100), dtype=np.float64)


#: Cells of the look-up table of :func:`_lut_bin_index` (a power of two: ``x * 2**16`` is exact).
_LUT_CELLS = 1 << 16
#: From this many values on, :func:`bin_index` goes through the look-up table.
_LUT_MIN = 1 << 15
_STRADDLE = np.iinfo(np.int32).max


@functools.lru_cache(maxsize=16)
def _bin_table(edges: tuple[float, ...]) -> np.ndarray[Any, Any]:
    """For each cell ``[j, j + 1) / 2**16`` of [0, 1] (and the point 1), its bin under
    ``searchsorted(edges[1:-1], x, side="left")``, or ``_STRADDLE`` where a cell holds values
    of two bins."""
    inner = np.asarray(edges[1:-1])
    j = np.arange(_LUT_CELLS + 1, dtype=np.float64)
    lo = np.searchsorted(inner, j / _LUT_CELLS, side="left")
    hi = np.searchsorted(inner, np.minimum(j + 1, _LUT_CELLS) / _LUT_CELLS, side="left")
    # a cell's values x satisfy lo <= x < hi: the same bin at both ends means one bin throughout
    return np.where(lo == hi, lo, _STRADDLE).astype(np.int32)


def _lut_bin_index(x: np.ndarray[Any, Any], edges: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """:func:`bin_index` of values in [0, 1] through a table of 2**16 cells: the cell of ``x``
    is ``floor(x * 2**16)`` exactly; only the values in a cell that holds an edge are searched.
    The same bins as ``searchsorted``, twice as fast on large arrays."""
    table = _bin_table(tuple(float(e) for e in edges))
    # int32 cells and bins: half the memory traffic of intp (np.bincount takes them as they are)
    # (np.take: half the time of fancy indexing on 1-D indices)
    b: np.ndarray[Any, Any] = np.take(table, (x * _LUT_CELLS).astype(np.int32))
    near = np.flatnonzero(b == _STRADDLE)
    if near.size:
        b.reshape(-1)[near] = np.searchsorted(edges[1:-1], x.reshape(-1)[near], side="left")
    return b


def bin_index(
    xp: Namespace, conf: Array, edges: np.ndarray[Any, Any], *, table: bool = False
) -> Array:
    """The bin of each confidence: ``searchsorted(edges[1:-1], conf, side="left")``.

    A value on an inner edge goes to the lower bin, as in scikit-learn's calibration curve.
    NumPy arrays of :data:`_LUT_MIN` values or more, or any size with ``table=True`` (a caller
    that bins many blocks with the same edges: the table is built once, in about 2 ms), go
    through a look-up table (values in [0, 1]), 5x faster than the search.
    """
    inner = edges[1:-1]
    if isinstance(conf, np.ndarray):
        if (table or conf.size >= _LUT_MIN) and inner.size:
            return _lut_bin_index(conf, edges)
        return np.searchsorted(inner, conf, side="left")
    if inner.shape[0] == 0:
        return xp.zeros(conf.shape, dtype=xp.int64, device=device_of(conf))
    e = xp.asarray(inner, dtype=conf.dtype, device=device_of(conf))
    above = xp.expand_dims(conf, axis=-1) > e
    return xp.sum(xp.astype(above, xp.int64), axis=-1)


def calibration_norm(
    count: np.ndarray[Any, Any],
    conf_sum: np.ndarray[Any, Any],
    correct_sum: np.ndarray[Any, Any],
    norm: str,
) -> float:
    r"""Calibration error from per-bin totals (weights, confidences, outcomes).

    .. math::

        \mathrm{ECE} = \sum_b \frac{W_b}{W} |\bar o_b - \bar c_b|, \quad
        \mathrm{MCE} = \max_{b: W_b > 0} |\bar o_b - \bar c_b|, \quad
        \mathrm{RMSCE} = \Bigl(\sum_b \frac{W_b}{W} (\bar o_b - \bar c_b)^2\Bigr)^{1/2}
    """
    total = float(np.sum(count))
    nonzero = count > 0
    if total <= 0 or not np.any(nonzero):
        return float("nan")
    gap = np.abs(correct_sum[nonzero] - conf_sum[nonzero]) / count[nonzero]
    if norm == "max":
        return float(np.max(gap))
    share = count[nonzero] / total
    if norm == "l2":
        return float(np.sqrt(np.sum(share * gap * gap)))
    return float(np.sum(share * gap))
