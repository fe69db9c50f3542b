"""Reading predictions for :func:`crossentropy.scoring.score`: in batches, validated, with exact
positions.

The input layer of the scoring engine. It turns a file (CSV, TSV, Parquet, ``.npy``/``.npz``,
local or by URL), an in-memory pyarrow Table or stream, or a Kaggle-style pair of files
(solution + submission, joined on an id column) into a stream of :class:`Batch` objects — class
indices, a probability matrix (float32 as stored, float64 otherwise) and the 1-based data row
of each row — reading through pyarrow's streaming readers so memory stays bounded whatever the
file size. Every problem with the input raises :class:`InputError`, whose one-line message
names the file, the data row and the column; the probabilities' range is checked where they
are scored, by the rule of ``metrics``, and the engine names it the same way.

Everything a worker needs is in the picklable :class:`Source` and :class:`Unit` (a piece of the
file: Parquet row groups, a CSV byte range, ``.npy`` rows), so the Dask engine reads the pieces on
the workers. pyarrow is imported inside the functions, never at module import.

Conventions
-----------
* Data rows are numbered from 1; a CSV header line is not a data row and empty lines are skipped.
* Labels are matched as text against the class names; integer labels also match class names that
  are integers (``3`` matches the class ``"3"`` of a column ``p_3``); boolean labels match the
  classes ``"0"`` and ``"1"`` where the classes are integers (and not named False/True), else
  ``"False"`` and ``"True"``.
* CSV cells: an empty cell is a missing value; ``nan``, ``inf`` parse as numbers and are rejected as
  non-finite; nothing else is treated as missing.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import io
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "FORMATS",
    "Batch",
    "InputError",
    "NotAligned",
    "SolutionIndex",
    "Source",
    "Unit",
    "arrow_table",
    "detect_format",
    "is_url",
    "iter_batches",
    "iter_ordered_pair",
    "local_path",
    "mark_seen",
    "pa_stream",
    "resolve_source",
    "split_units",
    "url_stream",
]

Format = Literal["csv", "parquet", "npy", "npz", "arrow"]
#: The input formats, as ``--format`` names them.
FORMATS: tuple[Format, ...] = ("csv", "parquet", "npy", "npz")

_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".tsv.gz": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}
_GLOB_CHARS = "*?["
#: A CSV header longer than this is refused (an endless first line, a file that is not a CSV).
MAX_HEADER_CHARS = 1 << 24
#: Values per batch at most: wide inputs get fewer rows per batch, so memory stays bounded.
BATCH_VALUES = 1 << 23
_INT_RE = re.compile(r"[+-]?[0-9]+")


class InputError(ValueError):
    """Bad input: a one-line message naming the file, and where known the data row and column.

    Parameters
    ----------
    path : str
        The file at fault, as the user named it.
    message : str
        What is wrong (one line).
    row : int, optional
        1-based data row (the header is not a data row).
    column : str, optional
        Column name (or array and column index for NumPy inputs).
    """

    def __init__(
        self, path: str, message: str, row: int | None = None, column: str | None = None
    ) -> None:
        super().__init__(path, message, row, column)
        self.path = path
        self.message = " ".join(str(message).split())
        self.row = row
        self.column = column

    def __str__(self) -> str:
        where = [self.path] if self.path else []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class NotAligned(Exception):
    """The solution and the submission are not in the same id order (internal signal)."""


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

    @property
    def keys(self) -> np.ndarray:
        """Which example each row is: its solution row in pair mode (the submission's row
        when both files are in the same order), else its data row."""
        return self.rows if self.solution_rows is None else self.solution_rows


@dataclass(frozen=True)
class Source:
    """A resolved input: what to read and how; picklable, so workers can read it too.

    Attributes
    ----------
    mode : {"table", "pair", "arrays"}
        One table with a target column; a solution + submission pair; NumPy arrays.
    path : str
        The table, the submission, or the probability array (``.npy``/``.npz``).
    format : str
        Format of ``path``.
    classes : tuple of str
        Class names, in probability-column order.
    proba_columns : tuple of str
        Probability columns of ``path`` (for arrays: display names ``y_proba[:, j]``).
    binary : bool
        One probability column, read as P(``classes[1]``); the matrix is ``[1 - p, p]``.
    target : str or None
        Target column (of the table, or of the solution).
    id_column : str or None
        Id column (pair mode; in a single table, the ids shown for the worst rows).
    id_kind : {"int", "str"}
        How ids are compared: as 64-bit integers (both id columns integer) or as text.
    solution, solution_format : str or None
        The solution file and its format (pair mode).
    target_file : str or None
        ``.npy`` of labels for a ``.npy`` probability array.
    target_key, proba_key : str
        Array names inside an ``.npz``.
    batch_rows : int
        Rows per batch.
    n_rows : int or None
        Data rows of ``path`` when known without reading it (Parquet, NumPy, in memory).
    table : pyarrow.Table, pyarrow.RecordBatchReader or None
        The data itself, for an in-memory table or a stream of record batches (format
        ``"arrow"``; ``path`` is then a label such as ``"DataFrame"``).
    split_column : str or None
        A column of the table (of the solution, in pair mode) whose values split the rows
        (Kaggle's ``Usage``: ``Public`` / ``Private``); each split is also scored alone.
    classes_named : bool
        Whether the classes were named (``classes``, or stored in an ``.npz``) rather than taken
        from the columns' names (or ``"0"``, ``"1"`` for one column).
    """

    mode: Literal["table", "pair", "arrays"]
    path: str
    format: Format
    classes: tuple[str, ...]
    proba_columns: tuple[str, ...]
    binary: bool = False
    target: str | None = None
    id_column: str | None = None
    id_kind: Literal["int", "str"] = "str"
    solution: str | None = None
    solution_format: Format | None = None
    target_file: str | None = None
    target_key: str = "y_true"
    proba_key: str = "y_proba"
    batch_rows: int = 65536
    n_rows: int | None = None
    table: Any = None
    split_column: str | None = None
    classes_named: bool = False


@dataclass(frozen=True)
class Unit:
    """A piece of the (submission) file that one task reads.

    Attributes
    ----------
    kind : {"all", "row_groups", "bytes", "rows"}
        The whole file; Parquet row groups; a CSV byte range ``[start, stop)`` that begins and
        ends at line boundaries; NumPy rows ``[start, stop)``.
    first_row : int
        1-based data row of the unit's first row.
    row_groups : tuple of int
        Parquet row groups.
    start, stop : int
        Byte or row range.
    """

    kind: Literal["all", "row_groups", "bytes", "rows"] = "all"
    first_row: int = 1
    row_groups: tuple[int, ...] = ()
    start: int = 0
    stop: int = 0


# --------------------------------------------------------------------------- formats and columns


def _head(path: str, size: int = 8) -> bytes:
    """The first bytes of a file (its magic number), or an ``InputError``."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None


def detect_format(path: str, override: str | None = None) -> Format:
    """The format of ``path``: ``override``, else from the name's suffix, else from its bytes.

    Raises
    ------
    InputError
        The file is missing, is a directory, or its format is not recognised.
    """
    if not os.path.exists(path):
        raise InputError(path, "no such file")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, not a file")
    if not os.path.isfile(path):  # reading a FIFO or a device could block or never end
        raise InputError(path, "is not a regular file (a FIFO, a device or a socket)")
    if override is not None:
        if override not in FORMATS:
            raise InputError(path, f"unknown format {override!r}; use one of {', '.join(FORMATS)}")
        return FORMATS[FORMATS.index(override)]
    name = path.lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    head = _head(path)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    raise InputError(
        path,
        "unrecognised format (name it .csv, .tsv, .csv.gz, .parquet, .npy or .npz, or pass "
        "format (--format))",
    )


#: A URL: a scheme (a letter, then letters, digits, ``+``, ``-`` or ``.``) and ``://``.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(value: str) -> bool:
    """Whether ``value`` is a URL (``scheme://...``) rather than a path."""
    return bool(_URL.match(value))


def local_path(value: Any, name: str) -> str | None:
    """A path or URL argument as a local absolute path: ``file://`` URLs become their path;
    another URL (``s3://``, ``memory://``, ...) is a ``ValueError`` naming ``name`` (only the
    predictions are read through a URL); None stays None."""
    if value is None:
        return None
    text = os.fspath(value)
    if isinstance(text, str) and is_url(text):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        url = urlparse(text)
        if url.scheme.lower() != "file":
            raise ValueError(f"{name} must be a local file or a file:// URL; got {text!r}")
        if url.netloc not in ("", "localhost"):
            raise ValueError(
                f"{name}: a file:// URL names a local file (file:///path); got {text!r}"
            )
        text = url2pathname(url.path)
    return str(os.path.abspath(text))


def url_stream(url: str, fmt: str | None, batch_rows: int) -> Any:
    """The table a URL names (a file, or a folder of CSV or Parquet parts read in name order),
    as a pyarrow ``RecordBatchReader`` that reads it batch by batch.

    The file system is pyarrow's own for its schemes (``s3://``, ``gs://``, ``hdfs://``,
    ``abfs://``, ``file://``), else fsspec's (``memory://``, ``http://``, ... where fsspec and
    the scheme's package are installed), through ``pyarrow.fs.FSSpecHandler``. The format is
    ``fmt`` (``"csv"`` or ``"parquet"``), else the files' suffix (``.tsv`` is tab-separated).
    CSV cells are read as text, as the local reader reads labels, and the probabilities are
    converted where they are checked, so a URL and a local copy give the same numbers and the
    same errors.

    Raises
    ------
    InputError
        An unknown scheme, a missing file, a format that is not CSV or Parquet.
    """
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.dataset as ds  # type: ignore[import-untyped]
    import pyarrow.fs as pafs  # type: ignore[import-untyped]

    if fmt is not None and fmt not in ("csv", "parquet"):
        raise InputError(url, f"unknown format {fmt!r} for a URL; use 'csv' or 'parquet'")
    try:
        filesystem, path = pafs.FileSystem.from_uri(url)
    except pa.ArrowInvalid as exc:  # a scheme pyarrow does not know: fsspec's, if any
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError:
            reason = f"cannot open: {first_line(exc)} (fsspec, which knows more, is missing)"
            raise InputError(url, reason) from None
        try:
            fs, path = fsspec.core.url_to_fs(url)
        except Exception as err:  # a missing package, a bad URL, a file system's own error
            raise InputError(url, f"cannot open: {first_line(err)}") from None
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(url, f"cannot open: {first_line(exc)}") from None
    try:
        files = _url_files(filesystem, path)
        if files is None:
            raise InputError(url, "no such file")
        if not files:
            raise InputError(url, "a folder without CSV or Parquet files")
        forms = {fmt or _suffix_format(f) for f in files}
        if not forms <= {"csv", "parquet"}:
            raise InputError(
                url, "a URL is read as CSV or Parquet: name it .csv or .parquet, or pass the format"
            )
        if len(forms) > 1 or len({delimiter(f) for f in files}) > 1:
            raise InputError(url, "the folder mixes formats (CSV, TSV, Parquet): one table has one")
        file_format: Any = "parquet"
        if forms == {"csv"}:
            import pyarrow.csv as pcsv  # type: ignore[import-untyped]

            parse = pcsv.ParseOptions(delimiter=delimiter(files[0]), newlines_in_values=True)
            names = ds.dataset(files[0], filesystem=filesystem, format="csv").schema.names
            text = pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            )
            file_format = ds.CsvFileFormat(parse_options=parse, convert_options=text)
        return pa_stream(ds.dataset(files, filesystem=filesystem, format=file_format), batch_rows)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(url, f"cannot open: {first_line(exc)}") from None


