r"""The fused linear + cross-entropy for JAX: ``jax.custom_vjp`` over chunks of tokens.

.. math::

    u_n = \operatorname{cap} \tanh\bigl((W x_n + b) / (T \operatorname{cap})\bigr)

.. math::

    \ell_n = w_{y_n} (1 - \varepsilon)(\mathrm{lse}_n - u_{n,y_n})
        + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse}_n - u_{n,c})
        + \lambda\, \mathrm{lse}_n^2

as :func:`crossentropy.fused.linear_cross_entropy` computes it for torch, with the same
per-row statistics and the same composition of the loss from them (``_terms.py``). The tokens
run a chunk at a time in ``lax.scan``, so the ``[tokens, vocab]`` logits never exist: XLA's
memory analysis of ``jit(grad(...))`` (N = 8192, D = 64, V = 4096, 1024-token chunks of
16 MiB of float32 logits) gives 17 MiB of temporaries for the plain loss, ``"none"``, label
smoothing and z-loss, 32 MiB with a softcap (two chunk-sized buffers) and 64 MiB when the
per-token log-probabilities and entropy carry gradients (four), against 128 MiB for the whole
logits. Called outside ``jit``, the op runs as one compiled program per shapes and options.
Importing this module imports JAX (and not torch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from crossentropy._lib.extras import reraise_missing

try:
    import jax
except ModuleNotFoundError as exc:
    reraise_missing("crossentropy.fused.jax", exc)
import jax.numpy as jnp
from jax import lax

from crossentropy._lib.checks import check_choice, check_hyper, check_ignore_index, check_int
from crossentropy._lib.namespace import plain_values
from crossentropy._lib.policy import Validate, check_validate, reads
from crossentropy._lib.reduction import check_empty_mean
from crossentropy.fused._terms import (
    SMALL_CHUNK_ROWS,
    Coefficients,
    LinearCrossEntropyOutput,
    Stats,
    aux_names,
    default_chunk,
    loss_coefficients,
    nonzero,
    power_of_two_scale,
    row_terms,
)

__all__ = ["LinearCrossEntropyOutput", "linear_cross_entropy"]

Array = Any

_LAYOUTS = ("vd", "dv")
_REDUCTIONS = ("mean", "sum", "none")


class _Plan(NamedTuple):
    """What a sweep computes (static: hashable, part of the compiled program)."""

    chunk: int
    layout: str  # "vd": weight (V, D), "dv": weight (D, V)
    cap: bool  # softcap
    smooth: bool  # the (class-weighted) logit sum, for label smoothing
    entropy: bool
    hits: bool
    axis: str | None = None  # the mesh axis the vocabulary is split over (inside shard_map)


class _Hyper(NamedTuple):
    """Hyperparameters as arrays (they may be traced)."""

    temperature: Array
    cap: Array
    eps: Array
    z_loss: Array


def _psum(a: Any, axis: str | tuple[Any, ...] | None) -> Any:
    """``lax.psum`` over the mesh axis ``axis`` (or axes; typed)."""
    return lax.psum(a, axis)  # type: ignore[no-untyped-call]


def _pmax(a: Any, axis: str | None) -> Any:
    """``lax.pmax`` over the mesh axis ``axis`` (typed)."""
    return lax.pmax(a, axis)  # type: ignore[no-untyped-call]


def _varying(*arrays: Any) -> frozenset[Any]:
    """The mesh axes over which any of ``arrays`` varies, in ``shard_map``'s types with
    ``check_vma=True`` (empty outside ``shard_map``, with ``check_vma=False``, and in JAX
    versions without these types)."""
    axes: set[Any] = set()
    if not hasattr(jax, "typeof"):  # older than these types
        return frozenset()
    for a in arrays:
        if a is None or isinstance(a, (int, float)):
            continue
        t = jax.typeof(a)
        mat = getattr(t, "mat", None)  # JAX 0.9+: a ManualAxisType; before: vma
        axes |= set(mat.varying if mat is not None else getattr(t, "vma", ()))
    return frozenset(axes)


def _vary(a: Array, axes: frozenset[Any]) -> Array:
    """``a`` typed as varying over ``axes`` (those it does not vary over already), so that a
    scan's carry starts with the type its steps give it under ``check_vma=True``."""
    missing = tuple(sorted(axes - _varying(a), key=str))
    if not missing:
        return a
    if hasattr(lax, "pcast"):
        return lax.pcast(a, missing, to="varying")
    return lax.pvary(a, missing)  # type: ignore[attr-defined]


