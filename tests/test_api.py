"""crossentropy.scoring.score and ScoreReport (crossentropy.scoring._api): the Python entry point
of the scoring engine, held against the one-shot metrics and the command line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from _helpers import as_repeated, assert_same_numbers
from crossentropy import metrics
from crossentropy.cli import main
from crossentropy.scoring import InputError, ScoreReport, score

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("pyarrow.csv")

CLASSES = ["cat", "dog", "eel"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("api")
    rng = np.random.default_rng(5)
    n = 300
    logits = rng.standard_normal((n, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, n)
    ids = np.array([f"id{i:04d}" for i in range(n)])
    names = np.array(CLASSES)[y]
    table = pa.table({"key": ids, "y": names, **{f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)}})
    pq.write_table(table, d / "t.parquet", row_group_size=64)
    pq.write_table(pa.table({"key": ids, "y": names}), d / "sol.parquet")
    perm = rng.permutation(n)
    sub = pa.table({"key": ids[perm], **{c: p[perm, j] for j, c in enumerate(CLASSES)}})
    pq.write_table(sub, d / "sub.parquet")
    return {"dir": d, "y": y, "p": p, "ids": ids}


def test_score_of_a_table_equals_the_metrics(files):
    y, p = files["y"], files["p"]
    report = score(files["dir"] / "t.parquet", target="y", proba="p_*", id="key", batch_rows=50)
    assert isinstance(report, ScoreReport)
    assert report.n == 300
    assert math.isclose(report.log_loss, metrics.log_loss(y, p), rel_tol=1e-12)
    assert math.isclose(report.brier, metrics.brier_score_loss(y, p), rel_tol=1e-12)
    assert math.isclose(report.ece, metrics.calibration_error(y, p, n_bins=15), rel_tol=1e-9)
    assert report.accuracy == float(np.mean(p.argmax(axis=1) == y))
    assert [c["label"] for c in report.per_class] == CLASSES
    worst = report.worst[0]
    assert worst["id"] == files["ids"][worst["row"] - 1]
    assert report.input["classes"] == CLASSES
    assert report.input["id_column"] == "key"
    # the same file, the probability columns listed by name, gives the same numbers
    listed = score(
        files["dir"] / "t.parquet", target="y", proba=[f"p_{c}" for c in CLASSES], classes=CLASSES
    )
    assert math.isclose(listed.log_loss, report.log_loss, rel_tol=1e-14)


def test_score_of_a_pair_in_any_order(files):
    y, p = files["y"], files["p"]
    report = score(files["dir"] / "sub.parquet", solution=files["dir"] / "sol.parquet", id="key")
    assert report.n == 300
    assert math.isclose(report.log_loss, metrics.log_loss(y, p), rel_tol=1e-12)
    assert report.input["files"]["solution"] == str(files["dir"] / "sol.parquet")
    assert all("id" in w for w in report.worst)


def test_report_renders_as_json_text_and_html(files, tmp_path: Path, capsys):
    report = score(files["dir"] / "t.parquet", target="y", proba="p_*")
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert data["log_loss"] == report.log_loss
    assert "source" not in data
    assert "log loss (nats)" in str(report)
    with pytest.raises(TypeError, match="unhashable type: 'ScoreReport'"):  # (was: 'list')
        hash(report)
    # the repr is a line (a notebook showing a list of reports printed every curve)
    assert repr(report) == (
        f"ScoreReport(predictions={str(files['dir'] / 't.parquet')!r}, n={report.n:,}, "
        f"classes={len(report.input['classes'])}, log_loss={report.log_loss:.6g}, "
        f"accuracy={report.accuracy:.6g})"
    )
    page = report.html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    # the style sheet is the package's own, not escaped (a browser drops an escaped font list)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style is not None
    assert '"Segoe UI"' in style.group(1)
    assert "&#" not in style.group(1)
    out = tmp_path / "r.html"
    report.to_html(out)
    assert out.read_text() == page
    # the input table as a reader reads it: no Python None or False, thousands separated
    assert "<td>option clip</td><td>the stored dtype&#39;s epsilon</td>" in page
    assert "<td>option renormalize</td><td>no</td>" in page
    assert "<td>id column</td><td>none</td>" in page
    assert "<td>option batch_rows</td><td>65,536</td>" in page
    assert ">None<" not in page
    assert ">False<" not in page
    # a notebook gets the same content in a <div> whose every rule stays inside it
    view = report._repr_html_()
    assert view.startswith('<div class="ce-report">')
    assert view.rstrip().endswith("</div>")
    assert "<body" not in view
    assert "<!DOCTYPE" not in view
    rules = re.search(r"<style>(.*?)</style>", view, re.S)
    assert rules is not None
    assert "&#" not in rules.group(1)
    selectors = [r.split("{")[0] for r in rules.group(1).split("}") if r.strip()]
    assert len(selectors) > 5
    assert all(s.strip().startswith(".ce-report") for r in selectors for s in r.split(","))
    assert view.split("</style>", 1)[1] == page.split("<body>", 1)[1].replace(
        "\n</body>\n</html>\n", "\n</div>\n"
    )
    # the command line prints the same JSON numbers
    args = ["score", str(files["dir"] / "t.parquet"), "--target", "y", "--proba-cols", "p_*"]
    assert main([*args, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["log_loss"] == data["log_loss"]
    assert cli["per_class"] == data["per_class"]


def test_to_html_never_replaces_a_link(files, tmp_path: Path):
    report = score(files["dir"] / "t.parquet", target="y", proba="p_*")
    target = tmp_path / "keep.txt"
    target.write_text("keep")
    link = tmp_path / "r.html"
    link.symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        report.to_html(link)
    assert link.is_symlink()
    assert target.read_text() == "keep"
    for bad in (3, None):
        with pytest.raises(TypeError, match="path must be a file path"):
            report.to_html(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path must name a file; got an empty path"):
        report.to_html("")


def test_names_with_dollar_signs_are_drawn_as_text(tmp_path: Path):
    """Class names and compared sets' names with ``$`` (matplotlib's formula marks): the page
    draws them as text (``b$x^$`` made matplotlib raise a ParseSyntaxException after the
    scoring, and the report was not written)."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=40)
    y = rng.integers(0, 3, size=40)
    classes = ["b$x^$", "$5", "c"]
    report = score(p, target=y, classes=classes, bootstrap=20)
    report.to_html(tmp_path / "r.html")
    assert "b$x^$" in (tmp_path / "r.html").read_text()
    both = score({"a$x^$": p, "$b": p[:, ::-1]}, target=y, classes=classes, bootstrap=20)
    both.to_html(tmp_path / "c.html")
    assert "a$x^$" in (tmp_path / "c.html").read_text()


def test_to_html_never_replaces_a_scored_file(tmp_path: Path):
    """A page is never written over one of the files it scored: the file, a folder's or a
    pattern's part, the solution."""
    parts = tmp_path / "parts"
    parts.mkdir()
    text = "y,p_a,p_b\na,0.9,0.1\nb,0.2,0.8\n"
    for i in range(2):
        (parts / f"part-{i}.csv").write_text(text)
    part = parts / "part-1.csv"
    for data in (part, parts, str(parts / "part-*.csv")):
        report = score(data, target="y", proba="p_*", bootstrap=0)
        with pytest.raises(ValueError, match="is an input file"):
            report.to_html(part)
        assert part.read_text() == text
    solution, submission = tmp_path / "sol.csv", tmp_path / "sub.csv"
    solution.write_text("id,y\n1,a\n2,b\n")
    submission.write_text("id,a,b\n1,0.9,0.1\n2,0.2,0.8\n")
    pair = score(submission, solution=solution, id="id", bootstrap=0)
    for path in (solution, submission):
        with pytest.raises(ValueError, match="is an input file"):
            pair.to_html(path)
    compared = score([part, parts / "part-0.csv"], target="y", proba="p_*", bootstrap=0)
    with pytest.raises(ValueError, match="is an input file"):
        compared.to_html(part)
    assert part.read_text() == text


