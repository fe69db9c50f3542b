"""The renderings of a :class:`~crossentropy.scoring.ScoreReport`: a text table and a
self-contained HTML page (what ``crossentropy score`` prints and writes).

Both take the result dict of :meth:`crossentropy.metrics.ScoreAccumulator.result` (plus an ``id``
for each worst row of a solution/submission pair). The HTML page is laid out by a Jinja2
template (``templates/report.html.j2``, autoescaped) and embeds its figures as base64 PNG data
URIs, drawn by matplotlib without pyplot (the Agg canvas, no global state); matplotlib and
jinja2 are imported only when a report is drawn.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crossentropy._lib.extras import require

if TYPE_CHECKING:
    from crossentropy.scoring._compare import Comparison
    from crossentropy.scoring._sources import Source

__all__ = ["comparison_html", "comparison_text", "format_text", "html_report"]

#: The per-class bar chart shows at most this many classes (the ones with the largest loss).
MAX_BARS = 40


def _num(value: Any, digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—" if value is None else str(value)
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000000"


def _signed(value: float) -> str:
    """A difference with its sign, 6 decimals (one that rounds to 0 has none)."""
    text = _num(value)
    return text if text == _num(0.0) or not math.isfinite(value) or value < 0 else f"+{text}"


def _prob(p: float) -> str:
    """A probability with 6 decimals, or in scientific notation below 1e-4."""
    return f"{p:.6f}" if p == 0 or p >= 1e-4 else f"{p:.3e}"


def _clip(text: str, width: int = 30) -> str:
    """A name as shown in tables and figures: control characters escaped (:func:`printable`),
    at most ``width`` characters."""
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(text: str, width: int = 30) -> str:
    """A name as a figure shows it: :func:`_clip`, and a ``$`` as itself (matplotlib reads
    text between two as a formula, and refused a class named ``b$x^$``)."""
    return _clip(text, width).replace("$", r"\$")


def _describe(result: dict[str, Any], src: Source) -> str:
    n, c = int(result["n"]), len(result["per_class"])
    files = (result.get("input") or {}).get("files") or {}
    if files.get("parts"):
        what = f"{files['predictions']} ({len(files['parts'])} files), target column {src.target!r}"
    elif src.mode == "pair":
        what = f"{src.path} scored against {src.solution} (id column {src.id_column!r})"
    elif src.mode == "arrays":
        what = src.path + (f" with labels from {src.target_file}" if src.target_file else "")
    else:
        what = f"{src.path}, target column {src.target!r}"
    out = f"{printable(what)}: {n:,} rows, {c} classes"
    if src.weight_column and result.get("weight") is not None:
        weights = printable(repr(src.weight_column))
        out += f"; sample weights {weights}, total {float(result['weight']):,.6g}"
    return out


def _interval(value: Any, low: Any, high: Any, digits: int = 4) -> str:
    if low is None or high is None:
        return _num(value, digits)
    return f"{_num(value, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    bins = len(result["reliability"])
    binary = len(result["per_class"]) == 2
    rows = [
        ("log loss (nats)", _num(result["log_loss"])),
        ("accuracy", _num(result["accuracy"])),
        ("Brier score" + (" (binary)" if binary else " (sum over classes)"), _num(result["brier"])),
        (f"ECE ({bins} bins)", _num(result["ece"])),
        ("mean entropy of the predictions (nats)", _num(result["mean_entropy"])),
    ]
    cal = result.get("calibration")
    if cal:
        sm = cal["smooth_ece"]
        rows.insert(
            4,
            (
                "smooth ECE [95 % bootstrap interval]",
                _interval(sm["value"], sm["ci_low"], sm["ci_high"], 6),
            )
            if sm["ci_low"] is not None
            else (
                "smooth ECE (too few bootstrap replicates for an interval)"
                if sm["replicates"]
                else "smooth ECE (no bootstrap)",
                _num(sm["value"]),
            ),
        )
        skill = cal["skill"]
        rows.append(("D² of the log loss (vs the class frequencies)", _num(skill["d2_log_loss"])))
        rows.append(("Brier skill score (vs the class frequencies)", _num(skill["brier_skill"])))
    return rows


def _calibration_rows(cal: dict[str, Any]) -> list[list[str]]:
    """ECE, MCE and RMS of each binning, and the smooth ECE."""
    sm = cal["smooth_ece"]
    rows = [
        [
            "smooth ECE (reflected Gaussian kernel)",
            _interval(sm["value"], sm["ci_low"], sm["ci_high"], 6),
            f"bandwidth {sm['bandwidth']:.4f}",
        ]
    ]
    for key, name in (("equal_width", "equal-width bins"), ("equal_mass", "equal-mass bins")):
        b = cal[key]
        used = sum(1 for x in b["bins"] if x["count"])
        rows.append(
            [
                f"ECE, {name} ({used} used)",
                _num(b["ece"]),
                f"MCE {_num(b['mce'], 4)}, RMS {_num(b['rms'], 4)}",
            ]
        )
    if cal.get("classwise"):
        rows.append(["class-wise ECE (mean over classes)", _num(cal["classwise"]["ece"]), ""])
    return rows


def _decomposition_rows(cal: dict[str, Any]) -> list[list[str]]:
    corp, murphy = cal["corp"], cal["murphy"]
    rows = [
        [
            f"{name} (CORP)",
            _num(corp[key]["score"]),
            _num(corp[key]["miscalibration"]),
            _num(corp[key]["discrimination"]),
            _num(corp[key]["uncertainty"]),
        ]
        for key, name in (("log_loss", "log score"), ("brier", "Brier score"))
    ]
    # the binned terms leave the within-bin variance and covariance out of the identity
    within = murphy["within_bin_variance"] - murphy["within_bin_covariance"]
    rows.append(
        [
            f"Brier score (Murphy, bins; + within-bin terms {_num(within)})",
            _num(murphy["brier"]),
            _num(murphy["reliability"]),
            _num(murphy["resolution"]),
            _num(murphy["uncertainty"]),
        ]
    )
    return rows


SPLIT_HEADER = ["split", "rows", "log loss", "accuracy", "Brier score"]


def _split_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            _clip(str(sp["split"]) or "(empty)"),
            f"{sp['n']:,}",
            _num(sp["log_loss"]),
            _num(sp["accuracy"]),
            _num(sp["brier"]),
        ]
        for sp in result.get("splits") or []
    ]


DECOMPOSITION_HEADER = [
    "score of the pairs",
    "score",
    "miscalibration (MCB / REL)",
    "discrimination (DSC / RES)",
    "uncertainty (UNC)",
]


def printable(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, tabs, terminal
    escapes) written as its escape (``\\n``, ``\\x1b``): names from a file (classes, ids,
    paths) can neither drive a terminal nor break the report's lines and columns."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _class_share(entry: dict[str, Any], result: dict[str, Any]) -> str:
    """A class's share of the rows, or of the weight when the rows have sample weights."""
    weighted = "weight" in entry
    part, whole = (entry["weight"], result["weight"]) if weighted else (entry["count"], result["n"])
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _weighted(result: dict[str, Any]) -> bool:
    """Whether the rows had sample weights (then the per-class entries carry theirs)."""
    return bool(result["per_class"]) and "weight" in result["per_class"][0]


