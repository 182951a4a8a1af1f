"""Statistics of the report: confidence intervals, chance tests and model comparisons.

Everything here works on small numpy arrays and is independent of files and
figures, so each piece is tested against hand-computed cases.

Unit of inference
    Windows of one subject are not independent, so resampling and
    permutation use the **subject** as the unit whenever out-of-fold
    predictions (``predictions.tsv``) are available:

    - *Confidence intervals* — a cluster (subject) bootstrap: subjects are
      drawn with replacement from all test subjects, each bringing every one
      of its out-of-fold predictions, and the metric is recomputed on the
      pooled predictions of the drawn subjects; the interval is the
      percentile interval of the replicates. It is therefore an interval for
      the *pooled* out-of-fold score (reported next to it). Without
      predictions the fold scores are resampled instead (a percentile
      bootstrap of the mean over folds; coarse with few folds).
    - *Empirical chance / permutation test* — no model is refitted: the
      pooled out-of-fold predictions stay fixed and the true labels are
      permuted in a way that respects the subject structure. Labels are
      shuffled *within* each subject (so every subject keeps its own class
      counts), and subjects whose windows all carry one label (subject-level
      labels, e.g. patient vs control) exchange their label as a block with
      the other such subjects. Under the null hypothesis that predictions
      carry no information about labels beyond who the subject is, every
      such relabelling is equally likely, so the permutation p-value
      ``(1 + #{null >= observed}) / (n_permutations + 1)`` is valid, and the
      mean of the null distribution is the empirical chance level. Because
      the fitted models are not re-trained, this tests the predictions, not
      the training procedure.
    - *Binomial test* — the number of correct pooled predictions against
      the majority-class rate (at least ``1/K``), one-sided. It treats
      windows as independent and is therefore optimistic; it is reported
      because it is the test most papers use.

Comparisons across models (per dataset, over folds)
    Paired two-sided Wilcoxon signed-rank tests between every pair of
    entries on the folds where both have a score, Holm-corrected within the
    dataset; with three or more entries a Friedman test over the folds
    completed by every entry, average ranks and the Nemenyi critical
    difference ``q_alpha * sqrt(k (k + 1) / (6 N))`` (Demšar 2006). Folds
    share training data, so these tests are optimistic (Nadeau & Bengio
    2003); with ``N`` pairs the smallest exact two-sided Wilcoxon p-value is
    ``2^(1 - N)``, so with fewer than 6 folds no difference can reach
    ``p < 0.05``: such results are labelled *exploratory*.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eegfm.metrics import METRICS

logger = logging.getLogger(__name__)

CONFUSION_METRICS = ("balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "f1_weighted")
RANK_METRICS = ("roc_auc", "auprc")
_MAX_CELLS = 4_000_000  # replicates x windows evaluated at once (memory bound)


# ----------------------------------------------------------------------------- pooled predictions


@dataclass
class Pooled:
    """Out-of-fold predictions of one dataset × model × regime, as integer codes.

    ``y`` and ``pred`` index ``classes``; ``subject`` indexes ``subjects``;
    ``scores`` (n × K, columns in the order of ``classes``) is ``None`` when
    the model gave none.
    """

    y: np.ndarray
    pred: np.ndarray
    scores: np.ndarray | None
    subject: np.ndarray
    fold: np.ndarray
    classes: list[str]
    subjects: list[str]
    n_folds: int = field(default=0)

    def __len__(self) -> int:
        return len(self.y)


def pool_predictions(frames: Sequence[tuple[int, pd.DataFrame]], classes: Sequence[str] | None = None) -> Pooled:
    """Stack the ``predictions.tsv`` of several folds into one :class:`Pooled`.

    Parameters
    ----------
    frames
        ``(fold, predictions)`` pairs; empty frames (failed folds) are skipped.
    classes
        The label set; the union of the labels seen is added to it (sorted).

    Returns
    -------
    Pooled
        Scores are kept only when every non-empty fold has a ``score_<class>``
        column for every class.
    """
    parts = [(int(k), f) for k, f in frames if f is not None and len(f)]
    seen = {str(v) for _, f in parts for col in ("y_true", "y_pred") for v in f[col]}
    labels = sorted(set(map(str, classes or [])) | seen)
    index = {c: i for i, c in enumerate(labels)}
    if not parts:
        empty = np.zeros(0, dtype=int)
        return Pooled(empty, empty, None, empty, empty, labels, [], 0)
    data = pd.concat([f.assign(_fold=k) for k, f in parts], ignore_index=True)
    score_cols = [f"score_{c}" for c in labels]
    scores = None
    if all(c in data.columns for c in score_cols):
        scores = data[score_cols].to_numpy(dtype=float)
        if not np.isfinite(scores).all():
            scores = None
    subjects = sorted({str(s) for s in data["subject"]})
    subject_index = {s: i for i, s in enumerate(subjects)}
    return Pooled(
        y=np.array([index[str(v)] for v in data["y_true"]], dtype=int),
        pred=np.array([index[str(v)] for v in data["y_pred"]], dtype=int),
        scores=scores,
        subject=np.array([subject_index[str(s)] for s in data["subject"]], dtype=int),
        fold=data["_fold"].to_numpy(dtype=int),
        classes=labels,
        subjects=subjects,
        n_folds=len(parts),
    )


# ----------------------------------------------------------------------------- vectorised metrics


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
    n = y.shape[1]
    chunk = max(1, _MAX_CELLS // max(n, 1))
    out: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for start in range(0, b, chunk):
        stop = min(b, start + chunk)
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


def pooled_scores(pooled: Pooled, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Each metric on all pooled out-of-fold predictions."""
    if not len(pooled):
        return {m: math.nan for m in metrics}
    values = batch_scores(metrics, pooled.y, pooled.pred, pooled.scores, len(pooled.classes))
    return {m: float(v[0]) for m, v in values.items()}


