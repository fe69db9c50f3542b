"""Calibration (metrics/_calibration.py): smooth ECE against relplot and a direct integral,
CORP against model-diagnostics, Murphy's identity, Wilson intervals, the streaming grid's
stated error bounds, merging and the bootstrap."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest

from _helpers import as_repeated, assert_same_numbers
from crossentropy import metrics
from crossentropy.metrics._calibration import GRID, smooth_ece_bound, wilson_interval


def _pairs(n: int, seed: int, distort: float = 1.3) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts in (0, 1) and outcomes drawn from a distorted version of them."""
    rng = np.random.default_rng(seed)
    f = rng.beta(2.0, 2.5, n)
    o = rng.uniform(size=n) < f**distort
    return f, o


# --------------------------------------------------------------------------- smooth ECE


@pytest.mark.parametrize(("n", "distort", "seed"), [(3000, 1.0, 0), (20000, 1.6, 1), (5000, 3, 2)])
def test_smooth_ece_matches_relplot(n: int, distort: float, seed: int) -> None:
    relplot = pytest.importorskip("relplot")
    f, o = _pairs(n, seed, distort)
    y = o.astype(float)
    # at a fixed bandwidth: relplot's own discretisation (a 2000-point grid, 200-point mesh)
    # differs from the exact kernel by ~1e-3 relative
    for sigma in (0.02, 0.05, 0.1):
        ours = metrics.smooth_calibration_error(o, f, bandwidth=sigma)
        theirs = relplot.smECE_sigma(f, y, sigma)
        assert ours == pytest.approx(theirs, rel=3e-3), sigma
    # the fixed point: relplot searches sigma to 2**-10 and returns the upper end
    value, width = relplot.smECE(f, y, return_width=True)
    acc = metrics.CalibrationAccumulator().update(o, f)
    sm = acc.result(bootstrap=0)["smooth_ece"]
    assert width - 2**-10 - 1e-6 <= sm["bandwidth"] <= width + 1e-6
    assert sm["value"] == pytest.approx(sm["bandwidth"], rel=1e-9)  # the fixed point
    assert sm["value"] == pytest.approx(metrics.smooth_calibration_error(o, f), rel=1e-12)
    assert sm["value"] == pytest.approx(value, abs=2**-10)


def _direct_smooth_ece(f: np.ndarray, o: np.ndarray, sigma: float) -> float:
    """The integral of |(1/n) sum_i (o_i - f_i) K(t, f_i)| with the reflected Gaussian written
    as a sum of mirror images, by adaptive quadrature (no grid)."""
    from scipy.integrate import quad
    from scipy.stats import norm

    r = (o - f) / f.shape[0]

    def smoothed(t: float) -> float:
        k = np.zeros_like(f)
        for m in range(-2, 3):  # images beyond 4 widths of [0, 1] weigh < 1e-14 at sigma <= 0.3
            k += norm.pdf(t - f + 2 * m, scale=sigma) + norm.pdf(t + f + 2 * m, scale=sigma)
        return abs(float(np.dot(r, k)))

    value, _ = quad(smoothed, 0, 1, limit=2000, epsabs=1e-10, epsrel=1e-8)
    return float(value)


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.3])
def test_smooth_ece_grid_error_within_the_stated_bound(sigma: float) -> None:
    f, o = _pairs(80, 7, 1.5)
    exact = _direct_smooth_ece(f, o, sigma)
    grid = metrics.smooth_calibration_error(o, f, bandwidth=sigma)
    bound = smooth_ece_bound(sigma, float(np.mean(np.abs(o - f))))
    assert abs(grid - exact) <= bound + 1e-9, (grid, exact, bound)


def test_smooth_ece_of_perfect_and_of_hopeless_forecasts() -> None:
    # outcomes equal to forecasts on the grid: no residual at all
    f = np.repeat(np.array([0.0, 1.0]), 50)
    assert metrics.smooth_calibration_error(f.astype(bool), f) == pytest.approx(0.0, abs=1e-12)
    # always wrong with certainty (0 forecast, outcome 1): residual 1 everywhere, smECE_sigma
    # is 1 at every sigma, and the search stops at sigma = 1 as relplot's does
    zeros = np.zeros(100)
    sm = metrics.CalibrationAccumulator().update(zeros == 0, zeros).result(bootstrap=0)
    assert sm["smooth_ece"]["value"] == pytest.approx(1.0, rel=1e-9)
    assert sm["smooth_ece"]["bandwidth"] == 1.0


