"""Resolving inputs (scoring/_sources.py): column roles, FIFOs, URLs through pyarrow or
fsspec, folders of parts, tab-separated files by their name."""

from __future__ import annotations

import json
import os
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from _helpers import SCORE_TABLE
from crossentropy.scoring import InputError, score

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


TABLE = SCORE_TABLE


def test_a_probability_column_given_another_role_is_refused(tmp_path: Path) -> None:
    """A column chosen by ``proba`` (named or matched by a pattern) that is also the target,
    the id or the split column is an error naming it; without ``proba`` those columns are left
    out of the probabilities."""
    table = tmp_path / "t.csv"
    table.write_text("y,g,p_0,p_1\n0,a,0.8,0.2\n1,b,0.3,0.7\n")
    for kw, column, how in [
        (dict(proba="p_*", id="p_1"), "p_1", "the id column .*matched by the pattern 'p_\\*' of"),
        (dict(proba="p_*", split="p_0"), "p_0", "the split column .*matched by the pattern"),
        (dict(proba="*_1", id="p_1"), "p_1", "the id column .*matched by the pattern"),
        (dict(proba=["p_0", "y"]), "y", "the target column .*named in proba"),
        (dict(proba=["g", "p_1"], id="g"), "g", "the id column .*named in proba"),
    ]:
        with pytest.raises(InputError, match=f"column '{column}': {how}"):
            score(table, target="y", **kw)
    report = score(table, target="y", id="g", classes=["0", "1"], bootstrap=0)
    assert report.log_loss == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)
    # a pattern without fixed characters is every other column
    star = score(table, target="y", id="g", proba="*", classes=["0", "1"], bootstrap=0)
    assert star.log_loss == report.log_loss
    sol, sub = tmp_path / "sol.csv", tmp_path / "sub.csv"
    sol.write_text("p_id,y\n1,0\n2,1\n")
    sub.write_text("p_id,p_0,p_1\n1,0.8,0.2\n2,0.3,0.7\n")
    with pytest.raises(InputError, match=r"column 'p_id': the id column .*pattern 'p_\*'"):
        score(sub, solution=sol, id="p_id", target="y", proba="p_*")
    pair = score(sub, solution=sol, id="p_id", target="y", classes=["0", "1"], bootstrap=0)
    assert pair.log_loss == pytest.approx(report.log_loss)
    star = score(
        sub, solution=sol, id="p_id", target="y", proba="*", classes=["0", "1"], bootstrap=0
    )
    assert star.log_loss == pair.log_loss
    one_hot = tmp_path / "one_hot.csv"
    one_hot.write_text("p_id,p_0,p_1\n1,1,0\n2,0,1\n")
    from_one_hot = score(sub, solution=one_hot, id="p_id", bootstrap=0)  # Kaggle's layout
    assert from_one_hot.log_loss == pytest.approx(pair.log_loss, rel=1e-15)
    wide = tmp_path / "wide.csv"
    wide.write_text("p_id,y,z\n1,0,0\n2,1,1\n")
    with pytest.raises(InputError, match=r"name the target column .* a 0/1 column per class"):
        score(sub, solution=wide, id="p_id")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            score(fifo, **TABLE)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], InputError)
    assert "not a regular file" in str(outcome[0])


@pytest.fixture
def memory_files(tmp_path: Path):
    """The same table as a local Parquet file and as Parquet, CSV and TSV files on fsspec's
    in-memory file system (``memory://<unique>/...``), removed afterwards."""
    fsspec = pytest.importorskip("fsspec")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pcsv = pytest.importorskip("pyarrow.csv")
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(3), 700)
    table = pa.table({"y": rng.integers(0, 3, 700), **{f"p_{j}": p[:, j] for j in range(3)}})
    local = tmp_path / "a.parquet"
    pq.write_table(table, local, row_group_size=200)
    fs = fsspec.filesystem("memory")
    root = f"/{tmp_path.name}"
    with fs.open(f"{root}/a.parquet", "wb") as fh:
        pq.write_table(table, fh, row_group_size=200)
    with fs.open(f"{root}/a.csv", "wb") as fh:
        pcsv.write_csv(table, fh)
    with fs.open(f"{root}/a.tsv", "wb") as fh:
        pcsv.write_csv(table, fh, pcsv.WriteOptions(delimiter="\t"))
    yield local, f"memory://{root}", fs, root
    fs.rm(root, recursive=True)


def test_urls_are_read_through_pyarrow_or_fsspec(memory_files) -> None:
    local, url, fs, root = memory_files
    kw = dict(target="y", proba="p_*", bootstrap=0)
    ref = score(local, **kw)
    for name in ("a.parquet", "a.csv", "a.tsv"):
        got = score(f"{url}/{name}", batch_rows=128, **kw)
        assert got.log_loss == pytest.approx(ref.log_loss, rel=1e-12), name
        assert [w["row"] for w in got.worst] == [w["row"] for w in ref.worst], name
        assert got.input["files"]["predictions"] == f"{url}/{name}"
    for engine in ("local", "dask"):
        got = score(local.as_uri(), engine=engine, **kw)  # file:// is a local path
        assert got.log_loss == ref.log_loss
    ds = pytest.importorskip("pyarrow.dataset")
    pafs = pytest.importorskip("pyarrow.fs")
    remote = ds.dataset(f"{root}/a.parquet", filesystem=pafs.PyFileSystem(pafs.FSSpecHandler(fs)))
    assert score(remote, **kw).log_loss == pytest.approx(ref.log_loss, rel=1e-12)


