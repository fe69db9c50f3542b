"""The chunked PyTorch path of the fused linear + cross-entropy (any device; the reference)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import array_api_compat.torch as xpt
import torch
from torch import Tensor

from crossentropy._lib.checks import check_choice, check_int, check_number, shape_str
from crossentropy._lib.namespace import autocast_enabled
from crossentropy._lib.policy import Validate, reads
from crossentropy.losses.classification import index_targets
from crossentropy.losses.options import SoftmaxOptions

__all__ = ["FusedOptions", "fused_loss", "linear_cross_entropy"]

# Rows per chunk: about this many float32 logits are alive at a time (one buffer, reused).
_CHUNK_ELEMENTS = 1 << 24


def _acc(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype: float32 for half precision, the input's dtype otherwise."""
    return torch.promote_types(dtype, torch.float32)


@dataclass(frozen=True)
class FusedOptions(SoftmaxOptions):
    """The softmax family's options as the fused op takes them: class-index targets on
    logits, ``reduction`` of ``"none"``, ``"mean"`` or ``"sum"``, hyperparameters as Python
    numbers, and the fused op's own ``chunk_size`` and ``kernel``."""

    chunk_size: int | None = None
    kernel: str = "auto"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.reduction, "reduction", ("none", "mean", "sum"))
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
        check_choice(self.kernel, "kernel", ("auto", "torch", "triton"))


@dataclass(frozen=True)
class RowOptions:
    eps: float  # label smoothing
    z_loss: float
    cap: float | None  # softcap
    temperature: float  # the logits are divided by it before everything else
    chunk: int
    triton: bool  # the per-row step as a Triton kernel (CUDA, or the interpreter)


@dataclass
class _Grads:
    """Gradient accumulators of one pass; ``None`` where no gradient is wanted."""

    dx: Tensor | None
    dw: Tensor | None
    db: Tensor | None


def _rows_torch(
    raw: Tensor, y: Tensor, scale: Tensor | None, opts: RowOptions, acc_buf: Tensor | None
) -> Tensor:
    """The per-row work on one chunk of logits with torch operations (any device).

    Returns each row's loss; with a row ``scale``, overwrites ``raw`` with the
    gradient of ``sum(scale * loss)`` with respect to it. Works in ``acc_buf`` (float32) when
    ``raw`` is half precision. The log-sum-exp comes from the row maximum ``m`` and the largest
    probability, ``lse = m - log max(p)``, which never underflows.
    """
    z = raw if acc_buf is None else acc_buf.copy_(raw)
    if opts.temperature != 1.0:
        z.div_(opts.temperature)
    th = None
    if opts.cap is not None:
        z.div_(opts.cap).tanh_()
        th = z.clone() if scale is not None else None
        z.mul_(opts.cap)
    v = z.shape[1]
    m = z.amax(dim=1)
    zy = z.gather(1, y[:, None])[:, 0]
    zsum = z.sum(dim=1) if opts.eps else None
    torch.ops.aten._softmax.out(z, 1, False, out=z)  # in place: the probabilities
    lse = m - torch.log(z.amax(dim=1))
    loss = lse - (1 - opts.eps) * zy
    if zsum is not None:
        loss = loss - (opts.eps / v) * zsum
    if opts.z_loss:
        loss = loss + opts.z_loss * lse * lse
    if scale is not None:
        g = z.mul_((scale * (1 + 2 * opts.z_loss * lse) if opts.z_loss else scale)[:, None])
        g.scatter_add_(1, y[:, None], (-(1 - opts.eps) * scale)[:, None])
        if opts.eps:
            g.sub_((opts.eps / v) * scale[:, None])
        if th is not None:
            g.mul_(th.mul_(th).neg_().add_(1))
        if opts.temperature != 1.0:
            g.div_(opts.temperature)
        if acc_buf is not None:
            raw.copy_(g)
    return loss


