"""The fused linear + KL divergence for distillation: a student's and a teacher's hidden states
times their heads, a chunk of tokens at a time (torch, any device)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import array_api_compat.torch as xpt
import torch
from torch import Tensor

from crossentropy._lib.checks import (
    check_choice,
    check_ignore_index,
    check_int,
    check_number,
    shape_str,
)
from crossentropy._lib.policy import reads
from crossentropy.fused._chunked import (
    check_floating,
    check_inputs,
    compiled_transform,
    product_inputs,
)
from crossentropy.fused._ops import (
    Grads,
    acc_dtype,
    autocast_off,
    formed_dx_dtype,
    half_scale,
    new_grads,
    product_dtype,
    unscale,
)
from crossentropy.fused._terms import CHUNK_ELEMENTS, SMALL_CHUNK_ROWS, default_chunk
from crossentropy.losses.classification import index_targets

# Rows per chunk: the divergence holds several [rows, V] temporaries (both heads' log-softmax
# and probabilities), so its chunks are a quarter of the cross-entropy's.
_KL_CHUNK_ELEMENTS = CHUNK_ELEMENTS // 4

__all__ = ["linear_kl_div"]

_KINDS = ("forward", "reverse", "jsd")


def _plogr(p: Tensor, log_p: Tensor, log_r: Tensor) -> Tensor:
    """``p (log p - log r)`` with ``0 log 0 = 0`` (no NaN where ``p`` is 0; a NaN ``p``, of
    logits that overflowed, stays NaN)."""
    return torch.where(p == 0, torch.zeros_like(p), p * (log_p - log_r))


def kl_rows(
    s: Tensor, t: Tensor, kind: str, beta: float, temperature: float
) -> tuple[Tensor, Tensor]:
    r"""Each row's divergence between the teacher :math:`p = \operatorname{softmax}(t / T)` and
    the student :math:`q = \operatorname{softmax}(s / T)`, and its gradient with respect to
    ``s``, :math:`q \odot (g - \langle q, g \rangle) / T` with :math:`g = \partial D / \partial q`:

    - ``"forward"``: :math:`\mathrm{KL}(p \| q)`, gradient :math:`(q - p) / T`;
    - ``"reverse"``: :math:`\mathrm{KL}(q \| p)`, :math:`g = \log q - \log p + 1`;
    - ``"jsd"``: :math:`\beta\,\mathrm{KL}(p \| m) + (1 - \beta)\,\mathrm{KL}(q \| m)` with
      :math:`m = \beta p + (1 - \beta) q`, :math:`g = (1 - \beta) \log(q / m)`.
    """
    acc = acc_dtype(s.dtype)
    log_q = torch.log_softmax(s.to(acc) / temperature, dim=-1)
    log_p = torch.log_softmax(t.to(acc) / temperature, dim=-1)
    q, p = log_q.exp(), log_p.exp()
    if kind == "forward":
        return _plogr(p, log_p, log_q).sum(-1), (q - p) / temperature
    if kind == "reverse":
        terms = _plogr(q, log_q, log_p)
        loss = terms.sum(-1)
        g = torch.where(q == 0, torch.zeros_like(q), log_q - log_p)
        return loss, q * (g - loss[:, None]) / temperature
    # where beta p + (1 - beta) q of two tiny probabilities rounds to 0 (log m = -inf, an
    # infinite loss) their logs give log m; elsewhere m itself
    m = beta * p + (1 - beta) * q
    tiny = torch.logaddexp(log_p + math.log(beta), log_q + math.log1p(-beta))
    log_m = torch.where(m > 0, torch.log(m), tiny)
    loss = beta * _plogr(p, log_p, log_m).sum(-1) + (1 - beta) * _plogr(q, log_q, log_m).sum(-1)
    # rounding puts the divergence of nearly equal rows a hair below 0 (-3e-8 in float32):
    # 0 there, as js_divergence (the gradient below does not depend on the value)
    loss = torch.where(loss < 0, torch.zeros_like(loss), loss)
    g = (1 - beta) * torch.where(q == 0, torch.zeros_like(q), log_q - log_m)
    return loss, q * (g - (q * g).sum(-1, keepdim=True)) / temperature


@dataclass(frozen=True)
class _KLPlan:
    kind: str
    beta: float
    temperature: float
    chunk: int
    reduction: str
    wanted: tuple[bool, bool, bool]
    out_dtype: torch.dtype


@autocast_off
def _sweep(
    xs: Tensor,
    ws: Tensor,
    bs: Tensor | None,
    xt: Tensor,
    wt: Tensor,
    bt: Tensor | None,
    plan: _KLPlan,
    scale: Tensor | None,
    grads: Grads | None,
) -> Tensor:
    """Rows' divergences, a chunk at a time; with ``scale`` (per row), the student's gradients
    of ``sum(scale * rows)`` accumulated into ``grads``. Neither ``[N, V]`` logits tensor is
    ever whole: one chunk of each at a time. Autocast is off (:func:`autocast_off`): the
    inputs are in the dtypes to multiply in already, and a product autocast cast would leave
    its graph-less copy of the weight in autocast's cache for the caller's next ops."""
    n = xs.shape[0]
    rows = max(1, min(plan.chunk, n))
    out = torch.empty(n, dtype=acc_dtype(xs.dtype), device=xs.device)
    ps, pt = product_dtype(xs), product_dtype(xt)
    ws, bs = ws.to(ps), None if bs is None else bs.to(ps)
    wt, bt = wt.to(pt), None if bt is None else bt.to(pt)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        xsc, xtc = xs[lo:hi].to(ps), xt[lo:hi].to(pt)
        zs = xsc @ ws.T if bs is None else torch.addmm(bs, xsc, ws.T)
        zt = xtc @ wt.T if bt is None else torch.addmm(bt, xtc, wt.T)
        zs, zt = zs.to(xs.dtype), zt.to(xt.dtype)  # rounded as F.linear's logits are
        loss, g = kl_rows(zs, zt, plan.kind, plan.beta, plan.temperature)
        out[lo:hi] = loss
        if scale is None or grads is None:
            continue
        g = (g * scale[lo:hi, None]).to(ps)
        if grads.dx is not None:
            grads.dx[lo:hi] = g @ ws
        if grads.dw is not None:
            if g.dtype == torch.float16:  # scaled up (half_scale): a float16 product could
                grads.dw.addmm_(g.T.float(), xsc.float())  # overflow
            else:
                grads.dw.add_((g.T @ xsc).to(grads.dw.dtype))
        if grads.db is not None:
            grads.db.add_(g.sum(dim=0, dtype=grads.db.dtype))
    return out


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


@torch.library.custom_op("crossentropy::linear_kl_forward", mutates_args=())
def _forward_op(
    xs: Tensor,
    ws: Tensor,
    bs: Tensor | None,
    xt: Tensor,
    wt: Tensor,
    bt: Tensor | None,
    scale: Tensor | None,
    kind: str,
    beta: float,
    temperature: float,
    chunk: int,
    wanted: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(rows, dx, dw, db)``: the rows' divergences and, with ``scale``, the student's
    gradients (an empty tensor for each one not formed)."""
    plan = _KLPlan(kind, beta, temperature, chunk, "", (False, False, False), xs.dtype)
    grads = new_grads(xs, ws, bs, wanted, formed=True) if scale is not None else None
    up = None if scale is None else half_scale(product_dtype(xs), scale)
    scaled = scale if up is None or scale is None else scale * up
    rows = _sweep(xs, ws, bs, xt, wt, bt, plan, scaled, grads)
    if grads is not None:
        unscale(grads, up)
    formed = (None, None, None) if grads is None else (grads.dx, grads.dw, grads.db)
    return (rows, *(_empty(xs) if g is None else g for g in formed))  # type: ignore[return-value]