def test_smooth_ece_bad_bandwidth() -> None:
    with pytest.raises(ValueError, match="bandwidth"):
        metrics.smooth_calibration_error([0, 1], [0.2, 0.7], bandwidth=0)
    # below four grid cells the grid's error bound does not hold (1e-9 gave 0.3467, the
    # limit is 0.3): refused, as the fixed-point search stops there
    with pytest.raises(ValueError, match=r"^bandwidth must be >= 0\.000244140625; got 1e-09$"):
        metrics.smooth_calibration_error([0, 1, 1], [0.3, 0.6, 0.8], bandwidth=1e-9)
    with pytest.raises(TypeError, match=r"^bandwidth must be a real number; got str$"):
        metrics.smooth_calibration_error([0, 1], [0.2, 0.7], bandwidth="a")
    low = metrics.smooth_calibration_error([0, 1, 1], [0.3, 0.6, 0.8], bandwidth=2.0**-12)
    assert low == pytest.approx(0.3, rel=1e-3)


def test_smooth_ece_reads_tensors_and_top_labels() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), 500)
    y = rng.integers(0, 4, 500)
    ref = metrics.smooth_calibration_error(y, p)
    got = metrics.smooth_calibration_error(torch.from_numpy(y), torch.from_numpy(p))
    assert got == pytest.approx(ref, rel=1e-12)
    conf, hit = p.max(axis=1), p.argmax(axis=1) == y
    assert ref == pytest.approx(metrics.smooth_calibration_error(hit, conf), rel=1e-12)


def test_bootstrap_interval_is_seeded_batch_free_and_like_relplots() -> None:
    relplot = pytest.importorskip("relplot")
    scipy_stats = pytest.importorskip("scipy.stats")
    f, o = _pairs(4000, 11, 1.8)
    whole = metrics.CalibrationAccumulator().update(o, f).result(seed=5)["smooth_ece"]
    parts = [
        metrics.CalibrationAccumulator().update(o[a:b], f[a:b]) for a, b in [(0, 999), (999, 4000)]
    ]
    merged = parts[0].merge(pickle.loads(pickle.dumps(parts[1]))).result(seed=5)["smooth_ece"]
    assert merged["ci_low"] == pytest.approx(whole["ci_low"], rel=1e-9)
    assert merged["ci_high"] == pytest.approx(whole["ci_high"], rel=1e-9)
    other = metrics.CalibrationAccumulator().update(o, f).result(seed=6)["smooth_ece"]
    assert other["ci_low"] != whole["ci_low"]
    # relplot's interval: scipy's basic bootstrap of smECE over resampled rows
    res = scipy_stats.bootstrap(
        (f, o.astype(float)),
        relplot.smECE,
        paired=True,
        n_resamples=200,
        method="basic",
        random_state=0,
    )
    theirs = res.confidence_interval.high - res.confidence_interval.low
    ours = whole["ci_high"] - whole["ci_low"]
    assert 0.6 < ours / theirs < 1.6, (ours, theirs)
    # the band holds the curve where there are forecasts
    curve, lo, hi = (np.array(whole[k], dtype=float) for k in ("curve", "band_low", "band_high"))
    dense = np.array(whole["density"]) > 0.2
    assert np.all(lo[dense] <= curve[dense] + 0.02)
    assert np.all(curve[dense] <= hi[dense] + 0.02)


def _interval(acc: metrics.CalibrationAccumulator) -> tuple[float, float]:
    r = acc.result(bootstrap=40)["smooth_ece"]
    return r["ci_low"], r["ci_high"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_bootstrap_runs_in_a_child_forked_after_one() -> None:
    # the bootstrap runs on a thread pool: a child forked after it has none of its threads
    import multiprocessing

    f, o = _pairs(5000, 11)
    acc = metrics.CalibrationAccumulator().update(o, f)
    here = _interval(acc)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_interval, (acc,)).get(timeout=120)
    assert there == here


def test_bootstrap_interval_at_small_bandwidths_matches_a_row_bootstrap() -> None:
    """Below a bandwidth of 0.016 the replicates run on a coarser grid than the estimate: the
    interval still matches scipy's basic bootstrap of the exact one-shot smECE over rows."""
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    f = rng.beta(2, 2, 20000)
    o = rng.random(20000) < f
    sm = metrics.CalibrationAccumulator().update(o, f).result(seed=1)["smooth_ece"]
    assert sm["bandwidth"] < 0.016
    res = scipy_stats.bootstrap(
        (o, f),
        metrics.smooth_calibration_error,
        paired=True,
        n_resamples=100,
        method="basic",
        random_state=0,
        vectorized=False,
    )
    low, high = res.confidence_interval
    width = high - low
    assert 0.75 < (sm["ci_high"] - sm["ci_low"]) / width < 1.33
    assert abs((sm["ci_high"] + sm["ci_low"]) / 2 - (high + low) / 2) < 0.25 * width


# --------------------------------------------------------------------------- CORP


