"""Class labels of any type (integers, strings, booleans) to column indices, on the host.

scikit-learn's rules: without ``labels`` the classes are the sorted distinct values of
``y_true``; with ``labels`` they are the sorted distinct values of ``labels`` (a warning when
``labels`` was not sorted), and every value of ``y_true`` must be one of them. Integer labels
take a linear-time path (a bounds check and a ``bincount``) instead of a sort.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from typing import Any

import numpy as np

from crossentropy._lib.checks import ParameterError, plain, shape_str
from crossentropy._lib.host import to_host
from crossentropy._lib.namespace import is_array, plain_values

__all__ = [
    "INTEGRAL_NAME",
    "INT_NAME",
    "POS_LABEL_1",
    "ClassCountError",
    "Encoded",
    "check_pos_label",
    "distinct",
    "encode",
    "host_labels",
    "indicator_rows",
    "one_hot_rows",
    "sort_key",
]

#: A class name that writes an integer (matched against integer labels by value).
INT_NAME = re.compile(r"[+-]?[0-9]+")

#: A class name that writes an integer, with or without a fraction of zeros (``2``, ``2.0``:
#: a float class, as ``str`` writes scikit-learn's ``classes_`` after fitting float labels):
#: the names the scoring readers match numeric labels to by value.
INTEGRAL_NAME = re.compile(INT_NAME.pattern + r"(?:\.0*)?")


def sort_key(label: Any) -> tuple[int, Any, str, str]:
    """Where a class sorts among classes of mixed kinds (the order ties of the top probability
    go in), a total order: real numbers (and text that writes an integer, :data:`INT_NAME`)
    by value, then NaN, then the rest as text; labels equal on that apart by their type's
    name, then their text (``7``, then ``"007"``, then ``"7"``)."""
    kind, text = type(label).__name__, str(label)
    if isinstance(label, str) and INT_NAME.fullmatch(label.strip()):
        return (0, int(label), kind, text)
    if isinstance(label, numbers.Real | np.bool_):
        integral = isinstance(label, numbers.Integral | np.bool_)
        value = int(label) if integral else float(label)  # type: ignore[arg-type]
        return (1, 0, kind, text) if value != value else (0, value, kind, text)
    return (2, text, kind, text)


#: scikit-learn's binary labels whose positive class is 1 when ``pos_label`` is not given
#: (``_check_pos_label_consistency``): {0, 1}, {-1, 1} and each of them alone.
POS_LABEL_1 = ([0, 1], [-1, 1], [0], [-1], [1])


class ClassCountError(ValueError):
    """Too few classes: ``y_true`` holds one label (without ``labels``), or its classes (or
    ``labels``) are not as many as the columns of ``y_proba``."""


def check_pos_label(value: Any) -> Any:
    """``pos_label``: None, or one label (a number, text or a boolean; a 0-d array is its
    value), as scikit-learn takes it; a :class:`ParameterError` (``TypeError``) otherwise (an
    array or a set would be compared row by row)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if value is None or isinstance(value, str | bytes | numbers.Number | np.generic):
        return value
    raise ParameterError(
        f"pos_label must be one label (a number, text or a boolean); got {type(value).__name__}"
    )


#: Integer labels spanning at most this many values are counted with ``bincount``.
_DENSE_SPAN = 1 << 22

Host = np.ndarray[Any, Any]


def _refuse_mixed(given: Any, a: Host, name: str) -> None:
    """A ``ValueError`` for a list of text and numbers (``a``, NumPy's array of it, made text
    of the numbers), as scikit-learn refuses one."""
    listed = a.dtype.kind == "U" and isinstance(given, list | tuple) and a.ndim == 1
    if listed and len({isinstance(v, str) for v in given}) > 1:
        raise ValueError(
            f"{name} mixes text and numeric labels (as scikit-learn, they are not compared); "
            "give labels of one kind"
        )


