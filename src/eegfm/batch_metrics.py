"""Metrics of many label or weight sets at once, as :mod:`eegfm.metrics` defines them.

Bootstrap and permutation replicates differ from the observed predictions
only in window weights (resampling multiplicities) or in the labels
(permutations), so each metric is computed for a whole batch of replicates
in memory-bounded chunks: classification metrics from weighted confusion
matrices or from one sort of the scores (:func:`batch_scores`), regression
metrics from weighted moments (:func:`regression_batch_scores`). Tests check
every metric against scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONFUSION_METRICS = ("balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "f1_weighted")
RANK_METRICS = ("roc_auc", "auprc")
MAX_CELLS = 4_000_000  # replicates x windows evaluated at once (memory bound)


def confusion_matrices(y: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted confusion matrices (rows: true, columns: predicted) of many label sets at once.

    Parameters
    ----------
    y
        True label codes, shape (n,) or (B, n) (one row per replicate).
    pred
        Predicted label codes, shape (n,).
    k
        Number of classes.
    weights
        Window weights, shape (B, n) (bootstrap multiplicities); ``None``: 1.

    Returns
    -------
    numpy.ndarray
        Shape (B, k, k).
    """
    y = np.atleast_2d(y)
    b = max(y.shape[0], 1 if weights is None else weights.shape[0])
    y = np.broadcast_to(y, (b, y.shape[1]))
    flat = (np.arange(b)[:, None] * k + y) * k + pred[None, :]
    w = None if weights is None else np.broadcast_to(weights, flat.shape).ravel()
    return np.bincount(flat.ravel(), weights=w, minlength=b * k * k).reshape(b, k, k).astype(float)


def confusion_scores(cm: np.ndarray, metric: str) -> np.ndarray:
    """A confusion-matrix metric of each matrix in ``cm`` (B, K, K), as sklearn defines it.

    ``balanced_accuracy`` averages recall over the classes present in the
    true labels; ``f1_macro`` / ``f1_weighted`` cover every class (an
    undefined F1 counts as 0); ``cohen_kappa`` is NaN when the expected
    agreement is 1.
    """
    cm = np.asarray(cm, dtype=float)
    support, predicted = cm.sum(axis=2), cm.sum(axis=1)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    total = cm.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "accuracy":
            return tp.sum(axis=1) / total
        if metric == "balanced_accuracy":
            recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
            present = (support > 0).sum(axis=1)
            return np.where(present > 0, np.nansum(recall, axis=1) / np.maximum(present, 1), np.nan)
        if metric == "cohen_kappa":
            po = tp.sum(axis=1) / total
            pe = (support * predicted).sum(axis=1) / total**2
            return np.where(pe < 1, (po - pe) / np.where(pe < 1, 1 - pe, 1), np.nan)
        denominator = support + predicted
        f1 = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)
        if metric == "f1_macro":
            return f1.mean(axis=1)
        if metric == "f1_weighted":
            n = support.sum(axis=1)
            return np.where(n > 0, (support * f1).sum(axis=1) / np.where(n > 0, n, 1), 0.0)
    raise ValueError(f"'{metric}' is not a confusion-matrix metric ({', '.join(CONFUSION_METRICS)})")


def _binary_rank_scores(positive: np.ndarray, score: np.ndarray, weights: np.ndarray, metric: str) -> np.ndarray:
    """Weighted ROC AUC or average precision of one score column for B label/weight rows (B, n)."""
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_score)) + 1]  # groups of tied scores, ascending
    pos = positive[:, order] * weights[:, order]
    neg = (~positive[:, order]) * weights[:, order]
    wp = np.add.reduceat(pos, starts, axis=1)
    wn = np.add.reduceat(neg, starts, axis=1)
    n_pos, n_neg = wp.sum(axis=1), wn.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "roc_auc":
            below = np.cumsum(wn, axis=1) - wn
            out = (wp * (below + 0.5 * wn)).sum(axis=1) / (n_pos * n_neg)
            return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)
        # average precision: thresholds in descending score order, AP = sum_t (R_t - R_t-1) P_t
        wp_d, wn_d = wp[:, ::-1], wn[:, ::-1]
        tps, fps = np.cumsum(wp_d, axis=1), np.cumsum(wn_d, axis=1)
        precision = np.where(tps + fps > 0, tps / np.where(tps + fps > 0, tps + fps, 1), 0.0)
        out = (wp_d * precision).sum(axis=1) / n_pos
        return np.where(n_pos > 0, out, np.nan)


