r"""Vocabulary-parallel cross-entropy of logits sharded on the class axis (torch.distributed).

Each rank holds the logits of its slice of the vocabulary, ``[..., V_r]``; the loss of the whole
row needs only per-row numbers from the other ranks: the maximum (one all-reduce ``MAX``), then
the sum of exponentials, the target's logit (from the rank that holds it), its class weight and
the weighted logit sum for label smoothing (one all-reduce ``SUM``). The gradient of the local
logits needs nothing more (:math:`p = e^{u - \mathrm{lse}}` with the global log-sum-exp), so
the backward pass communicates nothing. The loss is composed from the row statistics as the
fused op composes it (``fused/_terms.py``), with its options and divisors.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any, NoReturn, cast

import array_api_compat.torch as xpt
import torch
import torch.distributed as dist
from torch import Tensor

from crossentropy._lib.policy import reads
from crossentropy.distributed._dtensor import check_group, holds_dtensor, tensor_parallel_shard
from crossentropy.fused._chunked import (
    FusedOptions,
    check_class_indices,
    check_inputs,
    check_items,
    check_parallel,
    product_inputs,
    row_scales,
)
from crossentropy.fused._ops import Grads
from crossentropy.fused._terms import (
    LinearCrossEntropyOutput,
    Stats,
    device_chunk,
    loss_coefficients,
    row_terms,
)
from crossentropy.losses.classification import index_targets

__all__ = ["sharded_linear_loss", "vocab_parallel_cross_entropy"]


# torch 2.13's names of the single-tensor collectives (the older names warn there)
_ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


def _collective(fn: Any, *args: Any, **kwargs: Any) -> None:
    """A collective of the vocabulary's ranks; its failure (a rank that stopped, or that did
    not call it within the group's timeout) is a ``RuntimeError`` that says so."""
    try:
        fn(*args, **kwargs)
    except RuntimeError as err:
        raise RuntimeError(
            f"the vocabulary-parallel cross-entropy's {fn.__name__} across the group's ranks "
            "failed: a rank may have stopped, or not made the same call within the group's "
            f"timeout ({err})"
        ) from err


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


class _Combined:
    """A chunk's statistics over the whole vocabulary, from this rank's shard ``u`` of the
    transformed logits: one all-reduce ``MAX`` (of ``u``, and of the raw logits for the argmax
    hits) and one ``SUM`` of a few numbers per row."""

    def __init__(
        self,
        u: Tensor,
        raw: Tensor | None,
        y: Tensor,
        start: int,
        group: Any,
        cw: Tensor | None,
        smooth: bool,
        entropy: bool,
    ) -> None:
        acc = u.dtype
        v_local = u.shape[-1]
        shape = u.shape[:-1]
        ninf = torch.full(shape, -math.inf, dtype=acc, device=u.device)
        maxes = [u.amax(dim=-1) if v_local else ninf]
        if raw is not None:
            maxes.append(raw.to(acc).amax(dim=-1) if v_local else ninf)
        top = torch.stack(maxes)
        _collective(dist.all_reduce, top, op=dist.ReduceOp.MAX, group=group)
        m = torch.where(torch.isfinite(top[0]), top[0], torch.zeros_like(top[0]))
        here, idx = _local_index(y, start, v_local)
        e = torch.exp(u - m[..., None])
        zero = torch.zeros(shape, dtype=acc, device=u.device)
        columns = [e.sum(dim=-1)]
        columns.append(
            torch.where(here, u.gather(-1, idx[..., None])[..., 0], 0.0) if v_local else zero
        )
        if cw is not None:
            columns.append(torch.where(here, cw[idx], 0.0) if v_local else zero)
        if smooth:
            columns.append(u.sum(dim=-1) if cw is None else u @ cw)
        if entropy:  # sum e^(u - m) (u - m), finite where u = -inf (e = 0 there)
            q = torch.where(e > 0, u - m[..., None], 0.0)
            columns.append((e * q).sum(dim=-1))
        if raw is not None:  # argmax's rule: the lowest class index among the maxima
            columns.append(_first_max(raw.to(acc), top[1], here, idx, y >= start + v_local))
        rows = torch.stack(columns, dim=-1)
        w_sum = torch.zeros((), dtype=acc, device=u.device) if cw is None else cw.sum()
        totals = torch.stack([torch.full_like(w_sum, float(v_local)), w_sum])
        flat = torch.cat([rows.reshape(-1), totals])
        _collective(dist.all_reduce, flat, op=dist.ReduceOp.SUM, group=group)
        rows = flat[:-2].reshape(rows.shape)
        self.v_total, self.w_total = flat[-2], flat[-1]
        self.lse = m + torch.log(rows[..., 0])
        self.uy = rows[..., 1]
        k = 2
        self.wy = rows[..., k] if cw is not None else None
        k += cw is not None
        self.sm = rows[..., k] if smooth else None
        k += smooth
        self.ent = (self.lse - m) - rows[..., k] / rows[..., 0] if entropy else None
        k += entropy
        self.hit = rows[..., k] > 0 if raw is not None else None
        self.here, self.idx = here, idx


