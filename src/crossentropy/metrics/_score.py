"""``ScoreAccumulator``: every number of the ``crossentropy score`` report, in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crossentropy._lib.checks import check_choice, check_clip, check_int, plain, shape_str
from crossentropy._lib.host import to_host
from crossentropy.metrics._bootstrap import BootstrapTotals
from crossentropy.metrics._calibration import (
    MAX_BINS,
    CalibrationAccumulator,
    binned_summary,
    check_bins,
    check_replicates,
    check_seed,
    first_bad_weight,
    murphy_terms,
)
from crossentropy.metrics._checks import (
    check_index_labels,
    check_proba_matrix,
    row_sum_tolerance,
)
from crossentropy.metrics._exact import ExactSum
from crossentropy.metrics._fast import rows_pass, top_label
from crossentropy.metrics._formulas import (
    LOSS_EDGES,
    RENORMALIZE,
    bin_index,
    brier_scale,
    brier_sum,
    calibration_norm,
    entropy_sum,
    gather,
    loss_bin,
    renormalized,
    row_brier,
    row_entropy,
    row_log_loss,
    uniform_edges,
)
from crossentropy.metrics._functions import check_weight_total
from crossentropy.metrics._labels import sort_key
from crossentropy.metrics._prepare import check_weight_magnitude, independent_copy

__all__ = ["RowError", "ScoreAccumulator"]

#: The per-row values of the paired bootstrap (``paired=``): log loss, Brier score, hit.
PAIRED_METRICS = ("log_loss", "brier", "accuracy")

#: Class-wise calibration is kept up to this many classes (``C * n_bins * 3`` numbers).
CLASSWISE_MAX = 100
#: The confusion matrix is kept up to this many classes.
CONFUSION_MAX = 30
#: The most distinct ``groups`` values (splits): each keeps its own totals (about 2 KB); a
#: column of more is not a split (an id column given by mistake would take gigabytes).
MAX_GROUPS = 10_000
#: The most worst rows kept (``worst``): each is kept, merged and reported (about 1.4 KB in a
#: report); more is not a list anyone reads, and a count near the rows' would hold them all.
MAX_WORST = 10_000


# Rows are added in blocks of about this many probabilities (2 MiB of float64), so that the
# temporaries of the per-row formulas stay in cache.
_BLOCK_ELEMENTS = 1 << 18


#: Groups as their distinct values and each row's index among them.
_Coded = tuple[list[Any], np.ndarray[Any, Any]]


def too_many_groups() -> str:
    """What refuses a group past :data:`MAX_GROUPS`."""
    return (
        f"more than {MAX_GROUPS:,} distinct groups (splits): a split holds a few groups "
        "(Kaggle's Usage: Public, Private), not one per row (an id column?)"
    )


class TooManyGroups(ValueError):
    """Two accumulators that hold more than :data:`MAX_GROUPS` groups in all, merged."""


class RowError(ValueError):
    """A bad value at one row: ``row`` (its row id) and ``reason``, so that a caller can name
    the row its own way (a file and its data row); ``argument`` names the argument of
    :meth:`ScoreAccumulator.update` that holds it, where it is not the probabilities."""

    def __init__(self, row: int, reason: str, argument: str | None = None) -> None:
        super().__init__(f"row {row}: {reason}")
        self.row, self.reason, self.argument = row, reason, argument


class _WeightedSums:
    """The weighted totals of a :class:`ScoreAccumulator` that was given sample weights (rows
    given without weights count with weight 1); the row counts stay in the accumulator."""

    def __init__(self, c: int, n_bins: int, classwise: bool, confusion: bool) -> None:
        self.total, self.loss, self.correct = ExactSum(), ExactSum(), ExactSum()
        self.brier, self.entropy = ExactSum(), ExactSum()
        self.class_weight, self.class_loss = ExactSum(c), ExactSum(c)
        # per equal-width bin: weight, sums of w f, w o, w f^2, w f o
        self.bins = ExactSum((5, n_bins))
        # class-wise bins: weights of all rows and of the class's rows, sums of w p_c
        self.classwise = ExactSum((3, c, n_bins)) if classwise else None
        self.confusion = ExactSum((c, c)) if confusion else None
        self.splits: dict[Any, ExactSum] = {}  # group: weight, sums of w loss, w Brier, w hit

    def merge(self, other: _WeightedSums) -> None:
        for name in ("total", "loss", "correct", "brier", "entropy", "class_weight"):
            getattr(self, name).merge(getattr(other, name))
        self.class_loss.merge(other.class_loss)
        self.bins.merge(other.bins)
        if self.classwise is not None and other.classwise is not None:
            self.classwise.merge(other.classwise)
        if self.confusion is not None and other.confusion is not None:
            self.confusion.merge(other.confusion)
        for name, sums in other.splits.items():
            self.splits.setdefault(name, ExactSum(4)).merge(sums)


def _per_row(value: Any, name: str, n: int, kinds: str, what: str) -> np.ndarray[Any, Any]:
    """``value`` as a 1-D array of ``n`` entries of a dtype kind in ``kinds`` (any if empty),
    else a ``ValueError`` naming ``name``."""
    out = to_host(value, name)
    if out.shape != (n,) or (kinds and out.dtype.kind not in kinds):
        raise ValueError(
            f"{name} must be a 1-D array of {n} {what}; got {shape_str(out.shape)} of dtype "
            f"{out.dtype}"
        )
    return out


def _group_sums(
    which: np.ndarray[Any, Any], values: np.ndarray[Any, Any]
) -> list[tuple[int, int, np.ndarray[Any, Any]]]:
    """Each group's index, row count and sums of the rows ``values`` (``(m, n)``: m values of
    n rows), for the groups that ``which`` (each row's group index) holds. The sums are
    NumPy's pairwise ones over each group's rows gathered together, as accurate as the
    totals' (a running sum in row order, as ``bincount`` adds, is not)."""
    counts = np.bincount(which)
    present = np.flatnonzero(counts)
    if present.size == 1:  # one group: its rows as they are
        j = int(present[0])
        return [(j, int(counts[j]), np.sum(values, axis=1))]
    # (a stable sort of small integers is a radix sort)
    order = np.argsort(
        which.astype(np.uint16 if counts.size <= 1 << 16 else np.int64), kind="stable"
    )
    ends = np.cumsum(counts)
    grouped = np.take(values, order, axis=1)
    return [
        (j, int(counts[j]), np.sum(grouped[:, ends[j] - counts[j] : ends[j]], axis=1))
        for j in np.flatnonzero(counts).tolist()
    ]


def _copy(total: ExactSum) -> ExactSum:
    out = ExactSum(total.hi.shape)
    out.merge(total)
    return out


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

    - ``log_loss``: :func:`log_loss` (scikit-learn), nats: clipped at the eps of the stored
      dtype (float32 for float16 and float32 probabilities, float64 otherwise), or at ``clip``.
    - ``accuracy``: share of rows whose ``argmax`` is the true class; a tie goes to the class
      that sorts first, whatever the columns' order (the confusion matrix, the worst rows'
      predicted class and the top-label pairs too): numbers, and names that write an
      integer, by value, then other names as text (scikit-learn's argmax over its sorted
      classes, but for text that writes integers, which scikit-learn sorts as text: ``"10"``
      before ``"2"``).
    - ``brier``: :func:`brier_score_loss` with ``scale_by_half="auto"``: the sum over classes
      (range [0, 2]) for three classes or more, halved for two classes.
    - ``ece``, ``reliability``: :func:`calibration_error` with ``n_bins`` uniform bins, norm
      ``"l1"``: the top-label confidence ``max_c p_c`` against ``argmax == y`` for three classes
      or more; for two classes the probability of the second class against ``y == 1``.
    - ``per_class``: count and mean loss of the rows of each true class (``log_loss`` is None
      for a class with no row).
    - ``worst``: the ``worst`` rows with the largest loss, largest first, ties by smaller row id.
    - ``loss_histogram``: counts of the per-row losses on fixed edges, bins ``[lo, hi)``:
      0.25 nats wide up to 10, then one bin from 10 up, reported as ``[10, 37]`` (37 bounds
      the loss at the default clips; a ``clip`` below ``1e-16`` puts larger losses there too).
    - ``rows_not_summing_to_one``: rows whose sum is off 1 by more than scikit-learn's
      tolerance (``1e-8 + sqrt(eps)``); they are scored as given, not renormalised.
    - ``calibration``: of the same calibration pairs as ``ece``, the smooth ECE with its
      bandwidth, basic-bootstrap interval and smoothed reliability curve with its band, the
      CORP reliability diagram and the MCB/DSC/UNC decompositions of the Brier and log scores
      of the pairs, equal-width bins (ECE, MCE, RMS, Wilson intervals) and equal-mass bins,
      Murphy's decomposition of the pairs' Brier score
      (:class:`~crossentropy.metrics.CalibrationAccumulator`,
      :func:`~crossentropy.metrics.murphy_decomposition`); class-wise ECE (each class's
      probability against ``y == c``, averaged over the classes) up to
      100 classes; skill scores against the base rate
      (``d2_log_loss``: :func:`d2_log_loss_score`, but None where the rows hold one class,
      whose base rate scores 0 and where that function divides by the clipped 0;
      ``brier_skill``: 1 - Brier / Brier of the class frequencies).
    - ``confusion``: counts ``[true][predicted]`` (argmax), up to 30 classes.
    - ``splits``: with ``groups`` given to :meth:`update`, each group's ``n``, ``log_loss``,
      ``brier`` and ``accuracy`` (None where the group's weight is 0), sorted by group (as the
      classes' ties go: numbers, and text that writes an integer, by value; then text); None
      otherwise.

    **Sample weights** (``sample_weight`` of :meth:`update`, finite and >= 0; scikit-learn's
    meaning): every mean becomes the weighted mean :math:`\sum_i w_i v_i / \sum_i w_i`, the
    log loss, accuracy, Brier score and mean entropy as :func:`log_loss`,
    :func:`accuracy_score` and :func:`brier_score_loss` give them with ``sample_weight``;
    the per-class losses; the bins (weighted counts, mean confidence and accuracy, as
    :func:`calibration_error` with ``sample_weight``); the class-wise ECE; the confusion
    matrix (weights); the splits; the base rates of the skill scores (weighted class
    frequencies); the Murphy and CORP decompositions, the equal-mass bins and the smooth ECE
    (:class:`~crossentropy.metrics.CalibrationAccumulator`). A row of weight 3 counts as the
    row three times (the bootstrap intervals aside: a row is resampled as one). ``n`` and
    every ``count`` stay row counts; ``weight`` is the total weight, and each per-class
    entry, bin and split gains its ``weight``. The worst rows are ranked by their loss,
    whatever their weights, among the rows of positive weight (a row of weight 0 costs
    nothing); ``loss_histogram`` counts rows, whatever their weights. Rows given without
    weights weigh 1; an accumulator given weights once reports weighted numbers (the key
    ``weight`` says so).

    Sums are kept in compensated float64 (a float64 sum and its rounding error), so they do not
    depend on the batching or the merge order beyond ~1e-16 relative, nor does any result
    beyond ~1e-16 of the sums it is formed from (a difference of two, such as the Murphy
    decomposition's within-bin variance, 2e-12 of its own size on 30,000 rows). Memory does not
    grow with the rows: the calibration grid (768 KiB), O(C + n_bins + worst), the class-wise
    counts (``3 C n_bins``, up to 100 classes), the confusion matrix (up to 30 classes), the
    paired totals (``paired x 4``) and one entry per group value.

    Parameters
    ----------
    classes : sequence
        The class labels (any type) in the column order of the probabilities; at least two.
    n_bins : int, default 15
        Number of equal-width calibration bins on [0, 1], at most 16,384.
    worst : int, default 10
        How many of the worst rows to keep (at most 10,000).
    bootstrap : int, default 200
        Poisson bootstrap replicates of the smooth ECE interval (0: none; at most 10,000).
    seed : int, default 0
        The bootstrap's seed.
    clip : float, optional
        Clip the probabilities at ``[clip, 1 - clip]`` for the log loss instead of at the
        stored dtype's epsilon (Kaggle and scikit-learn before 1.2: ``1e-15``).
    renormalize : {None, "before_clip", "after_clip"}
        Divide each row by its sum before scoring: before clipping every entry (Kaggle's log
        loss) or after (scikit-learn before 1.5); every number of the report then reads the
        renormalised rows. The entries
        may then be any finite scores >= 0 (above 1 too, as Kaggle rescales them). Rows that
        sum to 0 are an error before clipping (after it, as in scikit-learn, they are
        uniform).
    paired : int, default 0
        Replicates of a paired Poisson bootstrap of the log loss, Brier score and accuracy
        (:attr:`paired_totals`), whose weights depend on each row's key only, so that the totals
        of two prediction sets on the same rows pair up (0: none; at most 10,000).

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

    Weighted, a row of weight 2 counts twice:

    >>> w = ScoreAccumulator(["cat", "dog", "eel"])
    >>> _ = w.update(np.array([0, 1, 0]), proba, sample_weight=np.array([1.0, 2.0, 0.5]))
    >>> r = w.result()
    >>> r["n"], r["weight"], round(r["accuracy"], 4)
    (3, 3.5, 0.8571)
    """

    __copy__ = independent_copy

    def __init__(
        self,
        classes: Sequence[Any],
        *,
        n_bins: int = 15,
        worst: int = 10,
        bootstrap: int = 200,
        seed: int = 0,
        paired: int = 0,
        clip: float | None = None,
        renormalize: str | None = None,
    ) -> None:
        labels = [plain(c) for c in np.asarray(classes, dtype=object).reshape(-1).tolist()]
        if len(labels) < 2:
            raise ValueError(f"classes must hold at least two labels; got {labels!r}")
        seen: set[Any] = set()
        for label in labels:
            if label in seen:
                raise ValueError(f"classes must be distinct; {label!r} is given twice")
            seen.add(label)
        self.classes: list[Any] = labels
        self.n_bins = check_bins(n_bins, MAX_BINS)
        self.worst = check_int(worst, "worst")
        if not 0 <= self.worst <= MAX_WORST:
            raise ValueError(f"worst must be between 0 and {MAX_WORST:,}; got {self.worst:,}")
        self.bootstrap = check_replicates(bootstrap, "bootstrap")
        self.seed = check_seed(seed)
        if clip is not None:
            clip = check_clip(clip)
        if renormalize is not None:
            check_choice(renormalize, "renormalize", RENORMALIZE)
        self.clip, self.renormalize = clip, renormalize
        paired = self.paired = check_replicates(paired, "paired")
        self._paired = (
            BootstrapTotals(list(PAIRED_METRICS), paired, self.seed) if paired > 0 else None
        )
        # each class's rank among the classes' names: the paired fingerprint records classes,
        # not column positions, so sets whose columns come in another order compare
        self._rank = np.argsort(np.argsort(np.array([str(c) for c in labels]), kind="stable"))
        # the columns in the order ties go (a permutation, or None where it is theirs)
        order = sorted(range(len(labels)), key=lambda j: sort_key(labels[j]))
        self._tie_order = None if order == sorted(order) else np.array(order, dtype=np.intp)
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
        self._bin_conf2 = ExactSum(self.n_bins)  # sum of f^2 and of f * o, for Murphy's terms
        self._bin_conf_hit = ExactSum(self.n_bins)
        self._cal = CalibrationAccumulator()
        # class-wise bins: counts of rows and of the class's rows ((2, C, bins)), and
        # compensated sums of the class's probability (merged in another order, the same digits
        # in every trial; plain float sums were not)
        self._classwise: tuple[np.ndarray[Any, Any], ExactSum] | None = (
            (np.zeros((2, c, self.n_bins), dtype=np.int64), ExactSum((c, self.n_bins)))
            if c <= CLASSWISE_MAX
            else None
        )
        self._confusion = np.zeros((c, c), dtype=np.int64) if c <= CONFUSION_MAX else None
        self._hist = np.zeros(len(LOSS_EDGES) - 1, dtype=np.int64)
        self._splits: dict[Any, list[Any]] = {}  # group: [rows, sums of loss, Brier, hits]
        # the weighted totals, from the first update with sample weights on (the float sums
        # and hit counts above then stop; the row counts go on)
        self._w: _WeightedSums | None = None
        # the worst rows: row id, true class, predicted class, p_true, p_predicted, loss
        self._worst = np.zeros((6, 0), dtype=np.float64)

    # -----------------------------------------------------------------------------------------

    def update(
        self,
        y_index: Any,
        proba: Any,
        row_ids: Any = None,
        keys: Any = None,
        groups: Any = None,
        sample_weight: Any = None,
    ) -> ScoreAccumulator:
        """Add a batch of rows (a value that is not a probability is a ``ValueError``).

        Parameters
        ----------
        y_index : array_like of int
            Class indices ``0 .. C-1``, one per row, in the order of ``classes``.
        proba : array_like of shape (n, C)
            Probabilities, one column per class: float32 as given, float16 computed in float32
            (its row sums held to float16's rounding), other dtypes in float64.
        row_ids : array_like of int, optional
            Each row's id (default: its position in this accumulator's stream, from 0); pass them
            when accumulators are merged, so that the worst rows' ids are unique.
        keys : array_like of int, optional
            Which example each row is, for the paired bootstrap: rows of two prediction sets with
            one key are one example (default: the row ids); non-negative.
        groups : array_like, optional
            One value per row (Kaggle's ``Usage``, say): each group's log loss, Brier score and
            accuracy are kept too (``splits``); at most :data:`MAX_GROUPS` distinct values
            (a :class:`RowError` at the first row of one more).
        sample_weight : array_like of float, optional
            One weight per row, finite and >= 0 (a bad one is a :class:`RowError` at its row).
        """
        c = len(self.classes)
        # float16 is computed in float32, its row sums held to its own rounding (as the
        # one-shot metrics hold them)
        raw = to_host(proba, "proba")  # (a DataFrame's or a tensor's dtype, too)
        half = raw.dtype == np.float16
        # rows to be renormalised may hold any finite scores >= 0 (5 times the probabilities)
        p = check_proba_matrix(raw, "proba", n_classes=c, scores=self.renormalize is not None)
        y = check_index_labels(y_index, "y_index", c, p.shape[0])
        n = p.shape[0]
        if row_ids is None:
            rows = np.arange(self._n, self._n + n, dtype=np.int64)
        else:
            rows = _per_row(row_ids, "row_ids", n, "iu", "integers").astype(np.int64, copy=False)
        key = rows
        if keys is not None:
            key = _per_row(keys, "keys", n, "iu", "non-negative integers")
            if n and key.min() < 0:
                raise ValueError(f"keys must be non-negative integers; got {key.min()}")
        coded = None  # the groups as (their distinct values, each row's among them)
        if groups is not None:
            coded = self._coded_groups(_per_row(groups, "groups", n, "", "values"), rows)
        w = None
        if sample_weight is not None:
            w = _per_row(sample_weight, "sample_weight", n, "biuf", "numbers")
            w = w.astype(np.float64, copy=False)
            bad = first_bad_weight(w)
            if bad is not None:
                raise RowError(int(rows[bad]), f"sample weight {w[bad]} is not finite and >= 0")
            check_weight_magnitude(w)
        if self.renormalize == "before_clip":  # checked before any state changes (clipped
            positive = np.sum(p, axis=1) > 0  # first, a row of zeros is uniform)
            if not bool(np.all(positive)):
                row = int(rows[int(np.argmin(positive))])
                raise RowError(row, "the probabilities sum to 0; cannot renormalize")
        if w is not None and self._w is None:  # weighted from now on
            self._w = self._weighted_sums()
        self._n += n
        step = max(1, _BLOCK_ELEMENTS // c)
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            part = None if coded is None else (coded[0], coded[1][lo:hi])
            if w is None and self._w is not None:  # rows without weights weigh 1
                w = np.ones(n)
            wb = None if w is None else w[lo:hi]
            self._add_block(y[lo:hi], p[lo:hi], rows[lo:hi], key[lo:hi], part, wb, half)
        return self

    def _coded_groups(
        self, groups: np.ndarray[Any, Any], rows: np.ndarray[Any, Any]
    ) -> tuple[list[Any], np.ndarray[Any, Any]]:
        """The distinct values of ``groups`` and each row's index among them; a
        :class:`RowError` at the first row whose group would be one more than
        :data:`MAX_GROUPS`, or at the first NaN (no group: each NaN would be one of its own)."""
        if groups.dtype.kind in "fc":
            missing = np.isnan(groups)
        elif groups.dtype.kind == "O":  # (pandas' text with a missing value: None or NaN)
            missing = np.fromiter((v is None or v != v for v in groups.tolist()), bool)
        else:
            missing = None
        if missing is not None and bool(missing.any()):
            row = int(rows[int(np.argmax(missing))])
            raise RowError(row, "the group is missing (None or NaN)", "groups")
        try:
            found, first, which = np.unique(groups, return_index=True, return_inverse=True)
        except TypeError:  # values of types that do not compare (text and numbers)
            kinds = sorted({type(v).__name__ for v in groups.tolist()})
            raise ValueError(
                f"groups must hold values of one kind, that compare; got {', '.join(kinds)}"
            ) from None
        names = found.tolist()
        new = [j for j, name in enumerate(names) if name not in self._splits]
        room = MAX_GROUPS - len(self._splits)
        if len(new) > room:
            row = int(rows[int(np.sort(first[new])[room])])
            raise RowError(row, too_many_groups(), "groups")
        return names, which.reshape(-1)

    def _weighted_sums(self) -> _WeightedSums:
        """The weighted totals: this accumulator's own, or, when it was given no weights,
        its rows' totals, each row of weight 1 (a new object)."""
        if self._w is not None:
            return self._w
        c = len(self.classes)
        out = _WeightedSums(
            c, self.n_bins, self._classwise is not None, self._confusion is not None
        )
        out.total.add(float(self._n))
        out.loss, out.brier, out.entropy = (
            _copy(self._loss),
            _copy(self._brier),
            _copy(self._entropy),
        )
        out.correct.add(float(self._correct))
        out.class_weight.add(self._class_count.astype(np.float64))
        out.class_loss = _copy(self._class_loss)
        out.bins.hi[0], out.bins.hi[2] = self._bin_count, self._bin_correct
        for j, part in ((1, self._bin_conf), (3, self._bin_conf2), (4, self._bin_conf_hit)):
            out.bins.hi[j], out.bins.lo[j] = part.hi, part.lo
        if self._classwise is not None and out.classwise is not None:
            counts, conf = self._classwise
            out.classwise.hi[:2] = counts
            out.classwise.hi[2], out.classwise.lo[2] = conf.hi, conf.lo
        if self._confusion is not None and out.confusion is not None:
            out.confusion.add(self._confusion.astype(np.float64))
        for name, (count, sums) in self._splits.items():
            entry = out.splits.setdefault(name, ExactSum(4))
            entry.hi[0], entry.hi[1:], entry.lo[1:] = count, sums.hi, sums.lo
        return out

    def _add_block(
        self,
        y: np.ndarray[Any, Any],
        p: np.ndarray[Any, Any],
        rows: np.ndarray[Any, Any],
        keys: np.ndarray[Any, Any],
        groups: _Coded | None = None,
        w: np.ndarray[Any, Any] | None = None,
        half: bool = False,
    ) -> None:
        """Add validated rows (a block small enough for its temporaries to stay in cache),
        with their groups (:meth:`_coded_groups`) and checked weights ``w`` (float64) if any;
        ``half``: stored in float16."""
        c = len(self.classes)
        found = rows_pass(p, y)
        p_true, (low, high) = found.p_true, found.sum_range or (1.0, 1.0)
        eps = float(np.finfo(p.dtype).eps)
        # checked at the stored precision, as metrics.log_loss does
        tol = row_sum_tolerance(float(np.finfo(np.float16).eps) if half else eps)
        off = high - 1 > tol or 1 - low > tol
        if self.renormalize is not None:
            sums = np.sum(p, axis=1)
            if off:
                self._off_sum += int(np.count_nonzero(np.abs(sums - 1) > tol))
                off = False
            p = renormalized(p, self.clip if self.clip is not None else eps, self.renormalize)
            p_true = gather(np, p, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.renormalize is not None:  # already clipped
                loss = -np.log(p_true)
            else:  # clipped at the stored precision, as metrics.log_loss does, or at clip
                clip = "sklearn" if self.clip is None else self.clip
                loss = row_log_loss(np, p_true, p.dtype, clip).astype(np.float64, copy=False)
            if off:
                self._off_sum += int(np.count_nonzero(np.abs(np.sum(p, axis=1) - 1) > tol))
            p = p.astype(np.float64, copy=False)
            p_true = p_true.astype(np.float64, copy=False)
            top, p_top = top_label(p)
            if self._tie_order is not None:  # rows that tie: the first maximum in the classes'
                order = self._tie_order  # sorted order
                tied = np.flatnonzero(np.count_nonzero(p == p_top[:, None], axis=1) > 1)
                if tied.size:
                    top[tied] = order[np.argmax(p[tied][:, order], axis=1)]
            if w is None:
                self._loss.add(np.sum(loss))
                self._correct += int(np.count_nonzero(top == y))
                self._brier.add(brier_sum(np, p, p_true))
                self._entropy.add(entropy_sum(np, p))
        self._class_count += np.bincount(y, minlength=c)
        if c == 2:
            conf = p[:, 1]
            hit = y == 1
        else:
            conf = p_top
            hit = top == y
        edges = uniform_edges(self.n_bins)
        b = bin_index(np, conf, edges, table=True)
        self._bin_count += np.bincount(b, minlength=self.n_bins)
        cal_eps = eps if self.clip is None else self.clip
        if w is None:
            self._class_loss.add(np.bincount(y, weights=loss, minlength=c))
            b_hit = b[hit]
            self._bin_conf.add(np.bincount(b, weights=conf, minlength=self.n_bins))
            self._bin_correct += np.bincount(b_hit, minlength=self.n_bins)
            self._bin_conf2.add(np.bincount(b, weights=conf * conf, minlength=self.n_bins))
            self._bin_conf_hit.add(np.bincount(b_hit, weights=conf[hit], minlength=self.n_bins))
            self._cal.update(hit, conf, eps=cal_eps)
        else:
            self._cal.update(hit, conf, eps=cal_eps, sample_weight=w)
        if self._classwise is not None:
            cb = bin_index(np, p.reshape(-1), edges, table=True).reshape(p.shape)
            cb += np.arange(0, c * self.n_bins, self.n_bins, dtype=cb.dtype)
            own = cb[np.arange(p.shape[0]), y]
            cb = cb.reshape(-1)
            if w is None:
                size = c * self.n_bins
                cw_counts, cw_conf = self._classwise
                cw_counts[0] += np.bincount(cb, minlength=size).reshape(c, -1)
                cw_conf.add(np.bincount(cb, weights=p.reshape(-1), minlength=size).reshape(c, -1))
                cw_counts[1] += np.bincount(own, minlength=size).reshape(c, -1)
        if self._confusion is not None and w is None:
            self._confusion += np.bincount(y * c + top, minlength=c * c).reshape(c, c)
        self._hist += np.bincount(loss_bin(loss), minlength=len(self._hist))
        values = None
        if self._paired is not None or groups is not None or w is not None:
            brier = row_brier(np, p, p_true) * brier_scale(c)
            values = np.stack([loss, brier, (top == y).astype(np.float64)], axis=1)
        if w is not None:
            assert values is not None
            self._add_weighted(w, y, p, p_true, top, values, (conf, hit, b))
            if self._classwise is not None:
                self._add_weighted_classwise(w, p, cb, own)
        if values is not None and (self._paired is not None or groups is not None):
            if self._paired is not None:
                self._paired.update(keys, values, labels=self._rank[y], sample_weight=w)
            if groups is not None and w is not None:
                self._add_weighted_groups(w, values, groups)
            elif groups is not None:
                names, which = groups
                for j, count, sums in _group_sums(which, values.T):
                    entry = self._splits.setdefault(names[j], [0, ExactSum(3)])
                    entry[0] += count
                    entry[1].add(sums)
        if self.worst:
            # the candidates: rows of positive weight (a row of weight 0 costs nothing), then
            # those at or above the k-th largest loss (ties included)
            pick: Any = slice(None) if w is None else np.flatnonzero(w > 0)
            ranked = loss[pick]
            if ranked.shape[0] > self.worst:
                cut = np.partition(ranked, ranked.shape[0] - self.worst)[-self.worst]
                pick = np.flatnonzero(ranked >= cut) if w is None else pick[ranked >= cut]
            cols = (rows, y, top, p_true, p_top, loss)
            self._keep_worst(np.stack([a[pick] for a in cols]).astype(np.float64))

    def _add_weighted(
        self,
        w: np.ndarray[Any, Any],
        y: np.ndarray[Any, Any],
        p: np.ndarray[Any, Any],
        p_true: np.ndarray[Any, Any],
        top: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        pairs: tuple[np.ndarray[Any, Any], ...],
    ) -> None:
        """The weighted totals of a block: ``values`` the per-row loss, Brier score (scaled)
        and hit; ``pairs`` the calibration pairs (forecast, outcome) and their bins."""
        conf, hit, b = pairs
        ws = self._w
        assert ws is not None
        c, k = len(self.classes), self.n_bins
        loss, hits = values[:, 0], values[:, 2]
        ws.total.add(np.sum(w))
        ws.loss.add(np.dot(w, loss))
        ws.correct.add(np.dot(w, hits))
        ws.brier.add(np.dot(w, row_brier(np, p, p_true)))
        ws.entropy.add(np.dot(w, row_entropy(np, p)))
        ws.class_weight.add(np.bincount(y, weights=w, minlength=c))
        ws.class_loss.add(np.bincount(y, weights=w * loss, minlength=c))
        wf, wo = w * conf, w * hit
        ws.bins.add(
            np.stack(
                [
                    np.bincount(b, weights=w, minlength=k),
                    np.bincount(b, weights=wf, minlength=k),
                    np.bincount(b, weights=wo, minlength=k),
                    np.bincount(b, weights=wf * conf, minlength=k),
                    np.bincount(b, weights=wf * hit, minlength=k),
                ]
            )
        )
        if ws.confusion is not None:
            ws.confusion.add(np.bincount(y * c + top, weights=w, minlength=c * c).reshape(c, c))

    def _add_weighted_classwise(
        self,
        w: np.ndarray[Any, Any],
        p: np.ndarray[Any, Any],
        cb: np.ndarray[Any, Any],
        own: np.ndarray[Any, Any],
    ) -> None:
        """Class-wise bins of a weighted block: ``cb`` the flat bin of every probability, ``own``
        that of each row's own class."""
        assert self._w is not None
        assert self._w.classwise is not None
        c, size = len(self.classes), len(self.classes) * self.n_bins
        wide = np.repeat(w, c)
        self._w.classwise.add(
            np.stack(
                [
                    np.bincount(cb, weights=wide, minlength=size),
                    np.bincount(own, weights=w, minlength=size),
                    np.bincount(cb, weights=wide * p.reshape(-1), minlength=size),
                ]
            ).reshape(3, c, -1)
        )

    def _add_weighted_groups(
        self, w: np.ndarray[Any, Any], values: np.ndarray[Any, Any], groups: _Coded
    ) -> None:
        """Each group's rows, weight and weighted sums of ``values``."""
        assert self._w is not None
        names, which = groups
        for j, count, sums in _group_sums(which, np.vstack([w, w * values.T])):
            self._splits.setdefault(names[j], [0, ExactSum(3)])[0] += count
            self._w.splits.setdefault(names[j], ExactSum(4)).add(sums)

    def _keep_worst(self, cand: np.ndarray[Any, Any]) -> None:
        """Merge candidate rows (columns of :attr:`_worst`'s layout) into the worst rows."""
        k = self.worst
        both = np.concatenate([self._worst, cand], axis=1)
        order = np.lexsort((both[0], -both[5]))[:k]
        self._worst = both[:, order]

    def merge(self, other: ScoreAccumulator) -> ScoreAccumulator:
        """Add the rows another accumulator (same classes and options) has seen.

        Parameters
        ----------
        other : ScoreAccumulator
            An accumulator of the same kind, options and classes.
        """
        if not isinstance(other, ScoreAccumulator):
            raise TypeError(f"other must be a ScoreAccumulator; got {type(other).__name__}")
        if other.classes != self.classes or other.n_bins != self.n_bins:
            raise ValueError(
                "other must have the same classes and n_bins; got "
                f"{other.classes!r}, n_bins={other.n_bins} for {self.classes!r}, "
                f"n_bins={self.n_bins}"
            )
        mine_opts, theirs = (
            (a.worst, a.bootstrap, a.seed, a.paired, a.clip, a.renormalize) for a in (self, other)
        )
        if mine_opts != theirs:
            names = ("worst", "bootstrap", "seed", "paired", "clip", "renormalize")
            differ = ", ".join(
                f"{name}={b!r} for {a!r}"
                for name, a, b in zip(names, mine_opts, theirs, strict=True)
                if a != b
            )
            raise ValueError(
                "other must have the same worst=, bootstrap=, seed=, paired=, clip= and "
                f"renormalize= options; got {differ}"
            )
        if len(self._splits.keys() | other._splits.keys()) > MAX_GROUPS:
            raise TooManyGroups(f"the two accumulators hold {too_many_groups()}")
        if self._w is not None or other._w is not None:
            mine = self._weighted_sums()
            mine.merge(other._weighted_sums())
            self._w = mine
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
        self._bin_conf2.merge(other._bin_conf2)
        self._bin_conf_hit.merge(other._bin_conf_hit)
        self._cal.merge(other._cal)
        if self._classwise is not None and other._classwise is not None:
            self._classwise[0][...] += other._classwise[0]
            self._classwise[1].merge(other._classwise[1])
        if self._confusion is not None and other._confusion is not None:
            self._confusion += other._confusion
        self._hist += other._hist
        if self._paired is not None and other._paired is not None:
            self._paired.merge(other._paired)
        for name, (rows, sums) in other._splits.items():
            entry = self._splits.setdefault(name, [0, ExactSum(3)])
            entry[0] += rows
            entry[1].merge(sums)
        self._keep_worst(other._worst)
        return self

    def result(self) -> dict[str, Any]:
        """The report as plain Python values (JSON-serialisable; NaN where no row was seen).

        Raises
        ------
        ZeroWeightError
            Rows were given with sample weights that sum to zero (a ``ValueError``).
        """
        n = self._n
        nan = float("nan")
        t = self._totals()
        total = t["total"]
        if n:
            check_weight_total(total)

        def mean(value: ExactSum) -> float:
            return float(value.value()) / total if n else nan

        weighted = self._w is not None
        c = len(self.classes)
        class_w, class_loss = t["class_weight"], t["class_loss"]
        per_class = []
        for j in range(c):
            entry = {
                "label": self.classes[j],
                "count": int(self._class_count[j]),
                "log_loss": float(class_loss[j]) / float(class_w[j]) if class_w[j] else None,
            }
            if weighted:
                entry["weight"] = float(class_w[j])
            per_class.append(entry)
        edges = uniform_edges(self.n_bins)
        bin_w, conf_sum, hits = t["bin_weight"], t["bin_conf"], t["bin_hits"]
        reliability = []
        for b in range(self.n_bins):
            one = {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "confidence": float(conf_sum[b]) / float(bin_w[b]) if bin_w[b] else None,
                "accuracy": float(hits[b]) / float(bin_w[b]) if bin_w[b] else None,
                "count": int(self._bin_count[b]),
            }
            if weighted:
                one["weight"] = float(bin_w[b])
            reliability.append(one)
        brier = mean(t["brier"]) * brier_scale(c)
        confusion = t["confusion"]
        out = {
            "n": n,
            "log_loss": mean(t["loss"]),
            "accuracy": float(t["correct"]) / total if n else nan,
            "brier": brier,
            "ece": calibration_norm(
                np.asarray(bin_w, dtype=np.float64),
                conf_sum,
                np.asarray(hits, dtype=np.float64),
                "l1",
            ),
            "mean_entropy": mean(t["entropy"]),
            "per_class": per_class,
            "worst": self.worst_rows(),
            "reliability": reliability,
            "loss_histogram": {
                "edges": [float(e) for e in LOSS_EDGES],
                "counts": [int(k) for k in self._hist],
            },
            "rows_not_summing_to_one": self._off_sum,
            "calibration": self._calibration(brier, t) if n else None,
            "splits": self._split_results() if self._splits else None,
            "confusion": None if confusion is None else confusion.tolist(),
        }
        if weighted:
            out["weight"] = total
        return out

    def _totals(self) -> dict[str, Any]:
        """The totals that :meth:`result` divides: row counts and sums, or with sample weights
        the weights and weighted sums."""
        ws = self._w
        if ws is None:
            cw = self._classwise
            return {
                "total": self._n,
                "loss": self._loss,
                "correct": self._correct,
                "brier": self._brier,
                "entropy": self._entropy,
                "class_weight": self._class_count,
                "class_loss": self._class_loss.value(),
                "bin_weight": self._bin_count,
                "bin_conf": self._bin_conf.value(),
                "bin_hits": self._bin_correct,
                "bin_conf2": self._bin_conf2.value(),
                "bin_conf_hit": self._bin_conf_hit.value(),
                "classwise": None if cw is None else (cw[0][0], cw[0][1], cw[1].value()),
                "confusion": self._confusion,
            }
        bins = ws.bins.value()
        cw_sums = None if ws.classwise is None else ws.classwise.value()
        return {
            "total": float(ws.total.value()),
            "loss": ws.loss,
            "correct": float(ws.correct.value()),
            "brier": ws.brier,
            "entropy": ws.entropy,
            "class_weight": ws.class_weight.value(),
            "class_loss": ws.class_loss.value(),
            "bin_weight": bins[0],
            "bin_conf": bins[1],
            "bin_hits": bins[2],
            "bin_conf2": bins[3],
            "bin_conf_hit": bins[4],
            "classwise": None if cw_sums is None else (cw_sums[0], cw_sums[1], cw_sums[2]),
            "confusion": None if ws.confusion is None else ws.confusion.value(),
        }

    @property
    def paired_totals(self) -> BootstrapTotals | None:
        """The paired bootstrap's totals (``paired=`` replicates), or None."""
        return self._paired

    def worst_rows(self) -> list[dict[str, Any]]:
        """The worst rows so far, largest loss first: ``row``, ``label``, ``predicted`` (the
        argmax class), ``p_true``, ``p_predicted``, ``loss``."""
        return [
            {
                "row": int(r),
                "label": self.classes[int(lab)],
                "predicted": self.classes[int(top)],
                "p_true": float(pt),
                "p_predicted": float(pp),
                "loss": float(lo),
            }
            for r, lab, top, pt, pp, lo in self._worst.T
        ]

    def _split_results(self) -> list[dict[str, Any]]:
        out = []
        for name in sorted(self._splits, key=sort_key):
            rows, sums = self._splits[name]
            if self._w is None:
                loss, brier, hits = (float(v) / rows for v in sums.value())
                out.append(
                    {"split": name, "n": rows, "log_loss": loss, "brier": brier, "accuracy": hits}
                )
                continue
            weight, *totals = (float(v) for v in self._w.splits[name].value())
            loss, brier, hits = (v / weight if weight else None for v in totals)
            out.append(
                {
                    "split": name,
                    "n": rows,
                    "weight": weight,
                    "log_loss": loss,
                    "brier": brier,
                    "accuracy": hits,
                }
            )
        return out

    def _calibration(self, brier: float, t: dict[str, Any]) -> dict[str, Any]:
        """The ``calibration`` entry of :meth:`result` (rows seen), from :meth:`_totals`."""
        c = len(self.classes)
        total = t["total"]
        edges = uniform_edges(self.n_bins)
        count = np.asarray(t["bin_weight"], dtype=np.float64)
        hits = np.asarray(t["bin_hits"], dtype=np.float64)
        rows = None if self._w is None else self._bin_count
        out = self._cal.result(n_bins=self.n_bins, bootstrap=self.bootstrap, seed=self.seed)
        out["pairs"] = "positive class" if c == 2 else "top label"
        out["equal_width"] = binned_summary(edges, count, t["bin_conf"], hits, rows)
        out["murphy"] = murphy_terms(
            count, t["bin_conf"], t["bin_conf2"], hits, t["bin_conf_hit"]
        )._asdict()
        if t["classwise"] is not None:
            weights, own, conf = t["classwise"]
            per = [binned_summary(edges, weights[j], conf[j], own[j])["ece"] for j in range(c)]
            out["classwise"] = {
                "ece": float(np.mean(per)),
                "per_class": [{"label": self.classes[j], "ece": per[j]} for j in range(c)],
            }
        else:
            out["classwise"] = None
        class_w = t["class_weight"]
        freq = class_w[class_w > 0] / total
        null_log = 0.0 - float(np.sum(freq * np.log(freq)))  # one class: 0, not -0
        null_brier = float(1 - np.sum(freq * freq)) * brier_scale(c)
        loss = float(t["loss"].value())
        out["skill"] = {
            "base_rate_log_loss": null_log,
            "base_rate_brier": null_brier,
            "d2_log_loss": 1 - loss / total / null_log if null_log > 0 else None,
            "brier_skill": 1 - brier / null_brier if null_brier > 0 else None,
        }
        return out

    def __repr__(self) -> str:
        return (
            f"ScoreAccumulator(classes={self.classes!r}, n_bins={self.n_bins}, "
            f"worst={self.worst}; n={self._n})"
        )
