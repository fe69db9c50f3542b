"""The fused linear + cross-entropy: options, autograd and the public function (any device)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import array_api_compat.torch as xpt
import torch
from torch import Tensor

from crossentropy._lib.checks import check_choice, check_int, check_number, shape_str
from crossentropy._lib.namespace import autocast_enabled
from crossentropy._lib.policy import Validate, reads
from crossentropy._lib.reduction import check_reduction
from crossentropy.distributed._dtensor import check_group, holds_dtensor, whole
from crossentropy.fused._ops import acc_dtype, backward_op, forward_op, no_autocast
from crossentropy.fused._rows import (
    Coefficients,
    RowOptions,
    Stats,
    functional_grad,
    loss_coefficients,
    row_terms,
)
from crossentropy.fused._terms import (
    AUX_OUTPUTS,
    LinearCrossEntropyOutput,
    aux_names,
    device_chunk,
)
from crossentropy.losses.classification import index_targets
from crossentropy.losses.options import SoftmaxOptions

__all__ = [
    "AUX_OUTPUTS",
    "FusedOptions",
    "LinearCrossEntropyOutput",
    "check_class_indices",
    "check_dtypes",
    "check_floating",
    "check_inputs",
    "check_parallel",
    "fused_loss",
    "linear_cross_entropy",
    "linear_loss",
    "row_scales",
]


@dataclass(frozen=True)
class FusedOptions(SoftmaxOptions):
    """The softmax family's options as the fused op takes them: class-index targets on
    logits, ``reduction`` of ``"none"``, ``"mean"`` or ``"sum"``, hyperparameters as Python
    numbers, PyTorch's ``ignore_index=None`` (-100), and the fused op's own ``temperature``,
    ``return_aux``, ``chunk_size`` and ``kernel``."""

    ignore_index: int | None = -100  # type: ignore[assignment]
    temperature: float = 1.0
    return_aux: Any = False
    chunk_size: int | None = None
    kernel: str = "auto"
    #: Derived: the per-token outputs asked for, in ``AUX_OUTPUTS`` order.
    aux: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ignore_index is None:  # PyTorch's default, -100 for class indices
            object.__setattr__(self, "ignore_index", -100)
        reduction = check_reduction(self.reduction, ("none", "mean", "sum"))  # no "batchmean"
        object.__setattr__(self, "reduction", reduction)
        super().__post_init__()
        temperature = check_number(self.temperature, "temperature", low=0.0, low_open=True)
        object.__setattr__(self, "temperature", temperature)  # frozen: normalised once
        for name in ("label_smoothing", "z_loss", "softcap"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, float):
                raise TypeError(f"{name} must be a Python number for the fused op; got an array")
        if self.chunk_size is not None:
            chunk = check_int(self.chunk_size, "chunk_size")
            if chunk < 1:
                raise ValueError(f"chunk_size must be >= 1; got {chunk}")
            object.__setattr__(self, "chunk_size", chunk)  # a Python int (NumPy's too)
        check_choice(self.kernel, "kernel", ("auto", "torch", "triton"))
        object.__setattr__(self, "aux", aux_names(self.return_aux))


@dataclass(frozen=True)
class _Plan:
    """The static part of one call (Python values only), as the autograd function takes it."""

    reduction: str
    mean: str  # "" (not a mean), "count" (empty -> empty_mean) or "items" (plain division)
    eps: float
    z_loss: float
    empty_mean: float
    rows: RowOptions
    wanted: tuple[bool, bool, bool]  # gradients of input, weight, bias
    aux: tuple[str, ...]
    out_dtype: torch.dtype

    @property
    def early(self) -> bool:
        """Whether the forward sweep forms the loss's gradients (a scalar loss to come)."""
        return self.reduction != "none" and any(self.wanted)

    def forward_flags(self) -> list[bool]:
        r = self.rows
        return [r.smooth, r.entropy, r.hits, r.triton, *self.wanted, self.holds()]

    def holds(self) -> bool:
        """Whether the forward sweep keeps its last chunk's logits for the recomputing backward
        sweep (:func:`~crossentropy.fused._ops.sweep`): when that sweep is to come (no
        gradients formed early) and runs the in-place torch rows, eagerly (under
        ``torch.compile`` and ``torch.func`` the backward pass does not take them), and no
        saved-tensor hooks are on: activation checkpointing and offloading
        (``torch.utils.checkpoint``, ``save_on_cpu``) expect the forward pass to keep nothing
        they do not see."""
        return (
            not self.early
            and any(self.wanted)
            and not self.rows.triton
            and not torch.compiler.is_compiling()
            and torch._C._functorch.maybe_current_level() is None
            and _saved_tensor_hooks() is None
        )


def _saved_tensor_hooks() -> Any:
    """The saved-tensor hooks in force (``torch.autograd.graph.saved_tensors_hooks``), if any."""
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return None if top is None else top(False)


def _w_total(cw: Tensor | None, v: int) -> float | Tensor:
    return float(v) if cw is None else cw.sum()


def _coefficients(
    plan: _Plan,
    g_out: Tensor | None,
    g_aux: dict[str, Tensor | None],
    a_ce: Tensor,
    a_z: Tensor,
    lse: Tensor,
    wy: Tensor | None,
    cw: Tensor | None,
    valid: Tensor,
    v: int,
) -> Coefficients:
    """Per-row coefficients of the statistics for the upstream gradients of the outputs."""
    acc = lse.dtype
    g = torch.zeros((), dtype=acc, device=lse.device) if g_out is None else g_out.to(acc)
    c = loss_coefficients(a_ce * g, a_z * g, lse, wy, _w_total(cw, v), v, plan.eps, plan.z_loss)
    c_lse, c_uy, c_ent = c.lse, c.uy, None
    vf = valid.to(acc)
    if g_aux.get("lse") is not None:
        c_lse = c_lse + vf * g_aux["lse"].to(acc)  # type: ignore[union-attr]
    if g_aux.get("logp") is not None:
        gl = vf * g_aux["logp"].to(acc)  # type: ignore[union-attr]
        c_lse, c_uy = c_lse - gl, c_uy + gl
    if g_aux.get("entropy") is not None:
        c_ent = vf * g_aux["entropy"].to(acc)  # type: ignore[union-attr]
    return Coefficients(c_lse, c_uy, c.sm, c_ent)


def _logit_chunks(
    x: Tensor, w: Tensor, b: Tensor | None, chunk: int
) -> Iterator[tuple[int, int, Tensor, Tensor]]:
    """``(lo, hi, x[lo:hi], logits of those rows)``, a chunk at a time, out of place."""
    step = max(1, min(chunk, x.shape[0]))
    for lo in range(0, x.shape[0], step):
        xs = x[lo : lo + step]
        yield lo, lo + step, xs, (xs @ w.T if b is None else torch.addmm(b, xs, w.T))


