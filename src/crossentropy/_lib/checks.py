"""Checks with messages that name the argument, what was expected and what came.

Argument checks (types, choices, numbers, shapes) always run. The value checks at the end read
array values and are called only where the validation policy allows it
(:mod:`crossentropy._lib.policy`).
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from crossentropy._lib.host import to_host
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_float,
    cast,
    device_of,
    epsilon,
    is_array,
)

__all__ = [
    "LabelRangeError",
    "ParameterError",
    "check_bool",
    "check_choice",
    "check_hyper",
    "check_int",
    "check_keywords",
    "check_nonnegative",
    "check_number",
    "check_unit_interval",
    "element_weight",
    "first_index",
    "in_unit_domain",
    "nan_outside",
    "off_sum",
    "per_class",
    "reads_as_float",
    "row_sum_tolerance",
    "shape_str",
    "suggestion",
    "warn_unless_sums_to_one",
]


class LabelRangeError(ValueError, IndexError):
    """A class label outside ``[0, C)``: this library's ``ValueError`` naming the argument, and
    the ``IndexError`` PyTorch raises for it, so code written to catch either catches it."""


def plain(value: Any) -> Any:
    """A NumPy or pyarrow scalar as the Python value it holds (``3``, not ``np.int64(3)``), for
    messages and JSON; anything else as it is."""
    if isinstance(value, np.generic):
        return value.item()
    return value.as_py() if hasattr(value, "as_py") else value


def reads_as_float(value: Any) -> bool:
    """Whether ``float(value)`` reads ``value`` (a number, or text that writes one)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def shape_str(shape: Sequence[int | None]) -> str:
    """A shape as ``(2, 3)``."""
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def suggestion(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'z_loss'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keywords(given: Iterable[str], allowed: Iterable[str], owner: str) -> None:
    """``TypeError`` for the first keyword of ``given`` that ``owner`` does not take, with the
    closest allowed name."""
    allowed = list(allowed)
    for name in given:
        if name not in allowed:
            raise TypeError(
                f"{owner} got an unexpected keyword argument {name!r}{suggestion(name, allowed)}"
            )


def check_choice(value: object, name: str, choices: Sequence[object]) -> Any:
    """``value`` if it is one of ``choices``, else ``ValueError`` (with the closest choice)."""
    if (
        isinstance(value, (str, numbers.Real, type(None)))
        and not is_array(value)
        and value in choices
    ):
        return value
    listed = ", ".join(repr(c) for c in choices)
    hint = (
        suggestion(value, [c for c in choices if isinstance(c, str)])
        if isinstance(value, str)
        else ""
    )
    raise ValueError(f"{name} must be one of {listed}; got {value!r}{hint}")


class ParameterError(ValueError, TypeError):
    """A bad value of an option (not of the data): both a ``ValueError`` and a ``TypeError``,
    as scikit-learn's ``InvalidParameterError``, so that either ``except`` clause written for
    scikit-learn catches it."""


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a bool, else :class:`ParameterError` (a ``TypeError``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be a bool; got {type(value).__name__}")
    return bool(value)


def check_clip(clip: object, name: str = "clip") -> float:
    """A probability clip ``eps`` in (0, 0.5) (the one home of that rule: ``[eps, 1 - eps]``
    neither empty nor inverted), or a ``ValueError``/``TypeError`` naming it (``name``)."""
    return check_number(clip, name, low=0.0, high=0.5, low_open=True, high_open=True)


def check_ignore_index(value: object) -> int:
    """``ignore_index`` as a Python int that a 64-bit label can equal (the one home of that
    rule: beyond it, each library fails in its own way, or compares nothing)."""
    index = check_int(value, "ignore_index")
    if not -(2**63) <= index < 2**63:
        raise ValueError(f"ignore_index must lie in [-2**63, 2**63) (64 bits); got {index}")
    return index


def check_int(value: object, name: str) -> int:
    """``value`` as a Python int, raising ``TypeError`` naming ``name`` otherwise: an integer,
    or an integer array that Python reads as an index (0-d; a torch tensor of one element,
    as PyTorch takes one), not a bool."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    dtype = getattr(value, "dtype", None)  # an array's (a bool array is no integer)
    if dtype is not None and "bool" not in str(dtype) and hasattr(value, "__index__"):
        try:
            return operator.index(value)
        except (TypeError, ValueError, RuntimeError):
            pass
    raise TypeError(f"{name} must be an integer; got {type(value).__name__}")


def _range_error(
    v: float,
    name: str,
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
) -> str | None:
    if low is not None and (v < low or (low_open and v == low)):
        return f"{name} must be {'>' if low_open else '>='} {low}; got {v}"
    if high is not None and (v > high or (high_open and v == high)):
        return f"{name} must be {'<' if high_open else '<='} {high}; got {v}"
    return None


def check_number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    infinite: bool = False,
) -> float:
    """``value`` as a finite float in the given range (Python and NumPy real scalars; bools
    are refused); ``infinite``: +inf is taken too."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    v = float(value)
    # comparisons, not math.isfinite: torch.compile traces them on a float that varies
    if not (-math.inf < v <= math.inf if infinite else -math.inf < v < math.inf):  # NaN too
        raise ValueError(f"{name} must be {'a number' if infinite else 'finite'}; got {v}")
    problem = _range_error(v, name, low, high, low_open, high_open)
    if problem:
        raise ValueError(problem)
    return v


def check_hyper(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    infinite: bool = False,
) -> float | Array:
    """A hyperparameter: a real number checked as :func:`check_number`, or a 0-d real array
    (a traced JAX value under ``jit``, a 0-d tensor), kept as it is; its value is checked
    where it can be read without a trace break or a synchronisation, and where it cannot, a
    value that is not finite or out of range becomes NaN (the result is NaN, as for a label
    out of range that cannot be read, not a silent number; an integer array becomes a float
    one)."""
    if not is_array(value) or isinstance(value, np.generic):
        return check_number(
            value,
            name,
            low=low,
            high=high,
            low_open=low_open,
            high_open=high_open,
            infinite=infinite,
        )
    a: Any = value
    if tuple(a.shape) != ():
        raise ValueError(f"{name} must be a number or a 0-d array; got shape {shape_str(a.shape)}")
    dt = str(a.dtype)
    if "float" not in dt and "int" not in dt:
        raise TypeError(f"{name} must be a real number; got an array of dtype {a.dtype}")
    from crossentropy._lib.policy import reads

    if reads(None, a):
        v = float(to_host(a, name))
        problem = (
            f"{name} must be finite; got {v}"
            if not (math.isfinite(v) or (infinite and v == math.inf))
            else _range_error(v, name, low, high, low_open, high_open)
        )
        if problem:
            raise ValueError(problem)
        return a
    return _nan_out_of_range(a, name, low, high, low_open, high_open, infinite)


def _nan_out_of_range(
    a: Any,
    name: str,
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
    infinite: bool = False,
) -> Any:
    """A hyperparameter that cannot be read, as it is where it is finite and in range, NaN
    otherwise (gradients pass where it is kept); an integer one as a float array."""
    from crossentropy._lib.namespace import cast, default_float, is_floating, is_torch, namespace

    # torch directly: torch.compile traces it without the array-library look-up's warning
    xp = None if is_torch(a) else namespace(a, names=[name])[0]
    if xp is None and not a.is_floating_point():  # compared with float bounds, and NaN
        import torch

        a = a.to(torch.get_default_dtype())
    elif xp is not None and not is_floating(xp, a):
        a = cast(xp, a, default_float(xp, a))
    ok = (a > -math.inf) & ((a <= math.inf) if infinite else (a < math.inf))  # NaN fails
    if low is not None:
        ok = ok & ((a > low) if low_open else (a >= low))
    if high is not None:
        ok = ok & ((a < high) if high_open else (a <= high))
    if xp is None:
        import torch

        return torch.where(ok, a, math.nan)
    return xp.where(ok, a, xp.full_like(a, math.nan))


# ---------------------------------------------------------------------------------------------
# Arrays of per-class and per-element values.
# ---------------------------------------------------------------------------------------------


def per_class(
    xp: Namespace,
    a: Array,
    name: str,
    n_classes: int,
    dtype: Any,
    *,
    check: bool,
    nonnegative: bool = False,
    what: str = "",
) -> Array:
    """A 1-D array of one value per class, in ``dtype`` (values checked when ``check``)."""
    if a.ndim != 1 or a.shape[0] != n_classes:
        raise ValueError(
            f"{name} must be {what}a 1-D array of one value per class ({n_classes},); "
            f"got shape {shape_str(a.shape)}"
        )
    af, _ = as_float(xp, a, name)
    if nonnegative and check:
        check_nonnegative(xp, af, name)
    return cast(xp, af, dtype)


def element_weight(xp: Namespace, a: Array, name: str, like: Array) -> Array:
    """A weight that broadcasts *to* ``like``'s shape, in ``like``'s dtype."""
    af, _ = as_float(xp, a, name)
    af = cast(xp, af, like.dtype)
    try:
        shape = tuple(xp.broadcast_arrays(af, like)[0].shape)
    except (ValueError, RuntimeError, TypeError):
        shape = None
    if shape != tuple(like.shape):
        raise ValueError(
            f"{name} of shape {shape_str(af.shape)} does not broadcast to input of shape "
            f"{shape_str(like.shape)}"
        )
    return af


# ---------------------------------------------------------------------------------------------
# Value checks (callers ask the validation policy first).
# ---------------------------------------------------------------------------------------------


def first_index(xp: Namespace, mask: Array) -> tuple[int, ...] | None:
    """The index of the first True entry of a readable boolean array, or None."""
    if not bool(xp.any(mask)):
        return None
    flat = np.asarray(to_host(mask)).reshape(-1)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(flat)), np.shape(mask)))


