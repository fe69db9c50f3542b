"""Array namespace, device and dtype: where every public function starts.

A call resolves the array library of its arguments, converts Python scalars and sequences to
arrays of that library (on the same device), and chooses the floating dtype the computation runs
in. PyTorch tensors and NumPy arrays are recognised without ``array-api-compat``'s cached type
checks, so nothing here makes ``torch.compile`` warn or graph-break, and the path costs little on
small tensors.

The dtype policy (one home): real floating dtypes of 32 bits or more are kept; float16 and
bfloat16 (also NumPy's ``ml_dtypes`` types) run in float32 and results return in the input's
dtype; integer and boolean input runs in the library's default floating dtype. Under
``torch.autocast`` a loss's float16, bfloat16 or float32 input runs in float32 and the loss stays
float32, as PyTorch's losses do (:func:`as_loss_float`); other functions keep the input's dtype,
as PyTorch's do on the CPU.
"""

from __future__ import annotations

import contextlib
import sys
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
    "as_loss_float",
    "autocast_enabled",
    "cast",
    "check_known_shape",
    "default_float",
    "device_of",
    "epsilon",
    "hyper",
    "index_dtype",
    "is_array",
    "is_dask",
    "is_floating",
    "is_integral",
    "is_jax",
    "is_numpy",
    "is_torch",
    "move_axis",
    "namespace",
    "plain_values",
    "promoted",
    "quiet",
    "restore_dtype",
    "stop_gradient",
]

#: Arguments that may be None (optional arrays); any other None is a TypeError.
OPTIONAL = frozenset({"weight", "pos_weight", "alpha", "where"})


def is_numpy(x: object) -> bool:
    """Whether ``x`` is a NumPy array or scalar."""
    return isinstance(x, (np.ndarray, np.generic))


def plain_values(x: Any, name: str) -> Any:
    """``x``, or a NumPy matrix as a plain array (its ``*`` is a matrix product), or a NumPy
    masked array's values where none is masked; a masked value is a ``ValueError`` naming
    ``name`` (NumPy's reductions skip it, so a mean would count it in its divisor but not its
    sum: no number of such an input is the one meant). A SciPy sparse matrix is a
    ``TypeError`` naming ``name`` (as scikit-learn refuses one)."""
    if type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} must be an array; got a SciPy sparse {type(x).__name__} of shape "
            f"{getattr(x, 'shape', '?')}: pass {name}.toarray()"
        )
    if is_dask(x) and isinstance(getattr(x, "_meta", None), np.ma.MaskedArray):
        raise ValueError(  # (its mask is not known without computing it)
            f"{name} is a masked Dask array: fill its masked values first "
            f"(dask.array.ma.filled({name}, value))"
        )
    if isinstance(x, np.matrix):  # its ``*`` is a matrix product: read as a plain array
        return np.asarray(x)
    if not isinstance(x, np.ma.MaskedArray):
        return x
    hidden = int(np.count_nonzero(np.ma.getmaskarray(x)))
    if hidden:
        what = "1 masked value: fill it" if hidden == 1 else f"{hidden} masked values: fill them"
        raise ValueError(
            f"{name} is a masked array with {what} ({name}.filled(value)) or leave out the rows "
            "that hold them"
        )
    return x.data


def is_torch(x: object) -> bool:
    """Whether ``x`` is a PyTorch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_jax(x: object) -> bool:
    """Whether ``x`` is a JAX array or tracer (without importing jax)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(x, jax.Array)