def host_labels(y: Any, name: str, *, indicator: bool = False) -> Host:
    """Labels as a 1-D NumPy array (a host copy for other libraries; Dask computes); with
    ``indicator``, a label indicator matrix ``(n, C)`` of 0s and 1s is returned as it is
    (:func:`indicator_rows`). A NumPy masked array or SciPy sparse matrix is
    :func:`~crossentropy._lib.namespace.plain_values`'s."""
    y = plain_values(y, name)
    if is_array(y):
        a = to_host(y, name)
    else:
        try:
            a = np.asarray(y)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be an array or a sequence of labels; got {y!r}") from exc
        _refuse_mixed(y, a, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2 and indicator:
        return _indicator(a, name)
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of class labels"
            + (" or a label indicator matrix of shape (n, C)" if indicator else "")
            + f"; got shape {shape_str(a.shape)}"
        )
    if a.dtype.kind == "f" and a.size and not np.all(np.isfinite(a)):
        row = int(np.argmax(~np.isfinite(a)))
        raise ValueError(f"{name} must hold finite labels; got {a[row]} at row {row}")
    frac = _first_fraction(a) if a.size and a.dtype.kind == "f" else None
    if frac is not None:  # (of objects: among the distinct labels, by encode)
        raise ValueError(  # scikit-learn's "Unknown label type: continuous"
            f"{name} must hold class labels; got {a[frac]} at row {frac}, a fraction "
            "(scikit-learn's target type 'continuous'): float labels are whole numbers, and "
            "probabilities of the classes are not labels"
        )
    if a.dtype.kind in "Mm":  # NaT: a missing date or duration
        missing = _missing_label(a)
        if missing is not None:
            raise ValueError(f"{name} must not hold a missing label; got NaT at row {missing[0]}")
    if a.dtype.kind not in "biufUSOMm":  # (dates and durations are labels too, as for NumPy)
        raise TypeError(f"{name} must hold class labels; got an array of dtype {a.dtype}")
    return a


def _first_fraction(a: Host) -> int | None:
    """The row of the first label that is a number with a fraction (0.2: scikit-learn's
    continuous target), floats or objects (pandas' object columns), else None."""
    if a.dtype.kind == "f":
        frac = a != np.round(a)
        return int(np.argmax(frac)) if frac.any() else None
    if a.dtype.kind == "O":
        for i, v in enumerate(a.tolist()):
            if isinstance(v, float) and math.isfinite(v) and not v.is_integer():
                return i
    return None


def _indicator(a: Host, name: str) -> Host:
    """A label indicator matrix ``(n, C)``: every entry 0 or 1 (``ValueError`` naming the first
    other one)."""
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} as a label indicator matrix must hold 0s and 1s; got dtype {a.dtype}"
        )
    at = _not_binary(a)
    if at is not None:
        row, col = at
        raise ValueError(
            f"{name} is a label indicator matrix of shape {shape_str(a.shape)} and must hold 0s "
            f"and 1s; got {plain(a[row, col])!r} at row {row}, column {col}"
        )
    return a


def _not_binary(t: Host) -> tuple[int, int] | None:
    """``(row, column)`` of the first entry of a matrix other than 0 and 1, else None."""
    bad = (t != 0) & (t != 1)
    if not bad.any():
        return None
    row, col = divmod(int(np.argmax(bad)), t.shape[1])
    return row, col


def indicator_rows(t: Host, labels: Any) -> tuple[Encoded, bool]:
    """The classes and rows of a label indicator matrix, as scikit-learn reads one: its columns
    are the classes (``labels``, sorted, when given; else ``0 .. C-1``); each row's index is its
    first 1. The flag says whether every row holds exactly one 1 (else the rows are multi-label
    or empty, and only the metrics that sum over the columns accept them)."""
    width = t.shape[1]
    if labels is None:
        classes = np.arange(width)
    else:
        classes = checked_labels(labels, stacklevel=5)
        if classes.shape[0] != width:
            raise ValueError(
                f"y_true is a label indicator matrix of {width} columns, but labels holds "
                f"{classes.shape[0]} classes: {classes.tolist()}"
            )
    one_each = bool(np.all(np.count_nonzero(t, axis=1) == 1))
    return Encoded(classes, np.argmax(t, axis=1).astype(np.intp)), one_each


def one_hot_rows(t: Host) -> tuple[Host, tuple[int, int | None] | None]:
    """Each row's class index of a one-hot matrix ``(n, C)`` (every entry 0 or 1, one 1 a row),
    and the first row that is not one-hot: ``(row, column)`` of an entry other than 0 and 1,
    ``(row, None)`` of a row without exactly one 1; ``None`` when every row is one-hot."""
    wrong = np.count_nonzero(t, axis=1) != 1
    at = _not_binary(t)
    if at is not None:  # a row holding another value, unless a row before it has no single 1
        wrong[at[0]] = True
    if wrong.any():
        row = int(np.argmax(wrong))
        return np.empty(0, np.intp), (row, at[1] if at is not None and at[0] == row else None)
    return np.argmax(t, axis=1).astype(np.intp), None