def value_at(x: Array, index: tuple[int, ...]) -> float:
    """The value of a readable ``x`` at ``index``, as a float."""
    return float(np.asarray(to_host(x))[index])


def value_text(x: Array, index: tuple[int, ...]) -> str:
    """The value of a readable ``x`` at ``index`` as its dtype writes it, in the fewest
    digits that tell it from its neighbours (``1.0000001`` in float32 is not ``1``; a
    half-precision value in the float32 it is checked in)."""
    return str(np.asarray(to_host(x))[index])


def in_unit_domain(x: Array, scores: bool = False) -> Array:
    """Which entries of ``x`` are probabilities, in [0, 1] (``scores``: finite and >= 0, rows
    to be divided by their sums); NaN is none."""
    return (x >= 0) & (x < math.inf) if scores else (x >= 0) & (x <= 1)


def nan_outside(xp: Namespace, x: Array, scores: bool = False) -> Array:
    """``x`` with every entry outside :func:`in_unit_domain` made NaN: where values are not
    read (lazy, traced), a bad input gives NaN, never a finite number."""
    nan = xp.asarray(math.nan, dtype=x.dtype, device=device_of(x))
    return xp.where(in_unit_domain(x, scores), x, nan)


def check_unit_interval(
    xp: Namespace, x: Array, name: str, *, skip: Array | None = None, nan_passes: bool = False
) -> None:
    """``ValueError`` if ``x`` has an entry outside [0, 1] or, unless ``nan_passes`` (the
    information functions, which propagate NaN as SciPy's do), NaN: not a probability."""
    bad = ((x < 0) | (x > 1)) if nan_passes else ~((x >= 0) & (x <= 1))
    if skip is not None:
        bad = bad & ~skip
    idx = first_index(xp, bad)
    if idx is not None:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; got {value_text(x, idx)} at index {idx}"
        )


