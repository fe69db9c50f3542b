"""The chunked PyTorch path of the fused linear + cross-entropy (any device; the reference)."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat.torch as xpt
import torch
from torch import Tensor

from crossentropy._classification import _index_targets
from crossentropy._lib._reduction import check_empty_mean, check_reduction
from crossentropy._lib._validation import check_finite_number, check_int, shape_str

__all__ = ["linear_cross_entropy"]

# Rows per chunk: about this many float32 logits are alive at a time.
_CHUNK_ELEMENTS = 1 << 24


def _acc(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype: float32 for half precision, the input's dtype otherwise."""
    return torch.promote_types(dtype, torch.float32)


def _logits(x: Tensor, w: Tensor, b: Tensor | None, cap: float | None) -> tuple[Tensor, Tensor]:
    """Logits of a chunk in the accumulation dtype (after the softcap) and the raw ones (for the
    softcap's chain rule; the same tensor without a softcap)."""
    acc = _acc(x.dtype)
    raw = (x @ w.T).to(acc)
    if b is not None:
        raw = raw + b.to(acc)
    return (cap * torch.tanh(raw / cap), raw) if cap is not None else (raw, raw)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w: Tensor,
        b: Tensor | None,
        target: Tensor,
        ignore_index: int,
        reduction: str,
        eps: float,
        z_loss: float,
        cap: float | None,
        chunk: int,
        empty_mean: float,
    ) -> Tensor:
        n, v = x.shape[0], w.shape[0]
        valid = target != ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target))
        lse = torch.empty(n, dtype=_acc(x.dtype), device=x.device)
        rows = torch.empty(n, dtype=_acc(x.dtype), device=x.device)
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            z, _ = _logits(x[lo:hi], w, b, cap)
            m = torch.logsumexp(z, dim=1)
            zy = z.gather(1, safe[lo:hi, None])[:, 0]
            loss = m - (1 - eps) * zy
            if eps:
                loss = loss - (eps / v) * z.sum(dim=1)
            if z_loss:
                loss = loss + z_loss * m * m
            lse[lo:hi] = m
            rows[lo:hi] = loss
        rows = torch.where(valid, rows, torch.zeros_like(rows))
        count = valid.sum().to(rows.dtype)
        ctx.save_for_backward(x, w, b, safe, valid, lse, count)
        ctx.options = (reduction, eps, z_loss, cap, chunk, empty_mean)
        if reduction == "none":
            out = rows
        elif reduction == "sum":
            out = rows.sum()
        elif math.isnan(empty_mean):
            out = rows.sum() / count
        else:
            out = torch.where(count > 0, rows.sum() / count.clamp(min=1), empty_mean)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, w, b, safe, valid, lse, count = ctx.saved_tensors
        reduction, eps, z_loss, cap, chunk, _ = ctx.options
        n, v = x.shape[0], w.shape[0]
        go = grad_out.to(lse.dtype)
        mask = valid.to(lse.dtype)
        row_scale = go * mask if reduction != "mean" else go * mask / count.clamp(min=1)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = torch.empty_like(x) if need_x else None
        acc = lse.dtype
        dw = torch.zeros(w.shape, dtype=acc, device=w.device) if need_w else None
        db = torch.zeros(v, dtype=acc, device=w.device) if need_b and b is not None else None
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            z, raw = _logits(x[lo:hi], w, b, cap)
            m = lse[lo:hi, None]
            g = torch.exp(z - m)
            if z_loss:
                g = g * (1 + 2 * z_loss * m)
            if eps:
                g = g - eps / v
            minus = torch.full((hi - lo, 1), eps - 1.0, dtype=g.dtype, device=g.device)
            g.scatter_add_(1, safe[lo:hi, None], minus)
            g = g * row_scale[lo:hi, None]
            if cap is not None:
                th = torch.tanh(raw / cap)
                g = g * (1 - th * th)
            gl = g.to(x.dtype)
            if dx is not None:
                dx[lo:hi] = gl @ w
            if dw is not None:
                dw += (gl.T @ x[lo:hi]).to(acc)
            if db is not None:
                db += g.sum(dim=0)
        return (
            dx,
            None if dw is None else dw.to(w.dtype),
            None if db is None else db.to(b.dtype),
            *([None] * 8),
        )


def linear_cross_entropy(
    input: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
    empty_mean: float = math.nan,
) -> Tensor:
    r"""Cross-entropy of ``input @ weight.T + bias`` against class indices, a chunk of tokens at
    a time, so the ``[N, V]`` logits never exist at once.

    .. math::

        \ell_n = -\log \operatorname{softmax}(W x_n + b)_{y_n}

    Equal to ``crossentropy.cross_entropy(input @ weight.T + bias, target, ...)`` with the same
    keywords (``ignore_index``, ``reduction`` of ``"mean"`` over non-ignored tokens, ``"sum"`` or
    ``"none"``, ``label_smoothing``, ``z_loss``, ``softcap``, ``empty_mean``), with exact
    gradients for ``input``, ``weight`` and ``bias``. Half-precision inputs are multiplied in
    their dtype; the softmax, the loss and the weight gradient accumulate in float32.

    Parameters
    ----------
    input : Tensor
        Hidden states ``(..., D)``.
    weight : Tensor
        The output projection ``(V, D)`` (may be tied to an embedding).
    target : Tensor
        Class indices of shape ``input.shape[:-1]``.
    bias : Tensor, optional
        ``(V,)``.
    chunk_size : int, optional
        Tokens per chunk (default: about 16 M logits per chunk).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.fused import linear_cross_entropy
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> round(float(linear_cross_entropy(x, w, torch.tensor([1, 2]))), 4)
    1.1429
    """
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("input and weight must be torch tensors")
    if weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"weight must have shape (V, {input.shape[-1]}); got {shape_str(weight.shape)}"
        )
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise ValueError(
            f"target must have shape {shape_str(input.shape[:-1])}; got {shape_str(target.shape)}"
        )
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices; got {target.dtype}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},); got {shape_str(bias.shape)}")
    red = check_reduction(reduction, ("none", "mean", "sum"))
    ignore = check_int(ignore_index, "ignore_index")
    eps = check_finite_number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    z = check_finite_number(z_loss, "z_loss", low=0.0)
    cap = (
        None if softcap is None else check_finite_number(softcap, "softcap", low=0.0, low_open=True)
    )
    empty = check_empty_mean(empty_mean)
    v = weight.shape[0]
    chunk = (
        max(1, _CHUNK_ELEMENTS // max(v, 1))
        if chunk_size is None
        else check_int(chunk_size, "chunk_size")
    )
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk}")
    batch_shape = input.shape[:-1]
    x = input.reshape(-1, input.shape[-1])
    t = target.reshape(-1).long()

    _index_targets(xpt, t, v, ignore)  # ValueError for a label out of range (host tensors)
    out: Tensor = _LinearCrossEntropy.apply(  # type: ignore[no-untyped-call]
        x, weight, bias, t, ignore, red, eps, z, cap, chunk, empty
    )
    return out.reshape(batch_shape) if red == "none" else out
