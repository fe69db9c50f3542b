"""How an input is read, for :func:`crossentropy.scoring.score`: a :class:`Source` (or one
:class:`Unit` of it) as a stream of validated :class:`Batch` objects, in bounded memory.

The second layer of the scoring engine. pyarrow's streaming readers (CSV, Parquet, in-memory
tables, URLs through pyarrow's file systems or fsspec) and NumPy's memory maps give record
batches of a bounded number of values; each batch's labels become class indices, its
probabilities a matrix (float32 as stored, float64 otherwise), each row keeps its 1-based data
row. Every problem raises :class:`~crossentropy.scoring._sources.InputError` naming the file,
row and column; a CSV that pyarrow refuses is read again to find the row at fault. The
probabilities' range is checked where they are scored, by the rule of ``metrics``, and the
engine names it the same way. The functions used to read a pair's two files are shared with
:mod:`~crossentropy.scoring._join`.

Conventions
-----------
* Labels are matched as text against the class names (:class:`Labels`); where every class
  name is an integer, labels that write one exactly match it by value (``3``, ``3.0`` and the
  texts ``"3.0"`` and ``" +3 "`` match the class ``"3"`` of a column ``p_3``; ``"3.5"`` and
  ``"3e0"`` do not); boolean labels, and the texts ``True`` and ``False``, match the classes
  ``"0"`` and ``"1"`` where the classes are integers (and not named False/True), else
  ``"False"`` and ``"True"``.
* CSV cells: an empty cell is a missing value; ``nan``, ``inf`` parse as numbers and are rejected as
  non-finite; nothing else is treated as missing.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossentropy._lib.checks import plain
from crossentropy.metrics._labels import INTEGRAL_NAME
from crossentropy.scoring._sources import (
    IN_MEMORY_ARRAY,
    PART_STRIDE,
    Format,
    InputError,
    Source,
    Unit,
    csv_header_bytes,
    delimiter,
    first_line,
    first_undecoded,
    gzipped,
    load_npy,
    load_npz,
    name_list,
    native,
    npz_array,
    open_text,
    shorten,
)

__all__ = [
    "BATCH_VALUES",
    "Batch",
    "Labels",
    "arrow_batches",
    "batch_rows_for",
    "csv_options",
    "id_hashes",
    "id_keys",
    "id_value",
    "id_values",
    "iter_batches",
    "paired_keys",
    "part_batches",
    "positional_labels",
    "prob_matrix",
    "single_values",
    "split_values",
    "stored_float",
    "to_float",
    "unclear_integer_labels",
    "weight_values",
]


#: Values per batch at most: wide inputs get fewer rows per batch, so memory stays bounded.
BATCH_VALUES = 1 << 21

#: Bytes of read buffers for a Parquet file's columns together (each column has its own,
#: 64 KiB to 4 MiB): 200 float columns of 200,000 rows peaked at 365 MB in pyarrow's memory
#: pool with 4 MiB buffers, at 72 MB with 64 KiB ones.
PARQUET_BUFFERS = 64 << 20

#: The most memory that reading a row group of a Parquet file may take inside pyarrow, by
#: :func:`parquet_read_bytes`' estimate; past it the file is refused before it is read.
#: Peak RSS against the estimate (2-core machine, `crossentropy score`): 434 MiB for 244
#: (60 classes, one group of 300,000 rows), 458 for 271 (1,000 classes, 10,000 rows), 498 for
#: 204 (200 classes, groups of 33,000 rows), 555 for 328 and 594 for 364 (refused).
PARQUET_READ_BUDGET = 288 << 20


def parquet_buffer(columns: int) -> int:
    """The read buffer of each of ``columns`` Parquet columns (:data:`PARQUET_BUFFERS`)."""
    return min(1 << 22, max(1 << 16, PARQUET_BUFFERS // max(columns, 1)))


@dataclass(frozen=True)
class Batch:
    """A validated batch of rows.

    Attributes
    ----------
    y : numpy.ndarray
        int64 class index of each row, in ``0 .. C-1``.
    proba : numpy.ndarray
        Probabilities, shape ``(n, C)``: float32 when stored so, float64 otherwise. Their
        range is checked where they are scored, by the rule of ``metrics``
        (:class:`~crossentropy.metrics.ScoreAccumulator`), which the engine names by file, row
        and column.
    rows : numpy.ndarray
        int64 1-based data row of each row in the (submission) file.
    ids : numpy.ndarray, pyarrow.Array or None
        The id of each row, in pair mode or from a table's id column (an Arrow array of text
        ids when they are joined by their integer keys and only name rows: read one with
        :func:`id_value`).
    done : float
        Fraction of the input read so far (for progress bars), in ``[0, 1]``.
    positions : numpy.ndarray or None
        Pair mode through a :class:`SolutionIndex`: each row's position in the index, for
        :func:`mark_seen`.
    solution_rows : numpy.ndarray or None
        Pair mode through a :class:`SolutionIndex`: each row's 1-based solution row.
    split : numpy.ndarray or None
        The value (text) of each row's split column (``Usage``), when one is named.
    path : str or None
        The file of the batch, for an input of several files.
    key_base : int
        The rows of the files before this one, in an input of several files: the batch's rows
        are then rows ``key_base + row`` of the whole input (:func:`paired_keys`).
    weight : numpy.ndarray or None
        float64 sample weight of each row (finite, >= 0), when a weight column is named.
    """

    y: np.ndarray
    proba: np.ndarray
    rows: np.ndarray
    ids: Any
    done: float
    positions: np.ndarray | None = None
    solution_rows: np.ndarray | None = None
    split: np.ndarray | None = None
    path: str | None = None
    key_base: int = 0
    weight: np.ndarray | None = None


def paired_keys(batch: Batch, pair: bool) -> np.ndarray:
    """Which example each row of a batch is, for comparing prediction sets (the paired
    bootstrap's keys): in pair mode (``pair``) the row's solution row (the submission's row
    when both files are in the same order); for a table with an id column a 64-bit hash of the
    id's text (rows of any order pair by id); else the row's position in the whole input, from
    1 (a file, or the files of a folder in turn)."""
    if pair:
        return batch.rows if batch.solution_rows is None else batch.solution_rows
    if batch.ids is not None:
        return id_hashes(batch.ids)
    return batch.rows % PART_STRIDE + batch.key_base


#: The base of :func:`id_hashes`' polynomial (odd: every power is odd, none is 0).
_ID_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def id_hashes(ids: Any) -> np.ndarray:
    """A 64-bit hash of each id's text (integers by their decimal writing), the same in every
    process: splitmix64 of the text's polynomial hash ``sum_j (b_j + 1) P^j`` (bytes ``b_j``,
    an odd 64-bit ``P``, wrapping) mixed with its length."""
    import pyarrow as pa  # type: ignore[import-untyped]

    from crossentropy.metrics._bootstrap import splitmix64

    values = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids)
    text = plain_strings(values).cast(pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    ends, raw = _string_bytes(text)
    starts, lengths = ends[:-1] - ends[0], np.diff(ends)
    position = np.arange(raw.size, dtype=np.int64) - np.repeat(starts, lengths)
    powers = np.cumprod(np.full(int(lengths.max(initial=0)), _ID_HASH_BASE, dtype=np.uint64))
    terms = powers[position] * (raw.astype(np.uint64) + np.uint64(1))
    sums = np.zeros(len(text), dtype=np.uint64)
    filled = lengths > 0
    if raw.size:
        sums[filled] = np.add.reduceat(terms, starts[filled])
    return splitmix64(sums ^ splitmix64(lengths.astype(np.uint64)))


class Labels:
    """Maps label values to the indices of named classes (vectorised, with pyarrow): text by
    its name; integers, and floats and booleans that write an integer, by value where every
    class name writes a distinct integer, with or without a fraction of zeros (``1``, ``1.0``
    and ``True`` are then the class ``"1"``, or ``"1.0"``); else booleans by
    ``"True"``/``"False"`` and other values by their text.

    Parameters
    ----------
    classes : sequence of str
        The class names, in column order.
    hint : str, default ""
        Added to the message of an unknown label (how to name the classes).
    """

    def __init__(self, classes: Sequence[str], hint: str = "") -> None:
        import pyarrow as pa

        self.classes = list(classes)
        self.hint = hint
        self.text = pa.array(self.classes, pa.string())
        # by value where every name writes a distinct int64; else by text (beyond int64 too)
        ints = class_integers(self.classes)
        self.ints = None if ints is None else pa.array(ints, pa.int64())

    @classmethod
    def of(cls, src: Source) -> Labels:
        """The labels of a resolved input's classes; where the classes were not named, an
        unknown label says how to name them."""
        hint = ""
        if not src.classes_named and src.binary:
            hint = (
                "; one probability column (or a vector) gives the second of two classes: name "
                "them, negative first, with classes (--classes)"
            )
        elif not src.classes_named and (src.mode == "arrays" or src.path == IN_MEMORY_ARRAY):
            hint = (
                "; the classes are the probability columns' positions, 0 to "
                f"{len(src.classes) - 1}: name each column's class, in order, with classes "
                "(--classes)"
            )
        elif not src.classes_named:
            hint = (
                "; the classes were taken from the probability columns' names: name each "
                "column's class, in order, with classes (--classes)"
            )
            head = os.path.commonprefix(list(src.classes))  # noqa: RUF071 (text, not paths)
            head = head[: max(head.rfind(c) for c in "_-.: ") + 1]  # up to a separator
            if head and list(src.classes) == list(src.proba_columns):  # names taken whole
                hint = (
                    "; the classes were taken from the probability columns' names: "
                    f"proba={head + '*'!r} (--proba-cols {head + '*'!r}) takes what follows "
                    f"{head!r} as the class, or name each column's class, in order, with "
                    "classes (--classes)"
                )
        return cls(src.classes, hint)

    def indices(self, values: Any, path: str, column: str, first_row: int) -> np.ndarray:
        """int64 class indices of ``values`` (a pyarrow array); raise on a missing/unknown label."""
        import pyarrow as pa
        import pyarrow.compute as pc  # type: ignore[import-untyped]

        values = bytes_as_text(plain_strings(values), path, column, "labels", first_row)
        typ = values.type
        if pa.types.is_boolean(typ):  # the integer classes 0/1, else False/True by name
            if self.ints is not None and "False" not in self.classes and "True" not in self.classes:
                values, typ = values.cast(pa.int64()), pa.int64()
            else:
                values, typ = pc.if_else(values, "True", "False"), pa.string()
        if pa.types.is_floating(typ):
            as_float = values.to_numpy(zero_copy_only=False)
            nan = np.flatnonzero(np.isnan(as_float) & ~values.is_null().to_numpy(False))
            if nan.size:
                row = first_row + int(nan[0])
                raise InputError(path, "label NaN (a missing label)", row=row, column=column)
            integral = np.isfinite(as_float) & (np.floor(as_float) == as_float)
            if self.ints is not None and bool(np.all(integral | values.is_null().to_numpy(False))):
                values, typ = pc.cast(values, pa.int64(), safe=False), pa.int64()
        if typ == pa.uint64() and self.ints is not None and len(values) > values.null_count:
            # (narrower ones fit int64; without int64 names, labels are matched by text)
            big = np.flatnonzero(
                pc.fill_null(pc.greater(values, pa.scalar(2**63 - 1, typ)), False).to_numpy(False)
            )
            if big.size:  # beyond int64: no class name is that large
                i = int(big[0])
                raise InputError(
                    path,
                    f"label {values[i].as_py()} is not among the classes "
                    f"({name_list(self.classes)}){self.hint}",
                    row=first_row + i,
                    column=column,
                )
        if pa.types.is_integer(typ) and self.ints is not None:
            idx = pc.index_in(values.cast(pa.int64()), value_set=self.ints)
        else:
            if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
                if not (
                    pa.types.is_integer(typ)
                    or pa.types.is_floating(typ)
                    or pa.types.is_decimal(typ)
                    or pa.types.is_null(typ)
                ):
                    raise InputError(
                        path,
                        f"labels must be text, integers or booleans; the column holds {typ}",
                        row=first_row,
                        column=column,
                    )
                values = values.cast(pa.string())
            idx = pc.index_in(values, value_set=self.text)
            if self.ints is not None and idx.null_count > values.null_count:
                idx = self._numeric_text(values, idx)
        out: np.ndarray = pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        bad = np.flatnonzero(out < 0)
        if bad.size:
            i = int(bad[0])
            value = values[i].as_py()
            if value is None or value == "":
                raise InputError(path, "missing label", row=first_row + i, column=column)
            raise InputError(
                path,
                f"label {shorten(value)} is not among the classes ({name_list(self.classes)})"
                + self.hint,
                row=first_row + i,
                column=column,
            )
        return out

    def _numeric_text(self, values: Any, idx: Any) -> Any:
        """``idx`` with the text labels that are no class name but write an integer class
        exactly, given that class: an integer with or without a fraction of zeros, a sign and
        white space around (``"2.0"``, ``" +2 "``), or ``True``/``False`` as pandas writes
        booleans (1 and 0, where no class is named so). The others stay unknown: ``"2.5"``,
        and ``"1e0"`` or ``"1.0000000000000001"``, which only a rounding would make integers."""
        import pyarrow as pa
        import pyarrow.compute as pc

        miss = np.flatnonzero(pc.is_null(idx).to_numpy(zero_copy_only=False))
        text = pc.utf8_trim_whitespace(values.take(pa.array(miss)))
        if "True" not in self.classes and "False" not in self.classes:
            text = pc.if_else(pc.equal(text, "True"), "1", text)
            text = pc.if_else(pc.equal(text, "False"), "0", text)
        whole = pc.fill_null(pc.match_substring_regex(text, _INTEGER_TEXT), False)
        digits = pc.if_else(whole, pc.replace_substring_regex(text, _INTEGER_TEXT, r"\1\2"), "0")
        try:
            number = pc.cast(digits, pa.int64())
        except pa.ArrowInvalid:  # beyond int64: no class is that large
            number = pa.array([_int64(t) for t in digits.to_pylist()], pa.int64())
        found = pc.index_in(number, self.ints)
        found = pc.if_else(whole, found, pa.nulls(len(miss), found.type))
        out = idx.to_numpy(zero_copy_only=False).copy()
        out[miss] = pc.fill_null(found, -1).to_numpy(zero_copy_only=False)
        return pa.array(out, mask=out < 0)


#: An integer as text, with a fraction of zeros at most: groups 1 and 2 are its sign and digits.
_INTEGER_TEXT = r"^(?:\+|(-))?([0-9]+)(?:\.0*)?$"


def class_integers(names: Sequence[str]) -> list[int] | None:
    """The int64 values the class names write where every name writes a distinct one (``1``,
    ``1.0``, ``-2``), else None: integer labels then match the classes by value."""
    values: list[int] = []
    for name in names:
        value = _int64(name) if INTEGRAL_NAME.fullmatch(name.strip()) else None
        if value is None:
            return None
        values.append(value)
    return values if len(set(values)) == len(values) else None


def positional_labels(kind: str, names: Sequence[str]) -> bool:
    """Whether labels of NumPy dtype kind ``kind`` are the class columns' positions: integers
    (and booleans) are, where the class names are not distinct integers
    (:func:`class_integers`); text and floats never are."""
    return kind in "biu" and class_integers(names) is None


def unclear_integer_labels(names: Sequence[str]) -> str | None:
    """Integer labels index the columns where no class name is an integer; the message where
    some names are integers and some text (a label 0 could be a position or a name), else
    None."""
    ints = [bool(INTEGRAL_NAME.fullmatch(n.strip())) for n in names]
    if not any(ints) or all(ints):
        return None
    return (
        f"integer labels with class names of integers and of text ({', '.join(map(repr, names))})"
        " are unclear (positions of the columns, or names?): name every class as text, or every "
        "class as an integer"
    )


def _int64(text: str) -> int | None:
    """The int64 value of a decimal integer text (:data:`INTEGRAL_NAME`), None beyond int64."""
    value = int(text.strip().split(".")[0])
    return value if -(2**63) <= value < 2**63 else None


def plain_strings(values: Any) -> Any:
    """A pyarrow array with categories decoded and text views (polars' newest Arrow output)
    as plain strings: the types the readers' rules are written for."""
    import pyarrow as pa

    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string_view(values.type):
        values = values.cast(pa.large_string())
    return values


def stored_float(dtype: Any) -> Any:
    """The floating dtype probabilities are read in: float32 and float16 as stored (so a
    float32 file is checked and clipped at float32's precision, as ``metrics.log_loss`` treats
    the same array; float16 is computed in float32 by the accumulator, its row sums held to
    float16's rounding, as ``metrics.log_loss`` does), float64 otherwise (integers, booleans,
    text, decimals)."""
    kind = np.dtype(dtype)
    return kind.type if kind in (np.float16, np.float32) else np.float64


def to_float(
    values: Any,
    path: str,
    column: str,
    first_row: int,
    what: tuple[str, str] = ("probability", "probabilities"),
) -> np.ndarray:
    """A pyarrow column as a float NumPy array (:func:`stored_float`), raising on missing or
    non-numeric cells (``what``: the value's name, singular and plural, for the message)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = plain_strings(values)
    if values.null_count:
        i = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(path, f"missing {what[0]}", row=first_row + i, column=column)
    typ = values.type
    if pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        arr: np.ndarray = values.to_numpy(zero_copy_only=False)
        return arr.astype(stored_float(arr.dtype), copy=False)
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_decimal(typ)):
        raise InputError(
            path,
            f"{what[1]} must be numbers; the column holds {typ}",
            row=first_row,
            column=column,
        )
    try:
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]
    except pa.ArrowInvalid:
        pass
    # " 0.5" is a number, as pyarrow's CSV reader takes it; a line break in a quoted cell is not
    trimmed = pc.utf8_trim(values.cast(pa.string()), characters=" \t")
    try:
        return pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]
    except pa.ArrowInvalid:
        pass
    lo, hi = 0, len(trimmed)  # the first cell pyarrow cannot read lies in [lo, hi): bisect
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(trimmed.slice(lo, mid - lo), pa.float64())
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    cell = values[lo].as_py()
    fault = f"missing {what[0]}" if str(cell).strip() == "" else f"{cell!r} is not a number"
    raise InputError(path, fault, row=first_row + lo, column=column)


def weight_values(values: Any, path: str, column: str, first_row: int) -> np.ndarray:
    """A column of sample weights as float64: a missing cell, text that is not a number, and a
    weight that is not finite and >= 0 (NaN, inf, negative) are errors at their row."""
    from crossentropy.metrics._calibration import first_bad_weight

    w = to_float(values, path, column, first_row, ("sample weight", "sample weights"))
    w = w.astype(np.float64, copy=False)
    bad = first_bad_weight(w)
    if bad is not None:
        raise InputError(
            path,
            f"sample weight {plain(w[bad])!r} is not a finite number >= 0",
            row=first_row + bad,
            column=column,
        )
    return w


def prob_matrix(columns: list[np.ndarray], binary: bool) -> np.ndarray:
    if binary:  # the first class's probability 1 - p computed in float32 at least
        p = columns[0]
        p = p.astype(np.float32) if p.dtype == np.float16 else p
        return np.stack([1.0 - p, p], axis=1)
    return np.stack(columns, axis=1)


def csv_options(
    columns: Sequence[str],
    float_columns: Sequence[str],
    text_columns: Sequence[str],
    block: int = 1 << 22,
    sep: str = ",",
) -> tuple[Any, Any, Any]:
    import pyarrow as pa
    import pyarrow.csv as pcsv  # type: ignore[import-untyped]

    types = {c: pa.string() for c in text_columns}
    types.update({c: pa.float64() for c in float_columns})
    convert = pcsv.ConvertOptions(
        include_columns=list(columns),
        column_types=types,
        null_values=[""],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    # Quoted values may hold line breaks (no measurable cost on a 130 MB file).
    parse = pcsv.ParseOptions(delimiter=sep, newlines_in_values=True)
    return pcsv.ReadOptions(block_size=block), parse, convert


#: The largest CSV block: a row longer than two blocks of this size is refused.
MAX_CSV_BLOCK = 1 << 26


def _csv_block(path: str) -> int:
    """pyarrow's first CSV block size for ``path``: 1 MiB, or twice the header, at most
    :data:`MAX_CSV_BLOCK`. A row must fit in two blocks: where one does not, the reading goes
    on with larger blocks (:func:`_record_batches`). (On 160 rows of 50,000 classes, blocks of
    eight headers took 1.9 GB and 16.7 s, of two headers 1.1 GB and 7.7 s.)

    pyarrow's streaming CSV reader parses about 40 blocks ahead of a slower reader (measured:
    its memory pool peaked at 40, 161 and 491 MB with blocks of 1, 4 and 16 MiB on an 8M-row
    file), so the block sets most of the reading's memory; the batches are joined again to
    ``batch_rows`` rows (:func:`_rebatched`)."""
    return max(1 << 20, min(MAX_CSV_BLOCK, 2 * len(csv_header_bytes(path))))


def _skipped(batches: Iterator[Any], rows: int) -> Iterator[Any]:
    """Record batches with their first ``rows`` rows left out."""
    for rb in batches:
        if rows >= rb.num_rows:
            rows -= rb.num_rows
            continue
        yield rb.slice(rows) if rows else rb
        rows = 0


#: At most about this many column arrays held in pieces of CSV blocks before a batch is made
#: of them (each holds a few buffers; 32,767 columns in 100 pieces took over a gigabyte).
HELD_ARRAYS = 1 << 17


def _rebatched(batches: Iterator[Any], rows: int) -> Iterator[Any]:
    """Record batches of ``rows`` rows (the last one shorter, none empty) from batches of any
    size, in order: small CSV blocks, large batches to score. Only a batch made of several
    pieces is copied (slices are views)."""
    import pyarrow as pa

    held: list[Any] = []
    count = 0
    for rb in batches:
        if rb.num_rows:
            held.append(rb)
            count += rb.num_rows
        if count < rows and len(held) * rb.num_columns >= HELD_ARRAYS:
            # very wide rows: many pieces of a few rows each, every column an array of its
            # own in each piece; a shorter batch now rather than more pieces held
            yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]
            held, count = [], 0
        while count >= rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            held = table.slice(rows).to_batches()
            count -= rows
    if count:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]


def parquet_read_bytes(meta: Any, columns: Sequence[str], group: int) -> int:
    """An estimate of the memory that reading ``columns`` of row group ``group`` takes inside
    pyarrow: each column's read buffer (:func:`parquet_buffer`), and its dictionary (about 2.5
    times its encoded size: the page as read, decompressed and decoded) and a data page (half
    a MiB at most), held while the row group's rows are read. pyarrow's memory pool peaked at
    2.2 and 0.54 MiB a column for 1 MiB and 240 KiB dictionaries (200 columns of 200,000
    rows, 1,000 columns of 30,000), against estimates of 3.0 and 0.63 MiB without buffers."""
    rg = meta.row_group(group)
    wanted, total = set(columns), 0.0
    for j in range(rg.num_columns):
        col = rg.column(j)
        if col.path_in_schema not in wanted:
            continue
        stored, plain = max(col.total_compressed_size, 1), col.total_uncompressed_size
        dictionary = 0.0
        if col.has_dictionary_page and col.dictionary_page_offset is not None:
            pages = max(col.data_page_offset - col.dictionary_page_offset, 0)
            dictionary = pages * plain / stored
        total += 2.5 * dictionary + min(plain - dictionary, 1 << 19)
    return int(total) + len(wanted) * parquet_buffer(len(wanted))


def check_parquet_layout(
    path: str, meta: Any, columns: Sequence[str], groups: Sequence[int] | None
) -> None:
    """Refuse a Parquet file whose row groups are too wide and long to read within the memory
    bound (:data:`PARQUET_READ_BUDGET`, by :func:`parquet_read_bytes`), saying how to write it
    so that it reads: in smaller row groups (each column's dictionary and pages are held for
    a whole row group, and pyarrow's writers make them up to a MiB each)."""
    for g in range(meta.num_row_groups) if groups is None else groups:
        if 2.5 * meta.row_group(g).total_byte_size + PARQUET_BUFFERS <= PARQUET_READ_BUDGET:
            continue  # a bound on the estimate, without a look at each column
        need = parquet_read_bytes(meta, columns, g)
        if need <= PARQUET_READ_BUDGET:
            continue
        # rows that fit in half the budget, at this group's cost a row or at 20 bytes a value
        # (a float64 column's dictionary and indices, where a group's cost is lower for a
        # dictionary that reached its size limit), fewer than the group's
        rows = meta.row_group(g).num_rows
        buffers = len(set(columns)) * parquet_buffer(len(set(columns)))
        per_row = max((need - buffers) / max(rows, 1), 20.0 * len(columns))
        fit = int(min((PARQUET_READ_BUDGET // 2 - buffers) / per_row, rows - 1))
        fit = max(fit - fit % 10 ** max(len(str(fit)) - 2, 0), 1)  # two significant digits
        raise InputError(
            path,
            f"row group {g} ({rows:,} rows × {len(columns):,} columns) "
            f"would take about {need >> 20:,} MiB inside pyarrow to read (each column's "
            f"dictionary and page are held for a whole row group), over this reader's "
            f"{PARQUET_READ_BUDGET >> 20} MiB; write the file with smaller row groups, e.g. "
            f"pyarrow.parquet.write_table(table, path, row_group_size={fit})",
        )


def batch_rows_for(batch_rows: int, columns: int) -> int:
    """Rows per batch: ``batch_rows``, fewer for wide inputs (at most :data:`BATCH_VALUES`
    values a batch)."""
    return max(1, min(batch_rows, BATCH_VALUES // max(columns, 1)))


class _Progress:
    """Fraction of a file read, from the position of the underlying byte stream."""

    def __init__(self, raw: Any, start: int, stop: int) -> None:
        self.raw, self.start, self.span = raw, start, max(stop - start, 1)

    def __call__(self) -> float:
        try:
            return min(max(float(self.raw.tell() - self.start) / self.span, 0.0), 1.0)
        except (OSError, ValueError):
            return 0.0


def _record_batches(
    path: str,
    fmt: Format,
    unit: Unit,
    columns: Sequence[str],
    float_columns: Sequence[str],
    text_columns: Sequence[str],
    batch_rows: int,
    table: Any = None,
) -> Iterator[tuple[Any, int, float]]:
    """Record batches of at most ``batch_rows`` rows, with their first data row and progress
    (of the file, or of the in-memory ``table``).

    For CSV, ``float_columns`` are parsed as float64 and ``text_columns`` as strings (pass a
    probability column under ``text_columns`` to diagnose a conversion error cell by cell).
    """
    import pyarrow as pa

    batch_rows = batch_rows_for(batch_rows, len(columns))

    if isinstance(table, pa.RecordBatchReader):  # a stream, read once: progress unknown
        row = 1
        while True:
            try:
                rb = table.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:  # a file of the stream, read now
                raise InputError(path, f"cannot read: {first_line(exc)}", row=row) from None
            part = rb.select(list(columns))
            for off in range(0, part.num_rows, batch_rows):
                piece = part.slice(off, batch_rows)
                yield piece, row, 0.0
                row += piece.num_rows
    if table is not None:  # in memory: rows [start, stop) of the table, zero-copy slices
        stop = table.num_rows if unit.kind != "rows" else unit.stop
        start = unit.start if unit.kind == "rows" else 0
        part = table.select(list(columns))
        for lo in range(start, stop, batch_rows):
            hi = min(lo + batch_rows, stop)
            yield (
                part.slice(lo, hi - lo).combine_chunks().to_batches()[0],
                lo + 1,
                hi / max(stop, 1),
            )
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            # No pre-buffering: it caches every row group's column chunks, i.e. the whole file
            # when iterating over all of them; a buffered stream keeps memory to one batch.
            pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=parquet_buffer(len(columns)))
            groups = list(unit.row_groups) if unit.kind == "row_groups" else None
            check_parquet_layout(path, pf.metadata, columns, groups)
            total = (
                sum(pf.metadata.row_group(g).num_rows for g in groups)
                if groups is not None
                else pf.metadata.num_rows
            )
            it = pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=list(columns))
            row, done = unit.first_row, 0
            for rb in it:
                done += rb.num_rows
                yield rb, row, done / max(total, 1)
                row += rb.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InputError(path, f"cannot read as Parquet: {first_line(exc)}") from None
        return

    block, done_rows = _csv_block(path), 0
    while True:
        try:
            for piece in _csv_batches(
                path, unit, columns, float_columns, text_columns, batch_rows, block, done_rows
            ):
                done_rows += piece[0].num_rows
                yield piece
            return
        except _CsvFailure as exc:
            if "straddling" not in str(exc) or block >= MAX_CSV_BLOCK:
                raise
            # a row longer than two blocks: read on with blocks 8x larger, from the next row
            block = min(8 * block, MAX_CSV_BLOCK)


def _csv_batches(
    path: str,
    unit: Unit,
    columns: Sequence[str],
    float_columns: Sequence[str],
    text_columns: Sequence[str],
    batch_rows: int,
    block: int,
    skip: int,
) -> Iterator[tuple[Any, int, float]]:
    """:func:`_record_batches` of a CSV unit read in blocks of ``block`` bytes, its first
    ``skip`` data rows left out."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    read, parse, convert = csv_options(columns, float_columns, text_columns, block, delimiter(path))
    compressed = gzipped(path)
    try:
        raw = pa.OSFile(path, "rb")
    except OSError as exc:
        raise InputError(path, f"cannot open: {first_line(exc)}") from None
    try:
        if unit.kind == "bytes":
            raw.seek(unit.start)
            data = csv_header_bytes(path) + raw.read(unit.stop - unit.start)
            stream: Any = pa.BufferReader(pa.py_buffer(data))
            progress = _Progress(stream, 0, len(data))
        else:
            stream = pa.CompressedInputStream(raw, "gzip") if compressed else raw
            progress = _Progress(raw, 0, os.path.getsize(path))
        try:
            reader = pcsv.open_csv(
                stream, read_options=read, parse_options=parse, convert_options=convert
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):  # or a header line without its line break
                empty = os.path.getsize(path) == 0
                raise InputError(
                    path, "empty file (no header line)" if empty else "no data rows"
                ) from None
            raise
        row = unit.first_row + skip
        for part in _rebatched(_skipped(reader, skip), batch_rows):
            yield part, row, progress()
            row += part.num_rows
    except pa.ArrowInvalid as exc:
        raise _CsvFailure(str(exc)) from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"cannot read as CSV: {first_line(exc)}") from None
    finally:
        raw.close()


class _CsvFailure(Exception):
    """pyarrow could not parse or convert a CSV block (the position is found afterwards)."""


def _diagnose_csv(
    path: str, unit: Unit, columns: Sequence[str], float_columns: Sequence[str], message: str
) -> InputError:
    """Find the row and column behind a pyarrow CSV error by re-reading the unit."""
    expected = re.search(r"Expected (\d+) columns, got (\d+)", message)
    if expected:
        return _find_ragged_row(path, unit, int(expected.group(1)))
    if "straddling" in message:
        return InputError(
            path,
            f"a row is longer than two CSV blocks of {MAX_CSV_BLOCK >> 20} MiB; the file is "
            "not read further",
            row=_long_row(path, unit, 2 * MAX_CSV_BLOCK),
        )
    text_columns = list(columns)
    try:
        for rb, row, _ in _record_batches(path, "csv", unit, columns, (), text_columns, 1 << 16):
            for col in float_columns:
                to_float(rb.column(col), path, col, row)
    except InputError as exc:
        return exc
    except _CsvFailure:
        pass
    # a byte that is not UTF-8 (pyarrow's "invalid UTF8" in a text column, a conversion
    # error in a number's)
    found = _find_undecoded(path, unit, columns)
    return found or InputError(path, f"cannot read as CSV: {message.splitlines()[0]}")


_FIELD_LIMIT_LOCK = threading.Lock()
_field_limit_users = [0, 0]  # [readers inside, the limit to restore after the last]


@contextlib.contextmanager
def _long_csv_fields() -> Iterator[None]:
    """Python's csv reads fields as long as pyarrow does while inside (its default stops at
    128 KiB). The limit is the process's: raised by the first reader in, restored by the last
    one out, so threads (the Dask engine's in-process workers) leave it as they found it."""
    with _FIELD_LIMIT_LOCK:
        if _field_limit_users[0] == 0:
            _field_limit_users[1] = csv.field_size_limit(2 * MAX_CSV_BLOCK)
        _field_limit_users[0] += 1
    try:
        yield
    finally:
        with _FIELD_LIMIT_LOCK:
            _field_limit_users[0] -= 1
            if _field_limit_users[0] == 0:
                csv.field_size_limit(_field_limit_users[1])


def _find_undecoded(path: str, unit: Unit, columns: Sequence[str]) -> InputError | None:
    """The first cell of the unit's ``columns`` (those read) that is not UTF-8 text, as an
    error naming its row and column; None if there is none."""
    with _long_csv_fields(), open_text(path, errors="surrogateescape") as fh:
        reader = csv.reader(fh, delimiter=delimiter(path))
        header = next(reader, [])
        read = [j for j, name in enumerate(header) if name in set(columns)]
        row = 0
        for fields in reader:
            if not fields:
                continue
            row += 1
            if row < unit.first_row:
                continue
            for j in read:
                bad = first_undecoded(fields[j]) if j < len(fields) else None
                if bad is not None:
                    return InputError(
                        path, f"byte 0x{bad:02x} is not UTF-8 text", row=row, column=header[j]
                    )
    return None


def _long_row(path: str, unit: Unit, limit: int) -> int | None:
    """The number of the first data row of more than ``limit`` bytes (line breaks within
    quoted fields are in their row; blank lines are no rows, as for Python's csv), or None,
    read in 16 MiB pieces: a row that never ends (an unclosed quote) is found once ``limit``
    bytes of it are read. A quote opens a quoted field at the start of a field only (``12" tv``
    is text), as pyarrow and Python's csv read it."""
    opener: Any = gzip.open if gzipped(path) else open
    sep, quote, newline, ret = ord(delimiter(path)), ord('"'), ord("\n"), ord("\r")
    rows = -1  # the header is row 0
    start, offset, quoted = 0, 0, False  # the open row's first byte; bytes read; in quotes
    previous, closed_at = newline, -2  # the byte before the piece; where a quote last closed
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            data = np.frombuffer(chunk, np.uint8)
            toggles, state = [], quoted
            for q in np.flatnonzero(data == quote).tolist():
                before = int(data[q - 1]) if q else previous
                at = offset + q
                if state or before in (sep, newline, ret) or closed_at == at - 1:
                    toggles.append(at)  # closes, opens a field, or the second of a ""
                    closed_at = at if state else -2
                    state = not state
            breaks = np.flatnonzero(data == newline)
            inside = (np.searchsorted(np.asarray(toggles, np.int64), offset + breaks) + quoted) % 2
            ends = offset + breaks[inside == 0]  # line breaks outside quotes
            firsts = np.concatenate(([start], ends[:-1] + 1))
            lengths = ends - firsts
            first = np.where(firsts >= offset, data[np.maximum(firsts - offset, 0)], previous)
            blank = (lengths == 0) | ((lengths == 1) & (first == ret))
            numbers = rows + np.cumsum(~blank)
            long = np.flatnonzero(lengths > limit)
            if long.size:
                row = int(numbers[long[0]])
                return row if row >= unit.first_row else None
            if ends.size:
                rows, start = int(numbers[-1]), int(ends[-1]) + 1
            quoted, previous = state, int(data[-1])
            offset += data.size
            if offset - start > limit:  # the open row is already too long
                row = rows + 1
                return row if row >= unit.first_row else None
    return None


def _find_ragged_row(path: str, unit: Unit, n_fields: int) -> InputError:
    with _long_csv_fields(), open_text(path, errors="surrogateescape") as fh:
        reader = csv.reader(fh, delimiter=delimiter(path))
        next(reader, None)
        row = 0
        skip = unit.first_row - 1
        for fields in reader:
            if not fields:
                continue
            row += 1
            if row <= skip:
                continue
            if len(fields) != n_fields:
                found = f"expected {n_fields} fields, found {len(fields)}"
                return InputError(path, found, row=row)
    return InputError(path, f"a row does not have {n_fields} fields")


def arrow_batches(
    path: str,
    fmt: Format,
    unit: Unit,
    columns: Sequence[str],
    float_columns: Sequence[str],
    text_columns: Sequence[str],
    batch_rows: int,
    table: Any = None,
) -> Iterator[tuple[Any, int, float]]:
    """:func:`_record_batches`, turning a pyarrow CSV error into a positioned ``InputError``."""
    try:
        yield from _record_batches(
            path, fmt, unit, columns, float_columns, text_columns, batch_rows, table
        )
    except _CsvFailure as exc:
        raise _diagnose_csv(path, unit, columns, float_columns, str(exc)) from None


def id_values(values: Any, kind: str, path: str, column: str, first_row: int) -> Any:
    """A batch's ids, checked (none missing or empty): int64 NumPy values (``kind="int"``),
    else pyarrow strings (the join turns them into NumPy text of a bounded width,
    :class:`~crossentropy.scoring._join.SolutionIndex`; elsewhere they only name rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = single_values(values, path, column, "ids", first_row)
    if values.null_count:
        i = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(path, "missing id", row=first_row + i, column=column)
    if kind == "int":
        return values.cast(pa.int64()).to_numpy()
    text = values.cast(pa.string())
    empty = np.flatnonzero(pc.equal(pc.binary_length(text), 0).to_numpy(zero_copy_only=False))
    if empty.size:
        raise InputError(path, "missing id", row=first_row + int(empty[0]), column=column)
    return text


def id_value(ids: Any, i: int) -> Any:
    """The id of row ``i`` as a Python value: of a batch's ids (NumPy integers or Arrow
    strings) or of a solution index's (NumPy integers, UTF-8 bytes or strings)."""
    value = plain(ids[i])
    return value.decode("utf-8") if isinstance(value, bytes) else value


def id_keys(values: Any) -> np.ndarray | None:
    """int64 keys of a batch of text ids (a pyarrow array) when every id is the canonical
    writing of an int64 (the text ``str(int(s))``: no leading zero, no ``+``, no space), else
    None. Equal keys then mean equal text; integers sort and search 3-5x faster than text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = plain_strings(values)
    if values.null_count or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return None
    try:
        keys = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # pyarrow also reads hexadecimal ("0xF4240") and leading zeros ("007"): equal keys mean
    # equal text only for decimal writings without a leading zero
    return keys if _canonical_decimal(values) else None


def _string_bytes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ``len + 1`` end offsets (int64, into the array's data buffer) of a (large) string
    array and the bytes they span, read from its buffers without a copy."""
    import pyarrow as pa

    offsets_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets_buffer, data_buffer = values.buffers()[1:3]
    if offsets_buffer is None:  # an empty array may have none
        return np.zeros(1, np.int64), np.zeros(0, np.uint8)
    ends = np.frombuffer(offsets_buffer, dtype=offsets_type)
    ends = ends[values.offset : values.offset + len(values) + 1].astype(np.int64)
    if data_buffer is None or len(values) == 0:
        return ends, np.zeros(0, np.uint8)
    return ends, np.frombuffer(data_buffer, dtype=np.uint8)[int(ends[0]) : int(ends[-1])]


def _canonical_decimal(values: Any) -> bool:
    """Whether the texts of a (large) string array, each already read as an int64, are all the
    canonical writing ``str(int(s))`` of their integer, from the array's buffers: every byte
    between '-' and '9' ('+' and white space lie below '-', hexadecimal letters above '9'), and
    no leading zero ("0" itself aside; "-0" is not canonical)."""
    ends, data = _string_bytes(values)
    if not data.size or int(data.min()) < ord("-") or int(data.max()) > ord("9"):
        return not data.size
    starts = (ends[:-1] - ends[0]).astype(np.intp)
    first = data[starts]
    negative = first == ord("-")
    # every text parsed, so a "-" has a digit after it
    digit = np.where(negative, data[np.minimum(starts + 1, data.size - 1)], first)
    return not bool(np.any((digit == ord("0")) & (negative | (np.diff(ends) > 1))))


def single_values(values: Any, path: str, column: str, what: str, first_row: int) -> Any:
    """``values`` (decoded by :func:`plain_strings`, bytes as text) if they are single values
    (text, numbers, dates...), else an :class:`InputError` naming the column (a struct or a
    list has no one text to name a row or a group by) or the row of bytes that are not
    UTF-8."""
    import pyarrow as pa

    values = plain_strings(values)
    typ = values.type
    if pa.types.is_nested(typ):
        raise InputError(
            path,
            f"{what} must be text, integers or dates; the column holds {typ}",
            column=column,
        )
    return bytes_as_text(values, path, column, what, first_row)


def bytes_as_text(values: Any, path: str, column: str, what: str, first_row: int) -> Any:
    """A pyarrow array of bytes (Parquet's binary columns without a text annotation, as older
    writers store strings) as text, an :class:`InputError` naming the first row whose bytes
    are not UTF-8; other arrays as they are."""
    import pyarrow as pa

    typ = values.type
    binary = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)
    if not any(test(typ) for test in (*binary, pa.types.is_binary_view)):
        return values
    try:
        return values.cast(pa.large_string())
    except pa.ArrowInvalid:
        for i, raw in enumerate(values.to_pylist()):
            try:
                raw is None or raw.decode("utf-8")
            except UnicodeDecodeError:
                row = first_row + i
                raise InputError(
                    path, f"{what} must be UTF-8 text", row=row, column=column
                ) from None
        raise


def split_values(values: Any, path: str, column: str, first_row: int) -> np.ndarray:
    """A split column as text; a missing value (null, NaN or an empty text) is an error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = single_values(values, path, column, "split values", first_row)
    if pa.types.is_floating(values.type):  # NaN is a missing value too
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)
    text = pc.fill_null(values.cast(pa.string()), "").to_numpy(zero_copy_only=False).astype(str)
    empty = np.flatnonzero(text == "")
    if empty.size:
        row = first_row + int(empty[0])
        raise InputError(path, "missing value in the split column", row=row, column=column)
    return text  # type: ignore[no-any-return]


def _table_batches(src: Source, unit: Unit) -> Iterator[Batch]:
    import pyarrow as pa

    assert src.target is not None
    labels = Labels.of(src)
    cols = list(src.proba_columns)
    text = [src.target] + ([src.id_column] if src.id_column else [])
    text += [src.split_column] if src.split_column else []
    # weights read as text from a CSV: their errors are told by to_float's rules, by cell
    text += [src.weight_column] if src.weight_column else []
    for rb, row, done in arrow_batches(
        src.path, src.format, unit, [*text, *cols], cols, text, src.batch_rows, src.table
    ):
        y = labels.indices(rb.column(src.target), src.path, src.target, row)
        proba = prob_matrix([to_float(rb.column(c), src.path, c, row) for c in cols], False)
        n = rb.num_rows
        ids = None
        if src.id_column:  # integers stay integers (as a pair's Parquet ids); else text
            column = rb.column(src.id_column)
            typ = column.type
            whole = pa.types.is_integer(typ) and not pa.types.is_uint64(typ)
            ids = id_values(column, "int" if whole else "str", src.path, src.id_column, row)
        yield Batch(
            y,
            prob_matrix([proba[:, 0]], True) if src.binary else proba,
            np.arange(row, row + n, dtype=np.int64),
            ids,
            done,
            split=(
                split_values(rb.column(src.split_column), src.path, src.split_column, row)
                if src.split_column
                else None
            ),
            weight=(
                weight_values(rb.column(src.weight_column), src.path, src.weight_column, row)
                if src.weight_column
                else None
            ),
        )


def _array_batches(src: Source, unit: Unit) -> Iterator[Batch]:
    import pyarrow as pa

    labels = Labels.of(src)
    if src.format == "npz":
        with load_npz(src.path) as archive:
            proba_all = npz_array(src.path, archive, "y_proba")
            y_all = npz_array(src.path, archive, "y_true")
        y_path = src.path
    else:
        assert src.target_file is not None
        proba_all, y_all = load_npy(src.path), load_npy(src.target_file)
        y_path = src.target_file
    n = int(proba_all.shape[0])
    start, stop = (unit.start, unit.stop) if unit.kind == "rows" else (0, n)
    rows = batch_rows_for(src.batch_rows, len(src.proba_columns))
    for lo in range(start, stop, rows):
        hi = min(lo + rows, stop)
        row = lo + 1
        chunk = native(np.asarray(proba_all[lo:hi]))
        chunk = chunk.astype(stored_float(chunk.dtype), copy=False)
        if chunk.ndim == 1:
            chunk = chunk[:, None]
        yv = native(np.asarray(y_all[lo:hi]))
        if yv.dtype.kind == "f":
            nan = np.flatnonzero(np.isnan(yv))
            if nan.size:
                raise InputError(y_path, "label is NaN", row=row + int(nan[0]), column="y_true")
        if yv.dtype.kind not in "biufUS":
            raise InputError(y_path, f"y_true must hold numbers or strings; got dtype {yv.dtype}")
        if positional_labels(yv.dtype.kind, labels.classes):
            # Integer labels with non-integer class names: class indices into the columns.
            unclear = unclear_integer_labels(src.classes)
            if unclear is not None:
                raise InputError(y_path, unclear, column="y_true")
            y = yv.astype(np.int64)
            out = np.flatnonzero((y < 0) | (y >= len(src.classes)))
            if out.size:
                i = int(out[0])
                raise InputError(
                    y_path,
                    f"class index {int(y[i])} is out of range: there are {len(src.classes)} "
                    "classes (integer labels index the columns when the class names are not "
                    "integers)",
                    row=row + i,
                    column="y_true",
                )
        else:
            y = labels.indices(pa.array(yv), y_path, "y_true", row)
        proba = prob_matrix([chunk[:, 0]], True) if src.binary else chunk
        yield Batch(
            y,
            proba,
            np.arange(row, hi + 1, dtype=np.int64),
            None,
            (hi - start) / max(stop - start, 1),
        )


def iter_batches(src: Source, unit: Unit | None = None) -> Iterator[Batch]:
    """Validated batches of ``unit`` (default: the whole input) of a table or of NumPy arrays.

    A solution/submission pair is joined by :mod:`crossentropy.scoring._join`
    (:func:`~crossentropy.scoring._join.iter_ordered_pair`,
    :func:`~crossentropy.scoring._join.pair_batches`).
    """
    unit = unit or Unit()
    if src.mode == "table":
        yield from _table_batches(src, unit)
    elif src.mode == "arrays":
        yield from _array_batches(src, unit)
    else:
        raise ValueError("a solution/submission pair is read through crossentropy.scoring._join")


def part_batches(parts: Sequence[Source], unit: Unit | None = None) -> Iterator[Batch]:
    """The batches of several files in turn, their rows numbered ``part * PART_STRIDE +
    row`` (each file's data rows from 1), ``done`` over all the files."""
    import dataclasses

    base = 0  # the rows of the files before
    for i, part in enumerate(parts):
        count = 0
        for batch in iter_batches(part, unit):
            yield dataclasses.replace(
                batch,
                rows=batch.rows + i * PART_STRIDE,
                done=(i + batch.done) / len(parts),
                path=part.path,
                key_base=base,
            )
            count += batch.rows.shape[0]
        base += count
