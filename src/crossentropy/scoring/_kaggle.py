r"""Kaggle's metric convention: ``score(solution, submission, row_id_column_name)``.

Kaggle scores a submission against a hidden solution, both tables keyed by a row id; for the
multi-class log loss its evaluation pages state the probability treatment: "the submitted
probabilities for a given row are not required to sum to one because they are rescaled prior to
being scored (each row is divided by the row sum)" and "predicted probabilities are replaced
with :math:`\max(\min(p, 1 - 10^{-15}), 10^{-15})`". :func:`kaggle_probabilities` is that rule,
and :func:`kaggle_score` the metric over two tables.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from crossentropy._lib.checks import check_clip, plain, reads_as_float
from crossentropy._lib.extras import require
from crossentropy.metrics._formulas import gather, renormalized, row_log_loss
from crossentropy.metrics._labels import one_hot_rows
from crossentropy.scoring._readers import Labels, single_values
from crossentropy.scoring._sources import (
    InputError,
    headerless,
    pandas_index,
    text_name,
    unlabelled_column,
)

__all__ = ["KAGGLE_EPS", "kaggle_probabilities", "kaggle_score"]

KAGGLE_EPS = 1e-15
"""The clip of Kaggle's log loss: probabilities are kept within ``[1e-15, 1 - 1e-15]``
(``eps`` of :func:`kaggle_score` and :func:`kaggle_probabilities`; ``clip`` of
:func:`score`)."""


def kaggle_probabilities(
    proba: Any, *, eps: float = KAGGLE_EPS, ids: Any = None, columns: Any = None
) -> np.ndarray[Any, Any]:
    r"""Probabilities as Kaggle's log loss treats them: each row divided by its sum, then
    clipped to :math:`[\varepsilon, 1 - \varepsilon]`,

    .. math::

        \tilde p_{ic} = \max\Bigl(\min\Bigl(\frac{p_{ic}}{\sum_k p_{ik}},
            1 - \varepsilon\Bigr), \varepsilon\Bigr)

    with :math:`\varepsilon` = ``eps``, :math:`10^{-15}` by default (Kaggle's).

    Parameters
    ----------
    proba : array_like of shape (n, C)
        Submitted scores: finite, non-negative, each row with a positive sum.
    eps : float, default 1e-15
        The clip (Kaggle's).
    ids, columns : sequence, optional
        Row ids and column names, used to name a bad entry in the error message (a row by its
        id; without ids, by its index from 0).

    Returns
    -------
    numpy.ndarray of shape (n, C), float64
        The rows rescaled to sum to 1 and clipped to ``[eps, 1 - eps]``, in Kaggle's order.

    Raises
    ------
    ValueError
        A NaN, an infinity or a negative entry, or a row that sums to zero, with its row (id)
        and column.
    TypeError
        Entries that are not numbers, or rows of different lengths.

    Examples
    --------
    >>> from crossentropy.scoring import kaggle_probabilities
    >>> kaggle_probabilities([[0.5, 0.3, 0.0], [2.0, 1.0, 1.0]])
    array([[6.25e-01, 3.75e-01, 1.00e-15],
           [5.00e-01, 2.50e-01, 2.50e-01]])
    """
    return _rescaled(proba, eps, ids, columns, "proba")


def _rescaled(proba: Any, eps: float, ids: Any, columns: Any, name: str) -> np.ndarray[Any, Any]:
    """:func:`kaggle_probabilities`, its errors naming the scores ``name``."""
    eps = check_clip(eps, "eps")
    try:
        p = np.array(proba, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a matrix of numbers, one column per class") from None
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"{name} must be a matrix of one column per class; got shape {p.shape}")

    for given, what in ((ids, "ids"), (columns, "columns")):  # text is one name, not a list
        if isinstance(given, str | bytes):
            raise TypeError(f"{what} must be a sequence, one per row or column; got {given!r}")
    ids = None if ids is None else list(ids)
    columns = None if columns is None else list(columns)
    if ids is not None and len(ids) != p.shape[0]:
        raise ValueError(f"ids must hold one id per row of {name} ({p.shape[0]}); got {len(ids)}")
    if columns is not None and len(columns) != p.shape[1]:
        raise ValueError(
            f"columns must hold one name per column of {name} ({p.shape[1]}); got {len(columns)}"
        )

    def where(row: int, col: int | None = None) -> str:
        name = f"row {row}" if ids is None else f"the row of id {plain(ids[row])!r}"
        if col is None:
            return name
        return f"{name}, column {col if columns is None else repr(plain(columns[col]))}"

    bad = ~np.isfinite(p) | (p < 0)
    if bad.any():
        row, col = divmod(int(np.argmax(bad)), p.shape[1])
        raise ValueError(
            f"{name} must hold finite, non-negative scores; got {p[row, col]} at {where(row, col)}"
        )
    largest = p.max(axis=1) if p.shape[0] else np.zeros(0)
    if (largest <= 0).any():  # non-negative entries: a positive sum has a positive entry
        raise ValueError(
            f"{name} rows must have a positive sum; {where(int(np.argmin(largest)))} sums to 0"
        )
    return renormalized(p, eps, "before_clip")


def _table(obj: Any, name: str, asked: list[str | None]) -> Any:
    """A pyarrow Table of a DataFrame or Table, with the pandas index levels named by a
    column ``asked`` for (:func:`~crossentropy.scoring._sources.arrow_table`)."""
    from crossentropy.scoring._sources import arrow_table

    table = arrow_table(obj, name, asked)
    if table is None:
        raise TypeError(
            f"{name} must be a DataFrame (pandas, polars) or a pyarrow Table; got "
            f"{type(obj).__name__}"
        )
    return table


def _column(table: Any, column: str, name: str) -> Any:
    if column not in table.column_names:
        raise ValueError(f"{name} has no column {column!r}; its columns: {table.column_names}")
    return table.column(column)


def _numbers(table: Any, column: str, name: str, ids: Any) -> np.ndarray[Any, Any]:
    """A column as float64, or a ``ValueError`` naming the table, column and the id of the
    first bad row (``ids``: the table's id column)."""
    import pyarrow as pa  # type: ignore[import-untyped]

    values = table.column(column)
    try:
        return np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        cells = values.to_pylist()
        row = next((i for i, v in enumerate(cells) if not reads_as_float(v)), 0)
        raise ValueError(
            f"{name} column {column!r} must hold numbers; got {cells[row]!r} in the row of id "
            f"{plain(ids[row].as_py())!r}"
        ) from None


def _ids(table: Any, column: str, name: str) -> Any:
    """A table's id column as one array, categorical ids decoded and text ids as
    ``large_string`` (polars gives ``string_view``, pandas ``string``: the join needs one
    type)."""
    import pyarrow as pa

    ids = single_values(_column(table, column, name).combine_chunks(), name, column, "ids", 1)
    if pa.types.is_string(ids.type):
        ids = ids.cast(pa.large_string())
    return ids


def kaggle_score(
    solution: Any,
    submission: Any,
    row_id_column_name: str | int,
    *,
    target: str | int | None = None,
    usage: str | None = None,
    usage_column: str | int = "Usage",
    eps: float = KAGGLE_EPS,
) -> float:
    r"""Kaggle's multi-class log loss of a submission table against a solution table.

    .. math::

        L = -\frac1n \sum_i \sum_c t_{ic} \log \tilde p_{ic}

    with :math:`\tilde p` the submitted probabilities rescaled and clipped as Kaggle does
    (:func:`kaggle_probabilities`) and :math:`t` the solution's one-hot rows, in nats. This is
    the convention of Kaggle's metric functions, ``score(solution, submission,
    row_id_column_name)``: the tables are joined on the row id (in any order; every id of the
    solution exactly once in the submission), and the submission's other columns are the
    classes. It differs from :func:`crossentropy.metrics.log_loss` (scikit-learn's), which
    clips at the dtype's epsilon and does not rescale: a submission rounded to two decimals
    has zeros and rows that sum to 0.99 or 1.01, which the two score differently.

    Parameters
    ----------
    solution : DataFrame or pyarrow.Table
        The row ids and either one 0/1 column per class, named as the submission's (Kaggle's
        usual layout), or a ``target`` column of class names; other columns are ignored.
    submission : DataFrame or pyarrow.Table
        The row ids and one probability column per class (pandas' stored index,
        ``__index_level_0__`` of ``Table.from_pandas``, is none); or, Kaggle's binary layout,
        one column of the probability of the label 1, the solution's 0/1 labels in the column
        of the same name (or ``target``): clipped to ``[eps, 1 - eps]``.
    row_id_column_name : str or int
        The id column of both tables (a pandas index level of that name, too; an integer names
        a pandas column of that integer name). Ids of two types join by their text as
        pyarrow writes it: the integer ``1`` is the id ``"1"``, not ``"001"``, and so is the
        float ``1.0`` (in a CSV file, ``1.0`` is its own text, another id).
    target : str or int, optional
        The solution's column of class labels, instead of one-hot class columns: matched to
        the submission's column names as the labels of files are, by their text, or by value
        where every column name writes an integer, with or without a fraction of zeros
        (``2``, ``2.0`` and ``"2.0"`` are the class ``"2"`` or ``"2.0"``; ``False`` and
        ``True`` the classes ``"0"`` and ``"1"``).
    usage : str, optional
        Score only the solution rows whose ``usage_column`` equals this (``"Public"`` or
        ``"Private"``, Kaggle's split of the leaderboard).
    usage_column : str or int, default "Usage"
        The split column of the solution (refused as a column of the submission).
    eps : float, default 1e-15
        The probability clip.

    Returns
    -------
    float
        The mean log loss of the solution's rows (of those of ``usage``, if given).

    Raises
    ------
    ValueError
        A missing column, an id missing from or repeated in the submission, an id of the
        submission not in the solution (with ``usage`` too: the whole submission is
        checked, and so is every row of a one-hot solution for a class column the submission
        lacks), a label that is not a class, with ``target`` a submission column that is
        no row's label (another column, such as a fold number, read as a class would be
        rescaled away silently), a bad probability (with its id and column), a submission
        column named as pandas names a column without a header (``Unnamed: 0``: an index
        written by ``to_csv``, not a class) or as the solution's split column, a column name
        given twice or columns of several levels.
    TypeError
        A table that is not a DataFrame or a pyarrow Table.

    Examples
    --------
    >>> import pandas as pd
    >>> from crossentropy.scoring import kaggle_score
    >>> solution = pd.DataFrame({"id": [1, 2, 3], "cat": [1, 0, 0], "dog": [0, 1, 0],
    ...                          "emu": [0, 0, 1], "Usage": ["Public", "Private", "Public"]})
    >>> submission = pd.DataFrame({"id": [3, 1, 2], "cat": [0.1, 0.7, 0.2],
    ...                            "dog": [0.2, 0.2, 0.8], "emu": [0.7, 0.1, 0.0]})
    >>> round(kaggle_score(solution, submission, "id"), 6)
    0.312164
    >>> round(kaggle_score(solution, submission, "id", usage="Public"), 6)
    0.356675
    """
    require("kaggle_score", "pyarrow")
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    # an integer names a pandas column as pyarrow stores its name (0: "0")
    row_id_column_name, target, usage_column = (
        text_name(row_id_column_name),
        text_name(target),
        text_name(usage_column),
    )
    asked = [row_id_column_name, target, usage_column if usage is not None else None]
    sol, sub = _table(solution, "solution", asked), _table(submission, "submission", asked)
    sol_ids = _ids(sol, row_id_column_name, "solution")
    sub_ids = _ids(sub, row_id_column_name, "submission")
    # pandas' stored index (a Table.from_pandas of a shuffled frame) is no class
    classes = [c for c in sub.column_names if c != row_id_column_name and not pandas_index(c)]
    if usage_column in classes and usage_column in sol.column_names:
        raise ValueError(
            f"submission column {usage_column!r} is the solution's split column (usage_column), "
            "not a class: drop it"
        )
    unnamed = [c for c in classes if headerless(c)]
    if unnamed:
        raise ValueError(
            f"submission has a column {unnamed[0]!r} without a header (an index written by "
            "to_csv?), not a class: drop it, or write the file with index=False"
        )
    binary = None  # Kaggle's binary layout: one column, the probability of the label 1
    rest = [
        c
        for c in sol.column_names
        if c not in (row_id_column_name, usage_column) and not pandas_index(c)
    ]
    if len(classes) == 1 and (target is not None or len(rest) <= 1):
        binary = classes[0]  # (a one-hot solution of several columns is no binary problem)
        target = target if target is not None else binary
        if target not in sol.column_names:
            raise ValueError(
                f"submission column {binary!r} is a binary problem's probability of the label "
                f"1: the solution needs its 0/1 labels in a column of that name, or named by "
                f"target=; its columns: {sol.column_names}"
            )
        classes = ["0", "1"]
    if len(classes) < 2:
        raise ValueError(
            f"submission must have a probability column per class besides {row_id_column_name!r}"
            f" (or one, of a binary problem's label 1); got columns {sub.column_names}"
        )
    for ids_, name in ((sol_ids, "solution"), (sub_ids, "submission")):
        if len(ids_) == 0:
            raise ValueError(f"{name} has no rows")
        if ids_.null_count:
            row = int(np.flatnonzero(ids_.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(
                f"{name} has a missing id in {row_id_column_name!r} at its row {row} (from 0)"
            )
        if pc.count_distinct(ids_).as_py() != len(ids_):
            counts = pc.value_counts(ids_).to_pylist()
            twice = next(c["values"] for c in counts if c["counts"] > 1)
            raise ValueError(f"{name} repeats the id {twice!r} in {row_id_column_name!r}")
    keep = None
    if usage is not None:
        split = _column(sol, usage_column, "solution").combine_chunks()
        split = single_values(split, "solution", usage_column, "split values", 1)
        keep = pc.fill_null(pc.equal(split.cast(pa.large_string()), str(usage)), False)
        if not pc.any(keep).as_py():
            raise ValueError(f"solution has no row with {usage_column} = {usage!r}")
    # the classes checked before the probabilities, on the rows scored (another split's rows
    # may hold placeholders, as Kaggle's "Ignored" ones)
    y = _solution_labels(
        sol, sol_ids, classes, target, row_id_column_name, usage_column, keep, binary is not None
    )
    if sol_ids.type != sub_ids.type:  # ids are text: numbers by their writing ("001" is not 1)
        # what does not cast is left to index_in, which names both types
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
            sol_ids, sub_ids = (ids_.cast(pa.large_string()) for ids_ in (sol_ids, sub_ids))
    try:
        position = pc.index_in(sol_ids, value_set=sub_ids)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ValueError(
            f"the ids of solution and submission differ in type ({sol_ids.type} vs "
            f"{sub_ids.type}) in {row_id_column_name!r}"
        ) from exc
    missing = pc.is_null(position)
    if pc.any(missing).as_py():
        first = sol_ids.filter(missing)[0].as_py()
        raise ValueError(f"submission has no row for the solution's id {first!r}")
    if sub.num_rows != sol.num_rows:
        extra = sub_ids.filter(pc.invert(pc.is_in(sub_ids, value_set=sol_ids)))[0].as_py()
        raise ValueError(f"submission has the id {extra!r}, which is not in the solution")
    if keep is not None:  # the whole submission checked, as Kaggle does; one split scored
        position = position.filter(keep)
    ids = sub_ids.to_numpy(zero_copy_only=False)  # a bad entry is named by its submission row
    if binary is not None:  # P(1), a probability; 1 - P(1) the label 0's
        q = _numbers(sub, binary, "submission", sub_ids)
        outside = ~((q >= 0) & (q <= 1))
        if outside.any():
            row = int(np.argmax(outside))
            raise ValueError(
                f"submission column {binary!r} must hold probabilities in [0, 1]; got {q[row]} "
                f"in the row of id {plain(ids[row])!r}"
            )
        p = _rescaled(np.column_stack([1 - q, q]), eps, ids, [binary] * 2, "submission")
    else:
        proba = np.column_stack([_numbers(sub, c, "submission", sub_ids) for c in classes])
        p = _rescaled(proba, eps, ids, classes, "submission")
    return _mean_loss(p[position.to_numpy(zero_copy_only=False)], y, eps)


def _solution_labels(
    sol: Any,
    sol_ids: Any,
    classes: list[str],
    target: str | None,
    id_column: str,
    usage: str,
    keep: Any = None,
    binary: bool = False,
) -> np.ndarray[Any, Any]:
    """The class index among the submission's ``classes`` of each solution row that ``keep``
    keeps (all without it): its ``target`` label, else its one-hot class columns; a
    ``ValueError`` naming the row's id where a label is no class or a row is not one-hot, or a
    class column no row is of (with ``target``: another column of the submission's, most
    likely; looked for in every row where every row's label reads; not for ``binary`` labels
    0 and 1, one of which a split may lack)."""
    everything = sol
    if keep is not None:
        if target is None:  # the format checked on every row, as Kaggle does, once
            _missing_classes(sol, sol_ids, classes, id_column, usage)
        sol, sol_ids = sol.filter(keep), sol_ids.filter(keep)
    if target is None:
        absent = [c for c in classes if c not in sol.column_names]
        if absent:
            raise ValueError(
                f"submission column {absent[0]!r} has no 0/1 column of that name in the "
                "solution: drop it if it is no class, or give the solution's column of class "
                "labels as target="
            )
        onehot = np.column_stack([_numbers(sol, c, "solution", sol_ids) for c in classes])
        y, fault = one_hot_rows(onehot)
        if fault is None:
            return y
        row = fault[0]
        others = [c for c in sol.column_names if c not in (*classes, id_column, usage)]
        row_id = sol_ids[row].as_py()
        if others:  # a class of the solution's that the submission lacks, most likely
            raise ValueError(
                f"submission has no column for the solution's {others}: the solution's row of "
                f"id {row_id!r} is not one-hot over the submission's classes {classes}"
            )
        raise ValueError(
            f"the solution's row of id {row_id!r} is not one-hot over the classes {classes}: "
            "one 1 and 0s elsewhere are expected"
        )
    column = _column(sol, target, "solution")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(
            f"solution column {target!r} has a missing label (id {sol_ids[row].as_py()!r})"
        )
    try:  # the rule of files: by name, or by value where the classes write integers
        y = Labels([str(c) for c in classes]).indices(
            column.combine_chunks(), "solution", target, 0
        )
    except InputError as exc:  # named by the row's id
        row = exc.row or 0
        value, row_id = column[row].as_py(), sol_ids[row].as_py()
        if value == "":
            what = f"has a missing label (id {row_id!r})"
        elif exc.message.startswith("label "):
            what = (
                f"holds the label {value!r} (id {row_id!r}), which is not one of the "
                f"submission's classes {classes}"
            )
        else:  # a column of another type
            what = f"is refused: {exc.message}"
        raise ValueError(f"solution column {target!r} {what}") from None
    if binary:
        return y
    held = np.bincount(y, minlength=len(classes))
    if not held.all() and keep is not None:  # a class of another split's rows only
        whole = _column(everything, target, "solution").combine_chunks()
        whole = whole.filter(whole.is_valid())  # (their labels may be missing, or placeholders)
        with contextlib.suppress(InputError):
            y_all = Labels([str(c) for c in classes]).indices(whole, "solution", target, 0)
            held = np.bincount(y_all, minlength=len(classes))
    if not held.all():  # Kaggle refuses a submission's column that is not a class
        raise ValueError(
            unlabelled_column(
                str(classes[int(np.argmin(held))]),
                target,
                "give the solution as one 0/1 column per class",
            )
        )
    return y


def _missing_classes(
    sol: Any, sol_ids: Any, classes: list[str], id_column: str, usage: str
) -> None:
    """Refuse a submission without the class column of some one-hot solution row, in any
    split: a row whose 1 is in a 0/1 column the submission lacks, where the submission's class
    columns hold none (a row of zeros, Kaggle's placeholder of an ignored row, is no class;
    nor is a column of other numbers, a fold's, or of text)."""
    others = [c for c in sol.column_names if c not in (*classes, id_column, usage)]
    if not others or any(c not in sol.column_names for c in classes):
        return  # (a class column missing from the solution is named where rows are read)
    try:
        onehot = np.column_stack([_numbers(sol, c, "solution", sol_ids) for c in classes])
    except ValueError:
        return  # (a bad cell of the scored rows is named where they are read)
    none = onehot.sum(axis=1) == 0
    for name in others:
        try:
            values = _numbers(sol, name, "solution", sol_ids)
        except ValueError:
            continue  # (text, say: no class column)
        held = none & (values == 1)
        if held.any() and bool(np.all((values == 0) | (values == 1))):  # (a 0/1 column)
            row_id = sol_ids[int(np.argmax(held))].as_py()
            raise ValueError(
                f"submission has no column for the solution's {name!r}, the class of its row "
                f"of id {row_id!r} (the rows of every split are checked)"
            )


def _mean_loss(p: np.ndarray, y: np.ndarray, eps: float) -> float:
    """The mean log loss of rows already rescaled and clipped (:func:`kaggle_probabilities`):
    their sums are off 1 by the clip, which is Kaggle's convention, not a fault to warn of."""
    return float(np.mean(row_log_loss(np, gather(np, p, y), p.dtype, eps)))
