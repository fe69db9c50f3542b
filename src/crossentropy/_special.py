r"""Numerically stable special functions: the public wrappers of :mod:`crossentropy._formulas`.

Each function accepts any array-API array (NumPy, PyTorch, JAX, Dask, array-api-strict) or a
Python sequence, and returns an array of the same library, on the same device, in the input's
floating dtype (float16 and bfloat16 are computed in float32). Python scalars never promote the
result's dtype.
"""

from __future__ import annotations

from typing import Any

from crossentropy import _formulas as fm
from crossentropy._lib.axes import Axes
from crossentropy._lib.checks import check_number, shape_str
from crossentropy._lib.namespace import (
    Array,
    as_float,
    cast,
    is_array,
    namespace,
    promoted,
    quiet,
    restore_dtype,
)

__all__ = [
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
    "xlogy",
]

AxisLike = int | tuple[int, ...]


def _along(x: Any, axis: AxisLike, fn: Any, *, keepdims: bool | None = None) -> Array:
    """Apply ``fn(xp, x_last, -1)`` over ``axis`` (an int or a tuple of axes, moved to the end
    and flattened), and restore the layout: the input's shape, or the reduced shape when
    ``keepdims`` is given."""
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    if xf.ndim == 0:
        Axes.of(axis, (1,))  # validates the axis: 0 or -1
        return restore_dtype(xp, fn(xp, xp.reshape(xf, (1,)), -1, scalar=True), dtype)
    axes = Axes.of(axis, tuple(xf.shape))
    with quiet(xf):
        out = fn(xp, axes.to_last(xp, xf), -1, scalar=False)
    if keepdims is None:
        out = axes.from_last(xp, out)
    elif keepdims:
        out = xp.reshape(out, axes.keepdims_shape())
    return restore_dtype(xp, out, dtype)


def logsumexp(x: Array, /, axis: AxisLike = -1, keepdims: bool = False) -> Array:
    r"""Log of the sum of exponentials along ``axis``, without overflow.

    .. math::

        \operatorname{logsumexp}(x) = m + \log \sum_i e^{x_i - m}, \qquad m = \max_i x_i

    A non-finite maximum is replaced by 0, so a row of ``-inf`` gives ``-inf`` (not NaN) and a
    ``+inf`` entry gives ``+inf``. An empty axis gives ``-inf`` (the log of an empty sum), as
    :func:`scipy.special.logsumexp`. The gradient, the softmax, does not flow through the max
    (as :func:`jax.nn.logsumexp`).

    Parameters
    ----------
    x : array_like
        Real input.
    axis : int or tuple of int, default -1
        Axis or axes to reduce (several axes as one, as :func:`torch.logsumexp`; positional
        as PyTorch's ``dim``).
    keepdims : bool, default False
        Keep the reduced axes with size one.

    Returns
    -------
    array
        ``x``'s namespace, device and floating dtype.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.logsumexp([1.0, 2.0, 3.0]).round(6)
    np.float64(3.407606)
    >>> ce.logsumexp([1e4, 1e4]).round(6)  # no overflow: 1e4 + log 2
    np.float64(10000.693147)
    >>> float(ce.logsumexp([[0.0, 0.0], [0.0, 0.0]], axis=(0, 1)))  # log 4
    1.3862943611198906
    """

    def fn(xp: Any, v: Array, ax: int, scalar: bool) -> Array:
        return xp.reshape(v, ()) if scalar else fm.logsumexp(xp, v, ax)

    if not isinstance(keepdims, bool):
        raise TypeError(f"keepdims must be a bool; got {type(keepdims).__name__}")
    return _along(x, axis, fn, keepdims=keepdims)


def softmax(x: Array, /, axis: AxisLike = -1) -> Array:
    r"""Softmax along ``axis``: probabilities proportional to ``exp(x)``.

    .. math::

        \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad
        m = \max_j x_j

    Invariant to adding a constant to ``x``. Entries of ``-inf`` get probability 0; a row that is
    all ``-inf`` has no distribution and gives NaN (as ``torch.softmax`` and
    ``scipy.special.softmax``), and so does a row with a ``+inf`` entry (as ``torch.softmax``
    and ``jax.nn.softmax``).

    Parameters
    ----------
    x : array_like
        Logits.
    axis : int or tuple of int, default -1
        The class axis (several axes: one distribution over all of them, as
        :func:`jax.nn.softmax`).

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

    def fn(xp: Any, v: Array, ax: int, scalar: bool) -> Array:
        if scalar:  # one outcome: probability 1, NaN for a logit of +-inf or NaN (as torch)
            with quiet(v):  # (inf * 0: NaN, no warning; a zero gradient, as torch's)
                return xp.reshape(v * 0 + 1, ())
        return fm.softmax(xp, v, ax)

    return _along(x, axis, fn)


def log_softmax(x: Array, /, axis: AxisLike = -1) -> Array:
    r"""Log of the softmax along ``axis``.

    .. math::

        \log \operatorname{softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}, \qquad
        m = \max_j x_j

    which is :math:`x_i - \operatorname{logsumexp}(x)` without its cancellation for large
    logits: finite and exact to rounding for logits of any magnitude (``±1e4``). A ``-inf``
    logit gives ``-inf`` when its row has a finite entry. A row that is all ``-inf`` has no
    distribution and gives NaN (as ``torch.log_softmax``); its ``logsumexp`` is ``-inf``. A row
    with a ``+inf`` logit gives NaN too (as ``torch.log_softmax`` and ``jax.nn.log_softmax``);
    its ``logsumexp`` is ``+inf``.

    Parameters
    ----------
    x : array_like
        Logits.
    axis : int or tuple of int, default -1
        The class axis (or axes).

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

    def fn(xp: Any, v: Array, ax: int, scalar: bool) -> Array:
        if scalar:  # one outcome: log-probability 0, NaN for a logit of +-inf or NaN (as torch)
            with quiet(v):  # (+0; inf * 0: NaN, no warning; a zero gradient, as torch's)
                return xp.reshape(v * 0 + 0.0, ())
        return fm.log_softmax(xp, v, ax)

    return _along(x, axis, fn)