def test_bad_input_is_an_input_error_naming_file_row_and_column(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("y,p_a,p_b\na,0.5,0.5\nb,0.3,x\n")
    with pytest.raises(InputError, match=r"bad\.csv, row 2, column 'p_b'") as info:
        score(bad, target="y", proba="p_*")
    assert isinstance(info.value, ValueError)
    with pytest.raises(InputError, match="no such column"):
        score(bad, target="label")


def test_options_are_checked(files):
    path = files["dir"] / "t.parquet"
    np.savez(files["dir"] / "empty.npz")  # a zip archive of no file
    with pytest.raises(InputError, match="no array 'y_proba' in the archive"):
        score(files["dir"] / "empty.npz")
    with pytest.raises(ValueError, match=r"^data is an empty path$"):  # not the current folder
        score("", target="y")
    with pytest.raises(ValueError, match=r"^solution is an empty path$"):
        score(path, solution="", id="id")
    with pytest.raises(ValueError, match="engine"):
        score(path, target="y", engine="spark")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="need engine='dask'"):
        score(path, target="y", scheduler="tcp://127.0.0.1:1")
    for name, value, least in [("bins", 0, 1), ("batch_rows", 0, 1), ("worst", -1, 0)]:
        with pytest.raises(ValueError, match=f"^{name} must be >= {least}; got {value}$"):
            score(path, target="y", **{name: value})
    for value in (-2, 10_001):  # at most 10,000 replicates: more would run for hours
        with pytest.raises(
            ValueError, match=rf"^bootstrap must be between 0 and 10,000; got {value:,}$"
        ):
            score(path, target="y", bootstrap=value)
    for name in ("bootstrap", "paired"):
        with pytest.raises(ValueError, match=f"{name} must be between 0 and 10,000"):
            metrics.ScoreAccumulator(["a", "b"], **{name: 10**9})
    with pytest.raises(TypeError, match=r"proba must be a column name .* or a list"):
        score(path, target="y", proba=[1.0, 2.0])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"proba must be a column name or a list of them; got 5\.0"):
        score(path, target="y", proba=5.0)  # type: ignore[arg-type]
    # integers are names (pandas' columns of a frame made from an array), as their text
    with pytest.raises(InputError, match=r"column '1': no such column"):
        score(path, target="y", proba=[1, 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="renormalize must be True, False, 'before_clip'"):
        score(path, target="y", renormalize=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="classes must be a list of class names; got the text"):
        score(path, target="y", classes="ab")
    with pytest.raises(TypeError, match="solution must be a path; got DataFrame; for DataFrames"):
        score(path, solution=_frame(files), id="id", target="y")
    with pytest.raises(TypeError, match="data as a list holds prediction sets to compare"):
        score(files["p"].tolist(), target=files["y"])
    # proba as any ordered collection of names, a format's name in any case
    table = pq.read_table(path)
    for names in (np.array(table.column_names[2:]), dict.fromkeys(table.column_names[2:]).keys()):
        assert score(path, target="y", proba=names, classes=CLASSES, bootstrap=0).n == 300
    assert score(path, target="y", proba="p_*", format="PARQUET", bootstrap=0).n == 300
    # a format is a file's: in-memory data has none (it was ignored); progress is a flag
    for data in (_frame(files), pa.Table.from_pandas(_frame(files))):
        with pytest.raises(ValueError, match=r"^format names a file's format; data is \w+ \("):
            score(data, target="y", format="csv")
    with pytest.raises(ValueError, match="format names a file's format; data is array"):
        score(files["p"], target=files["y"], format="npy")
    with pytest.raises(TypeError, match=r"^progress must be True, False or a ProgressBar"):
        score(path, target="y", progress="no")  # type: ignore[arg-type]
    assert score(path, target="y", proba="p_*", progress=np.False_, bootstrap=0).n == 300


def _frame(files):
    pd = pytest.importorskip("pandas")
    y, p = files["y"], files["p"]
    frame = pd.DataFrame({"y": np.array(CLASSES)[y], **{c: p[:, j] for j, c in enumerate(CLASSES)}})
    frame.index = np.random.default_rng(0).permutation(len(y))  # an index is not a column
    return frame


@pytest.mark.parametrize("kind", ["pandas", "polars", "polars-lazy", "pyarrow"])
def test_score_of_an_in_memory_table(files, kind):
    frame = _frame(files)
    if kind.startswith("polars"):
        frame = pytest.importorskip("polars").from_pandas(frame)
        frame = frame.lazy() if kind == "polars-lazy" else frame
    elif kind == "pyarrow":
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    report = score(frame, target="y", batch_rows=70)
    assert report.n == 300
    expected = metrics.log_loss(files["y"], files["p"])
    assert math.isclose(report.log_loss, expected, rel_tol=1e-12)
    assert [c["label"] for c in report.per_class] == CLASSES
    assert report.input["files"] == {"predictions": "Table" if kind == "pyarrow" else "DataFrame"}


def test_score_of_numpy_probabilities_and_labels(files):
    y, p = files["y"], files["p"]
    report = score(p, target=y)
    assert [c["label"] for c in report.per_class] == ["0", "1", "2"]
    assert math.isclose(report.log_loss, metrics.log_loss(y, p), rel_tol=1e-12)
    named = score(p, target=np.array(CLASSES)[y], classes=CLASSES)
    assert math.isclose(named.log_loss, report.log_loss, rel_tol=1e-14)
    yb = (y == 1).astype(int)
    binary = score(p[:, 1:2], target=yb)
    assert math.isclose(binary.log_loss, metrics.log_loss(yb, p[:, 1]), rel_tol=1e-12)
    vector = score(p[:, 1], target=yb)  # a vector: the second class's, as scikit-learn reads it
    assert vector.log_loss == binary.log_loss
    with pytest.raises(ValueError, match=r"probabilities \(n, C\) or \(n,\); got \(300, 3, 1\)"):
        score(p[:, :, None], target=y)


def test_in_memory_table_under_dask_equals_local(files):
    pytest.importorskip("distributed")
    frame = _frame(files)
    local = score(frame, target="y")
    remote = score(frame, target="y", engine="dask", partitions=3)
    assert math.isclose(remote.log_loss, local.log_loss, rel_tol=1e-12)
    for a, b in zip(remote.per_class, local.per_class, strict=True):
        assert a["count"] == b["count"]
        assert math.isclose(a["log_loss"], b["log_loss"], rel_tol=1e-12)


def test_in_memory_errors_name_row_and_column(files):
    frame = _frame(files)
    frame.iloc[5, 2] = np.nan
    with pytest.raises(InputError, match=r"DataFrame, row 6, column 'dog': missing probability"):
        score(frame, target="y")
    with pytest.raises(TypeError, match="for DataFrames use kaggle_score"):
        score(frame, solution=files["dir"] / "sol.parquet", id="key")
    with pytest.raises(TypeError, match="data must be a path, a DataFrame"):
        score({"y": [0]}, target="y")
    with pytest.raises(TypeError, match="needs target= the labels"):
        score(files["p"], target="y")


def test_numpy_integer_labels_index_named_classes_as_npy_files_do(tmp_path: Path):
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    named = score(p, target=y, classes=["cat", "dog"])
    assert math.isclose(named.log_loss, metrics.log_loss(y, p), rel_tol=1e-12)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    from_files = score(tmp_path / "p.npy", target_file=tmp_path / "y.npy", classes=["cat", "dog"])
    assert math.isclose(named.log_loss, from_files.log_loss, rel_tol=1e-12)
    with pytest.raises(ValueError, match="class index 2 for 2 classes"):
        score(p, target=[0, 2, 0], classes=["cat", "dog"])
    with pytest.raises(ValueError, match="one label per row"):
        score(p, target=[0, 1])


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_one_probability_column_in_a_file_is_the_second_classs_as_in_memory(
    tmp_path: Path, shape: tuple[int, ...]
):
    """A vector (or one column) of probabilities in a .npy or .npz file is the second class's,
    as scikit-learn and ``score`` of the same array in memory read it."""
    from sklearn.metrics import log_loss

    p, y = np.array([0.9, 0.2, 0.4]), np.array([1, 0, 1])
    expected = log_loss(y, p)
    assert math.isclose(score(p.reshape(shape), target=y).log_loss, expected, rel_tol=1e-12)
    np.save(tmp_path / "p.npy", p.reshape(shape))
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "p.npz", y_true=y, y_proba=p.reshape(shape))
    for report in (
        score(tmp_path / "p.npy", target_file=tmp_path / "y.npy"),
        score(tmp_path / "p.npz"),
    ):
        assert math.isclose(report.log_loss, expected, rel_tol=1e-12)
        assert report.input["classes"] == ["0", "1"]


def test_target_and_id_are_checked_before_reading(files):
    frame = _frame(files)
    with pytest.raises(ValueError, match="id and target must be different columns"):
        score(frame, target="y", id="y")
    with pytest.raises(TypeError, match="target must be a column name"):
        score(frame, target=np.zeros(300))
    # labels as an array with an id column: told, not NumPy's "truth value ... is ambiguous"
    with pytest.raises(TypeError, match="target must be a column name"):
        score(frame, target=np.zeros(300), id="id")
    with pytest.raises(InputError, match="column 'id': no such column"):
        score(np.array([[0.7, 0.3], [0.1, 0.9]]), target=np.array([0, 1]), id="id")


# --------------------------------------------------------------------------- conventions, splits


