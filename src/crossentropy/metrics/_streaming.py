r"""Streaming accumulators: one per metric, fed batch by batch, merged across workers.

Each accumulator has ``update(y_true, y_proba, sample_weight=None) -> self``,
``merge(other) -> self`` and ``result()``. A stream of batches gives the one-shot function's
answer on the concatenated data (to ~1e-16 relative: the running sums are compensated float64,
:mod:`crossentropy.metrics._exact`), and so does any tree of merges of partial accumulators
(workers send them pickled). Batches may come from any array library; the state lives on the
host in float64 and ``result()`` returns Python floats (NumPy arrays for per-class results).

**Classes.** A single batch may miss classes, so a stream fixes them up front:

- ``labels=`` given: the sorted distinct labels (any type), as the one-shot ``labels=``.
- ``labels=None``: the classes are the integers ``0 .. C-1``, with ``C`` the number of columns
  of the first batch's ``y_proba`` (2 for a vector of positive-class probabilities); ``y_true``
  must then hold integers (or booleans) in that range. Non-integer labels need ``labels=``.

A later batch with a label outside the classes, or with another number of columns, raises
``ValueError`` naming the row. The stream equals the one-shot function whenever the one-shot
function would find the same classes (every class occurs, or the same ``labels=``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from crossentropy._lib.checks import check_bool, check_choice, plain
from crossentropy._lib.host import to_host
from crossentropy.metrics._calibration import check_bins, checked_weights
from crossentropy.metrics._exact import ExactSum
from crossentropy.metrics._formulas import (
    calibration_norm,
    quantile_edges,
    row_log_loss,
    uniform_edges,
)
from crossentropy.metrics._functions import (
    ClassLogLoss,
    bin_totals,
    brier_total,
    check_scale_by_half,
    check_some_weight,
    check_weight_total,
    class_means,
    class_totals,
    confidence_and_outcome,
    d2_brier,
    d2_undefined,
    loss_total,
    losses,
    prepare_binary,
)
from crossentropy.metrics._labels import (
    POS_LABEL_1,
    check_pos_label,
    checked_labels,
    host_labels,
)
from crossentropy.metrics._prepare import (
    Prepared,
    check_weight_magnitude,
    independent_copy,
    prepare,
    weighted_sum,
)

__all__ = [
    "BrierScore",
    "CalibrationError",
    "D2BrierScore",
    "D2LogLoss",
    "LogLoss",
    "LogLossPerClass",
    "Perplexity",
]


def _float(x: Any) -> float:
    return float(to_host(x)) if not isinstance(x, float | np.floating) else float(x)


def _fixed_classes(labels: Any) -> np.ndarray[Any, Any] | None:
    return None if labels is None else checked_labels(labels)


def _state(x: ExactSum | None) -> ExactSum:
    """Per-class state, allocated once the classes are known."""
    if x is None:
        raise RuntimeError("the classes of this accumulator are not known yet")
    return x


def _width(y_proba: Any) -> int:
    shape = getattr(y_proba, "shape", None)
    shape = tuple(shape) if shape is not None else np.shape(y_proba)
    if len(shape) == 2 and shape[1] != 1:
        return int(shape[1])
    return 2


class _Stream:
    """Classes fixed up front, batch preparation, and the merge checks."""

    __copy__ = independent_copy

    _options: tuple[Any, ...] = ()

    def __init__(self, *, labels: Any = None) -> None:
        self.classes: np.ndarray[Any, Any] | None = _fixed_classes(labels)
        self.n = 0

    def _prepare(
        self, y_true: Any, y_proba: Any, sample_weight: Any, *, loss_sum: bool = False
    ) -> Prepared:
        if self.classes is None:
            y = host_labels(y_true, "y_true")
            if not y.size:  # (an empty list is float64) the classes wait for a row
                classes = np.arange(_width(y_proba))
                prep = prepare(y_true, y_proba, sample_weight, None, classes=classes)
                return prep
            if y.dtype.kind not in "iub":
                raise ValueError(
                    f"y_true holds labels of dtype {y.dtype}; a stream without labels= takes "
                    "the classes 0..C-1 and needs integer labels: pass labels="
                )
            self.classes = np.arange(_width(y_proba))
            self._start()
        elif _width(y_proba) != self.classes.shape[0]:
            raise ValueError(
                f"y_proba has {_width(y_proba)} columns but the stream has "
                f"{self.classes.shape[0]} classes {self.classes.tolist()}"
            )
        prep = prepare(
            y_true, y_proba, sample_weight, None, classes=self.classes, loss_sum=loss_sum
        )
        self.n += prep.n
        return prep

    def _start(self) -> None:
        """Allocate the per-class state once the classes are known."""

    def _check_other(self, other: _Stream) -> None:
        if type(other) is not type(self):
            raise TypeError(f"other must be a {type(self).__name__}; got {type(other).__name__}")
        if other._options != self._options:
            raise ValueError(
                f"other has other options {other._options!r}; expected {self._options!r}"
            )
        if other.classes is not None:
            if self.classes is None:
                self.classes = other.classes
                self._start()
            elif other.classes.shape != self.classes.shape or not np.all(
                other.classes == self.classes
            ):
                raise ValueError(
                    f"other has classes {other.classes.tolist()}; expected {self.classes.tolist()}"
                )

    def __repr__(self) -> str:
        classes = None if self.classes is None else self.classes.tolist()
        return f"{type(self).__name__}(classes={classes}; n={self.n})"


class LogLoss(_Stream):
    r"""Streaming :func:`~crossentropy.metrics.log_loss`.

    .. math::

        L = \frac{\sum_i w_i \ell_i}{\sum_i w_i}, \qquad
        \ell_i = -\log \operatorname{clip}(p_{i, y_i}, \varepsilon, 1 - \varepsilon)

    Keeps two compensated sums. ``result()`` is NaN before any row.

    Parameters
    ----------
    normalize : bool, default True
        The weighted mean; False for the weighted sum.
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.

    Examples
    --------
    >>> import math
    >>> from crossentropy.metrics import LogLoss, log_loss
    >>> y, p = [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1]
    >>> acc = LogLoss().update(y[:2], p[:2]).update(y[2:], p[2:])
    >>> round(acc.result(), 10)
    0.4003674357
    >>> math.isclose(acc.result(), log_loss(y, p), rel_tol=1e-15)
    True
    """

    #: Whether a weight that is not zero was seen (a pickle of an earlier version, which did
    #: not keep it, counts as having seen one).
    _counted = True

    def __init__(self, *, normalize: bool = True, labels: Any = None) -> None:
        check_bool(normalize, "normalize")
        super().__init__(labels=labels)
        self.normalize = bool(normalize)
        self._options = (self.normalize,)
        self._loss = ExactSum()
        self._weight = ExactSum()
        self._counted = False  # a weight that is not zero was seen

    def update(self, y_true: Any, y_proba: Any, sample_weight: Any = None) -> LogLoss:
        """Add a batch.

        Parameters
        ----------
        y_true : array_like of shape (n,)
            True labels: integers (or booleans), or labels of any type with the stream's
            ``labels=``; a label indicator matrix is not accepted (the one-shot functions take
            one).
        y_proba : array_like of shape (n,) or (n, C)
            Probability of the positive (larger) class, or of each class in the sorted order of the
            labels.
        sample_weight : array_like of shape (n,), optional
            Row weights.
        """
        prep = self._prepare(y_true, y_proba, sample_weight, loss_sum=True)
        if prep.n:
            self._loss.add(_float(loss_total(prep)))
            self._weight.add(
                prep.n if prep.weight is None else _float(weighted_sum(prep.xp, prep.weight, None))
            )
            self._counted = (
                self._counted or prep.weight is None or bool(to_host(prep.xp.any(prep.weight != 0)))
            )
        return self

    def merge(self, other: LogLoss) -> LogLoss:
        """Add what another accumulator has seen.

        Parameters
        ----------
        other : LogLoss
            An accumulator of the same kind, options and classes.
        """
        self._check_other(other)
        self._loss.merge(other._loss)
        self._weight.merge(other._weight)
        self._counted = self._counted or other._counted
        self.n += other.n  # (last: a refused merge leaves the count)
        return self

    def result(self) -> float:
        """The log loss of every row seen (the weighted sum with ``normalize=False``)."""
        total = float(self._loss.value())
        if not self.normalize:  # all-zero weights are refused, as by log_loss
            if self.n:
                check_some_weight(self._counted)
            return total
        if self.n == 0:
            return math.nan
        weight = float(self._weight.value())
        check_weight_total(weight)
        return total / weight


class Perplexity(LogLoss):
    r"""Streaming :func:`~crossentropy.metrics.perplexity`: the exponential of the streamed log
    loss (base-independent).

    .. math::

        \mathrm{PP} = \exp\Bigl(\frac{\sum_i w_i \ell_i}{\sum_i w_i}\Bigr)

    Parameters
    ----------
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.

    Examples
    --------
    >>> from crossentropy.metrics import Perplexity
    >>> Perplexity().update([0, 1], [[0.5, 0.5], [0.5, 0.5]]).result()
    2.0
    """

    def __init__(self, *, labels: Any = None) -> None:
        super().__init__(labels=labels)

    def result(self) -> float:
        """The perplexity of every row seen."""
        return math.exp(super().result())


class LogLossPerClass(_Stream):
    r"""Streaming :func:`~crossentropy.metrics.log_loss_per_class`.

    .. math::

        L_c = \frac{\sum_{i: y_i = c} w_i \ell_i}{W_c}

    ``result()`` is a :class:`~crossentropy.metrics.ClassLogLoss` of NumPy arrays.

    Parameters
    ----------
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.

    Examples
    --------
    >>> from crossentropy.metrics import LogLossPerClass
    >>> r = LogLossPerClass().update([0, 1, 1], [[0.5, 0.5], [0.2, 0.8], [0.6, 0.4]]).result()
    >>> r.log_loss.round(4).tolist(), r.count.tolist()
    ([0.6931, 0.5697], [1.0, 2.0])
    """

    def __init__(self, *, labels: Any = None) -> None:
        super().__init__(labels=labels)
        self._loss: ExactSum | None = None
        self._weight: ExactSum | None = None
        if self.classes is not None:
            self._start()

    def _start(self) -> None:
        c = 0 if self.classes is None else self.classes.shape[0]
        self._loss = ExactSum(c)
        self._weight = ExactSum(c)

    def update(self, y_true: Any, y_proba: Any, sample_weight: Any = None) -> LogLossPerClass:
        """Add a batch.

        Parameters
        ----------
        y_true : array_like of shape (n,)
            True labels: integers (or booleans), or labels of any type with the stream's
            ``labels=``; a label indicator matrix is not accepted (the one-shot functions take
            one).
        y_proba : array_like of shape (n,) or (n, C)
            Probability of the positive (larger) class, or of each class in the sorted order of the
            labels.
        sample_weight : array_like of shape (n,), optional
            Row weights.
        """
        prep = self._prepare(y_true, y_proba, sample_weight)
        if prep.n:
            _state(self._loss).add(to_host(class_totals(prep, losses(prep))))
            _state(self._weight).add(to_host(class_totals(prep, None)))
        return self

    def merge(self, other: LogLossPerClass) -> LogLossPerClass:
        """Add what another accumulator has seen.

        Parameters
        ----------
        other : LogLossPerClass
            An accumulator of the same kind, options and classes.
        """
        self._check_other(other)
        if other._loss is not None and other._weight is not None:
            _state(self._loss).merge(other._loss)
            _state(self._weight).merge(other._weight)
        self.n += other.n  # (last: a refused merge leaves the count)
        return self

    def result(self) -> ClassLogLoss:
        """Per class: the classes, the mean loss (NaN without rows), the (weighted) count."""
        if self.classes is None or self._loss is None or self._weight is None:
            empty = np.zeros(0)
            return ClassLogLoss(np.zeros(0, dtype=np.int64), empty, empty)
        count = self._weight.value()
        check_weight_magnitude(count)  # refused, as every accumulator's
        return ClassLogLoss(self.classes, class_means(np, self._loss.value(), count), count)


class D2LogLoss(_Stream):
    r"""Streaming :func:`~crossentropy.metrics.d2_log_loss_score`.

    .. math::

        D^2 = 1 - \frac{\sum_i w_i \ell_i}{\sum_c W_c \cdot \bigl(-\log
        \operatorname{clip}(W_c / W)\bigr)}

    Keeps the weighted loss sum and the weight of each class; the baseline loss in the
    denominator is formed in ``result()``.

    Parameters
    ----------
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.

    Examples
    --------
    >>> from crossentropy.metrics import D2LogLoss, d2_log_loss_score
    >>> y, p = [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]
    >>> D2LogLoss().update(y[:1], p[:1]).update(y[1:], p[1:]).result() == d2_log_loss_score(y, p)
    True
    """

    def __init__(self, *, labels: Any = None) -> None:
        super().__init__(labels=labels)
        self._loss = ExactSum()
        self._class_weight: ExactSum | None = None
        if self.classes is not None:
            self._start()

    def _start(self) -> None:
        self._class_weight = ExactSum(0 if self.classes is None else self.classes.shape[0])

    def update(self, y_true: Any, y_proba: Any, sample_weight: Any = None) -> D2LogLoss:
        """Add a batch.

        Parameters
        ----------
        y_true : array_like of shape (n,)
            True labels: integers (or booleans), or labels of any type with the stream's
            ``labels=``; a label indicator matrix is not accepted (the one-shot functions take
            one).
        y_proba : array_like of shape (n,) or (n, C)
            Probability of the positive (larger) class, or of each class in the sorted order of the
            labels.
        sample_weight : array_like of shape (n,), optional
            Row weights.
        """
        prep = self._prepare(y_true, y_proba, sample_weight, loss_sum=True)
        if prep.n:
            self._loss.add(_float(loss_total(prep)))
            _state(self._class_weight).add(to_host(class_totals(prep, None)))
        return self

    def merge(self, other: D2LogLoss) -> D2LogLoss:
        """Add what another accumulator has seen.

        Parameters
        ----------
        other : D2LogLoss
            An accumulator of the same kind, options and classes.
        """
        self._check_other(other)
        self._loss.merge(other._loss)
        if other._class_weight is not None:
            _state(self._class_weight).merge(other._class_weight)
        self.n += other.n  # (last: a refused merge leaves the count)
        return self

    def result(self) -> float:
        """:math:`D^2` of every row seen (NaN, with a warning, below two rows)."""
        if self.n < 2 or self._class_weight is None:
            return d2_undefined(stacklevel=3)
        counts = self._class_weight.value()
        check_weight_total(counts)
        baseline = row_log_loss(np, counts / counts.sum(), np.float64)
        return 1 - float(self._loss.value()) / float(np.sum(counts * baseline))


class BrierScore(_Stream):
    r"""Streaming :func:`~crossentropy.metrics.brier_score_loss`.

    .. math::

        B = \frac{1}{\sum_i w_i} \sum_i w_i \sum_c (\mathbb 1[y_i = c] - p_{ic})^2
        \quad (\times \tfrac12 \text{ for two classes with } \texttt{scale\_by\_half="auto"})

    For vectors of positive-class probabilities the positive class is ``pos_label`` (default
    1: labels in {0, 1} or {-1, 1}); ``y_true`` must take at most two values over the whole
    stream. For matrices the classes follow the stream rule (``labels=``).

    Parameters
    ----------
    pos_label : label, optional
        The class a vector ``y_proba`` gives the probability of: default 1, so labels other
        than {0, 1} or {-1, 1} need it given (unlike the one-shot function, a stream cannot
        take the larger label: it has not seen them all). Not used with a matrix.
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.
    scale_by_half : {"auto", True, False}, default "auto"
        Halve the summed score; ``"auto"`` halves it for two classes only (the binary Brier
        score, scikit-learn's).

    Examples
    --------
    >>> from crossentropy.metrics import BrierScore
    >>> round(BrierScore().update([0, 1], [0.1, 0.9]).update([1, 0], [0.8, 0.3]).result(), 6)
    0.0375
    """

    def __init__(
        self,
        *,
        pos_label: Any = None,
        labels: Any = None,
        scale_by_half: bool | Literal["auto"] = "auto",
    ) -> None:
        scale_by_half = check_scale_by_half(scale_by_half)
        super().__init__(labels=labels)
        self.pos_label = check_pos_label(pos_label)
        self.scale_by_half = scale_by_half
        self._options = (self.pos_label, scale_by_half)
        self._sum = ExactSum()
        self._weight = ExactSum()
        self._width: int | None = None
        self._seen: set[Any] = set()

    def update(self, y_true: Any, y_proba: Any, sample_weight: Any = None) -> BrierScore:
        """Add a batch.

        Parameters
        ----------
        y_true : array_like of shape (n,)
            True labels: integers (or booleans), or labels of any type with the stream's
            ``labels=`` (with ``pos_label=`` for a vector ``y_proba``); a label indicator matrix
            is not accepted (the one-shot functions take one).
        y_proba : array_like of shape (n,) or (n, C)
            Probability of the positive (larger) class, or of each class in the sorted order of the
            labels.
        sample_weight : array_like of shape (n,), optional
            Row weights.
        """
        shape = getattr(y_proba, "shape", None)
        shape = tuple(shape) if shape is not None else np.shape(y_proba)
        vector = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
        if vector:
            y = host_labels(y_true, "y_true")
            seen = self._checked_seen({plain(v) for v in np.unique(y)})
            pos = 1 if self.pos_label is None else self.pos_label
            prep = prepare_binary(y, y_proba, sample_weight, pos, nonempty=False)
            width = 2
        else:
            prep = self._prepare(y_true, y_proba, sample_weight)
            width = int(prep.proba.shape[1])
        if not prep.n:  # an empty batch (a list's too) fixes nothing
            return self
        if self._width is not None and self._width != width:
            raise ValueError(f"y_proba has {width} classes; the stream has {self._width}")
        self._width = width
        if vector:
            self._seen = seen
            self.n += prep.n
        self._sum.add(_float(brier_total(prep)))
        self._weight.add(
            prep.n if prep.weight is None else _float(weighted_sum(prep.xp, prep.weight, None))
        )
        self._add_more(prep)
        return self

    def _add_more(self, prep: Prepared) -> None:
        """What a subclass keeps of a batch besides the Brier score's sums."""

    def _checked_seen(self, labels: set[Any]) -> set[Any]:
        """The labels of vectors seen with ``labels`` added: at most two, and without
        ``pos_label`` within {0, 1} or {-1, 1} (a ``ValueError`` otherwise)."""
        seen = self._seen | labels
        if len(seen) > 2:
            raise ValueError(
                "y_true must be binary for y_proba of shape (n,); the stream has seen the "
                f"labels {sorted(seen, key=str)}"
            )
        if self.pos_label is None and not any(seen <= set(pair) for pair in POS_LABEL_1):
            raise ValueError(
                f"y_true takes values in {sorted(seen, key=str)} and pos_label is not given: a "
                "stream takes pos_label=1, for labels in {0, 1} or {-1, 1}; pass pos_label"
            )
        return seen

    def merge(self, other: BrierScore) -> BrierScore:
        """Add what another accumulator has seen.

        Parameters
        ----------
        other : BrierScore
            An accumulator of the same kind, options and classes.
        """
        self._check_other(other)
        if other._width is not None:
            if self._width is not None and self._width != other._width:
                raise ValueError(f"other has {other._width} classes; expected {self._width}")
            self._width = other._width
        self._seen = self._checked_seen(other._seen)
        self._sum.merge(other._sum)
        self._weight.merge(other._weight)
        self.n += other.n  # (last: a refused merge leaves the count)
        return self

    def result(self) -> float:
        """The Brier score of every row seen."""
        if self.n == 0 or self._width is None:
            return math.nan
        weight = float(self._weight.value())
        check_weight_total(weight)
        score = float(self._sum.value()) / weight
        half = self._width < 3 if self.scale_by_half == "auto" else self.scale_by_half
        return score * 0.5 if half else score


class D2BrierScore(BrierScore):
    r"""Streaming :func:`~crossentropy.metrics.d2_brier_score` (the Brier skill score).

    .. math::

        D^2 = 1 - \frac{\sum_i w_i \sum_c (\mathbb 1[y_i = c] - p_{ic})^2}
                        {W \sum_c s_c (1 - s_c)}, \qquad s_c = W_c / W

    Keeps :class:`BrierScore`'s sums and the weight :math:`W_c` of each class; the baseline in
    the denominator is formed in ``result()``. ``y_true``, ``y_proba`` and ``pos_label`` follow
    :class:`BrierScore`'s stream rules.

    Parameters
    ----------
    pos_label : label, optional
        The class a vector ``y_proba`` gives the probability of (default 1, as
        :class:`BrierScore`).
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.

    Examples
    --------
    >>> from crossentropy.metrics import D2BrierScore, d2_brier_score
    >>> y, p = [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]
    >>> acc = D2BrierScore().update(y[:2], p[:2]).update(y[2:], p[2:])
    >>> round(acc.result(), 12) == round(d2_brier_score(y, p), 12)
    True
    """

    def __init__(self, *, pos_label: Any = None, labels: Any = None) -> None:
        super().__init__(pos_label=pos_label, labels=labels)
        self._class_weight: ExactSum | None = None

    def _add_more(self, prep: Prepared) -> None:
        counts = to_host(class_totals(prep, None))
        if self._class_weight is None:
            self._class_weight = ExactSum(counts.shape[0])
        self._class_weight.add(counts)

    def merge(self, other: BrierScore) -> D2BrierScore:
        """Add what another accumulator has seen.

        Parameters
        ----------
        other : D2BrierScore
            An accumulator of the same kind, options and classes.
        """
        super().merge(other)
        theirs = other._class_weight if isinstance(other, D2BrierScore) else None
        if theirs is not None:
            if self._class_weight is None:
                self._class_weight = ExactSum(theirs.hi.shape)
            self._class_weight.merge(theirs)
        return self

    def result(self) -> float:
        """:math:`D^2` of every row seen (NaN, with a warning, below two rows)."""
        if self.n < 2 or self._class_weight is None:
            return d2_undefined(stacklevel=3)
        total = float(self._weight.value())
        check_weight_total(total)
        return d2_brier(float(self._sum.value()), self._class_weight.value(), total, 3)


class CalibrationError(_Stream):
    r"""Streaming :func:`~crossentropy.metrics.calibration_error`.

    .. math::

        \mathrm{ECE} = \sum_b \frac{W_b}{W} |\bar o_b - \bar c_b|

    (or the ``"max"`` / ``"l2"`` norms of the gaps). With ``strategy="uniform"`` the state is
    three compensated sums per bin, exact and of constant size. ``"quantile"`` edges depend on
    every confidence, so the accumulator keeps each row's confidence, outcome and weight
    (17 bytes per row, 9 without weights) and bins them in ``result()``: exact, with memory
    linear in the number of rows.

    Parameters
    ----------
    n_bins : int, default 15
        Number of bins, 1 to 1,048,576.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins, or equal-mass bins at the confidences' quantiles (scikit-learn's
        ``calibration_curve``).
    norm : {"l1", "max", "l2"}, default "l1"
        ECE (the weighted mean gap), MCE (the largest gap) or the RMS calibration error.
    labels : array_like, optional
        All class labels (sorted), fixed for the whole stream; without them the classes
        are the column indices of the first batch, and the labels must be integers.

    Examples
    --------
    >>> from crossentropy.metrics import CalibrationError, calibration_error
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1.0]
    >>> acc = CalibrationError(n_bins=3).update(y[:4], p[:4]).update(y[4:], p[4:])
    >>> acc.result() == calibration_error(y, p, n_bins=3)
    True
    """

    def __init__(
        self,
        *,
        n_bins: int = 15,
        strategy: Literal["uniform", "quantile"] = "uniform",
        norm: Literal["l1", "max", "l2"] = "l1",
        labels: Any = None,
    ) -> None:
        bins = check_bins(n_bins)
        check_choice(strategy, "strategy", ("uniform", "quantile"))
        check_choice(norm, "norm", ("l1", "max", "l2"))
        super().__init__(labels=labels)
        self.n_bins, self.strategy, self.norm = bins, str(strategy), str(norm)
        self._options = (bins, self.strategy, self.norm)
        self._count = ExactSum(bins)
        self._conf = ExactSum(bins)
        self._hit = ExactSum(bins)
        self._kept: list[tuple[np.ndarray[Any, Any], ...]] = []
        self._weighted = False

    def update(self, y_true: Any, y_proba: Any, sample_weight: Any = None) -> CalibrationError:
        """Add a batch.

        Parameters
        ----------
        y_true : array_like of shape (n,)
            True labels: integers (or booleans), or labels of any type with the stream's
            ``labels=``; a label indicator matrix is not accepted (the one-shot functions take
            one).
        y_proba : array_like of shape (n,) or (n, C)
            Probability of the positive (larger) class, or of each class in the sorted order of the
            labels.
        sample_weight : array_like of shape (n,), optional
            Row weights.
        """
        prep = self._prepare(y_true, y_proba, sample_weight)
        if not prep.n:
            return self
        # finite and >= 0, as calibration_error and the other calibration accumulators hold them
        w = None if prep.weight is None else checked_weights(to_host(prep.weight), prep.n)
        conf, hit = confidence_and_outcome(prep.xp, prep)
        if self.strategy == "quantile":
            self._weighted = self._weighted or w is not None
            kept = (to_host(conf).astype(np.float64), to_host(hit).astype(bool))
            self._kept.append(kept if w is None else (*kept, w))
            return self
        count, conf_sum, hit_sum = bin_totals(
            prep.xp, conf, hit, prep.weight, uniform_edges(self.n_bins)
        )
        self._count.add(count)
        self._conf.add(conf_sum)
        self._hit.add(hit_sum)
        return self

    def merge(self, other: CalibrationError) -> CalibrationError:
        """Add what another accumulator has seen.

        Parameters
        ----------
        other : CalibrationError
            An accumulator of the same kind, options and classes.
        """
        self._check_other(other)
        self._count.merge(other._count)
        self._conf.merge(other._conf)
        self._hit.merge(other._hit)
        self._kept.extend(other._kept)
        self._weighted = self._weighted or other._weighted
        self.n += other.n  # (last: a refused merge leaves the count)
        return self

    def result(self) -> float:
        """The calibration error of every row seen (NaN before any row)."""
        if self.strategy == "uniform":
            count = self._count.value()
            if self.n:  # a zero total weight is refused, as every accumulator's
                check_weight_total(count)
            return calibration_norm(count, self._conf.value(), self._hit.value(), self.norm)
        if not self._kept:
            return math.nan
        conf = np.concatenate([k[0] for k in self._kept])
        hit = np.concatenate([k[1] for k in self._kept])
        weight = (
            np.concatenate([k[2] if len(k) > 2 else np.ones(k[0].shape[0]) for k in self._kept])
            if self._weighted
            else None
        )
        if weight is not None:
            check_weight_total(weight)
        totals = bin_totals(np, conf, hit, weight, quantile_edges(conf, self.n_bins))
        return calibration_norm(*totals, self.norm)
