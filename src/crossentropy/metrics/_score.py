"""``ScoreAccumulator``: every number of the ``crossentropy score`` report, in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crossentropy._lib.checks import check_int, shape_str
from crossentropy.metrics._checks import (
    check_index_labels,
    check_proba_matrix,
    row_sum_tolerance,
)
from crossentropy.metrics._exact import ExactSum
from crossentropy.metrics._fast import rows_pass
from crossentropy.metrics._formulas import (
    LOSS_EDGES,
    bin_index,
    brier_sum,
    calibration_norm,
    entropy_sum,
    gather,
    loss_bin,
    row_log_loss,
    uniform_edges,
)

__all__ = ["ScoreAccumulator"]

# Rows are added in blocks of about this many probabilities (2 MiB of float64), so that the
# temporaries of the per-row formulas stay in cache.
_BLOCK_ELEMENTS = 1 << 18


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python scalar it holds (JSON-serialisable)."""
    return value.item() if isinstance(value, np.generic) else value


class ScoreAccumulator:
    r"""All the numbers of a probability-prediction report, accumulated batch by batch.

    One pass over the data gives the log loss, accuracy, Brier score, expected calibration
    error, mean predictive entropy, per-class log loss, the worst rows, a reliability diagram
    and a histogram of the per-row losses. Accumulators of several workers :meth:`merge` into the
    answer of one pass over all the rows, in any grouping; they pickle.

    With :math:`p_i` the predicted distribution of row :math:`i` and :math:`y_i` its class:

    .. math::

        \ell_i = -\log \operatorname{clip}(p_{i y_i}, \varepsilon, 1 - \varepsilon), \qquad
        \text{log loss} = \frac1n \sum_i \ell_i, \qquad
        H_i = -\sum_c p_{ic} \log p_{ic}

    Conventions (each the one of the matching one-shot function of :mod:`crossentropy.metrics`):

    - ``log_loss``: :func:`log_loss` (scikit-learn, clipped at the float64 eps: probabilities
      are taken in float64), nats.
    - ``accuracy``: share of rows whose ``argmax`` (first maximum) is the true class.
    - ``brier``: :func:`brier_score_loss` with ``scale_by_half="auto"``: the sum over classes
      (range [0, 2]) for three classes or more, halved for two classes.
    - ``ece``, ``reliability``: :func:`calibration_error` with ``n_bins`` uniform bins, norm
      ``"l1"``: the top-label confidence ``max_c p_c`` against ``argmax == y`` for three classes
      or more; for two classes the probability of the second class against ``y == 1``.
    - ``per_class``: count and mean loss of the rows of each true class (``log_loss`` is None
      for a class with no row).
    - ``worst``: the ``worst`` rows with the largest loss, largest first, ties by smaller row id.
    - ``loss_histogram``: counts of the per-row losses on fixed edges (0.25 nats wide up to 10,
      then one bin up to 37), bins ``[lo, hi)``.
    - ``rows_not_summing_to_one``: rows whose sum is off 1 by more than scikit-learn's
      tolerance (``1e-8 + sqrt(eps)``); they are scored as given, not renormalised.

    Sums are kept in compensated float64 (:mod:`crossentropy.metrics._exact`), so the result
    does not depend on the batching or the merge order beyond ~1e-16 relative. Memory is
    O(C + n_bins + worst), whatever the number of rows.

    Parameters
    ----------
    classes : sequence
        The class labels (any type) in the column order of the probabilities; at least two.
    n_bins : int, default 15
        Number of equal-width calibration bins on [0, 1].
    worst : int, default 10
        How many of the worst rows to keep.

    Examples
    --------
    >>> import numpy as np
    >>> from crossentropy.metrics import ScoreAccumulator
    >>> acc = ScoreAccumulator(["cat", "dog", "eel"])
    >>> proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    >>> _ = acc.update(np.array([0, 1, 0]), proba)
    >>> r = acc.result()
    >>> round(r["log_loss"], 4)
    0.5946
    >>> r["accuracy"], r["worst"][0]["row"], r["worst"][0]["label"]
    (0.6666666666666666, 2, 'cat')
    """

    def __init__(self, classes: Sequence[Any], *, n_bins: int = 15, worst: int = 10) -> None:
        labels = [_plain(c) for c in np.asarray(classes, dtype=object).reshape(-1).tolist()]
        if len(labels) < 2:
            raise ValueError(f"classes must hold at least two labels; got {labels!r}")
        self.classes: list[Any] = labels
        self.n_bins = check_int(n_bins, "n_bins")
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1; got {self.n_bins}")
        self.worst = check_int(worst, "worst")
        if self.worst < 0:
            raise ValueError(f"worst must be >= 0; got {self.worst}")
        c = len(labels)
        self._n = 0
        self._off_sum = 0
        self._loss = ExactSum()
        self._correct = 0
        self._brier = ExactSum()
        self._entropy = ExactSum()
        self._class_count = np.zeros(c, dtype=np.int64)
        self._class_loss = ExactSum(c)
        self._bin_count = np.zeros(self.n_bins, dtype=np.int64)
        self._bin_conf = ExactSum(self.n_bins)
        self._bin_correct = np.zeros(self.n_bins, dtype=np.int64)
        self._hist = np.zeros(len(LOSS_EDGES) - 1, dtype=np.int64)
        self._worst_row = np.zeros(0, dtype=np.int64)
        self._worst_label = np.zeros(0, dtype=np.int64)
        self._worst_p = np.zeros(0, dtype=np.float64)
        self._worst_loss = np.zeros(0, dtype=np.float64)

    # -----------------------------------------------------------------------------------------

    def update(
        self,
        y_index: np.ndarray[Any, Any],
        proba: np.ndarray[Any, Any],
        row_ids: np.ndarray[Any, Any] | None = None,
    ) -> ScoreAccumulator:
        """Add a batch: class indices (0..C-1), probabilities ``(n, C)``, optional integer row
        ids (default: the position of the row in this accumulator's stream, from 0).

        Pass ``row_ids`` when the batches of several accumulators are merged, so that the ids of
        the worst rows are unique.
        """
        c = len(self.classes)
        p = check_proba_matrix(proba, "proba", n_classes=c)
        y = check_index_labels(y_index, "y_index", c, p.shape[0])
        n = p.shape[0]
        if row_ids is None:
            rows = np.arange(self._n, self._n + n, dtype=np.int64)
        else:
            rows = np.asarray(row_ids)
            if rows.shape != (n,) or rows.dtype.kind not in "iu":
                raise ValueError(
                    f"row_ids must be a 1-D integer array of {n} row ids; got "
                    f"{shape_str(rows.shape)} of dtype {rows.dtype}"
                )
            rows = rows.astype(np.int64, copy=False)
        self._n += n
        step = max(1, _BLOCK_ELEMENTS // c)
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            self._add_block(y[lo:hi], p[lo:hi], rows[lo:hi])
        return self

    def _add_block(
        self, y: np.ndarray[Any, Any], p: np.ndarray[Any, Any], rows: np.ndarray[Any, Any]
    ) -> None:
        """Add validated rows (a block small enough for its temporaries to stay in cache)."""
        c = len(self.classes)
        found = rows_pass(p, y)
        p_true, (low, high) = found.p_true, found.sum_range or (1.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # clipped and checked at the stored precision, as metrics.log_loss does
            loss = row_log_loss(np, p_true, p.dtype).astype(np.float64, copy=False)
            tol = row_sum_tolerance(float(np.finfo(p.dtype).eps))
            if high - 1 > tol or 1 - low > tol:
                self._off_sum += int(np.count_nonzero(np.abs(np.sum(p, axis=1) - 1) > tol))
            p = p.astype(np.float64, copy=False)
            p_true = p_true.astype(np.float64, copy=False)
            self._loss.add(np.sum(loss))
            top = np.argmax(p, axis=1)
            self._correct += int(np.count_nonzero(top == y))
            self._brier.add(brier_sum(np, p, p_true))
            self._entropy.add(entropy_sum(np, p))
        self._class_count += np.bincount(y, minlength=c)
        self._class_loss.add(np.bincount(y, weights=loss, minlength=c))
        if c == 2:
            conf = p[:, 1]
            hit = y == 1
        else:
            conf = gather(np, p, top)
            hit = top == y
        b = bin_index(np, conf, uniform_edges(self.n_bins))
        self._bin_count += np.bincount(b, minlength=self.n_bins)
        self._bin_conf.add(np.bincount(b, weights=conf, minlength=self.n_bins))
        self._bin_correct += np.bincount(b[hit], minlength=self.n_bins)
        self._hist += np.bincount(loss_bin(loss), minlength=len(self._hist))
        self._keep_worst(rows, y, p_true, loss)

    def _keep_worst(
        self,
        rows: np.ndarray[Any, Any],
        labels: np.ndarray[Any, Any],
        p_true: np.ndarray[Any, Any],
        loss: np.ndarray[Any, Any],
    ) -> None:
        k = self.worst
        if k == 0:
            return
        if loss.shape[0] > k:  # keep the candidates (ties at the k-th loss included)
            cut = np.partition(loss, loss.shape[0] - k)[loss.shape[0] - k]
            sel = loss >= cut
            rows, labels, p_true, loss = rows[sel], labels[sel], p_true[sel], loss[sel]
        rows = np.concatenate([self._worst_row, rows])
        labels = np.concatenate([self._worst_label, labels])
        p_true = np.concatenate([self._worst_p, p_true])
        loss = np.concatenate([self._worst_loss, loss])
        order = np.lexsort((rows, -loss))[:k]
        self._worst_row, self._worst_label = rows[order], labels[order]
        self._worst_p, self._worst_loss = p_true[order], loss[order]

    def merge(self, other: ScoreAccumulator) -> ScoreAccumulator:
        """Add the rows another accumulator (same classes and options) has seen."""
        if not isinstance(other, ScoreAccumulator):
            raise TypeError(f"other must be a ScoreAccumulator; got {type(other).__name__}")
        if other.classes != self.classes or other.n_bins != self.n_bins:
            raise ValueError(
                "other must have the same classes and n_bins; got "
                f"{other.classes!r}, n_bins={other.n_bins} for {self.classes!r}, "
                f"n_bins={self.n_bins}"
            )
        self._n += other._n
        self._off_sum += other._off_sum
        self._loss.merge(other._loss)
        self._correct += other._correct
        self._brier.merge(other._brier)
        self._entropy.merge(other._entropy)
        self._class_count += other._class_count
        self._class_loss.merge(other._class_loss)
        self._bin_count += other._bin_count
        self._bin_conf.merge(other._bin_conf)
        self._bin_correct += other._bin_correct
        self._hist += other._hist
        self._keep_worst(other._worst_row, other._worst_label, other._worst_p, other._worst_loss)
        return self

    def result(self) -> dict[str, Any]:
        """The report as plain Python values (JSON-serialisable; NaN where no row was seen)."""
        n = self._n
        nan = float("nan")

        def mean(total: ExactSum) -> float:
            return float(total.value()) / n if n else nan

        c = len(self.classes)
        class_loss = self._class_loss.value()
        per_class = [
            {
                "label": self.classes[j],
                "count": int(self._class_count[j]),
                "log_loss": (
                    float(class_loss[j]) / int(self._class_count[j])
                    if self._class_count[j]
                    else None
                ),
            }
            for j in range(c)
        ]
        edges = uniform_edges(self.n_bins)
        conf_sum = self._bin_conf.value()
        reliability = [
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "confidence": (
                    float(conf_sum[b]) / int(self._bin_count[b]) if self._bin_count[b] else None
                ),
                "accuracy": (
                    int(self._bin_correct[b]) / int(self._bin_count[b])
                    if self._bin_count[b]
                    else None
                ),
                "count": int(self._bin_count[b]),
            }
            for b in range(self.n_bins)
        ]
        brier = mean(self._brier)
        if c == 2:
            brier *= 0.5
        return {
            "n": n,
            "log_loss": mean(self._loss),
            "accuracy": self._correct / n if n else nan,
            "brier": brier,
            "ece": calibration_norm(
                self._bin_count.astype(np.float64),
                conf_sum,
                self._bin_correct.astype(np.float64),
                "l1",
            ),
            "mean_entropy": mean(self._entropy),
            "per_class": per_class,
            "worst": [
                {
                    "row": int(r),
                    "label": self.classes[int(lab)],
                    "p_true": float(pt),
                    "loss": float(lo),
                }
                for r, lab, pt, lo in zip(
                    self._worst_row, self._worst_label, self._worst_p, self._worst_loss, strict=True
                )
            ],
            "reliability": reliability,
            "loss_histogram": {
                "edges": [float(e) for e in LOSS_EDGES],
                "counts": [int(k) for k in self._hist],
            },
            "rows_not_summing_to_one": self._off_sum,
        }

    def __repr__(self) -> str:
        return (
            f"ScoreAccumulator(classes={self.classes!r}, n_bins={self.n_bins}, "
            f"worst={self.worst}; n={self._n})"
        )
