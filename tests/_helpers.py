"""Helpers shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def check_on_backend(
    backend: Any, fn: Callable[..., Any], arrays: tuple[np.ndarray, ...], dtype: Any
) -> None:
    """Run ``fn`` on ``arrays`` converted to ``backend`` (floats in ``dtype``) and check the result
    is native to the backend, keeps ``dtype`` and equals the NumPy float64 result."""
    inputs = [backend.asarray(a, dtype=dtype if a.dtype.kind == "f" else None) for a in arrays]
    out = fn(*inputs)
    assert backend.is_native(out), type(out)
    assert str(out.dtype).endswith(np.dtype(dtype).name), out.dtype
    expected = np.asarray(fn(*arrays), dtype=np.float64)
    got = backend.to_numpy(out)
    assert got.shape == expected.shape
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