def _suffix_format(name: str) -> Format | None:
    lower = name.lower()
    return next((f for suffix, f in _SUFFIXES.items() if lower.endswith(suffix)), None)


def _url_files(filesystem: Any, path: str) -> list[str] | None:
    """The file at ``path``, or the parts of the folder at ``path`` (as a local folder's:
    CSV, TSV and Parquet names, not starting with ``_`` or ``.``), sorted; None when there is
    nothing at ``path``."""
    import pyarrow.fs as pafs

    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [path]
    if info.type != pafs.FileType.Directory:
        return None
    found = filesystem.get_file_info(pafs.FileSelector(path))
    return sorted(f.path for f in found if f.type == pafs.FileType.File and _is_part(f.path))


def pa_stream(dataset: Any, batch_rows: int) -> Any:
    """A pyarrow dataset as a ``RecordBatchReader`` of its batches in file order."""
    import pyarrow as pa

    batches = dataset.to_batches(batch_size=batch_rows, use_threads=False)
    return pa.RecordBatchReader.from_batches(dataset.schema, batches)


def arrow_table(obj: Any, name: str) -> Any:
    """``obj`` as a pyarrow Table when it is a table in memory (a pandas DataFrame without its
    index, a polars DataFrame, a pyarrow Table, any object with the Arrow stream interface);
    None for anything else. A table that pyarrow cannot convert is a ``ValueError``."""
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        return obj
    kind = type(obj).__module__.split(".")[0]
    if kind not in ("pandas", "polars") and not hasattr(obj, "__arrow_c_stream__"):
        return None
    if kind == "polars" and hasattr(obj, "collect"):  # a LazyFrame: its rows, collected
        obj = obj.collect()
    if kind in ("pandas", "polars") and not hasattr(obj, "columns"):  # a Series: not a table
        return None
    try:
        if kind == "pandas":
            return pa.Table.from_pandas(obj, preserve_index=False)
        return obj.to_arrow() if kind == "polars" else pa.table(obj)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{name} cannot be read as a table: {str(exc).splitlines()[0]}") from None


def delimiter(path: str) -> str:
    """The field delimiter of a delimited text file: a tab for ``.tsv`` (and ``.tsv.gz``)
    names, else a comma."""
    return "\t" if path.lower().endswith((".tsv", ".tsv.gz")) else ","


def _open_text(path: str) -> io.TextIOBase:
    if path.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def column_names(path: str, fmt: Format) -> list[str]:
    """The column names of a CSV or Parquet file, reading only its header or footer.

    Raises
    ------
    InputError
        Empty or unreadable file.
    """
    if fmt == "csv":
        try:
            with _open_text(path) as fh:
                text = fh.readline(MAX_HEADER_CHARS + 1)
                while text.count('"') % 2 and len(text) <= MAX_HEADER_CHARS:  # quoted line break
                    more = fh.readline(MAX_HEADER_CHARS + 1 - len(text))
                    if not more:
                        break
                    text += more
            if len(text) > MAX_HEADER_CHARS:
                raise InputError(
                    path,
                    f"the header line is longer than {MAX_HEADER_CHARS:,} characters "
                    "(not a CSV file?)",
                )
            header = next(csv.reader(io.StringIO(text), delimiter=delimiter(path)), None)
        except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
            raise InputError(path, f"cannot read as CSV: {exc}") from None
        if not header:
            raise InputError(path, "empty file (no header line)")
        names = header
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            names = list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(path, f"cannot read as Parquet: {first_line(exc)}") from None
    return _unique_names(path, names)


