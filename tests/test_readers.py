"""Reading inputs into validated batches (scoring/_readers.py), held against a corpus of about
two hundred malformed files: every one is refused with an ``InputError`` that names the file,
and the row and column where there is one; none raises anything else, none hangs. Also label
types of Parquet, non-NumPy bytes, escaped control characters, and the probabilities checked by
the rule of ``metrics``."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _helpers import SCORE_TABLE
from crossentropy.scoring import InputError, score

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


ROWS = [("a", 0.25, 0.75), ("b", 0.5, 0.5), ("a", 0.9, 0.1), ("b", 0.3, 0.7), ("a", 0.6, 0.4)]


TABLE = SCORE_TABLE


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
    "0.1_0",  # Python's float reads these three; pyarrow does not
    "１",
    "٠.٥",
    " ",
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
        "pq_binary_label.parquet": (
            pa.array([b"a", b"\xff", b"a", b"b"]),
            half,
            ["row 2", "UTF-8"],
        ),
        # classes 'a', 'b': the first label is not among them (by text, as every uint64)
        "pq_u64_label.parquet": (pa.array([0, 1, 2**63 + 1, 0], pa.uint64()), half, ["row 1"]),
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


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_labels_writing_an_integer_match_integer_classes_in_every_format(
    tmp_path: Path, engine: str
) -> None:
    """Where every class is an integer, a label that writes one matches it by value: the text
    "2.0" of a CSV as the float 2.0 of a Parquet file or a DataFrame does; other numbers and
    texts are refused at their row."""
    pd = pytest.importorskip("pandas")
    if engine == "dask":
        pytest.importorskip("dask")
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), 40)
    y = rng.integers(0, 3, 40)
    want = -np.log(p[np.arange(40), y]).mean()
    cols = {f"p_{j}": p[:, j] for j in range(3)}
    writings = {
        "int": [str(v) for v in y],
        "float": [f"{v}.0" for v in y],
        "mixed": [
            f" {v}.0 " if i % 3 == 0 else (f"+{v}" if i % 3 == 1 else str(v))
            for i, v in enumerate(y)
        ],
    }
    kw: dict[str, object] = dict(target="y", proba="p_*", bootstrap=0, engine=engine)
    for name, labels in writings.items():
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"y": labels, **cols}).to_csv(path, index=False)
        assert score(path, **kw).log_loss == pytest.approx(want, rel=1e-12), name
    floats = pd.DataFrame({"y": y.astype(np.float64), **cols})
    floats.to_parquet(tmp_path / "floats.parquet")
    for data in (tmp_path / "floats.parquet", floats):
        assert score(data, **kw).log_loss == pytest.approx(want, rel=1e-12)
    bad_labels = ("1.5", "3.0", "x", "1_0", "1e0", "1.0000000000000001", "+-1", "９")
    for bad, shown in ((b, re.escape(repr(b))) for b in bad_labels):
        labels = writings["float"].copy()
        labels[7] = bad
        pd.DataFrame({"y": labels, **cols}).to_csv(tmp_path / "bad.csv", index=False)
        with pytest.raises(InputError, match=rf"row 8, column 'y': label {shown} is not among"):
            score(tmp_path / "bad.csv", **kw)
    named = pd.DataFrame({"y": writings["float"], **cols})
    with pytest.raises(InputError, match=r"row 1, column 'y': label '\d\.0' is not among"):
        score(named, target="y", proba="p_*", classes=["0", "1", "two"], bootstrap=0)
    # integers beyond float64's 53 bits stay exact; True and False as pandas writes them
    big = [str(2**53 + k) for k in range(3)]
    pd.DataFrame({"y": [f"{big[v]}.0" for v in y], **cols}).to_csv(tmp_path / "big.csv")
    got = score(tmp_path / "big.csv", target="y", proba="p_*", classes=big, bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-12)
    hit = y == 1
    two = pd.DataFrame({"y": hit, "p": p[:, 1] / (p[:, 0] + p[:, 1])})
    two.to_csv(tmp_path / "bool.csv", index=False)
    assert "True" in (tmp_path / "bool.csv").read_text()
    got = score(tmp_path / "bool.csv", target="y", proba="p", bootstrap=0, engine=engine)
    assert got.log_loss == pytest.approx(score(two, target="y", proba="p", bootstrap=0).log_loss)


def test_an_unknown_label_says_how_to_name_classes_that_were_not_named(tmp_path: Path) -> None:
    """Classes taken from the column names (or the two defaults of one column) lead an unknown
    label's message to ``classes``; named classes do not."""
    multi = tmp_path / "multi.csv"
    multi.write_text("label,p_cat,p_dog\ncat,0.3,0.7\ndog,0.6,0.4\n")
    one = tmp_path / "one.csv"
    one.write_text("y,p\nyes,0.2\nno,0.4\n")
    taken = r"'p_dog'\); the classes were taken from the probability columns' names: proba='p_\*' "
    taken += r"\(--proba-cols 'p_\*'\) takes what follows 'p_' as the class, or name each"
    with pytest.raises(InputError, match=taken):
        score(multi, target="label")
    plain = tmp_path / "plain.csv"  # no common prefix to take off
    plain.write_text("label,cat_p,dog_p\ncat,0.3,0.7\ndog,0.6,0.4\n")
    taken = r"'dog_p'\); the classes were taken from the probability columns' names: name each"
    with pytest.raises(InputError, match=taken):
        score(plain, target="label")
    with pytest.raises(InputError, match=r"\('0', '1'\); one probability column \(or a vector\)"):
        score(one, target="y")
    # named classes get no hint, even when they are the column names or 0 and 1
    for named in (["a", "b"], ["p_cat", "p_dog"]):
        with pytest.raises(InputError, match=r"label 'cat' is not among the classes \([^)]*\)$"):
            score(multi, target="label", classes=named)
    with pytest.raises(InputError, match=r"label 'yes' is not among the classes \('0', '1'\)$"):
        score(one, target="y", classes=["0", "1"])
    p = np.array([[0.3, 0.7], [0.6, 0.4]])
    # text labels name an array's classes when they are as many as its columns (sorted, as
    # scikit-learn); one label for two columns cannot
    with pytest.raises(InputError, match=r"\('0', '1'\); the classes are the probability "):
        score(p, target=np.array(["cat", "cat"]))
    assert score(p, target=np.array(["cat", "dog"]), bootstrap=0).input["classes"] == [
        "cat",
        "dog",
    ]
    report = score(one, target="y", classes=["no", "yes"], bootstrap=0)
    assert report.n == 2
    assert report.log_loss == pytest.approx(-(np.log(0.2) + np.log(0.6)) / 2)


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


