r"""One-shot metrics for probability predictions, with scikit-learn's names and numbers.

Every function takes ``(y_true, y_proba)`` as :mod:`sklearn.metrics` does: ``y_true`` holds
class labels of any type (integers, strings, booleans; strings only as NumPy arrays or lists),
``y_proba`` is either the probability of the positive (larger) class, shape ``(n,)``, or one
column per class in the sorted order of the labels, shape ``(n, C)``.

Return rule: NumPy arrays and Python sequences give a Python ``float``, as scikit-learn does;
arrays of another library (PyTorch, JAX, CuPy, Dask, array-api-strict) give a 0-D array of that
library, on the input's device, in the input's floating dtype (lazy for Dask, except where a
metric needs the values: :func:`calibration_error`). Sums are accumulated in float64 where the
library has it.

Labels are encoded on the host; for arrays of other libraries ``y_true`` is copied to the host
(and computed, for Dask). Checks that need values (NaN or inf, probabilities outside [0, 1],
rows that do not sum to 1, a zero total weight) run on concrete arrays and are skipped on lazy
ones, where such input gives NaN (without a floating-point warning for a zero total weight);
``crossentropy.validation(True)`` computes them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from typing import Any, Literal, NamedTuple

import numpy as np

from crossentropy._lib.checks import ParameterError, check_bool, check_choice, shape_str
from crossentropy._lib.host import to_host, to_host_all
from crossentropy._lib.namespace import Array, Namespace, device_of, is_dask
from crossentropy._lib.policy import get_validation, reads
from crossentropy.metrics._fast import top_label
from crossentropy.metrics._formulas import (
    bin_index,
    brier_scale,
    calibration_norm,
    quantile_edges,
    row_brier,
    row_log_loss,
    uniform_edges,
)
from crossentropy.metrics._labels import (
    POS_LABEL_1,
    ClassCountError,
    check_pos_label,
    distinct,
    host_labels,
    indicator_rows,
)
from crossentropy.metrics._prepare import (
    NO_ROWS,
    Prepared,
    accumulate_dtype,
    check_weight_magnitude,
    finish,
    prepare,
    weight_total,
    weighted_sum,
)

__all__ = [
    "ClassLogLoss",
    "ZeroWeightError",
    "brier_score_loss",
    "calibration_error",
    "d2_brier_score",
    "d2_log_loss_score",
    "log_loss",
    "log_loss_per_class",
    "perplexity",
]


class ZeroWeightError(ValueError, ZeroDivisionError):
    """The sample weights sum to zero: no weighted mean. scikit-learn raises a ``ValueError``
    when every weight is zero and a ``ZeroDivisionError`` when weights of both signs cancel;
    this is both.

    Parameters
    ----------
    message : str, optional
        The error's text (default: the one message every metric gives).
    """

    def __init__(
        self, message: str = "sample_weight sums to zero; the weighted mean is undefined"
    ) -> None:
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# Shared pieces.
# ---------------------------------------------------------------------------------------------


def renamed_y_pred(y_proba: Any, y_pred: Any) -> Any:
    """scikit-learn 1.9's rename of ``y_pred`` to ``y_proba``: the old name is accepted with a
    ``FutureWarning``; both together is a ``ValueError``, neither a ``TypeError``."""
    if isinstance(y_pred, str) and y_pred == "deprecated":
        if y_proba is None:
            raise TypeError("y_proba is required: the predicted probabilities")
        return y_proba
    if y_proba is not None:
        raise ValueError(
            "Cannot use both y_pred and y_proba: y_pred is the deprecated name of y_proba"
        )
    warnings.warn(
        "y_pred was renamed to y_proba (as in scikit-learn 1.9); use y_proba instead",
        FutureWarning,
        stacklevel=3,
    )
    return y_pred


def check_weight_total(weights: Any) -> None:
    """The rule of every weighted mean's divisor: the sample weights' total (of a NumPy array,
    or a total already summed) is positive (else :class:`ZeroWeightError`) and small enough
    that no weighted sum overflows float64 (else a ``ValueError``:
    :func:`check_weight_magnitude`)."""
    total = weight_total(weights)
    if total == 0:
        raise ZeroWeightError()
    check_weight_magnitude(total)


def check_some_weight(counted: bool) -> None:
    """The rule of a weighted sum (``normalize=False``): some weight is not zero (else
    :class:`ZeroWeightError`, as scikit-learn refuses all-zero weights); weights of both signs
    that cancel give their sum."""
    if not counted:
        raise ZeroWeightError("sample_weight sums to zero: every weight is zero, no row counts")


def _denominator(prep: Prepared) -> Array:
    """The number of rows, or the sum of the sample weights (float64 where available)."""
    xp = prep.xp
    if prep.weight is None:
        like = prep.proba
        return xp.asarray(float(prep.n), dtype=accumulate_dtype(xp, like), device=device_of(like))
    with np.errstate(over="ignore"):  # an overflowing total is refused below
        den = xp.sum(prep.weight)
    if reads(None, den):
        check_weight_total(float(den))
        return den
    # lazy (Dask): a zero total gives NaN when computed, without a 0/0 warning
    return xp.where(den == 0, xp.full_like(den, math.nan), den)


def losses(prep: Prepared) -> Array:
    """Per-row log loss in the compute dtype (clipped at that dtype's eps); for a label
    indicator ``y_true`` with multi-label rows, ``-sum_c t_c log clip(p_c)``, as scikit-learn
    computes it."""
    if prep.indicator is not None:
        matrix = prep.matrix()
        return prep.xp.sum(prep.indicator * row_log_loss(prep.xp, matrix, matrix.dtype), axis=1)
    return row_log_loss(prep.xp, prep.p_true, prep.p_true.dtype)


def loss_total(prep: Prepared) -> Array:
    """The weighted sum of the per-row log losses (from the fast path when it has it)."""
    if prep.loss_total is not None:
        total = prep.loss_total
        return np.float64(total) if isinstance(total, float | np.floating) else total
    return weighted_sum(prep.xp, losses(prep), prep.weight)


def brier_total(prep: Prepared) -> Array:
    """The weighted sum of :func:`row_brier_of`; for a NumPy binary vector, two passes (the
    difference, then a dot product in float64)."""
    p = prep.proba
    if prep.numpy and prep.binary_vector and prep.indicator is None:
        d = np.subtract(p, prep.index, dtype=np.float64)
        return 2 * (np.dot(d, d) if prep.weight is None else np.dot(d * d, prep.weight))
    return weighted_sum(prep.xp, row_brier_of(prep), prep.weight)


def row_brier_of(prep: Prepared) -> Array:
    """Per-row ``sum_c (t_c - p_c)^2``: ``t`` one-hot, or the label indicator's row; for a
    binary vector ``p`` (the second class's probability) ``2 (y - p)^2`` in one pass."""
    if prep.binary_vector and prep.indicator is None:
        xp, p = prep.xp, prep.proba
        d = xp.astype(prep.index, p.dtype) - p
        return 2 * (d * d)
    matrix = prep.matrix()
    if prep.indicator is not None:
        diff = prep.indicator - matrix
        return prep.xp.sum(diff * diff, axis=1)
    return row_brier(prep.xp, matrix, prep.p_true)


def _mean(prep: Prepared, values: Array) -> Array:
    return weighted_sum(prep.xp, values, prep.weight) / _denominator(prep)


def class_means(xp: Namespace, totals: Array, counts: Array) -> Array:
    """Per class, ``totals / counts``; NaN where a class's weight is 0 (no rows, or weights of
    both signs that cancel: a finite total over 0 would be inf)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / counts
    return xp.where(counts == 0, xp.full_like(means, math.nan), means)


def class_totals(prep: Prepared, values: Array | None) -> Array:
    """Per class: the sum of (weighted) ``values``, or of the weights when ``values`` is None."""
    xp = prep.xp
    c = int(prep.classes.shape[0])
    acc = accumulate_dtype(xp, prep.proba)
    v = values if values is None or values.dtype == acc else xp.astype(values, acc)
    if prep.weight is not None:
        v = prep.weight if v is None else v * prep.weight
    if prep.indicator is not None:  # multi-label rows: the columns' (weighted) sums
        t = xp.astype(prep.indicator, acc)
        return xp.sum(t if v is None else t * xp.expand_dims(v, axis=1), axis=0)
    if prep.numpy:
        return np.bincount(prep.index, weights=v, minlength=c).astype(np.float64, copy=False)
    onehot = xp.expand_dims(prep.index, axis=1) == xp.arange(
        c, dtype=prep.index.dtype, device=device_of(prep.index)
    )
    if v is None:
        return xp.sum(xp.astype(onehot, acc), axis=0)
    return xp.sum(
        xp.where(onehot, xp.expand_dims(v, axis=1), xp.zeros_like(onehot, dtype=acc)), axis=0
    )


# ---------------------------------------------------------------------------------------------
# Log loss and its relatives.
# ---------------------------------------------------------------------------------------------


def log_loss(
    y_true: Any,
    y_proba: Any = None,
    *,
    normalize: bool = True,
    sample_weight: Any = None,
    labels: Any = None,
    y_pred: Any = "deprecated",
) -> Any:
    r"""Log loss (cross-entropy) of predicted probabilities, as :func:`sklearn.metrics.log_loss`.

    .. math::

        L = \frac{\sum_i w_i\, \ell_i}{\sum_i w_i}, \qquad
        \ell_i = -\log \operatorname{clip}(p_{i, y_i}, \varepsilon, 1 - \varepsilon)

    with :math:`\varepsilon` the machine epsilon of the dtype the probabilities are computed in
    (scikit-learn 1.9's clipping): ``y_proba``'s floating dtype, float32 for float16 and
    bfloat16 (scikit-learn clips float16 at float16's), float64 for integers; natural
    logarithm (nats). Each row's loss is computed in that dtype and the mean is taken in
    float64, as scikit-learn does for float64; for float32 scikit-learn also averages in float32
    and returns that float32 number, so the two can differ in the 8th significant digit (here the
    mean of the same float32 losses, without the float32 sum's rounding). Rows are not
    renormalised: a ``UserWarning`` says when a row sum is off 1 by more than
    ``1e-8 + sqrt(eps)`` (scikit-learn's check).

    A label indicator matrix ``y_true`` of shape ``(n, C)`` is read as scikit-learn reads it:
    the columns are the classes, and a row's loss is :math:`-\sum_c t_{ic} \log
    \operatorname{clip}(p_{ic})` (the usual loss for one 1 per row; rows of several 1s or none
    are summed over their 1s).

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of
        the labels.
    normalize : bool, default True
        The weighted mean; False for the weighted sum.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).
    y_pred : array_like, optional
        Deprecated name of ``y_proba`` (as in scikit-learn 1.9): accepted with a
        ``FutureWarning``; giving both is a ``ValueError``.

    Returns
    -------
    float or 0-D array
        A Python float for NumPy input, a 0-D array of the input's library otherwise.

    Raises
    ------
    ValueError
        NaN or inf in ``y_proba`` (the first bad row is named), a probability outside [0, 1],
        a single class without ``labels``, columns that do not match the classes, lengths that
        differ, a label outside ``labels``, a missing label, sample weights that sum to zero
        (:class:`ZeroWeightError`; with ``normalize=False`` only where every weight is zero, as
        scikit-learn: weights of both signs that cancel give their weighted sum) or to more than
        float64's
        largest over 2**32, about 4e298 (where a weighted sum could overflow; scikit-learn's
        are exact up to weights of about 1e306 each, NaN beyond). A Dask result is lazy: its
        values are not read, so a bad value or a zero total weight gives NaN, unless
        ``crossentropy.validation(True)`` reads them first (conventions §16).

    Examples
    --------
    >>> from crossentropy.metrics import log_loss
    >>> log_loss(["spam", "ham", "ham", "spam"], [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    0.21616187468057912
    >>> log_loss([0, 1, 1], [0.2, 0.7, 0.4], sample_weight=[1, 2, 3])
    0.6142276058023566
    """
    check_bool(normalize, "normalize")
    y_proba = renamed_y_pred(y_proba, y_pred)
    prep = prepare(
        y_true, y_proba, sample_weight, labels, loss_sum=True, multi_label=True, nonempty=True
    )
    total = loss_total(prep)
    if normalize:
        return finish(prep, total / _denominator(prep))
    if prep.weight is None:
        return finish(prep, total)
    xp = prep.xp
    counted = xp.any(prep.weight != 0)
    if reads(None, counted):
        check_some_weight(bool(counted))
        return finish(prep, total)
    return finish(prep, xp.where(counted, total, xp.full_like(total, math.nan)))  # lazy: NaN


def perplexity(y_true: Any, y_proba: Any, *, sample_weight: Any = None, labels: Any = None) -> Any:
    r"""Perplexity of the predictions: the exponential of the mean log loss.

    .. math::

        \mathrm{PP} = e^{L} = b^{L_b}

    It does not depend on the logarithm base (:math:`L_b` is the log loss in base :math:`b`):
    the effective number of equally likely classes the model hesitates between. Same
    conventions as :func:`log_loss` (clipping, warnings, errors).

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of the
        labels.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).

    Examples
    --------
    >>> from crossentropy.metrics import perplexity
    >>> perplexity([0, 1, 2, 3], [[0.25] * 4] * 4)
    4.0
    """
    prep = prepare(
        y_true, y_proba, sample_weight, labels, loss_sum=True, multi_label=True, nonempty=True
    )
    return finish(prep, prep.xp.exp(loss_total(prep) / _denominator(prep)))


class ClassLogLoss(NamedTuple):
    """Mean log loss of the rows of each true class.

    ``classes``: the sorted class labels (NumPy); ``log_loss``: per class, the weighted mean
    loss of its rows (NaN for a class without rows); ``count``: per class, the number of rows
    (the sum of their sample weights when weighted). ``sum(count * log_loss) / sum(count)`` is
    :func:`log_loss`. NumPy input gives NumPy float64 arrays; other libraries give arrays of
    their own.
    """

    classes: np.ndarray[Any, Any]
    log_loss: Any
    count: Any


def log_loss_per_class(
    y_true: Any, y_proba: Any, *, sample_weight: Any = None, labels: Any = None
) -> ClassLogLoss:
    r"""Log loss broken down by true class, with the class counts.

    .. math::

        L_c = \frac{\sum_{i: y_i = c} w_i\, \ell_i}{W_c}, \qquad W_c = \sum_{i: y_i = c} w_i

    Same conventions as :func:`log_loss`; the overall loss is the :math:`W_c`-weighted mean of
    the :math:`L_c`.

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of the
        labels.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).

    Returns
    -------
    ClassLogLoss
        ``(classes, log_loss, count)``.

    Examples
    --------
    >>> from crossentropy.metrics import log_loss_per_class
    >>> r = log_loss_per_class(["a", "b", "b"], [[0.5, 0.5], [0.2, 0.8], [0.6, 0.4]])
    >>> r.classes.tolist(), r.log_loss.round(4).tolist(), r.count.tolist()
    (['a', 'b'], [0.6931, 0.5697], [1.0, 2.0])
    """
    prep = prepare(y_true, y_proba, sample_weight, labels, nonempty=True)
    xp = prep.xp
    totals = class_totals(prep, losses(prep))
    counts = class_totals(prep, None)
    means = class_means(xp, totals, counts)
    if prep.numpy:
        return ClassLogLoss(prep.classes, np.asarray(means), np.asarray(counts))
    return ClassLogLoss(
        prep.classes, xp.astype(means, prep.out_dtype), xp.astype(counts, prep.out_dtype)
    )


def d2_log_loss_score(
    y_true: Any,
    y_proba: Any = None,
    *,
    sample_weight: Any = None,
    labels: Any = None,
    y_pred: Any = "deprecated",
) -> Any:
    r""":math:`D^2`: the share of the log loss of the class-frequency baseline explained.

    .. math::

        D^2 = 1 - \frac{\sum_i w_i \ell_i}{\sum_i w_i \ell^0_i}, \qquad
        \ell^0_i = -\log \operatorname{clip}\Bigl(\frac{W_{y_i}}{W}, \varepsilon,
        1 - \varepsilon\Bigr)

    where :math:`W_c / W` is the weighted share of class :math:`c` (the baseline always predicts
    the class proportions of ``y_true``; its log is clipped at the float64 eps), as
    :func:`sklearn.metrics.d2_log_loss_score`. 1 is perfect, 0 the baseline, negative worse.
    Fewer than two rows give NaN with a ``UserWarning``; sample weights that sum to zero are a
    ``ValueError`` (:class:`ZeroWeightError`). A label indicator ``y_true`` and the deprecated
    ``y_pred=`` are taken as by :func:`log_loss` (the baseline then predicts each column's
    weighted mean).

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of the
        labels.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).
    y_pred : array_like, optional
        Deprecated name of ``y_proba`` (as in scikit-learn 1.9): accepted with a
        ``FutureWarning``; giving both is a ``ValueError``.

    Examples
    --------
    >>> from crossentropy.metrics import d2_log_loss_score
    >>> round(d2_log_loss_score([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]), 6)
    0.714873
    """
    y_proba = renamed_y_pred(y_proba, y_pred)
    n = _n_rows(y_proba)
    if n is not None and n < 2:
        # checked first, as scikit-learn checks the numbers and lengths (the labels against
        # labels= too, where it does not); one row holds one class, not an error here
        with contextlib.suppress(ClassCountError):
            prepare(y_true, y_proba, sample_weight, labels, multi_label=True)
        return d2_undefined()
    prep = prepare(y_true, y_proba, sample_weight, labels, loss_sum=True, multi_label=True)
    if n is None and prep.n < 2:  # a length known only now (a Dask DataFrame)
        return d2_undefined()
    total, counts = to_host_all(_denominator(prep), class_totals(prep, None))  # (one pass)
    total_weight = float(np.asarray(total))
    numerator = loss_total(prep)
    counts = np.asarray(counts, dtype=np.float64)
    share = counts / total_weight
    baseline = row_log_loss(np, share, np.float64)
    denominator = float(np.sum(counts * baseline))
    return finish(prep, 1 - numerator / denominator)


def _proba_shape(y_proba: Any) -> tuple[Any, ...]:
    """The shape of ``y_proba``, an array's without converting it; ragged rows are a
    ``TypeError`` naming ``y_proba``, as :func:`log_loss` gives."""
    shape = getattr(y_proba, "shape", None)
    if shape is not None:
        return tuple(shape)
    try:
        return np.shape(y_proba)
    except ValueError:  # (NumPy's "inhomogeneous shape")
        raise TypeError(
            f"y_proba must be an array or a sequence of numbers; got {y_proba!r}"
        ) from None


def _n_rows(y_proba: Any) -> int | None:
    """The number of rows, or None where it is not known without computing (a Dask
    DataFrame's length is a lazy scalar; a Dask array's may be NaN)."""
    shape = getattr(y_proba, "shape", None)
    if shape is None:
        shape = _proba_shape(y_proba)
        return int(shape[0]) if shape else 0
    if not len(shape):
        return 0
    rows = shape[0]
    if isinstance(rows, int | np.integer):
        return int(rows)
    return None


def undefined_metric_warning() -> type[UserWarning]:
    """The category of a warning that a metric is undefined (NaN): scikit-learn's
    ``UndefinedMetricWarning`` (a ``UserWarning``) where ``sklearn.exceptions`` is imported, so
    that a filter or ``pytest.warns`` written for scikit-learn catches it; else
    ``UserWarning``. scikit-learn is not imported for it."""
    found = sys.modules.get("sklearn.exceptions")
    category = getattr(found, "UndefinedMetricWarning", None)
    if isinstance(category, type) and issubclass(category, UserWarning):
        return category
    return UserWarning


def d2_undefined(stacklevel: int = 3) -> float:
    """scikit-learn's NaN, with its warning, for fewer than two rows (``stacklevel``: the
    caller's caller's by default, the user's call to a metric)."""
    warnings.warn(
        "D^2 score is not well-defined with less than two samples.",
        undefined_metric_warning(),
        stacklevel=stacklevel,
    )
    return float("nan")


# ---------------------------------------------------------------------------------------------
# Brier score.
# ---------------------------------------------------------------------------------------------


def brier_score_loss(
    y_true: Any,
    y_proba: Any,
    *,
    sample_weight: Any = None,
    pos_label: Any = None,
    labels: Any = None,
    scale_by_half: bool | Literal["auto"] = "auto",
) -> Any:
    r"""Brier score: the mean squared distance between the predicted distribution and the
    one-hot outcome, as :func:`sklearn.metrics.brier_score_loss`.

    .. math::

        B = \frac{1}{\sum_i w_i} \sum_i w_i \sum_c (\mathbb 1[y_i = c] - p_{ic})^2

    in [0, 2]; ``scale_by_half="auto"`` halves it for two classes (then it is the binary
    :math:`\frac1n\sum_i (y_i - p_i)^2` in [0, 1]) and keeps the sum for three or more.

    For ``y_proba`` of shape ``(n,)`` (the probability of ``pos_label``), ``y_true`` must be
    binary and ``pos_label`` defaults to 1 for labels in {0, 1} or {-1, 1}, to the larger label
    for other numbers, and must be given for strings. For ``(n, C)`` the columns follow the
    sorted classes (``labels`` or those of ``y_true``) and ``pos_label`` is not used.

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of the
        labels.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    pos_label : label, optional
        The class a vector ``y_proba`` gives the probability of: 1 for labels in {0, 1} or {-1,
        1}, else the larger label (not used with a matrix).
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).
    scale_by_half : {"auto", True, False}, default "auto"
        Halve the summed score; ``"auto"`` halves it for two classes only (the binary Brier
        score, scikit-learn's).

    Examples
    --------
    >>> from crossentropy.metrics import brier_score_loss
    >>> round(brier_score_loss([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]), 6)
    0.0375
    >>> p = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6]]
    >>> round(brier_score_loss(["eggs", "ham", "spam"], p), 6)
    0.146667
    """
    scale_by_half = check_scale_by_half(scale_by_half)
    shape = _proba_shape(y_proba)
    ndim = len(shape)
    if ndim == 1 or (ndim == 2 and shape[1] == 1):
        prep = prepare_binary(y_true, y_proba, sample_weight, pos_label, true_class=False)
    else:
        prep = prepare(y_true, y_proba, sample_weight, labels, multi_label=True, nonempty=True)
    score = brier_total(prep) / _denominator(prep)
    width = 2 if prep.binary_vector else int(prep.proba.shape[1])
    return finish(prep, score * brier_scale(width, scale_by_half))


def d2_brier_score(
    y_true: Any,
    y_proba: Any,
    *,
    sample_weight: Any = None,
    pos_label: Any = None,
    labels: Any = None,
) -> Any:
    r""":math:`D^2` of the Brier score (the Brier skill score): the share of the Brier score of
    the class-frequency baseline explained, as :func:`sklearn.metrics.d2_brier_score`.

    .. math::

        D^2 = 1 - \frac{\sum_i w_i \sum_c (t_{ic} - p_{ic})^2}
                        {\sum_i w_i \sum_c (t_{ic} - s_c)^2}
            = 1 - \frac{B}{\sum_c s_c (1 - s_c)}

    where :math:`t_{ic}` is the one-hot outcome (or the label indicator's entry) and
    :math:`s_c = \sum_i w_i t_{ic} / \sum_i w_i` the weighted share of class :math:`c` (the
    baseline always predicts the class proportions of ``y_true``). The scale of the Brier score
    cancels. 1 is perfect, 0 the baseline, negative worse. Fewer than two rows give NaN with
    scikit-learn's warning; a ``y_true`` of one class (the baseline's score is 0) gives
    :math:`-\infty` (NaN for a perfect ``y_proba``) with a warning, as scikit-learn's
    :math:`1 - B / 0`; sample weights that sum to zero are a ``ValueError``
    (:class:`ZeroWeightError`). ``y_true``, ``y_proba``, ``pos_label`` and ``labels`` are read
    as by :func:`brier_score_loss`.

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of ``pos_label``, or of each class in the sorted order of the labels.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    pos_label : label, optional
        The class a vector ``y_proba`` gives the probability of (as in
        :func:`brier_score_loss`).
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).

    Examples
    --------
    >>> from crossentropy.metrics import d2_brier_score
    >>> round(d2_brier_score([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]), 6)
    0.85
    """
    shape = _proba_shape(y_proba)
    n = _n_rows(y_proba)
    if n is not None and n < 2:  # checked first, as d2_log_loss_score (the values checked)
        with contextlib.suppress(ClassCountError):
            prepare(y_true, y_proba, sample_weight, labels, multi_label=True)
        return d2_undefined()
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        prep = prepare_binary(y_true, y_proba, sample_weight, pos_label, true_class=False)
    else:
        prep = prepare(y_true, y_proba, sample_weight, labels, multi_label=True, nonempty=True)
    if n is None and prep.n < 2:
        return d2_undefined()
    total, counts, score = to_host_all(
        _denominator(prep), class_totals(prep, None), brier_total(prep)
    )
    d2 = d2_brier(float(np.asarray(score)), np.asarray(counts), float(np.asarray(total)), 3)
    return finish(prep, prep.xp.asarray(d2, dtype=accumulate_dtype(prep.xp, prep.proba)))


def d2_brier(score: float, counts: np.ndarray[Any, Any], total: float, stacklevel: int) -> float:
    """:func:`d2_brier_score` from the weighted sum of the rows' (unscaled) Brier scores, the
    classes' weights and their total: ``1 - score / (total * sum_c s_c (1 - s_c))``; a zero
    baseline (one class) is :math:`-\\infty` (NaN for a zero ``score``) with a warning
    (``stacklevel``: the user's call to the metric)."""
    share = np.asarray(counts, dtype=np.float64) / total
    baseline = float(np.sum(share * (1 - share))) * total
    if baseline == 0:
        warnings.warn(
            "D^2 score is not well-defined when y_true holds one class: the baseline's Brier "
            "score is 0",
            undefined_metric_warning(),
            stacklevel=stacklevel,
        )
        return -math.inf if score > 0 else math.nan
    return 1 - score / baseline


def check_scale_by_half(value: Any) -> bool | Literal["auto"]:
    """``scale_by_half``: ``"auto"`` or a boolean (NumPy's too), else a
    :class:`~crossentropy._lib.checks.ParameterError` (``ValueError``)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str) and value == "auto":
        return "auto"
    raise ParameterError(f"scale_by_half must be True, False or 'auto'; got {value!r}")


def prepare_binary(
    y_true: Any,
    y_proba: Any,
    sample_weight: Any,
    pos_label: Any,
    *,
    true_class: bool = True,
    nonempty: bool = True,
) -> Prepared:
    """scikit-learn's binary rules: a binary ``y_true`` and ``pos_label`` (inferred or given);
    a two-column label indicator ``y_true`` with one 1 per row is read as its column index.
    ``true_class``: as in :func:`~crossentropy.metrics._prepare.prepare`; ``nonempty=False``
    takes a batch of no rows (a stream's, whose ``pos_label`` is given)."""
    pos_label = check_pos_label(pos_label)
    y = host_labels(y_true, "y_true", indicator=True)
    if y.ndim == 2:
        enc, one_each = indicator_rows(y, None)
        if y.shape[1] != 2 or not one_each:
            raise ValueError(
                "y_true is a label indicator matrix; for y_proba of shape (n,) it must have two "
                f"columns and one 1 per row; got shape {shape_str(y.shape)}"
            )
        y = enc.index
    if y.size == 0 and nonempty:
        raise ValueError(NO_ROWS)
    classes = distinct(y)  # (fractions were refused by host_labels)
    if classes.shape[0] > 2:
        raise ValueError(
            f"y_true must be binary for y_proba of shape (n,) (the probability of pos_label); "
            f"its target type is multiclass (classes {classes.tolist()[:10]})"
        )
    if pos_label is None:
        if classes.dtype.kind in "OUS":
            raise ValueError(
                f"y_true takes values in {classes.tolist()} and pos_label is not given: make "
                "y_true take values in {0, 1} or {-1, 1}, or pass pos_label"
            )
        pos_label = 1 if classes.tolist() in POS_LABEL_1 else classes[-1]
    hit = y == pos_label
    return prepare(
        hit.astype(np.int8),
        y_proba,
        sample_weight,
        None,
        classes=np.array([0, 1], np.int8),
        true_class=true_class,
    )


# ---------------------------------------------------------------------------------------------
# Calibration.
# ---------------------------------------------------------------------------------------------


_STRATEGIES = ("uniform", "quantile")
_NORMS = ("l1", "max", "l2")


def confidence_and_outcome(xp: Namespace, prep: Prepared) -> tuple[Array, Array]:
    """The calibration pairs: for two classes the probability of the second class and
    ``y == 1``; for more, the top-label confidence ``max_c p_c`` and ``argmax == y``."""
    p = prep.proba
    if prep.binary_vector:
        return p, prep.index == 1
    if p.shape[1] == 2:
        return p[:, 1], prep.index == 1
    if isinstance(p, np.ndarray):  # the confidence gathered at the argmax: 3x faster than max
        top, conf = top_label(p)
    else:
        top = xp.argmax(p, axis=1)
        conf = xp.max(p, axis=1)
    return conf, xp.astype(top, prep.index.dtype) == prep.index


def bin_totals(
    xp: Namespace, conf: Array, hit: Array, weight: Array | None, edges: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per bin: the total weight, the weighted sum of confidences and of outcomes (host).

    The values are taken to the host (the result is needed there), where ``bincount`` sums
    them: on torch tensors 8x faster than a one-hot product on the tensors' device."""
    n_bins = edges.shape[0] - 1
    if not isinstance(conf, np.ndarray):
        conf, hit = np.asarray(to_host(conf)), np.asarray(to_host(hit))
        weight = None if weight is None else np.asarray(to_host(weight))
    b = bin_index(np, conf, edges)
    h = hit.astype(np.float64)
    c64 = conf.astype(np.float64, copy=False)
    w = None if weight is None else np.asarray(weight, dtype=np.float64)
    if w is not None:
        h, c64 = h * w, c64 * w
    count = np.bincount(b, weights=w, minlength=n_bins).astype(np.float64)
    return (
        count,
        np.bincount(b, weights=c64, minlength=n_bins),
        np.bincount(b, weights=h, minlength=n_bins),
    )


def _cpu_tensor(x: Any) -> bool:
    """A PyTorch tensor on the CPU (not a meta tensor): its values can be read in place."""
    return (
        type(x).__module__.startswith("torch")
        and getattr(x, "device", None) is not None
        and (x.device.type == "cpu")
    )


def calibration_error(
    y_true: Any,
    y_proba: Any,
    *,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    norm: Literal["l1", "max", "l2"] = "l1",
    sample_weight: Any = None,
    labels: Any = None,
) -> Any:
    r"""Calibration error: how far the predicted confidence is from the observed frequency.

    The rows are put in ``n_bins`` bins by confidence :math:`c_i`; bin :math:`b` has weight
    :math:`W_b`, mean confidence :math:`\bar c_b` and observed frequency :math:`\bar o_b`:

    .. math::

        \mathrm{ECE} = \sum_b \frac{W_b}{W} |\bar o_b - \bar c_b|, \quad
        \mathrm{MCE} = \max_{b: W_b > 0} |\bar o_b - \bar c_b|, \quad
        \mathrm{RMSCE} = \Bigl(\sum_b \frac{W_b}{W} (\bar o_b - \bar c_b)^2\Bigr)^{1/2}

    (``norm="l1"``, ``"max"``, ``"l2"``, as torchmetrics' ``CalibrationError``; its bins put
    a confidence on an inner edge in the upper bin and 1.0 in a bin of its own, and it
    computes in float32, so confidences on the edges, 1.0 among them, give other numbers
    there: 0.25 against 0.35 here for ``y = [1, 0, 0, 1, 0]``,
    ``p = [0.2, 0.2, 0.25, 1.0, 0.9]`` and five bins).

    - Two classes (``y_proba`` of shape ``(n,)`` or ``(n, 2)``): :math:`c_i` is the probability
      of the positive (larger) class and :math:`o_i = [y_i \text{ positive}]`, the pairs of
      :func:`sklearn.calibration.calibration_curve`. As there, a ``y_true`` of one label 0, 1
      or -1 with ``y_proba`` of shape ``(n,)`` has the classes [0, 1] or [-1, 1] (positive 1).
    - Three classes or more: the top label, :math:`c_i = \max_c p_{ic}` and
      :math:`o_i = [\mathrm{arg\,max}_c\, p_{ic} = y_i]` (first maximum).

    Bins: ``"uniform"`` splits [0, 1] into equal widths, ``"quantile"`` puts the edges at the
    percentiles of the (unweighted) confidences; a confidence on an inner edge goes to the
    lower bin. Both are :func:`~sklearn.calibration.calibration_curve`'s edges.
    The values are needed on the host: arrays of other libraries are synchronised (Dask
    computes); the answer is a 0-D array of the input's library.

    Parameters
    ----------
    y_true : array_like of shape (n,) or (n, C)
        True labels, any type (integers, strings, booleans), or a label indicator matrix.
    y_proba : array_like of shape (n,) or (n, C)
        Probability of the positive (larger) class, or of each class in the sorted order of the
        labels.
    n_bins : int, default 15
        Number of bins, 1 to 1,048,576.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins, or equal-mass bins at the confidences' quantiles (scikit-learn's
        ``calibration_curve``).
    norm : {"l1", "max", "l2"}, default "l1"
        ECE (the weighted mean gap), MCE (the largest gap) or the RMS calibration error.
    sample_weight : array_like of shape (n,), optional
        Row weights.
    labels : array_like, optional
        All class labels, when ``y_true`` may miss some (sorted; a warning if not given sorted).

    Examples
    --------
    >>> from crossentropy.metrics import calibration_error
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1.0]
    >>> round(calibration_error(y, p, n_bins=3), 6)
    0.138889
    """
    from crossentropy.metrics._calibration import check_bins

    bins = check_bins(n_bins)
    check_choice(strategy, "strategy", _STRATEGIES)
    check_choice(norm, "norm", _NORMS)
    if _cpu_tensor(y_proba) and str(y_proba.dtype) in ("torch.float32", "torch.float64"):
        # read on the host anyway: the NumPy path on a zero-copy view (5x faster)
        import torch

        value = calibration_error(
            *(to_host(a) if _cpu_tensor(a) else a for a in (y_true, y_proba)),
            n_bins=bins,
            strategy=strategy,
            norm=norm,
            sample_weight=to_host(sample_weight) if _cpu_tensor(sample_weight) else sample_weight,
            labels=labels,
        )
        dtype = y_proba.dtype if y_proba.is_floating_point() else torch.get_default_dtype()
        return torch.tensor(float(value), dtype=dtype)
    prep = prepare(
        y_true,
        y_proba,
        sample_weight,
        labels,
        true_class=False,
        nonempty=True,
        one_binary_label=True,
    )
    xp = prep.xp
    conf, hit = confidence_and_outcome(xp, prep)
    weight = prep.weight
    if is_dask(conf):  # needed on the host: read in one computation, with whether the
        # probabilities held a bad value (made NaN while unread), which is then named
        checked = get_validation() is not False
        bad = xp.any(xp.isnan(prep.proba)) if checked else None
        conf, hit, weight, bad = to_host_all(conf, hit, weight, bad)
        if bad is not None and bool(bad):  # named as on NumPy (read again: an error's cost)
            host_y, host_p = to_host_all(y_true, y_proba)
            prepare(host_y, host_p, None, labels, one_binary_label=True)
            raise ValueError("y_proba must hold probabilities in [0, 1], finite")
    # as the other calibration functions refuse them; a Dask array's values are computed
    # here anyway (the bins' totals), so its weights are checked too
    lazy = weight is not None and is_dask(prep.weight) and get_validation() is not False
    if weight is not None and (lazy or reads(None, weight)):
        from crossentropy.metrics._calibration import checked_weights

        check_weight_total(checked_weights(to_host(weight), prep.n))  # ZeroWeightError too
    if strategy == "quantile":
        edges = quantile_edges(np.asarray(to_host(conf), dtype=np.float64), bins)
    else:
        edges = uniform_edges(bins)
    count, conf_sum, hit_sum = bin_totals(xp, conf, hit, weight, edges)
    value = calibration_norm(count, conf_sum, hit_sum, str(norm))
    if prep.numpy:
        return value
    return xp.asarray(value, dtype=prep.out_dtype, device=device_of(prep.proba))