@_forward_op.register_fake
def _forward_fake(
    xs: Tensor,
    ws: Tensor,
    bs: Tensor | None,
    xt: Tensor,
    wt: Tensor,
    bt: Tensor | None,
    scale: Tensor | None,
    kind: str,
    beta: float,
    temperature: float,
    chunk: int,
    wanted: list[bool],
) -> tuple[Tensor, ...]:
    acc = acc_dtype(xs.dtype)
    early = scale is not None
    return (
        xs.new_empty(xs.shape[0], dtype=acc),
        xs.new_empty(xs.shape, dtype=formed_dx_dtype(xs.dtype))
        if early and wanted[0]
        else _empty(xs),
        ws.new_empty(ws.shape, dtype=acc) if early and wanted[1] else _empty(xs),
        ws.new_empty(ws.shape[0], dtype=acc)
        if early and wanted[2] and bs is not None
        else _empty(xs),
    )


class _LinearKL(torch.autograd.Function):
    """``"mean"``/``"sum"`` form the student's gradients in the forward pass; ``"none"`` and a
    second backward recompute both heads' chunks."""

    @staticmethod
    def forward(
        xs: Tensor,
        ws: Tensor,
        bs: Tensor | None,
        xt: Tensor,
        wt: Tensor,
        bt: Tensor | None,
        valid: Tensor,
        scale: Tensor,
        plan: _KLPlan,
    ) -> tuple[Tensor, ...]:
        early = plan.reduction != "none" and any(plan.wanted)
        rows, dx, dw, db = _forward_op(
            xs,
            ws,
            bs,
            xt,
            wt,
            bt,
            scale if early else None,
            plan.kind,
            plan.beta,
            plan.temperature,
            plan.chunk,
            list(plan.wanted),
        )
        rows = torch.where(valid, rows, torch.zeros_like(rows))
        out = rows if plan.reduction == "none" else (rows * scale).sum()
        if plan.reduction == "mean":
            out = torch.where(valid.any(), out, math.nan)
        return out.to(plan.out_dtype), dx, dw, db

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        xs, ws, bs, xt, wt, bt, _, scale, plan = inputs
        _, dx, dw, db = output
        ctx.mark_non_differentiable(dx, dw, db)
        ctx.set_materialize_grads(False)
        ctx.plan = plan
        early = plan.reduction != "none" and any(plan.wanted)
        ctx.formed = (
            tuple(None if tuple(g.shape) == (0,) else g for g in (dx, dw, db)) if early else None
        )
        ctx.dtypes = (xs.dtype, ws.dtype, None if bs is None else bs.dtype)
        ctx.save_for_backward(xs, ws, bs, xt, wt, bt, scale)

    @staticmethod
    def backward(ctx: Any, g_out: Tensor | None, *_: Any) -> tuple[Tensor | None, ...]:
        if torch._C._functorch.maybe_current_level() is not None:
            raise RuntimeError(
                "linear_kl_div does not support torch.func transforms (grad, vmap, jacrev); "
                "use loss.backward() or torch.autograd.grad"
            )
        if torch.is_grad_enabled():
            raise RuntimeError("linear_kl_div does not support double backward")
        nones = (None,) * 6
        if g_out is None:
            return (None, None, None, *nones)
        formed = ctx.formed
        if formed is None:  # the chunks recomputed by the forward operator, each row's
            # gradient scaled by the upstream one (an opaque operator: torch.compile neither
            # traces its loop over the chunks, which would fix the batch size, nor its checks)
            xs, ws, bs, xt, wt, bt, scale = ctx.saved_tensors
            plan: _KLPlan = ctx.plan
            wanted = [bool(w) for w in ctx.needs_input_grad[:3]]
            wanted[2] = wanted[2] and bs is not None
            _, dx, dw, db = _forward_op(
                xs,
                ws,
                bs,
                xt,
                wt,
                bt,
                g_out.to(scale.dtype) * scale,
                plan.kind,
                plan.beta,
                plan.temperature,
                plan.chunk,
                wanted,
            )
            formed = tuple(g if w else None for g, w in zip((dx, dw, db), wanted, strict=True))
            g_out = None
        else:
            ctx.formed = None
        return (
            *(
                None if g is None else (g if g_out is None else g * g_out).to(dt)
                for g, dt in zip(formed, ctx.dtypes, strict=True)
            ),
            *nones,
        )