def _unique_names(path: str, names: Sequence[str]) -> list[str]:
    """``names``, refused when one appears twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(path, "the column name appears twice in the header", column=name)
        seen.add(name)
    return list(names)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _select_columns(
    path: str, names: Sequence[str], spec: Sequence[str] | None, roles: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Probability columns chosen by ``spec`` and their class names.

    ``spec`` is a list of column names and glob patterns. A column matched by a
    pattern gets the class name left after stripping the pattern's fixed prefix (before its first
    wildcard) and fixed suffix (after its last wildcard): ``p_*`` maps ``p_cat`` to ``cat``. A
    column named outright keeps its full name. Without ``spec``, every column without one of
    the ``roles`` (column: ``"target"``, ``"id"`` or ``"split"``) is a probability column,
    named by its full name (the Kaggle submission convention); so is every column a pattern
    without fixed characters (``*``) matches. A column with a role that is named outright, or
    matched by a pattern with fixed characters (``p_*`` and an id column ``p_1``), is an
    error: left out, it would shift the classes of the other columns.
    """
    cols: list[str] = []
    if spec is None:
        cols = [n for n in names if n not in roles]
        return cols, list(cols)
    classes: list[str] = []
    for item in (s.strip() for s in spec):
        if not item:
            continue
        if any(ch in item for ch in _GLOB_CHARS):
            prefix, suffix = _fixed_ends(item)
            hits = [n for n in names if fnmatch.fnmatchcase(n, item)]
            if not hits:
                raise InputError(path, f"no column matches the pattern {item!r}", column=item)
        else:
            if item not in names:
                raise InputError(path, f"no such column (columns: {_list(names)})", column=item)
            prefix, suffix, hits = "", "", [item]
        for n in hits:
            if n in roles and n != item and not prefix and not suffix:
                continue  # "*": every other column
            if n in roles:
                how = f"matched by the pattern {item!r} of" if n != item else "named in"
                raise InputError(
                    path,
                    f"the {roles[n]} column is also a probability column: {how} proba "
                    "(--proba-cols); choose the probability columns without it",
                    column=n,
                )
            cols.append(n)
            classes.append(n[len(prefix) : len(n) - len(suffix)])
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise InputError(path, "column selected twice by the probability columns", column=dup)
    return cols, classes


def _glob_tokens(pattern: str) -> list[str | None]:
    """A glob as tokens: the literal character each one matches, or None for a wildcard.

    ``*``, ``?`` and a bracket set are wildcards, except a set of one character (``[*]``,
    ``[[]``), which matches that character only; an unclosed ``[`` is literal (as in fnmatch).
    """
    out: list[str | None] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "*?":
            out.append(None)
            i += 1
        elif ch == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            j = pattern.find("]", j)
            if j < 0:
                out.append("[")
                i += 1
                continue
            body = pattern[i + 1 : j]
            single = len(body) == 1 and body not in "!-"
            out.append(body if single else None)
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return out


def _fixed_ends(pattern: str) -> tuple[str, str]:
    """The literal text before the first and after the last wildcard of a glob."""
    tokens = _glob_tokens(pattern)
    wild = [k for k, t in enumerate(tokens) if t is None]
    if not wild:
        return "".join(t or "" for t in tokens), ""
    head = tokens[: wild[0]]
    tail = tokens[wild[-1] + 1 :]
    return "".join(t or "" for t in head), "".join(t or "" for t in tail)


def _short(value: object, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters (a cell may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text):,} characters)"


