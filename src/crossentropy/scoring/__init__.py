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

from crossentropy.scoring._api import ScoreReport, score
from crossentropy.scoring._compare import Comparison
from crossentropy.scoring._kaggle import KAGGLE_EPS, kaggle_probabilities, kaggle_score
from crossentropy.scoring._read import InputError

__all__ = [
    "KAGGLE_EPS",
    "Comparison",
    "InputError",
    "ScoreReport",
    "kaggle_probabilities",
    "kaggle_score",
    "score",
]
