r"""The formulas, written once against the Array API standard (a documented internal module).

Every function here takes a namespace ``xp`` and prepared floating arrays (already in their
compute dtype, classes on the last axis where there are classes) and returns an array; the
public functions, the losses, their closed-form gradients, the metrics and the fused path all
call these, so each formula and each numerical device (the shifted log-sum-exp, the double
``where`` that keeps gradients finite, the clipping conventions) has one home.

Conventions: the max of a log-sum-exp is shifted out and carries no gradient (it cancels from
the derivative; JAX and PyTorch then do not differentiate through a max); a non-finite max
becomes 0, so a row of ``-inf`` gives ``-inf``, not NaN; ``0 log 0 = 0`` with finite gradients.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from crossentropy._lib.kernels import numpy_logsumexp_rows
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    device_of,
    epsilon,
    is_dask,
    is_jax,
    is_numpy,
    is_torch,
    stop_gradient,
)

__all__ = [
    "KERAS_EPSILON",
    "TORCH_LOG_FLOOR",
    "abs_error",
    "binary_logit_loss",
    "class_balance",
    "clip_epsilon",
    "cross_entropy",
    "focal_factor",
    "focal_slope",
    "gather",
    "huber",
    "js_divergence",
    "kl_divergence",
    "kl_terms",
    "log1mexp",
    "log_cosh",
    "log_one_minus_pt",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "lse_parts",
    "mul_log",
    "prob_log",
    "prob_log1m",
    "prob_log_derivative",
    "safe_log",
    "safe_max",
    "sigmoid",
    "sigmoid_parts",
    "softmax",
    "softplus",
    "take",
    "xlogy",
]

LOG2 = math.log(2.0)
KERAS_EPSILON = 1e-7
TORCH_LOG_FLOOR = -100.0


# ---------------------------------------------------------------------------------------------
# Log-sum-exp and the softmax.
# ---------------------------------------------------------------------------------------------


def safe_max(xp: Namespace, x: Array, axis: int) -> Array:
    """Row max with keepdims, a non-finite max replaced by 0 (so all -inf rows are not NaN).

    It carries no gradient: every formula that shifts by it is invariant to the shift.
    """
    if 0 in x.shape:  # an empty reduction has no max (Dask raises at compute time)
        axis %= x.ndim
        shape = tuple(1 if i == axis else s for i, s in enumerate(x.shape))
        return xp.zeros(shape, dtype=x.dtype, device=device_of(x))
    m = stop_gradient(xp, xp.max(x, axis=axis, keepdims=True))
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def lse_parts(xp: Namespace, x: Array, axis: int) -> tuple[Array, Array]:
    """The log-sum-exp along ``axis`` in two parts, with keepdims: ``m`` (the row max, 0 where
    it is not finite; no gradient) and ``log(sum(exp(x - m)))``; their sum is the log-sum-exp.

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
    total = xp.sum(xp.exp(x - m), axis=axis, keepdims=True)
    # a row of -inf has the sum 0 and the log -inf; the double where keeps its gradient 0
    # (not 0 * inf = NaN), so a masked row left out of a loss leaves the other gradients finite
    none = total == 0  # (a NaN sum stays NaN)
    log_total = xp.log(xp.where(none, xp.ones_like(total), total))
    return m, xp.where(none, xp.full_like(total, -xp.inf), log_total)


def logsumexp(xp: Namespace, x: Array, axis: int, keepdims: bool = False) -> Array:
    """``log(sum(exp(x), axis))``, stable: ``m + log(sum(exp(x - m)))``."""
    m, s = lse_parts(xp, x, axis)
    out = m + s
    return out if keepdims else xp.squeeze(out, axis=axis % x.ndim)


def log_softmax(xp: Namespace, x: Array, axis: int) -> Array:
    """``(x - m) - log(sum(exp(x - m)))`` along ``axis`` (see :func:`lse_parts`)."""
    m, s = lse_parts(xp, x, axis)
    return log_softmax_of_parts(xp, x, m, s)