def _functional_grads(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    rows: RowOptions,
    c: Coefficients,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The gradients for per-row coefficients with out-of-place operations only: the backward
    pass under ``torch.func``, whose ``jacrev`` may batch the coefficients."""
    acc = acc_dtype(x.dtype)
    dx, dw = [], torch.zeros_like(w, dtype=acc)
    db = None if b is None else torch.zeros_like(b, dtype=acc)
    with no_autocast(x.device):
        for lo, hi, xs, z in _logit_chunks(x, w, b, rows.chunk):
            g = functional_grad(z, y[lo:hi], cw, rows, c.rows(lo, hi)).to(x.dtype)
            dx.append(g @ w)
            dw = dw + (g.T @ xs).to(acc)
            if db is not None:
                db = db + g.sum(dim=-2, dtype=acc)
    return (torch.cat(dx, dim=-2) if dx else torch.zeros_like(x)), dw, db


def _tangents(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    cw: Tensor | None,
    rows: RowOptions,
    coefs: list[Coefficients],
    xt: Tensor | None,
    wt: Tensor | None,
    bt: Tensor | None,
) -> list[Tensor]:
    """Forward-mode derivatives: for each coefficient set, the per-row directional derivative
    ``sum_v G[n, v] dz[n, v]`` with ``dz = xt W^T + x wt^T + bt`` and ``G`` the gradient of the
    rows' ``coefs``-weighted statistics with respect to the logits (one home for ``G``)."""
    out: list[list[Tensor]] = [[] for _ in coefs]
    with no_autocast(x.device):
        for lo, hi, xs, z in _logit_chunks(x, w, b, rows.chunk):
            dz = torch.zeros_like(z)
            if xt is not None:
                dz = dz + xt[..., lo:hi, :] @ w.T
            if wt is not None:
                dz = dz + xs @ wt.transpose(-1, -2)
            if bt is not None:
                dz = dz + bt[..., None, :]
            for k, c in enumerate(coefs):
                g = functional_grad(z, y[lo:hi], cw, rows, c.rows(lo, hi))
                out[k].append((g * dz.to(g.dtype)).sum(dim=-1))
    return [torch.cat(parts, dim=-1) for parts in out]


class _LinearCrossEntropy(torch.autograd.Function):
    """The op for autograd and ``torch.func``: the forward custom operator gives the per-row
    statistics (and, for ``"mean"``/``"sum"`` with gradients to come, the loss's gradients,
    formed in the same sweep), the outputs are composed from them with torch operations, and
    the backward pass either scales the formed gradients by the upstream gradient or recomputes
    with the backward custom operator for per-row coefficients (``"none"``, per-token outputs
    with gradients, a second backward). Under ``torch.func`` the backward is out-of-place
    torch operations (``jacrev`` batches it), :meth:`vmap` maps the op one batch element at a
    time, and :meth:`jvp` (forward mode, ``jacfwd``) contracts the same logit gradients with the
    tangent of the logits. ``torch.compile`` takes :class:`_Compiled` (no ``jvp``, which
    Dynamo does not trace)."""

    @staticmethod
    def forward(
        x: Tensor,
        w: Tensor,
        b: Tensor | None,
        y: Tensor,
        cw: Tensor | None,
        wy: Tensor | None,
        valid: Tensor,
        a_ce: Tensor,
        a_z: Tensor,
        plan: _Plan,
    ) -> tuple[Tensor, ...]:
        early = plan.early
        lse, uy, sm, ent, hit, dx, dw, db, held = forward_op(
            x,
            w,
            b,
            y,
            cw,
            wy,
            a_ce if early else None,
            a_z if early and plan.z_loss else None,
            plan.eps,
            plan.z_loss,
            plan.rows.cap,
            plan.rows.temperature,
            plan.rows.chunk,
            plan.forward_flags(),
        )
        v = w.shape[0]
        stats = Stats(
            lse, uy, sm if plan.rows.smooth else None, ent if plan.rows.entropy else None, None
        )
        ce, zl = row_terms(stats, wy, _w_total(cw, v), v, plan.eps, plan.z_loss)
        rows = a_ce * ce if zl is None else a_ce * ce + a_z * zl
        zero = torch.zeros_like(lse)
        if plan.reduction == "none":
            out = torch.where(valid, rows, zero)
        else:
            out = torch.where(valid, rows, zero).sum()
            if plan.mean == "count":
                out = torch.where(valid.any(), out, plan.empty_mean)
        aux = {
            "logp": torch.where(valid, uy - lse, zero) if "logp" in plan.aux else lse[:0] * 0,
            "entropy": torch.where(valid, ent, zero) if "entropy" in plan.aux else lse[:0] * 0,
            "lse": torch.where(valid, lse, zero),
            "correct": (hit & valid).sum() if "correct" in plan.aux else y.new_empty(0),
        }
        return (out.to(plan.out_dtype), *aux.values(), dx, dw, db, held)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        x, w, b, y, cw, wy, valid, a_ce, a_z, plan = inputs
        _, _, _, lse, correct, dx, dw, db, held = output
        ctx.mark_non_differentiable(correct, dx, dw, db, held)
        ctx.set_materialize_grads(False)  # no zero-filled upstream gradients (weight-sized dw)
        ctx.plan = plan
        # an empty 1-D tensor marks a gradient not formed (a formed db has V >= 1 entries)
        ctx.formed = (
            tuple(None if tuple(g.shape) == (0,) else g for g in (dx, dw, db))
            if plan.early
            else None
        )
        # the last chunk's logits, for the first recomputing backward pass (used up there)
        ctx.held = held if held.dim() == 2 else None
        ctx.dtypes = (x.dtype, w.dtype, None if b is None else b.dtype)
        # Saved also when the gradients are ready: a second backward (retain_graph) recomputes.
        ctx.save_for_backward(x, w, b, y, cw, wy, valid, a_ce, a_z, lse)
        if not torch.compiler.is_compiling():  # forward mode (jvp) is eager only
            ctx.save_for_forward(x, w, b, y, cw, wy, valid, a_ce, a_z, lse)

    @staticmethod
    def backward(ctx: Any, g_out: Tensor | None, *g_rest: Any) -> tuple[Tensor | None, ...]:
        # torch.func's transforms run every backward with gradients on (a grad of a grad
        # then fails there: these gradients have no graph); plain autograd only when asked to.
        # (Not asked while compiling: Dynamo cannot trace the level's Python int, and a
        # compiled graph's backward is not differentiated again.)
        compiling = torch.compiler.is_compiling()
        functorch = torch._C._functorch
        leveled = not compiling and functorch.maybe_current_level() is not None
        # batched upstream gradients (autograd.grad(is_grads_batched=True) and
        # jacobian(vectorize=True) run the backward under a vmap of their own): out of place
        batched = not compiling and any(  # (not traceable: asked eagerly only)
            g is not None and functorch.is_legacy_batchedtensor(g) for g in (g_out, *g_rest)
        )
        transformed = leveled or batched
        if torch.is_grad_enabled() and not leveled and not compiling:
            raise RuntimeError(
                "linear_cross_entropy does not support double backward (create_graph=True)"
            )
        plan: _Plan = ctx.plan
        # the upstream gradients of the per-token outputs asked for (under torch.compile the
        # others arrive as tensors too)
        g_aux = {
            k: g
            for k, g in zip(("logp", "entropy", "lse"), g_rest[:3], strict=True)
            if k in plan.aux
        }
        formed = ctx.formed
        nones = (None,) * 7
        if formed is not None and all(g is None for g in g_aux.values()):
            if not compiling:
                ctx.formed = None  # the buffers now belong to autograd
            if g_out is None:  # no gradient reaches the loss (an undefined one is zero)
                return (None, None, None, *nones)
            in_place = not transformed and not compiling
            return (
                *(
                    None if g is None else _scaled(g, g_out, in_place).to(dt)
                    for g, dt in zip(formed, ctx.dtypes, strict=True)
                ),
                *nones,
            )
        # recompute: "none", per-token outputs with gradients, or a second backward
        x, w, b, y, cw, wy, valid, a_ce, a_z, lse = ctx.saved_tensors
        c = _coefficients(plan, g_out, g_aux, a_ce, a_z, lse, wy, cw, valid, w.shape[0])
        if transformed:
            dx, dw, db = _functional_grads(x, w, b, y, cw, plan.rows, c)
        else:
            held, ctx.held = ctx.held, None
            dx, dw, db = backward_op(
                x,
                w,
                b,
                y,
                cw,
                c.lse,
                c.uy,
                c.sm,
                c.ent,
                plan.rows.cap,
                plan.rows.temperature,
                plan.rows.chunk,
                [plan.rows.triton, *ctx.needs_input_grad[:3]],
                held,
            )
        grads = (dx, dw, db)
        return (
            *(
                # a 1-D empty tensor marks a gradient not formed; an input of no rows (every
                # token ignored) still gets its (empty) gradient, so autograd reaches it
                g.to(dt) if need and g is not None and tuple(g.shape) != (0,) else None
                for g, dt, need in zip(grads, ctx.dtypes, ctx.needs_input_grad[:3], strict=True)
            ),
            *nones,
        )

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], *args: Any) -> tuple[Any, ...]:
        """One batch element at a time (each a full fused pass), the results stacked."""
        results = []
        for i in range(info.batch_size):
            one = [
                a.select(d, i) if isinstance(a, Tensor) and isinstance(d, int) else a
                for a, d in zip(args, in_dims, strict=True)
            ]
            results.append(_LinearCrossEntropy.apply(*one))  # type: ignore[no-untyped-call]
        stacked = tuple(torch.stack([r[k] for r in results]) for k in range(len(results[0])))
        return stacked, (0,) * len(stacked)


