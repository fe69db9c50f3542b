"""Figures and the HTML page of ``crossentropy demo`` (matplotlib, Agg, imported lazily).

Every number on the page and in a caption is read from the demo's results; every sentence
that compares two methods is chosen by comparing the numbers, never written in advance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crossentropy._lib.html import (
    escape,
    figure_to_png,
    html_page,
    html_table,
    img_tag,
    png_to_data_uri,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from crossentropy.cli._demo import Section

__all__ = ["FigureFile", "make_figures", "render_html"]

CE_COLOR = "#1f77b4"
MSE_COLOR = "#d62728"
THIRD_COLOR = "#2ca02c"
METHOD_COLORS = {"plain": "#7f7f7f", "weighted": CE_COLOR, "focal": THIRD_COLOR}
METHOD_LABELS = {
    "plain": "plain cross-entropy",
    "weighted": "class-weighted cross-entropy",
    "focal": "focal loss",
}
HEAD_LABELS = {
    "sigmoid": "sigmoid per attribute + BCE",
    "softmax": "softmax over attributes + CE",
}


@dataclass(frozen=True)
class FigureFile:
    """One rendered figure: file name, section key, title, one-line caption and PNG bytes."""

    filename: str
    section: str
    title: str
    caption: str
    png: bytes


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _render(fig: Figure, filename: str, section: str, title: str, caption: str) -> FigureFile:
    fig.suptitle(title, fontsize=13, fontweight="bold")
    return FigureFile(filename, section, title, caption, figure_to_png(fig))


def _plain_log_ticks(ax: Axes) -> None:
    """Decimal tick labels (0.2, 0.5, 1) on a logarithmic y axis instead of 2 x 10^-1."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter(""))


def _fig_logistic(sec: Section) -> FigureFile:
    r, p = sec.results, sec.plot
    fig, (ax0, ax1, ax2) = _figure(12.0, 3.8, 3)
    gap = np.asarray(p["curve"]) - r["objective_sklearn"]
    gap = np.where(gap > 0, gap, np.nan)  # at or below scikit-learn's: off the log scale
    ax0.semilogy(np.arange(1, gap.size + 1), gap, color=CE_COLOR)
    ax0.set_xlim(0, gap.size)
    ax0.set_xlabel("gradient-descent step")
    ax0.set_ylabel("objective - scikit-learn's (nats)")
    ax0.set_title("Training objective: gap to scikit-learn")
    ax0.grid(True, which="major", alpha=0.3)
    lim = float(max(np.abs(p["w_ours"]).max(), np.abs(p["w_sklearn"]).max()))
    images = []
    for ax, w, name in ((ax1, p["w_ours"], "ours (grad.*)"), (ax2, p["w_sklearn"], "scikit-learn")):
        images.append(ax.imshow(np.reshape(w, (8, 8)), cmap="RdBu_r", vmin=-lim, vmax=lim))
        ax.set_title(f"Weights per pixel, {name}")
        ax.set_xlabel("pixel column")
        ax.set_ylabel("pixel row")
    fig.colorbar(images[-1], ax=[ax1, ax2], label=f"weight (> 0 favours {r['classes'][1]})")
    below = r["first_step_at_or_below_sklearn"]
    reached = f", at or below it from step {below} on (not drawn)" if below is not None else ""
    caption = (
        f"Left: the training objective of gradient descent minus scikit-learn's optimum, per step "
        f"(log scale){reached}; right: the {len(p['w_ours'])} learned pixel weights of both "
        f"models, largest difference {r['max_abs_weight_difference']:.2g}."
    )
    return _render(
        fig,
        "logistic_regression.png",
        "logistic",
        f"Logistic regression, digit {r['classes'][0]} vs {r['classes'][1]}",
        caption,
    )


