"""The renderings of a :class:`~crossentropy.scoring.ScoreReport`: a text table and a
self-contained HTML page (what ``crossentropy score`` prints and writes).

Both take the result dict of :meth:`crossentropy.metrics.ScoreAccumulator.result` (plus an ``id``
for each worst row of a solution/submission pair). The HTML page embeds its figures as base64
PNG data URIs, drawn by matplotlib without pyplot (the Agg canvas, no global state); matplotlib
is imported only when a report is drawn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossentropy.scoring._read import Source

__all__ = ["format_text", "html_report"]

#: The per-class bar chart shows at most this many classes (the ones with the largest loss).
MAX_BARS = 40


def _num(value: Any, digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—" if value is None else str(value)
    return f"{value:.{digits}f}"


def _prob(p: float) -> str:
    """A probability with 6 decimals, or in scientific notation below 1e-4."""
    return f"{p:.6f}" if p == 0 or p >= 1e-4 else f"{p:.3e}"


def _clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _describe(result: dict[str, Any], src: Source) -> str:
    n, c = int(result["n"]), len(result["per_class"])
    if src.mode == "pair":
        what = f"{src.path} scored against {src.solution} (id column {src.id_column!r})"
    elif src.mode == "arrays":
        what = src.path + (f" with labels from {src.target_file}" if src.target_file else "")
    else:
        what = f"{src.path}, target column {src.target!r}"
    return f"{what}: {n:,} rows, {c} classes"


def _summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    bins = len(result["reliability"])
    binary = len(result["per_class"]) == 2
    return [
        ("log loss (nats)", _num(result["log_loss"])),
        ("accuracy", _num(result["accuracy"])),
        ("Brier score" + (" (binary)" if binary else " (sum over classes)"), _num(result["brier"])),
        (f"ECE ({bins} bins)", _num(result["ece"])),
        ("mean entropy of the predictions (nats)", _num(result["mean_entropy"])),
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if flag else c.ljust(w)
            for c, w, flag in zip(cells, widths, right, strict=True)
        ]
        return "  " + "  ".join(out).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _worst_columns(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    pair = any("id" in w for w in result["worst"])
    header = ["row", *(["id"] if pair else []), "true class", "p(true class)", "loss (nats)"]
    rows = [
        [
            f"{w['row']:,}",
            *([_clip(str(w.get("id")))] if pair else []),
            _clip(str(w["label"])),
            _prob(w["p_true"]),
            _num(w["loss"], 4),
        ]
        for w in result["worst"]
    ]
    return header, rows


def format_text(result: dict[str, Any], src: Source) -> str:
    """The result as a plain-text report: the overall numbers, per class, the worst rows.

    Parameters
    ----------
    result : dict
        :meth:`ScoreAccumulator.result`.
    src : Source
        What was scored (for the heading).

    Returns
    -------
    str
        Lines of at most ~80 characters for usual class names.
    """
    n = int(result["n"])
    parts = [_describe(result, src), ""]
    parts.append(_table(["metric", "value"], _summary_rows(result), [False, True]))
    per_class = [
        [
            _clip(str(c["label"])),
            f"{c['count']:,}",
            f"{100 * c['count'] / n:.1f} %" if n else "—",
            _num(c["log_loss"], 4),
        ]
        for c in result["per_class"]
    ]
    parts += ["", "per class"]
    parts.append(
        _table(["class", "rows", "share", "log loss"], per_class, [False, True, True, True])
    )
    if result["worst"]:
        header, rows = _worst_columns(result)
        parts += ["", f"worst {len(rows)} rows (largest loss first)"]
        parts.append(
            _table(header, rows, [True] + [False] * (len(header) - 4) + [False, True, True])
        )
    return "\n".join(parts)


# --------------------------------------------------------------------------- figures


def _figure(width: float = 7.5, height: float = 4.2) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _reliability_headers(result: dict[str, Any]) -> list[str]:
    """Column titles of the reliability table: what is predicted and what is observed."""
    classes = [c["label"] for c in result["per_class"]]
    if len(classes) == 2:
        return [f"mean predicted P(class {classes[1]})", f"observed fraction of class {classes[1]}"]
    return ["mean confidence (top-class probability)", "observed accuracy"]


def _reliability_figure(result: dict[str, Any]) -> Any:
    bins = result["reliability"]
    classes = [c["label"] for c in result["per_class"]]
    binary = len(classes) == 2
    fig = _figure(7.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfectly calibrated")
    lo = [b["lo"] for b in bins]
    width = [b["hi"] - b["lo"] for b in bins]
    acc = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
    top.bar(
        lo,
        acc,
        width=width,
        align="edge",
        color="#4c72b0",
        edgecolor="white",
        alpha=0.85,
        label="observed",
    )
    used = [b for b in bins if b["count"]]
    top.plot(
        [b["confidence"] for b in used],
        [b["accuracy"] for b in used],
        "o-",
        color="#dd8452",
        markersize=4,
        label="mean predicted → observed",
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    what = f"P(class {classes[1]})" if binary else "confidence (probability of the top class)"
    observed = f"fraction of class {classes[1]}" if binary else "accuracy"
    top.set_ylabel(f"observed {observed}")
    top.set_title(f"Reliability diagram (ECE = {_num(result['ece'], 4)})")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(
        lo, [b["count"] for b in bins], width=width, align="edge", color="0.55", edgecolor="white"
    )
    bottom.set_xlabel(f"predicted {what}")
    bottom.set_ylabel("rows")
    return fig


def _per_class_figure(result: dict[str, Any]) -> tuple[Any, str]:
    """Horizontal bars, one per true class (top to bottom in column order; at most MAX_BARS)."""
    per_class = [c for c in result["per_class"] if c["log_loss"] is not None]
    note = ""
    if len(per_class) > MAX_BARS:
        per_class = sorted(per_class, key=lambda c: -c["log_loss"])[:MAX_BARS]
        note = f" ({MAX_BARS} classes with the largest loss)"
    labels = [_clip(str(c["label"]), 30) for c in per_class]
    fig = _figure(7.5, 1.6 + 0.28 * max(len(labels), 3))
    ax = fig.subplots()
    pos = list(range(len(labels)))
    ax.barh(pos, [c["log_loss"] for c in per_class], color="#55a868", height=0.7)
    ax.axvline(result["log_loss"], color="#c44e52", linestyle="--", linewidth=1)
    ax.set_yticks(pos)
    ax.set_yticklabels(labels)
    ax.margins(y=0.02)
    ax.invert_yaxis()  # first class on top
    ax.set_ylabel("true class")
    ax.set_xlabel("mean log loss of the class's rows (nats)")
    ax.set_title(
        "Log loss by true class"
        + note
        + f"\n(dashed: overall log loss {_num(result['log_loss'], 4)})"
    )
    return fig, note


def _histogram_figure(result: dict[str, Any]) -> Any:
    edges = list(result["loss_histogram"]["edges"])
    counts = list(result["loss_histogram"]["counts"])
    last = max((i for i, k in enumerate(counts) if k), default=0)
    edges, counts = edges[: last + 2], counts[: last + 1]
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    ax.bar(
        edges[:-1],
        counts,
        width=[b - a for a, b in itertools.pairwise(edges)],
        align="edge",
        color="#8172b3",
        edgecolor="white",
    )
    ax.axvline(
        result["log_loss"],
        color="#c44e52",
        linestyle="--",
        linewidth=1,
        label=f"mean (log loss) {_num(result['log_loss'], 4)}",
    )
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("per-row loss −log p(true class) (nats)")
    ax.set_ylabel("rows")
    ax.set_title("Distribution of the per-row losses")
    ax.legend(loc="upper right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- page


def html_report(result: dict[str, Any], src: Source) -> str:
    """The result as a complete HTML page with three embedded figures and the tables.

    Parameters
    ----------
    result : dict
        :meth:`ScoreAccumulator.result`.
    src : Source
        What was scored (for the heading).

    Returns
    -------
    str
        A self-contained HTML document: inline CSS, PNG data URIs, no scripts, no links out.
    """
    from crossentropy._lib.html import escape, figure_to_data_uri, html_page, html_table, img_tag

    n = int(result["n"])
    sections = [f'<p class="note">{escape(_describe(result, src))}</p>']
    sections.append("<h2>Summary</h2>")
    sections.append(html_table(["metric", "value"], _summary_rows(result), numeric=[False, True]))
    off = int(result.get("rows_not_summing_to_one", 0))
    if off:
        sections.append(
            f'<p class="note">{off:,} rows have probabilities that do not sum to 1; they were '
            "scored as given (not renormalised).</p>"
        )
    sections.append("<h2>Calibration</h2>")
    sections.append(
        img_tag(
            figure_to_data_uri(_reliability_figure(result)),
            "reliability diagram",
            "Observed frequency against predicted probability, per bin; bars below: rows per "
            "bin. On the dashed diagonal the predictions are calibrated.",
        )
    )
    rel_rows = [
        [
            f"{b['lo']:.3f} – {b['hi']:.3f}",
            f"{b['count']:,}",
            _num(b["confidence"], 4),
            _num(b["accuracy"], 4),
        ]
        for b in result["reliability"]
        if b["count"]
    ]
    empty = sum(1 for b in result["reliability"] if not b["count"])
    if empty:
        sections.append(f'<p class="note">{empty} empty bin(s) not listed.</p>')
    sections.append(
        html_table(
            ["bin", "rows", *_reliability_headers(result)],
            rel_rows,
            numeric=[False, True, True, True],
        )
    )
    fig, note = _per_class_figure(result)
    sections.append("<h2>Per class</h2>")
    sections.append(
        img_tag(
            figure_to_data_uri(fig),
            "log loss by true class",
            "Mean log loss of the rows of each true class" + note + ".",
        )
    )
    class_rows = [
        [
            str(c["label"]),
            f"{c['count']:,}",
            f"{100 * c['count'] / n:.1f} %",
            _num(c["log_loss"], 4),
        ]
        for c in result["per_class"]
    ]
    sections.append(
        html_table(
            ["class", "rows", "share", "log loss"], class_rows, numeric=[False, True, True, True]
        )
    )
    sections.append("<h2>Per-row losses</h2>")
    sections.append(
        img_tag(
            figure_to_data_uri(_histogram_figure(result)),
            "histogram of per-row losses",
            "How many rows have each loss; the log loss is their mean.",
        )
    )
    if result["worst"]:
        header, rows = _worst_columns(result)
        sections.append(f"<h2>The {len(rows)} worst rows</h2>")
        sections.append(
            html_table(header, rows, numeric=[True] + [False] * (len(header) - 3) + [True, True])
        )
    meta = result.get("input")
    if meta:
        sections.append("<h2>Input</h2>")
        sections.append(html_table(["", ""], _input_rows(meta), numeric=[False, False]))
    sections.append(
        '<p class="note">Log loss is clipped at the machine epsilon of the stored probabilities '
        "(float32 files at float32's, others at float64's), as in scikit-learn; entropies and "
        "losses are in nats. Made by <code>crossentropy score</code>.</p>"
    )
    return html_page("crossentropy score report", sections)


def _input_rows(meta: dict[str, Any]) -> list[list[str]]:
    """The input metadata (``ScoreReport.input``) as table rows."""
    rows = [[f"{role} file", path] for role, path in meta["files"].items()]
    rows += [
        ["format", str(meta["format"])],
        ["target column", str(meta["target"])],
        ["id column", str(meta["id_column"])],
        ["classes", _clip(", ".join(map(str, meta["classes"])), 200)],
        ["rows", f"{meta['rows']:,}"],
    ]
    rows += [[f"option {k}", str(v)] for k, v in meta["options"].items()]
    rows.append(["crossentropy version", meta["crossentropy_version"]])
    return rows