@pytest.fixture(scope="module")
def rounded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Predictions rounded to 2 decimals (zeros and rows off 1), a Usage split, as files."""
    pd = pytest.importorskip("pandas")
    d = tmp_path_factory.mktemp("conventions")
    rng = np.random.default_rng(8)
    n = 400
    p = np.round(rng.dirichlet(np.ones(3) * 0.4, n), 2)
    y = rng.integers(0, 3, n)
    usage = np.where(rng.random(n) < 0.4, "Public", "Private")
    sol = pd.DataFrame({"id": np.arange(n), "y": np.array(CLASSES)[y], "Usage": usage})
    sol.to_csv(d / "sol.csv", index=False)
    sub = pd.DataFrame(p, columns=CLASSES)
    sub.insert(0, "id", np.arange(n))
    sub.to_csv(d / "sub.csv", index=False)
    sub.sample(frac=1.0, random_state=1).to_csv(d / "shuffled.csv", index=False)
    onehot = pd.DataFrame(np.eye(3)[y], columns=CLASSES)
    onehot.insert(0, "id", np.arange(n))
    onehot["Usage"] = usage
    table = pd.DataFrame(p, columns=[f"p_{c}" for c in CLASSES])
    table["y"] = np.array(CLASSES)[y]
    table["Usage"] = usage
    return {"dir": d, "p": p, "y": y, "sub": sub, "onehot": onehot, "table": table}


def test_clip_and_renormalize_reproduce_kaggle_and_older_scikit_learn(rounded) -> None:
    from crossentropy.scoring import kaggle_score

    p, y = rounded["p"], rounded["y"]
    rows = np.arange(len(y))
    kw = {"target": y, "classes": CLASSES, "bootstrap": 0}
    # default: scikit-learn >= 1.5, clipped at float64's eps, rows as given
    with pytest.warns(UserWarning, match="do not sum to one"):
        expected = metrics.log_loss(y, p)
    assert score(p, **kw).log_loss == pytest.approx(expected, rel=1e-12)
    # clip only: scikit-learn 1.2's eps=1e-15 without its renormalisation
    ref = -np.log(np.clip(p[rows, y], 1e-15, 1 - 1e-15)).mean()
    assert score(p, clip=1e-15, **kw).log_loss == pytest.approx(ref, rel=1e-12)
    # Kaggle: rescale each row, then clip
    kaggle = kaggle_score(rounded["onehot"].drop(columns="Usage"), rounded["sub"], "id")
    got = score(p, clip=1e-15, renormalize=True, **kw)
    assert got.log_loss == pytest.approx(kaggle, rel=1e-12)
    assert got.rows_not_summing_to_one == int(np.sum(np.abs(p.sum(axis=1) - 1) > 1.5e-8))
    # scikit-learn < 1.5: clip, then rescale (its log_loss code, written out)
    q = np.clip(p, 1e-15, 1 - 1e-15)
    q = q / q.sum(axis=1, keepdims=True)
    old = -np.log(q[rows, y]).mean()
    after = score(p, clip=1e-15, renormalize="after_clip", **kw)
    assert after.log_loss == pytest.approx(old, rel=1e-12)
    assert after.log_loss != got.log_loss
    assert after.input["options"]["renormalize"] == "after_clip"
    with pytest.raises(ValueError, match="clip"):
        score(p, clip=0.7, **kw)
    with pytest.raises(ValueError, match="renormalize"):
        score(p, renormalize="sometimes", **kw)  # type: ignore[arg-type]
    zero = p.copy()
    zero[3] = 0.0
    with pytest.raises(ValueError, match=r"row 4\b.*the probabilities sum to 0"):
        score(zero, renormalize=True, **kw)
    # clipped first (scikit-learn 1.2 to 1.4), a row of zeros is uniform
    q = np.clip(zero, 1e-15, 1 - 1e-15)
    q = q / q.sum(axis=1, keepdims=True)
    with pytest.warns(UserWarning, match="rescaled"):
        uniform = score(zero, clip=1e-15, renormalize="after_clip", **kw)
    assert uniform.log_loss == pytest.approx(-np.log(q[rows, y]).mean(), rel=1e-12)
    # rows to be rescaled may hold scores above 1 (5 times the probabilities), as Kaggle's
    # rescaling and kaggle_score take them; they were refused as "greater than 1"
    scaled = score(p * 5, clip=1e-15, renormalize=True, **kw)
    assert scaled.log_loss == pytest.approx(kaggle, rel=1e-12)
    five = rounded["sub"].assign(**{c: rounded["sub"][c] * 5 for c in CLASSES})
    assert kaggle_score(rounded["onehot"].drop(columns="Usage"), five, "id") == pytest.approx(
        kaggle, rel=1e-12
    )
    q5 = np.clip(p * 5, 1e-15, 1 - 1e-15)  # scikit-learn's order: clipped to 1 - eps first
    q5 = q5 / q5.sum(axis=1, keepdims=True)
    after5 = score(p * 5, clip=1e-15, renormalize="after_clip", **kw).log_loss
    assert after5 == pytest.approx(-np.log(q5[rows, y]).mean(), rel=1e-12)
    with pytest.raises(ValueError, match=r"probability 5\.0 is greater than 1"):
        score(np.where(p > 0.5, 5.0, p), **kw)  # not without renormalize
    negative = r"score -0\.5 is negative \(rows to renormalize take finite scores >= 0\)"
    for bad, what in ((-0.5, negative), (np.inf, "infinite"), (np.nan, "NaN")):
        worse = p * 5
        worse[2, 1] = bad
        with pytest.raises(ValueError, match=rf"row 3\b.*{what}"):
            score(worse, renormalize=True, **kw)


@pytest.mark.parametrize("engine", ["local", "dask"])
@pytest.mark.parametrize("submission", ["sub.csv", "shuffled.csv"])
def test_split_scores_each_usage_as_kaggle_does(rounded, engine: str, submission: str) -> None:
    from crossentropy.scoring import kaggle_score

    if engine == "dask":
        pytest.importorskip("distributed")
    d = rounded["dir"]
    report = score(
        d / submission,
        solution=d / "sol.csv",
        id="id",
        target="y",
        split="Usage",
        clip=1e-15,
        renormalize=True,
        engine=engine,  # type: ignore[arg-type]
        bootstrap=0,
        batch_rows=64,
    )
    assert [s["split"] for s in report.splits] == ["Private", "Public"]
    for entry in report.splits:
        ref = kaggle_score(rounded["onehot"], rounded["sub"], "id", usage=entry["split"])
        assert entry["log_loss"] == pytest.approx(ref, rel=1e-12)
    assert sum(s["n"] for s in report.splits) == report.n
    assert report.input["split_column"] == "Usage"
    assert "per value of the split column 'Usage'" in report.to_text()


def test_split_of_a_table_and_its_errors(rounded) -> None:
    table = rounded["table"]
    report = score(table, target="y", proba="p_*", split="Usage", bootstrap=0)
    y, p = rounded["y"], rounded["p"]
    public = (table["Usage"] == "Public").to_numpy()
    (pub,) = [s for s in report.splits if s["split"] == "Public"]
    with pytest.warns(UserWarning, match="do not sum to one"):
        expected = metrics.log_loss(y[public], p[public])
    assert pub["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert pub["accuracy"] == pytest.approx(np.mean(p[public].argmax(axis=1) == y[public]))
    # without split= there is no split, and the split column is not a probability column
    assert score(table, target="y", proba="p_*", bootstrap=0).splits is None
    plain = score(table.drop(columns="Usage"), target="y", classes=CLASSES, bootstrap=0)
    assert plain.splits is None
    unsplit = score(table, target="y", split="Usage", classes=CLASSES, bootstrap=0)
    assert unsplit.input["probability_columns"] == ["p_cat", "p_dog", "p_eel"]
    with pytest.raises(InputError, match="no such column"):
        score(table, target="y", proba="p_*", split="Use")
    gap = table.assign(Usage=table["Usage"].where(np.arange(len(table)) != 4, None))
    with pytest.raises(InputError, match="row 5, column 'Usage': missing value in the split"):
        score(gap, target="y", proba="p_*", split="Usage")
    folds = pa.Table.from_pandas(
        table.assign(Usage=np.where(np.arange(len(table)) == 2, np.nan, 1.0))
    )
    with pytest.raises(InputError, match="row 3, column 'Usage': missing value in the split"):
        score(folds, target="y", proba="p_*", split="Usage")
    with pytest.raises(InputError, match="split column must not be the target"):
        score(table, target="y", proba="p_*", split="y")
    with pytest.raises(InputError, match="column 'Usage': no such column"):
        score(rounded["p"], target=rounded["y"], split="Usage")
    npz = rounded["dir"] / "arrays.npz"
    np.savez(npz, y_true=rounded["y"], y_proba=rounded["p"])
    with pytest.raises(InputError, match="split column needs a table"):
        score(npz, split="Usage")


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_split_column_of_more_groups_than_the_bound_is_refused_at_its_row(
    tmp_path: Path, engine: str, monkeypatch
) -> None:
    """Each group keeps its own totals: a split column with a value per row (an id given as
    the split) is refused at the first row of one group too many, naming the column, before
    its memory grows with the rows."""
    from crossentropy.cli import main
    from crossentropy.metrics import _score

    monkeypatch.setattr(_score, "MAX_GROUPS", 50)
    n = 400
    rng = np.random.default_rng(5)
    p = rng.random(n)
    table = pa.table({"y": (rng.random(n) < p).astype(np.int64), "p_1": p, "uid": np.arange(n)})
    pq.write_table(table, tmp_path / "ids.parquet")
    bound = r"ids\.parquet, column 'uid': more than 50 distinct groups \(splits\)"
    kw = dict(target="y", proba="p_1", split="uid", bootstrap=0, engine=engine)
    with pytest.raises(InputError, match=bound):
        score(tmp_path / "ids.parquet", **kw)
    if engine == "local":
        args = ["score", str(tmp_path / "ids.parquet"), "--target", "y", "--split", "uid"]
        assert main([*args, "--proba-cols", "p_1"]) == 2
    else:  # pieces of 40 rows, each under the bound: found where they are merged
        pq.write_table(table, tmp_path / "groups.parquet", row_group_size=40)
        with pytest.raises(InputError, match=r"column 'uid': more than 50 distinct groups"):
            score(tmp_path / "groups.parquet", **kw, partitions=10)
    # in a pair the column is the solution's: so is the error
    pq.write_table(table.select(["uid", "y"]).append_column("id", pa.array(np.arange(n))),
                   tmp_path / "sol.parquet")  # fmt: skip
    pq.write_table(table.select(["p_1"]).append_column("id", pa.array(np.arange(n))),
                   tmp_path / "sub.parquet")  # fmt: skip
    with pytest.raises(InputError, match=r"sol\.parquet, column 'uid': more than 50 distinct"):
        score(tmp_path / "sub.parquet", solution=tmp_path / "sol.parquet", id="id", **kw)
    few = table.set_column(2, "uid", pa.array(np.arange(n) % 50))  # 50 groups: taken
    assert len(score(few, **{**kw, "engine": "local"}).splits) == 50


def test_cli_conventions_and_split(rounded, capsys) -> None:
    d = rounded["dir"]
    args = ["score", "--solution", str(d / "sol.csv"), "--submission", str(d / "sub.csv")]
    args += ["--id", "id", "--target", "y", "--split", "Usage", "--bootstrap", "0"]
    code = main([*args, "--clip", "1e-15", "--renormalize", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["input"]["options"]["renormalize"] == "before_clip"
    assert [s["split"] for s in data["splits"]] == ["Private", "Public"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--clip", "2"])
    assert exit_.value.code == 2
    assert "--clip" in capsys.readouterr().err


# --------------------------------------------------------------------------- several files


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(12)
    n = 900
    logits = rng.standard_normal((n, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, n)
    table = pa.table(
        {"y": np.array(CLASSES)[y], **{f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)}}
    )
    (d / "pq").mkdir()
    (d / "csv").mkdir()
    for i in range(3):
        pq.write_table(table.slice(300 * i, 300), d / "pq" / f"part-{i}.parquet", row_group_size=64)
        pa.csv.write_csv(table.slice(300 * i, 300), d / "csv" / f"part-{i}.csv")
    (d / "pq" / "_SUCCESS").write_text("")
    return {"dir": d, "y": y, "p": p}


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_folder_a_pattern_or_a_dataset_of_parts(parts, engine: str) -> None:
    ds = pytest.importorskip("pyarrow.dataset")
    if engine == "dask":
        pytest.importorskip("distributed")
    d, y, p = parts["dir"], parts["y"], parts["p"]
    kw = {"target": "y", "proba": "p_*", "bootstrap": 0, "engine": engine}
    inputs = [
        d / "pq",
        str(d / "csv" / "part-*.csv"),
        ds.dataset(d / "pq", format="parquet", exclude_invalid_files=True),
    ]
    for data in inputs:
        report = score(data, **kw)  # type: ignore[arg-type]
        assert report.n == 900
        assert math.isclose(report.log_loss, metrics.log_loss(y, p), rel_tol=1e-12)
        assert len(report.input["files"]["parts"]) == 3
        worst = report.worst[0]
        losses = -np.log(p[np.arange(900), y])
        i = int(np.argmax(losses))
        assert worst["file"].endswith(
            f"part-{i // 300}.{'csv' if 'csv' in str(data) else 'parquet'}"
        )
        assert worst["row"] == i % 300 + 1
    assert "(3 files)" in report.to_text()


def test_to_dict_holds_python_values_only(files) -> None:
    report = score(files["dir"] / "t.parquet", target="y", proba="p_*", id="key", bootstrap=20)

    def leaves(value: object) -> list[object]:
        if isinstance(value, dict):
            return [x for v in value.values() for x in leaves(v)]
        if isinstance(value, list):
            return [x for v in value for x in leaves(v)]
        return [value]

    kinds = {type(v) for v in leaves(report.to_dict())}
    assert kinds <= {int, float, str, bool, type(None)}, kinds


def test_the_row_sum_warning_of_parts_names_the_folder(parts, tmp_path: Path) -> None:
    """Rows off 1 in several parts are counted together and named by the folder given."""
    d = parts["dir"]
    folder = tmp_path / "rounded"
    folder.mkdir()
    for i in range(3):
        table = pa.csv.read_csv(d / "csv" / f"part-{i}.csv")
        cols = {
            n: pa.compute.round(table[n], 2) if n.startswith("p_") else table[n]
            for n in table.column_names
        }
        pa.csv.write_csv(pa.table(cols), folder / f"part-{i}.csv")
    with pytest.warns(UserWarning, match=rf"^{re.escape(str(folder))}: \d+ of 900 rows") as info:
        report = score(folder, target="y", proba="p_*", bootstrap=0)
    assert len(info) == 1
    off = report.rows_not_summing_to_one
    assert f": {off:,} of 900 rows" in str(info[0].message)


def test_a_hive_partitioned_dataset_has_its_partition_column(parts, tmp_path: Path) -> None:
    """The partition column of a hive-partitioned dataset (``Usage=Public/``), when asked for,
    is read through the dataset's scan, in this process; the same rows in one file give the
    same splits. Not asked for, the files are read one by one."""
    ds = pytest.importorskip("pyarrow.dataset")
    table = pa.concat_tables(
        [pq.read_table(parts["dir"] / "pq" / f"part-{i}.parquet") for i in range(3)]
    )
    usage = np.where(np.arange(table.num_rows) % 3 == 0, "Public", "Private")
    table = table.append_column("Usage", pa.array(usage))
    pq.write_table(table, tmp_path / "whole.parquet")
    ds.write_dataset(
        table,
        tmp_path / "hive",
        format="parquet",
        partitioning=["Usage"],
        partitioning_flavor="hive",
    )
    kw = {"target": "y", "proba": "p_*", "split": "Usage", "bootstrap": 0}
    whole = score(tmp_path / "whole.parquet", **kw)
    hive = ds.dataset(tmp_path / "hive", format="parquet", partitioning="hive")
    got = score(hive, **kw)
    assert got.n == 900
    assert got.log_loss == pytest.approx(whole.log_loss, rel=1e-12)
    for mine, theirs in zip(got.splits, whole.splits, strict=True):
        assert (mine["split"], mine["n"]) == (theirs["split"], theirs["n"])
        assert mine["log_loss"] == pytest.approx(theirs["log_loss"], rel=1e-12)
    with pytest.raises(ValueError, match="a dataset of 2 files, scanned, is read once"):
        score(hive, engine="dask", **kw)
    # the partition column not asked for: the files are read one by one, on any engine
    files = score(hive, target="y", proba="p_*", bootstrap=0, engine="dask")
    assert files.log_loss == pytest.approx(whole.log_loss, rel=1e-12)
    assert "Usage=" in files.worst[0]["file"]
    # the folder itself, by its path: the same, named by the path
    folder = score(tmp_path / "hive", **kw)
    assert folder.splits == got.splits
    assert folder.input["files"]["predictions"].startswith(str(tmp_path / "hive"))
    by_file = score(str(tmp_path / "hive"), target="y", proba="p_*", bootstrap=0)
    assert by_file.input["files"]["predictions"] == str(tmp_path / "hive")
    assert len(by_file.input["files"]["parts"]) == 2


def test_a_hive_folder_reads_every_part_once_or_refuses_it(tmp_path: Path) -> None:
    """A partitioned folder's part that is no Parquet was skipped (the Private split lost
    without a word); a link to a folder inside it was followed (one file read 41 times); a
    part without a column got nulls under --split. Each refused by name, split or not."""
    rng = np.random.default_rng(3)

    def folder(name: str) -> Path:
        for usage in ("Public", "Private"):
            (tmp_path / name / f"Usage={usage}").mkdir(parents=True)
            p = rng.dirichlet(np.ones(3), 4)
            columns = {
                "y": rng.choice(list("abc"), 4),
                **{f"p_{c}": p[:, j] for j, c in enumerate("abc")},
            }
            pq.write_table(pa.table(columns), tmp_path / name / f"Usage={usage}" / "part-0.parquet")
        return tmp_path / name

    kw: dict[str, object] = {"target": "y", "proba": "p_*", "bootstrap": 0}
    good = folder("good")
    assert score(good, **kw).n == score(good, split="Usage", **kw).n == 8
    bad = folder("bad")
    (bad / "Usage=Private" / "part-0.parquet").write_bytes(b"")
    link = folder("link")
    (link / "Usage=Public" / "Usage=Again").symlink_to("..")
    drop = folder("drop")
    private = drop / "Usage=Private" / "part-0.parquet"
    pq.write_table(pq.read_table(private).drop_columns(["p_c"]), private)
    for path, message in (
        (bad, r"Usage=Private/part-0\.parquet: cannot read as Parquet"),
        (link, r"Usage=Again: a link to a folder inside a partitioned folder"),
        (drop, r"Usage=P\w+/part-0\.parquet: its classes .* differ from"),
    ):
        for split in (None, "Usage"):
            with pytest.raises(InputError, match=message):
                score(path, split=split, **kw)
    # as pyarrow finds them: a part of any name (hive's 000000_0) read, a folder or file
    # named with "_" or "." first (a job's _temporary/, _SUCCESS) left out, a column no one
    # asked for taken; the format named or not
    more = folder("more")
    public = more / "Usage=Public" / "part-0.parquet"
    pq.write_table(pq.read_table(public).append_column("extra", pa.array([1] * 4)), public)
    (more / "Usage=Private" / "000000_0").write_bytes(public.read_bytes())
    (more / "Usage=Public" / "_temporary" / "0").mkdir(parents=True)
    (more / "Usage=Public" / "_temporary" / "0" / "part-9.parquet").write_bytes(b"partial")
    (more / "_SUCCESS").write_bytes(b"")
    for split in (None, "Usage"):
        got = score(more, split=split, format="parquet", **kw)
        assert got.n == 12
    assert {s["split"]: s["n"] for s in got.splits} == {"Private": 8, "Public": 4}


def test_errors_in_parts_name_the_file_and_its_row(parts, tmp_path: Path) -> None:
    d = parts["dir"]
    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(2):
        (folder / f"p{i}.csv").write_text((d / "csv" / f"part-{i}.csv").read_text())
    lines = (folder / "p1.csv").read_text().splitlines()
    cells = lines[7].split(",")
    cells[1] = "x"
    lines[7] = ",".join(cells)
    (folder / "p1.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"p1\.csv, row 7, column 'p_cat'"):
        score(folder, target="y", proba="p_*")
    zero = (d / "csv" / "part-1.csv").read_text().splitlines()
    cells = zero[4].split(",")
    zero[4] = ",".join([cells[0], "0", "0", "0"])
    (folder / "p1.csv").write_text("\n".join(zero) + "\n")
    with pytest.raises(InputError, match=r"p1\.csv, row 4: the probabilities sum to 0"):
        score(folder, target="y", proba="p_*", renormalize=True)
    (folder / "p1.csv").write_text("y,p_cat,p_dog\ncat,0.5,0.5\n")
    with pytest.raises(InputError, match=r"p1\.csv: its classes .* differ"):
        score(folder, target="y", proba="p_*")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no CSV or Parquet file"):
        score(empty, target="y")
    with pytest.raises(InputError, match="no file matches"):
        score(str(tmp_path / "nothing-*.csv"), target="y")
    with pytest.raises(TypeError, match="a pair is two files"):
        score(folder, solution=d / "csv" / "part-0.csv", id="y")


def test_a_record_batch_reader_is_read_as_a_stream(files) -> None:
    table = pq.read_table(files["dir"] / "t.parquet")
    whole = score(table, target="y", proba="p_*", bootstrap=0)
    batches = table.to_batches(max_chunksize=37)
    reader = pa.RecordBatchReader.from_batches(table.schema, batches)
    streamed = score(reader, target="y", proba="p_*", bootstrap=0, batch_rows=16)
    assert streamed.n == whole.n == 300
    assert math.isclose(streamed.log_loss, whole.log_loss, rel_tol=1e-13)
    assert [w["row"] for w in streamed.worst] == [w["row"] for w in whole.worst]
    assert streamed.input["files"]["predictions"] == "RecordBatchReader"
    again = pa.RecordBatchReader.from_batches(table.schema, batches)
    with pytest.raises(ValueError, match="engine='local'"):
        score(again, target="y", proba="p_*", engine="dask")
    # a stream is read once: read again, it has no rows, and the message asks
    with pytest.raises(InputError, match=r"^RecordBatchReader: no data rows \(was it read"):
        score(reader, target="y", proba="p_*", bootstrap=0)


# --------------------------------------------------------------------------- sample weights


@pytest.fixture(scope="module")
def weighted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A table with a weight column ``w`` (integers, and uniform floats ``u``), as CSV and
    Parquet, and a solution/submission pair with the weights in either file."""
    d = tmp_path_factory.mktemp("weights")
    rng = np.random.default_rng(31)
    n = 500
    p = np.round(rng.dirichlet(np.ones(3), n), 3)
    p[:, 2] = 1 - p[:, 0] - p[:, 1]
    y = rng.integers(0, 3, n)
    w = rng.integers(0, 4, n)
    u = rng.uniform(0, 2, n)
    ids = np.arange(n)
    table = pa.table(
        {
            "y": np.array(CLASSES)[y],
            **{f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)},
            "w": w,
            "u": u,
            "id": ids,
        }
    )
    pq.write_table(table, d / "t.parquet", row_group_size=64)
    pa.csv.write_csv(table, d / "t.csv")
    probs = {c: p[:, j] for j, c in enumerate(CLASSES)}
    perm = rng.permutation(n)
    pa.csv.write_csv(pa.table({"id": ids, "y": np.array(CLASSES)[y], "u": u}), d / "sol_u.csv")
    pa.csv.write_csv(pa.table({"id": ids, "y": np.array(CLASSES)[y]}), d / "sol.csv")
    sub = pa.table({"id": ids, **probs, "u": u})
    pa.csv.write_csv(sub, d / "sub_u.csv")
    pa.csv.write_csv(sub.take(perm), d / "sub_u_shuffled.csv")
    pa.csv.write_csv(pa.table({"id": ids, **probs}).take(perm), d / "sub_shuffled.csv")
    return {"dir": d, "y": y, "p": p, "w": w, "u": u}


