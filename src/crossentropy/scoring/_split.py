"""Cutting an input into pieces for the workers of the Dask engine, for
:func:`crossentropy.scoring.score` with ``engine="dask"``.

The fourth layer of the scoring engine. :func:`split_units` cuts a
:class:`~crossentropy.scoring._sources.Source` into :class:`~crossentropy.scoring._sources.Unit`
pieces that :mod:`~crossentropy.scoring._readers` reads on a worker: consecutive Parquet row
groups (as Dask's own Parquet reader partitions a file), NumPy row ranges, and CSV byte ranges
cut at record ends. A CSV range knows the data row it starts at, so an error on a worker names
the same row as the local engine; quoted values holding line breaks stay in one range (where
``dask.dataframe.read_csv``'s byte ranges would cut them). Compressed CSV and ``.npz`` are one
piece.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from crossentropy.scoring._sources import Source, Unit, csv_header_bytes, gzipped

__all__ = ["split_units"]


def split_units(src: Source, parts: int) -> list[Unit]:
    """Cut the (submission) file into about ``parts`` units for parallel reading.

    Parquet: consecutive row groups (a row group is never split); CSV: byte ranges cut at the
    line breaks that end a record (outside quotes, so a quoted value may hold line breaks), each
    with the data row it starts at; ``.npy``: row ranges; ``.npz`` and compressed CSV: one
    unit.
    """
    parts = max(int(parts), 1)
    if src.format == "parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

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
    if src.format == "csv" and not gzipped(src.path):
        return _csv_units(src.path, parts)
    return [Unit()]


def _csv_units(path: str, parts: int) -> list[Unit]:
    size = os.path.getsize(path)
    start = len(csv_header_bytes(path))
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