def test_a_hive_folder_named_by_a_file_url_is_read_as_its_path(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(3), 300)
    table = pa.table(
        {
            "y": rng.integers(0, 3, 300),
            **{f"p_{j}": p[:, j] for j in range(3)},
            "Usage": rng.choice(["Public", "Private"], 300),
        }
    )
    pq.write_to_dataset(table, tmp_path / "hive", partition_cols=["Usage"])
    kw = dict(target="y", proba="p_*", split="Usage", bootstrap=0)
    ref = score(tmp_path / "hive", **kw)
    got = score((tmp_path / "hive").as_uri(), **kw)
    assert got.to_dict()["splits"] == ref.to_dict()["splits"]
    assert {s["split"] for s in got.to_dict()["splits"]} == {"Public", "Private"}


def test_urls_that_cannot_be_read_are_refused_clearly(memory_files) -> None:
    local, url, fs, root = memory_files
    kw = dict(target="y", proba="p_*")
    with fs.open(f"{root}/a.npy", "wb") as fh:
        fh.write(b"\x93NUMPY")
    with pytest.raises(InputError, match=r"a\.parquet: no such file"):
        score(f"{url}/missing/a.parquet", **kw)
    with pytest.raises(InputError, match=r"nosuchscheme://x/a\.parquet: cannot open"):
        score("nosuchscheme://x/a.parquet", **kw)
    numpy_file = r"a NumPy file \(\.npy, \.npz\) is read from a local path or a file:// URL"
    with pytest.raises(InputError, match=numpy_file):
        score(f"{url}/a.npy", **kw)
    with pytest.raises(InputError, match=numpy_file):  # the format named outright, too
        score(f"{url}/a.npy", format="npz", **kw)
    with pytest.raises(InputError, match="a pattern is expanded for local paths only"):
        score(f"{url}/a.*", **kw)
    with fs.open(f"{root}/hive/Usage=Public/part-0.parquet", "wb") as fh:
        fh.write(b"PAR1")
    with pytest.raises(InputError, match=r"hive: a folder whose files are in subfolders"):
        score(f"{url}/hive", **kw)
    with pytest.raises(ValueError, match="engine='local'"):
        score(f"{url}/a.parquet", engine="dask", **kw)
    with pytest.raises(ValueError, match="solution must be a local file or a file:// URL"):
        score(local, solution=f"{url}/a.csv", id="id", target="y")
    with pytest.raises(ValueError, match=r"file:///path"):
        score("file://otherhost/a.parquet", **kw)
    # as wide as a local file may not be: refused by its schema, before any row is read
    many = ",".join(f"p_{j}" for j in range(40_000))
    with fs.open(f"{root}/wide.csv", "wb") as fh:
        fh.write(f"y,{many}\n".encode())
    with pytest.raises(InputError, match=r"wide\.csv: has 40,001 columns"):
        score(f"{url}/wide.csv", **kw)


def test_the_cli_reads_urls(memory_files, capsys) -> None:
    from crossentropy.cli import main

    _, url, _, _ = memory_files
    assert main(["score", f"{url}/a.csv", "--target", "y", "--proba-cols", "p_*", "--json"]) == 0
    assert f"{url}/a.csv" in capsys.readouterr().out
    assert main(["score", f"{url}/none.csv", "--target", "y"]) == 2
    assert capsys.readouterr().err.strip().endswith("none.csv: no such file")


def test_standard_input_is_refused_by_name(tmp_path: Path, capsys, monkeypatch) -> None:
    """``-`` (a shell's name for standard input) is named as such, not as a missing file in
    the working directory; a file that is really called ``-`` is read."""
    from crossentropy.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["score", "-", "--target", "y", "--proba-cols", "p_*", "--json"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "crossentropy score: error: -: standard input is not read; save the data to a file first"
    )
    (tmp_path / "-").write_text("y,p_0,p_1\n0,0.8,0.2\n1,0.4,0.6\n")
    assert main([*args, "--format", "csv"]) == 0
    assert '"rows": 2' in capsys.readouterr().out