def test_sample_weight_column_of_csv_and_parquet_equals_the_metrics(weighted) -> None:
    d, y, p, u = weighted["dir"], weighted["y"], weighted["p"], weighted["u"]
    reports = [
        score(d / name, target="y", proba="p_*", sample_weight="u", bootstrap=0, batch_rows=60)
        for name in ("t.csv", "t.parquet")
    ]
    for report in reports:
        assert report.n == 500
        assert report.weight == pytest.approx(float(np.sum(u)), rel=1e-12)
        assert report.input["sample_weight_column"] == "u"
        assert report.input["total_weight"] == report.weight
        assert report.log_loss == pytest.approx(metrics.log_loss(y, p, sample_weight=u), rel=1e-12)
        brier = metrics.brier_score_loss(y, p, sample_weight=u)
        assert report.brier == pytest.approx(brier, rel=1e-12)
        hits = np.sum(u * (p.argmax(axis=1) == y)) / np.sum(u)
        assert report.accuracy == pytest.approx(hits, rel=1e-12)
        ece = metrics.calibration_error(y, p, n_bins=15, sample_weight=u)
        assert report.ece == pytest.approx(ece, rel=1e-9)
        assert "p_w" not in report.input["probability_columns"]
    csv, parquet = ({k: v for k, v in r.to_dict().items() if k != "input"} for r in reports)
    assert_same_numbers(csv, parquet, rel=1e-12)
    # no weights: the weight is the rows, the metadata says so
    plain = score(d / "t.parquet", target="y", proba="p_*", bootstrap=0)
    assert plain.weight == 500.0
    assert plain.input["sample_weight_column"] is None


