"""Fast paths are delegations: each is held against the generic array-API path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp as scipy_logsumexp

import crossentropy as ce


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_blocked_threaded_logsumexp_equals_generic_path(dtype):
    # 3000 x 700 = 2.1 M elements: several row blocks, run on the thread pool.
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 700)).astype(dtype) * 5
    x[1, :] = -np.inf
    x[2, 3] = 1e4
    x[4, :5] = -np.inf
    fast = ce.logsumexp(x)
    generic = np.from_dlpack(ce.logsumexp(xps.asarray(x)))
    assert fast.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(fast, generic, rtol=tol)
    np.testing.assert_allclose(fast, scipy_logsumexp(x.astype(np.float64), axis=1), rtol=tol)
    assert fast[1] == -np.inf


def test_numpy_cross_entropy_fast_path_equals_generic_path():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2500, 900)).astype(np.float32)
    y = rng.integers(0, 900, 2500)
    y[::7] = -100
    fast = ce.cross_entropy(x, y, reduction="none")
    generic = np.from_dlpack(ce.cross_entropy(xps.asarray(x), xps.asarray(y), reduction="none"))
    np.testing.assert_allclose(fast, generic, rtol=1e-6, atol=1e-6)


def test_numpy_logsumexp_on_a_non_last_axis_uses_the_same_kernel():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 5))
    np.testing.assert_allclose(ce.logsumexp(x, axis=1), scipy_logsumexp(x, axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        ce.logsumexp(x, axis=0, keepdims=True),
        scipy_logsumexp(x, axis=0, keepdims=True),
        rtol=1e-13,
    )