# ----------------------------------------------------------------------------- confidence intervals


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return math.nan, math.nan
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def subject_bootstrap(
    pooled: Pooled, metrics: Sequence[str], *, n_bootstrap: int, level: float, seed: int
) -> dict[str, tuple[float, float]]:
    """Percentile confidence interval of each pooled metric, resampling subjects with replacement.

    Each replicate draws as many subjects as there are (with replacement);
    a subject drawn twice counts its windows twice. Replicates where a
    metric is undefined (e.g. a class absent) are dropped for that metric.

    Returns
    -------
    dict
        metric -> (low, high); NaN bounds with fewer than 2 subjects.
    """
    n_subjects = len(pooled.subjects)
    if n_subjects < 2 or n_bootstrap < 2:
        return {m: (math.nan, math.nan) for m in metrics}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_subjects, size=(n_bootstrap, n_subjects))
    counts = np.zeros((n_bootstrap, n_subjects))
    np.add.at(counts, (np.repeat(np.arange(n_bootstrap), n_subjects), draws.ravel()), 1.0)
    parts = [
        batch_scores(metrics, pooled.y, pooled.pred, pooled.scores, len(pooled.classes),
                     counts[start:stop][:, pooled.subject])
        for start, stop in _chunks(n_bootstrap, len(pooled))
    ]
    return {m: _percentile_interval(np.concatenate([p[m] for p in parts]), level) for m in metrics}


def fold_bootstrap(values: Sequence[float], *, n_bootstrap: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile confidence interval of the mean of ``values`` (fold scores), resampling them with replacement.

    NaN values are ignored; fewer than 2 finite values give NaN bounds.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or n_bootstrap < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_bootstrap, x.size))].mean(axis=1)
    return _percentile_interval(means, level)


# ----------------------------------------------------------------------------- chance