def _pass(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    y: Tensor,
    opts: RowOptions,
    scale: Tensor | None,
    grads: _Grads | None,
) -> Tensor:
    """One sweep over the tokens, a chunk at a time: the per-row loss and, with a row
    ``scale``, the gradients of ``sum(scale * loss)`` accumulated into ``grads`` (``scale``
    without ``grads`` is wasted work: pass neither for the loss alone).

    Each chunk's logits live in one reused buffer (in the input's dtype), which the per-row step
    overwrites with the gradient with respect to the logits,
    ``a_n softmax(z_n) - b_n e_{y_n} - s_n eps / V`` (times the softcap's derivative), with
    ``a = s (1 + 2 z_loss lse)`` and ``b = s (1 - eps)``; two matrix products then give the
    input and weight gradients: 6·N·D·V FLOPs in all.
    """
    n, v = x.shape[0], w.shape[0]
    acc = _acc(x.dtype)
    rows = max(1, min(opts.chunk, n))
    buf = torch.empty(rows, v, dtype=x.dtype, device=x.device)
    acc_buf = None if acc == x.dtype else torch.empty(rows, v, dtype=acc, device=x.device)
    loss = torch.empty(n, dtype=acc, device=x.device)
    if opts.triton:
        from crossentropy.fused._triton import rows_triton as step
    else:
        step = _rows_torch
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        xs, g = x[lo:hi], buf[: hi - lo]
        if b is None:
            torch.mm(xs, w.T, out=g)
        else:
            torch.addmm(b, xs, w.T, out=g)
        s = None if scale is None else scale[lo:hi]
        loss[lo:hi] = step(g, y[lo:hi], s, opts, None if acc_buf is None else acc_buf[: hi - lo])
        if grads is None or s is None:
            continue
        if grads.dx is not None:
            torch.mm(g, w, out=grads.dx[lo:hi])
        if grads.dw is not None:
            if acc_buf is None:
                grads.dw.addmm_(g.T, xs)
            else:
                grads.dw.add_(g.T @ xs)
        if grads.db is not None:
            grads.db.add_(g.sum(dim=0, dtype=acc))
    return loss


def _transformed_grads(
    x: Tensor, w: Tensor, b: Tensor | None, y: Tensor, opts: RowOptions, scale: Tensor
) -> _Grads:
    """The gradients of ``sum(scale * loss)`` with out-of-place operations only, each chunk's
    logit gradient from the functional core: the backward pass under ``torch.func``, where
    ``scale`` may be batched (``jacrev`` maps the backward over cotangents)."""
    from crossentropy.losses.classification import softmax_value_and_grad

    options = SoftmaxOptions(
        reduction="none",
        ignore_index=-1,
        label_smoothing=opts.eps,
        z_loss=opts.z_loss,
        softcap=opts.cap,
        validate=False,
    )
    dx, dw, db = [], torch.zeros_like(w, dtype=_acc(w.dtype)), None
    if b is not None:
        db = torch.zeros_like(b, dtype=_acc(b.dtype))
    rows = max(1, min(opts.chunk, x.shape[0]))
    for lo in range(0, x.shape[0], rows):
        xs = x[lo : lo + rows]
        z = xs @ w.T if b is None else torch.addmm(b, xs, w.T)
        z = z.to(_acc(z.dtype)) / opts.temperature
        _, g = softmax_value_and_grad(z, y[lo : lo + rows], None, options)
        g = (g * (scale[lo : lo + rows, None] / opts.temperature)).to(x.dtype)
        dx.append(g @ w)
        dw = dw + (g.T @ xs).to(dw.dtype)
        if db is not None:
            db = db + g.sum(dim=0, dtype=db.dtype)
    return _Grads(torch.cat(dx) if dx else torch.zeros_like(x), dw, db)


def _new_grads(x: Tensor, w: Tensor, b: Tensor | None, wanted: tuple[bool, ...]) -> _Grads:
    acc = _acc(x.dtype)
    return _Grads(
        dx=torch.empty_like(x) if wanted[0] else None,
        dw=torch.zeros(w.shape, dtype=acc, device=w.device) if wanted[1] else None,
        db=torch.zeros(w.shape[0], dtype=acc, device=w.device)
        if wanted[2] and b is not None
        else None,
    )


_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _use_triton(kernel: str, x: Tensor) -> bool:
    """Whether the Triton per-row kernel runs (``kernel`` resolved)."""
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


def _scaled(g: Tensor, go: Tensor | None, *, in_place: bool) -> Tensor:
    """A gradient formed in the forward pass times the upstream gradient ``go``: in place under
    plain autograd (the buffer is the op's own, so no second weight-sized tensor is held), out
    of place under ``torch.func``, whose ``jacrev`` maps the backward over cotangents."""
    if go is None:
        return g
    return g.mul_(go) if in_place else g * go


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


