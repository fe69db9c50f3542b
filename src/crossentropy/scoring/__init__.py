"""Scoring probability predictions held in tables: Kaggle's metric convention.

:func:`kaggle_score` scores a submission table against a solution table joined on a row id, as
Kaggle's metric functions ``score(solution, submission, row_id_column_name)`` do, with Kaggle's
rescaling and clipping of the probabilities (:func:`kaggle_probabilities`). Tables may be pandas
or polars DataFrames or pyarrow Tables (pyarrow is imported on the first call).
"""

from crossentropy.scoring._kaggle import KAGGLE_EPS, kaggle_probabilities, kaggle_score

__all__ = ["KAGGLE_EPS", "kaggle_probabilities", "kaggle_score"]