class _WithJvp(_LinearCrossEntropy):
    """Eager and ``torch.func``: with the forward-mode derivative."""

    @staticmethod
    def jvp(ctx: Any, xt: Any, wt: Any, bt: Any, *_: Any) -> tuple[Tensor | None, ...]:
        x, w, b, y, cw, wy, valid, a_ce, a_z, lse = ctx.saved_tensors
        plan: _Plan = ctx.plan
        v, acc = w.shape[0], lse.dtype
        zeros = torch.zeros_like(lse)
        loss = loss_coefficients(a_ce, a_z, lse, wy, _w_total(cw, v), v, plan.eps, plan.z_loss)
        vf = valid.to(acc)
        wanted = {
            "loss": loss,
            "logp": Coefficients(-vf, vf, None, None),
            "entropy": Coefficients(zeros, zeros, None, vf),
            "lse": Coefficients(vf, zeros, None, None),
        }
        names = ["loss", "lse", *(n for n in ("logp", "entropy") if n in plan.aux)]
        tangents = dict(
            zip(
                names,
                _tangents(x, w, b, y, cw, plan.rows, [wanted[n] for n in names], xt, wt, bt),
                strict=True,
            )
        )
        t_out = tangents["loss"]
        if plan.reduction != "none":
            t_out = t_out.sum(dim=-1)
        empty = lse.new_empty(0)
        return (
            t_out.to(plan.out_dtype),
            tangents.get("logp", empty),
            tangents.get("entropy", empty),
            tangents["lse"],
            None,
            None,
            None,
            None,
            None,
        )


class _Compiled(_LinearCrossEntropy):
    """Under ``torch.compile``: the same op without a custom ``jvp``."""