def test_integer_weight_column_equals_repeated_rows(weighted) -> None:
    d, y, p, w = weighted["dir"], weighted["y"], weighted["p"], weighted["w"]
    report = score(d / "t.csv", target="y", proba="p_*", sample_weight="w", bootstrap=0)
    r = np.repeat(np.arange(500), w)
    repeated = score(p[r], target=np.array(CLASSES)[y[r]], classes=CLASSES, bootstrap=0)
    mine = as_repeated({k: v for k, v in report.to_dict().items() if k != "input"})
    theirs = as_repeated({k: v for k, v in repeated.to_dict().items() if k != "input"})
    assert mine["n"] == theirs["n"] == int(np.sum(w))
    assert_same_numbers(mine, theirs)


def test_sample_weight_as_an_array_for_data_in_memory(weighted) -> None:
    pd = pytest.importorskip("pandas")
    y, p, u = weighted["y"], weighted["p"], weighted["u"]
    expected = metrics.log_loss(y, p, sample_weight=u)
    arrays = score(p, target=y, sample_weight=u, bootstrap=0)
    assert arrays.log_loss == pytest.approx(expected, rel=1e-12)
    assert arrays.input["sample_weight_column"] == "sample_weight"
    frame = pd.DataFrame(p, columns=CLASSES).assign(y=np.array(CLASSES)[y], sample_weight=1.0)
    table = score(frame, target="y", proba=CLASSES, sample_weight=list(u), bootstrap=0)
    assert table.log_loss == pytest.approx(expected, rel=1e-12)
    assert table.input["sample_weight_column"] == "_sample_weight_"  # its own column's name
    with pytest.raises(ValueError, match=r"one weight per row of data \(500,\); got shape \(3,\)"):
        score(p, target=y, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="sample_weight must hold numbers"):
        score(p, target=y, sample_weight=np.array(["a"] * 500))
    with pytest.raises(TypeError, match="goes with data in memory"):
        score(weighted["dir"] / "t.csv", target="y", proba="p_*", sample_weight=u)
    # NumPy files: neither an array of weights nor a column; each message says what works
    np.savez(weighted["dir"] / "w.npz", y_true=y, y_proba=p)
    with pytest.raises(TypeError, match=r"for \.npy/\.npz files, load the arrays \(np\.load\)"):
        score(weighted["dir"] / "w.npz", sample_weight=u)
    with pytest.raises(InputError, match=r"weight column needs a table .*as sample_weight="):
        score(weighted["dir"] / "w.npz", sample_weight="w")
    arrays = np.load(weighted["dir"] / "w.npz")
    direct = score(arrays["y_proba"], target=arrays["y_true"], sample_weight=u, bootstrap=0)
    assert direct.log_loss == pytest.approx(score(p, target=y, sample_weight=u).log_loss)
    bad = u.copy()
    bad[9] = -2.0
    with pytest.raises(InputError, match=r"array, row 10, column 'sample_weight': sample weight"):
        score(p, target=y, sample_weight=bad)
    with pytest.raises(InputError, match="total sample weight is zero"):
        score(p, target=y, sample_weight=np.zeros(500))


def test_weighted_pair_with_the_weights_in_either_file(weighted) -> None:
    d, y, p, u = weighted["dir"], weighted["y"], weighted["p"], weighted["u"]
    expected = metrics.log_loss(y, p, sample_weight=u)
    kw = {"id": "id", "target": "y", "sample_weight": "u", "bootstrap": 0, "batch_rows": 70}
    for sol, sub in (
        ("sol_u.csv", "sub_shuffled.csv"),  # the solution's weights, joined through its index
        ("sol_u.csv", "sub_u.csv"),  # both hold one: the solution's, in file order
        ("sol.csv", "sub_u.csv"),  # the submission's, row by row
        ("sol.csv", "sub_u_shuffled.csv"),  # the submission's, through the index
    ):
        report = score(d / sub, solution=d / sol, **kw)
        assert report.log_loss == pytest.approx(expected, rel=1e-12), (sol, sub)
        assert report.weight == pytest.approx(float(np.sum(u)), rel=1e-12)
        assert "u" not in report.input["probability_columns"]
    with pytest.raises(InputError, match="column 'nope': no such column in the solution or the"):
        score(d / "sub_u.csv", solution=d / "sol.csv", **{**kw, "sample_weight": "nope"})


def test_weighted_dask_engine_equals_local(weighted) -> None:
    pytest.importorskip("distributed")
    d = weighted["dir"]
    kw = {"target": "y", "proba": "p_*", "sample_weight": "u", "bootstrap": 0}
    local = score(d / "t.parquet", **kw)
    remote = score(d / "t.parquet", engine="dask", partitions=3, **kw)
    local_numbers, remote_numbers = (
        {k: v for k, v in r.to_dict().items() if k != "input"} for r in (local, remote)
    )
    assert_same_numbers(local_numbers, remote_numbers, rel=1e-7)
    pair = {"id": "id", "target": "y", "sample_weight": "u", "bootstrap": 0}
    one = score(d / "sub_shuffled.csv", solution=d / "sol_u.csv", **pair)
    two = score(d / "sub_shuffled.csv", solution=d / "sol_u.csv", engine="dask", **pair)
    assert two.log_loss == pytest.approx(one.log_loss, rel=1e-12)
    assert two.weight == pytest.approx(one.weight, rel=1e-12)


