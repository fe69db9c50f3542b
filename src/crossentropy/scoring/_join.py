"""Joining a solution and a submission on their id column, for :func:`crossentropy.scoring.score`.

The third layer of the scoring engine, for Kaggle-style pairs. Two ways, both in bounded
memory beyond the solution's ids:

* :func:`iter_ordered_pair` walks both files side by side when their ids come in the same
  order (the usual case), holding one batch of each; it raises :class:`NotAligned` at the first
  id that differs, and the caller starts again with
* :class:`SolutionIndex`, the solution as a sorted id → class table (integer keys where every
  id writes an integer canonically, a position table where they are consecutive), through which
  :func:`pair_batches` looks up each submission batch; :func:`mark_seen` and
  :func:`first_unseen` check that every solution id is used exactly once.

Ids are compared as 64-bit integers when both id columns are integers, else as text (``"17"``
and ``"017"`` are different ids).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossentropy._lib.checks import plain
from crossentropy.scoring._readers import (
    Batch,
    Labels,
    arrow_batches,
    csv_options,
    id_keys,
    id_value,
    id_values,
    plain_strings,
    prob_matrix,
    split_values,
    to_float,
    weight_values,
)
from crossentropy.scoring._sources import InputError, Source, Unit, delimiter, gzipped

__all__ = [
    "NotAligned",
    "SolutionIndex",
    "first_unseen",
    "iter_ordered_pair",
    "mark_seen",
    "pair_batches",
]


class NotAligned(Exception):
    """The solution and the submission are not in the same id order (internal signal)."""


def _solution_batches(
    src: Source,
) -> Iterator[tuple[Any, np.ndarray, int, np.ndarray | None, np.ndarray | None, np.ndarray | None]]:
    """(ids, class indices, first data row, split values, keys, sample weights) of the
    solution file, in batches: ``keys`` the integers of text ids that all write one
    canonically (:func:`id_keys`), and then no ``ids`` (their text is ``str`` of the key);
    else ``ids`` (:func:`~crossentropy.scoring._readers.id_values`: int64 NumPy, or Arrow
    strings) and no keys; the weights when the solution holds the weight column."""
    assert src.solution is not None
    assert src.solution_format is not None
    assert src.id_column is not None
    idc, tgt, sp = src.id_column, src.target, src.split_column
    labels = [tgt] if tgt is not None else list(src.one_hot)
    assert labels, "a target column or one-hot class columns"
    csv = src.solution_format == "csv"
    text = [idc] if csv else []
    text += [tgt] if tgt is not None else []
    # a one-hot CSV's cells read as text, numbers or True/False (as pandas writes booleans)
    text += list(src.one_hot) if csv else []
    text += [sp] if sp else []
    wc = src.weight_column if src.weight_in_solution else None
    text += [wc] if wc else []
    of_labels = Labels.of(src)
    for rb, row, _ in arrow_batches(
        src.solution,
        src.solution_format,
        Unit(),
        [idc, *labels, *([sp] if sp else []), *([wc] if wc else [])],
        [] if csv else list(src.one_hot),
        text,
        src.batch_rows,
    ):
        keys = id_keys(rb.column(idc)) if src.id_kind == "str" else None
        ids = (
            id_values(rb.column(idc), src.id_kind, src.solution, idc, row) if keys is None else None
        )
        split = split_values(rb.column(sp), src.solution, sp, row) if sp else None
        weight = weight_values(rb.column(wc), src.solution, wc, row) if wc else None
        if tgt is not None:
            y = of_labels.indices(rb.column(tgt), src.solution, tgt, row)
        else:
            y = _one_hot(rb, src.solution, src.one_hot, row)
        yield ids, y, row, split, keys, weight


def _flags(values: Any, path: str, column: str, first_row: int) -> np.ndarray:
    """A one-hot column as float64: numbers, with text cells ``True``/``False`` (any case, as
    pandas writes a boolean column) read as 1 and 0."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    values = plain_strings(values)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        if not values.null_count:  # numbers (the common case: one cast; a missing cell is
            try:  # told by to_float)
                return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]
            except pa.ArrowInvalid:
                pass
        text = pc.utf8_lower(pc.utf8_trim(values, characters=" \t"))
        words = pc.fill_null(pc.match_substring_regex(text, "^(true|false)$"), False)
        if pc.any(words).as_py():
            values = pc.if_else(words, pc.if_else(pc.equal(text, "true"), "1", "0"), values)
    return to_float(values, path, column, first_row).astype(np.float64)


