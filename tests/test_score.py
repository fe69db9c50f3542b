"""``crossentropy score``: numbers vs scikit-learn, formats, batching, Dask, bad input, report."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from _helpers import as_repeated, assert_same_numbers
from crossentropy import metrics
from crossentropy.cli import main
from crossentropy.scoring import score

CLASSES = ["cat", "dog", "eel"]
N = 600


def _make_data(seed: int = 0, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, len(CLASSES))) * 2.0
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    p[5] = [1.0, 0.0, 0.0]  # an exact 0 for a true class somewhere: the clipped loss
    y[5] = 1
    return y, p


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same predictions as CSV, Parquet, .npz, .npy pair and a solution/submission pair."""
    d = tmp_path_factory.mktemp("score")
    y, p = _make_data()
    labels = [CLASSES[i] for i in y]
    ids = np.arange(1000, 1000 + N)
    table = pa.table({"id": ids, "y": labels, **{f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)}})
    pcsv.write_csv(table, d / "t.csv")
    pq.write_table(table, d / "t.parquet", row_group_size=64)
    np.savez(d / "t.npz", y_true=y, y_proba=p, classes=np.array(CLASSES))
    np.save(d / "proba.npy", p)
    np.save(d / "y.npy", y)
    sol = pa.table({"id": ids, "y": labels})
    sub = pa.table({"id": ids, **{c: p[:, j] for j, c in enumerate(CLASSES)}})
    pcsv.write_csv(sol, d / "sol.csv")
    pcsv.write_csv(sub, d / "sub.csv")
    perm = np.random.default_rng(1).permutation(N)
    pcsv.write_csv(sub.take(perm), d / "sub_shuffled.csv")
    pq.write_table(sol, d / "sol.parquet")
    pq.write_table(sub.take(perm), d / "sub_shuffled.parquet", row_group_size=50)
    return {"dir": d, "y": y, "p": p, "ids": ids, "perm": perm}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``crossentropy score ARGS`` in this process: (exit status, stdout, stderr)."""
    code = main(["score", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m crossentropy.cli score ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "crossentropy.cli", "score", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


#: Runs ``crossentropy score`` once per argument list read from stdin, in one process, each
#: run with its own captured output and warning state (as a fresh process would have), and
#: prints each run's exit code, stdout and stderr as JSON; an escaping exception's traceback
#: goes to that run's stderr.
_RUNS = r"""
import io, json, sys, traceback, warnings
from contextlib import redirect_stderr, redirect_stdout
from crossentropy.cli import main
results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["score", *argv])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, sys.stdout)
"""


def cli_runs(*argvs: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """``crossentropy score ARGS`` for each argument list, in one subprocess (see ``_RUNS``)."""
    done = subprocess.run(
        [sys.executable, "-c", _RUNS],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [
        subprocess.CompletedProcess(argv, code, out, err)
        for argv, (code, out, err) in zip(argvs, json.loads(done.stdout), strict=True)
    ]


def assert_same(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-12) -> None:
    """Equal results: counts and labels exactly, floats within ``tol``; worst rows equal (the
    ``input`` metadata, which names the files and options, aside)."""
    assert a.keys() == b.keys()
    for key in a.keys() - {"input"}:
        _same(a[key], b[key], tol, key)


def _same(a: Any, b: Any, tol: float, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, z) in enumerate(zip(a, b, strict=True)):
            _same(x, z, tol, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= tol * max(1.0, abs(a)), (where, a, b)
    else:
        assert a == b, (where, a, b)


TABLE_ARGS = ("--target", "y", "--proba-cols", "p_*")


# --------------------------------------------------------------------------- numbers


def test_numbers_match_scikit_learn(data: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    accuracy_score = pytest.importorskip("sklearn.metrics").accuracy_score
    brier_score_loss = pytest.importorskip("sklearn.metrics").brier_score_loss
    r = run_json(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS)
    y, p = data["y"], data["p"]
    assert r["n"] == N
    assert r["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1, 2]), rel=1e-12)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(axis=1)), rel=1e-12)
    assert r["brier"] == pytest.approx(brier_score_loss(y, p, labels=[0, 1, 2]), rel=1e-12)
    assert [c["label"] for c in r["per_class"]] == CLASSES
    for j, c in enumerate(r["per_class"]):
        mask = y == j
        assert c["count"] == int(mask.sum())
        assert c["log_loss"] == pytest.approx(
            log_loss(y[mask], p[mask], labels=[0, 1, 2]), rel=1e-12
        )
    ent = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1).mean()
    assert r["mean_entropy"] == pytest.approx(ent, rel=1e-12)
    # The worst row is row 6 (index 5): p(true) = 0, clipped at eps as in scikit-learn.
    assert r["worst"][0]["row"] == 6
    assert r["worst"][0]["label"] == "dog"
    assert r["worst"][0]["loss"] == pytest.approx(-np.log(np.finfo(np.float64).eps))
    assert len(r["worst"]) == 10
    assert sum(b["count"] for b in r["reliability"]) == N
    assert sum(r["loss_histogram"]["counts"]) == N


def test_text_table(data: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    code, out, err = run(capsys, str(data["dir"] / "t.parquet"), *TABLE_ARGS)
    assert code == 0
    assert err == ""
    ll = log_loss(data["y"], data["p"])
    for text in ("log loss", "accuracy", "Brier", "ECE", "mean entropy", "per class", "worst"):
        assert text in out
    assert f"{ll:.6f}" in out
    assert "eel" in out


def test_formats_agree(data: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    d = data["dir"]
    csv = run_json(capsys, str(d / "t.csv"), *TABLE_ARGS)
    assert_same(csv, run_json(capsys, str(d / "t.parquet"), *TABLE_ARGS))
    assert_same(csv, run_json(capsys, str(d / "t.npz")))
    npy = run_json(capsys, str(d / "proba.npy"), "--target-file", str(d / "y.npy"))
    assert npy["per_class"][0]["label"] == "0"  # no names in a bare .npy: classes 0 .. C-1
    named = run_json(
        capsys, str(d / "proba.npy"), "--target-file", str(d / "y.npy"), "--classes", "cat,dog,eel"
    )
    assert named["per_class"] == csv["per_class"]
    assert npy["log_loss"] == csv["log_loss"]


@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.npz"])
def test_batch_size_does_not_change_the_numbers(
    data: dict[str, Any], capsys: pytest.CaptureFixture[str], name: str
):
    args = (str(data["dir"] / name), *(TABLE_ARGS if name != "t.npz" else ()))
    whole = run_json(capsys, *args)
    assert_same(whole, run_json(capsys, *args, "--batch-rows", "7"))


def test_column_selection_and_class_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    y, p = _make_data(3, 50)
    t = pa.table(
        {
            "label": [["a", "b", "c"][i] for i in y],
            "other": np.zeros(50),
            **{f"prob_{c}_v1": p[:, j] for j, c in enumerate("abc")},
        }
    )
    f = tmp_path / "x.csv"
    pcsv.write_csv(t, f)
    r = run_json(capsys, str(f), "--target", "label", "--proba-cols", "prob_*_v1")
    assert [c["label"] for c in r["per_class"]] == ["a", "b", "c"]
    assert r["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-12)
    listed = run_json(
        capsys,
        str(f),
        "--target",
        "label",
        "--proba-cols",
        "prob_a_v1,prob_b_v1,prob_c_v1",
        "--classes",
        "a,b,c",
    )
    assert_same(r, listed)
    code, _, err = run(capsys, str(f), "--target", "label", "--proba-cols", "prob_a_v1,prob_b_v1")
    assert code == 2  # the labels are not the full column names
    assert "row 1" in err
    assert "'label'" in err


def test_integer_labels_match_integer_class_names(tmp_path: Path, capsys):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    y, p = _make_data(4, 80)
    t = pa.table({"y": y, **{f"p_{j}": p[:, j] for j in range(3)}})
    pq.write_table(t, tmp_path / "i.parquet")
    pcsv.write_csv(t, tmp_path / "i.csv")
    a = run_json(capsys, str(tmp_path / "i.parquet"), "--target", "y", "--proba-cols", "p_*")
    b = run_json(capsys, str(tmp_path / "i.csv"), "--target", "y", "--proba-cols", "p_*")
    assert_same(a, b)
    assert a["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-12)


def test_binary_single_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    accuracy_score = pytest.importorskip("sklearn.metrics").accuracy_score
    brier_score_loss = pytest.importorskip("sklearn.metrics").brier_score_loss
    rng = np.random.default_rng(5)
    q = rng.random(200)
    y = (rng.random(200) < q).astype(int)
    pcsv.write_csv(pa.table({"target": y, "pred": q}), tmp_path / "b.csv")
    r = run_json(capsys, str(tmp_path / "b.csv"), "--target", "target", "--proba-cols", "pred")
    assert [c["label"] for c in r["per_class"]] == ["0", "1"]
    assert r["log_loss"] == pytest.approx(log_loss(y, q), rel=1e-12)
    assert r["brier"] == pytest.approx(brier_score_loss(y, q), rel=1e-12)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, q > 0.5), rel=1e-12)


def test_one_column_named_for_the_first_class_is_that_class_probability(tmp_path: Path):
    """``p_0`` (pattern ``p_*``) is P(class 0), not P(class 1); ``p_no`` with classes ``no``
    and ``yes`` is P(no): the two classes are then listed in the other order."""
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    from crossentropy.scoring import score

    rng = np.random.default_rng(8)
    q = rng.uniform(0.05, 0.95, 300)  # P(class 0)
    y = (rng.random(300) >= q).astype(int)
    expected = log_loss(y, np.stack([q, 1 - q], axis=1))
    pcsv.write_csv(pa.table({"y": y, "p_0": q}), tmp_path / "p0.csv")
    got = score(tmp_path / "p0.csv", target="y", proba="p_*", bootstrap=0)
    assert got.log_loss == pytest.approx(expected, rel=1e-12)
    assert got.input["classes"] == ["1", "0"]
    names = np.where(y == 1, "yes", "no")
    pcsv.write_csv(pa.table({"y": names, "p_no": q}), tmp_path / "pno.csv")
    got = score(tmp_path / "pno.csv", target="y", proba="p_*", classes=["no", "yes"], bootstrap=0)
    assert got.log_loss == pytest.approx(expected, rel=1e-12)
    assert got.input["classes"] == ["yes", "no"]
    # a column named for the second class, or for no class, stays P(second class)
    pcsv.write_csv(pa.table({"y": y, "p_1": 1 - q, "pred": 1 - q}), tmp_path / "p1.csv")
    for proba in ("p_*", ["pred"]):
        got = score(tmp_path / "p1.csv", target="y", proba=proba, bootstrap=0)
        assert got.log_loss == pytest.approx(expected, rel=1e-12)
        assert got.input["classes"] == ["0", "1"]


def test_rows_not_summing_to_one_warn_once_and_are_not_renormalised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    y, p = _make_data(6, 100)
    p = p.copy()
    p[3:9] *= 0.9
    pcsv.write_csv(pa.table({"y": y, **{f"p_{j}": p[:, j] for j in range(3)}}), tmp_path / "s.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run(capsys, str(tmp_path / "s.csv"), *TABLE_ARGS, "--json")
    assert code == 0
    assert not [w for w in caught if issubclass(w.category, UserWarning)]  # one line, below
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "warning" in lines[0]
    assert "6 of 100 rows" in lines[0]
    # the Python API warns as scikit-learn does, once, naming the file and the count
    with pytest.warns(
        UserWarning, match=r"s\.csv: 6 of 100 rows have probabilities that do not"
    ) as w:
        score(tmp_path / "s.csv", target="y", proba="p_*", bootstrap=0)
    assert len(w) == 1
    assert "scored as given, not renormalised" in str(w[0].message)
    code, _, err = run(
        capsys, str(tmp_path / "s.csv"), *TABLE_ARGS, "--renormalize", "--format", "CSV"
    )
    assert code == 0
    assert err.strip().endswith(
        "6 of 100 rows have probabilities that do not sum to 1 within "
        "their dtype's rounding; they were rescaled (renormalize, --renormalize)"
    )
    with pytest.warns(UserWarning, match="sum to one"):
        expected = log_loss(y, p)
    assert json.loads(out)["log_loss"] == pytest.approx(expected, rel=1e-12)


def _float32_rows(n: int = 3000, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """float32 softmax rows (sums off 1 within float32 rounding) with some exact zeros."""
    rng = np.random.default_rng(32)
    logits = rng.standard_normal((n, c)) * 3
    p = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    p[:4] = np.eye(c, dtype=np.float32)[0]
    y = rng.integers(0, c, n)
    y[:4] = 1  # p_true = 0: the clip at float32's eps decides the loss
    return y, p


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_float32_files_are_scored_at_float32_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
):
    """A float32 file is checked and clipped as metrics.log_loss treats the same float32 array:
    no sum-to-one warning within float32 rounding, and the same log loss."""
    from crossentropy import metrics

    y, p = _float32_rows()
    tol64 = 1e-8 + np.sqrt(np.finfo(np.float64).eps)
    assert (np.abs(p.astype(np.float64).sum(axis=1) - 1) > tol64).any()  # float64 rules warn
    if fmt == "parquet":
        path = tmp_path / "p32.parquet"
        pq.write_table(pa.table({"y": y, **{f"p_{j}": p[:, j] for j in range(7)}}), path)
        args: tuple[str, ...] = (str(path), *TABLE_ARGS, "--classes", ",".join(map(str, range(7))))
    else:
        path = tmp_path / "p32.npz"
        np.savez(path, y_true=y, y_proba=p)
        args = (str(path),)
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    assert "sum to 1" not in err
    assert json.loads(out)["log_loss"] == pytest.approx(metrics.log_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("fmt", ["parquet", "npz", "array"])
def test_float16_rows_are_held_to_float16_rounding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
):
    """float16 probabilities are computed in float32 with their row sums held to float16's
    rounding, as metrics.log_loss treats the same array: no warning for a row off 1 by less
    (was held to float32's, a warning that metrics.log_loss does not give), the same log loss,
    and the warning for a row off by more."""
    from crossentropy import metrics

    y, p32 = _float32_rows(400, 3)
    p = p32.astype(np.float16)
    p[5] = [0.3, 0.3, 0.399]  # off 1 by 1e-3: beyond float32's tolerance, within float16's
    off = np.abs(p.astype(np.float32).sum(axis=1) - 1)
    assert off.max() > 1e-8 + np.sqrt(np.finfo(np.float32).eps)
    assert off.max() < 1e-8 + np.sqrt(np.finfo(np.float16).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = metrics.log_loss(y, p)

        def scored(q: np.ndarray) -> float:
            if fmt == "array":
                return score(q, target=y, bootstrap=0).log_loss
            path = tmp_path / f"p16.{fmt}"
            if fmt == "parquet":
                columns = {"y": y, **{f"p_{j}": q[:, j] for j in range(3)}}
                pq.write_table(pa.table(columns), path)
                return score(path, target="y", proba="p_*", bootstrap=0).log_loss
            np.savez(path, y_true=y, y_proba=q)
            return score(path, bootstrap=0).log_loss

        assert scored(p) == pytest.approx(expected, rel=1e-12)
    p[6] = [0.3, 0.3, 0.3]  # off by 0.1: beyond float16's tolerance too
    with pytest.warns(UserWarning, match=r"1 of 400 rows have probabilities that do not sum"):
        scored(p)


def test_the_accumulator_holds_float16_of_any_container_to_float16_rounding():
    """float16 rows given as a DataFrame, a tensor or a list are held to float16's rounding as
    a NumPy array is (only NumPy arrays were recognised)."""
    pd = pytest.importorskip("pandas")
    torch = pytest.importorskip("torch")
    p = np.array([[0.3, 0.3, 0.399], [0.2, 0.3, 0.5]], dtype=np.float16)  # off 1 by 1e-3
    for given in (p, pd.DataFrame(p), torch.from_numpy(p), list(p)):
        acc = metrics.ScoreAccumulator([0, 1, 2]).update(np.array([0, 2]), given)
        assert acc.result()["rows_not_summing_to_one"] == 0, type(given)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_id_column_of_a_single_table_names_the_worst_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
):
    y, p = _make_data(7, 80)
    keys = [f"key-{i}" for i in range(80)]
    table = pa.table({"key": keys, "y": y, **{f"p_{j}": p[:, j] for j in range(3)}})
    path = tmp_path / f"t.{fmt}"
    (pcsv.write_csv if fmt == "csv" else pq.write_table)(table, path)
    r = run_json(capsys, str(path), *TABLE_ARGS, "--id", "key")
    assert r["worst"]
    for w in r["worst"]:
        assert w["id"] == keys[w["row"] - 1]  # rows are 1-based data rows
    code, out, _ = run(capsys, str(path), *TABLE_ARGS, "--id", "key")
    assert code == 0
    assert f"key-{r['worst'][0]['row'] - 1}" in out


def test_terminal_escapes_in_class_names_and_ids_are_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    y, p = _make_data(8, 40)
    names = np.array(["\x1b[31mred", "ok\n  log loss (nats) 0.0", "bell\x07"])
    table = pa.table({"key": [f"k\x1b]0;x{i}" for i in range(40)], "y": names[y]})
    for j, name in enumerate(names):
        table = table.append_column(str(name), pa.array(p[:, j]))
    pq.write_table(table, tmp_path / "esc.parquet")
    code, out, err = run(capsys, str(tmp_path / "esc.parquet"), "--target", "y", "--id", "key")
    assert code == 0, err
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\\x1b[31mred" in out
    # a line break in a name is escaped too, and the columns line up after escaping
    assert "ok\\n  log loss" in out
    assert not any(line.startswith("  log loss (nats) 0.0") for line in out.splitlines())
    table_lines = out.split("per class\n", 1)[1].split("\n\n", 1)[0].splitlines()
    widths = {len(line) for line in table_lines[2:]}
    assert len(widths) == 1, table_lines
    code, out, err = run(capsys, str(tmp_path / "\x1b[2Jmissing.csv"), "--target", "y")
    assert code == 2
    assert "\x1b" not in err
    assert "\\x1b" in err
    r = run_json(capsys, str(tmp_path / "esc.parquet"), "--target", "y", "--id", "key")
    assert r["input"]["classes"] == names.tolist()  # JSON keeps the names, escaped by JSON
    # the report: names escaped in its tables and figures
    report = tmp_path / "r.html"
    args = (str(tmp_path / "esc.parquet"), "--target", "y", "--id", "key", "--report")
    code, out, err = run(capsys, *args, str(report))
    assert code == 0, err
    page = report.read_text()
    assert "\\x1b[31mred" in page
    assert not any(ch in page for ch in "\x1b\x07")
    # names in a script the font lacks are drawn as boxes, with no font warning on stderr
    cjk = np.array(["中文", "日本語", "한국어"])
    wide = pa.table({"y": cjk[y], **{str(n): pa.array(p[:, j]) for j, n in enumerate(cjk)}})
    pq.write_table(wide, tmp_path / "cjk.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run(
            capsys, str(tmp_path / "cjk.parquet"), "--target", "y", "--report", str(report)
        )
    assert code == 0, err
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == []


def test_json_and_report_carry_the_input_metadata(
    data: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from crossentropy import __version__

    path = str(data["dir"] / "t.csv")
    report = tmp_path / "r.html"
    r = run_json(capsys, path, *TABLE_ARGS, "--bins", "7", "--report", str(report))
    meta = r["input"]
    assert meta["files"] == {"predictions": path}
    assert meta["target"] == "y"
    assert meta["classes"] == [d["label"] for d in r["per_class"]]
    assert meta["probability_columns"] == [f"p_{d['label']}" for d in r["per_class"]]
    assert meta["rows"] == r["n"]
    assert meta["options"]["bins"] == 7
    assert meta["options"]["engine"] == "local"
    assert meta["crossentropy_version"] == __version__
    page = report.read_text()
    assert "<h2>Input</h2>" in page
    assert __version__ in page


def test_endless_first_line_stops_early_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A file without a line break: the header is read up to a bound, not into memory whole;
    /dev/zero, a device, is refused before it is read."""
    from crossentropy.scoring._sources import MAX_HEADER_CHARS

    endless = tmp_path / "endless.csv"
    with open(endless, "wb") as fh:
        fh.truncate(MAX_HEADER_CHARS + (1 << 20))  # a sparse file of NUL bytes, no line break
    code, out, err = run(capsys, str(endless), "--target", "y")
    assert code == 2
    assert out == ""
    assert "header line is longer than" in err
    if os.path.exists("/dev/zero"):
        code, out, err = run(capsys, "/dev/zero", "--format", "csv", "--target", "y")
        assert code == 2
        assert out == ""
        assert "not a regular file" in err


def test_a_megabyte_cell_is_read_and_named_briefly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A 5 MiB label (a row longer than two 1 MiB CSV blocks: read on in larger blocks) is
    read, and the error that names it stays one short line."""
    path = tmp_path / "long.csv"
    path.write_text("y,p_a,p_b\na,0.5,0.5\n" + "b" * (5 << 20) + ",0.5,0.5\n")
    code, _, err = run(capsys, str(path), "--target", "y", "--proba-cols", "p_*")
    assert code == 2
    assert "row 2, column 'y': label 'bbb" in err
    assert "(5,242,882 characters) is not among the classes" in err
    assert len(err) < 400


def test_wide_rows_are_read_in_smaller_batches(tmp_path: Path, capsys):
    """Many classes: fewer rows per batch (the memory bound), the same numbers."""
    from crossentropy.scoring._readers import batch_rows_for

    assert batch_rows_for(65536, 250_000) == 8
    assert batch_rows_for(65536, 10) == 65536
    rng = np.random.default_rng(9)
    c = 3000
    p = rng.random((40, c))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, c, 40)
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"y": y, **{str(j): p[:, j] for j in range(c)}}), path)
    r = run_json(capsys, str(path), "--target", "y")
    from crossentropy import metrics

    assert r["log_loss"] == pytest.approx(metrics.log_loss(y, p, labels=np.arange(c)), rel=1e-12)


def test_pieces_of_wide_csv_rows_are_scored_before_many_are_held(
    tmp_path: Path, capsys, monkeypatch
):
    """A CSV block holds a few rows of a wide file, each column an array of its own: past
    HELD_ARRAYS arrays the pieces make a shorter batch (32,767 columns × 200 rows took 2.2 GB
    held as 256-row batches, 0.47 GB so), with the same numbers."""
    from crossentropy import metrics
    from crossentropy.scoring import _readers

    rng = np.random.default_rng(10)
    c, n = 2000, 300
    p = rng.random((n, c))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, c, n)
    path = tmp_path / "wide.csv"
    lines = ["y," + ",".join(f"p_{j}" for j in range(c))]
    lines += [f"{t}," + ",".join(map(str, row.tolist())) for t, row in zip(y, p, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    made = []
    real = _readers._rebatched

    def counting(batches, rows):
        for rb in real(batches, rows):
            made.append(rb.num_rows)
            yield rb

    monkeypatch.setattr(_readers, "_rebatched", counting)
    monkeypatch.setattr(_readers, "HELD_ARRAYS", 4 * c)
    r = run_json(capsys, str(path), "--target", "y", "--proba-cols", "p_*", "--bootstrap", "0")
    assert _readers.batch_rows_for(65536, c + 1) > n  # one batch, were it not cut short
    assert sum(made) == n
    assert len(made) > 2  # pieces of about 25 rows (1 MiB blocks), four at a time
    want = metrics.log_loss(y, p, labels=np.arange(c))
    assert r["log_loss"] == pytest.approx(want, rel=1e-12)


# --------------------------------------------------------------------------- pairs


def test_pair_in_order_and_shuffled(data: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    d = data["dir"]
    table = run_json(capsys, str(d / "t.csv"), *TABLE_ARGS)
    ordered = run_json(
        capsys, "--solution", str(d / "sol.csv"), "--submission", str(d / "sub.csv"), "--id", "id"
    )
    for key in ("n", "log_loss", "accuracy", "brier", "ece", "per_class", "reliability"):
        _same(ordered[key], table[key], 1e-12, key)
    assert [w["row"] for w in ordered["worst"]] == [w["row"] for w in table["worst"]]
    assert [w["id"] for w in ordered["worst"]] == [str(999 + w["row"]) for w in table["worst"]]
    for sol, sub in (("sol.csv", "sub_shuffled.csv"), ("sol.parquet", "sub_shuffled.parquet")):
        shuffled = run_json(
            capsys,
            "--solution",
            str(d / sol),
            "--submission",
            str(d / sub),
            "--id",
            "id",
            "--batch-rows",
            "33",
        )
        for key in ("n", "log_loss", "accuracy", "brier", "ece", "per_class", "reliability"):
            _same(shuffled[key], table[key], 1e-12, key)
        # Worst rows are named by the submission's row and carry the id.
        ids = data["ids"][data["perm"]]
        assert [w["id"] for w in shuffled["worst"]] == [
            ids[w["row"] - 1].item() if sol.endswith("parquet") else str(ids[w["row"] - 1])
            for w in shuffled["worst"]
        ]
        assert sorted(str(w["id"]) for w in shuffled["worst"]) == sorted(
            str(w["id"]) for w in ordered["worst"]
        )


# --------------------------------------------------------------------------- dask


@pytest.fixture(scope="module")
def dask_cluster() -> Any:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    ) as cluster:
        yield cluster


@pytest.mark.parametrize(
    "args",
    [
        ("t.csv", *TABLE_ARGS),
        ("t.parquet", *TABLE_ARGS),
        ("t.npz",),
        ("proba.npy", "--target-file", "y.npy"),
        ("--solution", "sol.csv", "--submission", "sub_shuffled.csv", "--id", "id"),
        ("--solution", "sol.parquet", "--submission", "sub_shuffled.parquet", "--id", "id"),
    ],
    ids=["csv", "parquet", "npz", "npy", "pair-csv", "pair-parquet"],
)
def test_dask_engine_matches_local(
    data: dict[str, Any], capsys: pytest.CaptureFixture[str], dask_cluster: Any, args: tuple
):
    d = data["dir"]
    full = [str(d / a) if (d / a).exists() else a for a in args]
    local = run_json(capsys, *full)
    remote = run_json(
        capsys,
        *full,
        "--engine",
        "dask",
        "--scheduler",
        dask_cluster.scheduler_address,
        "--partitions",
        "5",
        "--batch-rows",
        "40",
    )
    assert_same(local, remote)
    assert local["worst"] == [
        {**w, "p_true": pytest.approx(w["p_true"], rel=1e-15)} for w in remote["worst"]
    ]


def test_dask_engine_starts_its_own_cluster(data: dict[str, Any], capsys):
    d = data["dir"]
    local = run_json(capsys, str(d / "t.parquet"), *TABLE_ARGS)
    assert_same(local, run_json(capsys, str(d / "t.parquet"), *TABLE_ARGS, "--engine", "dask"))


def test_dask_engine_reports_bad_rows_from_the_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dask_cluster: Any
):
    y, p = _make_data(7, 300)
    p = p.copy()
    p[250, 2] = -0.5
    lines = ["y,p_0,p_1,p_2"]
    for i in range(300):  # blank lines (skipped, not counted) and CRLF between the rows
        lines.append(
            f"{y[i]},{float(p[i, 0])!r},{float(p[i, 1])!r},{float(p[i, 2])!r}"
            + ("\r" if i % 3 else "")
        )
        if i % 41 == 3:
            lines.append("")
    (tmp_path / "b.csv").write_text("\n".join(lines))
    code, _, err = run(capsys, str(tmp_path / "b.csv"), *TABLE_ARGS)
    assert "b.csv, row 251, column 'p_2'" in err
    code, out, err = run(
        capsys,
        str(tmp_path / "b.csv"),
        *TABLE_ARGS,
        "--engine",
        "dask",
        "--scheduler",
        dask_cluster.scheduler_address,
        "--partitions",
        "4",
    )
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "b.csv, row 251, column 'p_2'" in err
    assert "negative" in err


def test_unreachable_scheduler_is_one_line(data: dict[str, Any], capsys, monkeypatch):
    monkeypatch.setattr("crossentropy.scoring._engine.CONNECT_TIMEOUT", "1s")
    code, _, err = run(
        capsys,
        str(data["dir"] / "t.csv"),
        *TABLE_ARGS,
        "--engine",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:9",
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "scheduler" in err


# --------------------------------------------------------------------------- bad input


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD_CSV = "y,p_a,p_b\na,0.25,0.75\nb,0.5,0.5\na,0.9,0.1\n"


def _bad_weight_cases(d: Path, t: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """Bad ``--sample-weight`` columns: (case id, arguments, strings of the error line)."""
    head = "y,p_a,p_b,w\na,0.25,0.75,1\nb,0.5,0.5,2\n"
    w = [*t, "--sample-weight", "w"]
    out = []
    for case, cell, needles in (
        ("weight-negative", "-1", ["negative", "row 3", "'w'", ">= 0"]),
        ("weight-nan", "nan", ["wnan", "row 3", "'w'", "nan"]),
        ("weight-inf", "inf", ["winf", "row 3", "'w'", "inf"]),
        ("weight-text", "heavy", ["wtext", "row 3", "'w'", "'heavy' is not a number"]),
        ("weight-empty", "", ["wempty", "row 3", "'w'", "missing sample weight"]),
    ):
        name = case.replace("weight-", "w") + ".csv"
        path = _write(d / name, head + f"a,0.9,0.1,{cell}\n")
        out.append((case, [str(path), *w], [name, *needles[1:]]))
    zero = _write(d / "wzero.csv", "y,p_a,p_b,w\na,0.25,0.75,0\nb,0.5,0.5,0\n")
    out.append(
        ("weight-zero", [str(zero), *w], ["wzero.csv", "'w'", "total sample weight is zero"])
    )
    huge = _write(d / "whuge.csv", "y,p_a,p_b,w\na,0.9,0.1,1e308\nb,0.2,0.8,1e308\n")
    out.append(("weight-overflow", [str(huge), *w], ["whuge.csv", "would overflow"]))
    good = _write(d / "wgood.csv", head)
    nope = [*t, "--sample-weight", "nope"]
    out.append(("weight-no-column", [str(good), *nope], ["wgood.csv", "'nope'", "no such column"]))
    return out


def _bad_cases(d: Path) -> list[tuple[str, list[str], list[str]]]:
    """(case id, arguments, strings the one error line must hold)."""

    def csv_with(name: str, row3: str) -> str:
        return str(_write(d / name, "y,p_a,p_b\na,0.25,0.75\nb,0.5,0.5\n" + row3 + "\n"))

    t = ["--target", "y", "--proba-cols", "p_*"]
    pq.write_table(
        pa.table({"y": ["a", "b"], "p_a": ["0.5", "x"], "p_b": [0.5, 0.5]}), d / "text.parquet"
    )
    np.savez(d / "nan.npz", y_true=np.array([0, 1]), y_proba=np.array([[0.5, 0.5], [np.nan, 1]]))
    sol = _write(d / "sol.csv", "id,y\n1,a\n2,b\n3,a\n")
    sub_unknown = _write(d / "sub1.csv", "id,a,b\n1,0.5,0.5\n7,0.5,0.5\n3,0.5,0.5\n")
    sub_missing = _write(d / "sub2.csv", "id,a,b\n3,0.5,0.5\n1,0.5,0.5\n")
    sub_dup = _write(d / "sub3.csv", "id,a,b\n3,0.5,0.5\n1,0.5,0.5\n1,0.5,0.5\n")
    _write(d / "empty.csv", "")
    _write(d / "header.csv", "y,p_a,p_b\n")
    _write(d / "header_only.csv", "y,p_a,p_b")  # no line break after it
    (d / "junk.parquet").write_bytes(b"this is not parquet at all")
    (d / "junk.bin").write_bytes(b"\x00\x01\x02 unknown")
    good = str(_write(d / "good.csv", GOOD_CSV))
    dupcol = str(_write(d / "dupcol.csv", "y,p_a,p_b,y\na,0.5,0.5,b\n"))
    rows = b"y,p_a,p_b\n" + b"a,0.9,0.1\n" * 3000
    (d / "latin.csv").write_bytes(b"y,p_a,p_b\na,0.9,0.1\nb\xff,0.2,0.8\n")
    (d / "latin-far.csv").write_bytes(rows + b"b,0.2,0.8\nb\xe9,0.2,0.8\n")
    (d / "latin-head.csv").write_bytes(b"y,p_\xffa,p_b\na,0.9,0.1\n")
    (d / "latin-p.csv").write_bytes(b"y,p_a,p_b\na,0.9,0.1\nb,0.2,0.8\xff\n")
    (d / "latin-rag.csv").write_bytes(b"y,p_a,p_b\na,0.2,0.8\na,0.2,0.8,9\n\xe9,0.3,0.7\n")
    np.save(d / "p.npy", np.array([[0.5, 0.5], [0.2, 0.8]]))
    np.savez(d / "y.npz", y=np.array([0, 1]))
    many = ",".join(f"p_{j}" for j in range(40_000))
    _write(d / "many.csv", f"y,{many}\n")  # refused by its header, before any row
    return [
        ("missing-file", [str(d / "nope.csv"), *t], ["nope.csv", "no such file"]),
        ("missing-target", [good, "--target", "nope"], ["good.csv", "column 'nope'"]),
        ("missing-proba", [good, "--target", "y", "--proba-cols", "q_*"], ["column 'q_*'"]),
        ("non-numeric", [csv_with("nn.csv", "a,abc,0.5"), *t], ["nn.csv", "row 3", "'p_a'"]),
        ("non-numeric-pq", [str(d / "text.parquet"), *t], ["text.parquet", "row 2", "'p_a'"]),
        ("nan", [csv_with("nan.csv", "a,0.5,nan"), *t], ["nan.csv", "row 3", "'p_b'", "NaN"]),
        ("inf", [csv_with("inf.csv", "a,inf,0.5"), *t], ["inf.csv", "row 3", "'p_a'", "infin"]),
        ("negative", [csv_with("neg.csv", "a,-0.1,1.1"), *t], ["row 3", "'p_a'", "negative"]),
        ("above-one", [csv_with("big.csv", "a,0.5,1.5"), *t], ["row 3", "'p_b'", "greater"]),
        ("empty-cell", [csv_with("gap.csv", "a,,0.5"), *t], ["row 3", "'p_a'", "missing"]),
        (
            "unknown-label",
            [csv_with("lab.csv", "zebra,0.5,0.5"), *t],
            ["lab.csv", "row 3", "'y'", "zebra"],
        ),
        ("ragged", [csv_with("rag.csv", "a,0.5"), *t], ["rag.csv", "row 3"]),
        ("quoted-break", [csv_with("qb.csv", 'a,"0.5\n",0.5'), *t], ["qb.csv", "row 3", "'p_a'"]),
        ("not-utf8", [str(d / "latin.csv"), *t], ["latin.csv", "row 2", "'y'", "0xff"]),
        ("not-utf8-far", [str(d / "latin-far.csv"), *t], ["row 3002", "'y'", "0xe9"]),
        ("not-utf8-header", [str(d / "latin-head.csv"), *t], ["latin-head.csv", "header"]),
        ("not-utf8-number", [str(d / "latin-p.csv"), *t], ["row 2", "'p_b'", "0xff"]),
        ("not-utf8-ragged", [str(d / "latin-rag.csv"), *t], ["latin-rag.csv", "row 2", "4"]),
        # a line break in the file's name is escaped: the error stays one line
        ("newline-name", [csv_with("new\nline.csv", "a,abc,0.5"), *t], ["new\\nline.csv"]),
        ("nan-npz", [str(d / "nan.npz")], ["nan.npz", "row 2", "y_proba[:, 0]", "NaN"]),
        (
            "id-unknown",
            ["--solution", str(sol), "--submission", str(sub_unknown), "--id", "id"],
            ["sub1.csv", "row 2", "'id'", "'7'"],
        ),
        (
            "id-missing",
            ["--solution", str(sol), "--submission", str(sub_missing), "--id", "id"],
            ["sol.csv", "row 2", "'id'", "'2'"],
        ),
        (
            "id-twice",
            ["--solution", str(sol), "--submission", str(sub_dup), "--id", "id"],
            ["sub3.csv", "row 3", "'id'", "twice"],
        ),
        ("empty-file", [str(d / "empty.csv"), *t], ["empty.csv", "empty"]),
        ("no-rows", [str(d / "header.csv"), *t], ["header.csv", "no data rows"]),
        ("no-rows-no-eol", [str(d / "header_only.csv"), *t], ["header_only.csv", "no data rows"]),
        ("not-parquet", [str(d / "junk.parquet"), *t], ["junk.parquet", "Parquet"]),
        ("unknown-format", [str(d / "junk.bin"), *t], ["junk.bin", "format"]),
        ("repeated-column", [dupcol, *t], ["dupcol.csv", "'y'", "twice"]),
        (
            "npz-as-target-file",
            [str(d / "p.npy"), "--target-file", str(d / "y.npz")],
            ["y.npz", ".npz archive"],
        ),
        *_bad_weight_cases(d, t),
        ("too-many-bins", [good, *t, "--bins", "100000000"], ["--bins", "at most"]),
        ("zero-bins", [good, *t, "--bins", "0"], ["--bins", "positive"]),
        # numbers as typed on a command line (as calc reads them): not 1_000, not other digits
        ("underscore-bins", [good, *t, "--bins", "1_0"], ["--bins", "'1_0'"]),
        ("arabic-seed", [good, *t, "--seed", "\u0661"], ["--seed", "integer"]),
        ("underscore-clip", [good, *t, "--clip", "1_0e-15"], ["--clip", "'1_0e-15'"]),
        ("too-many-columns", [str(d / "many.csv"), *t], ["many.csv", "40,001 columns", ".npy"]),
        ("too-many-replicates", [good, *t, "--bootstrap", "100000"], ["--bootstrap", "at most"]),
    ]


def test_bad_input_exits_2_with_one_line(tmp_path: Path):
    """Every bad input: exit 2, one line naming file/row/column, no traceback, no report (the
    first case as a process of its own, the others one after another in one process)."""
    cases = _bad_cases(tmp_path)
    argvs = [[*args, "--report", str(tmp_path / f"{case}.html")] for case, args, _ in cases]
    outs = [cli(*argvs[0]), *cli_runs(*argvs[1:])]
    failures = []
    for (case, _, needles), out in zip(cases, outs, strict=True):
        report = tmp_path / f"{case}.html"
        problems = []
        if out.returncode != 2:
            problems.append(f"exit {out.returncode}")
        if "Traceback" in out.stderr:
            problems.append("traceback")
        if len(out.stderr.splitlines()) != 1:
            problems.append(f"{len(out.stderr.splitlines())} lines")
        problems += [f"no {n!r}" for n in needles if n not in out.stderr]
        if report.exists() or list(tmp_path.glob(f".{case}.html*")):
            problems.append("report left behind")
        if out.stdout:
            problems.append("stdout not empty")
        if problems:
            failures.append(f"{case}: {problems}: {out.stderr.strip()[-300:]}")
    assert not failures, "\n".join(failures)


def test_report_cannot_overwrite_an_input(tmp_path: Path):
    """Not the file scored, nor one of the parts of a folder or a pattern scored, nor a path
    that ends with a separator (a folder's name)."""
    good = _write(tmp_path / "good.csv", GOOD_CSV)
    (tmp_path / "parts").mkdir()
    part = _write(tmp_path / "parts" / "part-0.csv", GOOD_CSV)
    cols = ("--target", "y", "--proba-cols", "p_*")
    argvs = [
        [str(good), *cols, "--report", str(good)],
        [str(tmp_path / "parts"), *cols, "--report", str(part)],
        [str(tmp_path / "parts" / "part-*.csv"), *cols, "--report", str(part)],
        [str(good), *cols, "--report", str(tmp_path / "new") + os.sep],
    ]
    needles = ["is an input file"] * 3 + ["names a folder"]
    for argv, needle, out in zip(argvs, needles, cli_runs(*argvs), strict=True):
        assert out.returncode == 2, argv
        assert needle in out.stderr
        assert len(out.stderr.splitlines()) == 1
    assert good.read_text() == GOOD_CSV
    assert part.read_text() == GOOD_CSV
    assert not (tmp_path / "new").exists()


def test_relative_paths_are_made_absolute_for_the_workers(
    data: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    """Dask workers may run elsewhere: the engine gets absolute paths."""
    import crossentropy.scoring._engine as score_module

    seen = {}

    def fake_dask(src: Any, **kwargs: Any) -> dict[str, Any]:
        seen["path"] = src[0].path  # the files of the input
        return score_module.score_local(src)

    monkeypatch.setattr(score_module, "score_dask", fake_dask)
    monkeypatch.chdir(data["dir"])
    code, _, err = run(capsys, "t.csv", *TABLE_ARGS, "--engine", "dask", "--json")
    assert code == 0, err
    assert seen["path"] == str(data["dir"] / "t.csv")


def test_good_csv_control_case(tmp_path: Path):
    """The bad-input cases' control: the same file without the bad row scores fine."""
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    out = cli(
        str(_write(tmp_path / "ok.csv", GOOD_CSV)), "--target", "y", "--proba-cols", "p_*", "--json"
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["n"] == 3
    expected = log_loss(["a", "b", "a"], [[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]])
    assert r["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_usage_errors_exit_2(data: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, str(data["dir"] / "t.csv"))
    assert code == 2
    assert "--target" in err
    code, _, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--classes", "a,b")
    assert code == 2
    assert "--classes" in err
    code, _, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--scheduler", "x:1")
    assert code == 2
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- report, progress


def test_html_report_is_self_contained(data: dict[str, Any], tmp_path: Path, capsys):
    report = tmp_path / "r.html"
    code, out, _ = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(report))
    assert code == 0
    assert "log loss" in out
    page = report.read_text()
    # reliability, decompositions, per class, confusion matrix, losses
    assert page.count("data:image/png;base64,") == 5
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    for text in ("Calibration", "Per class", "worst rows", "eel", "Summary"):
        assert text in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left
    # Every figure has a title and axis labels (checked on the figures themselves).
    from crossentropy.scoring._report import (
        _confusion_figure,
        _decomposition_figure,
        _histogram_figure,
        _per_class_figure,
        _reliability_figure,
    )

    r = run_json(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS)
    figs = [
        _reliability_figure(r),
        _decomposition_figure(r["calibration"]),
        _per_class_figure(r)[0],
        _confusion_figure(r),
        _histogram_figure(r),
    ]
    for fig in figs:
        axes = fig.get_axes()
        assert any(ax.get_title() for ax in axes)
        assert all(ax.get_ylabel() for ax in axes)
        assert any(ax.get_xlabel() for ax in axes)


def test_report_to_a_missing_folder_fails_early(data: dict[str, Any], tmp_path: Path, capsys):
    code, out, err = run(
        capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(tmp_path / "no/r.html")
    )
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "dangling symlink"])
def test_report_never_replaces_what_is_not_a_regular_file(
    data: dict[str, Any], tmp_path: Path, capsys, kind: str
):
    """Refused with exit 2 before any scoring; the link, its target, the FIFO stay as they were."""
    target = tmp_path / "target.txt"
    target.write_text("keep")
    report = tmp_path / "r.html"
    if kind == "symlink":
        report.symlink_to(target)
    elif kind == "dangling symlink":
        report.symlink_to(tmp_path / "nowhere.html")
    elif kind == "fifo":
        os.mkfifo(report)
    else:
        report.mkdir()
    code, out, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(report))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "refusing to replace it" in err
    assert report.is_symlink() == kind.endswith("symlink")
    assert target.read_text() == "keep"
    assert not (tmp_path / "nowhere.html").exists()
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_a_read_only_report_file_is_not_replaced(data: dict[str, Any], tmp_path: Path):
    """A report file this process may not write (mode 0444, another owner) is refused before
    scoring: writing a new file and renaming it over the old one replaced it all the same. As
    root, run without the capabilities that override file modes (as a user would be)."""
    import shutil

    report = tmp_path / "old.html"
    report.write_text("keep")
    report.chmod(0o444)
    command = [sys.executable, "-m", "crossentropy", "score", str(data["dir"] / "t.csv")]
    command += [*TABLE_ARGS, "--report", str(report)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop the override of file modes")
        os.chown(report, 65534, 65534)  # nobody's, as a user's file is to another user
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
        probe = [sys.executable, "-c", f"import os; print(os.access({str(report)!r}, os.W_OK))"]
        seen = subprocess.run([*drop, *probe], capture_output=True, text=True, timeout=60)
        if seen.stdout.strip() != "False":  # (without CAP_SETPCAP, setpriv drops nothing)
            pytest.skip("running as root, and setpriv could not drop the override of file modes")
        command = [*drop, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.endswith(": is read-only to this process; refusing to replace it\n")
    assert report.read_text() == "keep"
    assert not list(tmp_path.glob(".*"))


def test_a_report_name_as_long_as_the_file_system_takes_is_written(
    data: dict[str, Any], tmp_path: Path, capsys
):
    """A 255-byte name is written (its temporary file was named after it, 20 bytes longer,
    and the write failed after the scoring, naming that file); a 256-byte one is refused
    before any scoring."""
    longest = tmp_path / ("r" * 250 + ".html")
    code, out, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(longest))
    assert code == 0
    assert err == f"crossentropy score: report written to {longest}\n"
    assert longest.read_text().lower().startswith("<!doctype html>")
    assert not list(tmp_path.glob(".*"))
    too_long = tmp_path / ("r" * 251 + ".html")
    code, out, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(too_long))
    assert (code, out) == (2, "")
    assert "the file name is 256 bytes long, more than the folder's file system takes (255)" in err
    assert err.count("\n") == 1
    deep = tmp_path / ("d" * 256) / "r.html"  # a folder's name too long: one line too
    code, out, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(deep))
    assert (code, out) == (2, "")
    assert err.endswith(": cannot write: File name too long\n")
    assert err.count("\n") == 1