def _fig_mlp(sec: Section) -> FigureFile:
    r = sec.results
    curves = sec.plot["curves"]
    fig, (ax0, ax1, ax2) = _figure(13.0, 3.9, 3)
    epochs = np.arange(len(curves["cross_entropy"]["test_acc"]))
    labels = {"cross_entropy": "softmax cross-entropy", "mse": "MSE on the softmax"}
    colors = {"cross_entropy": CE_COLOR, "mse": MSE_COLOR}
    for key, label in labels.items():
        c = curves[key]
        ax0.plot(epochs, c["train_objective"], color=colors[key], label=label)
        ax1.plot(epochs, c["test_log_loss"], color=colors[key], label=label)
        ax2.plot(epochs, c["test_acc"], color=colors[key], label=label)
    ax0.set_title("Training loss (each run's own objective)")
    ax0.set_ylabel("loss on the training set")
    ax0.set_yscale("log")
    ax1.set_title("Test cross-entropy (log loss)")
    ax1.set_ylabel("log loss (nats)")
    ax1.set_yscale("log")
    for ax in (ax0, ax1):
        _plain_log_ticks(ax)
    ax2.set_title("Test accuracy")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0.0, 1.0)
    ax2.axhline(0.9, color="black", lw=0.8, ls=":", label="90 %")
    for ax in (ax0, ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    caption = (
        f"One hidden layer of {r['hidden']} tanh units, the same initialisation, learning rate "
        f"{r['learning_rate']:g} and batches for both runs; epoch 0 is the initialisation."
    )
    return _render(
        fig,
        "network_ce_vs_mse.png",
        "mlp",
        "Ten digits: cross-entropy vs MSE on the softmax output",
        caption,
    )


def _fig_imbalance(sec: Section) -> FigureFile:
    r = sec.results
    methods = r["methods"]
    digit = r["minority_digit"]
    fig, (ax0, ax1) = _figure(13.0, 4.4, 2)
    classes = np.arange(10)
    width = 0.27
    for k, (name, m) in enumerate(methods.items()):
        ax0.bar(
            classes + (k - 1) * width,
            m["recall_per_class"],
            width,
            color=METHOD_COLORS[name],
            label=METHOD_LABELS[name],
        )
    ax0.axvspan(digit - 0.5, digit + 0.5, color="#ffdd88", alpha=0.4, zorder=0)
    ax0.set_xticks(classes)
    ax0.set_xlabel(f"digit (digit {digit} kept at {r['minority_train_examples']} examples)")
    ax0.set_ylabel("recall on the test set")
    ax0.set_ylim(0.0, 1.05)
    ax0.set_title("Recall per digit")
    metrics = [
        ("minority_recall", f"recall of {digit}"),
        ("test_accuracy", "accuracy"),
        ("test_log_loss", "log loss (nats)"),
    ]
    pos = np.arange(len(metrics))
    for k, (name, m) in enumerate(methods.items()):
        values = [m[key] for key, _ in metrics]
        bars = ax1.bar(
            pos + (k - 1) * width,
            values,
            width,
            color=METHOD_COLORS[name],
            label=METHOD_LABELS[name],
        )
        ax1.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8, padding=2)
    ax1.set_xticks(pos, [label for _, label in metrics])
    ax1.set_xlabel("test-set measure")
    ax1.set_ylabel("value")
    top = max(max(m[key] for key, _ in metrics) for m in methods.values())
    ax1.set_ylim(0.0, max(1.05, top * 1.12))
    ax1.set_title("Minority recall, accuracy and log loss")
    handles, labels = ax0.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=10)
    for ax in (ax0, ax1):
        ax.grid(True, axis="y", alpha=0.3)
    caption = (
        f"Softmax regression trained on the digits with only {r['minority_train_examples']} of "
        f"{r['minority_train_examples_before']} training images of digit {digit}; the test set "
        "is unchanged (shaded: the minority digit)."
    )
    return _render(fig, "imbalance.png", "imbalance", "Class imbalance", caption)