def _acc(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _logits(plan: _Plan, x: Array, w: Array, b: Array | None) -> Array:
    """A chunk's raw logits ``x W^T + b``, accumulated in float32 for half precision."""
    dims = (((1,), (1,)), ((), ())) if plan.layout == "vd" else (((1,), (0,)), ((), ()))
    z = lax.dot_general(x, w, dims, preferred_element_type=_acc(x.dtype))
    return z if b is None else z + b.astype(z.dtype)


def _transform(plan: _Plan, h: _Hyper, z: Array) -> tuple[Array, Array | None]:
    """``u`` (temperature, then softcap) and the softcap's ``tanh`` (for its derivative)."""
    u = z / h.temperature.astype(z.dtype)
    if not plan.cap:
        return u, None
    cap = h.cap.astype(z.dtype)
    th = jnp.tanh(u / cap)
    return cap * th, th


def _offset(plan: _Plan, w: Array) -> Array | int:
    """The global index of this device's first class (0 without vocabulary parallelism)."""
    if plan.axis is None:
        return 0
    return lax.axis_index(plan.axis) * _local_vocab(plan, w)


def _local_vocab(plan: _Plan, w: Array) -> int:
    return int(w.shape[0] if plan.layout == "vd" else w.shape[1])


def _sharded_row_stats(
    plan: _Plan, h: _Hyper, z: Array, y: Array, cw: Array | None, offset: Array | int
) -> tuple[Stats, Array, Array, Array | None]:
    """:func:`_row_stats` of rows whose classes are split over ``plan.axis``: this device
    holds the columns ``offset : offset + V_d``; the whole row's maximum (``pmax``) and sums
    (``psum``) of a few numbers per row."""
    axis = plan.axis
    u, th = _transform(plan, h, z)
    top = [jnp.max(u, axis=1)] + ([jnp.max(z, axis=1).astype(u.dtype)] if plan.hits else [])
    top = _pmax(jnp.stack(top), axis)
    m = jnp.where(jnp.isfinite(top[0]), top[0], 0.0)
    e = jnp.exp(u - m[:, None])
    local = y - offset
    here = (local >= 0) & (local < u.shape[1])
    idx = jnp.clip(local, 0, u.shape[1] - 1)[:, None]
    columns = [jnp.sum(e, axis=1), jnp.where(here, jnp.take_along_axis(u, idx, axis=1)[:, 0], 0)]
    if plan.smooth:
        columns.append(jnp.sum(u, axis=1) if cw is None else u @ cw.astype(u.dtype))
    if plan.entropy:  # sum e^(u - m) (u - m), 0 where e = 0
        columns.append(jnp.sum(e * jnp.where(e > 0, u - m[:, None], 0.0), axis=1))
    if plan.hits:  # argmax's rule: the lowest class index among the row's maxima
        columns.append(_first_max(z.astype(u.dtype), top[1], here, local, y >= offset + z.shape[1]))
    sums = _psum(jnp.stack(columns), axis)
    total = sums[0]
    lse = m + jnp.log(total)
    p = e / jnp.where(total > 0, total, 1.0)[:, None]
    k = 2
    sm = sums[k] if plan.smooth else None
    k += plan.smooth
    # (log total, not lse - m: that difference keeps none of its digits when m is large)
    ent = _at_least_0(jnp.log(total) - sums[k] / total) if plan.entropy else None
    k += plan.entropy
    hit = sums[k] > 0 if plan.hits else None
    return Stats(lse, sums[1], sm, ent, hit), p, u, th


def _at_least_0(ent: Array) -> Array:
    """An entropy rounded a hair below 0 (a near one-hot row: XLA may form ``u`` for the max
    and for the sums with different roundings) as 0."""
    return jnp.where(ent < 0, jnp.zeros_like(ent), ent)


def _first_max(z: Array, top: Array, here: Array, local: Array, below: Array) -> Array:
    """This device's part of whether each row's label is its argmax over the whole
    vocabulary (the lowest class index among the maxima, as ``argmax``), ``top`` the row's
    maximum: 1 where this device holds the label and its first index attaining ``top`` is the
    label's (``local``), minus 1 where it attains ``top`` and lies ``below`` the label's
    device (lower classes). Summed over the axis, a row is a hit where the sum is positive."""
    attains = jnp.max(z, axis=1) == top
    first = jnp.argmax(z, axis=1)  # the first local index of the local maximum
    hit = here & attains & (first == local)
    return hit.astype(z.dtype) - (below & attains).astype(z.dtype)


def _row_stats(
    plan: _Plan, h: _Hyper, z: Array, y: Array, cw: Array | None, offset: Array | int = 0
) -> tuple[Stats, Array, Array, Array | None]:
    """A chunk's statistics, its probabilities, ``u`` and the softcap's ``tanh``."""
    if plan.axis is not None:
        return _sharded_row_stats(plan, h, z, y, cw, offset)
    u, th = _transform(plan, h, z)
    m = jnp.max(u, axis=1)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    e = jnp.exp(u - m[:, None])
    total = jnp.sum(e, axis=1)
    lse = m + jnp.log(total)
    p = e / jnp.where(total > 0, total, 1.0)[:, None]
    uy = jnp.take_along_axis(u, y[:, None], axis=1)[:, 0]
    sm = None
    if plan.smooth:
        sm = jnp.sum(u, axis=1) if cw is None else u @ cw.astype(u.dtype)
    ent = None
    if plan.entropy:  # H = log(total) - sum p (u - m), with p (u - m) = 0 where p = 0: exact
        q = jnp.where(p > 0, u - m[:, None], 0.0)  # for any shift m (lse - m would round)
        ent = _at_least_0(jnp.log(total) - jnp.sum(p * q, axis=1))
    hit = jnp.argmax(z, axis=1) == y if plan.hits else None
    return Stats(lse, uy, sm, ent, hit), p, u, th


def _logit_grad(
    plan: _Plan,
    h: _Hyper,
    stats: Stats,
    p: Array,
    u: Array,
    th: Array | None,
    y: Array,
    cw: Array | None,
    c: Coefficients,
    offset: Array | int = 0,
) -> Array:
    r"""The gradient with respect to a chunk's raw logits, for per-row coefficients ``c`` of
    the statistics: :math:`c_{\mathrm{lse}} p + c_y e_y + c_s w - c_H p \odot (\log p + H)`,
    times :math:`1 - \tanh^2` with softcap and :math:`1/T`."""
    g = c.lse[:, None] * p
    if c.ent is not None and stats.ent is not None:
        plogp = jnp.where(p > 0, p * (u - stats.lse[:, None]), 0.0)
        g = g - c.ent[:, None] * (plogp + p * stats.ent[:, None])
    classes = jnp.arange(u.shape[1])[None, :] + offset
    g = g + jnp.where(classes == y[:, None], c.uy[:, None], 0.0)
    if c.sm is not None:
        g = g + c.sm[:, None] * (1.0 if cw is None else cw.astype(g.dtype)[None, :])
    if th is not None:
        g = g * (1 - th * th)
    return g / h.temperature.astype(g.dtype)


def _chunks(plan: _Plan, *rows: Array) -> tuple[Array, ...]:
    """Rows padded to whole chunks and split: ``(chunks, chunk, ...)``."""
    n = rows[0].shape[0]
    k = -(-n // plan.chunk)
    pad = k * plan.chunk - n
    out = []
    for r in rows:
        r = jnp.pad(r, [(0, pad)] + [(0, 0)] * (r.ndim - 1))
        out.append(r.reshape(k, plan.chunk, *r.shape[1:]))
    return tuple(out)


def _unchunk(n: int, a: Array | None) -> Array | None:
    # (the leading size given: -1 cannot be inferred for a chunk of no features)
    return None if a is None else a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])[:n]


