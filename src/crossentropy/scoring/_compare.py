r"""Comparing prediction sets on the same targets: each one's report, and the paired
differences of their metrics with bootstrap intervals.

Every set is scored on its own, in bounded memory, with a paired Poisson bootstrap
(:mod:`crossentropy.metrics._bootstrap`): each example gets, in replicate :math:`b`, a weight
:math:`w_{bi}` that depends on the example only (its solution row, or its data row in a single
table), so the replicate means of two sets are over the same resampled examples and their
difference is the paired bootstrap of the difference:

.. math::

    \Delta_b = \frac{\sum_i w_{bi} \ell^A_i}{\sum_i w_{bi}}
             - \frac{\sum_i w_{bi} \ell^B_i}{\sum_i w_{bi}}

The interval is the 2.5 % and 97.5 % percentiles of :math:`\Delta_b`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crossentropy.scoring._api import ScoreReport, json_text, plain, report_inputs, score_one
from crossentropy.scoring._sources import InputError

if TYPE_CHECKING:
    from crossentropy.scoring._api import PathLike, Settings
    from crossentropy.scoring._engine import ProgressBar

__all__ = ["Comparison", "compare"]

#: The compared metrics: name, what is better.
METRICS = (("log_loss", "lower"), ("brier", "lower"), ("accuracy", "higher"))

#: Two values closer than this, relative to the larger, are a tie: sums over the same rows in
#: another order differ by their rounding (about 1e-16 relative), not by a better prediction.
TIE = 1e-12


def _ahead(x: Any, y: Any, sign: float) -> Any:
    """Where ``x`` is better than ``y`` by more than a tie (``sign`` -1 when lower is
    better)."""
    margin = TIE * np.maximum(np.abs(x), np.abs(y))
    return sign * (np.asarray(x) - np.asarray(y)) > margin


@dataclass(frozen=True)
class Comparison:
    """Two or more prediction sets scored on the same targets.

    Attributes
    ----------
    names : list of str
        The sets, in the order given.
    reports : dict
        Each set's :class:`ScoreReport`, by name.
    differences : list of dict
        For each pair ``a``, ``b`` (``a`` before ``b``) and each of ``log_loss``, ``brier``,
        ``accuracy``: ``difference`` (a − b), its 95 % paired bootstrap interval ``ci_low``,
        ``ci_high`` (None without bootstrap), ``better`` (the set with the better value, None
        on a tie: values within 1e-12 of each other, relative) and ``share_a_better``
        (the share of replicates in which ``a`` is better by more than a tie, among those
        that drew some weight).
    replicates : int
        Bootstrap replicates (0: no intervals).
    seed : int
        The bootstrap's seed.
    """

    # lists and dicts: not hashable (the generated __hash__ failed inside)
    __hash__ = None  # type: ignore[assignment]

    names: list[str]
    reports: dict[str, ScoreReport]
    differences: list[dict[str, Any]]
    replicates: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """The comparison as plain Python values (non-finite numbers as None)."""
        out = {
            "names": self.names,
            "reports": {k: r.to_dict() for k, r in self.reports.items()},
            "differences": self.differences,
            "replicates": self.replicates,
            "seed": self.seed,
        }
        return plain(out)  # type: ignore[no-any-return]

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text.

        Parameters
        ----------
        indent : int or None, default 2
            Spaces per level, 0 to 16 (None: one line).
        """
        return json_text(self.to_dict(), indent)

    def to_text(self) -> str:
        """The plain-text tables that ``crossentropy score`` prints for several sets."""
        from crossentropy.scoring._report import comparison_text

        return comparison_text(self)

    def html(self) -> str:
        """The comparison as a self-contained HTML page."""
        from crossentropy.scoring._report import comparison_html

        return comparison_html(self)

    def to_html(self, path: PathLike) -> None:
        """Write :meth:`html` to ``path`` atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The page to write; only a regular file there is ever replaced, and never one of
            the scored files.
        """
        from crossentropy._lib.html import check_output_path, write_atomic

        inputs = report_inputs(list(self.reports.values()))
        check_output_path(path, inputs)  # before the page's figures are drawn
        write_atomic(path, self.html(), inputs=inputs)

    def _repr_html_(self) -> str:
        """The notebook's view: :meth:`html`'s content in a ``<div>`` whose style leaves the
        rest of the notebook alone."""
        from crossentropy.scoring._report import comparison_html

        return comparison_html(self, fragment=True)

    def __str__(self) -> str:
        return self.to_text()