def _scaled(g: Tensor, go: Tensor, in_place: bool) -> Tensor:
    """A gradient formed in the forward pass times the upstream gradient ``go``: in place under
    plain autograd (the buffer is the op's own, so no second weight-sized tensor is held), out
    of place under ``torch.func`` (``jacrev`` maps the backward over cotangents) and
    ``torch.compile``."""
    return g.mul_(go) if in_place else g * go


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    options: object | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    temperature: float = 1.0,
    num_items_in_batch: int | float | Tensor | None = None,
    sequence_ids: Tensor | None = None,
    cu_seqlens: Tensor | None = None,
    return_aux: bool | Iterable[str] = False,
    chunk_size: int | None = None,
    empty_mean: float = math.nan,
    validate: Validate | None = None,
    kernel: str = "auto",
    process_group: Any = None,
    sequence_parallel: bool = False,
) -> Any:
    r"""Cross-entropy of ``input @ linear_weight.T + linear_bias`` against class indices, a
    chunk of tokens at a time, so the ``[N, V]`` logits never exist at once.

    .. math::

        u_n = \operatorname{cap} \tanh\bigl((W x_n + b) / (T \operatorname{cap})\bigr)

    .. math::

        \ell_n = w_{y_n} (1 - \varepsilon)(\mathrm{lse}_n - u_{n,y_n})
            + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse}_n - u_{n,c})
            + \lambda\, \mathrm{lse}_n^2

    with :math:`\mathrm{lse}_n = \log \sum_c e^{u_{n,c}}`, :math:`T` the ``temperature``,
    :math:`\varepsilon` the ``label_smoothing``, :math:`\lambda` the ``z_loss``, :math:`w` the
    class weights (``weight``; 1 without) and no softcap unless ``softcap`` is set.

    PyTorch 2.13's ``torch.nn.functional.linear_cross_entropy(input, linear_weight, target, *,
    linear_bias, weight, reduction, ignore_index, label_smoothing, options)`` with class-index
    targets and a ``(V, D)`` weight runs unchanged and gives its numbers (probability targets
    and the ``(V, d1, ..., D)`` weight of K-dimensional targets, which PyTorch's op also
    takes, are refused here): ``"mean"`` is the class-weighted mean
    :math:`\sum_n \ell_n / \sum_n w_{y_n}` over the non-ignored tokens (the z-loss term
    divided by their count), ``"sum"`` and ``"none"`` as in ``cross_entropy``;
    ``ignore_index=None`` is -100, as PyTorch maps it; ``options`` (PyTorch's chunking
    configuration) is accepted and not needed, as this op always chunks (``chunk_size``).
    Equal to
    ``crossentropy.cross_entropy((input @ linear_weight.T + linear_bias) / temperature, target,
    weight=weight, ...)`` with the same keywords, with exact gradients for ``input``,
    ``linear_weight`` and ``linear_bias`` (class weights get none: under grad mode, class
    weights that require grad are refused, as PyTorch refuses them).

    Under FSDP2 (``fully_shard``), ``linear_weight`` may be the sharded DTensor parameter
    (the head used outside its module's forward): it is all-gathered for the call and its
    gradient reduce-scattered onto the shards as the mean over the ranks, as FSDP2 by
    default reduces those of the parameters it gathers itself.

    Half-precision inputs are multiplied in their dtype; the softmax, the loss and the weight
    gradient accumulate in float32. With ``"mean"`` or ``"sum"`` and a gradient to come, the
    gradients are formed during the forward pass (6·N·D·V FLOPs) and the backward pass only
    scales them (in float16 the input's gradient is held in float32 until the upstream gradient,
    a GradScaler's scale, has multiplied it, and the logits' gradient is scaled by a power of
    two into float16's range before it is rounded for the products, so that a mean's ``1 / N``
    does not round its small entries to 0); ``"none"`` and per-token outputs that receive
    gradients recompute each chunk in the backward pass (8·N·D·V, less the last chunk's product:
    in eager mode the forward pass keeps that chunk's logits for it). Memory beyond the inputs:
    one chunk of logits, ``chunk_size`` × V (by default about 16 M logits on the CPU and 256 M
    on CUDA, 512 MiB in bfloat16), with, in the same shape, a float32 copy for half precision
    under ``kernel="torch"``, the softcap's derivative and the entropy's :math:`p \log p` when
    asked for; the gradients (the weight's in float32, and a float16 input's when formed in the
    forward pass); and a few per-token vectors. The op never synchronises with the host (labels
    are checked only where the validation policy reads them), runs under
    ``torch.compile(fullgraph=True)`` as two custom operators (a float option that changes
    between calls compiles again for each new value, up to Dynamo's recompile limit), and under
    ``torch.func`` (``grad``, ``vmap``, ``jacrev``, ``jacfwd``; without a
    ``process_group``). Double backward is not
    supported; a second backward (``retain_graph=True``) recomputes. Under autocast the inputs
    are cast to the autocast dtype, as ``F.linear`` would, and the loss is float32. In half
    precision each chunk's logits are rounded to the inputs' dtype, as ``F.linear``'s output
    is, and the softmax is taken in float32.

    Parameters
    ----------
    input : Tensor
        Hidden states ``(..., D)``.
    linear_weight : Tensor
        The output projection ``(V, D)`` (may be tied to an embedding).
    target : Tensor
        Class indices of shape ``input.shape[:-1]``.
    linear_bias : Tensor, optional
        ``(V,)``.
    weight : Tensor, optional
        Class weights ``(V,)``, as ``cross_entropy``'s ``weight``.
    reduction : {"mean", "sum", "none"}, default "mean"
        As ``cross_entropy``.
    ignore_index : int or None, default -100
        Targets equal to it are left out (``None``: -100).
    label_smoothing : float, default 0.0
        :math:`\varepsilon` in [0, 1], PyTorch's smoothing (class-weighted with ``weight``).
    options : torch.nn.LinearCrossEntropyOptions, optional
        PyTorch's chunking configuration; accepted for compatibility and not used (anything
        else is a ``TypeError``).
    z_loss : float, default 0.0
        :math:`\lambda`, PaLM's auxiliary :math:`\lambda\,\mathrm{lse}^2`.
    softcap : float, optional
        Gemma 2's logit soft-capping, :math:`\operatorname{cap} \tanh(z / \operatorname{cap})`.
    temperature : float, default 1.0
        The sampling temperature :math:`T > 0`: the logits are divided by it before everything
        else (softcap, softmax, z-loss, the per-token outputs), as an RL trainer scores tokens
        sampled at :math:`T`. A sampler that soft-caps first and then divides by :math:`T`
        (Gemma 2's capped logits, :math:`c \tanh(z / c) / T`) is the same with
        ``softcap=c / T``: :math:`(c/T) \tanh\bigl((z/T) / (c/T)\bigr) = c \tanh(z/c) / T`.
    num_items_in_batch : int, float or Tensor, optional
        With ``"mean"``: divide the (class-weighted) sum by this count instead, as Hugging
        Face's trainers do for gradient accumulation (the count of target tokens over all the
        micro-batches of a step); a micro-batch with no target tokens then gives 0. A number
        must be positive; a tensor (integer or floating) is used as it is, its value unchecked
        (reading it would synchronise with the device), so a count of 0 gives an infinite loss.
    sequence_ids : Tensor, optional
        With ``"mean"``: each token's sequence (integers in ``[0, N)``, the target's shape) for
        packed sequences; the loss is each sequence's mean, then the mean over the sequences
        that have a target token. Ids are numbered across the whole batch: tokens of two rows
        with one id are one sequence.
    cu_seqlens : Tensor, optional
        The same as boundaries: ``[0, l_1, l_1 + l_2, ..., N]`` over the flattened tokens
        (flash-attention's convention).
    return_aux : bool or collection of str, default False
        Also return per-token outputs, in a :class:`LinearCrossEntropyOutput`: ``"logp"``
        (the target's log-probability :math:`u_y - \mathrm{lse}`), ``"entropy"`` (of the
        softmax), ``"lse"`` and ``"correct"`` (the number of non-ignored tokens whose logits'
        argmax is the target); ``True`` for all. Ignored tokens give 0 and no gradient; the
        log-probability, entropy and log-sum-exp carry exact gradients. For a loss built from
        them (RL), ``reduction="none"`` forms no gradient in the forward pass. The outputs
        not asked for are ``None``: under ``torch.func.vmap``, which returns tensors only,
        return the fields used (``out.logp``) or ask for all of them.
    chunk_size : int, optional
        Tokens per chunk (default: about 16 M logits per chunk on the CPU, 256 M on CUDA, and
        at least 512 tokens).
    empty_mean : float, default nan
        Value of a mean over zero counted tokens, and of a weighted mean over counted
        tokens whose class weights sum to 0 (the z-loss keeps its mean over them); NaN
        gives PyTorch's 0 / 0.
    validate : {None, "auto", True, False}
        When labels are checked (None: the mode in force;
        see :func:`crossentropy.validation`); never on CUDA under
        ``"auto"``, so the op does not synchronise with the host, and never while
        ``torch.compile`` or ``torch.func`` traces the op, even with True (a label is not a
        value then: an out-of-range one is PyTorch's own indexing error on the CPU).
    kernel : {"auto", "torch", "triton"}, default "auto"
        The per-row step (softmax, statistics, gradient of the logits): torch operations on
        any device, or Triton kernels (online log-sum-exp, gradient in registers). ``"auto"``
        takes Triton for float32/float16/bfloat16 CUDA tensors when ``triton`` is installed.
    process_group : ProcessGroup, optional
        Vocabulary parallelism: each rank of the group holds the whole ``input`` and ``target``
        and its own rows of ``linear_weight`` (``linear_bias``, class ``weight``), the ranks'
        rows in rank order. Per chunk of tokens the ranks exchange a few numbers per token (an
        all-reduce ``MAX`` and a ``SUM``, never logits); each rank forms its rows' gradient
        locally, and the input's gradient is all-reduced once in the backward pass. As on one
        device, ``"mean"``/``"sum"`` without per-token outputs form the gradients in the
        forward sweep (a second backward then raises a ``RuntimeError``: compute the loss
        again), and the other calls recompute each chunk in the backward pass (with class
        weights, one more all-reduce of one number per token gives each token's weight
        first). Every rank returns the loss of the whole vocabulary. Not with
        ``sequence_ids``/``cu_seqlens``, ``kernel="triton"``, under ``torch.func`` or in a
        ``fullgraph=True`` compile. The ranks agree on the options, the dtype, grad mode and
        which of ``input``, ``linear_weight`` and ``linear_bias`` require grad (these pick
        the collectives). A DTensor ``linear_weight``
        (``linear_bias``, ``weight``) sharded on its first axis over the group's ranks is
        taken as this rank's rows. The loss's dtype, ``"correct"`` (argmax's lowest index
        among tied maxima) and the argument checks are the single-device op's; ranks that
        pass different token counts (without ``sequence_parallel``) or hidden sizes get a
        ``ValueError`` on every rank, from the one all-gather of the sizes each call makes.
    sequence_parallel : bool, default False
        With ``process_group``: ``input`` and ``target`` are this rank's tokens of the group's
        (Megatron's sequence parallelism; the ranks' tokens in rank order, any number each).
        The tokens are all-gathered before the projection and the input's gradient
        reduce-scattered back, each rank receiving its own tokens'. The results are those of
        all the group's tokens, the same on every rank (``"none"`` and the per-token outputs
        flattened, in rank order), as Megatron computes the loss after its gather: every rank
        backpropagates the same objective.

    Returns
    -------
    Tensor or LinearCrossEntropyOutput
        The loss; with ``return_aux``, the loss and the per-token outputs.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.fused import linear_cross_entropy
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> round(float(linear_cross_entropy(x, w, torch.tensor([1, 2]))), 4)
    1.1429
    >>> out = linear_cross_entropy(x, w, torch.tensor([1, 2]), return_aux=("logp", "correct"))
    >>> [round(v, 4) for v in out.logp.tolist()], int(out.correct)
    ([-2.1429, -0.1429], 1)
    """
    try:
        check_torch_options(options)
        # named one by one, not ``locals()``, which the Dynamo of PyTorch 2.11 cannot trace
        opts = FusedOptions(
            reduction=reduction,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            softcap=softcap,
            temperature=temperature,
            return_aux=return_aux,
            chunk_size=chunk_size,
            empty_mean=empty_mean,
            validate=validate,
            kernel=kernel,
        )
    except (TypeError, ValueError) as exc:
        if process_group is not None:  # the other ranks told, not left waiting
            from crossentropy.distributed._vocab import relay_refusal

            relay_refusal(process_group, exc, input, linear_weight)
        raise
    return linear_loss(
        input,
        linear_weight,
        target,
        linear_bias,
        opts,
        weight=weight,
        num_items_in_batch=num_items_in_batch,
        sequence_ids=sequence_ids,
        cu_seqlens=cu_seqlens,
        process_group=process_group,
        sequence_parallel=sequence_parallel,
    )


