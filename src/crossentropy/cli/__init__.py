"""The ``crossentropy`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

__all__ = ["console", "main"]


def _demo_command(args: argparse.Namespace) -> int:
    from crossentropy.cli._demo import demo_command, missing_packages
    from crossentropy.cli._examples import format_table, worked_examples

    missing = missing_packages()  # before the folder is made: nothing is left behind
    if missing is not None:
        print(f"crossentropy demo: error: {missing}", file=sys.stderr)
        return 1
    # the report's folder first: a bad one stops the command before anything is printed
    fault = None
    if not str(args.out).strip():
        fault = "an empty path: name the report's folder"
    else:
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            fault = f"cannot make the report's folder {args.out}: {err.strerror or err}"
    if fault is not None:
        from crossentropy.scoring._report import printable  # one line, whatever the name

        print(printable(f"crossentropy demo: error: --out: {fault}"), file=sys.stderr)
        return 2

    print("The tutorials' worked examples, computed by crossentropy (nats = log base e, bits =")
    print("log base 2):\n")
    print(format_table(worked_examples()))
    return demo_command(args.out, quick=args.quick)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    import crossentropy

    parser = _Parser(
        prog="crossentropy",
        description="Cross-entropy and the losses around it.",
    )
    version = f"%(prog)s {crossentropy.__version__}"
    parser.add_argument("--version", action="version", version=version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="the tutorials' worked examples in nats and bits, then experiments on real "
        "digits with an HTML report and figures",
        description="Print the classic tutorials' worked examples (information, entropy, KL "
        "divergence and cross-entropy, in nats and bits), then train on scikit-learn's digits "
        "(logistic regression; an MLP with cross-entropy against MSE; class weights and focal "
        "loss for imbalance; Huber against outliers; multi-label heads) and write a report to "
        "--out: index.html, results.json and PNG figures. About 10 s, a few with --quick.",
    )
    demo.add_argument(
        "--out",
        default="crossentropy-demo",
        metavar="DIR",
        help="report folder (default: %(default)s)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="fewer steps and epochs (for tests and docs)"
    )
    demo.set_defaults(func=_demo_command)
    from crossentropy.cli._calc import add_calc_parser

    add_calc_parser(sub)
    from crossentropy.cli._score import add_score_parser

    add_score_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crossentropy`` command; returns the exit code (2 for bad usage)."""
    parser = _parser()
    if argv is None:
        argv = sys.argv[1:]
    if list(argv[:1]) == ["score"]:
        from crossentropy.cli._score import bare_renormalize

        argv = bare_renormalize(list(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:  # told by the command's own parser, which names the command and its help
        commands = next(
            a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        ).choices
        given = list(argv)
        before = given[: given.index(args.command)] if args.command in given else given
        chosen = parser if not args.command or set(extra) & set(before) else None
        (chosen or commands[args.command]).error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away (``| head``): not an error of ours
        _drop_stdout()
        return 0
    except OSError as exc:  # the commands name their files' errors: standard output failed
        if exc.filename is not None:
            raise
        _drop_stdout()
        sys.stderr.write(f"crossentropy: error: cannot write the output: {exc.strerror or exc}\n")
        return 2


def _drop_stdout() -> None:
    """Point standard output at the null device, so that the output still buffered is not
    written again at exit (a second failure, or a traceback)."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def console() -> int:
    """The ``crossentropy`` console script (and ``python -m crossentropy``, ``python -m
    crossentropy.cli``): :func:`main` in a process of its own, where ``score`` spares itself
    pyarrow's import of pandas (:func:`crossentropy.cli._score.spare_pandas_import`). An
    interrupt (Ctrl-C) while the command starts (its imports, before a command handles it)
    exits 130 with one line, as one during the command does."""
    try:
        if sys.argv[1:2] == ["score"]:
            from crossentropy.cli._score import spare_pandas_import

            spare_pandas_import()
        return main()
    except KeyboardInterrupt:
        sys.stderr.write("crossentropy: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