def _fig_outliers(sec: Section) -> FigureFile:
    r, p = sec.results, sec.plot
    fig, (ax,) = _figure(8.0, 5.0, 1)
    x, y, out = p["x"], p["y"], p["outlier"]
    ax.scatter(x[~out], y[~out], s=16, color="#444444", label="clean points")
    ax.scatter(x[out], y[out], s=36, marker="x", color=MSE_COLOR, label="outliers")
    grid = np.array([0.0, 10.0])
    ax.plot(
        grid,
        r["true_slope"] * grid + r["true_intercept"],
        color="black",
        ls=":",
        label=f"true line y = {r['true_slope']:g}x + {r['true_intercept']:g}",
    )
    for name, color, label, style in (
        ("mse", MSE_COLOR, "MSE fit", "-"),
        ("huber", CE_COLOR, "Huber fit", "-"),
        ("mae", THIRD_COLOR, "MAE fit", "--"),  # dashed, over Huber's (the two nearly meet)
    ):
        a, b = p["fits"][name]
        ax.plot(
            grid,
            a * grid + b,
            color=color,
            lw=2,
            ls=style,
            label=f"{label}: y = {a:.2f}x + {b:.2f}",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    caption = (
        f"{r['n']} points, {r['n_outliers']} of them shifted up by 15 to 25; each line fitted "
        f"by gradient descent ({r['steps']} steps, Huber delta = {r['huber_delta']:g})."
    )
    return _render(
        fig, "outliers.png", "outliers", "Regression with outliers: MSE, MAE and Huber", caption
    )


def _fig_neglog(sec: Section) -> FigureFile:
    p = sec.plot
    fig, (ax,) = _figure(6.5, 4.2, 1)
    ax.plot(p["p"], p["neglog_nats"], color=CE_COLOR, label="nats (log base e)")
    ax.plot(p["p"], p["neglog_bits"], color=MSE_COLOR, label="bits (log base 2)")
    ax.set_xlabel("probability p given to the true class")
    ax.set_ylabel("-log p")
    ax.set_ylim(0.0, 8.0)
    ax.set_xlim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    caption = (
        "The cross-entropy loss of one example is -log of the probability given to its true "
        f"class: 0 at p = 1, {sec.results['neglog_at_half_bits']:g} bit at p = 0.5, unbounded "
        "as p -> 0."
    )
    return _render(
        fig, "landscape_neglog.png", "landscapes", "-log p: the loss of one prediction", caption
    )


def _fig_bce(sec: Section) -> FigureFile:
    p = sec.plot
    fig, (ax,) = _figure(6.5, 4.2, 1)
    ax.plot(p["p"], p["bce_pos"], color=CE_COLOR, label="target 1: -log p")
    ax.plot(p["q"], p["bce_neg"], color=MSE_COLOR, label="target 0: -log(1 - p)")
    ax.set_xlabel("predicted probability p of class 1")
    ax.set_ylabel("binary cross-entropy (nats)")
    ax.set_ylim(0.0, 7.0)
    ax.set_xlim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center")
    caption = (
        "binary_cross_entropy(p, t) for t = 1 and t = 0: each branch, -log p or -log(1 - p), "
        "grows without bound as a wrong prediction grows confident (the function caps it at "
        "100 nats, as torch's binary_cross_entropy does)."
    )
    return _render(
        fig, "landscape_bce.png", "landscapes", "Both branches of binary cross-entropy", caption
    )


def _fig_one_logit(sec: Section) -> FigureFile:
    p, r = sec.plot, sec.results
    fig, (ax0, ax1) = _figure(12.0, 4.2, 2)
    shape = {True: "convex", False: "not convex"}
    ax0.plot(
        p["z"], p["ce_curve"], color=CE_COLOR, label=f"cross-entropy ({shape[r['ce_convex']]})"
    )
    ax0.plot(
        p["z"],
        p["mse_curve"],
        color=MSE_COLOR,
        label=f"MSE of the softmax ({shape[r['mse_convex']]})",
    )
    ax0.set_ylabel("loss")
    ax0.set_title("Loss against the true class's logit")
    vanishes = abs(r["mse_grad_at_minus8"]) < 0.01 * abs(r["ce_grad_at_minus8"])
    ax1.plot(p["z"], p["ce_grad"], color=CE_COLOR, label="cross-entropy: p - 1")
    ax1.plot(p["z"], p["mse_grad"], color=MSE_COLOR, label="MSE through the softmax")
    ax1.set_ylabel("d loss / d z")
    ax1.set_title("Gradient: MSE's vanishes when confidently wrong" if vanishes else "Gradient")
    for ax in (ax0, ax1):
        ax.set_xlabel("logit z of the true class (the other two logits are 0)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    caption = (
        f"Three classes, logits (z, 0, 0), true class 0. At z = -8 the gradient is "
        f"{r['ce_grad_at_minus8']:.4f} with cross-entropy and {r['mse_grad_at_minus8']:.4f} "
        f"with MSE; smallest second difference {r['min_curvature_ce']:.2g} vs "
        f"{r['min_curvature_mse']:.2g}."
    )
    return _render(
        fig, "landscape_one_logit.png", "landscapes", "One logit: cross-entropy vs MSE", caption
    )


def _fig_temperature(sec: Section) -> FigureFile:
    p, r = sec.plot, sec.results
    fig, (ax0, ax1) = _figure(12.0, 4.2, 2)
    logits = r["temperature_logits"]
    colors = [CE_COLOR, THIRD_COLOR, MSE_COLOR]
    for c in range(p["soft"].shape[1]):
        ax0.semilogx(p["temps"], p["soft"][:, c], color=colors[c], label=f"logit {logits[c]:g}")
    ax0.set_ylabel("softmax probability")
    ax0.set_ylim(0.0, 1.0)
    ax0.set_title("softmax(z / T) of z = (1, 2, 3)")
    ax0.legend(fontsize=9)
    ax1.semilogx(p["temps"], p["ent_bits"], color="black", label="H(softmax(z / T))")
    ax1.axhline(r["max_entropy_bits"], color="gray", ls=":", label="log2 3 (uniform)")
    ax1.set_ylabel("entropy (bits)")
    ax1.set_ylim(0.0, 1.7)
    ax1.set_title("Entropy of the softmax")
    ax1.legend(fontsize=9, loc="lower right")
    for ax in (ax0, ax1):
        ax.set_xlabel("temperature T (log scale)")
        ax.grid(True, alpha=0.3)
    ent = r["entropy_bits_at_temperatures"]
    caption = (
        f"Low temperature sharpens the softmax towards the largest logit (entropy {ent[0]:.3g} "
        f"bits at T = {r['temperatures'][0]:g}); high temperature flattens it towards uniform "
        f"({ent[-1]:.3f} bits at T = {r['temperatures'][-1]:g})."
    )
    return _render(fig, "landscape_temperature.png", "landscapes", "Softmax temperature", caption)


def _fig_multilabel(sec: Section) -> FigureFile:
    r = sec.results
    heads = r["heads"]
    colors = {"sigmoid": CE_COLOR, "softmax": MSE_COLOR}
    labels = {"sigmoid": HEAD_LABELS["sigmoid"], "softmax": HEAD_LABELS["softmax"]}
    fig, (ax0, ax1) = _figure(12.0, 4.4, 2)
    names = [*r["attributes"], "all three right"]
    pos = np.arange(len(names))
    width = 0.38
    for k, (name, m) in enumerate(heads.items()):
        values = [*m["attribute_accuracy"], m["exact_match"]]
        bars = ax0.bar(
            pos + (k - 0.5) * width, values, width, color=colors[name], label=labels[name]
        )
        ax0.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8, padding=2)
    ax0.set_xticks(pos, names)
    ax0.set_xlabel("attribute")
    ax0.set_ylabel("test accuracy")
    ax0.set_ylim(0.0, 1.12)
    ax0.set_title("Accuracy per attribute, and of all three")
    counts = np.arange(len(r["attributes"]) + 1)
    for name, m in heads.items():
        ax1.plot(
            counts, m["mean_probability_sum_by_count"], "o-", color=colors[name], label=labels[name]
        )
    ax1.plot(counts, counts, ":", color="#444444", label="the number of attributes")
    ax1.set_xticks(counts)
    ax1.set_xlabel("attributes the image has")
    ax1.set_ylabel("mean sum of the predicted probabilities")
    ax1.set_title("What the probabilities add up to")
    for ax in (ax0, ax1):
        ax.grid(True, axis="y", alpha=0.3)
    ax1.legend(fontsize=9)
    caption = (
        f"Left: test accuracy of each attribute ({', '.join(r['attributes'])}; predicted when "
        "its probability is at least 0.5) and of all three at once; right: the sum of the "
        "predicted probabilities by the number of attributes an image has. A softmax always "
        "sums to 1."
    )
    return _render(fig, "multilabel.png", "multilabel", "Multi-label: sigmoids vs softmax", caption)


