"""Reading inputs (scoring/_read.py), held against a corpus of about two hundred malformed
files: every one is refused with an ``InputError`` that names the file, and the row and column
where there is one; none raises anything else, none hangs. Also FIFOs, label types of
Parquet, non-NumPy bytes, and CSV files whose quoted values hold line breaks."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossentropy.scoring import InputError, score

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [("a", 0.25, 0.75), ("b", 0.5, 0.5), ("a", 0.9, 0.1), ("b", 0.3, 0.7), ("a", 0.6, 0.4)]
TABLE = {"target": "y", "proba": "p_*", "bootstrap": 0}

#: Values that are not probabilities, as CSV text.
BAD_NUMBERS = [
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-0.5",
    "1.5",
    "abc",
    "1e400",
    "null",
    "None",
    "0x10",
    "true",
    "1.2.3",
    "--1",
    "½",
]
#: Labels that are not classes.
BAD_LABELS = ["zebra", "", "A", " a", "a ", "\x1b[31ma", "ａ"]


def _csv(rows: list[tuple[str, str, str]], header: str = "y,p_a,p_b") -> str:
    return header + "\n" + "".join(f"{y},{a},{b}\n" for y, a, b in rows)


def _rows() -> list[tuple[str, str, str]]:
    return [(y, str(a), str(b)) for y, a, b in ROWS]


def _corpus(d: Path) -> list[tuple[str, dict[str, object], list[str]]]:
    """(case, score() arguments, texts the message must hold)."""
    cases: list[tuple[str, dict[str, object], list[str]]] = []

    def write(name: str, text: str | bytes) -> Path:
        path = d / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    # one bad cell: each bad number at three rows of both probability columns
    for k, value in enumerate(BAD_NUMBERS):
        for row in (1, 3, 5):
            for col in (1, 2):
                rows = _rows()
                cells = list(rows[row - 1])
                cells[col] = value
                rows[row - 1] = (cells[0], cells[1], cells[2])
                name = f"num{k}_{row}_{col}.csv"
                column = "p_a" if col == 1 else "p_b"
                cases.append(
                    (name, {"data": write(name, _csv(rows)), **TABLE}, [name, f"row {row}", column])
                )
    for k, label in enumerate(BAD_LABELS):
        for row in (1, 3, 5):
            rows = _rows()
            rows[row - 1] = (label, *rows[row - 1][1:])
            name = f"label{k}_{row}.csv"
            cases.append((name, {"data": write(name, _csv(rows)), **TABLE}, [name, f"row {row}"]))
    # structure
    for row in (1, 3, 5):
        rows = _rows()
        short = _csv(rows).splitlines()
        short[row] = short[row].rsplit(",", 1)[0]
        name = f"short{row}.csv"
        cases.append((name, {"data": write(name, "\n".join(short) + "\n"), **TABLE}, [name]))
        long = _csv(rows).splitlines()
        long[row] += ",0.1"
        name = f"long{row}.csv"
        cases.append((name, {"data": write(name, "\n".join(long) + "\n"), **TABLE}, [name]))
    structural = {
        "empty.csv": "",
        "header_only.csv": "y,p_a,p_b\n",
        "no_target.csv": _csv(_rows(), "z,p_a,p_b"),
        "no_proba.csv": _csv(_rows(), "y,q_a,q_b"),
        "dup_header.csv": _csv(_rows(), "y,p_a,p_a"),
        "one_class.csv": "y,p_a\na,0.5\n",
        "garbage.csv": b"\x00\xff\xfe\x00garbage\x00\n\x01\x02",
        "nul_in_cell.csv": "y,p_a,p_b\na,0.5\x00,0.5\n",
        "quote_open.csv": 'y,p_a,p_b\n"a,0.5,0.5\nb,0.5,0.5\n',
        "latin1.csv": "y,p_a,p_b\n\xe9,0.5,0.5\n".encode("latin-1"),
        "tabs.csv": "y\tp_a\tp_b\na\t0.5\t0.5\n",
        "semicolons.csv": "y;p_a;p_b\na;0,5;0,5\n",
    }
    for name, text in structural.items():
        cases.append((name, {"data": write(name, text), **TABLE}, [name]))

    # Parquet: label and probability columns of every awkward type
    def parquet(name: str, y: object, p_a: object, p_b: object = None) -> Path:
        p_b = p_b if p_b is not None else pa.array([0.5] * len(p_a))  # type: ignore[arg-type]
        path = d / name
        pq.write_table(pa.table({"y": y, "p_a": p_a, "p_b": p_b}), path, row_group_size=2)
        return path

    half = [0.5, 0.5, 0.5, 0.5]
    pq_cases = {
        "pq_nan_label.parquet": ([0.0, 1.0, float("nan"), 1.0], half, ["row 3", "NaN"]),
        "pq_struct_label.parquet": ([{"k": 1}] * 4, half, ["row 1", "struct"]),
        "pq_list_label.parquet": ([[1], [0], [1], [0]], half, ["row 1", "list"]),
        "pq_binary_label.parquet": (pa.array([b"a"] * 4), half, ["row 1", "binary"]),
        "pq_u64_label.parquet": (pa.array([0, 1, 2**63 + 1, 0], pa.uint64()), half, ["row 3"]),
        "pq_null_label.parquet": (pa.array(["a", None, "b", "a"]), half, ["row 2", "missing"]),
        "pq_all_null.parquet": (pa.array([None] * 4, pa.string()), half, ["row 1", "missing"]),
        "pq_text_proba.parquet": (["a", "b", "a", "b"], ["0.5", "0.5", "x", "0.5"], ["row 3"]),
        "pq_nan_proba.parquet": (["a", "b", "a", "b"], [0.5, 0.5, 0.5, float("nan")], ["row 4"]),
        "pq_big_proba.parquet": (["a", "b", "a", "b"], [0.5, 2.0, 0.5, 0.5], ["row 2"]),
        "pq_neg_proba.parquet": (["a", "b", "a", "b"], [0.5, 0.5, -0.5, 0.5], ["row 3"]),
        "pq_list_proba.parquet": (["a", "b", "a", "b"], [[0.5]] * 4, ["row 1", "list"]),
        "pq_bool_proba.parquet": (["a", "b", "a", "b"], [True, False, True, 2.0 > 3], None),
    }
    for name, (y, p_a, needles) in pq_cases.items():
        if needles is None:
            continue
        try:
            path = parquet(name, y, p_a)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            continue
        cases.append((name, {"data": path, **TABLE}, [name, *needles]))
    (d / "junk.parquet").write_bytes(b"PAR1 this is not really parquet")
    cases.append(("junk.parquet", {"data": d / "junk.parquet", **TABLE}, ["junk.parquet"]))
    # NumPy
    good_p = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    good_y = np.array([1, 0, 1])
    np.save(d / "good_p.npy", good_p)
    np.save(d / "good_y.npy", good_y)
    raw = (d / "good_p.npy").read_bytes()
    npy_bytes = {
        "fake.npy": b"this is text, not numpy",
        "truncated.npy": raw[: len(raw) - 20],
        "header_only.npy": raw[:64],
        "zip_as.npy": b"PK\x03\x04 not an npy",
    }
    for name, data in npy_bytes.items():
        path = write(name, data)
        cases.append((name, {"data": path, "target_file": d / "good_y.npy"}, [name]))
        cases.append((f"labels {name}", {"data": d / "good_p.npy", "target_file": path}, [name]))
    arrays = {
        "obj.npy": np.array([[0.5, "x"]], dtype=object),
        "cube.npy": np.zeros((3, 2, 2)),
        "text.npy": np.array([["0.5", "0.5"]] * 3),
        "nanp.npy": np.array([[0.5, 0.5], [np.nan, 1.0], [0.5, 0.5]]),
    }
    for name, array in arrays.items():
        np.save(d / name, array, allow_pickle=True)
        cases.append((name, {"data": d / name, "target_file": d / "good_y.npy"}, [name]))
    labels = {
        "short_y.npy": np.array([0, 1]),
        "y2d.npy": np.zeros((3, 2), dtype=int),
        "nan_y.npy": np.array([0.0, np.nan, 1.0]),
        "big_y.npy": np.array([0, 1, 7]),
    }
    for name, array in labels.items():
        np.save(d / name, array)
        cases.append((name, {"data": d / "good_p.npy", "target_file": d / name}, [name]))
    np.savez(d / "no_y.npz", y_proba=good_p)
    np.savez(d / "no_p.npz", y_true=good_y)
    np.savez(d / "scalar.npz", y_true=good_y, y_proba=np.float64(0.5))
    (d / "broken.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    for name in ("no_y.npz", "no_p.npz", "scalar.npz", "broken.npz"):
        cases.append((name, {"data": d / name}, [name]))
    # pairs
    sol = write("sol.csv", "id,y\n1,a\n2,b\n3,a\n")
    pairs = {
        "sub_dup.csv": ("id,a,b\n1,0.5,0.5\n1,0.5,0.5\n3,0.5,0.5\n", ["row 2", "twice"]),
        "sub_unknown.csv": ("id,a,b\n1,0.5,0.5\n9,0.5,0.5\n3,0.5,0.5\n", ["row 2", "'9'"]),
        "sub_missing.csv": ("id,a,b\n1,0.5,0.5\n3,0.5,0.5\n", ["'2'"]),
        "sub_noid.csv": ("key,a,b\n1,0.5,0.5\n", ["'id'"]),
        "sub_nan.csv": ("id,a,b\n1,0.5,0.5\n2,nan,0.5\n3,0.5,0.5\n", ["row 2", "'a'"]),
        "sub_blank_id.csv": ("id,a,b\n1,0.5,0.5\n,0.5,0.5\n3,0.5,0.5\n", ["row 2", "id"]),
    }
    for name, (text, needles) in pairs.items():
        path = write(name, text)
        args = {"data": path, "solution": sol, "id": "id", "bootstrap": 0}
        cases.append((name, args, [name, *needles]))
    for k, value in enumerate(BAD_NUMBERS):  # each bad number in a submission, rows shuffled
        name = f"sub_num{k}.csv"
        path = write(name, f"id,a,b\n3,0.5,0.5\n1,0.5,0.5\n2,{value},0.5\n")
        args = {"data": path, "solution": sol, "id": "id", "bootstrap": 0}
        cases.append((name, args, [name, "row 3", "'a'"]))
    bad_sol = write("sol_bad.csv", "id,y\n1,a\n2,zebra\n3,a\n")
    ok_sub = write("sub_ok.csv", "id,a,b\n1,0.5,0.5\n2,0.5,0.5\n3,0.5,0.5\n")
    cases.append(
        (
            "sol_bad.csv",
            {"data": ok_sub, "solution": bad_sol, "id": "id", "bootstrap": 0},
            ["sol_bad.csv", "row 2", "zebra"],
        )
    )
    return cases


def test_malformed_corpus_is_refused_with_positions(tmp_path: Path) -> None:
    cases = _corpus(tmp_path)
    assert len(cases) >= 190
    failures = []
    for case, args, needles in cases:
        kwargs = dict(args)
        data = kwargs.pop("data")
        try:
            score(data, **kwargs)
        except InputError as exc:
            message = str(exc)
            missing = [n for n in needles if n not in message]
            if missing or "\n" in message.strip():
                failures.append(f"{case}: {message!r} lacks {missing}")
        except Exception as exc:  # a foreign exception is a failure of the reader
            failures.append(f"{case}: {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{case}: accepted")
    assert not failures, "\n".join(failures)


def test_control_characters_in_a_label_are_escaped_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "esc.csv"
    path.write_text(_csv([("\x1b[2Jboom", "0.5", "0.5")]))
    with pytest.raises(InputError) as info:
        score(path, **TABLE)
    assert "\x1b" not in repr(str(info.value)).replace("\\x1b", "")


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
    with pytest.raises(InputError, match=r"one-hot solution .*scoring\.kaggle_score"):
        score(sub, solution=one_hot, id="p_id")


def test_boolean_labels_match_classes_false_and_true_or_0_and_1(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    p = rng.random(300)
    y = rng.random(300) < p
    want = sklearn_metrics.log_loss(y, np.c_[1 - p, p], labels=[False, True])
    named = pd.DataFrame({"y": y, "p_False": 1 - p, "p_True": p})
    pq.write_table(pa.Table.from_pandas(named), tmp_path / "b.parquet")
    for data in (named, pa.Table.from_pandas(named), tmp_path / "b.parquet"):
        report = score(data, target="y", proba="p_*", bootstrap=0)
        assert report.log_loss == pytest.approx(want, rel=1e-12)
        assert [c["label"] for c in report.per_class] == ["False", "True"]
    arrays = score(np.c_[1 - p, p], target=y, classes=[False, True], bootstrap=0)
    assert arrays.log_loss == pytest.approx(want, rel=1e-12)
    numbered = pd.DataFrame({"y": y, "p_0": 1 - p, "p_1": p})
    assert score(numbered, target="y", proba="p_*", bootstrap=0).log_loss == pytest.approx(want)
    with pytest.raises(InputError, match="label 'True' is not among the classes"):
        score(named.assign(y=np.where(y, True, False)), target="y", classes=["False", "yes"])
    with pytest.raises(InputError, match="label 'False' is not among the classes"):
        score(named, target="y", classes=["no", "yes"])


def test_an_unknown_label_says_how_to_name_classes_that_were_not_named(tmp_path: Path) -> None:
    """Classes taken from the column names (or the two defaults of one column) lead an unknown
    label's message to ``classes``; named classes do not."""
    multi = tmp_path / "multi.csv"
    multi.write_text("label,p_cat,p_dog\ncat,0.3,0.7\ndog,0.6,0.4\n")
    one = tmp_path / "one.csv"
    one.write_text("y,p\nyes,0.2\nno,0.4\n")
    taken = r"'p_dog'\); the classes were taken from the probability columns' names: name each"
    with pytest.raises(InputError, match=taken):
        score(multi, target="label")
    with pytest.raises(InputError, match=r"\('0', '1'\); one probability column \(or a vector\)"):
        score(one, target="y")
    # named classes get no hint, even when they are the column names or 0 and 1
    for named in (["a", "b"], ["p_cat", "p_dog"]):
        with pytest.raises(InputError, match=r"label 'cat' is not among the classes \([^)]*\)$"):
            score(multi, target="label", classes=named)
    with pytest.raises(InputError, match=r"label 'yes' is not among the classes \('0', '1'\)$"):
        score(one, target="y", classes=["0", "1"])
    p = np.array([[0.3, 0.7], [0.6, 0.4]])
    with pytest.raises(InputError, match=r"\('0', '1'\); the classes were taken from"):
        score(p, target=np.array(["cat", "dog"]))
    report = score(one, target="y", classes=["no", "yes"], bootstrap=0)
    assert report.n == 2
    assert report.log_loss == pytest.approx(-(np.log(0.2) + np.log(0.6)) / 2)


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