def test_a_csv_of_many_blocks_is_read_in_batches_of_batch_rows(tmp_path: Path) -> None:
    """A CSV of several of pyarrow's blocks (1 MiB) is scored the same in batches of any size
    (the blocks are joined into batches of ``batch_rows`` rows), and a bad cell past the
    second block is named by its row."""
    rng = np.random.default_rng(12)
    n = 60_000  # about 3.5 MiB
    p = rng.dirichlet(np.ones(4), n)
    y = rng.integers(0, 4, n)
    lines = ["y," + ",".join(f"p_{j}" for j in range(4))]
    lines += [f"{y[i]}," + ",".join(f"{v:.17g}" for v in p[i]) for i in range(n)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 3 << 20
    losses = -np.log(p[np.arange(n), y])
    worst = list(np.argsort(-losses)[:10] + 1)
    for batch_rows in (1000, 7777, 65536, 200_000):
        report = score(path, target="y", proba="p_*", bootstrap=0, batch_rows=batch_rows)
        assert report.n == n
        assert report.log_loss == pytest.approx(losses.mean(), rel=1e-12), batch_rows
        assert [w["row"] for w in report.worst] == worst
    bad_row = 50_001
    lines[bad_row] = lines[bad_row].replace(",", ",-", 1)
    path.write_text("\n".join(lines) + "\n")
    for batch_rows in (1000, 65536):
        with pytest.raises(InputError, match=rf"row {bad_row}, column 'p_0'"):
            score(path, target="y", proba="p_*", batch_rows=batch_rows)


def test_a_row_longer_than_the_csv_blocks_is_read_on_in_larger_blocks(tmp_path: Path) -> None:
    """Rows before and after a 5 MiB cell (longer than two of the first 1 MiB blocks) keep
    their numbers and values: the reading goes on from the next row with larger blocks."""
    rng = np.random.default_rng(13)
    n, long_row = 40_000, 30_000
    p = rng.dirichlet(np.ones(2), n)
    y = rng.integers(0, 2, n)
    notes = [f"n{i}" for i in range(n)]
    notes[long_row - 1] = "x" * (5 << 20)
    lines = ["note,y,p_0,p_1"]
    lines += [f"{notes[i]},{y[i]},{p[i, 0]:.17g},{p[i, 1]:.17g}" for i in range(n)]
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    losses = -np.log(p[np.arange(n), y])
    report = score(path, target="y", proba="p_*", bootstrap=0, batch_rows=4096)
    assert report.n == n
    assert report.log_loss == pytest.approx(losses.mean(), rel=1e-12)
    assert [w["row"] for w in report.worst] == list(np.argsort(-losses)[:10] + 1)
    lines[35_000] = lines[35_000].replace(f",{y[34_999]},", ",7,", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"row 35000, column 'y': label '7'"):
        score(path, target="y", proba="p_*")


def test_a_row_longer_than_two_of_the_largest_blocks_stops_the_reading(tmp_path: Path) -> None:
    """A row longer than two of the largest CSV blocks (64 MiB each: the memory bound) stops
    the reading with a message that says so (a 130 MiB cell here)."""
    path = tmp_path / "long.csv"
    with path.open("wb") as fh:
        # a quote inside a field is text (it opens no quoted field); a blank line is no row
        fh.write(b'note,y,p_0,p_1\n12" tv,0,0.5,0.5\n\n')
        chunk = b"x" * (1 << 20)
        for _ in range(130):
            fh.write(chunk)
        fh.write(b",1,0.5,0.5\n")
    with pytest.raises(InputError, match="row 2: a row is longer than two CSV blocks of 64 MiB"):
        score(path, target="y", proba="p_*", bootstrap=0)


def test_a_row_that_never_ends_is_named(tmp_path: Path) -> None:
    """An unclosed quote makes the rest of the file one row: the reading stops, naming the
    row where it began (found without reading past the limit)."""
    path = tmp_path / "open.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(b'y,p_0,p_1\n0,0.5,0.5\n1,0.5,0.5\r\n"0,0.5,0.5\n')
        row = b"1,0.25,0.75\n" * (1 << 16)
        for _ in range(200):  # 150 MiB
            fh.write(row)
    with pytest.raises(InputError, match="row 3: a row is longer than two CSV blocks"):
        score(path, target="y", proba="p_*", bootstrap=0)


def test_a_ragged_row_after_a_long_field_is_named(tmp_path: Path) -> None:
    """A row with a field too many is found and named even when an earlier field is longer
    than the 128 KiB Python's csv module reads by default."""
    lines = ["note,y,p_a,p_b"]
    lines += [f"{'n' * (200_000 if i == 3 else 3)},a,0.25,0.75" for i in range(1, 2000)]
    lines[1500] = "n,a,0.25,0.75,extra"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    limit = csv.field_size_limit()
    with pytest.raises(InputError, match=r"ragged\.csv, row 1500: expected 4 fields, found 5"):
        score(path, target="y", proba="p_*")
    assert csv.field_size_limit() == limit


def test_the_csv_field_limit_is_restored_after_workers_search_at_once(tmp_path: Path) -> None:
    """Dask's in-process workers each search their piece for a ragged row at the same time;
    the process's csv field limit is left as it was."""
    pytest.importorskip("distributed")
    lines = ["note,y,p_a,p_b"]
    for i in range(1, 40_000):
        extra = ",x" if i % 5000 == 0 else ""
        lines.append(f"{'n' * (200_000 if i == 4800 else 3)},a,0.25,0.75{extra}")
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    limit = csv.field_size_limit()
    for _ in range(3):
        with pytest.raises(InputError, match=r"row 5000: expected 4 fields, found 5"):
            score(path, target="y", proba="p_*", engine="dask", partitions=8)
        assert csv.field_size_limit() == limit


def test_text_views_are_read_as_text() -> None:
    """Columns of pyarrow's string_view (polars' newest Arrow output): labels, ids and
    probabilities written as text are read as from plain strings."""
    plain = pa.table(
        {
            "id": ["a", "b", "c"],
            "y": ["x", "z", "x"],
            "p_x": ["0.9", "0.3", "0.6"],
            "p_z": [0.1, 0.7, 0.4],
        }
    )
    views = pa.table(
        {
            n: (c.cast(pa.string_view()) if pa.types.is_string(c.type) else c)
            for n, c in zip(plain.column_names, plain.columns, strict=True)
        }
    )
    kw: dict[str, object] = dict(target="y", proba="p_*", id="id", bootstrap=0)
    want, got = score(plain, **kw), score(views, **kw)
    assert got.log_loss == want.log_loss
    assert [w["id"] for w in got.worst] == [w["id"] for w in want.worst]


def _wide_parquet(path: Path, rows: int, classes: int, row_group_size: int) -> tuple[Any, Any]:
    """Probabilities with distinct values (each column a dictionary page of 8 bytes a row, as
    pyarrow writes them by default), and their labels."""
    rng = np.random.default_rng(12)
    p = rng.dirichlet(np.ones(classes), size=rows)
    y = rng.integers(0, classes, rows)
    table = pa.table({"y": y, **{f"p_{j}": p[:, j] for j in range(classes)}})
    pq.write_table(table, path, row_group_size=row_group_size)
    return y, p


def test_a_parquet_file_too_wide_and_long_to_read_in_bounds_says_how_to_write_it(
    tmp_path: Path, monkeypatch
) -> None:
    """Each column's dictionary and page are held while a row group is read (1,000 columns of
    30,000 rows took 1.1 GB): such a file is refused before it is read, with a row-group size
    that reads; written so, it scores as metrics.log_loss does."""
    from crossentropy import metrics
    from crossentropy.scoring import _readers

    monkeypatch.setattr(_readers, "PARQUET_BUFFERS", 1 << 20)
    monkeypatch.setattr(_readers, "PARQUET_READ_BUDGET", 12 << 20)
    y, p = _wide_parquet(tmp_path / "big.parquet", 20_000, 40, 20_000)
    with pytest.raises(InputError) as err:
        score(str(tmp_path / "big.parquet"), target="y", proba="p_*")
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'big.parquet'}: row group 0 (20,000 rows × 41 columns)")
    assert "inside pyarrow" in text
    assert "over this reader's 12 MiB" in text
    fit = int(re.search(r"row_group_size=(\d+)\)$", text).group(1))  # type: ignore[union-attr]
    assert 1000 < fit < 20_000  # rows for half the budget, fewer than the group's
    pq.write_table(
        pq.read_table(tmp_path / "big.parquet"), tmp_path / "ok.parquet", row_group_size=fit
    )
    report = score(str(tmp_path / "ok.parquet"), target="y", proba="p_*", bootstrap=0)
    want = metrics.log_loss(y, p, labels=np.arange(40))
    assert report.log_loss == pytest.approx(want, rel=1e-12)
    # a column left out of the reading is left out of the estimate
    monkeypatch.setattr(_readers, "PARQUET_READ_BUDGET", 200 << 20)
    _wide_parquet(tmp_path / "narrow.parquet", 20_000, 2, 20_000)
    assert score(str(tmp_path / "narrow.parquet"), target="y", proba="p_*").n == 20_000


