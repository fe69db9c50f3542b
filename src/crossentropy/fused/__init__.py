r"""Fused linear + cross-entropy: the loss of ``input @ weight.T + bias`` without ever holding
the ``[tokens, vocab]`` logits.

.. math::

    \ell_n = \operatorname{logsumexp}(z_n) - (1 - \varepsilon)\, z_{n, y_n}
             - \frac{\varepsilon}{V} \sum_c z_{n,c} + \lambda \operatorname{logsumexp}(z_n)^2,
    \qquad z_n = \operatorname{cap} \tanh\bigl((W x_n + b) / (T \operatorname{cap})\bigr)

with :math:`T` the sampling temperature (``temperature``, default 1). The tokens are processed
a chunk at a time in one reused buffer. For ``"mean"`` and ``"sum"`` the forward pass also
forms each chunk's gradient with respect to the logits,
:math:`\partial \ell / \partial z = \operatorname{softmax}(z)(1 + 2\lambda\,\mathrm{lse}) -
(1 - \varepsilon)\, e_y - \varepsilon / V` (times the softcap's derivative and :math:`1/T`),
in place, and multiplies it into the input, weight and bias gradients (the weight's in float32
for half-precision inputs); the backward pass only scales them. ``"none"`` (whose upstream
gradient is per row) recomputes the chunks in the backward pass. The per-row step runs as torch
operations on any device, or as one Triton kernel on CUDA. Importing this package imports torch.
"""

from crossentropy.fused._chunked import linear_cross_entropy

__all__ = ["linear_cross_entropy"]