class _LinearCrossEntropy(torch.autograd.Function):
    """``"mean"`` and ``"sum"`` form the gradients during the forward pass (6·N·D·V FLOPs) and
    the backward pass only scales them by the upstream gradient; ``"none"`` needs the per-row
    upstream gradient, so its backward pass recomputes each chunk's logits (8·N·D·V).

    Written for ``torch.func`` as well as autograd: the forward takes no context and returns
    the gradients it formed (empty tensors where none), which :meth:`setup_context` keeps;
    :meth:`vmap` maps the op over a batch one element at a time; the backward of ``"mean"`` and
    ``"sum"`` is one out-of-place product, so ``jacrev`` can map it over cotangents.
    """

    @staticmethod
    def forward(
        x: Tensor,
        w: Tensor,
        b: Tensor | None,
        target: Tensor,
        ignore_index: int,
        reduction: str,
        eps: float,
        z_loss: float,
        cap: float | None,
        temperature: float,
        chunk: int,
        triton: bool,
        empty_mean: float,
        wanted: tuple[bool, bool, bool],
        out_dtype: torch.dtype,
    ) -> tuple[Tensor, ...]:
        opts = RowOptions(eps, z_loss, cap, temperature, chunk, triton)
        valid = target != ignore_index
        y = torch.where(valid, target, torch.zeros_like(target))
        mask = valid.to(_acc(x.dtype))
        count = mask.sum()
        early = reduction != "none" and any(wanted)
        # d(output)/d(row loss): the per-row scale of the gradient before the upstream one
        scale = mask / count.clamp(min=1) if reduction == "mean" else mask
        grads = _new_grads(x, w, b, wanted) if early else None
        rows = _pass(x, w, b, y, opts, scale if early else None, grads)
        rows = torch.where(valid, rows, torch.zeros_like(rows))
        if reduction == "none":
            out = rows
        elif reduction == "sum":
            out = rows.sum()
        elif math.isnan(empty_mean):
            out = rows.sum() / count
        else:
            out = torch.where(count > 0, rows.sum() / count.clamp(min=1), empty_mean)
        formed = (None, None, None) if grads is None else (grads.dx, grads.dw, grads.db)
        return (out.to(out_dtype), y, scale, *(_empty(x) if g is None else g for g in formed))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        x, w, b = inputs[:3]
        _, y, scale, dx, dw, db = output
        ctx.mark_non_differentiable(y, scale, dx, dw, db)
        # no zero-filled upstream gradients for those outputs (weight-sized for dw)
        ctx.set_materialize_grads(False)
        ctx.opts = RowOptions(*inputs[6:12])
        ctx.wanted = inputs[13]
        # an empty 1-D tensor marks a gradient not formed (a formed db has V >= 1 entries)
        formed = [None if tuple(g.shape) == (0,) else g for g in (dx, dw, db)]
        early = inputs[5] != "none" and any(ctx.wanted)
        ctx.grads = _Grads(*formed) if early else None
        ctx.dtypes = (x.dtype, w.dtype, None if b is None else b.dtype)
        # Saved also when the gradients are ready: a second backward (retain_graph) recomputes.
        ctx.save_for_backward(x, w, b, y, scale)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor, *unused: Any) -> tuple[Tensor | None, ...]:
        # torch.func's transforms run every backward with gradients on (a grad of a grad
        # then fails there: these gradients have no graph); plain autograd only when asked to
        if torch.is_grad_enabled() and torch._C._functorch.maybe_current_level() is None:
            raise RuntimeError(
                "linear_cross_entropy does not support double backward (create_graph=True)"
            )
        grads: _Grads | None = ctx.grads
        ctx.grads = None  # the buffers now belong to autograd
        transformed = torch._C._functorch.maybe_current_level() is not None
        if grads is None:  # "none", or a second backward: recompute with the upstream gradient
            x, w, b, y, scale = ctx.saved_tensors
            row_scale = grad_out.to(scale.dtype) * scale
            if transformed:
                grads = _transformed_grads(x, w, b, y, ctx.opts, row_scale)
            else:
                grads = _new_grads(x, w, b, ctx.wanted)
                _pass(x, w, b, y, ctx.opts, row_scale, grads)
            go = None
        else:  # formed in the forward pass: scale by the (scalar) upstream gradient
            go = grad_out
        return (
            *(
                None if g is None else _scaled(g, go, in_place=not transformed).to(dt)
                for g, dt in zip((grads.dx, grads.dw, grads.db), ctx.dtypes, strict=True)
            ),
            *([None] * 12),
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
    temperature: float = 1.0,
    chunk_size: int | None = None,
    empty_mean: float = math.nan,
    validate: Validate | None = None,
    kernel: str = "auto",
) -> Tensor:
    r"""Cross-entropy of ``input @ weight.T + bias`` against class indices, a chunk of tokens at
    a time, so the ``[N, V]`` logits never exist at once.

    .. math::

        \ell_n = -\log \operatorname{softmax}\bigl((W x_n + b) / T\bigr)_{y_n}

    Equal to ``crossentropy.cross_entropy((input @ weight.T + bias) / temperature, target, ...)``
    with the same keywords (``ignore_index``, ``reduction`` of ``"mean"`` over non-ignored
    tokens, ``"sum"`` or ``"none"``, ``label_smoothing``, ``z_loss``, ``softcap``,
    ``empty_mean``), with exact
    gradients for ``input``, ``weight`` and ``bias``. Half-precision inputs are multiplied in
    their dtype; the softmax, the loss and the weight gradient accumulate in float32.

    With ``"mean"`` or ``"sum"`` and a gradient to come, the gradients are formed during the
    forward pass (6·N·D·V FLOPs: the logits, then two products with the gradient of each chunk)
    and the backward pass only scales them; ``"none"`` recomputes each chunk in the backward
    pass (8·N·D·V). Memory beyond the inputs: one chunk of logits (plus a float32 copy for
    half-precision inputs, and the softcap's derivative with ``softcap``), the gradients (the
    weight's in float32) and a few per-token vectors. The gradients formed in the forward pass
    are held until the backward pass (a forward with gradients enabled and no backward pays for
    them: evaluate under ``torch.no_grad()``). Double backward is not supported; a second
    backward (``retain_graph=True``) recomputes. Under autocast the inputs are cast to the
    autocast dtype, as ``F.linear`` would, and the loss is float32 (as PyTorch's losses under
    autocast); the gradients keep the inputs' dtypes.

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
    temperature : float, default 1.0
        The sampling temperature :math:`T > 0`: the logits are divided by it before everything
        else (softcap, softmax, z-loss), as an RL trainer scores tokens sampled at :math:`T`.
    chunk_size : int, optional
        Tokens per chunk (default: about 16 M logits per chunk).
    empty_mean : float, default nan
        Value of a mean over zero valid targets.
    validate : {"auto", True, False}, optional
        When labels are checked (see :func:`crossentropy.validation`); never on CUDA under
        ``"auto"``, so the op does not synchronise with the host.
    kernel : {"auto", "torch", "triton"}
        The per-row step (softmax, loss, gradient of the logits): torch operations on any
        device, or one Triton kernel (online log-sum-exp, gradient in registers). ``"auto"``
        takes Triton for float32/float16/bfloat16 CUDA tensors when ``triton`` is installed.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.fused import linear_cross_entropy
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> round(float(linear_cross_entropy(x, w, torch.tensor([1, 2]))), 4)
    1.1429
    """
    options = FusedOptions.from_arguments(locals())
    return fused_loss(input, weight, target, bias, options)