def make_figures(sections: dict[str, Section]) -> list[FigureFile]:
    """Render every figure of the demo to PNG (matplotlib's Agg canvas, no pyplot state)."""
    land = sections["landscapes"]
    return [
        _fig_logistic(sections["logistic"]),
        _fig_mlp(sections["mlp"]),
        _fig_imbalance(sections["imbalance"]),
        _fig_outliers(sections["outliers"]),
        _fig_neglog(land),
        _fig_bce(land),
        _fig_one_logit(land),
        _fig_temperature(land),
        _fig_multilabel(sections["multilabel"]),
    ]


# --------------------------------------------------------------------------- HTML

#: The formulas beside each experiment (TeX, written as MathML when the page is made, so the
#: report shows them without a network). Each is what the experiment's code computes.
FORMULAS: dict[str, list[str]] = {
    "examples": [
        r"I(p) = -\log p, \qquad H(p) = -\sum_c p_c \log p_c, \qquad "
        r"\mathrm{softmax}(z)_c = \frac{e^{z_c}}{\sum_k e^{z_k}}",
        r"\mathrm{KL}(p \,\|\, q) = \sum_c p_c \log \frac{p_c}{q_c}, \qquad "
        r"H(p, q) = -\sum_c p_c \log q_c = H(p) + \mathrm{KL}(p \,\|\, q)",
    ],
    "logistic": [
        r"J(w, b) = -\frac{1}{n} \sum_{i=1}^{n} \left[t_i \log \sigma(z_i) + (1 - t_i) "
        r"\log\left(1 - \sigma(z_i)\right)\right] + \frac{\|w\|^2}{2 C n}, \qquad "
        r"z_i = w^\top x_i + b",
        r"\frac{\partial J}{\partial z_i} = \frac{\sigma(z_i) - t_i}{n}, \qquad "
        r"\frac{\partial J}{\partial w} = X^\top \frac{\partial J}{\partial z} + \frac{w}{C n}",
    ],
    "mlp": [
        r"\mathrm{CE} = -\frac{1}{N} \sum_i \log p_{i y_i}, \quad p_i = \mathrm{softmax}(z_i), "
        r"\qquad \frac{\partial\, \mathrm{CE}}{\partial z_i} = \frac{p_i - t_i}{N}",
        r"\mathrm{MSE} = \frac{1}{N} \sum_i \sum_c (p_{ic} - t_{ic})^2, \qquad "
        r"\frac{\partial\, \mathrm{MSE}}{\partial z_i} = \left(\mathrm{diag}(p_i) - p_i "
        r"p_i^\top\right) \frac{2 (p_i - t_i)}{N}",
    ],
    "imbalance": [
        r"\mathrm{CE}_w = \frac{\sum_i w_{y_i} \left(-\log p_{i y_i}\right)}{\sum_i w_{y_i}}, "
        r"\qquad w_c = \frac{N}{C\, n_c}",
        r"\mathrm{FL} = -\frac{1}{N} \sum_i \left(1 - p_{i y_i}\right)^{\gamma} \log p_{i y_i}",
    ],
    "outliers": [
        r"\mathrm{MSE} = \frac{1}{n} \sum_i r_i^2, \qquad "
        r"\mathrm{MAE} = \frac{1}{n} \sum_i \left|r_i\right|, \qquad "
        r"\mathrm{Huber}_\delta = \frac{1}{n} \sum_i \begin{cases} \frac{1}{2} r_i^2 & "
        r"|r_i| \le \delta \\ \delta \left(|r_i| - \frac{1}{2} \delta\right) & "
        r"\text{otherwise} \end{cases}, \qquad r_i = a x_i + b - y_i",
    ],
    "landscapes": [
        r"-\log p, \qquad -\log\left(1 - p\right), \qquad "
        r"\mathrm{softmax}(z / T)_c = \frac{e^{z_c / T}}{\sum_k e^{z_k / T}}",
    ],
    "multilabel": [
        r"\mathrm{BCE} = -\frac{1}{N} \sum_i \sum_{c=1}^{3} \left[t_{ic} \log \sigma(z_{ic}) + "
        r"(1 - t_{ic}) \log\left(1 - \sigma(z_{ic})\right)\right]",
        r"\mathrm{CE} = -\frac{1}{N} \sum_i \sum_{c=1}^{3} \frac{t_{ic}}{\sum_k t_{ik}} "
        r"\log \, \mathrm{softmax}(z_i)_c",
    ],
}