def _share_header(result: dict[str, Any]) -> str:
    return "weight share" if _weighted(result) else "share"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    # cells escaped before they are measured, so that the columns line up
    rows = [[printable(c) for c in r] for r in rows]
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
    parts = any("file" in w for w in result["worst"])
    header = [
        *(["file"] if parts else []),
        "row",
        *(["id"] if pair else []),
        "true class",
        "predicted",
        "p(true class)",
        "p(predicted)",
        "loss (nats)",
    ]
    rows = [
        [
            *([_clip(os.path.basename(str(w.get("file"))))] if parts else []),
            f"{w['row']:,}",
            *([_clip(str(w.get("id")))] if pair else []),
            _clip(str(w["label"])),
            _clip(str(w.get("predicted", ""))),
            _prob(w["p_true"]),
            _prob(w.get("p_predicted", float("nan"))),
            _num(w["loss"], 4),
        ]
        for w in result["worst"]
    ]
    return header, rows


def _numeric(header: Sequence[str]) -> list[bool]:
    """Right-align the numeric columns of the worst-rows table."""
    return [h in ("row", "p(true class)", "p(predicted)", "loss (nats)") for h in header]


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
    parts = [_describe(result, src), ""]
    parts.append(_table(["metric", "value"], _summary_rows(result), [False, True]))
    per_class = [
        [
            _clip(str(c["label"])),
            f"{c['count']:,}",
            _class_share(c, result),
            _num(c["log_loss"], 4),
        ]
        for c in result["per_class"]
    ]
    if result.get("splits"):
        column = (result.get("input") or {}).get("split_column") or "split"
        parts += ["", f"per value of the split column {column!r}"]
        parts.append(_table(SPLIT_HEADER, _split_rows(result), [False] + [True] * 4))
    parts += ["", "per class"]
    parts.append(
        _table(
            ["class", "rows", _share_header(result), "log loss"], per_class, [False] + [True] * 3
        )
    )
    cal = result.get("calibration")
    if cal:
        parts += ["", f"calibration (pairs: {cal['pairs']})"]
        parts.append(_table(["measure", "value", ""], _calibration_rows(cal), [False, True, False]))
        parts += ["", "decompositions: score = miscalibration - discrimination + uncertainty"]
        parts.append(
            _table(DECOMPOSITION_HEADER, _decomposition_rows(cal), [False, True, True, True, True])
        )
    if result["worst"]:
        header, rows = _worst_columns(result)
        parts += ["", f"worst {len(rows)} rows (largest loss first)"]
        parts.append(_table(header, rows, _numeric(header)))
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
    """The reliability diagram: the smoothed curve with its bootstrap band, the CORP (PAV)
    steps, the equal-mass bins with Wilson intervals; below, the forecasts' density."""
    cal = result["calibration"]
    classes = [c["label"] for c in result["per_class"]]
    binary = len(classes) == 2
    sm, corp = cal["smooth_ece"], cal["corp"]
    fig = _figure(7.0, 6.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="calibrated")
    t = sm["t"]
    # the curve is drawn where the forecasts are (density above 2 % of its peak), and for the
    # top label not below 1/C, where no confidence lies (the smoothing spreads some mass there)
    peak = max(sm["density"])
    floor = 0.0 if binary else 1.0 / len(classes)
    possible = [x >= floor - 1e-12 for x in t]
    seen = [d > 0.02 * peak and ok for d, ok in zip(sm["density"], possible, strict=True)]

    def shown(values: list[Any]) -> list[float]:
        return [v if ok and v is not None else math.nan for v, ok in zip(values, seen, strict=True)]

    if sm["band_low"] is not None:
        low, high = shown(sm["band_low"]), shown(sm["band_high"])
        top.fill_between(
            t, low, high, color="#4c72b0", alpha=0.2, linewidth=0, label="95 % bootstrap band"
        )
    curve = shown(sm["curve"])
    top.plot(
        t,
        curve,
        color="#4c72b0",
        linewidth=2,
        label=f"smoothed (smECE {_num(sm['value'], 4)}, σ {sm['bandwidth']:.3f})",
    )
    xs, ys = [], []
    for block in corp["diagram"]:
        xs += [block["lo"], block["hi"]]
        ys += [block["recalibrated"], block["recalibrated"]]
    top.plot(xs, ys, color="#dd8452", linewidth=1.2, label="CORP (PAV) recalibration")
    used = [b for b in cal["equal_mass"]["bins"] if b["count"]]
    top.errorbar(
        [b["confidence"] for b in used],
        [b["accuracy"] for b in used],
        yerr=[
            [max(b["accuracy"] - b["accuracy_low"], 0.0) for b in used],
            [max(b["accuracy_high"] - b["accuracy"], 0.0) for b in used],
        ],
        fmt="o",
        color="#55a868",
        markersize=4,
        capsize=2,
        label=f"{len(used)} equal-mass bins, Wilson 95 %",
    )
    # a little room around [0, 1], so that points and curves at 0 or 1 are not on the frame
    top.set_xlim(-0.02, 1.02)
    top.set_ylim(-0.03, 1.03)
    what = f"P(class {classes[1]})" if binary else "confidence (probability of the top class)"
    observed = f"fraction of class {classes[1]}" if binary else "accuracy"
    top.set_ylabel(f"observed {observed}")
    top.set_title("Reliability diagram")
    top.legend(loc="best", fontsize="small")  # where it covers the fewest points
    density = [d if ok else math.nan for d, ok in zip(sm["density"], possible, strict=True)]
    bottom.fill_between(t, density, color="0.6", linewidth=0)
    bottom.set_xlabel(f"predicted {what}")
    bottom.set_ylabel("density")
    return fig