def is_dask(x: object) -> bool:
    """Whether ``x`` is a Dask array (without importing dask)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def is_array(x: object) -> bool:
    """Whether ``x`` is an array of a library this package computes on."""
    if x is None or isinstance(x, (bool, int, float, complex, str)):
        return False
    return is_numpy(x) or is_torch(x) or bool(compat.is_array_api_obj(x))


def _torch_namespace() -> Namespace:
    import array_api_compat.torch as mod

    return mod


def _numpy_namespace() -> Namespace:
    import array_api_compat.numpy as mod

    return mod


def _namespace_of(arrays: Sequence[Any], names: Sequence[str]) -> Namespace:
    if all(is_torch(a) for a in arrays):
        return _torch_namespace()
    if all(is_numpy(a) for a in arrays):
        return _numpy_namespace()
    try:
        return compat.array_namespace(*arrays)
    except TypeError:
        kinds = ", ".join(
            f"{name}: {type(a).__module__}.{type(a).__name__}"
            for a, name in zip(arrays, names, strict=True)
        )
        raise TypeError(
            f"all array arguments must come from the same array library; got {kinds}"
        ) from None


def device_of(x: Array) -> Any:
    """The device of ``x``."""
    if is_torch(x):
        return x.device
    if is_numpy(x):
        return "cpu"
    return compat.device(x)


def numeric_columns(a: object) -> bool:
    """Whether ``a`` is a pandas Series or DataFrame whose every column has a numeric dtype
    (NumPy's, nullable or Arrow-backed; text columns are not)."""
    dtypes = getattr(a, "dtypes", None)
    if dtypes is None or not hasattr(a, "to_numpy"):
        return False
    kinds = [dtypes.kind] if hasattr(dtypes, "kind") else [getattr(d, "kind", "O") for d in dtypes]
    return bool(kinds) and all(k in "biuf" for k in kinds)


def _from_python(a: object, name: str) -> np.ndarray[Any, Any]:
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array or a sequence of numbers; got {a!r}") from exc
    if arr.dtype.kind == "O" and numeric_columns(a):
        # pandas' nullable and Arrow-backed numbers (Float64, float64[pyarrow]) give objects;
        # as numbers, a missing value (pd.NA) is NaN (refused or propagated as NaN is)
        with contextlib.suppress(TypeError, ValueError):
            arr = np.asarray(a.to_numpy(dtype=np.float64, na_value=np.nan))  # type: ignore[attr-defined]
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got an array of dtype {arr.dtype}")
    return arr


def _python_numbers_dtype(a: object) -> str | None:
    """The dtype NumPy gives a flat list or tuple of Python numbers (``"bool"``, ``"int64"``
    or ``"float64"``), or None for anything else."""
    if not isinstance(a, list | tuple) or not a:
        return None
    kinds = {type(v) for v in a}
    if not kinds <= {bool, int, float}:
        return None
    if int in kinds and not all(-(2**63) <= v < 2**63 for v in a if type(v) is int):
        return None  # beyond int64: NumPy's route refuses it by name
    return "float64" if float in kinds else "int64" if int in kinds else "bool"


def check_known_shape(a: Any, name: str) -> None:
    """Refuse an array of unknown dimensions (a Dask array after boolean indexing: ``nan``),
    a ``ValueError`` naming it, with the call that makes them known."""
    shape = tuple(a.shape)
    if any(d is None or d != d for d in shape):
        raise ValueError(
            f"{name} has unknown dimensions {shape} (a Dask array after boolean indexing?); "
            "call .compute_chunk_sizes() on it first"
        )


def _without_empty_chunks(a: Any) -> Any:
    """A Dask array with its empty chunks merged away (a filtered DataFrame's partitions give
    them; Dask's ``max`` over an axis fails on one), the same array when it has none."""
    sizes = [n for c in a.chunks for n in c]
    if any(n != n for n in sizes) or not any(0 in c and len(c) > 1 for c in a.chunks):
        return a  # (unknown sizes, NaN, are refused by check_known_shape)
    return a.rechunk(tuple(tuple(n for n in c if n) or (0,) for c in a.chunks))


def namespace(*args: object, names: Sequence[str]) -> tuple[Namespace, list[Any]]:
    """Resolve the array namespace of ``args`` and convert non-arrays to that namespace.

    ``None`` stays ``None`` for the optional arguments (``weight``, ``pos_weight``, ``alpha``,
    ``where``). Python scalars and sequences become arrays of the namespace of the array
    arguments (NumPy when there are none), on the same device; so do NumPy arrays beside JAX
    arrays (labels from a data loader, as optax takes them). Torch tensors must share the
    first one's device (a 0-d CPU tensor aside, as in PyTorch).
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(args[0], torch.Tensor):  # the common case, fast
        tensor = torch.Tensor
        first = args[0].device
        # a list of Python numbers (class weights) becomes a tensor here, as NumPy types it:
        # no NumPy detour, which torch.compile cannot trace
        kinds = [None if isinstance(a, tensor) else _python_numbers_dtype(a) for a in args]
        if any(kinds):
            args = tuple(
                a if k is None else torch.asarray(a, dtype=getattr(torch, k), device=first)
                for a, k in zip(args, kinds, strict=True)
            )
        if all(a is None or isinstance(a, tensor) for a in args):
            for t, name in zip(args, names, strict=True):
                a: Any = t
                if a is None:
                    if name not in OPTIONAL:
                        raise TypeError(
                            f"{name} must be an array or a sequence of numbers; got None"
                        )
                elif a.device != first and not (a.ndim == 0 and a.device.type == "cpu"):
                    raise ValueError(
                        f"{name} is on the device {a.device}, {names[0]} on {first}; put them "
                        "on one device"
                    )
            return _torch_namespace(), list(args)
    args = tuple(plain_values(a, name) for a, name in zip(args, names, strict=True))
    if any(is_dask(a) for a in args):
        args = tuple(_without_empty_chunks(a) if is_dask(a) else a for a in args)
    arrays = [(a, n) for a, n in zip(args, names, strict=True) if is_array(a)]
    for a, name in arrays:
        check_known_shape(a, name)
    to_jax = any(is_jax(a) for a, _ in arrays) and any(is_numpy(a) for a, _ in arrays)
    if to_jax and all(is_jax(a) or is_numpy(a) for a, _ in arrays):
        arrays = [(a, n) for a, n in arrays if is_jax(a)]  # NumPy arrays join JAX's namespace
    else:
        to_jax = False
    if arrays:
        xp = _namespace_of([a for a, _ in arrays], [n for _, n in arrays])
        dev = device_of(arrays[0][0])
    else:
        xp, dev = _numpy_namespace(), None
    out: list[Any] = []
    for a, name in zip(args, names, strict=True):
        if a is None and name not in OPTIONAL:
            raise TypeError(f"{name} must be an array or a sequence of numbers; got None")
        if a is None or (is_array(a) and not (to_jax and is_numpy(a))):
            out.append(a)
            continue
        if isinstance(a, (int, float)):  # a Python number: no NumPy detour (traceable)
            out.append(xp.asarray(a, device=dev) if dev is not None else xp.asarray(a))
            continue
        arr = _from_python(a, name)
        out.append(xp.asarray(arr, device=dev) if dev is not None else xp.asarray(arr))
    return xp, out


def quiet(x: Array) -> contextlib.AbstractContextManager[Any]:
    """Silence NumPy's floating-point warnings for NumPy arrays (log 0, 0/0 are answers here).

    Other libraries get a null context, so nothing NumPy-specific enters a traced graph
    (``torch.compile`` cannot trace ``np.errstate``).
    """
    if is_numpy(x):
        return np.errstate(divide="ignore", invalid="ignore", over="ignore")
    return contextlib.nullcontext()


def _ml_float_bits(dtype: Any) -> int | None:
    """Bits of a NumPy ``ml_dtypes`` floating dtype (bfloat16, float8...), None otherwise."""
    if not isinstance(dtype, np.dtype) or dtype.kind != "V":
        return None
    ml = sys.modules.get("ml_dtypes")
    if ml is None:
        return None
    try:
        return int(ml.finfo(dtype).bits)
    except ValueError:
        return None


def epsilon(xp: Namespace, dtype: Any) -> float:
    """The machine epsilon of a floating ``dtype`` (NumPy's ``ml_dtypes`` types included)."""
    if _ml_float_bits(dtype) is not None:
        return float(sys.modules["ml_dtypes"].finfo(dtype).eps)
    return float(xp.finfo(dtype).eps)


def default_float(xp: Namespace, x: Array) -> Any:
    """The library's default real floating dtype on ``x``'s device."""
    if is_torch(x):
        import torch

        return torch.get_default_dtype()
    if is_numpy(x):
        return np.float64
    return xp.__array_namespace_info__().default_dtypes(device=device_of(x))["real floating"]


def index_dtype(xp: Namespace, x: Array) -> Any:
    """The library's default integer dtype (int64 where it has it: torch's gathers need it)."""
    if is_torch(x):
        import torch

        return torch.int64
    if is_numpy(x):
        return np.int64
    return xp.__array_namespace_info__().default_dtypes(device=device_of(x))["integral"]


def autocast_enabled(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for ``device_type`` (never for devices without
    autocast, such as ``meta``)."""
    torch = sys.modules["torch"]
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except RuntimeError:
        return False


def _torch_float(x: Array, name: str) -> tuple[Any, Any]:
    import torch

    dtype = x.dtype
    if dtype.is_floating_point:
        compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        return compute, dtype
    if dtype.is_complex:
        raise TypeError(f"{name} must have a real (floating or integer) dtype; got {dtype}")
    default = torch.get_default_dtype()
    return default, default


def float_dtypes(xp: Namespace, x: Array, name: str) -> tuple[Any, Any]:
    """``(compute dtype, result dtype)`` of a computation on ``x`` (the module's dtype policy).

    Raises ``TypeError`` naming ``name`` for complex, string or object arrays.
    """
    if is_torch(x):
        return _torch_float(x, name)
    dtype = x.dtype
    if is_numpy(x):
        if dtype.kind == "f":  # in the machine's byte order (a file's big-endian floats too)
            native = dtype.newbyteorder("=")
            return (np.float32 if dtype.itemsize < 4 else native), native
        if dtype.kind in "iub":
            return np.dtype(np.float64), np.dtype(np.float64)
        bits = _ml_float_bits(dtype)
        if bits is not None:
            return np.dtype(np.float32), dtype
        raise TypeError(f"{name} must have a real (floating or integer) dtype; got {dtype}")
    if xp.isdtype(dtype, "real floating"):
        compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
        return compute, dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        default = default_float(xp, x)
        return default, default
    raise TypeError(f"{name} must have a real (floating or integer) dtype; got {dtype}")


def is_floating(xp: Namespace, x: Array) -> bool:
    """Whether ``x`` has a real floating dtype."""
    if is_torch(x):
        return bool(x.is_floating_point())
    if is_numpy(x):
        return x.dtype.kind == "f" or _ml_float_bits(x.dtype) is not None
    return bool(xp.isdtype(x.dtype, "real floating"))


def is_integral(xp: Namespace, x: Array) -> bool:
    """Whether ``x`` has an integer dtype (bool is not one)."""
    if is_torch(x):
        dtype = x.dtype
        return (
            not (dtype.is_floating_point or dtype.is_complex) and dtype != sys.modules["torch"].bool
        )
    if is_numpy(x):
        return x.dtype.kind in "iu"
    return bool(xp.isdtype(x.dtype, "integral"))


def cast(xp: Namespace, x: Array, dtype: Any) -> Array:
    """``x`` in ``dtype`` (no copy when it already is)."""
    if x.dtype == dtype:
        return x
    if is_torch(x):
        return x.to(dtype)
    if is_numpy(x):
        return np.asarray(x).astype(dtype)
    return xp.astype(x, dtype)


def as_float(xp: Namespace, x: Array, name: str) -> tuple[Array, Any]:
    """``x`` cast to its compute dtype, and the dtype results are returned in."""
    compute, out = float_dtypes(xp, x, name)
    return cast(xp, x, compute), out


def as_loss_float(xp: Namespace, x: Array, name: str) -> tuple[Array, Any]:
    """:func:`as_float` for a loss's input, with ``torch.autocast``'s policy for losses on top:
    under autocast a float16, bfloat16 or float32 tensor is computed in float32 and the loss
    stays float32 (float64 is left alone), as PyTorch's losses do."""
    if is_torch(x) and x.dtype.is_floating_point:
        torch = sys.modules["torch"]
        if x.dtype != torch.float64 and autocast_enabled(x.device.type):
            return cast(xp, x, torch.float32), torch.float32
    return as_float(xp, x, name)


def with_target(
    xp: Namespace, xf: Array, out_dtype: Any, target: Array, given: Any, name: str = "target"
) -> tuple[Array, Array, Any]:
    """A loss's input ``xf`` (from :func:`as_loss_float`, returned in ``out_dtype``) and its
    ``target`` (``given`` as the caller gave it) in one compute dtype, and the loss's dtype:
    a floating array promotes them, as PyTorch's losses (and NumPy's and JAX's arithmetic)
    do — a float32 input with a float64 target gives float64, bfloat16 logits with float32
    targets float32 (under autocast too); an integer or boolean target, and a Python number or
    sequence or a weakly typed JAX array (weak, as NumPy and JAX treat them), take the input's.
    A NumPy scalar is an array here, as in NumPy 2."""
    tf, t_out = as_float(xp, target, name)
    strong = is_array(given) or isinstance(given, np.generic)
    weak = not strong or bool(getattr(given, "weak_type", False))
    if is_floating(xp, target) and not weak:
        xf = cast(xp, xf, promoted(xp, xf.dtype, tf.dtype))
        out_dtype = promoted(xp, out_dtype, t_out)
    return xf, cast(xp, tf, xf.dtype), out_dtype


def promoted(xp: Namespace, *items: Any) -> Any:
    """The dtype of an operation on arrays or dtypes ``items`` (``xp.result_type``): torch's
    by ``torch.promote_types`` on their dtypes, which ``torch.compile`` traces (it cannot
    trace ``result_type``; the array API's rules are the same: no value-based casting); two
    of NumPy's ``ml_dtypes`` half types, which NumPy does not promote, give float32."""
    torch = sys.modules.get("torch")
    if torch is not None and any(isinstance(i, torch.Tensor | torch.dtype) for i in items):
        dtypes = [i if isinstance(i, torch.dtype) else i.dtype for i in items]
        out = dtypes[0]
        for d in dtypes[1:]:
            out = out if d == out else torch.promote_types(out, d)
        return out
    try:
        return xp.result_type(*items)
    except TypeError:
        dtypes = [getattr(i, "dtype", i) for i in items]
        bits = max(_ml_float_bits(d) or np.dtype(d).itemsize * 8 for d in dtypes)
        return np.dtype(np.float32 if bits <= 32 else np.float64)


def restore_dtype(xp: Namespace, x: Array, dtype: Any) -> Array:
    """Cast a result back to the dtype the caller gave; a 0-d NumPy result becomes a NumPy
    scalar (``np.float64``), as NumPy's own reductions and ufuncs return one."""
    return numpy_scalar(cast(xp, x, dtype))


def numpy_scalar(x: Array) -> Array:
    """``x``, or its value as a NumPy scalar where it is a 0-d NumPy array (every public
    function returns 0-d NumPy results as scalars, whichever operation made them)."""
    if type(x) is np.ndarray and x.ndim == 0:
        return x[()]
    return x


def stop_gradient(xp: Namespace, x: Array) -> Array:
    """``x`` with no gradient flowing through it (JAX and PyTorch; identity elsewhere).

    Used where a quantity cancels out of the derivative (the shift of a log-sum-exp), so that
    autodiff does not differentiate through a max.
    """
    if is_torch(x):
        return x.detach()
    if is_jax(x):
        import jax

        return jax.lax.stop_gradient(x)
    return x


def move_axis(xp: Namespace, x: Array, source: int, destination: int) -> Array:
    """``x`` with axis ``source`` moved to ``destination``, as ``moveaxis``, through the
    standard's ``permute_dims`` (``torch.moveaxis`` has no batching rule under
    ``torch.func.vmap``; ``permute`` has)."""
    order = list(range(x.ndim))
    order.insert(destination % x.ndim, order.pop(source % x.ndim))
    return xp.permute_dims(x, tuple(order))


def hyper(xp: Namespace, value: Any, like: Array, name: str = "a hyperparameter") -> Any:
    """A hyperparameter (named ``name`` in errors) ready for arithmetic with ``like``: a Python
    float stays a float; an array (a traced JAX scalar, a 0-d tensor) is cast to ``like``'s
    dtype, so it never promotes the result."""
    if value is None or isinstance(value, float):
        return value
    # a tensor beside a torch input needs no look-up (array_api_compat's is cached with
    # functools.lru_cache, of which torch.compile warns)
    same = is_torch(value) and xp is _torch_namespace()
    if not same and is_array(value) and compat.array_namespace(value) is not xp:
        from crossentropy._lib.host import to_host  # (a traced one is a TypeError there)

        where = f"{name} (of another array library than the input: give both in one library)"
        return float(to_host(value, where))
    return cast(xp, value, like.dtype)
