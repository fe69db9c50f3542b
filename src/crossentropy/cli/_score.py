"""``crossentropy score``: log loss, accuracy, Brier, calibration of probability predictions.

The command reads a file of predictions (or a Kaggle-style solution/submission pair) in batches
through :mod:`crossentropy.cli._read`, feeds them to
:class:`crossentropy.metrics.ScoreAccumulator` (where every formula lives), and prints a table,
JSON, or writes a self-contained HTML report. ``--engine dask`` reads pieces of the file on the
workers of a ``dask.distributed`` cluster and merges their accumulators.

Importing this module is cheap: pyarrow, matplotlib and dask are imported only when the command
runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import numpy as np

    from crossentropy.cli._read import Batch, SolutionIndex, Source, Unit
    from crossentropy.metrics import ScoreAccumulator

__all__ = ["add_score_parser", "score_command", "score_dask", "score_local"]

PROG = "crossentropy score"
#: How long ``--scheduler ADDRESS`` may take to answer.
CONNECT_TIMEOUT = "10s"

DESCRIPTION = """\
Score probability predictions: log loss, accuracy, Brier score, expected calibration error
(ECE), mean entropy of the predictions, per-class log loss and the worst rows. Files are read
in batches, so memory stays bounded whatever their size."""

EPILOG = """\
inputs:
  one table (CSV, Parquet):
      crossentropy score preds.csv --target y --proba-cols 'p_*'
    --target names the column of true labels; --proba-cols picks the probability columns by a
    comma list of names and glob patterns (quote globs for the shell). A column matched by a
    pattern belongs to the class left after removing the pattern's fixed prefix and suffix
    ('p_*' maps column p_cat to class cat); a column named outright belongs to the class of its
    full name. Without --proba-cols every other column is a probability column. --classes
    a,b,c renames the classes (in column order). A single probability column is read as
    P(class 1) of a binary problem (classes 0 and 1, or the two given by --classes).
  a Kaggle-style pair, joined on an id column:
      crossentropy score --solution solution.csv --submission submission.csv --id id
    The solution holds the id and the target column (--target, needed only when the solution
    has more than these two columns); the submission holds the id and one probability column
    per class, named by the class. When both files list the ids in the same order they are
    joined row by row in bounded memory; otherwise the solution is held as a sorted id -> label
    table, O(rows of the solution) memory, and every solution id must appear exactly once in
    the submission.
  NumPy:
      crossentropy score preds.npz            (arrays y_true (n,) and y_proba (n, C); an
                                               optional array classes names the columns;
                                               an .npz is loaded whole into memory)
      crossentropy score proba.npy --target-file y.npy   (memory-mapped, read in batches)
    Without names, the classes are 0 .. C-1. Integer labels in y_true are matched to integer
    class names; with non-integer names they are class indices (0 .. C-1) into the columns.

  Labels are matched as text against the class names; integer labels also match integer class
  names. Rows are numbered from 1, the header not counted. Probabilities must be numbers in
  [0, 1]; rows that do not sum to 1 are scored as given (not renormalised) with one warning.

output: a table on stdout; --json prints the numbers as JSON; --report PATH.html writes a
self-contained page (figures embedded as PNG, no network).

engines: --engine local (default) reads the batches in this process; --engine dask cuts the
input into pieces (Parquet row groups, CSV byte ranges at line breaks, .npy row ranges) that the
workers of a dask.distributed cluster read and score, and merges their results: the same numbers
to ~1e-16. Without --scheduler it starts an in-process local cluster. The files must be readable
by the workers; CSV fields must not hold line breaks.

exit status: 0 on success, 2 on bad usage or bad input (one line on stderr naming the file, the
data row and the column) or when the Dask cluster cannot be reached."""


# --------------------------------------------------------------------------- progress bar


class ProgressBar:
    """A plain-text progress bar on a stream (stderr), redrawn at most every 0.2 s.

    Parameters
    ----------
    enabled : bool
        Draw anything at all.
    stream : file-like, optional
        Where to draw (default: ``sys.stderr``).
    """

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.last = 0.0
        self.width = 0

    def update(self, fraction: float, rows: int | None, *, force: bool = False) -> None:
        """Show ``fraction`` of the input done and ``rows`` rows scored (if known)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * 30)
        elapsed = now - self.start
        line = f"scoring [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%  "
        if rows is not None:
            rate = rows / elapsed if elapsed > 0 else 0.0
            line += f"{rows:,} rows  {elapsed:6.1f} s  {rate:,.0f} rows/s"
        else:
            line += f"{elapsed:6.1f} s"
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def finish(self, rows: int) -> None:
        """Draw the bar at 100 % and end its line."""
        if self.enabled:
            self.update(1.0, rows, force=True)
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0

    def clear(self) -> None:
        """Erase the bar (before an error message)."""
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