def _formulas(key: str) -> str:
    """The experiment's formulas as display MathML (``latex2mathml``)."""
    from latex2mathml.converter import convert

    return "".join(
        f'<div class="formula">{convert(tex, display="block")}</div>' for tex in FORMULAS[key]
    )


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _grouped(claims: list[tuple[str, str]], verb: str = "") -> str:
    """Claims ``(subject, phrase)`` as one sentence body, each subject named once:
    ``[("A", "x"), ("B", "y"), ("A", "z")]`` gives ``"A x and z; B y"``."""
    order: dict[str, list[str]] = {}
    for subject, phrase in claims:
        order.setdefault(subject, []).append(phrase)
    return "; ".join(f"{subject} {verb}{_and(phrases)}" for subject, phrases in order.items())


def _f(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}"


def _p(text: str) -> str:
    return f"<p>{text}</p>"


def _figs(figures: list[FigureFile], section: str) -> str:
    return "".join(
        img_tag(png_to_data_uri(f.png), f.title, f.caption) for f in figures if f.section == section
    )


def _section_examples(results: dict[str, Any]) -> str:
    rows = []
    for ex in results["examples"]:
        if ex["vector"] is not None:
            value = "[" + ", ".join(f"{v:.4f}" for v in ex["vector"]) + "]"
            rows.append((ex["name"], ex["call"] + " = " + value, "", ""))
        elif ex["value"] is not None:
            rows.append((ex["name"], ex["call"] + " = " + _f(ex["value"]), "", ""))
        else:
            rows.append((ex["name"], ex["call"], _f(ex["nats"]), _f(ex["bits"])))
    return (
        "<h2>1. The tutorials' worked numbers</h2>"
        + _formulas("examples")
        + _p(
            "Each value computed by the library; nats use the natural logarithm, bits the base-2 "
            "logarithm (bits = nats / ln 2); the regression and overlap losses have no unit, "
            "their value follows the call. Each call runs as shown after "
            "<code>import crossentropy as ce</code>."
        )
        + html_table(["example", "call", "nats", "bits"], rows, numeric=[False, False, True, True])
    )


def _section_logistic(r: dict[str, Any], figures: list[FigureFile]) -> str:
    a, b = r["classes"]
    gap = r["objective_ours"] - r["objective_sklearn"]
    rows = [
        ("training objective (nats)", _f(r["objective_ours"], 6), _f(r["objective_sklearn"], 6)),
        ("test log loss (nats)", _f(r["test_log_loss_ours"]), _f(r["test_log_loss_sklearn"])),
        ("test accuracy", _f(r["test_accuracy_ours"]), _f(r["test_accuracy_sklearn"])),
    ]
    if abs(gap) <= 1e-9 * abs(r["objective_sklearn"]):
        verdict = "the two optima agree"
    elif gap < 0:  # below: scikit-learn's solver stopped at its tolerance first
        verdict = (
            "gradient descent went below scikit-learn's objective, which stops at its tolerance"
        )
    elif gap <= 1e-4 * abs(r["objective_sklearn"]):
        verdict = "within 1e-4 of scikit-learn's optimum; more steps close the rest"
    else:
        verdict = "gradient descent has not yet reached scikit-learn's optimum"
    return (
        f"<h2>2. Logistic regression: digit {a} vs {b}</h2>"
        + _formulas("logistic")
        + _p(
            f"{r['n_train']} training and {r['n_test']} test images (label 1 = digit {b}). "
            "Gradient descent in NumPy (Nesterov momentum with restarts, step "
            f"{r['step_size']:.3g} = 1/L, "
            f"{r['steps']} steps) on scikit-learn's objective for <code>C = {r['C']:g}</code>: "
            "the mean binary cross-entropy plus ||w||&sup2; / (2Cn). The gradient with respect "
            "to the logits is <code>grad.binary_cross_entropy_with_logits</code>; the chain rule "
            "to the weights is X<sup>T</sup>g. Log loss by "
            f"<code>{escape(r['metric'])}</code>."
        )
        + html_table(
            ["", "gradient descent with crossentropy.grad", "scikit-learn LogisticRegression"],
            rows,
            numeric=[False, True, True],
        )
        + _p(
            f"The objective differs from scikit-learn's by {gap:.2g} nats ({verdict}); the "
            f"largest difference between the weights is {r['max_abs_weight_difference']:.2g}."
        )
        + _figs(figures, "logistic")
    )


