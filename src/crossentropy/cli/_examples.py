"""The classic tutorials' worked examples, each computed by the library."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import crossentropy as ce
from crossentropy import information

__all__ = ["Example", "format_table", "worked_examples"]

#: The pair of distributions used for H(p, q) = H(p) + KL(p || q).
P = (0.7, 0.2, 0.1)
Q = (0.5, 0.3, 0.2)


@dataclass(frozen=True)
class Example:
    """One worked example: what is computed, how, and the value in nats and in bits."""

    name: str
    call: str
    nats: float | None
    bits: float | None
    vector: tuple[float, ...] | None = None


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
    ]


def format_table(examples: list[Example]) -> str:
    """The examples as a plain-text table (values in nats and bits)."""
    rows = [("example", "call", "nats", "bits")]
    for ex in examples:
        if ex.vector is not None:
            value = "[" + ", ".join(f"{v:.4f}" for v in ex.vector) + "]"
            rows.append((ex.name, f"{ex.call} = {value}", "", ""))
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