def _one_hot(rb: Any, path: str, columns: tuple[str, ...], first_row: int) -> np.ndarray:
    """Class indices of a one-hot solution's rows (a 0/1 column per class); a row that is not
    one-hot is an error at its row (and column, for a value other than 0 and 1)."""
    from crossentropy.metrics._labels import one_hot_rows

    try:
        matrix = np.column_stack([_flags(rb.column(c), path, c, first_row) for c in columns])
    except InputError as exc:  # a cell empty or not a number: said of a one-hot solution
        what = "nothing" if exc.message.startswith("missing") else "no number"
        raise InputError(
            path,
            f"a one-hot solution (a column per class) holds 0s and 1s; this cell holds {what}",
            row=exc.row,
            column=exc.column,
        ) from None
    index, fault = one_hot_rows(matrix)
    if fault is not None:
        row, col = fault
        if col is not None:
            value = plain(matrix[row, col])
            raise InputError(
                path,
                f"a one-hot solution (a column per class) holds 0s and 1s; got {value!r}",
                row=first_row + row,
                column=columns[col],
            )
        raise InputError(
            path,
            f"a one-hot solution row must hold one 1; this one holds "
            f"{int(np.count_nonzero(matrix[row]))}",
            row=first_row + row,
        )
    return index.astype(np.int64)


def _submission_batches(
    src: Source, unit: Unit, keys: bool = False
) -> Iterator[tuple[Any, np.ndarray, int, float, np.ndarray | None, np.ndarray | None]]:
    """(ids as :func:`~crossentropy.scoring._readers.id_values` gives them, probabilities,
    first data row, progress, integer keys of text ids if ``keys`` and they have them, else
    None, sample weights when the submission holds the weight column) of the submission, in
    batches."""
    assert src.id_column is not None
    idc, cols = src.id_column, list(src.proba_columns)
    wc = src.weight_column if not src.weight_in_solution else None
    extra = [wc] if wc else []
    for rb, row, done in arrow_batches(
        src.path, src.format, unit, [idc, *extra, *cols], cols, [idc, *extra], src.batch_rows
    ):
        column = rb.column(idc)
        key = id_keys(column) if keys and src.id_kind == "str" else None
        # text ids with integer keys (none missing) are looked up by the keys: the text only
        # names rows (:func:`id_value`)
        ids = column if key is not None else id_values(column, src.id_kind, src.path, idc, row)
        proba = prob_matrix([to_float(rb.column(c), src.path, c, row) for c in cols], False)
        weight = weight_values(rb.column(wc), src.path, wc, row) if wc else None
        proba = prob_matrix([proba[:, 0]], True) if src.binary else proba
        yield ids, proba, row, done, key, weight


def iter_ordered_pair(src: Source) -> Iterator[Batch]:
    """Join solution and submission row by row, in bounded memory, when their ids are in order.

    Raises
    ------
    NotAligned
        At the first id that differs, or when one file has more rows: the caller falls back to
        :class:`SolutionIndex`.
    """
    if not _first_ids_agree(src):
        raise NotAligned
    sol = _solution_batches(src)
    s_y = np.empty(0)
    s_ids: Any = None
    s_keys: np.ndarray | None = None
    s_split: np.ndarray | None = None
    s_weight: np.ndarray | None = None
    for ids, proba, row, done, keys, weight in _submission_batches(src, Unit(), True):
        off = 0
        while off < len(ids):
            if len(s_y) == 0:
                nxt = next(sol, None)
                if nxt is None:
                    raise NotAligned
                s_ids, s_y, _, s_split, s_keys, s_weight = nxt
            k = min(len(ids) - off, len(s_y))
            if keys is not None and s_keys is not None:
                same = np.array_equal(keys[off : off + k], s_keys[:k])
            elif src.id_kind == "int":
                same = np.array_equal(ids[off : off + k], s_ids[:k])
            else:  # text, as Arrow strings
                text = s_ids[:k] if s_ids is not None else _key_text(s_keys, k)
                mine = ids[off : off + k] if keys is None else _key_text(keys[off:], k)
                same = bool(mine.equals(text))
            if not same:
                raise NotAligned
            yield Batch(
                s_y[:k],
                proba[off : off + k],
                np.arange(row + off, row + off + k, dtype=np.int64),
                ids[off : off + k],
                done,
                split=None if s_split is None else s_split[:k],
                weight=(
                    weight[off : off + k]
                    if weight is not None
                    else None
                    if s_weight is None
                    else s_weight[:k]
                ),
            )
            s_y, off = s_y[k:], off + k
            s_ids = None if s_ids is None else s_ids[k:]
            s_keys = None if s_keys is None else s_keys[k:]
            s_split = None if s_split is None else s_split[k:]
            s_weight = None if s_weight is None else s_weight[k:]
    if len(s_y) or next(sol, None) is not None:
        raise NotAligned