def test_output_paths_that_are_devices_are_refused_before_writing():
    from crossentropy._lib.html import check_output_path

    with pytest.raises(ValueError, match="not a regular file"):
        check_output_path(os.devnull)  # refused by the check alone: nothing is written


def test_a_folder_where_no_file_can_be_made_is_refused_before_scoring(
    data: dict[str, Any], tmp_path: Path, capsys
):
    """Root may write every folder by its mode bits (``os.access`` says yes), yet no file can be
    made in /proc: a file is made and removed there first, before any scoring."""
    from crossentropy._lib.html import check_output_path

    with pytest.raises(ValueError, match=r"/proc/r\.html: cannot write"):
        check_output_path("/proc/r.html")
    check_output_path(tmp_path / "r.html")
    check_output_path(tmp_path / ("r" * 250 + ".html"))  # the longest name (the probe's is short)
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    code, out, err = run(
        capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", "/proc/r.html"
    )
    assert (code, out) == (2, "")
    assert err.startswith("crossentropy score: error: --report /proc/r.html: cannot write")


def test_invalid_flag_combinations_exit_2(data: dict[str, Any], capsys):
    table = str(data["dir"] / "t.csv")
    sol, sub = str(data["dir"] / "sol.parquet"), str(data["dir"] / "sub_shuffled.parquet")
    npy, labels, npz = (str(data["dir"] / n) for n in ("proba.npy", "y.npy", "t.npz"))
    parts = data["dir"] / "parts"
    parts.mkdir()
    (parts / "a.csv").write_text((data["dir"] / "sub_shuffled.csv").read_text())
    for args, message in [
        ((table, *TABLE_ARGS, "--partitions", "3"), "--partitions needs --engine dask"),
        ((table, "--solution", sol, "--submission", sub), "not both"),
        # options that an input cannot use are refused, not ignored
        ((npy, "--target-file", labels, "--target", "y"), "target (--target) names columns"),
        ((npy, "--target-file", labels, "--proba-cols", "p_*"), "proba (--proba-cols) names"),
        ((npz, "--id", "id"), "id (--id) names columns of a table; .npz arrays have none"),
        # an empty path is not the current folder
        (("", *TABLE_ARGS), "FILE is an empty path"),
        (("--solution", "", "--submission", sub, "--id", "id"), "--solution is an empty path"),
        (("--solution", sol, "--submission", str(parts), "--id", "id"), f"{parts}: a folder"),
        # a file of another format named as .npz: not read as a zip archive
        ((table, "--format", "npz"), "not an .npz file: it is not a zip"),
    ]:
        code, out, err = run(capsys, *args)
        assert code == 2, args
        assert out == ""
        assert message in err
        assert err.count("\n") == 1


