"""What to read, for :func:`crossentropy.scoring.score`: an input resolved into a :class:`Source`.

The first layer of the scoring engine. An input named by the user — a file (CSV, TSV, Parquet,
``.npy``/``.npz``, compressed; CSV and Parquet by URL too), a folder or glob of parts, an
in-memory pyarrow Table or stream, NumPy arrays, or a Kaggle-style pair of files (solution +
submission, joined on an id column) — is resolved from its header or footer alone into a
picklable :class:`Source`: its format, its classes, its probability, target, id, split and
sample-weight columns. Nothing is read beyond the header here;
:mod:`~crossentropy.scoring._readers` reads the rows, :mod:`~crossentropy.scoring._join` joins a
pair and :mod:`~crossentropy.scoring._split` cuts a file into :class:`Unit` pieces for the
workers of the Dask engine.

Every problem with the input raises :class:`InputError`, whose one-line message names the file,
and the data row and the column where there is one. pyarrow is imported inside the functions,
never at module import.

Conventions
-----------
* Data rows are numbered from 1; a CSV header line is not a data row and empty lines are skipped.
* The classes are named by ``classes``, stored in an ``.npz``, or taken from the probability
  columns' names (the text after the pattern's fixed start, ``p_cat`` → ``cat``); one column
  (or a vector) is the probability of the second of two classes (``0`` and ``1`` unless
  named), except a column whose name gives the first class (``p_0``, or ``p_no`` with classes
  ``no`` and ``yes``): it is that class's, and the two classes are listed in the other order.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import gzip
import io
import numbers
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from crossentropy._lib.checks import plain
from crossentropy._lib.policy import user_stacklevel
from crossentropy.metrics._labels import INT_NAME

__all__ = [
    "FORMATS",
    "PART_STRIDE",
    "InputError",
    "Source",
    "Unit",
    "arrow_table",
    "check_parts",
    "column_names",
    "detect_format",
    "expand_parts",
    "first_line",
    "headerless",
    "is_url",
    "local_path",
    "pa_stream",
    "resolve_source",
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


GLOB_CHARS = "*?["


#: A CSV header longer than this is refused (an endless first line, a file that is not a CSV).
MAX_HEADER_CHARS = 1 << 24
#: The most columns of a CSV or Parquet file: pyarrow's readers take 7 to 10 KB of memory per
#: column whatever the rows (250,000 columns: 2.2 GB), so a wider file would break the
#: memory bound; its probabilities belong in a .npy (read row block by row block).
MAX_TABLE_COLUMNS = 1 << 15


def unlabelled_column(column: str, target: str, remedy: str) -> str:
    """Why a submission's column taken as a class is refused when no solution row's label in
    ``target`` names it: another column (a fold number, a weight) read as a class would be
    rescaled away, silently changing the score, as Kaggle refuses it; ``remedy``: how to
    keep a class no row is of."""
    return (
        f"submission column {column!r} is no solution row's label in {target!r}: drop it if "
        f"it is not a class; to keep a class no row is of, {remedy}"
    )


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
    one_hot : tuple of str
        A one-hot solution's class columns (Kaggle's layout: a 0/1 column per class, named as
        the submission's probability columns), in the classes' order; empty when the solution
        has a ``target`` column.
    weight_column : str or None
        The column of sample weights (finite, >= 0), when one is named.
    weight_in_solution : bool
        Pair mode: the weight column is the solution's (else the submission's).
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
    one_hot: tuple[str, ...] = ()
    weight_column: str | None = None
    weight_in_solution: bool = False


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


def _head(path: str, size: int = 8) -> bytes:
    """The first bytes of a file (its magic number), or an ``InputError``."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None


#: The leading bytes of the compressions that are not read (gzip is).
_OTHER_CODECS = {
    re.compile(rb"\x28\xb5\x2f\xfd"): "zstd",
    re.compile(rb"BZh[1-9]1AY&SY"): "bzip2",  # (its block's magic too: "BZh" may be text)
    re.compile(rb"\xfd7zXZ\x00"): "xz",
    re.compile(rb"\x04\x22\x4d\x18"): "lz4",
}