#: Bytes of each CSV that :func:`_first_ids_agree` reads.
_PEEK_BYTES = 1 << 16


def _first_ids_agree(src: Source) -> bool:
    """False when the first ids of two plain CSV files differ: the ordered join would stop at
    its first batch, after pyarrow's threads parsed the first blocks of each file (about 0.2 s
    a file on two cores). The first :data:`_PEEK_BYTES` of each are read instead, on this
    thread. True when they agree, for other inputs, and when a small block cannot tell (the
    join then decides). When both files hold bad rows, the solution's is then reported, as
    the index reads the solution whole first."""
    import pyarrow as pa
    import pyarrow.csv as pcsv  # type: ignore[import-untyped]

    sol, idc = src.solution, src.id_column
    if src.format != "csv" or src.solution_format != "csv" or src.id_kind != "str":
        return True  # text ids, compared as the join compares them
    if sol is None or idc is None:
        return True
    paths = (sol, src.path)
    if not all(os.path.isfile(p) and not gzipped(p) for p in paths):
        return True
    first = []
    for path in paths:
        read, parse, convert = csv_options([idc], (), [idc], _PEEK_BYTES, delimiter(path))
        read.use_threads = False
        try:
            with pcsv.open_csv(
                path, read_options=read, parse_options=parse, convert_options=convert
            ) as reader:
                first.append(reader.read_next_batch().column(0).to_pylist())
        except (pa.ArrowException, OSError, StopIteration):
            return True
    k = min(len(first[0]), len(first[1]))
    return bool(first[0][:k] == first[1][:k])


def _key_text(keys: np.ndarray | None, k: int) -> Any:
    """The text of the first ``k`` integer keys (their canonical writing), as Arrow strings."""
    import pyarrow as pa

    assert keys is not None
    return pa.array(keys[:k]).cast(pa.string())


def _text_of(ids: Any, keys: np.ndarray | None) -> Any:
    """A batch's text ids as Arrow strings: as read, or the writing of its integer keys."""
    if ids is not None:
        return ids
    return _key_text(keys, len(keys) if keys is not None else 0)


#: Text ids of at most this many bytes (UTF-8) are joined as fixed-width NumPy bytes, which
#: sort and search fast (2x faster than NumPy's 4-byte characters, a quarter of their memory);
#: a solution with a longer id (or a NUL character, which fixed-width bytes drop at the end)
#: is joined as Python strings (NumPy objects: slower, but one long id cannot widen every row;
#: NumPy 2.4's variable-width strings compare only up to a NUL and fail in ``searchsorted``).
FIXED_ID_BYTES = 64