def test_interrupt_exits_130_with_no_output(
    data: dict[str, Any], tmp_path: Path, capsys, monkeypatch
):
    import crossentropy.scoring._engine as score_module

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(score_module, "score_local", interrupted)
    report = tmp_path / "r.html"
    code, out, err = run(capsys, str(data["dir"] / "t.csv"), *TABLE_ARGS, "--report", str(report))
    assert code == 130
    assert out == ""
    assert "interrupted" in err
    assert not report.exists()
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_an_interrupt_while_the_command_starts_exits_130_with_one_line(capsys, monkeypatch):
    """Ctrl-C during the command's imports (before ``score`` handles it) is one line and
    exit 130 too, not a traceback."""
    import crossentropy.cli as cli_module

    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "main", interrupted)
    monkeypatch.setattr("sys.argv", ["crossentropy", "calc"])
    assert cli_module.console() == 130
    assert capsys.readouterr().err == "crossentropy: interrupted\n"


def test_progress_bar(data: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    args = (str(data["dir"] / "t.parquet"), *TABLE_ARGS, "--batch-rows", "50")
    code, _, err = run(capsys, *args, "--progress")
    assert code == 0
    assert "scoring [" in err
    assert "100.0%" in err
    assert err.endswith("\n")
    code, _, err = run(capsys, *args)
    assert err == ""  # stderr is not a terminal here


def test_importing_the_cli_does_not_import_heavy_modules():
    code = (
        "import sys, crossentropy.cli as c; c._parser();"
        "print([m for m in ('pyarrow', 'matplotlib', 'dask', 'distributed') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_console_script_spares_the_pandas_import_and_keeps_pandas_working(
    tmp_path: Path,
) -> None:
    """The command's own process scores without importing pandas (pyarrow's check for pandas
    objects is made with pandas hidden); a pandas conversion later in that process still
    works, and ``main()`` called from other code leaves pyarrow's check alone."""
    pytest.importorskip("pandas")
    path = tmp_path / "t.csv"
    path.write_text("y,p_0,p_1\n0,0.8,0.2\n1,0.3,0.7\n")
    code = (
        "import sys\n"
        "from crossentropy.cli import console, main\n"
        f"args = ['score', {str(path)!r}, '--target', 'y', '--proba-cols', 'p_*', '--json']\n"
        "sys.argv = ['crossentropy', *args] if sys.argv[1] == 'console' else sys.argv[:1]\n"
        "rc = console() if sys.argv[1:] else main(args)\n"
        "print('exit', rc, 'pandas' in sys.modules)\n"
        "import pandas as pd, pyarrow as pa\n"
        "frame = pd.DataFrame({'a': [1.0, None]})\n"
        "print('nulls', pa.Table.from_pandas(frame).column('a').null_count,"
        " pa.array(pd.Series([1.0, None])).null_count)\n"
    )
    for how, imported in (("console", "False"), ("main", "True")):
        proc = subprocess.run(
            [sys.executable, "-c", code, how], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.strip().splitlines()
        assert json.loads("\n".join(lines[:-2]))["log_loss"] == pytest.approx(
            -(np.log(0.8) + np.log(0.7)) / 2
        )
        assert lines[-2] == f"exit 0 {imported}", how
        assert lines[-1] == "nulls 1 1", how


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("command", ["score", "calc"])
def test_an_output_that_cannot_be_written_is_one_line_and_exit_2(data, command: str) -> None:
    """Standard output on a full device: one error line and exit status 2, no traceback."""
    if command == "score":
        args = ["score", str(data["dir"] / "t.csv"), *TABLE_ARGS, "--bootstrap", "0"]
    else:
        args = ["calc", "--probs", "0.5", "0.5", "--target", "0"]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "crossentropy.cli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert proc.stderr == "crossentropy: error: cannot write the output: No space left on device\n"


def test_the_command_takes_as_many_bins_as_the_library(data, capsys) -> None:
    """--bins has the library's limit (the calibration grid's 16,384 cells), no lower one."""
    path = str(data["dir"] / "t.csv")
    r = run_json(capsys, path, *TABLE_ARGS, "--bins", "16384", "--bootstrap", "0")
    assert len(r["reliability"]) <= 16384
    assert r == score(path, target="y", proba="p_*", bins=16384, bootstrap=0).to_dict() | {
        "input": r["input"]
    }
    with pytest.raises(SystemExit) as exit_:
        main(["score", path, *TABLE_ARGS, "--bins", "16385"])
    assert exit_.value.code == 2


def test_the_worst_rows_kept_are_bounded(data, capsys) -> None:
    """--worst and worst= take at most 10,000 rows (a count near the rows' kept them all: 711
    MB for 400k rows), as the accumulator does."""
    path = str(data["dir"] / "t.csv")
    r = run_json(capsys, path, *TABLE_ARGS, "--worst", "10000", "--bootstrap", "0")
    assert len(r["worst"]) == min(10000, r["n"])
    with pytest.raises(SystemExit) as exit_:
        main(["score", path, *TABLE_ARGS, "--worst", "10001"])
    assert exit_.value.code == 2
    assert "--worst: expected at most 10,000 rows; got 10,001" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^worst must be between 0 and 10,000; got 10,001$"):
        score(path, target="y", proba="p_*", worst=10_001)
    with pytest.raises(ValueError, match=r"^worst must be between 0 and 10,000; got 1,000,000"):
        metrics.ScoreAccumulator(["a", "b"], worst=10**6)


# ---------------------------------------------------------------------------------------------
# Sample weights: ScoreAccumulator (metrics/_score.py) and --sample-weight.


def _weighted_case(seed: int, n: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(c) * 0.7, size=n)
    p = np.round(p, 3)
    p[:, -1] = np.clip(1 - p[:, :-1].sum(axis=1), 0, 1)
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(c, p=row) for row in p])
    return y, p, rng


