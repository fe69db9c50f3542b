"""The two passes of the fused linear + cross-entropy as ``torch.library`` custom operators.

``crossentropy::linear_cross_entropy_forward`` sweeps the tokens a chunk at a time and returns
the per-row statistics (:mod:`crossentropy.fused._rows`) and, given the per-row scales of a
``"mean"``/``"sum"`` loss, the gradients of that loss (formed in the same sweep, 6·N·D·V FLOPs);
``crossentropy::linear_cross_entropy_backward`` recomputes each chunk and forms the gradients
for given per-row coefficients. Both have fake (meta) implementations, so ``torch.compile``
treats them as single nodes with known output shapes (no graph break, no unrolled loop) and
shapes propagate on the ``meta`` device.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import torch
from torch import Tensor

from crossentropy._lib.namespace import autocast_enabled
from crossentropy.fused._rows import (
    Coefficients,
    Factored,
    RowOptions,
    RowStep,
    Stats,
    TorchRows,
    loss_coefficients,
)
from crossentropy.fused._terms import power_of_two_scale

__all__ = [
    "Grads",
    "acc_dtype",
    "autocast_off",
    "backward_op",
    "forward_op",
    "new_grads",
    "no_autocast",
    "product_dtype",
    "sweep",
]


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype: float32 for half precision, the input's dtype otherwise."""
    return torch.promote_types(dtype, torch.float32)


def product_dtype(x: Tensor) -> torch.dtype:
    """The dtype of a sweep's matrix products: the input's, except for half precision on a CPU
    without native half-precision arithmetic (no AVX512-BF16 for bfloat16, no AMX-FP16 for
    float16), where the products are formed in float32. The operands are exactly representable
    and the products accumulate in float32 either way (the logits are then rounded to the
    input's dtype, as ``F.linear``'s are), but there the half-precision kernels are several times
    slower (6× for the logits' product on the 2-core reference, 50× for ``G @ W`` in its
    row-major layout). The price: a float32 copy of the weight for the sweep, and a gradient
    with respect to the logits that is not rounded to half precision before its products."""
    if x.device.type != "cpu" or x.dtype not in (torch.float16, torch.bfloat16):
        return x.dtype
    probe = "_is_avx512_bf16_supported" if x.dtype == torch.bfloat16 else "_is_amx_fp16_supported"
    native = getattr(torch.cpu, probe, None)
    return x.dtype if native is not None and native() else torch.float32


@dataclass
class Grads:
    """Gradient accumulators of one sweep; ``None`` where no gradient is wanted."""

    dx: Tensor | None
    dw: Tensor | None
    db: Tensor | None