def check_torch_options(options: object) -> None:
    """Refuse an ``options`` that is neither None nor PyTorch's chunking configuration
    (accepted and unused: this op always chunks)."""
    if options is not None and type(options).__name__ != "LinearCrossEntropyOptions":
        raise TypeError(
            "options must be None or a torch.nn.LinearCrossEntropyOptions; got "
            f"{type(options).__name__}"
        )


def check_parallel(process_group: Any, sequence_parallel: object) -> None:
    """``process_group`` is a ``ProcessGroup`` or ``None``; ``sequence_parallel`` is a bool,
    and True only with a ``process_group``."""
    check_group(process_group, "process_group")
    if not isinstance(sequence_parallel, bool):
        raise TypeError(f"sequence_parallel must be True or False; got {sequence_parallel!r}")
    if sequence_parallel and process_group is None:
        raise ValueError("sequence_parallel needs a process_group")


def linear_loss(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    linear_bias: Tensor | None,
    o: FusedOptions,
    *,
    weight: Tensor | None = None,
    num_items_in_batch: int | float | Tensor | None = None,
    sequence_ids: Tensor | None = None,
    cu_seqlens: Tensor | None = None,
    process_group: Any = None,
    sequence_parallel: bool = False,
) -> Any:
    """:func:`linear_cross_entropy` with its options built: the single-device engine
    (:func:`fused_loss`), or with a ``process_group`` the vocabulary-parallel one."""
    if process_group is None:
        check_parallel(process_group, sequence_parallel)
        return fused_loss(
            input,
            linear_weight,
            target,
            linear_bias,
            o,
            weight=weight,
            num_items_in_batch=num_items_in_batch,
            sequence_ids=sequence_ids,
            cu_seqlens=cu_seqlens,
        )
    from crossentropy.distributed._vocab import sharded_linear_loss

    return sharded_linear_loss(
        input,
        linear_weight,
        target,
        linear_bias,
        o,
        group=process_group,
        weight=weight,
        num_items_in_batch=num_items_in_batch,
        sequence_parallel=sequence_parallel,
        packed=sequence_ids is not None or cu_seqlens is not None,
    )


def compiled_transform() -> tuple[Any, int] | None:
    """Under ``torch.compile``, the innermost ``torch.func`` transform being traced, as
    ``(TransformType, level)`` (levels count from 1), or None; the whole stack is not
    traceable. Dynamo calls no custom ``jvp`` (a tangent through the op comes out 0) and
    differentiates no backward again (a grad of a grad comes out 0): the callers refuse what
    would be silently wrong."""
    functorch = torch._C._functorch
    current = functorch.peek_interpreter_stack()
    if not isinstance(current, functorch.CInterpreter):  # (what Dynamo traces; not `is None`)
        return None
    from torch._functorch.pyfunctorch import coerce_cinterpreter

    inner = coerce_cinterpreter(current)
    return inner.key(), inner.level()