def sigmoid(x: Array, /) -> Array:
    r"""The logistic sigmoid, element-wise.

    .. math::

        \sigma(x) = \frac{1}{1 + e^{-x}}

    Computed from :math:`e^{-|x|} \le 1`, so neither the value nor the gradient overflows.

    Parameters
    ----------
    x : array_like
        Input (integers are taken as the default floating dtype).

    Returns
    -------
    array
        :math:`\sigma(x)`, in the input's library and floating dtype.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.sigmoid([0.0, 2.0, -1e4])
    array([0.5       , 0.88079708, 0.        ])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    return restore_dtype(xp, fm.sigmoid(xp, xf), dtype)


def log_sigmoid(x: Array, /) -> Array:
    r"""Log of the sigmoid, element-wise, without underflow.

    .. math::

        \log \sigma(x) = -\operatorname{softplus}(-x) = \min(x, 0) - \log(1 + e^{-|x|})

    and :math:`\log(1 - \sigma(x)) = \log \sigma(-x)`.

    Parameters
    ----------
    x : array_like
        Input (integers are taken as the default floating dtype).

    Returns
    -------
    array
        :math:`\log \sigma(x)`, in the input's library and floating dtype.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.log_sigmoid([0.0, -1e4])
    array([-6.93147181e-01, -1.00000000e+04])
    """
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    return restore_dtype(xp, fm.log_sigmoid(xp, xf), dtype)


def softplus(x: Array, /, beta: float = 1.0, threshold: float | None = 20.0) -> Array:
    r"""Softplus, element-wise: a smooth ``max(x, 0)``, with PyTorch's ``beta`` and
    ``threshold``.

    .. math::

        \operatorname{softplus}(x) = \frac1\beta \log(1 + e^{\beta x})
        = \max(x, 0) + \frac1\beta \log(1 + e^{-\beta |x|})

    reverting to :math:`x` where :math:`\beta x > \mathrm{threshold}` (as
    :func:`torch.nn.functional.softplus`; ``threshold=None`` never reverts). Its derivative is
    :math:`\sigma(\beta x)`, exact at 0 (0.5).

    Parameters
    ----------
    x : array_like
        Input.
    beta : float, default 1.0
        Sharpness, > 0.
    threshold : float or None, default 20.0
        Above ``beta * x > threshold`` the result is ``x`` itself.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.softplus([0.0, 1e4, -1e4])
    array([6.93147181e-01, 1.00000000e+04, 0.00000000e+00])
    >>> ce.softplus([0.0], beta=2.0).round(6)
    array([0.346574])
    """
    b = check_number(beta, "beta", low=0.0, low_open=True)
    thr = None if threshold is None else check_number(threshold, "threshold")
    xp, (x,) = namespace(x, names=["x"])
    xf, dtype = as_float(xp, x, "x")
    bx = xf if b == 1.0 else xf * b
    out = fm.softplus(xp, bx)
    if b != 1.0:
        out = out / b
    if thr is not None:
        out = xp.where(bx > thr, xf, out)
    return restore_dtype(xp, out, dtype)


def xlogy(x: Array, y: Array, /) -> Array:
    r"""``x * log(y)`` with the convention ``0 * log(y) = 0``, element-wise.

    .. math::

        \operatorname{xlogy}(x, y) = \begin{cases} 0 & x = 0,\ y \text{ not NaN} \\
        x \log y & \text{otherwise} \end{cases}

    As :func:`scipy.special.xlogy`: ``xlogy(0, 0) = 0`` and ``xlogy(0, nan) = nan``. The zero
    branch is taken before the log (a double ``where``), so the gradient at ``x = 0`` is finite.
    A Python number takes the other argument's dtype (``xlogy(float32 tensor, 3.3)`` is
    float32, as :func:`torch.xlogy`).

    Parameters
    ----------
    x : array_like
        The factor; where it is 0 the result is 0.
    y : array_like
        The argument of the log, broadcast with ``x``.

    Returns
    -------
    array
        :math:`x \log y`, in the inputs' library and floating dtype.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.xlogy([0.0, 0.5], [0.0, 0.25])
    array([ 0.        , -0.69314718])
    """
    x_scalar = isinstance(x, (int, float)) and is_array(y)
    y_scalar = isinstance(y, (int, float)) and is_array(x)
    xp, (x, y) = namespace(x, y, names=["x", "y"])
    xf, dtype = as_float(xp, x, "x")
    yf, ydtype = as_float(xp, y, "y")
    if x_scalar:
        xf, dtype = cast(xp, xf, yf.dtype), ydtype
    elif y_scalar:
        yf, ydtype = cast(xp, yf, xf.dtype), dtype
    common = promoted(xp, xf, yf)
    try:
        xb, yb = xp.broadcast_arrays(cast(xp, xf, common), cast(xp, yf, common))
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"x of shape {shape_str(xf.shape)} and y of shape {shape_str(yf.shape)} do not "
            "broadcast together"
        ) from None
    with quiet(xb):  # x * log(0) = -inf for x > 0 is the answer
        out = fm.xlogy(xp, xb, yb)
    return restore_dtype(xp, out, promoted(xp, dtype, ydtype))
