"""User code that the project's mypy run checks (``strict``; pyproject's ``[tool.mypy] files``):
the public API seen from outside, as a type checker sees it. Not run: each ``type: ignore`` is a
test, since strict mode calls an ignore that finds no error an error."""

from __future__ import annotations

import numpy as np
import torch

import crossentropy as ce
from crossentropy.metrics import CalibrationAccumulator, ScoreAccumulator
from crossentropy.nn import CrossEntropyLoss, HuberLoss, KLDivLoss


def loss_module_options() -> None:
    """A loss module's options read and assigned as what they hold (not as torch's buffers)."""
    crit = CrossEntropyLoss(z_loss=1e-4)
    crit.reduction = "sum"
    reduction: str = crit.reduction
    after: int = crit.ignore_index + 1
    share: float = crit.label_smoothing * 2
    total: float = HuberLoss().delta + float(KLDivLoss().log_target)
    print(reduction, after, share, total)
    wrong: str = crit.ignore_index  # type: ignore[assignment]
    crit.reductoin = "sum"  # type: ignore[assignment]
    print(wrong)


def misspelt_names_are_errors() -> None:
    """The lazily loaded submodules and names are typed: a misspelling is an error."""
    print(ce.metrcs)  # type: ignore[attr-defined]
    print(ce.nn.CrossEntropyLos)  # type: ignore[attr-defined]
    print(ce.fused.linear_cross_entrpy)  # type: ignore[attr-defined]
    print(ce.distributed.vocab_parallel_crossentropy)  # type: ignore[attr-defined]


def array_likes_and_counts() -> None:
    """Accumulators take array-likes; ``num_items_in_batch`` a float (as trainers pass it)."""
    y, p = torch.tensor([0, 1]), torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    CalibrationAccumulator().update(y, p[:, 1])
    ScoreAccumulator([0, 1]).update(np.array([0, 1]), p.numpy(), sample_weight=[1.0, 2.0])
    x, w = torch.randn(4, 8), torch.randn(10, 8)
    ce.fused.linear_cross_entropy(x, w, torch.randint(0, 10, (4,)), num_items_in_batch=12.0)


def report_fields() -> float:
    """A report's total weight is a float, with or without sample weights."""
    report = ce.scoring.score(np.array([[0.8, 0.2], [0.3, 0.7]]), target=np.array([0, 1]))
    assert isinstance(report, ce.scoring.ScoreReport)
    return report.weight + 1.0