def _refuse_higher_order() -> None:
    """The op's gradients are formed by its own passes and have no graph of their own: under two
    nested differentiating transforms (``grad`` of ``grad``, ``jacrev`` of ``jacrev``...) the
    outer one would see a zero derivative, so the call is refused instead. Under
    ``torch.compile`` forward mode (``jvp``, ``jacfwd``) and a transform inside another are
    refused too (:func:`compiled_transform`): forward mode and a ``grad`` inside another
    transform (eager runs them; compiled they gave zeros, or failed inside Dynamo)."""
    functorch = torch._C._functorch
    if torch.compiler.is_compiling():
        found = compiled_transform()
        kind = None if found is None else found[0]
        if kind == functorch.TransformType.Jvp or (
            kind == functorch.TransformType.Grad and found is not None and found[1] >= 2
        ):
            raise RuntimeError(
                "linear_cross_entropy under torch.compile supports torch.func's reverse mode "
                "outermost (grad, vjp, jacrev) and vmap: forward mode (jvp, jacfwd) and grad "
                "inside another transform (vmap of grad, grad of grad) run eagerly only"
            )
        return
    stack = functorch.get_interpreter_stack() or []
    differentiating = [
        i for i in stack if i.key() in (functorch.TransformType.Grad, functorch.TransformType.Jvp)
    ]
    if len(differentiating) > 1:
        raise RuntimeError(
            "linear_cross_entropy supports one level of differentiation: its gradients have "
            "no graph, so a grad of a grad (or a Hessian) is not supported"
        )


_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _use_triton(kernel: str, x: Tensor) -> bool:
    """Whether the Triton per-row kernels run (``kernel`` resolved)."""
    if kernel == "torch":
        return False
    if kernel == "auto" and not (x.is_cuda and x.dtype in _TRITON_DTYPES):
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        if kernel == "auto":
            return False
        raise ImportError("kernel='triton' needs the triton package") from None
    if x.dtype not in _TRITON_DTYPES:
        raise TypeError(f"kernel='triton' takes float32, float16 or bfloat16 input; got {x.dtype}")
    if not x.is_cuda and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        raise ValueError(
            f"kernel='triton' needs CUDA tensors (or TRITON_INTERPRET=1); got a tensor on "
            f"{x.device}"
        )
    return True


def check_inputs(
    input: Tensor,
    weight: Tensor,
    target: Tensor | None,
    bias: Tensor | None,
    class_weight: Tensor | None,
    *,
    shard: bool = False,
    optional_target: bool = False,
) -> None:
    """The op's arguments: tensors of floating point (``target`` of integers, None only with
    ``optional_target``) with matching shapes, on ``input``'s device; ``weight`` has at least
    one row, unless it is a rank's ``shard`` of the vocabulary (which may hold none).
    ``torch.jit.trace`` is refused: the op decides in Python which gradients to form, from
    which inputs require them, so a trace would keep the tracing call's choice (a gradient
    missing later, without a word)."""
    if not torch.compiler.is_compiling() and torch._C._is_tracing():  # (torch.jit.is_tracing)
        raise RuntimeError(
            "the fused ops cannot be recorded by torch.jit.trace (which gradients they form "
            "depends on which inputs require them at each call); use torch.export or "
            "torch.compile"
        )
    check_floating(input, "input")
    check_floating(weight, "linear_weight")
    for name, t in (("linear_bias", bias), ("weight", class_weight)):
        if t is not None:
            check_floating(t, name)
    if class_weight is not None and class_weight.requires_grad and torch.is_grad_enabled():
        # PyTorch's ops refuse it too: the class weights get no gradient
        raise ValueError(
            "weight (the class weights) must not require grad: the loss gives them no "
            "gradient; pass weight.detach()"
        )
    if input.ndim < 1:
        raise ValueError("input must have at least one dimension (the features); got shape ()")
    if weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ValueError(  # (both named: a module's caller gave the input, not the weight)
            f"input has {input.shape[-1]} features (its last axis), so linear_weight must have "
            f"shape (V, {input.shape[-1]}); got input {shape_str(input.shape)} and "
            f"linear_weight {shape_str(weight.shape)}"
        )
    if target is not None or not optional_target:
        _check_target(input, weight, target)
    on = (("linear_weight", weight), ("target", target), ("linear_bias", bias))
    for name, t in (*on, ("weight", class_weight)):
        if t is None or t.device == input.device:
            continue
        # class weights elsewhere are moved to input's device, except to a shard's, and from
        # the meta device (which holds no values)
        moved = name == "weight" and not shard and t.device.type != "meta"
        if not moved:
            raise ValueError(f"{name} must be on input's device {input.device}; got {t.device}")
    v = weight.shape[0]
    if v == 0 and not shard:
        raise ValueError(
            "linear_weight must have at least one row (one class); got shape "
            + shape_str(weight.shape)
        )
    for name, t in (("linear_bias", bias), ("weight", class_weight)):
        if t is not None and tuple(t.shape) != (v,):
            raise ValueError(f"{name} must have shape ({v},); got {shape_str(t.shape)}")


def _check_target(input: Tensor, weight: Tensor, target: Any) -> None:
    """``target``: a tensor of integer class indices, one per row of ``input``."""
    if (
        isinstance(target, Tensor)
        and target.is_floating_point()
        and (tuple(target.shape) == (*input.shape[:-1], weight.shape[0]))
    ):
        raise TypeError(
            "target must hold class indices: probability targets (one row of V probabilities "
            "per token) are not taken by this op; compute the logits and use "
            "crossentropy.cross_entropy"
        )
    check_class_indices(target, "target")
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise ValueError(
            f"target must have shape {shape_str(input.shape[:-1])}; got {shape_str(target.shape)}"
        )