def rank_scores(y: np.ndarray, scores: np.ndarray, metric: str, weights: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC or AUPRC (as :func:`eegfm.metrics.compute_metrics` defines them) of B label sets at once.

    Parameters
    ----------
    y
        True label codes, (n,) or (B, n).
    scores
        Class scores (n, K).
    metric
        ``roc_auc`` or ``auprc``.
    weights
        (B, n) window weights or ``None``.

    Returns
    -------
    numpy.ndarray
        (B,): binary — of the second class's scores; multiclass — the mean over
        classes of the one-vs-rest value (NaN when a class is absent).
    """
    if metric not in RANK_METRICS:
        raise ValueError(f"'{metric}' is not a rank metric ({', '.join(RANK_METRICS)})")
    y = np.atleast_2d(y)
    b = max(y.shape[0], 1 if weights is None else weights.shape[0])
    y = np.broadcast_to(y, (b, y.shape[1]))
    w = np.ones(y.shape) if weights is None else np.broadcast_to(weights, y.shape).astype(float)
    k = scores.shape[1]
    columns = [1] if k == 2 else range(k)
    per_class = [_binary_rank_scores(y == c, scores[:, c], w, metric) for c in columns]
    return np.mean(per_class, axis=0)


def batch_scores(
    metrics: Sequence[str], y: np.ndarray, pred: np.ndarray, scores: np.ndarray | None, k: int,
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each of ``metrics`` for B replicates (label rows of ``y`` and/or weight rows), in memory-bounded chunks."""
    y = np.atleast_2d(y)
    b = max(y.shape[0], 1 if weights is None else weights.shape[0])
    out: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for start, stop in replicate_chunks(b, y.shape[1]):
        yc = y[start:stop] if y.shape[0] > 1 else y
        wc = None if weights is None else weights[start:stop]
        cm = None
        for metric in metrics:
            if metric in CONFUSION_METRICS:
                if cm is None:
                    cm = confusion_matrices(yc, pred, k, wc)
                    if cm.shape[0] != stop - start:
                        cm = np.broadcast_to(cm, (stop - start, k, k))
                out[metric].append(confusion_scores(cm, metric))
            elif metric in RANK_METRICS and scores is not None:
                values = rank_scores(yc, scores, metric, wc)
                out[metric].append(np.broadcast_to(values, (stop - start,)))
            else:
                out[metric].append(np.full(stop - start, np.nan))
    return {m: np.concatenate(v) for m, v in out.items()}


def _weighted_regression(metric: str, y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One regression metric of B rows of targets ``y`` (B, n) and weights ``w`` (B, n) against ``pred`` (n,)."""
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "mae":
            return np.where(total > 0, (w * np.abs(y - pred)).sum(axis=1) / total, np.nan)
        mean_y = (w * y).sum(axis=1, keepdims=True) / total[:, None]
        ss_y = (w * (y - mean_y) ** 2).sum(axis=1)
        if metric == "r2":
            ss_res = (w * (y - pred) ** 2).sum(axis=1)
            return np.where(ss_y > 0, 1.0 - ss_res / np.where(ss_y > 0, ss_y, 1.0), np.nan)
        mean_p = (w * pred).sum(axis=1, keepdims=True) / total[:, None]
        ss_p = (w * (pred - mean_p) ** 2).sum(axis=1)
        cov = (w * (y - mean_y) * (pred - mean_p)).sum(axis=1)
        # a constant side (relative to the values' scale) leaves r undefined, as in compute_regression_metrics
        scale = np.maximum(np.abs(mean_y[:, 0]), 1.0) ** 2 * total * 1e-24
        defined = (ss_y > scale) & (ss_p > np.maximum(np.abs(mean_p[:, 0]), 1.0) ** 2 * total * 1e-24)
        return np.where(defined, cov / np.sqrt(np.where(defined, ss_y * ss_p, 1.0)), np.nan)


def regression_batch_scores(
    metrics: Sequence[str], y: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``pearson_r``, ``r2`` and ``mae`` (as :func:`eegfm.metrics.compute_regression_metrics`) of B replicates.

    Parameters
    ----------
    metrics
        Names among ``pearson_r``, ``r2``, ``mae``; any other is NaN.
    y
        True values, (n,) or (B, n) (permuted targets).
    pred
        Predictions, (n,).
    weights
        (B, n) window weights (bootstrap multiplicities) or ``None``.

    Returns
    -------
    dict
        metric -> (B,) values; NaN where a metric is undefined (a constant
        side for r, a constant target for R², no weight at all).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    pred = np.asarray(pred, dtype=float)
    b, n = max(y.shape[0], 1 if weights is None else weights.shape[0]), y.shape[1]
    out: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for start, stop in replicate_chunks(b, n):
        yc = np.broadcast_to(y[start:stop] if y.shape[0] > 1 else y, (stop - start, n))
        wc = np.ones((stop - start, n)) if weights is None else np.broadcast_to(weights[start:stop], (stop - start, n))
        for metric in metrics:
            values = _weighted_regression(metric, yc, pred, wc) if metric in ("pearson_r", "r2", "mae") \
                else np.full(stop - start, np.nan)
            out[metric].append(values)
    return {m: np.concatenate(v) for m, v in out.items()}


def replicate_chunks(total: int, n: int):
    """(start, stop) ranges of ``total`` replicates so that a chunk holds at most ``MAX_CELLS`` replicate-windows."""
    size = max(1, MAX_CELLS // max(n, 1))
    for start in range(0, total, size):
        yield start, min(total, start + size)