@pytest.mark.parametrize("c", [2, 3])
def test_weighted_accumulator_matches_scikit_learn(c: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y, p, rng = _weighted_case(1, 3000, c)
    w = rng.uniform(0, 3, size=y.shape[0])
    acc = metrics.ScoreAccumulator(list(range(c)), bootstrap=0)
    for lo in range(0, y.shape[0], 700):  # batches
        acc.update(y[lo : lo + 700], p[lo : lo + 700], sample_weight=w[lo : lo + 700])
    r = acc.result()
    assert r["n"] == y.shape[0]
    assert math.isclose(r["weight"], float(np.sum(w)), rel_tol=1e-12)
    assert math.isclose(r["log_loss"], sk.log_loss(y, p, sample_weight=w), rel_tol=1e-12)
    hits = sk.accuracy_score(y, p.argmax(axis=1), sample_weight=w)
    assert math.isclose(r["accuracy"], hits, rel_tol=1e-12)
    if c == 2:
        brier = sk.brier_score_loss(y, p[:, 1], sample_weight=w)
    else:
        brier = metrics.brier_score_loss(y, p, sample_weight=w)
    assert math.isclose(r["brier"], brier, rel_tol=1e-12)
    ece = metrics.calibration_error(y, p, n_bins=15, sample_weight=w)
    assert math.isclose(r["ece"], ece, rel_tol=1e-9)
    d2 = sk.d2_log_loss_score(y, p, sample_weight=w)
    assert math.isclose(r["calibration"]["skill"]["d2_log_loss"], d2, rel_tol=1e-9)
    for j, entry in enumerate(r["per_class"]):
        mine = y == j
        assert entry["count"] == int(np.sum(mine))
        assert math.isclose(entry["weight"], float(np.sum(w[mine])), rel_tol=1e-12)
        loss = sk.log_loss(y[mine], p[mine], sample_weight=w[mine], labels=list(range(c)))
        assert math.isclose(entry["log_loss"], loss, rel_tol=1e-12)
    # the reliability bins: weighted counts, confidences and accuracies (the rows counted too)
    conf = p[:, 1] if c == 2 else p.max(axis=1)
    hit = (y == 1) if c == 2 else (p.argmax(axis=1) == y)
    from crossentropy.metrics._formulas import bin_index, uniform_edges

    b = bin_index(np, conf, uniform_edges(15))  # the bins of calibration_error
    for k, entry in enumerate(r["reliability"]):
        inside = b == k
        assert entry["count"] == int(np.sum(inside))
        if inside.any():
            assert math.isclose(entry["weight"], float(np.sum(w[inside])), rel_tol=1e-12)
            mean_conf = np.sum(w[inside] * conf[inside]) / np.sum(w[inside])
            assert math.isclose(entry["confidence"], mean_conf, rel_tol=1e-12)
            mean_hit = np.sum(w[inside] * hit[inside]) / np.sum(w[inside])
            assert math.isclose(entry["accuracy"], mean_hit, rel_tol=1e-12, abs_tol=1e-15)
    if c == 3:
        expected = np.zeros((c, c))
        np.add.at(expected, (y, p.argmax(axis=1)), w)
        np.testing.assert_allclose(r["confusion"], expected, rtol=1e-12)


@pytest.mark.parametrize(("c", "n_bins"), [(2, 10), (3, 15), (4, 7)])
def test_integer_weights_equal_repeated_rows_in_every_number(c: int, n_bins: int) -> None:
    """A row of weight k is the row k times: every number of the report (calibration
    included: smooth ECE, CORP, equal-width and equal-mass bins, Murphy, class-wise ECE,
    splits, skill, confusion), with the weights where the rows are counted."""
    y, p, rng = _weighted_case(2, 1500, c)
    w = rng.integers(0, 5, size=y.shape[0])
    groups = np.array(["Public", "Private"])[rng.integers(0, 2, size=y.shape[0])]
    options = {"n_bins": n_bins, "bootstrap": 0, "worst": 5}
    parts = []
    for lo, hi in ((0, 400), (400, 1100), (1100, 1500)):  # merged workers
        part = metrics.ScoreAccumulator(list(range(c)), **options)
        rows = np.arange(lo, hi)
        part.update(y[lo:hi], p[lo:hi], row_ids=rows, groups=groups[lo:hi], sample_weight=w[lo:hi])
        parts.append(part)
    weighted = parts[2].merge(parts[0]).merge(parts[1]).result()
    r = np.repeat(np.arange(y.shape[0]), w)
    repeated = metrics.ScoreAccumulator(list(range(c)), **options)
    repeated.update(y[r], p[r], groups=groups[r])
    assert weighted["weight"] == repeated.result()["n"] == int(np.sum(w))
    assert_same_numbers(as_repeated(weighted), repeated.result())


def test_rows_without_weights_weigh_one_and_merge_with_weighted_ones() -> None:
    y, p, rng = _weighted_case(3, 900, 3)
    w = rng.uniform(0.5, 2, size=900)
    ones = np.where(np.arange(900) < 300, 1.0, w)
    # unweighted rows, then weighted ones, in one accumulator and across a merge
    one = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0)
    one.update(y[:300], p[:300]).update(y[300:], p[300:], sample_weight=w[300:])
    left = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0).update(y[:300], p[:300])
    right = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0)
    right.update(y[300:], p[300:], row_ids=np.arange(300, 900), sample_weight=w[300:])
    whole = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0).update(y, p, sample_weight=ones)
    for acc in (one, left.merge(right)):  # the smooth curve's bandwidth: a search, to ~1e-9
        assert_same_numbers(acc.result(), whole.result(), rel=1e-7)
    # weight 1 everywhere: the unweighted numbers (the counts and sums, as weights)
    plain = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0).update(y, p).result()
    unit = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0)
    assert_same_numbers(as_repeated(unit.update(y, p, sample_weight=np.ones(900)).result()), plain)