def _hashed(y: Host) -> tuple[Host, Host] | None:
    """(classes, index) of Python-object labels (strings as pandas gives them) through a hash
    table, linear time where sorting the objects is not; None for unhashable labels."""
    first: dict[Any, int] = {}
    try:
        seen = np.fromiter((first.setdefault(v, len(first)) for v in y), np.intp, y.shape[0])
    except TypeError:  # unhashable labels: the sorting path says what is wrong
        return None
    keys = np.empty(len(first), dtype=object)
    keys[:] = list(first)
    try:
        order = np.argsort(keys, kind="stable")
    except TypeError as exc:
        raise _incomparable(y, exc) from None
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order), dtype=np.intp)
    return keys[order], rank[seen]


class Encoded:
    """Sorted ``classes`` and, per row, the index of its class (``intp``)."""

    __slots__ = ("classes", "index")

    def __init__(self, classes: Host, index: Host) -> None:
        self.classes = classes
        self.index = index


def _unique(a: Host) -> Host:
    try:
        return np.unique(a)
    except TypeError as exc:
        raise _incomparable(a, exc) from None


def _incomparable(a: Host, exc: TypeError) -> ValueError | TypeError:
    """Labels that do not sort: a missing label (None, NaN or pandas' ``NA``) among them is a
    ``ValueError`` naming its row (scikit-learn's "Unknown label type" for ``[0, None, 2]``),
    else labels of types that do not compare are a ``TypeError`` (as scikit-learn's sorting
    raises one)."""
    missing = _missing_label(a)
    if missing is not None:
        return ValueError(f"class labels must not be missing; got {missing[1]} at row {missing[0]}")
    return TypeError(f"class labels must be of one comparable type; got {exc}")


def _missing_label(a: Host) -> tuple[int, Any] | None:
    """The position and value of the first missing label of ``a`` (None, NaN, pandas' ``NA``,
    NaT), else None."""
    if a.dtype.kind in "fcMm":
        bad = np.isnan(a)
        return (int(np.argmax(bad)), a[np.argmax(bad)]) if bad.any() else None
    if a.dtype.kind != "O":
        return None
    for i, v in enumerate(a.tolist()):
        if v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType":
            return i, v
    return None


def distinct(y: Host) -> Host:
    """The sorted distinct labels of ``y``: by counting for integer and boolean labels of a
    small span (linear time), else by sorting."""
    if y.dtype.kind in "iub" and y.size:
        v = y.view(np.uint8) if y.dtype.kind == "b" else y
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < 2:  # the smallest and the largest are all there is (binary labels)
            return np.array(sorted({lo, hi})).astype(y.dtype)
        if hi - lo < _DENSE_SPAN:
            shifted = v if lo == 0 else v.astype(np.int64) - lo  # no overflow in v's dtype
            present = np.bincount(shifted, minlength=hi - lo + 1) > 0
            return (np.flatnonzero(present) + lo).astype(y.dtype)
    return _unique(y)


