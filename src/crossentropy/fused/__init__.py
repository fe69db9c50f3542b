r"""Fused linear + cross-entropy: the loss of ``input @ linear_weight.T + linear_bias`` without
ever holding the ``[tokens, vocab]`` logits.

.. math::

    u_n = \operatorname{cap} \tanh\bigl((W x_n + b) / (T \operatorname{cap})\bigr)

.. math::

    \ell_n = w_{y_n} (1 - \varepsilon)(\mathrm{lse}_n - u_{n,y_n})
        + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse}_n - u_{n,c})
        + \lambda\, \mathrm{lse}_n^2

with :math:`T` the sampling temperature, :math:`w` the class weights, :math:`\varepsilon` the
label smoothing and :math:`\lambda` the z-loss. The tokens are processed a chunk at a time in
one reused buffer; each row yields its statistics (log-sum-exp, target logit, weighted logit
sum, entropy, argmax hit), from which the loss and the per-token outputs are composed. For
``"mean"`` and ``"sum"`` the forward pass also forms each chunk's gradient with respect to the
logits in place and multiplies it into the input, weight and bias gradients (the weight's in
float32 for half-precision inputs); the backward pass only scales them. ``"none"`` and per-token
outputs with gradients recompute the chunks in the backward pass. The two sweeps are
``torch.library`` custom operators with fake implementations (``torch.compile`` sees two
nodes); the per-row step runs as torch operations on any device, or as Triton kernels on CUDA.
:func:`linear_kl_div` is the same for distillation: the divergence between a teacher's and a
student's next-token distributions from their hidden states and heads.

:mod:`crossentropy.fused.jax` is the JAX version (``jax.custom_vjp`` over ``lax.scan``).
Importing this package imports no framework: torch is imported with
:func:`linear_cross_entropy` or :func:`linear_kl_div`, JAX with ``crossentropy.fused.jax``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crossentropy._lib.extras import reraise_missing
from crossentropy.fused._terms import LinearCrossEntropyOutput

if TYPE_CHECKING:
    from crossentropy.fused import jax as jax
    from crossentropy.fused._chunked import linear_cross_entropy
    from crossentropy.fused._distill import linear_kl_div

__all__ = ["LinearCrossEntropyOutput", "linear_cross_entropy", "linear_kl_div"]

_TORCH = {
    "linear_cross_entropy": "crossentropy.fused._chunked",
    "linear_kl_div": "crossentropy.fused._distill",
}


if not TYPE_CHECKING:  # a type checker sees the imports above: a misspelt name is an error

    def __getattr__(name: str) -> Any:
        if name in _TORCH:
            try:
                module = importlib.import_module(_TORCH[name])
            except ModuleNotFoundError as exc:
                reraise_missing(f"crossentropy.fused.{name}", exc)
            return getattr(module, name)
        if name == "jax":
            return importlib.import_module("crossentropy.fused.jax")
        raise AttributeError(f"module 'crossentropy.fused' has no attribute {name!r}")
