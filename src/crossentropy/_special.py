r"""Numerically stable special functions, written once against the Array API standard.

Each public function accepts any array-API array (NumPy, PyTorch, JAX, Dask, array-api-strict)
or a Python sequence, and returns an array of the same library, on the same device, in the
input's floating dtype (float16 and bfloat16 are computed in float32).

The private ``lse``, ``log_softmax_`` ... helpers take an already prepared floating array and a
namespace; the losses call those.
"""

from __future__ import annotations

import math
from typing import Any

from crossentropy._lib import (
    Array,
    as_float,
    device_of,
    is_numpy,
    namespace,
    quiet,
    restore_dtype,
)
from crossentropy._lib._kernels import numpy_logsumexp_rows
from crossentropy._lib._validation import check_int, shape_str

_LOG2 = math.log(2.0)

__all__ = [
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
    "xlogy",
]


def _axis(axis: object, ndim: int, name: str = "axis") -> int:
    a = check_int(axis, name)
    if not -max(ndim, 1) <= a < max(ndim, 1):
        raise ValueError(f"{name} {a} is out of range for an array of {ndim} dimensions")
    return a % max(ndim, 1)


# ---------------------------------------------------------------------------------------------
# Kernels on prepared arrays (namespace ``xp``, floating dtype). One home for each formula.
# ---------------------------------------------------------------------------------------------


def safe_max(xp: Any, x: Array, axis: int) -> Array:
    """Row max with keepdims, a non-finite max replaced by 0 (so all -inf rows are not NaN)."""
    if 0 in x.shape:  # an empty reduction has no max (Dask raises at compute time)
        axis %= x.ndim
        shape = tuple(1 if i == axis else s for i, s in enumerate(x.shape))
        return xp.zeros(shape, dtype=x.dtype, device=device_of(x))
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def lse_parts(xp: Any, x: Array, axis: int) -> tuple[Array, Array]:
    """The log-sum-exp along ``axis`` in two parts, with keepdims: ``m`` (the row max, 0 where
    it is not finite) and ``log(sum(exp(x - m)))``; their sum is the log-sum-exp.

    Kept apart, they give ``log_softmax = (x - m) - log(sum(exp(x - m)))`` without the
    cancellation of ``x - logsumexp(x)`` when the logits are large (1e4 in float32).
    """
    axis %= x.ndim
    if x.shape[axis] == 0:
        shape = tuple(1 if i == axis else s for i, s in enumerate(x.shape))
        m = xp.zeros(shape, dtype=x.dtype, device=device_of(x))
        return m, xp.full(shape, -xp.inf, dtype=x.dtype, device=device_of(x))
    if is_numpy(x):
        last = xp.moveaxis(x, axis, -1)
        flat = xp.reshape(last, (-1, last.shape[-1]))
        m, log_sum = numpy_logsumexp_rows(flat)
        return (
            xp.expand_dims(xp.reshape(m, last.shape[:-1]), axis=axis),
            xp.expand_dims(xp.reshape(log_sum, last.shape[:-1]), axis=axis),
        )
    m = safe_max(xp, x, axis)
    return m, xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))


def lse(xp: Any, x: Array, axis: int, keepdims: bool = False) -> Array:
    """``log(sum(exp(x), axis))``, stable: ``m + log(sum(exp(x - m)))``."""
    m, s = lse_parts(xp, x, axis)
    out = m + s
    return out if keepdims else xp.squeeze(out, axis=axis % x.ndim)


def log_softmax_(xp: Any, x: Array, axis: int) -> Array:
    """``(x - m) - log(sum(exp(x - m)))`` along ``axis`` (see :func:`lse_parts`)."""
    m, s = lse_parts(xp, x, axis)
    return (x - m) - s