def _names(data: list[Any] | tuple[Any, ...] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, input) of each set: a dict's keys, else file names or ``set 1``, ``set 2``..."""
    if isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    else:
        items = []
        for i, value in enumerate(data):
            if isinstance(value, str | os.PathLike):
                items.append((os.path.basename(os.fspath(value)), value))
            else:
                items.append((f"set {i + 1}", value))
    names = [name for name, _ in items]
    if len(set(names)) != len(names):  # same file names in other folders
        items = [(f"{i + 1}: {name}", v) for i, (name, v) in enumerate(items)]
    if len(items) < 2:
        raise TypeError(
            "data must be a path, a DataFrame (pandas, polars), a pyarrow Table or a NumPy "
            "array, or a list or dict of two or more of them (a comparison); got a "
            f"{type(data).__name__} of {len(items)}"
        )
    return items


def compare(
    data: list[Any] | tuple[Any, ...] | Mapping[str, Any], settings: Settings, bar: ProgressBar
) -> Comparison:
    """Score each set of ``data`` with ``settings`` and compare them (:func:`score`)."""
    replicates = int(settings.accumulator["bootstrap"])
    seed = int(settings.accumulator["seed"])
    reports: dict[str, ScoreReport] = {}
    totals = {}
    for name, value in _names(data):
        bar.label = f"scoring {name}"
        try:
            report, total = score_one(value, settings, bar, paired=max(replicates, 1))
        except InputError as exc:
            if isinstance(value, str | os.PathLike):  # the message names the file
                raise
            where = f"prediction set {name!r}" + (f" ({exc.path})" if exc.path else "")
            raise InputError(where, exc.message, exc.row, exc.column) from None
        except (ValueError, TypeError) as exc:  # the set named (as a plain ValueError/TypeError)
            kind = ValueError if isinstance(exc, ValueError) else TypeError
            raise kind(f"prediction set {name!r}: {exc}") from None
        assert total is not None
        reports[name], totals[name] = report, total
    names = list(reports)
    first = reports[names[0]]
    for name in names[1:]:
        other = reports[name]
        # the same classes, their columns in any order (the rows are compared by class name)
        if other.n != first.n or sorted(other.input["classes"]) != sorted(first.input["classes"]):
            raise ValueError(
                f"prediction sets {names[0]!r} and {name!r} are not on the same targets: "
                f"{first.n:,} rows of classes {first.input['classes']} against {other.n:,} rows "
                f"of classes {other.input['classes']}"
            )
        if totals[name].fingerprint != totals[names[0]].fingerprint:
            raise ValueError(
                f"prediction sets {names[0]!r} and {name!r} are not on the same targets: the "
                "true labels (or the sample weights) differ for some examples (rows are paired by "
                + ("solution row" if settings.solution else "id" if settings.id else "position")
                + ")"
            )
    differences = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            means_a, means_b = totals[a].means(), totals[b].means()
            for j, (metric, better) in enumerate(METRICS):
                va, vb = getattr(reports[a], metric), getattr(reports[b], metric)
                delta = means_a[:, j] - means_b[:, j]
                sign = -1.0 if better == "lower" else 1.0
                entry: dict[str, Any] = {
                    "a": a,
                    "b": b,
                    "metric": metric,
                    "better_is": better,
                    "a_value": va,
                    "b_value": vb,
                    "difference": va - vb,
                    "ci_low": None,
                    "ci_high": None,
                    "better": a if _ahead(va, vb, sign) else b if _ahead(vb, va, sign) else None,
                    "share_a_better": None,
                }
                if replicates > 0:
                    lo, hi = np.nanpercentile(delta, [2.5, 97.5])
                    entry["ci_low"], entry["ci_high"] = float(lo), float(hi)
                    # among the replicates that drew some weight (a mean is NaN otherwise)
                    drawn = ~np.isnan(delta)
                    ahead = _ahead(means_a[drawn, j], means_b[drawn, j], sign)
                    entry["share_a_better"] = float(np.mean(ahead)) if drawn.any() else None
                differences.append(entry)
    return Comparison(names, reports, differences, replicates, seed)
