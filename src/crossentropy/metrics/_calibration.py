r"""Calibration at the 2026 state of the art: smooth ECE, CORP reliability and score
decompositions, equal-mass bins, Murphy's decomposition, Wilson intervals.

Every method reads *calibration pairs* :math:`(f_i, o_i)`: a forecast probability and a 0/1
outcome (:func:`~crossentropy.metrics._functions.confidence_and_outcome`: for two classes the
probability of the second class and ``y == 1``; for more, the top-label confidence and
``argmax == y``).

**One home for each formula.** The formulas live here as functions of summaries of the pairs,
so the one-shot functions (exact, in memory) and :class:`CalibrationAccumulator` (streaming,
mergeable) compute them once.

**The grid.** :class:`CalibrationAccumulator` keeps, for each of :data:`GRID` equal cells of
[0, 1] and each outcome, the count :math:`n`, :math:`\sum \lambda` and :math:`\sum \lambda^2`
of the rows' positions :math:`\lambda \in [0, 1)` inside the cell. From these, exactly (to
float64 rounding): the sums :math:`\sum f`, :math:`\sum f^2`, :math:`\sum o f` of every cell,
and the linear-interpolation masses of each row on the grid's points (the rounding of
relplot and of Błasiok & Nakkiran). Memory is ``6 * GRID`` float64 (768 KiB), whatever the rows.

- smooth ECE (smECE) reads the interpolated masses. Moving a unit mass from :math:`f` to its
  two neighbouring grid points changes a kernel average by at most
  :math:`\tfrac{h^2}{8} \sup|\partial_x^2 K|` integrated, which for the reflected Gaussian of
  width :math:`\sigma` is :math:`\tfrac{h^2}{8} \cdot 4\varphi(1)/\sigma^2 \approx
  0.121\, h^2/\sigma^2` per unit of :math:`|o - f|` (:func:`smooth_ece_bound`).
- CORP (PAV) and equal-mass bins need sorted forecasts. The streaming path pools each cell:
  it is the exact CORP fit of the forecasts rounded to the grid, with the original scores.
  Because PAV minimises every proper score over isotonic fits and the pooled fit is one of
  them, the streamed miscalibration (MCB) and discrimination (DSC) are never above the exact
  ones; when no cell holds two distinct forecasts (probabilities with 3 decimals, say) they
  are equal. Equal-
  mass bin edges fall on grid points: each bin's mass is ``n / n_bins`` up to one cell's mass.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, NamedTuple

import numpy as np

from crossentropy import _formulas as fm
from crossentropy._lib.checks import check_clip, check_int, check_number
from crossentropy._lib.host import to_host
from crossentropy.metrics._exact import ExactSum
from crossentropy.metrics._prepare import check_weight_magnitude, independent_copy

__all__ = [
    "GRID",
    "CalibrationAccumulator",
    "Decomposition",
    "MurphyDecomposition",
    "binned_summary",
    "calibration_decomposition",
    "checked_weights",
    "corp_blocks",
    "first_bad_weight",
    "murphy_decomposition",
    "murphy_terms",
    "pair_scores",
    "smooth_calibration_error",
    "smooth_ece_bound",
    "smooth_ece_from_masses",
    "wilson_interval",
]

#: Cells of the streaming grid on [0, 1] (``h = 1 / GRID``).
GRID = 1 << 14
#: The most bins of a binned measure on the grid (``n_bins`` of the streaming report): its
#: cells (equal-mass bins have their edges on its points; finer bins hold next to no rows).
MAX_BINS = GRID
#: The most bins of a binned measure of pairs in memory (:func:`calibration_error`): past it
#: the bins' sums alone take tens of megabytes, and a much larger count is a typo that would
#: allocate gigabytes.
MAX_MEMORY_BINS = 1 << 20


#: The most bootstrap replicates (``bootstrap``, ``paired``): each costs a pass over every
#: row's weights and its own totals; more than this is a typo that would run for hours.
MAX_BOOTSTRAP = 10_000
#: The most points of the smoothed reliability curve (``mesh``): one per cell of the grid.
MAX_MESH = GRID + 1


def check_replicates(value: Any, name: str) -> int:
    """A count of bootstrap replicates: an int in ``[0, MAX_BOOTSTRAP]`` (a ``ValueError``
    naming ``name`` otherwise)."""
    count = int(check_int(value, name))
    if not 0 <= count <= MAX_BOOTSTRAP:
        raise ValueError(f"{name} must be between 0 and {MAX_BOOTSTRAP:,}; got {count:,}")
    return count


def check_seed(seed: object) -> int:
    """A bootstrap's seed: an int in ``[0, 2**63)`` (NumPy's ``SeedSequence`` takes it), or a
    ``TypeError``/``ValueError`` naming it."""
    value = check_int(seed, "seed")
    if not 0 <= value < 2**63:
        raise ValueError(f"seed must be in [0, 2**63); got {value}")
    return value


def check_bins(n_bins: object, most: int = MAX_MEMORY_BINS) -> int:
    """``n_bins`` as an int in ``1 .. most`` (the one home of that rule), or a
    ``TypeError``/``ValueError`` naming it."""
    bins = check_int(n_bins, "n_bins")
    if not 1 <= bins <= most:
        raise ValueError(f"n_bins must be between 1 and {most:,}; got {bins:,}")
    return bins


#: Points per bandwidth at which the bootstrap's replicates evaluate their smoothed residuals
#: (:func:`_smooth`): the trapezoid rule's error is then ~1e-3 of the value, the same for the
#: replicates and their centre.
_PER_SIGMA = 8.0

#: Bootstrap replicates evaluated together. Two chunks run at once (on any number of cores),
#: and 16 replicates on the finest grid take ~40 MiB of temporaries: the bound of one chunk
#: of 32, run alone as before.
_BOOTSTRAP_CHUNK = 16

#: The two-sided 95 % normal quantile (Wilson intervals).
Z95 = 1.959963984540054


# --------------------------------------------------------------------------- smooth ECE


def _dct1(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    r"""The type-I discrete cosine transform along the last axis (SciPy's ``dct(x, type=1)``),
    :math:`y_k = x_0 + (-1)^k x_{N-1} + 2 \sum_{n=1}^{N-2} x_n \cos(\pi k n / (N - 1))`: the
    real part of the FFT of the even extension ``x_0 .. x_{N-1} .. x_1`` (NumPy's FFT, which
    loads in milliseconds where ``scipy.fft`` takes a quarter of a second)."""
    even = np.concatenate([x, x[..., -2:0:-1]], axis=-1)
    out: np.ndarray[Any, Any] = np.fft.rfft(even, axis=-1).real
    return out


def _cosine_coefficients(masses: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    r""":math:`a_k = \sum_j m_j \cos(\pi k j / G)` of masses on the ``G + 1`` grid points."""
    v = masses.astype(np.float64, copy=True)
    v[..., 0] *= 2
    v[..., -1] *= 2
    out: np.ndarray[Any, Any] = _dct1(v) / 2
    return out


def _smooth(
    coef: np.ndarray[Any, Any], sigma: Any, per_sigma: float | None = None
) -> np.ndarray[Any, Any]:
    r"""The masses smoothed by the reflected Gaussian kernel, on the grid points.

    On [0, 1] with reflection at both ends the kernel is
    :math:`K_\sigma(t, x) = 1 + 2 \sum_{k \ge 1} e^{-\pi^2 k^2 \sigma^2 / 2}
    \cos(\pi k t) \cos(\pi k x)` (the sum over every mirror image of a Gaussian), so smoothing
    multiplies cosine coefficients.

    With ``per_sigma``, the smoothed curve (whose coefficients vanish past :math:`3/\sigma`)
    is evaluated on a coarser grid of a power of two of points, at least ``per_sigma`` per
    :math:`\sigma` and :math:`3/\sigma` in all: the same values at fewer points.
    """
    s = np.asarray(sigma, dtype=np.float64)[..., None]
    # e^{-x} < 1e-17 beyond x = 40: the coefficients past k = sqrt(80) / (pi sigma) vanish
    finite = s[np.isfinite(s)]  # a sample without weight has no bandwidth
    smallest = max(float(finite.min()) if finite.size else 1.0, 1e-12)
    kmax = min(coef.shape[-1], math.ceil(3.0 / smallest) + 1)
    size = coef.shape[-1]
    if per_sigma is not None:
        want = max(per_sigma / smallest, kmax)
        size = min(size, 2 ** math.ceil(math.log2(max(want, 64))) + 1)
    k = np.arange(kmax, dtype=np.float64)
    u = np.zeros((*coef.shape[:-1], size))
    u[..., :kmax] = coef[..., :kmax] * np.exp(-0.5 * (math.pi * k * s) ** 2)
    u[..., -1] *= 2  # DCT-I counts the last coefficient once
    return _dct1(u)


def _trapezoid(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    g = values.shape[-1] - 1
    out: np.ndarray[Any, Any] = (
        np.sum(values, axis=-1) - 0.5 * (values[..., 0] + values[..., -1])
    ) / g
    return out


def _smooth_ece_at(
    coef: np.ndarray[Any, Any],
    total: np.ndarray[Any, Any],
    sigma: np.ndarray[Any, Any],
    per_sigma: float | None = None,
) -> np.ndarray[Any, Any]:
    """:math:`\\mathrm{smECE}_\\sigma` of residual masses given by their cosine coefficients
    (one row per sample, ``total`` its weight): the formula's one home."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray[Any, Any] = _trapezoid(np.abs(_smooth(coef, sigma, per_sigma))) / total
    return out


def _fixed_point_illinois(
    coef: np.ndarray[Any, Any],
    total: np.ndarray[Any, Any],
    low: float,
    high: float,
    iterations: int = 8,
    per_sigma: float | None = None,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    r"""The fixed point :math:`\sigma = \mathrm{smECE}_\sigma` in ``[low, high]`` for many
    samples at once, by the Illinois method on :math:`F(x) = \log \mathrm{smECE}_{e^x} - x`.

    :math:`F` falls as :math:`x` grows and is nearly linear, so a few secant steps reach the
    precision that a bisection needs dozens of smoothings for (the bootstrap's replicates use
    this; the estimate itself keeps the bisection). Outside the bracket the nearer end is
    returned. ``per_sigma`` is :func:`_smooth`'s. Returns ``(value, bandwidth)``.
    """

    def f(x: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        v = _smooth_ece_at(coef, total, np.exp(x), per_sigma)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(np.maximum(v, 1e-300)) - x, v

    rows = coef.shape[0]
    lo, hi = np.full(rows, math.log(low)), np.full(rows, math.log(high))
    (f_lo, v_lo), (f_hi, v_hi) = f(lo), f(hi)
    below, above = ~(f_lo > 0), f_hi > 0  # the fixed point is under low, or over high
    inside = ~below & ~above
    f_lo, f_hi = np.where(inside, f_lo, 1.0), np.where(inside, f_hi, -1.0)
    x, v, last = hi, v_hi, np.zeros(rows)
    for _ in range(iterations):
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        fx, v = f(x)
        up = fx > 0  # the fixed point is above x
        # Illinois: halve the value of the end kept twice in a row
        f_hi = np.where(up & (last > 0), f_hi / 2, f_hi)
        f_lo = np.where(~up & (last < 0), f_lo / 2, f_lo)
        lo, f_lo = np.where(up, x, lo), np.where(up, fx, f_lo)
        hi, f_hi = np.where(up, hi, x), np.where(up, f_hi, np.minimum(fx, 0.0))
        last = np.where(up, 1.0, -1.0)
    sigma = np.where(below, low, np.where(above, high, np.exp(x)))
    value = np.where(below, v_lo, np.where(above, v_hi, v))
    return value, sigma


def smooth_ece_from_masses(
    residual: np.ndarray[Any, Any],
    total: np.ndarray[Any, Any] | float,
    bandwidth: float | None = None,
    iterations: int = 48,
    bracket: tuple[float, float] | None = None,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    r"""smECE of residual masses :math:`(o - f)` on the grid points (one row per sample).

    .. math::

        \mathrm{smECE}_\sigma = \frac1W \int_0^1 \Bigl|\sum_i w_i (o_i - f_i)
            K_\sigma(t, f_i)\Bigr| \, dt

    and with ``bandwidth=None`` the fixed point :math:`\sigma^* = \mathrm{smECE}_{\sigma^*}`
    (Błasiok & Nakkiran, 2024), found by geometric bisection
    (:math:`\mathrm{smECE}_\sigma` falls as :math:`\sigma` grows; each step takes the
    geometric mean of ``lo`` and ``hi``), on :math:`[4/G, 1]` for a grid of ``G`` cells; if
    :math:`\mathrm{smECE}_1 \ge 1` the bandwidth is 1, as in relplot.

    ``bracket`` narrows the search (the bootstrap searches near the estimate's bandwidth);
    it is clamped to :math:`[4/G, 1]`. Returns ``(value, bandwidth)`` arrays of the leading
    shape of ``residual``.
    """
    coef = _cosine_coefficients(np.atleast_2d(residual))
    w = np.broadcast_to(np.asarray(total, dtype=np.float64), coef.shape[:1])

    def at(sigma: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return _smooth_ece_at(coef, w, sigma)

    if bandwidth is not None:
        sigma = np.full(coef.shape[0], float(bandwidth))
        return at(sigma), sigma
    floor = 4.0 / (coef.shape[-1] - 1)
    low, high = bracket if bracket is not None else (floor, 1.0)
    lo = np.full(coef.shape[0], min(max(low, floor), 1.0))
    hi = np.full(coef.shape[0], min(max(high, floor), 1.0))
    for _ in range(iterations):
        mid = np.sqrt(lo * hi)
        above = at(mid) > mid
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    sigma = hi
    return at(sigma), sigma


def smooth_ece_bound(sigma: float, mean_abs_residual: float = 1.0) -> float:
    r"""Bound on the grid's rounding error of :math:`\mathrm{smECE}_\sigma`:
    :math:`\tfrac{h^2}{8} \cdot 4 \varphi(1) / \sigma^2` per unit of mean :math:`|o - f|`,
    :math:`h = 1/\mathrm{GRID}`, plus the trapezoid rule's :math:`h^2/12` of the same
    curvature."""
    h = 1.0 / GRID
    curvature = 4 * math.exp(-0.5) / math.sqrt(2 * math.pi) / sigma**2
    return (h * h / 8 + h * h / 12) * curvature * mean_abs_residual


# --------------------------------------------------------------------------- CORP


class Decomposition(NamedTuple):
    r"""A score split as :math:`S = \mathrm{MCB} - \mathrm{DSC} + \mathrm{UNC}` (CORP).

    Attributes
    ----------
    score : float
        The mean score of the forecasts :math:`\bar S(f)`.
    miscalibration : float
        MCB :math:`= \bar S(f) - \bar S(\hat f)`, :math:`\hat f` the PAV recalibration.
    discrimination : float
        DSC :math:`= \bar S(\bar o) - \bar S(\hat f)`.
    uncertainty : float
        UNC :math:`= \bar S(\bar o)`, the score of the base rate.
    """

    score: float
    miscalibration: float
    discrimination: float
    uncertainty: float


#: :func:`corp_blocks` pools whole runs of violators with NumPy while a pass removes at least
#: this fraction of the blocks; the classic stack pass finishes.
_POOL_FRACTION = 1 / 8


def corp_blocks(n0: np.ndarray[Any, Any], n1: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The PAV fit (isotonic in the forecast) of groups of rows sorted by forecast, given the
    count of 0 and 1 outcomes of each group (``n0 + n1 > 0``).

    Pool adjacent violators on each block's count of ones and of rows (whole numbers, exact in
    float64, so a block's rate is its exact ratio, rounded once). PAV ends at the same fit
    whatever the order in which adjacent violators are pooled, so each run of decreasing rates
    is first pooled at once, in NumPy, while a pass removes at least :data:`_POOL_FRACTION` of
    the blocks; the stack pass then finishes in linear time. SciPy's ``isotonic_regression``
    gives the same fit; on 2**20 groups it takes 0.02-0.04 s where this takes 0.1 s (random
    rates) to 0.4-0.7 s (one long rise and a drop, all left to the stack pass), but importing
    ``scipy.optimize`` takes 0.35-0.65 s, and the streamed report fits at most 2**14 groups
    (one per cell of :data:`GRID`)."""
    ones = np.asarray(n1, dtype=np.float64)
    rows = ones + np.asarray(n0, dtype=np.float64)
    size: np.ndarray[Any, Any] = np.ones(ones.shape, dtype=np.int64)
    while ones.size > 1:
        rate = ones / rows
        keep = np.ones(ones.shape, dtype=bool)  # a block that starts a new pooled block
        keep[1:] = rate[:-1] <= rate[1:]
        starts = np.flatnonzero(keep)
        if ones.size - starts.size < _POOL_FRACTION * ones.size:
            break
        ones, rows = np.add.reduceat(ones, starts), np.add.reduceat(rows, starts)
        size = np.add.reduceat(size, starts)
    top: list[float] = []  # the stack of pooled blocks: ones, rows, groups
    total: list[float] = []
    count: list[int] = []
    for a, b, k in zip(ones.tolist(), rows.tolist(), size.tolist(), strict=True):
        while top and top[-1] / total[-1] > a / b:
            a, b, k = a + top.pop(), b + total.pop(), k + count.pop()
        top.append(a)
        total.append(b)
        count.append(k)
    fit = np.repeat(np.divide(top, total), count) if top else np.zeros(0)
    out: np.ndarray[Any, Any] = np.clip(fit, 0.0, 1.0)
    return out


def pair_scores(
    fit: np.ndarray[Any, Any], n0: np.ndarray[Any, Any], n1: np.ndarray[Any, Any]
) -> tuple[float, float]:
    """Total Brier and log scores of the forecast ``fit`` for groups with ``n0`` zeros and
    ``n1`` ones (``0 log 0 = 0``)."""
    brier = float(np.sum(n1 * (1 - fit) ** 2 + n0 * fit**2))
    log = float(-np.sum(fm.xlogy(np, n1, fit) + fm.xlogy(np, n0, 1 - fit)))
    return brier, log


def decompositions(
    fit: np.ndarray[Any, Any],
    n0: np.ndarray[Any, Any],
    n1: np.ndarray[Any, Any],
    brier_total: float,
    log_total: float,
) -> dict[str, Decomposition]:
    """CORP decompositions of the Brier and log scores from the PAV fit of the groups and the
    forecasts' own total scores."""
    n = float(np.sum(n0) + np.sum(n1))
    base = float(np.sum(n1)) / n
    fit_brier, fit_log = pair_scores(fit, n0, n1)
    unc_brier = base * (1 - base)
    unc_log = 0.0 - float(fm.xlogy(np, np.float64(base), np.float64(base)))  # 0, not -0
    unc_log -= float(fm.xlogy(np, np.float64(1 - base), np.float64(1 - base)))
    out = {}
    for name, total, fitted, unc in (
        ("brier", brier_total, fit_brier, unc_brier),
        ("log_loss", log_total, fit_log, unc_log),
    ):
        s, s_hat = total / n, fitted / n
        out[name] = Decomposition(s, s - s_hat, unc - s_hat, unc)
    return out


# --------------------------------------------------------------------------- bins


def wilson_interval(hits: Any, count: Any, z: float = Z95) -> tuple[Any, Any]:
    r"""Wilson's score interval of a proportion :math:`\hat p = k/n`:
    :math:`\frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}`."""
    k = np.asarray(hits, dtype=np.float64)
    n = np.asarray(count, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        p = k / n
        d = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / d
        # (z / 2n)^2, not z^2 / 4n^2: a weighted count may be large enough to overflow n^2
        half = z * np.sqrt(np.maximum(p * (1 - p) / n + (z / (2 * n)) ** 2, 0.0)) / d
    # a count of subnormal weights overflows z^2 / n: the interval's limit as n -> 0, [0, 1]
    tiny = np.isinf(d) & (n > 0)
    centre, half = np.where(tiny, 0.5, centre), np.where(tiny, 0.5, half)
    # the interval holds the proportion itself (rounding could put it just outside at 0 or 1)
    low = np.minimum(np.clip(centre - half, 0, 1), p)
    high = np.maximum(np.clip(centre + half, 0, 1), p)
    return low, high


def binned_summary(
    edges: np.ndarray[Any, Any],
    count: np.ndarray[Any, Any],
    f_sum: np.ndarray[Any, Any],
    o_sum: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any] | None = None,
) -> dict[str, Any]:
    r"""ECE, MCE and RMS calibration error of bins, and each bin with its Wilson interval.

    .. math::

        \mathrm{ECE} = \sum_b \frac{n_b}{n} |\bar o_b - \bar f_b|, \quad
        \mathrm{MCE} = \max_{n_b > 0} |\bar o_b - \bar f_b|, \quad
        \mathrm{RMS} = \Bigl(\sum_b \frac{n_b}{n} (\bar o_b - \bar f_b)^2\Bigr)^{1/2}

    With sample weights, ``count`` (:math:`n_b`), ``f_sum`` and ``o_sum`` are the bins'
    weighted totals (the Wilson interval reads the weighted count as the bin's size) and
    ``rows`` their row counts: each bin then gives ``count`` (rows) and ``weight``.
    """
    from crossentropy.metrics._formulas import calibration_norm

    lo, hi = wilson_interval(o_sum, count)
    bins = []
    for b in range(count.shape[0]):
        c = float(count[b])
        one = {
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "count": round(c) if rows is None else int(rows[b]),
            "confidence": float(f_sum[b]) / c if c else None,
            "accuracy": float(o_sum[b]) / c if c else None,
            "accuracy_low": float(lo[b]) if c else None,
            "accuracy_high": float(hi[b]) if c else None,
        }
        if rows is not None:
            one["weight"] = c
        bins.append(one)
    return {
        "ece": calibration_norm(count, f_sum, o_sum, "l1"),
        "mce": calibration_norm(count, f_sum, o_sum, "max"),
        "rms": calibration_norm(count, f_sum, o_sum, "l2"),
        "bins": bins,
    }


class MurphyDecomposition(NamedTuple):
    r"""Murphy's decomposition of the Brier score over bins, with the within-bin terms of
    Stephenson, Coelho & Jolliffe (2008) that make it exact:
    :math:`\mathrm{BS} = \mathrm{REL} - \mathrm{RES} + \mathrm{UNC} + \mathrm{WBV} -
    \mathrm{WBC}`."""

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float


def murphy_terms(
    count: np.ndarray[Any, Any],
    f_sum: np.ndarray[Any, Any],
    f2_sum: np.ndarray[Any, Any],
    o_sum: np.ndarray[Any, Any],
    fo_sum: np.ndarray[Any, Any],
) -> MurphyDecomposition:
    r"""The decomposition from per-bin :math:`n_b, \sum f, \sum f^2, \sum o, \sum f o`:

    .. math::

        \mathrm{REL} = \tfrac1n \sum_b n_b (\bar f_b - \bar o_b)^2, \quad
        \mathrm{RES} = \tfrac1n \sum_b n_b (\bar o_b - \bar o)^2, \quad
        \mathrm{UNC} = \bar o (1 - \bar o),

        \mathrm{WBV} = \tfrac1n \sum_b \sum_{i \in b} (f_i - \bar f_b)^2, \quad
        \mathrm{WBC} = \tfrac2n \sum_b \sum_{i \in b} (f_i - \bar f_b)(o_i - \bar o_b)
    """
    n = float(np.sum(count))
    nz = count > 0
    c, fs, f2, os_, fo = count[nz], f_sum[nz], f2_sum[nz], o_sum[nz], fo_sum[nz]
    fbar, obar = fs / c, os_ / c
    base = float(np.sum(os_)) / n
    rel = float(np.sum(c * (fbar - obar) ** 2)) / n
    res = float(np.sum(c * (obar - base) ** 2)) / n
    wbv = float(np.sum(f2 - fs * fbar)) / n
    wbc = 2 * float(np.sum(fo - fs * obar)) / n
    brier = float(np.sum(os_) - 2 * np.sum(fo) + np.sum(f2)) / n
    return MurphyDecomposition(brier, rel, res, base * (1 - base), wbv, wbc)


# --------------------------------------------------------------------------- accumulator


def checked_weights(sample_weight: Any, n: int) -> np.ndarray[Any, Any]:
    """Sample weights as float64 ``(n,)``, each finite and >= 0 (a ``ValueError`` naming the
    first bad one and its position otherwise)."""
    w = to_host(sample_weight, "sample_weight")
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must be a 1-D array of one weight per row ({n},); got shape {w.shape}"
        )
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold numbers; got dtype {w.dtype}")
    w = w.astype(np.float64, copy=False)
    i = first_bad_weight(w)
    if i is not None:
        raise ValueError(f"sample_weight must be finite and >= 0; got {w[i]} at row {i}")
    check_weight_magnitude(w)
    return w


def first_bad_weight(w: np.ndarray[Any, Any]) -> int | None:
    """The position of the first weight that is not finite and >= 0 (NaN, inf, negative),
    or None: the rule of every sample weight of the streaming accumulators."""
    ok = np.isfinite(w) & (w >= 0)
    return None if bool(np.all(ok)) else int(np.argmin(ok))


class CalibrationAccumulator:
    r"""Calibration pairs :math:`(f_i, o_i)` summarised on a grid, mergeable, in bounded memory.

    ``update(y_true, y_proba)`` adds 0/1 outcomes :math:`o` and forecasts :math:`f` in [0, 1],
    each row to its cell
    :math:`j` and outcome with its position :math:`\lambda` in the cell:

    .. math::

        f = (j + \lambda) / G, \qquad
        n_{jo} \gets n_{jo} + 1, \quad \Lambda_{jo} \gets \Lambda_{jo} + \lambda, \quad
        \Lambda^{(2)}_{jo} \gets \Lambda^{(2)}_{jo} + \lambda^2

    :meth:`merge` adds another accumulator's rows; :meth:`result` gives the smooth ECE with
    its bandwidth, a Poisson bootstrap interval and the smoothed reliability curve with its
    band, the CORP reliability diagram and the decompositions of the Brier and log scores,
    equal-mass bins, each from the grid (error bounds: :func:`smooth_calibration_error`).

    The bootstrap resamples the grid's groups (cell × outcome): a Poisson(1) weight per row
    summed over a group of :math:`m` rows is Poisson(:math:`m`), and the rows of a group share
    their forecast up to one cell, so this is the streaming Poisson bootstrap up to the grid's
    rounding, at a cost that does not grow with the rows. It is seeded, so a result is
    reproducible and does not depend on how the rows were split into batches or workers.

    **Sample weights** (``update(..., sample_weight=w)``, scikit-learn's meaning: a row of
    weight 3 counts as the row three times): the grid keeps :math:`\sum w`,
    :math:`\sum w\lambda`, :math:`\sum w\lambda^2` in place of the counts and sums, so
    every number is its weighted version (smECE of the weighted kernel masses, PAV on the
    cells' weighted counts of 0s and 1s, equal-mass bins of equal weight, Wilson intervals of
    the weighted counts), and the row count of each group besides. The bootstrap then draws
    a count :math:`k` from :math:`\mathrm{Poisson}(m)` for a group of :math:`m` rows and
    scales the group's weighted masses by :math:`k/m`: the rows' Poisson(1) draws are taken
    as falling evenly on the group's weights (exact for equal weights within the group, an
    approximation otherwise, on top of the grid's rounding). ``n`` stays the row count;
    ``weight`` is the total weight.

    Examples
    --------
    >>> import numpy as np
    >>> from crossentropy.metrics import CalibrationAccumulator, calibration_decomposition
    >>> f, o = np.array([0.1, 0.6, 0.4, 0.8, 0.9]), np.array([0, 0, 1, 1, 1])
    >>> acc = CalibrationAccumulator().update(o[:2], f[:2]).update(o[2:], f[2:])
    >>> r = acc.result(bootstrap=0)
    >>> round(r["corp"]["brier"]["miscalibration"], 4)
    0.056
    >>> round(calibration_decomposition(o, f, score="brier").miscalibration, 4)
    0.056
    """

    __copy__ = independent_copy

    def __init__(self) -> None:
        self.n = 0
        self._grid = np.zeros((3, 2, GRID), dtype=np.float64)  # n, sum lambda, sum lambda^2
        self._log = ExactSum()
        # weighted (after a first update with weights): the grid holds the weighted sums,
        # these the rows of each group and the total weight
        self._rows: np.ndarray[Any, Any] | None = None
        self._weight: ExactSum | None = None

    @property
    def weighted(self) -> bool:
        """Whether rows with sample weights were added (the grid then holds weighted sums)."""
        return self._rows is not None

    @property
    def weight(self) -> float:
        """The total sample weight (the row count when no weights were given)."""
        return float(self.n) if self._weight is None else float(self._weight.value())

    def _make_weighted(self) -> tuple[np.ndarray[Any, Any], ExactSum]:
        """Switch to weighted sums: the rows so far each of weight 1."""
        if self._rows is None or self._weight is None:
            self._rows = self._grid[0].copy()
            self._weight = ExactSum()
            self._weight.add(float(self.n))
        return self._rows, self._weight

    def update(
        self,
        y_true: Any,
        y_proba: Any,
        *,
        eps: float | None = None,
        sample_weight: Any = None,
    ) -> CalibrationAccumulator:
        """Add outcomes ``y_true`` (bool or 0/1) and their forecasts ``y_proba`` (in [0, 1]),
        in the order of the other accumulators' ``update(y_true, y_proba)``; the log score
        clips the forecasts to ``[eps, 1 - eps]`` (default: the eps of ``y_proba``'s dtype).

        Parameters
        ----------
        y_true : array_like
            Outcomes, booleans or 0/1, 1-D.
        y_proba : array_like
            Forecast probabilities in [0, 1], one per outcome.
        eps : float, optional
            The log score clips the forecasts to ``[eps, 1 - eps]``, ``0 < eps < 0.5``
            (default: the eps of the forecasts' dtype).
        sample_weight : array_like, optional
            One finite weight >= 0 per forecast.
        """
        f = to_host(y_proba, "y_proba")  # (tensors detached, bfloat16 in float32, as elsewhere)
        o = to_host(y_true, "y_true")
        if f.ndim != 1 or o.shape != f.shape:
            shapes = f"{o.shape} and {f.shape}"
            raise ValueError(f"y_true and y_proba must be 1-D of one length; got shapes {shapes}")
        if o.dtype.kind == "O":  # 0/1 or booleans held as Python objects
            with contextlib.suppress(TypeError, ValueError):
                o = o.astype(np.float64)
        if o.dtype != bool:
            if o.dtype.kind not in "iuf":
                raise TypeError(f"y_true must hold booleans or 0/1; got dtype {o.dtype}")
            outside = (o != 0) & (o != 1)  # NaN is outside too
            if bool(np.any(outside)):
                bad = int(np.flatnonzero(outside)[0])
                raise ValueError(f"y_true must hold booleans or 0/1; got {o[bad]} at row {bad}")
        hit = o.astype(bool, copy=False)
        if f.dtype.kind not in "biuf":
            raise TypeError(f"y_proba must have a real dtype; got {f.dtype}")
        if f.size and not (bool(np.all(f >= 0)) and bool(np.all(f <= 1))):  # NaN fails too
            bad = int(np.flatnonzero(~((f >= 0) & (f <= 1)))[0])
            raise ValueError(
                f"y_proba must hold probabilities in [0, 1]; got {f[bad]} at row {bad}"
            )
        w = None if sample_weight is None else checked_weights(sample_weight, f.shape[0])
        if eps is None:
            eps = float(np.finfo(f.dtype if f.dtype.kind == "f" else np.float64).eps)
        else:  # a clip of [eps, 1 - eps]: not empty, not inverted
            eps = check_clip(eps, "eps")
        f64 = f.astype(np.float64, copy=False)
        x = f64 * GRID
        cell = np.minimum(x.astype(np.intp), GRID - 1)
        lam = x - cell
        idx = cell + GRID * hit
        flat = self._grid.reshape(3, 2 * GRID)
        clipped = np.clip(f64, eps, 1 - eps)
        if w is None:
            counts = np.bincount(idx, minlength=2 * GRID)
            flat[0] += counts
            flat[1] += np.bincount(idx, weights=lam, minlength=2 * GRID)
            flat[2] += np.bincount(idx, weights=lam * lam, minlength=2 * GRID)
            self._log.add(-float(np.sum(np.log(np.where(hit, clipped, 1 - clipped)))))
            if self._rows is not None and self._weight is not None:
                self._rows.reshape(-1)[...] += counts
                self._weight.add(float(f.shape[0]))
        else:
            rows, total = self._make_weighted()
            rows.reshape(-1)[...] += np.bincount(idx, minlength=2 * GRID)
            total.add(float(np.sum(w)))
            wl = w * lam
            flat[0] += np.bincount(idx, weights=w, minlength=2 * GRID)
            flat[1] += np.bincount(idx, weights=wl, minlength=2 * GRID)
            flat[2] += np.bincount(idx, weights=wl * lam, minlength=2 * GRID)
            self._log.add(-float(np.dot(w, np.log(np.where(hit, clipped, 1 - clipped)))))
        self.n += int(f.shape[0])
        return self

    def merge(self, other: CalibrationAccumulator) -> CalibrationAccumulator:
        """Add the rows of ``other``.

        Parameters
        ----------
        other : CalibrationAccumulator
            An accumulator of the same kind, options and classes.
        """
        if not isinstance(other, CalibrationAccumulator):
            raise TypeError(f"other must be a CalibrationAccumulator; got {type(other).__name__}")
        if self.weighted or other.weighted:
            rows, total = self._make_weighted()
            rows += other._grid[0] if other._rows is None else other._rows
            if other._weight is None:
                total.add(float(other.n))
            else:
                total.merge(other._weight)
        self._grid += other._grid
        self._log.merge(other._log)
        self.n += other.n
        return self

    # -- sums ---------------------------------------------------------------------------------

    @staticmethod
    def _masses(grid: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], ...]:
        """Interpolated masses on the ``GRID + 1`` points: weight, forecast and outcome
        (leading axes of ``grid`` before ``(3, 2, GRID)`` are kept)."""
        n, s1, s2 = grid[..., 0, :, :], grid[..., 1, :, :], grid[..., 2, :, :]
        g = grid.shape[-1]
        h = 1.0 / g
        j = np.arange(g, dtype=np.float64)
        lead = grid.shape[:-3]

        def points(left: np.ndarray[Any, Any], right: np.ndarray[Any, Any]) -> Any:
            out = np.zeros((*lead, g + 1))
            out[..., :-1] += left
            out[..., 1:] += right
            return out

        n_all, s1_all, s2_all = n.sum(-2), s1.sum(-2), s2.sum(-2)
        weight = points(n_all - s1_all, s1_all)
        forecast = points(h * (j * n_all + s1_all - j * s1_all - s2_all), h * (j * s1_all + s2_all))
        outcome = points(n[..., 1, :] - s1[..., 1, :], s1[..., 1, :])
        return weight, forecast, outcome

    def _cell_sums(self) -> dict[str, np.ndarray[Any, Any]]:
        n, s1, s2 = self._grid
        h = 1.0 / GRID
        j = np.arange(GRID, dtype=np.float64)
        f = h * (j * n + s1)  # per outcome
        f2 = h * h * (j * j * n + 2 * j * s1 + s2)
        return {
            "n0": n[0],
            "n1": n[1],
            "count": n[0] + n[1],
            "f": f[0] + f[1],
            "f2": f2[0] + f2[1],
            "o": n[1],
            "fo": f[1],
        }

    # -- result -------------------------------------------------------------------------------

    def result(
        self, *, n_bins: int = 15, bootstrap: int = 200, seed: int = 0, mesh: int = 101
    ) -> dict[str, Any]:
        """Every calibration number of the rows seen (``None`` values before any row).

        Parameters
        ----------
        n_bins : int, default 15
            Equal-mass bins, 1 to 16,384 (the grid's cells).
        bootstrap : int, default 200
            Poisson bootstrap replicates for the smECE interval and the curve's band (0: none;
            at most 10,000).
        seed : int, default 0
            Seed of the bootstrap, in ``[0, 2**63)``.
        mesh : int, default 101
            Points of the smoothed reliability curve, 2 to 16,385.
        """
        n_bins = check_bins(n_bins, MAX_BINS)
        bootstrap = check_replicates(bootstrap, "bootstrap")
        seed = check_seed(seed)
        mesh = check_int(mesh, "mesh")
        if not 2 <= mesh <= MAX_MESH:
            raise ValueError(f"mesh must be between 2 and {MAX_MESH:,}; got {mesh:,}")
        if self.n == 0:
            return {"n": 0, "smooth_ece": None, "corp": None, "equal_mass": None}
        total = self.weight
        from crossentropy.metrics._functions import check_weight_total

        check_weight_total(total)
        sums = self._cell_sums()
        weight, forecast, outcome = self._masses(self._grid)
        value, sigma = smooth_ece_from_masses(outcome - forecast, total)
        s = float(sigma[0])
        step = GRID // (mesh - 1) if GRID % (mesh - 1) == 0 else None
        t_idx = (
            np.arange(0, GRID + 1, step)
            if step
            else np.round(np.linspace(0, GRID, mesh)).astype(np.intp)
        )
        curve, density = _curve(weight, outcome, s, t_idx, total)
        smooth: dict[str, Any] = {
            "value": float(value[0]),
            "bandwidth": s,
            "ci_low": None,
            "ci_high": None,
            "replicates": bootstrap,
            "t": (t_idx / GRID).tolist(),
            "curve": curve.tolist(),
            "density": density.tolist(),
            "band_low": None,
            "band_high": None,
            "error_bound": smooth_ece_bound(s),
        }
        if bootstrap > 0:
            values, centre, curves = self._bootstrap(bootstrap, seed, s, t_idx)
            # the basic bootstrap interval (relplot's): 2 v - quantiles, not below 0, with
            # the quantiles' offsets taken from the centre on the replicates' grid
            finite = values[np.isfinite(values)]  # a replicate may draw no row at all
            if finite.size >= 2:
                q_lo, q_hi = np.percentile(finite, [2.5, 97.5])
                v = float(value[0])
                smooth["ci_low"] = max(float(v - (q_hi - centre)), 0.0)  # Python floats
                smooth["ci_high"] = max(float(v - (q_lo - centre)), 0.0)
            seen = ~np.all(np.isnan(curves), axis=0)
            band = np.full((2, curves.shape[1]), np.nan)
            band[:, seen] = np.nanpercentile(curves[:, seen], [2.5, 97.5], axis=0)
            smooth["band_low"], smooth["band_high"] = band[0].tolist(), band[1].tolist()

        # CORP: PAV over the non-empty cells
        nz = sums["count"] > 0
        n0, n1 = sums["n0"][nz], sums["n1"][nz]
        fit = corp_blocks(n0, n1)
        brier_total = float(np.sum(sums["o"]) - 2 * np.sum(sums["fo"]) + np.sum(sums["f2"]))
        corp: dict[str, Any] = {
            k: {name: float(x) for name, x in d._asdict().items()}
            for k, d in decompositions(fit, n0, n1, brier_total, float(self._log.value())).items()
        }
        rows = None if self._rows is None else self._rows.sum(0)
        corp["diagram"] = _blocks(
            fit,
            sums["f"][nz],
            sums["count"][nz],
            np.flatnonzero(nz),
            None if rows is None else rows[nz],
        )

        # equal-mass bins with edges on grid points
        cum = np.cumsum(sums["count"])
        cuts = np.searchsorted(cum, total * np.arange(1, n_bins) / n_bins, side="left") + 1
        bounds = np.unique(np.concatenate([[0], cuts, [GRID]]))
        lo_b, hi_b = bounds[:-1], bounds[1:]

        def per(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            c = np.concatenate([[0.0], np.cumsum(a)])
            out: np.ndarray[Any, Any] = c[hi_b] - c[lo_b]
            return out

        count = per(sums["count"])
        keep = count > 0
        edges_lo = (lo_b / GRID)[keep]
        edges_hi = (hi_b / GRID)[keep]
        equal_mass = binned_summary(
            np.concatenate([edges_lo, edges_hi[-1:]]),
            count[keep],
            per(sums["f"])[keep],
            per(sums["o"])[keep],
            None if rows is None else per(rows)[keep],
        )
        out = {"n": self.n, "smooth_ece": smooth, "corp": corp, "equal_mass": equal_mass}
        if self.weighted:
            out["weight"] = total
        return out

    def _bootstrap(
        self, replicates: int, seed: int, sigma: float, t_idx: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], float, np.ndarray[Any, Any]]:
        """smECE of ``replicates`` Poisson resamples of the grid's cells, the smECE of the
        rows on the same grid, and the replicates' curves at ``t_idx`` (bandwidth ``sigma``).

        The replicates run on a grid of cells ``sigma / 8`` wide or finer (at most
        :data:`GRID`), searched by :func:`_fixed_point_illinois` in ``[sigma/16, 16 sigma]``:
        the grid's rounding moves each value by a few 1e-4 of itself (3e-4 measured on 2M
        calibrated pairs, 7e-5 on cells half as wide), the same way in the replicates and in
        the centre returned with them, so the interval's offsets are kept. Against cells half
        as wide, the interval's ends moved by about 1 %, as much as another seed moves them
        with 200 replicates, in half the time.
        """
        cells = int(np.clip(2 ** math.ceil(math.log2(8 / sigma)), 256, GRID))
        coarse = _coarsen(self._grid, GRID // cells)
        g = coarse.shape[-1]
        bracket = (max(sigma / 16, 1.0 / g), min(16 * sigma, 1.0))
        _, forecast, outcome = self._masses(coarse)
        centre, _ = _fixed_point_illinois(
            _cosine_coefficients(outcome - forecast)[None],
            np.array([self.weight]),
            *bracket,
            per_sigma=_PER_SIGMA,
        )
        # the rows of each group: Poisson(rows) draws, scaling the group's (weighted) masses
        n = (
            coarse[0].reshape(-1)
            if self._rows is None
            else self._rows.reshape(2, -1, GRID // cells).sum(-1).reshape(-1)
        )
        used = np.flatnonzero(n > 0)
        at = np.rint(t_idx * (g / GRID)).astype(np.intp)  # the nearest coarse point

        def run(start: int, stream: np.random.SeedSequence) -> tuple[Any, Any]:
            b = min(_BOOTSTRAP_CHUNK, replicates - start)
            k = np.random.default_rng(stream).poisson(n[used], size=(b, used.size))
            scale = np.zeros((b, 2 * g))
            scale[:, used] = k / n[used]
            grid = coarse[None] * scale.reshape(b, 1, 2, g)
            weight, forecast, outcome = self._masses(grid)
            totals = weight.sum(-1)
            v, _ = _fixed_point_illinois(
                _cosine_coefficients(outcome - forecast), totals, *bracket, per_sigma=_PER_SIGMA
            )
            c, _ = _curve(weight, outcome, sigma, at, totals[:, None])
            return v, c

        # each chunk of replicates has its own seeded stream, so the draws do not depend on
        # which thread runs it; NumPy's FFT releases the GIL, so two halves of the chunks run
        # side by side (two, whatever the cores: each chunk's temporaries count)
        starts = list(range(0, replicates, _BOOTSTRAP_CHUNK))
        jobs = list(zip(starts, np.random.SeedSequence(seed).spawn(len(starts)), strict=True))

        def run_all(part: list[tuple[int, np.random.SeedSequence]]) -> list[tuple[Any, Any]]:
            return [run(a, b) for a, b in part]

        if len(jobs) > 1 and (os.cpu_count() or 1) > 1:
            from crossentropy._lib.kernels import shared_executor

            half = (len(jobs) + 1) // 2
            other = shared_executor().submit(run_all, jobs[half:])
            parts = run_all(jobs[:half]) + other.result()
        else:
            parts = run_all(jobs)
        values = np.concatenate([v for v, _ in parts])
        curves = np.concatenate([c for _, c in parts])
        return values, float(centre[0]), curves

    def __repr__(self) -> str:
        return f"CalibrationAccumulator(n={self.n})"


def _coarsen(grid: np.ndarray[Any, Any], factor: int) -> np.ndarray[Any, Any]:
    """The ``(3, 2, G)`` grid state pooled ``factor`` cells at a time (positions rescaled)."""
    n, s1, s2 = (a.reshape(2, -1, factor) for a in grid)
    r = np.arange(factor, dtype=np.float64)
    return np.stack(
        [
            n.sum(-1),
            (r * n + s1).sum(-1) / factor,
            (r * r * n + 2 * r * s1 + s2).sum(-1) / factor**2,
        ]
    )


def _curve(
    weight: np.ndarray[Any, Any],
    outcome: np.ndarray[Any, Any],
    sigma: float,
    t_idx: np.ndarray[Any, Any],
    total: Any,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The kernel-smoothed outcome :math:`\\hat y(t)` (relplot's reliability curve) and the
    forecasts' density at the grid points ``t_idx``."""
    dens = _smooth(_cosine_coefficients(weight), sigma)[..., t_idx]
    ys = _smooth(_cosine_coefficients(outcome), sigma)[..., t_idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(dens > 1e-9 * total, ys / dens, np.nan)
        return np.clip(curve, 0, 1), dens / total


def _blocks(
    fit: np.ndarray[Any, Any],
    f_sum: np.ndarray[Any, Any],
    count: np.ndarray[Any, Any],
    cells: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any] | None = None,
) -> list[dict[str, Any]]:
    """The CORP diagram's steps: runs of groups with one fitted value, with their forecast
    range, mean forecast and rows (``count``: the groups' weights, or with ``rows`` given,
    their rows, and ``weight`` the weights)."""
    if fit.size == 0:
        return []
    start = np.flatnonzero(np.concatenate([[True], np.diff(fit) != 0]))
    end = np.concatenate([start[1:], [fit.size]])
    out = []
    for a, b in zip(start, end, strict=True):
        c = float(np.sum(count[a:b]))
        step = {
            "lo": float(cells[a]) / GRID,
            "hi": float(cells[b - 1] + 1) / GRID,
            "forecast": float(np.sum(f_sum[a:b])) / c,
            "recalibrated": float(fit[a]),
            "count": round(c) if rows is None else int(np.sum(rows[a:b])),
        }
        if rows is not None:
            step["weight"] = c
        out.append(step)
    return out


# --------------------------------------------------------------------------- one-shot


def _pairs(
    y_true: Any, y_proba: Any, labels: Any, sample_weight: Any = None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float, np.ndarray[Any, Any] | None]:
    """Host float64 forecasts, boolean outcomes, the eps of the forecasts' dtype and the
    checked sample weights (float64, finite and >= 0, of positive sum) or None."""
    from crossentropy._lib.host import computed
    from crossentropy.metrics._functions import check_weight_total, confidence_and_outcome
    from crossentropy.metrics._prepare import prepare

    # computed on the host: Dask arrays are read first, so their values are checked and a bad
    # one named as on NumPy (unread, it became NaN, and was named as "nan")
    y_true, y_proba, sample_weight = computed(y_true, y_proba, sample_weight)
    prep = prepare(y_true, y_proba, sample_weight, labels, nonempty=True, one_binary_label=True)
    conf, hit = confidence_and_outcome(prep.xp, prep)
    f = np.asarray(to_host(conf))
    eps = float(np.finfo(f.dtype).eps) if f.dtype.kind == "f" else float(np.finfo(float).eps)
    w = None if prep.weight is None else checked_weights(to_host(prep.weight), f.shape[0])
    if w is not None:  # as log_loss says it
        check_weight_total(w)
    return f.astype(np.float64), np.asarray(to_host(hit), dtype=bool), eps, w


def smooth_calibration_error(
    y_true: Any,
    y_proba: Any,
    *,
    bandwidth: float | None = None,
    labels: Any = None,
    sample_weight: Any = None,
) -> float:
    r"""Smooth ECE (smECE, Błasiok & Nakkiran, ICLR 2024): the calibration error of a
    kernel-smoothed reliability curve, with the bandwidth chosen by the data.

    .. math::

        \mathrm{smECE}_\sigma = \int_0^1 \Bigl|\frac1n \sum_i (o_i - f_i)
            K_\sigma(t, f_i)\Bigr| \, dt, \qquad
        \sigma^* = \mathrm{smECE}_{\sigma^*}

    with :math:`K_\sigma` the Gaussian kernel reflected at 0 and 1, and :math:`(f_i, o_i)` the
    calibration pairs of :func:`calibration_error` (two classes: the probability of the second
    class and ``y == 1``; more: the top-label confidence and ``argmax == y``).

    Conventions: relplot's ``smECE`` (the same kernel and fixed point; relplot searches the
    bandwidth to 2⁻¹⁰ and stops at 0.001, this function to ~1e-12 relative and stops at four
    grid cells, 2.4e-4; relplot cuts its kernel at distance 0.5 and reflects it once, so for
    bandwidths above about 0.15 its values differ from this function's exact reflected
    kernel). The forecasts are rounded onto a grid of 16,384 cells (:math:`h = 1/16384`) by
    linear interpolation, with error below :math:`\tfrac{5}{24} h^2 \cdot 4 \varphi(1) /
    \sigma^2` per unit of mean :math:`|o - f|` (7.5e-6 at σ = 0.01).

    Parameters
    ----------
    y_true : array_like
        Labels.
    y_proba : array_like
        Probabilities ``(n,)`` of the positive class or ``(n, C)``.
    bandwidth : float, optional
        A fixed :math:`\sigma` (relplot's ``smECE_sigma``) instead of the fixed point, in
        [4 / 16384, 1] (2.4e-4 to 1: the search for the fixed point stops at the same four
        grid cells).
    labels : array_like, optional
        The classes, as in :func:`log_loss`.
    sample_weight : array_like of shape (n,), optional
        Weights of the pairs (the means above become weighted means), as in :func:`log_loss`.

    Returns
    -------
    float
        The smooth ECE, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from crossentropy.metrics import smooth_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> f = rng.uniform(size=4000)
    >>> y = rng.uniform(size=4000) < f ** 2  # overconfident forecasts
    >>> round(smooth_calibration_error(y, f), 3)
    0.168
    """
    f, o, _, w = _pairs(y_true, y_proba, labels, sample_weight)
    if bandwidth is not None:  # (below four cells of the grid its error bound does not hold)
        bandwidth = check_number(bandwidth, "bandwidth", low=4 / GRID, high=1.0)
    acc = CalibrationAccumulator().update(o, f, sample_weight=w)
    _, forecast, outcome = acc._masses(acc._grid)
    value, _ = smooth_ece_from_masses(outcome - forecast, acc.weight, bandwidth)
    return float(value[0])


def calibration_decomposition(
    y_true: Any,
    y_proba: Any,
    *,
    score: str = "log_loss",
    labels: Any = None,
    sample_weight: Any = None,
) -> Decomposition:
    r"""The CORP decomposition of a proper score into miscalibration, discrimination and
    uncertainty (Dimitriadis, Gneiting & Jordan, PNAS 2021).

    .. math::

        \bar S(f) = \underbrace{\bar S(f) - \bar S(\hat f)}_{\mathrm{MCB}}
            - \underbrace{(\bar S(\bar o) - \bar S(\hat f))}_{\mathrm{DSC}}
            + \underbrace{\bar S(\bar o)}_{\mathrm{UNC}}

    where :math:`\hat f` is the PAV (isotonic) regression of the outcomes on the forecasts,
    tied forecasts pooled (the CORP reliability diagram), and :math:`\bar o` the base rate.

    Exact: the pairs are sorted in memory. ``score="log_loss"`` is the binary log score of the
    calibration pairs (:func:`calibration_error`'s: for two classes it is :func:`log_loss`,
    with forecasts clipped at the dtype's eps); ``"brier"`` the squared error of the pairs (for
    two classes, :func:`brier_score_loss`). The same numbers as model-diagnostics'
    ``decompose`` with ``LogLoss()`` or ``SquaredError()``.

    Parameters
    ----------
    y_true, y_proba
        As in :func:`calibration_error`.
    labels : array_like, optional
        As in :func:`calibration_error`.
    score : {"log_loss", "brier"}, default "log_loss"
        The proper score.
    sample_weight : array_like of shape (n,), optional
        Weights of the pairs: weighted mean scores, and a weighted PAV fit.

    Returns
    -------
    Decomposition
        ``score``, ``miscalibration``, ``discrimination``, ``uncertainty``.

    Examples
    --------
    >>> from crossentropy.metrics import calibration_decomposition
    >>> d = calibration_decomposition([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.8, 0.9], score="brier")
    >>> [round(x, 4) for x in d]  # PAV pools 0.4 and 0.6: recalibrated 0, .5, .5, 1, 1
    [0.156, 0.056, 0.14, 0.24]
    >>> round(d.miscalibration - d.discrimination + d.uncertainty, 4)
    0.156
    """
    from crossentropy._lib.checks import check_choice

    check_choice(score, "score", ("log_loss", "brier"))
    f, o, eps, w = _pairs(y_true, y_proba, labels, sample_weight)
    weight = np.ones_like(f)
    if w is not None:  # a pair of weight 0 is no pair (no group of its own in the PAV fit)
        kept = w > 0
        f, o, weight = f[kept], o[kept], w[kept]
    values, group = np.unique(f, return_inverse=True)
    n1 = np.bincount(group, weights=weight * o, minlength=values.size)
    n0 = np.bincount(group, weights=weight, minlength=values.size) - n1
    fit = corp_blocks(n0, n1)
    clipped = np.clip(f, eps, 1 - eps)
    log_total = -float(np.dot(weight, np.log(np.where(o, clipped, 1 - clipped))))
    brier_total = float(np.dot(weight, (o - f) ** 2))
    return decompositions(fit, n0, n1, brier_total, log_total)[score]


def murphy_decomposition(
    y_true: Any,
    y_proba: Any,
    *,
    n_bins: int = 15,
    labels: Any = None,
    sample_weight: Any = None,
) -> MurphyDecomposition:
    r"""Murphy's decomposition of the Brier score of the calibration pairs over ``n_bins``
    equal-width bins, exact with the within-bin terms (Stephenson, Coelho & Jolliffe, 2008).

    .. math::

        \mathrm{BS} = \mathrm{REL} - \mathrm{RES} + \mathrm{UNC} + \mathrm{WBV} - \mathrm{WBC}

    For two classes ``brier`` is :func:`brier_score_loss`; for more it is
    the squared error of the top-label confidence against ``argmax == y``.

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of the
        labels.
    n_bins : int, default 15
        Number of bins, 1 to 1,048,576.
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).
    sample_weight : array_like of shape (n,), optional
        Weights of the pairs (weighted bin totals).

    Examples
    --------
    >>> from crossentropy.metrics import murphy_decomposition
    >>> m = murphy_decomposition([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.8, 0.9], n_bins=2)
    >>> round(m.brier, 4), round(m.reliability, 4), round(m.resolution, 4)
    (0.156, 0.031, 0.0067)
    >>> total = m.reliability - m.resolution + m.uncertainty
    >>> round(total + m.within_bin_variance - m.within_bin_covariance, 4)
    0.156
    """
    from crossentropy.metrics._formulas import bin_index, uniform_edges

    bins = check_bins(n_bins)
    f, o, _, w = _pairs(y_true, y_proba, labels, sample_weight)
    b = bin_index(np, f, uniform_edges(bins))
    of = o.astype(np.float64)
    weight = np.ones_like(f) if w is None else w

    def total(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        out: np.ndarray[Any, Any] = np.bincount(b, weights=weight * v, minlength=bins)
        return out.astype(np.float64)

    return murphy_terms(total(np.ones_like(f)), total(f), total(f * f), total(of), total(f * of))
