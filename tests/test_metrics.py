"""Fold metrics agree with sklearn, handle undefined AUC/AUPRC, chance levels and regression metrics are right."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from eegfm.metrics import (
    METRICS,
    REGRESSION_METRICS,
    chance_levels,
    compute_metrics,
    compute_regression_metrics,
    parse_targets,
    regression_chance,
)

CLASSES = ["a", "b", "c"]


def test_perfect_predictions_score_one():
    y = ["a", "b", "c", "a", "b", "c"]
    scores = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    out = compute_metrics(y, y, scores, CLASSES)
    assert list(out) == list(METRICS)
    assert all(isinstance(v, float) for v in out.values())
    assert out == pytest.approx({m: 1.0 for m in METRICS})


def test_binary_auc_and_auprc_use_the_second_class_column():
    y_true = np.array(["no", "no", "yes", "yes"])
    p_yes = np.array([0.1, 0.6, 0.4, 0.9])
    scores = np.column_stack([1 - p_yes, p_yes])
    out = compute_metrics(y_true, ["no", "yes", "no", "yes"], scores, ["no", "yes"])
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y_true == "yes", p_yes)) == pytest.approx(0.75)
    # ranked: 0.9 (yes) P=1 R=.5; 0.6 (no); 0.4 (yes) P=2/3 R=1 -> AP = .5*1 + .5*2/3
    assert out["auprc"] == pytest.approx(0.5 + 1 / 3)
    assert out["balanced_accuracy"] == pytest.approx(0.5)
    assert out["cohen_kappa"] == pytest.approx(0.0)


def test_multiclass_auc_and_auprc_are_one_vs_rest_macro():
    rng = np.random.default_rng(0)
    y_true = np.array(CLASSES * 10)
    scores = rng.dirichlet(np.ones(3), size=len(y_true))
    y_pred = np.array(CLASSES)[scores.argmax(1)]
    out = compute_metrics(y_true, y_pred, scores, CLASSES)
    auc = np.mean([roc_auc_score(y_true == c, scores[:, j]) for j, c in enumerate(CLASSES)])
    ap = np.mean([average_precision_score(y_true == c, scores[:, j]) for j, c in enumerate(CLASSES)])
    assert out["roc_auc"] == pytest.approx(auc)
    assert out["auprc"] == pytest.approx(ap)


def test_weighted_f1_weights_classes_by_support():
    y_true = ["a"] * 6 + ["b"] * 2
    y_pred = ["a"] * 6 + ["a", "b"]
    out = compute_metrics(y_true, y_pred, None, ["a", "b"])
    f1_a, f1_b = 2 * 6 / (2 * 6 + 1), 2 * 1 / (2 * 1 + 1)  # 2TP / (2TP + FP + FN)
    assert out["f1_weighted"] == pytest.approx((6 * f1_a + 2 * f1_b) / 8)
    assert out["f1_macro"] == pytest.approx((f1_a + f1_b) / 2)


def test_rank_metrics_are_nan_without_scores_or_with_an_absent_class():
    y = ["a", "b", "a", "b"]
    out = compute_metrics(y, y, None, CLASSES)
    assert math.isnan(out["roc_auc"]) and math.isnan(out["auprc"])
    scores = np.full((4, 3), 1 / 3)
    out = compute_metrics(y, y, scores, CLASSES)  # class 'c' is absent from y_true
    assert math.isnan(out["roc_auc"]) and math.isnan(out["auprc"])
    assert out["accuracy"] == 1.0
    assert out["f1_macro"] == pytest.approx(2 / 3)  # macro over all classes: 'c' counts as 0


def test_scores_of_the_wrong_shape_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(["a", "b", "c"], ["a", "b", "c"], np.ones((3, 2)) / 2, CLASSES)


def test_chance_levels():
    y = ["a"] * 6 + ["b"] * 3 + ["c"] * 1
    out = chance_levels(y, CLASSES)
    assert {m: out[m] for m in ("balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "roc_auc")} == pytest.approx({
        "balanced_accuracy": 1 / 3, "accuracy": 0.6, "cohen_kappa": 0.0, "f1_macro": 1 / 3, "roc_auc": 0.5})
    balanced = chance_levels(["a", "b"] * 5, ["a", "b"])
    assert balanced["f1_macro"] == pytest.approx(0.5) and balanced["f1_weighted"] == pytest.approx(0.5)
    # always predicting the majority: precision 0.88, recall 1 -> F1 2 * 0.88 / 1.88, weighted by its share
    assert chance_levels(["a"] * 88 + ["b"] * 12, ["a", "b"])["f1_weighted"] == pytest.approx(0.88 * 1.76 / 1.88)
    # AUPRC of scores in random order, exactly: 1 positive of 4 has precision 1/r at rank r, r uniform
    assert chance_levels(["a"] * 3 + ["b"], ["a", "b"])["auprc"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert chance_levels(["a"] * 3000 + ["b"] * 1000, ["a", "b"])["auprc"] == pytest.approx(0.25, abs=0.002)


@pytest.mark.parametrize("shares", [[0.88, 0.12], [0.6, 0.3, 0.1], [0.6, 0.4]])
def test_no_input_ignoring_predictor_beats_chance(shares):
    """Constant predictors of each class, uniform, stratified and other guessing: none scores above chance.

    The audit case: on 88/12 labels uniform guessing's weighted F1 (0.56) was the chance level while
    always predicting the majority scores 0.82; now the chance level is the best of them.
    """
    rng = np.random.default_rng(7)
    classes = ["a", "b", "c"][: len(shares)]
    n = 20000
    y_true = rng.choice(classes, size=n, p=shares)
    chance = chance_levels(y_true, classes)
    guesses = [*np.eye(len(classes)), np.full(len(classes), 1 / len(classes)), np.array(shares),
               *rng.dirichlet(np.ones(len(classes)), size=5)]
    best = dict.fromkeys(METRICS, -1.0)
    for q in guesses:
        y_pred = rng.choice(classes, size=n, p=q)
        scores = rng.dirichlet(np.ones(len(classes)), size=n)
        for metric, value in compute_metrics(y_true, y_pred, scores, classes).items():
            assert value <= chance[metric] + 0.02, (metric, q)
            best[metric] = max(best[metric], value)
    for metric in ("accuracy", "f1_macro"):  # attained by always predicting the majority / stratified guessing
        assert best[metric] == pytest.approx(chance[metric], abs=0.02), metric
    if len(classes) == 2:  # on two classes the best weighted-F1 guess is always the majority (in `guesses`)
        assert best["f1_weighted"] == pytest.approx(chance["f1_weighted"], abs=0.02)


def test_weighted_f1_chance_is_reached_by_its_best_guessing_distribution():
    shares = np.array([0.6, 0.3, 0.1])
    rng = np.random.default_rng(3)
    y_true = rng.choice(CLASSES, size=40000, p=shares)
    # the water-filling optimum on the two most common classes (see metrics._best_weighted_f1)
    a = shares[:2]
    q = np.append(a * ((1 + a.sum()) / np.sum(a**1.5) * np.sqrt(a) - 1), 0.0)
    y_pred = rng.choice(CLASSES, size=len(y_true), p=q / q.sum())
    score = compute_metrics(y_true, y_pred, None, CLASSES)["f1_weighted"]
    assert score == pytest.approx(chance_levels(y_true, CLASSES)["f1_weighted"], abs=0.01)
    assert score > max(np.sum(shares**2), 2 * 0.6**2 / 1.6)  # beats stratified guessing and the majority


def test_auprc_chance_is_the_expected_average_precision_of_random_scores_on_small_sets():
    rng = np.random.default_rng(5)
    y_true = np.array(["a"] * 17 + ["b"] * 3)
    mean_ap = np.mean([average_precision_score(y_true == "b", rng.random(20)) for _ in range(1500)])
    assert chance_levels(y_true, ["a", "b"])["auprc"] == pytest.approx(mean_ap, abs=0.015)
    assert mean_ap > 0.15 + 0.05  # well above the positive share on 20 windows


def test_random_guessing_lands_near_chance():
    rng = np.random.default_rng(1)
    y_true = rng.choice(CLASSES, size=6000, p=[0.5, 0.3, 0.2])
    y_pred = rng.choice(CLASSES, size=6000)
    scores = rng.dirichlet(np.ones(3), size=6000)
    out, chance = compute_metrics(y_true, y_pred, scores, CLASSES), chance_levels(y_true, CLASSES)
    for metric in ("balanced_accuracy", "cohen_kappa", "roc_auc", "auprc"):  # the same for every guess
        assert out[metric] == pytest.approx(chance[metric], abs=0.03), metric
    assert out["f1_weighted"] < chance["f1_weighted"] - 0.03  # on 50/30/20 labels uniform guessing is not the best


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    out = compute_regression_metrics(y, y + 1.0)
    assert list(out) == list(REGRESSION_METRICS)
    assert out["pearson_r"] == pytest.approx(1.0)
    assert out["mae"] == pytest.approx(1.0)
    assert out["r2"] == pytest.approx(1 - 4 / 5)  # SS_res = 4, SS_tot = 5
    anti = compute_regression_metrics(y, -y)
    assert anti["pearson_r"] == pytest.approx(-1.0) and anti["mae"] == pytest.approx(5.0)
    constant = compute_regression_metrics(y, np.full(4, 2.5))
    assert math.isnan(constant["pearson_r"]) and constant["r2"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same length"):
        compute_regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        compute_regression_metrics([1.0, np.nan], [1.0, 2.0])


def test_a_single_test_window_or_subject_value_leaves_r_and_r2_undefined_not_an_error():
    one = compute_regression_metrics([40.0], [38.0])
    assert math.isnan(one["pearson_r"]) and math.isnan(one["r2"]) and one["mae"] == pytest.approx(2.0)
    same_age = compute_regression_metrics([40.0] * 3, [38.0, 41.0, 40.0])  # one subject's age
    assert math.isnan(same_age["pearson_r"]) and math.isnan(same_age["r2"]) and same_age["mae"] == pytest.approx(1.0)


def test_regression_chance_is_what_a_predictor_ignoring_the_input_scores():
    y_train, y_test = np.array([10.0, 20.0, 30.0, 100.0]), np.array([20.0, 40.0])
    chance = regression_chance(y_train, y_test)
    assert list(chance) == list(REGRESSION_METRICS)
    mean_train, median_train = 40.0, 25.0
    # exactly the metrics of the constant predictions learnt from the training targets
    assert chance["r2"] == pytest.approx(compute_regression_metrics(y_test, np.full(2, mean_train))["r2"])
    assert chance["r2"] == pytest.approx(1 - (20.0**2 + 0.0) / 200.0)  # SS_res 400, SS_tot 200
    assert chance["mae"] == pytest.approx(compute_regression_metrics(y_test, np.full(2, median_train))["mae"])
    assert chance["pearson_r"] == 0.0
    assert math.isnan(regression_chance(y_train, [33.0, 33.0])["r2"])  # a constant test target


def test_parse_targets_reads_raw_labels_and_names_what_is_not_a_number():
    assert parse_targets(["34", "12.5", "-1e2"]).tolist() == [34.0, 12.5, -100.0]
    with pytest.raises(ValueError, match=r"2 regression target\(s\) are not finite numbers, e.g. \['inf', 'old'\]"):
        parse_targets(["34", "old", "inf"])
