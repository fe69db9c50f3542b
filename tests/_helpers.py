"""Helpers shared by the test modules.

Only NumPy is imported here; a helper that needs PyTorch or JAX imports it with
``pytest.importorskip`` when called, so the test calling it skips where the library is missing.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import crossentropy as ce

REDUCTIONS = ("none", "mean", "sum", "batchmean")

#: ``score`` keywords for the test tables of the scoring modules: target ``y``, probability
#: columns ``p_*``, no bootstrap.
SCORE_TABLE: dict[str, Any] = {"target": "y", "proba": "p_*", "bootstrap": 0}


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


def check_values(
    out: Any, backend: Any, dtype: Any, expected: Any, *, rtol: float = 1e-10, atol: float = 1e-12
) -> None:
    """``out`` is native to ``backend``, has ``dtype`` and the values of ``expected``."""
    assert backend.is_native(out), type(out)
    got = backend.to_numpy(out)
    assert got.dtype == np.dtype(dtype), got.dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def native_values(out: Any, backend: Any) -> np.ndarray:
    """The values of ``out`` as NumPy, after checking ``out`` is native to ``backend``."""
    assert backend.is_native(out), type(out)
    return backend.to_numpy(out)


def keyed_rng(*key: object) -> np.random.Generator:
    """A generator seeded from ``key`` (the same numbers for the same test case)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def uniform_probs(
    rng: np.random.Generator, shape: Any, low: float = 0.05, high: float = 0.95
) -> np.ndarray:
    return rng.uniform(low, high, size=shape)


# ---------------------------------------------------------------------------------------------
# Small arguments on the eagerly validated backends (the ``lib`` fixture), for bad-input tests.
# ---------------------------------------------------------------------------------------------


def lib_logits(lib: Any, shape: tuple[int, ...] = (2, 3)) -> Any:
    return lib.asarray(np.arange(math.prod(shape), dtype=np.float64).reshape(shape) / 10)


def lib_labels(lib: Any, values: Any = (0, 2)) -> Any:
    return lib.asarray(np.asarray(values, dtype=np.int64))


