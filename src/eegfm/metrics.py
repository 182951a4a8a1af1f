"""Classification metrics of one fold, and their chance levels.

Every metric comes from :mod:`sklearn.metrics`. ``classes`` fixes the label
set (and the column order of ``scores``) so that every fold and model is
scored against the same classes, whichever of them a fold predicts.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

METRICS = ("balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "roc_auc")


def _roc_auc(y_true: np.ndarray, scores: np.ndarray | None, classes: list[str]) -> float:
    """ROC AUC, or NaN when it is undefined (no scores, or a class absent from ``y_true``)."""
    from sklearn.metrics import roc_auc_score

    if scores is None:
        return math.nan
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape != (len(y_true), len(classes)):
        expected = (len(y_true), len(classes))
        raise ValueError(f"scores must have shape (n_samples, n_classes) = {expected}, got {scores.shape}")
    if set(classes) - set(y_true.tolist()):
        return math.nan
    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], scores[:, 1]))
    return float(roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=classes))


def compute_metrics(
    y_true: Sequence, y_pred: Sequence, scores: np.ndarray | None, classes: list[str]
) -> dict[str, float]:
    """Every metric in :data:`METRICS` for one set of predictions.

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels.
    scores
        Class scores, shape (n_samples, n_classes), columns in the order of
        ``classes``; rows must sum to 1 for more than two classes (sklearn's
        one-vs-rest AUC). ``None`` when the model gives none.
    classes
        The label set, sorted as the score columns.

    Returns
    -------
    dict of str to float
        ``balanced_accuracy``, ``accuracy``, ``cohen_kappa``, ``f1_macro``
        (over ``classes``) and ``roc_auc`` (binary: scores of ``classes[1]``;
        otherwise one-vs-rest macro). A metric that is undefined is NaN.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score, f1_score

    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    classes = [str(c) for c in classes]
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"need as many predictions as labels (>0); got {len(y_pred)} and {len(y_true)}")
    with warnings.catch_warnings():
        # a fold that predicts a class absent from y_true, or a constant kappa, warns; the value is still defined
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "accuracy": accuracy_score(y_true, y_pred),
            "cohen_kappa": cohen_kappa_score(y_true, y_pred, labels=classes),
            "f1_macro": f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
            "roc_auc": _roc_auc(y_true, scores, classes),
        }
    return {name: float(out[name]) for name in METRICS}


def chance_levels(y_true: Sequence, classes: list[str]) -> dict[str, float]:
    """Chance level of each metric in :data:`METRICS` for these labels.

    Parameters
    ----------
    y_true
        True labels of the evaluated set.
    classes
        The label set (K classes).

    Returns
    -------
    dict of str to float
        ``balanced_accuracy`` and ``f1_macro``: 1/K; ``accuracy``: share of the
        majority class in ``y_true`` (always predicting it); ``cohen_kappa``: 0;
        ``roc_auc``: 0.5.
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    k = len(classes)
    if k == 0 or len(y_true) == 0:
        raise ValueError("chance levels need at least one class and one label")
    counts = [int(np.sum(y_true == str(c))) for c in classes]
    return {
        "balanced_accuracy": 1.0 / k,
        "accuracy": max(counts) / len(y_true),
        "cohen_kappa": 0.0,
        "f1_macro": 1.0 / k,
        "roc_auc": 0.5,
    }