def detect_format(path: str, override: str | None = None) -> Format:
    """The format of ``path``: ``override``, else from the name's suffix, else from its bytes.

    Raises
    ------
    InputError
        The file is missing, is a directory, or its format is not recognised.
    """
    if not os.path.exists(path):
        if os.path.basename(path) == "-":  # the shell's name for standard input
            raise InputError("-", "standard input is not read; save the data to a file first")
        raise InputError(path, "no such file")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, not a file")
    if not os.path.isfile(path):  # reading a FIFO or a device could block or never end
        raise InputError(path, "is not a regular file (a FIFO, a device or a socket)")
    head = _head(path, 10)
    codec = next((c for magic, c in _OTHER_CODECS.items() if magic.match(head)), None)
    if codec is not None:
        raise InputError(
            path,
            f"is compressed with {codec}: only gzip is read (.csv.gz, .tsv.gz); decompress it "
            "or write it as Parquet",
        )
    if head.startswith(b"\x1f\x8b") and not gzipped(path):
        raise InputError(
            path, "is gzip-compressed: name it .csv.gz or .tsv.gz to read it through gzip"
        )
    if override is not None:
        if override not in FORMATS:
            raise InputError(path, f"unknown format {override!r}; use one of {', '.join(FORMATS)}")
        return FORMATS[FORMATS.index(override)]
    name = path.lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
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
    if not text:  # os.path.abspath("") is the current folder
        raise ValueError(f"{name} is an empty path")
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