def _decomposition_figure(cal: dict[str, Any]) -> Any:
    """Bars of MCB, DSC and UNC for the log and Brier scores (score = MCB - DSC + UNC)."""
    fig = _figure(7.5, 3.0)
    axes = fig.subplots(1, 2)
    for ax, (key, name) in zip(
        axes, (("log_loss", "log score"), ("brier", "Brier score")), strict=True
    ):
        d = cal["corp"][key]
        labels = ["score", "MCB", "DSC", "UNC"]
        values = [d["score"], d["miscalibration"], d["discrimination"], d["uncertainty"]]
        colors = ["0.35", "#c44e52", "#55a868", "#8172b3"]
        ax.barh(labels, values, color=colors, height=0.6)
        ax.invert_yaxis()
        for i, v in enumerate(values):
            ax.text(v, i, f" {_num(v, 4)}", va="center", fontsize="small")
        ax.set_xlim(0, max(values) * 1.35 if max(values) > 0 else 1)
        ax.set_title(f"{name} = MCB − DSC + UNC", fontsize="medium")
        ax.set_xlabel("nats" if key == "log_loss" else "squared error")
        ax.set_ylabel("term")
    return fig


def _weight_text(value: float) -> str:
    """A weight in a few characters: whole above 10 (``2,557``), else three digits."""
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.3g}"