def check_floating(t: Any, name: str) -> Tensor:
    """``t`` (called ``name`` in the error) if it is a torch tensor of a floating dtype; a
    ``TypeError`` otherwise."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor; got {t.dtype}")
    return t


def check_class_indices(target: Any, name: str, what: str = "integer class indices") -> Tensor:
    """``target`` (called ``name`` in the error) if it is a torch tensor of an integer dtype
    (the class indices of a fused op, or the ``what`` the error names); a ``TypeError``
    otherwise."""
    if not isinstance(target, Tensor):
        raise TypeError(f"{name} must be a torch tensor; got {type(target).__name__}")
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"{name} must hold {what}; got {target.dtype}")
    return target


def check_dtypes(input: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """``weight`` and ``bias`` in ``input``'s dtype (a ``TypeError`` naming them), as
    ``F.linear`` requires outside autocast."""
    for name, t in (("linear_weight", weight), ("linear_bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{name} must have input's dtype {input.dtype}; got {t.dtype}")


def product_inputs(
    input: Tensor, weight: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None, torch.dtype]:
    """The tensors the op multiplies, and its loss's dtype: under autocast, all three in the
    autocast dtype (as ``F.linear`` would cast them; all float64 stay) and the loss in float32;
    otherwise as given, ``linear_weight`` and ``linear_bias`` in ``input``'s dtype (a
    ``TypeError`` naming them), and the loss in ``input``'s dtype."""
    given = (input, weight) if bias is None else (input, weight, bias)
    # (float64 products stay as they are, as autocast leaves them)
    autocast = autocast_enabled(input.device.type) and any(t.dtype != torch.float64 for t in given)
    if autocast:
        dt = torch.get_autocast_dtype(input.device.type)
        input, weight = input.to(dt), weight.to(dt)
        bias = None if bias is None else bias.to(dt)
    check_dtypes(input, weight, bias)
    return input, weight, bias, acc_dtype(input.dtype) if autocast else input.dtype


def _sequence_index(
    sequence_ids: Tensor | None, cu_seqlens: Tensor | None, target: Tensor, n: int, check: bool
) -> Tensor | None:
    """Each token's sequence (``[N]``, in ``[0, N)``), from ids or boundaries; no host sync
    unless ``check`` (the validation policy reads the values)."""
    if sequence_ids is None and cu_seqlens is None:
        return None
    if sequence_ids is not None and cu_seqlens is not None:
        raise ValueError("give sequence_ids or cu_seqlens, not both")
    name = "sequence_ids" if sequence_ids is not None else "cu_seqlens"
    t = check_class_indices(
        sequence_ids if sequence_ids is not None else cu_seqlens, name, "integers"
    )
    if t.device != target.device:
        raise ValueError(f"{name} must be on input's device {target.device}; got {t.device}")
    if sequence_ids is not None:
        if tuple(t.shape) != tuple(target.shape):
            raise ValueError(
                f"sequence_ids must have the target's shape {shape_str(target.shape)}; "
                f"got {shape_str(t.shape)}"
            )
        ids = t.reshape(-1).long()
        if check and n and bool(((ids < 0) | (ids >= n)).any()):
            raise ValueError(f"sequence_ids must lie in [0, {n}) (one id per sequence)")
        return ids
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(
            f"cu_seqlens must be 1-D with at least one entry; got {shape_str(t.shape)}"
        )
    bounds = t.long()
    if check:
        if int(bounds[0]) != 0 or int(bounds[-1]) != n:
            raise ValueError(f"cu_seqlens must start at 0 and end at {n} (the token count)")
        if bool((bounds[1:] < bounds[:-1]).any()):
            raise ValueError("cu_seqlens must be non-decreasing")
    positions = torch.arange(n, device=bounds.device)
    return (torch.searchsorted(bounds, positions, right=True) - 1).clamp(0, max(n - 1, 0))


class RowScales(NamedTuple):
    """How each row enters the reduced loss (:func:`row_scales`)."""

    ce: Tensor  #: each row's factor on its cross-entropy term
    z: Tensor  #: each row's factor on its z-loss term
    mean: str  #: the kind of mean: ``""`` (none), ``"count"`` or ``"items"``
    #: added to the reduced loss (no gradient): ``empty_mean`` for each weighted mean over
    #: counted rows of total class weight 0 (over the means); None where there is none
    fill: Tensor | None = None


def check_items(num_items_in_batch: int | float | Tensor, meta: bool = False) -> Tensor | float:
    """``num_items_in_batch`` checked: a number > 0, or a one-element tensor (its shape read,
    not its value: no host sync), not on the meta device unless the rows are (``meta``)."""
    if isinstance(num_items_in_batch, Tensor):
        if num_items_in_batch.numel() != 1:
            raise ValueError(
                "num_items_in_batch must be one count (a number or a one-element tensor); "
                f"got a tensor of shape {tuple(num_items_in_batch.shape)}"
            )
        if num_items_in_batch.dtype == torch.bool or num_items_in_batch.is_complex():
            raise TypeError(
                f"num_items_in_batch must be a count; got a tensor of {num_items_in_batch.dtype}"
            )
        if num_items_in_batch.is_meta and not meta:
            raise ValueError("num_items_in_batch is on the meta device: it holds no count")
        return num_items_in_batch
    return check_number(num_items_in_batch, "num_items_in_batch", low=0.0, low_open=True)


def row_scales(
    valid: Tensor,
    wy: Tensor | None,
    o: FusedOptions,
    num_items_in_batch: int | float | Tensor | None,
    seq: Tensor | None,
) -> RowScales:
    """Each row's factors in the reduced loss, for the cross-entropy and the z-loss terms, the
    kind of mean, and what a weighted mean of no weight adds.

    A weighted mean over counted rows whose class weights sum to 0 is ``empty_mean``, as in
    :func:`crossentropy.cross_entropy` (its rows get the factor 0 and no gradient; the z-loss
    keeps its mean over the counted rows); with ``empty_mean`` NaN it is 0 / 0, NaN with NaN
    gradients, as in PyTorch."""
    vf = valid.to(wy.dtype if wy is not None else torch.float64)
    if o.reduction != "mean":
        if num_items_in_batch is not None or seq is not None:
            raise ValueError(
                "num_items_in_batch, sequence_ids and cu_seqlens apply to reduction='mean'; "
                f"got reduction={o.reduction!r}"
            )
        # two tensors, not one twice: autograd.Function.apply under torch.compile refuses a
        # tensor given twice (a_ce and a_z when the accumulation dtype is vf's)
        return RowScales(vf, vf.clone(), "")
    weighted = vf if wy is None or o.divisor_rule(soft=False) == "count" else vf * wy
    if num_items_in_batch is not None:
        if seq is not None:
            raise ValueError("give num_items_in_batch or per-sequence means, not both")
        items = check_items(num_items_in_batch, vf.is_meta)
        if isinstance(items, Tensor):
            items = items.reshape(()).to(device=vf.device, dtype=vf.dtype)
        return RowScales(vf / items, vf / items, "items")
    one = torch.ones((), dtype=vf.dtype, device=vf.device)
    fills = not math.isnan(o.empty_mean)  # a Python float: no data-dependent branch
    # a weighted mean of no weight: factor 0 and empty_mean, or NaN (0 / 0: NaN gradients)
    off = torch.full((), 0.0 if fills else math.nan, dtype=vf.dtype, device=vf.device)
    if seq is None:
        den, count = weighted.sum(), vf.sum()
        weightless = (den == 0) & (count > 0)
        # (a negative sum of class weights divides as it is, as in PyTorch)
        a_ce = torch.where(weightless, off, vf / torch.where(den != 0, den, one))
        a_z = vf / count.clamp(min=1)
        fill = weightless.to(vf.dtype) * o.empty_mean if fills and wy is not None else None
        return RowScales(a_ce, a_z, "count", fill)
    # per-sequence sums out of place, into zeros like the rows (batched under vmap as they are)
    den_s = torch.zeros_like(vf).index_add(0, seq, weighted.to(vf.dtype))
    count_s = torch.zeros_like(vf).index_add(0, seq, vf)
    n_seq = (count_s > 0).sum().to(vf.dtype).clamp(min=1)
    count_row = torch.where(valid, count_s[seq], torch.ones_like(vf))
    weightless = (den_s == 0) & (count_s > 0)  # per sequence
    den_row = torch.where(valid & ~weightless[seq], den_s[seq], torch.ones_like(vf))
    a_ce = torch.where(weightless[seq] & valid, off, vf / (den_row * n_seq))
    fill = (
        weightless.to(vf.dtype).sum() * o.empty_mean / n_seq if fills and wy is not None else None
    )
    return RowScales(a_ce, vf / (count_row * n_seq), "count", fill)