def _section_mlp(r: dict[str, Any], figures: list[FigureFile]) -> str:
    e_ce, e_mse = r["first_epoch_90pct_ce"], r["first_epoch_90pct_mse"]

    def reached(e: int | None) -> str:
        return f"after {e} epochs" if e is not None else f"not within {r['epochs']} epochs"

    if e_ce is not None and (e_mse is None or e_ce < e_mse):
        faster = ("cross-entropy", "reached 90 % test accuracy first")
    elif e_mse is not None and (e_ce is None or e_mse < e_ce):
        faster = ("MSE", "reached 90 % test accuracy first")
    elif e_ce is None:
        faster = ("neither", "reached 90 % test accuracy")
    else:
        faster = ("both", "reached 90 % test accuracy in the same epoch")
    acc_ce, acc_mse = r["final_test_accuracy_ce"], r["final_test_accuracy_mse"]
    ll_ce, ll_mse = r["final_test_log_loss_ce"], r["final_test_log_loss_mse"]
    if acc_ce > acc_mse:
        better = ("cross-entropy", "ends with the higher test accuracy")
    elif acc_ce < acc_mse:
        better = ("MSE", "ends with the higher test accuracy")
    else:
        better = ("both", "end with the same test accuracy")
    claim_faster = e_ce is not None and (e_mse is None or e_ce < e_mse)
    claim_better = acc_ce > acc_mse
    if claim_faster and claim_better:
        verdict = "In this run the tutorials' claim holds: cross-entropy trained faster and better."
    elif claim_faster or claim_better:
        verdict = "In this run the tutorials' claim holds only in part."
    else:
        verdict = "In this run the tutorials' claim does not hold."
    rows = [
        ("first epoch with test accuracy ≥ 90 %", reached(e_ce), reached(e_mse)),
        (f"test accuracy after {r['epochs']} epochs", _f(acc_ce), _f(acc_mse)),
        (f"test log loss after {r['epochs']} epochs (nats)", _f(ll_ce), _f(ll_mse)),
    ]
    return (
        "<h2>3. A small network on all ten digits: cross-entropy vs MSE</h2>"
        + _formulas("mlp")
        + _p(
            f"A 64-{r['hidden']}-10 network with tanh hidden units, trained by minibatch gradient "
            f"descent (batch {r['batch_size']}, learning rate {r['learning_rate']:g}, "
            f"{r['epochs']} epochs) twice from the same initialisation with the same batches: "
            "with softmax cross-entropy (<code>grad.cross_entropy</code>) and with the squared "
            "error of the softmax output against the one-hot target, "
            f"{escape(r['mse_reduction'])} (<code>grad.mse_loss</code>, chained through the "
            "softmax Jacobian diag(p) − pp<sup>T</sup>)."
        )
        + html_table(
            ["", "softmax cross-entropy", "MSE on the softmax"], rows, numeric=[False, True, True]
        )
        + _p(
            f"Measured: {_grouped([faster, better])}. The test log loss is {_f(ll_ce)} with "
            f"cross-entropy and {_f(ll_mse)} with MSE."
        )
        + _p(f"<strong>{escape(verdict)}</strong>")
        + _figs(figures, "mlp")
    )


def _section_imbalance(r: dict[str, Any], figures: list[FigureFile]) -> str:
    methods = r["methods"]
    digit = r["minority_digit"]
    rows = [
        (
            METHOD_LABELS[name],
            _f(m["minority_recall"], 3),
            _f(m["test_accuracy"], 3),
            _f(m["test_log_loss"], 3),
        )
        for name, m in methods.items()
    ]
    others = [w for i, w in enumerate(r["class_weights"]) if i != digit]
    best_recall = max(methods, key=lambda k: methods[k]["minority_recall"])
    best_ll = min(methods, key=lambda k: methods[k]["test_log_loss"])
    best_acc = max(methods, key=lambda k: methods[k]["test_accuracy"])
    return (
        "<h2>4. Class imbalance</h2>"
        + _formulas("imbalance")
        + _p(
            f"Digit {digit} keeps {r['minority_train_examples']} of its "
            f"{r['minority_train_examples_before']} training images "
            f"({r['n_train']} training images in all); the test set is unchanged. Softmax "
            f"regression, {r['epochs']} epochs of minibatch gradient descent (learning rate "
            f"{r['learning_rate']:g}) from zero weights, with plain cross-entropy, with "
            'cross-entropy weighted by <code>class_weights(y, "balanced")</code> (weight '
            f"{r['class_weights'][digit]:.2f} for digit {digit}, about "
            f"{min(others):.2f}–{max(others):.2f} for the others) and with the focal loss "
            f"(γ = {r['focal_gamma']:g}, "
            "<code>grad.focal_loss</code>)."
        )
        + html_table(
            ["loss", f"recall of digit {digit}", "test accuracy", "test log loss (nats)"],
            rows,
            numeric=[False, True, True, True],
        )
        + _p(
            "Measured: "
            + _grouped(
                [
                    (METHOD_LABELS[best_recall], f"the highest recall of digit {digit}"),
                    (METHOD_LABELS[best_acc], "the highest accuracy"),
                    (METHOD_LABELS[best_ll], "the lowest log loss"),
                ],
                verb="gives ",
            )
            + "."
        )
        + _p(_focal_sentence(methods, digit))
        + _figs(figures, "imbalance")
    )