@pytest.mark.parametrize("score", ["brier", "log_loss"])
@pytest.mark.parametrize("rounded", [False, True])
def test_corp_decomposition_matches_model_diagnostics(score: str, rounded: bool) -> None:
    md = pytest.importorskip("model_diagnostics.scoring")
    f, o = _pairs(5000, 4, 1.4)
    if rounded:
        f = np.round(f, 2)  # many ties, pooled by CORP
    fn = md.SquaredError() if score == "brier" else md.LogLoss()
    ref = md.decompose(o.astype(float), f, scoring_function=fn).to_dicts()[0]
    d = metrics.calibration_decomposition(o, f, score=score)
    for key, name in [
        ("score", "score"),
        ("miscalibration", "miscalibration"),
        ("discrimination", "discrimination"),
        ("uncertainty", "uncertainty"),
    ]:
        assert getattr(d, key) == pytest.approx(ref[name], rel=1e-10, abs=1e-14), key
    assert d.miscalibration - d.discrimination + d.uncertainty == pytest.approx(d.score)


def _scipy_brier_miscalibration(o: np.ndarray, f: np.ndarray) -> float:
    """MCB of the Brier score with SciPy's PAV over the distinct forecasts."""
    from scipy.optimize import isotonic_regression

    _, group = np.unique(f, return_inverse=True)
    rows = np.bincount(group).astype(float)
    ones = np.bincount(group, weights=o.astype(float))
    fit = isotonic_regression(ones / rows, weights=rows).x[group]
    return float(np.mean((o - f) ** 2) - np.mean((o - fit) ** 2))


