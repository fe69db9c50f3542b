"""Shared preparation of ``(y_true, y_proba, sample_weight, labels)`` for every metric.

The labels are encoded on the host (they may be strings); the probabilities stay in their array
library and on their device. NumPy matrices take a fast path (:mod:`._fast`): one blocked
pass checks that every entry lies in [0, 1], finds the range of the row sums and gathers the
true-class probabilities; nothing of size ``(n, C)`` is allocated.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import array_api_compat as compat
import numpy as np

from crossentropy._lib.checks import (
    first_index,
    off_sum,
    reads_as_float,
    row_sum_tolerance,
    shape_str,
)
from crossentropy._lib.host import to_host
from crossentropy._lib.namespace import (
    Array,
    Namespace,
    as_float,
    check_known_shape,
    device_of,
    epsilon,
    is_torch,
    namespace,
    plain_values,
)
from crossentropy._lib.policy import reads
from crossentropy.metrics._checks import check_probabilities
from crossentropy.metrics._fast import BITS_OF_ONE, rows_pass
from crossentropy.metrics._formulas import gather, log_loss_sum, row_log_loss
from crossentropy.metrics._labels import (
    POS_LABEL_1,
    ClassCountError,
    Encoded,
    encode,
    host_labels,
    index_of,
    indicator_rows,
)

__all__ = [
    "NO_ROWS",
    "Prepared",
    "accumulate_dtype",
    "finish",
    "independent_copy",
    "prepare",
    "weighted_sum",
]

ROW_SUM_WARNING = (
    "The y_proba values do not sum to one (first off at row {row}: {value!r}); they are used as "
    "given, not renormalised. Make sure to pass probabilities."
)


@dataclass(slots=True)
class Prepared:
    """Validated inputs of one metric call.

    ``proba`` is the floating probabilities, ``(n, C)`` or a binary vector ``(n,)`` (see
    :meth:`matrix`), ``p_true`` the probability of each row's class (None when the fast path
    gave ``loss_total``, the weighted sum of the per-row log losses, instead: a float, or a
    0-D Dask array summed chunk by chunk), ``index`` the class indices (the probabilities'
    library), ``classes`` the sorted class labels, ``weight`` the sample weights (float64
    where the library has it) or None, ``out_dtype`` the dtype results are returned in.
    ``indicator`` is ``y_true`` as a float ``(n, C)`` matrix when it was a label indicator
    matrix whose rows do not each hold exactly one 1 (multi-label or empty rows; ``index`` is
    then each row's first 1), else None.
    """

    xp: Namespace
    proba: Array
    p_true: Array
    index: Array
    classes: np.ndarray[Any, Any]
    weight: Array | None
    out_dtype: Any
    numpy: bool
    n: int
    binary_vector: bool
    loss_total: Any
    indicator: Array | None = None

    def matrix(self) -> Array:
        """The probabilities as an ``(n, C)`` matrix (``[1 - p, p]`` for a binary vector)."""
        if not self.binary_vector:
            return self.proba
        return self.xp.stack([1 - self.proba, self.proba], axis=1)


def accumulate_dtype(xp: Namespace, x: Array) -> Any:
    """float64 where the library (and device) has it, else ``x``'s dtype."""
    try:
        kinds = xp.__array_namespace_info__().dtypes(device=device_of(x), kind="real floating")
    except (AttributeError, TypeError):
        return x.dtype
    return xp.float64 if "float64" in kinds else x.dtype


def weighted_sum(xp: Namespace, values: Array, weight: Array | None) -> Array:
    """``sum(w * v)`` (or ``sum(v)``), accumulated in float64 where available."""
    acc = accumulate_dtype(xp, values)
    v = values if values.dtype == acc else xp.astype(values, acc)
    if isinstance(v, np.ndarray):
        return np.sum(v) if weight is None else np.dot(v, weight.astype(acc, copy=False))
    if weight is None:
        return xp.sum(v)
    w = weight if weight.dtype == acc else xp.astype(weight, acc)
    return xp.sum(v * w)


def finish(prep: Prepared, value: Array) -> Any:
    """A Python float for NumPy input; otherwise a 0-D array of the input's library, device
    and floating dtype."""
    if prep.numpy:
        return float(value)
    return value if value.dtype == prep.out_dtype else prep.xp.astype(value, prep.out_dtype)


def _to_backend(xp: Namespace, host: np.ndarray[Any, Any], like: Array) -> Array:
    """A host array moved to ``like``'s library and device (Dask: chunked like its rows)."""
    if isinstance(like, np.ndarray):
        return host
    if compat.is_dask_array(like):
        return xp.asarray(host).rechunk((like.chunks[0],) + (-1,) * (host.ndim - 1))
    return xp.asarray(host, device=device_of(like))


def _values(x: Array, name: str) -> Array:
    """A metric reads values and is not differentiable: tensors are detached, and a ``meta``
    tensor (no values) is refused."""
    if is_torch(x):
        if x.device.type == "meta":
            raise ValueError(f"{name} is a meta tensor: it has a shape but no values to score")
        return x.detach()
    return x


def _sequence(x: Any, name: str) -> np.ndarray[Any, Any]:
    """``np.asarray(x)``; a ragged sequence is a ``ValueError`` naming ``name``."""
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(f"{name} must be a 1-D array of numbers; got a ragged sequence") from None


def _objects_as_numbers(x: Any, name: str) -> Any:
    """``x`` as given, or, for a NumPy array or pandas data of objects (a column of numbers
    held as objects), their float64 values, as scikit-learn's ``check_array`` reads them; a
    ``TypeError`` naming ``name`` where an object is not a number (text included: it is not
    read as numbers). A NumPy masked array is its values where none is masked
    (:func:`~crossentropy._lib.namespace.plain_values`)."""
    x = plain_values(x, name)
    if isinstance(x, np.ndarray):
        arr = x
    elif _object_columns(x):
        arr = np.asarray(x)
    else:
        return x
    if arr.dtype != object:
        return x
    flat = arr.reshape(-1).tolist()
    kinds = set(map(type, flat))
    if not any(issubclass(k, str | bytes) for k in kinds):
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    for i, v in enumerate(flat):  # the first object that is not a number, named
        if isinstance(v, str | bytes) or not reads_as_float(v):
            raise TypeError(
                f"{name} must hold numbers; got an array of objects holding {v!r} at flat index {i}"
            )
    return arr.astype(np.float64)  # (not reached: a number that float reads converts)


def _object_columns(x: Any) -> bool:
    """Whether ``x`` is pandas or polars data with a column of objects."""
    dtypes = getattr(x, "dtypes", None)
    if dtypes is None or not hasattr(x, "to_numpy"):
        return False
    listed = [dtypes] if hasattr(dtypes, "kind") else list(dtypes)
    return any(getattr(d, "kind", "") == "O" or str(d) == "Object" for d in listed)


#: The largest total of sample weights: float64's largest over 2**32, so that no weighted sum
#: of per-row values (log losses, Brier scores, entropies) and none of the smooth ECE's kernel
#: sums (the weights times kernel values and grid factors) can overflow.
MAX_WEIGHT_TOTAL = float(np.finfo(np.float64).max) / 2.0**32


def weight_total(weights: Any) -> float:
    """The total of sample weights (a NumPy array, or a total already summed) as a float; a
    total that overflows is inf, without numpy's warning (:func:`check_weight_magnitude`
    refuses it)."""
    with np.errstate(over="ignore"):
        return float(np.sum(weights)) if isinstance(weights, np.ndarray) else float(weights)


def check_weight_magnitude(weights: Any) -> None:
    """Refuse sample weights (a NumPy array, or their total) whose total, or any weighted sum,
    would overflow float64: every weighted mean would come out 0, NaN or inf. A
    ``ValueError``."""
    total = weight_total(weights)
    if not total <= MAX_WEIGHT_TOTAL:
        raise ValueError(
            f"sample_weight sums to {total:.4g}, more than {MAX_WEIGHT_TOTAL:.4g} (float64's "
            "largest over 2**32): the weighted sums would overflow; scale the weights down"
        )


def _check_weight_shape(w: Any, n: int) -> None:
    """One weight per row, or a ``ValueError`` naming ``sample_weight``."""
    check_known_shape(w, "sample_weight")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(
            f"sample_weight must be a 1-D array of one weight per row ({n},); got "
            f"{shape_str(w.shape)}"
        )


def _check_weight(xp: Namespace, w: Array, n: int, like: Array) -> Array:
    _check_weight_shape(w, n)
    wf, _ = as_float(xp, w, "sample_weight")
    acc = accumulate_dtype(xp, like)
    wf = wf if wf.dtype == acc else xp.astype(wf, acc)
    if reads(None, wf):
        idx = first_index(xp, ~xp.isfinite(wf))
        if idx is not None:
            raise ValueError(
                f"sample_weight must be finite; got {float(wf[idx[0]])} at row {idx[0]}"
            )
        check_weight_magnitude(to_host(xp.abs(wf)))
    return wf


def _warn_row_sums(
    xp: Namespace, p: Array, dtype: Any, sum_range: tuple[float, float] | None = None
) -> None:
    """scikit-learn's check: warn when a row sum is not within ``1e-8 + sqrt(eps)`` of 1,
    ``eps`` that of the input's ``dtype`` (bfloat16 rows are summed in float32 but rounded as
    bfloat16).

    ``sum_range`` (the smallest and largest row sums, from the fast path) spares the row sums
    when every row is fine.
    """
    if not reads(None, p) or p.shape[0] == 0:
        return
    eps = epsilon(xp, dtype)
    tol = row_sum_tolerance(eps)
    if sum_range is not None and sum_range[1] - 1 <= tol and 1 - sum_range[0] <= tol:
        return
    found = off_sum(xp, p, 1, eps)
    if found is not None:
        (row,), value = found
        warnings.warn(ROW_SUM_WARNING.format(row=row, value=value), UserWarning, stacklevel=4)


def _loss_reducer(weight: np.ndarray[Any, Any] | None) -> Any:
    """Per block of true-class probabilities: the (weighted) sum of their log losses."""

    def reduce(lo: int, hi: int, p_true: np.ndarray[Any, Any]) -> float:
        w = None if weight is None else weight[lo:hi]
        if p_true.dtype == np.float64:
            return float(log_loss_sum(np, p_true, np.float64, w))
        # float32 log losses (as scikit-learn), summed in float64
        loss = row_log_loss(np, p_true, p_true.dtype).astype(np.float64)
        return float(np.sum(loss) if w is None else np.dot(loss, w))

    return reduce


def _dask_encoded(y_true: Any, p: Array, labels: Any) -> tuple[Encoded, Array] | None:
    """Integer (or boolean) labels of a Dask array encoded on the cluster, for Dask
    probabilities: only the distinct labels come to the host (one small reduction), and each
    row's class index is computed where its chunk lives (no copy of the labels in the graph).

    Returns the classes (with the distinct labels' indices, for the checks) and the lazy row
    indices; None where the host path is needed: other labels, or a label that is not a
    class, whose row the host path names.
    """
    if not (_numpy_chunks(y_true) and _numpy_chunks(p)):
        return None
    y: Any = y_true[:, 0] if y_true.ndim == 2 and y_true.shape[1] == 1 else y_true
    if y.ndim != 1 or y.dtype.kind not in "iub" or y.shape[0] != p.shape[0]:
        return None
    import dask.array as da

    values = np.asarray(to_host(da.unique(y), "y_true"))
    with warnings.catch_warnings(record=True) as caught:  # issued once, below or by the host
        warnings.simplefilter("always")
        try:
            enc = encode(values, labels)
        except ValueError:
            return None
    for w in caught:  # to the metric's caller: here < prepare < the metric < the caller
        warnings.warn(w.message, w.category, stacklevel=4)
    rows = y.map_blocks(_class_index, enc.classes, dtype=np.intp)
    return enc, rows.rechunk((p.chunks[0],))


def _numpy_chunks(x: Any) -> bool:
    """A Dask array whose chunks are NumPy arrays (the chunk functions here call NumPy)."""
    return bool(compat.is_dask_array(x)) and isinstance(getattr(x, "_meta", None), np.ndarray)


def _class_index(block: np.ndarray[Any, Any], classes: np.ndarray[Any, Any]) -> Any:
    """The index of each label of ``block`` among the sorted ``classes`` (all of them there)."""
    return np.searchsorted(classes, block).astype(np.intp, copy=False)


def _chunk_loss(p: np.ndarray[Any, Any], index: np.ndarray[Any, Any], *weight: Any) -> Any:
    """One chunk's weighted sum of log losses by the NumPy fast path, as a ``(1, 1)`` block;
    NaN when an entry is outside [0, 1] (a lazy input is not inspected before it is computed:
    a bad value gives a NaN metric, never a silently wrong number)."""
    w = weight[0][:, 0] if weight else None
    p = np.ascontiguousarray(p)
    found = rows_pass(p, index[:, 0], sums=False, reduce=_loss_reducer(w), keep=False)
    bad = not found.in_unit_interval and not bool(np.all((p >= 0) & (p <= 1)))
    return np.full((1, 1), np.nan if bad else found.total)


def _chunked_loss_total(p: Array, index: Array, weight: Array | None) -> Array:
    """The weighted sum of the log losses of Dask probabilities: :func:`_chunk_loss` on each
    chunk of rows (all columns), then the sum of the chunks' totals (one pass over ``p``)."""
    p = p.rechunk({1: -1})
    rows = (p.chunks[0],)
    args = [p, index.rechunk(rows)[:, None]]
    if weight is not None:
        args.append(weight.rechunk(rows)[:, None])
    blocks = (tuple(1 for _ in p.chunks[0]), (1,))
    totals = p.map_blocks(_chunk_loss, *args[1:], chunks=blocks, dtype=np.float64)
    return totals.sum()


#: The message of a metric given no rows.
NO_ROWS = "y_true and y_proba must have at least one row; got none"


def _one_binary_label(y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    """The classes [0, 1] ([-1, 1]; [False, True]) of a ``y_true`` that holds one label whose
    positive class is 1 (:data:`~crossentropy.metrics._labels.POS_LABEL_1`), else None (the
    classes are inferred as usual)."""
    if y.dtype.kind not in "biuf" or not y.size or not bool(np.all(y == y[0])):
        return None
    first = y[0].item()
    if [first] not in POS_LABEL_1:
        return None
    if y.dtype.kind == "b":
        return np.array([False, True])
    return np.array([-1 if first == -1 else 0, 1], dtype=y.dtype)


def prepare(
    y_true: Any,
    y_proba: Any,
    sample_weight: Any,
    labels: Any,
    *,
    classes: np.ndarray[Any, Any] | None = None,
    check_sums: bool = True,
    loss_sum: bool = False,
    multi_label: bool = False,
    true_class: bool = True,
    nonempty: bool = False,
    one_binary_label: bool = False,
) -> Prepared:
    """Validate and encode the inputs of a multi-class metric (scikit-learn's rules).

    ``classes`` (sorted) skips the inference: the streaming accumulators pass the classes they
    fixed up front. ``loss_sum`` asks the NumPy fast path for the weighted sum of the per-row
    log losses (``Prepared.loss_total``), computed block by block during the pass.

    ``true_class=False`` leaves ``Prepared.p_true`` None where it would cost a pass of its
    own: for a binary vector ``y_proba``, and for a matrix on the NumPy fast path (a metric
    that reads ``proba`` and ``index`` only, such as the Brier score or the calibration
    error, spares the gather).

    ``nonempty`` refuses an input of no rows (:data:`NO_ROWS`), as scikit-learn's metrics do,
    before anything is inferred from the labels.

    ``one_binary_label``: for a binary vector ``y_proba`` and no ``labels``, a ``y_true`` that
    holds a single label 0 or 1 (or -1, or a boolean) has the classes [0, 1] ([-1, 1]), as
    :func:`sklearn.calibration.calibration_curve` takes ``pos_label = 1`` (a metric of
    calibration pairs, where a slice of all positives is common), not a ``ValueError``.

    ``y_true`` may be a label indicator matrix ``(n, C)``, as scikit-learn accepts: rows with
    one 1 each are read as class indices; other rows (several 1s, or none) only where
    ``multi_label`` (the metrics that sum over the columns), else a ``ValueError``.
    """
    xp, (p_raw,) = namespace(_objects_as_numbers(y_proba, "y_proba"), names=["y_proba"])
    check_known_shape(p_raw, "y_proba")
    p_raw = _values(p_raw, "y_proba")
    p, out_dtype = as_float(xp, p_raw, "y_proba")
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim not in (1, 2):
        raise ValueError(
            f"y_proba must have shape (n_samples,) or (n_samples, n_classes); got "
            f"{shape_str(p.shape)}"
        )
    n = int(p.shape[0])
    lazy = _dask_encoded(y_true, p, labels) if classes is None else None
    y = lazy[1] if lazy else host_labels(y_true, "y_true", indicator=classes is None)
    if y.shape[0] != n:
        raise ValueError(
            f"y_true and y_proba must have the same number of rows; got {y.shape[0]} labels "
            f"and {n} rows"
        )
    if nonempty and n == 0:
        raise ValueError(NO_ROWS)
    weight = None
    if sample_weight is not None:
        sample_weight = _objects_as_numbers(sample_weight, "sample_weight")
        if compat.is_array_api_obj(sample_weight) and compat.array_namespace(sample_weight) is xp:
            w = sample_weight
        else:  # a sequence, or an array of another library: moved to y_proba's
            host = (
                to_host(sample_weight, "sample_weight")
                if compat.is_array_api_obj(sample_weight)
                else _sequence(sample_weight, "sample_weight")
            )
            if host.dtype.kind not in "biuf":
                raise TypeError(f"sample_weight must hold numbers; got dtype {host.dtype}")
            _check_weight_shape(host, n)  # (before it takes y_proba's chunks)
            w = _to_backend(xp, host, p)
        weight = _check_weight(xp, _values(w, "sample_weight"), n, p)
    fast = isinstance(p, np.ndarray) and p.ndim == 2 and p.dtype in BITS_OF_ONE
    # Dask: the fast path on each chunk, where the chunk lives (for the summed log loss),
    # unless the validation policy asks for the checks to be computed up front
    chunked = (
        loss_sum
        and _numpy_chunks(p)
        and p.ndim == 2
        and p.dtype in BITS_OF_ONE
        and not reads(None, p)
    )
    if not fast and not chunked:
        p = check_probabilities(xp, p, "y_proba")
    indicator = None
    if lazy:
        enc = lazy[0]
    elif y.ndim == 2:
        enc, one_each = indicator_rows(y, labels)
        if not one_each:
            if not multi_label:
                raise ValueError(
                    "y_true is a label indicator matrix with rows of several labels or none; "
                    "this metric needs exactly one label per row"
                )
            indicator = _to_backend(xp, y.astype(np.float64), p)
            indicator = indicator if indicator.dtype == p.dtype else xp.astype(indicator, p.dtype)
            loss_sum = False
            if chunked:
                p, chunked = check_probabilities(xp, p, "y_proba"), False
    else:
        if one_binary_label and labels is None and classes is None and p.ndim == 1:
            labels = _one_binary_label(y)
        enc = encode(y, labels) if classes is None else Encoded(classes, index_of(y, classes))
    n_classes = int(enc.classes.shape[0])
    width = 2 if p.ndim == 1 else int(p.shape[1])
    if width != n_classes:
        if labels is None and classes is None:
            raise ClassCountError(
                f"y_true and y_proba contain different numbers of classes: {n_classes} vs "
                f"{width}; pass the classes through labels=. Classes found in y_true: "
                f"{enc.classes.tolist()}"
            )
        raise ClassCountError(
            f"the number of classes in labels ({n_classes}) differs from the number of "
            f"columns of y_proba ({width}); classes: {enc.classes.tolist()}"
        )
    index = lazy[1] if lazy else _to_backend(xp, enc.index, p)
    loss_total = None
    if fast:
        p = np.ascontiguousarray(p)
        reducer = _loss_reducer(weight) if loss_sum else None
        keep = reducer is None and true_class
        found = rows_pass(p, enc.index, sums=check_sums, reduce=reducer, keep=keep)
        if not found.in_unit_interval:
            check_probabilities(xp, p, "y_proba")
        if check_sums:
            _warn_row_sums(xp, p, out_dtype, found.sum_range)
        p_true = found.p_true if keep else None
        loss_total = found.total if reducer is not None else None
    elif chunked:
        p_true, loss_total = None, _chunked_loss_total(p, index, weight)
    else:
        if p.ndim == 2 and check_sums:
            _warn_row_sums(xp, p, out_dtype)
        if p.ndim == 1:
            p_true = xp.where(index == 1, p, 1 - p) if true_class else None
        else:
            p_true = gather(xp, p, index)
    return Prepared(
        xp=xp,
        proba=p,
        p_true=p_true,
        index=index,
        classes=enc.classes,
        weight=weight,
        out_dtype=out_dtype,
        numpy=isinstance(p, np.ndarray),
        n=n,
        binary_vector=p.ndim == 1,
        loss_total=loss_total,
        indicator=indicator,
    )


def independent_copy(acc: Any) -> Any:
    """An accumulator's ``__copy__``: a copy that is updated on its own (a shallow one shared
    the running sums, so updating it changed the original's result)."""
    return copy.deepcopy(acc)