def _focal_sentence(methods: dict[str, Any], digit: int) -> str:
    """What the focal loss did against plain cross-entropy, as measured."""
    plain, focal = methods["plain"], methods["focal"]
    moved = "raises" if focal["minority_recall"] > plain["minority_recall"] else "does not raise"
    worse = "higher" if focal["test_log_loss"] > plain["test_log_loss"] else "lower"
    return (
        f"Against plain cross-entropy, the focal loss {moved} the recall of digit {digit} "
        f"({_f(plain['minority_recall'], 3)} plain, {_f(focal['minority_recall'], 3)} focal), "
        f"at a {worse} test log loss ({_f(plain['test_log_loss'], 3)} plain, "
        f"{_f(focal['test_log_loss'], 3)} focal): it lowers the weight of examples already "
        "classified well, whatever their class, where the class weights raise the rare class's."
    )


def _section_outliers(r: dict[str, Any], figures: list[FigureFile]) -> str:
    rows = [
        ("true line", _f(r["true_slope"], 3), _f(r["true_intercept"], 3), ""),
        (
            "MSE (grad.mse_loss)",
            _f(r["mse_slope"], 3),
            _f(r["mse_intercept"], 3),
            _f(r["mse_clean_rmse"], 3),
        ),
        (
            "MAE (grad.l1_loss)",
            _f(r["mae_slope"], 3),
            _f(r["mae_intercept"], 3),
            _f(r["mae_clean_rmse"], 3),
        ),
        (
            f"Huber, δ = {r['huber_delta']:g} (grad.huber_loss)",
            _f(r["huber_slope"], 3),
            _f(r["huber_intercept"], 3),
            _f(r["huber_clean_rmse"], 3),
        ),
    ]
    ratio = r["mse_clean_rmse"] / r["huber_clean_rmse"]
    mae = r["mse_clean_rmse"] / r["mae_clean_rmse"]
    lsq_gap = abs(r["mse_slope"] - r["least_squares_slope"])
    return (
        "<h2>5. Outliers: MSE, MAE and Huber</h2>"
        + _formulas("outliers")
        + _p(
            f"A line fitted to {r['n']} points of which {r['n_outliers']} are outliers, by "
            f"gradient descent ({r['steps']} steps) on the mean squared error, the mean "
            "absolute error (by its subgradient) and the Huber loss, which is squared for "
            "residuals up to δ and grows linearly beyond, like the absolute error. The error is "
            "measured on the clean points only (root mean squared error, <code>rmse_loss</code>)."
        )
        + html_table(
            ["fit", "slope", "intercept", "RMSE on the clean points"],
            rows,
            numeric=[False, True, True, True],
        )
        + _p(
            f"Measured: the Huber fit's error on the clean points is {ratio:.1f} times smaller "
            f"than the MSE fit's. The MSE fit matches least squares (<code>numpy.polyfit</code>) "
            f"to {lsq_gap:.1g} in the slope."
            if ratio > 1
            else f"Measured: the MSE fit's error on the clean points is {1 / ratio:.1f} times "
            "smaller than the Huber fit's."
        )
        + _p(
            f"The MAE fit's error on the clean points is {max(mae, 1 / mae):.1f} times "
            + ("smaller than the MSE fit's." if mae > 1 else "larger than the MSE fit's.")
            if mae >= 1.05 or mae <= 1 / 1.05
            else "The MAE and MSE fits' errors on the clean points are within 5 % of each other."
        )
        + _figs(figures, "outliers")
    )


def _section_landscapes(r: dict[str, Any], figures: list[FigureFile]) -> str:
    ce_shape = "convex" if r["ce_convex"] else "not convex"
    mse_shape = "convex" if r["mse_convex"] else "not convex"
    rows = [
        (
            f"{t:g}",
            "[" + ", ".join(f"{v:.4f}" for v in probs) + "]",
            _f(h),
        )
        for t, probs, h in zip(
            r["temperatures"],
            r["softmax_at_temperatures"],
            r["entropy_bits_at_temperatures"],
            strict=True,
        )
    ]
    return (
        "<h2>6. Loss landscapes</h2>"
        + _formulas("landscapes")
        + _p(
            "The loss functions themselves, computed by the library: −log p, both branches of "
            "binary cross-entropy, cross-entropy and MSE as functions of one logit of a softmax "
            "output, and the softmax as the temperature changes."
        )
        + _p(
            f"Measured on a grid of logits z ∈ [−8, 8]: cross-entropy is {ce_shape} in z "
            f"(smallest second difference {r['min_curvature_ce']:.2g}); MSE of the softmax is "
            f"{mse_shape} (smallest second difference {r['min_curvature_mse']:.2g}). At z = 0 "
            f"the cross-entropy is {r['ce_at_zero_logit']:.4f} = ln 3 ({r['log3']:.4f})."
        )
        + _figs(figures, "landscapes")
        + html_table(
            ["temperature T", "softmax((1, 2, 3) / T)", "entropy (bits)"],
            rows,
            numeric=[True, False, True],
        )
    )


