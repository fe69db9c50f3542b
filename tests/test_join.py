"""Joining a solution and a submission by id (scoring/_join.py): text ids through integer
keys or by their text, repeated and unknown ids, consecutive integer ids through the position
table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossentropy.scoring import InputError, score

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


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


@pytest.mark.parametrize(("written", "meant"), [("-0", "0"), ("-07", "-7"), ("00", "0")])
def test_a_signed_or_zero_padded_writing_is_another_id(
    tmp_path: Path, written: str, meant: str
) -> None:
    """The id "-0" is not "0", nor "-07" "-7": integer keys stand for the text only where every id
    is written canonically."""
    (tmp_path / "sol.csv").write_text("id,y\n0,1\n-7,0\n5,1\n")
    rows = {"0": ".2,.8", "-7": ".6,.4", "5": ".1,.9"}
    body = "".join(f"{written if i == meant else i},{rows[i]}\n" for i in ("5", "-7", "0"))
    (tmp_path / "sub.csv").write_text("id,p_0,p_1\n" + body)
    row = ["5", "-7", "0"].index(meant) + 1
    with pytest.raises(
        InputError, match=rf"row {row}, column 'id': id '{written}' is not in the solution"
    ):
        score(
            tmp_path / "sub.csv",
            solution=tmp_path / "sol.csv",
            id="id",
            target="y",
            classes=["0", "1"],
        )


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


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_submission_of_no_rows_is_named_as_such(tmp_path: Path, engine: str) -> None:
    """A submission with its header alone: the solution's first id has no row there, which
    holds none (the error named the solution's id as if one row were missing); one row
    missing is named as before."""
    (tmp_path / "sol.csv").write_text("id,y\n1,a\n2,b\n")
    (tmp_path / "empty.csv").write_text("id,a,b\n")
    (tmp_path / "one.csv").write_text("id,a,b\n1,0.4,0.6\n")
    kw = {"solution": tmp_path / "sol.csv", "id": "id", "bootstrap": 0, "engine": engine}
    with pytest.raises(InputError, match=r"id '1' has no row in the submission .*empty\.csv, "):
        score(tmp_path / "empty.csv", **kw)
    with pytest.raises(InputError, match=r"id '2' has no row in the submission .*one\.csv$"):
        score(tmp_path / "one.csv", **kw)


@pytest.mark.parametrize(
    ("copies", "expected_row"),
    [
        ({5: [9]}, 10),  # the second of two in one batch of 16 rows
        ({5: [9, 12]}, 10),  # three in one batch: the second names the row
        ({3: [40]}, 41),  # in a later batch
        ({30: [31], 2: [50]}, 32),  # two repeats: the first in file order
    ],
)
def test_a_submission_id_used_twice_names_its_second_row(
    tmp_path: Path, copies: dict[int, list[int]], expected_row: int
) -> None:
    """Through the solution's id table (a shuffled submission, batches of 16 rows), an id used
    twice is refused at its second row, within a batch or across batches."""
    rng = np.random.default_rng(7)
    n = 64
    (tmp_path / "sol.csv").write_text("id,y\n" + "".join(f"{i},{i % 2}\n" for i in range(n)))
    ids = list(rng.permutation(n))
    for source, targets in copies.items():
        for t in targets:  # row t (0-based) repeats the id at row ``source``
            ids[t] = ids[source]
    rows = "".join(f"{i},0.4,0.6\n" for i in ids)
    (tmp_path / "sub.csv").write_text("id,p_0,p_1\n" + rows)
    twice = f"id '{ids[expected_row - 1]}' appears twice"
    with pytest.raises(InputError, match=rf"sub.csv, row {expected_row}, column 'id': {twice}"):
        score(
            tmp_path / "sub.csv",
            solution=tmp_path / "sol.csv",
            id="id",
            target="y",
            proba="p_*",
            batch_rows=16,
        )


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


@pytest.mark.parametrize("ids", ["int", "text"])
def test_a_solution_in_id_order_or_not_gives_the_same_join(tmp_path: Path, ids: str) -> None:
    """The solution's id table is built without sorting when its ids come in order, and by
    sorting otherwise: the same scores, splits, worst rows with their ids and solution rows,
    and the same error for an id the submission lacks."""
    rng = np.random.default_rng(4)
    n = 500
    id_values = np.arange(10, 10 + n) if ids == "int" else np.array([f"r{i:04d}" for i in range(n)])
    p = rng.dirichlet(np.ones(3), n)
    y = rng.integers(0, 3, n)
    usage = np.where(rng.random(n) < 0.3, "Public", "Private")
    sol = pa.table({"id": id_values, "y": y, "Usage": usage})
    sub = pa.table({"id": id_values, **{f"p_{j}": p[:, j] for j in range(3)}})
    shuffle = rng.permutation(n)
    pq.write_table(sub.take(shuffle), tmp_path / "sub.parquet")
    reports = []
    for name, table in (("sorted", sol), ("shuffled", sol.take(rng.permutation(n)))):
        pq.write_table(table, tmp_path / f"{name}.parquet")
        report = score(
            tmp_path / "sub.parquet",
            solution=tmp_path / f"{name}.parquet",
            id="id",
            target="y",
            proba="p_*",
            split="Usage",
            bootstrap=0,
            batch_rows=64,
        )
        reports.append((table, report))
    (sorted_sol, first), (_, second) = reports
    assert first.log_loss == pytest.approx(-np.log(p[np.arange(n), y]).mean(), rel=1e-12)
    assert second.log_loss == pytest.approx(first.log_loss, rel=1e-12)
    assert second.splits == first.splits
    assert [w["id"] for w in second.worst] == [w["id"] for w in first.worst]
    # each worst row's id is that of its submission row
    sub_ids = id_values[shuffle]
    for report in (first, second):
        for w in report.worst:
            assert w["id"] == sub_ids[w["row"] - 1]
    missing = sub.take(shuffle[:-1])  # the last row of the shuffled submission dropped
    pq.write_table(missing, tmp_path / "short.parquet")
    lost = sub_ids[-1]
    for table, _ in reports:
        row = int(np.flatnonzero(table.column("id").to_numpy(zero_copy_only=False) == lost)[0]) + 1
        name = "sorted" if table is sorted_sol else "shuffled"
        with pytest.raises(InputError, match=rf"{name}\.parquet, row {row}, column 'id': id"):
            score(
                tmp_path / "short.parquet",
                solution=tmp_path / f"{name}.parquet",
                id="id",
                target="y",
                proba="p_*",
            )


@pytest.mark.parametrize(
    "extra",
    [
        ["é-ü-中"],  # UTF-8: multi-byte characters sort by code point as bytes
        ["z" * 200, "L" * 70, "M" * 90],  # longer than the fixed width: Python strings
        ["nul\x00", "x\x00a", "x\x00b"],  # NULs, which fixed-width bytes drop at the end
    ],
    ids=["utf8", "long", "nul"],
)
@pytest.mark.parametrize("batch_rows", [7, 65536])
def test_text_ids_of_any_length_join_exactly(
    tmp_path: Path, extra: list[str], batch_rows: int
) -> None:
    """Text ids joined through a sorted index: short ASCII ids and unusual ones, in batches of
    any size; submission ids that only a truncation or a dropped NUL would match are
    unknown ids."""
    rng = np.random.default_rng(6)
    ids = [f"id{i:03d}" for i in range(100)] + extra
    n = len(ids)
    p = rng.dirichlet(np.ones(2), n)
    y = rng.integers(0, 2, n)
    order = rng.permutation(n)
    sol = pa.table({"id": [ids[i] for i in order], "y": y[order]})
    pq.write_table(sol, tmp_path / "sol.parquet")
    shuffle = rng.permutation(n)
    sub = pa.table({"id": [ids[i] for i in shuffle], "p_0": p[shuffle, 0], "p_1": p[shuffle, 1]})
    pq.write_table(sub, tmp_path / "sub.parquet")
    kw: dict[str, Any] = {
        "id": "id",
        "target": "y",
        "proba": "p_*",
        "bootstrap": 0,
        "batch_rows": batch_rows,
    }
    losses = -np.log(p[np.arange(n), y])
    engines = ["local", "dask"] if batch_rows == 7 else ["local"]
    for engine in engines:
        report = score(
            tmp_path / "sub.parquet", solution=tmp_path / "sol.parquet", engine=engine, **kw
        )
        assert report.log_loss == pytest.approx(losses.mean(), rel=1e-12), engine
        assert {w["id"] for w in report.worst} == {ids[i] for i in np.argsort(-losses)[:10]}
    # ids that the solution's would match if truncated, without a NUL or up to one
    for stranger in ("id000" + "q" * 100, "id000\x00", extra[-1][:-1] + "?"):
        names = [stranger if i == shuffle[5] else ids[i] for i in shuffle]
        bad = sub.set_column(0, "id", pa.array(names))
        pq.write_table(bad, tmp_path / "bad.parquet")
        with pytest.raises(InputError, match=r"bad\.parquet, row 6, column 'id': id .* is not in"):
            score(tmp_path / "bad.parquet", solution=tmp_path / "sol.parquet", **kw)


def test_a_megabyte_id_names_its_row_without_widening_the_batch(tmp_path: Path) -> None:
    """A 4 MiB id in a table (ids only name the worst rows) and in a pair: scored in bounded
    memory (a fixed-width copy of the batch would take 4 MiB a row)."""
    n = 5000
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(2), n)
    y = rng.integers(0, 2, n)
    ids = [f"r{i}" for i in range(n)]
    worst = int(np.argmax(-np.log(p[np.arange(n), y])))
    ids[worst] = "w" * (4 << 20)
    table = pa.table({"id": ids, "y": y, "p_0": p[:, 0], "p_1": p[:, 1]})
    pq.write_table(table, tmp_path / "t.parquet")
    report = score(tmp_path / "t.parquet", target="y", proba="p_*", id="id", bootstrap=0)
    assert report.worst[0]["row"] == worst + 1
    assert report.worst[0]["id"] == ids[worst]
    pq.write_table(table.select(["id", "y"]).take(rng.permutation(n)), tmp_path / "sol.parquet")
    pq.write_table(table.select(["id", "p_0", "p_1"]), tmp_path / "sub.parquet")
    pair = score(
        tmp_path / "sub.parquet",
        solution=tmp_path / "sol.parquet",
        id="id",
        target="y",
        proba="p_*",
        bootstrap=0,
    )
    assert pair.log_loss == pytest.approx(report.log_loss, rel=1e-12)
    assert pair.worst[0]["id"] == ids[worst]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("order", ["same", "shuffled"])
def test_a_one_hot_solution_scores_as_its_labels(tmp_path: Path, fmt: str, order: str) -> None:
    """Kaggle's solution layout, a 0/1 column per class named as the submission's columns, is
    read without a target column: the same scores as the labels it encodes, joined in order or
    through the index, locally and on Dask, with its split column; a row that is not one-hot is
    refused at its row (and column)."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("dask")
    rng = np.random.default_rng(11)
    n = 120
    names = ["Class_1", "Class_2", "Class_3"]
    p = rng.dirichlet(np.ones(3), n)
    y = rng.integers(0, 3, n)
    ids = np.arange(1000, 1000 + n)
    usage = np.where(rng.random(n) < 0.4, "Public", "Private")
    one_hot = pd.DataFrame(
        {"id": ids, **{c: (y == j).astype(np.int64) for j, c in enumerate(names)}, "Usage": usage}
    )
    labelled = pd.DataFrame({"id": ids, "y": np.array(names)[y], "Usage": usage})
    rows = np.arange(n) if order == "same" else rng.permutation(n)
    sub = pd.DataFrame({"id": ids, **{c: p[:, j] for j, c in enumerate(names)}}).iloc[rows]

    def write(frame: Any, name: str) -> Path:
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        return path

    sub_path, sol_path = write(sub, "sub"), write(one_hot, "sol")
    kw: dict[str, Any] = dict(id="id", bootstrap=0, split="Usage", batch_rows=32)
    want = score(sub_path, solution=write(labelled, "labels"), target="y", **kw)
    assert want.log_loss == pytest.approx(-np.log(p[np.arange(n), y]).mean(), rel=1e-12)
    for engine in ("local", "dask"):
        got = score(sub_path, solution=sol_path, engine=engine, **kw)
        assert got.log_loss == pytest.approx(want.log_loss, rel=1e-13)
        for mine, theirs in zip(got.splits, want.splits, strict=True):
            assert (mine["split"], mine["n"]) == (theirs["split"], theirs["n"])
            for key in ("log_loss", "brier", "accuracy"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-13)
        assert [w["id"] for w in got.worst] == [w["id"] for w in want.worst]
    assert got.input["one_hot_columns"] == names
    assert got.input["target"] is None
    assert "one-hot class columns</td><td>Class_1, Class_2, Class_3" in got.html()
    two = one_hot.copy()
    two.loc[6, "Class_3"] = 1 - two.loc[6, "Class_3"]  # a row of two 1s or none
    with pytest.raises(InputError, match=r"sol\.\w+, row 7: a one-hot solution row must hold one"):
        score(sub_path, solution=write(two, "sol"), **kw)
    if fmt == "csv":  # an empty cell
        empty = sol_path.read_text().splitlines()
        cells = empty[4].split(",")
        cells[2] = ""
        empty[4] = ",".join(cells)
        (tmp_path / "empty.csv").write_text("\n".join(empty) + "\n")
        with pytest.raises(
            InputError, match=r"row 4, column 'Class_2': a one-hot .* this cell holds nothing"
        ):
            score(sub_path, solution=tmp_path / "empty.csv", **kw)
    half = one_hot.astype({"Class_2": np.float64})
    half.loc[9, "Class_2"] = 0.5
    with pytest.raises(
        InputError, match=r"row 10, column 'Class_2': a one-hot solution .* got 0\.5"
    ):
        score(sub_path, solution=write(half, "sol"), **kw)


def test_a_one_hot_csv_of_true_and_false_is_read_as_ones_and_zeros(tmp_path: Path) -> None:
    """pandas writes a boolean column (get_dummies' one-hot columns) as True/False."""
    (tmp_path / "sol.csv").write_text("id,a,b\n1,True,False\n2,False,True\n3,1,0\n")
    pq.write_table(
        pa.table({"id": [1, 2, 3], "a": [True, False, True], "b": [False, True, False]}),
        tmp_path / "sol.parquet",
    )
    (tmp_path / "sub.csv").write_text("id,a,b\n1,0.7,0.3\n2,0.4,0.6\n3,0.6,0.4\n")
    want = -np.mean(np.log([0.7, 0.6, 0.6]))
    for sol in ("sol.csv", "sol.parquet"):
        got = score(tmp_path / "sub.csv", solution=tmp_path / sol, id="id", bootstrap=0)
        assert got.log_loss == pytest.approx(want, rel=1e-15)
    (tmp_path / "bad.csv").write_text("id,a,b\n1,True,False\n2,yes,True\n3,1,0\n")
    with pytest.raises(InputError, match=r"bad.csv, row 2, column 'a': a one-hot solution"):
        score(tmp_path / "sub.csv", solution=tmp_path / "bad.csv", id="id")
