"""`crossentropy demo`: the quick run end to end, its files, and its numbers against the library."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import re
import stat
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest

import crossentropy as ce
from crossentropy._lib.html import figure_to_data_uri, html_table, write_atomic
from crossentropy.cli import main
from crossentropy.cli._demo import QUICK, load_digits_split, mlp_ce_vs_mse, outlier_data
from crossentropy.cli._examples import worked_examples

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["demo", "--quick", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    return {"code": code, "out": out, "stdout": stdout.getvalue(), "results": results}


def test_exits_zero_and_prints_the_table_and_the_summary(run):
    assert run["code"] == 0
    text = run["stdout"]
    assert "PyTorch CrossEntropyLoss" in text  # the worked-examples table
    assert "quick run" in text
    r = run["results"]
    assert f"test log loss {r['logistic']['test_log_loss_ours']:.4f}" in text
    assert f"{r['outliers']['huber_clean_rmse']:.3f} with Huber" in text
    assert f"{r['outliers']['mae_clean_rmse']:.3f} with MAE" in text
    assert str(run["out"] / "index.html") in text


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, capsys, monkeypatch):
    """Exit 2 with one error line before anything is printed (an empty path, a file, a folder
    under a file), a line break in the folder's name escaped; the working folder untouched."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.chdir(tmp_path)
    for out, says in (
        (str(blocker / "new\nline"), "cannot make the report's folder"),
        (str(blocker), "cannot make the report's folder"),
        ("", "an empty path"),
        (" ", "an empty path"),
    ):
        assert main(["demo", "--quick", "--out", out]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert captured.err.startswith("crossentropy demo: error: --out: ")
        assert says in captured.err
    main(["demo", "--quick", "--out", str(blocker / "new\nline")])
    assert "new\\nline" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_every_figure_is_a_valid_png_with_a_caption(run):
    figures = run["results"]["figures"]
    assert len(figures) == 9
    pngs = sorted(p.name for p in run["out"].glob("*.png"))
    assert pngs == sorted(f["file"] for f in figures)
    for fig in figures:
        path = run["out"] / fig["file"]
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = mpimg.imread(path)
        assert image.ndim == 3
        assert image.shape[0] > 200
        assert image.shape[1] > 300
        assert float(np.std(image)) > 0.01  # not blank
        assert fig["title"]
        assert fig["caption"]


def test_report_is_self_contained_and_embeds_each_figure(run):
    page = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<link" not in page
    assert "<script" not in page
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    files = {(run["out"] / f["file"]).read_bytes() for f in run["results"]["figures"]}
    assert {base64.b64decode(e) for e in embedded} == files
    for fig in run["results"]["figures"]:
        assert fig["title"] in page


def test_report_numbers_equal_the_results(run):
    page = (run["out"] / "index.html").read_text(encoding="utf-8")
    r = run["results"]
    for value in (
        r["logistic"]["test_log_loss_ours"],
        r["logistic"]["test_log_loss_sklearn"],
        r["mlp"]["final_test_accuracy_ce"],
        r["mlp"]["final_test_accuracy_mse"],
    ):
        assert f"{value:.4f}" in page
    for m in r["imbalance"]["methods"].values():
        assert f"{m['minority_recall']:.3f}" in page
        assert f"{m['test_log_loss']:.3f}" in page
    plain, focal = r["imbalance"]["methods"]["plain"], r["imbalance"]["methods"]["focal"]
    moved = "raises" if focal["minority_recall"] > plain["minority_recall"] else "does not raise"
    assert f"the focal loss {moved} the recall of digit" in page
    assert f"{r['outliers']['mse_clean_rmse']:.3f}" in page


def test_worked_examples_are_the_librarys(run):
    for got, ex in zip(run["results"]["examples"], worked_examples(), strict=True):
        assert got["name"] == ex.name
        assert got["nats"] == ex.nats
        assert got["bits"] == ex.bits
        assert got["value"] == ex.value


def test_worked_examples_show_the_tutorials_claims():
    """KL is not symmetric; focal loss with gamma 0 is cross-entropy; RMSE is the root of MSE;
    Huber is at most MAE (linear tails), far below MSE with an outlier; IoU = D / (2 - D)
    with Dice's score D."""
    rows = {ex.name.split(":")[0]: ex for ex in worked_examples()}
    assert abs(rows["divergence KL(p || q)"].nats - rows["KL(q || p)"].nats) > 1e-3
    assert rows["focal loss, gamma 0"].nats == pytest.approx(rows["PyTorch CrossEntropyLoss"].nats)
    value = {name: ex.value for name, ex in rows.items() if ex.value is not None}
    assert value["root mean squared error"] == pytest.approx(
        math.sqrt(value["mean squared error (MSE)"])
    )
    assert value["Huber"] < value["mean absolute error (MAE)"] < value["mean squared error (MSE)"]
    dice = 1 - value["Dice loss"]
    assert 1 - value["IoU (Jaccard) loss"] == pytest.approx(dice / (2 - dice))


def test_logistic_regression_numbers_recomputed_from_the_stored_predictions(run):
    r = run["results"]["logistic"]
    y = np.asarray(r["test_labels"])
    for who in ("ours", "sklearn"):
        p = np.asarray(r[f"test_proba_{who}"])
        loss = float(ce.binary_cross_entropy(p, y.astype(float), clip="sklearn"))
        assert r[f"test_log_loss_{who}"] == pytest.approx(loss, rel=1e-12)
        assert r[f"test_accuracy_{who}"] == np.mean((p > 0.5) == (y == 1))
    # Same objective, so gradient descent lands on scikit-learn's optimum.
    assert r["objective_ours"] == pytest.approx(r["objective_sklearn"], rel=1e-4)


def test_the_logistic_verdict_says_how_close_the_optima_are(run):
    """The report says the optima agree only where the objectives agree to 1e-9; the quick run
    stops a little short (within 1e-4), and says so."""
    r = run["results"]["logistic"]
    page = (run["out"] / "index.html").read_text(encoding="utf-8")
    gap = r["objective_ours"] - r["objective_sklearn"]
    rel = gap / abs(r["objective_sklearn"])
    agree = "the two optima agree" in page
    close = "within 1e-4 of scikit-learn's optimum" in page
    below = "went below scikit-learn's objective" in page
    assert (agree, close, below) == (abs(rel) <= 1e-9, 1e-9 < rel <= 1e-4, rel < -1e-9)


def test_network_results_match_the_run(run):
    r = run["results"]["mlp"]
    again = mlp_ce_vs_mse(load_digits_split(QUICK.seed), QUICK).results  # seeded: the same
    assert again["curves"] == r["curves"]
    for curves in r["curves"].values():
        assert len(curves["test_acc"]) == QUICK.mlp_epochs + 1
    assert r["final_test_accuracy_ce"] == r["curves"]["cross_entropy"]["test_acc"][-1]
    assert r["final_test_accuracy_mse"] == r["curves"]["mse"]["test_acc"][-1]


def test_imbalance_weights_are_balanced_class_weights(run):
    r = run["results"]["imbalance"]
    w = r["class_weights"]
    digit = r["minority_digit"]
    assert w[digit] == pytest.approx(r["n_train"] / (10 * r["minority_train_examples"]))
    assert r["minority_train_examples"] == round(0.05 * r["minority_train_examples_before"])
    for m in r["methods"].values():
        assert m["minority_recall"] == m["recall_per_class"][digit]


def test_outlier_errors_recomputed_from_the_fitted_lines(run):
    r = run["results"]["outliers"]
    x, y, out, (slope, intercept) = outlier_data(run["results"]["seed"])
    assert (r["true_slope"], r["true_intercept"]) == (slope, intercept)
    clean = ~out
    for name in ("mse", "mae", "huber"):
        pred = r[f"{name}_slope"] * x[clean] + r[f"{name}_intercept"]
        rmse = math.sqrt(np.mean((pred - y[clean]) ** 2))
        assert r[f"{name}_clean_rmse"] == pytest.approx(rmse, rel=1e-12)
    lstsq = np.polyfit(x, y, 1)
    assert r["mse_slope"] == pytest.approx(lstsq[0], rel=1e-6)  # gradient descent converged
    # the MAE's subgradient descent reaches the least-absolute-deviations optimum's objective
    # (scikit-learn's median regression, solved exactly by linear programming) to 1e-3 (a fixed
    # step circles the optimum: 1.1e-4 above it after --quick's 400 steps, 3e-5 after 1500)
    from sklearn.linear_model import QuantileRegressor

    lad = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(x[:, None], y)
    best = np.mean(np.abs(lad.predict(x[:, None]) - y))
    ours = np.mean(np.abs(r["mae_slope"] * x + r["mae_intercept"] - y))
    assert best <= ours <= best * (1 + 1e-3)


def test_landscape_numbers(run):
    r = run["results"]["landscapes"]
    assert r["ce_at_zero_logit"] == pytest.approx(math.log(3.0), rel=1e-12)
    assert r["neglog_at_half_bits"] == 1.0
    assert r["ce_convex"]
    assert not r["mse_convex"]
    logits = np.asarray(r["temperature_logits"])
    for t, probs, h in zip(
        r["temperatures"],
        r["softmax_at_temperatures"],
        r["entropy_bits_at_temperatures"],
        strict=True,
    ):
        e = np.exp(logits / t - np.max(logits / t))
        np.testing.assert_allclose(probs, e / e.sum(), rtol=1e-12)
        assert h == pytest.approx(float(ce.entropy(np.asarray(probs), base=2)), rel=1e-12)
    assert r["max_entropy_bits"] == pytest.approx(math.log2(3.0), rel=1e-12)


def test_html_helpers(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    uri = figure_to_data_uri(fig)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == PNG_SIGNATURE
    path = write_atomic(tmp_path / "page.html", "<p>é</p>")
    assert path.read_text(encoding="utf-8") == "<p>é</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary file left
    # a replaced file keeps its mode; a new one gets the umask's
    for mode in (0o600, 0o444):
        path.chmod(mode)
        write_atomic(path, "again")
        assert stat.S_IMODE(path.stat().st_mode) == mode
    for umask, mode in ((0o077, 0o600), (0o022, 0o644)):
        old = os.umask(umask)
        try:
            made = write_atomic(tmp_path / f"new-{umask:o}.html", "new")
        finally:
            os.umask(old)
        assert stat.S_IMODE(made.stat().st_mode) == mode
    assert "<td>&lt;b&gt;</td>" in html_table(["a"], [["<b>"]])


def test_every_call_the_report_shows_runs_as_shown(run):
    """The worked examples' calls, read back from the page, give the values beside them."""
    import html as html_lib

    page = (run["out"] / "index.html").read_text(encoding="utf-8")
    table = page.split("<h2>1.", 1)[1].split("<h2>2.", 1)[0]
    cells = [
        html_lib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", table, flags=re.DOTALL)
    ]
    rows = [cells[i : i + 4] for i in range(0, len(cells), 4)]
    assert len(rows) == len(worked_examples())
    for _name, call, nats, bits in rows:
        expression, _, after = call.partition(" = ")
        # as a reader types it after `import crossentropy as ce`
        value = eval(expression, {"ce": ce})
        if after.startswith("["):
            shown = [float(v) for v in after.strip("[]").split(", ")]
            np.testing.assert_allclose(np.asarray(value), shown, atol=5e-5)
        elif after:  # a loss without a unit
            assert (nats, bits) == ("", "")
            assert f"{float(value):.4f}" == after
        else:
            assert f"{float(value):.4f}" == nats
            assert f"{float(value) / math.log(2):.4f}" == bits


def test_multilabel_attributes_are_not_exclusive_and_sigmoids_win(run):
    r = run["results"]["multilabel"]
    table = np.asarray(r["attribute_of_digit"])
    assert table[9].tolist() == [1, 1, 1]  # odd, at least 5, a loop
    assert table[2].tolist() == [0, 0, 0]
    assert table[0].tolist() == [0, 0, 1]
    data = load_digits_split(QUICK.seed)
    counts = table[data.y_test].sum(axis=1)
    assert r["test_images_by_count"] == [int(np.sum(counts == k)) for k in range(4)]
    sig, soft = r["heads"]["sigmoid"], r["heads"]["softmax"]
    # a softmax sums to 1: at most one attribute reaches 0.5, so no image with two is right
    assert soft["mean_probability_sum_by_count"] == pytest.approx([1.0] * 4, rel=1e-12)
    assert soft["exact_match_by_count"][2:] == [0.0, 0.0]
    assert sig["exact_match"] > soft["exact_match"]
    # the sigmoids' sums grow with the number of attributes an image has
    assert np.all(np.diff(sig["mean_probability_sum_by_count"]) > 0)
    page = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert f"{sig['exact_match']:.3f}" in page
    assert "7. Multi-label" in page


def test_the_report_shows_each_formula_as_mathml(run):
    from crossentropy.cli._demo_report import FORMULAS

    page = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert page.count('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">') == sum(
        len(v) for v in FORMULAS.values()
    )
    assert "\\frac" not in page  # no TeX left for a script to render
    assert "\\log" not in page


def test_the_mae_sentence_says_how_many_times_either_way(run):
    from crossentropy.cli._demo_report import render_html

    results = json.loads(json.dumps(run["results"]))
    for mse, mae, said in ((1.0, 2.0, "2.0 times larger"), (2.0, 1.0, "2.0 times smaller")):
        results["outliers"].update(mse_clean_rmse=mse, mae_clean_rmse=mae)
        assert f"The MAE fit's error on the clean points is {said}" in render_html(results, [])


@pytest.mark.parametrize("winner", ["plain", "weighted", "focal"])
def test_generated_sentences_name_each_method_once(run, winner):
    from crossentropy.cli._demo_report import METHOD_LABELS, render_html

    results = json.loads(json.dumps(run["results"]))
    for name, m in results["imbalance"]["methods"].items():
        best = name == winner
        m.update(
            minority_recall=0.9 if best else 0.1,
            test_accuracy=0.9 if best else 0.5,
            test_log_loss=0.2 if best else 1.0,
        )
    page = render_html(results, [])
    measured = [p for p in re.findall(r"<p>(Measured:.*?)</p>", page) if "digit" in p]
    sentence = next(p for p in measured if "recall of digit" in p)
    assert sentence.count(METHOD_LABELS[winner]) == 1
    assert "the highest recall of digit 8, the highest accuracy and the lowest log loss" in sentence
    # the network's verdict names the method that wins both measures once
    results["mlp"].update(first_epoch_90pct_ce=2, first_epoch_90pct_mse=None)
    results["mlp"].update(final_test_accuracy_ce=0.95, final_test_accuracy_mse=0.85)
    first = re.search(r"<p>Measured: ([^.]*)\.", render_html(results, [])).group(1)
    assert first == (
        "cross-entropy reached 90 % test accuracy first and ends with the higher test accuracy"
    )


def test_missing_packages_stop_the_demo_before_its_folder_is_made(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "crossentropy demo: error: running the digits experiments needs scikit-learn (it is not "
        "installed): pip install 'crossentropy[score]'\n"
    )
    assert captured.out == ""
    assert not out.exists()
