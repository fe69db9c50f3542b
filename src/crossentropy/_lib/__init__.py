"""Internal helpers: array namespace, dtype and device, validation, reductions."""

from crossentropy._lib._namespace import (
    Array,
    Namespace,
    as_float,
    compute_dtype,
    device_of,
    is_concrete,
    is_numpy,
    is_torch,
    namespace,
    quiet,
    restore_dtype,
)
from crossentropy._lib._reduction import (
    REDUCTIONS,
    check_empty_mean,
    check_reduction,
    divide,
    reduce,
)

__all__ = [
    "REDUCTIONS",
    "Array",
    "Namespace",
    "as_float",
    "check_empty_mean",
    "check_reduction",
    "compute_dtype",
    "device_of",
    "divide",
    "is_concrete",
    "is_numpy",
    "is_torch",
    "namespace",
    "quiet",
    "reduce",
    "restore_dtype",
]