# --------------------------------------------------------------------------- engines


@dataclass
class Part:
    """What scoring one unit of the input gives: the accumulator and what the merge needs.

    Attributes
    ----------
    acc : ScoreAccumulator
        The unit's numbers.
    first_row : int
        1-based data row of the unit's first row.
    positions : numpy.ndarray or None
        Pair mode: the solution-index position of each row, to check every id is used once.
    ids : dict
        Pair mode: the id of each row among the unit's worst rows.
    """

    acc: ScoreAccumulator
    first_row: int
    positions: np.ndarray | None
    ids: dict[int, Any]


class _WorstIds:
    """Keeps the ids (pair mode) of the rows that are currently among the worst rows."""

    def __init__(self) -> None:
        self.ids: dict[int, Any] = {}

    def note(self, acc: ScoreAccumulator, batch: Batch) -> None:
        if batch.ids is None or not len(batch.rows):
            return
        first = int(batch.rows[0])
        keep: dict[int, Any] = {}
        for w in acc.result()["worst"]:
            row = int(w["row"])
            if row in self.ids:
                keep[row] = self.ids[row]
            elif first <= row < first + len(batch.rows):
                keep[row] = batch.ids[row - first].item()
        self.ids = keep


def _new_accumulator(src: Source, bins: int, worst: int) -> ScoreAccumulator:
    from crossentropy.metrics import ScoreAccumulator

    return ScoreAccumulator(list(src.classes), n_bins=bins, worst=worst)


def _consume(
    acc: ScoreAccumulator,
    batches: Iterable[Batch],
    progress: ProgressBar,
    ids: _WorstIds | None = None,
    seen: np.ndarray | None = None,
    src: Source | None = None,
) -> int:
    """Feed ``batches`` to ``acc``; return the number of rows. Checks ids used once if ``seen``."""
    from crossentropy.cli._read import InputError, mark_seen

    rows = 0
    for batch in batches:
        if seen is not None and batch.positions is not None and src is not None:
            dup = mark_seen(seen, batch.positions)
            if dup is not None:
                assert batch.ids is not None
                raise InputError(
                    src.path,
                    f"id {batch.ids[dup].item()!r} appears twice",
                    row=int(batch.rows[dup]),
                    column=src.id_column,
                )
        acc.update(batch.y, batch.proba, row_ids=batch.rows)
        if ids is not None:
            ids.note(acc, batch)
        rows += len(batch.rows)
        progress.update(batch.done, rows)
    return rows


def _check_all_used(src: Source, seen: np.ndarray, index: SolutionIndex) -> None:
    from crossentropy.cli._read import InputError, first_unseen

    missing = first_unseen(seen, index)
    if missing is not None:
        assert src.solution is not None
        raise InputError(
            src.solution,
            f"id {index.ids[missing].item()!r} has no row in the submission {src.path}",
            row=int(index.rows[missing]),
            column=src.id_column,
        )


def _finish(src: Source, acc: ScoreAccumulator, ids: dict[int, Any]) -> dict[str, Any]:
    from crossentropy.cli._read import InputError

    result = acc.result()
    if result["n"] == 0:
        raise InputError(src.path, "no data rows")
    if src.id_column:
        for w in result["worst"]:
            w["id"] = ids.get(int(w["row"]))
    return result