def _confusion_figure(result: dict[str, Any]) -> Any:
    """Counts (with sample weights: weights) of (true, predicted) classes, shaded by the share
    of the true class's rows (weight)."""
    counts = result["confusion"]
    labels = [_label(str(c["label"]), 16) for c in result["per_class"]]
    weighted = _weighted(result)
    c = len(labels)
    size = min(2.5 + 0.35 * c, 11)
    fig = _figure(size + 1.2, size)
    ax = fig.subplots()
    share = [[v / sum(row) if sum(row) > 0 else 0.0 for v in row] for row in counts]
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if c <= 12:
        for i in range(c):
            for j in range(c):
                ax.text(
                    j,
                    i,
                    _weight_text(counts[i][j]) if weighted else f"{counts[i][j]:,}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if share[i][j] > 0.5 else "black",
                )
    ax.set_xticks(range(c))
    long = c > 6 or max(map(len, labels)) * c > 36  # labels side by side would overlap
    ax.set_xticklabels(labels, rotation=90 if long else 0)
    ax.set_yticks(range(c))
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted class (most probable)")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix")
    what = "weight" if weighted else "rows"
    fig.colorbar(image, ax=ax, label=f"share of the true class's {what}", shrink=0.8)
    return fig


def _per_class_figure(result: dict[str, Any]) -> tuple[Any, str]:
    """Horizontal bars, one per true class (top to bottom in column order; at most MAX_BARS)."""
    per_class = [c for c in result["per_class"] if c["log_loss"] is not None]
    note = ""
    if len(per_class) > MAX_BARS:
        per_class = sorted(per_class, key=lambda c: -c["log_loss"])[:MAX_BARS]
        note = f" ({MAX_BARS} classes with the largest loss)"
    labels = [_label(str(c["label"]), 30) for c in per_class]
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


#: The loss histogram shows the bins that hold this share of the rows; the rest is one bar.
HISTOGRAM_SHARE = 0.999


