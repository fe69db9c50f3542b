"""crossentropy: cross-entropy and the losses around it, on any array library.

The functional API. Every function accepts NumPy, PyTorch, JAX, Dask or any Python Array API
array (or a Python sequence) and answers in the same library, on the same device, in the input's
floating dtype. Importing this package imports no framework (no torch, jax or dask); the
submodules ``grad``, ``metrics``, ``nn``, ``fused``, ``distributed``, ``integrations`` and
``scoring`` load on first use (``nn``, ``distributed`` and ``integrations`` import torch,
``fused`` imports torch with its torch functions and JAX with ``fused.jax``, ``scoring`` pyarrow
on its first call).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crossentropy import information
from crossentropy._lib.policy import get_validation, set_validation, validation
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
from crossentropy.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    class_weights,
    cross_entropy,
    dice_loss,
    focal_loss,
    huber_loss,
    jaccard_loss,
    kl_div,
    l1_loss,
    log_cosh_loss,
    mse_loss,
    nll_loss,
    rmse_loss,
    sigmoid_focal_loss,
    smooth_l1_loss,
    tversky_loss,
)

__version__ = "0.1.0"

_SUBMODULES = ("distributed", "fused", "grad", "integrations", "metrics", "nn", "scoring")


if TYPE_CHECKING:  # the submodules, loaded on first use (a type checker sees them, not Any)
    from crossentropy import distributed as distributed
    from crossentropy import fused as fused
    from crossentropy import grad as grad
    from crossentropy import integrations as integrations
    from crossentropy import metrics as metrics
    from crossentropy import nn as nn
    from crossentropy import scoring as scoring
else:

    def __getattr__(name: str) -> Any:
        if name in _SUBMODULES:
            return importlib.import_module(f"crossentropy.{name}")
        raise AttributeError(f"module 'crossentropy' has no attribute {name!r}")


__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_entropy",
    "class_weights",
    "cross_entropy",
    "dice_loss",
    "entropy",
    "focal_loss",
    "get_validation",
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
    "set_validation",
    "sigmoid",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tversky_loss",
    "validation",
    "xlogy",
]