def formed_dx_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of an input's gradient formed in the forward pass, before the upstream
    gradient (a loss scale) multiplies it: float32 for float16, whose range a mean's
    ``1 / N`` would leave (a GradScaler's scale could then not bring it back); the input's
    otherwise."""
    return torch.float32 if dtype == torch.float16 else dtype


def new_grads(
    x: Tensor, w: Tensor, b: Tensor | None, wanted: list[bool], *, formed: bool = False
) -> Grads:
    """Zeroed gradient accumulators (the input's uninitialised, each row written once);
    ``formed``: for gradients formed in the forward pass (:func:`formed_dx_dtype`)."""
    acc = acc_dtype(x.dtype)
    dx_dtype = formed_dx_dtype(x.dtype) if formed else x.dtype
    return Grads(
        dx=torch.empty(x.shape, dtype=dx_dtype, device=x.device) if wanted[0] else None,
        dw=torch.zeros(w.shape, dtype=acc, device=w.device) if wanted[1] else None,
        db=torch.zeros(w.shape[0], dtype=acc, device=w.device)
        if wanted[2] and b is not None
        else None,
    )


# cuBLAS accumulates half-precision products straight into a float32 result (``addmm`` with
# ``out_dtype``: CUDA devices of compute capability 8.0 or more, in the PyTorch versions that
# have it), with no half-precision [V, D] temporary and no separate addition pass per chunk.
_HAS_DTYPE_OUT = "dtype_out" in torch.ops.aten.addmm.overloads()  # type: ignore[no-untyped-call]


@functools.cache
def _float32_out(device: torch.device) -> bool:
    """Whether ``addmm`` can write half-precision products into float32 on ``device``."""
    return (
        _HAS_DTYPE_OUT
        and device.type == "cuda"
        and torch.cuda.get_device_capability(device) >= (8, 0)
    )


def half_scale(pdt: torch.dtype, *scales: Tensor | None) -> Tensor | None:
    """For products in float16 (``pdt``): a power of two that brings the largest per-row
    scale of the gradients (``1 / N`` of a mean, or of ``num_items_in_batch``) to about 1, so
    that the gradient with respect to the logits, rounded to float16 for its products, keeps
    its small entries (it would round them to 0); the gradients formed are divided by it
    after (:func:`unscale`: exact). None for other dtypes, or no rows."""
    present = [s for s in scales if s is not None and s.numel()]
    if pdt != torch.float16 or not present:
        return None
    top = torch.stack([s.detach().abs().amax().float() for s in present]).amax()
    up: Tensor = power_of_two_scale(torch, top)
    return up


def unscale(grads: Grads, up: Tensor | None) -> None:
    """Divide the formed gradients by :func:`half_scale`'s factor."""
    if up is not None:
        for g in (grads.dx, grads.dw, grads.db):
            if g is not None:
                g.div_(up.to(g.dtype))


CoefficientsOf = Callable[[int, int, Tensor], Coefficients]
P = ParamSpec("P")
R = TypeVar("R")


def no_autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast off for a sweep's products: the op's inputs were cast to the autocast dtype
    before it (as ``F.linear`` casts them), and the sweep picks each product's dtype and
    accumulation itself (autocast would round a float32 product to half precision)."""
    if autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def autocast_off(fn: Callable[Concatenate[Tensor, P], R]) -> Callable[Concatenate[Tensor, P], R]:
    """``fn(x, ...)`` run with autocast off on ``x``'s device (:func:`no_autocast`)."""

    def run(x: Tensor, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with no_autocast(x.device):
            return fn(x, *args, **kwargs)

    functools.update_wrapper(run, fn)
    return run


@autocast_off
def sweep(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    opts: RowOptions,
    coefs: CoefficientsOf | None,
    grads: Grads | None,
    *,
    hold: bool = False,
    held: Tensor | None = None,
) -> tuple[Stats, Tensor | None]:
    """One pass over the tokens, a chunk at a time, with autocast off (:func:`no_autocast`):
    the per-row statistics and, with ``coefs`` (the coefficients of rows ``lo:hi`` given their
    log-sum-exp), the gradients accumulated into ``grads``.

    With ``hold`` (a statistics-only pass whose gradients a recomputing pass will form), the
    buffer comes back holding the last chunk's logits (the statistics of that chunk are taken
    without overwriting them); given back as ``held``, the recomputing pass starts with that
    chunk without its product, and then reuses the buffer. Each pass allocates that buffer
    anyway, so one chunk's product is saved (``"none"`` at ``N = 4096``, ``V = 32000`` on the
    CPU: 1 of 8) at no cost to the op's peak memory, the backward pass's (which also holds the
    weight's gradient); the price is the buffer kept from the end of the forward pass to the
    backward pass, and a scratch block of 64 rows in the forward pass.

    Each chunk's logits live in one reused buffer (in the products' dtype,
    :func:`product_dtype`), which the per-row step
    overwrites with the gradient with respect to the logits (two matrix products then give the
    input and weight gradients), or with the probabilities when the gradient is
    :class:`~crossentropy.fused._rows.Factored` (the row scales then apply to the
    ``[rows, D]`` operands and results, and the target and smoothing terms are a gather and an
    index-add of ``D``-vectors).
    """
    n, v = x.shape[0], w.shape[0]
    acc = acc_dtype(x.dtype)
    rows = max(1, min(opts.chunk, n))
    pdt = _held_dtype(x, opts.triton)
    wp, bp = w.to(pdt), None if b is None else b.to(pdt)
    buf = torch.empty(rows, v, dtype=pdt, device=x.device) if held is None else held
    rounded = None  # the logits in the input's dtype, when the products are in float32
    if pdt != x.dtype:
        rounded = torch.empty(rows, v, dtype=x.dtype, device=x.device)
    acc_buf = None
    if acc != pdt and not opts.triton:
        acc_buf = torch.empty(rows, v, dtype=acc, device=x.device)
    cwa = None if cw is None else cw.to(acc)

    def vec(on: bool, dtype: torch.dtype = acc) -> Tensor | None:
        return torch.empty(n, dtype=dtype, device=x.device) if on else None

    out = Stats(
        lse=torch.empty(n, dtype=acc, device=x.device),
        uy=torch.empty(n, dtype=acc, device=x.device),
        sm=vec(opts.smooth),
        ent=vec(opts.entropy),
        hit=vec(opts.hits, torch.bool),
    )
    if opts.triton:
        from crossentropy.fused._triton import TritonRows

        step: RowStep = TritonRows(opts, cwa)
    else:
        step = TorchRows(opts, cwa)
    forming = coefs is not None and grads is not None  # scale without grads: wasted work
    w_sum: Tensor | None = None  # sum_c w_c W_c, for a factored smoothing term
    starts = list(range(0, n, rows))
    last = starts[-1] if starts else 0
    if held is not None and starts:  # the last chunk's logits are in the buffer: it goes first
        starts = [last, *starts[:-1]]
    for k, lo in enumerate(starts):
        hi = min(lo + rows, n)
        xs, g = x[lo:hi].to(pdt), buf[: hi - lo]
        if held is None or k > 0:
            if bp is None:
                torch.mm(xs, wp.T, out=g)
            else:
                torch.addmm(bp, xs, wp.T, out=g)
            if rounded is not None:  # the logits rounded to the input's dtype, as F.linear's are
                g.copy_(rounded[: hi - lo].copy_(g))
        part = None if acc_buf is None else acc_buf[: hi - lo]
        if hold and lo == last:
            st = _stats_keeping(step, g, y[lo:hi], part)
        else:
            st = step.stats(g, y[lo:hi], part, forming)
        for whole, part in zip(out, st, strict=True):
            if whole is not None and part is not None:
                whole[lo:hi] = part
        if coefs is None or grads is None:
            continue
        factored = step.grad(coefs(lo, hi, st.lse))
        if factored is not None:
            if factored.sm is not None and w_sum is None and grads.dx is not None:
                w_sum = wp.sum(dim=0) if cwa is None else cwa.to(pdt) @ wp
            _apply_factored(factored, g, xs, wp, y[lo:hi], cwa, w_sum, grads, lo, hi)
            continue
        if grads.dx is not None:
            if grads.dx.dtype == pdt:
                torch.mm(g, wp, out=grads.dx[lo:hi])
            else:
                grads.dx[lo:hi] = g @ wp
        if grads.dw is not None:
            if g.dtype == grads.dw.dtype:
                grads.dw.addmm_(g.T, xs)
            elif g.is_cuda and _float32_out(g.device):  # half-precision operands, float32 sum
                torch.addmm(grads.dw, g.T, xs, out_dtype=grads.dw.dtype, out=grads.dw)
            elif g.dtype == torch.float16:  # its logits' gradient is scaled up (half_scale):
                grads.dw.addmm_(g.T.float(), xs.float())  # a float16 product could overflow
            else:
                grads.dw.add_(g.T @ xs)
        if grads.db is not None:
            grads.db.add_(g.sum(dim=0, dtype=acc))
    return out, (buf if hold and n else None)


#: Rows per block of :func:`_stats_keeping`'s scratch (``[rows, V]``: 8 MiB at V = 32000).
_KEEPING_ROWS = 64


def _stats_keeping(step: RowStep, g: Tensor, y: Tensor, acc_buf: Tensor | None) -> Stats:
    """The statistics of a chunk whose logits ``g`` stay as they are: worked on in the float32
    buffer where there is one, else a block of rows at a time in a small scratch buffer."""
    if acc_buf is not None:
        return step.stats(g, y, acc_buf, False)  # copies g into acc_buf
    m, block = g.shape[0], _KEEPING_ROWS
    scratch = torch.empty(min(block, m), g.shape[1], dtype=g.dtype, device=g.device)
    parts = [
        step.stats(g[lo : lo + block], y[lo : lo + block], scratch[: min(block, m - lo)], False)
        for lo in range(0, m, block)
    ]
    return Stats(
        *(None if field[0] is None else torch.cat(field) for field in zip(*parts, strict=True))
    )


def _apply_factored(
    f: Factored,
    p: Tensor,
    xs: Tensor,
    w: Tensor,
    y: Tensor,
    cw: Tensor | None,
    w_sum: Tensor | None,
    grads: Grads,
    lo: int,
    hi: int,
) -> None:
    """Accumulate ``G = diag(f.p) P + diag(f.uy) E_y + f.sm w^T`` into the gradients without
    forming ``G``: ``dX = diag(f.p)(P W) + diag(f.uy) W[y] + f.sm (w^T W)``,
    ``dW += P^T diag(f.p) X + E_y^T diag(f.uy) X + w (f.sm^T X)``, ``db`` likewise."""
    if grads.dx is not None:
        direct = grads.dx.dtype == p.dtype  # formed in place, else copied in
        dx = torch.mm(p, w, out=grads.dx[lo:hi]) if direct else p @ w
        dx.mul_(f.p[:, None]).add_(w.index_select(0, y).mul_(f.uy[:, None]))
        if f.sm is not None and w_sum is not None:
            dx.addr_(f.sm, w_sum)
        if not direct:
            grads.dx[lo:hi] = dx
    if grads.dw is not None:
        grads.dw.addmm_(p.T, xs * f.p[:, None])
        grads.dw.index_add_(0, y, xs * f.uy[:, None])
        if f.sm is not None:
            spread = f.sm @ xs
            grads.dw.addr_(torch.ones_like(grads.dw[:, 0]) if cw is None else cw, spread)
    if grads.db is not None:
        grads.db.add_(p.T @ f.p)
        grads.db.index_add_(0, y, f.uy)
        if f.sm is not None:
            total = f.sm.sum()
            grads.db.add_(total if cw is None else cw * total)


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


@torch.library.custom_op("crossentropy::linear_cross_entropy_forward", mutates_args=())
def forward_op(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    wy: Tensor | None,
    a_ce: Tensor | None,
    a_z: Tensor | None,
    eps: float,
    z_loss: float,
    cap: float | None,
    temperature: float,
    chunk: int,
    flags: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The forward sweep: ``(lse, u_y, s, H, hit, dx, dw, db, held)``, an empty tensor for each
    one not computed. ``flags``: smoothing, entropy, hits, Triton, which of ``dx, dw, db`` to
    form (only with ``a_ce``: the per-row scale of the cross-entropy, ``a_z`` the z-loss's),
    then whether to give back the buffer holding the last chunk's logits (``held``, for
    :func:`backward_op`; see :func:`sweep`)."""
    opts = RowOptions(cap, temperature, flags[0], flags[1], flags[2], chunk, flags[3])
    grads = new_grads(x, w, b, flags[4:7], formed=True) if a_ce is not None else None
    coefs = None
    up = None
    if a_ce is not None:
        v, scale, z_scale = w.shape[0], a_ce, a_z
        up = half_scale(_held_dtype(x, opts.triton), a_ce if wy is None else a_ce * wy, a_z)
        if up is not None:
            scale, z_scale = a_ce * up, None if a_z is None else a_z * up
        w_total = float(v) if cw is None else cw.to(acc_dtype(x.dtype)).sum()

        def coefs(lo: int, hi: int, lse: Tensor) -> Coefficients:
            return loss_coefficients(
                scale[lo:hi],
                None if z_scale is None else z_scale[lo:hi],
                lse,
                None if wy is None else wy[lo:hi],
                w_total,
                v,
                eps,
                z_loss,
            )

    st, held = sweep(x, w, b, y, cw, opts, coefs, grads, hold=flags[7])
    if grads is not None:
        unscale(grads, up)
    formed = (None, None, None) if grads is None else (grads.dx, grads.dw, grads.db)
    return (
        *(_empty(st.lse) if s is None else s for s in st),
        *(_empty(x) if g is None else g for g in (*formed, held)),
    )  # type: ignore[return-value]


@forward_op.register_fake
def _forward_fake(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    wy: Tensor | None,
    a_ce: Tensor | None,
    a_z: Tensor | None,
    eps: float,
    z_loss: float,
    cap: float | None,
    temperature: float,
    chunk: int,
    flags: list[bool],
) -> tuple[Tensor, ...]:
    n, acc = x.shape[0], acc_dtype(x.dtype)

    def vec(on: bool, dtype: torch.dtype = acc) -> Tensor:
        return x.new_empty(n if on else 0, dtype=dtype)

    early = a_ce is not None
    return (
        vec(True),
        vec(True),
        vec(flags[0]),
        vec(flags[1]),
        vec(flags[2], torch.bool if flags[2] else acc),  # as the sweep: empty, not boolean
        x.new_empty(x.shape, dtype=formed_dx_dtype(x.dtype)) if early and flags[4] else _empty(x),
        w.new_empty(w.shape, dtype=acc) if early and flags[5] else _empty(x),
        w.new_empty(w.shape[0], dtype=acc) if early and flags[6] and b is not None else _empty(x),
        x.new_empty((min(chunk, n), w.shape[0]), dtype=_held_dtype(x, flags[3]))
        if flags[7] and n
        else _empty(x),
    )


def _held_dtype(x: Tensor, triton: bool) -> torch.dtype:
    """The dtype of a sweep's logits buffer (:func:`sweep`)."""
    return x.dtype if triton else product_dtype(x)


@torch.library.custom_op("crossentropy::linear_cross_entropy_backward", mutates_args=("held",))
def backward_op(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    c_lse: Tensor,
    c_uy: Tensor,
    c_sm: Tensor | None,
    c_ent: Tensor | None,
    cap: float | None,
    temperature: float,
    chunk: int,
    flags: list[bool],
    held: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The recomputing sweep: ``(dx, dw, db)`` for per-row coefficients of the statistics
    (an empty tensor for each one not wanted). ``flags``: Triton, then which of ``dx, dw, db``;
    ``held``: the forward sweep's buffer holding the last chunk's logits (:func:`sweep`), used
    up (overwritten)."""
    opts = RowOptions(cap, temperature, False, c_ent is not None, False, chunk, flags[0])
    grads = new_grads(x, w, b, flags[1:4])
    c = Coefficients(c_lse, c_uy, c_sm, c_ent)
    sweep(x, w, b, y, cw, opts, lambda lo, hi, _lse: c.rows(lo, hi), grads, held=held)
    return tuple(_empty(x) if g is None else g for g in (grads.dx, grads.dw, grads.db))  # type: ignore[return-value]


@backward_op.register_vmap
def _backward_vmap(
    info: Any, in_dims: tuple[int | None, ...], *args: Any
) -> tuple[tuple[Tensor, ...], tuple[int, ...]]:
    """The sweep of each sample of a ``vmap`` (a compiled ``jacrev``: eagerly, transforms take
    the functional path), stacked; no held logits. ``args``: :func:`backward_op`'s, its nine
    tensors first."""
    tensors, options = args[:9], args[9:-1]
    outs = [
        backward_op(
            *(
                t if t is None or d is None else t.select(d, i)
                for t, d in zip(tensors, in_dims[:9], strict=True)
            ),
            *options,
            None,
        )
        for i in range(info.batch_size)
    ]
    return tuple(torch.stack([o[k] for o in outs]) for k in range(3)), (0, 0, 0)


@backward_op.register_fake
def _backward_fake(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    c_lse: Tensor,
    c_uy: Tensor,
    c_sm: Tensor | None,
    c_ent: Tensor | None,
    cap: float | None,
    temperature: float,
    chunk: int,
    flags: list[bool],
    held: Tensor | None,
) -> tuple[Tensor, ...]:
    acc = acc_dtype(x.dtype)
    return (
        torch.empty_like(x) if flags[1] else _empty(x),
        w.new_empty(w.shape, dtype=acc) if flags[2] else _empty(x),
        w.new_empty(w.shape[0], dtype=acc) if flags[3] and b is not None else _empty(x),
    )