def _first_max(raw: Tensor, top: Tensor, here: Tensor, idx: Tensor, below: Tensor) -> Tensor:
    """This rank's part of whether each row's target is its argmax over the whole vocabulary
    (the lowest class index among the maxima, as ``argmax``), ``top`` the row's maximum: 1
    where this rank holds the target and its first index attaining ``top`` is the target's,
    minus 1 where it attains ``top`` and lies ``below`` the target's rank (a lower class).
    Summed over the ranks, the row is a hit where the sum is positive."""
    if not raw.shape[-1]:
        return torch.zeros(raw.shape[:-1], dtype=raw.dtype, device=raw.device)
    attains = raw.amax(dim=-1) == top
    first = raw.argmax(dim=-1)  # the first local index of the local maximum
    return (here & attains & (first == idx)).to(raw.dtype) - (below & attains).to(raw.dtype)


def _local_index(y: Tensor, start: int, v_local: int) -> tuple[Tensor, Tensor]:
    """Whether each target is one of this rank's ``v_local`` classes from ``start``, and its
    index among them (clamped into range where it is not)."""
    here = (y >= start) & (y < start + v_local)
    return here, (y - start).clamp(0, max(v_local - 1, 0))


def _zero_grads(x: Tensor, w: Tensor, b: Tensor | None, wanted: Sequence[bool]) -> Grads:
    """Zeroed accumulators, in the accumulation dtype, of the gradients wanted (the input's
    is this rank's part, summed across the ranks afterwards)."""
    acc = _acc(x.dtype)

    def zeros(t: Tensor | None, on: bool) -> Tensor | None:
        return None if t is None or not on else torch.zeros(t.shape, dtype=acc, device=t.device)

    return Grads(zeros(x, wanted[0]), zeros(w, wanted[1]), zeros(b, wanted[2]))


def _add_chunk(grads: Grads, g: Tensor, xc: Tensor, w: Tensor, rows: slice) -> None:
    """A chunk's gradient of this rank's logits, ``g``, multiplied into the accumulators."""
    if grads.dx is not None:
        grads.dx[rows] = g @ w.to(g.dtype)
    if grads.dw is not None:
        grads.dw += g.T @ xc.to(g.dtype)
    if grads.db is not None:
        grads.db += g.sum(dim=0)


def _transform(z: Tensor, temperature: float, cap: float | None) -> tuple[Tensor, Tensor | None]:
    """``u`` (temperature, then softcap) in the accumulation dtype, and the softcap's tanh."""
    u = z.to(_acc(z.dtype))
    if temperature != 1.0:
        u = u / temperature
    if cap is None:
        return u, None
    th = torch.tanh(u / cap)
    return cap * th, th


def _local_grad(
    u: Tensor,
    th: Tensor | None,
    lse: Tensor,
    ent: Tensor | None,
    here: Tensor,
    idx: Tensor,
    cw: Tensor | None,
    temperature: float,
    c_lse: Tensor,
    c_uy: Tensor,
    c_sm: Tensor | None,
    c_ent: Tensor | None,
) -> Tensor:
    r"""The gradient of this rank's raw logits for per-row coefficients of the whole row's
    statistics: :math:`c_{\mathrm{lse}} p + c_y e_y + c_s w - c_H p \odot (\log p + H)` on
    the local columns (``p`` with the global log-sum-exp), times :math:`1 - \tanh^2` with
    softcap and :math:`1/T`."""
    log_p = u - lse[..., None]
    p = torch.exp(log_p)
    g = p * c_lse[..., None]
    if c_ent is not None and ent is not None:  # - c_H p (log p + H), 0 log 0 = 0
        plogp = torch.where(p > 0, p * log_p, 0.0)
        g = g - c_ent[..., None] * (plogp + p * ent[..., None])
    if u.shape[-1]:
        g = g.scatter_add(-1, idx[..., None], torch.where(here, c_uy, 0.0)[..., None])
    if c_sm is not None:
        g = g + c_sm[..., None] * (1.0 if cw is None else cw)
    if th is not None:
        g = g * (1 - th * th)
    return g / temperature if temperature != 1.0 else g


class _ShardedStats(torch.autograd.Function):
    """Per-row ``lse``, target logit and (with smoothing) weighted logit sum of the whole row,
    from the local shard of its logits; backward: the local shard's gradient, no traffic."""

    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        y: Tensor,
        start: int,
        group: Any,
        temperature: float,
        cap: float | None,
        smooth: bool,
        cw: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        u, th = _transform(logits, temperature, cap)
        cwa = None if cw is None else cw.to(u.dtype)
        s = _Combined(u, None, y, start, group, cwa, smooth, False)
        zero = torch.zeros_like(s.lse)
        wy = zero if s.wy is None else s.wy
        sm = zero if s.sm is None else s.sm
        ctx.save_for_backward(u, s.lse, s.idx, s.here, th, cwa)
        ctx.temperature, ctx.smooth = temperature, smooth
        ctx.mark_non_differentiable(wy, s.v_total, s.w_total)
        return s.lse, s.uy, sm, wy, s.v_total, s.w_total

    @staticmethod
    def backward(
        ctx: Any, g_lse: Tensor, g_uy: Tensor, g_sm: Tensor, *_: Any
    ) -> tuple[Tensor | None, ...]:
        u, lse, idx, here, th, cw = ctx.saved_tensors
        g = _local_grad(
            u,
            th,
            lse,
            None,
            here,
            idx,
            cw,
            ctx.temperature,
            g_lse,
            g_uy,
            g_sm if ctx.smooth else None,
            None,
        )
        return g, None, None, None, None, None, None, None


