"""Chance against hand-computed cases: pooling, permutation tests within the design's unit, the binomial test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eegfm import stats

# ----------------------------------------------------------------------------- helpers


def pooled_from(y, pred, subject, scores=None, classes=None, run=None, unit="subject"):
    """A Pooled from label lists (one fold); window ids in the given order."""
    frame = pd.DataFrame({"window_id": np.arange(len(y)), "subject": [str(s) for s in subject], "session": "1",
                          "run": "1" if run is None else [str(r) for r in run], "y_true": y, "y_pred": pred})
    classes = classes or sorted(set(y) | set(pred))
    if scores is not None:
        for j, c in enumerate(classes):
            frame[f"score_{c}"] = scores[:, j]
    return stats.pool_predictions([(0, frame)], classes, unit=unit)


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


def test_pool_predictions_skips_failed_folds_and_keeps_scores_only_when_complete():
    a = pd.DataFrame({"subject": ["1", "1"], "y_true": ["x", "y"], "y_pred": ["x", "x"],
                      "score_x": [0.9, 0.6], "score_y": [0.1, 0.4]})
    empty = a.iloc[:0]
    pooled = stats.pool_predictions([(0, a), (1, empty)], ["x", "y"])
    assert len(pooled) == 2 and pooled.n_folds == 1 and pooled.scores.shape == (2, 2)
    no_scores = stats.pool_predictions([(0, a), (2, a.drop(columns=["score_y"]))], ["x", "y"])
    assert no_scores.scores is None and len(no_scores) == 4
    assert len(stats.pool_predictions([(0, empty)], ["x", "y"])) == 0


# ----------------------------------------------------------------------------- chance


def test_permutations_keep_each_subjects_labels_and_swap_subject_level_labels():
    subject = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    y = np.array([0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1])  # subjects 2 and 3 carry one label each
    perms = stats.unit_permutations(y, subject, 300, rng=0)
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


def test_binomial_over_one_label_per_subject_counts_subjects_by_majority_vote():
    """Patient vs control, six subjects of ten windows: every window of a subject predicted as its label gave
    60 of 60 'trials' and p = 2^-60, six subjects read as sixty independent observations."""
    subject = np.repeat(np.arange(6), 10)
    y = np.where(subject % 2, "patient", "control")
    pred = y.copy()
    pred[:6] = "patient"  # subject 0 (control): 6 of 10 wrong, voted wrong
    pred[10:15] = "control"  # subject 1 (patient): a 5-5 tie, counted wrong
    result = stats.binomial_test(pooled_from(y, pred, subject))
    assert (result.trials, result.n, result.n_correct, result.p0) == ("subjects", 6, 4, 0.5)
    assert result.p_value == pytest.approx((15 + 6 + 1) / 64)  # P(X >= 4), X ~ Bin(6, 1/2)
    assert result.majority_class == "control"
    # labels that vary within subjects keep windows as trials
    mixed = stats.binomial_test(pooled_from(np.tile(["a", "b"], 30), np.tile(["a", "b"], 30), subject))
    assert (mixed.trials, mixed.n) == ("windows", 60)




# ----------------------------------------------------------------------------- one subject, several runs


def test_one_subject_gets_a_pooled_score_a_permutation_test_within_runs_and_a_binomial_test():
    """Finding 1: with one subject there was no pooled score, no permutation and no binomial test."""
    rng = np.random.default_rng(2)
    run = np.repeat([1, 2, 3], 40)
    y = rng.permutation(np.tile(["left", "right"], 60))
    pred = np.where(rng.random(120) < 0.8, y, np.where(y == "left", "right", "left"))
    pooled = pooled_from(y, pred, np.full(120, "S001"), run=run, unit="run")
    assert pooled.subjects == ["S001"] and pooled.units == ["S001/1/1", "S001/1/2", "S001/1/3"]
    result = stats.permutation_test(pooled, "balanced_accuracy", n_permutations=999, seed=0)
    assert result.p_value == pytest.approx(1 / 1000) and result.note is None
    assert result.scheme == "labels shuffled within runs"
    assert result.null_mean == pytest.approx(0.5, abs=0.02)
    assert stats.binomial_test(pooled).p_value < 1e-6
    # labels are shuffled within each run only: every permutation keeps each run's class counts
    perms = stats.unit_permutations(pooled.y, pooled.unit, 50, rng=0)
    for u in range(3):
        counts = np.bincount(pooled.y[pooled.unit == u], minlength=2)
        assert all((np.bincount(p[pooled.unit == u], minlength=2) == counts).all() for p in perms)


def test_too_few_units_for_a_permutation_test_is_said():
    # two subjects, one label each (patient vs control): 2 arrangements, p can never go below 0.5
    subject = np.repeat([0, 1], 10)
    y = np.where(subject == 0, "a", "b")
    pooled = pooled_from(y, y, subject)
    assert stats.log_relabellings(pooled.y, pooled.unit) == pytest.approx(math.log(2))
    result = stats.permutation_test(pooled, "accuracy", n_permutations=200, seed=0)
    assert result.too_few and result.min_p == 0.5
    assert result.note.startswith("too few subjects for a permutation test: 2 subjects allow only 2 distinct label")
    # nothing is shuffled within a subject that holds one label: the scheme says what is exchanged
    assert result.scheme == "labels exchanged between subjects (one label per subject)"
    few_permutations = stats.permutation_test(pooled_from(np.tile(["a", "b"], 20), np.tile(["a", "b"], 20),
                                                          np.zeros(40)), "accuracy", n_permutations=10, seed=0)
    assert few_permutations.note.startswith("too few permutations")


def test_twenty_arrangements_cannot_reach_alpha_005_and_say_so():
    """Six subjects, three patients and three controls (one label each): C(6, 3) = 20 arrangements, so the
    smallest p is 1/20 = alpha. exp(-log 20) rounds to 0.04999..., and the verdict read 'not distinguishable
    from chance (permutation p = 0.345, ...)' as if the test could have rejected."""
    subject = np.repeat(np.arange(6), 10)
    y = np.where(subject % 2, "patient", "control")
    pred = np.where(np.random.default_rng(0).random(60) < 0.5, "patient", "control")
    result = stats.permutation_test(pooled_from(y, pred, subject), "balanced_accuracy", n_permutations=199, seed=0)
    assert result.too_few and result.min_p == pytest.approx(0.05)
    assert result.note.startswith("too few subjects for a permutation test: 6 subjects allow only 20 distinct")
    seven = np.repeat(np.arange(7), 10)  # 3 + 4 subjects: 35 arrangements, p can reach 1/35
    pred7 = np.where(np.random.default_rng(1).random(70) < 0.5, "patient", "control")
    testable = stats.permutation_test(pooled_from(np.where(seven % 2, "patient", "control"), pred7, seven),
                                      "balanced_accuracy", n_permutations=199, seed=0)
    assert testable.note is None


def test_relabelling_count_multiplies_within_unit_orderings():
    # unit 0: a a b (3 orderings); unit 1: a b b b (4); units 2, 3 constant a / b (2 arrangements)
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0, 0, 1])
    unit = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 3])
    assert stats.log_relabellings(y, unit) == pytest.approx(math.log(3 * 4 * 2))


def test_block_units_come_from_the_fold_that_tests_them():
    frame = pd.DataFrame({"window_id": [0, 1, 2, 3], "subject": ["1", "1", "2", "2"], "y_true": list("abab"),
                          "y_pred": list("abba")})
    pooled = stats.pool_predictions([(0, frame.iloc[[0, 2]]), (1, frame.iloc[[1, 3]])], ["a", "b"], unit="block")
    assert pooled.units == ["1/block-0", "1/block-1", "2/block-0", "2/block-1"]
    assert stats.permutation_scheme(pooled) == "labels exchanged between blocks (one label per block)"  # 1 window each
