r"""Information theory: self-information, entropy, cross-entropy, KL and JS divergence.

Every function but :func:`perplexity` (which does not depend on it) takes ``base=``: ``math.e``
(nats) by default, ``2`` for bits, ``10`` for hartleys, or any real base > 1. Distributions lie
along ``axis`` (the last one by default). The convention :math:`0 \log 0 = 0` holds everywhere, with
finite gradients (the zero branch is taken before the log). Probabilities must lie in [0, 1], and
a distribution that does not sum to 1 within scikit-learn's tolerance (``1e-8 + sqrt(eps)`` of
the dtype) is warned of (a ``UserWarning`` naming it, where the validation policy reads values);
with ``normalize=True`` any non-negative weights are accepted and each distribution is first
divided by its sum, as :func:`scipy.stats.entropy` does (one summing to 0 gives NaN). A NaN
probability gives NaN, as in SciPy.
"""

from __future__ import annotations

import math
from typing import Any

from crossentropy import _formulas as fm
from crossentropy._lib.axes import normalize_axis
from crossentropy._lib.checks import (
    check_bool,
    check_nonnegative,
    check_number,
    check_unit_interval,
    nan_outside,
    shape_str,
    warn_unless_sums_to_one,
)
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_float,
    cast,
    namespace,
    promoted,
    restore_dtype,
)
from crossentropy._lib.policy import reads

__all__ = [
    "binary_entropy",
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "perplexity",
    "self_information",
]


def _scale(xp: Namespace, value: Array, base: object) -> Array:
    b = check_number(base, "base", low=1.0, low_open=True)
    return value if b == math.e else value / math.log(b)


#: The ``axis`` of an element-wise measure (no distribution axis; a user's ``axis=None`` is
#: not one, but a ``TypeError``).
_ELEMENTWISE = object()


def _prepare(
    *arrays: Any, names: list[str], axis: object, normalize: bool
) -> tuple[Namespace, list[Array], Any, int | None]:
    """Namespace, float arrays broadcast together, the output dtype, and the normalised axis
    (None for :data:`_ELEMENTWISE`)."""
    normalize = check_bool(normalize, "normalize")
    xp, raw = namespace(*arrays, names=names)
    floats, stored = [], []
    out_dtype = None
    for a, name in zip(raw, names, strict=True):
        f, dt = as_float(xp, a, name)
        floats.append(f)
        stored.append(dt)
        out_dtype = dt if out_dtype is None else promoted(xp, out_dtype, dt)
    common = promoted(xp, *floats)
    floats = [cast(xp, f, common) for f in floats]
    if len(floats) > 1:
        try:
            floats = list(xp.broadcast_arrays(*floats))
        except (ValueError, RuntimeError, TypeError):
            shapes = " and ".join(
                f"{n} {shape_str(f.shape)}" for f, n in zip(floats, names, strict=True)
            )
            raise ValueError(f"{shapes} do not broadcast together") from None
    ax = None
    if axis is not _ELEMENTWISE:
        ndim = floats[0].ndim
        if ndim == 0:
            raise ValueError(f"{names[0]} must have at least one dimension (the distribution axis)")
        ax = normalize_axis(axis, ndim)
        _check_outcomes(raw, names, ax - ndim, floats[0].shape[ax], axis)
    if reads(None, *floats):
        for f, name, dt in zip(floats, names, stored, strict=True):
            if normalize:
                check_nonnegative(xp, f, name)
            else:
                check_unit_interval(xp, f, name, nan_passes=True)
                if ax is not None:
                    warn_unless_sums_to_one(xp, f, name, ax, dt)
    else:  # values not read (lazy, traced): an entry outside the domain gives NaN, as the
        # metrics' unread probabilities do, never a finite number (1.5 gave an entropy < 0)
        floats = [nan_outside(xp, f, scores=normalize) for f in floats]
    if ax is not None and normalize:
        floats = [_normalized(xp, f, ax) for f in floats]
    return xp, floats, out_dtype, ax


def _check_outcomes(
    arrays: list[Any], names: list[str], ax: int, outcomes: int, axis: object
) -> None:
    """Each distribution as given has the ``outcomes`` of the broadcast ones along the
    distribution axis ``ax`` (negative; the caller's ``axis``): one stretched along it
    (``q = [1.0]`` against two outcomes of ``p``) would be another distribution, scored
    without a word."""
    if len(arrays) < 2:
        return
    sizes = [a.shape[ax] if a.ndim >= -ax else 1 for a in arrays]
    if any(size != outcomes for size in sizes):
        given = " and ".join(f"{n} {size}" for n, size in zip(names, sizes, strict=True))
        raise ValueError(
            f"{' and '.join(names)} must hold the same number of outcomes along the "
            f"distribution axis (axis={axis}); got {given}"
        )


