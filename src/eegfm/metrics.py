"""Metrics of one fold, and their chance levels.

Every classification metric comes from :mod:`sklearn.metrics`. ``classes``
fixes the label set (and the column order of ``scores``) so that every fold
and model is scored against the same classes, whichever of them a fold
predicts. :func:`compute_regression_metrics` scores continuous targets and
:func:`regression_chance` gives their chance levels.

The fast, vectorised re-implementations used by the bootstrap and the
permutation test live in :mod:`eegfm.stats` and are tested against these.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

METRICS = ("balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "f1_weighted", "roc_auc", "auprc")
REGRESSION_METRICS = ("pearson_r", "r2", "mae")
# metrics where lower is better (everything else: higher is better)
LOWER_IS_BETTER = frozenset({"mae"})


def _check_scores(scores: np.ndarray, n: int, classes: list[str]) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape != (n, len(classes)):
        expected = (n, len(classes))
        raise ValueError(f"scores must have shape (n_samples, n_classes) = {expected}, got {scores.shape}")
    return scores


def _ranked_scores(y_true: np.ndarray, scores: np.ndarray | None, classes: list[str]) -> np.ndarray | None:
    """Checked scores, or ``None`` where a ranking metric is undefined (no scores, or a class absent from ``y_true``)."""
    if scores is None:
        return None
    scores = _check_scores(scores, len(y_true), classes)
    return None if set(classes) - set(y_true.tolist()) else scores


def _roc_auc(y_true: np.ndarray, scores: np.ndarray | None, classes: list[str]) -> float:
    """ROC AUC, or NaN when it is undefined (no scores, or a class absent from ``y_true``)."""
    from sklearn.metrics import roc_auc_score

    scores = _ranked_scores(y_true, scores, classes)
    if scores is None:
        return math.nan
    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], scores[:, 1]))
    return float(roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=classes))


def _auprc(y_true: np.ndarray, scores: np.ndarray | None, classes: list[str]) -> float:
    """Area under the precision-recall curve (sklearn's average precision).

    Binary: of ``classes[1]``; otherwise the unweighted mean over classes of
    the one-vs-rest average precision. NaN without scores or when a class is
    absent from ``y_true``.
    """
    from sklearn.metrics import average_precision_score

    scores = _ranked_scores(y_true, scores, classes)
    if scores is None:
        return math.nan
    if len(classes) == 2:
        return float(average_precision_score(y_true == classes[1], scores[:, 1]))
    return float(np.mean([average_precision_score(y_true == c, scores[:, j]) for j, c in enumerate(classes)]))


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
        ``balanced_accuracy``, ``accuracy``, ``cohen_kappa``, ``f1_macro`` and
        ``f1_weighted`` (over ``classes``), ``roc_auc`` (binary: scores of
        ``classes[1]``; otherwise one-vs-rest macro) and ``auprc`` (average
        precision; binary: of ``classes[1]``; otherwise one-vs-rest macro).
        A metric that is undefined is NaN.
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
            "f1_weighted": f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0),
            "roc_auc": _roc_auc(y_true, scores, classes),
            "auprc": _auprc(y_true, scores, classes),
        }
    return {name: float(out[name]) for name in METRICS}


def _best_weighted_f1(shares: np.ndarray) -> float:
    """Highest weighted F1 of guessing from a fixed class distribution ``q``, in the limit of many windows.

    Guessing with ``q`` scores ``sum_k p_k * 2 p_k q_k / (p_k + q_k)``, concave in ``q``.
    Its maximum over the simplex puts ``q_k = p_k (t sqrt(p_k) - 1)`` on the ``m`` most
    common classes (``t`` makes them sum to 1) and nothing on the others, so this takes
    the best such ``q`` that is non-negative over ``m``. It is at least what uniform
    guessing, stratified guessing (``q = p``) and always predicting one class score.
    """
    p = np.sort(shares[shares > 0])[::-1]
    best = 0.0
    for m in range(1, len(p) + 1):
        a = p[:m]
        q = a * ((1 + a.sum()) / np.sum(a**1.5) * np.sqrt(a) - 1)
        if q.min() >= -1e-12:
            best = max(best, float(np.sum(a * 2 * a * q / (a + q))))
    return best


def _expected_average_precision(n_positive: int, n: int) -> float:
    """Expected average precision of scores in random order (no ties) with ``n_positive`` of ``n`` positive.

    A positive at rank ``r`` has precision ``(1 + E[other positives above it]) / r``
    with ``(r - 1)(P - 1)/(n - 1)`` of them expected, which sums to
    ``(P - 1)/(n - 1) + H_n (n - P) / (n (n - 1))`` (``H_n``: the n-th harmonic number):
    the class share plus about ``ln(n) / n``. Constant scores (one tie) score the share itself.
    """
    if n_positive == 0 or n == 1:
        return float(n_positive)
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return (n_positive - 1) / (n - 1) + harmonic * (n - n_positive) / (n * (n - 1))


def chance_levels(y_true: Sequence, classes: list[str]) -> dict[str, float]:
    """Analytic chance level of each metric in :data:`METRICS` for these labels.

    The chance level of a metric is the highest expected score of a predictor
    that ignores the input, for the label shares ``p_k`` of ``y_true`` (``K``
    classes). Such a predictor draws every prediction from one fixed class
    distribution ``q``: uniform guessing, stratified guessing (``q = p``) and
    always predicting one class (the majority, or any other) are special
    cases, and its class scores are uninformative (random, or constant). The
    label-based values are limits for many windows; a finite set scatters
    around them.

    Parameters
    ----------
    y_true
        True labels of the evaluated set.
    classes
        The label set (K classes).

    Returns
    -------
    dict of str to float
        ``balanced_accuracy``: 1/K (every ``q``, when each class is in
        ``y_true``); ``accuracy``: the majority share (always predicting the
        majority class); ``cohen_kappa``: 0 (every ``q``); ``f1_macro``: 1/K
        (stratified guessing: each class's F1 ``2 p q / (p + q)`` is at most
        ``(p + q) / 2``, equal at ``q = p``; uniform guessing scores less on
        imbalanced labels and so does always predicting the majority);
        ``f1_weighted``: the best ``q`` (:func:`_best_weighted_f1`; on 88/12
        labels always predicting the majority, 0.82); ``roc_auc``: 0.5;
        ``auprc``: the expected average precision of scores in random order
        (:func:`_expected_average_precision`: the class share plus about
        ln(n)/n; constant scores get the share), of the positive class
        ``classes[1]`` (binary) or averaged over classes.
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    k, n = len(classes), len(y_true)
    if k == 0 or n == 0:
        raise ValueError("chance levels need at least one class and one label")
    counts = np.array([np.sum(y_true == str(c)) for c in classes])
    shares = counts / n
    ap = [_expected_average_precision(int(c), n) for c in counts]
    return {
        "balanced_accuracy": 1.0 / k,
        "accuracy": float(shares.max()),
        "cohen_kappa": 0.0,
        "f1_macro": 1.0 / k,
        "f1_weighted": _best_weighted_f1(shares),
        "roc_auc": 0.5,
        "auprc": ap[1] if k == 2 else float(np.mean(ap)),
    }


def compute_regression_metrics(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Every metric in :data:`REGRESSION_METRICS` for continuous targets.

    Parameters
    ----------
    y_true, y_pred
        True and predicted values (same length, at least 1, finite).

    Returns
    -------
    dict of str to float
        ``pearson_r`` (NaN when either side is constant, e.g. a test fold
        holding one subject's age), ``r2`` (sklearn's coefficient of
        determination; NaN when ``y_true`` is constant) and ``mae`` (mean
        absolute error).
    """
    from sklearn.metrics import mean_absolute_error, r2_score

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) < 1:
        raise ValueError(f"need two 1-D arrays of the same length >= 1; got shapes {y_true.shape} and {y_pred.shape}")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("regression targets and predictions must be finite")
    constant_true, constant_pred = np.ptp(y_true) == 0, np.ptp(y_pred) == 0
    pearson = math.nan if constant_true or constant_pred else float(np.corrcoef(y_true, y_pred)[0, 1])
    r2 = math.nan if constant_true else float(r2_score(y_true, y_pred))
    return {"pearson_r": pearson, "r2": r2, "mae": float(mean_absolute_error(y_true, y_pred))}


def regression_chance(y_train: Sequence, y_test: Sequence) -> dict[str, float]:
    """Chance level of each metric in :data:`REGRESSION_METRICS`: what an input-ignoring predictor scores.

    The predictor that ignores the input predicts one number, learnt from the
    training targets only: their mean (the least-squares constant) for R²,
    their median (the least-absolute constant) for MAE. Pearson's r of any
    uninformative predictor is 0 in expectation.

    Parameters
    ----------
    y_train, y_test
        Targets of the training and the evaluated (test) windows.

    Returns
    -------
    dict of str to float
        ``pearson_r``: 0; ``r2``: R² of predicting the training mean on
        ``y_test`` (``-n (mean_test - mean_train)² / SS_test``, at most 0;
        NaN when ``y_test`` is constant); ``mae``: mean absolute error of
        predicting the training median.
    """
    y_train = np.asarray(y_train, dtype=float)
    y_test = np.asarray(y_test, dtype=float)
    if y_train.size == 0 or y_test.size == 0:
        raise ValueError("regression chance levels need training and test targets")
    total = float(np.sum((y_test - y_test.mean()) ** 2))
    mean_error = float(np.sum((y_test - y_train.mean()) ** 2))
    return {
        "pearson_r": 0.0,
        "r2": math.nan if total == 0 else 1.0 - mean_error / total,
        "mae": float(np.mean(np.abs(y_test - np.median(y_train)))),
    }


def parse_targets(labels: Sequence) -> np.ndarray:
    """Regression targets from the windows table's raw label strings (finite floats, or ``ValueError``
    naming the first values that are not)."""
    values = np.asarray(labels, dtype=object)
    out = np.full(len(values), math.nan)
    bad = []
    for i, value in enumerate(values):
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            pass
        if not math.isfinite(out[i]):
            bad.append(value)
    if bad:
        shown = sorted({str(b) for b in bad})[:5]
        raise ValueError(f"{len(bad)} regression target(s) are not finite numbers, e.g. {shown}; "
                         "re-run the windows rule (it checks them)")
    return out