def test_unweighted_report_has_no_weight_keys() -> None:
    y, p, _ = _weighted_case(4, 200, 3)
    r = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0).update(y, p).result()
    assert "weight" not in r
    assert "weight" not in r["per_class"][0]
    assert "weight" not in r["reliability"][0]
    assert "weight" not in r["calibration"]["equal_mass"]["bins"][0]


def test_weighted_paired_bootstrap_totals_weigh_the_rows() -> None:
    from crossentropy.metrics._bootstrap import poisson_weights

    y, p, rng = _weighted_case(5, 400, 3)
    w = rng.uniform(0, 2, size=400)
    acc = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0, paired=16, seed=3)
    acc.update(y, p, sample_weight=w)
    totals = acc.paired_totals
    assert totals is not None
    draws = poisson_weights(np.arange(400), 16, 3).astype(np.float64) * w[:, None]
    loss = -np.log(np.clip(p[np.arange(400), y], np.finfo(float).eps, 1))
    np.testing.assert_allclose(totals.weight, draws.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(totals.totals[:, 0], draws.T @ loss, rtol=1e-12)


@pytest.mark.parametrize(
    ("weight", "fault"),
    [(-1.0, "-1.0"), (np.nan, "nan"), (np.inf, "inf")],
)
def test_bad_weights_are_row_errors(weight: float, fault: str) -> None:
    from crossentropy.metrics._score import RowError

    y, p, _ = _weighted_case(6, 10, 3)
    w = np.ones(10)
    w[4] = weight
    acc = metrics.ScoreAccumulator([0, 1, 2])
    with pytest.raises(RowError, match=f"row 104: sample weight {fault}") as info:
        acc.update(y, p, row_ids=np.arange(100, 110), sample_weight=w)
    assert info.value.row == 104
    assert acc.result()["n"] == 0  # nothing was added
    with pytest.raises(ValueError, match="sample_weight must be a 1-D array of 10 numbers"):
        acc.update(y, p, sample_weight=np.array(["a"] * 10))
    with pytest.raises(ValueError, match="sample_weight must be a 1-D array of 10 numbers"):
        acc.update(y, p, sample_weight=np.ones(9))


def test_zero_total_weight_is_a_value_error() -> None:
    y, p, _ = _weighted_case(7, 10, 3)
    acc = metrics.ScoreAccumulator([0, 1, 2]).update(y, p, sample_weight=np.zeros(10))
    with pytest.raises(metrics.ZeroWeightError, match="sample_weight sums to zero"):
        acc.result()
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        acc.result()


def test_cli_sample_weight_column(tmp_path: Path) -> None:
    y, p, rng = _weighted_case(8, 300, 3)
    w = rng.uniform(0, 2, size=300)
    table = pa.table({"y": y, **{f"p_{j}": p[:, j] for j in range(3)}, "w": w})
    pcsv.write_csv(table, tmp_path / "t.csv")
    out = cli(str(tmp_path / "t.csv"), "--target", "y", "--proba-cols", "p_*",
              "--sample-weight", "w", "--json", "--bootstrap", "0")  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    report = score(tmp_path / "t.csv", target="y", proba="p_*", sample_weight="w", bootstrap=0)
    assert got["weight"] == report.weight
    assert got["log_loss"] == report.log_loss
    assert math.isclose(got["log_loss"], metrics.log_loss(y, p, sample_weight=w), rel_tol=1e-12)
    assert got["input"]["sample_weight_column"] == "w"
    text = cli(str(tmp_path / "t.csv"), "--target", "y", "--proba-cols", "p_*",
               "--sample-weight", "w", "--bootstrap", "0")  # fmt: skip
    assert "sample weights 'w'" in text.stdout
    share = 100 * w[y == 0].sum() / w.sum()  # the per-class share is the weight's
    assert re.search(rf"\n  0 +{np.sum(y == 0):,} +{share:.1f} %", text.stdout)
    assert "weight share" in text.stdout


def test_a_refused_weighted_batch_leaves_the_accumulator_unweighted() -> None:
    y, p, _ = _weighted_case(9, 10, 3)
    acc = metrics.ScoreAccumulator([0, 1, 2], renormalize="before_clip").update(y, p)
    zero = p.copy()
    zero[3] = 0.0
    with pytest.raises(ValueError, match="sum to 0"):
        acc.update(y, zero, sample_weight=np.full(10, 2.0))
    assert "weight" not in acc.result()


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("row_ids", np.arange(9), "row_ids must be a 1-D array of 10 integers; got"),
        ("row_ids", np.linspace(0, 1, 10), "row_ids must be a 1-D array of 10 integers"),
        ("keys", np.arange(10.0), "keys must be a 1-D array of 10 non-negative integers"),
        ("keys", np.arange(-1, 9), "keys must be non-negative integers; got -1"),
        ("groups", np.array(["a"] * 11), "groups must be a 1-D array of 10 values; got"),
        ("sample_weight", np.ones((10, 1)), "sample_weight must be a 1-D array of 10 numbers"),
    ],
)
def test_per_row_arguments_of_the_wrong_shape_or_kind_are_named(name, value, match) -> None:
    y, p, _ = _weighted_case(10, 10, 3)
    acc = metrics.ScoreAccumulator([0, 1, 2])
    with pytest.raises(ValueError, match=re.escape(match)):
        acc.update(y, p, **{name: value})
    assert acc.result()["n"] == 0