def _list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(_short(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_classes(
    path: str, cols: list[str], classes: list[str], override: Sequence[str] | None
) -> list[str]:
    if override is not None:
        given = [str(c).strip() for c in override]
        want = 2 if len(cols) == 1 else len(cols)
        if len(given) != want:
            raise InputError(
                path,
                f"classes (--classes) names {len(given)} classes but there are {len(cols)} "
                f"probability column(s) ({_list(cols)}); give {want}",
            )
        classes = given
    elif len(cols) == 1:
        classes = ["0", "1"]
    if not cols:
        raise InputError(path, "no probability columns")
    if len(set(classes)) != len(classes):
        dup = next(c for c in classes if classes.count(c) > 1)
        raise InputError(path, f"two probability columns map to the same class {dup!r}")
    return classes


def resolve_source(
    *,
    file: str | None,
    target: str | None,
    proba_cols: Sequence[str] | None,
    classes: Sequence[str] | None,
    solution: str | None,
    submission: str | None,
    id_column: str | None,
    target_file: str | None,
    fmt: str | None,
    batch_rows: int,
    table: Any = None,
    split: str | None = None,
) -> Source:
    """Check the files, find the columns and classes, and describe the input as a :class:`Source`.

    Reads headers, footers and NumPy headers only. With ``table`` (a pyarrow Table), ``file``
    is its label and the table itself is scored.

    Raises
    ------
    InputError
        A file is missing or unreadable, a column is missing, the options do not fit the input.
    """
    if split is not None and split in (target, id_column):
        raise InputError(
            submission or file or "",
            "the split column must not be the target or id column",
            column=split,
        )
    if solution is not None or submission is not None:
        return _resolve_pair(
            solution, submission, id_column, target, proba_cols, classes, fmt, batch_rows, split
        )
    if file is None:
        raise InputError("", "give the predictions (a FILE), or a solution and a submission")
    form: Format = "arrow" if table is not None else detect_format(file, fmt)
    if form in ("npy", "npz"):
        if split is not None:
            raise InputError(file, "a split column needs a table (CSV, Parquet, DataFrame)")
        return _resolve_arrays(file, form, target_file, classes, batch_rows)
    if target_file is not None:
        raise InputError(file, "target_file (--target-file) is for .npy probability arrays")
    names = column_names(file, form) if table is None else _unique_names(file, table.schema.names)
    if target is None:
        raise InputError(
            file, f"name the target column with target (--target) (columns: {_list(names)})"
        )
    if target not in names:
        raise InputError(file, f"no such column (columns: {_list(names)})", column=target)
    for extra in (id_column, split):
        if extra is not None and extra not in names:
            raise InputError(file, f"no such column (columns: {_list(names)})", column=extra)
    roles = {c: r for r, c in (("split", split), ("id", id_column), ("target", target)) if c}
    cols, default_classes = _select_columns(file, names, proba_cols, roles)
    names_ = _check_classes(file, cols, default_classes, classes)
    return Source(
        mode="table",
        path=file,
        format=form,
        classes=tuple(names_),
        classes_named=classes is not None,
        proba_columns=tuple(cols),
        binary=len(cols) == 1,
        target=target,
        id_column=id_column,
        batch_rows=batch_rows,
        n_rows=getattr(table, "num_rows", None)
        if table is not None
        else _parquet_rows(file)
        if form == "parquet"
        else None,
        table=table,
        split_column=split,
    )


def _parquet_rows(path: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"cannot read as Parquet: {first_line(exc)}") from None


def _id_is_int(path: str, fmt: Format, column: str) -> bool:
    if fmt != "parquet":
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    typ = pq.read_schema(path).field(column).type
    return bool(pa.types.is_integer(typ))


def _resolve_pair(
    solution: str | None,
    submission: str | None,
    id_column: str | None,
    target: str | None,
    proba_cols: Sequence[str] | None,
    classes: Sequence[str] | None,
    fmt: str | None,
    batch_rows: int,
    split: str | None = None,
) -> Source:
    if solution is None or submission is None:
        raise InputError(
            submission or solution or "",
            "give both --solution and --submission",
        )
    if id_column is None:
        raise InputError(submission, "name the id column that joins the two files with id (--id)")
    sol_fmt = detect_format(solution, fmt)
    sub_fmt = detect_format(submission, fmt)
    for path, form in ((solution, sol_fmt), (submission, sub_fmt)):
        if form not in ("csv", "parquet"):
            raise InputError(path, "the solution and submission must be CSV or Parquet files")
    sol_names = column_names(solution, sol_fmt)
    sub_names = column_names(submission, sub_fmt)
    for path, names in ((solution, sol_names), (submission, sub_names)):
        if id_column not in names:
            raise InputError(path, f"no such column (columns: {_list(names)})", column=id_column)
    if split is not None and split not in sol_names:
        raise InputError(solution, f"no such column (columns: {_list(sol_names)})", column=split)
    if target is None:
        others = [n for n in sol_names if n not in (id_column, split)]
        if len(others) != 1:
            named = {n for n in sub_names if n != id_column}
            one_hot = len(named) > 1 and named <= set(others)
            raise InputError(
                solution,
                f"name the target column with target (--target) (columns: {_list(sol_names)})"
                + (
                    "; a one-hot solution (a 0/1 column per class) is scored by "
                    "crossentropy.scoring.kaggle_score"
                    if one_hot
                    else ""
                ),
            )
        target = others[0]
    elif target not in sol_names:
        raise InputError(solution, f"no such column (columns: {_list(sol_names)})", column=target)
    cols, default_classes = _select_columns(submission, sub_names, proba_cols, {id_column: "id"})
    names_ = _check_classes(submission, cols, default_classes, classes)
    both_int = _id_is_int(solution, sol_fmt, id_column) and _id_is_int(
        submission, sub_fmt, id_column
    )
    return Source(
        mode="pair",
        path=submission,
        format=sub_fmt,
        classes=tuple(names_),
        classes_named=classes is not None,
        proba_columns=tuple(cols),
        binary=len(cols) == 1,
        target=target,
        id_column=id_column,
        id_kind="int" if both_int else "str",
        solution=solution,
        solution_format=sol_fmt,
        batch_rows=batch_rows,
        n_rows=_parquet_rows(submission) if sub_fmt == "parquet" else None,
        split_column=split,
    )


def _load_npy(path: str) -> np.ndarray:
    magic = _head(path)[:6]
    if magic.startswith(b"PK\x03\x04"):
        raise InputError(path, "cannot read as .npy: it is an .npz archive")
    if magic != b"\x93NUMPY":
        raise InputError(path, "not a .npy file: it does not start with NumPy's magic bytes")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(path, f"cannot read as .npy: {first_line(exc)}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive under another name
        raise InputError(path, "cannot read as .npy: it is an .npz archive")
    return array


def _load_npz(path: str) -> Any:
    import zipfile

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"cannot read as .npz: {first_line(exc)}") from None


def _npz_array(path: str, archive: Any, key: str) -> np.ndarray:
    if key not in archive.files:
        raise InputError(path, f"no array {key!r} in the archive (arrays: {_list(archive.files)})")
    try:
        return np.asarray(archive[key])
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(path, f"cannot read array {key!r}: {first_line(exc)}") from None


def _resolve_arrays(
    path: str,
    form: Format,
    target_file: str | None,
    classes: Sequence[str] | None,
    batch_rows: int,
) -> Source:
    if form == "npz":
        if target_file is not None:
            raise InputError(
                path, "target_file (--target-file) is for .npy inputs; an .npz holds y_true itself"
            )
        with _load_npz(path) as archive:
            proba = _npz_array(path, archive, "y_proba")
            y = _npz_array(path, archive, "y_true")
            stored = _npz_array(path, archive, "classes") if "classes" in archive.files else None
        y_path = path
    else:
        if target_file is None:
            raise InputError(
                path,
                "a .npy of probabilities needs its labels: target_file (--target-file) LABELS.npy",
            )
        detect_format(target_file)
        proba = _load_npy(path)
        y = _load_npy(target_file)
        stored = None
        y_path = target_file
    if proba.ndim not in (1, 2) or (proba.ndim == 2 and proba.shape[1] < 1):
        raise InputError(
            path, f"y_proba must have shape (n, C) or (n,); got {tuple(proba.shape)}", column=None
        )
    if y.ndim != 1:
        raise InputError(y_path, f"y_true must have shape (n,); got {tuple(y.shape)}")
    if y.shape[0] != proba.shape[0]:
        raise InputError(
            y_path, f"y_true has {y.shape[0]} rows but y_proba has {proba.shape[0]} rows"
        )
    if proba.dtype.kind not in "biuf":
        raise InputError(path, f"y_proba must hold numbers; got dtype {proba.dtype}")
    n_cols = 1 if proba.ndim == 1 else int(proba.shape[1])
    cols = [f"y_proba[:, {j}]" for j in range(n_cols)] if proba.ndim == 2 else ["y_proba"]
    default = [str(c) for c in stored] if stored is not None else [str(j) for j in range(n_cols)]
    if stored is not None and len(default) != n_cols and not (n_cols == 1 and len(default) == 2):
        raise InputError(path, f"classes has {len(default)} names for {n_cols} columns")
    names_ = _check_classes(path, cols, default, classes)
    if n_cols == 1 and stored is not None and classes is None:
        names_ = default
    return Source(
        mode="arrays",
        path=path,
        format=form,
        classes=tuple(names_),
        classes_named=classes is not None or stored is not None,
        proba_columns=tuple(cols),
        binary=n_cols == 1,
        target_file=target_file,
        batch_rows=batch_rows,
        n_rows=int(proba.shape[0]),
    )


# --------------------------------------------------------------------------- validation


class _Labels:
    """Maps label values to class indices (vectorised, with pyarrow)."""

    def __init__(self, src: Source) -> None:
        import pyarrow as pa

        classes = src.classes
        self.classes = list(classes)
        # where the classes were not named, an unknown label says how to name them
        self.hint = ""
        if not src.classes_named and src.binary:
            self.hint = (
                "; one probability column (or a vector) gives the second of two classes: name "
                "them, negative first, with classes (--classes)"
            )
        elif not src.classes_named:
            self.hint = (
                "; the classes were taken from the probability columns' names: name each "
                "column's class, in order, with classes (--classes)"
            )
        self.text = pa.array(self.classes, pa.string())
        ints = [int(c) for c in classes if _INT_RE.fullmatch(c.strip())]
        self.ints = (
            pa.array(ints, pa.int64())
            if len(ints) == len(classes) and len(set(ints)) == len(ints)
            else None
        )

    def indices(self, values: Any, path: str, column: str, first_row: int) -> np.ndarray:
        """int64 class indices of ``values`` (a pyarrow array); raise on a missing/unknown label."""
        import pyarrow as pa
        import pyarrow.compute as pc  # type: ignore[import-untyped]

        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
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
        if typ == pa.uint64() and len(values) > values.null_count:  # narrower ones fit int64
            big = np.flatnonzero(
                pc.fill_null(pc.greater(values, pa.scalar(2**63 - 1, typ)), False).to_numpy(False)
            )
            if big.size:  # beyond int64: no class name is that large
                i = int(big[0])
                raise InputError(
                    path,
                    f"label {values[i].as_py()} is not among the classes ({_list(self.classes)})"
                    + self.hint,
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
        out: np.ndarray = pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        bad = np.flatnonzero(out < 0)
        if bad.size:
            i = int(bad[0])
            value = values[i].as_py()
            if value is None or value == "":
                raise InputError(path, "missing label", row=first_row + i, column=column)
            raise InputError(
                path,
                f"label {_short(value)} is not among the classes ({_list(self.classes)})"
                + self.hint,
                row=first_row + i,
                column=column,
            )
        return out


def stored_float(dtype: Any) -> Any:
    """The floating dtype probabilities are scored in: float32 as stored (so a float32 file is
    checked and clipped at float32's precision, as ``metrics.log_loss`` treats the same array;
    float16 is widened to it), float64 otherwise (integers, booleans, text, decimals)."""
    kind = np.dtype(dtype)
    return np.float32 if kind in (np.float16, np.float32) else np.float64


def _to_float(values: Any, path: str, column: str, first_row: int) -> np.ndarray:
    """A pyarrow column as a float NumPy array (:func:`stored_float`), raising on missing or
    non-numeric cells."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.null_count:
        i = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(path, "missing probability", row=first_row + i, column=column)
    typ = values.type
    if pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        arr: np.ndarray = values.to_numpy(zero_copy_only=False)
        return arr.astype(stored_float(arr.dtype), copy=False)
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_decimal(typ)):
        raise InputError(
            path,
            f"probabilities must be numbers; the column holds {typ}",
            row=first_row,
            column=column,
        )
    try:
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]
    except pa.ArrowInvalid:
        pass
    for i, cell in enumerate(values.to_pylist()):
        try:
            float(str(cell).strip())
        except ValueError:
            what = "missing probability" if str(cell).strip() == "" else f"{cell!r} is not a number"
            raise InputError(path, what, row=first_row + i, column=column) from None
    trimmed = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _matrix(columns: list[np.ndarray], binary: bool) -> np.ndarray:
    if binary:
        p = columns[0]
        return np.stack([1.0 - p, p], axis=1)
    return np.stack(columns, axis=1)


# --------------------------------------------------------------------------- arrow readers


def _csv_options(
    columns: Sequence[str],
    float_columns: Sequence[str],
    text_columns: Sequence[str],
    block: int = 1 << 22,
    sep: str = ",",
) -> tuple[Any, Any, Any]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

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


def _csv_block(path: str) -> int:
    """pyarrow's CSV block size for ``path``: 4 MiB, or room for rows as wide as eight
    headers (a row must fit in one block), at most 256 MiB."""
    return max(1 << 22, min(1 << 28, 8 * len(_csv_header_bytes(path))))


def _csv_header_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        line = fh.readline(MAX_HEADER_CHARS + 1)
    if len(line) > MAX_HEADER_CHARS:
        raise InputError(path, f"the header line is longer than {MAX_HEADER_CHARS:,} bytes")
    return line


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
        import pyarrow.parquet as pq

        try:
            # No pre-buffering: it caches every row group's column chunks, i.e. the whole file
            # when iterating over all of them; a buffered stream keeps memory to one batch.
            pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 22)
            groups = list(unit.row_groups) if unit.kind == "row_groups" else None
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

    import pyarrow.csv as pcsv

    read, parse, convert = _csv_options(
        columns, float_columns, text_columns, _csv_block(path), delimiter(path)
    )
    compressed = path.lower().endswith(".gz")
    try:
        raw = pa.OSFile(path, "rb")
    except OSError as exc:
        raise InputError(path, f"cannot open: {first_line(exc)}") from None
    try:
        if unit.kind == "bytes":
            raw.seek(unit.start)
            data = _csv_header_bytes(path) + raw.read(unit.stop - unit.start)
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
            if "Empty CSV file" in str(exc):
                raise InputError(path, "empty file (no header line)") from None
            raise
        row = unit.first_row
        while True:
            try:
                rb = reader.read_next_batch()
            except StopIteration:
                break
            for off in range(0, rb.num_rows, batch_rows):
                part = rb.slice(off, batch_rows)
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
            f"a row is longer than the CSV block of {_csv_block(path) >> 20} MiB (eight times "
            "the header); the file is not read further",
        )
    text_columns = list(columns)
    try:
        for rb, row, _ in _record_batches(path, "csv", unit, columns, (), text_columns, 1 << 16):
            for col in float_columns:
                _to_float(rb.column(col), path, col, row)
    except InputError as exc:
        return exc
    except _CsvFailure:
        pass
    return InputError(path, f"cannot read as CSV: {message.splitlines()[0]}")


def _find_ragged_row(path: str, unit: Unit, n_fields: int) -> InputError:
    with _open_text(path) as fh:
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
                return InputError(path, f"expected {n_fields} fields, found {len(fields)}", row=row)
    return InputError(path, f"a row does not have {n_fields} fields")


def _arrow_batches(
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


def _ids(values: Any, kind: str, path: str, column: str, first_row: int) -> np.ndarray:
    """A batch's ids as NumPy values: int64, or fixed-width text (which sorts and searches
    fast)."""
    import pyarrow as pa

    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.null_count:
        i = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(path, "missing id", row=first_row + i, column=column)
    if kind == "int":
        return values.cast(pa.int64()).to_numpy()  # type: ignore[no-any-return]
    out = values.cast(pa.string()).to_numpy(zero_copy_only=False)
    empty = np.flatnonzero(out == "")
    if empty.size:
        raise InputError(path, "missing id", row=first_row + int(empty[0]), column=column)
    return out.astype(str)  # type: ignore[no-any-return]


def id_value(ids: Any, i: int) -> Any:
    """The id of row ``i`` of a batch as a Python value (ids are NumPy values or, where only
    rows are named by them, an Arrow array)."""
    value = ids[i]
    if isinstance(value, np.generic):
        return value.item()
    return value.as_py() if hasattr(value, "as_py") else value


def _id_keys(values: Any) -> np.ndarray | None:
    """int64 keys of a batch of text ids (a pyarrow array) when every id is the canonical
    writing of an int64 (the text ``str(int(s))``: no leading zero, no ``+``, no space), else
    None. Equal keys then mean equal text; integers sort and search 3-5x faster than text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.null_count or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return None
    try:
        keys = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # pyarrow also reads hexadecimal ("0xF4240"): a decimal writing is required; the canonical
    # one is then the shortest text of its integer (a sign or a zero more is longer), so a text
    # that parses is canonical iff it is as long
    if not _decimal_text(values):
        return None
    digits = np.searchsorted(_POWERS_OF_TEN, np.abs(keys).view(np.uint64), side="right") + 1
    size = pc.binary_length(values).to_numpy(zero_copy_only=False)
    if not np.array_equal(size, digits + (keys < 0)):
        return None
    return keys  # type: ignore[no-any-return]


#: 10, 100, ..., 10**19: an unsigned 64-bit magnitude has 1 + (those not above it) digits.
_POWERS_OF_TEN = np.array([10**k for k in range(1, 20)], dtype=np.uint64)


def _decimal_text(values: Any) -> bool:
    """Whether every byte of a (large) string array's values lies between '-' and '9' (read
    from the array's buffers). Of texts that pyarrow reads as integers, that leaves decimal
    writings only: '+' and white space are below '-', the letters of hexadecimal above '9'."""
    import pyarrow as pa

    offsets_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets_buffer, data_buffer = values.buffers()[1:3]
    if data_buffer is None or len(values) == 0:
        return True
    ends = np.frombuffer(offsets_buffer, dtype=offsets_type)
    ends = ends[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)[int(ends[0]) : int(ends[-1])]
    return not data.size or (int(data.min()) >= ord("-") and int(data.max()) <= ord("9"))


def _split_values(values: Any, path: str, column: str, first_row: int) -> np.ndarray:
    """A split column as text; a missing value (null, NaN or an empty text) is an error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_floating(values.type):  # NaN is a missing value too
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)
    text = pc.fill_null(values.cast(pa.string()), "").to_numpy(zero_copy_only=False).astype(str)
    empty = np.flatnonzero(text == "")
    if empty.size:
        row = first_row + int(empty[0])
        raise InputError(path, "missing value in the split column", row=row, column=column)
    return text  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- batch streams


def _table_batches(src: Source, unit: Unit) -> Iterator[Batch]:
    assert src.target is not None
    labels = _Labels(src)
    cols = list(src.proba_columns)
    text = [src.target] + ([src.id_column] if src.id_column else [])
    text += [src.split_column] if src.split_column else []
    for rb, row, done in _arrow_batches(
        src.path, src.format, unit, [*text, *cols], cols, text, src.batch_rows, src.table
    ):
        y = labels.indices(rb.column(src.target), src.path, src.target, row)
        proba = _matrix([_to_float(rb.column(c), src.path, c, row) for c in cols], False)
        n = rb.num_rows
        ids = None
        if src.id_column:
            ids = _ids(rb.column(src.id_column), "str", src.path, src.id_column, row)
        yield Batch(
            y,
            _matrix([proba[:, 0]], True) if src.binary else proba,
            np.arange(row, row + n, dtype=np.int64),
            ids,
            done,
            split=(
                _split_values(rb.column(src.split_column), src.path, src.split_column, row)
                if src.split_column
                else None
            ),
        )


def _array_batches(src: Source, unit: Unit) -> Iterator[Batch]:
    import pyarrow as pa

    labels = _Labels(src)
    if src.format == "npz":
        with _load_npz(src.path) as archive:
            proba_all = _npz_array(src.path, archive, "y_proba")
            y_all = _npz_array(src.path, archive, "y_true")
        y_path = src.path
    else:
        assert src.target_file is not None
        proba_all, y_all = _load_npy(src.path), _load_npy(src.target_file)
        y_path = src.target_file
    n = int(proba_all.shape[0])
    start, stop = (unit.start, unit.stop) if unit.kind == "rows" else (0, n)
    rows = batch_rows_for(src.batch_rows, len(src.proba_columns))
    for lo in range(start, stop, rows):
        hi = min(lo + rows, stop)
        row = lo + 1
        chunk = np.asarray(proba_all[lo:hi])
        chunk = chunk.astype(stored_float(chunk.dtype), copy=False)
        if chunk.ndim == 1:
            chunk = chunk[:, None]
        yv = np.asarray(y_all[lo:hi])
        if yv.dtype.kind == "f":
            nan = np.flatnonzero(np.isnan(yv))
            if nan.size:
                raise InputError(y_path, "label is NaN", row=row + int(nan[0]), column="y_true")
        if yv.dtype.kind not in "biufUS":
            raise InputError(y_path, f"y_true must hold numbers or strings; got dtype {yv.dtype}")
        if yv.dtype.kind in "biu" and labels.ints is None:
            # Integer labels with non-integer class names: class indices into the columns.
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
        proba = _matrix([chunk[:, 0]], True) if src.binary else chunk
        yield Batch(
            y,
            proba,
            np.arange(row, hi + 1, dtype=np.int64),
            None,
            (hi - start) / max(stop - start, 1),
        )


def _solution_batches(
    src: Source,
) -> Iterator[tuple[np.ndarray | None, np.ndarray, int, np.ndarray | None, np.ndarray | None]]:
    """(ids, class indices, first data row, split values, keys) of the solution file, in
    batches: ``keys`` the integers of text ids that all write one canonically
    (:func:`_id_keys`), and then no ``ids`` (their text is ``str`` of the key); else ``ids``
    and no keys."""
    assert src.solution is not None
    assert src.solution_format is not None
    assert src.target is not None
    assert src.id_column is not None
    labels = _Labels(src)
    idc, tgt, sp = src.id_column, src.target, src.split_column
    text = [idc, tgt] if src.solution_format == "csv" else [tgt]
    text += [sp] if sp else []
    for rb, row, _ in _arrow_batches(
        src.solution,
        src.solution_format,
        Unit(),
        [idc, tgt, *([sp] if sp else [])],
        (),
        text,
        src.batch_rows,
    ):
        keys = _id_keys(rb.column(idc)) if src.id_kind == "str" else None
        ids = _ids(rb.column(idc), src.id_kind, src.solution, idc, row) if keys is None else None
        split = _split_values(rb.column(sp), src.solution, sp, row) if sp else None
        yield ids, labels.indices(rb.column(tgt), src.solution, tgt, row), row, split, keys


def _submission_batches(
    src: Source, unit: Unit, keys: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray, int, float, np.ndarray | None]]:
    """(ids, probabilities, first data row, progress, integer keys of text ids if ``keys``
    and they have them, else None) of the submission, in batches."""
    assert src.id_column is not None
    idc, cols = src.id_column, list(src.proba_columns)
    for rb, row, done in _arrow_batches(
        src.path, src.format, unit, [idc, *cols], cols, [idc], src.batch_rows
    ):
        column = rb.column(idc)
        key = _id_keys(column) if keys and src.id_kind == "str" else None
        # text ids with integer keys (none missing) are looked up by the keys: the text only
        # names rows, so it stays in Arrow until a row is named (:func:`id_value`)
        ids = column if key is not None else _ids(column, src.id_kind, src.path, idc, row)
        proba = _matrix([_to_float(rb.column(c), src.path, c, row) for c in cols], False)
        yield ids, (_matrix([proba[:, 0]], True) if src.binary else proba), row, done, key


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
    s_ids: np.ndarray | None = None
    s_keys: np.ndarray | None = None
    s_split: np.ndarray | None = None
    for ids, proba, row, done, keys in _submission_batches(src, Unit(), True):
        off = 0
        while off < len(ids):
            if len(s_y) == 0:
                nxt = next(sol, None)
                if nxt is None:
                    raise NotAligned
                s_ids, s_y, _, s_split, s_keys = nxt
            k = min(len(ids) - off, len(s_y))
            if keys is not None and s_keys is not None:
                same = np.array_equal(keys[off : off + k], s_keys[:k])
            else:
                text = s_ids[:k] if s_ids is not None else _key_text(s_keys, k)
                mine = ids[off : off + k] if keys is None else _key_text(keys[off:], k)
                same = np.array_equal(mine, text)
            if not same:
                raise NotAligned
            yield Batch(
                s_y[:k],
                proba[off : off + k],
                np.arange(row + off, row + off + k, dtype=np.int64),
                ids[off : off + k],
                done,
                split=None if s_split is None else s_split[:k],
            )
            s_y, off = s_y[k:], off + k
            s_ids = None if s_ids is None else s_ids[k:]
            s_keys = None if s_keys is None else s_keys[k:]
            s_split = None if s_split is None else s_split[k:]
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
    import pyarrow.csv as pcsv

    sol, idc = src.solution, src.id_column
    if src.format != "csv" or src.solution_format != "csv" or src.id_kind != "str":
        return True  # text ids, compared as the join compares them
    if sol is None or idc is None:
        return True
    paths = (sol, src.path)
    if not all(os.path.isfile(p) and not p.lower().endswith(".gz") for p in paths):
        return True
    first = []
    for path in paths:
        read, parse, convert = _csv_options([idc], (), [idc], _PEEK_BYTES, delimiter(path))
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


def _key_text(keys: np.ndarray | None, k: int) -> np.ndarray:
    """The text of the first ``k`` integer keys (their canonical writing)."""
    assert keys is not None
    return keys[:k].astype(str)


def _text_of(ids: np.ndarray | None, keys: np.ndarray | None) -> np.ndarray:
    """A batch's ids as text: as read, or the writing of its integer keys."""
    if ids is not None:
        return ids
    assert keys is not None
    return keys.astype(str)


@dataclass(frozen=True)
class SolutionIndex:
    """The solution as a sorted id → class-index table: O(rows of the solution) memory.

    Used to join a submission whose ids are not in the solution's order (and by the Dask engine).

    Attributes
    ----------
    ids : numpy.ndarray or None
        Sorted ids (their text, or their values for an integer column); None when ``keys``
        holds them.
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
    """

    ids: np.ndarray | None
    y: np.ndarray
    rows: np.ndarray
    split: np.ndarray | None = None
    keys: np.ndarray | None = None
    dense: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def id_at(self, position: int) -> Any:
        """The id at a sorted ``position``, as the file writes it."""
        if self.ids is None:
            assert self.keys is not None
            return str(self.keys[position])
        return self.ids[position].item()

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
        else:  # some id is not a canonical integer: all by their text
            ids = np.concatenate([_text_of(p[0], p[4]) for p in parts])
        split = np.concatenate([p[3] for p in parts]) if src.split_column else None
        del parts  # the batches' copies: not held while sorting
        values = keys if keys is not None else ids
        assert values is not None
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
        index = cls(
            None if keys is not None else values,
            y[order],
            (order + 1).astype(np.int64),
            None if split is None else split[order],
            values if keys is not None else None,
            dense,
        )
        if dup.size:
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
        else:
            assert self.ids is not None
            table, query, valid = self.ids, ids, None
        if self.dense is not None:  # an id outside the range may wrap in the subtraction;
            # np.where discards it, and the range test alone decides that it is unknown
            lo = table[0]
            inside = (query >= lo) & (query <= table[-1])
            pos = self.dense[np.where(inside, query - lo, 0)].astype(np.intp)
            found = inside & (pos >= 0)
            np.maximum(pos, 0, out=pos)
        else:
            # sorted queries walk the table in order: 1.6x (text) to 2.6x (int64) faster
            # than random ones on 2M ids
            order = np.argsort(query, kind="stable")
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


def _query_keys(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 keys of text ids to look up among a solution's canonical integer keys, and which
    ids have one: an id that does not write an integer canonically cannot be a solution id
    (a batch without :func:`_id_keys` holds one: an error to report, so the slow way is
    fine)."""
    out = np.zeros(len(ids), dtype=np.int64)
    valid = np.zeros(len(ids), dtype=bool)
    for i, text in enumerate(ids.tolist()):
        try:
            value = int(text)
        except ValueError:
            continue
        if str(value) == text and -(2**63) <= value < 2**63:
            out[i], valid[i] = value, True
    return out, valid


def mark_seen(seen: np.ndarray, positions: np.ndarray) -> int | None:
    """Mark ``positions`` as seen; return the index of the first one seen before, else None."""
    order = np.argsort(positions, kind="stable")
    sp = positions[order]
    bad = seen[positions]
    bad[order[1:][sp[1:] == sp[:-1]]] = True
    if bool(bad.any()):
        return int(np.argmax(bad))
    seen[positions] = True
    return None


def first_unseen(seen: np.ndarray, index: SolutionIndex) -> int | None:
    """Sorted position of the unseen solution id with the lowest row, else None."""
    missing = np.flatnonzero(~seen)
    if not missing.size:
        return None
    return int(missing[np.argmin(index.rows[missing])])


def _indexed_pair_batches(src: Source, unit: Unit, index: SolutionIndex) -> Iterator[Batch]:
    assert src.id_column is not None
    assert src.solution is not None
    for ids, proba, row, done, keys in _submission_batches(src, unit, index.keys is not None):
        pos, y = index.lookup(ids, src.path, src.id_column, row, src.solution, keys)
        rows = np.arange(row, row + len(ids), dtype=np.int64)
        split = None if index.split is None else index.split[pos]
        yield Batch(y, proba, rows, ids, done, pos, index.rows[pos], split)


def iter_batches(
    src: Source, unit: Unit | None = None, index: SolutionIndex | None = None
) -> Iterator[Batch]:
    """Validated batches of ``unit`` (default: the whole input).

    In pair mode, ``index`` joins the submission to the solution by id (the caller checks that
    every id is used once with :func:`mark_seen`); without it, use :func:`iter_ordered_pair`.
    """
    unit = unit or Unit()
    if src.mode == "table":
        yield from _table_batches(src, unit)
    elif src.mode == "arrays":
        yield from _array_batches(src, unit)
    else:
        if index is None:
            raise ValueError("pair mode needs a SolutionIndex (or iter_ordered_pair)")
        yield from _indexed_pair_batches(src, unit, index)


#: Row ids of an input of several files: the file's index times this, plus its data row.
PART_STRIDE = 1 << 40

#: The file names a directory of parts is read from (others, and names starting with ``_``
#: or ``.`` such as ``_SUCCESS``, are skipped).
_PART_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".csv.gz", ".tsv.gz")


def _is_part(path: str) -> bool:
    """Whether a folder's file is one of its parts: a CSV, TSV or Parquet name that does not
    start with ``_`` or ``.`` (``_SUCCESS``, hidden files)."""
    name = os.path.basename(path)
    return not name.startswith(("_", ".")) and name.lower().endswith(_PART_SUFFIXES)


def expand_parts(path: str) -> list[str] | None:
    """The files of a directory or of a glob pattern (sorted by name), or None for a path that
    names one file.

    Raises
    ------
    InputError
        A pattern or directory without any file of predictions.
    """
    import glob

    if os.path.isdir(path):
        names = sorted(os.path.join(path, n) for n in os.listdir(path) if _is_part(n))
        if not names:
            raise InputError(path, "the folder holds no CSV or Parquet file")
        return names
    if os.path.exists(path) or not any(ch in path for ch in _GLOB_CHARS):
        return None
    names = sorted(n for n in glob.glob(path) if os.path.isfile(n))
    if not names:
        raise InputError(path, "no file matches the pattern")
    return names


def check_parts(parts: Sequence[Source]) -> None:
    """Refuse parts whose classes or columns differ from the first part's."""
    first = parts[0]
    for part in parts[1:]:
        for what, a, b in (
            ("classes", part.classes, first.classes),
            ("probability columns", part.proba_columns, first.proba_columns),
        ):
            if a != b:
                raise InputError(
                    part.path, f"its {what} {_list(a)} differ from {first.path}'s {_list(b)}"
                )


def part_batches(parts: Sequence[Source], unit: Unit | None = None) -> Iterator[Batch]:
    """The batches of several files in turn, their rows numbered ``part * PART_STRIDE +
    row`` (each file's data rows from 1), ``done`` over all the files."""
    import dataclasses

    for i, part in enumerate(parts):
        for batch in iter_batches(part, unit):
            yield dataclasses.replace(
                batch,
                rows=batch.rows + i * PART_STRIDE,
                done=(i + batch.done) / len(parts),
                path=part.path,
            )


# --------------------------------------------------------------------------- splitting


def split_units(src: Source, parts: int) -> list[Unit]:
    """Cut the (submission) file into about ``parts`` units for parallel reading.

    Parquet: consecutive row groups (a row group is never split); CSV: byte ranges cut at the
    line breaks that end a record (outside quotes, so a quoted value may hold line breaks), each
    with the data row it starts at; ``.npy``: row ranges; ``.npz`` and compressed CSV: one
    unit.
    """
    parts = max(int(parts), 1)
    if src.format == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(src.path).metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        target = max(sum(sizes) / parts, 1)
        units, group, first, acc = [], [], 1, 0
        row = 1
        for g, size in enumerate(sizes):
            group.append(g)
            acc += size
            row += size
            if acc >= target:
                units.append(Unit("row_groups", first, tuple(group)))
                group, first, acc = [], row, 0
        if group:
            units.append(Unit("row_groups", first, tuple(group)))
        return units or [Unit()]
    if src.format in ("npy", "arrow") and src.n_rows:
        step = -(-src.n_rows // parts)
        return [
            Unit("rows", lo + 1, start=lo, stop=min(lo + step, src.n_rows))
            for lo in range(0, src.n_rows, step)
        ]
    if src.format == "csv" and not src.path.lower().endswith(".gz"):
        return _csv_units(src.path, parts)
    return [Unit()]


def _csv_units(path: str, parts: int) -> list[Unit]:
    size = os.path.getsize(path)
    start = len(_csv_header_bytes(path))
    if size <= start:
        return [Unit()]
    # A worker holds its byte range in memory: at most 64 MiB, whatever ``parts`` asks for.
    step = max(min((size - start) // parts, 64 << 20), 1)
    if _has_quotes(path, start):
        return _quoted_csv_units(path, start, size, step)
    cuts = [start]
    with open(path, "rb") as fh:
        pos = start
        while True:
            pos = max(pos + step, cuts[-1] + 1)
            if pos >= size:
                break
            fh.seek(pos)
            rest = fh.readline()
            pos += len(rest)
            if pos >= size:
                break
            cuts.append(pos)
    cuts.append(size)
    units, row = [], 1
    with open(path, "rb") as fh:
        for lo, hi in itertools.pairwise(cuts):
            units.append(Unit("bytes", row, start=lo, stop=hi))
            row += _count_rows(fh, lo, hi)
    return units


def _has_quotes(path: str, start: int, block: int = 1 << 24) -> bool:
    """Whether the data of a CSV hold a double quote (a scan at memchr speed)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        while data := fh.read(block):
            if b'"' in data:
                return True
    return False


#: Bytes that may stand before an opening quote or after a closing one: start of data, line
#: breaks, the delimiters (comma, tab, semicolon) and a quote (an escaped ``""``).
_QUOTE_NEIGHBOURS = np.array([10, 13, 44, 9, 59, 34], dtype=np.uint8)


def _rfc_quotes(arr: np.ndarray, inside: np.ndarray) -> bool:
    """Whether every quote of a block encloses whole values (RFC 4180): an opening quote
    follows a delimiter or a line break, a closing one is followed by one (or by a quote,
    escaped). Quotes at the block's two ends are not checked."""
    q = np.flatnonzero(arr[1:-1] == 34) + 1
    if not q.size:
        return True
    opening = ~inside[q]
    prev_ok = np.isin(arr[q - 1], _QUOTE_NEIGHBOURS)
    next_ok = np.isin(arr[q + 1], _QUOTE_NEIGHBOURS)
    return bool(np.all(np.where(opening, prev_ok, next_ok)))


def _quoted_csv_units(path: str, start: int, size: int, step: int) -> list[Unit]:
    """Byte ranges of a CSV with quotes, cut only at record ends: line breaks after an even
    number of quotes since the data's start (an escaped quote ``""`` counts twice), so a quoted
    value holding line breaks stays in one unit. Rows are counted as pyarrow counts them: a
    record is a non-empty run of bytes between record ends, ``\\r`` ignored. One pass over the
    file, a block at a time."""
    block = 1 << 24
    cuts, firsts = [start], [1]
    target = start + step
    row, odd, prev_end = 1, False, True
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        while data := fh.read(block):
            arr = np.frombuffer(data, dtype=np.uint8)
            quotes = np.cumsum(arr == 34, dtype=np.int64)
            inside = (quotes - (arr == 34)) % 2 == 1
            if odd:
                inside = ~inside
            if not _rfc_quotes(arr, inside):
                return [Unit()]  # a quote inside an unquoted value: one worker reads it all
            end = (arr == 10) & ~inside
            keep = arr != 13
            # record starts: a kept byte that is not a record end, after a record end
            e, k = end[keep], np.flatnonzero(keep)
            before = np.empty_like(e)
            if e.size:
                before[0], before[1:] = prev_end, e[:-1]
                prev_end = bool(e[-1])
            starts = k[~e & before]  # offsets in this block of each record's first byte
            ends = np.flatnonzero(end)
            while target < size:
                i = np.searchsorted(ends, target - pos, side="left")
                if i >= ends.size:
                    break
                cut = pos + int(ends[i]) + 1
                if cut >= size:
                    target = size
                    break
                cuts.append(cut)
                firsts.append(row + int(np.count_nonzero(starts < cut - pos)))
                target = max(target + step, cut + 1)
            row += int(starts.size)
            odd = bool((int(quotes[-1]) % 2 == 1) != odd) if arr.size else odd
            pos += len(data)
    cuts.append(size)
    return [
        Unit("bytes", first, start=lo, stop=hi)
        for (lo, hi), first in zip(itertools.pairwise(cuts), firsts, strict=True)
    ]


def _count_rows(fh: Any, lo: int, hi: int, block: int = 1 << 24) -> int:
    """Non-empty lines in bytes ``[lo, hi)`` of a file, as pyarrow counts rows (``\r`` ignored)."""
    fh.seek(lo)
    rows, prev, pos = 0, 10, lo
    while pos < hi:
        data = fh.read(min(block, hi - pos))
        if not data:
            break
        pos += len(data)
        arr = np.frombuffer(data, dtype=np.uint8)
        arr = arr[arr != 13]
        if not arr.size:
            continue
        before = np.empty_like(arr)
        before[0], before[1:] = prev, arr[:-1]
        rows += int(np.count_nonzero((arr != 10) & (before == 10)))
        prev = int(arr[-1])
    return rows
