"""The key-determined Poisson bootstrap (metrics/_bootstrap.py): the weights' law, their
independence from batching and order, merging, the fingerprint, and the paired interval
against a resampling bootstrap and the normal approximation."""

from __future__ import annotations

import numpy as np
import pytest

from crossentropy.metrics._bootstrap import BootstrapTotals, poisson_weights


def test_weights_are_poisson_one() -> None:
    from scipy import stats

    w = poisson_weights(np.arange(200_000), 50, seed=3)
    assert w.shape == (200_000, 50)
    assert w.dtype == np.uint8
    assert float(w.mean()) == pytest.approx(1.0, abs=2e-3)
    assert float(w.var()) == pytest.approx(1.0, abs=4e-3)
    counts = np.bincount(w.ravel(), minlength=8)[:6]
    expected = stats.poisson.pmf(np.arange(6), 1.0) * w.size
    assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected) + 5)
    # replicates of one row are not correlated
    c = np.corrcoef(w[:, :10].T.astype(float))
    assert np.max(np.abs(c - np.eye(10))) < 0.01


def test_weights_depend_on_the_key_and_seed_only() -> None:
    keys = np.arange(1000, 3000)
    whole = poisson_weights(keys, 37, seed=1)
    perm = np.random.default_rng(0).permutation(keys.shape[0])
    assert np.array_equal(poisson_weights(keys[perm], 37, seed=1), whole[perm])
    assert np.array_equal(poisson_weights(keys[:10], 37, seed=1), whole[:10])
    assert not np.array_equal(poisson_weights(keys, 37, seed=2), whole)
    # more replicates extend, never change, the first ones
    assert np.array_equal(poisson_weights(keys, 40, seed=1)[:, :37], whole)


def test_totals_merge_and_fingerprint() -> None:
    rng = np.random.default_rng(4)
    keys = np.arange(500)
    values = rng.normal(size=(500, 2))
    labels = rng.integers(0, 3, 500)
    whole = BootstrapTotals(["a", "b"], 30, 0).update(keys, values, labels)
    parts = BootstrapTotals(["a", "b"], 30, 0).update(keys[300:], values[300:], labels[300:])
    parts.merge(BootstrapTotals(["a", "b"], 30, 0).update(keys[:300], values[:300], labels[:300]))
    np.testing.assert_allclose(parts.totals, whole.totals, rtol=1e-12)
    np.testing.assert_array_equal(parts.weight, whole.weight)
    assert parts.fingerprint == whole.fingerprint
    other = labels.copy()
    other[17] = (other[17] + 1) % 3
    changed = BootstrapTotals(["a", "b"], 30, 0).update(keys, values, other)
    assert changed.fingerprint != whole.fingerprint
    with pytest.raises(ValueError, match="same names"):
        whole.merge(BootstrapTotals(["a", "b"], 30, 1))
    with pytest.raises(ValueError, match="replicates"):
        BootstrapTotals(["a"], 0, 0)


def test_paired_interval_matches_resampling_and_the_normal_approximation() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    a = rng.exponential(1.0, n)
    b = a + rng.normal(0.05, 0.3, n)  # paired: b is a plus noise
    reps = 400
    ta = BootstrapTotals(["x"], reps, 9).update(np.arange(n), a[:, None])
    tb = BootstrapTotals(["x"], reps, 9).update(np.arange(n), b[:, None])
    delta = ta.means()[:, 0] - tb.means()[:, 0]
    ours = np.percentile(delta, 97.5) - np.percentile(delta, 2.5)
    d = a - b
    normal = 2 * 1.959964 * d.std(ddof=1) / np.sqrt(n)
    assert ours == pytest.approx(normal, rel=0.15)
    idx = rng.integers(0, n, size=(reps, n))
    resampled = d[idx].mean(axis=1)
    classic = np.percentile(resampled, 97.5) - np.percentile(resampled, 2.5)
    assert ours == pytest.approx(classic, rel=0.2)
    # unpaired totals would be far wider: the pairing is what makes the interval narrow
    unpaired = 2 * 1.959964 * np.sqrt((a.var() + b.var()) / n)
    assert ours < 0.5 * unpaired


def test_sample_weights_multiply_the_poisson_weights() -> None:
    rng = np.random.default_rng(3)
    keys, values = np.arange(20000), rng.normal(size=(20000, 2))
    w = rng.uniform(0, 2, size=20000)
    weighted = BootstrapTotals(["a", "b"], 8, 1).update(keys, values, sample_weight=w)
    draws = poisson_weights(keys, 8, 1).astype(np.float64) * w[:, None]
    np.testing.assert_allclose(weighted.weight, draws.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(weighted.totals, draws.T @ values, rtol=1e-12)
    ones = BootstrapTotals(["a", "b"], 8, 1).update(keys, values, sample_weight=np.ones(20000))
    plain = BootstrapTotals(["a", "b"], 8, 1).update(keys, values)
    np.testing.assert_array_equal(ones.totals, plain.totals)
