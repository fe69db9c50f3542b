"""Scoring probability predictions: files in bounded memory, and Kaggle's metric convention.

:func:`score` reads a file of predictions (CSV, Parquet, NumPy) or a Kaggle-style
solution/submission pair in batches, in this process or on a Dask cluster, and returns a
:class:`ScoreReport` (log loss, accuracy, Brier score, calibration, per-class losses, the worst
rows) that renders as text, JSON or a self-contained HTML page; given several prediction sets
it returns a :class:`Comparison` with paired bootstrap intervals of their differences.
:func:`kaggle_score` scores a submission table against a solution table as Kaggle's metric
functions do, with Kaggle's rescaling and clipping of the probabilities
(:func:`kaggle_probabilities`). pyarrow (and dask, matplotlib, jinja2) are imported on the
first call.
"""

# Layout, in the order a scoring runs (each module's docstring says more):
#   _api      score(): the options checked, the input resolved, an engine run -> ScoreReport
#   _sources  what to read: a path, URL, folder of parts, table, arrays or pair -> Source
#             (from headers and footers only); InputError
#   _readers  how it is read: a Source, or one Unit of it -> validated Batches, bounded memory
#   _join     a solution/submission pair joined by id: in order, or through a SolutionIndex
#   _split    a file cut into Units for the workers of the Dask engine
#   _engine   Batches fed to metrics.ScoreAccumulator, on threads or on a Dask cluster
#   _report   ScoreReport as text and HTML (templates/report.html.j2)
#   _compare  several prediction sets on the same targets: paired bootstrap differences
#   _kaggle   kaggle_score(): Kaggle's metric convention on DataFrames

from crossentropy.scoring._api import ScoreReport, score
from crossentropy.scoring._compare import Comparison
from crossentropy.scoring._kaggle import KAGGLE_EPS, kaggle_probabilities, kaggle_score
from crossentropy.scoring._sources import InputError

__all__ = [
    "KAGGLE_EPS",
    "Comparison",
    "InputError",
    "ScoreReport",
    "kaggle_probabilities",
    "kaggle_score",
    "score",
]
