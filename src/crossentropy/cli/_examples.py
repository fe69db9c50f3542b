"""The classic tutorials' worked examples, each computed by the library."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import crossentropy as ce
from crossentropy import information

__all__ = ["Example", "format_table", "worked_examples"]

#: The pair of distributions used for H(p, q) = H(p) + KL(p || q).
P = (0.7, 0.2, 0.1)
Q = (0.5, 0.3, 0.2)


@dataclass(frozen=True)
class Example:
    """One worked example: what is computed, how, and the value in nats and in bits (a
    vector, or a loss without a unit, is shown after its call)."""

    name: str
    call: str
    nats: float | None
    bits: float | None
    vector: tuple[float, ...] | None = None
    value: float | None = None  # a loss that is not information (no unit)


def worked_examples() -> list[Example]:
    """Compute every worked example with the library's public API.

    Each example's ``call`` is a Python expression that gives its value (in nats, or the
    vector) after ``import crossentropy as ce``, exactly as shown.
    """
    from crossentropy import metrics

    logits = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    ce_nats = float(ce.cross_entropy(logits, [1, 2]))
    # scikit-learn's log_loss([0, 1], [[0.9, 0.1], [0.5, 0.5]]): the mean of -log p[y].
    ll_nats = float(metrics.log_loss([0, 1], [[0.9, 0.1], [0.5, 0.5]]))
    h_p = float(ce.entropy(P))
    kl = float(ce.kl_divergence(P, Q))
    h_pq = float(information.cross_entropy(P, Q))
    p, q = list(P), list(Q)
    bce = float(ce.binary_cross_entropy_with_logits(2.0, 1.0))
    focal = float(ce.focal_loss(logits, [1, 2], gamma=0.0))
    # one prediction of 0 for four targets, the third an outlier
    zeros, targets = [0.0] * 4, [0.5, 1.5, -3.0, 0.2]
    mask, truth = [0.9, 0.2, 0.6, 0.1], [1.0, 0.0, 1.0, 0.0]

    return [
        Example(
            "surprise of a likely event",
            "ce.self_information(0.9)",
            float(ce.self_information(0.9)),
            float(ce.self_information(0.9, base=2)),
        ),
        Example(
            "surprise of an unlikely event",
            "ce.self_information(0.1)",
            float(ce.self_information(0.1)),
            float(ce.self_information(0.1, base=2)),
        ),
        Example(
            "softmax of [1, 2, 3]",
            "ce.softmax([1.0, 2.0, 3.0])",
            None,
            None,
            tuple(float(v) for v in np.asarray(ce.softmax([1.0, 2.0, 3.0]))),
        ),
        Example(
            "PyTorch CrossEntropyLoss",
            "ce.cross_entropy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2])",
            ce_nats,
            ce_nats / math.log(2),
        ),
        Example(
            "scikit-learn log_loss",
            "ce.metrics.log_loss([0, 1], [[0.9, 0.1], [0.5, 0.5]])",
            ll_nats,
            ll_nats / math.log(2),
        ),
        Example(
            "entropy of a fair coin",
            "ce.binary_entropy(0.5)",
            float(ce.binary_entropy(0.5)),
            float(ce.binary_entropy(0.5, base=2)),
        ),
        Example("entropy H(p)", f"ce.entropy({p})", h_p, float(ce.entropy(P, base=2))),
        Example(
            "divergence KL(p || q)",
            f"ce.kl_divergence({p}, {q})",
            kl,
            float(ce.kl_divergence(P, Q, base=2)),
        ),
        Example(
            "cross-entropy H(p, q)",
            f"ce.information.cross_entropy({p}, {q})",
            h_pq,
            float(information.cross_entropy(P, Q, base=2)),
        ),
        Example(
            "H(p) + KL(p || q) = H(p, q)",
            f"ce.entropy({p}) + ce.kl_divergence({p}, {q})",
            h_p + kl,
            (h_p + kl) / math.log(2),
        ),
        Example(
            "KL(q || p): not symmetric",
            f"ce.kl_divergence({q}, {p})",
            float(ce.kl_divergence(Q, P)),
            float(ce.kl_divergence(Q, P, base=2)),
        ),
        Example(
            "binary cross-entropy of a logit",
            "ce.binary_cross_entropy_with_logits(2.0, 1.0)",
            bce,
            bce / math.log(2),
        ),
        Example(
            "focal loss, gamma 0: cross-entropy",
            "ce.focal_loss([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2], gamma=0.0)",
            focal,
            focal / math.log(2),
        ),
        _unitless("mean squared error (MSE)", ce.mse_loss, zeros, targets),
        _unitless("root mean squared error", ce.rmse_loss, zeros, targets),
        _unitless("mean absolute error (MAE)", ce.l1_loss, zeros, targets),
        _unitless("Huber: squared below 1, linear above", ce.huber_loss, zeros, targets),
        _unitless("Dice loss", ce.dice_loss, mask, truth, from_logits=False),
        _unitless("IoU (Jaccard) loss", ce.jaccard_loss, mask, truth, from_logits=False),
    ]


def _unitless(
    name: str, loss: Callable[..., Any], first: list[float], second: list[float], **kw: Any
) -> Example:
    """A loss that is not information (no unit), computed, with its call as typed."""
    shown = "".join(f", {k}={v!r}" for k, v in kw.items())
    call = f"ce.{loss.__name__}({first}, {second}{shown})"
    return Example(name, call, None, None, value=float(loss(first, second, **kw)))


def format_table(examples: list[Example]) -> str:
    """The examples as a plain-text table (values in nats and bits)."""
    rows = [("example", "call", "nats", "bits")]
    for ex in examples:
        if ex.vector is not None:
            value = "[" + ", ".join(f"{v:.4f}" for v in ex.vector) + "]"
            rows.append((ex.name, f"{ex.call} = {value}", "", ""))
        elif ex.value is not None:
            rows.append((ex.name, f"{ex.call} = {ex.value:.4f}", "", ""))
        else:
            rows.append((ex.name, ex.call, f"{ex.nats:.4f}", f"{ex.bits:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for k, r in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
