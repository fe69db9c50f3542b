"""Shared fixtures: one backend fixture that runs a test on every array library."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)

import array_api_strict  # noqa: E402
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

# Without a GPU, Triton kernels run in Triton's interpreter on CPU tensors (set before any
# kernel is defined: the interpreter is chosen when a kernel is decorated).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

dask.config.set(scheduler="synchronous")


@dataclass(frozen=True)
class Backend:
    """An array library as the tests see it."""

    name: str
    asarray: Callable[..., Any]
    to_numpy: Callable[[Any], np.ndarray]
    is_native: Callable[[Any], bool]
    lazy: bool = False

    def __repr__(self) -> str:
        return self.name


def _torch_asarray(a: Any, dtype: Any = None) -> Any:
    arr = np.asarray(a)
    if dtype is not None:
        arr = arr.astype(dtype)
    return torch.as_tensor(np.array(arr, copy=True))


def _strict_asarray(a: Any, dtype: Any = None) -> Any:
    arr = np.asarray(a)
    if dtype is not None:
        arr = arr.astype(dtype)
    return array_api_strict.asarray(arr)


def _np_asarray(a: Any, dtype: Any = None) -> Any:
    arr = np.asarray(a)
    return arr.astype(dtype) if dtype is not None else arr


def _jax_asarray(a: Any, dtype: Any = None) -> Any:
    arr = np.asarray(a)
    if dtype is not None:
        arr = arr.astype(dtype)
    return jnp.asarray(arr)


def _dask_asarray(a: Any, dtype: Any = None) -> Any:
    arr = np.asarray(a)
    if dtype is not None:
        arr = arr.astype(dtype)
    chunks = tuple(max(1, (s + 1) // 2) for s in arr.shape)
    return da.from_array(arr, chunks=chunks)


def _torch_to_numpy(x: Any) -> np.ndarray:
    x = x.detach()
    if x.dtype == torch.bfloat16:
        x = x.float()
    return x.cpu().numpy()


BACKENDS = {
    "numpy": Backend(
        "numpy", _np_asarray, np.asarray, lambda x: isinstance(x, np.ndarray | np.generic)
    ),
    "array_api_strict": Backend(
        "array_api_strict",
        _strict_asarray,
        lambda x: np.from_dlpack(x),
        lambda x: type(x).__module__.startswith("array_api_strict"),
    ),
    "torch": Backend(
        "torch", _torch_asarray, _torch_to_numpy, lambda x: isinstance(x, torch.Tensor)
    ),
    "jax": Backend("jax", _jax_asarray, np.asarray, lambda x: isinstance(x, jax.Array)),
    "dask": Backend(
        "dask",
        _dask_asarray,
        lambda x: np.asarray(x.compute()),
        lambda x: isinstance(x, da.Array),
        lazy=True,
    ),
}


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every array library: NumPy, array-api-strict, PyTorch (CPU), JAX (CPU, x64), Dask."""
    return BACKENDS[request.param]


@pytest.fixture(params=[b for b in BACKENDS if b != "dask"])
def eager_backend(request: pytest.FixtureRequest) -> Backend:
    """The backends whose values can be inspected without computing a graph."""
    return BACKENDS[request.param]