def _refuse_higher_order() -> None:
    """The op's gradients are formed by its own passes and have no graph of their own: under two
    nested differentiating transforms (``grad`` of ``grad``, ``jacrev`` of ``jacrev``...) the
    outer one would see a zero derivative, so the call is refused instead."""
    if torch.compiler.is_compiling():
        return
    functorch = torch._C._functorch
    stack = functorch.get_interpreter_stack() or []
    differentiating = [
        i for i in stack if i.key() in (functorch.TransformType.Grad, functorch.TransformType.Jvp)
    ]
    if len(differentiating) > 1:
        raise RuntimeError(
            "linear_cross_entropy supports one level of differentiation: its gradients have "
            "no graph, so a grad of a grad (or a Hessian) is not supported"
        )


def fused_loss(
    input: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None, o: FusedOptions
) -> Tensor:
    """The engine of :func:`linear_cross_entropy` (the ``nn`` module calls it with the options
    it built at construction)."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("input and weight must be torch tensors")
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not t.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor; got {t.dtype}")
    if input.ndim < 1:
        raise ValueError("input must have at least one dimension (the features); got shape ()")
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
    if weight.shape[0] == 0:
        raise ValueError("weight must have at least one row (one class); got shape (0, D)")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},); got {shape_str(bias.shape)}")
    _refuse_higher_order()
    autocast = autocast_enabled(input.device.type)
    if autocast:  # as F.linear would: in the autocast dtype
        dt = torch.get_autocast_dtype(input.device.type)
        input, weight = input.to(dt), weight.to(dt)
        bias = None if bias is None else bias.to(dt)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{name} must have input's dtype {input.dtype}; got {t.dtype}")
    v = weight.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // max(v, 1)) if o.chunk_size is None else o.chunk_size
    use_triton = _use_triton(o.kernel, input)
    batch_shape = input.shape[:-1]
    x = input.reshape(math.prod(batch_shape), input.shape[-1])  # also for 0 features
    t = target.reshape(-1).long()
    if reads(o.validate, t):  # a label out of range: ValueError where labels may be read
        index_targets(xpt, t, v, o.ignore_index, check=True)
    out_dtype = _acc(input.dtype) if autocast else input.dtype
    # gradients to form: none without a backward to come (no_grad, inference)
    grad_on = torch.is_grad_enabled()
    wanted = (
        grad_on and x.requires_grad,
        grad_on and weight.requires_grad,
        grad_on and bias is not None and bias.requires_grad,
    )
    out: Tensor = _LinearCrossEntropy.apply(  # type: ignore[no-untyped-call]
        x,
        weight,
        bias,
        t,
        o.ignore_index,
        o.reduction,
        o.label_smoothing,
        o.z_loss,
        o.softcap,
        o.temperature,
        chunk,
        use_triton,
        o.empty_mean,
        wanted,
        out_dtype,
    )[0]
    return out.reshape(batch_shape) if o.reduction == "none" else out
