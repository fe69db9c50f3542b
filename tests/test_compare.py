"""Comparing prediction sets (scoring/_compare.py): each set's report, paired differences with
bootstrap intervals that do not depend on row order, batching or engine, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossentropy import metrics
from crossentropy.cli import main
from crossentropy.scoring import Comparison, score

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("pandas")

CLASSES = ["cat", "dog", "eel"]


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(21)
    n = 600
    logits = rng.standard_normal((n, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    q = p**0.6 / (p**0.6).sum(axis=1, keepdims=True)  # under-confident
    ids = np.array([f"id{i:04d}" for i in range(n)])
    names = np.array(CLASSES)[y]
    for name, probs in (("a", p), ("b", q)):
        cols = {f"p_{c}": probs[:, j] for j, c in enumerate(CLASSES)}
        pq.write_table(pa.table({"y": names, **cols}), d / f"{name}.parquet", row_group_size=100)
        sub = {c: probs[:, j] for j, c in enumerate(CLASSES)}
        pq.write_table(pa.table({"key": ids, **sub}), d / f"sub_{name}.parquet")
        perm = rng.permutation(n)
        shuffled = {c: probs[perm, j] for j, c in enumerate(CLASSES)}
        pq.write_table(pa.table({"key": ids[perm], **shuffled}), d / f"shuf_{name}.parquet")
    pq.write_table(pa.table({"key": ids, "y": names}), d / "sol.parquet")
    return {"dir": d, "y": y, "p": p, "q": q}


def _diff(cmp: Comparison, metric: str) -> dict[str, object]:
    (entry,) = [d for d in cmp.differences if d["metric"] == metric]
    return entry


def test_two_tables_compared(sets) -> None:
    d = sets["dir"]
    cmp = score([d / "a.parquet", d / "b.parquet"], target="y", proba="p_*", bootstrap=300)
    assert isinstance(cmp, Comparison)
    assert cmp.names == ["a.parquet", "b.parquet"]
    with pytest.raises(TypeError, match="unhashable type: 'Comparison'"):
        hash(cmp)
    y, p, q = sets["y"], sets["p"], sets["q"]
    a, b = cmp.reports["a.parquet"], cmp.reports["b.parquet"]
    assert a.log_loss == pytest.approx(metrics.log_loss(y, p), rel=1e-12)
    assert b.log_loss == pytest.approx(metrics.log_loss(y, q), rel=1e-12)
    ll = _diff(cmp, "log_loss")
    assert ll["difference"] == pytest.approx(a.log_loss - b.log_loss, rel=1e-12)
    assert ll["ci_low"] < ll["difference"] < ll["ci_high"]
    assert ll["better"] == "a.parquet"  # the calibrated set
    assert ll["share_a_better"] == 1.0
    # the interval is about the paired normal interval of the per-row loss differences
    la = -np.log(p[np.arange(len(y)), y])
    lb = -np.log(q[np.arange(len(y)), y])
    se = np.std(la - lb, ddof=1) / np.sqrt(len(y))
    assert ll["ci_high"] - ll["ci_low"] == pytest.approx(2 * 1.96 * se, rel=0.25)
    acc = _diff(cmp, "accuracy")  # same argmax: no difference at all
    assert acc["difference"] == 0
    assert acc["ci_low"] == acc["ci_high"] == 0
    assert acc["better"] is None
    text = str(cmp)
    assert "paired differences" in text
    assert "a.parquet − b.parquet" in text
    assert json.loads(cmp.to_json()) == cmp.to_dict()


def test_pair_intervals_do_not_depend_on_row_order_batches_or_engine(sets) -> None:
    d = sets["dir"]
    kw = {"solution": d / "sol.parquet", "id": "key", "bootstrap": 100}
    ordered = score({"a": d / "sub_a.parquet", "b": d / "sub_b.parquet"}, **kw)
    shuffled = score({"a": d / "shuf_a.parquet", "b": d / "sub_b.parquet"}, batch_rows=77, **kw)
    for x, y in zip(ordered.differences, shuffled.differences, strict=True):
        assert x["metric"] == y["metric"]
        assert y["difference"] == pytest.approx(x["difference"], rel=1e-12, abs=1e-15)
        assert y["ci_low"] == pytest.approx(x["ci_low"], rel=1e-9, abs=1e-15)
        assert y["ci_high"] == pytest.approx(x["ci_high"], rel=1e-9, abs=1e-15)
    pytest.importorskip("distributed")
    on_dask = score(
        {"a": d / "shuf_a.parquet", "b": d / "shuf_b.parquet"}, engine="dask", partitions=3, **kw
    )
    for x, y in zip(ordered.differences, on_dask.differences, strict=True):
        assert y["ci_low"] == pytest.approx(x["ci_low"], rel=1e-9, abs=1e-15)


def test_other_targets_are_refused(sets, tmp_path: Path, capsys) -> None:
    d = sets["dir"]
    table = pq.read_table(d / "b.parquet")
    y = table.column("y").to_pylist()
    y[5] = "eel" if y[5] != "eel" else "cat"
    pq.write_table(table.set_column(0, "y", pa.array(y)), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not on the same targets"):
        score([d / "a.parquet", tmp_path / "other.parquet"], target="y", proba="p_*")
    pq.write_table(table.slice(0, 100), tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="not on the same targets"):
        score([d / "a.parquet", tmp_path / "short.parquet"], target="y", proba="p_*")
    with pytest.raises(TypeError, match="two or more"):
        score([d / "a.parquet"], target="y", proba="p_*")
    args = [str(d / "a.parquet"), str(tmp_path / "short.parquet"), "--target", "y"]
    assert main(["score", *args, "--proba-cols", "p_*"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crossentropy score: error: prediction sets 'a.parquet' and")
    assert "Error" not in err  # the message alone, no exception class


def test_arrays_compared_with_names_and_without_bootstrap(sets) -> None:
    y, p, q = sets["y"], sets["p"], sets["q"]
    cmp = score({"sharp": p, "soft": q}, target=y, classes=CLASSES, bootstrap=0)
    ll = _diff(cmp, "log_loss")
    assert ll["ci_low"] is None
    assert ll["share_a_better"] is None
    assert cmp.names == ["sharp", "soft"]
    page = cmp.html()
    assert page.count("data:image/png;base64,") == 3  # differences, two reliability diagrams
    assert "Paired differences" in page
    view = cmp._repr_html_()  # a notebook's: the same content, its style inside a <div>
    assert view.startswith('<div class="ce-report">')
    assert "<body" not in view
    assert view.count("data:image/png;base64,") == 3


def test_command_line_compares(sets, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = sets["dir"]
    report = tmp_path / "c.html"
    args = [str(d / "a.parquet"), str(d / "b.parquet"), "--target", "y", "--proba-cols", "p_*"]
    code = main(["score", *args, "--bootstrap", "50", "--json", "--report", str(report)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["names"] == ["a.parquet", "b.parquet"]
    assert data["replicates"] == 50
    assert report.read_text().startswith("<!DOCTYPE html>")
    sol = ["--solution", str(d / "sol.parquet"), "--id", "key"]
    subs = ["--submission", str(d / "sub_a.parquet"), "--submission", str(d / "shuf_b.parquet")]
    code = main(["score", *sol, *subs, "--bootstrap", "20", "--progress"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "sub_a.parquet − shuf_b.parquet" in out.out
    # one bar per prediction set, each named
    assert "scoring sub_a.parquet [" in out.err
    assert "scoring shuf_b.parquet [" in out.err
    code = main(["score", "--solution", str(d / "sol.parquet"), "--id", "key"])
    assert code == 2
    assert "--solution needs --submission" in capsys.readouterr().err


def test_identical_sets_tie_and_columns_may_come_in_any_order(sets, tmp_path: Path) -> None:
    """The same predictions in another row order, or with their columns in another order, tie:
    no set is better and no replicate favours one (sums in another order differ only by
    their rounding)."""
    d = sets["dir"]
    table = pq.read_table(d / "shuf_a.parquet")
    reordered = table.select(["key", "eel", "cat", "dog"])
    pq.write_table(reordered, tmp_path / "cols.parquet")
    for other in (d / "shuf_a.parquet", tmp_path / "cols.parquet"):
        cmp = score(
            {"a": d / "sub_a.parquet", "b": other},
            solution=d / "sol.parquet",
            id="key",
            target="y",
            bootstrap=50,
        )
        for entry in cmp.differences:
            assert entry["difference"] == pytest.approx(0.0, abs=1e-12)
            assert entry["better"] is None, entry
            assert entry["share_a_better"] == 0.0, entry
    with pytest.raises(ValueError, match=r"^bins must be between 1 and 16,384; got 1,000,000,000"):
        score(d / "a.parquet", target="y", proba="p_*", bins=10**9)


def _same_differences(x: Comparison, y: Comparison) -> None:
    for a, b in zip(x.differences, y.differences, strict=True):
        assert a["metric"] == b["metric"]
        for k in ("difference", "ci_low", "ci_high", "share_a_better"):
            assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-15)


def test_tables_with_an_id_column_pair_their_rows_by_id(sets, tmp_path: Path) -> None:
    """Single tables named with an id column are paired by id: a set in another row order
    gives the same comparison, and rows shuffled among rows of the same label (which position
    pairing would not notice) are still paired with their own examples."""
    y, p, q = sets["y"], sets["p"], sets["q"]
    ids = np.array([f"r{i}" for i in range(len(y))])
    names = np.array(CLASSES)[y]

    def table(probs: np.ndarray, order: np.ndarray) -> object:
        cols = {f"p_{c}": probs[order, j] for j, c in enumerate(CLASSES)}
        return pa.table({"id": ids[order], "y": names[order], **cols})

    same = np.arange(len(y))
    perm = same.copy()
    for label in range(3):  # shuffled within each label: the labels by position agree
        where = np.flatnonzero(y == label)
        perm[where] = np.random.default_rng(label).permutation(where)
    kw = {"target": "y", "proba": "p_*", "id": "id", "bootstrap": 200}
    ordered = score({"a": table(p, same), "b": table(q, same)}, **kw)
    shuffled = score({"a": table(p, same), "b": table(q, perm)}, **kw)
    _same_differences(ordered, shuffled)
    full = score(
        {"a": table(p, same), "b": table(q, np.random.default_rng(5).permutation(perm))}, **kw
    )
    _same_differences(ordered, full)
    # integer ids pair with their decimal writing (ids are text), in any order
    numbered = table(p, same).set_column(0, "id", pa.array(np.arange(len(y))))
    numbered_b = table(q, same).set_column(0, "id", pa.array(np.arange(len(y))))
    as_text = table(q, perm).set_column(0, "id", pa.array([str(i) for i in perm]))
    _same_differences(
        score({"a": numbered, "b": numbered_b}, **kw), score({"a": numbered, "b": as_text}, **kw)
    )
    other = table(q, same).set_column(0, "id", pa.array(np.roll(ids, 1)))
    with pytest.raises(ValueError, match=r"rows are paired by id\)"):
        score({"a": table(p, same), "b": other}, **kw)


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_folder_of_parts_pairs_with_one_file_of_the_same_rows(
    sets, tmp_path: Path, engine
) -> None:
    """Without ids, rows pair by their position in the whole input: a folder of parts against
    one file of the same rows compares as two files do."""
    if engine == "dask":
        pytest.importorskip("distributed")
    d = sets["dir"]
    b = pq.read_table(d / "b.parquet")
    (tmp_path / "parts").mkdir()
    pq.write_table(b.slice(0, 250), tmp_path / "parts" / "part-0.parquet")
    pq.write_table(b.slice(250), tmp_path / "parts" / "part-1.parquet")
    kw = {"target": "y", "proba": "p_*", "bootstrap": 100, "engine": engine}
    files = score({"a": d / "a.parquet", "b": d / "b.parquet"}, **kw)
    folder = score({"a": d / "a.parquet", "b": tmp_path / "parts"}, **kw)
    _same_differences(files, folder)
    if engine == "dask":  # CSV parts do not state their rows: the id pairs them, or refused
        import pyarrow.csv as pcsv

        (tmp_path / "csv").mkdir()
        pcsv.write_csv(b.slice(0, 250), tmp_path / "csv" / "part-0.csv")
        pcsv.write_csv(b.slice(250), tmp_path / "csv" / "part-1.csv")
        with pytest.raises(ValueError, match=r"part-0\.csv: comparing prediction sets of several"):
            score({"a": d / "a.parquet", "b": tmp_path / "csv"}, **kw)


def test_a_set_that_does_not_fit_is_named(sets) -> None:
    y, p = sets["y"], sets["p"]
    with pytest.raises(ValueError, match=r"^prediction set 'short': target must hold one label"):
        score({"good": p, "short": p[:-1]}, target=y, classes=CLASSES)
    two = p[:, :2] / p[:, :2].sum(axis=1, keepdims=True)
    with pytest.raises(ValueError, match=r"^prediction set 'two' \(array\), row \d+, column"):
        score({"good": p, "two": two}, target=y)


def test_sample_weights_are_part_of_the_targets(sets, tmp_path: Path) -> None:
    """Sets with other sample weights are not on the same targets; with equal weights they
    compare, and the share of replicates where a is better counts replicates that drew some
    weight only."""
    y, p, q = sets["y"], sets["p"], sets["q"]
    names = np.array(CLASSES)[y]
    w = np.random.default_rng(3).exponential(size=len(y))

    def table(probs: np.ndarray, weights: np.ndarray) -> object:
        cols = {f"p_{c}": probs[:, j] for j, c in enumerate(CLASSES)}
        return pa.table({"y": names, "w": weights, **cols})

    kw = {"target": "y", "proba": "p_*", "sample_weight": "w", "bootstrap": 100}
    cmp = score({"a": table(p, w), "b": table(q, w)}, **kw)
    assert _diff(cmp, "log_loss")["difference"] < 0
    with pytest.raises(ValueError, match=r"or the sample weights\) differ"):
        score({"a": table(p, w), "b": table(p, w[::-1].copy())}, **kw)
    rows = np.arange(len(y))
    better = np.flatnonzero(p[rows, y] > q[rows, y] * 1.01)[:2]  # a's loss is lower on both
    sparse = np.zeros(len(y))
    sparse[better] = 1.0  # most replicates draw neither row: their means are undefined
    ll = _diff(score({"a": table(p, sparse), "b": table(q, sparse)}, **kw), "log_loss")
    assert ll["ci_high"] < 0
    assert ll["share_a_better"] == 1.0


def test_ties_do_not_make_a_winner_of_the_column_layout(tmp_path: Path, capsys) -> None:
    """The same predictions as a p_1 column, a p_0 column, or columns in another order tie;
    a split column's per-value scores show in the text and the HTML of a comparison."""
    pd = pytest.importorskip("pandas")
    y = np.array([0, 0, 1, 0])
    p1 = np.array([0.5, 0.5, 0.5, 0.2])
    sets = {
        "p_1": pd.DataFrame({"y": y, "p_1": p1}),
        "p_0": pd.DataFrame({"y": y, "p_0": 1 - p1}),
        "both": pd.DataFrame({"y": y, "p_1": p1, "p_0": 1 - p1}),
    }
    cmp = score(sets, target="y", proba="p_*", bootstrap=0)
    assert {name: r.accuracy for name, r in cmp.reports.items()} == dict.fromkeys(sets, 0.75)
    assert all(d["better"] is None for d in cmp.differences), cmp.differences
    rng = np.random.default_rng(0)
    n = 300
    sol = pd.DataFrame({"id": np.arange(n), "y": rng.integers(0, 3, n)})
    sol["Usage"] = np.where(rng.random(n) < 0.3, "Public", "Private")
    sol.to_csv(tmp_path / "s.csv", index=False)
    for k in (1, 2):
        p = np.round(rng.dirichlet(np.ones(3), n), 2)
        sub = pd.DataFrame({"id": np.arange(n), "0": p[:, 0], "1": p[:, 1], "2": p[:, 2]})
        sub.to_csv(tmp_path / f"s{k}.csv", index=False)
    args = ["score", "--solution", str(tmp_path / "s.csv"), "--id", "id", "--target", "y"]
    args += ["--submission", str(tmp_path / "s1.csv"), "--submission", str(tmp_path / "s2.csv")]
    args += ["--split", "Usage", "--bootstrap", "0", "--report", str(tmp_path / "c.html")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "per value of the split column 'Usage'" in text
    assert "no paired bootstrap (0 replicates: no intervals)" in text
    cmp = score(
        {"s1": tmp_path / "s1.csv", "s2": tmp_path / "s2.csv"},
        solution=tmp_path / "s.csv",
        id="id",
        target="y",
        split="Usage",
        bootstrap=0,
    )
    for name, report in cmp.reports.items():
        for split in report.splits:
            row = f"{name}.csv  {split['split']:<7}  {split['n']:>4}  {split['log_loss']:.6f}"
            assert row in text, (row, text)
    page = (tmp_path / "c.html").read_text()
    assert page.count("Public") == 2
    assert page.count("Private") == 2
    assert "no intervals (no bootstrap replicates)" in page
    assert "95 % paired bootstrap interval" not in page