def log_softmax_of_parts(
    xp: Namespace, x: Array, m: Array, log_sum: Array, *, masked_rows: bool = False
) -> Array:
    """``(x - m) - log_sum`` from the parts of :func:`lse_parts`. With ``masked_rows`` a row of
    ``-inf`` logits (which has no normaliser) keeps log-probabilities ``-inf`` rather than NaN:
    the rule of a loss that leaves such rows out (see :func:`zero_where_minus_inf`)."""
    return (x - m) - (
        zero_where_minus_inf(xp, log_sum) if masked_rows else nan_where_inf(xp, log_sum)
    )


def nan_where_inf(xp: Namespace, a: Array) -> Array:
    """``a`` with ``+inf`` replaced by NaN: a row's normaliser with a ``+inf`` logit (its
    log-sum-exp ``+inf``) makes every probability of the row NaN, as PyTorch's and JAX's
    softmax give (``x - inf`` would be a ``-inf`` log-probability for the finite logits)."""
    return xp.where(a == xp.inf, xp.full_like(a, xp.nan), a)


def zero_where_minus_inf(xp: Namespace, a: Array) -> Array:
    """``a`` with ``-inf`` replaced by 0: the log-sum-exp of a row of ``-inf`` logits as a loss
    counts it (its z-loss 0, its log-probabilities ``-inf``), not NaN."""
    return xp.where(a == -xp.inf, xp.zeros_like(a), a)


def softmax(xp: Namespace, x: Array, axis: int) -> Array:
    """``exp(x - m) / sum(exp(x - m))`` along ``axis`` (PyTorch's own kernel on tensors: the
    same formula, fused)."""
    if is_torch(x):
        return x.softmax(axis)
    e = xp.exp(x - safe_max(xp, x, axis))
    return e / nan_where_inf(xp, xp.sum(e, axis=axis, keepdims=True))


def gather(xp: Namespace, x: Array, idx: Array) -> Array:
    """``x[..., idx]`` along the last axis: ``take_along_axis`` where the backend has it (on
    Dask, block by block: the gather is row-wise, so each block of rows, whole along the last
    axis, gathers on its own), otherwise a comparison with ``arange(C)``."""
    if is_dask(x):
        return _dask_gather(x, idx)
    if is_torch(x) and tuple(idx.shape) == tuple(x.shape[:-1]):
        # torch's gather: take_along_dim's broadcasting fixes a compiled graph to one size
        return x.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    if hasattr(xp, "take_along_axis"):
        picked = xp.take_along_axis(x, xp.expand_dims(idx, axis=-1), axis=-1)
        return xp.squeeze(picked, axis=-1)
    classes = xp.arange(x.shape[-1], dtype=idx.dtype, device=device_of(x))
    hit = xp.expand_dims(idx, axis=-1) == classes
    return xp.sum(xp.where(hit, x, xp.zeros_like(x)), axis=-1)


def _dask_gather(x: Array, idx: Array) -> Array:
    """:func:`gather` of Dask arrays: ``take_along_axis`` of each block of the blocks' own
    library, the last axis in one chunk and the index chunked as the rows."""
    import array_api_compat
    import dask.array as da

    last = x.ndim - 1
    if len(x.chunks[last]) > 1:
        x = x.rechunk({last: -1})
    idx = idx.rechunk(x.chunks[:last])

    def pick(block: Any, rows: Any) -> Any:  # rows: (..., 1), the index of each row
        lib = array_api_compat.array_namespace(block)
        return lib.squeeze(lib.take_along_axis(block, rows, axis=-1), axis=-1)

    return da.map_blocks(pick, x, idx[..., None], drop_axis=last, dtype=x.dtype)  # type: ignore[no-untyped-call]


def take(xp: Namespace, w: Array, idx: Array) -> Array:
    """``w[idx]`` for a 1-D ``w`` and an index array of any shape."""
    if is_torch(w):  # (indexing by a 0-d index fails under vmap of grad; index_select not)
        torch = sys.modules["torch"]
        flat = idx.reshape(-1)
        flat = flat if flat.dtype in (torch.int32, torch.int64) else flat.long()
        return w.index_select(0, flat).reshape(idx.shape)
    flat = xp.take(w, xp.reshape(idx, (-1,)), axis=0)
    return xp.reshape(flat, idx.shape)


# ---------------------------------------------------------------------------------------------
# The sigmoid family.
# ---------------------------------------------------------------------------------------------