def subject_permutations(
    y: np.ndarray, subject: np.ndarray, n_permutations: int, rng: int | np.random.Generator
) -> np.ndarray:
    """Label permutations that respect the subject structure (see the module docstring).

    Labels are shuffled within each subject; subjects whose windows share a
    single label additionally exchange that label among themselves.

    Parameters
    ----------
    y, subject
        Label and subject codes of each window.
    n_permutations
        Number of permutations (rows).
    rng
        Seed or generator.

    Returns
    -------
    numpy.ndarray
        (n_permutations, n) permuted label codes.
    """
    rng = np.random.default_rng(rng)
    y = np.asarray(y)
    units, unit = np.unique(np.asarray(subject), return_inverse=True)
    n = len(y)
    by_subject = np.argsort(unit, kind="stable")
    out = np.empty((n_permutations, n), dtype=y.dtype)
    sort_keys = unit[None, :] + rng.random((n_permutations, n))  # the integer part keeps the subject
    out[:, by_subject] = y[np.argsort(sort_keys, axis=1, kind="stable")]
    # subject-level labels: exchanged as blocks among the subjects that have one
    pairs = np.unique(np.stack([unit, y]), axis=1)
    constant = np.flatnonzero(np.bincount(pairs[0], minlength=len(units)) == 1)
    if len(constant) > 1:
        first = np.unique(unit, return_index=True)[1]
        labels = y[first][constant]
        order = rng.permuted(np.tile(np.arange(len(constant)), (n_permutations, 1)), axis=1)
        slot = np.full(len(units), -1)
        slot[constant] = np.arange(len(constant))
        windows = np.flatnonzero(slot[unit] >= 0)
        out[:, windows] = labels[order][:, slot[unit[windows]]]
    return out