def _normalized(xp: Namespace, f: Array, ax: int) -> Array:
    """``f`` divided by its sum along ``ax``; a distribution summing to 0 gives NaN, as in SciPy,
    without a division by zero on any backend (no floating-point warning, even where the
    division runs later, as in Dask)."""
    total = xp.sum(f, axis=ax, keepdims=True)
    empty = total == 0
    return xp.where(empty, xp.nan, f / xp.where(empty, xp.ones_like(total), total))


def self_information(p: Array, /, *, base: float = math.e) -> Array:
    r"""Self-information (surprisal) of an event of probability ``p``, element-wise.

    .. math::

        I(p) = -\log_b p

    Parameters
    ----------
    p : array_like
        Probabilities in [0, 1]. ``I(0) = inf``.
    base : float, default e
        Logarithm base: e for nats, 2 for bits.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.self_information([0.9, 0.1]).round(3)
    array([0.105, 2.303])
    >>> ce.self_information(0.5, base=2)
    np.float64(1.0)
    """
    xp, (pf,), dtype, _ = _prepare(p, names=["p"], axis=_ELEMENTWISE, normalize=False)
    return restore_dtype(xp, _scale(xp, 0 - fm.safe_log(xp, pf), base), dtype)


def entropy(p: Array, /, *, axis: int = -1, base: float = math.e, normalize: bool = False) -> Array:
    r"""Shannon entropy of the distributions along ``axis``.

    .. math::

        H(p) = -\sum_i p_i \log_b p_i, \qquad 0 \log 0 = 0

    Parameters
    ----------
    p : array_like
        Probabilities along ``axis``.
    axis : int, default -1
        The distribution axis.
    base : float, default e
        Logarithm base: e for nats, 2 for bits.
    normalize : bool, default False
        Divide ``p`` by its sum first (as :func:`scipy.stats.entropy`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.entropy([0.5, 0.5], base=2)
    np.float64(1.0)
    >>> ce.entropy([1.0, 0.0])
    np.float64(0.0)
    """
    xp, (pf,), dtype, ax = _prepare(p, names=["p"], axis=axis, normalize=normalize)
    return restore_dtype(xp, _scale(xp, fm.cross_entropy(xp, pf, pf, ax), base), dtype)


def binary_entropy(p: Array, /, *, base: float = math.e) -> Array:
    r"""Entropy of a Bernoulli variable with success probability ``p``, element-wise.

    .. math::

        H_b(p) = -p \log_b p - (1 - p) \log_b (1 - p)

    with :math:`\log(1 - p)` computed as ``log1p(-p)``, so that the value keeps its digits for
    tiny ``p`` (where ``1 - p`` rounds to 1); ``0 log 0 = 0``.

    Parameters
    ----------
    p : array_like
        Success probabilities in [0, 1].
    base : float, default e
        Logarithm base: e for nats, 2 for bits.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.binary_entropy(0.5, base=2)  # a fair coin
    np.float64(1.0)
    >>> ce.binary_entropy([0.0, 0.1, 1.0]).round(4)
    array([0.    , 0.3251, 0.    ])
    >>> float(ce.binary_entropy(1e-17))  # p log(1/p) + p, to the last digit
    4.014394658089878e-16
    """
    xp, (pf,), dtype, _ = _prepare(p, names=["p"], axis=_ELEMENTWISE, normalize=False)
    return restore_dtype(xp, _scale(xp, fm.binary_entropy(xp, pf), base), dtype)


def cross_entropy(
    p: Array, q: Array, /, *, axis: int = -1, base: float = math.e, normalize: bool = False
) -> Array:
    r"""Cross-entropy of distribution ``q`` relative to the true distribution ``p``.

    .. math::

        H(p, q) = -\sum_i p_i \log_b q_i = H(p) + D_{\mathrm{KL}}(p \,\|\, q)

    This is the quantity between two distributions; :func:`crossentropy.cross_entropy` is the
    loss on logits with PyTorch's conventions.

    Parameters
    ----------
    p : array_like
        The true distribution (probabilities along ``axis``).
    q : array_like
        The approximating distribution, broadcast with ``p`` (as many outcomes along ``axis``).
    axis : int, default -1
        The axis of the outcomes.
    base : float, default e
        Logarithm base: e for nats, 2 for bits.
    normalize : bool, default False
        Divide ``p`` and ``q`` by their sums first (as :func:`scipy.stats.entropy`).

    Examples
    --------
    >>> from crossentropy import information
    >>> information.cross_entropy([1.0, 0.0], [0.9, 0.1]).round(4)
    np.float64(0.1054)
    >>> information.cross_entropy([0.5, 0.5], [0.5, 0.5], base=2)
    np.float64(1.0)
    """
    xp, (pf, qf), dtype, ax = _prepare(p, q, names=["p", "q"], axis=axis, normalize=normalize)
    return restore_dtype(xp, _scale(xp, fm.cross_entropy(xp, pf, qf, ax), base), dtype)


