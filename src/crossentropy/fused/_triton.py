"""The per-row step of the fused linear + cross-entropy as one Triton kernel (CUDA).

One program per token row: an online log-sum-exp sweep over the row's logits (in float32
registers, whatever the storage dtype), the loss, and, when a row scale is given, a second
sweep that forms the gradient with respect to the logits in registers and writes it over the
logits. The matrix products around it stay with cuBLAS. Under ``TRITON_INTERPRET=1`` the same
kernel runs on CPU tensors, which is how the tests check it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl
from torch import Tensor

if TYPE_CHECKING:
    from crossentropy.fused._chunked import RowOptions

__all__ = ["rows_triton"]

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
def _ce_rows(
    z_ptr,
    stride,
    y_ptr,
    scale_ptr,
    loss_ptr,
    V,
    eps,
    z_loss,
    cap,
    inv_t,
    HAS_CAP: tl.constexpr,
    HAS_TEMP: tl.constexpr,
    HAS_EPS: tl.constexpr,
    GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = z_ptr + row * stride
    y = tl.load(y_ptr + row)
    # Sweep 1: online log-sum-exp (and the row sum, for label smoothing).
    m = tl.full((), float("-inf"), tl.float32)
    total = tl.zeros((), tl.float32)
    zsum = tl.zeros((), tl.float32)
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < V
        z = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
        if HAS_TEMP:
            z = z * inv_t
        if HAS_CAP:
            z = cap * _tanh(z / cap)
        z = tl.where(inside, z, float("-inf"))
        new_m = tl.maximum(m, tl.max(z, axis=0))
        safe_m = tl.where(new_m == float("-inf"), 0.0, new_m)  # all -inf so far: no NaN
        total = total * tl.exp(m - safe_m) + tl.sum(tl.exp(z - safe_m), axis=0)
        m = new_m
        if HAS_EPS:
            zsum += tl.sum(tl.where(inside, z, 0.0), axis=0)
    lse = m + tl.log(total)
    zy = tl.load(base + y).to(tl.float32)
    if HAS_TEMP:
        zy = zy * inv_t
    if HAS_CAP:
        zy = cap * _tanh(zy / cap)
    loss = lse - (1.0 - eps) * zy + z_loss * lse * lse
    if HAS_EPS:
        loss -= eps / V * zsum
    tl.store(loss_ptr + row, loss)
    if GRAD:
        # Sweep 2: the gradient, formed in registers and written over the logits.
        s = tl.load(scale_ptr + row)
        a = s * (1.0 + 2.0 * z_loss * lse)
        b = s * (1.0 - eps)
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            inside = offs < V
            z = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
            if HAS_TEMP:
                z = z * inv_t
            if HAS_CAP:
                th = _tanh(z / cap)
                z = cap * th
            g = a * tl.exp(z - lse) - tl.where(offs == y, b, 0.0)
            if HAS_EPS:
                g -= s * eps / V
            if HAS_CAP:
                g *= 1.0 - th * th
            if HAS_TEMP:
                g *= inv_t
            tl.store(base + offs, g.to(z_ptr.dtype.element_ty), mask=inside)


def rows_triton(
    raw: Tensor, y: Tensor, scale: Tensor | None, opts: RowOptions, acc_buf: Tensor | None
) -> Tensor:
    """The Triton twin of the torch per-row step (same contract; ``acc_buf`` is not needed,
    as the kernel computes in float32 registers)."""
    n, v = raw.shape
    loss = torch.empty(n, dtype=torch.float32, device=raw.device)
    grad = scale is not None
    _ce_rows[(n,)](
        raw,
        raw.stride(0),
        y,
        scale.to(torch.float32).contiguous() if scale is not None else loss,
        loss,
        v,
        float(opts.eps),
        float(opts.z_loss),
        1.0 if opts.cap is None else float(opts.cap),
        1.0 / float(opts.temperature),
        HAS_CAP=opts.cap is not None,
        HAS_TEMP=opts.temperature != 1.0,
        HAS_EPS=opts.eps != 0.0,
        GRAD=grad,
        BLOCK=min(_BLOCK, triton.next_power_of_2(v)),
    )
    return loss