def test_worst_rows_leave_out_rows_of_weight_zero() -> None:
    """A row of weight 0 adds nothing to any number: it is not among the worst rows."""
    y, p, _ = _weighted_case(11, 200, 3)
    loss = -np.log(np.clip(p[np.arange(200), y], 1e-300, None))
    w = np.ones(200)
    w[np.argsort(-loss)[:5]] = 0.0  # the five worst rows weigh nothing
    acc = metrics.ScoreAccumulator([0, 1, 2], worst=4).update(y, p, sample_weight=w)
    rows = [r["row"] for r in acc.result()["worst"]]
    assert rows == [int(i) for i in np.argsort(-loss, kind="stable")[5:9]]
    plain = metrics.ScoreAccumulator([0, 1, 2], worst=4).update(y, p)
    assert [r["row"] for r in plain.result()["worst"]] == [
        int(i) for i in np.argsort(-loss, kind="stable")[:4]
    ]


def test_the_weighted_report_page_names_its_weights(tmp_path: Path) -> None:
    """The page lists the weight column and total, says the histogram counts rows while the
    log loss is weighted, and notes a confusion matrix left out for many classes."""
    y, p, rng = _weighted_case(12, 300, 3)
    w = rng.uniform(0, 2, size=300)
    table = pa.table({"y": y, **{f"p_{j}": p[:, j] for j in range(3)}, "w": w})
    report = score(table, target="y", proba="p_*", sample_weight="w", bootstrap=0)
    page = report.html()
    assert "sample weight column" in page
    assert f"{w.sum():,.6g}" in page
    assert "weighted by the sample weights (the dashed line); the bars count rows" in page
    assert "weight share" in page
    many = np.random.default_rng(0).dirichlet(np.ones(31), size=62)
    wide = score(many, target=np.arange(62) % 31, bootstrap=0).html()
    assert "No confusion matrix: it is kept for at most 30 classes." in wide