def kl_divergence(
    p: Array, q: Array, /, *, axis: int = -1, base: float = math.e, normalize: bool = False
) -> Array:
    r"""Kullback-Leibler divergence of ``p`` (the true distribution) from ``q`` (its
    approximation): the extra information of coding samples of ``p`` with a code built for ``q``.

    .. math::

        D_{\mathrm{KL}}(p \,\|\, q) = \sum_i p_i \log_b \frac{p_i}{q_i}

    Non-negative, zero iff ``p == q``; ``inf`` where ``p_i > 0`` and ``q_i = 0``. Where
    :math:`p_i` is within a factor 2 of :math:`q_i` the log is
    :math:`\operatorname{log1p}((p_i - q_i) / q_i)`, so distributions that differ in the sixth
    digit keep the digits of their divergence (about 1e-13) that a difference of logs
    cancels, as :func:`scipy.special.rel_entr` does. Argument order
    is (true, approximate), as :func:`scipy.stats.entropy` ``(pk, qk)``; note that
    :func:`crossentropy.kl_div` follows PyTorch's ``(log q, p)`` order instead.

    Parameters
    ----------
    p : array_like
        The true distribution (probabilities along ``axis``).
    q : array_like
        The approximating distribution, broadcast with ``p`` (as many outcomes along ``axis``).
    axis : int, default -1
        The axis of the outcomes.
    base : float, default e
        Logarithm base: e for nats, 2 for bits.
    normalize : bool, default False
        Divide ``p`` and ``q`` by their sums first (as :func:`scipy.stats.entropy`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.kl_divergence([0.5, 0.5], [0.9, 0.1]).round(4)
    np.float64(0.5108)
    >>> ce.kl_divergence([0.5, 0.5], [0.5, 0.5])
    np.float64(0.0)
    """
    xp, (pf, qf), dtype, ax = _prepare(p, q, names=["p", "q"], axis=axis, normalize=normalize)
    return restore_dtype(xp, _scale(xp, fm.kl_divergence(xp, pf, qf, ax), base), dtype)


def js_divergence(
    p: Array, q: Array, /, *, axis: int = -1, base: float = math.e, normalize: bool = False
) -> Array:
    r"""Jensen-Shannon divergence: the symmetric, bounded mean of two KL divergences.

    .. math::

        \mathrm{JS}(p, q) = \tfrac12 D_{\mathrm{KL}}(p \,\|\, m) + \tfrac12 D_{\mathrm{KL}}(q
        \,\|\, m), \qquad m = \tfrac12 (p + q)

    Bounded by :math:`\log_b 2` (1 bit), and at least 0: a rounding below 0 (two nearly equal
    distributions) gives 0, so its square root, which
    :func:`scipy.spatial.distance.jensenshannon` returns, is never NaN.

    Parameters
    ----------
    p : array_like
        One distribution (probabilities along ``axis``).
    q : array_like
        The other, broadcast with ``p`` (as many outcomes along ``axis``).
    axis : int, default -1
        The axis of the outcomes.
    base : float, default e
        Logarithm base: e for nats, 2 for bits.
    normalize : bool, default False
        Divide ``p`` and ``q`` by their sums first (as :func:`scipy.stats.entropy`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.js_divergence([1.0, 0.0], [0.0, 1.0], base=2)
    np.float64(1.0)
    """
    xp, (pf, qf), dtype, ax = _prepare(p, q, names=["p", "q"], axis=axis, normalize=normalize)
    js = fm.js_divergence(xp, pf, qf, ax)
    return restore_dtype(xp, _scale(xp, js, base), dtype)


def perplexity(
    p: Array, q: Array | None = None, /, *, axis: int = -1, normalize: bool = False
) -> Array:
    r"""Perplexity: the exponential of the entropy, or of the cross-entropy when ``q`` is given.

    .. math::

        \mathrm{PP}(p) = e^{H(p)}, \qquad \mathrm{PP}(p, q) = e^{H(p, q)}

    It does not depend on the logarithm base (:math:`b^{H_b} = e^{H}`): the effective number
    of equally likely outcomes.

    Parameters
    ----------
    p : array_like
        The distribution (probabilities along ``axis``), the true one when ``q`` is given.
    q : array_like, optional
        The approximating distribution, broadcast with ``p`` (as many outcomes along
        ``axis``): the perplexity of ``q`` on outcomes drawn from ``p``.
    axis : int, default -1
        The axis of the outcomes.
    normalize : bool, default False
        Divide ``p`` (and ``q``) by their sums first.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.perplexity([0.25, 0.25, 0.25, 0.25]).round(6)
    np.float64(4.0)
    """
    if q is None:
        xp, (pf,), dtype, ax = _prepare(p, names=["p"], axis=axis, normalize=normalize)
        qf = pf
    else:
        xp, (pf, qf), dtype, ax = _prepare(p, q, names=["p", "q"], axis=axis, normalize=normalize)
    return restore_dtype(xp, xp.exp(fm.cross_entropy(xp, pf, qf, ax)), dtype)
