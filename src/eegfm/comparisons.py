"""Comparisons of models over folds: Wilcoxon with Holm, Friedman, average ranks and the Nemenyi CD.

Paired two-sided Wilcoxon signed-rank tests between every pair of entries on
the folds where both have a score, Holm-corrected within the dataset; with
three or more entries a Friedman test over the folds completed by every
entry, average ranks and the Nemenyi critical difference
``q_alpha * sqrt(k (k + 1) / (6 N))`` (Demšar 2006). Folds share training
data, so these tests are optimistic (Nadeau & Bengio 2003); with ``N`` pairs
the smallest exact two-sided Wilcoxon p-value is ``2^(1 - N)``, so with fewer
than 6 folds no difference can reach ``p < 0.05``, and Holm multiplies the
smallest of ``m`` by ``m`` (three entries, three pairs: 7 folds are needed):
results that cannot reach significance are labelled *exploratory*.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


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


def min_holm_p(n: int, m: int = 1) -> float:
    """Smallest Holm-adjusted p-value among ``m`` Wilcoxon tests on ``n`` pairs each: ``min(1, m 2^(1-n))``
    (the smallest raw p is multiplied by ``m``)."""
    return min(1.0, max(m, 1) * min_wilcoxon_p(n))


def is_exploratory(n: int, alpha: float, m: int = 1) -> bool:
    """True when ``n`` paired folds cannot give a two-sided Wilcoxon p-value below ``alpha`` once Holm-adjusted
    for ``m`` comparisons (``m = 1``: the exact p itself). Three entries over six folds: each raw p can reach
    0.031, but Holm's smallest is 3 x 0.031 = 0.094, so none can be significant."""
    return min_holm_p(n, m) >= alpha


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
    m = int(np.isfinite(adjusted).sum())  # the family Holm corrects for
    for row, p_adj in zip(rows, adjusted):
        row["p_holm"] = p_adj
        row["significant"] = bool(math.isfinite(p_adj) and p_adj < alpha)
        row["exploratory"] = is_exploratory(row["n"], alpha, m)

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