def softplus(xp: Namespace, x: Array) -> Array:
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``, exact gradient at 0."""
    pos = x > 0
    neg_abs = xp.where(pos, -x, x)
    return xp.where(pos, x, xp.zeros_like(x)) + xp.log1p(xp.exp(neg_abs))


def log_sigmoid(xp: Namespace, x: Array) -> Array:
    """``log σ(x) = -softplus(-x)`` (PyTorch's and JAX's own kernels on their arrays: the same
    formula, fused, with the same exact derivative ``σ(-x)``)."""
    if is_torch(x):
        import torch.nn.functional as F

        return F.logsigmoid(x)
    if is_jax(x):
        import jax

        return jax.nn.log_sigmoid(x)
    return -softplus(xp, -x)


def sigmoid(xp: Namespace, x: Array) -> Array:
    """``σ(x)`` from ``e = exp(-|x|) <= 1``: ``1/(1+e)`` for x >= 0, ``e/(1+e)`` otherwise
    (PyTorch's own kernel on tensors)."""
    if is_torch(x):
        return x.sigmoid()
    pos = x >= 0
    e = xp.exp(xp.where(pos, -x, x))
    return xp.where(pos, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------------------------------------
# Logs with conventions.
# ---------------------------------------------------------------------------------------------


def safe_log(xp: Namespace, x: Array, floor: float | None = None) -> Array:
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


def log1mexp(xp: Namespace, logp: Array) -> Array:
    """``log(1 - exp(l))`` for ``l <= 0``: ``log(-expm1(l))`` near 0, ``log1p(-exp(l))`` below
    ``-log 2``; ``-inf`` at ``l = 0``. Each branch is fed a safe value (double ``where``), so
    gradients stay finite everywhere, including ``l = 0``."""
    near = logp > -LOG2
    at_zero = logp >= 0
    a = xp.where(near & ~at_zero, logp, xp.full_like(logp, -1.0))
    b = xp.where(near, xp.full_like(logp, -1.0), logp)
    out = xp.where(near, xp.log(-xp.expm1(a)), xp.log1p(-xp.exp(b)))
    return xp.where(at_zero, xp.full_like(logp, -xp.inf), out)


def mul_log(xp: Namespace, x: Array, logy: Array, infinite: Array | None = None) -> Array:
    """``x * logy`` with ``0 * (±inf) = 0``.

    Only the ``0 * (±inf)`` entries take the zero branch (a double ``where``), so the derivative
    with respect to ``x`` is ``logy`` wherever ``logy`` is finite, as in torch's ``xlogy``.
    ``infinite``, where the caller knows it from the inputs of ``logy``, is ``isinf(logy)``:
    under ``jax.grad`` a mask read off ``logy`` itself cost XLA 2x the whole loss's time.
    """
    zero = (x == 0) & (xp.isinf(logy) if infinite is None else infinite)
    return x * xp.where(zero, xp.zeros_like(logy), logy)


def unless_zero(xp: Namespace, c: Array, a: Array) -> Array:
    """``c * a``, and 0 wherever the coefficient ``c`` is 0, whatever ``a`` holds (inf, NaN):
    a traced coefficient of 0 (a label smoothing given as an array) takes none of a term, as
    a Python 0 skips it."""
    return xp.where(c == 0, xp.zeros_like(a), c * a)


def kl_terms(xp: Namespace, p: Array, logp: Array, logq: Array) -> Array:
    """Element-wise ``p (log p - log q)`` with ``0 log 0 = 0``: the KL terms of the losses, as
    PyTorch's ``kl_div`` forms them (:func:`kl_divergence` keeps the digits of near ones)."""
    return mul_log(xp, p, logp) - mul_log(xp, p, logq)


def cross_entropy(xp: Namespace, p: Array, q: Array, axis: int | None) -> Array:
    """``-sum(p log q)`` along ``axis`` of two distributions, in nats (``0 log 0 = 0``; written
    ``0 - sum`` so that an exact zero is +0.0)."""
    return 0 - xp.sum(mul_log(xp, p, safe_log(xp, q)), axis=axis)


def binary_entropy(xp: Namespace, p: Array) -> Array:
    """``-p log p - (1 - p) log(1 - p)`` element-wise, in nats, with ``log(1 - p)`` as
    ``log1p(-p)``: exact to the last digits for tiny ``p``, where ``1 - p`` rounds to 1
    (``0 log 0 = 0``; ``0 - ...`` so that an exact zero is +0.0)."""
    log_q = prob_log1m(xp, p, None, None)
    return 0 - (mul_log(xp, p, safe_log(xp, p)) + mul_log(xp, 1 - p, log_q))


def kl_divergence(xp: Namespace, p: Array, q: Array, axis: int | None) -> Array:
    """``sum(p log(p / q))`` along ``axis``, in nats (each product 0 where p = 0).

    Each log is ``log p - log q``, except where that difference cancels: near ``q``
    (``q / 2 <= p <= 2q``) with logs much larger than the relative difference
    ``u = (p - q) / q`` (``4 |u| < |log p| + |log q|``), where it is ``log1p(u)``, ``p - q``
    exact. So two distributions 1e-6 apart keep the digits of their divergence of 1e-13
    (the difference of logs left 4, and could make it negative in float32), and a
    probability of 1 keeps its exact log of 0."""
    p, q = xp.broadcast_arrays(p, q)
    one = xp.ones_like(p)
    log_p = safe_log(xp, p)
    # (p = 0: -inf, and no NaN of a q of 0 or inf; a NaN q stays NaN)
    log_q = safe_log(xp, xp.where((p == 0) & ~xp.isnan(q), one, q))
    near = (p > 0) & (2 * p >= q) & (p <= 2 * q)
    pn, qn = xp.where(near, p, one), xp.where(near, q, one)  # (safe values off `near`)
    u = (pn - qn) / qn
    near = near & (4 * xp.abs(u) < xp.abs(log_p) + xp.abs(log_q))
    log_ratio = xp.where(near, xp.log1p(xp.where(near, u, xp.zeros_like(u))), log_p - log_q)
    return xp.sum(mul_log(xp, p, log_ratio), axis=axis)


def js_divergence(xp: Namespace, p: Array, q: Array, axis: int | None) -> Array:
    """``(sum p log(p / m) + sum q log(q / m)) / 2`` along ``axis`` with ``m = (p + q) / 2``,
    in nats, at least 0 (a rounding below 0 gives 0).

    With ``u = (p - q) / (p + q)``, ``log(p / m)`` is ``log1p(u)`` where ``u >= -1/2`` (and
    ``log(q / m)`` is ``log1p(-u)`` where ``-u >= -1/2``), else ``log 2p - log(p + q)``: no
    ``m`` is formed, so nearly equal distributions keep their digits (as in
    :func:`kl_divergence`), ``JS(p, p)`` is exactly 0, and subnormal probabilities whose half
    rounds to 0 give no infinite divergence; a term of ``p = 0`` (``q = 0``) is 0."""
    p, q = xp.broadcast_arrays(p, q)
    total = p + q
    some = total > 0
    one = xp.ones_like(p)
    u = xp.where(some, p - q, xp.zeros_like(p)) / xp.where(some, total, one)
    log_total = safe_log(xp, xp.where(some, total, one))

    def term(a: Array, v: Array) -> Array:  # a log(2a / (p + q)), v = (a - other) / (p + q)
        near = v >= -0.5
        far = safe_log(xp, 2 * a) - log_total
        return mul_log(xp, a, xp.where(near, xp.log1p(xp.where(near, v, 0 * v)), far))

    js = xp.sum(term(p, u) + term(q, -u), axis=axis) / 2
    return xp.where(js < 0, xp.zeros_like(js), js)  # (not maximum: its derivatives halve at 0)


def xlogy(xp: Namespace, x: Array, y: Array) -> Array:
    """``x * log(y)`` with ``0 * log(y) = 0`` unless y is NaN (as :func:`scipy.special.xlogy`).

    The log is fed 1 where ``x = 0`` and ``log(y)`` is not finite (``y`` <= 0 or inf), so values
    and gradients stay finite; elsewhere the derivative with respect to ``x`` is ``log(y)``.
    """
    zero = (x == 0) & ((y <= 0) | (y == xp.inf))
    logy = xp.log(xp.where(zero, xp.ones_like(y), y))
    return x * logy


# ---------------------------------------------------------------------------------------------
# Probabilities meeting a log: the clipping conventions and their derivatives (one home).
# ---------------------------------------------------------------------------------------------


def clip_epsilon(xp: Namespace, clip: Any, eps_dtype: Any) -> float:
    """The ``eps`` of ``p`` clipped to ``[eps, 1 - eps]`` under ``"sklearn"``, ``"keras"`` or a
    number (``None`` and ``"torch"`` clamp the log instead: see :func:`prob_log`)."""
    if clip == "sklearn":
        return epsilon(xp, eps_dtype)
    if clip == "keras":
        return KERAS_EPSILON
    return float(clip)


def prob_log(xp: Namespace, p: Array, clip: Any, eps_dtype: Any) -> Array:
    """``log(p)`` under a clipping convention: None, the plain log (``log 0 = -inf``);
    ``"torch"``, the log clamped at -100; ``"sklearn"``, ``p`` clipped to ``[eps, 1 - eps]``
    with ``eps`` the machine epsilon of ``eps_dtype``; ``"keras"``, clipped at 1e-7; a float
    ``c``, clipped at ``c``."""
    if clip is None:
        return safe_log(xp, p)
    if clip == "torch":
        return safe_log(xp, p, floor=TORCH_LOG_FLOOR)
    eps = clip_epsilon(xp, clip, eps_dtype)
    return xp.log(xp.clip(p, eps, 1 - eps))


def prob_log1m(xp: Namespace, p: Array, clip: Any, eps_dtype: Any) -> Array:
    """``log(1 - p)`` under the clipping conventions of :func:`prob_log` (for ``1 - p``),
    formed as ``log1p(-p)``: ``1 - p`` would round away the digits of a small ``p`` (its
    log is ``-p``, 4e8 eps off at ``p = 1e-10``). At ``p = 1`` it is ``-inf`` (or the clamp)
    with a finite gradient (a double ``where``)."""
    if clip is not None and clip != "torch":
        eps = clip_epsilon(xp, clip, eps_dtype)
        return xp.log1p(-xp.clip(p, eps, 1 - eps))
    one = p == 1
    out = xp.log1p(-xp.where(one, xp.zeros_like(p), p))
    low = -xp.inf if clip is None else TORCH_LOG_FLOOR
    out = xp.where(one, xp.full_like(p, low), out)
    return out if clip is None else xp.maximum(out, xp.full_like(p, TORCH_LOG_FLOOR))


def prob_log_derivative(xp: Namespace, p: Array, clip: Any, eps_dtype: Any) -> Array:
    """``d prob_log(p) / dp``: ``1/p``, 0 where the clip or the clamp is active (``inf`` at
    ``p = 0`` without clipping)."""
    zero = p == 0
    inv = 1 / xp.where(zero, xp.ones_like(p), p)
    if clip is None:
        return xp.where(zero, xp.full_like(p, math.inf), inv)
    if clip == "torch":
        return xp.where(p > math.exp(TORCH_LOG_FLOOR), inv, xp.zeros_like(p))
    eps = clip_epsilon(xp, clip, eps_dtype)
    inside = (p >= eps) & (p <= 1 - eps)
    return xp.where(inside, inv, xp.zeros_like(p))


# ---------------------------------------------------------------------------------------------
# Focal modulation.
# ---------------------------------------------------------------------------------------------


def focal_factor(xp: Namespace, logp: Array, gamma: Any) -> Array:
    """``(1 - p)^gamma`` from ``log p``, stable as ``p -> 1``: ``exp(gamma * log1mexp(log p))``,
    so the factor and its gradient stay finite for ``p`` within rounding of 1."""
    if isinstance(gamma, float) and gamma == 0.0:
        return xp.ones_like(logp)
    log_rest = log1mexp(xp, logp)
    # p = 1: the factor is 0^gamma (0, 1 at gamma = 0, inf for an unchecked gamma < 0) with
    # no gradient; the power of a safe substitute keeps 0 * -inf (NaN) out of the value and
    # of the gradient in gamma
    certain = log_rest == -xp.inf
    power = xp.exp(gamma * xp.where(certain, xp.zeros_like(log_rest), log_rest))
    if isinstance(gamma, int | float):
        limit = xp.full_like(log_rest, 0.0**gamma if gamma >= 0 else math.inf)
    else:
        g = xp.astype(gamma, log_rest.dtype)
        limit = xp.where(g > 0, xp.zeros_like(g), xp.where(g == 0, xp.ones_like(g), math.inf))
    return xp.where(certain, limit, power)


def focal_slope(xp: Namespace, logq: Array, gamma: Any) -> Array:
    """``q φ'(q)`` for ``φ(q) = (1 - q)^γ log q``: ``(1 - q)^γ (1 - γ q log q / (1 - q))``.

    Written from ``log q``: ``q log q / (1 - q)`` tends to -1 as ``q -> 1`` and to 0 as
    ``q -> 0`` (a ``-inf`` logit); both limits are taken explicitly, so no ``0 * inf`` arises.
    """
    if isinstance(gamma, float) and gamma == 0.0:
        return xp.ones_like(logq)
    m = focal_factor(xp, logq, gamma)
    at_one = logq >= 0
    at_zero = logq == -xp.inf
    safe = xp.where(at_one | at_zero, xp.full_like(logq, -1.0), logq)
    q_ratio = xp.exp(safe) * safe / -xp.expm1(safe)
    q_ratio = xp.where(at_one, xp.full_like(logq, -1.0), q_ratio)
    q_ratio = xp.where(at_zero, xp.zeros_like(logq), q_ratio)
    return m * (1 - gamma * q_ratio)


def sigmoid_parts(xp: Namespace, x: Array) -> tuple[Array, Array, Array, Array]:
    """``σ(x), σ(-x), log σ(x), log σ(-x)``, each without cancellation.

    From ``e = exp(-|x|) <= 1`` and ``L = log1p(e)``: for ``x >= 0``, ``σ(x) = 1/(1+e)``,
    ``σ(-x) = e/(1+e)``, ``log σ(x) = -L``, ``log σ(-x) = -x - L``; mirrored for ``x < 0``.
    On PyTorch tensors outside ``torch.compile``, PyTorch's fused ``sigmoid`` and
    ``logsigmoid`` kernels give the same values in fewer passes.
    """
    if is_torch(x) and not sys.modules["torch"].compiler.is_compiling():
        neg = -x
        return sigmoid(xp, x), sigmoid(xp, neg), log_sigmoid(xp, x), log_sigmoid(xp, neg)
    e = xp.exp(-xp.abs(x))
    log1pe = xp.log1p(e)
    big = 1 / (1 + e)
    small = e * big
    nonneg = x >= 0
    return (
        xp.where(nonneg, big, small),
        xp.where(nonneg, small, big),
        xp.where(nonneg, -log1pe, x - log1pe),
        xp.where(nonneg, -x - log1pe, -log1pe),
    )


def binary_logit_loss(
    xp: Namespace,
    x: Array,
    t: Array,
    *,
    pos_weight: Any = None,
    gamma: Any = None,
    alpha: Any = None,
) -> Array:
    """The element-wise loss of the sigmoid family on logits: binary cross-entropy,
    ``-(pw t log σ(x) + (1 - t) log σ(-x))``, times the focal modulation ``(1 - p_t)^γ``
    (``1 - p_t = t σ(-x) + (1 - t) σ(x)``) and the class balance
    ``α_t = α t + (1 - α)(1 - t)`` when given.

    Every term is a sum of terms of one sign with each sigmoid computed without cancellation,
    so values and gradients are exact as ``p_t -> 1`` for every finite logit (the plain
    products give NaN at infinite logits, as PyTorch's ``binary_cross_entropy_with_logits``).
    Where ``1 - p_t`` is 0 the power takes a safe base (a double ``where``), so its gradient is
    0 there rather than NaN for ``γ < 1``.

    ``σ(±x)`` and ``log σ(±x)`` come from one ``e = exp(-|x|)`` and one ``log1p(e)``
    (:func:`sigmoid_parts`), which a compiler fuses into one pass; on PyTorch tensors run eagerly
    they come from PyTorch's own fused kernels instead (the same values), which is fewer passes.
    """
    u = 1 - t
    s, q, log_p, log_q = sigmoid_parts(xp, x)
    pos = t * log_p if pos_weight is None else pos_weight * t * log_p
    log_likelihood = pos + u * log_q  # <= 0
    scale = None
    if gamma is not None:
        omp = t * q + u * s
        if isinstance(gamma, float) and gamma >= 1.0:
            scale = omp**gamma
        else:
            ok = omp > 0
            safe = xp.where(ok, omp, xp.ones_like(omp))
            scale = xp.where(ok, safe**gamma, xp.zeros_like(omp))
    alpha_t = class_balance(t, alpha)
    if alpha_t is not None:
        scale = alpha_t if scale is None else scale * alpha_t
    return -log_likelihood if scale is None else -(log_likelihood * scale)


def log_one_minus_pt(xp: Namespace, log_p: Array, log_q: Array, t: Array) -> Array:
    """``log(1 - p_t) = log(t (1 - p) + (1 - t) p)`` as a log-sum-exp of the two branches
    (``log_p = log p``, ``log_q = log(1 - p)``)."""
    return xp.logaddexp(safe_log(xp, t) + log_q, safe_log(xp, 1 - t) + log_p)


def class_balance(t: Array, alpha: Any) -> Array | None:
    """``alpha_t = alpha t + (1 - alpha)(1 - t)``, formed as ``(1 - alpha) + (2 alpha - 1) t``
    (two passes over ``t``), or None without ``alpha``."""
    if alpha is None:
        return None
    return (1 - alpha) + (2 * alpha - 1) * t


# ---------------------------------------------------------------------------------------------
# Regression.
# ---------------------------------------------------------------------------------------------


def abs_error(xp: Namespace, err: Array) -> Array:
    """``|err|`` whose derivative is ``sign(err)``: 0 at an error of 0, as PyTorch's ``abs``
    (JAX's is 1 there)."""
    return xp.where(err == 0, xp.zeros_like(err), xp.abs(err))


def huber(xp: Namespace, err: Array, delta: Any) -> Array:
    """Huber's function of the error: quadratic within ``delta``, linear beyond (``delta``
    may be +inf: the quadratic everywhere, and the linear branch, never taken, is fed a
    finite ``delta`` so that no gradient is 0 times inf)."""
    a = xp.abs(err)
    quad = 0.5 * err * err
    if isinstance(delta, float):
        if delta == math.inf:
            return quad
        return xp.where(a <= delta, quad, delta * (a - 0.5 * delta))
    finite = xp.where(delta == math.inf, xp.ones_like(delta), delta)  # (NaN stays NaN)
    return xp.where(a <= delta, quad, finite * (a - 0.5 * finite))


def smooth_l1(xp: Namespace, err: Array, beta: Any) -> Array:
    """PyTorch's smooth L1 of the error: Huber's function divided by ``beta``, and ``|err|``
    where ``beta`` is 0 (a number, or an array's entries: no 0 / 0 there)."""
    if isinstance(beta, float):
        return abs_error(xp, err) if beta == 0 else huber(xp, err, beta) / beta
    zero = beta == 0
    safe = xp.where(zero, xp.ones_like(beta), beta)
    return xp.where(zero, abs_error(xp, err), huber(xp, err, safe) / safe)


def smooth_l1_slope(xp: Namespace, err: Array, beta: Any) -> Array:
    """The derivative of :func:`smooth_l1` with respect to the error: ``err / beta`` within
    ``beta``, its sign beyond (everywhere where ``beta`` is 0)."""
    if isinstance(beta, float) and beta == 0:
        return xp.sign(err)
    safe = beta if isinstance(beta, float) else xp.where(beta == 0, xp.ones_like(beta), beta)
    return xp.where(xp.abs(err) < beta, err / safe, xp.sign(err))


def log_cosh(xp: Namespace, err: Array) -> Array:
    """``log cosh e``: ``log1p(expm1(a)^2 / (2 e^a))`` for ``a = |e| < 1`` (no cancellation near
    0), ``a + softplus(-2a) - log 2`` beyond (no overflow); each branch fed a safe value."""
    a = xp.abs(err)
    small = a < 1
    a_small = xp.where(small, a, xp.zeros_like(a))
    a_large = xp.where(small, xp.ones_like(a), a)
    em1 = xp.expm1(a_small)
    near = xp.log1p(em1 * em1 / (2 * xp.exp(a_small)))
    far = a_large + softplus(xp, -2 * a_large) - LOG2
    return xp.where(small, near, far)
