"""The validation policy: when a function looks at the *values* of its arrays.

Shapes, dtypes and option values are always checked: that is free. Checks of array values (a
label out of range, a probability outside [0, 1], a negative focal ``alpha``) need the values on
the host, which costs a device synchronisation on an accelerator and is impossible while a
transform traces the function. The policy, per call (``validate=``; None, the default, takes
the mode in force), for a block of code (:func:`validation`) or for the process
(:func:`set_validation`), decides:

``"auto"`` (default)
    Check values only where reading them costs no synchronisation and breaks no trace: NumPy,
    array-api-strict, eager JAX arrays on the CPU and PyTorch CPU tensors. Skipped inside
    ``torch.compile``, under ``torch.func`` transforms (``vmap``, ``grad``, ``jacrev``,
    ``jacfwd``), on JAX tracers (``jit``, ``grad``, ``vmap``), on lazy Dask arrays, on ``meta``
    and fake tensors and on accelerators.
``True``
    Also check accelerator tensors and eager accelerator arrays (one synchronisation) and Dask
    arrays (computing the check); traced values still cannot be read and are not checked,
    which a ``UserWarning`` says on JAX tracers (``jit``, ``vmap``, ``grad``).
``False``
    Never read values.

Where values are not checked, the losses do what the backend does for the same computation,
as PyTorch and optax do: an out-of-range class label makes its element's loss NaN on the
generic path, and whatever ATen does (an error, or a device-side assertion) where the work is
delegated to it.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from crossentropy._lib.namespace import is_dask, is_jax, is_numpy, is_torch

__all__ = [
    "Validate",
    "check_validate",
    "get_validation",
    "reads",
    "set_validation",
    "torch_compiling",
    "validation",
]

Validate = Literal["auto"] | bool
_MODES = ("auto", True, False)


class _State(threading.local):
    mode: Validate | None = None  # a ``validation()`` block of this thread


_state = _State()
_default: list[Validate] = ["auto"]


def check_validate(mode: object) -> Validate:
    """Validate a validation mode."""
    if mode is True or mode is False or mode == "auto":
        return mode
    raise ValueError(f"validate must be one of 'auto', True, False; got {mode!r}")


def get_validation() -> Validate:
    """The validation mode in force here: the innermost :func:`validation` block of this
    thread, else the process default (:func:`set_validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.get_validation()
    'auto'
    >>> with ce.validation(True):
    ...     ce.get_validation()
    True
    """
    mode = _state.mode
    return _default[0] if mode is None else mode


def set_validation(mode: Validate) -> Validate:
    """Set the process-wide default validation mode; returns the previous one.

    Parameters
    ----------
    mode : {"auto", True, False}
        ``"auto"``: check values where reading them costs no synchronisation and breaks no
        trace (concrete CPU arrays); ``True``: also on accelerators and Dask (one
        synchronisation, or a compute); ``False``: never.

    Returns
    -------
    {"auto", True, False}
        The mode in force before.

    Examples
    --------
    >>> import crossentropy as ce
    >>> previous = ce.set_validation(False)
    >>> ce.set_validation(previous)
    False
    """
    previous = _default[0]
    _default[0] = check_validate(mode)
    return previous


@contextmanager
def validation(mode: Validate) -> Iterator[None]:
    """Use validation ``mode`` for the calls in a ``with`` block (this thread only).

    A ``validate=`` keyword on a call overrides it.

    Parameters
    ----------
    mode : {"auto", True, False}
        ``"auto"``: check values where reading them costs no synchronisation and breaks no
        trace (concrete CPU arrays); ``True``: also on accelerators and Dask (one
        synchronisation, or a compute); ``False``: never.

    Examples
    --------
    >>> import crossentropy as ce
    >>> with ce.validation(False):  # no value checks: label 5 of 3 classes gives NaN
    ...     ce.cross_entropy([[1.0, 2.0, 3.0]], [5])
    np.float64(nan)
    """
    mode = check_validate(mode)
    previous = _state.mode
    _state.mode = mode
    try:
        yield
    finally:
        _state.mode = previous


def torch_compiling() -> bool:
    """Whether ``torch.compile`` is tracing (where ``warnings.warn`` would break the graph)."""
    return "torch" in sys.modules and bool(sys.modules["torch"].compiler.is_compiling())


def _torch_transforming() -> bool:
    torch = sys.modules["torch"]
    if torch_compiling():
        return True
    return torch._C._functorch.maybe_current_level() is not None


def _jax_staging() -> bool:
    """Whether ``jax.jit`` is tracing: then even a concrete array closed over by the traced
    function gives traced results, whose values cannot be read."""
    jax = sys.modules["jax"]
    return isinstance(jax.numpy.zeros(()), jax.core.Tracer)


def _readable(x: Any, mode: Validate) -> bool:
    if x is None:
        return True
    if is_torch(x):
        device = x.device.type
        if device == "cpu":
            return not isinstance(x, sys.modules["torch"]._subclasses.FakeTensor)
        return mode is True and device != "meta"
    if isinstance(x, (bool, int, float)) or is_numpy(x):
        return True
    if is_jax(x):
        if _jax_traced(x):
            return False
        return mode is True or all(d.platform == "cpu" for d in x.devices())
    if is_dask(x):
        return mode is True
    return True


def reads(mode: Validate | None, *arrays: Any) -> bool:
    """Whether value checks run on ``arrays`` under ``mode`` (None: the mode in force)."""
    if mode is None:
        mode = get_validation()
    if mode is False:
        return False
    if "torch" in sys.modules and _torch_transforming():
        if mode is True and not torch_compiling():  # a warning would break the graph there
            _unread("torch.func transforms the call (vmap, grad, jacrev, jacfwd)")
        return False
    readable = all(_readable(a, mode) for a in arrays)
    if not readable and mode is True and any(_jax_traced(a) for a in arrays):
        _unread("JAX traces the call (jit, vmap, grad)")
    return readable


def _jax_traced(x: Any) -> bool:
    """Whether ``x`` is a JAX array whose values a trace hides (a tracer, or any array while
    ``jax.jit`` stages)."""
    return is_jax(x) and (isinstance(x, sys.modules["jax"].core.Tracer) or _jax_staging())


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel() -> int:
    """The ``stacklevel`` at which a warning raised by the caller points at the first frame
    outside this package (the user's call, however deep the library's own frames are: its
    modules, and the ``__init__`` a dataclass generates for one of them)."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame.f_back is not None and (
        str(frame.f_globals.get("__name__", "")).startswith("crossentropy.")
        or os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE)
    ):
        frame, level = frame.f_back, level + 1
    return level


def _unread(why: str) -> None:
    """Say that ``validate=True`` asked for checks that a transform (JAX's tracing, torch.func)
    makes impossible, ``why`` naming it, at the caller's line (the first frame outside this
    package)."""
    warnings.warn(
        f"validate=True: values cannot be read while {why}, so they are not checked; call it "
        "outside the transform to check them",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
