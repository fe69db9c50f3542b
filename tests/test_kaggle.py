"""Kaggle's metric convention (crossentropy.scoring._kaggle): kaggle_score over pandas, polars
and pyarrow tables against the formula of Kaggle's evaluation pages, and its refusals."""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest

from crossentropy import metrics
from crossentropy.scoring import kaggle_probabilities, kaggle_score

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

CLASSES = ["ant", "bee", "cat", "dog"]


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _kaggle_formula(y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> float:
    """Kaggle's evaluation text, written out: rows divided by their sums, probabilities
    replaced by max(min(p, 1 - 1e-15), 1e-15), the mean of -log p of the true class."""
    q = p / p.sum(axis=1, keepdims=True)
    q = np.maximum(np.minimum(q, 1 - eps), eps)
    return float(-np.mean(np.log(q[np.arange(len(y)), y])))


def _case(seed: str, n: int = 60, decimals: int | None = 2):
    """(solution one-hot DataFrame with a Usage column, shuffled submission DataFrame, y, p in
    the solution's order); probabilities rounded as submissions often are (zeros, rows off 1)."""
    rng = _rng(seed)
    y = rng.integers(0, len(CLASSES), n)
    logits = rng.standard_normal((n, len(CLASSES))) * 3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if decimals is not None:
        p = np.round(p, decimals)
    ids = [f"r{i:03d}" for i in range(n)]
    solution = pd.DataFrame({"id": ids})
    for j, c in enumerate(CLASSES):
        solution[c] = (y == j).astype(int)
    solution["Usage"] = np.where(rng.random(n) < 0.3, "Public", "Private")
    order = rng.permutation(n)
    submission = pd.DataFrame({"id": [ids[i] for i in order]})
    for j, c in enumerate(CLASSES):
        submission[c] = p[order, j]
    return solution, submission, y, p


def test_kaggle_score_is_the_documented_formula_in_any_row_order():
    solution, submission, y, p = _case("formula")
    assert (p == 0).any()  # the case that matters: zeros, and rows that do not sum to 1
    assert not np.allclose(p.sum(axis=1), 1)
    ours = kaggle_score(solution, submission, "id")
    assert math.isclose(ours, _kaggle_formula(y, p), rel_tol=1e-13)
    # scikit-learn's convention (dtype eps, no rescaling) scores the same rows differently
    with pytest.warns(UserWarning, match="do not sum to one"):
        sk = metrics.log_loss(y, p)
    assert abs(sk - ours) > 1e-3


@pytest.mark.parametrize("eps", [1e-15, 1e-7, 1e-3])
def test_kaggle_score_warns_of_nothing_its_own_clip_does(eps):
    """The clip moves the rescaled rows' sums off 1 (by up to C eps): Kaggle's convention,
    not a fault of the submission; the one-hot solution path alike."""
    onehot, submission, y, p = _case("formula")
    labels = pd.DataFrame({"id": onehot["id"], "y": [CLASSES[i] for i in y]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = kaggle_score(onehot, submission, "id", eps=eps)
        assert kaggle_score(labels, submission, "id", target="y", eps=eps) == ours
    assert math.isclose(ours, _kaggle_formula(y, p, eps), rel_tol=1e-13)


def test_kaggle_score_equals_log_loss_for_proper_probabilities():
    solution, submission, y, p = _case("proper", decimals=None)
    assert math.isclose(
        kaggle_score(solution, submission, "id"), metrics.log_loss(y, p), rel_tol=1e-12
    )


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_kaggle_score_takes_pandas_polars_and_arrow_tables(kind):
    solution, submission, y, p = _case("kinds")
    if kind == "polars":
        pl = pytest.importorskip("polars")
        solution, submission = pl.from_pandas(solution), pl.from_pandas(submission)
    elif kind == "pyarrow":
        solution, submission = pa.Table.from_pandas(solution), pa.Table.from_pandas(submission)
    assert math.isclose(
        kaggle_score(solution, submission, "id"), _kaggle_formula(y, p), rel_tol=1e-13
    )


def test_kaggle_score_leaves_out_pandas_stored_index_and_takes_integer_names():
    solution, submission, y, p = _case("index")
    shuffled = pa.Table.from_pandas(submission.sample(frac=1.0, random_state=0))
    assert "__index_level_0__" in shuffled.column_names  # (a shuffled frame's index)
    expected = _kaggle_formula(y, p)
    assert math.isclose(kaggle_score(solution, shuffled, "id"), expected, rel_tol=1e-13)
    # pandas' integer column names, given as integers (pyarrow holds them as text)
    sol, sub = solution.rename(columns={"id": 0}), submission.rename(columns={"id": 0})
    assert math.isclose(kaggle_score(sol, sub, 0), expected, rel_tol=1e-13)
    sol = sol.rename(columns={"Usage": 7})
    public = kaggle_score(solution, submission, "id", usage="Public")
    assert kaggle_score(sol, sub, 0, usage="Public", usage_column=7) == public


def test_kaggle_score_per_usage_split_and_with_a_target_column():
    solution, submission, y, p = _case("usage")
    for split in ("Public", "Private"):
        keep = (solution["Usage"] == split).to_numpy()
        got = kaggle_score(solution, submission, "id", usage=split)
        assert math.isclose(got, _kaggle_formula(y[keep], p[keep]), rel_tol=1e-13)
    # the whole submission is checked, as for the whole score: an id of neither split, or
    # one split's rows missing, is refused when the other split is scored
    public = (solution["Usage"] == "Public").to_numpy()
    stray = pd.concat([submission, submission.iloc[:1].assign(id=10**9)], ignore_index=True)
    with pytest.raises(ValueError, match="submission has the id '1000000000', which is not in"):
        kaggle_score(solution, stray, "id", usage="Public")
    only = submission[submission["id"].isin(solution["id"][public])]
    with pytest.raises(ValueError, match="submission has no row for the solution's id"):
        kaggle_score(solution, only, "id", usage="Public")
    labelled = pd.DataFrame({"id": solution["id"], "animal": np.array(CLASSES)[y]})
    assert math.isclose(
        kaggle_score(labelled, submission, "id", target="animal"),
        _kaggle_formula(y, p),
        rel_tol=1e-13,
    )


def test_kaggle_score_target_labels_follow_the_rule_of_files():
    """A target column of integers, of floats or texts writing them, or of booleans (False
    and True as 0 and 1) matches submission columns named by integers, as files do; a label
    writing another number is refused with its id."""
    rng = np.random.default_rng(5)
    n = 30
    p = rng.dirichlet(np.ones(3), n)
    y = rng.integers(0, 3, n)
    ids = [f"r{i:02d}" for i in range(n)]
    submission = pd.DataFrame({"id": ids, **{str(j): p[:, j] for j in range(3)}})
    want = _kaggle_formula(y, p)
    for labels in (y, y.astype(np.float64), [f"{v}.0" for v in y], [str(v) for v in y]):
        solution = pd.DataFrame({"id": ids, "y": labels})
        assert math.isclose(
            kaggle_score(solution, submission, "id", target="y"), want, rel_tol=1e-13
        )
    two = submission[["id", "0", "1"]].assign(**{"1": 1 - submission["0"]})
    hit = y % 2 == 1
    solution = pd.DataFrame({"id": ids, "y": hit})
    got = kaggle_score(solution, two, "id", target="y")
    assert math.isclose(
        got, _kaggle_formula(hit.astype(int), two[["0", "1"]].to_numpy()), rel_tol=1e-13
    )
    labels = [f"{v}.0" for v in y]
    labels[4] = "1.5"
    with pytest.raises(ValueError, match=r"holds the label '1.5' \(id 'r04'\), which is not one"):
        kaggle_score(pd.DataFrame({"id": ids, "y": labels}), submission, "id", target="y")


def test_kaggle_score_reads_an_id_set_as_the_index():
    solution, submission, y, _ = _case("index")
    want = kaggle_score(solution, submission, "id")
    assert kaggle_score(solution.set_index("id"), submission.set_index("id"), "id") == want
    assert kaggle_score(solution, submission.set_index("id"), "id", usage="Public") == (
        kaggle_score(solution, submission, "id", usage="Public")
    )
    labelled = pd.DataFrame({"id": solution["id"], "animal": np.array(CLASSES)[y]})
    by_index = labelled.set_index(["animal", "id"])
    assert kaggle_score(by_index, submission, "id", target="animal") == pytest.approx(want)


def test_kaggle_score_joins_categorical_ids():
    pl = pytest.importorskip("polars")
    solution, submission, _, _ = _case("categorical")
    want = kaggle_score(solution, submission, "id")
    assert kaggle_score(solution.astype({"id": "category"}), submission, "id") == want
    as_polars = pl.from_pandas(submission).with_columns(pl.col("id").cast(pl.Categorical))
    assert kaggle_score(solution, as_polars, "id") == want


def test_kaggle_score_reads_text_views():
    solution, submission, y, _ = _case("views")
    labelled = pa.table(
        {
            "id": pa.array(solution["id"].tolist(), pa.string_view()),
            "animal": pa.array(np.array(CLASSES)[y].tolist(), pa.string_view()),
        }
    )
    want = kaggle_score(solution, submission, "id")
    assert kaggle_score(labelled, submission, "id", target="animal") == pytest.approx(want)


def test_kaggle_probabilities_rescales_then_clips():
    got = kaggle_probabilities([[0.5, 0.3, 0.0], [2.0, 1.0, 1.0]])
    np.testing.assert_allclose(got, [[0.625, 0.375, 1e-15], [0.5, 0.25, 0.25]], rtol=1e-15)
    assert kaggle_probabilities([[1.0, 0.0]], eps=1e-3).tolist() == [[1 - 1e-3, 1e-3]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow: a huge row is scaled by its largest entry
        huge = kaggle_probabilities([[1e308, 1e308, 0.0], [0.5, 0.3, 0.2]])
    np.testing.assert_allclose(huge, [[0.5, 0.5, 1e-15], [0.5, 0.3, 0.2]], rtol=1e-15)
    with pytest.raises(ValueError, match=r"ids must hold one id per row of proba \(1\); got 3"):
        kaggle_probabilities([[0.5, 0.5]], ids=[1, 2, 3])
    with pytest.raises(ValueError, match="columns must hold one name per column"):
        kaggle_probabilities([[0.5, 0.5]], columns=["a"])
    with pytest.raises(ValueError, match=r"got nan at the row of id 7, column 'b'$"):
        kaggle_probabilities([[0.5, np.nan]], ids=np.array([7]), columns=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"got -1\.0 at row 1, column 0$"):
        kaggle_probabilities([[0.5, 0.5], [-1.0, 2.0]])
    with pytest.raises(ValueError, match=r"the row of id 11 sums to 0$"):
        kaggle_probabilities([[0.5, 0.5], [0.0, 0.0]], ids=pa.array([10, 11]))
    with pytest.raises(ValueError, match=r"the row of id 'b' sums to 0$"):
        kaggle_probabilities([[0.5, 0.5], [0.0, 0.0]], ids=(c for c in "ab"))
    with pytest.raises(TypeError, match=r"^proba must be a matrix of numbers, one column per"):
        kaggle_probabilities([["a", 1.0]])  # was NumPy's "could not convert string to float"


def test_kaggle_score_names_the_submission_in_a_bad_score():
    """A bad score of the submission is the submission's, named by its id and column (the
    message spoke of ``proba``, kaggle_probabilities' argument)."""
    solution, submission, _, _ = _case("named", n=6)
    bad = submission.copy()
    bad.loc[bad["id"] == "r002", "cat"] = np.inf
    with pytest.raises(ValueError, match=r"^submission must hold finite, non-negative scores; "):
        kaggle_score(solution, bad, "id")


def _bad_cases():
    solution, submission, _, _ = _case("bad", n=8)
    smooth_solution, smooth_submission, _, _ = _case("bad", n=60, decimals=None)
    dup = submission.copy()
    dup.loc[1, "id"] = dup.loc[0, "id"]
    missing = submission.iloc[1:]
    extra = pd.concat([submission, submission.iloc[:1].assign(id="zzz")])
    nan = submission.copy()
    nan.loc[nan["id"] == "r003", "bee"] = np.nan
    negative = submission.copy()
    negative.loc[negative["id"] == "r002", "cat"] = -0.1
    zero = submission.copy()
    zero.loc[zero["id"] == "r005", CLASSES] = 0.0
    ints = submission.assign(id=range(8))
    labelled = pd.DataFrame({"id": solution["id"], "animal": ["ant"] * 7 + ["yak"]})
    keys = submission["id"].tolist()
    mixed = submission.astype({"bee": object})
    every = pd.DataFrame({"id": solution["id"], "animal": (CLASSES * 2)[:8]})
    thin = smooth_submission.drop(columns="dog")
    thin.loc[thin.index[3], ["ant", "bee", "cat"]] = 0.0
    levels = submission.copy()
    levels.columns = pd.MultiIndex.from_tuples([("k", c) for c in submission.columns])
    mixed.loc[4, "bee"] = "x"  # one text cell among numbers
    return [
        (solution, submission.drop(columns="id"), {}, "submission has no column 'id'"),
        (solution, dup, {}, "submission repeats the id"),
        (solution, missing, {}, "submission has no row for the solution's id"),
        (solution, extra, {}, "submission has the id 'zzz', which is not in the solution"),
        (solution, nan, {}, "got nan at the row of id 'r003', column 'bee'"),
        (solution, negative, {}, "got -0.1 at the row of id 'r002', column 'cat'"),
        (solution, zero, {}, "the row of id 'r005' sums to 0"),
        (solution, ints, {}, "submission has no row for the solution's id 'r000'"),
        (solution, submission, {"usage": "Hidden"}, "no row with Usage = 'Hidden'"),
        (
            labelled,
            submission,
            {"target": "animal"},
            r"solution column 'animal' holds the label 'yak' \(id 'r007'\), which is not one of",
        ),
        (
            labelled,
            submission,
            {},
            r"^submission column 'ant' has no 0/1 column of that name in the solution: drop it "
            r"if it is no class, or give the solution's column of class labels as target=",
        ),
        (  # a column that is no class: named as the submission's, not the solution's
            solution,
            submission.assign(fold=0),
            {},
            r"^submission column 'fold' has no 0/1 column of that name in the solution",
        ),
        (
            solution,
            submission.assign(Usage="Public"),
            {},
            r"^submission column 'Usage' is the solution's split column \(usage_column\), not "
            "a class: drop it",
        ),
        (
            labelled.assign(animal=["ant"] * 6 + [None, "ant"]),
            submission,
            {"target": "animal"},
            r"solution column 'animal' has a missing label \(id 'r006'\)",
        ),
        (solution, submission[["id", "ant"]], {}, "a probability column per class"),
        (pd.concat([solution, solution.iloc[:1]]), submission, {}, "solution repeats the id"),
        (solution.assign(ant=0), submission, {}, r"the solution's row of id 'r\d+' is not one-hot"),
        (
            smooth_solution,
            smooth_submission.drop(columns="cat"),
            {},
            r"submission has no column for the solution's \['cat'\]: the solution's row of id "
            r"'r\d+' is not one-hot over the submission's classes",
        ),
        (
            solution,
            submission.assign(id=[None, *keys[1:]]),
            {},
            r"submission has a missing id in 'id' at its row 0 \(from 0\)",
        ),
        (solution.iloc[:0], submission.iloc[:0], {}, "solution has no rows"),
        (
            labelled.assign(animal=[[1]] * 8),
            submission,
            {"target": "animal"},
            r"solution column 'animal' is refused: labels must be text, integers or booleans",
        ),
        (
            solution,
            submission.assign(bee="x"),
            {},
            rf"submission column 'bee' must hold numbers; got 'x' in the row of id '{keys[0]}'$",
        ),
        (
            solution,
            submission.reset_index(names="Unnamed: 0"),  # read_csv of a file with its index
            {},
            r"submission has a column 'Unnamed: 0' without a header \(an index written by to_",
        ),
        (
            labelled,
            submission.reset_index(names="Unnamed: 0"),
            {"target": "animal"},  # was scored with the index as a class, silently
            r"submission has a column 'Unnamed: 0'.*write the file with index=False$",
        ),
        (
            every,
            submission.assign(fold=3),  # was a class: the rows rescaled, silently
            {"target": "animal"},
            r"^submission column 'fold' is no solution row's label in 'animal': drop it",
        ),
        (
            solution,
            pa.Table.from_pandas(submission).rename_columns(["id", "ant", "bee", "ant", "dog"]),
            {},
            "^submission has two columns named 'ant'$",
        ),
        (
            pa.table({"id": [{"k": i} for i in range(8)], "animal": every["animal"]}),
            submission,
            {"target": "animal"},
            r"^solution, column 'id': ids must be text, integers or dates; the column holds struct",
        ),
        (
            pa.Table.from_pandas(solution.assign(Usage=[["Public"]] * 8)),
            submission,
            {"usage": "Public"},
            r"^solution, column 'Usage': split values must be text, integers or dates; the column",
        ),
        (  # the missing column is named before a row that sums to 0 without it
            smooth_solution,
            thin,
            {},
            r"^submission has no column for the solution's \['dog'\]",
        ),
        (
            solution,
            levels,
            {},
            r"^submission has columns of 2 levels \(a MultiIndex\)",
        ),
    ]


@pytest.mark.parametrize(("solution", "submission", "kwargs", "match"), _bad_cases())
def test_kaggle_score_refuses_bad_tables_clearly(solution, submission, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kaggle_score(solution, submission, "id", **kwargs)


def test_kaggle_score_usage_column_of_numbers_and_text_cells_in_arrow():
    solution, submission, y, p = _case("usage-numbers", n=12)
    coded = solution.assign(Usage=np.where(solution["Usage"] == "Public", 1, 2))
    keep = (coded["Usage"] == 1).to_numpy()
    got = kaggle_score(coded, submission, "id", usage="1")
    assert math.isclose(got, _kaggle_formula(y[keep], p[keep]), rel_tol=1e-13)
    table = pa.Table.from_pandas(submission, preserve_index=False)
    text = table.set_column(1, "ant", pa.array(["0.5"] * 11 + ["x"]))
    last = submission["id"].iloc[11]
    with pytest.raises(
        ValueError, match=rf"column 'ant' must hold numbers; got 'x' in the row of id '{last}'$"
    ):
        kaggle_score(solution, text, "id")


def test_kaggle_score_refuses_what_is_not_a_table():
    solution, submission, _, _ = _case("types", n=4)
    with pytest.raises(TypeError, match="submission must be a DataFrame"):
        kaggle_score(solution, submission.to_dict(), "id")
    with pytest.raises(ValueError, match="eps"):
        kaggle_score(solution, submission, "id", eps=0.0)


def test_kaggle_score_ids_of_two_types_join_by_their_text_both_ways():
    """Ids are text: integer ids join text ids that write them in decimal, whichever table
    holds which, and "001" is not the id 1."""
    as_int = pd.DataFrame({"id": [1, 2], "y": ["cat", "dog"]})
    as_text = pd.DataFrame({"id": ["1", "2"], "y": ["cat", "dog"]})
    expected = -np.mean(np.log([0.7, 0.8]))
    proba = {"cat": [0.2, 0.7], "dog": [0.8, 0.3]}  # of the ids 2 and 1
    sub_int = pd.DataFrame({"id": [2, 1], **proba})
    sub_text = pd.DataFrame({"id": ["2", "1"], **proba})
    for sol, sub in ((as_int, sub_text), (as_text, sub_int), (as_int, sub_int)):
        got = kaggle_score(sol, sub, "id", target="y")
        assert math.isclose(got, expected, rel_tol=1e-12)
    padded = pd.DataFrame({"id": ["001", "2"], "cat": [0.7, 0.2], "dog": [0.3, 0.8]})
    with pytest.raises(ValueError, match="submission has no row for the solution's id '1'"):
        kaggle_score(as_int, padded, "id", target="y")


def test_float_labels_against_float_class_columns() -> None:
    """A solution's float labels (0.0, 1.0) against submission columns named as floats
    write them (``"0.0"``): the classes by value, as for integer names."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    p = rng.dirichlet([1.0, 1.0], size=40)
    y = rng.integers(0, 2, size=40)
    solution = pd.DataFrame({"id": range(40), "y": y.astype(float)})
    submission = pd.DataFrame(p, columns=["0.0", "1.0"]).assign(id=range(40))
    ref = -np.mean(np.log(np.clip(p[np.arange(40), y], 1e-15, 1 - 1e-15)))
    assert kaggle_score(solution, submission, "id", target="y") == pytest.approx(ref, rel=1e-13)
    as_text = solution.assign(y=y.astype(str))
    assert kaggle_score(as_text, submission, "id", target="y") == pytest.approx(ref, rel=1e-13)


def test_usage_scores_one_split_and_checks_only_its_rows() -> None:
    """With usage=, rows of other splits are not checked (Kaggle's "Ignored" rows may be
    placeholders: not one-hot, or without a label), a class held only by another split's rows
    is a class, and a categorical Usage column is read (pyarrow's AttributeError escaped)."""
    submission = pd.DataFrame({"id": [1, 2, 3, 4], "cat": [0.7, 0.2, 0.6, 0.1]})
    submission["dog"] = 1 - submission["cat"]
    public = -np.mean(np.log([0.7, 0.6]))
    usage = ["Public", "Private", "Public", "Ignored"]
    onehot = pd.DataFrame({"id": [1, 2, 3, 4], "cat": [1, 0, 1, 0], "dog": [0, 1, 0, 0]})
    got = kaggle_score(onehot.assign(Usage=usage), submission, "id", usage="Public")
    assert got == pytest.approx(public, rel=1e-14)
    labels = pd.DataFrame({"id": [1, 2, 3, 4], "y": ["cat", "dog", "cat", None], "Usage": usage})
    got = kaggle_score(labels, submission, "id", target="y", usage="Public")
    assert got == pytest.approx(public, rel=1e-14)
    with pytest.raises(ValueError, match=r"^submission column 'fold' is no solution row's"):
        kaggle_score(labels, submission.assign(fold=1), "id", target="y", usage="Public")
    table = pa.Table.from_pandas(onehot.assign(Usage=pd.Categorical(usage)))
    assert pa.types.is_dictionary(table.schema.field("Usage").type)
    got = kaggle_score(table, submission, "id", usage="Public")
    assert got == pytest.approx(public, rel=1e-14)


def test_usage_still_refuses_a_submission_without_another_splits_class() -> None:
    """A class whose rows are all Private: a submission without its column was scored on the
    Public rows, renormalised over the other classes (0.3788, a better-looking score), where
    the whole submission's format is Kaggle's check. A row of zeros (an ignored row's
    placeholder) or a column of other numbers (a fold's) is no class."""
    solution = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "a": [1, 0, 0, 1, 0, 0],
            "b": [0, 1, 0, 0, 1, 0],
            "c": [0, 0, 1, 0, 0, 1],
            "Usage": ["Public", "Public", "Private", "Public", "Public", "Private"],
        }
    )
    submission = pd.DataFrame(
        {"id": [6, 5, 4, 3, 2, 1], "a": [0.2, 0.2, 0.6, 0.2, 0.3, 0.5], "b": [0.3, 0.6, 0.2] * 2}
    )
    with pytest.raises(ValueError, match=r"no column for the solution's 'c', the class of its row"):
        kaggle_score(solution, submission, "id", usage="Public")
    with_c = kaggle_score(solution, submission.assign(c=0.5), "id", usage="Public")
    assert with_c > 0  # (scored: the column is there)
    ignored = solution.drop(columns="c").assign(fold=[1, 0, 2, 1, 1, 0])  # rows 3, 6: zeros
    public = kaggle_score(ignored, submission, "id", usage="Public")
    rows = submission.set_index("id").loc[[1, 2, 4, 5]]
    p = rows[["a", "b"]].to_numpy()
    p = p / p.sum(axis=1, keepdims=True)
    ref = -np.mean(np.log(p[[0, 1, 2, 3], [0, 1, 0, 1]]))
    assert public == pytest.approx(ref, rel=1e-12)


def test_float_ids_join_integer_ids_by_pyarrow_text() -> None:
    """As documented: in memory, the float 4.0 is written "4" by pyarrow, the integer 4's id."""
    solution = pd.DataFrame({"id": [1, 2], "y": ["cat", "dog"]})
    floats = pd.DataFrame({"id": [2.0, 1.0], "cat": [0.2, 0.7], "dog": [0.8, 0.3]})
    got = kaggle_score(solution, floats, "id", target="y")
    assert got == pytest.approx(-np.mean(np.log([0.7, 0.8])), rel=1e-12)


def test_the_binary_layout_is_one_probability_column_of_the_label_1() -> None:
    """Kaggle's binary competitions: the solution's 0/1 target and the submission's P(1) in a
    column of the same name (it was refused for want of a column per class); equal to
    scikit-learn's log loss of the clipped probabilities, per split too; a probability
    outside [0, 1] named by its id."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(7)
    n = 90
    y, q = rng.integers(0, 2, n), np.round(rng.random(n), 2)  # exact 0s and 1s among them
    usage = np.where(np.arange(n) % 3, "Public", "Private")
    solution = pd.DataFrame({"id": np.arange(n), "target": y, "Usage": usage})
    submission = pd.DataFrame({"id": np.arange(n)[::-1], "target": q[::-1]})
    clipped = np.clip(q, 1e-15, 1 - 1e-15)
    assert kaggle_score(solution, submission, "id") == pytest.approx(
        log_loss(y, clipped), rel=1e-13
    )
    public = usage == "Public"
    got = kaggle_score(solution, submission, "id", usage="Public")
    assert got == pytest.approx(log_loss(y[public], clipped[public]), rel=1e-13)
    renamed = solution.rename(columns={"target": "y"})
    assert kaggle_score(renamed, submission, "id", target="y") == pytest.approx(
        log_loss(y, clipped), rel=1e-13
    )
    with pytest.raises(ValueError, match=r"binary problem's probability of the label 1"):
        kaggle_score(renamed, submission, "id")
    bad = submission.assign(target=submission["target"].where(submission["id"] != 4, 1.5))
    with pytest.raises(ValueError, match=r"in \[0, 1\]; got 1\.5 in the row of id 4"):
        kaggle_score(solution, bad, "id")


def test_kaggle_probabilities_refuses_text_for_ids_or_columns():
    """A string is one name, not one per row: it was read character by character (accepted
    for two rows, or "ids must hold one id per row ... got 2")."""
    for kw in ({"ids": "id"}, {"columns": "ab"}):
        with pytest.raises(TypeError, match=f"^{next(iter(kw))} must be a sequence"):
            kaggle_probabilities([[0.5, 0.5], [0.2, 0.8]], **kw)
