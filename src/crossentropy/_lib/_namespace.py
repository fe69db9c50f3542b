"""Array namespace, device and dtype helpers.

Every public function starts here: it resolves the array library of its arguments (through
``array-api-compat``), converts Python scalars and sequences to arrays of that library, and
chooses the floating dtype the computation runs in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import array_api_compat as compat
import numpy as np

Array = Any
Namespace = Any

__all__ = [
    "Array",
    "Namespace",
    "as_float",
    "compute_dtype",
    "device_of",
    "is_concrete",
    "is_numpy",
    "is_torch",
    "namespace",
    "quiet",
    "restore_dtype",
]


#: Arguments that may be None (optional arrays); any other None is a TypeError.
OPTIONAL = frozenset({"weight", "pos_weight", "alpha"})


def quiet(x: Array) -> contextlib.AbstractContextManager[Any]:
    """Silence NumPy's floating-point warnings for NumPy arrays (log 0, 0/0 are answers here).

    Other libraries get a null context, so nothing NumPy-specific enters a traced graph
    (``torch.compile`` cannot trace ``np.errstate``).
    """
    if compat.is_numpy_array(x):
        return np.errstate(divide="ignore", invalid="ignore", over="ignore")
    return contextlib.nullcontext()


def _is_array(obj: object) -> bool:
    return obj is not None and compat.is_array_api_obj(obj)


def namespace(*args: object, names: Sequence[str]) -> tuple[Namespace, list[Any]]:
    """Resolve the array namespace of ``args`` and convert non-arrays to that namespace.

    ``None`` stays ``None``. Python scalars and sequences become arrays of the namespace of the
    array arguments (NumPy when there are none), on the same device.
    """
    arrays = [a for a in args if _is_array(a)]
    if arrays:
        try:
            xp = compat.array_namespace(*arrays)
        except TypeError:
            kinds = ", ".join(
                f"{name}: {type(a).__module__}.{type(a).__name__}"
                for a, name in zip(args, names, strict=True)
                if _is_array(a)
            )
            raise TypeError(
                f"all array arguments must come from the same array library; got {kinds}"
            ) from None
        dev = compat.device(arrays[0])
    else:
        xp = compat.array_namespace(np.empty(0))
        dev = None
    out: list[Any] = []
    for a, name in zip(args, names, strict=True):
        if a is None and name not in OPTIONAL:
            raise TypeError(f"{name} must be an array or a sequence of numbers; got None")
        if a is None or _is_array(a):
            out.append(a)
            continue
        try:
            arr = np.asarray(a)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be an array or a sequence of numbers; got {a!r}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers; got an array of dtype {arr.dtype}")
        out.append(xp.asarray(arr, device=dev) if dev is not None else xp.asarray(arr))
    return xp, out


def device_of(x: Array) -> Any:
    """The device of ``x``."""
    return compat.device(x)


def is_numpy(x: Array) -> bool:
    """Whether ``x`` is a NumPy array."""
    return bool(compat.is_numpy_array(x))


def is_torch(x: Array) -> bool:
    """Whether ``x`` is a PyTorch tensor."""
    return bool(compat.is_torch_array(x))


def is_concrete(x: Array) -> bool:
    """Whether the values of ``x`` can be inspected without a device sync or a trace break.

    True for NumPy, array-api-strict, eager JAX arrays and PyTorch CPU tensors outside
    ``torch.compile``; False for Dask, JAX tracers, and accelerator tensors.
    """
    if compat.is_jax_array(x):
        import jax

        return not isinstance(x, jax.core.Tracer)
    if compat.is_torch_array(x):
        import torch

        if torch.compiler.is_compiling() or x.device.type != "cpu":
            return False
        return not isinstance(x, torch._subclasses.FakeTensor)
    return not compat.is_lazy_array(x)


def compute_dtype(xp: Namespace, x: Array, name: str) -> Any:
    """The floating dtype a computation on ``x`` runs in.

    Real floating dtypes of 32 bits or more are kept; float16 and bfloat16 run in float32;
    integer and boolean arrays run in the namespace's default real floating dtype. Complex and
    other dtypes raise ``TypeError`` naming ``name``.
    """
    dtype = x.dtype
    if xp.isdtype(dtype, "real floating"):
        return xp.float32 if xp.finfo(dtype).bits < 32 else dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=compat.device(x))["real floating"]
    raise TypeError(f"{name} must have a real (floating or integer) dtype; got {dtype}")


def as_float(xp: Namespace, x: Array, name: str) -> tuple[Array, Any]:
    """``x`` cast to its compute dtype, and the dtype results are returned in.

    Results are returned in the input's floating dtype (half precision included); integer input
    gives results in the default floating dtype.
    """
    dtype = compute_dtype(xp, x, name)
    out_dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else dtype
    return (x if x.dtype == dtype else xp.astype(x, dtype)), out_dtype


def restore_dtype(xp: Namespace, x: Array, dtype: Any) -> Array:
    """Cast a result back to the dtype the caller gave."""
    return x if x.dtype == dtype else xp.astype(x, dtype)
