"""crossentropy: cross-entropy and the losses around it, on any array library.

The functional API. Every function accepts NumPy, PyTorch, JAX, Dask or any Python Array API
array (or a Python sequence) and answers in the same library, on the same device, in the input's
floating dtype. Importing this package imports no framework (no torch, jax or dask).
"""

from crossentropy import information
from crossentropy._classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    nll_loss,
)
from crossentropy._special import (
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    softplus,
    xlogy,
)
from crossentropy.information import (
    binary_entropy,
    entropy,
    js_divergence,
    kl_divergence,
    perplexity,
    self_information,
)

__version__ = "0.1.0"

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_entropy",
    "cross_entropy",
    "entropy",
    "information",
    "js_divergence",
    "kl_div",
    "kl_divergence",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "nll_loss",
    "perplexity",
    "self_information",
    "sigmoid",
    "softmax",
    "softplus",
    "xlogy",
]