def check_log_probabilities(xp: Namespace, x: Array, name: str) -> None:
    """``ValueError`` if ``x`` has an entry above 0 or NaN: not a log-probability (-inf is
    one: a probability of 0)."""
    idx = first_index(xp, ~(x <= 0))
    if idx is not None:
        raise ValueError(
            f"{name} must hold log-probabilities (<= 0); got {value_text(x, idx)} at index {idx}"
        )


def row_sum_tolerance(eps: float) -> float:
    """scikit-learn's tolerance on a row sum: ``isclose(s, 1, rtol=sqrt(eps))``, atol 1e-8."""
    return 1e-8 + float(np.sqrt(eps))


def warn_unless_sums_to_one(
    xp: Namespace, x: Array, name: str, axis: int, stored: Any = None
) -> None:
    """A ``UserWarning`` (as scikit-learn's ``log_loss`` warns) if a distribution of ``x``
    along ``axis`` (of probabilities in [0, 1]) does not sum to 1 within
    :func:`row_sum_tolerance` of the epsilon of the dtype it was stored in (``stored``,
    default ``x``'s: half precision computed in float32 is held to its own rounding). One
    holding a NaN passes (it gives NaN), as does an empty axis. A warning, not an error: a
    finite-difference check of a gradient steps off the simplex."""
    if x.shape[axis] == 0:
        return
    found = off_sum(xp, x, axis, epsilon(xp, x.dtype if stored is None else stored))
    if found is not None:
        idx, value = found
        where = f"the distribution at index {idx} (along axis {axis})" if idx else "it"
        warnings.warn(
            f"{name} is not a probability distribution: {where} sums to {value:.10g}, not 1, "
            "so the result is not its information measure (normalize=True divides each "
            "distribution by its sum)",
            UserWarning,
            stacklevel=4,
        )


def off_sum(xp: Namespace, x: Array, axis: int, eps: float) -> tuple[tuple[int, ...], float] | None:
    """The index and the sum of the first distribution of a readable ``x`` along ``axis``
    whose sum is not within :func:`row_sum_tolerance` of 1 (the one home of that rule; a NaN
    sum passes), or None."""
    sums = xp.sum(x, axis=axis)
    idx = first_index(xp, xp.abs(sums - 1) > row_sum_tolerance(eps))
    return None if idx is None else (idx, value_at(sums, idx))


def check_nonnegative(xp: Namespace, x: Array, name: str) -> None:
    """``ValueError`` if ``x`` has a negative entry."""
    idx = first_index(xp, x < 0)
    if idx is not None:
        raise ValueError(f"{name} must be non-negative; got {value_text(x, idx)} at index {idx}")
