"""The registry of public functions that drives the cross-cutting suites (backends, transforms,
hostile inputs): one entry per call worth covering, with small valid inputs, the call, and
where PyTorch has the same function, PyTorch's call.

Inputs are NumPy arrays (floats in float64, labels in int64); a suite converts them to its
library. The first array is the one gradients are taken with respect to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import crossentropy as ce
from crossentropy import information

RNG = np.random.default_rng(7)
LOGITS = RNG.standard_normal((4, 3, 2))
LABELS = RNG.integers(0, 3, (4, 2))
LABELS[0, 0] = -100
LABELS_FULL = RNG.integers(0, 3, (4, 2))
PROBS = np.asarray(ce.softmax(RNG.standard_normal((4, 3, 2)), axis=1))
Q = np.asarray(ce.softmax(RNG.standard_normal((4, 3, 2)), axis=1))
BIN_T = RNG.uniform(size=(4, 3, 2))
HARD_T = (BIN_T > 0.5).astype(np.float64)
WEIGHT = np.asarray([0.5, 1.0, 2.0])


def _F() -> Any:
    import torch.nn.functional as F

    return F


@dataclass(frozen=True)
class Case:
    """One call of a public function.

    ``call(*arrays)`` computes it; ``torch_call(*arrays)`` is PyTorch's same call (tensors in,
    None where PyTorch has none); ``differentiable`` says whether a gradient with respect to
    the first array is meaningful; ``hyper`` names scalar hyperparameters that may be traced
    arrays (``name -> (value, call taking the hyperparameter)``); ``per_sample`` says whether
    the first axis is a batch of independent samples (for ``vmap``).
    """

    function: str
    arrays: tuple[np.ndarray, ...]
    call: Callable[..., Any]
    torch_call: Callable[..., Any] | None = None
    differentiable: bool = True
    per_sample: bool = True
    hyper: dict[str, tuple[float, Callable[..., Any]]] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "logsumexp": Case(
        "logsumexp",
        (LOGITS,),
        lambda x: ce.logsumexp(x, axis=1),
        lambda x: x.logsumexp(1),
    ),
    "logsumexp[tuple]": Case(
        "logsumexp",
        (LOGITS,),
        lambda x: ce.logsumexp(x, axis=(1, 2)),
        lambda x: x.logsumexp((1, 2)),
    ),
    "softmax": Case("softmax", (LOGITS,), lambda x: ce.softmax(x, axis=1), lambda x: x.softmax(1)),
    "log_softmax": Case(
        "log_softmax",
        (LOGITS,),
        lambda x: ce.log_softmax(x, axis=1),
        lambda x: x.log_softmax(1),
    ),
    "sigmoid": Case("sigmoid", (LOGITS,), ce.sigmoid, lambda x: x.sigmoid()),
    "log_sigmoid": Case("log_sigmoid", (LOGITS,), ce.log_sigmoid, lambda x: _F().logsigmoid(x)),
    "softplus": Case(
        "softplus",
        (LOGITS,),
        lambda x: ce.softplus(x, beta=2.0, threshold=3.0),
        lambda x: _F().softplus(x, beta=2.0, threshold=3.0),
    ),
    "xlogy": Case("xlogy", (PROBS, Q), ce.xlogy, lambda p, q: p.xlogy(q)),
    "self_information": Case("self_information", (PROBS,), ce.self_information),
    "entropy": Case("entropy", (PROBS,), lambda p: ce.entropy(p, axis=1, base=2)),
    "binary_entropy": Case("binary_entropy", (PROBS,), ce.binary_entropy),
    "information.cross_entropy": Case(
        "information.cross_entropy",
        (PROBS, Q),
        lambda p, q: information.cross_entropy(p, q, axis=1),
    ),
    "kl_divergence": Case("kl_divergence", (PROBS, Q), lambda p, q: ce.kl_divergence(p, q, axis=1)),
    "js_divergence": Case("js_divergence", (PROBS, Q), lambda p, q: ce.js_divergence(p, q, axis=1)),
    "perplexity": Case("perplexity", (PROBS,), lambda p: ce.perplexity(p, axis=1)),
    "cross_entropy": Case(
        "cross_entropy",
        (LOGITS, LABELS, WEIGHT),
        lambda x, y, w: ce.cross_entropy(x, y, w, label_smoothing=0.1),
        lambda x, y, w: _F().cross_entropy(x, y, w, label_smoothing=0.1),
        hyper={
            "label_smoothing": (
                0.1,
                lambda x, y, w, h: ce.cross_entropy(x, y, w, label_smoothing=h),
            )
        },
    ),
    "cross_entropy[none]": Case(
        "cross_entropy",
        (LOGITS, LABELS),
        lambda x, y: ce.cross_entropy(x, y, reduction="none", z_loss=1e-3),
        hyper={
            "z_loss": (1e-3, lambda x, y, h: ce.cross_entropy(x, y, reduction="none", z_loss=h)),
            "softcap": (2.0, lambda x, y, h: ce.cross_entropy(x, y, reduction="none", softcap=h)),
        },
    ),
    "cross_entropy[soft]": Case(
        "cross_entropy",
        (LOGITS, PROBS, WEIGHT),
        lambda x, p, w: ce.cross_entropy(x, p, weight=w, reduction="batchmean"),
    ),
    "cross_entropy[probs]": Case(
        "cross_entropy",
        (PROBS, LABELS),
        lambda p, y: ce.cross_entropy(p, y, from_logits=False),
    ),
    "cross_entropy[where]": Case(
        "cross_entropy",
        (LOGITS, LABELS_FULL, LABELS_FULL > 0),
        lambda x, y, m: ce.cross_entropy(x, y, where=m, empty_mean=0.0),
    ),
    "nll_loss": Case(
        "nll_loss",
        (LOGITS, LABELS),
        lambda x, y: ce.nll_loss(x, y, reduction="sum"),
        lambda x, y: _F().nll_loss(x, y, reduction="sum"),
    ),
    "binary_cross_entropy": Case(
        "binary_cross_entropy",
        (PROBS, BIN_T),
        lambda p, t: ce.binary_cross_entropy(p, t),
        lambda p, t: _F().binary_cross_entropy(p, t),
    ),
    "binary_cross_entropy[sklearn]": Case(
        "binary_cross_entropy",
        (PROBS, BIN_T),
        lambda p, t: ce.binary_cross_entropy(p, t, clip="sklearn"),
    ),
    "binary_cross_entropy_with_logits": Case(
        "binary_cross_entropy_with_logits",
        (LOGITS, BIN_T),
        lambda x, t: ce.binary_cross_entropy_with_logits(x, t, reduction="none"),
        lambda x, t: _F().binary_cross_entropy_with_logits(x, t, reduction="none"),
        hyper={
            "label_smoothing": (
                0.1,
                lambda x, t, h: ce.binary_cross_entropy_with_logits(x, t, label_smoothing=h),
            )
        },
    ),
    "kl_div": Case(
        "kl_div",
        (LOGITS, PROBS),
        lambda x, t: ce.kl_div(x, t, reduction="batchmean"),
        lambda x, t: _F().kl_div(x, t, reduction="batchmean"),
    ),
    "sigmoid_focal_loss": Case(
        "sigmoid_focal_loss",
        (LOGITS, BIN_T),
        lambda x, t: ce.sigmoid_focal_loss(x, t, reduction="mean"),
        hyper={
            "gamma": (1.5, lambda x, t, h: ce.sigmoid_focal_loss(x, t, gamma=h, reduction="sum")),
            "alpha": (0.3, lambda x, t, h: ce.sigmoid_focal_loss(x, t, alpha=h, reduction="sum")),
        },
    ),
    "focal_loss": Case(
        "focal_loss",
        (LOGITS, LABELS, WEIGHT),
        lambda x, y, w: ce.focal_loss(x, y, weight=w, alpha=0.5, label_smoothing=0.1),
        hyper={
            "gamma": (1.5, lambda x, y, w, h: ce.focal_loss(x, y, weight=w, gamma=h)),
            "alpha": (0.3, lambda x, y, w, h: ce.focal_loss(x, y, weight=w, alpha=h)),
        },
    ),
    "focal_loss[soft]": Case(
        "focal_loss",
        (LOGITS, PROBS, WEIGHT),
        lambda x, p, w: ce.focal_loss(x, p, weight=w, alpha=w, reduction="none"),
    ),
    "mse_loss": Case(
        "mse_loss",
        (LOGITS, BIN_T, WEIGHT[:2]),
        lambda x, t, w: ce.mse_loss(x, t, weight=w),
        lambda x, t, w: _F().mse_loss(x, t, weight=w.expand_as(x)),
    ),
    "l1_loss": Case(
        "l1_loss",
        (LOGITS, BIN_T),
        lambda x, t: ce.l1_loss(x, t, reduction="none"),
        lambda x, t: _F().l1_loss(x, t, reduction="none"),
    ),
    "rmse_loss": Case("rmse_loss", (LOGITS, BIN_T), lambda x, t: ce.rmse_loss(x, t, axis=-1)),
    "huber_loss": Case(
        "huber_loss",
        (LOGITS, BIN_T),
        lambda x, t: ce.huber_loss(x, t, delta=0.5),
        lambda x, t: _F().huber_loss(x, t, delta=0.5),
        hyper={"delta": (0.5, lambda x, t, h: ce.huber_loss(x, t, delta=h))},
    ),
    "smooth_l1_loss": Case(
        "smooth_l1_loss",
        (LOGITS, BIN_T),
        lambda x, t: ce.smooth_l1_loss(x, t, beta=0.5),
        lambda x, t: _F().smooth_l1_loss(x, t, beta=0.5),
        hyper={"beta": (0.5, lambda x, t, h: ce.smooth_l1_loss(x, t, beta=h))},
    ),
    "log_cosh_loss": Case("log_cosh_loss", (LOGITS, BIN_T), lambda x, t: ce.log_cosh_loss(x, t)),
    "dice_loss": Case(
        "dice_loss",
        (LOGITS, LABELS),
        lambda x, y: ce.dice_loss(x, y, mode="multiclass", ignore_index=-100),
        per_sample=False,
    ),
    "jaccard_loss": Case(
        "jaccard_loss",
        (LOGITS, HARD_T),
        lambda x, t: ce.jaccard_loss(x, t, mode="multilabel", aggregate="sample"),
        hyper={
            "smooth": (
                1.0,
                lambda x, t, h: ce.jaccard_loss(x, t, mode="multilabel", smooth=h),
            )
        },
    ),
    "tversky_loss": Case(
        "tversky_loss",
        (LOGITS, BIN_T),
        lambda x, t: ce.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0),
        per_sample=False,
        hyper={
            "alpha": (0.3, lambda x, t, h: ce.tversky_loss(x, t, alpha=h, smooth=1.0)),
            "gamma": (0.75, lambda x, t, h: ce.tversky_loss(x, t, gamma=h, smooth=1.0)),
        },
    ),
}

#: Public names that take no arrays to compute on (settings), or not in the input's dtype.
NOT_COMPUTATIONS = {
    "information",
    "class_weights",
    "validation",
    "set_validation",
    "get_validation",
}


def covered_functions() -> set[str]:
    """The public function names the registry covers."""
    return {c.function for c in CASES.values()}


# ---------------------------------------------------------------------------------------------
# The nn modules: constructor, inputs, and PyTorch's module of the same name where it has one.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleCase:
    """An ``nn`` module: ``make()`` builds it, ``arrays`` its (input, target) inputs (NumPy),
    ``torch_make()`` PyTorch's equivalent module (None where PyTorch has none)."""

    make: Callable[[], Any]
    arrays: tuple[np.ndarray, ...]
    torch_make: Callable[[], Any] | None = None