def test_renormalize_before_the_file_leaves_the_file_a_file(data, capsys) -> None:
    """``--renormalize`` without a value is Kaggle's order wherever it stands: the word after
    it is its value only when it is one (``--clip 1e-15 --renormalize preds.csv``, the help's
    recipe written before the file, took the file for a value)."""
    path = str(data["dir"] / "t.csv")
    kaggle = run_json(capsys, path, *TABLE_ARGS, "--clip", "1e-15", "--renormalize")
    assert kaggle["input"]["options"]["renormalize"] == "before_clip"
    before = run_json(capsys, "--clip", "1e-15", "--renormalize", path, *TABLE_ARGS)
    assert before == kaggle
    abbreviated = run_json(capsys, "--clip", "1e-15", "--renorm", path, *TABLE_ARGS)
    assert abbreviated == kaggle  # argparse takes the abbreviation
    after = run_json(capsys, "--renormalize", "after_clip", path, *TABLE_ARGS)
    assert after["input"]["options"]["renormalize"] == "after_clip"
    sol, sub = str(data["dir"] / "sol.csv"), str(data["dir"] / "sub_shuffled.csv")
    pair = ("--id", "id", "--target", "y")
    got = run_json(capsys, "--solution", sol, "--renormalize", "--submission", sub, *pair)
    assert got["input"]["options"]["renormalize"] == "before_clip"