def linear_kl_div(
    input: Tensor,
    linear_weight: Tensor,
    teacher_input: Tensor,
    teacher_weight: Tensor,
    *,
    linear_bias: Tensor | None = None,
    teacher_bias: Tensor | None = None,
    target: Tensor | None = None,
    ignore_index: int | None = -100,
    kind: str = "forward",
    beta: float = 0.5,
    temperature: float = 1.0,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> Tensor:
    r"""The divergence between a teacher's and a student's next-token distributions, from
    their hidden states and output heads, a chunk of tokens at a time (distillation): neither
    ``[tokens, vocab]`` logits tensor ever exists whole.

    .. math::

        q_n = \operatorname{softmax}\bigl((W_s x_n + b_s) / T\bigr), \qquad
        p_n = \operatorname{softmax}\bigl((W_t h_n + b_t) / T\bigr)

    .. math::

        \ell_n = \begin{cases}
            \mathrm{KL}(p_n \| q_n) & \text{forward} \\
            \mathrm{KL}(q_n \| p_n) & \text{reverse} \\
            \beta\,\mathrm{KL}(p_n \| m_n) + (1 - \beta)\,\mathrm{KL}(q_n \| m_n) & \text{jsd}
        \end{cases}
        \qquad m_n = \beta p_n + (1 - \beta) q_n

    Equal to ``crossentropy.kl_div`` of the materialised logits (forward KL:
    ``kl_div(log_softmax(student / T), log_softmax(teacher / T), log_target=True)``) with
    ``"mean"`` over the non-ignored tokens, PyTorch's ``"batchmean"`` (the sum divided by the
    logits' first axis: the batch of ``(B, V)`` logits, the ``B`` of ``(B, T, V)``, ignored tokens
    counted), ``"sum"`` or ``"none"``. Gradients for the student (``input``, ``linear_weight``,
    ``linear_bias``); the teacher gets none (run it under ``torch.no_grad()``). No
    :math:`T^2` factor is applied (multiply by it for Hinton's scaling). ``"mean"`` and
    ``"sum"`` form the gradients in the forward pass (8·N·D·V FLOPs with both heads);
    ``"none"`` recomputes in the backward pass. It works under ``torch.compile(fullgraph=True)``
    and ``torch.autocast`` (the heads' products in the autocast dtype, as ``F.linear``'s, the
    loss in float32); ``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``,
    ``jacfwd``) are refused with a ``RuntimeError`` (use ``loss.backward()`` or
    ``torch.autograd.grad``).

    Parameters
    ----------
    input : Tensor
        The student's hidden states ``(..., D_s)``.
    linear_weight : Tensor
        The student's output head ``(V, D_s)``.
    teacher_input : Tensor
        The teacher's hidden states ``(..., D_t)``, with ``input``'s leading shape, of any
        floating dtype (cast to ``input``'s: a bfloat16 teacher for a float32 student).
    teacher_weight : Tensor
        The teacher's output head ``(V, D_t)``, of any floating dtype (cast as
        ``teacher_input``).
    linear_bias : Tensor, optional
        The student's output bias ``(V,)``.
    teacher_bias : Tensor, optional
        The teacher's output bias ``(V,)``.
    target : Tensor, optional
        Labels of shape ``input.shape[:-1]``, in ``[0, V)`` (checked where the validation
        policy reads them, as in :func:`linear_cross_entropy`); tokens equal to
        ``ignore_index`` are left out.
    ignore_index : int or None, default -100
        The label of the tokens left out (a ``target`` is needed for it to act); None is
        -100, as in :func:`linear_cross_entropy`.
    kind : {"forward", "reverse", "jsd"}, default "forward"
        The divergence: KL(teacher ‖ student), KL(student ‖ teacher), or the generalised
        Jensen-Shannon divergence.
    beta : float, default 0.5
        The teacher's weight in the mixture of ``"jsd"``, in (0, 1).
    temperature : float, default 1.0
        Both heads' logits are divided by it.
    reduction : {"mean", "batchmean", "sum", "none"}, default "mean"
        The mean over the tokens that count (NaN when none does), the sum divided by
        ``input.shape[0]`` (PyTorch's ``kl_div``; ``V`` for a 1-D ``input``), the sum, or one
        value per token (0 for an ignored token).
    chunk_size : int, optional
        Tokens per chunk (default: about 4 M logits of each head per chunk).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.fused import linear_kl_div
    >>> x, w = torch.eye(2), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> round(float(linear_kl_div(x, w, x, 2 * w)), 4)
    0.04
    """
    compiling = torch.compiler.is_compiling()
    if (
        compiled_transform() is not None
        if compiling
        else torch._C._functorch.maybe_current_level() is not None
    ):  # refused before torch's own error from inside the transform (compiled: a zero)
        raise RuntimeError(
            "linear_kl_div does not support torch.func transforms (grad, vmap, jacrev, jacfwd); "
            "use loss.backward() or torch.autograd.grad"
        )
    # the student's side as linear_cross_entropy checks it, then the teacher's
    check_inputs(input, linear_weight, target, linear_bias, None, optional_target=True)
    # under autocast, the student's tensors cast (tracked by autograd) as F.linear would cast
    # them, the loss in float32
    input, linear_weight, linear_bias, loss_dtype = product_inputs(
        input, linear_weight, linear_bias
    )
    teacher = (
        ("teacher_input", teacher_input),
        ("teacher_weight", teacher_weight),
        ("teacher_bias", teacher_bias),
    )
    for name, t in teacher:
        if t is None and name == "teacher_bias":
            continue
        device = check_floating(t, name).device
        if device != input.device:
            raise ValueError(f"{name} must be on input's device {input.device}; got {device}")
    check_choice(kind, "kind", _KINDS)
    check_choice(reduction, "reduction", ("mean", "batchmean", "sum", "none"))
    ignore = -100 if ignore_index is None else check_ignore_index(ignore_index)
    beta = check_number(beta, "beta", low=0.0, high=1.0, low_open=True, high_open=True)
    temperature = check_number(temperature, "temperature", low=0.0, low_open=True)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    batch = input.shape[:-1]
    if tuple(teacher_input.shape[:-1]) != tuple(batch):
        raise ValueError(
            f"teacher_input must have the leading shape {shape_str(batch)}; got "
            f"{shape_str(teacher_input.shape)}"
        )
    v = linear_weight.shape[0]
    if teacher_weight.ndim != 2 or tuple(teacher_weight.shape) != (v, teacher_input.shape[-1]):
        raise ValueError(
            f"teacher_weight must have shape ({v}, {teacher_input.shape[-1]}) (linear_weight's "
            f"{v} classes, teacher_input's {teacher_input.shape[-1]} features); got "
            f"{shape_str(teacher_weight.shape)}"
        )
    if teacher_bias is not None and tuple(teacher_bias.shape) != (v,):
        raise ValueError(
            f"teacher_bias must have shape ({v},); got {shape_str(teacher_bias.shape)}"
        )
    xs = input.reshape(math.prod(batch), input.shape[-1])
    xt = teacher_input.detach().reshape(math.prod(batch), teacher_input.shape[-1])
    wt = teacher_weight.detach().to(input.dtype)
    bt = None if teacher_bias is None else teacher_bias.detach().to(input.dtype)
    xt = xt.to(input.dtype)
    if target is None:
        valid = torch.ones(xs.shape[0], dtype=torch.bool, device=xs.device)
    else:
        if reads(None, target):  # a label out of range, as linear_cross_entropy refuses it
            index_targets(xpt, target.long(), v, ignore, check=True)
        valid = target.reshape(-1) != ignore
        # ignored rows still go through the products: their hidden states must not reach them
        # (a row scale 0 times a non-finite logit is NaN in every gradient)
        xs = torch.where(valid[:, None], xs, xs.new_zeros(()))
        xt = torch.where(valid[:, None], xt, xt.new_zeros(()))
    acc = acc_dtype(input.dtype)
    vf = valid.to(acc)
    divisor = batch[0] if batch else v  # batchmean's: the materialised logits' first axis
    if reduction == "mean":
        scale = vf / vf.sum().clamp(min=1)
    elif reduction == "batchmean":
        scale = vf / max(divisor, 1)
    else:
        scale = vf
    grad_on = torch.is_grad_enabled()
    plan = _KLPlan(
        kind,
        beta,
        temperature,
        default_chunk(v, _KL_CHUNK_ELEMENTS, SMALL_CHUNK_ROWS)
        if chunk_size is None
        else int(chunk_size),
        reduction,
        (
            grad_on and input.requires_grad,
            grad_on and linear_weight.requires_grad,
            grad_on and linear_bias is not None and linear_bias.requires_grad,
        ),
        loss_dtype,
    )
    out = _LinearKL.apply(xs, linear_weight, linear_bias, xt, wt, bt, valid, scale, plan)  # type: ignore[no-untyped-call]
    loss: Tensor = out[0]
    if reduction == "batchmean" and divisor == 0:  # 0 / 0, as PyTorch's kl_div gives it
        loss = loss + math.nan  # (the gradients stay those of an empty sum: zeros)
    return loss.reshape(batch) if reduction == "none" else loss