def test_bad_weight_columns_name_file_row_and_column(weighted, tmp_path: Path) -> None:
    head = "y,p_a,p_b,w\na,0.25,0.75,1\n"
    for cell, message in (
        ("-0.5", "sample weight -0.5 is not a finite number >= 0"),
        ("nan", "sample weight nan is not a finite number >= 0"),
        ("inf", "sample weight inf is not a finite number >= 0"),
        ("abc", "'abc' is not a number"),
        ("", "missing sample weight"),
    ):
        path = tmp_path / "bad.csv"
        path.write_text(head + f"b,0.5,0.5,{cell}\n")
        with pytest.raises(InputError, match=re.escape(f"bad.csv, row 2, column 'w': {message}")):
            score(path, target="y", proba="p_*", sample_weight="w")
    pq.write_table(
        pa.table({"y": ["a", "b"], "p_a": [0.5, 0.5], "p_b": [0.5, 0.5], "w": [1.0, -1.0]}),
        tmp_path / "bad.parquet",
    )
    with pytest.raises(InputError, match=r"bad.parquet, row 2, column 'w': sample weight -1.0"):
        score(tmp_path / "bad.parquet", target="y", proba="p_*", sample_weight="w")
    with pytest.raises(InputError, match="column 'y': the sample weight column must not be"):
        score(weighted["dir"] / "t.csv", target="y", proba="p_*", sample_weight="y")
    with pytest.raises(InputError, match="column 'nope': no such column"):
        score(weighted["dir"] / "t.csv", target="y", proba="p_*", sample_weight="nope")
    with pytest.raises(InputError, match="the sample weight column is also a probability column"):
        score(weighted["dir"] / "t.csv", target="y", proba=["p_*", "w"], sample_weight="w")
    with pytest.raises(TypeError, match="sample_weight must be a column name"):
        score(weighted["dir"] / "t.csv", target="y", proba="p_*", sample_weight=b"w")


def test_weighted_comparison(weighted) -> None:
    d, u = weighted["dir"], weighted["u"]
    kw = {"target": "y", "proba": "p_*", "sample_weight": "u", "bootstrap": 20}
    cmp = score([d / "t.csv", d / "t.parquet"], **kw)
    assert all(r.weight == pytest.approx(float(np.sum(u))) for r in cmp.reports.values())


def test_a_dask_dataframe_is_refused_with_the_way_to_score_it():
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = dd.from_pandas(pd.DataFrame({"y": [0, 1], "p_0": [0.4, 0.3], "p_1": [0.6, 0.7]}), 1)
    with pytest.raises(TypeError, match=r"dask\..*DataFrame.*to_parquet\(folder\)"):
        score(frame, target="y")
    # an array has no to_parquet: the way to one that has
    array = frame[["p_0", "p_1"]].to_dask_array(lengths=True)
    with pytest.raises(TypeError, match=r"Array.*dask\.dataframe\.from_dask_array"):
        score(array, target=np.array([0, 1]))


def test_an_object_column_of_mixed_values_is_read_cell_by_cell():
    """A pandas object column holding numbers and one text: the same number as the float
    column, and the bad cell named by row and column as in a file (was pyarrow's message)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.dirichlet(np.ones(3), 300), columns=["p_a", "p_b", "p_c"])
    frame["y"] = np.array(list("abc"))[rng.integers(0, 3, 300)]
    mixed = frame.astype({"p_b": object, "p_c": object})
    mixed.loc[0, "p_b"] = str(float(frame.loc[0, "p_b"]))  # a number as text: mixed types
    mixed["note"] = [1.5, "x", pd.NA] * 100  # a mixed column that is not scored
    assert (
        score(mixed, target="y", proba="p_*").to_dict()["log_loss"]
        == score(frame, target="y", proba="p_*").to_dict()["log_loss"]
    )
    mixed.loc[250, "p_b"] = "abc"
    with pytest.raises(InputError, match=r"row 251, column 'p_b': 'abc' is not a number"):
        score(mixed, target="y", proba="p_*")
    for missing in (None, pd.NA, np.nan):
        mixed.loc[250, "p_b"] = missing
        with pytest.raises(InputError, match=r"row 251, column 'p_b': missing probability"):
            score(mixed, target="y", proba="p_*")


def test_classes_of_another_count_than_the_columns_say_what_to_name():
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"names 2 classes, but data has 3 columns.*one class per"):
        score(p, target=np.zeros(4, int), classes=["a", "b"])
    with pytest.raises(ValueError, match=r"names 3 classes, but data has one column.*negative"):
        score(np.full((4, 1), 0.5), target=np.zeros(4, int), classes=["a", "b", "c"])


def test_no_negative_zero_is_shown_and_options_are_as_given():
    """One class present: entropies of 0 come out as 0, not -0, in the numbers, the text and
    the page; ``renormalize`` not asked for reads False."""
    rng = np.random.default_rng(4)
    p = rng.uniform(0.5, 1.0, 200)
    report = score(np.stack([1 - p, p], axis=1), target=np.ones(200, dtype=int), classes=[0, 1])
    data = report.to_dict()

    def negative_zeros(value, path=""):
        if isinstance(value, dict):
            return [z for k, v in value.items() for z in negative_zeros(v, f"{path}.{k}")]
        if isinstance(value, list):
            return [z for i, v in enumerate(value) for z in negative_zeros(v, f"{path}[{i}]")]
        return (
            [path]
            if isinstance(value, float) and value == 0 and math.copysign(1, value) < 0
            else []
        )

    assert negative_zeros(data) == []
    assert data["calibration"]["skill"]["base_rate_log_loss"] == 0.0
    assert not re.search(r"-0\.0+\b", report.to_text())
    assert not re.search(r">-0\.0+<", report.html())
    assert data["input"]["options"]["renormalize"] is False


def test_the_decomposition_table_adds_up_in_every_row():
    """Each row of the text's and the page's decomposition table reads score = MCB - DSC +
    UNC; the binned Murphy row names its within-bin terms, which complete that identity."""
    rng = np.random.default_rng(1)
    p, y = rng.dirichlet(np.ones(3), 300), rng.integers(0, 3, 300)
    report = score(p, target=y, bootstrap=0)
    text = report.to_text()
    rows = [line for line in text.splitlines() if "(CORP)" in line or "(Murphy" in line]
    assert len(rows) == 3
    for row in rows:
        numbers = [float(v) for v in re.findall(r"-?\d+\.\d+", row)]
        extra = numbers.pop(0) if "within-bin terms" in row else 0.0
        total, mcb, dsc, unc = numbers
        assert total == pytest.approx(mcb - dsc + unc + extra, abs=3e-6), row
    m = report.calibration["murphy"]
    within = m["within_bin_variance"] - m["within_bin_covariance"]
    assert abs(within) > 1e-4  # (this case: the terms are not negligible)
    assert f"Brier score (Murphy, bins; + within-bin terms {within:.6f})" in text
    assert "Brier score (Murphy, bins; + within-bin terms" in report.html()


def test_column_arguments_classes_and_indent_of_the_wrong_kind_are_named():
    """``id``/``split`` that are not column names gave an AttributeError (``'float' object has
    no attribute 'split'``), ``classes`` of a number Python's "not iterable", and a huge JSON
    indent a MemoryError."""
    rng = np.random.default_rng(2)
    p, y = rng.dirichlet(np.ones(3), 100), rng.integers(0, 3, 100)
    for kw, says in (
        ({"id": 1.5}, "id must be a column name"),
        ({"split": ["Usage"]}, "split must be a column name"),
        ({"id": np.array([1, 2])}, "id must be a column name"),
        ({"classes": 1.5}, "classes must be a list of class names; got float"),
        ({"classes": np.array(3)}, "classes must be a list of class names; got ndarray"),
    ):
        with pytest.raises(TypeError, match=says):
            score(p, target=y, **kw)
    report = score(p, target=y, bootstrap=0)
    both = score({"a": p, "b": p[::-1].copy()}, target=y, bootstrap=0)
    for result in (report, both):
        with pytest.raises(ValueError, match="indent must be between 0 and 16"):
            result.to_json(indent=10**9)
        with pytest.raises(TypeError, match="indent must be an integer"):
            result.to_json(indent=1.5)
        assert json.loads(result.to_json(indent=None)) == json.loads(result.to_json(indent=4))


def test_text_labels_of_arrays_name_the_classes_in_sorted_order_as_scikit_learn():
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(3), 60)
    y = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, 60)]
    got = score(p, target=y, bootstrap=0)
    assert got.input["classes"] == ["cat", "dog", "emu"]
    assert got.log_loss == pytest.approx(log_loss(y, p), rel=1e-12)
    q = rng.uniform(0.05, 0.95, 40)  # the second sorted label's probability
    yes = np.where(rng.random(40) < q, "yes", "no")
    assert score(q, target=yes, bootstrap=0).log_loss == pytest.approx(log_loss(yes, q))
    with pytest.raises(InputError, match="name each column's class"):  # 2 labels, 3 columns
        score(p, target=np.where(y == "emu", "cat", y), bootstrap=0)
    # integers in an object array (a pandas object column) stay class indices: 11 classes,
    # where sorting their text would put 10 before 2
    p11 = rng.dirichlet(np.ones(11), 300)
    y11 = rng.integers(0, 11, 300)
    expected = log_loss(y11, p11, labels=range(11))
    assert score(p11, target=y11.astype(object), bootstrap=0).log_loss == pytest.approx(expected)


def test_integer_column_names_of_a_pandas_frame_are_column_names():
    """``pd.DataFrame(clf.predict_proba(X))`` has the columns 0, 1, 2: named by the integers
    or their text (the integers were refused as "not a column name")."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(12)
    p = rng.dirichlet(np.ones(3), 50)
    y = rng.integers(0, 3, 50)
    frame = pd.DataFrame(p).assign(y=y)
    expected = metrics.log_loss(y, p)
    for proba in ([0, 1, 2], [np.int64(0), 1, "2"], ["0", "1", "2"]):
        assert score(frame, target="y", proba=proba, bootstrap=0).log_loss == pytest.approx(
            expected, rel=1e-12
        )
    weighted = frame.assign(**{"3": 1.0}).rename(columns={"3": 3})  # a weight column named 3
    assert score(weighted, target="y", proba=[0, 1, 2], sample_weight=3).log_loss == (
        pytest.approx(expected, rel=1e-12)
    )
    labelled = pd.DataFrame(p, columns=["a", "b", "c"])
    labelled.insert(0, 0, np.array(list("abc"))[y])  # the labels in the column named 0
    assert score(labelled, target=0, bootstrap=0).log_loss == pytest.approx(expected, rel=1e-12)
    with pytest.raises(TypeError, match=r"proba must be a column name \(text, or an integer"):
        score(frame, target="y", proba=[0.5, 1])


