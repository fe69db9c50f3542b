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
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor

from crossentropy._lib.policy import reads
from crossentropy.fused._chunked import FusedOptions, row_scales
from crossentropy.fused._terms import Stats, row_terms

__all__ = ["vocab_parallel_cross_entropy"]


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


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
        acc = _acc(logits.dtype)
        u = logits.to(acc)
        if temperature != 1.0:
            u = u / temperature
        th = None
        if cap is not None:
            th = torch.tanh(u / cap)
            u = cap * th
        v_local = u.shape[-1]
        m = u.amax(dim=-1) if v_local else torch.full(u.shape[:-1], -math.inf, dtype=acc)
        dist.all_reduce(m, op=dist.ReduceOp.MAX, group=group)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        here = (y >= start) & (y < start + v_local)
        idx = (y - start).clamp(0, max(v_local - 1, 0))
        columns = [torch.exp(u - m[..., None]).sum(dim=-1)]
        if v_local:
            columns.append(torch.where(here, u.gather(-1, idx[..., None])[..., 0], 0.0))
        else:
            columns.append(torch.zeros_like(m))
        if cw is not None:
            cwa = cw.to(acc)
            columns.append(torch.where(here, cwa[idx] if v_local else 0.0, 0.0))
        if smooth:
            columns.append(u.sum(dim=-1) if cw is None else u @ cw.to(acc))
        rows = torch.stack(columns, dim=-1)
        totals = torch.tensor(
            [float(v_local), 0.0 if cw is None else float(cw.to(acc).sum())], dtype=acc
        )
        flat = torch.cat([rows.reshape(-1), totals])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        rows = flat[:-2].reshape(rows.shape)
        v_total, w_total = flat[-2], flat[-1]
        lse = m + torch.log(rows[..., 0])
        uy = rows[..., 1]
        k = 2
        wy = rows[..., k] if cw is not None else torch.zeros_like(lse)
        k += cw is not None
        sm = rows[..., k] if smooth else torch.zeros_like(lse)
        ctx.save_for_backward(u, lse, idx, here, th, cw)
        ctx.temperature, ctx.cap, ctx.smooth = temperature, cap, smooth
        ctx.mark_non_differentiable(wy, v_total, w_total)
        return lse, uy, sm, wy, v_total, w_total

    @staticmethod
    def backward(
        ctx: Any, g_lse: Tensor, g_uy: Tensor, g_sm: Tensor, *_: Any
    ) -> tuple[Tensor | None, ...]:
        u, lse, idx, here, th, cw = ctx.saved_tensors
        g = torch.exp(u - lse[..., None]) * g_lse[..., None]
        if u.shape[-1]:
            g = g.scatter_add(-1, idx[..., None], torch.where(here, g_uy, 0.0)[..., None])
        if ctx.smooth:
            g = g + g_sm[..., None] * (1.0 if cw is None else cw.to(g.dtype))
        if th is not None:
            g = g * (1 - th * th)
        if ctx.temperature != 1.0:
            g = g / ctx.temperature
        return g, None, None, None, None, None, None, None


def _shard_start(v_local: int, group: Any) -> int:
    """The global index of this rank's first class: the sizes of the lower ranks' shards."""
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, torch.tensor([v_local], dtype=torch.int64), group=group)
    rank = dist.get_rank(group)
    return int(sum(int(s) for s in sizes[:rank]))


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
    backward pass; with ``vocab_start=None``, one all-gather of the shard sizes. Every rank
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
        shard sizes, by an all-gather).
    weight : Tensor, optional
        This rank's shard of the class weights, ``(V_r,)``.
    reduction : {"mean", "sum", "none"}
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
        Value of a mean over zero counted tokens.

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
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point tensor (this rank's shard)")
    if not isinstance(target, Tensor) or target.dtype.is_floating_point or target.is_complex():
        raise TypeError("target must be a tensor of class indices")
    if logits.ndim < 1 or target.shape != logits.shape[:-1]:
        raise ValueError(
            f"target must have logits' shape without the class axis, {tuple(logits.shape[:-1])};"
            f" got {tuple(target.shape)}"
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
    start = _shard_start(v_local, group) if vocab_start is None else int(vocab_start)
    valid = target.ne(cast(int, o.ignore_index))  # checked: an int (None is -100)
    y = torch.where(valid, target, torch.full_like(target, -1)).long()
    eps, smooth = o.label_smoothing, o.label_smoothing > 0
    lse, uy, sm, wy, v_total, w_total = _ShardedStats.apply(  # type: ignore[no-untyped-call]
        logits, y, start, group, o.temperature, o.softcap, smooth, weight
    )
    if reads(None, target):  # as the validation policy allows (never on CUDA under "auto")
        v_all = int(v_total)
        bad = valid & ((target < 0) | (target >= v_all))
        if bool(bad.any()):
            first = int(bad.reshape(-1).nonzero()[0, 0])
            raise ValueError(
                f"target: entry {first} (flattened) is {int(target.reshape(-1)[first])}, out "
                f"of range for {v_all} classes (ignore_index={o.ignore_index})"
            )
    wy_or_none = None if weight is None else wy
    stats = Stats(lse, uy, sm if smooth else None, None, None)
    ce, zl = row_terms(
        stats, wy_or_none, v_total if weight is None else w_total, v_total, eps, o.z_loss
    )
    if o.reduction == "none":
        per_token = ce if zl is None else ce + zl
        return torch.where(valid, per_token, torch.zeros_like(per_token))
    flat_valid = valid.reshape(-1)
    a_ce, a_z, mean = row_scales(
        flat_valid, None if wy_or_none is None else wy_or_none.reshape(-1), o, None, None
    )
    total = (a_ce.to(ce.dtype) * torch.where(valid, ce, 0.0).reshape(-1)).sum()
    if zl is not None:
        total = total + (a_z.to(zl.dtype) * torch.where(valid, zl, 0.0).reshape(-1)).sum()
    if mean == "count":
        total = torch.where(flat_valid.any(), total, torch.full_like(total, o.empty_mean))
    return total