def _index_text(ids: Any) -> np.ndarray:
    """A solution's text ids (Arrow strings) as NumPy text: fixed-width UTF-8 bytes (whose
    order is the code points' order) up to :data:`FIXED_ID_BYTES`, else Python strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    width = pc.max(pc.binary_length(ids)).as_py() or 1
    out: np.ndarray
    if width <= FIXED_ID_BYTES and not pc.any(pc.match_substring(ids, "\x00")).as_py():
        out = ids.cast(pa.binary()).to_numpy(zero_copy_only=False).astype(f"S{width}")
    else:
        out = ids.to_numpy(zero_copy_only=False)  # object: Python strings
    return out


def _query_text(ids: Any, table: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A batch's text ids (Arrow strings) in the index's representation, and which of them
    can be in it (None: all): an id longer than the index's fixed width, or holding a NUL,
    is none of its ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.dtype.kind != "S":
        out: np.ndarray = ids.to_numpy(zero_copy_only=False)  # object: Python strings
        return out, None
    width = table.dtype.itemsize
    fits = pc.and_(
        pc.less_equal(pc.binary_length(ids), width), pc.invert(pc.match_substring(ids, "\x00"))
    )
    valid = fits.to_numpy(zero_copy_only=False)
    if not bool(valid.all()):
        ids = pc.if_else(fits, ids, "")
    query = ids.cast(pa.binary()).to_numpy(zero_copy_only=False).astype(f"S{width}")
    return query, None if bool(valid.all()) else valid


@dataclass(frozen=True)
class SolutionIndex:
    """The solution as a sorted id → class-index table: O(rows of the solution) memory.

    Used to join a submission whose ids are not in the solution's order (and by the Dask engine).

    Attributes
    ----------
    ids : numpy.ndarray or None
        Sorted ids: their values for an integer column, else their text as fixed-width UTF-8
        bytes or, with an id longer than :data:`FIXED_ID_BYTES` (or holding a NUL), as Python
        strings (:func:`_index_text`); None when ``keys`` holds them.
    y : numpy.ndarray
        Class index of each sorted id.
    rows : numpy.ndarray
        1-based solution data row of each sorted id.
    split : numpy.ndarray or None
        The split value of each sorted id (a split column named).
    keys : numpy.ndarray or None
        When every id is text that writes an int64 canonically (``"17"``, not ``"017"`` or
        ``"+17"``): those integers, sorted. Equal keys mean equal text (the join stays by
        text), integers sort and search 3-5x faster than text, and take a quarter of the
        memory of 7-character ids.
    dense : numpy.ndarray or None
        With integer ids (``keys`` of text ids, or ``ids`` of an integer column) spanning at
        most twice as many values as there are ids (consecutive ids, the usual case): the
        sorted position of each id ``first + i`` at ``dense[i]`` (-1 for none), so a look-up
        is an indexing, not a search.
    weight : numpy.ndarray or None
        The sample weight of each sorted id (the solution's weight column).
    """

    ids: np.ndarray | None
    y: np.ndarray
    rows: np.ndarray
    split: np.ndarray | None = None
    keys: np.ndarray | None = None
    dense: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def id_at(self, position: int) -> Any:
        """The id at a sorted ``position``, as the file writes it."""
        if self.ids is None:
            assert self.keys is not None
            return str(self.keys[position])
        return id_value(self.ids, position)

    @classmethod
    def build(cls, src: Source) -> SolutionIndex:
        """Read the whole solution; raise on a duplicate id."""
        assert src.solution is not None
        assert src.id_column is not None
        parts = list(_solution_batches(src))
        if not parts:
            raise InputError(src.solution, "no data rows")
        y = np.concatenate([p[1] for p in parts]).astype(
            np.int32 if len(src.classes) > 127 else np.int8
        )
        ids: np.ndarray | None = None
        keys: np.ndarray | None = None
        if all(p[4] is not None for p in parts):
            keys = np.concatenate([p[4] for p in parts])
        elif src.id_kind == "int":
            ids = np.concatenate([p[0] for p in parts])
        else:  # some id is not a canonical integer: all by their text
            import pyarrow as pa

            ids = _index_text(pa.chunked_array([_text_of(p[0], p[4]) for p in parts]))
        split = np.concatenate([p[3] for p in parts]) if src.split_column else None
        weight = np.concatenate([p[5] for p in parts]) if src.weight_in_solution else None
        del parts  # the batches' copies: not held while sorting
        values = keys if keys is not None else ids
        assert values is not None
        order: np.ndarray | None = None  # None: already in id order (the usual solution file)
        if not bool(np.all(values[1:] > values[:-1])):
            order = np.argsort(values, kind="stable")
            values = values[order]
        dup = np.flatnonzero(values[1:] == values[:-1])
        dense = None
        if (  # integer ids (an integer column, or text ids with keys) in a short range
            values.dtype.kind == "i"
            and len(y)
            and not dup.size
            and int(values[-1]) - int(values[0]) < 2 * len(y)
        ):
            kind = np.int32 if len(values) < 2**31 else np.int64
            dense = np.full(int(values[-1]) - int(values[0]) + 1, -1, dtype=kind)
            dense[values - values[0]] = np.arange(len(values), dtype=kind)
        if order is None:
            rows = np.arange(1, len(y) + 1, dtype=np.int64)
        else:
            y, rows = y[order], order.astype(np.int64) + 1
            split = None if split is None else split[order]
            weight = None if weight is None else weight[order]
        index = cls(
            None if keys is not None else values,
            y,
            rows,
            split,
            values if keys is not None else None,
            dense,
            weight,
        )
        if dup.size:
            assert order is not None  # ids in order have no repeat
            rows = order[dup + 1] + 1
            k = int(np.argmin(rows))
            raise InputError(
                src.solution,
                f"id {index.id_at(int(dup[k]))!r} appears twice",
                row=int(rows[k]),
                column=src.id_column,
            )
        return index

    def lookup(
        self,
        ids: Any,
        path: str,
        column: str,
        first_row: int,
        solution: str,
        keys: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the sorted table, class indices) of ``ids`` (with their integer
        ``keys`` where the text ids have them); raise on an unknown id."""
        if self.keys is not None:
            table = self.keys
            query, valid = (keys, None) if keys is not None else _query_keys(ids)
        elif self.ids is not None and self.ids.dtype.kind in "iu":
            table, query, valid = self.ids, ids, None
        else:
            assert self.ids is not None
            table = self.ids
            query, valid = _query_text(ids, table)
        if self.dense is not None:  # an id outside the range may wrap in the subtraction;
            # np.where discards it, and the range test alone decides that it is unknown
            lo = table[0]
            inside = (query >= lo) & (query <= table[-1])
            pos = self.dense[np.where(inside, query - lo, 0)].astype(np.intp)
            found = inside & (pos >= 0)
            np.maximum(pos, 0, out=pos)
        else:
            # sorted queries walk the table in order: 1.6x (text) to 2.6x (int64) faster
            # than random ones on 2M ids (an unstable sort: equal queries find one position)
            order = np.argsort(query)
            pos = np.empty(len(ids), dtype=np.intp)
            pos[order] = np.searchsorted(table, query[order])
            np.minimum(pos, len(table) - 1, out=pos)
            found = table[pos] == query
        if valid is not None:
            found &= valid
        if not bool(np.all(found)):
            i = int(np.argmin(found))
            raise InputError(
                path,
                f"id {id_value(ids, i)!r} is not in the solution {solution}",
                row=first_row + i,
                column=column,
            )
        return pos, self.y[pos].astype(np.int64)


def _query_keys(ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """int64 keys of text ids to look up among a solution's canonical integer keys, and which
    ids have one: an id that does not write an integer canonically cannot be a solution id
    (a batch without :func:`id_keys` holds one: an error to report, so the slow way is
    fine)."""
    out = np.zeros(len(ids), dtype=np.int64)
    valid = np.zeros(len(ids), dtype=bool)
    for i, text in enumerate(ids.to_pylist()):
        try:
            value = int(text)
        except ValueError:
            continue
        if str(value) == text and -(2**63) <= value < 2**63:
            out[i], valid[i] = value, True
    return out, valid


def mark_seen(seen: np.ndarray, positions: np.ndarray) -> int | None:
    """Mark ``positions`` as seen and return None; or, when one of them was seen before (in an
    earlier batch, or earlier in this one), return the index of the first such one and mark
    nothing."""
    bad = seen[positions]
    if not bool(bad.any()):
        # a repeat within the batch? An unstable sort is 9x faster than the stable argsort
        # that finds which one (needed only to report it)
        s = np.sort(positions)
        if not bool((s[1:] == s[:-1]).any()):
            seen[positions] = True
            return None
    order = np.argsort(positions, kind="stable")
    sp = positions[order]
    bad[order[1:][sp[1:] == sp[:-1]]] = True
    return int(np.argmax(bad))


def first_unseen(seen: np.ndarray, index: SolutionIndex) -> int | None:
    """Sorted position of the unseen solution id with the lowest row, else None."""
    missing = np.flatnonzero(~seen)
    if not missing.size:
        return None
    return int(missing[np.argmin(index.rows[missing])])


def pair_batches(src: Source, index: SolutionIndex, unit: Unit | None = None) -> Iterator[Batch]:
    """Validated batches of the submission's ``unit`` (default: all of it), each row joined to
    its solution row through ``index`` (the caller checks with :func:`mark_seen` that every
    id is used once)."""
    assert src.id_column is not None
    assert src.solution is not None
    for ids, proba, row, done, keys, weight in _submission_batches(
        src, unit or Unit(), index.keys is not None
    ):
        pos, y = index.lookup(ids, src.path, src.id_column, row, src.solution, keys)
        rows = np.arange(row, row + len(ids), dtype=np.int64)
        split = None if index.split is None else index.split[pos]
        if index.weight is not None:
            weight = index.weight[pos]
        yield Batch(y, proba, rows, ids, done, pos, index.rows[pos], split, weight=weight)