def _section_multilabel(r: dict[str, Any], figures: list[FigureFile]) -> str:
    sig, soft = r["heads"]["sigmoid"], r["heads"]["softmax"]
    counts = r["test_images_by_count"]
    several = sum(counts[2:])

    def several_right(m: dict[str, Any]) -> float:
        hits = sum(m["exact_match_by_count"][k] * counts[k] for k in range(2, len(counts)))
        return float(hits / several)

    rows = [
        (f"accuracy: {name}", _f(a, 3), _f(b, 3))
        for name, a, b in zip(
            r["attributes"], sig["attribute_accuracy"], soft["attribute_accuracy"], strict=True
        )
    ]
    rows += [
        ("all three right", _f(sig["exact_match"], 3), _f(soft["exact_match"], 3)),
        (
            f"all three right, images with 2 or 3 ({several})",
            _f(several_right(sig), 3),
            _f(several_right(soft), 3),
        ),
        (
            "test BCE, summed over the attributes (nats)",
            _f(sig["test_bce"], 3),
            _f(soft["test_bce"], 3),
        ),
    ]
    if sig["exact_match"] != soft["exact_match"]:
        ahead = "sigmoids" if sig["exact_match"] > soft["exact_match"] else "the softmax"
        winner = f"{ahead} ahead"
    else:
        winner = "the same share"
    have = "; ".join(
        f"{d}: {', '.join(a for a, on in zip(r['attributes'], row, strict=True) if on) or 'none'}"
        for d, row in enumerate(r["attribute_of_digit"])
    )
    return (
        "<h2>7. Multi-label: several labels per image</h2>"
        + _formulas("multilabel")
        + _p(
            f"Each image gets {len(r['attributes'])} yes/no attributes from its digit ({have}), "
            "so the labels are not exclusive: the test set has "
            + _and([f"{n} images with {k}" for k, n in enumerate(counts)])
            + f" attributes. The same 64-{r['hidden']}-3 tanh network is trained twice from "
            f"one initialisation with the same batches ({r['epochs']} epochs, learning rate "
            f"{r['learning_rate']:g}): with a sigmoid per attribute and binary cross-entropy "
            "summed over the attributes and averaged over the batch "
            '(<code>grad.binary_cross_entropy_with_logits(z, t, reduction="batchmean")</code>), '
            "and with a softmax over the attributes and cross-entropy against the attributes "
            "divided by their number (<code>grad.cross_entropy(z, t / t.sum(1))</code>; an image "
            "with no attribute gives no gradient). An attribute is predicted when its "
            "probability is at least 0.5."
        )
        + html_table(
            ["", HEAD_LABELS["sigmoid"], HEAD_LABELS["softmax"]],
            rows,
            numeric=[False, True, True],
        )
        + _p(
            f"Measured: all three attributes are right for {_f(sig['exact_match'], 3)} of the "
            f"test images with sigmoids and {_f(soft['exact_match'], 3)} with the softmax "
            f"({winner}); of the {several} images with two or three attributes the softmax "
            f"gets a share of {_f(several_right(soft), 3)} right, the sigmoids "
            f"{_f(several_right(sig), 3)}. A softmax's probabilities sum to 1, so two "
            "attributes can reach 0.5 only by being exactly 0.5 each; independent sigmoids "
            "have no such bound."
        )
        + _figs(figures, "multilabel")
    )


def render_html(results: dict[str, Any], figures: list[FigureFile]) -> str:
    """The self-contained report page (figures embedded as base64 PNG data URIs)."""
    d = results["data"]
    intro = _p(
        f"Every number on this page is computed by this run of <code>crossentropy demo"
        f"{' --quick' if results['quick'] else ''}</code> (seed {results['seed']}, "
        f"{'quick' if results['quick'] else 'full'} settings) on scikit-learn's bundled "
        f"handwritten digits: {d['n_train'] + d['n_test']} images of 8×8 pixels, "
        f"{d['n_train']} for training and {d['n_test']} for testing (stratified). The models "
        "are trained in NumPy with the gradients of <code>crossentropy.grad</code>. The same "
        "numbers are in <code>results.json</code>, the figures in the PNG files beside this page."
    )
    sections = [
        intro,
        _section_examples(results),
        _section_logistic(results["logistic"], figures),
        _section_mlp(results["mlp"], figures),
        _section_imbalance(results["imbalance"], figures),
        _section_outliers(results["outliers"], figures),
        _section_landscapes(results["landscapes"], figures),
        _section_multilabel(results["multilabel"], figures),
    ]
    return html_page("crossentropy demo: cross-entropy on real digits", sections)
