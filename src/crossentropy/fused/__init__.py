r"""Fused linear + cross-entropy: the loss of ``input @ weight.T + bias`` without ever holding
the ``[tokens, vocab]`` logits.

.. math::

    \ell_n = \operatorname{logsumexp}(z_n) - (1 - \varepsilon)\, z_{n, y_n}
             - \frac{\varepsilon}{V} \sum_c z_{n,c} + \lambda \operatorname{logsumexp}(z_n)^2,
    \qquad z_n = \operatorname{cap} \tanh\bigl((W x_n + b) / \operatorname{cap}\bigr)

The tokens are processed a chunk at a time: the forward pass keeps only each row's
log-sum-exp; the backward pass recomputes a chunk's logits, forms
:math:`\partial \ell / \partial z = \operatorname{softmax}(z)(1 + 2\lambda\,\mathrm{lse}) -
(1 - \varepsilon)\, e_y - \varepsilon / V` in float32, and accumulates the input, weight and bias
gradients (the weight gradient in float32 for half-precision inputs). Importing this package
imports torch.
"""

from crossentropy.fused._chunked import linear_cross_entropy

__all__ = ["linear_cross_entropy"]