def test_a_file_name_that_is_not_utf8_is_refused_by_name(tmp_path: Path, capsys) -> None:
    """A name of bytes that are not UTF-8 (legal on POSIX): refused naming it, as a file, in a
    folder and in a pattern (pyarrow's UnicodeEncodeError reached the command's safety net)."""
    from crossentropy.cli import main

    folder = tmp_path / "parts"
    folder.mkdir()
    text = "y,p_0,p_1\n0,0.8,0.2\n1,0.4,0.6\n"
    (folder / "a.csv").write_text(text)
    bad = os.path.join(os.fsdecode(bytes(folder)), os.fsdecode(b"b\xff.csv"))
    Path(bad).write_text(text)
    message = re.escape(os.fsdecode(b"b\xff.csv")) + ": the file name is not UTF-8 text"
    for data in (bad, folder, str(folder / "*.csv")):
        with pytest.raises(InputError, match=message):
            score(data, **SCORE_TABLE)
    assert main(["score", bad, "--target", "y", "--proba-cols", "p_*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "the file name is not UTF-8 text" in err
    # NumPy opens any name: an .npy so named is scored
    npy = os.path.join(os.fsdecode(bytes(tmp_path)), os.fsdecode(b"p\xff.npy"))
    np.save(npy, np.array([[0.8, 0.2], [0.4, 0.6]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    got = score(npy, target_file=tmp_path / "y.npy", bootstrap=0).log_loss
    assert got == pytest.approx(-np.mean(np.log([0.8, 0.6])), rel=1e-12)


def test_a_url_reads_csv_cells_as_the_local_reader_does(memory_files, tmp_path: Path) -> None:
    """CSV cells come as text (no guessing of types from the first block), quoted line breaks
    are allowed, and a URL and a local copy give the same numbers and the same errors."""
    _, url, fs, root = memory_files
    hard = "".join("0,1,0\n" if i % 2 else "1,0,1\n" for i in range(150_000))
    body = "y,p_0,p_1\n" + hard + '0,0.3,0.7\n"1",0.4,0.6\n'
    for text, name in [(body, "late.csv"), (body.replace("y,", '"y\nlabel",', 1), "nl.csv")]:
        with fs.open(f"{root}/{name}", "w") as fh:
            fh.write(text)
        (tmp_path / name).write_text(text)
        target = "y\nlabel" if name == "nl.csv" else "y"
        kw = dict(target=target, proba="p_*", classes=["0", "1"], bootstrap=0)
        here = score(tmp_path / name, **kw)
        there = score(f"{url}/{name}", **kw)
        assert there.n == here.n == 150_002
        assert there.log_loss == pytest.approx(here.log_loss, rel=1e-12)
    # "00" writes the class 0 (labels writing an integer match integer classes by value)
    zeros = body.replace('"1",0.4', "00,0.4")
    with fs.open(f"{root}/zeros.csv", "w") as fh:
        fh.write(zeros)
    (tmp_path / "zeros.csv").write_text(zeros)
    kw = dict(target="y", proba="p_*", classes=["0", "1"], bootstrap=0)
    here, there = score(tmp_path / "zeros.csv", **kw), score(f"{url}/zeros.csv", **kw)
    assert there.per_class[0]["count"] == here.per_class[0]["count"] == 75_002
    for cell, message in [("0.5", "label '0.5' is not among the classes"), ("x", "label 'x'")]:
        text = body.replace('"1",0.4', f"{cell},0.4")
        with fs.open(f"{root}/bad.csv", "w") as fh:
            fh.write(text)
        (tmp_path / "bad.csv").write_text(text)
        kw = dict(target="y", proba="p_*", classes=["0", "1"], bootstrap=0)
        errors = []
        for where in (tmp_path / "bad.csv", f"{url}/bad.csv"):
            with pytest.raises(InputError, match=message) as info:
                score(where, **kw)
            errors.append(str(info.value).split(", row ")[1])
        assert errors[0] == errors[1] == "150002, column 'y': " + errors[0].split(": ", 1)[1]


def test_a_url_folder_of_parts_and_bad_urls(memory_files, tmp_path: Path) -> None:
    _, url, fs, root = memory_files
    rows = ["y\tp_0\tp_1", "0\t0.8\t0.2", "1\t0.3\t0.7", "1\t0.1\t0.9", "0\t0.6\t0.4"]
    for k in (1, 2):
        part = "\n".join([rows[0], *rows[2 * k - 1 : 2 * k + 1]]) + "\n"
        with fs.open(f"{root}/parts/part-{k}.tsv", "w") as fh:
            fh.write(part)
        (tmp_path / "parts").mkdir(exist_ok=True)
        (tmp_path / "parts" / f"part-{k}.tsv").write_text(part)
    with fs.open(f"{root}/parts/_SUCCESS", "w") as fh:
        fh.write("")
    kw = dict(target="y", proba="p_*", classes=["0", "1"], bootstrap=0)
    there = score(f"{url}/parts", **kw)
    assert there.n == 4
    assert there.log_loss == pytest.approx(score(tmp_path / "parts", **kw).log_loss, rel=1e-12)
    with pytest.raises(InputError, match="unknown format 'tsv'"):
        score(f"{url}/parts", format="tsv", **kw)
    with fs.open(f"{root}/notzip.zip", "wb") as fh:
        fh.write(b"not a zip file")
    with pytest.raises(InputError, match="cannot open"):
        score(f"zip://a.csv::{url}/notzip.zip", **kw)
    with pytest.raises(ValueError, match="engine='local'"):  # refused before it is opened
        score(f"{url}/nothing/here.csv", engine="dask", **kw)


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_tab_separated_files_are_read_by_their_name(tmp_path: Path, engine: str) -> None:
    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(3), 400)
    y = rng.integers(0, 3, 400)
    rows = ["\t".join(["y", "p_0", "p_1", "p_2"])]
    rows += ["\t".join([str(t), *(repr(float(v)) for v in r)]) for t, r in zip(y, p, strict=True)]
    (tmp_path / "a.tsv").write_text("\n".join(rows) + "\n")
    import gzip

    with gzip.open(tmp_path / "a.tsv.gz", "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    kw = dict(target="y", proba="p_*", classes=["0", "1", "2"], bootstrap=0, engine=engine)
    expected = -np.mean(np.log(p[np.arange(400), y]))
    for name in ("a.tsv", "a.tsv.gz"):
        assert score(tmp_path / name, **kw).log_loss == pytest.approx(expected, rel=1e-12)
    (tmp_path / "b.tsv").write_text("y\tp_0\tp_1\tp_2\n0\t0.2\t0.8\n")
    with pytest.raises(InputError, match=r"b\.tsv, row 1"):
        score(tmp_path / "b.tsv", **kw)
    # a comma-separated file named .tsv: one column whose name holds the commas
    (tmp_path / "c.tsv").write_text("y,p_0,p_1,p_2\n0,0.2,0.3,0.5\n")
    with pytest.raises(InputError, match=r"one column holding ',': a file separated by it\?"):
        score(tmp_path / "c.tsv", **kw)


def test_a_pandas_index_named_as_an_asked_column_is_that_column() -> None:
    """An id (or target, or split) column set as a DataFrame's index is read from the index;
    an index that is not asked for stays out (it is no probability column)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), 20)
    y = rng.integers(0, 3, 20)
    frame = pd.DataFrame(
        {"key": np.arange(100, 120), "y": y, "part": ["A", "B"] * 10}
        | {f"p_{j}": p[:, j] for j in range(3)}
    )
    kw = dict(target="y", id="key", split="part", bootstrap=0)
    want = score(frame, proba="p_*", **kw)
    for index in ("key", "y", "part", ["key", "y"], ["part", "key", "y"]):
        got = score(frame.set_index(index), proba="p_*", **kw)
        assert got.log_loss == pytest.approx(want.log_loss, rel=1e-15)
        assert [w["id"] for w in got.worst] == [w["id"] for w in want.worst]
        assert got.splits == want.splits
    # not asked for: left out, so the other columns are the probabilities
    numbered = frame.drop(columns="part").set_index("key").rename_axis("row")
    named = dict(target="y", classes=["0", "1", "2"], bootstrap=0)
    assert score(numbered, **named).log_loss == pytest.approx(want.log_loss, rel=1e-15)
    with pytest.raises(InputError, match=r"column 'key': no such column"):
        score(numbered, target="y", id="key", bootstrap=0)
    twice = frame.rename(columns={"p_1": "p_0"})
    with pytest.raises(ValueError, match="data has two columns named 'p_0'"):
        score(twice, target="y", proba="p_*")
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    renamed = arrow.rename_columns([c if c != "p_1" else "p_0" for c in arrow.column_names])
    with pytest.raises(ValueError, match="data has two columns named 'p_0'"):
        score(renamed, target="y", proba="p_*")
    levels = frame.copy()
    levels.columns = pd.MultiIndex.from_tuples([("t", c) for c in frame.columns])
    with pytest.raises(ValueError, match=r"data has columns of 2 levels \(a MultiIndex\)"):
        score(levels, target="y")
    with pytest.raises(TypeError, match=r"target must be a column name \(a str\); got tuple"):
        score(levels, target=("t", "y"))


def test_classes_that_cross_the_columns_names_are_refused(tmp_path: Path, capsys) -> None:
    """Classes given in another order than the columns' names give them would score each
    column as another's class: refused, naming the column; names in the columns' order, or
    names the columns do not give, are taken; integer names (often positions) in another
    order are taken by position, with a warning (a line of the command's)."""
    table = pa.table(
        {
            "y": ["cat", "dog", "emu", "cat"],
            "p_cat": [0.7, 0.2, 0.1, 0.6],
            "p_dog": [0.2, 0.7, 0.1, 0.2],
            "p_emu": [0.1, 0.1, 0.8, 0.2],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    want = -np.mean(np.log([0.7, 0.7, 0.8, 0.6]))
    for data in (table, tmp_path / "t.parquet"):
        with pytest.raises(InputError, match="gives the column 'p_cat' the class 'dog'") as e:
            score(data, target="y", proba="p_*", classes=["dog", "cat", "emu"])
        assert "column 'p_cat'" in str(e.value)
        got = score(data, target="y", proba="p_*", classes=["cat", "dog", "emu"], bootstrap=0)
        assert got.log_loss == pytest.approx(want, rel=1e-15)
    renamed = table.set_column(0, "y", pa.array(["a", "b", "c", "a"]))
    got = score(renamed, target="y", proba="p_*", classes=["a", "b", "c"], bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-15)
    # integer names are as often positions (a DataFrame of predict_proba, 1-based columns):
    # taken without a warning
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    p3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    frame = pa.table({"y": [1, 2, 3, 2], **{str(j): p3[:, j] for j in range(3)}})
    want3 = sklearn_metrics.log_loss([1, 2, 3, 2], p3)
    ones = pa.table({"y": [0, 1, 2, 1], **{f"p_{j + 1}": p3[:, j] for j in range(3)}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = score(frame, target="y", classes=[1, 2, 3], bootstrap=0)
        assert got.log_loss == pytest.approx(want3, rel=1e-14)
        got = score(ones, target="y", proba="p_*", classes=[0, 1, 2], bootstrap=0)
        assert got.log_loss == pytest.approx(want3, rel=1e-14)
    # the same integers in another order: read by position, with a warning at the caller
    crossed = pa.table({"y": [2, 1, 0, 1], **{f"p_{j}": p3[:, j] for j in range(3)}})
    with pytest.warns(UserWarning, match="gives the column 'p_0' the class '2'") as caught:
        got = score(crossed, target="y", proba="p_*", classes=[2, 1, 0], bootstrap=0)
    assert caught[0].filename == __file__
    assert got.log_loss == pytest.approx(want3, rel=1e-14)
    pq.write_table(crossed, tmp_path / "crossed.parquet")
    from crossentropy.cli import main

    args = [str(tmp_path / "crossed.parquet"), "--target", "y", "--proba-cols", "p_*"]
    assert main(["score", *args, "--classes", "2,1,0", "--json", "--bootstrap", "0"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["log_loss"] == pytest.approx(want3, rel=1e-14)
    assert err.startswith("crossentropy score: warning: ")
    assert "by position" in err
    # NumPy columns have positions, not names: any order of classes is taken
    p = np.array([[0.7, 0.3], [0.4, 0.6]])
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", np.array([1, 0]))
    for data, labels in ((p, {"target": np.array([1, 0])}), (tmp_path / "p.npy", {})):
        extra = {"target_file": tmp_path / "y.npy"} if labels == {} else labels
        got = score(data, classes=[1, 0], bootstrap=0, **extra)
        assert got.log_loss == pytest.approx(-np.mean(np.log([0.7, 0.6])), rel=1e-15)


def test_one_column_named_outright_is_the_class_its_name_ends_with(tmp_path: Path) -> None:
    """A single probability column is the second class's, unless its name gives the first:
    named outright (``p_no``, ``["p_no"]``) as when a pattern gives it (``p_*``)."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y, v = ["no", "yes", "yes", "no"], np.array([0.9, 0.2, 0.3, 0.6])
    want = sklearn_metrics.log_loss([t == "yes" for t in y], 1 - v)
    table = pa.table({"y": y, "p_no": v})
    pq.write_table(table, tmp_path / "one.parquet")
    for data in (table, tmp_path / "one.parquet"):
        for proba in ("p_*", "p_no", ["p_no"]):
            got = score(data, target="y", proba=proba, classes=["no", "yes"], bootstrap=0)
            assert got.log_loss == pytest.approx(want, rel=1e-15), proba
    ints = pa.table({"y": [0, 1, 1, 0], "p_0": v})
    got = score(ints, target="y", proba="p_*", bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-15)
    # named for the second class, or for neither: the second class's probability
    for name in ("p_yes", "score"):
        other = pa.table({"y": y, name: 1 - v})
        got = score(other, target="y", proba=name, classes=["no", "yes"], bootstrap=0)
        assert got.log_loss == pytest.approx(want, rel=1e-15), name
    # integer endings named outright are folds as often as classes: the column is P(1)
    flipped = sklearn_metrics.log_loss([0, 1, 1, 0], v)
    for name in ("p_0", "oof_0", "pred_fold_0", "p_1.0", "model 0", "xgb-v1.0"):
        named = pa.table({"y": [0, 1, 1, 0], name: v})
        for classes in (None, [0, 1]):
            got = score(named, target="y", proba=name, classes=classes, bootstrap=0)
            assert got.log_loss == pytest.approx(flipped, rel=1e-15), (name, classes)
    # array columns have positions: stored classes given again keep the column the second's
    np.savez(tmp_path / "a.npz", y_true=np.array(y), y_proba=v, classes=np.array(["no", "yes"]))
    for classes in (None, ["no", "yes"]):
        got = score(tmp_path / "a.npz", classes=classes, bootstrap=0)
        assert got.log_loss == pytest.approx(sklearn_metrics.log_loss(y, v), rel=1e-15)
    np.save(tmp_path / "v.npy", v)
    np.save(tmp_path / "y12.npy", np.array([1, 2, 2, 1]))
    got = score(tmp_path / "v.npy", target_file=tmp_path / "y12.npy", classes=[1, 2], bootstrap=0)
    assert got.log_loss == pytest.approx(sklearn_metrics.log_loss([1, 2, 2, 1], v), rel=1e-15)


def test_integer_labels_without_0_for_more_columns_are_refused_as_unclear(
    tmp_path: Path,
) -> None:
    """Integer labels within ``1 .. C-1`` for ``C`` columns are the positions without a row of
    the first class, or the classes ``1 .. C`` without a row of the last: refused (scikit-learn
    refuses them too); with classes they score as scikit-learn's with labels. Labels with a 0
    are the columns' positions."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from crossentropy.cli import main

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    y = np.array([1, 2, 2, 2])
    with pytest.raises(ValueError, match="number of classes"):
        sklearn_metrics.log_loss(y, p)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "a.npz", y_true=y, y_proba=p)
    unclear = r"the labels are integers from 1 to 2, none 0, for 3 classes"
    with pytest.raises(ValueError, match=unclear):
        score(p, target=y)
    with pytest.raises(InputError, match=unclear):
        score(tmp_path / "p.npy", target_file=tmp_path / "y.npy")
    with pytest.raises(InputError, match=unclear):
        score(tmp_path / "a.npz")
    assert main(["score", str(tmp_path / "a.npz")]) == 2
    want = sklearn_metrics.log_loss(y, p, labels=[1, 2, 3])
    got = score(p, target=y, classes=[1, 2, 3], bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-14)
    got = score(tmp_path / "a.npz", classes=["1", "2", "3"], bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-14)
    zero = np.array([0, 1, 1, 0])
    want = sklearn_metrics.log_loss(zero, p, labels=[0, 1, 2])
    assert score(p, target=zero, bootstrap=0).log_loss == pytest.approx(want, rel=1e-14)
    for alike in (y.astype(np.float64), y.astype(object), y.astype(str)):  # alike by value
        with pytest.raises(ValueError, match=unclear):
            score(p, target=alike)
    mixed = np.array([1, "2", 2, 2], dtype=object)  # objects of two types, which do not sort
    with pytest.raises(ValueError, match=unclear):
        score(p, target=mixed)
    mixed[0] = 0  # with a 0: positions, as the same labels in a DataFrame are read
    want = sklearn_metrics.log_loss([0, 2, 2, 2], p, labels=[0, 1, 2])
    assert score(p, target=mixed, bootstrap=0).log_loss == pytest.approx(want, rel=1e-14)
    # one column: a binary problem's second class, whose labels 0 and 1 are clear (all 1 too)
    ones, v = np.ones(4, dtype=np.int64), p[:, 1]
    want = sklearn_metrics.log_loss(ones, v, labels=[0, 1])
    assert score(v, target=ones, bootstrap=0).log_loss == pytest.approx(want, rel=1e-14)


def test_numpy_labels_name_the_classes_as_scikit_learn_finds_them(tmp_path: Path) -> None:
    """Without classes, NumPy labels that are not the columns' positions name the classes
    sorted, when there are as many as columns (scikit-learn's log_loss); else a clear error
    at the first such label."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    for y in (np.array([1, 2, 3, 2]), np.array(["b", "c", "d", "c"]), np.array([0, 1, 2, 1])):
        want = sklearn_metrics.log_loss(y, p)
        np.save(tmp_path / "p.npy", p)
        np.save(tmp_path / "y.npy", y)
        np.savez(tmp_path / "a.npz", y_true=y, y_proba=p)
        assert score(p, target=y, bootstrap=0).log_loss == pytest.approx(want, rel=1e-14)
        got = score(tmp_path / "p.npy", target_file=tmp_path / "y.npy", bootstrap=0)
        assert got.log_loss == pytest.approx(want, rel=1e-14)
        assert score(tmp_path / "a.npz", bootstrap=0).log_loss == pytest.approx(want, rel=1e-14)
    v, yb = np.array([0.2, 0.7, 0.6]), np.array(["no", "yes", "yes"])  # one column: the second's
    np.save(tmp_path / "v.npy", v)
    np.save(tmp_path / "yb.npy", yb)
    want = sklearn_metrics.log_loss(yb, v)
    assert score(v, target=yb, bootstrap=0).log_loss == pytest.approx(want, rel=1e-14)
    got = score(tmp_path / "v.npy", target_file=tmp_path / "yb.npy", bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-14)
    # byte-string labels name the classes as the text they are read as
    yb3 = np.array([b"a", b"b", b"c", b"b"])
    assert score(p, target=yb3, bootstrap=0).log_loss == pytest.approx(
        sklearn_metrics.log_loss(["a", "b", "c", "b"], p), rel=1e-14
    )
    # labels beyond int64 are no positions and no int64 classes: named, as unknown labels
    huge = np.array([2**63, 2**63 + 1, 2**63 + 2, 2**63 + 1], dtype=np.uint64)
    with pytest.raises(InputError, match="label 9223372036854775808 is not among the classes"):
        score(p, target=huge)
    positions = r"row 3, column 'y_true': label 3 is not among the classes \('0', '1', '2'\); "
    positions += "the classes are the probability columns' positions, 0 to 2: name each"
    with pytest.raises(InputError, match=positions):
        score(p, target=np.array([1, 2, 3, 4]))
    np.save(tmp_path / "y4.npy", np.array([1, 2, 3, 4]))
    with pytest.raises(InputError, match=positions):
        score(tmp_path / "p.npy", target_file=tmp_path / "y4.npy")


def test_one_column_named_for_a_boolean_class_is_that_class(tmp_path: Path) -> None:
    """Boolean labels (their text, or 0 and 1) and one column named ``p_False`` (by a pattern
    or outright, in any case): the column is P(False), i.e. P(0), not P(True) as a column
    named for the second class is; ``p_True`` and an unnamed column stay P(True)."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y, v = [False, True, True, False], np.array([0.8, 0.3, 0.1, 0.6])
    want = sklearn_metrics.log_loss(y, 1 - v)
    named = (("p_False", v), ("False", v), ("p_false", v), ("p_True", 1 - v), ("x", 1 - v))
    for labels in (y, [str(t) for t in y], [int(t) for t in y]):
        for name, column in named:
            table = pa.table({"y": labels, name: column})
            pq.write_table(table, tmp_path / "one.parquet")
            for data in (table, tmp_path / "one.parquet"):
                for proba in ("p_*", name) if name.startswith("p_") else (name,):
                    got = score(data, target="y", proba=proba, bootstrap=0)
                    assert got.log_loss == pytest.approx(want, rel=1e-15), (name, proba)
                    assert got.accuracy == 1.0
    csv = tmp_path / "bool.csv"
    csv.write_text("y,p_False\nFalse,0.8\nTrue,0.3\nTrue,0.1\nFalse,0.6\n")
    got = score(csv, target="y", proba="p_*", bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_parts_with_their_columns_in_another_order_are_read_by_class(
    tmp_path: Path, suffix: str
) -> None:
    """Parts of a folder or a pattern whose columns name the same classes in another order
    are each read in the first part's class order (they were refused as differing); parts
    of other classes are still refused."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    parts = [
        pa.table({"y": ["a", "b"], "p_a": [0.9, 0.2], "p_b": [0.1, 0.8]}),
        pa.table({"y": ["a", "b", "b"], "p_b": [0.3, 0.6, 0.9], "p_a": [0.7, 0.4, 0.1]}),
    ]
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(parts):
        if suffix == "csv":
            part.to_pandas().to_csv(folder / f"part-{i}.csv", index=False)
        else:
            pq.write_table(part, folder / f"part-{i}.parquet")
    want = sklearn_metrics.log_loss(
        ["a", "b", "a", "b", "b"], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.1, 0.9]]
    )
    for data in (folder, str(folder / f"part-*.{suffix}")):
        for engine in ("local", "dask"):
            got = score(data, target="y", proba="p_*", bootstrap=0, engine=engine)
            assert got.log_loss == pytest.approx(want, rel=1e-15), (data, engine)
            assert got.n == 5
    other = pa.table({"y": ["a"], "p_a": [0.5], "p_c": [0.5]})
    if suffix == "csv":
        other.to_pandas().to_csv(folder / "part-2.csv", index=False)
    else:
        pq.write_table(other, folder / "part-2.parquet")
    with pytest.raises(InputError, match=r"part-2\.\w+: its classes .* differ"):
        score(str(folder / f"part-*.{suffix}"), target="y", proba="p_*", bootstrap=0)


def test_parts_of_two_formats_are_refused(tmp_path: Path) -> None:
    """A folder (or a pattern) holding the same rows as CSV and as Parquet is refused, not
    read twice: the parts of one table are files of one format."""
    part = pa.table({"y": ["a", "b"], "p_a": [0.9, 0.2], "p_b": [0.1, 0.8]})
    pq.write_table(part, tmp_path / "oof.parquet")
    part.to_pandas().to_csv(tmp_path / "oof.csv", index=False)
    refused = r"oof\.parquet: is Parquet, where .*oof\.csv is CSV: the parts of one table are"
    for data in (tmp_path, str(tmp_path / "oof.*")):
        for engine in ("local", "dask"):
            with pytest.raises(InputError, match=refused):
                score(data, target="y", proba="p_*", bootstrap=0, engine=engine)


@pytest.mark.parametrize("codec", ["bz2", "xz", "zst"])
def test_files_compressed_with_another_codec_than_gzip_are_named_so(
    tmp_path: Path, codec: str
) -> None:
    """bzip2, xz and zstd files are refused naming their compression, by their name and with
    format="csv" (not as an unknown format, or a header that is not UTF-8); a CSV whose
    header starts with the letters of bzip2's magic is read."""
    import bz2
    import lzma

    text = b"y,p_a,p_b\na,0.9,0.1\nb,0.2,0.8\n"
    if codec == "zst":
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(text)
        data = sink.getvalue().to_pybytes()
    else:
        data = {"bz2": bz2.compress, "xz": lzma.compress}[codec](text)
    path = tmp_path / f"t.csv.{codec}"
    path.write_bytes(data)
    name = {"bz2": "bzip2", "xz": "xz", "zst": "zstd"}[codec]
    for fmt in (None, "csv"):
        with pytest.raises(InputError, match=rf"is compressed with {name}: only gzip is read"):
            score(path, target="y", proba="p_*", format=fmt)
    plain = tmp_path / "bzh.csv"
    plain.write_text("BZh1,p_a\n1,0.2\n")
    assert score(plain, target="BZh1", proba="p_a", bootstrap=0).n == 1


def test_a_blank_first_line_is_named_not_called_an_empty_file(tmp_path: Path) -> None:
    """A CSV whose header comes after blank lines is refused for its blank first line (it was
    called an empty file); an empty file is still one."""
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\ny,p_a,p_b\na,0.9,0.1\n")
    with pytest.raises(InputError, match=r"blank\.csv: the first line is blank"):
        score(blank, target="y", proba="p_*")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.csv: empty file \(no header line\)"):
        score(empty, target="y", proba="p_*")


def test_a_missing_column_hints_at_another_separator_or_spaces(tmp_path: Path) -> None:
    """A header that reads as one column holding semicolons, names with spaces after the
    commas, and columns listed in one string are named in the message that no column
    matches."""
    semi = tmp_path / "semi.csv"
    semi.write_text("y;p_a;p_b\na;0.5;0.5\n")
    with pytest.raises(InputError, match=r"one column holding ';': a file separated by it\?"):
        score(semi, target="y")
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("y, p_a, p_b\na, 0.9, 0.1\n")
    with pytest.raises(InputError, match=r"pattern 'p_\*'; ' p_a', ' p_b' match with the spaces"):
        score(spaced, target="y", proba="p_*")
    with pytest.raises(InputError, match=r"' p_a' matches with the spaces around them left out"):
        score(spaced, target="y", proba=["p_a", "p_b"])
    # columns listed in one string: a list is asked for, not for names that are not columns
    plain = tmp_path / "plain.csv"
    plain.write_text("y,p_a,p_b\na,0.9,0.1\n")
    with pytest.raises(InputError, match=r"it is one name: give several as a list \(\['p_a', "):
        score(plain, target="y", proba="p_a, p_b")
    with pytest.raises(InputError, match=r"it is one pattern: give several as a list"):
        score(plain, target="y", proba="p_a*,p_b*")
    with pytest.raises(InputError, match=r"no such column \(columns: 'y', 'p_a', 'p_b'\)$"):
        score(plain, target="y", proba="p_a,p_c")
    with pytest.raises(InputError, match=r"no such column \(columns: 'y', 'p_a', 'p_b'\)$"):
        score(plain, target="y,p_a")  # one column only: no list asked for


def test_gzip_without_its_name_and_a_pair_with_a_target_file_are_refused(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "sub.csv").write_text("id,a,b\n1,0.7,0.3\n2,0.4,0.6\n")
    (tmp_path / "sol.csv").write_text("id,y,Usage\n1,a,Public\n2,b,Private\n")
    (tmp_path / "small.data").write_bytes(gzip.compress((tmp_path / "sub.csv").read_bytes()))
    with pytest.raises(InputError, match=r"small.data: is gzip-compressed: name it .csv.gz"):
        score(tmp_path / "small.data", format="csv", target="id")
    pair = dict(solution=tmp_path / "sol.csv", id="id", target="y", bootstrap=0)
    with pytest.raises(InputError, match=r"target_file .* is for .npy probability arrays"):
        score(tmp_path / "sub.csv", target_file=tmp_path / "missing.npy", **pair)
    # a split column that is the target or the id is the solution's mistake, named so
    for column in ("y", "id"):
        with pytest.raises(InputError, match=r"sol.csv, column '(y|id)': the split column must"):
            score(tmp_path / "sub.csv", split=column, **pair)
    assert score(tmp_path / "sub.csv", **pair).log_loss == pytest.approx(-np.log(0.42) / 2)


def test_float_labels_of_arrays_name_their_classes_as_scikit_learn() -> None:
    """NumPy float labels: their sorted distinct values are the classes where they are not
    the columns' positions (as integer labels are), given as ``classes=`` too (a fitted
    model's float ``classes_``); NaN is a missing label at its row."""
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=80)
    for y in (rng.integers(1, 4, size=80), rng.integers(0, 3, size=80) * 10 - 10):
        ref = sk.log_loss(y.astype(float), p)
        assert score(p, target=y.astype(float)).log_loss == pytest.approx(ref, rel=1e-13)
        assert score(p, target=y).log_loss == pytest.approx(ref, rel=1e-13)
        got = score(p, target=y.astype(float), classes=np.unique(y).astype(float))
        assert got.log_loss == pytest.approx(ref, rel=1e-13)
    # integer labels against classes named as floats: by value, as float labels are
    y = rng.integers(0, 3, size=80)
    ref = sk.log_loss(y, p[:, ::-1], labels=[0, 1, 2])
    for labels in (y, y.astype(float)):
        got = score(p, target=labels, classes=[2.0, 1.0, 0.0]).log_loss
        assert got == pytest.approx(ref, rel=1e-13)
    with pytest.raises(InputError, match=r"row 3, column 'y_true': label 'inf' is not among"):
        score(p[:4], target=np.array([1.0, 2.0, np.inf, 1.0]))
    positions = rng.integers(0, 3, size=80).astype(float)  # the columns' positions
    ref = sk.log_loss(positions, p, labels=[0, 1, 2])
    assert score(p, target=positions).log_loss == pytest.approx(ref, rel=1e-13)
    positions[6] = np.nan
    with pytest.raises(InputError, match=r"row 7, column 'y_true': label NaN"):
        score(p, target=positions)


def test_unreadable_npy_files_say_why_in_words(tmp_path: Path) -> None:
    """NumPy's "mmap length is greater than file size" is a file shorter than its header
    says; a header whose dict does not parse was named by an ast object's repr."""
    whole = tmp_path / "p.npy"
    np.save(whole, np.full((100, 3), 1 / 3))
    np.save(tmp_path / "y.npy", np.zeros(100, dtype=np.int64))
    raw = whole.read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:300])
    (tmp_path / "call.npy").write_bytes(raw.replace(b"'<f8'", b"f('x')"))
    for name, why in (
        ("cut.npy", r"shorter than its header's shape and dtype say \(truncated\?\)$"),
        ("call.npy", r"its header is not the dict of a \.npy header"),
    ):
        with pytest.raises(InputError, match=why) as caught:
            score(tmp_path / name, target_file=tmp_path / "y.npy", bootstrap=0)
        assert "ast." not in str(caught.value)


def test_utf16_and_binary_csv_files_are_named_as_such(tmp_path: Path) -> None:
    """UTF-16 text (with or without its byte-order mark) and zero bytes: named by what they
    are (a column 'y\\x00' was not found, a byte 0xff was not UTF-8, a field was too long)."""
    text = "y,p_a,p_b\na,0.5,0.5\n"
    (tmp_path / "bom.csv").write_bytes(text.encode("utf-16"))
    (tmp_path / "le.csv").write_bytes(text.encode("utf-16-le"))
    (tmp_path / "zeros.csv").write_bytes(bytes(1 << 20))
    for name in ("bom.csv", "le.csv", "zeros.csv"):
        with pytest.raises(InputError, match=r"UTF-16 text \(save it as UTF-8\) or not a text"):
            score(tmp_path / name, target="y", proba="p_*", bootstrap=0)


def test_a_column_the_pattern_leaves_no_class_name_is_refused(tmp_path: Path) -> None:
    """``p_`` by ``p_*`` named the class '' (and an empty label matched it, scored); with the
    classes named, the empty label is a missing one."""
    path = tmp_path / "t.csv"
    path.write_text("y,p_,p_b\n,0.9,0.1\nb,0.3,0.7\n")
    with pytest.raises(InputError, match=r"column 'p_': the probability columns' pattern"):
        score(path, target="y", proba="p_*", bootstrap=0)
    with pytest.raises(InputError, match=r"row 1, column 'y': missing label"):
        score(path, target="y", proba="p_*", classes=["a", "b"], bootstrap=0)