def test_good_variants_are_read(tmp_path: Path) -> None:
    """CRLF line ends, a UTF-8 byte-order mark, blank lines, quoted values and label columns
    of every integer width are all plain data."""
    base = _csv(_rows())
    variants = {
        "crlf.csv": base.replace("\n", "\r\n"),
        "bom.csv": "\ufeff" + base,
        "blank.csv": base.replace("\nb,", "\n\nb,"),
        "quoted.csv": base.replace("\na,", '\n"a",'),
    }
    (tmp_path / "base.csv").write_text(base)
    expected = score(tmp_path / "base.csv", **TABLE)
    for name, text in variants.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", newline="")
        report = score(path, **TABLE)
        assert report.n == len(ROWS), name
        assert report.log_loss == pytest.approx(expected.log_loss, rel=1e-15), name
    for typ in (pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(), pa.int8()):
        labels = pa.array([0, 1, 1], typ)
        table = pa.table({"y": labels, "p_0": [0.5, 0.2, 0.1], "p_1": [0.5, 0.8, 0.9]})
        pq.write_table(table, tmp_path / "ints.parquet")
        assert score(tmp_path / "ints.parquet", **TABLE).n == 3, typ


def _notes_csv(path: Path, n: int, bad_row: int, stray_quote: bool = False) -> None:
    rng = np.random.default_rng(3)
    lines = ["note,y,p_a,p_b"]
    for i in range(1, n + 1):
        note = f'"two\nlines, {i} ""q"""' if i % 7 == 0 else f"n{i}"
        if stray_quote and i == 11:
            note = 'ab"c'
        p = rng.random()
        first = "x" if i == bad_row else f"{p:.4f}"
        lines.append(f"{note},{'a' if p < 0.5 else 'b'},{first},{1 - p:.4f}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("stray_quote", [False, True])
def test_quoted_line_breaks_keep_row_numbers_under_dask(tmp_path: Path, stray_quote: bool) -> None:
    pytest.importorskip("distributed")
    path = tmp_path / "notes.csv"
    _notes_csv(path, 3000, bad_row=2345, stray_quote=stray_quote)
    messages = []
    for engine, extra in (("local", {}), ("dask", {"partitions": 7})):
        with pytest.raises(InputError) as info:
            score(path, engine=engine, **extra, **TABLE)  # type: ignore[arg-type]
        messages.append(str(info.value))
    assert "row 2345" in messages[0]
    assert messages[0] == messages[1]
    _notes_csv(path, 3000, bad_row=-1, stray_quote=stray_quote)
    local = score(path, **TABLE)
    on_dask = score(path, engine="dask", partitions=7, worst=5, **TABLE)
    assert on_dask.n == local.n == 3000
    assert on_dask.log_loss == pytest.approx(local.log_loss, rel=1e-13)
    assert [w["row"] for w in on_dask.worst] == [w["row"] for w in local.worst][:5]


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


def test_urls_that_cannot_be_read_are_refused_clearly(memory_files) -> None:
    local, url, fs, root = memory_files
    kw = dict(target="y", proba="p_*")
    with fs.open(f"{root}/a.npy", "wb") as fh:
        fh.write(b"\x93NUMPY")
    with pytest.raises(InputError, match=r"a\.parquet: no such file"):
        score(f"{url}/missing/a.parquet", **kw)
    with pytest.raises(InputError, match=r"nosuchscheme://x/a\.parquet: cannot open"):
        score("nosuchscheme://x/a.parquet", **kw)
    with pytest.raises(InputError, match="read as CSV or Parquet"):
        score(f"{url}/a.npy", **kw)
    with pytest.raises(ValueError, match="engine='local'"):
        score(f"{url}/a.parquet", engine="dask", **kw)
    with pytest.raises(ValueError, match="solution must be a local file or a file:// URL"):
        score(local, solution=f"{url}/a.csv", id="id", target="y")
    with pytest.raises(ValueError, match=r"file:///path"):
        score("file://otherhost/a.parquet", **kw)


def test_the_cli_reads_urls(memory_files, capsys) -> None:
    from crossentropy.cli import main

    _, url, _, _ = memory_files
    assert main(["score", f"{url}/a.csv", "--target", "y", "--proba-cols", "p_*", "--json"]) == 0
    assert f"{url}/a.csv" in capsys.readouterr().out
    assert main(["score", f"{url}/none.csv", "--target", "y"]) == 2
    assert capsys.readouterr().err.strip().endswith("none.csv: no such file")


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


@pytest.mark.parametrize(
    "sol_ids",
    [
        ["3", "-5", "10", "0", "7"],
        ["3", "-5", "010", "0", "7"],
        ["3", "b", "10", "0", "7"],
        [str(2**63 - 1), str(-(2**63)), "1000000000000000000", "-10", "7"],  # widths at the edges
        ["1000000", "1000001", "1000002", "3", "7"],
    ],
)
def test_text_ids_join_by_their_text_through_integer_keys_or_not(
    tmp_path: Path, sol_ids: list[str]
) -> None:
    """Text ids that all write integers canonically are looked up as integers; the join is by
    text whatever the ids: a submission id written otherwise ("07" for "7") is not found."""
    y = [0, 1, 1, 0, 1]
    p1 = [0.2, 0.7, 0.6, 0.4, 0.9]
    (tmp_path / "sol.csv").write_text(
        "id,y\n" + "".join(f"{i},{t}\n" for i, t in zip(sol_ids, y, strict=True))
    )
    order = [4, 2, 0, 3, 1]  # the first row is id "7"
    lines = [f"{sol_ids[k]},{1 - p1[k]},{p1[k]}\n" for k in order]
    rows = "".join(lines)
    (tmp_path / "sub.csv").write_text("id,p_0,p_1\n" + rows)
    kw = dict(solution=tmp_path / "sol.csv", id="id", target="y", classes=["0", "1"], bootstrap=0)
    got = score(tmp_path / "sub.csv", proba=["p_0", "p_1"], **kw).log_loss
    expected = -np.mean(np.log([q if t else 1 - q for q, t in zip(p1, y, strict=True)]))
    assert got == pytest.approx(expected, rel=1e-12)
    for other in ("07", "+7", "7.0", "0x7"):  # other writings of the integer 7
        (tmp_path / "bad.csv").write_text("id,p_0,p_1\n" + other + rows[1:])
        with pytest.raises(
            InputError, match=rf"row 1, column 'id': id '{re.escape(other)}' is not in the solution"
        ):
            score(tmp_path / "bad.csv", proba=["p_0", "p_1"], **kw)


def test_a_repeated_id_is_two_rows_in_order_and_refused_out_of_order(tmp_path: Path) -> None:
    """Files in the same order are joined row by row (bounded memory): an id repeated at the
    same rows of both is two rows. Out of order, the solution's id table refuses it."""
    (tmp_path / "sol.csv").write_text("id,y\n1,1\n2,0\n2,1\n3,1\n")
    (tmp_path / "sub.csv").write_text("id,p_0,p_1\n1,.2,.8\n2,.6,.4\n2,.3,.7\n3,.1,.9\n")
    (tmp_path / "shuffled.csv").write_text("id,p_0,p_1\n3,.1,.9\n2,.6,.4\n2,.3,.7\n1,.2,.8\n")
    kw = dict(solution=tmp_path / "sol.csv", id="id", target="y", classes=["0", "1"], bootstrap=0)
    r = score(tmp_path / "sub.csv", proba=["p_0", "p_1"], **kw)
    assert r.n == 4
    assert r.log_loss == pytest.approx(-np.mean(np.log([0.8, 0.6, 0.7, 0.9])), rel=1e-12)
    with pytest.raises(InputError, match=r"sol.csv, row 3, column 'id': id '2' appears twice"):
        score(tmp_path / "shuffled.csv", proba=["p_0", "p_1"], **kw)


def test_a_hexadecimal_id_as_long_as_a_decimal_one_is_not_that_id(tmp_path: Path) -> None:
    """pyarrow reads "0xF4240" as 1000000, and both texts have 7 bytes: the join is by text."""
    (tmp_path / "sol.csv").write_text("id,y\n1000000,1\n1000001,0\n1000002,1\n")
    (tmp_path / "sub.csv").write_text("id,p_0,p_1\n1000001,.8,.2\n0xF4240,.1,.9\n1000002,.3,.7\n")
    kw = dict(solution=tmp_path / "sol.csv", id="id", target="y", classes=["0", "1"], bootstrap=0)
    with pytest.raises(
        InputError, match=r"row 2, column 'id': id '0xF4240' is not in the solution"
    ):
        score(tmp_path / "sub.csv", proba=["p_0", "p_1"], **kw)


def _write_ids_table(path: Path, fmt: str, ids: list[int], cols: dict[str, Any]) -> Path:
    """A table of integer ``ids`` and ``cols``: a CSV, or a Parquet file with an int64 id."""
    if fmt == "csv":
        lines = zip(
            *([str(i) for i in ids], *[[str(v) for v in c] for c in cols.values()]), strict=True
        )
        path.write_text(",".join(["id", *cols]) + "\n" + "".join(",".join(r) + "\n" for r in lines))
    else:
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path = path.with_suffix(".parquet")
        table = {"id": pa.array(ids, pa.int64()), **{k: list(v) for k, v in cols.items()}}
        pq.write_table(pa.table(table), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("base", "stranger"),
    [(100, 150), (100, 99), (100, 1000), (2**63 - 200, -(2**63))],
    ids=["hole", "below", "above", "int64-extremes"],
)
def test_consecutive_integer_ids_join_by_position_and_refuse_strangers(
    tmp_path: Path, base: int, stranger: int, fmt: str
) -> None:
    """Integer ids spanning at most twice their count (text ids writing integers, or an integer
    column) are looked up by indexing: a shuffled submission joins exactly, and an id in a
    hole of the range, below it, above it, or at the other end of int64 (no overflow) is
    refused, naming its row."""
    ids = [base + k for k in range(100) if base + k != 150]
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, len(ids))
    q = rng.uniform(0.05, 0.95, len(ids))
    sol = _write_ids_table(tmp_path / "sol.csv", fmt, ids, {"y": y.tolist()})
    order = rng.permutation(len(ids))
    sub_ids = [ids[k] for k in order]
    cols = {"p_0": (1 - q[order]).tolist(), "p_1": q[order].tolist()}
    sub = _write_ids_table(tmp_path / "sub.csv", fmt, sub_ids, cols)
    kw = dict(solution=sol, id="id", target="y", classes=["0", "1"], bootstrap=0)
    got = score(sub, proba=["p_0", "p_1"], **kw).log_loss
    expected = -np.mean(np.log(np.where(y == 1, q, 1 - q)))
    assert got == pytest.approx(expected, rel=1e-12)
    sub_ids[7] = stranger
    bad = _write_ids_table(tmp_path / "bad.csv", fmt, sub_ids, cols)
    shown = f"'{stranger}'" if fmt == "csv" else str(stranger)  # text, or an integer
    with pytest.raises(InputError, match=rf"row 8, column 'id': id {shown} is not in the solution"):
        score(bad, proba=["p_0", "p_1"], **kw)


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
    for cell, message in [("00", "label '00' is not among the classes"), ("x", "label 'x'")]:
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
def test_probabilities_are_checked_by_the_metrics_rule_and_named_in_the_file(
    tmp_path: Path, engine: str
) -> None:
    """One rule (metrics' first entry, row-major, that is not a probability) named by file,
    row and column: for a binary file the value is the file's own, not 1 - p."""
    (tmp_path / "bin.csv").write_text("y,p\n0,0.2\n1,0.7\n1,1.5\n")
    kw = dict(target="y", proba=["p"], classes=["0", "1"], engine=engine)
    with pytest.raises(InputError, match=r"row 3, column 'p': probability 1\.5 is greater than 1"):
        score(tmp_path / "bin.csv", **kw)
    (tmp_path / "two.csv").write_text("y,p_a,p_b\na,0.2,0.8\nb,-0.5,nan\nb,nan,0.5\n")
    with pytest.raises(InputError, match=r"row 2, column 'p_a': probability -0\.5 is negative"):
        score(tmp_path / "two.csv", target="y", proba="p_*", engine=engine)