def _chunks(total: int, n: int):
    """(start, stop) ranges of replicates so that a chunk holds at most ``_MAX_CELLS`` replicate-windows."""
    size = max(1, _MAX_CELLS // max(n, 1))
    for start in range(0, total, size):
        yield start, min(total, start + size)


@dataclass
class PermutationResult:
    """Observed pooled score, its permutation p-value and the null distribution's summary."""

    observed: float
    p_value: float
    null_mean: float
    null_quantile: float
    n_permutations: int


def permutation_test(
    pooled: Pooled, metric: str, *, n_permutations: int, seed: int, quantile: float = 0.95
) -> PermutationResult:
    """Permutation test of the pooled out-of-fold ``metric`` against chance (subject as the unit).

    ``p = (1 + #{null >= observed}) / (n_permutations + 1)``; the null's mean
    is the empirical chance level and its ``quantile`` the score needed to be
    significant at ``1 - quantile``.
    """
    observed = pooled_scores(pooled, [metric])[metric] if len(pooled) else math.nan
    if not math.isfinite(observed) or n_permutations < 1:
        return PermutationResult(observed, math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    null = np.concatenate([
        batch_scores([metric], subject_permutations(pooled.y, pooled.subject, stop - start, rng), pooled.pred,
                     pooled.scores, len(pooled.classes))[metric]
        for start, stop in _chunks(n_permutations, len(pooled))
    ])
    null = null[np.isfinite(null)]
    if not null.size:
        return PermutationResult(observed, math.nan, math.nan, math.nan, 0)
    exceed = int(np.sum(null >= observed - 1e-12))
    return PermutationResult(
        observed=observed,
        p_value=(1 + exceed) / (null.size + 1),
        null_mean=float(null.mean()),
        null_quantile=float(np.quantile(null, quantile)),
        n_permutations=int(null.size),
    )


@dataclass
class BinomialResult:
    """One-sided binomial test of the number of correct predictions against the majority-class rate."""

    n_correct: int
    n: int
    p0: float
    majority_class: str
    p_value: float


def binomial_test(pooled: Pooled) -> BinomialResult:
    """Binomial test of pooled accuracy against ``p0`` = the majority class's share (>= 1/K), one-sided."""
    from scipy.stats import binomtest

    n = len(pooled)
    if n == 0:
        return BinomialResult(0, 0, math.nan, "", math.nan)
    counts = np.bincount(pooled.y, minlength=len(pooled.classes))
    p0 = max(counts.max() / n, 1.0 / len(pooled.classes))
    correct = int(np.sum(pooled.y == pooled.pred))
    p_value = float(binomtest(correct, n, p0, alternative="greater").pvalue) if p0 < 1 else 1.0
    return BinomialResult(correct, n, float(p0), pooled.classes[int(counts.argmax())], p_value)


# ----------------------------------------------------------------------------- comparisons


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN entries stay NaN and are not counted.

    With the m finite p-values sorted ascending, ``p_adj(i) = max_{j<=i} min(1, (m - j + 1) p(j))``
    (1-based), mapped back to the input order.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if not m:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def min_wilcoxon_p(n: int) -> float:
    """Smallest exact two-sided p-value of a Wilcoxon signed-rank test on ``n`` pairs (no ties): ``2^(1-n)``."""
    return 1.0 if n < 1 else min(1.0, 2.0 ** (1 - n))


def is_exploratory(n: int, alpha: float) -> bool:
    """True when ``n`` paired folds cannot give an exact two-sided Wilcoxon p-value below ``alpha``."""
    return min_wilcoxon_p(n) > alpha


def paired_wilcoxon(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, int]:
    """Two-sided Wilcoxon signed-rank test of paired scores (pairs with a NaN are dropped).

    Returns
    -------
    tuple
        (statistic, p-value, number of pairs); all differences zero gives
        p = 1; fewer than 2 pairs gives NaN.
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 2:
        return math.nan, math.nan, n
    if np.allclose(x, y, rtol=0, atol=1e-12):
        return 0.0, 1.0, n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        result = wilcoxon(x, y)
    return float(result.statistic), float(result.pvalue), n


def average_ranks(matrix: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Mean rank of each column over the rows of ``matrix`` (blocks × entries); rank 1 is best, ties averaged."""
    from scipy.stats import rankdata

    m = np.asarray(matrix, dtype=float)
    ranks = rankdata(-m if higher_is_better else m, axis=1)
    return ranks.mean(axis=0)


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks for ``k`` entries over ``n`` blocks (Demšar 2006).

    ``CD = q_alpha sqrt(k (k + 1) / (6 n))`` with ``q_alpha`` the studentized
    range quantile (infinite degrees of freedom) divided by ``sqrt(2)``.
    """
    from scipy.stats import studentized_range

    if k < 2 or n < 1:
        return math.nan
    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


@dataclass
class FriedmanResult:
    """Friedman test over blocks (folds) with average ranks and the Nemenyi critical difference."""

    statistic: float
    p_value: float
    ranks: np.ndarray
    cd: float
    n: int
    k: int


def friedman(matrix: np.ndarray, alpha: float = 0.05, higher_is_better: bool = True) -> FriedmanResult:
    """Friedman test of ``matrix`` (blocks × entries, no NaN), average ranks and Nemenyi CD.

    Needs at least 3 entries and 2 blocks; the statistic is scipy's
    (tie-corrected) chi-square.
    """
    from scipy.stats import friedmanchisquare

    m = np.asarray(matrix, dtype=float)
    n, k = m.shape
    if k < 3 or n < 2:
        raise ValueError(f"the Friedman test needs >= 3 entries and >= 2 blocks, got {k} and {n}")
    ranks = average_ranks(m, higher_is_better)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if np.all(np.ptp(m, axis=1) == 0):  # every block fully tied: no evidence of any difference
            statistic, p_value = 0.0, 1.0
        else:
            statistic, p_value = friedmanchisquare(*m.T)
    return FriedmanResult(float(statistic), float(p_value), ranks, nemenyi_cd(k, n, alpha), n, k)


def cliques(ranks: Sequence[float], cd: float) -> list[list[int]]:
    """Maximal groups of entries (indices) whose average ranks lie within ``cd`` of each other.

    Groups of a single entry are left out; these are the bars of a
    critical-difference diagram.
    """
    r = np.asarray(ranks, dtype=float)
    order = list(np.argsort(r, kind="stable"))
    groups: list[list[int]] = []
    for i, start in enumerate(order):
        members = [j for j in order[i:] if r[j] - r[start] <= cd + 1e-12]
        if len(members) > 1 and not any(set(members) <= set(g) for g in groups):
            groups.append([int(j) for j in members])
    return groups


def compare_entries(
    fold_scores: pd.DataFrame, metric: str, *, alpha: float, higher_is_better: bool = True
) -> pd.DataFrame:
    """Pairwise Wilcoxon (Holm within the dataset), Friedman, average ranks and Nemenyi rows of one dataset.

    Parameters
    ----------
    fold_scores
        Folds as rows, entries (model labels) as columns, scores of ``metric``
        (NaN for failed folds).
    metric
        Metric name, recorded on every row.
    alpha
        Significance level (Holm, Nemenyi, exploratory flag).

    Returns
    -------
    pandas.DataFrame
        Columns ``test, entry_a, entry_b, metric, n, statistic, p_value,
        p_holm, significant, exploratory, detail``; ``test`` is ``wilcoxon``
        (one row per pair), and with a Friedman test ``friedman``,
        ``nemenyi_cd`` (statistic: the critical difference), ``average_rank``
        (one per entry) and ``nemenyi`` (one per pair: |rank difference|,
        significant when above the CD).
    """
    rows: list[dict] = []
    entries = list(fold_scores.columns)
    for a, b in itertools.combinations(entries, 2):
        statistic, p_value, n = paired_wilcoxon(fold_scores[a], fold_scores[b])
        diff = (fold_scores[a] - fold_scores[b]).mean()
        rows.append({"test": "wilcoxon", "entry_a": a, "entry_b": b, "n": n, "statistic": statistic,
                     "p_value": p_value, "exploratory": is_exploratory(n, alpha),
                     "detail": f"mean difference a-b {diff:+.4f}" if math.isfinite(diff) else "no paired folds"})
    adjusted = holm([r["p_value"] for r in rows])
    for row, p_adj in zip(rows, adjusted):
        row["p_holm"] = p_adj
        row["significant"] = bool(math.isfinite(p_adj) and p_adj < alpha)

    complete = fold_scores.dropna(axis=1, how="all").dropna(axis=0, how="any")
    if complete.shape[1] >= 3 and complete.shape[0] >= 2:
        result = friedman(complete.to_numpy(), alpha, higher_is_better)
        dropped = sorted(set(entries) - set(complete.columns))
        exploratory = is_exploratory(result.n, alpha)
        rows.append({"test": "friedman", "entry_a": "", "entry_b": "", "n": result.n, "statistic": result.statistic,
                     "p_value": result.p_value, "p_holm": math.nan,
                     "significant": bool(result.p_value < alpha), "exploratory": exploratory,
                     "detail": f"k={result.k} entries over {result.n} complete folds; Nemenyi CD={result.cd:.3f}"
                     + (f"; left out (no complete folds): {', '.join(dropped)}" if dropped else "")})
        rows.append({"test": "nemenyi_cd", "entry_a": "", "entry_b": "", "n": result.n, "statistic": result.cd,
                     "p_value": math.nan, "p_holm": math.nan, "significant": False, "exploratory": exploratory,
                     "detail": f"critical difference of average ranks at alpha={alpha}, k={result.k}"})
        for entry, rank in zip(complete.columns, result.ranks):
            rows.append({"test": "average_rank", "entry_a": entry, "entry_b": "", "n": result.n,
                         "statistic": float(rank), "p_value": math.nan, "p_holm": math.nan, "significant": False,
                         "exploratory": exploratory, "detail": "rank 1 = best"})
        for (i, a), (j, b) in itertools.combinations(enumerate(complete.columns), 2):
            gap = abs(float(result.ranks[i] - result.ranks[j]))
            rows.append({"test": "nemenyi", "entry_a": a, "entry_b": b, "n": result.n, "statistic": gap,
                         "p_value": math.nan, "p_holm": math.nan, "significant": bool(gap > result.cd),
                         "exploratory": exploratory, "detail": f"|rank difference| vs CD={result.cd:.3f}"})
    out = pd.DataFrame(rows, columns=["test", "entry_a", "entry_b", "n", "statistic", "p_value", "p_holm",
                                      "significant", "exploratory", "detail"])
    out.insert(3, "metric", metric)
    return out
