"""Shared fixtures: one backend fixture that runs a test on every array library.

This module imports only NumPy and pytest. Each backend is built the first time a test asks
for it, and a backend whose library is not installed skips just the tests (or parameters) that
ask for it. The libraries that are installed are configured once, before any
test runs: JAX on the CPU in float64, Triton's interpreter when torch has no GPU, Dask's
synchronous scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

try:
    import jax
except ImportError:
    pass
else:
    jax.config.update("jax_enable_x64", True)

try:
    import torch
except ImportError:
    pass
else:
    # Without a GPU, Triton kernels run in Triton's interpreter on CPU tensors (set before any
    # kernel is defined: the interpreter is chosen when a kernel is decorated).
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

try:
    import dask
except ImportError:
    pass
else:
    dask.config.set(scheduler="synchronous")


# The longest tests (subprocesses, process groups, whole guides), started first so that the two
# workers finish together instead of one waiting on a long test collected last.
_LONGEST = (
    "test_vocabulary_split_over_four_devices_with_shard_map",
    "test_guide_examples_run_in_order",
    "test_compiled_step_takes_schedules_of_float_options_and_dynamic_shapes",
    "test_whole_training_step_compiles_in_one_graph_without_warnings",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: getattr(item, "originalname", item.name) not in _LONGEST)


@pytest.fixture(autouse=True)
def _dask_scheduler_left_as_it_was() -> Iterator[None]:
    """A test that leaves dask's default scheduler changed (to a client it closed, say) fails,
    and the scheduler is put back: later tests' computations would wait on it without end."""
    try:
        import dask
    except ImportError:
        yield
        return
    before = dask.config.get("scheduler", None)
    yield
    after = dask.config.get("scheduler", None)
    if after != before:
        dask.config.set(scheduler=before)
        pytest.fail(f"the test left dask's default scheduler set to {after!r}")


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


def _as_numpy(a: Any, dtype: Any = None) -> np.ndarray:
    arr = np.asarray(a)
    return arr.astype(dtype) if dtype is not None else arr


def _numpy() -> Backend:
    return Backend("numpy", _as_numpy, np.asarray, lambda x: isinstance(x, np.ndarray | np.generic))


def _array_api_strict() -> Backend:
    array_api_strict = pytest.importorskip("array_api_strict")

    def asarray(a: Any, dtype: Any = None) -> Any:
        return array_api_strict.asarray(_as_numpy(a, dtype))

    return Backend(
        "array_api_strict",
        asarray,
        lambda x: np.from_dlpack(x),
        lambda x: type(x).__module__.startswith("array_api_strict"),
    )


def _torch() -> Backend:
    torch = pytest.importorskip("torch")

    def asarray(a: Any, dtype: Any = None) -> Any:
        return torch.as_tensor(np.array(_as_numpy(a, dtype), copy=True))

    def to_numpy(x: Any) -> np.ndarray:
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()

    return Backend("torch", asarray, to_numpy, lambda x: isinstance(x, torch.Tensor))


def _jax() -> Backend:
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")

    def asarray(a: Any, dtype: Any = None) -> Any:
        return jnp.asarray(_as_numpy(a, dtype))

    return Backend("jax", asarray, np.asarray, lambda x: isinstance(x, jax.Array))


def _dask() -> Backend:
    da = pytest.importorskip("dask.array")

    def asarray(a: Any, dtype: Any = None) -> Any:
        arr = _as_numpy(a, dtype)
        chunks = tuple(max(1, (s + 1) // 2) for s in arr.shape)
        return da.from_array(arr, chunks=chunks)

    return Backend(
        "dask",
        asarray,
        lambda x: np.asarray(x.compute()),
        lambda x: isinstance(x, da.Array),
        lazy=True,
    )


_BUILDERS: dict[str, Callable[[], Backend]] = {
    "numpy": _numpy,
    "array_api_strict": _array_api_strict,
    "torch": _torch,
    "jax": _jax,
    "dask": _dask,
}


class _Backends(Mapping[str, Backend]):
    """Backend name -> :class:`Backend`, built on first use; looking up a backend whose library
    is missing skips the test that looks it up (``pytest.importorskip``)."""

    def __init__(self) -> None:
        self._built: dict[str, Backend] = {}

    def __getitem__(self, name: str) -> Backend:
        if name not in self._built:
            self._built[name] = _BUILDERS[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_BUILDERS)

    def __len__(self) -> int:
        return len(_BUILDERS)


BACKENDS = _Backends()


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every array library: NumPy, array-api-strict, PyTorch (CPU), JAX (CPU, x64), Dask."""
    return BACKENDS[request.param]


@pytest.fixture(params=[b for b in BACKENDS if b != "dask"])
def eager_backend(request: pytest.FixtureRequest) -> Backend:
    """The backends whose values can be inspected without computing a graph."""
    return BACKENDS[request.param]


@pytest.fixture(params=["numpy", "torch", "array_api_strict"])
def lib(request: pytest.FixtureRequest) -> Backend:
    """The concrete backends whose values are validated eagerly (bad input raises at once)."""
    return BACKENDS[request.param]
