"""Statistics against sklearn/scipy and hand-computed cases: vectorised metrics, bootstrap CIs,
subject-wise permutation tests, binomial test, Holm, Wilcoxon, Friedman and the Nemenyi CD."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    roc_auc_score,
)

from eegfm import stats
from eegfm.metrics import METRICS, compute_metrics

# ----------------------------------------------------------------------------- helpers


def pooled_from(y, pred, subject, scores=None, classes=None):
    """A Pooled from label lists (one fold)."""
    frame = pd.DataFrame({"subject": [str(s) for s in subject], "y_true": y, "y_pred": pred})
    classes = classes or sorted(set(y) | set(pred))
    if scores is not None:
        for j, c in enumerate(classes):
            frame[f"score_{c}"] = scores[:, j]
    return stats.pool_predictions([(0, frame)], classes)


def random_case(n=240, k=3, n_subjects=8, seed=0, quantised=False):
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(k)]
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    scores = rng.dirichlet(np.ones(k), n)
    scores[np.arange(n), pred] += 1.0
    scores /= scores.sum(1, keepdims=True)
    if quantised:  # many tied scores
        scores = np.round(scores, 1)
        scores /= scores.sum(1, keepdims=True)
    subject = rng.integers(0, n_subjects, n)
    return np.array(classes)[y], np.array(classes)[pred], subject, scores, classes


# ----------------------------------------------------------------------------- vectorised metrics


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("quantised", [False, True])
def test_vectorised_metrics_match_sklearn(k, quantised):
    y, pred, subject, scores, classes = random_case(k=k, quantised=quantised)
    pooled = pooled_from(y, pred, subject, scores, classes)
    fast = stats.pooled_scores(pooled)
    reference = compute_metrics(y, pred, scores, classes)
    assert fast == pytest.approx(reference, abs=1e-12)


def test_weighted_metrics_match_sklearn_sample_weights():
    y, pred, subject, scores, classes = random_case(k=3, quantised=True, seed=3)
    pooled = pooled_from(y, pred, subject, scores, classes)
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 3, size=(4, len(y))).astype(float)
    values = stats.batch_scores(METRICS, pooled.y, pooled.pred, pooled.scores, 3, weights)
    for b, w in enumerate(weights):
        expected = {
            "balanced_accuracy": balanced_accuracy_score(y, pred, sample_weight=w),
            "accuracy": accuracy_score(y, pred, sample_weight=w),
            "cohen_kappa": cohen_kappa_score(y, pred, sample_weight=w),
            "f1_macro": f1_score(y, pred, average="macro", sample_weight=w),
            "f1_weighted": f1_score(y, pred, average="weighted", sample_weight=w),
            "roc_auc": np.mean([roc_auc_score(y == c, scores[:, j], sample_weight=w) for j, c in enumerate(classes)]),
            "auprc": np.mean([average_precision_score(y == c, scores[:, j], sample_weight=w)
                              for j, c in enumerate(classes)]),
        }
        assert {m: v[b] for m, v in values.items()} == pytest.approx(expected, abs=1e-12)


def test_pool_predictions_skips_failed_folds_and_keeps_scores_only_when_complete():
    a = pd.DataFrame({"subject": ["1", "1"], "y_true": ["x", "y"], "y_pred": ["x", "x"],
                      "score_x": [0.9, 0.6], "score_y": [0.1, 0.4]})
    empty = a.iloc[:0]
    pooled = stats.pool_predictions([(0, a), (1, empty)], ["x", "y"])
    assert len(pooled) == 2 and pooled.n_folds == 1 and pooled.scores.shape == (2, 2)
    no_scores = stats.pool_predictions([(0, a), (2, a.drop(columns=["score_y"]))], ["x", "y"])
    assert no_scores.scores is None and len(no_scores) == 4
    assert len(stats.pool_predictions([(0, empty)], ["x", "y"])) == 0


# ----------------------------------------------------------------------------- bootstrap


def test_fold_bootstrap_on_known_data():
    assert stats.fold_bootstrap([0.7] * 5, n_bootstrap=200, level=0.95, seed=0) == (0.7, 0.7)
    assert all(math.isnan(v) for v in stats.fold_bootstrap([0.7, np.nan], n_bootstrap=200, level=0.95, seed=0))
    x = np.random.default_rng(0).normal(10.0, 2.0, 400)
    low, high = stats.fold_bootstrap(x, n_bootstrap=4000, level=0.95, seed=1)
    half_width = 1.96 * x.std(ddof=1) / math.sqrt(len(x))  # normal theory
    assert (low + high) / 2 == pytest.approx(x.mean(), abs=0.05)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert stats.fold_bootstrap(x, n_bootstrap=500, level=0.95, seed=3) == \
        stats.fold_bootstrap(x, n_bootstrap=500, level=0.95, seed=3)  # seeded


def test_subject_bootstrap_resamples_whole_subjects():
    # 20 subjects of 10 windows: half always right, half always wrong -> accuracy = share of "right" subjects
    # drawn, so the CI is the binomial one over 20 subjects, not over 200 windows
    subject = np.repeat(np.arange(20), 10)
    y = np.tile(["a", "b"], 100)
    right = subject < 10
    pred = np.where(right, y, np.where(y == "a", "b", "a"))
    pooled = pooled_from(y, pred, subject)
    (low, high), = stats.subject_bootstrap(pooled, ["accuracy"], n_bootstrap=4000, level=0.95, seed=0).values()
    half_width = 1.96 * math.sqrt(0.25 / 20)  # ~0.22; windows as the unit would give ~0.07
    assert (low + high) / 2 == pytest.approx(0.5, abs=0.03)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    # every subject perfect: no uncertainty left
    perfect = pooled_from(y, y, subject)
    assert stats.subject_bootstrap(perfect, ["balanced_accuracy"], n_bootstrap=200, level=0.95, seed=0) == \
        {"balanced_accuracy": (1.0, 1.0)}
    one = pooled_from(y[:10], y[:10], subject[:10])
    assert all(math.isnan(v) for v in stats.subject_bootstrap(one, ["accuracy"], n_bootstrap=50, level=0.95,
                                                                seed=0)["accuracy"])


# ----------------------------------------------------------------------------- chance


def test_permutations_keep_each_subjects_labels_and_swap_subject_level_labels():
    subject = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    y = np.array([0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1])  # subjects 2 and 3 carry one label each
    perms = stats.subject_permutations(y, subject, 300, rng=0)
    assert perms.shape == (300, 12)
    for s in (0, 1):
        np.testing.assert_array_equal(np.sort(perms[:, subject == s], axis=1),
                                      np.tile(np.sort(y[subject == s]), (300, 1)))
    blocks = perms[:, [8, 10]]
    assert ((blocks == [[0, 1]]).all(axis=1) | (blocks == [[1, 0]]).all(axis=1)).all()
    assert (blocks[:, 0] == 1).mean() == pytest.approx(0.5, abs=0.1)  # the two subjects do swap
    assert (perms[:, 8] == perms[:, 9]).all()  # a block stays a block
    assert (perms[:, :4] != y[:4]).any()  # within-subject shuffles happen


def test_permutation_p_on_a_perfectly_separable_case():
    subject = np.repeat(np.arange(6), 20)
    y = np.tile(["a", "b", "c", "d"], 30)
    pooled = pooled_from(y, y, subject)
    result = stats.permutation_test(pooled, "balanced_accuracy", n_permutations=499, seed=0)
    assert result.observed == 1.0
    assert result.p_value == pytest.approx(1 / 500)
    assert result.null_mean == pytest.approx(0.25, abs=0.02)  # empirical chance ~ 1/K
    assert result.null_quantile < 0.4 and result.n_permutations == 499


def test_permutation_p_on_a_random_case_is_large():
    rng = np.random.default_rng(5)
    subject = np.repeat(np.arange(8), 30)
    y = rng.choice(["a", "b", "c"], 240)
    pred = rng.choice(["a", "b", "c"], 240)
    scores = rng.dirichlet(np.ones(3), 240)
    pooled = pooled_from(y, pred, subject, scores, ["a", "b", "c"])
    for metric in ("balanced_accuracy", "roc_auc", "auprc"):
        result = stats.permutation_test(pooled, metric, n_permutations=400, seed=1)
        assert result.p_value > 0.1, metric
        assert abs(result.observed - result.null_mean) < 0.1


def test_permutation_is_conservative_for_subject_identity_only():
    # labels are per subject (e.g. patient vs control) and predictions are right for every subject: with 4
    # subjects that is weak evidence, and the block permutation says so
    subject = np.repeat(np.arange(4), 25)
    y = np.where(subject < 2, "a", "b")
    pooled = pooled_from(y, y, subject)
    result = stats.permutation_test(pooled, "accuracy", n_permutations=600, seed=0)
    # only 4!/(2!2!) = 6 arrangements of the subjects' labels exist and one of them is perfect: p ~ 1/6,
    # where shuffling windows regardless of subjects would give ~1/601
    assert result.p_value == pytest.approx(1 / 6, abs=0.05)


def test_binomial_p_hand_computed():
    y = np.array(["a"] * 5 + ["b"] * 5)
    pred = y.copy()
    pred[0] = "b"  # 9 of 10 correct
    result = stats.binomial_test(pooled_from(y, pred, np.zeros(10)))
    assert (result.n_correct, result.n, result.p0) == (9, 10, 0.5)
    assert result.p_value == pytest.approx(11 / 1024)  # P(X >= 9), X ~ Bin(10, 1/2)
    skewed = stats.binomial_test(pooled_from(np.array(["a"] * 8 + ["b"] * 2), np.array(["a"] * 10), np.zeros(10)))
    assert skewed.p0 == 0.8 and skewed.majority_class == "a"
    # always "a": 8 of 10 correct, P(X >= 8) with X ~ Bin(10, 0.8)
    assert skewed.n_correct == 8
    assert skewed.p_value == pytest.approx(45 * 0.8**8 * 0.2**2 + 10 * 0.8**9 * 0.2 + 0.8**10)


# ----------------------------------------------------------------------------- comparisons


def test_holm_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.5, np.nan, 0.01])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.5, 0.02])  # m = 2 finite p-values
    np.testing.assert_allclose(stats.holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1


def test_wilcoxon_minimum_p_and_exploratory_label():
    assert stats.min_wilcoxon_p(5) == 0.0625 and stats.min_wilcoxon_p(6) == 0.03125
    assert stats.is_exploratory(5, 0.05) and not stats.is_exploratory(6, 0.05)
    statistic, p, n = stats.paired_wilcoxon([1, 2, 3, 4, 5, 6], [0] * 6)
    assert (statistic, n) == (0.0, 6) and p == pytest.approx(0.03125)
    assert stats.paired_wilcoxon([0.5, 0.6, np.nan], [0.5, 0.6, 0.1]) == (0.0, 1.0, 2)  # identical pairs
    assert math.isnan(stats.paired_wilcoxon([0.5], [0.4])[1])


def test_friedman_and_ranks_hand_computed():
    # 4 blocks, the same order every time: ranks 1, 2, 3 -> chi2 = 12N/(k(k+1)) sum R^2 - 3N(k+1) = 56 - 48 = 8
    m = np.array([[0.9, 0.8, 0.7], [0.8, 0.7, 0.6], [0.95, 0.6, 0.5], [0.7, 0.65, 0.1]])
    result = stats.friedman(m)
    np.testing.assert_allclose(result.ranks, [1, 2, 3])
    assert result.statistic == pytest.approx(8.0)
    assert result.p_value == pytest.approx(chi2.sf(8.0, 2)) == pytest.approx(math.exp(-4))
    np.testing.assert_allclose(stats.average_ranks([[1, 1, 0]]), [1.5, 1.5, 3])  # ties averaged
    with pytest.raises(ValueError, match=">= 3 entries"):
        stats.friedman(m[:, :2])


def test_nemenyi_critical_difference_matches_demsar():
    # Demšar (2006), Table 5(a): q_0.05 for k = 2..10, and CD = 1.25 for k = 4 over N = 14 data sets
    q = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 10: 3.164}
    for k, expected in q.items():
        assert stats.nemenyi_cd(k, 6, 0.05) / math.sqrt(k * (k + 1) / 36) == pytest.approx(expected, abs=1e-3)
    assert stats.nemenyi_cd(4, 14, 0.05) == pytest.approx(1.25, abs=0.005)


def test_cliques_join_entries_within_the_critical_difference():
    assert stats.cliques([1.0, 1.5, 3.0, 3.2], cd=1.0) == [[0, 1], [2, 3]]
    assert stats.cliques([1.0, 1.8, 2.6], cd=1.0) == [[0, 1], [1, 2]]
    assert stats.cliques([1.0, 3.0], cd=1.0) == []


def test_compare_entries_rows():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.85, 0.9, 0.95, 0.9], "b": [0.5, 0.55, 0.6, 0.5, 0.52, 0.58],
                           "c": [0.6, 0.5, 0.65, np.nan, 0.6, 0.62]})
    rows = stats.compare_entries(scores, "balanced_accuracy", alpha=0.05)
    wil = rows[rows["test"] == "wilcoxon"].set_index(["entry_a", "entry_b"])
    assert len(wil) == 3 and (rows["metric"] == "balanced_accuracy").all()
    assert wil.loc[("a", "b"), "n"] == 6 and wil.loc[("a", "c"), "n"] == 5  # the NaN fold is dropped
    np.testing.assert_allclose(wil["p_holm"], stats.holm(wil["p_value"]))
    assert not wil.loc[("a", "b"), "exploratory"] and wil.loc[("a", "c"), "exploratory"]
    friedman = rows[rows["test"] == "friedman"].iloc[0]
    assert friedman["n"] == 5  # folds completed by every entry
    ranks = rows[rows["test"] == "average_rank"].set_index("entry_a")["statistic"]
    assert ranks["a"] == 1.0
    assert len(rows[rows["test"] == "nemenyi"]) == 3
    assert rows.loc[rows["test"] == "nemenyi_cd", "statistic"].iloc[0] == pytest.approx(stats.nemenyi_cd(3, 5))
    two = stats.compare_entries(scores[["a", "b"]], "accuracy", alpha=0.05)
    assert set(two["test"]) == {"wilcoxon"}