CoefFn = Callable[[Stats, tuple[Array, ...]], Coefficients]


def _half_scale(g: Array) -> Array:
    """A power of two that brings a chunk's logit gradient ``g`` (float32) to magnitude ~1
    before it is rounded to float16 for the input's product: a mean's ``1 / N`` (and small
    probabilities) would otherwise fall below float16's range and round to 0, which no loss
    scaling (applied later, to the product) recovers. 1 where ``g`` is 0 or not finite."""
    return power_of_two_scale(jnp, jnp.max(jnp.abs(g)))


def _sweep(
    plan: _Plan,
    h: _Hyper,
    x: Array,
    w: Array,
    b: Array | None,
    y: Array,
    cw: Array | None,
    keep: Array,
    per_row: tuple[Array, ...] = (),
    coefficients: CoefFn | None = None,
) -> tuple[Stats, tuple[Array, Array, Array | None] | None]:
    """One pass over the chunks: each row's statistics, and with ``coefficients`` (a function
    of a chunk's statistics and its slice of ``per_row``) the gradients of ``x``, ``w`` and
    ``b`` in the accumulation dtype, the weight's and bias's summed across the chunks. Rows
    not in ``keep`` (ignored tokens) get no gradient and add nothing, even where their hidden
    states are not finite."""
    n = x.shape[0]
    offset = _offset(plan, w)
    xs, ys, ks, *rs = _chunks(plan, x, y, keep, *per_row)
    acc = _acc(x.dtype)

    if coefficients is None:

        def stats_only(args: tuple[Array, ...]) -> Stats:
            xc, yc = args
            return _row_stats(plan, h, _logits(plan, xc, w, b), yc, cw, offset)[0]

        chunked = lax.map(stats_only, (xs, ys))  # keep: the caller masks the outputs
        return Stats(*(_unchunk(n, s) for s in chunked)), None

    def step(carry: tuple[Array, Array | None], args: tuple[Array, ...]) -> Any:
        dw, db = carry
        xc, yc, kc, *rc = args
        stats, p, u, th = _row_stats(plan, h, _logits(plan, xc, w, b), yc, cw, offset)
        c = coefficients(stats, tuple(rc))
        g = _logit_grad(plan, h, stats, p, u, th, yc, cw, c, offset)
        g = jnp.where(kc[:, None], g, 0.0)
        xk = jnp.where(kc[:, None], xc, 0).astype(acc)
        up = _half_scale(g) if w.dtype == jnp.float16 else None
        gx = g if w.dtype == acc else (g if up is None else g * up).astype(w.dtype)
        if plan.layout == "vd":
            dx = lax.dot_general(gx, w, (((1,), (0,)), ((), ())), preferred_element_type=acc)
            dw = dw + lax.dot_general(g, xk, (((0,), (0,)), ((), ())))
        else:
            dx = lax.dot_general(gx, w, (((1,), (1,)), ((), ())), preferred_element_type=acc)
            dw = dw + lax.dot_general(xk, g, (((0,), (0,)), ((), ())))
        if up is not None:
            dx = dx / up  # (a power of two: exact)
        if db is not None:
            db = db + jnp.sum(g, axis=0)
        return (dw, db), (stats, dx)

    # the accumulators vary over the mesh axes any of the step's inputs vary over
    axes = _varying(x, w, b, y, cw, keep, offset, *per_row, *h)
    zero_w = _vary(jnp.zeros(w.shape, acc), axes)
    zero_b = None if b is None else _vary(jnp.zeros(b.shape, acc), axes)
    (dw, db), (chunked, dxs) = lax.scan(step, (zero_w, zero_b), (xs, ys, ks, *rs))
    stats = Stats(*(_unchunk(n, s) for s in chunked))
    dx = _unchunk(n, dxs)
    if plan.axis is not None:  # each device's columns add to the input's gradient: once
        dx = _psum(dx, plan.axis)
    return stats, (dx, dw, db)


# ----------------------------------------------------------------------- per-token statistics


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _token_stats(
    plan: _Plan,
    h: _Hyper,
    x: Array,
    w: Array,
    b: Array | None,
    y: Array,
    cw: Array | None,
    keep: Array,
) -> Stats:
    """Each token's statistics; the backward pass recomputes each chunk."""
    return _sweep(plan, h, x, w, b, y, cw, keep)[0]


def _token_stats_fwd(
    plan: _Plan,
    h: _Hyper,
    x: Array,
    w: Array,
    b: Array | None,
    y: Array,
    cw: Array | None,
    keep: Array,
) -> tuple[Stats, tuple[Any, ...]]:
    stats = _sweep(plan, h, x, w, b, y, cw, keep)[0]
    return stats, (h, x, w, b, y, cw, keep)


