"""Host copies: the one place an array of any library becomes a NumPy array."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from crossentropy._lib.namespace import Array, is_dask, is_numpy, is_torch, plain_values

__all__ = ["computed", "to_host", "to_host_all"]


def to_host(x: Array, name: str = "array") -> np.ndarray[Any, Any]:
    """A NumPy copy (or view) of ``x``: PyTorch tensors are detached and moved to the CPU
    (bfloat16 becomes float32, which NumPy lacks), Dask arrays are computed, other libraries
    go through ``__array__`` or DLPack.

    A ``meta`` tensor has no values: ``ValueError`` naming ``name``; nor has a masked value of a
    NumPy masked array (:func:`~crossentropy._lib.namespace.plain_values`); nor has an array that
    ``jax.jit`` (or ``grad``, ``vmap``) is tracing: ``TypeError`` naming ``name``.
    """
    if is_numpy(x):
        return np.asarray(plain_values(x, name))
    if is_torch(x):
        import torch

        if x.device.type == "meta":
            raise ValueError(f"{name} is a meta tensor: it has a shape but no values to read")
        t = x.detach().resolve_neg().resolve_conj()  # (a view with a negative bit: values)
        if t.dtype == torch.bfloat16:
            t = t.float()
        return np.asarray(t.cpu().numpy())
    if is_dask(x):
        return np.asarray(x.compute())
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.core.Tracer):
        raise TypeError(
            f"{name} is traced by JAX (jit, grad, vmap): its values, which are needed here, "
            "are not known yet; call this outside the traced function, on concrete arrays"
        )
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def computed(*arrays: Any) -> list[Any]:
    """The arguments, each Dask array computed and all of them in one computation: what their
    graphs share (the chunks of one input, read from disk or computed by a model) is computed
    once, not once per array. Anything else is returned as given."""
    lazy = [x for x in arrays if x is not None and is_dask(x)]
    if not lazy:
        return list(arrays)
    import importlib

    dask: Any = importlib.import_module("dask")  # (untyped)
    done = iter(dask.compute(*lazy))
    return [next(done) if x is not None and is_dask(x) else x for x in arrays]


def to_host_all(*arrays: Array | None) -> list[np.ndarray[Any, Any] | None]:
    """:func:`to_host` of each array (None stays None), the Dask arrays in one computation
    (:func:`computed`)."""
    return [None if x is None else to_host(x) for x in computed(*arrays)]