class _ShardedLinear(torch.autograd.Function):
    """Each token's statistics over the whole vocabulary from the hidden states and this
    rank's rows of the output projection, a chunk of tokens at a time (per chunk: one
    all-reduce ``MAX`` and one ``SUM`` of a few numbers per token), for ``"none"`` and the
    per-token outputs (a reduced loss alone takes :class:`_ShardedEarly`). The backward pass
    recomputes each chunk's logits, forms the local weight's (and bias's) gradient locally and
    all-reduces the input's gradient once (or leaves this rank's part of it to the sequence
    gather's reduce-scatter)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w: Tensor,
        b: Tensor | None,
        y: Tensor,
        cw: Tensor | None,
        group: Any,
        start: int,
        plan: tuple[int, float, float | None, bool, bool, bool, bool],
    ) -> tuple[Tensor, ...]:
        chunk, temperature, cap, smooth, entropy, hits, _ = plan
        parts: dict[str, list[Tensor]] = {k: [] for k in ("lse", "uy", "sm", "ent", "hit", "wy")}
        totals: tuple[Tensor, Tensor] | None = None
        for lo in range(0, max(x.shape[0], 1), chunk):
            z = torch.nn.functional.linear(x[lo : lo + chunk], w, b)
            u, _ = _transform(z, temperature, cap)
            cwa = None if cw is None else cw.to(u.dtype)
            s = _Combined(
                u, z if hits else None, y[lo : lo + chunk], start, group, cwa, smooth, entropy
            )
            zero = torch.zeros_like(s.lse)
            for key, value in (
                ("lse", s.lse),
                ("uy", s.uy),
                ("sm", s.sm),
                ("ent", s.ent),
                ("hit", s.hit),
                ("wy", s.wy),
            ):
                parts[key].append(zero if value is None else value.to(zero.dtype))
            totals = (s.v_total, s.w_total)
        assert totals is not None
        out = {k: torch.cat(v) for k, v in parts.items()}
        ctx.save_for_backward(x, w, b, y, cw, out["lse"], out["ent"])
        ctx.group, ctx.start, ctx.plan = group, start, plan
        ctx.mark_non_differentiable(out["hit"], out["wy"], *totals)
        return out["lse"], out["uy"], out["sm"], out["ent"], out["hit"], out["wy"], *totals

    @staticmethod
    def backward(
        ctx: Any, g_lse: Tensor, g_uy: Tensor, g_sm: Tensor, g_ent: Tensor, *_: Any
    ) -> tuple[Tensor | None, ...]:
        x, w, b, y, cw, lse, ent = ctx.saved_tensors
        chunk, temperature, cap, smooth, entropy, _, sum_dx = ctx.plan
        acc = _acc(x.dtype)
        grads = _zero_grads(x, w, b, (True, True, True))
        cwa = None if cw is None else cw.to(acc)
        for lo in range(0, x.shape[0], chunk):
            rows = slice(lo, lo + chunk)
            xc, yc = x[rows], y[rows]
            u, th = _transform(torch.nn.functional.linear(xc, w, b), temperature, cap)
            here, idx = _local_index(yc, ctx.start, w.shape[0])
            g = _local_grad(
                u,
                th,
                lse[rows],
                ent[rows] if entropy else None,
                here,
                idx,
                cwa,
                temperature,
                g_lse[rows],
                g_uy[rows],
                g_sm[rows] if smooth else None,
                g_ent[rows] if entropy else None,
            )
            _add_chunk(grads, g, xc, w, rows)
        dx, dw, db = grads.dx, grads.dw, grads.db
        assert dx is not None  # every gradient is formed here
        assert dw is not None
        if sum_dx:  # once; under sequence parallelism the token gather's backward sums it
            _collective(dist.all_reduce, dx, op=dist.ReduceOp.SUM, group=ctx.group)
        return (
            dx.to(x.dtype),
            dw.to(w.dtype),
            None if db is None else db.to(b.dtype),
            None,
            None,
            None,
            None,
            None,
        )


class _ShardedEarly(torch.autograd.Function):
    """The reduced loss (``"mean"``/``"sum"``, no per-token outputs) with its gradients formed
    in the forward sweep, as the single-device op forms them (6·N·D·V FLOPs, no recompute):
    once a chunk's statistics are combined across the ranks, the per-row coefficients of the
    loss are known, and this rank's shard of the logits' gradient is formed and multiplied into
    the input's (partial), the weight's and the bias's gradients. The backward pass all-reduces
    the input's gradient once and scales the three by the upstream gradient."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w: Tensor,
        b: Tensor | None,
        y: Tensor,
        cw: Tensor | None,
        wy: Tensor | None,
        a_ce: Tensor,
        a_z: Tensor,
        group: Any,
        start: int,
        plan: tuple[int, float, float | None, bool, bool, bool, bool],
        o: FusedOptions,
        valid: Tensor,
        num_items_in_batch: int | float | Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        chunk, temperature, cap, smooth, _, _, sum_dx = plan
        acc = _acc(x.dtype)
        eps, z_loss = float(o.label_smoothing), float(o.z_loss)
        grads = _zero_grads(x, w, b, ctx.needs_input_grad[:3])
        cwa = None if cw is None else cw.to(acc)
        parts: dict[str, list[Tensor]] = {"lse": [], "uy": [], "sm": []}
        totals: tuple[Tensor, Tensor] | None = None
        for lo in range(0, max(x.shape[0], 1), chunk):
            rows = slice(lo, lo + chunk)
            xc = x[rows]
            u, th = _transform(torch.nn.functional.linear(xc, w, b), temperature, cap)
            s = _Combined(u, None, y[rows], start, group, cwa, smooth, False)
            totals = (s.v_total, s.w_total)
            c = loss_coefficients(
                a_ce[rows].to(acc),
                a_z[rows].to(acc) if z_loss else None,
                s.lse,
                None if wy is None else wy[rows],
                s.v_total if cw is None else s.w_total,
                s.v_total,
                eps,
                z_loss,
            )
            g = _local_grad(
                u, th, s.lse, None, s.here, s.idx, cwa, temperature, c.lse, c.uy, c.sm, None
            )
            _add_chunk(grads, g, xc, w, rows)
            parts["lse"].append(s.lse)
            parts["uy"].append(s.uy)
            parts["sm"].append(s.sm if s.sm is not None else torch.zeros_like(s.lse))
        assert totals is not None
        stats = {k: torch.cat(v) for k, v in parts.items()}
        loss = _compose(
            o,
            valid,
            stats["lse"],
            stats["uy"],
            stats["sm"],
            None,
            None,
            wy,
            *totals,
            num_items_in_batch,
            (),
            target=y,
        )
        ctx.formed = (grads.dx, grads.dw, grads.db)
        ctx.group, ctx.sum_dx = group, sum_dx
        ctx.dtypes = (x.dtype, w.dtype, None if b is None else b.dtype)
        ctx.mark_non_differentiable(totals[0])
        return loss, totals[0]

    @staticmethod
    def backward(ctx: Any, g_out: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        if ctx.formed is None:
            raise RuntimeError(
                "the vocabulary-parallel loss's gradients were formed in its forward pass and "
                "used by the first backward; compute the loss again for another backward"
            )
        dx, dw, db = ctx.formed
        ctx.formed = None  # the buffers now belong to autograd
        if dx is not None and ctx.sum_dx:  # once; else the token gather's backward sums it
            _collective(dist.all_reduce, dx, op=dist.ReduceOp.SUM, group=ctx.group)
        grads = (
            None if g is None else g.mul_(g_out).to(dt)
            for g, dt in zip((dx, dw, db), ctx.dtypes, strict=True)
        )
        return (*grads, *(None,) * 11)


def _gather_ints(values: Sequence[int], group: Any, device: torch.device) -> list[list[int]]:
    """Every rank's ``values``, in rank order (one all-gather of a few integers per rank)."""
    ranks = dist.get_world_size(group)
    k = len(values)
    sizes = [torch.zeros(k, dtype=torch.int64, device=device) for _ in range(ranks)]
    mine = torch.tensor(list(values), dtype=torch.int64, device=device)
    _collective(dist.all_gather, sizes, mine, group=group)
    return [[int(v) for v in s.tolist()] for s in sizes]


#: What the fused op's ranks must agree on, as its errors name it (:func:`_layout`).
_FUSED_AGREED = (
    "reduction, ignore_index, label_smoothing, z_loss, softcap, temperature, return_aux, "
    "chunk_size, empty_mean, sequence_parallel, num_items_in_batch, whether a bias and class "
    "weights are given, the inputs' dtype, grad mode and which of input, linear_weight and "
    "linear_bias require grad"
)


@torch.compiler.disable(  # type: ignore[untyped-decorator, no-untyped-call]
    reason="the ranks agree on their sizes and options by an all-gather read on the host: "
    "compile a step with a process_group without fullgraph=True"
)
def agreement(dtype: torch.dtype, o: FusedOptions, *given: object) -> int:
    """A number the ranks compare to agree on the inputs' ``dtype``, the options ``o`` that
    shape the collectives and the numbers, and ``given`` (which optional inputs are given, a
    count as a Python number), by the CRC-32 of their ``repr``: the same in every process,
    where Python's ``hash`` of text is not."""
    parts: tuple[Any, ...] = (o.reduction, o.ignore_index, o.label_smoothing, o.z_loss)
    parts += (o.softcap, o.temperature, o.aux, o.chunk_size, o.empty_mean)
    return zlib.crc32(repr((str(dtype), parts, given)).encode())


def _layout(
    v_local: int,
    tokens: int,
    features: int,
    group: Any,
    device: torch.device,
    same_tokens: str | None,
    agree: int = 0,
    refused: Exception | None = None,
    agreed: str = _FUSED_AGREED,
) -> tuple[int, list[int], int]:
    """The global index of this rank's first class (the sizes of the lower ranks' shards),
    every rank's token count, in rank order, and the largest shard, from one all-gather of a
    few integers. A ``ValueError`` on every rank (each sees the same integers), instead of a
    collective of mismatched sizes or a rank left waiting for the others, where a rank
    ``refused`` its own arguments (that rank raises its own error), where the ranks disagree
    on ``agree`` (:func:`agreement` of the options and dtypes that shape the collectives and
    the numbers, named in the error by ``agreed``) or on the features' size (``input``'s last
    axis), and, with ``same_tokens`` (the arguments that hold the tokens, named in the error),
    on the token count."""
    sizes = _gather_ints((v_local, tokens, features, agree, refused is not None), group, device)
    if refused is not None:
        raise refused
    stopped = [r for r, s in enumerate(sizes) if s[4]]
    if stopped:
        raise ValueError(
            f"rank{'s' if len(stopped) > 1 else ''} {', '.join(map(str, stopped))} of the "
            "process group refused its arguments (the error is raised there); every rank "
            "stops with it"
        )
    if len({s[3] for s in sizes}) > 1:
        raise ValueError(
            f"every rank of the process group must pass the same options and dtypes ({agreed});"
            " ranks differ: "
            + " / ".join(
                ", ".join(str(r) for r, s in enumerate(sizes) if s[3] == value)
                for value in dict.fromkeys(s[3] for s in sizes)
            )
        )
    counts = [s[1] for s in sizes]
    if len({s[2] for s in sizes}) > 1:
        raise ValueError(
            "input: every rank of the process group must pass hidden states of the same size "
            f"(the last axis); got sizes {[s[2] for s in sizes]} in rank order"
        )
    if same_tokens is not None and len(set(counts)) > 1:
        raise ValueError(
            f"{same_tokens}: every rank of the process group must pass the same tokens; got "
            f"{counts} tokens in rank order"
        )
    start = sum(s[0] for s in sizes[: dist.get_rank(group)])
    return start, counts, max(s[0] for s in sizes)


def refuse_functorch(name: str) -> None:
    """A ``TypeError`` under a ``torch.func`` transform: the collectives run once per call, on
    every rank, which ``vmap`` or a functional ``grad`` would not keep."""
    if not torch.compiler.is_compiling() and torch._C._functorch.maybe_current_level() is not None:
        raise TypeError(
            f"{name} with a process group does not run under torch.func (grad, vmap, jacrev, "
            "jacfwd): take its gradients with .backward()"
        )


def relay_refusal(group: Any, refused: Exception, *tensors: object) -> NoReturn:
    """Tell the other ranks of ``group`` that this rank refused its arguments (they stop
    with a ``ValueError`` at their size all-gather, :func:`_layout`, instead of waiting for
    this rank), then raise ``refused``; the all-gather on the device of the first of
    ``tensors`` that is a tensor (the CPU if none is)."""
    if dist.is_available() and dist.is_initialized() and group is None:
        group = dist.group.WORLD  # (the default group of vocab_parallel_cross_entropy)
    if dist.is_available() and dist.is_initialized() and isinstance(group, dist.ProcessGroup):
        device = next((t.device for t in tensors if isinstance(t, Tensor)), torch.device("cpu"))
        _layout(0, 0, 0, group, device, None, 0, refused)
    raise refused


def _gather_rows(t: Tensor, counts: list[int], group: Any) -> Tensor:
    """The ranks' rows of ``t`` concatenated in rank order (``counts[r]`` rows from rank
    ``r``): one all-gather, padded to the largest count."""
    most = max(counts)
    padded = t.new_zeros((most, *t.shape[1:]))
    padded[: t.shape[0]] = t
    out = t.new_empty((len(counts) * most, *t.shape[1:]))
    _collective(_ALL_GATHER, out, padded, group=group)
    return torch.cat([out[r * most : r * most + c] for r, c in enumerate(counts)])


class _GatherTokens(torch.autograd.Function):
    """Sequence parallelism's gather of the hidden states: every rank's tokens, in rank order;
    backward: the gradients of the group's tokens summed over the ranks and scattered back,
    each rank receiving its own tokens' (one reduce-scatter)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, counts: list[int], group: Any) -> Tensor:
        ctx.counts, ctx.group = counts, group
        return _gather_rows(x, counts, group)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        counts, most = ctx.counts, max(ctx.counts)
        padded = g.new_zeros((len(counts) * most, *g.shape[1:]))
        lo = 0
        for r, c in enumerate(counts):
            padded[r * most : r * most + c] = g[lo : lo + c]
            lo += c
        mine = g.new_empty((most, *g.shape[1:]))
        _collective(_REDUCE_SCATTER, mine, padded, op=dist.ReduceOp.SUM, group=ctx.group)
        return mine[: counts[dist.get_rank(ctx.group)]], None, None


def _compose(
    o: FusedOptions,
    valid: Tensor,
    lse: Tensor,
    uy: Tensor,
    sm: Tensor,
    ent: Tensor | None,
    hit: Tensor | None,
    wy: Tensor | None,
    v_total: Tensor,
    w_total: Tensor,
    num_items_in_batch: int | float | Tensor | None,
    shape: tuple[int, ...],
    dtype: torch.dtype | None = None,
    *,
    target: Tensor,
) -> Any:
    """The loss (and the per-token outputs of ``o.aux``) from the whole rows' statistics, with
    the fused op's terms (``row_terms``) and divisors (``row_scales``); the loss in ``dtype``
    if given (the per-token outputs stay in the accumulation dtype).

    A counted ``target`` outside ``[0, v_total)`` (one the checks did not read: validation
    off, or not read under ``torch.compile`` or on a GPU) makes its token's loss and outputs
    NaN, and a reduced loss NaN (no shard holds its logit), as the JAX op and the generic
    losses give where labels are not read."""
    bad = valid & ((target < 0) | (target >= v_total))
    nan = torch.full((), math.nan, dtype=lse.dtype, device=lse.device)
    eps = float(o.label_smoothing)
    stats = Stats(lse, uy, sm if eps else None, None, None)
    ce, zl = row_terms(stats, wy, v_total if wy is None else w_total, v_total, eps, o.z_loss)
    a_ce, a_z, mean, fill = row_scales(valid, wy, o, num_items_in_batch, None)
    zero = torch.zeros_like(ce)
    if o.reduction == "none":
        per_token = ce if zl is None else ce + zl
        loss = torch.where(bad, nan, torch.where(valid, per_token, zero)).reshape(shape)
    else:
        loss = (a_ce.to(ce.dtype) * torch.where(valid, ce, zero)).sum()
        if zl is not None:
            loss = loss + (a_z.to(zl.dtype) * torch.where(valid, zl, zero)).sum()
        if mean == "count":
            loss = torch.where(valid.any(), loss, torch.full_like(loss, o.empty_mean))
        if fill is not None:  # weighted means of no weight: empty_mean
            loss = loss + fill.to(loss.dtype)
        loss = torch.where(bad.any(), nan.to(loss.dtype), loss)
    if dtype is not None:
        loss = loss.to(dtype)
    if not o.aux:
        return loss

    def token(t: Tensor) -> Tensor:
        return torch.where(bad, nan, torch.where(valid, t, torch.zeros_like(t))).reshape(shape)

    return LinearCrossEntropyOutput(
        loss,
        logp=token(uy - lse) if "logp" in o.aux else None,
        entropy=token(ent) if "entropy" in o.aux and ent is not None else None,
        lse=token(lse) if "lse" in o.aux else None,
        correct=(valid & hit).sum() if "correct" in o.aux and hit is not None else None,
    )


def sharded_linear_loss(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    linear_bias: Tensor | None,
    o: FusedOptions,
    *,
    group: Any,
    weight: Tensor | None = None,
    num_items_in_batch: int | float | Tensor | None = None,
    sequence_parallel: Any = False,
    packed: bool = False,
) -> Any:
    """The engine of ``fused.linear_cross_entropy(..., process_group=group)``: every rank holds
    its rows of ``linear_weight`` (and ``linear_bias``, class ``weight``; DTensors sharded on
    the first axis are taken as their local rows) and the whole ``input`` and ``target``, or
    with ``sequence_parallel`` its own tokens of them (the results are then those of the
    group's tokens, flattened in rank order, the same on every rank, as Megatron computes the
    loss after its sequence gather). ``packed``: the call gave ``sequence_ids`` or
    ``cu_seqlens``, refused (every refusal here is told to the other ranks)."""
    check_group(group, "process_group")  # not a group: a TypeError before the rest
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("process_group needs torch.distributed to be initialised")
    try:  # checked here, then told to every rank (a rank that stops alone leaves them waiting)
        check_parallel(group, sequence_parallel)
        if packed:  # (sequence_ids, cu_seqlens)
            raise ValueError("sequence_ids and cu_seqlens do not take a process_group yet")
        refuse_functorch("linear_cross_entropy")
        if o.kernel == "triton":
            raise ValueError("kernel='triton' does not take a process_group yet; use 'torch'")
        if holds_dtensor(input, target):
            raise TypeError(
                "input and target must be plain tensors (a DTensor's to_local()); with a "
                "process_group, linear_weight, linear_bias and weight may be DTensors"
            )
        if num_items_in_batch is not None:
            check_items(num_items_in_batch)
        linear_weight = tensor_parallel_shard(linear_weight, "linear_weight", group)
        linear_bias = tensor_parallel_shard(linear_bias, "linear_bias", group)
        weight = tensor_parallel_shard(weight, "weight", group)
        check_inputs(input, linear_weight, target, linear_bias, weight, shard=True)
        input, linear_weight, linear_bias, out_dtype = product_inputs(
            input, linear_weight, linear_bias
        )
    except (TypeError, ValueError) as exc:
        relay_refusal(group, exc, input, linear_weight)
    same = None if sequence_parallel else "input and target (without sequence_parallel)"
    v_local, d = linear_weight.shape
    params = (input, linear_weight, linear_bias)
    # which gradients are taken picks the passes, and so the collectives
    grads = tuple(p is not None and p.requires_grad for p in params)
    agree = agreement(
        input.dtype,
        o,
        sequence_parallel,
        linear_bias is None,
        weight is None,
        torch.is_grad_enabled(),
        grads,
        # a count as a number (a tensor's value is not read here: its type only)
        num_items_in_batch
        if isinstance(num_items_in_batch, int | float)
        else type(num_items_in_batch).__name__,
    )
    start, counts, widest = _layout(v_local, target.numel(), d, group, input.device, same, agree)
    shape = tuple(target.shape)
    x = input.reshape(-1, d)
    t = target.reshape(-1).long()
    if sequence_parallel:  # the group's tokens, in rank order
        x = _GatherTokens.apply(x, counts, group)  # type: ignore[no-untyped-call]
        t = _gather_rows(t, counts, group)
        shape = (t.shape[0],)
    valid = t.ne(cast(int, o.ignore_index))
    y = torch.where(valid, t, torch.full_like(t, -1))
    # every row goes through the products: an ignored row's hidden state must not reach them
    # (a coefficient 0 times a non-finite logit is NaN), as in the single-device op
    x = torch.where(valid[:, None], x, x.new_zeros(()))
    # the same chunks on every rank (a chunk's statistics are one collective): by the largest
    # shard, not this rank's
    chunk = o.chunk_size or device_chunk(widest, x.is_cuda)
    plan = (
        chunk,
        o.temperature,
        None if o.softcap is None else float(o.softcap),
        float(o.label_smoothing) > 0,
        "entropy" in o.aux,
        "correct" in o.aux,
        not sequence_parallel,
    )
    cw = None if weight is None else weight.detach()
    params = (x, linear_weight, linear_bias)
    if (
        o.reduction != "none" and not o.aux and torch.is_grad_enabled() and any(grads)
    ):  # a scalar loss with a backward to come: its gradients formed in the forward sweep
        wy_all = None if cw is None else _target_weights(cw, y, start, group, _acc(x.dtype))
        a_ce, a_z, *_ = row_scales(valid, wy_all, o, num_items_in_batch, None)
        loss, v_total = _ShardedEarly.apply(  # type: ignore[no-untyped-call]
            *params, y, cw, wy_all, a_ce, a_z, group, start, plan, o, valid, num_items_in_batch
        )
        if reads(o.validate, t):
            _check_targets(t.reshape(shape), v_total, cast(int, o.ignore_index))
        return loss.to(out_dtype)
    lse, uy, sm, ent, hit, wy, v_total, w_total = _ShardedLinear.apply(  # type: ignore[no-untyped-call]
        x,
        linear_weight,
        linear_bias,
        y,
        cw,
        group,
        start,
        plan,
    )
    if reads(o.validate, t):
        _check_targets(t.reshape(shape), v_total, cast(int, o.ignore_index))
    return _compose(
        o,
        valid,
        lse,
        uy,
        sm,
        ent if plan[4] else None,
        hit > 0 if plan[5] else None,
        None if weight is None else wy,
        v_total,
        w_total,
        num_items_in_batch,
        shape,
        out_dtype,
        target=y,
    )


def _target_weights(cw: Tensor, y: Tensor, start: int, group: Any, acc: torch.dtype) -> Tensor:
    """Each token's class weight :math:`w_{y_n}`, in ``acc``, from the rank that holds its
    class (one all-reduce ``SUM`` of one number per token; 0 for ignored tokens, ``y = -1``)."""
    v_local = cw.shape[0]
    here, idx = _local_index(y, start, v_local)
    wy = torch.where(here, cw.to(acc)[idx], 0.0) if v_local else y.new_zeros(y.shape, dtype=acc)
    _collective(dist.all_reduce, wy, op=dist.ReduceOp.SUM, group=group)
    return wy


def _check_targets(t: Tensor, v_total: Tensor, ignore_index: int) -> None:
    """Refuse a label outside the group's ``[0, V)`` (known after the collectives) as the
    single-device op does: a :class:`~crossentropy._lib.checks.LabelRangeError` naming it."""
    index_targets(xpt, t, int(v_total), ignore_index, check=True)


def vocab_parallel_cross_entropy(
    logits: Tensor,
    target: Tensor,
    group: Any = None,
    *,
    vocab_start: int | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    temperature: float = 1.0,
    empty_mean: float = math.nan,
) -> Tensor:
    r"""Cross-entropy of logits sharded on the class axis across the ranks of ``group``
    (Megatron-Core's and TransformerEngine's vocabulary-parallel cross-entropy).

    .. math::

        u = \operatorname{cap} \tanh\bigl(z / (T \operatorname{cap})\bigr), \qquad
        \ell_n = w_{y_n} (1 - \varepsilon)(\mathrm{lse}_n - u_{n,y_n})
            + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse}_n - u_{n,c})
            + \lambda\, \mathrm{lse}_n^2

    over the whole vocabulary of :math:`V = \sum_r V_r` classes, each rank holding the columns
    ``vocab_start : vocab_start + V_r`` of the logits. Equal to
    ``crossentropy.fused.linear_cross_entropy``'s loss of the gathered logits, with the same
    conventions (``"mean"`` is :math:`\sum_n \ell_n / \sum_n w_{y_n}` over the non-ignored
    tokens, the z-loss divided by their number). Communication: one all-reduce ``MAX`` and one
    ``SUM`` of a few numbers per token in the forward pass (never logits), nothing in the
    backward pass; with ``vocab_start=None``, one all-gather of the shard sizes and token
    counts (ranks whose counts differ get a ``ValueError`` on every rank). Every rank
    returns the same loss; the gradient of each rank's logits is its shard of the whole
    gradient.

    Parameters
    ----------
    logits : Tensor
        This rank's shard of the logits, ``(..., V_r)``: the class axis last. A DTensor
        sharded on its last axis is taken as its local shard and its mesh's group.
    target : Tensor
        Global class indices, ``logits.shape[:-1]``, the same on every rank.
    group : ProcessGroup, optional
        The ranks that share the vocabulary (default: the whole world).
    vocab_start : int, optional
        The global index of this rank's first class (default: the sum of the lower ranks'
        shard sizes, by an all-gather). Given, nothing is exchanged to check the ranks' token
        counts, options or offsets: ranks with different counts fail inside the first
        collective (gloo may abort the process), a negative offset is refused, and one whose
        classes run past the group's is refused on that rank alone, after the collectives
        (overlapping shards within the classes are not found).
    weight : Tensor, optional
        This rank's shard of the class weights, ``(V_r,)`` (a DTensor sharded on its first
        axis over the group's ranks is taken as its local shard).
    reduction : {"mean", "sum", "none"}, default "mean"
        As ``cross_entropy``; ``"none"`` gives each token's loss (0 at ignored tokens).
    ignore_index : int, default -100
        Targets equal to it are left out.
    label_smoothing : float, default 0.0
        :math:`\varepsilon` in [0, 1], PyTorch's smoothing over the whole vocabulary.
    z_loss : float, default 0.0
        :math:`\lambda`, PaLM's :math:`\lambda\,\mathrm{lse}^2`.
    softcap : float, optional
        Gemma 2's :math:`\operatorname{cap} \tanh(z / \operatorname{cap})`.
    temperature : float, default 1.0
        :math:`T > 0`: the logits are divided by it first.
    empty_mean : float, default nan
        Value of a mean over zero counted tokens, and of a weighted mean over counted
        tokens whose class weights sum to 0 (the z-loss keeps its mean over them); NaN
        gives PyTorch's 0 / 0.

    Returns
    -------
    Tensor
        The loss (float32 for half-precision logits), the same on every rank.

    Examples
    --------
    In a single process the group is one rank holding the whole vocabulary:

    >>> import os, torch, torch.distributed as dist
    >>> from crossentropy.distributed import vocab_parallel_cross_entropy
    >>> os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29517")
    >>> dist.init_process_group("gloo", rank=0, world_size=1)
    >>> logits = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> round(float(vocab_parallel_cross_entropy(logits, torch.tensor([1, 2]))), 4)
    0.9076
    >>> dist.destroy_process_group()
    """
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "vocab_parallel_cross_entropy needs torch.distributed to be initialised "
            "(init_process_group)"
        )
    dtensor = getattr(torch.distributed, "tensor", None)
    if dtensor is not None and isinstance(logits, dtensor.DTensor):
        placements = logits.placements
        if len(placements) != 1 or not placements[0].is_shard(logits.ndim - 1):
            raise ValueError(
                "logits: a DTensor must be sharded on its last (class) axis over a 1-D mesh; "
                f"got placements {placements}"
            )
        group = logits.device_mesh.get_group()
        logits = logits.to_local()
        if isinstance(target, dtensor.DTensor):
            target = target.full_tensor()
    check_group(group, "group")
    try:  # checked here, then told to every rank where they all-gather their sizes
        refuse_functorch("vocab_parallel_cross_entropy")
        weight = tensor_parallel_shard(
            weight, "weight", dist.group.WORLD if group is None else group
        )
        if not isinstance(logits, Tensor) or not logits.is_floating_point():
            raise TypeError("logits must be a floating-point tensor (this rank's shard)")
        check_class_indices(target, "target")
        if logits.ndim < 1:
            raise ValueError(
                "logits must have a class axis (the last, this rank's classes); got 0-d"
            )
        if target.shape != logits.shape[:-1]:
            raise ValueError(
                "target must have logits' shape without the class axis, "
                f"{tuple(logits.shape[:-1])}; got {tuple(target.shape)}"
            )
        v_local = logits.shape[-1]
        if weight is not None and (not isinstance(weight, Tensor) or weight.shape != (v_local,)):
            raise ValueError(f"weight must be this rank's ({v_local},) shard of the class weights")
        o = FusedOptions.from_arguments(
            {
                "reduction": reduction,
                "ignore_index": ignore_index,
                "label_smoothing": float(label_smoothing),
                "z_loss": float(z_loss),
                "softcap": None if softcap is None else float(softcap),
                "temperature": temperature,
                "empty_mean": empty_mean,
            }
        )
    except (TypeError, ValueError) as exc:
        if vocab_start is None:  # the others wait in that all-gather: told, not left waiting
            relay_refusal(group, exc, logits)
        raise
    if vocab_start is None:  # with the ranks' token counts, checked equal
        agree = agreement(logits.dtype, o, weight is None)
        agreed = (
            "reduction, ignore_index, label_smoothing, z_loss, softcap, temperature, "
            "empty_mean, whether class weights are given, and the logits' dtype"
        )
        start = _layout(
            v_local,
            target.numel(),
            1,
            group,
            logits.device,
            "logits and target",
            agree,
            None,
            agreed,
        )[0]
    else:
        start = int(vocab_start)
        if start < 0:
            raise ValueError(f"vocab_start must be >= 0 (this rank's first class); got {start}")
    valid = target.ne(cast(int, o.ignore_index))  # checked: an int (None is -100)
    y = torch.where(valid, target, torch.full_like(target, -1)).long()
    smooth = o.label_smoothing > 0
    lse, uy, sm, wy, v_total, w_total = _ShardedStats.apply(  # type: ignore[no-untyped-call]
        logits, y, start, group, o.temperature, o.softcap, smooth, weight
    )
    if reads(None, target):  # as the validation policy allows (never on CUDA under "auto")
        _check_targets(target, v_total, cast(int, o.ignore_index))
        total = int(v_total)
        if vocab_start is not None and start + v_local > total:  # not a partition of classes
            raise ValueError(
                f"vocab_start: this rank's classes {start} .. {start + v_local - 1} run past "
                f"the group's {total} classes; each rank's vocab_start is the sum of the shard "
                "sizes of the ranks before it"
            )
    return _compose(  # type: ignore[no-any-return]
        o,
        valid.reshape(-1),
        lse.reshape(-1),
        uy.reshape(-1),
        sm.reshape(-1),
        None,
        None,
        None if weight is None else wy.reshape(-1),
        v_total,
        w_total,
        None,
        tuple(target.shape),
        target=y.reshape(-1),
    )