def _token_stats_bwd(plan: _Plan, res: tuple[Any, ...], g: Stats) -> tuple[Any, ...]:
    h, x, w, b, y, cw, keep = res

    def coefficients(stats: Stats, rows: tuple[Array, ...]) -> Coefficients:
        g_lse, g_uy, g_sm, g_ent = rows
        return Coefficients(
            g_lse, g_uy, g_sm if plan.smooth else None, g_ent if plan.entropy else None
        )

    def cotangent(a: Array | None) -> Array:
        return jnp.zeros(x.shape[:1], _acc(x.dtype)) if a is None else a.astype(_acc(x.dtype))

    rows = (cotangent(g.lse), cotangent(g.uy), cotangent(g.sm), cotangent(g.ent))
    _, grads = _sweep(plan, h, x, w, b, y, cw, keep, rows, coefficients)
    assert grads is not None
    return _zero_hyper(h), *_cast_grads(grads, x, w, b), None, None, None


_token_stats.defvjp(_token_stats_fwd, _token_stats_bwd)


def _zero_hyper(h: _Hyper) -> _Hyper:
    """The hyperparameters' cotangent: they get no gradient (``stop_gradient`` at entry)."""
    return _Hyper(*(jnp.zeros_like(v) for v in h))


def _cast_grads(
    grads: tuple[Array, Array, Array | None], x: Array, w: Array, b: Array | None
) -> tuple[Array, Array, Array | None]:
    """Gradients accumulated in float32 (half precision) back to their inputs' dtypes, each
    summed over the mesh axes it varies over and its input does not (under ``check_vma=True``:
    a weight shared by the devices of a data axis gets the sum of their gradients, as the
    transpose of its implicit broadcast)."""

    def back(g: Array, a: Array) -> Array:
        extra = tuple(sorted(_varying(g) - _varying(a), key=str))
        return (_psum(g, extra) if extra else g).astype(a.dtype)

    db_out = None if grads[2] is None or b is None else back(grads[2], b)
    return back(grads[0], x), back(grads[1], w), db_out


# ----------------------------------------------------------------------- the reduced loss


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _reduced_loss(
    plan: _Plan,
    h: _Hyper,
    x: Array,
    w: Array,
    b: Array | None,
    y: Array,
    cw: Array | None,
    keep: Array,
    scales: tuple[Array, Array, Array | None],
) -> Array:
    """``sum(a_ce * ce + a_z * zl)`` over the kept tokens; with a gradient to come, the
    forward pass forms the gradients and the backward pass only scales them."""
    stats = _sweep(plan, h, x, w, b, y, cw, keep)[0]
    return _total(plan, h, stats, cw, w, keep, scales)


def _total(
    plan: _Plan,
    h: _Hyper,
    stats: Stats,
    cw: Array | None,
    w: Array,
    keep: Array,
    scales: tuple[Array, Array, Array | None],
) -> Array:
    a_ce, a_z, wy = scales
    v = _vocab(plan, w)
    ce, zl = row_terms(stats, wy, _w_total(plan, cw, v), v, h.eps if plan.smooth else 0.0, h.z_loss)
    total = jnp.sum(jnp.where(keep, a_ce * ce, 0.0))
    return total if zl is None else total + jnp.sum(jnp.where(keep, a_z * zl, 0.0))


def _reduced_loss_fwd(
    plan: _Plan,
    h: _Hyper,
    x: Array,
    w: Array,
    b: Array | None,
    y: Array,
    cw: Array | None,
    keep: Array,
    scales: tuple[Array, Array, Array | None],
) -> tuple[Array, tuple[Any, ...]]:
    a_ce, a_z, wy = scales
    v = _vocab(plan, w)
    w_total = _w_total(plan, cw, v)
    eps = h.eps if plan.smooth else 0.0

    def coefficients(stats: Stats, rows: tuple[Array, ...]) -> Coefficients:
        ac, az, *wyc = rows
        return loss_coefficients(
            ac, az, stats.lse, wyc[0] if wyc else None, w_total, v, eps, h.z_loss
        )

    per_row = (a_ce, a_z) if wy is None else (a_ce, a_z, wy)
    stats, grads = _sweep(plan, h, x, w, b, y, cw, keep, per_row, coefficients)
    inputs = (x, w, b)
    return _total(plan, h, stats, cw, w, keep, scales), (h, grads, inputs, scales)


def _reduced_loss_bwd(plan: _Plan, res: tuple[Any, ...], g: Array) -> tuple[Any, ...]:
    h, (dx, dw, db), (x, w, b), scales = res
    scale = g.astype(dx.dtype)  # in the accumulation dtype, then cast: loss scaling works
    scaled = (scale * dx, scale * dw, None if db is None else scale * db)
    zero_scales = tuple(None if s is None else jnp.zeros_like(s) for s in scales)
    return (_zero_hyper(h), *_cast_grads(scaled, x, w, b), None, None, None, zero_scales)


_reduced_loss.defvjp(_reduced_loss_fwd, _reduced_loss_bwd)


# ----------------------------------------------------------------------- the public function


def _vocab(plan: _Plan, w: Array) -> int:
    """The number of classes of the whole vocabulary (over the mesh axis, if split)."""
    local = _local_vocab(plan, w)
    return local if plan.axis is None else local * int(lax.axis_size(plan.axis))


def _w_total(plan: _Plan, cw: Array | None, v: int) -> float | Array:
    """The sum of the class weights of the whole vocabulary (``V`` without weights)."""
    if cw is None:
        return float(v)
    total = jnp.sum(cw)
    return total if plan.axis is None else _psum(total, plan.axis)


def _as_array(a: Any, name: str) -> Array:
    """``a`` as a JAX array; what is not one (None, text, a ragged list) is a ``TypeError``
    naming ``name`` (JAX's own errors name no argument)."""
    if isinstance(a, jax.Array):
        return a
    if a is None or isinstance(a, str | bytes | dict):
        raise TypeError(f"{name} must be an array; got {type(a).__name__}")
    a = plain_values(a, name)  # a masked array's values where none is masked, as the core
    try:
        return jnp.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__}") from exc


