"""Model comparisons against scipy and textbook cases: Holm, Wilcoxon, Friedman and the Nemenyi CD."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from eegfm import comparisons


def test_holm_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(comparisons.holm(p), [0.03, 0.06, 0.06, 0.02])
    out = comparisons.holm([0.5, np.nan, 0.01])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.5, 0.02])  # m = 2 finite p-values
    np.testing.assert_allclose(comparisons.holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1


def test_wilcoxon_minimum_p_and_exploratory_label():
    assert comparisons.min_wilcoxon_p(5) == 0.0625 and comparisons.min_wilcoxon_p(6) == 0.03125
    assert comparisons.is_exploratory(5, 0.05) and not comparisons.is_exploratory(6, 0.05)
    assert comparisons.min_holm_p(6, 3) == pytest.approx(0.09375) and comparisons.is_exploratory(6, 0.05, 3)
    assert not comparisons.is_exploratory(7, 0.05, 3)  # 3 x 2^-6 = 0.047
    statistic, p, n = comparisons.paired_wilcoxon([1, 2, 3, 4, 5, 6], [0] * 6)
    assert (statistic, n) == (0.0, 6) and p == pytest.approx(0.03125)
    assert comparisons.paired_wilcoxon([0.5, 0.6, np.nan], [0.5, 0.6, 0.1]) == (0.0, 1.0, 2)  # identical pairs
    assert math.isnan(comparisons.paired_wilcoxon([0.5], [0.4])[1])


def test_friedman_and_ranks_hand_computed():
    # 4 blocks, the same order every time: ranks 1, 2, 3 -> chi2 = 12N/(k(k+1)) sum R^2 - 3N(k+1) = 56 - 48 = 8
    m = np.array([[0.9, 0.8, 0.7], [0.8, 0.7, 0.6], [0.95, 0.6, 0.5], [0.7, 0.65, 0.1]])
    result = comparisons.friedman(m)
    np.testing.assert_allclose(result.ranks, [1, 2, 3])
    assert result.statistic == pytest.approx(8.0)
    assert result.p_value == pytest.approx(chi2.sf(8.0, 2)) == pytest.approx(math.exp(-4))
    np.testing.assert_allclose(comparisons.average_ranks([[1, 1, 0]]), [1.5, 1.5, 3])  # ties averaged
    with pytest.raises(ValueError, match=">= 3 entries"):
        comparisons.friedman(m[:, :2])


def test_nemenyi_critical_difference_matches_demsar():
    # Demšar (2006), Table 5(a): q_0.05 for k = 2..10, and CD = 1.25 for k = 4 over N = 14 data sets
    q = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 10: 3.164}
    for k, expected in q.items():
        assert comparisons.nemenyi_cd(k, 6, 0.05) / math.sqrt(k * (k + 1) / 36) == pytest.approx(expected, abs=1e-3)
    assert comparisons.nemenyi_cd(4, 14, 0.05) == pytest.approx(1.25, abs=0.005)


def test_cliques_join_entries_within_the_critical_difference():
    assert comparisons.cliques([1.0, 1.5, 3.0, 3.2], cd=1.0) == [[0, 1], [2, 3]]
    assert comparisons.cliques([1.0, 1.8, 2.6], cd=1.0) == [[0, 1], [1, 2]]
    assert comparisons.cliques([1.0, 3.0], cd=1.0) == []


def test_compare_entries_rows():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.85, 0.9, 0.95, 0.9], "b": [0.5, 0.55, 0.6, 0.5, 0.52, 0.58],
                           "c": [0.6, 0.5, 0.65, np.nan, 0.6, 0.62]})
    rows = comparisons.compare_entries(scores, "balanced_accuracy", alpha=0.05)
    wil = rows[rows["test"] == "wilcoxon"].set_index(["entry_a", "entry_b"])
    assert len(wil) == 3 and (rows["metric"] == "balanced_accuracy").all()
    assert wil.loc[("a", "b"), "n"] == 6 and wil.loc[("a", "c"), "n"] == 5  # the NaN fold is dropped
    np.testing.assert_allclose(wil["p_holm"], comparisons.holm(wil["p_value"]))
    # three pairs: Holm's smallest p over 6 folds is 3 x 0.031 = 0.094, so even a-b cannot be significant
    assert wil["exploratory"].all() and not wil["significant"].any()
    pair = comparisons.compare_entries(scores[["a", "b"]], "accuracy", alpha=0.05)
    assert not pair.loc[pair["test"] == "wilcoxon", "exploratory"].iloc[0]  # one pair: 0.031 < 0.05
    friedman = rows[rows["test"] == "friedman"].iloc[0]
    assert friedman["n"] == 5  # folds completed by every entry
    ranks = rows[rows["test"] == "average_rank"].set_index("entry_a")["statistic"]
    assert ranks["a"] == 1.0
    assert len(rows[rows["test"] == "nemenyi"]) == 3
    assert rows.loc[rows["test"] == "nemenyi_cd", "statistic"].iloc[0] == pytest.approx(comparisons.nemenyi_cd(3, 5))
    two = comparisons.compare_entries(scores[["a", "b"]], "accuracy", alpha=0.05)
    assert set(two["test"]) == {"wilcoxon"}