def score_local(
    src: Source, *, bins: int = 15, worst: int = 10, progress: ProgressBar | None = None
) -> dict[str, Any]:
    """Score ``src`` in this process, batch by batch.

    Parameters
    ----------
    src : Source
        The resolved input (:func:`crossentropy.cli._read.resolve_source`).
    bins : int, default 15
        Calibration bins.
    worst : int, default 10
        Worst rows to keep.
    progress : ProgressBar, optional
        Where to show progress.

    Returns
    -------
    dict
        :meth:`ScoreAccumulator.result`, with an ``id`` for each worst row in pair mode or
        when the table has an id column.

    Raises
    ------
    InputError
        Bad input, with its position.
    """
    import numpy as np

    from crossentropy.cli._read import NotAligned, SolutionIndex, iter_batches, iter_ordered_pair

    bar = progress or ProgressBar(False)
    if src.mode != "pair":
        acc, ids = _new_accumulator(src, bins, worst), _WorstIds()
        _consume(acc, iter_batches(src), bar, ids if src.id_column else None)
        return _finish(src, acc, ids.ids)
    acc, ids = _new_accumulator(src, bins, worst), _WorstIds()
    try:
        _consume(acc, iter_ordered_pair(src), bar, ids)
    except NotAligned:
        # Not in the same id order: join through a sorted id table of the solution.
        index = SolutionIndex.build(src)
        acc, ids = _new_accumulator(src, bins, worst), _WorstIds()
        seen = np.zeros(len(index.ids), dtype=bool)
        _consume(acc, iter_batches(src, None, index), bar, ids, seen, src)
        _check_all_used(src, seen, index)
    return _finish(src, acc, ids.ids)


def score_unit(unit: Unit, src: Source, index: SolutionIndex | None, bins: int, worst: int) -> Part:
    """Score one unit of the input (runs on a Dask worker, which reads the unit itself).

    Parameters
    ----------
    unit : Unit
        The piece of the file (:func:`crossentropy.cli._read.split_units`).
    src : Source
        The resolved input.
    index : SolutionIndex or None
        Pair mode: the solution's id table (scattered to the workers).
    bins, worst : int
        As in :func:`score_local`.

    Returns
    -------
    Part
        The unit's accumulator, and in pair mode the solution positions and worst-row ids.
    """
    from crossentropy.cli._read import iter_batches

    acc = _new_accumulator(src, bins, worst)
    ids = _WorstIds() if src.id_column else None
    positions = []
    for batch in iter_batches(src, unit, index):
        acc.update(batch.y, batch.proba, row_ids=batch.rows)
        if ids is not None:
            ids.note(acc, batch)
        if batch.positions is not None:
            positions.append(batch.positions)
    import numpy as np

    pos = np.concatenate(positions) if positions else None
    return Part(acc, unit.first_row, pos, ids.ids if ids is not None else {})