def _floating(a: Any, name: str) -> Array:
    a = _as_array(a, name)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point array, got {a.dtype}")
    return a


def _nan_if(flag: Array, loss: Array) -> Array:
    """``loss``, NaN where ``flag`` (a label out of range, a bad traced hyperparameter), with
    the gradient it has (of the rows that count), as the dense ``cross_entropy`` gives them:
    a ``where`` would give a NaN loss a zero gradient."""
    return loss + lax.stop_gradient(jnp.where(flag, jnp.nan, 0.0).astype(loss.dtype))


def _hyper(value: Any, name: str, bad: list[Array], **bounds: Any) -> Array:
    """A hyperparameter checked as everywhere in the library (a number, or a 0-d array whose
    value is checked where it can be read, and made NaN where it cannot and is not finite or
    out of ``bounds``), as an array that gets no gradient; appends to ``bad`` whether it is
    NaN (so that every output is NaN, not only those it reaches)."""
    a = lax.stop_gradient(jnp.asarray(check_hyper(value, name, **bounds)))
    bad.append(jnp.isnan(a))
    return a


def _explicit(*values: Any) -> bool:
    """Whether an array among ``values`` lives on a mesh with an ``Explicit`` axis (the
    default of ``jax.make_mesh`` in recent JAX), whose sharding-in-types the chunked program
    (a scan over row chunks, a sum over rows) cannot satisfy as it is written."""
    explicit = getattr(getattr(jax.sharding, "AxisType", None), "Explicit", None)
    for value in values:
        if explicit is None or not isinstance(value, jax.Array):
            continue
        sharding = getattr(jax.typeof(value), "sharding", None)
        types = getattr(getattr(sharding, "mesh", None), "axis_types", ())
        if explicit in types:
            return True
    return False


def _in_auto_axes(x: Array, w: Array, labels: Array, given: dict[str, Any]) -> Any:
    """:func:`linear_cross_entropy` of inputs on a mesh with ``Explicit`` axes: computed in
    ``Auto`` mode (``jax.sharding.auto_axes``, as on a mesh of ``Auto`` axes), its per-row
    outputs sharded as ``x``'s rows and its reduced ones replicated."""
    arrays = {k: v for k, v in given.items() if isinstance(v, jax.Array)}
    options = {k: v for k, v in given.items() if k not in arrays}

    def inner(
        x: Array, w: Array, labels: Array, arrays: dict[str, Array], validate: Any = None
    ) -> Any:
        kw = options if validate is None else {**options, "validate": validate}
        return linear_cross_entropy(x, w, labels, **arrays, **kw)

    x, w, labels = jnp.asarray(x), jnp.asarray(w), jnp.asarray(labels)  # (lists too)
    struct: Any = jax.ShapeDtypeStruct  # (untyped)
    plain = jax.tree.map(lambda a: struct(a.shape, a.dtype), (x, w, labels, arrays))
    shapes = jax.eval_shape(partial(inner, validate=False), *plain)  # (no values to check)
    sharding = jax.typeof(x).sharding
    spec = tuple(getattr(sharding, "spec", ()))
    rows = (spec + (None,) * x.ndim)[: x.ndim - 1]
    P: Any = jax.sharding.PartitionSpec
    out = jax.tree.map(lambda a: P(*rows[: a.ndim]) if a.ndim else P(), shapes)
    auto = jax.sharding.auto_axes(inner, out_sharding=out)
    if jax.sharding.get_abstract_mesh().empty:  # arrays of a mesh not set (jax.set_mesh)
        mesh = next(
            jax.typeof(a).sharding.mesh for a in (x, w, labels, *arrays.values()) if _explicit(a)
        )
        with jax.sharding.use_abstract_mesh(getattr(mesh, "abstract_mesh", mesh)):
            return auto(x, w, labels, arrays)
    return auto(x, w, labels, arrays)