def fused_loss(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    linear_bias: Tensor | None,
    o: FusedOptions,
    *,
    weight: Tensor | None = None,
    num_items_in_batch: int | float | Tensor | None = None,
    sequence_ids: Tensor | None = None,
    cu_seqlens: Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> Any:
    """The engine of :func:`linear_cross_entropy` (the ``nn`` module calls it with the options
    it built at construction); ``out_dtype`` overrides the loss's dtype (the Hugging Face
    integration's float32, as the models' own losses). DTensor weights (FSDP2's shards) are
    made whole for the call (``distributed/_dtensor.py``)."""
    if holds_dtensor(input, target, linear_weight, linear_bias, weight):
        if holds_dtensor(input, target):
            raise TypeError(
                "input and target must be plain tensors (a DTensor's to_local() or "
                "full_tensor()); linear_weight, linear_bias and weight may be DTensors"
            )
        linear_weight, linear_bias, weight = whole(linear_weight), whole(linear_bias), whole(weight)
    check_inputs(input, linear_weight, target, linear_bias, weight)
    _refuse_higher_order()
    input, w, b, loss_dtype = product_inputs(input, linear_weight, linear_bias)
    v = w.shape[0]
    chunk = device_chunk(v, input.is_cuda) if o.chunk_size is None else o.chunk_size
    use_triton = _use_triton(o.kernel, input)
    batch_shape = input.shape[:-1]
    x = input.reshape(math.prod(batch_shape), input.shape[-1])  # also for 0 features
    t = target.reshape(-1).long()
    n = t.shape[0]
    check = reads(o.validate, t)
    if check:  # a label out of range: ValueError where labels may be read
        index_targets(xpt, t.reshape(target.shape), v, o.ignore_index, check=True)  # its shape
    seq = _sequence_index(sequence_ids, cu_seqlens, target, n, check)
    acc = acc_dtype(input.dtype)
    ignore = -100 if o.ignore_index is None else o.ignore_index  # None: made -100 already
    valid = t != ignore
    y = torch.where(valid, t, torch.zeros_like(t))
    cw = None if weight is None else weight.detach().to(device=x.device, dtype=acc)
    wy = None if cw is None else cw[y]
    a_ce, a_z, mean, fill = row_scales(valid, wy, o, num_items_in_batch, seq)
    a_ce, a_z = a_ce.to(acc), a_z.to(acc)
    grad_on = torch.is_grad_enabled()
    eps = float(o.label_smoothing)
    if torch.compiler.is_compiling():
        # a parameter handed straight from a torch.func transform's arguments shows no
        # requires_grad to Dynamo (its gradient would be left at zeros); an alias shows it
        w = w.view_as(w)
        b = None if b is None else b.view_as(b)
    plan = _Plan(
        reduction=o.reduction,
        mean=mean,
        eps=eps,
        z_loss=float(o.z_loss),
        empty_mean=o.empty_mean,
        rows=RowOptions(
            cap=None if o.softcap is None else float(o.softcap),
            temperature=o.temperature,
            smooth=eps != 0.0,
            entropy="entropy" in o.aux,
            hits="correct" in o.aux,
            chunk=chunk,
            triton=use_triton,
        ),
        # gradients to form: none without a backward to come (no_grad, inference)
        wanted=(
            grad_on and x.requires_grad,
            grad_on and w.requires_grad,
            grad_on and b is not None and b.requires_grad,
        ),
        aux=o.aux,
        # with a fill to add, the loss stays in the accumulation dtype until it is added
        out_dtype=acc if fill is not None else out_dtype or loss_dtype,
    )
    compiling = torch.compiler.is_compiling()
    fn = _Compiled if compiling else _WithJvp
    keep, mixed = _kept_rows(valid, compiling)
    if mixed:  # ignored rows may go through the products: their hidden states must not
        # reach them (a coefficient 0 times a non-finite logit is NaN)
        x = torch.where(valid[:, None], x, x.new_zeros(()))

    def rows_of(t: Tensor) -> Tensor:  # the rows kept
        return t if keep is None else t.index_select(0, keep)

    out = fn.apply(  # type: ignore[no-untyped-call]
        rows_of(x),
        w,
        b,
        rows_of(y),
        cw,
        None if wy is None else rows_of(wy),
        rows_of(valid),
        rows_of(a_ce),
        rows_of(a_z),
        plan,
    )

    def per_row(t: Tensor) -> Tensor:  # back to every token (0 where left out), batch-shaped
        if keep is not None:
            t = t.new_zeros(n).index_put((keep,), t)
        return t.reshape(batch_shape)

    loss = per_row(out[0]) if o.reduction == "none" else out[0]
    if fill is not None:  # weighted means of no weight: empty_mean; then rounded once
        loss = (loss + fill.to(loss.dtype)).to(out_dtype or loss_dtype)
    if not o.aux:
        return loss
    per_token = dict(zip(("logp", "entropy", "lse"), out[1:4], strict=True))  # masked
    return LinearCrossEntropyOutput(
        loss,
        **{k: per_row(per_token[k]) for k in per_token if k in o.aux},
        correct=out[4] if "correct" in o.aux else None,
    )


def _kept_rows(valid: Tensor, compiling: bool) -> tuple[Tensor | None, bool]:
    """The non-ignored rows' indices where leaving the others out is free: CPU tensors in
    eager mode (elsewhere the count would synchronise with the host, or the shape would depend
    on the data); ``None`` to keep every row. And whether the rows kept may hold ignored ones
    (not known to be all valid)."""
    if compiling or valid.device.type != "cpu" or valid.ndim != 1:
        return None, True
    if torch._C._functorch.maybe_current_level() is not None:  # torch.func: fixed shapes
        return None, True
    if bool(valid.all()):
        return None, False
    return valid.nonzero().squeeze(1), False