def _quiet_logs() -> None:
    """Silence the loggers of distributed (and its event loop) for the rest of the process:
    the in-process cluster's threads may still log (closed connections) after it shut down."""
    prefixes = ("distributed", "tornado", "asyncio")
    names = [n for n in logging.root.manager.loggerDict if n.startswith(prefixes)]
    for name in {*prefixes, *names}:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def score_dask(
    src: Source,
    *,
    scheduler: str | None = None,
    partitions: int | None = None,
    bins: int = 15,
    worst: int = 10,
    progress: ProgressBar | None = None,
) -> dict[str, Any]:
    """Score ``src`` on a ``dask.distributed`` cluster: one task per unit, merged in order.

    Parameters
    ----------
    src : Source
        The resolved input; the workers read it, so its paths must be readable there.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); without it a ``LocalCluster`` of
        in-process workers (inproc://, no port but the scheduler's HTTP one on 127.0.0.1) is started
        and closed.
    partitions : int, optional
        About how many units to cut the input into (default: 4 per worker).
    bins, worst : int
        As in :func:`score_local`.
    progress : ProgressBar, optional
        Shows units done.

    Returns
    -------
    dict
        The same result as :func:`score_local` (to rounding, ~1e-16 relative).
    """
    import numpy as np

    from crossentropy.cli._read import (
        InputError,
        SolutionIndex,
        first_line,
        mark_seen,
        split_units,
    )

    bar = progress or ProgressBar(False)
    with contextlib.ExitStack() as stack:
        import importlib

        dd: Any = importlib.import_module("distributed")  # untyped: used through Any
        _quiet_logs()  # after the import, which sets distributed's own levels

        if scheduler:
            try:
                client = stack.enter_context(dd.Client(scheduler, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(
                    scheduler, f"cannot connect to the Dask scheduler: {first_line(exc)}"
                ) from None
        else:
            try:
                # In-process workers that talk through memory (inproc://): no port is opened.
                cluster = stack.enter_context(
                    dd.LocalCluster(
                        n_workers=max(1, min(4, os.cpu_count() or 1)),
                        threads_per_worker=1,
                        processes=False,
                        dashboard_address=None,
                        # The scheduler's HTTP server (health, metrics) on loopback, any port.
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.CRITICAL,
                    )
                )
                client = stack.enter_context(dd.Client(cluster))
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise InputError(
                    "", f"cannot start a local Dask cluster: {first_line(exc)}"
                ) from None
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        units = split_units(src, partitions or 4 * n_workers)
        index = SolutionIndex.build(src) if src.mode == "pair" else None
        shared = client.scatter(index, broadcast=True) if index is not None else None
        futures = client.map(
            score_unit, units, src=src, index=shared, bins=bins, worst=worst, pure=False
        )
        for done, fut in enumerate(dd.as_completed(futures), start=1):
            if fut.status == "error":
                break
            bar.update(done / len(futures), None, force=True)
        for fut in futures:  # the first failing unit in file order reports its error
            if fut.status == "error":
                failure = fut.exception()
                client.cancel(futures)
                raise failure
        parts: list[Part] = client.gather(futures)
    acc = parts[0].acc
    for part in parts[1:]:
        acc.merge(part.acc)
    ids: dict[int, Any] = {}
    for part in parts:
        ids.update(part.ids)
    if index is not None:
        seen = np.zeros(len(index.ids), dtype=bool)
        for part in parts:
            if part.positions is None:
                continue
            dup = mark_seen(seen, part.positions)
            if dup is not None:
                raise InputError(
                    src.path,
                    f"id {index.ids[part.positions[dup]].item()!r} appears twice",
                    row=part.first_row + dup,
                    column=src.id_column,
                )
        _check_all_used(src, seen, index)
    return _finish(src, acc, ids)


# --------------------------------------------------------------------------- the command


_MAX_BINS = 10_000


def _bins(text: str) -> int:
    value = _positive_int(text)
    if value > _MAX_BINS:
        raise argparse.ArgumentTypeError(f"expected at most {_MAX_BINS} bins; got {value}")
    return value


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def add_score_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``score`` on the ``crossentropy`` command's sub-parsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``score`` parser.
    """
    from crossentropy.cli._read import FORMATS

    p: argparse.ArgumentParser = sub.add_parser(
        "score",
        help="score probability predictions from files (log loss, accuracy, Brier, calibration)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="predictions (CSV, Parquet, .npy, .npz)")
    g = p.add_argument_group("columns")
    g.add_argument("--target", metavar="COL", help="column of true labels")
    g.add_argument(
        "--proba-cols",
        metavar="COLS",
        help="probability columns: comma list of names and glob patterns, e.g. 'p_*'",
    )
    g.add_argument("--classes", metavar="A,B,...", help="class names, in column order")
    g.add_argument("--id", dest="id_column", metavar="COL", help="id column joining the pair")
    g.add_argument("--solution", metavar="FILE", help="Kaggle-style solution: id + target")
    g.add_argument(
        "--submission", metavar="FILE", help="Kaggle-style submission: id + one column per class"
    )
    g.add_argument(
        "--target-file", metavar="FILE", help="labels (.npy) for a .npy of probabilities"
    )
    g.add_argument("--format", choices=FORMATS, help="input format (default: from the file name)")
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print the numbers as JSON")
    o.add_argument("--report", metavar="PATH.html", help="write a self-contained HTML report")
    o.add_argument(
        "--bins", type=_bins, default=15, metavar="N", help="calibration bins (default 15)"
    )
    o.add_argument(
        "--worst", type=_nonnegative_int, default=10, metavar="N", help="worst rows to list (10)"
    )
    o.add_argument(
        "--progress", action="store_true", help="progress bar on stderr (default: if a terminal)"
    )
    e = p.add_argument_group("engine")
    e.add_argument("--engine", choices=("local", "dask"), default="local", help="default local")
    e.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask scheduler address (default: start an in-process local cluster)",
    )
    e.add_argument(
        "--partitions",
        type=_positive_int,
        metavar="N",
        help="dask: cut the input into about N pieces (default 4 per worker)",
    )
    e.add_argument(
        "--batch-rows",
        type=_positive_int,
        default=65536,
        metavar="N",
        help="rows per batch (default 65536); memory grows with it",
    )
    p.set_defaults(func=score_command)
    return p


def input_metadata(src: Source, args: argparse.Namespace, rows: int) -> dict[str, Any]:
    """What was scored and how: the files, columns, classes, rows, options and version (the
    ``input`` entry of the JSON and the report's Input table)."""
    from crossentropy import __version__

    files = {"predictions": src.path}
    if src.solution:
        files["solution"] = src.solution
    if src.target_file:
        files["labels"] = src.target_file
    return {
        "files": files,
        "mode": src.mode,
        "format": src.format,
        "target": src.target,
        "id_column": src.id_column,
        "classes": list(src.classes),
        "probability_columns": list(src.proba_columns),
        "rows": rows,
        "options": {
            "engine": args.engine,
            "bins": args.bins,
            "worst": args.worst,
            "batch_rows": args.batch_rows,
        },
        "crossentropy_version": __version__,
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def terminal_safe(text: str) -> str:
    """``text`` with every control character but the line break written as an escape
    (``\\x1b``), so class names, ids and paths from a file cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch == "\n" or ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _error(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {terminal_safe(message)}\n")
    sys.stderr.flush()
    return 2


def score_command(args: argparse.Namespace) -> int:
    """Run ``crossentropy score``; return the exit status (0, or 2 on bad input).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of :func:`add_score_parser`.
    """
    from crossentropy.cli._html import check_output_path
    from crossentropy.cli._read import InputError, resolve_source

    if args.scheduler and args.engine != "dask":
        return _error("--scheduler needs --engine dask")
    if args.partitions is not None and args.engine != "dask":
        return _error("--partitions needs --engine dask")
    if args.file and (args.solution or args.submission):
        return _error("give either FILE or --solution and --submission, not both")
    # Absolute paths: Dask workers may run in another working directory.
    inputs = {}
    for name in ("file", "solution", "submission", "target_file"):
        value = getattr(args, name)
        if value:
            inputs[name] = os.path.abspath(value)
            setattr(args, name, inputs[name])
    if args.report is not None and not args.report:
        return _error("--report needs a file path")
    if args.report:
        try:
            check_output_path(args.report)  # before any scoring
        except ValueError as exc:
            return _error(f"--report {exc}")
    if args.report and os.path.exists(args.report):
        for path in inputs.values():
            if os.path.exists(path) and os.path.samefile(path, args.report):
                return _error(f"--report {args.report}: is an input file; choose another path")
    bar = ProgressBar(bool(args.progress) or sys.stderr.isatty())
    try:
        src = resolve_source(
            file=args.file,
            target=args.target,
            proba_cols=args.proba_cols,
            classes=args.classes,
            solution=args.solution,
            submission=args.submission,
            id_column=args.id_column,
            target_file=args.target_file,
            fmt=args.format,
            batch_rows=args.batch_rows,
        )
        if args.engine == "dask":
            result = score_dask(
                src,
                scheduler=args.scheduler,
                partitions=args.partitions,
                bins=args.bins,
                worst=args.worst,
                progress=bar,
            )
        else:
            result = score_local(src, bins=args.bins, worst=args.worst, progress=bar)
        bar.finish(int(result["n"]))
        result["input"] = input_metadata(src, args, int(result["n"]))
        from crossentropy.cli._report import format_text, html_report, write_report

        if args.report:
            write_report(args.report, html_report(result, src))
    except InputError as exc:
        bar.clear()
        return _error(str(exc))
    except OSError as exc:
        bar.clear()
        name = exc.filename if exc.filename is not None else "input"
        return _error(f"{name}: {exc.strerror or exc}")
    except KeyboardInterrupt:  # no output written: the report is renamed into place at the end
        bar.clear()
        _error("interrupted")
        return 130
    except Exception as exc:  # a safety net: one line, never a traceback
        bar.clear()
        return _error(f"{args.file or args.submission or 'input'}: {type(exc).__name__}: {exc}")
    off = int(result.get("rows_not_summing_to_one", 0))
    if off:
        sys.stderr.write(
            terminal_safe(
                f"{PROG}: warning: {src.path}: {off:,} of {result['n']:,} rows have "
                "probabilities that do not sum to 1; they are scored as given, not renormalised"
            )
            + "\n"
        )
    text = json.dumps(_json_safe(result), indent=2, allow_nan=False) if args.json else None
    try:
        print(text if text is not None else terminal_safe(format_text(result, src)), flush=True)
    except BrokenPipeError:  # stdout closed early (``| head``): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if args.report:
        sys.stderr.write(terminal_safe(f"{PROG}: report written to {args.report}") + "\n")
    return 0