def _histogram_figure(result: dict[str, Any]) -> Any:
    """Per-row losses on the range that holds 99.9 % of the rows (at least 0 to 2 nats), the
    rows beyond it in one last bar."""
    edges = list(result["loss_histogram"]["edges"])
    counts = list(result["loss_histogram"]["counts"])
    total = sum(counts)
    running, last = 0, 0
    for i, k in enumerate(counts):
        running += k
        last = i
        if running >= HISTOGRAM_SHARE * total:
            break
    last = max(last, min(7, len(counts) - 1))  # at least [0, 2)
    shown = counts[: last + 1]
    beyond = sum(counts[last + 1 :])
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    ax.bar(
        edges[: last + 1],
        shown,
        width=[b - a for a, b in itertools.pairwise(edges[: last + 2])],
        align="edge",
        color="#8172b3",
        edgecolor="white",
    )
    right = edges[last + 1]
    if beyond:
        ax.bar(
            [right],
            [beyond],
            width=0.25,
            align="edge",
            color="#c44e52",
            edgecolor="white",
            label=f"{beyond:,} rows above {right:g} nats",
        )
        ax.annotate(  # its count over it: a few rows next to thousands are a sliver
            f"{beyond:,}",
            (right + 0.125, beyond),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            color="#c44e52",
            fontsize="small",
        )
        right += 0.25
    ax.axvline(
        result["log_loss"],
        color="#c44e52",
        linestyle="--",
        linewidth=1,
        label=f"mean (log loss) {_num(result['log_loss'], 4)}",
    )
    ax.set_xlim(0, right)
    ax.set_xlabel("per-row loss −log p(true class) (nats)")
    ax.set_ylabel("rows")
    ax.set_title("Distribution of the per-row losses")
    ax.legend(loc="upper right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- page


def _note(text: str) -> dict[str, Any]:
    return {"kind": "note", "text": text}


def _tbl(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> Any:
    return {"kind": "table", "header": list(header), "rows": rows, "numeric": list(numeric)}


def _fig(fig: Any, alt: str, caption: str) -> dict[str, Any]:
    from crossentropy._lib.html import figure_to_data_uri

    return {"kind": "figure", "uri": figure_to_data_uri(fig), "alt": alt, "caption": caption}


def html_sections(result: dict[str, Any], src: Source | None) -> list[dict[str, Any]]:
    """The sections of the report page: a title and parts (notes, tables, figures)."""
    cal = result.get("calibration")
    options = (result.get("input") or {}).get("options", {})
    summary: list[dict[str, Any]] = []
    if src is not None:
        summary.append(_note(_describe(result, src)))
    summary.append(_tbl(["metric", "value"], _summary_rows(result), [False, True]))
    off = int(result.get("rows_not_summing_to_one", 0))
    if off:
        summary.append(
            _note(
                f"{off:,} rows have probabilities that do not sum to 1 within their dtype's "
                "rounding; "
                + (
                    "they were rescaled to sum to 1 (renormalize)."
                    if options.get("renormalize")
                    else "they were scored as given."
                )
            )
        )
    if result.get("splits"):
        summary.append(_note("Each value of the split column, scored alone:"))
        summary.append(_tbl(SPLIT_HEADER, _split_rows(result), [False] + [True] * 4))
    sections = [{"title": "Summary", "parts": summary}]
    if cal:
        sm = cal["smooth_ece"]
        pairs = (
            "the predicted probability of the second class against the outcome"
            if cal["pairs"] == "positive class"
            else "the top-class probability (confidence) against whether the top class is right"
        )
        parts = [
            _note(f"Calibration of {pairs}."),
            _fig(
                _reliability_figure(result),
                "reliability diagram",
                "Blue: the kernel-smoothed observed frequency (smooth ECE's curve) with its 95 % "
                "bootstrap band, where the density is above 2 % of its peak; orange: the CORP "
                "isotonic (PAV) recalibration; green: "
                "equal-mass bins with Wilson 95 % intervals. On the dashed diagonal the "
                "predictions are calibrated. Below: the density of the predictions.",
            ),
            _tbl(["measure", "value", ""], _calibration_rows(cal), [False, True, False]),
            _note(
                f"smooth ECE: Błasiok & Nakkiran (2024), bandwidth σ = {sm['bandwidth']:.4f} "
                f"(the fixed point σ = smECE_σ); interval: basic bootstrap (2 × value − the "
                f"replicates' quantiles, as relplot's), {sm['replicates']} Poisson replicates; "
                "it corrects the estimate's upward bias, so for well-calibrated predictions "
                "it may lie below the value. Equal-mass bins from a grid of 16,384 cells."
            ),
            _fig(
                _decomposition_figure(cal),
                "score decompositions",
                "CORP decomposition (Dimitriadis, Gneiting & Jordan, 2021): miscalibration "
                "(MCB) is what recalibration would save, discrimination (DSC) what the "
                "predictions gain over the base rate, uncertainty (UNC) the base rate's score.",
            ),
            _tbl(DECOMPOSITION_HEADER, _decomposition_rows(cal), [False] + [True] * 4),
        ]
        bins = [
            [
                f"{b['lo']:.3f} – {b['hi']:.3f}",
                f"{b['count']:,}",
                _num(b["confidence"], 4),
                _num(b["accuracy"], 4),
                f"{_num(b['accuracy_low'], 4)} – {_num(b['accuracy_high'], 4)}",
            ]
            for b in cal["equal_width"]["bins"]
            if b["count"]
        ]
        parts.append(
            _tbl(
                ["equal-width bin", "rows", *_reliability_headers(result), "Wilson 95 %"],
                bins,
                [False, True, True, True, True],
            )
        )
        sections.append({"title": "Calibration", "parts": parts})
    fig, note = _per_class_figure(result)
    classwise = {
        str(c["label"]): c["ece"] for c in ((cal or {}).get("classwise") or {}).get("per_class", [])
    }
    class_rows = [
        [
            _clip(str(c["label"]), 40),
            f"{c['count']:,}",
            _class_share(c, result),
            _num(c["log_loss"], 4),
            *([_num(classwise.get(str(c["label"])), 4)] if classwise else []),
        ]
        for c in result["per_class"]
    ]
    header = ["class", "rows", _share_header(result), "log loss"]
    header += ["class-wise ECE"] if classwise else []
    per_class = [
        _fig(fig, "log loss by true class", "Mean log loss of the rows of each true class" + note),
        _tbl(header, class_rows, [False] + [True] * (len(header) - 1)),
    ]
    from crossentropy.metrics._score import CONFUSION_MAX

    if result.get("confusion"):
        per_class.append(
            _fig(
                _confusion_figure(result),
                "confusion matrix",
                "Rows: true class; columns: most probable class; shade: share of the row"
                + (" (of its weight)." if _weighted(result) else "."),
            )
        )
    else:
        per_class.append(
            _note(f"No confusion matrix: it is kept for at most {CONFUSION_MAX} classes.")
        )
    sections.append({"title": "Per class", "parts": per_class})
    sections.append(
        {
            "title": "Per-row losses",
            "parts": [
                _fig(
                    _histogram_figure(result),
                    "histogram of per-row losses",
                    "How many rows have each loss; the log loss is their mean"
                    + (
                        " weighted by the sample weights (the dashed line); the bars count rows."
                        if _weighted(result)
                        else "."
                    ),
                )
            ],
        }
    )
    if result["worst"]:
        header, rows = _worst_columns(result)
        sections.append(
            {
                "title": f"The {len(rows)} worst rows",
                "parts": [_tbl(header, rows, _numeric(header))],
            }
        )
    meta = result.get("input")
    if meta:
        sections.append(
            {"title": "Input", "parts": [_tbl(["", ""], _input_rows(meta), [False, False])]}
        )
    sections.append(
        {
            "title": "",
            "parts": [
                _note(
                    (
                        f"Log loss is clipped at {options['clip']:g}"
                        if options.get("clip")
                        else "Log loss is clipped at the machine epsilon of the stored "
                        "probabilities (float32 files at float32's, others at float64's), as in "
                        "scikit-learn"
                    )
                    + "; entropies and losses are in nats. Made by crossentropy score."
                )
            ],
        }
    )
    return sections


#: What the HTML report is drawn and written with.
REPORT_MODULES = ("matplotlib", "jinja2", "markupsafe")


def require_report_modules() -> None:
    """A ``ModuleNotFoundError`` naming what the HTML report needs and lacks (called before
    any figure is drawn, and by the CLI before any scoring)."""
    require("the HTML report", *REPORT_MODULES)


def render_page(title: str, sections: list[dict[str, Any]], *, fragment: bool = False) -> str:
    """The page from the package's Jinja2 template (autoescaped: every text is escaped; the
    package's own style sheet is marked safe); with ``fragment``, a ``<div>`` for a notebook's
    output instead, its style limited to the elements inside it."""
    import jinja2
    import markupsafe

    from crossentropy._lib.html import CSS, scoped_css

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("crossentropy.scoring", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    css = markupsafe.Markup(scoped_css(CSS, ".ce-report") if fragment else CSS)
    return env.get_template("report.html.j2").render(
        title=title, css=css, sections=sections, fragment=fragment
    )


def html_report(result: dict[str, Any], src: Source | None, *, fragment: bool = False) -> str:
    """The result as a complete HTML page: figures and tables.

    Parameters
    ----------
    result : dict
        :meth:`ScoreAccumulator.result` (with ``input``).
    src : Source
        What was scored (for the heading).
    fragment : bool, default False
        A ``<div>`` for a notebook's output instead of a page (:func:`render_page`).

    Returns
    -------
    str
        A self-contained HTML document: inline CSS, PNG data URIs, no scripts, no links out.
    """
    require_report_modules()
    sections = html_sections(result, src)
    return render_page("crossentropy score report", sections, fragment=fragment)


def _input_rows(meta: dict[str, Any]) -> list[list[str]]:
    """The input metadata (``ScoreReport.input``) as table rows."""
    rows = [[f"{role} file", path] for role, path in meta["files"].items()]
    rows += [
        ["format", str(meta["format"])],
        (
            ["one-hot class columns", _clip(", ".join(meta["one_hot_columns"]), 200)]
            if meta.get("one_hot_columns")
            else ["target column", str(meta["target"])]
        ),
        ["id column", _shown(meta["id_column"])],
        ["classes", _clip(", ".join(map(str, meta["classes"])), 200)],
        ["rows", f"{meta['rows']:,}"],
    ]
    if meta.get("split_column"):
        rows.append(["split column", str(meta["split_column"])])
    if meta.get("sample_weight_column"):
        rows.append(["sample weight column", str(meta["sample_weight_column"])])
        rows.append(["total weight", f"{float(meta['total_weight']):,.6g}"])
    rows += [
        [
            f"option {k}",
            "the stored dtype's epsilon"
            if k == "clip" and v is None
            else (str(v) if k == "seed" else _shown(v)),  # a seed is a name, not a count
        ]
        for k, v in meta["options"].items()
    ]
    rows.append(["crossentropy version", meta["crossentropy_version"]])
    return rows


def _shown(value: Any) -> str:
    """A setting as a reader reads it: none for None, yes/no for booleans, integers with
    thousands separators."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --------------------------------------------------------------------------- comparisons

_METRIC_NAMES = {"log_loss": "log loss", "brier": "Brier score", "accuracy": "accuracy"}


def _comparison_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for name in cmp.names:
        r = cmp.reports[name]
        sm = r.calibration["smooth_ece"]
        rows.append(
            [
                _clip(name, 40),
                _num(r.log_loss),
                _num(r.accuracy),
                _num(r.brier),
                _num(sm["value"]),
            ]
        )
    return rows


def _difference_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for d in cmp.differences:
        interval = (
            "—" if d["ci_low"] is None else f"[{_num(d['ci_low'], 6)}, {_num(d['ci_high'], 6)}]"
        )
        share = "—" if d["share_a_better"] is None else f"{100 * d['share_a_better']:.1f} %"
        rows.append(
            [
                f"{_clip(d['a'], 24)} − {_clip(d['b'], 24)}",
                f"{_METRIC_NAMES[d['metric']]} ({d['better_is']} is better)",
                _signed(d["difference"]),
                interval,
                "—" if d["better"] is None else _clip(str(d["better"]), 24),
                share,
            ]
        )
    return rows


COMPARISON_HEADER = ["set", "log loss", "accuracy", "Brier score", "smooth ECE"]
DIFFERENCE_HEADER = [
    "pair (a − b)",
    "metric",
    "difference",
    "95 % interval",
    "better",
    "replicates where a is better",
]


def _comparison_heading(cmp: Comparison) -> str:
    first = cmp.reports[cmp.names[0]]
    boot = (
        f"paired bootstrap: {cmp.replicates} Poisson replicates (seed {cmp.seed})"
        if cmp.replicates
        else "no paired bootstrap (0 replicates: no intervals)"
    )
    return (
        f"{len(cmp.names)} prediction sets on the same {first.n:,} rows, "
        f"{len(first.per_class)} classes; {boot}"
    )


COMPARISON_SPLIT_HEADER = ["set", *SPLIT_HEADER]


def _comparison_split_rows(cmp: Comparison) -> list[list[str]]:
    """Each set's rows of the split table (none without a split column)."""
    return [
        [_clip(name, 40), *row]
        for name in cmp.names
        for row in _split_rows(cmp.reports[name].to_dict())
    ]


def _split_column(cmp: Comparison) -> str:
    return str(cmp.reports[cmp.names[0]].input.get("split_column") or "split")


def comparison_text(cmp: Comparison) -> str:
    """A comparison as plain-text tables: each set's metrics (and per split value, with a
    split column), then the paired differences."""
    parts = [_comparison_heading(cmp), ""]
    parts.append(_table(COMPARISON_HEADER, _comparison_rows(cmp), [False] + [True] * 4))
    split_rows = _comparison_split_rows(cmp)
    if split_rows:
        parts += ["", f"per value of the split column {_split_column(cmp)!r}"]
        parts.append(_table(COMPARISON_SPLIT_HEADER, split_rows, [False, False] + [True] * 4))
    parts += ["", "paired differences"]
    parts.append(
        _table(DIFFERENCE_HEADER, _difference_rows(cmp), [False, False, True, True, False, True])
    )
    return "\n".join(parts)


def _forest_figure(cmp: Comparison) -> Any:
    """Each difference with its interval, one panel per metric, zero marked."""
    fig = _figure(7.5, 1.4 + 0.45 * len(cmp.differences))
    axes = fig.subplots(1, len(_METRIC_NAMES), sharey=True)
    pairs = sorted(
        {(d["a"], d["b"]) for d in cmp.differences},
        key=lambda p: (cmp.names.index(p[0]), cmp.names.index(p[1])),
    )
    for ax, metric in zip(axes, _METRIC_NAMES, strict=True):
        rows = [d for d in cmp.differences if d["metric"] == metric]
        for d in rows:
            y = pairs.index((d["a"], d["b"]))
            if d["ci_low"] is not None:
                ax.plot([d["ci_low"], d["ci_high"]], [y, y], color="#4c72b0", linewidth=2)
            ax.plot([d["difference"]], [y], "o", color="#c44e52")
        ax.axvline(0, color="0.5", linestyle="--", linewidth=1)
        ax.set_title(_METRIC_NAMES[metric], fontsize="medium")
        ax.set_xlabel("a − b")
        ax.tick_params(axis="x", labelsize="small")
    axes[0].set_yticks(range(len(pairs)))
    axes[0].set_yticklabels([f"{_label(a, 14)} − {_label(b, 14)}" for a, b in pairs])
    axes[0].set_ylabel("pair")
    axes[0].set_ylim(len(pairs) - 0.5, -0.5)  # first pair on top
    return fig


def comparison_html(cmp: Comparison, *, fragment: bool = False) -> str:
    """A comparison as a self-contained HTML page: tables, the differences with their
    intervals, each set's reliability diagram (a ``<div>`` with ``fragment``)."""
    require_report_modules()
    parts: list[dict[str, Any]] = [
        _note(_comparison_heading(cmp)),
        _tbl(COMPARISON_HEADER, _comparison_rows(cmp), [False] + [True] * 4),
    ]
    split_rows = _comparison_split_rows(cmp)
    if split_rows:
        parts.append(_note(f"Each value of the split column {_split_column(cmp)!r}, scored alone:"))
        parts.append(_tbl(COMPARISON_SPLIT_HEADER, split_rows, [False, False] + [True] * 4))
    sections = [{"title": "Prediction sets", "parts": parts}]
    sections.append(
        {
            "title": "Paired differences",
            "parts": [
                _fig(
                    _forest_figure(cmp),
                    "differences with intervals",
                    "Each pair's difference (dot) and 95 % paired bootstrap interval (line); an "
                    "interval that does not cross the dashed zero line is a clear difference."
                    if cmp.replicates
                    else "Each pair's difference (dot); no intervals (no bootstrap replicates).",
                ),
                _tbl(
                    DIFFERENCE_HEADER,
                    _difference_rows(cmp),
                    [False, False, True, True, False, True],
                ),
            ],
        }
    )
    figures = []
    for name in cmp.names:
        result = cmp.reports[name].to_dict()
        fig = _reliability_figure(result)
        fig.suptitle(_label(name, 80))
        figures.append(
            {
                "uri": _fig(fig, "", "")["uri"],
                "alt": f"reliability diagram of {name}",
                "caption": f"{name}: reliability diagram (as in a single report).",
            }
        )
    sections.append({"title": "Calibration", "parts": [{"kind": "figures", "entries": figures}]})
    return render_page("crossentropy score comparison", sections, fragment=fragment)