def linear_cross_entropy(
    x: Array,
    w: Array,
    labels: Array,
    *,
    bias: Array | None = None,
    weight: Array | None = None,
    ignore_index: int = -100,
    where: Array | None = None,
    reduction: str = "mean",
    label_smoothing: float | Array = 0.0,
    z_loss: float | Array = 0.0,
    softcap: float | Array | None = None,
    temperature: float | Array = 1.0,
    weight_layout: str = "vd",
    return_aux: bool | Iterable[str] = False,
    chunk_size: int | None = None,
    empty_mean: float = math.nan,
    axis_name: str | None = None,
    validate: Validate | None = None,
) -> Any:
    r"""Cross-entropy of ``x @ w.T + bias`` against class indices for JAX, a chunk of tokens
    at a time, so the ``[N, V]`` logits never exist at once.

    .. math::

        u_n = \operatorname{cap} \tanh\bigl((W x_n + b) / (T \operatorname{cap})\bigr)

    .. math::

        \ell_n = w_{y_n} (1 - \varepsilon)(\mathrm{lse}_n - u_{n,y_n})
            + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse}_n - u_{n,c})
            + \lambda\, \mathrm{lse}_n^2

    with :math:`\mathrm{lse}_n = \log \sum_c e^{u_{n,c}}`, :math:`T` the ``temperature``,
    :math:`\varepsilon` the ``label_smoothing``, :math:`\lambda` the ``z_loss`` and :math:`w`
    the class weights (``weight``; 1 without). Equal to
    ``crossentropy.cross_entropy((x @ w.T + bias) / temperature, labels, axis=-1, ...)`` with the
    same keywords (PyTorch's conventions: ``"mean"`` is :math:`\sum_n \ell_n / \sum_n w_{y_n}`
    over the tokens that count, the z-loss term divided by their number), and to
    :func:`crossentropy.fused.linear_cross_entropy` for torch (in half precision up to the
    logits' rounding: the torch op rounds them to the inputs' dtype as ``F.linear`` does, this
    one keeps the float32 of XLA's accumulation, so bfloat16 log-probabilities of the two may
    differ by a few hundredths).

    A ``jax.custom_vjp`` over ``lax.scan``: the forward pass keeps each token's statistics
    (log-sum-exp, target logit, and what the options need), never the logits. With
    ``"mean"`` or ``"sum"`` and no per-token outputs, differentiating forms the gradients in
    the forward sweep (6·N·D·V FLOPs, as the dense program) and the backward pass only scales
    them; otherwise the backward pass recomputes each chunk (8·N·D·V). Works under ``jit``,
    ``grad``, ``value_and_grad``, ``vmap`` and ``checkpoint``; not under forward-mode
    differentiation (``jvp``, ``jacfwd``), which ``custom_vjp`` does not support. The
    hyperparameters may be traced; they and the class weights get no gradient. Half-precision
    inputs are multiplied in their dtype with float32 accumulation; the softmax, the loss and
    the gradients accumulate in float32 (the gradients are scaled by the loss's cotangent
    before they are rounded to the inputs' dtype, so loss scaling works); the loss is returned
    in the input's dtype (as the torch op) and the per-token outputs in float32. Labels are
    checked where the validation policy can read them; a label out of range that cannot be
    checked (traced under ``jit``) gives NaN, its token's output NaN with ``"none"`` (the
    other tokens' gradients are kept, as ``cross_entropy`` on the logits gives them), and so
    does a traced hyperparameter out of its range (a temperature or softcap not above 0, a
    label smoothing outside [0, 1], a negative z-loss). Ignored tokens add nothing and get no
    gradient, even where their hidden states are not finite. Arrays sharded on a mesh of
    ``Explicit`` axes (``jax.make_mesh``'s default) are computed in ``Auto`` mode
    (``jax.sharding.auto_axes``): per-token outputs sharded as the tokens, reduced ones
    replicated.

    Parameters
    ----------
    x : Array
        Hidden states ``(..., D)``.
    w : Array
        The output projection, ``(V, D)`` (torch's layout) or ``(D, V)`` with
        ``weight_layout="dv"``.
    labels : Array
        Class indices of shape ``x.shape[:-1]``.
    bias : Array, optional
        ``(V,)``.
    weight : Array, optional
        Class weights ``(V,)``; they get no gradient.
    ignore_index : int, default -100
        Labels equal to it are left out.
    where : Array, optional
        Boolean mask of ``labels``' shape (optax's keyword): tokens where it is False are left
        out, as ignored ones.
    reduction : {"mean", "sum", "none"}, default "mean"
        As ``cross_entropy``; ``"none"`` gives the per-token losses (0 at ignored tokens).
    label_smoothing : float or Array, default 0.0
        :math:`\varepsilon` in [0, 1], PyTorch's smoothing (class-weighted with ``weight``).
    z_loss : float or Array, default 0.0
        :math:`\lambda`, PaLM's auxiliary :math:`\lambda\,\mathrm{lse}^2`.
    softcap : float or Array, optional
        Gemma 2's logit soft-capping, :math:`\operatorname{cap} \tanh(z / \operatorname{cap})`.
    temperature : float or Array, default 1.0
        :math:`T > 0`: the logits are divided by it before everything else.
    weight_layout : {"vd", "dv"}, default "vd"
        ``w``'s layout: ``(V, D)`` as torch's ``linear`` or ``(D, V)`` as a Flax ``Dense``
        kernel.
    return_aux : bool or collection of str, default False
        Also return per-token outputs, in a ``LinearCrossEntropyOutput``: ``"logp"`` (the
        target's log-probability :math:`u_y - \mathrm{lse}`), ``"entropy"`` (of the softmax),
        ``"lse"`` and ``"correct"`` (the number of counted tokens whose logits' argmax is the
        label); ``True`` for all. Ignored tokens give 0 and no gradient; the log-probability,
        entropy and log-sum-exp carry exact gradients.
    chunk_size : int, optional
        Tokens per chunk (default: about 16 M logits per chunk, and at least 256 tokens).
    empty_mean : float, default nan
        Value of a mean over zero counted tokens, and of a weighted mean over counted
        tokens whose class weights sum to 0 (the z-loss keeps its mean over them); NaN
        gives PyTorch's 0 / 0.
    axis_name : str, optional
        Vocabulary parallelism inside ``shard_map``: ``w`` (and ``bias``, ``weight``) are this
        device's equal share of the classes along the mesh axis of that name, in axis-index
        order, and ``x`` and ``labels`` are the same on every device of the axis. The devices
        exchange a few numbers per token (``pmax``, ``psum``), never logits, and the input's
        gradient is summed over the axis once; every device returns the whole vocabulary's
        loss, and ``"correct"`` follows argmax's rule over the whole vocabulary (the lowest
        class index among tied maxima). With ``shard_map``'s ``check_vma=True`` (its
        default) the gradients are right whether taken inside the ``shard_map``'d function
        or outside it, and the mesh may have other axes (tokens split over a data axis: the
        weight's and bias's gradients are summed over it), and a ``w`` the ``in_specs``
        replicate over the axis instead of splitting is a ``ValueError``. With
        ``check_vma=False`` only a gradient taken inside ``shard_map`` is right:
        ``jax.grad`` of the ``shard_map``'d loss gives the weight's and bias's gradients
        divided by the axis size, and the op cannot detect it (nor a replicated ``w``).
    validate : {None, "auto", True, False}
        When labels are checked (None: the mode in force; see
        :func:`crossentropy.validation`): only where their values can be read (not under
        ``jit``), as the torch op.

    Returns
    -------
    Array or LinearCrossEntropyOutput
        The loss; with ``return_aux``, the loss and the per-token outputs.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from crossentropy.fused.jax import linear_cross_entropy
    >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> w = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> round(float(linear_cross_entropy(x, w, jnp.array([1, 2]))), 4)
    1.1429
    >>> out = linear_cross_entropy(x, w, jnp.array([1, 2]), return_aux=("logp", "correct"))
    >>> [round(v, 4) for v in out.logp.tolist()], int(out.correct)
    ([-2.1429, -0.1429], 1)
    """
    given = {k: v for k, v in locals().items() if k not in ("x", "w", "labels")}
    if axis_name is None and _explicit(x, w, labels, *given.values()):
        return _in_auto_axes(x, w, labels, given)
    check_choice(reduction, "reduction", _REDUCTIONS)
    check_choice(weight_layout, "weight_layout", _LAYOUTS)
    if axis_name is not None and not (
        isinstance(axis_name, str)
        or (isinstance(axis_name, tuple) and all(isinstance(a, str) for a in axis_name))
    ):
        raise TypeError(
            f"axis_name must be a mesh axis's name, or a tuple of them; got {axis_name!r}"
        )
    ignore_index = check_ignore_index(ignore_index)
    empty_mean = check_empty_mean(empty_mean)
    aux = aux_names(return_aux)
    x, w = _floating(x, "x"), _floating(w, "w")
    labels_in = labels
    labels = _as_array(labels, "labels")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D ((V, D) or (D, V)); got shape {tuple(w.shape)}")
    v, d = (w.shape[0], w.shape[1]) if weight_layout == "vd" else (w.shape[1], w.shape[0])
    if x.ndim < 1 or x.shape[-1] != d:
        raise ValueError(
            f"x's last axis must be D = {d} (w's shape {tuple(w.shape)} with "
            f"weight_layout={weight_layout!r}); got x of shape {tuple(x.shape)}"
        )
    if labels.shape != x.shape[:-1]:
        raise ValueError(
            f"labels must have x's shape without its last axis, {tuple(x.shape[:-1])}; "
            f"got {tuple(labels.shape)}"
        )
    if bias is not None:
        bias = _floating(bias, "bias")
        if bias.shape != (v,):
            raise ValueError(f"bias must have shape ({v},); got {tuple(bias.shape)}")
    if weight is not None:
        weight = _floating(weight, "weight")
        if weight.shape != (v,):
            raise ValueError(f"weight must have shape ({v},); got {tuple(weight.shape)}")
    if where is not None:
        where = jnp.asarray(where)
        if where.dtype != jnp.bool_:  # as cross_entropy's where
            raise TypeError(f"where must be a boolean mask; got dtype {where.dtype}")
        if where.shape != labels.shape:
            raise ValueError(
                f"where must be a boolean array of labels' shape {tuple(labels.shape)}; got "
                f"shape {tuple(where.shape)}"
            )
    if v == 0:
        raise ValueError("w has no classes (V = 0)")
    v_all = v  # the whole vocabulary
    if axis_name is not None:
        try:
            v_all = v * int(lax.axis_size(axis_name))
        except NameError:  # JAX's "unbound axis name"
            raise ValueError(
                f"axis_name {axis_name!r} is not an axis of an enclosing shard_map (call the op "
                "inside shard_map over a mesh with that axis, or without axis_name)"
            ) from None
        # with check_vma=True (where the axis index is typed as varying): a weight that does
        # not vary over the axis is every device's copy of the same rows, not its own rows
        if axis_name in _varying(lax.axis_index(axis_name)) and axis_name not in _varying(w):
            raise ValueError(
                f"w: with axis_name {axis_name!r} each device holds its own rows of the "
                f"vocabulary, but w is the same on every device along {axis_name!r} (its "
                f"shard_map in_specs replicate it); split its vocabulary axis over {axis_name!r}"
            )
    if chunk_size is not None:  # any integer, NumPy's too, as the torch op takes it
        chunk_size = check_int(chunk_size, "chunk_size")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    mode = None if validate is None else check_validate(validate)
    mask_readable = where is None or reads(mode, where)
    if reads(mode, labels_in) and mask_readable:  # as the validation policy allows
        lab = np.asarray(labels_in)  # the labels as given (before any cast to int32)
        bad = (lab != ignore_index) & ((lab < 0) | (lab >= v_all))
        if where is not None:
            bad = bad & np.asarray(where)
        if bad.any():  # named as the torch op names it: at its index in the labels' shape
            first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
            raise ValueError(
                f"labels hold label {int(lab[first])} at index {first}; class labels must lie "
                f"in [0, {v_all}) or equal ignore_index={ignore_index}"
            )

    outside: list[Array] = []  # a traced hyperparameter out of range: NaN, as for labels
    h = _Hyper(
        _hyper(temperature, "temperature", outside, low=0.0, low_open=True),
        _hyper(1.0 if softcap is None else softcap, "softcap", outside, low=0.0, low_open=True),
        _hyper(label_smoothing, "label_smoothing", outside, low=0.0, high=1.0),
        _hyper(z_loss, "z_loss", outside, low=0.0),
    )
    symbolic = [d for d in (*x.shape, *w.shape, *labels.shape) if not isinstance(d, int)]
    if symbolic:  # (jax.export's shape polymorphism: the chunks are planned from the sizes)
        raise TypeError(
            f"linear_cross_entropy needs concrete sizes to plan its chunks; got the symbolic "
            f"dimension {symbolic[0]} (export it for each token count, not with a symbolic one)"
        )
    n = math.prod(labels.shape)
    chunk = chunk_size or default_chunk(v, min_rows=SMALL_CHUNK_ROWS)
    chunk = -(-n // max(1, -(-n // chunk))) if n else 1  # as even as the chunks can be
    plan = _Plan(
        chunk=chunk,
        layout=weight_layout,
        cap=softcap is not None,
        smooth=nonzero(label_smoothing),
        entropy="entropy" in aux,
        hits="correct" in aux,
        axis=axis_name,
    )
    # one compiled program per plan and shapes, called eagerly as under an outer jit (eager
    # calls would otherwise compile the sweep's scan again at every call)
    return _compute(
        x,
        w,
        labels,
        bias,
        weight,
        where,
        h,
        jnp.any(jnp.stack(outside)),
        jnp.asarray(float(empty_mean)),  # a value, not part of the program (NaN != NaN)
        plan=plan,
        reduction=reduction,
        aux=aux,
        ignore_index=ignore_index,
        v_all=v_all,
    )


@partial(jax.jit, static_argnames=("plan", "reduction", "aux", "ignore_index", "v_all"))
def _compute(
    x: Array,
    w: Array,
    labels: Array,
    bias: Array | None,
    weight: Array | None,
    where: Array | None,
    h: _Hyper,
    bad_h: Array,
    empty_mean: Array,
    *,
    plan: _Plan,
    reduction: str,
    aux: tuple[str, ...],
    ignore_index: int,
    v_all: int,
) -> Any:
    """:func:`linear_cross_entropy` after its checks: the sweep and the reductions."""
    axis_name = plan.axis
    v = _local_vocab(plan, w)  # this device's classes
    d = x.shape[-1]
    acc = _acc(x.dtype)
    h = _Hyper(*(a.astype(acc) for a in h))
    shape = labels.shape
    n = math.prod(shape)
    xf = x.reshape(n, d)
    yf = labels.reshape(n)
    if np.iinfo(yf.dtype).bits < 32:  # (int8, uint16, ...: in their own type V and
        yf = yf.astype(jnp.int32)  # ignore_index would wrap around)
    info = np.iinfo(yf.dtype)
    # an ignore_index no label of this type can hold ignores none
    fits = int(info.min) <= ignore_index <= int(info.max)
    valid = yf != ignore_index if fits else jnp.ones(n, dtype=bool)
    if where is not None:
        valid = valid & where.reshape(-1)
    # an unchecked label out of range (traced): NaN, as everywhere in the library
    out_of_range = valid & ((yf < 0) | (yf >= v_all) if v_all <= int(info.max) else (yf < 0))
    keep = valid & ~out_of_range
    y_safe = jnp.where(keep, yf, 0).astype(jnp.int32)
    cw = None if weight is None else lax.stop_gradient(weight.astype(acc))  # no gradient
    wy = None
    if cw is not None and axis_name is None:
        wy = jnp.where(keep, cw[y_safe], 0.0)
    elif cw is not None:  # the target's weight, from the device that holds its class
        local = y_safe - lax.axis_index(axis_name) * v
        here = keep & (local >= 0) & (local < v)
        wy = _psum(jnp.where(here, cw[jnp.clip(local, 0, v - 1)], 0.0), axis_name)
    vf = valid.astype(acc)
    if reduction == "mean":
        den = jnp.sum(vf if wy is None else wy)
        count = jnp.sum(vf)
        # counted rows of class weight 0: the weighted mean is empty_mean (factor 0, no
        # gradient; the z-loss keeps its mean), or 0 / 0 with empty_mean NaN, as PyTorch
        weightless = (den == 0) & (count > 0)
        off = jnp.where(jnp.isnan(empty_mean), jnp.nan, 0.0).astype(acc)
        # (a negative sum of class weights divides as it is, as in PyTorch)
        a_ce = jnp.where(weightless, off, vf / jnp.where(den != 0, den, 1.0))
        a_z = vf / jnp.maximum(count, 1.0)
        fill = jnp.where(weightless, empty_mean.astype(acc), 0.0)
    else:
        a_ce = a_z = vf
    scales = (lax.stop_gradient(a_ce), lax.stop_gradient(a_z), wy)
    nan = jnp.asarray(jnp.nan, acc)

    if not aux and reduction != "none":
        loss = _reduced_loss(plan, h, xf, w, bias, y_safe, cw, keep, scales)
        if reduction == "mean":
            loss = jnp.where(jnp.sum(vf) > 0, loss + fill, empty_mean.astype(loss.dtype))
        return _nan_if(jnp.any(out_of_range) | bad_h, loss).astype(x.dtype)

    stats = _token_stats(plan, h, xf, w, bias, y_safe, cw, keep)
    eps = h.eps if plan.smooth else 0.0
    ce, zl = row_terms(stats, wy, _w_total(plan, cw, v_all), v_all, eps, h.z_loss)
    if reduction == "none":
        per_token = ce if zl is None else ce + zl
        loss = jnp.where(keep, per_token, jnp.where(out_of_range, nan, 0.0))
        loss = jnp.where(bad_h, nan, loss).reshape(shape)
    else:
        total = jnp.sum(jnp.where(keep, a_ce * ce, 0.0))
        if zl is not None:
            total = total + jnp.sum(jnp.where(keep, a_z * zl, 0.0))
        loss = total
        if reduction == "mean":
            loss = jnp.where(jnp.sum(vf) > 0, loss + fill, empty_mean.astype(loss.dtype))
        loss = _nan_if(jnp.any(out_of_range) | bad_h, loss)
    loss = loss.astype(x.dtype)
    if not aux:
        return loss

    def token(a: Array | None) -> Array | None:
        if a is None:
            return None
        a = jnp.where(keep, a, jnp.where(out_of_range, nan, 0.0))
        return jnp.where(bad_h, nan, a).reshape(shape)

    return LinearCrossEntropyOutput(
        loss,
        logp=token(stats.uy - stats.lse) if "logp" in aux else None,
        entropy=token(stats.ent) if "entropy" in aux else None,
        lse=token(stats.lse) if "lse" in aux else None,
        correct=jnp.sum(keep & stats.hit) if "correct" in aux else None,
    )
