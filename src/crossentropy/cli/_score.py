"""``crossentropy score``: the options parsed, :func:`crossentropy.scoring.score` called, its
:class:`~crossentropy.scoring.ScoreReport` printed as a table or JSON and written as HTML.

Importing this module is cheap: pyarrow, matplotlib and dask are imported only when the command
runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

from crossentropy.cli._numbers import typed_float, typed_int
from crossentropy.metrics._formulas import RENORMALIZE

__all__ = ["add_score_parser", "score_command"]

PROG = "crossentropy score"

DESCRIPTION = """\
Score probability predictions: log loss, accuracy, Brier score, calibration (smooth ECE with a
bootstrap interval, CORP decompositions, binned ECE), mean entropy of the predictions,
per-class log loss and the worst rows. Several prediction sets on the same targets are compared,
with paired bootstrap intervals of their differences. Files are read in batches, so memory stays
bounded whatever their size."""

EPILOG = """\
inputs:
  one table (CSV, Parquet):
      crossentropy score preds.csv --target y --proba-cols 'p_*'
    --target names the column of true labels; --proba-cols picks the probability columns by a
    comma list of names and glob patterns (quote globs for the shell). A column matched by a
    pattern belongs to the class left after removing the pattern's fixed prefix and suffix
    ('p_*' maps column p_cat to class cat); a column named outright belongs to the class of its
    full name. Without --proba-cols every other column is a probability column. --classes
    a,b,c renames the classes (in column order; refused where it would give a column the
    class another column's name gives). A single probability column is read as
    P(class 1) of a binary problem (classes 0 and 1, or the two given by --classes), unless
    its name gives the first of the two (p_0 by the pattern p_*, p_no named outright with
    --classes no,yes, or p_False in any case): then it is that class's probability.
  a Kaggle-style pair, joined on an id column:
      crossentropy score --solution solution.csv --submission submission.csv --id id
    The solution holds the id and the target column (--target, needed only when the solution
    has more than these two columns), or, in Kaggle's layout, a 0/1 column per class named as
    the submission's probability columns; the submission holds the id and one probability
    column per class, named by the class. When both files list the ids in the same order they are
    joined row by row in bounded memory (each row pairs with its row: an id repeated in both
    files alike is not found); otherwise the solution is held as a sorted id -> label table,
    O(rows of the solution) memory, and every solution id must appear exactly once in the
    submission.
  NumPy:
      crossentropy score preds.npz            (arrays y_true (n,) and y_proba (n, C); an
                                               optional array classes names the columns;
                                               an .npz is loaded whole into memory)
      crossentropy score proba.npy --target-file y.npy   (memory-mapped, read in batches)
    Without names, labels that are all within 0 .. C-1 are the columns' positions, and other
    labels of exactly C distinct values are the classes, sorted, as scikit-learn's log_loss
    finds them (-1 and 1 for two columns); a vector y_proba (n,) is the second class's
    probability, as scikit-learn reads it. Integer labels in y_true are matched to
    integer class names; with non-integer names they are class indices (0 .. C-1) into the
    columns. Integer labels all within 1 .. C-1 (no 0) for C >= 3 columns are refused as
    unclear (positions without a row of class 0, or classes 1 .. C without one of class C):
    name the classes with --classes.

  several prediction sets on the same targets, compared:
      crossentropy score a.csv b.csv --target y --proba-cols 'p_*'
      crossentropy score --solution sol.csv --submission a.csv --submission b.csv --id id
    Each set is scored as above; the paired differences of log loss, Brier score and accuracy
    get 95 % bootstrap intervals (--bootstrap replicates, whose weights depend on each example
    only, so bounded memory). Rows of single tables are paired by their --id column, or
    without one by position (the same labels in the same row order).

  conventions: the log loss clips probabilities at the stored dtype's epsilon (scikit-learn
  since 1.2; float32 files at float32's). Kaggle rescales each row to sum 1, then clips at 1e-15:
      --clip 1e-15 --renormalize
  scikit-learn 1.2 to 1.4 clipped at the dtype's epsilon, then rescaled: --renormalize after_clip
  scikit-learn before 1.2 clipped at 1e-15, then rescaled: --clip 1e-15 --renormalize after_clip

  Labels are matched as text against the class names; where every class name is an integer,
  labels writing one match it by value (2, 2.0 and "2.0" match the class 2). Rows are
  numbered from 1, the header not counted. Probabilities must be numbers in [0, 1]; rows
  that do not sum to 1 are scored as given (not renormalised) with one warning.

output: a table on stdout; --json prints the numbers as JSON; --report PATH.html writes a
self-contained page (figures embedded as PNG, no network).

engines: --engine local (default) reads the batches in this process; --engine dask cuts the
input into pieces (Parquet row groups, CSV byte ranges at record ends, .npy row ranges) that the
workers of a dask.distributed cluster read and score, and merges their results: the same numbers
to ~1e-16. Without --scheduler it starts an in-process local cluster. The files must be readable
by the workers. CSV pieces end where a record ends, outside quotes, so quoted values may hold
line breaks and rows keep their numbers. A cluster left without workers for 30 s is an error.

exit status: 0 on success, 2 on bad usage or bad input (one line on stderr naming the file, the
data row and the column) or when the Dask cluster cannot be reached."""


# --------------------------------------------------------------------------- the command


def _replicates(text: str) -> int:
    from crossentropy.metrics._calibration import MAX_BOOTSTRAP  # the library's own limit

    value = _nonnegative_int(text)
    if value > MAX_BOOTSTRAP:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_BOOTSTRAP:,}; got {value:,}")
    return value


def _bins(text: str) -> int:
    from crossentropy.metrics._calibration import MAX_BINS  # the library's own limit

    value = _positive_int(text)
    if value > MAX_BINS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_BINS:,} bins; got {value:,}")
    return value


def _worst(text: str) -> int:
    from crossentropy.metrics._score import MAX_WORST  # the library's own limit

    value = _nonnegative_int(text)
    if value > MAX_WORST:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_WORST:,} rows; got {value:,}")
    return value


def _int_at_least(text: str, low: int, expected: str) -> int:
    value = typed_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {value}")
    return value


def _clip(text: str) -> float:
    from crossentropy._lib.checks import check_clip

    value = typed_float(text)
    try:
        if value is None:
            raise ValueError(text)
        return check_clip(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 0.5); got {text!r}") from None


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def bare_renormalize(argv: list[str]) -> list[str]:
    """``argv`` with a ``--renormalize`` (or an abbreviation argparse takes, ``--renorm``)
    that is not followed by one of its values written ``--renormalize=before_clip``:
    argparse would take the word after it, a file name say, for its value
    (``--renormalize preds.csv`` is the default order and a file)."""
    return [
        "--renormalize=before_clip"
        if tok.startswith("--ren")
        and "--renormalize".startswith(tok)
        and argv[i + 1 : i + 2] not in ([o] for o in RENORMALIZE)
        else tok
        for i, tok in enumerate(argv)
    ]


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
    from crossentropy.metrics._calibration import MAX_BINS
    from crossentropy.scoring._sources import FORMATS

    p: argparse.ArgumentParser = sub.add_parser(
        "score",
        help="score probability predictions from files (log loss, accuracy, Brier, calibration)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file",
        nargs="*",
        metavar="FILE",
        help="predictions (CSV, Parquet, .npy, .npz); two or more are compared",
    )
    g = p.add_argument_group("columns")
    g.add_argument("--target", metavar="COL", help="column of true labels")
    g.add_argument(
        "--proba-cols",
        metavar="COLS",
        help="probability columns: comma list of names and glob patterns, e.g. 'p_*'",
    )
    g.add_argument("--classes", metavar="A,B,...", help="class names, in column order")
    g.add_argument(
        "--id",
        dest="id_column",
        metavar="COL",
        help="id column: joins the pair, pairs the rows of compared tables, names the worst rows",
    )
    g.add_argument("--solution", metavar="FILE", help="Kaggle-style solution: id + target")
    g.add_argument(
        "--submission",
        metavar="FILE",
        action="append",
        help="Kaggle-style submission: id + one column per class (repeat to compare several)",
    )
    g.add_argument(
        "--target-file", metavar="FILE", help="labels (.npy) for a .npy of probabilities"
    )
    g.add_argument(
        "--split",
        metavar="COL",
        help="score each value of this column alone too (Kaggle's Usage: Public / Private; "
        "a column of the solution in a pair; at most 10,000 values)",
    )
    g.add_argument(
        "--sample-weight",
        metavar="COL",
        help="column of sample weights (finite, >= 0; in a pair, the solution's, else the "
        "submission's): every mean, bin and calibration number is weighted, as scikit-learn's "
        "sample_weight; row counts stay counts of rows",
    )
    g.add_argument(
        "--format",
        type=str.lower,
        choices=FORMATS,
        help="input format (default: from the file name)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print the numbers as JSON")
    o.add_argument("--report", metavar="PATH.html", help="write a self-contained HTML report")
    o.add_argument(
        "--bins",
        type=_bins,
        default=15,
        metavar="N",
        help=f"equal-width calibration bins (default 15, at most {MAX_BINS:,})",
    )
    o.add_argument(
        "--worst",
        type=_worst,
        default=10,
        metavar="N",
        help="worst rows to list (10, at most 10,000)",
    )
    o.add_argument(
        "--bootstrap",
        type=_replicates,
        default=200,
        metavar="N",
        help="bootstrap replicates of the intervals (default 200; 0: none; at most 10,000)",
    )
    o.add_argument("--seed", type=_nonnegative_int, default=0, metavar="N", help="bootstrap seed")
    c = p.add_argument_group("conventions")
    c.add_argument(
        "--clip",
        type=_clip,
        metavar="EPS",
        help="clip probabilities at [EPS, 1-EPS] (default: the stored dtype's epsilon, as "
        "scikit-learn; Kaggle: 1e-15)",
    )
    c.add_argument(
        "--renormalize",
        nargs="?",
        const="before_clip",
        choices=RENORMALIZE,
        help="divide each row by its sum: before clipping (Kaggle, the default when given) or "
        "after (scikit-learn < 1.5)",
    )
    o.add_argument(
        "--progress",
        action="store_true",
        help="progress bar on stderr (default: in a terminal, where tqdm is installed)",
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


def terminal_safe(text: str) -> str:
    """``text`` with every line made :func:`~crossentropy.scoring._report.printable`, so that
    class names, ids and paths from a file cannot drive the terminal."""
    from crossentropy.scoring._report import printable

    return "\n".join(printable(line) for line in text.split("\n"))


def _error(message: str) -> int:
    """Print ``message`` as one line (a line break in a file's name escaped too); exit 2."""
    from crossentropy.scoring._report import printable

    sys.stderr.write(f"{PROG}: error: {printable(message)}\n")
    sys.stderr.flush()
    return 2


class _HidePandas:
    """An import finder that makes ``import pandas`` fail (see :func:`spare_pandas_import`)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def spare_pandas_import() -> None:
    """Spare the ``score`` command's own process pyarrow's import of pandas: about 0.45 s,
    a fifth of scoring a 2M-row pair on the 2-core reference machine.

    On its first conversion of an array pyarrow imports pandas, to tell pandas objects from
    others. A command that reads files holds none, so that check is made here, once, with
    pandas hidden from the import system: pyarrow then takes every object for a non-pandas
    one, and still imports pandas where a conversion needs it (``to_pandas``). For a process
    the command owns only (:func:`crossentropy.cli.console`), never for :func:`main` called
    from other code, whose pandas objects pyarrow must recognise; and nothing is done when
    pandas is already imported (or pyarrow is missing).
    """
    if "pandas" in sys.modules:
        return
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
    except ImportError:
        return
    hide = _HidePandas()
    sys.meta_path.insert(0, hide)
    try:
        pa.array([0.0])
    except Exception:  # any failure leaves pyarrow's default: pandas imported when needed
        pass
    finally:
        sys.meta_path.remove(hide)


def score_command(args: argparse.Namespace) -> int:
    """Run ``crossentropy score``; return the exit status (0, or 2 on bad input).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of :func:`add_score_parser`.
    """
    from crossentropy._lib.extras import installed
    from crossentropy._lib.html import check_output_path
    from crossentropy.scoring import InputError, score
    from crossentropy.scoring._engine import ProgressBar
    from crossentropy.scoring._report import printable, require_report_modules
    from crossentropy.scoring._sources import input_files, is_url

    if args.scheduler and args.engine != "dask":
        return _error("--scheduler needs --engine dask")
    if args.partitions is not None and args.engine != "dask":
        return _error("--partitions needs --engine dask")
    given = {
        "FILE": args.file or [],
        "--submission": args.submission or [],
        "--solution": [args.solution],
        "--target-file": [args.target_file],
    }
    for name, paths in given.items():
        if "" in paths:  # not the current folder
            return _error(f"{name} is an empty path")
    if args.file and (args.solution or args.submission):
        return _error("give either FILE or --solution and --submission, not both")
    if args.solution and not args.submission:
        return _error("--solution needs --submission")
    if args.submission and not args.solution:
        return _error("--submission needs --solution")
    # Absolute paths: Dask workers may run in another working directory (URLs as given).
    predictions = [f if is_url(f) else os.path.abspath(f) for f in (args.submission or args.file)]
    inputs = {f"prediction {i + 1}": path for i, path in enumerate(predictions)}
    for name in ("solution", "target_file"):
        value = getattr(args, name)
        if value:
            inputs[name] = value if is_url(value) else os.path.abspath(value)
            setattr(args, name, inputs[name])
    if args.report is not None and not args.report:
        return _error("--report needs a file path")
    try:  # what --report and --progress draw with, before any scoring
        if args.report:
            require_report_modules()
        # a terminal gets a bar where tqdm is installed; --progress asks for one
        bar = ProgressBar(bool(args.progress) or (sys.stderr.isatty() and installed("tqdm")))
    except ModuleNotFoundError as exc:
        return _error(str(exc))
    if args.report:
        files = [f for path in inputs.values() for f in input_files(path)]
        try:
            check_output_path(args.report, files)  # before any scoring
        except ValueError as exc:
            return _error(f"--report {exc}")
    try:
        data: Any = predictions if len(predictions) > 1 else (predictions or [None])[0]
        with warnings.catch_warnings(record=True) as caught:  # printed below, as lines
            report = score(
                data,
                target=args.target,
                proba=None if args.proba_cols is None else args.proba_cols.split(","),
                classes=None if args.classes is None else args.classes.split(","),
                solution=args.solution,
                id=args.id_column,
                target_file=args.target_file,
                format=args.format,
                engine=args.engine,
                scheduler=args.scheduler,
                partitions=args.partitions,
                progress=bar,
                bins=args.bins,
                worst=args.worst,
                bootstrap=args.bootstrap,
                seed=args.seed,
                clip=args.clip,
                renormalize=args.renormalize or False,
                split=args.split,
                batch_rows=args.batch_rows,
                sample_weight=args.sample_weight,
            )
        if args.report:
            report.to_html(args.report)
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
    except ModuleNotFoundError as exc:  # an optional package (score() names it and its extra)
        bar.clear()
        return _error(str(exc))
    except Exception as exc:  # one line, never a traceback
        bar.clear()
        if type(exc) in (ValueError, TypeError):  # the library's refusal: its message says what
            return _error(str(exc))
        where = predictions[0] if predictions else "input"  # a safety net: name the input
        return _error(f"{where}: {type(exc).__name__}: {exc}")
    for one in caught:
        sys.stderr.write(printable(f"{PROG}: warning: {one.message}") + "\n")
    try:
        print(report.to_json() if args.json else terminal_safe(report.to_text()), flush=True)
    except BrokenPipeError:  # stdout closed early (``| head``): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if args.report:
        sys.stderr.write(printable(f"{PROG}: report written to {args.report}") + "\n")
    return 0
