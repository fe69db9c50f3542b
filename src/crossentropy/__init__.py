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
from crossentropy._focal import focal_loss, sigmoid_focal_loss
from crossentropy._regression import (
    huber_loss,
    l1_loss,
    log_cosh_loss,
    mse_loss,
    rmse_loss,
    smooth_l1_loss,
)
from crossentropy._segmentation import dice_loss, jaccard_loss, tversky_loss
from crossentropy._special import (
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    softplus,
    xlogy,
)
from crossentropy._weights import class_weights
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
    "class_weights",
    "cross_entropy",
    "dice_loss",
    "entropy",
    "focal_loss",
    "huber_loss",
    "information",
    "jaccard_loss",
    "js_divergence",
    "kl_div",
    "kl_divergence",
    "l1_loss",
    "log_cosh_loss",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "nll_loss",
    "perplexity",
    "rmse_loss",
    "self_information",
    "sigmoid",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tversky_loss",
    "xlogy",
]