@pytest.mark.parametrize(
    "case", ["random", "rising-then-miss", "falling", "one-forecast", "sawtooth", "all-ones"]
)
def test_corp_fit_equals_scipys_isotonic_regression(case: str) -> None:
    # the PAV pools whole runs first, then finishes with a stack pass: orders that defeat the
    # first stage (one violation at the end of a long rise) and that it does in one pass
    pytest.importorskip("scipy.optimize")
    k = 30000
    f = np.linspace(0.01, 0.99, k)
    rng = np.random.default_rng(3)
    o = {
        "random": (rng.random(k) < f).astype(int),
        "rising-then-miss": np.r_[np.zeros(k // 2), np.ones(k - k // 2 - 1), 0].astype(int),
        "falling": (f < 0.5).astype(int),
        "one-forecast": rng.integers(0, 2, k),
        "sawtooth": (np.arange(k) % 7 < 3).astype(int),
        "all-ones": np.ones(k, dtype=int),
    }[case]
    if case == "one-forecast":
        f = np.full(k, 0.3)
    d = metrics.calibration_decomposition(o, f, score="brier", labels=[0, 1])
    want = _scipy_brier_miscalibration(o, f)
    assert d.miscalibration == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_corp_of_two_classes_decomposes_log_loss_and_brier() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    f, o = _pairs(2000, 5)
    y = o.astype(int)
    p = np.stack([1 - f, f], axis=1)
    assert metrics.calibration_decomposition(y, p).score == pytest.approx(
        sklearn_metrics.log_loss(y, p), rel=1e-12
    )
    assert metrics.calibration_decomposition(y, f, score="brier").score == pytest.approx(
        sklearn_metrics.brier_score_loss(y, f), rel=1e-12
    )


def test_corp_streaming_grid_bounds() -> None:
    f, o = _pairs(40000, 9, 1.3)
    acc = metrics.CalibrationAccumulator()
    for a in range(0, f.shape[0], 7000):
        acc.update(o[a : a + 7000], f[a : a + 7000])
    corp = acc.result(bootstrap=0)["corp"]
    for score in ("brier", "log_loss"):
        exact = metrics.calibration_decomposition(o, f, score=score)
        grid = corp[score]
        assert grid["score"] == pytest.approx(exact.score, rel=1e-12)
        assert grid["uncertainty"] == pytest.approx(exact.uncertainty, rel=1e-12)
        # pooling cells is a constrained PAV: never above the exact MCB and DSC
        assert grid["miscalibration"] <= exact.miscalibration + 1e-12
        assert grid["discrimination"] <= exact.discrimination + 1e-12
        assert exact.miscalibration - grid["miscalibration"] < 1e-3 * exact.score
    # forecasts with 3 decimals: one forecast per cell, the grid is exact
    r = np.round(f, 3)
    corp = metrics.CalibrationAccumulator().update(o, r).result(bootstrap=0)["corp"]
    exact = metrics.calibration_decomposition(o, r, score="log_loss")
    assert corp["log_loss"]["miscalibration"] == pytest.approx(exact.miscalibration, rel=1e-9)
    steps = corp["diagram"]
    assert sum(s["count"] for s in steps) == f.shape[0]
    fits = [s["recalibrated"] for s in steps]
    assert fits == sorted(fits)


# --------------------------------------------------------------------------- bins, Murphy


def test_murphy_identity_and_terms() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    f, o = _pairs(3000, 12, 1.7)
    m = metrics.murphy_decomposition(o, f, n_bins=10)
    assert m.brier == pytest.approx(sklearn_metrics.brier_score_loss(o, f), rel=1e-12)
    total = (
        m.reliability
        - m.resolution
        + m.uncertainty
        + m.within_bin_variance
        - m.within_bin_covariance
    )
    assert total == pytest.approx(m.brier, rel=1e-12)
    # the reliability term, directly
    b = np.minimum((f * 10).astype(int), 9)
    b[(f * 10) == np.floor(f * 10)] -= 1  # an inner edge goes to the lower bin
    b = np.clip(b, 0, 9)
    rel = (
        sum(
            np.sum(b == k) * (f[b == k].mean() - o[b == k].mean()) ** 2
            for k in range(10)
            if np.any(b == k)
        )
        / f.shape[0]
    )
    assert m.reliability == pytest.approx(rel, rel=1e-10)


def test_wilson_interval_known_values() -> None:
    # 8 of 10 and 0 of 20 (values from the closed form)
    lo, hi = wilson_interval(np.array([8.0, 0.0]), np.array([10.0, 20.0]))
    assert lo[0] == pytest.approx(0.4901624, abs=1e-6)
    assert hi[0] == pytest.approx(0.9433178, abs=1e-6)
    assert lo[1] == 0.0
    assert hi[1] == pytest.approx(0.1611251, abs=1e-6)


def test_equal_mass_bins_match_quantile_bins() -> None:
    f, o = _pairs(30000, 13, 1.5)
    em = metrics.CalibrationAccumulator().update(o, f).result(bootstrap=0, n_bins=10)["equal_mass"]
    counts = [b["count"] for b in em["bins"]]
    assert sum(counts) == f.shape[0]
    # each bin holds n / bins rows up to the rows of one grid cell
    cell_rows = np.bincount(np.minimum((f * GRID).astype(int), GRID - 1)).max()
    assert max(abs(c - 3000) for c in counts) <= cell_rows
    ref = metrics.calibration_error(o, f, n_bins=10, strategy="quantile")
    assert em["ece"] == pytest.approx(ref, abs=2e-3)


def test_accumulator_merge_and_empty() -> None:
    acc = metrics.CalibrationAccumulator()
    assert acc.result()["smooth_ece"] is None
    f, o = _pairs(500, 14)
    whole = metrics.CalibrationAccumulator().update(o, f).result(bootstrap=20)
    merged = (
        metrics.CalibrationAccumulator()
        .update(o[:100], f[:100])
        .merge(metrics.CalibrationAccumulator().update(o[100:], f[100:]))
        .result(bootstrap=20)
    )
    assert merged["smooth_ece"]["value"] == pytest.approx(whole["smooth_ece"]["value"], rel=1e-12)
    assert merged["corp"]["brier"] == pytest.approx(whole["corp"]["brier"], rel=1e-12)
    with pytest.raises(TypeError, match="CalibrationAccumulator"):
        acc.merge(object())  # type: ignore[arg-type]


def test_score_accumulator_calibration_section() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(15)
    p = rng.dirichlet(np.ones(4) * 0.7, 3000)
    y = np.array([rng.choice(4, p=row) for row in p])
    r = metrics.ScoreAccumulator(["a", "b", "c", "d"], bootstrap=30).update(y, p).result()
    cal = r["calibration"]
    assert cal["pairs"] == "top label"
    assert cal["smooth_ece"]["value"] == pytest.approx(
        metrics.smooth_calibration_error(y, p), rel=1e-12
    )
    assert cal["equal_width"]["ece"] == pytest.approx(r["ece"], rel=1e-12)
    mce = metrics.calibration_error(y, p, norm="max")
    assert cal["equal_width"]["mce"] == pytest.approx(mce, rel=1e-12)
    murphy = metrics.murphy_decomposition(y, p)
    assert cal["murphy"]["reliability"] == pytest.approx(murphy.reliability, rel=1e-9)
    assert r["confusion"] == sklearn_metrics.confusion_matrix(y, p.argmax(axis=1)).tolist()
    per = [metrics.calibration_error(y == k, p[:, k]) for k in range(4)]
    assert cal["classwise"]["ece"] == pytest.approx(float(np.mean(per)), rel=1e-9)
    d2 = metrics.d2_log_loss_score(y, p)
    assert cal["skill"]["d2_log_loss"] == pytest.approx(d2, rel=1e-9)
    worst = r["worst"][0]
    assert worst["predicted"] == "abcd"[int(p[worst["row"]].argmax())]
    assert math.isclose(worst["p_predicted"], p[worst["row"]].max())


def test_wilson_interval_holds_proportions_of_zero_and_one() -> None:
    n = np.arange(1, 3001, dtype=float)
    lo, hi = wilson_interval(np.zeros_like(n), n)
    assert np.all(lo == 0.0)
    assert np.all(hi > 0)
    lo, hi = wilson_interval(n, n)
    assert np.all(hi == 1.0)
    assert np.all(lo < 1)


def test_subnormal_weights_give_the_widest_interval_and_a_report(tmp_path) -> None:
    """A weighted count of 1e-320 overflows z^2 / n: the interval is its limit, [0, 1], with no
    RuntimeWarning (three leaked), and the report page draws (its bins' None bounds raised a
    TypeError in the figure)."""
    import warnings

    from crossentropy.scoring import score

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = wilson_interval(np.array([1e-320, 0.0]), np.array([1e-320, 1e-320]))
        assert lo.tolist() == [0.0, 0.0]
        assert hi.tolist() == [1.0, 1.0]
        p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
        y = np.array([0, 1, 1, 0])
        report = score(p, target=y, sample_weight=[1e-320, 0.0, 0.0, 0.0], bootstrap=20)
        assert report.n == 4
        report.to_html(tmp_path / "r.html")


def test_separable_predictions_report_draws(tmp_path) -> None:
    """All-correct and all-wrong bins (Wilson intervals at 0 and 1) draw without error."""
    pytest.importorskip("matplotlib")
    from crossentropy.scoring import score

    rng = np.random.default_rng(16)
    y = rng.integers(0, 2, 3000)
    p1 = np.where(y == 1, 0.97, 0.03) + rng.uniform(-0.02, 0.02, 3000)
    report = score(np.stack([1 - p1, p1], axis=1), target=y, bootstrap=20)
    report.to_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text().count("data:image/png") == 5


def test_small_samples_and_bad_arguments() -> None:
    acc = metrics.CalibrationAccumulator().update(np.array([0, 1, 0]), np.array([0.2, 0.9, 0.6]))
    sm = acc.result(bootstrap=200)["smooth_ece"]
    for key in ("ci_low", "ci_high"):
        assert sm[key] is None or np.isfinite(sm[key])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.CalibrationAccumulator().update(np.array([0, 1]), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.CalibrationAccumulator().update(np.array([0]), np.array([np.nan]))
    with pytest.raises(ValueError, match=r"y_true must hold booleans or 0/1; got 0\.2 at row 0"):
        # the arguments swapped: the forecasts given as outcomes
        metrics.CalibrationAccumulator().update(np.array([0.2, 0.9]), np.array([0, 1]))
    objects = np.array([0, 1, True], dtype=object)  # 0/1 held as Python objects: accepted
    held = metrics.CalibrationAccumulator().update(objects, np.array([0.2, 0.9, 0.6]))
    assert held.result(bootstrap=0)["n"] == 3
    with pytest.raises(TypeError, match="y_true must hold booleans or 0/1; got dtype <U1"):
        metrics.CalibrationAccumulator().update(np.array(["a", "b"]), np.array([0.2, 0.9]))
    with pytest.raises(ValueError, match=r"y_true and y_proba must be 1-D of one length"):
        metrics.CalibrationAccumulator().update(np.array([0, 1]), np.array([0.2, 0.9, 0.1]))
    with pytest.raises(ValueError, match="mesh"):
        acc.result(mesh=1)
    with pytest.raises(ValueError, match="seed"):
        metrics.ScoreAccumulator(["a", "b"], seed=-1)


def test_small_blocks_on_the_edges_keep_searchsorted_bins() -> None:
    """The accumulator bins every block through the look-up table, however small: values on
    the edges, one ulp either side and in cells that straddle an edge get searchsorted's bins
    (a value on an inner edge goes to the lower bin), top-label and class-wise."""
    rng = np.random.default_rng(23)
    edges = np.linspace(0.0, 1.0, 16)
    p = np.concatenate(
        [edges, np.nextafter(edges, 0.0), np.nextafter(edges, 1.0), rng.uniform(size=200)]
    )
    p = np.clip(p, 0.0, 1.0)
    y = (rng.uniform(size=p.size) < p).astype(int)
    b = np.searchsorted(edges[1:-1], p, side="left")
    count = np.bincount(b, minlength=15)
    gap = np.abs(np.bincount(b, y, 15) - np.bincount(b, p, 15))
    acc = metrics.ScoreAccumulator([0, 1], bootstrap=0)
    for lo in range(0, p.size, 7):  # blocks of 7 rows
        acc.update(y[lo : lo + 7], np.c_[1 - p[lo : lo + 7], p[lo : lo + 7]])
    result = acc.result()
    bins = result["calibration"]["equal_width"]["bins"]
    assert [row["count"] for row in bins] == [int(k) for k in count if k]
    assert result["ece"] == pytest.approx(float(gap.sum() / count.sum()), rel=1e-12)
    # class-wise: class 1's bins are the bins of p, class 0's those of 1 - p
    q = 1 - p
    bq = np.searchsorted(edges[1:-1], q, side="left")
    gap_q = np.abs(np.bincount(bq, 1 - y, 15) - np.bincount(bq, q, 15))
    per_class = result["calibration"]["classwise"]["per_class"]
    assert per_class[1]["ece"] == pytest.approx(float(gap.sum() / p.size), rel=1e-12)
    assert per_class[0]["ece"] == pytest.approx(float(gap_q.sum() / p.size), rel=1e-12)


def test_many_bins_keep_their_edges() -> None:
    """The bin look-up table gives searchsorted's bins at any number of bins."""
    rng = np.random.default_rng(17)
    p = np.concatenate([rng.uniform(size=70_000), np.round(rng.uniform(size=5000), 3)])
    y = rng.uniform(size=p.size) < p
    for bins in (15, 40_000):
        edges = np.linspace(0.0, 1.0, bins + 1)
        b = np.searchsorted(edges[1:-1], p, side="left")
        count = np.bincount(b, minlength=bins)
        gap = np.abs(np.bincount(b, y, bins) - np.bincount(b, p, bins))
        expected = float(gap.sum() / count.sum())
        got = metrics.calibration_error(y, p, n_bins=bins)
        assert got == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- sample weights


@pytest.mark.parametrize("rounded", [True, False])
def test_integer_weights_equal_repeated_pairs(rounded: bool) -> None:
    """Weights k are the pairs repeated k times: smooth ECE and its curve, CORP (weighted PAV)
    with its diagram, equal-mass bins, across batches and merges."""
    f, o = _pairs(2000, 21)
    if rounded:
        f = np.round(f, 3)
    w = np.random.default_rng(22).integers(0, 5, size=f.shape[0])
    acc = metrics.CalibrationAccumulator().update(o[:500], f[:500], sample_weight=w[:500])
    acc.merge(metrics.CalibrationAccumulator().update(o[500:], f[500:], sample_weight=w[500:]))
    r = np.repeat(np.arange(f.shape[0]), w)
    repeated = metrics.CalibrationAccumulator().update(o[r], f[r]).result(bootstrap=0)
    weighted = acc.result(bootstrap=0)
    assert acc.n == 2000
    assert acc.weight == weighted["weight"] == float(np.sum(w))
    assert_same_numbers(as_repeated(weighted), repeated)
    # the exact CORP decomposition agrees too, for forecasts with 3 decimals
    if rounded:
        exact = metrics.calibration_decomposition(o[r], f[r], score="brier")
        assert weighted["corp"]["brier"]["miscalibration"] == pytest.approx(
            exact.miscalibration, rel=1e-9
        )


def test_weighted_bootstrap_keeps_the_rows_of_each_cell() -> None:
    f, o = _pairs(3000, 23)
    plain = metrics.CalibrationAccumulator().update(o, f).result(bootstrap=40, seed=5)
    ones = metrics.CalibrationAccumulator().update(o, f, sample_weight=np.ones(3000))
    unit = ones.result(bootstrap=40, seed=5)
    for key in ("value", "ci_low", "ci_high"):  # weight 1: the same draws, the same interval
        assert unit["smooth_ece"][key] == pytest.approx(plain["smooth_ece"][key], rel=1e-9)
    # weights 2: the masses double, the rows do not; the value is the same (a mean), and the
    # interval is the one of the rows (Poisson draws of the rows, scaled by k / m)
    twice = metrics.CalibrationAccumulator().update(o, f, sample_weight=np.full(3000, 2.0))
    two = twice.result(bootstrap=40, seed=5)
    for key in ("value", "ci_low", "ci_high"):
        assert two["smooth_ece"][key] == pytest.approx(plain["smooth_ece"][key], rel=1e-9)
    # random weights: a seeded, finite interval around the value
    w = np.random.default_rng(24).uniform(0, 3, size=3000)
    acc = metrics.CalibrationAccumulator().update(o, f, sample_weight=w)
    a, b = acc.result(bootstrap=40, seed=5), acc.result(bootstrap=40, seed=5)
    assert a["smooth_ece"] == b["smooth_ece"]
    assert a["smooth_ece"]["ci_low"] <= a["smooth_ece"]["value"] <= a["smooth_ece"]["ci_high"]
    for key in ("value", "ci_low", "ci_high"):  # Python floats, as the other numbers
        assert type(a["smooth_ece"][key]) is float


def test_weighted_pairs_pickle_and_refuse_bad_weights() -> None:
    f, o = _pairs(100, 25)
    acc = metrics.CalibrationAccumulator().update(o, f, sample_weight=np.full(100, 0.5))
    back = pickle.loads(pickle.dumps(acc))
    assert back.result(bootstrap=0)["corp"] == acc.result(bootstrap=0)["corp"]
    for bad, text in ((-1.0, "-1.0"), (np.nan, "nan"), (np.inf, "inf")):
        w = np.ones(100)
        w[7] = bad
        with pytest.raises(ValueError, match=f"finite and >= 0; got {text} at row 7"):
            metrics.CalibrationAccumulator().update(o, f, sample_weight=w)
    with pytest.raises(ValueError, match="one weight per row"):
        metrics.CalibrationAccumulator().update(o, f, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="numbers"):
        metrics.CalibrationAccumulator().update(o, f, sample_weight=np.array(["1"] * 100))
    zero = metrics.CalibrationAccumulator().update(o, f, sample_weight=np.zeros(100))
    with pytest.raises(metrics.ZeroWeightError, match="sample_weight sums to zero"):
        zero.result()


def test_calibration_error_refuses_a_negative_weight_as_the_others():
    with pytest.raises(
        ValueError, match=r"sample_weight must be finite and >= 0; got -2\.5 at row 3"
    ):
        metrics.calibration_error(
            [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], sample_weight=[1, 1, 1, -2.5], n_bins=2
        )


@pytest.mark.parametrize(
    "name", ["smooth_calibration_error", "calibration_decomposition", "murphy_decomposition"]
)
def test_sample_weights_are_repeated_rows_and_agree_with_score(name):
    """Integer weights give the numbers of the rows repeated; real weights the numbers of
    ``scoring.score``'s weighted report; bad weights are refused as in log_loss."""
    from crossentropy.scoring import score

    rng = np.random.default_rng(21)
    f = rng.uniform(size=400)
    y = (rng.uniform(size=400) < f**2).astype(int)
    fn = getattr(metrics, name)
    counts = rng.integers(0, 4, 400)
    np.testing.assert_allclose(
        fn(y, f, sample_weight=counts), fn(np.repeat(y, counts), np.repeat(f, counts)), rtol=1e-12
    )
    w = rng.uniform(0.1, 3.0, 400)
    got = fn(y, f, sample_weight=w)
    cal = score(np.stack([1 - f, f], 1), target=y, classes=[0, 1], sample_weight=w).to_dict()[
        "calibration"
    ]
    if name == "smooth_calibration_error":
        assert got == pytest.approx(cal["smooth_ece"]["value"], rel=1e-9)
    elif name == "calibration_decomposition":
        corp = cal["corp"]["log_loss"]
        assert got.miscalibration == pytest.approx(corp["miscalibration"], rel=1e-9)
        assert got.uncertainty == pytest.approx(corp["uncertainty"], rel=1e-12)
    with pytest.raises(ValueError, match="sample_weight"):
        fn(y, f, sample_weight=np.zeros(400))
    with pytest.raises(ValueError, match="sample_weight"):
        fn(y, f, sample_weight=np.ones(3))
    with pytest.raises(
        ValueError, match=r"sample_weight must be finite and >= 0; got -1\.0 at row 5"
    ):
        fn(y, f, sample_weight=np.where(np.arange(400) == 5, -1.0, 1.0))


def test_one_label_in_0_1_is_a_binary_slice_as_in_calibration_curve() -> None:
    """A binary vector of forecasts whose outcomes hold one label (a slice of all positives,
    say): scikit-learn's calibration_curve takes pos_label = 1 for labels in {0, 1} or
    {-1, 1}; so do the calibration metrics (it was a single-class ValueError). Other single
    labels still need labels=."""
    calibration = pytest.importorskip("sklearn.calibration")
    f = np.array([0.7, 0.8, 0.2, 0.55])
    for y, outcome in (([1] * 4, 1.0), ([0] * 4, 0.0), ([-1] * 4, 0.0), ([True] * 4, 1.0)):
        o = np.full(4, outcome)
        true, _ = calibration.calibration_curve(y, f, n_bins=5)
        np.testing.assert_allclose(true, outcome)
        got = metrics.calibration_error(y, f, n_bins=5)
        assert got == pytest.approx(metrics.calibration_error(o, f, n_bins=5, labels=[0, 1]))
        smooth = metrics.smooth_calibration_error(y, f)
        assert smooth == pytest.approx(metrics.smooth_calibration_error(o, f, labels=[0, 1]))
        score = metrics.calibration_decomposition(y, f, score="brier").score
        assert score == pytest.approx(float(np.mean((f - outcome) ** 2)))
    with pytest.raises(ValueError, match=r"only one label \(2\)"):
        metrics.calibration_error([2, 2], [0.3, 0.6])


def test_n_bins_is_bounded_everywhere():
    """A typo's billion bins is refused before any allocation (it ran for minutes and took
    gigabytes): in memory up to 2**20 bins, on the streaming grid up to its 16,384 cells."""
    y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.6, 0.4])
    in_memory = r"n_bins must be between 1 and 1,048,576; got 2,097,152"
    for call in (
        lambda: metrics.calibration_error(y, p, n_bins=2**21),
        lambda: metrics.murphy_decomposition(y, p, n_bins=2**21),
        lambda: metrics.CalibrationError(n_bins=2**21),
    ):
        with pytest.raises(ValueError, match=in_memory):
            call()
    for call in (
        lambda: metrics.ScoreAccumulator([0, 1], n_bins=GRID + 1),
        lambda: metrics.CalibrationAccumulator().update(y, p).result(n_bins=GRID + 1),
    ):
        with pytest.raises(ValueError, match=r"n_bins must be between 1 and 16,384"):
            call()
    with pytest.raises(ValueError, match="n_bins must be between 1 and"):
        metrics.calibration_error(y, p, n_bins=0)


def test_the_accumulators_arguments_are_checked_by_name():
    """``eps`` of ``update`` (an inverted or NaN clip gave a wrong or NaN log score, a complex
    one a negative score), ``bootstrap``, ``mesh`` and ``seed`` of ``result`` (a million
    replicates or points ran for minutes) and a ``y_proba`` of text."""
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 2, 200), rng.uniform(0.01, 0.99, 200)
    for eps, error, says in (
        (np.nan, ValueError, "eps must be finite"),
        (0.9, ValueError, "eps must be < 0.5"),
        (-1.0, ValueError, "eps must be > 0"),
        (1 + 2j, TypeError, "eps must be a real number"),
        ("x", TypeError, "eps must be a real number"),
    ):
        with pytest.raises(error, match=says):
            metrics.CalibrationAccumulator().update(y, p, eps=eps)
    with pytest.raises(TypeError, match="y_proba must have a real dtype"):
        metrics.CalibrationAccumulator().update(y, np.array(["a"] * 200))
    acc = metrics.CalibrationAccumulator().update(y, p)
    for kw, error, says in (
        ({"bootstrap": 10**6}, ValueError, "bootstrap must be between 0 and 10,000"),
        ({"mesh": 10**6}, ValueError, "mesh must be between 2 and 16,385"),
        ({"mesh": 1}, ValueError, "mesh must be between 2"),
        ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*63\)"),
        ({"seed": "abc"}, TypeError, "seed must be an integer"),
    ):
        with pytest.raises(error, match=says):
            acc.result(**kw)
    clipped = metrics.CalibrationAccumulator().update(y, p, eps=0.1).result(bootstrap=0)
    q = np.clip(p, 0.1, 0.9)
    want = -np.mean(np.where(y == 1, np.log(q), np.log(1 - q)))
    assert clipped["corp"]["log_loss"]["score"] == pytest.approx(want, rel=1e-12)