def test_an_in_memory_dataset_is_a_table():
    """A pyarrow ``InMemoryDataset`` is scored as its table (it was refused by a message that
    listed datasets as accepted)."""
    import pyarrow as pa
    import pyarrow.dataset as pds

    rng = np.random.default_rng(13)
    p = rng.dirichlet(np.ones(2), 40)
    y = rng.integers(0, 2, 40)
    table = pa.table({"y": y, "p_0": p[:, 0], "p_1": p[:, 1]})
    got = score(pds.dataset(table), target="y", proba="p_*", bootstrap=0)
    assert got.log_loss == pytest.approx(metrics.log_loss(y, p), rel=1e-12)
    assert got.n == 40


def test_data_of_no_kind_scored_is_named_before_an_array_target():
    """A Dask array with labels as an array: the data is what is refused (the message spoke of
    target, which is fine for NumPy data)."""
    da = pytest.importorskip("dask.array")
    p = da.from_array(np.array([[0.4, 0.6], [0.7, 0.3]]))
    with pytest.raises(TypeError, match=r"^data must be a path.*got dask\.array"):
        score(p, target=np.array([1, 0]))
    with pytest.raises(
        TypeError, match=r"^target must be a column name \(a str\); got ndarray \(labels as an"
    ):
        score(Path("x.csv"), target=np.array([1, 0]))


def test_sparse_pandas_columns_are_read_dense():
    """A pandas SparseArray column is scored as its dense values (pyarrow's own TypeError
    came through)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(14)
    pb = rng.random(30)
    y = np.array(["no", "yes"])[rng.integers(0, 2, 30)]
    frame = pd.DataFrame({"y": y, "no": pd.arrays.SparseArray(1 - pb), "yes": pb})
    got = score(frame, target="y", proba=["no", "yes"], bootstrap=0)
    dense = score(frame.astype({"no": float}), target="y", proba=["no", "yes"], bootstrap=0)
    assert got.log_loss == dense.log_loss
    expected = metrics.log_loss(y, np.stack([1 - pb, pb], 1))
    assert got.log_loss == pytest.approx(expected, rel=1e-12)


def test_a_submission_file_written_with_its_index_is_refused(tmp_path: Path):
    """A submission written by pandas with its index has a column without a header; taken as a
    class by default, it was scored (or refused for a probability of 2 without a hint)."""
    pd = pytest.importorskip("pandas")
    sol = pd.DataFrame({"id": [10, 11, 12], "y": ["cat", "dog", "cat"]})
    sub = pd.DataFrame({"id": [10, 11, 12], "cat": [0.8, 0.3, 0.6], "dog": [0.2, 0.7, 0.4]})
    sol.to_csv(tmp_path / "sol.csv", index=False)
    sub.to_csv(tmp_path / "sub.csv")  # with the index: a first column without a header
    with pytest.raises(InputError, match=r"column '': a column without a header \(an index"):
        score(tmp_path / "sub.csv", solution=tmp_path / "sol.csv", id="id", target="y")
    sub.to_csv(tmp_path / "sub.csv", index=False)
    ok = score(tmp_path / "sub.csv", solution=tmp_path / "sol.csv", id="id", target="y")
    assert ok.log_loss == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.6])), rel=1e-12)


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_submission_column_that_is_no_label_is_refused_in_a_pair(tmp_path: Path, engine):
    """A pair whose classes are the submission's columns: a column no solution row's label
    names (a fold number) was scored as a fourth class and rescaled away (2.709 where Kaggle's
    score is 2.184), as kaggle_score refuses it; named with proba, or the classes named, a
    class no row is of is taken."""
    pd = pytest.importorskip("pandas")
    from crossentropy.scoring import kaggle_score

    sol = pd.DataFrame({"id": [1, 2, 3, 4], "y": ["cat", "dog", "cat", "dog"]})
    sub = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "cat": [0.7, 0.2, 0.5, 0.3],
            "dog": [0.2, 0.6, 0.3, 0.6],
            "bird": [0.1, 0.2, 0.2, 0.1],
            "fold": [0.5] * 4,
        }
    )
    sol.to_csv(tmp_path / "sol.csv", index=False)
    sub.to_csv(tmp_path / "sub.csv", index=False)
    kw = {"solution": tmp_path / "sol.csv", "id": "id", "target": "y", "engine": engine}
    message = r"column 'bird': submission column 'bird' is no solution row's label in 'y'"
    with pytest.raises(InputError, match=message):
        score(tmp_path / "sub.csv", **kw)
    with pytest.raises(ValueError, match=r"submission column 'bird' is no solution row's"):
        kaggle_score(sol, sub, "id", target="y")
    cols = ["cat", "dog", "bird"]  # bird named: a class no row is of, kept
    got = score(tmp_path / "sub.csv", proba=cols, bootstrap=0, **kw)
    want = metrics.log_loss(sol["y"], sub[["bird", "cat", "dog"]].to_numpy(), labels=cols)
    assert got.log_loss == pytest.approx(want, rel=1e-12)
    assert [c["count"] for c in got.per_class] == [2, 2, 0]
    sub.drop(columns="fold").to_csv(tmp_path / "sub.csv", index=False)
    named = score(tmp_path / "sub.csv", classes=cols, bootstrap=0, **kw)
    assert named.log_loss == got.log_loss
    code = main(
        [
            "score",
            "--solution",
            str(tmp_path / "sol.csv"),
            "--submission",
            str(tmp_path / "sub.csv"),
            "--id",
            "id",
            "--target",
            "y",
        ]
    )
    assert code == 2


def test_pandas_stored_index_in_parquet_is_no_class(tmp_path: Path):
    """A frame shuffled (or filtered) and written with to_parquet keeps its index in a column
    ``__index_level_0__``, which pandas reads back as the index: it was taken as a class
    (refused: "probability 208.0 is greater than 1"); it is left out, in a table and a pair."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), size=30)
    frame = pd.DataFrame(
        {"id": np.arange(30), "y": rng.choice(["a", "b", "c"], 30), "a": p[:, 0], "b": p[:, 1]}
    )
    frame["c"] = p[:, 2]
    shuffled = frame.sample(frac=1.0, random_state=0)
    shuffled.to_parquet(tmp_path / "t.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "t.parquet").names
    want = metrics.log_loss(frame["y"], p)
    got = score(tmp_path / "t.parquet", target="y", id="id", bootstrap=0)
    assert got.log_loss == pytest.approx(want, rel=1e-12)
    assert [c["label"] for c in got.per_class] == ["a", "b", "c"]
    star = score(tmp_path / "t.parquet", target="y", id="id", proba="*", bootstrap=0)
    assert star.log_loss == got.log_loss  # "*": every other column, as without a pattern
    frame[["id", "y"]].to_csv(tmp_path / "sol.csv", index=False)
    shuffled.drop(columns="y").to_parquet(tmp_path / "sub.parquet")
    pair = score(tmp_path / "sub.parquet", solution=tmp_path / "sol.csv", id="id", bootstrap=0)
    assert pair.log_loss == pytest.approx(want, rel=1e-12)


def test_unusual_but_valid_inputs_score_as_scikit_learn_does(tmp_path: Path) -> None:
    """Big-endian arrays (in memory, .npy, .npz), class names that write integers beyond
    int64, and uint64 ids beyond int64 in a pair: scored, as the same data in plain form."""
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 1, 1])
    want = metrics.log_loss(y, p)
    big_p, big_y = p.astype(">f8"), y.astype(">i8")
    assert score(big_p, target=y).log_loss == pytest.approx(want, rel=1e-15)
    assert score(p, target=big_y).log_loss == pytest.approx(want, rel=1e-15)
    np.save(tmp_path / "p.npy", big_p)
    np.save(tmp_path / "y.npy", big_y)
    assert score(tmp_path / "p.npy", target_file=tmp_path / "y.npy").log_loss == pytest.approx(
        want, rel=1e-15
    )
    np.savez(tmp_path / "a.npz", y_true=big_y, y_proba=big_p)
    assert score(tmp_path / "a.npz").log_loss == pytest.approx(want, rel=1e-15)
    # integer class names beyond int64 are matched by their text
    huge = str(2**64 - 1)
    labels = [huge if t == 0 else "1" for t in y]
    csv = tmp_path / "big.csv"
    rows = [f"{t},{a},{b}" for t, (a, b) in zip(labels, p, strict=True)]
    csv.write_text("\n".join([f"y,p_{huge},p_1", *rows]) + "\n")
    assert score(csv, target="y", proba="p_*").log_loss == pytest.approx(want, rel=1e-15)
    table = pa.table(
        {"y": pa.array([int(t) for t in labels], pa.uint64()), f"p_{huge}": p[:, 0], "p_1": p[:, 1]}
    )
    pq.write_table(table, tmp_path / "u.parquet")
    got = score(tmp_path / "u.parquet", target="y", proba="p_*")
    assert got.log_loss == pytest.approx(want, rel=1e-15)
    # with classes that write int64 values, a uint64 label beyond int64 is none of them
    table = pa.table({"y": pa.array([0, 1, 2**63 + 1], pa.uint64()), "0": p[:, 0], "1": p[:, 1]})
    pq.write_table(table, tmp_path / "u2.parquet")
    with pytest.raises(InputError, match=r"row 3, column 'y': label 9223372036854775809 is not"):
        score(tmp_path / "u2.parquet", target="y")
    # uint64 ids beyond int64, in both files or beside int64 ones
    ids = pa.array([2**63 + 5, 1, 2], pa.uint64())
    sol = pa.table({"id": ids, "y": ["a", "b", "b"]})
    pq.write_table(sol, tmp_path / "sol.parquet")
    small = pa.array([2**63 - 5, 1, 2], pa.uint64())
    for sol_ids, sub_ids in ((ids, ids), (small, small.cast(pa.int64()))):
        pq.write_table(sol.set_column(0, "id", sol_ids), tmp_path / "sol.parquet")
        sub = pa.table({"id": sub_ids, "a": p[:, 0], "b": p[:, 1]})
        pq.write_table(sub, tmp_path / "sub.parquet")
        got = score(tmp_path / "sub.parquet", solution=tmp_path / "sol.parquet", id="id")
        assert got.log_loss == pytest.approx(want, rel=1e-15)


