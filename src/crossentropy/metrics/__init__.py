"""Metrics for probability predictions, one-shot and streaming (mergeable accumulators).

One-shot functions take scikit-learn's names, arguments and numbers (:func:`log_loss`,
:func:`brier_score_loss`, :func:`d2_log_loss_score`, :func:`d2_brier_score`) plus
:func:`calibration_error`, :func:`perplexity` and :func:`log_loss_per_class`; the calibration
report of 2026 practice is :func:`smooth_calibration_error` (smooth ECE),
:func:`calibration_decomposition` (CORP miscalibration / discrimination / uncertainty),
:func:`murphy_decomposition` and the mergeable :class:`CalibrationAccumulator`; each one-shot
metric of scikit-learn's has a streaming accumulator with ``update``, ``merge`` and ``result``,
and :class:`ScoreAccumulator` gathers every number of the ``crossentropy score`` report in one
pass.

Metrics read values and are not differentiable: tensors that require gradients are detached
(a metric returns no ``grad_fn``), float16 and bfloat16 inputs are computed in float32, and a
``meta`` tensor, which has no values, is refused with a ``ValueError``. Importing this package
imports no framework (no torch, jax or dask).
"""

from crossentropy.metrics._calibration import (
    CalibrationAccumulator,
    Decomposition,
    MurphyDecomposition,
    calibration_decomposition,
    murphy_decomposition,
    smooth_calibration_error,
)
from crossentropy.metrics._functions import (
    ClassLogLoss,
    ZeroWeightError,
    brier_score_loss,
    calibration_error,
    d2_brier_score,
    d2_log_loss_score,
    log_loss,
    log_loss_per_class,
    perplexity,
)
from crossentropy.metrics._score import ScoreAccumulator
from crossentropy.metrics._streaming import (
    BrierScore,
    CalibrationError,
    D2BrierScore,
    D2LogLoss,
    LogLoss,
    LogLossPerClass,
    Perplexity,
)

__all__ = [
    "BrierScore",
    "CalibrationAccumulator",
    "CalibrationError",
    "ClassLogLoss",
    "D2BrierScore",
    "D2LogLoss",
    "Decomposition",
    "LogLoss",
    "LogLossPerClass",
    "MurphyDecomposition",
    "Perplexity",
    "ScoreAccumulator",
    "ZeroWeightError",
    "brier_score_loss",
    "calibration_decomposition",
    "calibration_error",
    "d2_brier_score",
    "d2_log_loss_score",
    "log_loss",
    "log_loss_per_class",
    "murphy_decomposition",
    "perplexity",
    "smooth_calibration_error",
]