def _check_utf8_name(path: str) -> None:
    """An :class:`InputError` for a file name whose bytes are not UTF-8 (legal on POSIX; read
    as surrogates), which pyarrow cannot open (NumPy opens ``.npy``/``.npz`` of any name)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            path,
            "the file name is not UTF-8 text, which the readers (pyarrow) need: rename the "
            "file (or give its data as a table in memory)",
        ) from None


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

    if (fmt or _suffix_format(url)) in ("npy", "npz"):
        raise InputError(
            url,
            "a NumPy file (.npy, .npz) is read from a local path or a file:// URL only: copy it "
            "here, or load it with NumPy and pass the arrays",
        )
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
        if files is None and any(ch in path for ch in GLOB_CHARS):
            raise InputError(
                url,
                "no such file (a pattern is expanded for local paths only: a URL names a "
                "file, or a folder whose parts are read)",
            )
        if files is None:
            raise InputError(url, "no such file")
        if not files:
            folders = filesystem.get_file_info(pafs.FileSelector(path))
            if any(f.type == pafs.FileType.Directory for f in folders):
                raise InputError(
                    url,
                    "a folder whose files are in subfolders: a URL's folder is read one level "
                    "deep; for hive partitions (Usage=Public/...) pass a pyarrow dataset, "
                    "pyarrow.dataset.dataset(..., partitioning='hive'), as the data",
                )
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
        dataset = ds.dataset(files, filesystem=filesystem, format=file_format)
        check_width(url, dataset.schema.names)
        return pa_stream(dataset, batch_rows)
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


def arrow_table(obj: Any, name: str, asked: Sequence[str | None] = ()) -> Any:
    """``obj`` as a pyarrow Table when it is a table in memory (a pandas DataFrame, a polars
    DataFrame, a pyarrow Table, any object with the Arrow stream interface); None for anything
    else. A table that pyarrow cannot convert is a ``ValueError``.

    A pandas DataFrame's index is left out, except its levels named by one of the column
    names ``asked`` for that no column has (an id column set as the index, say)."""
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        return _named_once(obj, name)
    kind = type(obj).__module__.split(".")[0]
    if kind not in ("pandas", "polars") and not hasattr(obj, "__arrow_c_stream__"):
        return None
    if kind == "polars" and hasattr(obj, "collect"):  # a LazyFrame: its rows, collected
        obj = obj.collect()
    if kind in ("pandas", "polars") and not hasattr(obj, "columns"):  # a Series: not a table
        return None
    try:
        if kind == "pandas":
            if obj.columns.nlevels > 1:
                raise ValueError(
                    f"{name} has columns of {obj.columns.nlevels} levels (a MultiIndex); give "
                    "each column one name (join the levels: df.columns = ['_'.join(map(str, c)) "
                    "for c in df.columns])"
                )
            twice = obj.columns[obj.columns.duplicated()]
            if len(twice):
                raise ValueError(f"{name} has two columns named {plain(twice[0])!r}")
            levels = [n for n in obj.index.names if n is not None and n not in obj.columns]
            levels = [n for n in levels if n in asked]
            if levels:
                obj = obj.reset_index(level=levels)
            obj = _dense(obj)
            try:
                return pa.Table.from_pandas(obj, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                # an object column of mixed values (numbers and a text): read as text, whose
                # cells the readers check one by one, naming a bad one's row and column
                return pa.Table.from_pandas(_mixed_as_text(obj), preserve_index=False)
        return _named_once(obj.to_arrow() if kind == "polars" else pa.table(obj), name)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{name} cannot be read as a table: {str(exc).splitlines()[0]}") from None


def _named_once(table: Any, name: str) -> Any:
    """``table``, or a ``ValueError`` naming a column name it has twice (a pyarrow Table may:
    a column is then not found by its name)."""
    seen: set[str] = set()
    for column in table.column_names:
        if column in seen:
            raise ValueError(f"{name} has two columns named {column!r}")
        seen.add(column)
    return table


def _dense(frame: Any) -> Any:
    """A pandas DataFrame with its sparse columns made dense (pyarrow converts none)."""
    import pandas as pd  # type: ignore[import-untyped]

    sparse = [c for c in frame.columns if isinstance(frame[c].dtype, pd.SparseDtype)]
    if not sparse:
        return frame
    out = frame.copy(deep=False)
    for column in sparse:
        out[column] = frame[column].sparse.to_dense()
    return out


def _mixed_as_text(frame: Any) -> Any:
    """A pandas DataFrame whose object columns that pyarrow cannot convert (values of mixed
    types) hold their values as text (``str``; a Python float's is its shortest exact writing)
    and missing values (``None``, NaN, ``pd.NA``) as missing; the other columns as they are."""
    import pyarrow as pa

    out = frame.copy(deep=False)
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        try:
            pa.array(frame[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            out[column] = frame[column].map(cell_text)
    return out


def cell_text(value: Any) -> str | None:
    """An object cell as the text the readers check (``str``; bytes decoded from UTF-8, as
    :func:`found_classes` reads them), None where it is missing (``None``, NaN, ``pd.NA``,
    ``NaT``)."""
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def text_column(values: np.ndarray) -> Any:
    """Object labels as a pyarrow text column (:func:`cell_text`: missing ones missing):
    converted whole where they are all text, else cell by cell."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([cell_text(v) for v in values.tolist()], type=pa.string())


def object_column(values: np.ndarray) -> Any:
    """A NumPy object array as a pyarrow array: as pyarrow converts it (``None`` missing, a
    NaN a NaN, as in a float array), or, where its values are of mixed types (numbers and a
    text), as text (:func:`cell_text`), whose cells the readers check one by one."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([cell_text(v) for v in values.tolist()], type=pa.string())


def gzipped(path: str) -> bool:
    """Whether a delimited text file is read through gzip: its name ends in ``.gz``."""
    return path.lower().endswith(".gz")


def delimiter(path: str) -> str:
    """The field delimiter of a delimited text file: a tab for ``.tsv`` (and ``.tsv.gz``)
    names, else a comma."""
    return "\t" if path.lower().endswith((".tsv", ".tsv.gz")) else ","


def open_text(path: str, errors: str = "strict") -> io.TextIOBase:
    """A CSV file (gzip-compressed or not) as UTF-8 text; ``errors="surrogateescape"`` keeps
    a byte that is not UTF-8 as a lone surrogate (U+DC80 to U+DCFF) to be found."""
    if gzipped(path):
        raw = gzip.open(path, "rb")  # noqa: SIM115 (closed with the wrapper returned)
        return io.TextIOWrapper(raw, encoding="utf-8-sig", errors=errors, newline="")
    return open(path, encoding="utf-8-sig", errors=errors, newline="")


def first_undecoded(text: str) -> int | None:
    """The first byte of ``text`` (read with ``errors="surrogateescape"``) that was not UTF-8,
    or None."""
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            return ord(ch) - 0xDC00
    return None


def column_names(path: str, fmt: Format) -> list[str]:
    """The column names of a CSV or Parquet file, reading only its header or footer.

    Raises
    ------
    InputError
        Empty or unreadable file, or a name pyarrow cannot open.
    """
    _check_utf8_name(path)
    if fmt == "csv":
        try:
            # the header's bytes alone are decoded (a text reader decodes a whole block: a
            # byte that is not UTF-8 in a later row would be the header's error)
            with open_text(path, errors="surrogateescape") as fh:
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
            if "\x00" in text or text.startswith(("\udcff\udcfe", "\udcfe\udcff")):
                raise InputError(  # (UTF-16's byte-order marks, or its zero bytes of ASCII)
                    path,
                    "the header line holds zero bytes or a UTF-16 byte-order mark: UTF-16 text "
                    "(save it as UTF-8) or not a text file",
                )
            bad = first_undecoded(text)
            if bad is not None:
                raise InputError(path, f"the header line is not UTF-8 text (byte 0x{bad:02x})")
            header = next(csv.reader(io.StringIO(text), delimiter=delimiter(path)), None)
        except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
            raise InputError(path, f"cannot read as CSV: {exc}") from None
        if not header:  # nothing, or a first line that is blank
            blank = bool(text)
            raise InputError(
                path,
                "the first line is blank: the header must be the first line"
                if blank
                else "empty file (no header line)",
            )
        names = header
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            names = list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(path, f"cannot read as Parquet: {first_line(exc)}") from None
    check_width(path, names)
    return _unique_names(path, names)


def no_such_column(
    names: Sequence[str], wanted: str, pattern: bool = False, listable: bool = False
) -> str:
    """The message for a column ``wanted`` (a name, or a glob ``pattern``) not among ``names``:
    the columns, and a hint where ``wanted`` lists columns (``"p_a,p_b"``) for an argument of
    several (``listable``: the probability columns), where the header reads as one column
    holding another separator, or where names match once the spaces around them are left out
    (``y, p_a``)."""
    if pattern:
        text = f"no column matches the pattern {wanted!r}"
        spaced = [n for n in names if n != n.strip() and fnmatch.fnmatchcase(n.strip(), wanted)]
    else:
        text = f"no such column (columns: {name_list(names)})"
        spaced = [n for n in names if n != n.strip() and n.strip() == wanted]
    other = [sep for sep in (";", "\t", "|", ",") if len(names) == 1 and sep in names[0]]
    parts = [p.strip() for p in wanted.split(",")]
    listed = (
        listable
        and len(parts) > 1
        and all(
            any(fnmatch.fnmatchcase(n, p) for n in names) if pattern else p in names for p in parts
        )
    )
    if listed:
        text += (
            f"; it is one {'pattern' if pattern else 'name'}: give several as a list ({parts!r})"
        )
    elif other:
        text += f"; the header reads as one column holding {other[0]!r}: a file separated by it?"
    elif spaced:
        text += (
            f"; {name_list(spaced)} {'matches' if len(spaced) == 1 else 'match'} with the spaces "
            "around them left out: write the header without spaces after the commas"
        )
    return text


def check_width(path: str, names: Sequence[str]) -> None:
    """Refuse a CSV or Parquet table of more than :data:`MAX_TABLE_COLUMNS` columns (a file,
    a URL's, a partitioned dataset's), before any row is read."""
    if len(names) > MAX_TABLE_COLUMNS:
        raise InputError(
            path,
            f"has {len(names):,} columns; a CSV or Parquet file is read with at most "
            f"{MAX_TABLE_COLUMNS:,} (its reader takes about 8 KB of memory per column): store "
            "this many probabilities in a .npy file",
        )


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
    named by its full name (the Kaggle submission convention), except pandas' stored index
    (``__index_level_0__``, which ``read_parquet`` makes the index); so is every column a pattern
    without fixed characters (``*``) matches. A column with a role that is named outright, or
    matched by a pattern with fixed characters (``p_*`` and an id column ``p_1``), is an
    error: left out, it would shift the classes of the other columns.
    """
    cols: list[str] = []

    def other(n: str) -> bool:  # no class unless named: a role's, or pandas' stored index
        return n in roles or pandas_index(n)

    if spec is None:
        cols = [n for n in names if not other(n)]
        stray = next((n for n in cols if headerless(n)), None)
        if stray is not None:
            raise InputError(
                path,
                "a column without a header (an index written by to_csv?) is not a class: drop "
                "it, write the file with index=False, or name the probability columns "
                "(proba, --proba-cols)",
                column=stray,
            )
        return cols, list(cols)
    classes: list[str] = []
    for item in (s.strip() for s in spec):
        if not item:
            continue
        if any(ch in item for ch in GLOB_CHARS):
            prefix, suffix = _fixed_ends(item)
            hits = [n for n in names if fnmatch.fnmatchcase(n, item)]
            if not hits:
                text = no_such_column(names, item, pattern=True, listable=True)
                raise InputError(path, text, column=item)
        else:
            if item not in names:
                raise InputError(path, no_such_column(names, item, listable=True), column=item)
            prefix, suffix, hits = "", "", [item]
        for n in hits:
            if other(n) and n != item and not prefix and not suffix:
                continue  # "*": every other column (as without a pattern)
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


def headerless(name: str) -> bool:
    """Whether a column name is that of a column without a header: empty (pyarrow's CSV
    reader), or pandas' ``Unnamed: 0`` (``read_csv`` of a file written with its index)."""
    return name == "" or _UNNAMED.fullmatch(name) is not None


#: pandas' name of a CSV column without a header.
_UNNAMED = re.compile(r"Unnamed: \d+")
#: The column in which pandas' ``to_parquet`` (and pyarrow's ``Table.from_pandas``) keeps an
#: unnamed index that is not a range; pandas reads it back as the index, not a column.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def pandas_index(name: str) -> bool:
    """Whether a column is pandas' stored index (``__index_level_0__``): no class."""
    return _PANDAS_INDEX.fullmatch(name) is not None


@overload
def text_name(value: str | int) -> str: ...
@overload
def text_name(value: None) -> None: ...
@overload
def text_name(value: Any) -> Any: ...
def text_name(value: Any) -> Any:
    """A column name as the tables hold it: an integer (pandas' names of an unnamed frame's
    columns, ``0, 1, ...``) as its text, as pyarrow stores it; anything else as it is."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    return value


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


def shorten(value: object, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters (a cell may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text):,} characters)"


def name_list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(shorten(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def named_class(name: str, classes: Sequence[str], given: bool) -> str | None:
    """The class of ``classes`` that a column's name gives: the name itself, or, for classes
    ``given`` that are not all integers, the one class the name ends with after ``_`` or ``-``
    (``p_no``, ``prob-no``: ``no``); None if none does. (Integer endings are not read so:
    ``oof_0`` and ``pred_fold_1`` name folds as often as classes.)"""
    if name in classes:
        return name
    if not given or all(INT_NAME.fullmatch(c.strip()) for c in classes):
        return None
    ends = [c for c in classes if c and any(name.endswith(sep + c) for sep in "_-")]
    return ends[0] if len(ends) == 1 else None


def unclear_positions(y: np.ndarray, width: int) -> str | None:
    """Why integer labels ``y`` (of an integer or a float dtype) for ``width`` probability
    columns are unclear, None if they are not: all within ``1 .. width - 1``, they are the
    columns' positions without a row of the first, or the classes ``1 .. width`` without a
    row of the last (scikit-learn refuses both). One column (``width`` 1) is a binary
    problem's second class: labels 0 and 1 are clear."""
    if width < 3 or y.size == 0:
        return None
    if y.dtype.kind in "OUS":  # integers as objects or written as text: by their values
        # (objects of several types, 0 and "1", do not sort: their distinct values unsorted)
        values = list(set(y.tolist())) if y.dtype.kind == "O" else np.unique(y).tolist()
        if not all(_integer_value(v) for v in values):
            return None
        y = np.array([int(v) for v in values], dtype=np.int64)
    if y.dtype.kind not in "iuf":
        return None
    with np.errstate(invalid="ignore"):
        if y.dtype.kind == "f" and not bool(np.all(np.floor(y) == y)):
            return None
        low, high = float(np.min(y)), float(np.max(y))
    if not (low >= 1 and high < width):  # (NaN: no)
        return None
    low, high = int(low), int(high)
    if low < 1 or high >= width:
        return None
    return (
        f"the labels are integers from {low} to {high}, none 0, for {width} classes: they may "
        f"be the columns' positions 0 .. {width - 1} (no row of the first class) or the "
        f"classes 1 .. {width} (no row of the last); name the columns' classes "
        "(classes, --classes)"
    )


def _integer_value(v: Any) -> bool:
    """Whether a label is an integer: a Python or NumPy one, or text that writes one."""
    if isinstance(v, bytes | str):
        text = v.decode(errors="replace") if isinstance(v, bytes) else v
        return INT_NAME.fullmatch(text.strip()) is not None
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


#: A column name that gives the class False (0), as a boolean's text: ``False``, or ending
#: with it after ``_`` or ``-`` (``p_False``, ``p_false``).
_FALSE_NAME = re.compile(r"(?:.*[_-])?false", re.IGNORECASE)


def _check_classes(
    path: str,
    cols: list[str],
    classes: list[str],
    override: Sequence[str] | None,
    named_by_columns: bool = True,
) -> list[str]:
    """The classes of the probability columns ``cols``: ``override`` (``classes``,
    ``--classes``) where given, else ``classes`` (the names the columns give, or their
    positions where not ``named_by_columns``). Given classes that name a column's class as
    another column's (``p_*`` over ``p_cat, p_dog`` with classes ``dog, cat``) are an
    error: the columns would be scored as each other's classes; names that are all integers
    (``0, 1, 2`` are as often the columns' positions) are read by position, with a warning
    where the classes are the same integers in another order."""
    named = list(classes)  # the classes the columns' names give
    if override is None and named_by_columns and "" in named:  # ("p_" by "p_*")
        raise InputError(
            path,
            "the probability columns' pattern (proba, --proba-cols) leaves no class name of "
            "this column (its name is the pattern's fixed ends): rename it, or name each "
            "column's class, in order, with classes (--classes)",
            column=cols[named.index("")],
        )
    if override is not None:
        given = [str(c).strip() for c in override]
        want = 2 if len(cols) == 1 else len(cols)
        if len(given) != want:
            raise InputError(
                path,
                f"classes (--classes) names {len(given)} classes but there are {len(cols)} "
                f"probability column(s) ({name_list(cols)}); give {want}",
            )
        crossed = next(
            (j for j, n in enumerate(named) if len(cols) > 1 and n != given[j] and n in given),
            None,
        )
        if named_by_columns and crossed is not None:
            other = cols[given.index(named[crossed])]
            crossing = (
                f"classes (--classes) gives the column {cols[crossed]!r} the class "
                f"{given[crossed]!r}, and its name's class {named[crossed]!r} to the column "
                f"{other!r}"
            )
            # integer names are as often positions (a DataFrame of predict_proba: columns
            # 0, 1, 2 of classes 1, 2, 3) as classes: they are read by position, with a
            # warning where the classes are the names in another order
            if all(INT_NAME.fullmatch(n.strip()) for n in named):
                if sorted(given) == sorted(named):
                    warnings.warn(
                        f"{path}: {crossing}; the columns are read in the classes' order, "
                        "by position (if their names are their classes, list the classes in "
                        "the columns' order)",
                        UserWarning,
                        stacklevel=user_stacklevel(),
                    )
            else:
                raise InputError(
                    path,
                    f"{crossing}: list the classes in the columns' order, or choose the "
                    "columns in the classes' order (proba, --proba-cols)",
                    column=cols[crossed],
                )
        classes = given
    elif len(cols) == 1:
        classes = ["0", "1"]  # (boolean labels, and their text, are the classes 0 and 1)
    # one column is the second class's ([1 - p, p]), unless the column's name gives the first
    # (p_0 by p_*; p_no with classes no, yes); array columns have positions, not names
    first = named_by_columns and len(cols) == 1
    false = first and override is None and _FALSE_NAME.fullmatch(named[0]) is not None
    if false or (first and named_class(named[0], classes, override is not None) == classes[0]):
        classes = [classes[1], classes[0]]
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
    weight: str | None = None,
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
            solution or file or "",  # (a pair's split column is the solution's)
            "the split column must not be the target or id column",
            column=split,
        )
    if weight is not None and weight in (target, id_column, split):
        raise InputError(
            submission or file or "",
            "the sample weight column must not be the target, id or split column",
            column=weight,
        )
    if solution is not None or submission is not None:
        if target_file is not None:
            raise InputError(
                submission or solution or "",
                "target_file (--target-file) is for .npy probability arrays; a solution holds "
                "the targets of a submission",
            )
        return _resolve_pair(
            solution,
            submission,
            id_column,
            target,
            proba_cols,
            classes,
            fmt,
            batch_rows,
            split,
            weight,
        )
    if file is None:
        raise InputError("", "give the predictions (a FILE), or a solution and a submission")
    form: Format = "arrow" if table is not None else detect_format(file, fmt)
    if form in ("npy", "npz"):
        if split is not None or weight is not None:
            what = "a split" if split is not None else "a sample weight"
            how = (
                "put the arrays (np.load) in a DataFrame with the split as a column"
                if split is not None
                else "load the arrays (np.load) and pass them in memory, with the weights "
                "as sample_weight="
            )
            raise InputError(file, f"{what} column needs a table (CSV, Parquet, DataFrame): {how}")
        for given, what in (
            (target, "target (--target)"),
            (proba_cols, "proba (--proba-cols)"),
            (id_column, "id (--id)"),
        ):
            if given is not None:
                raise InputError(file, f"{what} names columns of a table; .{form} arrays have none")
        return _resolve_arrays(file, form, target_file, classes, batch_rows)
    if target_file is not None:
        raise InputError(file, "target_file (--target-file) is for .npy probability arrays")
    names = column_names(file, form) if table is None else _unique_names(file, table.schema.names)
    if target is None:
        raise InputError(
            file, f"name the target column with target (--target) (columns: {name_list(names)})"
        )
    if target not in names:
        raise InputError(file, no_such_column(names, target), column=target)
    for extra in (id_column, split, weight):
        if extra is not None and extra not in names:
            raise InputError(file, no_such_column(names, extra), column=extra)
    roles = {
        c: r
        for r, c in (
            ("sample weight", weight),
            ("split", split),
            ("id", id_column),
            ("target", target),
        )
        if c
    }
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
        weight_column=weight,
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
    # uint64 ids may pass int64's range: compared as their decimal text instead
    return bool(pa.types.is_integer(typ)) and not pa.types.is_uint64(typ)


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
    weight: str | None = None,
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
            raise InputError(path, no_such_column(names, id_column), column=id_column)
    if split is not None and split not in sol_names:
        raise InputError(solution, no_such_column(sol_names, split), column=split)
    if target is not None and target not in sol_names:
        raise InputError(solution, no_such_column(sol_names, target), column=target)
    # the weights: the solution's column, else the submission's
    in_solution = weight is not None and weight in sol_names
    if weight is not None and not in_solution and weight not in sub_names:
        raise InputError(
            solution,
            f"no such column in the solution or the submission {submission} (columns: "
            f"{name_list(sol_names)})",
            column=weight,
        )
    roles = {id_column: "id"}
    if weight is not None:  # never a class of the submission, whichever file's it is
        roles[weight] = "sample weight"
    cols, default_classes = _select_columns(submission, sub_names, proba_cols, roles)
    names_ = _check_classes(submission, cols, default_classes, classes)
    one_hot: tuple[str, ...] = ()
    if target is None:
        others = [n for n in sol_names if n not in (id_column, split, weight)]
        if len(cols) > 1 and set(cols) <= set(others):  # Kaggle's one-hot solution
            one_hot = tuple(cols)
        elif len(others) == 1:
            target = others[0]
        else:
            raise InputError(
                solution,
                "name the target column with target (--target), or give a 0/1 column per class "
                f"named as the submission's (columns: {name_list(sol_names)})",
            )
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
        one_hot=one_hot,
        weight_column=weight,
        weight_in_solution=in_solution,
    )


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (a big-endian ``.npy`` or array: pyarrow takes
    native arrays only)."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def load_npy(path: str) -> np.ndarray:
    magic = _head(path)[:6]
    if magic.startswith(b"PK\x03\x04"):
        raise InputError(path, "cannot read as .npy: it is an .npz archive")
    if magic != b"\x93NUMPY":
        raise InputError(path, "not a .npy file: it does not start with NumPy's magic bytes")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        text = first_line(exc)
        if "mmap length is greater than file size" in text:  # (NumPy's words for it)
            text = "the file is shorter than its header's shape and dtype say (truncated?)"
        elif "malformed node or string" in text:  # its header's dict did not parse
            text = "its header is not the dict of a .npy header (descr, fortran_order, shape)"
        raise InputError(path, f"cannot read as .npy: {text}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive under another name
        raise InputError(path, "cannot read as .npy: it is an .npz archive")
    return array


def load_npz(path: str) -> Any:
    import zipfile

    if _head(path)[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip, or an empty one
        raise InputError(path, "not an .npz file: it is not a zip archive")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"cannot read as .npz: {first_line(exc)}") from None


def npz_array(path: str, archive: Any, key: str) -> np.ndarray:
    if key not in archive.files:
        raise InputError(
            path, f"no array {key!r} in the archive (arrays: {name_list(archive.files)})"
        )
    try:
        return np.asarray(archive[key])
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(path, f"cannot read array {key!r}: {first_line(exc)}") from None


#: The name errors give an in-memory NumPy input (its columns have positions, not names).
IN_MEMORY_ARRAY = "array"


def found_classes(y: np.ndarray, width: int) -> list[str] | None:
    """The class names of NumPy labels ``y`` for ``width`` probability columns, as
    scikit-learn's ``log_loss`` finds them, where the labels are not the columns' positions:
    their sorted distinct values when there are ``width`` of them (read a million at a time;
    missing ones left out; floats that write integers as Python writes them, ``1.0``).
    None where integer labels (or floats that write integers) are all positions
    ``0 .. width - 1`` (the classes stay numbered), for floats with a fraction, and where
    the labels do not name ``width`` classes (the readers' check names the first label that
    is no class)."""
    from crossentropy.metrics._labels import distinct

    if y.dtype.kind in "iuf":
        known = y if y.dtype.kind in "iu" else y[~np.isnan(y)]  # (NaN: a missing label)
        if known.size == 0 or not bool(np.all(np.isfinite(known) & (np.floor(known) == known))):
            return None  # (floats with a fraction: no classes, as scikit-learn's "continuous";
            # an infinite one: the readers name its row)
        if known.min() >= 0 and known.max() < width:
            return None
    elif y.dtype.kind not in "USO":
        return None
    found: set[Any] = set()
    for lo in range(0, y.shape[0], 1 << 20):
        part = np.asarray(y[lo : lo + (1 << 20)])
        if part.dtype.kind in "Of":  # missing labels name no class (the readers' check names
            import pandas as pd  # their rows)

            part = part[~pd.isna(part)]
        try:
            found.update(plain(v) for v in distinct(part).tolist())
        except (TypeError, ValueError, OverflowError):  # mixed types, missing ones, > int64
            return None
        if len(found) > width:
            return None
    if len(found) != width:
        return None
    try:  # bytes (a NumPy "S" array) as the text the readers decode them to
        return [v.decode() if isinstance(v, bytes) else str(v) for v in sorted(found)]
    except (TypeError, UnicodeDecodeError):
        return None


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
        with load_npz(path) as archive:
            proba = npz_array(path, archive, "y_proba")
            y = npz_array(path, archive, "y_true")
            stored = npz_array(path, archive, "classes") if "classes" in archive.files else None
        y_path = path
    else:
        if target_file is None:
            raise InputError(
                path,
                "a .npy of probabilities needs its labels: target_file (--target-file) LABELS.npy",
            )
        detect_format(target_file)
        proba = load_npy(path)
        y = load_npy(target_file)
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
    # one column (a vector or (n, 1)) is the second class's probability, as scikit-learn and
    # score() on an in-memory array read it
    numbered = ["1"] if n_cols == 1 else [str(j) for j in range(n_cols)]
    default = [str(c) for c in stored] if stored is not None else numbered
    found = None
    if stored is None and classes is None:  # labels that name the classes, sorted
        found = found_classes(y, 2 if n_cols == 1 else n_cols)
        default = found or default
        unclear = None if found else unclear_positions(y, n_cols)
        if unclear is not None:
            raise InputError(y_path, unclear)
    if stored is not None and len(default) != n_cols and not (n_cols == 1 and len(default) == 2):
        raise InputError(path, f"classes has {len(default)} names for {n_cols} columns")
    names_ = _check_classes(path, cols, default, classes, named_by_columns=False)
    if n_cols == 1 and (stored is not None or found) and classes is None:
        names_ = default  # both classes named, the column the second's
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


def csv_header_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        line = fh.readline(MAX_HEADER_CHARS + 1)
    if len(line) > MAX_HEADER_CHARS:
        raise InputError(path, f"the header line is longer than {MAX_HEADER_CHARS:,} bytes")
    return line


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


def hive_dataset(path: str) -> Any:
    """A folder of Parquet parts in hive-style subfolders (``Usage=Public/part-0.parquet``)
    as a pyarrow dataset with their partitioning, so that the folders' column exists; None
    for any other path (parts at the top level, other formats: :func:`expand_parts`)."""
    if not os.path.isdir(path) or any(_is_part(n) for n in os.listdir(path)):
        return None
    subfolders = [n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))]
    if not subfolders or not all("=" in n for n in subfolders):
        return None
    # the files pyarrow's discovery would take (none named, or in a folder named, with "_" or
    # "." first: _SUCCESS, _temporary/, .hive-staging/), whatever their names end with (hive
    # writes 000000_0); links to folders are not followed, but refused
    files: list[str] = []
    for root, folders, names in os.walk(path):
        folders[:] = [d for d in folders if not d.startswith(("_", "."))]
        for name in folders:
            if os.path.islink(os.path.join(root, name)):
                raise InputError(
                    os.path.join(root, name),
                    "a link to a folder inside a partitioned folder: its parts would be read "
                    "again (or without end); move or copy them in instead",
                )
        files += [os.path.join(root, n) for n in names if not n.startswith(("_", "."))]
    named = [f for f in files if _is_part(f)]
    if not named or not all(f.lower().endswith((".parquet", ".pq")) for f in named):
        return None  # (CSV parts: read file by file)
    import pyarrow.dataset as pds
    import pyarrow.parquet as pq

    # every file read (a scan skipped one it could not read: a split lost without a word);
    # their columns are checked as the parts of any folder are, where they are resolved
    for file in sorted(files):
        try:
            pq.read_schema(file)
        except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors or OSErrors
            raise InputError(file, f"cannot read as Parquet: {first_line(exc)}") from None
    try:
        dataset = pds.dataset(
            sorted(files), format="parquet", partitioning="hive", partition_base_dir=path
        )
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read as a partitioned dataset: {first_line(exc)}") from None
    check_width(path, dataset.schema.names)
    return dataset


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
    elif os.path.exists(path) or not any(ch in path for ch in GLOB_CHARS):
        return None
    else:
        names = sorted(n for n in glob.glob(path) if os.path.isfile(n))
        if not names:
            raise InputError(path, "no file matches the pattern")
    for name in names:  # (pyarrow reads the parts)
        _check_utf8_name(name)
    return names