def _cnn() -> Any:
    import crossentropy.nn as cnn

    return cnn


def _tnn() -> Any:
    import torch

    return torch.nn


X2 = LOGITS[:, :, 0]
Y2 = LABELS_FULL[:, 0]
T2 = BIN_T[:, :, 0]

MODULES: dict[str, ModuleCase] = {
    "CrossEntropyLoss": ModuleCase(
        lambda: _cnn().CrossEntropyLoss(label_smoothing=0.1),
        (X2, Y2),
        lambda: _tnn().CrossEntropyLoss(label_smoothing=0.1),
    ),
    "CrossEntropyLoss[z_loss]": ModuleCase(
        lambda: _cnn().CrossEntropyLoss(z_loss=1e-3, softcap=5.0), (X2, Y2)
    ),
    "NLLLoss": ModuleCase(lambda: _cnn().NLLLoss(), (X2, Y2), lambda: _tnn().NLLLoss()),
    "BCELoss": ModuleCase(lambda: _cnn().BCELoss(), (PROBS[:, :, 0], T2), lambda: _tnn().BCELoss()),
    "BCEWithLogitsLoss": ModuleCase(
        lambda: _cnn().BCEWithLogitsLoss(), (X2, T2), lambda: _tnn().BCEWithLogitsLoss()
    ),
    "KLDivLoss": ModuleCase(
        lambda: _cnn().KLDivLoss(reduction="batchmean"),
        (X2, PROBS[:, :, 0]),
        lambda: _tnn().KLDivLoss(reduction="batchmean"),
    ),
    "MSELoss": ModuleCase(lambda: _cnn().MSELoss(), (X2, T2), lambda: _tnn().MSELoss()),
    "L1Loss": ModuleCase(lambda: _cnn().L1Loss(), (X2, T2), lambda: _tnn().L1Loss()),
    "HuberLoss": ModuleCase(
        lambda: _cnn().HuberLoss(delta=0.5), (X2, T2), lambda: _tnn().HuberLoss(delta=0.5)
    ),
    "SmoothL1Loss": ModuleCase(
        lambda: _cnn().SmoothL1Loss(beta=0.5), (X2, T2), lambda: _tnn().SmoothL1Loss(beta=0.5)
    ),
    "FocalLoss": ModuleCase(lambda: _cnn().FocalLoss(alpha=0.5), (X2, Y2)),
    "SigmoidFocalLoss": ModuleCase(lambda: _cnn().SigmoidFocalLoss(), (X2, T2)),
    "DiceLoss": ModuleCase(lambda: _cnn().DiceLoss(mode="multiclass"), (LOGITS, LABELS_FULL)),
    "JaccardLoss": ModuleCase(
        lambda: _cnn().JaccardLoss(mode="multilabel", aggregate="sample"), (LOGITS, HARD_T)
    ),
    "TverskyLoss": ModuleCase(
        lambda: _cnn().TverskyLoss(mode="multiclass", alpha=0.3, beta=0.7), (LOGITS, LABELS_FULL)
    ),
    "LinearCrossEntropyLoss": ModuleCase(lambda: _linear_ce(), (X2, Y2)),
}


def _linear_ce() -> Any:
    """A fused linear + cross-entropy module with fixed parameters (3 features, 4 classes)."""
    import torch

    module = _cnn().LinearCrossEntropyLoss(3, 4, bias=True, dtype=torch.float64, chunk_size=3)
    with torch.no_grad():
        module.linear.weight.copy_(torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(4, 3))
        module.linear.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64))
    return module
