"""The loss families (a documented internal package; the public names are re-exported by
:mod:`crossentropy`).

One module per family, each with its engine (preparation, the generic forward pass, the
closed-form gradient, and the delegation to a backend's native kernel where one has the same
semantics) and its public functions:

- :mod:`~crossentropy.losses.options`: the frozen options object of each family;
- :mod:`~crossentropy.losses.classification`: ``cross_entropy``, ``nll_loss`` (softmax family);
- :mod:`~crossentropy.losses.binary`: ``binary_cross_entropy`` (sigmoid family), with logits;
- :mod:`~crossentropy.losses.focal`: ``focal_loss``, ``sigmoid_focal_loss``;
- :mod:`~crossentropy.losses.divergence`: ``kl_div``;
- :mod:`~crossentropy.losses.regression`: ``mse_loss``, ``rmse_loss``, ``l1_loss``,
  ``huber_loss``, ``smooth_l1_loss``, ``log_cosh_loss``;
- :mod:`~crossentropy.losses.overlap`: ``dice_loss``, ``jaccard_loss``, ``tversky_loss``;
- :mod:`~crossentropy.losses.weights`: ``class_weights``.
"""

from crossentropy.losses.binary import binary_cross_entropy, binary_cross_entropy_with_logits
from crossentropy.losses.classification import cross_entropy, nll_loss
from crossentropy.losses.divergence import kl_div
from crossentropy.losses.focal import focal_loss, sigmoid_focal_loss
from crossentropy.losses.overlap import dice_loss, jaccard_loss, tversky_loss
from crossentropy.losses.regression import (
    huber_loss,
    l1_loss,
    log_cosh_loss,
    mse_loss,
    rmse_loss,
    smooth_l1_loss,
)
from crossentropy.losses.weights import class_weights

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "class_weights",
    "cross_entropy",
    "dice_loss",
    "focal_loss",
    "huber_loss",
    "jaccard_loss",
    "kl_div",
    "l1_loss",
    "log_cosh_loss",
    "mse_loss",
    "nll_loss",
    "rmse_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "tversky_loss",
]