def test_bytes_columns_are_read_as_their_text(tmp_path: Path) -> None:
    """Parquet's binary columns without a text annotation (older writers' strings): labels,
    ids and splits read as their UTF-8 text; bytes that are not UTF-8 name their row."""
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    text = pa.table({"id": ["r1", "r2", "r3"], "y": ["a", "b", "a"], "u": ["x", "x", "z"]})
    raw = pa.table({name: text[name].cast(pa.binary()) for name in text.column_names})
    for table in (text, raw):
        for j, name in enumerate(("a", "b")):
            table = table.append_column(name, pa.array(p[:, j]))
        pq.write_table(table, tmp_path / "t.parquet")
        got = score(tmp_path / "t.parquet", target="y", id="id", split="u", worst=1)
        assert got.log_loss == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4])), rel=1e-15)
        assert got.worst[0]["id"] == "r3"
        assert [s["split"] for s in got.splits] == ["x", "z"]
    for column, what, row in (("id", "ids", 2), ("y", "labels", 3), ("u", "split values", 1)):
        values = raw[column].to_pylist()
        values[row - 1] = b"\xff" + values[row - 1]
        bad = raw.set_column(raw.column_names.index(column), column, pa.array(values))
        for j, name in enumerate(("a", "b")):
            bad = bad.append_column(name, pa.array(p[:, j]))
        pq.write_table(bad, tmp_path / "bad.parquet")
        with pytest.raises(InputError, match=f"{what} must be UTF-8 text") as e:
            score(tmp_path / "bad.parquet", target="y", id="id", split="u")
        assert f"row {row}, column '{column}'" in str(e.value)


def test_struct_or_list_ids_and_splits_are_named_errors(tmp_path: Path) -> None:
    p = [[0.9, 0.1], [0.2, 0.8]]
    for name, values in (("struct", [{"k": 1}, {"k": 2}]), ("list", [[1], [2]])):
        table = pa.table({"key": values, "y": ["a", "b"], "a": [r[0] for r in p]})
        table = table.append_column("b", pa.array([r[1] for r in p]))
        pq.write_table(table, tmp_path / f"{name}.parquet")
        for option, what in (("id", "ids"), ("split", "split values")):
            with pytest.raises(InputError, match=f"{what} must be text, integers or dates") as e:
                score(tmp_path / f"{name}.parquet", target="y", **{option: "key"})
            assert "column 'key'" in str(e.value)


def test_integer_settings_given_as_0d_arrays_are_read_as_ints() -> None:
    """bins, worst, bootstrap, seed and batch_rows as 0-d integer arrays or tensors are read as
    their values: the report (and its JSON) holds Python ints, as for ints."""
    torch = pytest.importorskip("torch")
    p, t = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]), np.array([0, 1, 1])
    want = score(p, target=t, bins=10, worst=3, bootstrap=5, seed=1, batch_rows=2)
    got = score(
        p,
        target=t,
        bins=np.array(10),
        worst=torch.tensor(3),
        bootstrap=np.int16(5),
        seed=np.array(1),
        batch_rows=torch.tensor(2),
    )
    assert got.to_dict() == want.to_dict()
    assert json.loads(got.to_json())["input"]["options"]["bins"] == 10


def test_numpy_arrays_of_objects_or_complex_numbers_are_refused_by_name() -> None:
    """An object array's cells are checked as a table's (the row and column of the one that is
    no number), a missing label is named as missing at its row, and complex arrays are a
    TypeError naming the argument."""
    with pytest.raises(InputError, match=r"array, row 2, column '1': 'x' is not a number"):
        score(np.array([[0.5, 0.5], [0.2, "x"]], dtype=object), target=np.array([0, 1]))
    with pytest.raises(InputError, match=r"row 2, column '1': missing probability"):
        score(np.array([[0.5, 0.5], [0.2, None]], dtype=object), target=np.array([0, 1]))
    for kind in (object, float):  # a NaN is told as a NaN, whatever the array's dtype
        with pytest.raises(InputError, match=r"row 2, column '1': probability is NaN"):
            score(np.array([[0.5, 0.5], [0.2, np.nan]], dtype=kind), target=np.array([0, 1]))
    with pytest.raises(TypeError, match=r"data must hold probabilities .* complex128"):
        score(np.array([[0.5, 0.5], [0.2, 0.8]], dtype=complex), target=np.array([0, 1]))
    with pytest.raises(TypeError, match=r"target must hold labels .* complex128"):
        score(np.array([[0.5, 0.5], [0.2, 0.8]]), target=np.array([0, 1], dtype=complex))
    p = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.8, 0.2]])
    for gap in (None, np.nan):
        labels = np.array(["cat", gap, "dog", "cat"], dtype=object)
        for classes in (None, ["cat", "dog"]):
            with pytest.raises(InputError, match=r"row 2, column 'y_true': missing label"):
                score(p, target=labels, classes=classes)
    numbers = np.array([[0.5, 0.5], [0.2, 0.8]], dtype=object)
    got = score(numbers, target=np.array([0, 1], dtype=object), bootstrap=0)
    assert got.log_loss == pytest.approx(metrics.log_loss([0, 1], numbers.astype(float)))
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match=r"data must be a path, a DataFrame .* got pandas.*Series"):
        score(pd.Series([0.2, 0.7]), target=np.array([0, 1]))


def test_integer_ids_of_a_table_stay_integers() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"y": [0, 1, 0], "p_0": [0.9, 0.2, 0.4], "p_1": [0.1, 0.8, 0.6], "id": [101, 102, 103]}
    )
    for engine in ("local", "dask"):
        worst = score(frame, target="y", proba="p_*", id="id", engine=engine, bootstrap=0).worst
        assert [w["id"] for w in worst] == [103, 102, 101]
    text = frame.assign(id=["a", "b", "c"])
    assert score(text, target="y", proba="p_*", id="id", bootstrap=0).worst[0]["id"] == "c"


def test_numpy_text_probabilities_and_bytes_labels_read_as_a_csvs_cells() -> None:
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    want = metrics.log_loss([0, 1, 0], p)
    for probabilities in (p.astype(str), p.astype(str).astype(bytes)):
        assert score(probabilities, target=np.array([0, 1, 0]), bootstrap=0).log_loss == want
    labels = np.array([b"a", b"b", b"a"], dtype=object)
    got = score(p, target=labels, bootstrap=0)
    assert got.log_loss == want
    assert got.input["classes"] == ["a", "b"]
    with pytest.raises(InputError, match=r"row 1, column '1': 'x' is not a number"):
        score(np.array([["0.9", "x"], ["0.2", "0.8"]]), target=np.array([0, 1]))


def test_integer_labels_with_class_names_of_both_kinds_are_refused():
    """``classes=["x", 0]`` with integer labels: positions or names? Refused (label 0 was
    class 'x', label 1 class '0'); None is no class name (it became the class 'None')."""
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    with pytest.raises(ValueError, match="integer labels with class names of integers and of text"):
        score(p, target=[1, 0, 1], classes=["x", 0], bootstrap=0)
    with pytest.raises(TypeError, match=r"classes must be a list of class names; got None in"):
        score(p, target=[0, 1, 0], classes=[0, None], bootstrap=0)
    positions = score(p, target=[0, 1, 0], classes=["a", "b"], bootstrap=0)
    names = score(p, target=[0, 1, 0], classes=[0, 1], bootstrap=0)
    assert positions.log_loss == names.log_loss


def test_classes_may_be_any_iterable_read_once():
    """An iterator of class names is read once (the None check had used it up)."""
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    got = score(p, target=[0, 1, 0], classes=iter(["a", "b"]), bootstrap=0)
    assert got.log_loss == score(p, target=[0, 1, 0], classes=["a", "b"], bootstrap=0).log_loss


def test_boolean_and_integer_labels_index_columns_as_in_a_npy_file(tmp_path: Path) -> None:
    """One rule for arrays in memory and ``.npy`` files: boolean labels, and integer labels
    where the class names are not distinct integers (``"1"`` and ``"1.0"`` both write 1), are
    the columns' positions (in memory a boolean label was looked up as the text 'False')."""
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    np.save(tmp_path / "p.npy", p)
    want = metrics.log_loss([0, 1, 1], p)
    for y in (np.array([False, True, True]), np.array([0, 1, 1], dtype=np.uint8)):
        np.save(tmp_path / "y.npy", y)
        for classes in (["neg", "pos"], ["1", "1.0"]):
            got = score(p, target=y, classes=classes, bootstrap=0)
            from_file = score(
                tmp_path / "p.npy", target_file=tmp_path / "y.npy", classes=classes, bootstrap=0
            )
            assert got.log_loss == pytest.approx(want, rel=1e-15)
            assert from_file.log_loss == got.log_loss
    with pytest.raises(ValueError, match="target holds class index 2 for 2 classes"):
        score(p, target=np.array([0, 2, 1]), classes=["neg", "pos"], bootstrap=0)
