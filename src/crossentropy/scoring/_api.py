r"""``score``: a file of probability predictions (or a solution/submission pair) scored in
bounded memory, as a :class:`ScoreReport`.

The input is resolved from headers and footers (:mod:`~crossentropy.scoring._sources`), read in
batches and fed to :class:`crossentropy.metrics.ScoreAccumulator`, where every formula lives,
in this process or on a Dask cluster (:mod:`crossentropy.scoring._engine`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from crossentropy._lib.checks import check_choice, check_clip, check_int
from crossentropy._lib.checks import plain as python_value
from crossentropy._lib.extras import require
from crossentropy.metrics._formulas import RENORMALIZE
from crossentropy.scoring._sources import text_name

if TYPE_CHECKING:
    from crossentropy.metrics._bootstrap import BootstrapTotals
    from crossentropy.scoring._compare import Comparison
    from crossentropy.scoring._engine import ProgressBar
    from crossentropy.scoring._sources import Source

__all__ = ["ScoreReport", "Settings", "json_text", "plain", "score", "score_one"]

PathLike = str | os.PathLike[str]


def plain(value: Any) -> Any:
    """JSON's subset: NumPy scalars as Python values, non-finite floats as None, containers
    recursively."""
    value = python_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True, repr=False)
class ScoreReport:
    """Every number of a scoring, with what was scored.

    Attributes
    ----------
    n : int
        Rows scored.
    weight : float or None
        The total sample weight (``sample_weight=``); the rows, as a float, without weights.
    log_loss : float
        Mean log loss in nats, each probability clipped at the machine epsilon of its stored
        dtype (scikit-learn's :func:`~sklearn.metrics.log_loss`), or as ``clip=`` and
        ``renormalize=`` of :func:`score` say.
    accuracy : float
        Share of rows whose most probable class is the true one (a tie goes to the class that
        sorts first, whatever the columns' order: :class:`~crossentropy.metrics.ScoreAccumulator`).
    brier : float
        Mean over rows of :math:`\\sum_c (\\mathbb 1[y = c] - p_c)^2`, halved for two classes
        (scikit-learn's binary Brier score).
    ece : float
        Expected calibration error over ``bins`` equal-width bins: of the top-label confidence,
        or for two classes of the second class's probability against ``y`` being that class.
    mean_entropy : float
        Mean entropy of the predicted distributions, in nats.
    per_class : list of dict
        Per class: ``label``, ``count``, ``log_loss`` (mean over its rows); with sample
        weights also ``weight``, and ``log_loss`` is the weighted mean.
    worst : list of dict
        The rows with the largest loss: ``row`` (1-based data row), ``label``, ``predicted``
        (the most probable class), ``p_true``, ``p_predicted``, ``loss``, and ``id`` when the
        input has an id column (an integer where the column holds integers, as Parquet and
        DataFrames store them; else text, as a CSV's).
    reliability : list of dict
        Per bin: ``lo``, ``hi``, ``count``, ``confidence``, ``accuracy``.
    loss_histogram : dict
        ``edges`` and ``counts`` of the per-row losses.
    rows_not_summing_to_one : int
        Rows whose probabilities are off 1 by more than the stored dtype's tolerance (scored as
        given).
    calibration : dict
        The calibration report of :class:`~crossentropy.metrics.ScoreAccumulator`: ``pairs``
        (positive class or top label), ``smooth_ece`` (value, bandwidth, basic-bootstrap
        interval, smoothed reliability curve with its band and the forecasts' density),
        ``corp`` (PAV reliability diagram; MCB/DSC/UNC of the Brier and log scores of the
        pairs), ``equal_width`` and ``equal_mass`` bins (ECE, MCE, RMS; Wilson intervals),
        ``murphy`` (Brier = REL - RES + UNC + WBV - WBC), ``classwise`` ECE (up to 100
        classes), ``skill`` (D² of the log loss and Brier skill against the base rate).
    confusion : list of list of int (float with sample weights) or None
        Counts ``[true][predicted]`` up to 30 classes (with sample weights, weights).
    splits : list of dict or None
        With ``split=``: each value of the split column (as text; those that write integers
        sorted by value, the others as text)
        with its ``n``, ``log_loss``, ``brier`` and ``accuracy`` (None for a split of zero
        total weight).
    input : dict
        Files, mode, format, target, id, split and sample weight columns, classes, probability
        columns, rows, options and the crossentropy version.
    source : Source
        The resolved input the report was read from (for the text and HTML renderings).
    """

    n: int
    log_loss: float
    accuracy: float
    brier: float
    ece: float
    mean_entropy: float
    per_class: list[dict[str, Any]]
    worst: list[dict[str, Any]]
    reliability: list[dict[str, Any]]
    loss_histogram: dict[str, Any]
    rows_not_summing_to_one: int
    calibration: dict[str, Any]
    confusion: list[list[int]] | list[list[float]] | None
    splits: list[dict[str, Any]] | None
    input: dict[str, Any]
    source: Source = field(repr=False, compare=False)
    weight: float = 0.0
    # a report holds lists and dicts: not hashable (the generated __hash__ failed inside)
    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python values (JSON's subset: non-finite numbers as None)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "source"}
        return plain(out)  # type: ignore[no-any-return]

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text.

        Parameters
        ----------
        indent : int or None, default 2
            Spaces per level, 0 to 16 (None: one line).
        """
        return json_text(self.to_dict(), indent)

    def to_text(self) -> str:
        """The plain-text tables that ``crossentropy score`` prints."""
        from crossentropy.scoring._report import format_text

        return format_text(self.to_dict(), self.source)

    def html(self) -> str:
        """The report as a self-contained HTML page (figures as embedded PNG, no scripts)."""
        from crossentropy.scoring._report import html_report

        return html_report(self.to_dict(), self.source)

    def to_html(self, path: PathLike) -> None:
        """Write :meth:`html` to ``path`` atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The page to write; only a regular file there is ever replaced (a symbolic link, a
            device, a FIFO or a folder at ``path``, or one of the scored files, is a
            ``ValueError``).
        """
        from crossentropy._lib.html import check_output_path, write_atomic

        inputs = report_inputs([self])
        check_output_path(path, inputs)  # before the page's figures are drawn
        write_atomic(path, self.html(), inputs=inputs)

    def _repr_html_(self) -> str:
        """The notebook's view: :meth:`html`'s content in a ``<div>`` whose style leaves the
        rest of the notebook alone."""
        from crossentropy.scoring._report import html_report

        return html_report(self.to_dict(), self.source, fragment=True)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        """A line: what was scored and its headline numbers (every number: :meth:`to_dict`;
        the report: ``str`` or :meth:`to_text`)."""
        files = ", ".join(f"{k}={v!r}" for k, v in self.input.get("files", {}).items())
        return (
            f"ScoreReport({files + ', ' if files else ''}n={self.n:,}, "
            f"classes={len(self.input.get('classes', []))}, log_loss={self.log_loss:.6g}, "
            f"accuracy={self.accuracy:.6g})"
        )


def _local(value: PathLike | None, name: str) -> str | None:
    from crossentropy.scoring._sources import local_path

    if value is not None and not isinstance(value, str | os.PathLike):
        hint = "; for DataFrames use kaggle_score" if name == "solution" else ""
        raise TypeError(f"{name} must be a path; got {type(value).__name__}{hint}")
    return local_path(value, name)


def json_text(data: Any, indent: int | None) -> str:
    """A report's plain values as JSON text, ``indent`` spaces per level (an int from 0 to 16;
    None: one line), or a ``TypeError``/``ValueError`` naming ``indent``."""
    if indent is not None:
        indent = check_int(indent, "indent")
        if not 0 <= indent <= 16:
            raise ValueError(f"indent must be between 0 and 16 (or None); got {indent}")
    return json.dumps(data, indent=indent, allow_nan=False)


def _names(value: str | Sequence[str] | None, name: str) -> list[str] | None:
    if value is None:
        return None
    value = text_name(value)
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable) or isinstance(value, bytes | Mapping):
        raise TypeError(f"{name} must be a column name or a list of them; got {value!r}")
    items = [text_name(v) for v in value]
    if not all(isinstance(v, str) for v in items):
        raise TypeError(
            f"{name} must be a column name (text, or an integer name of a pandas column) or a "
            f"list of them; got {value!r}"
        )
    return items


def _table_like(data: Any) -> bool:
    """Whether ``data`` is a table of a library :func:`score` reads (pandas, polars, pyarrow,
    or any object with the Arrow stream interface)."""
    kind = type(data).__module__.split(".")[0]
    return kind in ("pandas", "polars", "pyarrow") or hasattr(data, "__arrow_c_stream__")


def _type_name(kind: type) -> str:
    """A type's name, with its module unless it is a builtin."""
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _in_memory(
    data: Any, target: Any, classes: Sequence[Any] | None, asked: Sequence[str | None] = ()
) -> tuple[Any, str, Any, Sequence[Any] | None]:
    """An in-memory input as (pyarrow Table, its label, the target column name, the classes),
    or None for a path. NumPy probabilities ``(n, C)`` with labels as ``target`` become a
    table with a ``y_true`` column and one column per class (the classes named by the text
    labels where ``classes`` is None). A pandas index level named by the target or one of the
    column names ``asked`` for is a column too."""
    if isinstance(data, str | os.PathLike) or data is None:
        return None, "", target, classes
    import pyarrow as pa  # type: ignore[import-untyped]

    from crossentropy.scoring._readers import positional_labels, unclear_integer_labels
    from crossentropy.scoring._sources import (
        IN_MEMORY_ARRAY,
        arrow_table,
        found_classes,
        native,
        object_column,
        text_column,
        unclear_positions,
    )

    if isinstance(data, np.ndarray):
        data = native(data)
        if data.dtype.kind in "US":  # numbers written as text: read as a CSV's cells are
            data = data.astype(str).astype(object)
        if data.dtype.kind not in "biufO":
            raise TypeError(f"data must hold probabilities (real numbers); got dtype {data.dtype}")
        if data.ndim == 1:  # the second class's probability, as scikit-learn reads a vector
            data = data[:, None]
        if data.ndim != 2 or data.shape[1] < 1:
            raise ValueError(
                f"data as an array must be probabilities (n, C) or (n,); got {data.shape}"
            )
        if target is None or isinstance(target, str):
            raise TypeError("data as an array needs target= the labels as an array")
        labels = native(np.asarray(target))
        if labels.dtype.kind not in "biufOUS":
            raise TypeError(f"target must hold labels (numbers or text); got dtype {labels.dtype}")
        if labels.shape != (data.shape[0],):
            raise ValueError(
                f"target must hold one label per row of data ({data.shape[0]},); got shape "
                f"{labels.shape}"
            )
        width = 2 if data.shape[1] == 1 else data.shape[1]
        names = [str(c) for c in classes] if classes is not None else [str(j) for j in range(width)]
        found = found_classes(labels, width) if classes is None else None
        unclear = (
            unclear_positions(labels, data.shape[1]) if classes is None and not found else None
        )
        if unclear is not None:
            raise ValueError(f"target: {unclear}")
        if found is not None:  # labels that name the classes: sorted, as scikit-learn's
            names = classes = found  # log_loss takes them (else an unknown label's message
            # says how to name them)
        if len(names) != width:
            need = (
                "one column of probabilities, the second of two classes: name both, negative first"
                if data.shape[1] == 1
                else f"{width} columns of probabilities: name one class per column"
            )
            raise ValueError(f"classes names {len(names)} classes, but data has {need}")
        if positional_labels(labels.dtype.kind, names):
            # integer labels with names that are not integers: class indices, as for .npy files
            unclear = unclear_integer_labels(names)
            if unclear is not None:
                raise ValueError(f"target: {unclear}")
            index = labels.astype(np.int64)
            if index.size and (index.min() < 0 or index.max() >= width):
                bad = index[(index < 0) | (index >= width)][0]
                raise ValueError(f"target holds class index {bad} for {width} classes")
            labels = np.asarray(names, dtype=object)[index]
        cols = names if data.shape[1] > 1 else names[1:]
        # (object labels as text, missing ones missing)
        table = {"y_true": text_column(labels) if labels.dtype.kind == "O" else pa.array(labels)}
        column = object_column if data.dtype.kind == "O" else pa.array
        table.update({n: column(data[:, j]) for j, n in enumerate(cols)})
        return pa.table(table), IN_MEMORY_ARRAY, "y_true", classes
    if isinstance(data, pa.RecordBatchReader):  # a stream: read batch by batch, once
        return data, "RecordBatchReader", target, classes
    import pyarrow.dataset as pds  # type: ignore[import-untyped]

    if isinstance(data, pds.InMemoryDataset):  # its batches are in memory already
        return data.to_table(), "Dataset", target, classes
    table = arrow_table(data, "data", [target, *asked])
    if table is not None:
        kind = type(data).__module__.split(".")[0]
        label = "DataFrame" if kind in ("pandas", "polars") else type(data).__name__
        return table, label, target, classes
    given = type(data)
    hint = ""
    if given.__module__.split(".")[0] == "dask":  # scored from files, in parallel, or computed
        hint = (
            "; write a Dask DataFrame with to_parquet(folder) and score the folder (with "
            "engine='dask' its workers read it; a Dask array becomes one with "
            "dask.dataframe.from_dask_array), or compute() it"
        )
    raise TypeError(
        "data must be a path, a DataFrame (pandas, polars), a pyarrow Table, "
        "FileSystemDataset, InMemoryDataset or RecordBatchReader, or a NumPy array; got "
        f"{_type_name(given)}{hint}"
    )


@overload
def score(
    data: list[Any] | tuple[Any, ...] | Mapping[str, Any],
    *,
    target: Any = None,
    proba: str | Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    solution: PathLike | None = None,
    id: str | int | None = None,
    target_file: PathLike | None = None,
    format: str | None = None,
    engine: Literal["local", "dask"] = "local",
    scheduler: Any = None,
    partitions: int | None = None,
    progress: bool | ProgressBar = False,
    bins: int = 15,
    worst: int = 10,
    bootstrap: int = 200,
    seed: int = 0,
    clip: float | None = None,
    renormalize: bool | Literal["before_clip", "after_clip"] = False,
    split: str | int | None = None,
    batch_rows: int = 65536,
    sample_weight: Any = None,
) -> Comparison: ...


@overload
def score(
    data: Any = None,
    *,
    target: Any = None,
    proba: str | Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    solution: PathLike | None = None,
    id: str | int | None = None,
    target_file: PathLike | None = None,
    format: str | None = None,
    engine: Literal["local", "dask"] = "local",
    scheduler: Any = None,
    partitions: int | None = None,
    progress: bool | ProgressBar = False,
    bins: int = 15,
    worst: int = 10,
    bootstrap: int = 200,
    seed: int = 0,
    clip: float | None = None,
    renormalize: bool | Literal["before_clip", "after_clip"] = False,
    split: str | int | None = None,
    batch_rows: int = 65536,
    sample_weight: Any = None,
) -> ScoreReport: ...


def score(
    data: Any = None,
    *,
    target: Any = None,
    proba: str | Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    solution: PathLike | None = None,
    id: str | int | None = None,
    target_file: PathLike | None = None,
    format: str | None = None,
    engine: Literal["local", "dask"] = "local",
    scheduler: Any = None,
    partitions: int | None = None,
    progress: bool | ProgressBar = False,
    bins: int = 15,
    worst: int = 10,
    bootstrap: int = 200,
    seed: int = 0,
    clip: float | None = None,
    renormalize: bool | Literal["before_clip", "after_clip"] = False,
    split: str | int | None = None,
    batch_rows: int = 65536,
    sample_weight: Any = None,
) -> ScoreReport | Comparison:
    r"""Score probability predictions held in a file, in bounded memory.

    .. math::

        \mathrm{log\ loss} = -\frac1n \sum_i \log \operatorname{clip}(p_{i, y_i},
            \varepsilon, 1 - \varepsilon)
            \qquad \text{or, weighted,} \qquad
            -\frac{\sum_i w_i \log \operatorname{clip}(p_{i, y_i}, \varepsilon,
            1 - \varepsilon)}{\sum_i w_i}

    with :math:`\varepsilon` the machine epsilon of the stored probabilities (float32 files at
    float32's, as :func:`crossentropy.metrics.log_loss` scores the same array), together with
    accuracy, the Brier score, the expected calibration error, the mean entropy, per-class log
    losses and the worst rows (:class:`ScoreReport`). The file is read in batches of
    ``batch_rows`` rows, so memory does not grow with its size.

    Parameters
    ----------
    data : path, DataFrame, pyarrow.Table, Dataset or RecordBatchReader, or numpy.ndarray
        The predictions: a table (CSV, TSV, Parquet, CSV.gz: gzip is the compression read; a
        folder or a glob pattern of such files, whose columns may name the classes in any
        order, or a pyarrow ``FileSystemDataset``, read file after file, the worst rows named
        by file and row, except that a partition column asked for, of a dataset or of Parquet parts
        in hive-style subfolders, is read through the dataset's scan, in this process; a pandas or
        polars DataFrame (a polars LazyFrame is collected), a pyarrow Table or ``InMemoryDataset``
        in memory (a pandas column with an integer name is named by the integer or its text); a
        pyarrow ``RecordBatchReader``, read batch by batch, once, by the local engine) with a
        ``target`` column and one probability column per class; a ``.npz`` with arrays ``y_true``
        and ``y_proba``; a ``.npy`` of probabilities with ``target_file``; a NumPy array of
        probabilities ``(n, C)`` (or ``(n,)``: the second class's) with the labels as ``target``
        (text labels name the classes in sorted order, as in scikit-learn, when ``classes`` does not
        and they are as many as the columns' classes); or, with ``solution``, a Kaggle-style
        submission file (an ``id`` column and one column per class, named by the class).

        A list (or a dict of names to them) of two or more such inputs compares prediction
        sets on the same targets: each is scored, and the paired differences of their log
        loss, Brier score and accuracy get bootstrap intervals (:class:`Comparison`). Their
        rows are paired by ``id`` where one is given (by the solution's rows for
        submissions), else by position.
    target : str or array_like, optional
        The column of true labels (of ``data``, or of ``solution``); the labels themselves for
        a NumPy ``data``. A solution without ``target`` has one column besides the id (and
        ``split``), or, in Kaggle's layout, a 0/1 column per class named as the submission's
        probability columns. A label is matched to a class by its text, or, where every class
        name writes an integer, by value (``2``, ``2.0`` and ``"2.0"`` are the class ``"2"``).
    proba : str or list of str, optional
        Probability columns: names and glob patterns (``"p_*"`` maps column ``p_cat`` to class
        ``cat``); default every other column.
    classes : list, optional
        Class names for the probability columns, in their order (two for one column, which is
        the second class's probability, unless its name gives the first: ``p_0``, or ``p_no``
        with classes ``["no", "yes"]``, is that class's, and ``p_False`` (any case) is P(False),
        i.e. of the class 0). Classes that give a column the class another column's name gives
        (``p_cat, p_dog`` with classes ``["dog", "cat"]``) are an error, unless the names are
        all integers (``0, 1, 2`` are as often positions): those columns are read by position,
        with a warning where the classes are the same integers in another order. Without them,
        the columns' names (after the fixed ends of a ``proba`` pattern) are the classes; for
        NumPy data, integer labels that are all positions ``0 .. C-1`` are the columns'
        positions, and other labels, sorted, name the columns when there are as many as columns
        (scikit-learn's rule); integer labels all within ``1 .. C-1`` are refused as unclear
        (positions without a row of the first class, or classes ``1 .. C`` without a row of the
        last). Integer and boolean labels are the columns' positions where the class names are
        not distinct integers (``True`` is the second class), in memory as in ``.npy`` files.
    solution : path, optional
        The solution table of a pair, joined to ``data`` on ``id``: row by row in bounded
        memory while both files list the same ids in the same order (an id repeated at the
        same rows of both is then two rows), else through a sorted table of the solution's
        ids, which refuses a repeated id (the Dask engine always joins through the table).
    id : str or int, optional
        The id column: the join key of a pair; in a single table, the ids shown for the worst
        rows (and, of compared tables, the key that pairs their rows). Of a pandas
        DataFrame, an index level named as the ``id``, ``target`` or ``split`` column asked
        for is that column; the index is otherwise left out.
    target_file : path, optional
        The ``.npy`` of labels for a ``.npy`` of probabilities.
    format : str, optional
        The format when the file name does not say it (``"csv"``, ``"parquet"``, ``"npy"``,
        ``"npz"``). Tab-separated files are read as such when named ``.tsv`` or ``.tsv.gz``.
        Files and URLs only: data in memory has no format to name (a ``ValueError``).
    engine : {"local", "dask"}, default "local"
        Score in this process, or on the workers of a ``dask.distributed`` cluster (each reads
        its pieces of the file: Parquet row groups, CSV byte ranges, ``.npy`` row ranges).
    scheduler : str, distributed.Client or cluster, optional
        The Dask scheduler's address, or a client or cluster (``LocalCluster``, ...) of it,
        whose address is taken (a client of its own connects there and closes after; yours
        stays open); without it a local cluster is started.
    partitions : int, optional
        Pieces for Dask (default 4 per worker).
    progress : bool or ProgressBar, default False
        Draw a progress bar on stderr.
    bins : int, default 15
        Equal-width calibration bins, at most 16,384.
    worst : int, default 10
        Worst rows to keep, at most 10,000.
    bootstrap : int, default 200
        Bootstrap replicates of the smooth ECE's interval and the reliability curve's band, and
        of the paired differences of a comparison (0: none; at most 10,000).
    seed : int, default 0
        The bootstrap's seed: a report is reproducible, whatever the batches or workers.
    clip : float, optional
        Clip probabilities at ``[clip, 1 - clip]`` instead of the stored dtype's epsilon (the
        default, scikit-learn's since 1.2). Kaggle and scikit-learn before 1.2 clip at 1e-15.
    renormalize : bool or {"before_clip", "after_clip"}, default False
        Divide each row by its sum: ``True`` or ``"before_clip"`` as Kaggle's log loss does
        (rescale, then clip), ``"after_clip"`` as scikit-learn before 1.5 did (clip, then
        rescale). With ``clip=1e-15``, ``renormalize=True`` reproduces Kaggle's score;
        ``renormalize="after_clip"`` reproduces the ``log_loss`` of scikit-learn 1.2 to 1.4,
        and with ``clip=1e-15`` that of scikit-learn before 1.2. The entries may then be any
        finite scores >= 0: Kaggle rescales scores above 1 (as :func:`kaggle_score` does),
        and scikit-learn's clip, first, takes them to ``1 - clip``.
    split : str or int, optional
        A column whose values split the rows, as Kaggle's ``Usage`` column (``Public``,
        ``Private``) of a solution: each split is also scored alone (``ScoreReport.splits``).
        In pair mode it is a column of the solution. At most 10,000 distinct values (each
        keeps its own totals): a column of more is refused. The overall numbers are of every
        row, a split's rows included: Kaggle's leaderboards are the ``Public`` and
        ``Private`` splits alone (its ``Ignored`` rows count in neither; drop them, or use
        :func:`kaggle_score` with ``usage=``).
    batch_rows : int, default 65536
        Rows per batch: memory grows with it.
    sample_weight : str or array_like, optional
        Sample weights (scikit-learn's ``sample_weight``): a column of the data (read batch by
        batch like the others; in pair mode a column of the solution, else of the
        submission), or, for data in memory (a NumPy array, a DataFrame, a pyarrow Table),
        one weight per row, by position (a pandas Series' index is not aligned, as in
        scikit-learn). Each weight is finite and >= 0 (else an ``InputError`` naming the
        file, row and column), and they may not all be 0. Every mean becomes the weighted
        mean :math:`\sum_i w_i v_i / \sum_i w_i`: log loss, accuracy and Brier score as
        scikit-learn's with ``sample_weight``, per-class losses, bins, calibration (smooth
        ECE, CORP, equal-mass bins, Murphy), confusion matrix, splits and skill scores; a row
        of weight 3 counts as the row three times (but in the bootstrap, which resamples it
        as one). ``n`` and every ``count`` stay row counts; ``ScoreReport.weight`` is the
        total weight, and per-class entries, bins and splits gain a ``weight``. The worst rows
        are ranked by their loss and the loss histogram counts rows
        (:class:`~crossentropy.metrics.ScoreAccumulator`).

    Returns
    -------
    ScoreReport or Comparison
        A :class:`Comparison` when ``data`` is a list or dict of prediction sets.

    Raises
    ------
    crossentropy.scoring.InputError
        A file that is missing or unreadable, a missing column, a bad value: the message names
        the file, the data row (from 1) and the column. It is a ``ValueError``. In a pair with
        ``target`` whose classes are the submission's columns, taken as they come, also a
        column that no solution row's label names (after the pass: a fold number or a weight
        read as a class would change the score, as Kaggle refuses it; name the columns with
        ``proba`` to keep a class no row is of).
    ValueError, TypeError
        Options that do not fit.

    Warns
    -----
    UserWarning
        Once per prediction set with rows whose probabilities do not sum to 1 within their
        dtype's rounding, with their count (as scikit-learn's ``log_loss`` warns); they are
        scored as given unless ``renormalize``.

    Examples
    --------
    >>> import os, tempfile
    >>> from crossentropy.scoring import score
    >>> path = os.path.join(tempfile.mkdtemp(), "preds.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("y,p_cat,p_dog\ncat,0.9,0.1\ndog,0.2,0.8\ncat,0.6,0.4\n")
    >>> report = score(path, target="y", proba="p_*")
    >>> round(report.log_loss, 6), report.n, [c["label"] for c in report.per_class]
    (0.279777, 3, ['cat', 'dog'])

    Weighted (a weight per row; here an array, for NumPy data):

    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> w = score(proba, target=np.array([0, 1, 0]), sample_weight=[1.0, 1.0, 2.0])
    >>> w.n, w.weight, round(w.log_loss, 6)  # (-log .9 - log .8 - 2 log .6) / 4
    (3, 4.0, 0.337539)
    """
    from crossentropy.scoring._engine import ProgressBar

    check_choice(engine, "engine", ("local", "dask"))
    if engine == "dask":
        require("score(engine='dask')", "pyarrow", "dask", "distributed")
    else:
        require("score", "pyarrow")
    counts = {}  # each as a Python int (a 0-d integer array is read as its value)
    for name, value, least in (
        ("bins", bins, 1),
        ("batch_rows", batch_rows, 1),
        ("worst", worst, 0),
    ):
        counts[name] = check_int(value, name)
        if counts[name] < least:
            raise ValueError(f"{name} must be >= {least}; got {counts[name]}")
    bins, batch_rows, worst = counts["bins"], counts["batch_rows"], counts["worst"]
    from crossentropy.metrics._calibration import MAX_BINS, check_replicates, check_seed
    from crossentropy.metrics._score import MAX_WORST

    if bins > MAX_BINS:  # (the accumulator's limit, named as this function's argument)
        raise ValueError(f"bins must be between 1 and {MAX_BINS:,}; got {bins:,}")
    if worst > MAX_WORST:
        raise ValueError(f"worst must be between 0 and {MAX_WORST:,}; got {worst:,}")

    bootstrap = check_replicates(bootstrap, "bootstrap")
    seed = check_seed(seed)
    if engine != "dask" and (scheduler is not None or partitions is not None):
        raise ValueError("scheduler and partitions need engine='dask'")
    from crossentropy.scoring._engine import scheduler_address

    scheduler = scheduler_address(scheduler)
    if partitions is not None:
        partitions = check_int(partitions, "partitions")
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1; got {partitions}")
    # integer names (pandas' columns of a frame made from an array) as the tables hold them
    id, split, target = text_name(id), text_name(split), text_name(target)
    sample_weight = text_name(sample_weight)  # an integer: a column name (weights go by row)
    for role, column in (("id", id), ("split", split)):
        if column is not None and not isinstance(column, str):
            raise TypeError(
                f"{role} must be a column name (text, or an integer name of a pandas column); "
                f"got {type(column).__name__}"
            )
    if id is not None and isinstance(target, str) and id == target:
        raise ValueError(f"id and target must be different columns; both are {id!r}")
    if clip is not None:
        clip = check_clip(clip)
    if isinstance(renormalize, bool | np.bool_):
        order: str | None = "before_clip" if renormalize else None
    elif isinstance(renormalize, str) and renormalize in RENORMALIZE:
        order = renormalize
    else:
        raise ValueError(
            f"renormalize must be True, False, 'before_clip' or 'after_clip'; got {renormalize!r}"
        )
    if isinstance(classes, str):
        raise TypeError(f"classes must be a list of class names; got the text {classes!r}")
    if classes is not None and (
        not isinstance(classes, Iterable)
        or isinstance(classes, bytes | Mapping)
        or getattr(classes, "ndim", 1) == 0
    ):
        raise TypeError(f"classes must be a list of class names; got {type(classes).__name__}")
    classes = None if classes is None else list(classes)  # (an iterator is read once)
    if classes is not None and any(c is None for c in classes):
        raise TypeError(f"classes must be a list of class names; got None in {classes!r}")
    if isinstance(sample_weight, bytes | Mapping):
        raise TypeError(
            "sample_weight must be a column name or one weight per row; got "
            f"{type(sample_weight).__name__}"
        )
    if format is not None:
        if not isinstance(format, str):
            raise TypeError(f"format must be a format name; got {type(format).__name__}")
        format = format.lower()
    settings = Settings(
        split=split,
        target=target,
        proba=_names(proba, "proba"),
        classes=None if classes is None else list(classes),
        solution=_local(solution, "solution"),
        id=id,
        target_file=_local(target_file, "target_file"),
        format=format,
        engine=engine,
        scheduler=scheduler,
        partitions=partitions,
        accumulator={
            "n_bins": bins,
            "worst": worst,
            "bootstrap": bootstrap,
            "seed": seed,
            "clip": clip,
            "renormalize": order,
        },
        options={
            "engine": engine,
            "bins": bins,
            "worst": worst,
            "bootstrap": bootstrap,
            "seed": seed,
            "clip": clip,
            "renormalize": order or False,  # as given: False, or which order
            "batch_rows": batch_rows,
        },
        batch_rows=batch_rows,
        sample_weight=sample_weight,
    )
    if not isinstance(progress, bool | np.bool_ | ProgressBar):
        raise TypeError(f"progress must be True, False or a ProgressBar; got {progress!r}")
    bar = progress if isinstance(progress, ProgressBar) else ProgressBar(bool(progress))
    if isinstance(data, list | tuple) and any(
        isinstance(d, list | tuple | bool | int | float | np.number) for d in data
    ):
        raise TypeError(
            "data as a list holds prediction sets to compare (paths, tables or arrays); for one "
            "table of probabilities pass a NumPy array (np.asarray(data))"
        )
    if isinstance(data, list | tuple | Mapping):
        from crossentropy.scoring._compare import compare

        result: ScoreReport | Comparison = compare(data, settings, bar)
    else:
        result = score_one(data, settings, bar)[0]
    for text in row_sum_warnings(result):
        warnings.warn(text, UserWarning, stacklevel=2)
    return result


def report_inputs(reports: Sequence[ScoreReport]) -> list[str]:
    """The local files the reports were computed from (a folder's or a pattern's parts one by
    one), which their pages must never replace."""
    from crossentropy.scoring._sources import input_files

    out: list[str] = []
    for one in reports:
        files = one.input["files"]
        for value in (
            files.get("predictions"),
            *files.get("parts", ()),
            *(files.get(k) for k in ("solution", "labels")),
        ):
            if isinstance(value, str):
                out += input_files(value)
    return out


def row_sum_warnings(result: ScoreReport | Comparison) -> list[str]:
    """The warning of each prediction set with rows whose probabilities do not sum to 1."""
    reports = list(result.reports.values()) if hasattr(result, "reports") else [result]
    out = []
    for one in reports:
        if off := one.rows_not_summing_to_one:
            how = (
                "they were rescaled (renormalize, --renormalize)"
                if one.input["options"].get("renormalize")
                else "they are scored as given, not renormalised"
            )
            what = one.input["files"]["predictions"]  # a folder or pattern of parts, named so
            out.append(
                f"{what}: {off:,} of {one.n:,} rows have probabilities that do not sum to 1 "
                f"within their dtype's rounding; {how}"
            )
    return out


@dataclass(frozen=True)
class Settings:
    """The options of :func:`score` shared by every prediction set, checked."""

    split: str | None
    target: Any
    proba: list[str] | None
    classes: list[Any] | None
    solution: str | None
    id: str | None
    target_file: str | None
    format: str | None
    engine: str
    scheduler: str | None
    partitions: int | None
    accumulator: dict[str, Any]
    options: dict[str, Any]
    batch_rows: int
    sample_weight: Any = None  # a column name, or one weight per row (data in memory)


def score_one(
    data: Any, settings: Settings, bar: ProgressBar, paired: int = 0
) -> tuple[ScoreReport, BootstrapTotals | None]:
    """Score one prediction set; with ``paired`` replicates, also its paired-bootstrap totals."""
    from crossentropy.scoring._engine import score_dask, score_local
    from crossentropy.scoring._sources import (
        check_parts,
        expand_parts,
        hive_dataset,
        is_url,
        local_path,
        pa_stream,
        resolve_source,
        url_stream,
    )

    target = settings.target
    if (
        target is not None
        and not isinstance(target, str)
        and (isinstance(data, str | os.PathLike) or _table_like(data))
        and type(data).__name__ != "Series"  # (a Series is no table: refused as data, below)
    ):  # (data of no kind scored is refused below, by its own TypeError)
        raise TypeError(
            f"target must be a column name (a str); got {type(target).__name__} (labels as an "
            "array go with NumPy data)"
        )
    sol = settings.solution
    stream = None  # a URL or a dataset read by its own scan: read as a stream
    if isinstance(data, str) and is_url(data) and data.lower().startswith("file:"):
        data = local_path(data, "data")  # a file:// URL is its local path (a hive folder's too)
    url = isinstance(data, str) and is_url(data)
    spec = data  # as given: a folder keeps its name
    if not url and isinstance(data, str | os.PathLike):
        hive = hive_dataset(os.fspath(data))  # Parquet parts in Usage=Public/ folders
        data = data if hive is None else hive
    weight = settings.sample_weight
    asked = [
        target if isinstance(target, str) else None,
        settings.id,
        settings.split,
        weight if isinstance(weight, str) else None,
    ]
    scanned = not url and _remote_dataset(data, [*asked, *(settings.proba or [])])
    if scanned:
        _check_scanned_parts(data, settings, weight)
    if (url or scanned) and sol is not None:
        raise TypeError("a solution pair is read from local files; data is not one")
    if (url or scanned) and settings.engine != "local":
        what = repr(data) if url else f"a dataset of {len(data.files)} files, scanned,"
        raise ValueError(f"{what} is read once, in this process: use engine='local'")
    if url:
        stream = url_stream(data, settings.format, settings.batch_rows), data
    elif isinstance(data, str | os.PathLike):
        data = local_path(data, "data")
    elif scanned:
        named = f"{os.fspath(spec)}, " if isinstance(spec, str | os.PathLike) else ""
        stream = pa_stream(data, settings.batch_rows), f"{named}dataset of {len(data.files)} files"
    files = None if stream is not None else _dataset_files(data)
    if files is None and isinstance(data, str):
        files = expand_parts(data)
    if files is not None and sol is not None:
        named = f"{os.fspath(spec)}: " if isinstance(spec, str | os.PathLike) else ""
        raise TypeError(
            f"{named}a folder, pattern or dataset of parts is one table; a pair is two files"
        )
    classes: Sequence[Any] | None = settings.classes
    if stream is not None:
        table, label = stream
    elif not files:
        table, label, target, classes = _in_memory(data, target, classes, asked[1:])
    else:
        table, label = None, ""
    if (
        settings.format is not None
        and table is not None
        and not isinstance(spec, str | os.PathLike)
    ):
        raise ValueError(f"format names a file's format; data is {label} (leave format out)")
    if weight is not None and not isinstance(weight, str):
        table, weight = _with_weights(table, weight)
    if table is not None and sol is not None:
        raise TypeError("a solution pair is read from files; for DataFrames use kaggle_score")
    if (stream is not None or label == "RecordBatchReader") and settings.engine != "local":
        raise ValueError(f"{label} is read once, in this process: use engine='local'")
    path = label if table is not None else data if not files else None

    def resolve(file: str | None) -> Source:
        return resolve_source(
            table=table,
            file=None if sol is not None else file,
            target=target,
            proba_cols=settings.proba,
            classes=None if classes is None else [str(c) for c in classes],
            solution=sol,
            submission=file if sol is not None else None,
            id_column=settings.id,
            target_file=settings.target_file,
            fmt=settings.format,
            batch_rows=settings.batch_rows,
            split=settings.split,
            weight=weight,
        )

    parts = [resolve(os.path.abspath(f)) for f in files] if files else [resolve(path)]
    parts = check_parts(parts)
    src = parts[0]
    options = {**settings.accumulator, "paired": paired}
    try:
        if settings.engine == "dask":
            result = score_dask(
                parts,
                scheduler=settings.scheduler,
                partitions=settings.partitions,
                options=options,
                progress=bar,
            )
        else:
            result = score_local(parts, options=options, progress=bar)
    except BaseException:
        bar.clear()
        raise
    bar.finish(int(result["n"]))
    if settings.proba is None:
        _check_labelled(src, result["per_class"])
    totals = result.pop("paired_totals", None)
    total = float(result.get("weight", result["n"]))
    report = ScoreReport(
        n=int(result["n"]),
        weight=total,
        log_loss=result["log_loss"],
        accuracy=result["accuracy"],
        brier=result["brier"],
        ece=result["ece"],
        mean_entropy=result["mean_entropy"],
        per_class=result["per_class"],
        worst=result["worst"],
        reliability=result["reliability"],
        loss_histogram=result["loss_histogram"],
        rows_not_summing_to_one=int(result.get("rows_not_summing_to_one", 0)),
        calibration=result["calibration"],
        confusion=result["confusion"],
        splits=result["splits"],
        input=_metadata(
            src, int(result["n"]), settings.options, spec if files else None, parts, total
        ),
        source=src,
    )
    return report, totals


def _check_labelled(src: Source, per_class: list[dict[str, Any]]) -> None:
    """A pair whose classes are the submission's columns, taken as they come: an
    :class:`InputError` for a column that no solution row's label names (a fold number or a
    weight column scored as a class: 2.709 where Kaggle's score is 2.184), as
    :func:`kaggle_score` refuses it. Not for one probability column (the classes are then
    ``"0"``, ``"1"``), nor for columns named with ``proba`` or classes named with
    ``classes``, which may name a class no row is of."""
    from crossentropy.scoring._sources import InputError, unlabelled_column

    if src.mode != "pair" or src.binary or src.target is None or src.classes_named:
        return
    for column, entry in zip(src.proba_columns, per_class, strict=True):
        if entry["count"] == 0:
            raise InputError(
                src.path,
                unlabelled_column(
                    column, src.target, "name the class columns with proba= (--proba-cols)"
                ),
                column=column,
            )


def _with_weights(table: Any, weight: Any) -> tuple[Any, str]:
    """An in-memory table with the weights given as an array (one per row) added as a
    column, and that column's name (``sample_weight``, or with underscores around it where
    the table has a column so named)."""
    import pyarrow as pa

    if table is None or isinstance(table, pa.RecordBatchReader) or not hasattr(table, "num_rows"):
        raise TypeError(
            "sample_weight as one weight per row goes with data in memory (a NumPy array, a "
            "DataFrame, a pyarrow Table); for a table file (CSV, Parquet), name its column of "
            "weights; for .npy/.npz files, load the arrays (np.load) and pass them in memory"
        )
    w = np.asarray(weight)
    if w.shape != (table.num_rows,):
        raise ValueError(
            f"sample_weight must hold one weight per row of data ({table.num_rows},); got shape "
            f"{w.shape}"
        )
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold numbers; got dtype {w.dtype}")
    name = "sample_weight"
    while name in table.column_names:
        name = f"_{name}_"
    return table.append_column(name, pa.array(w.astype(np.float64))), name


def _remote_dataset(data: Any, asked: Sequence[str | None] = ()) -> bool:
    """A pyarrow ``FileSystemDataset`` read as a stream: its files are not on the local file
    system, or a column ``asked`` for (a name or a pattern) is one that its partitioning adds
    and its files do not hold (hive's ``Usage=Public/``): only the dataset's own scan has it.
    Otherwise its files are read one by one (any engine; rows named by file)."""
    import fnmatch

    if type(data).__module__.split(".")[0] != "pyarrow" or not hasattr(data, "files"):
        return False
    import pyarrow.fs as pafs  # type: ignore[import-untyped]

    partitioning = getattr(data, "partitioning", None)
    fields = [] if partitioning is None else list(partitioning.schema.names)
    if any(fnmatch.fnmatchcase(f, a) for f in fields for a in asked if a is not None):
        return True
    return not isinstance(data.filesystem, pafs.LocalFileSystem)


def _check_scanned_parts(dataset: Any, settings: Settings, weight: Any) -> None:
    """The local files of a dataset read by its scan (for its partitioning's column), each
    resolved on its own columns and checked as a folder's parts are (:func:`check_parts`):
    the scan would fill a column a part lacks with nulls, or read its classes in another
    order. Files elsewhere (S3, ...) are read by the scan alone."""
    import pyarrow.fs as pafs

    from crossentropy.scoring._sources import check_parts, resolve_source

    if not isinstance(dataset.filesystem, pafs.LocalFileSystem):
        return
    partitioning = getattr(dataset, "partitioning", None)
    fields = set() if partitioning is None else set(partitioning.schema.names)

    def own(name: Any) -> str | None:  # a column of the files, not of the folders
        return name if isinstance(name, str) and name not in fields else None

    fmt = getattr(dataset.format, "default_extname", None)
    check_parts(
        [
            resolve_source(
                file=str(file),
                target=own(settings.target),
                proba_cols=settings.proba,
                classes=None if settings.classes is None else [str(c) for c in settings.classes],
                solution=None,
                submission=None,
                id_column=own(settings.id),
                target_file=None,
                fmt=fmt if fmt in ("parquet", "csv") else None,
                batch_rows=settings.batch_rows,
                weight=own(weight),
            )
            for file in dataset.files
        ]
    )


def _dataset_files(data: Any) -> list[str] | None:
    """The files of a pyarrow ``FileSystemDataset`` on the local file system, else None."""
    if type(data).__module__.split(".")[0] != "pyarrow" or not hasattr(data, "files"):
        return None
    files = list(data.files)
    if not files:
        raise ValueError("data is a dataset without files")
    return [str(f) for f in files]


def _metadata(
    src: Source,
    rows: int,
    options: dict[str, Any],
    spec: Any = None,
    parts: Sequence[Source] = (),
    weight: float | None = None,
) -> dict[str, Any]:
    """What was scored and how: the files, columns, classes, rows, options and version."""
    import crossentropy

    files: dict[str, Any] = {"predictions": src.path}
    if len(parts) > 1 or spec is not None:
        label = os.fspath(spec) if isinstance(spec, str | os.PathLike) else type(spec).__name__
        files = {"predictions": label, "parts": [p.path for p in parts]}
    if src.solution:
        files["solution"] = src.solution
    if src.target_file:
        files["labels"] = src.target_file
    return {
        "files": files,
        "mode": src.mode,
        "format": src.format,
        "target": src.target,
        "one_hot_columns": list(src.one_hot),
        "id_column": src.id_column,
        "split_column": src.split_column,
        "sample_weight_column": src.weight_column,
        "total_weight": weight if src.weight_column else None,
        "classes": list(src.classes),
        "probability_columns": list(src.proba_columns),
        "rows": rows,
        "options": options,
        "crossentropy_version": crossentropy.__version__,
    }
