"""The per-row step of the fused linear + cross-entropy as Triton kernels (CUDA).

One program per token row. ``_row_stats``: an online sweep over the row's logits in float32
registers (whatever the storage dtype) for the log-sum-exp, the target logit, the (weighted)
logit sum, the softmax's entropy (an online :math:`\\sum_c p_c (u_c - m)`) and the raw argmax.
``_row_grad``: a second sweep that forms the gradient with respect to the logits
(:mod:`crossentropy.fused._rows`) in registers and writes it over them. The matrix products
around them stay with cuBLAS. Under ``TRITON_INTERPRET=1`` the same kernels run on CPU tensors,
which is how the tests check them.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from crossentropy.fused._rows import Coefficients, RowOptions, Stats

__all__ = ["TritonRows"]

_BLOCK = 1024


@triton.jit
def _tanh(u):
    # |u| < 1/8: the odd series to u^7 (relative error < 1e-9); beyond it
    # sign(u) (1 - e) / (1 + e) with e = exp(-2|u|), free of cancellation there.
    a = tl.abs(u)
    u2 = u * u
    series = u * (1.0 + u2 * (-1.0 / 3.0 + u2 * (2.0 / 15.0 + u2 * (-17.0 / 315.0))))
    e = tl.exp(-2.0 * a)
    big = (1.0 - e) / (1.0 + e)
    return tl.where(a < 0.125, series, tl.where(u < 0, -big, big))


@triton.jit
def _transform(z, cap, inv_t, HAS_CAP: tl.constexpr, HAS_TEMP: tl.constexpr):
    if HAS_TEMP:
        z = z * inv_t
    if HAS_CAP:
        z = cap * _tanh(z / cap)
    return z


@triton.jit
def _row_stats(
    z_ptr,
    stride,
    y_ptr,
    cw_ptr,
    lse_ptr,
    uy_ptr,
    sm_ptr,
    ent_ptr,
    hit_ptr,
    V,
    cap,
    inv_t,
    HAS_CAP: tl.constexpr,
    HAS_TEMP: tl.constexpr,
    SMOOTH: tl.constexpr,
    HAS_CW: tl.constexpr,
    ENT: tl.constexpr,
    HITS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = z_ptr + row * stride
    y = tl.load(y_ptr + row)
    m = tl.full((), float("-inf"), tl.float32)
    total = tl.zeros((), tl.float32)  # sum exp(u - m)
    pu = tl.zeros((), tl.float32)  # sum exp(u - m) (u - m), for the entropy
    sm = tl.zeros((), tl.float32)
    best = tl.full((), float("-inf"), tl.float32)
    best_at = tl.zeros((), tl.int64)
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < V
        raw = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
        if HITS:  # the first index of the raw maximum (as torch.argmax)
            r = tl.where(inside, raw, float("-inf"))
            block_best = tl.max(r, axis=0)
            first = tl.min(tl.where(r == block_best, offs, V), axis=0).to(tl.int64)
            better = block_best > best
            best_at = tl.where(better, first, best_at)
            best = tl.where(better, block_best, best)
        u = _transform(raw, cap, inv_t, HAS_CAP, HAS_TEMP)
        u = tl.where(inside, u, float("-inf"))
        new_m = tl.maximum(m, tl.max(u, axis=0))
        safe_m = tl.where(new_m == float("-inf"), 0.0, new_m)  # all -inf so far: no NaN
        rescale = tl.exp(m - safe_m)
        e = tl.exp(u - safe_m)
        if ENT:  # re-centred on the new maximum; no 0 * -inf
            moved = total * tl.where(total > 0, m - safe_m, 0.0)
            pu = (pu + moved) * rescale + tl.sum(e * tl.where(e > 0, u - safe_m, 0.0), axis=0)
        total = total * rescale + tl.sum(e, axis=0)
        m = new_m
        if SMOOTH:
            if HAS_CW:
                cw = tl.load(cw_ptr + offs, mask=inside, other=0.0).to(tl.float32)
                sm += tl.sum(cw * tl.where(inside, u, 0.0), axis=0)
            else:
                sm += tl.sum(tl.where(inside, u, 0.0), axis=0)
    lse = m + tl.log(total)
    uy = _transform(tl.load(base + y).to(tl.float32), cap, inv_t, HAS_CAP, HAS_TEMP)
    tl.store(lse_ptr + row, lse)
    tl.store(uy_ptr + row, uy)
    if SMOOTH:
        tl.store(sm_ptr + row, sm)
    if ENT:
        # H = (lse - m) - sum p (u - m): no cancellation against the size of the logits
        tl.store(ent_ptr + row, tl.log(total) - pu / total)
    if HITS:
        tl.store(hit_ptr + row, (best_at == y).to(tl.int8))


@triton.jit
def _row_grad(
    z_ptr,
    stride,
    y_ptr,
    cw_ptr,
    lse_ptr,
    ent_ptr,
    c_lse_ptr,
    c_uy_ptr,
    c_sm_ptr,
    c_ent_ptr,
    V,
    cap,
    inv_t,
    HAS_CAP: tl.constexpr,
    HAS_TEMP: tl.constexpr,
    HAS_SM: tl.constexpr,
    HAS_CW: tl.constexpr,
    HAS_ENT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = z_ptr + row * stride
    y = tl.load(y_ptr + row)
    lse = tl.load(lse_ptr + row)
    c_lse = tl.load(c_lse_ptr + row)
    c_uy = tl.load(c_uy_ptr + row)
    c_sm = 0.0
    if HAS_SM:
        c_sm = tl.load(c_sm_ptr + row)
    c_ent = 0.0
    h = 0.0
    if HAS_ENT:
        c_ent = tl.load(c_ent_ptr + row)
        h = tl.load(ent_ptr + row)
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < V
        z = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
        if HAS_TEMP:
            z = z * inv_t
        if HAS_CAP:
            th = _tanh(z / cap)
            z = cap * th
        p = tl.exp(z - lse)
        g = c_lse * p + tl.where(offs == y, c_uy, 0.0)
        if HAS_ENT:  # - c_H p (log p + H), with p log p = 0 where p underflows
            g -= c_ent * (p * tl.where(p > 0, z - lse, 0.0) + h * p)
        if HAS_SM:
            if HAS_CW:
                g += c_sm * tl.load(cw_ptr + offs, mask=inside, other=0.0).to(tl.float32)
            else:
                g += c_sm
        if HAS_CAP:
            g *= 1.0 - th * th
        if HAS_TEMP:
            g *= inv_t
        tl.store(base + offs, g.to(z_ptr.dtype.element_ty), mask=inside)


class TritonRows:
    """The Triton twin of :class:`crossentropy.fused._rows.TorchRows` (same contract; the
    chunk buffer keeps the raw logits until :meth:`grad` overwrites them)."""

    def __init__(self, opts: RowOptions, cw: Tensor | None) -> None:
        self.opts = opts
        self.cw = None if cw is None else cw.to(torch.float32).contiguous()

    def _common(self, v: int) -> dict[str, object]:
        o = self.opts
        return dict(
            HAS_CAP=o.cap is not None,
            HAS_TEMP=o.temperature != 1.0,
            HAS_CW=self.cw is not None,
            BLOCK=min(_BLOCK, triton.next_power_of_2(v)),
        )

    def stats(self, raw: Tensor, y: Tensor, acc_buf: Tensor | None, grad: bool) -> Stats:
        o = self.opts
        n, v = raw.shape

        def vec() -> Tensor:
            return torch.empty(n, dtype=torch.float32, device=raw.device)

        lse, uy = vec(), vec()
        sm = vec() if o.smooth else None
        ent = vec() if o.entropy else None
        hit = torch.empty(n, dtype=torch.int8, device=raw.device) if o.hits else None
        _row_stats[(n,)](
            raw,
            raw.stride(0),
            y,
            lse if self.cw is None else self.cw,
            lse,
            uy,
            lse if sm is None else sm,
            lse if ent is None else ent,
            lse if hit is None else hit,
            v,
            1.0 if o.cap is None else float(o.cap),
            1.0 / float(o.temperature),
            SMOOTH=o.smooth,
            ENT=o.entropy,
            HITS=o.hits,
            **self._common(v),
        )
        self.raw, self.y, self.lse, self.ent = raw, y, lse, ent
        return Stats(lse, uy, sm, ent, None if hit is None else hit.bool())

    def grad(self, c: Coefficients) -> None:
        """Overwrite the chunk buffer with the gradient (never factored)."""
        o, raw = self.opts, self.raw
        n, v = raw.shape

        def f32(t: Tensor | None) -> Tensor:
            return self.lse if t is None else t.to(torch.float32).contiguous()

        _row_grad[(n,)](
            raw,
            raw.stride(0),
            self.y,
            f32(self.cw),
            self.lse,
            f32(self.ent),
            f32(c.lse),
            f32(c.uy),
            f32(c.sm),
            f32(c.ent),
            v,
            1.0 if o.cap is None else float(o.cap),
            1.0 / float(o.temperature),
            HAS_SM=c.sm is not None,
            HAS_ENT=c.ent is not None,
            **self._common(v),
        )