def test_without_the_bootstrap_the_smooth_ece_has_no_interval_label(data, capsys) -> None:
    """--bootstrap 0: the smooth ECE's row says there was no bootstrap, not an interval."""
    path = str(data["dir"] / "t.csv")
    code, out, _ = run(capsys, path, *TABLE_ARGS, "--bootstrap", "0")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.strip().startswith("smooth ECE (no")]
    assert "interval" not in row
    code, out, _ = run(capsys, path, *TABLE_ARGS)
    assert "smooth ECE [95 % bootstrap interval]" in out


def test_a_bootstrap_with_too_few_finite_replicates_keeps_its_label(tmp_path: Path, capsys):
    """One replicate gives no interval, yet a bootstrap was asked for: the row says so."""
    path = tmp_path / "four.csv"
    path.write_text("y,p_a,p_b\na,0.6,0.4\nb,0.3,0.7\na,0.8,0.2\nb,0.5,0.5\n")
    code, out, _ = run(
        capsys, str(path), "--target", "y", "--proba-cols", "p_*", "--bootstrap", "1"
    )
    assert code == 0
    assert "smooth ECE (too few bootstrap replicates for an interval)" in out


def test_more_groups_than_the_bound_are_refused_at_their_row_and_leave_no_trace() -> None:
    """Each group keeps its own totals: the first row of one group past ``MAX_GROUPS`` is a
    ``RowError`` naming ``groups`` (the accumulator unchanged), and so is a merge past it."""
    from crossentropy.metrics import _score

    n = _score.MAX_GROUPS + 5
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(2), n)
    y = rng.integers(0, 2, n)
    acc = metrics.ScoreAccumulator([0, 1], bootstrap=0)
    acc.update(y[:10], p[:10], groups=np.zeros(10, dtype=np.int64))
    before = acc.result()
    with pytest.raises(_score.RowError, match="more than 10,000 distinct groups") as err:
        acc.update(y, p, row_ids=np.arange(100, 100 + n), groups=np.arange(1, n + 1))
    assert (err.value.row, err.value.argument) == (100 + _score.MAX_GROUPS - 1, "groups")
    assert_same_numbers(acc.result(), before)
    half = _score.MAX_GROUPS // 2 + 1
    left = metrics.ScoreAccumulator([0, 1], bootstrap=0).update(
        y[:half], p[:half], groups=np.arange(half)
    )
    right = metrics.ScoreAccumulator([0, 1], bootstrap=0).update(
        y[half : 2 * half], p[half : 2 * half], groups=np.arange(half, 2 * half)
    )
    kept = left.result()
    with pytest.raises(ValueError, match="hold more than 10,000 distinct groups"):
        left.merge(right)
    assert_same_numbers(left.result(), kept)
    assert len(left.merge(left.__class__([0, 1], bootstrap=0)).result()["splits"]) == half


def test_a_nan_group_is_refused_at_its_row() -> None:
    """NaN is no group (each NaN would be a group of its own): a RowError at its row, the
    accumulator unchanged."""
    from crossentropy.metrics import _score

    y, p = np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    acc = metrics.ScoreAccumulator([0, 1], bootstrap=0)
    with pytest.raises(
        _score.RowError, match=r"row 7: the group is missing \(None or NaN\)"
    ) as err:
        acc.update(y, p, row_ids=np.array([5, 6, 7]), groups=np.array([1.0, 2.0, np.nan]))
    assert err.value.argument == "groups"
    assert acc.result()["n"] == 0
    for groups in (np.array(["a", None, "b"], dtype=object), np.array([1.0, 2.0, np.nan], object)):
        with pytest.raises(_score.RowError, match="the group is missing") as err:
            acc.update(y, p, row_ids=np.array([5, 6, 7]), groups=groups)
        assert err.value.row in (6, 7)
    with pytest.raises(ValueError, match=r"groups must hold values of one kind.*int, str"):
        acc.update(y, p, groups=np.array(["a", 1, "b"], dtype=object))
    assert acc.result()["n"] == 0
    acc.update(y, p, groups=np.array([1.0, 2.0, 2.0]))
    assert [s["n"] for s in acc.result()["splits"]] == [1, 2]


def test_ties_go_to_the_class_that_sorts_first_whatever_the_columns_order() -> None:
    """Rows whose top probability ties: the predicted class is the one that sorts first
    (integers by value), as scikit-learn's argmax over its sorted classes, so the accuracy,
    the confusion matrix and the worst rows' predicted class do not depend on the columns'
    order."""
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(3)
    p = np.round(rng.dirichlet(np.ones(4), 500), 1)
    p[:5] = [0.4, 0.4, 0.1, 0.1]
    y = rng.integers(0, 4, 500)
    classes = [2, 10, "1", 3]  # sorted: "1", 2, 3, 10 (as integers) -> columns 2, 0, 3, 1
    order = [2, 0, 3, 1]
    want = accuracy_score(y, np.array(order)[p[:, order].argmax(axis=1)])
    results = []
    for perm in ([0, 1, 2, 3], [3, 1, 0, 2], [1, 3, 2, 0]):
        acc = metrics.ScoreAccumulator([classes[j] for j in perm], bootstrap=0, worst=500)
        inverse = np.argsort(perm)
        r = acc.update(inverse[y], p[:, perm]).result()
        assert r["accuracy"] == want
        confusion = np.array(r["confusion"])[np.ix_(inverse, inverse)]
        predicted = {w["row"]: w["predicted"] for w in r["worst"]}
        results.append((confusion, predicted))
    for confusion, predicted in results[1:]:
        assert np.array_equal(confusion, results[0][0])
        assert predicted == results[0][1]
    assert results[0][1][0] == 2  # 10 and 2 tie: 2 is predicted
    # two classes as two columns in either order, ties at 0.5: the first class, as p > 0.5
    q = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])
    for names in (["0", "1"], ["1", "0"]):
        flip = names == ["1", "0"]
        yy = np.array([1, 0, 0]) if flip else np.array([0, 1, 1])
        r = metrics.ScoreAccumulator(names, bootstrap=0).update(yy, q[:, ::-1] if flip else q)
        r = r.result()
        assert r["accuracy"] == pytest.approx(2 / 3)


def test_merge_refuses_other_worst_bootstrap_or_seed() -> None:
    rng = np.random.default_rng(0)
    p, y = rng.dirichlet(np.ones(3), 100), rng.integers(0, 3, 100)
    a = metrics.ScoreAccumulator(list("abc"), worst=10, bootstrap=0).update(y[:50], p[:50])
    for other in ({"worst": 2, "bootstrap": 0}, {"bootstrap": 10}, {"seed": 1, "bootstrap": 0}):
        b = metrics.ScoreAccumulator(list("abc"), **other).update(
            y[50:], p[50:], row_ids=np.arange(50, 100)
        )
        with pytest.raises(ValueError, match="same worst=, bootstrap=, seed="):
            a.merge(b)
    b = metrics.ScoreAccumulator(list("abc"), worst=10, bootstrap=0)
    b.update(y[50:], p[50:], row_ids=np.arange(50, 100))
    one = metrics.ScoreAccumulator(list("abc"), worst=10, bootstrap=0).update(y, p).result()
    assert a.merge(b).result()["worst"] == one["worst"]
    with pytest.raises(ValueError, match="classes must be distinct; 'a' is given twice"):
        metrics.ScoreAccumulator(["a", "b", "a"])


def test_split_sums_are_as_accurate_as_the_totals_in_any_batching() -> None:
    """Each split's means are sums of its rows gathered (pairwise, as the totals), within a
    few ulps of the exact sum whatever the batches; splits sort with integers by value; a
    split of zero weight has no mean (None)."""
    rng = np.random.default_rng(1)
    n = 200_000
    p = rng.dirichlet(np.full(3, 0.3), n)
    y = rng.integers(0, 3, n)
    g = np.where(rng.random(n) < 0.5, "A", "B")
    loss = -np.log(np.clip(p[np.arange(n), y], np.finfo(float).eps, None))
    for step in (n, 1000, 77_777):
        acc = metrics.ScoreAccumulator([0, 1, 2], bootstrap=0, worst=0)
        for lo in range(0, n, step):
            acc.update(y[lo : lo + step], p[lo : lo + step], groups=g[lo : lo + step])
        for entry in acc.result()["splits"]:
            exact = math.fsum(loss[g == entry["split"]]) / np.count_nonzero(g == entry["split"])
            assert abs(entry["log_loss"] - exact) <= 4e-16 * exact, (step, entry)
    acc = metrics.ScoreAccumulator([0, 1], bootstrap=0)
    acc.update(
        np.array([0, 1, 0, 1]),
        np.full((4, 2), 0.5),
        groups=np.array(["10", "2", "1", "x"]),
        sample_weight=np.array([1.0, 0.0, 1.0, 1.0]),
    )
    splits = acc.result()["splits"]
    assert [s["split"] for s in splits] == ["1", "2", "10", "x"]
    assert splits[1]["log_loss"] is None
    assert splits[1]["accuracy"] is None
    assert splits[0]["log_loss"] == pytest.approx(math.log(2))


def test_the_tie_order_is_total_for_classes_of_mixed_kinds() -> None:
    """Classes that sort alike by value (7 and "007", 1 and "1") or not at all (NaN, None and
    "None") still tie one way whatever the columns' order; merge errors name the option."""
    q = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [0.5, 0.5]])
    for names in (
        ["007", "7"],
        ["+1", "1"],
        [1, "1"],
        [None, "None"],
        [2, 1.5],
        [float("nan"), 0.5],
    ):
        y = np.array([0, 1, 1, 0])
        one = metrics.ScoreAccumulator(names, bootstrap=0).update(y, q).result()["accuracy"]
        other = metrics.ScoreAccumulator(names[::-1], bootstrap=0).update(1 - y, q[:, ::-1])
        assert other.result()["accuracy"] == one, names
    a = metrics.ScoreAccumulator([0, 1], worst=3, bootstrap=0)
    with pytest.raises(ValueError, match=r"got worst=5 for 3, seed=1 for 0"):
        a.merge(metrics.ScoreAccumulator([0, 1], worst=5, bootstrap=0, seed=1))