def lib_scalar(lib: Any, value: Any, dtype: Any = np.float64) -> Any:
    """A 0-d array (the conftest helper turns 0-d input into 1-d tensors for torch)."""
    if lib.name == "torch":
        import torch

        return torch.tensor(value, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
    return lib.asarray(np.asarray(value, dtype=dtype))


def lib_probs(lib: Any, values: Any = ((0.2, 0.8, 0.0), (0.5, 0.25, 0.25))) -> Any:
    return lib.asarray(np.asarray(values, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Gradients: torch.autograd.gradcheck, and torch and JAX gradients of a scalar.
# ---------------------------------------------------------------------------------------------


def to_torch(a: Any, requires_grad: bool = False) -> Any:
    """A torch tensor holding a copy of ``a`` in its own dtype."""
    torch = pytest.importorskip("torch")
    out = torch.from_numpy(np.array(a, dtype=np.asarray(a).dtype))
    return out.requires_grad_(requires_grad)


def gradcheck_float64(fn: Callable[..., Any], *inputs: Any) -> None:
    """gradcheck ``fn`` w.r.t. every float64 input (the others are passed through)."""
    gradcheck = pytest.importorskip("torch.autograd").gradcheck
    args = tuple(
        to_torch(a, requires_grad=np.asarray(a).dtype == np.float64)
        if isinstance(a, np.ndarray)
        else a
        for a in inputs
    )
    assert gradcheck(fn, args, eps=1e-6, atol=1e-6, rtol=1e-5)


def torch_grads(
    fn: Callable[..., Any], arrays: list[np.ndarray], cotangent: Any = None
) -> list[np.ndarray]:
    """The gradients of ``sum(fn(*arrays) * cotangent)`` by torch.autograd."""
    torch = pytest.importorskip("torch")
    leaves = [to_torch(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    cot = torch.ones_like(out) if cotangent is None else to_torch(cotangent)
    return [g.numpy() for g in torch.autograd.grad((out * cot).sum(), leaves)]


def jax_grads(
    fn: Callable[..., Any], arrays: list[np.ndarray], cotangent: Any = None
) -> list[np.ndarray]:
    """The gradients of ``sum(fn(*arrays) * cotangent)`` by jax.grad (all in float64)."""
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")

    def scalar(*args: Any) -> Any:
        out = fn(*args)
        cot = jnp.ones_like(out) if cotangent is None else jnp.asarray(cotangent)
        return jnp.sum(out * cot)

    args = [jnp.asarray(a) for a in arrays]
    grads = jax.grad(scalar, argnums=tuple(range(len(args))))(*args)
    assert all(g.dtype == jnp.float64 for g in grads)
    return [np.asarray(g) for g in grads]


def cotangent_for(out_shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray | None:
    return rng.standard_normal(out_shape) if out_shape else None


# ---------------------------------------------------------------------------------------------
# Calls on lazy (Dask) and traced (jax.jit) arrays.
# ---------------------------------------------------------------------------------------------


def lazy_calls(x: Any, y: Any, soft: Any, p: Any, q: Any) -> dict[str, Callable[[], Any]]:
    """Losses, special and information functions on logits ``x``, labels ``y``, soft targets
    ``soft`` and distributions ``p`` and ``q``."""
    return {
        "cross_entropy": lambda: ce.cross_entropy(x, y, label_smoothing=0.1),
        "cross_entropy_soft": lambda: ce.cross_entropy(x, soft),
        "nll_loss": lambda: ce.nll_loss(x, y),
        "bce": lambda: ce.binary_cross_entropy(p, q),
        "bce_with_logits": lambda: ce.binary_cross_entropy_with_logits(x, q),
        "kl_div": lambda: ce.kl_div(x, q),
        "logsumexp": lambda: ce.logsumexp(x),
        "softmax": lambda: ce.softmax(x),
        "log_softmax": lambda: ce.log_softmax(x),
        "sigmoid": lambda: ce.sigmoid(x),
        "entropy": lambda: ce.entropy(p),
        "kl_divergence": lambda: ce.kl_divergence(p, q),
        "js_divergence": lambda: ce.js_divergence(p, q),
        "perplexity": lambda: ce.perplexity(p, q),
    }


def lazy_inputs() -> tuple[np.ndarray, ...]:
    """The arrays for :func:`lazy_calls`: (x, y, soft, p, q), labels with one ignored."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 4))
    y = np.array([0, 3, 1, -100, 2, 2])
    soft = rng.random((6, 4))
    soft /= soft.sum(axis=1, keepdims=True)
    p = rng.random((6, 4))
    p /= p.sum(axis=1, keepdims=True)
    q = rng.random((6, 4))
    q /= q.sum(axis=1, keepdims=True)
    return x, y, soft, p, q


def as_repeated(result: Any) -> Any:
    """A weighted report (of ``ScoreAccumulator`` or ``CalibrationAccumulator``) as the report
    of its rows repeated by their integer weights reads: each ``weight`` in the place of the
    row count (``n`` or ``count``) next to it."""
    if isinstance(result, list):
        return [as_repeated(v) for v in result]
    if not isinstance(result, dict):
        return result
    out = {k: as_repeated(v) for k, v in result.items()}
    if "weight" in out:
        weight = out.pop("weight")
        for key in ("n", "count"):
            if key in out:
                out[key] = weight
    return out


#: Numbers of a report that count rows whatever their weights, or that resample rows.
ROW_KEYS = ("worst", "loss_histogram", "rows_not_summing_to_one", "ci_low", "ci_high")


def assert_same_numbers(a: Any, b: Any, where: str = "", rel: float = 1e-9) -> None:
    """Two reports hold the same keys and the same numbers (floats to ``rel``), except
    :data:`ROW_KEYS`."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert a.keys() == b.keys(), (where, a.keys() ^ b.keys())
        for k in a:
            if k not in ROW_KEYS and not k.startswith("band_"):
                assert_same_numbers(a[k], b[k], f"{where}.{k}", rel)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same_numbers(u, v, f"{where}[{i}]", rel)
    elif isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            assert a is b, (where, a, b)
        elif math.isnan(a) or math.isnan(b):
            assert math.isnan(a), (where, a, b)
            assert math.isnan(b), (where, a, b)
        else:
            assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), (where, a, b)
    else:
        assert a == b, (where, a, b)