def test_the_estimate_of_a_parquet_row_group_follows_its_dictionaries(tmp_path: Path) -> None:
    """Dictionaries of 8 bytes a row at 2.5 times, a data page of half a MiB at most, and the
    buffers: distinct floats cost about 20 bytes a row a column, rounded ones (a small
    dictionary) a few."""
    from crossentropy.scoring._readers import parquet_buffer, parquet_read_bytes

    _wide_parquet(tmp_path / "a.parquet", 20_000, 20, 20_000)
    meta = pq.ParquetFile(tmp_path / "a.parquet").metadata
    cols = [f"p_{j}" for j in range(20)]
    per_column = (parquet_read_bytes(meta, cols, 0) - 20 * parquet_buffer(20)) / 20
    assert 19 * 20_000 < per_column < 22 * 20_000
    rounded = pa.table(
        {c: np.round(pq.read_table(tmp_path / "a.parquet")[c].to_numpy(), 2) for c in cols}
    )
    pq.write_table(rounded, tmp_path / "r.parquet")
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    assert (parquet_read_bytes(meta, cols, 0) - 20 * parquet_buffer(20)) / 20 < 2 * 20_000
    assert parquet_buffer(10) == 4 << 20
    assert parquet_buffer(2000) == 64 << 10


def test_float_class_names_match_labels_by_value(tmp_path: Path) -> None:
    """Classes named as floats write them (``"0.0"``, ``"1.0"``: ``str`` of scikit-learn's
    ``classes_`` after fitting float labels): labels 0.0 (Parquet floats), 0 (integers) and
    ``"0"`` or ``"1.0"`` (text) are those classes, as scikit-learn's log loss takes them."""
    pd = pytest.importorskip("pandas")
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=60)
    y = rng.integers(0, 3, size=60).astype(float)
    ref = sk.log_loss(y, p, labels=[0.0, 1.0, 2.0])
    frame = pd.DataFrame(p, columns=[0.0, 1.0, 2.0])
    for labels in (y, y.astype(np.int64), y.astype(np.int64).astype(str), y.astype(str)):
        got = score(frame.assign(y=labels), target="y")
        assert got.log_loss == pytest.approx(ref, rel=1e-13)
    frame.assign(y=y).rename(columns=str).to_parquet(tmp_path / "f.parquet")
    assert score(tmp_path / "f.parquet", target="y").log_loss == pytest.approx(ref, rel=1e-13)
    with pytest.raises(InputError, match=r"label '2\.5' is not among the classes"):
        score(frame.assign(y=np.where(y == 2, 2.5, y)), target="y")


def test_npz_integer_labels_with_class_names_of_both_kinds_are_refused(tmp_path: Path):
    """The .npz rule as the in-memory one: integer labels with names of integers and of text
    are refused naming the file and column (they were positions)."""
    path = tmp_path / "m.npz"
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    np.savez(path, y_true=np.array([1, 0, 1]), y_proba=p, classes=np.array(["x", "0"]))
    with pytest.raises(InputError, match=r"column 'y_true': integer labels with class names"):
        score(path, bootstrap=0)
