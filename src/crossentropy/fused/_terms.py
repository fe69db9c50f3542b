r"""How the fused ops compose a row's loss from its statistics, for any array library.

The torch op (``_rows.py``, ``_chunked.py``) and the JAX op (``jax.py``) reduce each chunk of
logits to per-row statistics (:class:`Stats`); the loss and its derivative with respect to the
statistics (:class:`Coefficients`) are written here once, with arithmetic only, so that the
same lines serve torch tensors and JAX arrays (traced hyperparameters included). Importing
this module imports no framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from crossentropy._lib.checks import check_choice

__all__ = [
    "AUX_OUTPUTS",
    "CHUNK_ELEMENTS",
    "GPU_CHUNK_ELEMENTS",
    "MIN_CHUNK_ROWS",
    "SMALL_CHUNK_ROWS",
    "Coefficients",
    "LinearCrossEntropyOutput",
    "Stats",
    "aux_names",
    "default_chunk",
    "device_chunk",
    "loss_coefficients",
    "nonzero",
    "power_of_two_scale",
    "row_terms",
]

#: The per-token outputs of ``return_aux``, in their order.
AUX_OUTPUTS = ("logp", "entropy", "lse", "correct")

# About 16 M logits per chunk: larger chunks gain nothing on the CPU and cost memory; at least
# MIN_CHUNK_ROWS rows, because thinner chunks slow the logits' product down (on the 2-core CPU
# reference at V = 128256, D = 512: 256-row chunks took 9.3 s for a forward + backward pass
# against 8.2 s with 512 rows, and 130-row chunks 4.6 s for the logits alone against 3.3 s with
# 256). Sweeps that hold several chunk-sized tensors at once (the distillation op, the JAX
# program's temporaries) keep SMALL_CHUNK_ROWS.
CHUNK_ELEMENTS = 1 << 24
# On a GPU the products want more rows, and each chunk's float32 accumulation into the weight's
# gradient reads and writes V x D floats: about 256 M logits per chunk (2092 tokens at
# V = 128256; on an H200 at N = 8192, D = 4096, bf16, a forward + backward pass took 57.6 ms
# with 512-token chunks and 48.6 with 1024; 2092, 4096 and 8192 (one chunk) were level within
# the run's noise, 43.2-44.4 ms, and 8192 held 1002 MiB more: RESULTS.md).
GPU_CHUNK_ELEMENTS = 1 << 28
MIN_CHUNK_ROWS = 512
SMALL_CHUNK_ROWS = 256


def default_chunk(v: int, elements: int = CHUNK_ELEMENTS, min_rows: int = MIN_CHUNK_ROWS) -> int:
    """Tokens per chunk for a vocabulary of ``v``: ``elements`` logits, at least ``min_rows``."""
    return max(min_rows, elements // max(v, 1))


def device_chunk(v: int, cuda: bool) -> int:
    """The torch sweeps' tokens per chunk for a vocabulary of ``v`` on CUDA or elsewhere."""
    return default_chunk(v, GPU_CHUNK_ELEMENTS if cuda else CHUNK_ELEMENTS)


def aux_names(value: object) -> tuple[str, ...]:
    """The per-token outputs ``return_aux`` asks for, in :data:`AUX_OUTPUTS` order (``True``:
    all of them)."""
    if isinstance(value, bool):
        return AUX_OUTPUTS if value else ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            f"return_aux must be a bool or a collection of {', '.join(AUX_OUTPUTS)}; got {value!r}"
        )
    names = tuple(value)
    for name in names:
        check_choice(name, "return_aux", AUX_OUTPUTS)
    return tuple(n for n in AUX_OUTPUTS if n in names)


Array = Any  # a torch tensor or a JAX array


class Stats(NamedTuple):
    """Per-row statistics (``None`` where not computed); ``hit`` is boolean."""

    lse: Array
    uy: Array
    sm: Array | None
    ent: Array | None
    hit: Array | None