def softmax_(xp: Any, x: Array, axis: int) -> Array:
    """``exp(x - m) / sum(exp(x - m))`` along ``axis``."""
    e = xp.exp(x - safe_max(xp, x, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softplus_(xp: Any, x: Array) -> Array:
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``, exact gradient at 0."""
    pos = x > 0
    neg_abs = xp.where(pos, -x, x)
    return xp.where(pos, x, xp.zeros_like(x)) + xp.log1p(xp.exp(neg_abs))


def log_sigmoid_(xp: Any, x: Array) -> Array:
    """``log σ(x) = -softplus(-x)``."""
    return -softplus_(xp, -x)


def sigmoid_(xp: Any, x: Array) -> Array:
    """``σ(x)`` from ``e = exp(-|x|) <= 1``: ``1/(1+e)`` for x >= 0, ``e/(1+e)`` otherwise."""
    pos = x >= 0
    e = xp.exp(xp.where(pos, -x, x))
    return xp.where(pos, 1 / (1 + e), e / (1 + e))


def safe_log(xp: Any, x: Array, floor: float | None = None) -> Array:
    """``log(x)`` for x >= 0 whose gradient stays finite at 0 (a double ``where``).

    ``log(0)`` is ``-inf``, or ``floor`` when given (torch's ``log >= -100`` clamp).
    """
    zero = x == 0
    logx = xp.log(xp.where(zero, xp.ones_like(x), x))
    low = -xp.inf if floor is None else floor
    logx = xp.where(zero, xp.full_like(x, low), logx)
    if floor is not None:
        logx = xp.maximum(logx, xp.full_like(x, floor))
    return logx


def log1mexp(xp: Any, logp: Array) -> Array:
    """``log(1 - exp(l))`` for ``l <= 0``: ``log(-expm1(l))`` near 0, ``log1p(-exp(l))`` below
    ``-log 2``; ``-inf`` at ``l = 0``. Each branch is fed a safe value (double ``where``), so
    gradients stay finite everywhere, including ``l = 0``."""
    near = logp > -_LOG2
    at_zero = logp >= 0
    a = xp.where(near & ~at_zero, logp, xp.full_like(logp, -1.0))
    b = xp.where(near, xp.full_like(logp, -1.0), logp)
    out = xp.where(near, xp.log(-xp.expm1(a)), xp.log1p(-xp.exp(b)))
    return xp.where(at_zero, xp.full_like(logp, -xp.inf), out)


def mul_log(xp: Any, x: Array, logy: Array) -> Array:
    """``x * logy`` with ``0 * (±inf) = 0``.

    Only the ``0 * (±inf)`` entries take the zero branch (a double ``where``), so the derivative
    with respect to ``x`` is ``logy`` wherever ``logy`` is finite, as in torch's ``xlogy``.
    """
    zero = (x == 0) & xp.isinf(logy)
    return x * xp.where(zero, xp.zeros_like(logy), logy)


def kl_terms(xp: Any, p: Array, logp: Array, logq: Array) -> Array:
    """Element-wise ``p (log p - log q)`` with ``0 log 0 = 0``: the one home of the KL terms."""
    return mul_log(xp, p, logp) - mul_log(xp, p, logq)


def xlogy_(xp: Any, x: Array, y: Array) -> Array:
    """``x * log(y)`` with ``0 * log(y) = 0`` unless y is NaN (as :func:`scipy.special.xlogy`).

    The log is fed 1 where ``x = 0`` and ``log(y)`` is not finite (``y`` <= 0 or inf), so values
    and gradients stay finite; elsewhere the derivative with respect to ``x`` is ``log(y)``.
    """
    zero = (x == 0) & ((y <= 0) | (y == xp.inf))
    logy = xp.log(xp.where(zero, xp.ones_like(y), y))
    return x * logy


# ---------------------------------------------------------------------------------------------
# Public functions.
# ---------------------------------------------------------------------------------------------


def logsumexp(x: Array, /, *, axis: int = -1, keepdims: bool = False) -> Array:
    r"""Log of the sum of exponentials along ``axis``, without overflow.

    .. math::

        \operatorname{logsumexp}(x) = m + \log \sum_i e^{x_i - m}, \qquad m = \max_i x_i

    A non-finite maximum is replaced by 0, so a row of ``-inf`` gives ``-inf`` (not NaN) and a
    ``+inf`` entry gives ``+inf``. An empty axis gives ``-inf`` (the log of an empty sum), as
    :func:`scipy.special.logsumexp`.

    Parameters
    ----------
    x : array_like
        Real input.
    axis : int, default -1
        Axis to reduce.
    keepdims : bool, default False
        Keep the reduced axis with size one.

    Returns
    -------
    array
        ``x``'s namespace, device and floating dtype.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.logsumexp([1.0, 2.0, 3.0])
    array(3.40760596)
    >>> ce.logsumexp([1e4, 1e4])  # no overflow
    array(10000.69314718)
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    ax = _axis(axis, xf.ndim)
    if xf.ndim == 0:
        return restore_dtype(xp, xf, dtype)
    with quiet(xf):
        return restore_dtype(xp, lse(xp, xf, ax, keepdims), dtype)


def softmax(x: Array, /, *, axis: int = -1) -> Array:
    r"""Softmax along ``axis``: probabilities proportional to ``exp(x)``.

    .. math::

        \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad
        m = \max_j x_j

    Invariant to adding a constant to ``x``. Entries of ``-inf`` get probability 0; a row that is
    all ``-inf`` has no distribution and gives NaN (as ``torch.softmax`` and
    ``scipy.special.softmax``).

    Parameters
    ----------
    x : array_like
        Logits.
    axis : int, default -1
        The class axis.

    Returns
    -------
    array
        Same shape as ``x``; sums to 1 along ``axis``.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.softmax([1.0, 2.0, 3.0]).round(4)
    array([0.09  , 0.2447, 0.6652])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    ax = _axis(axis, xf.ndim)
    if xf.ndim == 0:
        return restore_dtype(xp, xp.ones_like(xf), dtype)
    with quiet(xf):
        return restore_dtype(xp, softmax_(xp, xf, ax), dtype)


def log_softmax(x: Array, /, *, axis: int = -1) -> Array:
    r"""Log of the softmax along ``axis``, computed as ``x - logsumexp(x)``.

    .. math::

        \log \operatorname{softmax}(x)_i = x_i - \operatorname{logsumexp}(x)

    Finite for logits of any magnitude (``±1e4``); a ``-inf`` logit gives ``-inf`` when its row
    has a finite entry. A row that is all ``-inf`` has no distribution and gives NaN (as
    ``torch.log_softmax``); its ``logsumexp`` is ``-inf``.

    Parameters
    ----------
    x : array_like
        Logits.
    axis : int, default -1
        The class axis.

    Returns
    -------
    array
        Same shape as ``x``.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.log_softmax([1.0, 2.0, 3.0])
    array([-2.40760596, -1.40760596, -0.40760596])
    >>> ce.log_softmax([0.0, 1e4])
    array([-10000.,      0.])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    ax = _axis(axis, xf.ndim)
    if xf.ndim == 0:
        return restore_dtype(xp, xp.zeros_like(xf), dtype)
    with quiet(xf):
        return restore_dtype(xp, log_softmax_(xp, xf, ax), dtype)


def sigmoid(x: Array, /) -> Array:
    r"""The logistic sigmoid, element-wise.

    .. math::

        \sigma(x) = \frac{1}{1 + e^{-x}}

    Computed from :math:`e^{-|x|} \le 1`, so neither the value nor the gradient overflows.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.sigmoid([0.0, 2.0, -1e4])
    array([0.5       , 0.88079708, 0.        ])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    return restore_dtype(xp, sigmoid_(xp, xf), dtype)


def log_sigmoid(x: Array, /) -> Array:
    r"""Log of the sigmoid, element-wise, without underflow.

    .. math::

        \log \sigma(x) = -\operatorname{softplus}(-x) = \min(x, 0) - \log(1 + e^{-|x|})

    and :math:`\log(1 - \sigma(x)) = \log \sigma(-x)`.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.log_sigmoid([0.0, -1e4])
    array([-6.93147181e-01, -1.00000000e+04])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    return restore_dtype(xp, log_sigmoid_(xp, xf), dtype)


def softplus(x: Array, /) -> Array:
    r"""Softplus, element-wise: a smooth ``max(x, 0)``.

    .. math::

        \operatorname{softplus}(x) = \log(1 + e^{x}) = \max(x, 0) + \log(1 + e^{-|x|})

    Its derivative is :math:`\sigma(x)`, exact at 0 (0.5).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.softplus([0.0, 1e4, -1e4])
    array([6.93147181e-01, 1.00000000e+04, 0.00000000e+00])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    return restore_dtype(xp, softplus_(xp, xf), dtype)


def xlogy(x: Array, y: Array, /) -> Array:
    r"""``x * log(y)`` with the convention ``0 * log(y) = 0``, element-wise.

    .. math::

        \operatorname{xlogy}(x, y) = \begin{cases} 0 & x = 0 \\ x \log y & \text{otherwise}
        \end{cases}

    As :func:`scipy.special.xlogy`: ``xlogy(0, 0) = 0`` and ``xlogy(0, nan) = nan``. The zero
    branch is taken before the log (a double ``where``), so the gradient at ``x = 0`` is finite.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.xlogy([0.0, 0.5], [0.0, 0.25])
    array([ 0.        , -0.69314718])
    """
    xp, (x, y) = namespace(x, y, names=["x", "y"])
    xf, dtype = as_float(xp, x, "x")
    yf, ydtype = as_float(xp, y, "y")
    common = xp.result_type(xf, yf)
    try:
        xb, yb = xp.broadcast_arrays(xp.astype(xf, common), xp.astype(yf, common))
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"x of shape {shape_str(xf.shape)} and y of shape {shape_str(yf.shape)} do not "
            "broadcast together"
        ) from None
    with quiet(xb):  # x * log(0) = -inf for x > 0 is the answer
        out = xlogy_(xp, xb, yb)
    return restore_dtype(xp, out, xp.result_type(dtype, ydtype))
