"""Every public function on every backend: same library, dtype and device out as in, and the
same numbers as NumPy in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat as compat
import numpy as np
import pytest

import crossentropy as ce
from _helpers import check_on_backend
from crossentropy import information

RNG = np.random.default_rng(7)
LOGITS = RNG.standard_normal((4, 3, 2))
LABELS = RNG.integers(0, 3, (4, 2))
LABELS[0, 0] = -100
PROBS = np.asarray(ce.softmax(RNG.standard_normal((4, 3, 2)), axis=1))
Q = np.asarray(ce.softmax(RNG.standard_normal((4, 3, 2)), axis=1))
BIN_T = RNG.uniform(size=(4, 3, 2))
WEIGHT = np.asarray([0.5, 1.0, 2.0])

# name -> (function of the converted arrays, the arrays it needs)
CASES: dict[str, tuple[Callable[..., Any], tuple[np.ndarray, ...]]] = {
    "logsumexp": (lambda x: ce.logsumexp(x, axis=1), (LOGITS,)),
    "softmax": (lambda x: ce.softmax(x, axis=1), (LOGITS,)),
    "log_softmax": (lambda x: ce.log_softmax(x, axis=1), (LOGITS,)),
    "sigmoid": (ce.sigmoid, (LOGITS,)),
    "log_sigmoid": (ce.log_sigmoid, (LOGITS,)),
    "softplus": (ce.softplus, (LOGITS,)),
    "xlogy": (ce.xlogy, (PROBS, Q)),
    "self_information": (ce.self_information, (PROBS,)),
    "entropy": (lambda p: ce.entropy(p, axis=1, base=2), (PROBS,)),
    "binary_entropy": (ce.binary_entropy, (PROBS,)),
    "information.cross_entropy": (
        lambda p, q: information.cross_entropy(p, q, axis=1),
        (PROBS, Q),
    ),
    "kl_divergence": (lambda p, q: ce.kl_divergence(p, q, axis=1), (PROBS, Q)),
    "js_divergence": (lambda p, q: ce.js_divergence(p, q, axis=1), (PROBS, Q)),
    "perplexity": (lambda p: ce.perplexity(p, axis=1), (PROBS,)),
    "cross_entropy": (
        lambda x, y, w: ce.cross_entropy(x, y, weight=w, label_smoothing=0.1),
        (LOGITS, LABELS, WEIGHT),
    ),
    "cross_entropy[none]": (
        lambda x, y: ce.cross_entropy(x, y, reduction="none", z_loss=1e-3),
        (LOGITS, LABELS),
    ),
    "cross_entropy[soft]": (
        lambda x, p, w: ce.cross_entropy(x, p, weight=w, reduction="batchmean"),
        (LOGITS, PROBS, WEIGHT),
    ),
    "cross_entropy[probs]": (
        lambda p, y: ce.cross_entropy(p, y, from_logits=False),
        (PROBS, LABELS),
    ),
    "nll_loss": (lambda x, y: ce.nll_loss(x, y, reduction="sum"), (LOGITS, LABELS)),
    "binary_cross_entropy": (
        lambda p, t: ce.binary_cross_entropy(p, t, clip="sklearn"),
        (PROBS, BIN_T),
    ),
    "binary_cross_entropy_with_logits": (
        lambda x, t: ce.binary_cross_entropy_with_logits(x, t, reduction="none"),
        (LOGITS, BIN_T),
    ),
    "kl_div": (lambda x, t: ce.kl_div(x, t, reduction="batchmean"), (LOGITS, PROBS)),
    "sigmoid_focal_loss": (
        lambda x, t: ce.sigmoid_focal_loss(x, t, reduction="mean"),
        (LOGITS, BIN_T),
    ),
    "focal_loss": (
        lambda x, y, w: ce.focal_loss(x, y, weight=w, alpha=0.5, label_smoothing=0.1),
        (LOGITS, LABELS, WEIGHT),
    ),
    "focal_loss[soft]": (
        lambda x, p, w: ce.focal_loss(x, p, weight=w, alpha=w, reduction="none"),
        (LOGITS, PROBS, WEIGHT),
    ),
    "mse_loss": (lambda x, t, w: ce.mse_loss(x, t, weight=w[:2]), (LOGITS, BIN_T, WEIGHT)),
    "l1_loss": (lambda x, t: ce.l1_loss(x, t, reduction="none"), (LOGITS, BIN_T)),
    "rmse_loss": (lambda x, t: ce.rmse_loss(x, t, axis=-1), (LOGITS, BIN_T)),
    "huber_loss": (lambda x, t: ce.huber_loss(x, t, delta=0.5), (LOGITS, BIN_T)),
    "smooth_l1_loss": (lambda x, t: ce.smooth_l1_loss(x, t, beta=0.5), (LOGITS, BIN_T)),
    "log_cosh_loss": (lambda x, t: ce.log_cosh_loss(x, t), (LOGITS, BIN_T)),
    "dice_loss": (
        lambda x, y: ce.dice_loss(x, y, mode="multiclass", ignore_index=-100),
        (LOGITS, LABELS),
    ),
    "jaccard_loss": (
        lambda x, t: ce.jaccard_loss(x, t, mode="multilabel", aggregate="sample"),
        (LOGITS, BIN_T),
    ),
    "tversky_loss": (
        lambda x, t: ce.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0),
        (LOGITS, BIN_T),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_library_dtype_device_and_numbers(backend, name, dtype):
    fn, arrays = CASES[name]
    check_on_backend(backend, fn, arrays, dtype)
    inputs = [backend.asarray(a) for a in arrays]
    assert compat.device(fn(*inputs)) == compat.device(inputs[0])


def test_every_public_function_is_covered():
    functions = {n for n in ce.__all__ if callable(getattr(ce, n))}
    covered = {n.split("[")[0] for n in CASES}
    # class_weights returns the default floating dtype: tests/test_weights.py covers it; the
    # validation settings take no arrays.
    settings = {"validation", "set_validation", "get_validation"}
    assert functions - {"information", "class_weights"} - settings <= covered