def test_accumulators_take_tensors_as_the_metrics_do():
    """Tensors that require gradients are detached, bfloat16 is read in float32 and a ``meta``
    tensor is a ``ValueError`` naming the argument, as every metric does (they were torch's and
    NumPy's errors from ``np.asarray``)."""
    torch = pytest.importorskip("torch")
    y = np.array([0, 1, 1, 0, 1])
    p = torch.tensor([0.125, 0.75, 0.625, 0.25, 0.9375])  # (exact in bfloat16)
    expected = metrics.CalibrationAccumulator().update(y, p.numpy()).result(bootstrap=0)
    for given in (p.clone().requires_grad_(), p.bfloat16()):
        got = metrics.CalibrationAccumulator().update(y, given).result(bootstrap=0)
        assert got["smooth_ece"] == expected["smooth_ece"]
    with pytest.raises(ValueError, match=r"^y_proba is a meta tensor"):
        metrics.CalibrationAccumulator().update(y, p.to("meta"))
    matrix = torch.stack([1 - p, p], dim=1)
    want = metrics.ScoreAccumulator([0, 1]).update(y, matrix.numpy()).result()
    for given in (matrix.clone().requires_grad_(), matrix.bfloat16()):
        got = metrics.ScoreAccumulator([0, 1]).update(y, given).result()
        assert got["log_loss"] == pytest.approx(want["log_loss"], rel=1e-12)
    with pytest.raises(ValueError, match=r"^proba is a meta tensor"):
        metrics.ScoreAccumulator([0, 1]).update(y, matrix.to("meta"))


def test_torch_views_with_a_negative_bit_are_read_as_their_values() -> None:
    """``z.conj().imag`` is a view with PyTorch's negative bit, which NumPy cannot read (it
    failed with PyTorch's "Can't call numpy() on Tensor that has negative bit set")."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p = rng.random(64)
    y = (rng.random(64) < p).astype(np.int64)
    t = torch.tensor(p)
    neg = torch.complex(torch.zeros_like(t), -t).conj().imag
    assert neg.is_neg()
    assert metrics.calibration_error(torch.tensor(y), neg) == metrics.calibration_error(y, p)
    assert metrics.smooth_calibration_error(torch.tensor(y), neg) == (
        metrics.smooth_calibration_error(y, p)
    )