class Coefficients(NamedTuple):
    """Per-row coefficients of the statistics in a gradient (``None`` for zero)."""

    lse: Array
    uy: Array
    sm: Array | None
    ent: Array | None

    def rows(self, lo: int, hi: int) -> Coefficients:
        """The coefficients of rows ``lo:hi``."""
        return Coefficients(
            self.lse[lo:hi],
            self.uy[lo:hi],
            None if self.sm is None else self.sm[lo:hi],
            None if self.ent is None else self.ent[lo:hi],
        )


class LinearCrossEntropyOutput(NamedTuple):
    """The loss and the per-token outputs asked for with ``return_aux`` (``None`` for the
    others). Per-token outputs have the target's shape, are 0 at ignored tokens, and are in
    float32 for half-precision inputs (the input's dtype otherwise); ``correct`` is a 0-d
    integer count (int64 in torch)."""

    loss: Array
    logp: Array | None = None
    entropy: Array | None = None
    lse: Array | None = None
    correct: Array | None = None


def power_of_two_scale(xp: Any, top: Any) -> Any:
    """The power of two that brings a 0-d ``top`` (a largest magnitude) into [1, 2): exact to
    multiply by and divide by again; 1 where ``top`` is 0 or not finite. ``xp``: ``torch`` or
    ``jax.numpy``. The fused ops scale a float16 logit gradient by it before rounding it."""
    fine = xp.isfinite(top) & (top > 0)
    exponent = xp.floor(xp.log2(xp.where(fine, top, xp.ones_like(top))))
    return xp.where(fine, xp.exp2(-exponent), xp.ones_like(top))


def nonzero(value: object) -> bool:
    """Whether a hyperparameter may be nonzero: a Python number that is not 0, or an array
    (traced under ``jax.jit``, so its value is not known)."""
    return not isinstance(value, (int, float)) or value != 0


def row_terms(
    stats: Stats, wy: Array | None, w_total: float | Array, v: int | Array, eps: Any, z_loss: Any
) -> tuple[Array, Array | None]:
    r"""Each row's cross-entropy and z-loss from its statistics, as PyTorch weighs them:

    .. math::

        \mathrm{ce} = w_y (1 - \varepsilon)(\mathrm{lse} - u_y)
            + \tfrac{\varepsilon}{V}(W\,\mathrm{lse} - s), \qquad
        \mathrm{zl} = \lambda\, \mathrm{lse}^2,

    with :math:`w_y` the target's class weight (1 without), :math:`W = \sum_c w_c` (:math:`V`
    without) and :math:`s` the class-weighted logit sum. :func:`loss_coefficients` is its
    derivative."""
    nll = stats.lse - stats.uy
    ce = (1 - eps) * nll if wy is None else (1 - eps) * wy * nll
    if nonzero(eps) and stats.sm is not None:  # the sweep computes s whenever eps may be > 0
        smooth = w_total * stats.lse - stats.sm  # inf at a -inf logit, NaN if its weight is 0
        if isinstance(eps, float):
            ce = ce + (eps / v) * smooth
        else:  # a traced epsilon may be 0: it then takes none of the term
            import array_api_compat

            from crossentropy._formulas import unless_zero

            ce = ce + unless_zero(array_api_compat.array_namespace(smooth), eps / v, smooth)
    zl = z_loss * stats.lse * stats.lse if nonzero(z_loss) else None
    return ce, zl


def loss_coefficients(
    a_ce: Array,
    a_z: Array | None,
    lse: Array,
    wy: Array | None,
    w_total: float | Array,
    v: int | Array,
    eps: Any,
    z_loss: Any,
) -> Coefficients:
    """The derivative of ``sum(a_ce * ce + a_z * zl)`` (:func:`row_terms`) with respect to the
    statistics: per-row coefficients for the gradient of the logits."""
    keep = 1 - eps if wy is None else (1 - eps) * wy
    smooth = nonzero(eps)
    c_lse = a_ce * (keep + eps * w_total / v) if smooth else a_ce * keep
    if nonzero(z_loss) and a_z is not None:
        c_lse = c_lse + (2 * z_loss) * a_z * lse
    return Coefficients(c_lse, -a_ce * keep, -(eps / v) * a_ce if smooth else None, None)
