"""Validation helpers with messages that name the argument, what was expected and what came."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from crossentropy._lib._namespace import Array, Namespace, is_concrete, is_torch

__all__ = [
    "check_base",
    "check_choice",
    "check_finite_number",
    "check_in_unit_interval",
    "check_int",
    "check_nonnegative",
    "element_weight",
    "first_index",
    "shape_str",
]


def shape_str(shape: Sequence[int | None]) -> str:
    """A shape as ``(2, 3)``."""
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def check_choice(value: object, name: str, choices: Sequence[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str | numbers.Real | None) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")


def check_finite_number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float, raising if it is not a real number in the given range.

    Python and NumPy scalars are accepted (``numbers.Real``); bools are not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}; got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}; got {v}")
    return v


def check_base(base: object) -> float:
    """Validate a logarithm base (any real number > 1, or ``math.e``)."""
    b = check_finite_number(base, "base", low=1.0, low_open=True)
    return b


def first_index(xp: Namespace, mask: Array) -> tuple[int, ...] | None:
    """The index of the first True entry of a concrete boolean array, or None.

    None as well when ``mask`` cannot be inspected without a sync or a trace break (inside
    ``jax.jit`` even arrays derived from constants are traced).
    """
    if not is_concrete(mask) or not bool(xp.any(mask)):
        return None
    import numpy as np

    flat = np.asarray(_to_numpy(mask)).reshape(-1)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(flat)), np.shape(mask)))


def _to_numpy(x: Array) -> Any:
    import numpy as np

    if is_torch(x):
        return x.detach().cpu().float().numpy() if x.is_floating_point() else x.cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def _value_at(x: Array, index: tuple[int, ...]) -> float:
    import numpy as np

    return float(np.asarray(_to_numpy(x))[index])


def check_in_unit_interval(
    xp: Namespace, x: Array, name: str, *, skip: Array | None = None
) -> None:
    """Raise ``ValueError`` if a concrete ``x`` has an entry outside [0, 1] (NaN passes)."""
    if not is_concrete(x):
        return
    bad = (x < 0) | (x > 1)
    if skip is not None:
        bad = bad & ~skip
    idx = first_index(xp, bad)
    if idx is not None:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; got {_value_at(x, idx):g} at index {idx}"
        )


def check_nonnegative(xp: Namespace, x: Array, name: str) -> None:
    """Raise ``ValueError`` if a concrete ``x`` has a negative entry."""
    if not is_concrete(x):
        return
    idx = first_index(xp, x < 0)
    if idx is not None:
        raise ValueError(f"{name} must be non-negative; got {_value_at(x, idx):g} at index {idx}")


def element_weight(xp: Namespace, a: Array, name: str, like: Array) -> Array:
    """A non-negative weight that broadcasts *to* ``like``'s shape, in ``like``'s dtype."""
    from crossentropy._lib._namespace import as_float

    af, _ = as_float(xp, a, name)
    af = xp.astype(af, like.dtype) if af.dtype != like.dtype else af
    try:
        shape = tuple(xp.broadcast_arrays(af, like)[0].shape)
    except (ValueError, RuntimeError, TypeError):
        shape = None
    if shape != tuple(like.shape):
        raise ValueError(
            f"{name} of shape {shape_str(af.shape)} does not broadcast to input of shape "
            f"{shape_str(like.shape)}"
        )
    check_nonnegative(xp, af, name)
    return af


def check_int(value: object, name: str) -> int:
    """``value`` as a Python int, raising ``TypeError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__}")
    return int(value)
