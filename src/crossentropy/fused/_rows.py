r"""The per-row mathematics of the fused linear + cross-entropy, in one place.

A chunk's raw logits :math:`z = W x + b` are transformed, :math:`u = z / T` then
:math:`u \leftarrow \mathrm{cap}\tanh(u / \mathrm{cap})` with ``softcap``, and each row yields its
*statistics*: the log-sum-exp :math:`\mathrm{lse}`, the target's logit :math:`u_y`, the
(class-weighted) logit sum :math:`s = \sum_c w_c u_c` (label smoothing), the softmax's entropy
:math:`H = \mathrm{lse} - \sum_c p_c u_c` and whether :math:`\arg\max_c z_c = y`. Every output of
the op is a function of these statistics (:func:`row_terms`), so a gradient with respect to the
logits has one form, given per-row coefficients :math:`c` of the statistics:

.. math::

    \frac{\partial L}{\partial u} = c_{\mathrm{lse}}\, p + c_y\, e_y + c_s\, w
        - c_H\, p \odot (\log p + H),

then times :math:`(1 - \tanh^2)` with ``softcap`` and :math:`1/T`. Three implementations hold
it: :class:`TorchRows` (in place on the chunk buffer, the fast path on any device),
:func:`functional_grad` (out-of-place, for ``torch.func``'s transforms and the forward-mode
derivative) and the Triton kernels (``_triton.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from crossentropy.fused._terms import Coefficients, Stats, loss_coefficients, row_terms

__all__ = [
    "Coefficients",
    "Factored",
    "RowOptions",
    "RowStep",
    "Stats",
    "TorchRows",
    "functional_grad",
    "loss_coefficients",
    "row_terms",
]  # Stats, Coefficients and the loss's composition live in _terms.py (any array library)


@dataclass(frozen=True)
class RowOptions:
    """What one sweep computes: the transform of the logits and the statistics wanted."""

    cap: float | None  # softcap
    temperature: float  # the logits are divided by it before everything else
    smooth: bool  # the (class-weighted) logit sum, for label smoothing
    entropy: bool  # the softmax's entropy (an output, or a gradient through it)
    hits: bool  # whether the raw logits' argmax is the target
    chunk: int
    triton: bool  # the per-row work as Triton kernels (CUDA, or the interpreter)


class Factored(NamedTuple):
    """A gradient left in factored form, ``G = diag(p) P + c_y e_y + c_s w`` with the buffer
    holding ``P``, so the sweep scales the ``[rows, D]`` products instead of ``[rows, V]``."""

    p: Tensor
    uy: Tensor
    sm: Tensor | None


class RowStep(Protocol):
    """The per-row step of a sweep: :class:`TorchRows` or the Triton twin."""

    def stats(self, raw: Tensor, y: Tensor, acc_buf: Tensor | None, grad: bool) -> Stats: ...

    def grad(self, c: Coefficients) -> Factored | None: ...


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


class TorchRows:
    """The in-place per-row step with torch operations: :meth:`stats` turns the chunk buffer
    into the softmax probabilities (in float32 for half precision, in ``acc_buf``), and
    :meth:`grad` overwrites the buffer with the gradient with respect to the raw logits, or,
    where that gradient is linear in the probabilities (full precision, no softcap, no entropy
    term), leaves them and returns the :class:`Factored` form. The log-sum-exp is
    ``m - log max(p)``, which never underflows; the entropy is
    ``(lse - m) - sum p (u - m)``."""

    def __init__(self, opts: RowOptions, cw: Tensor | None) -> None:
        self.opts, self.cw = opts, cw
        self._scratch: dict[str, Tensor] = {}  # softcap's tanh, the entropy's u - m

    def _buffer(self, name: str, like: Tensor) -> Tensor:
        """A chunk-sized scratch buffer, allocated once per sweep (a fresh ``[rows, V]``
        tensor per chunk costs its page faults every time)."""
        buf = self._scratch.get(name)
        if buf is None or buf.shape[0] < like.shape[0]:
            buf = self._scratch[name] = torch.empty_like(like)
        return buf[: like.shape[0]]

    def stats(self, raw: Tensor, y: Tensor, acc_buf: Tensor | None, grad: bool) -> Stats:
        o = self.opts
        hit = raw.argmax(dim=1) == y if o.hits else None
        z = raw if acc_buf is None else acc_buf.copy_(raw)
        if o.temperature != 1.0:
            z.div_(o.temperature)
        self.th = None
        if o.cap is not None:
            z.div_(o.cap).tanh_()
            self.th = self._buffer("th", z).copy_(z) if grad else None
            z.mul_(o.cap)
        uy = z.gather(1, y[:, None])[:, 0]
        sm = None
        if o.smooth:
            sm = z.sum(dim=1) if self.cw is None else z @ self.cw
        m = z.amax(dim=1)
        # with the entropy: q = u - m (finite where u = -inf, so p q = 0 there), then p q
        q = None
        if o.entropy:
            q = torch.sub(z, m[:, None], out=self._buffer("q", z))
            q.clamp_(min=torch.finfo(z.dtype).min)
        torch.ops.aten._softmax.out(z, 1, False, out=z)  # in place: the probabilities
        shift = -torch.log(z.amax(dim=1))  # lse - m, with its digits (not lse's rounding)
        lse = m + shift
        ent = None
        if q is not None:
            # H = (lse - m) - sum p (u - m): no cancellation against the size of the logits
            ent = shift - q.mul_(z).sum(dim=1)
            ent = ent.clamp_(min=0)  # a hair below 0 by rounding (a near one-hot row): 0
            self.shift = shift
        self.raw, self.p, self.y, self.ent, self.pq = raw, z, y, ent, q
        return Stats(lse, uy, sm, ent, hit)

    def grad(self, c: Coefficients) -> Factored | None:
        """The gradient with respect to the raw logits (after :meth:`stats` with ``grad``):
        factored where it is linear in the probabilities, else over the chunk buffer."""
        o, g = self.opts, self.p
        # - c_H p (log p + H) = c_H ((lse - m) - H) p - c_H p (u - m)
        scale = c.lse
        if c.ent is not None and self.ent is not None:
            scale = c.lse + c.ent * (self.shift - self.ent)
        if g is self.raw and o.cap is None and c.ent is None:
            if o.temperature == 1.0:
                return Factored(scale, c.uy, c.sm)
            t = o.temperature
            return Factored(scale / t, c.uy / t, None if c.sm is None else c.sm / t)
        g.mul_(scale[:, None])
        if c.ent is not None and self.pq is not None:
            g.sub_(self.pq.mul_(c.ent[:, None]))
        g.scatter_add_(1, self.y[:, None], c.uy[:, None])
        if c.sm is not None:
            if self.cw is None:
                g.add_(c.sm[:, None])
            else:
                g.addr_(c.sm, self.cw)
        if self.th is not None:
            g.mul_(self.th.mul_(self.th).neg_().add_(1))
        if o.temperature != 1.0:
            g.div_(o.temperature)
        if g is not self.raw:
            self.raw.copy_(g)
        return None


def functional_grad(
    z: Tensor, y: Tensor, cw: Tensor | None, opts: RowOptions, coefs: Coefficients
) -> Tensor:
    """The gradient with respect to a chunk of raw logits for per-row ``coefs``, with
    out-of-place operations only (``torch.func`` may batch any argument): the reference the
    in-place and Triton steps are held against, used under ``torch.func`` and for forward-mode
    derivatives."""
    z = z.to(_acc(z.dtype))
    u = z / opts.temperature if opts.temperature != 1.0 else z
    th = None
    if opts.cap is not None:
        th = torch.tanh(u / opts.cap)
        u = opts.cap * th
    lse = torch.logsumexp(u, dim=-1)
    lse_safe = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
    p = torch.exp(u - lse_safe[..., None])
    g: Tensor = p * coefs.lse[..., None]
    if coefs.ent is not None:  # - c_H p (log p + H), with 0 log 0 = 0
        plogp = torch.special.xlogy(p, p)
        ent = -plogp.sum(dim=-1)
        g = g - coefs.ent[..., None] * (plogp + p * ent[..., None])
    classes = torch.arange(u.shape[-1], device=u.device)
    g = g + torch.where(y[..., None] == classes, coefs.uy[..., None], 0.0)
    if coefs.sm is not None:
        g = g + coefs.sm[..., None] * (1.0 if cw is None else cw.to(u.dtype))
    if th is not None:
        g = g * (1 - th * th)
    if opts.temperature != 1.0:
        g = g / opts.temperature
    return g