def _dense_int(y: Host) -> tuple[Host, Host] | None:
    """(classes, index) of integer labels by counting, or None when they span too much.

    When a strided sample of ``y`` already holds every value between the smallest and the
    largest label, they are all classes (no full count needed).
    """
    if y.dtype.kind == "b":
        y = y.view(np.uint8)
    if y.size == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    span = hi - lo + 1
    if span > _DENSE_SPAN:
        return None
    shifted = y if lo == 0 else y.astype(np.int64) - lo  # no overflow in y's dtype
    stride = max(1, y.size // (64 * span))
    present = np.bincount(shifted[::stride], minlength=span) > 0
    if stride > 1 and not present.all():
        present = np.bincount(shifted, minlength=span) > 0
    classes = np.flatnonzero(present) + lo
    if classes.shape[0] == span:  # every value in [lo, hi] occurs: index = y - lo
        index = shifted.astype(np.intp, copy=False)
    else:
        lut = np.cumsum(present, dtype=np.intp) - 1
        index = lut[shifted]
    return classes, index


def encode(y: Host, labels: Any, name_y: str = "y_true") -> Encoded:
    """Classes and per-row indices of ``y`` (scikit-learn's ``LabelBinarizer`` order)."""
    if labels is None:
        dense = _dense_int(y) if y.dtype.kind in "iub" else None
        hashed = _hashed(y) if dense is None and y.dtype.kind == "O" else None
        if dense is not None:
            classes, index = dense
            classes = classes.astype(bool if y.dtype.kind == "b" else y.dtype)
        elif hashed is not None:
            classes, index = hashed
        else:
            classes, index = np.unique(y, return_inverse=True) if y.size else (y[:0], y[:0])
            index = np.asarray(index, dtype=np.intp).reshape(-1)
        frac = _first_fraction(classes) if classes.dtype.kind == "O" else None
        if frac is not None:  # (floats held as objects; float arrays: host_labels)
            row = int(np.argmax(index == frac))
            raise ValueError(
                f"{name_y} must hold class labels; got {classes[frac]} at row {row}, a fraction "
                "(scikit-learn's target type 'continuous')"
            )
        if classes.shape[0] == 1:
            raise ClassCountError(
                f"{name_y} contains only one label ({plain(classes[0])!r}); pass the list of all "
                "expected class labels through labels="
            )
        return Encoded(classes, index)
    classes = checked_labels(labels, stacklevel=5)
    return Encoded(classes, index_of(y, classes, name_y))


def checked_labels(labels: Any, stacklevel: int = 4) -> Host:
    """The sorted classes of a ``labels=`` argument: 1-D, at least two distinct labels; a
    ``UserWarning`` when they were not given sorted (the columns follow the sorted order)."""
    if isinstance(labels, str | bytes):
        raise TypeError(
            f"labels must be a 1-D sequence of labels; got the {type(labels).__name__} "
            f"{labels!r} (text is one label, not a sequence of them)"
        )
    given = np.asarray(plain_values(labels, "labels"))
    _refuse_mixed(labels, given, "labels")
    if given.ndim != 1:
        raise ValueError(f"labels must be a 1-D sequence of labels; got {shape_str(given.shape)}")
    missing = _missing_label(given)
    if missing is not None:
        raise ValueError(
            f"labels must not hold a missing label; got {missing[1]} at position {missing[0]}"
        )
    frac = _first_fraction(given) if given.size else None
    if frac is not None:
        raise ValueError(
            f"labels must hold class labels; got {given[frac]} at position {frac}, a fraction "
            "(scikit-learn's target type 'continuous')"
        )
    classes = _unique(given)
    if classes.shape != given.shape or not np.all(classes == given):
        warnings.warn(
            f"labels passed were {given.tolist()}, but the columns of y_proba are taken in "
            f"sorted order: pass labels={classes.tolist()} and make sure the columns of "
            "y_proba follow it",
            UserWarning,
            stacklevel=stacklevel,
        )
    if classes.shape[0] < 2:
        raise ValueError(f"labels must hold at least two distinct labels; got {classes.tolist()}")
    return classes


def index_of(y: Host, classes: Host, name_y: str = "y_true") -> Host:
    """The index of each label of ``y`` in the sorted ``classes``; ``ValueError`` naming the
    first row whose label is not a class."""
    n_classes = classes.shape[0]
    if (
        y.dtype.kind in "iu"
        and classes.dtype.kind in "iu"
        and int(classes[0]) == 0
        and int(classes[-1]) == n_classes - 1
    ):  # classes 0..C-1: the labels are their own indices
        if y.size:
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= n_classes:
                _missing(y, (y < 0) | (y >= n_classes), classes, name_y)
        return y.astype(np.intp, copy=False)
    if y.dtype.kind == "O":  # Python objects: a hash table, not comparisons
        table = {c: i for i, c in enumerate(classes.tolist())}
        try:
            index = np.fromiter((table.get(v, -1) for v in y), np.intp, y.shape[0])
        except TypeError:
            index = None
        if index is not None:
            if (index < 0).any():
                _missing(y, index < 0, classes, name_y)
            return index
    try:
        index = np.searchsorted(classes, y)
        found = classes[np.minimum(index, n_classes - 1)] == y
    except (TypeError, np.exceptions.DTypePromotionError):
        raise ValueError(
            f"{name_y} holds labels of another type than the classes {classes.tolist()}"
        ) from None
    found = np.asarray(found, dtype=bool)
    if not np.all(found):
        _missing(y, ~found, classes, name_y)
    return np.asarray(index, dtype=np.intp)


def _missing(y: Host, bad: Host, classes: Host, name_y: str) -> None:
    row = int(np.argmax(bad))
    values = sorted({plain(v) for v in y[bad][:20]}, key=str)
    raise ValueError(
        f"{name_y} holds label {plain(y[row])!r} at row {row}, which is not one of the classes "
        f"{classes.tolist()} (labels not among them: {values})"
    )