def input_files(path: str) -> list[str]:
    """The local files that ``path`` names as an input: itself, a folder's parts (in its
    subfolders too, for hive partitions) or a pattern's matching files; none for a URL or a
    name that is not a path (a DataFrame's label)."""
    import glob

    if is_url(path):
        return []
    if os.path.isdir(path):
        return [os.path.join(r, n) for r, _, names in os.walk(path) for n in names if _is_part(n)]
    if os.path.exists(path):
        return [path]
    if not any(ch in path for ch in GLOB_CHARS):
        return []
    return [n for n in glob.glob(path) if os.path.isfile(n)]


def check_parts(parts: Sequence[Source]) -> list[Source]:
    """The parts, each with its probability columns in the first part's class order (a part
    whose columns name the same classes in another order is read in that order); a part of
    another format than the first's, or whose classes or columns still differ from the first
    part's, is refused."""
    first = parts[0]
    out = [first]
    for part in parts[1:]:
        if part.format != first.format:  # (the same rows saved twice, as CSV and as Parquet?)
            kind = {"csv": "CSV", "parquet": "Parquet"}
            raise InputError(
                part.path,
                f"is {kind.get(part.format, part.format)}, where {first.path} is "
                f"{kind.get(first.format, first.format)}: the parts of one table are files of "
                "one format",
            )
        if (
            not part.binary
            and part.classes != first.classes
            and sorted(part.classes) == sorted(first.classes)
        ):
            order = [part.classes.index(c) for c in first.classes]
            part = dataclasses.replace(  # (a pair, one-hot or not, has no parts)
                part,
                classes=first.classes,
                proba_columns=tuple(part.proba_columns[j] for j in order),
            )
        out.append(part)
        for what, a, b in (
            ("classes", part.classes, first.classes),
            ("probability columns", part.proba_columns, first.proba_columns),
        ):
            if a != b:
                raise InputError(
                    part.path,
                    f"its {what} {name_list(a)} differ from {first.path}'s {name_list(b)}",
                )
    return out
