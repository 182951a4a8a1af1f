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
    p = np.array([0.6, 0.3, 0.1])
    f1 = 2 * p / (3 * p + 1)  # uniform guessing: precision p_k, recall 1/K
    assert chance_levels(y, CLASSES) == pytest.approx({
        "balanced_accuracy": 1 / 3, "accuracy": 0.6, "cohen_kappa": 0.0, "f1_macro": f1.mean(),
        "f1_weighted": (p * f1).sum(), "roc_auc": 0.5, "auprc": 1 / 3,
    })
    balanced = chance_levels(["a", "b"] * 5, ["a", "b"])
    assert balanced["f1_macro"] == pytest.approx(0.5) and balanced["f1_weighted"] == pytest.approx(0.5)
    assert chance_levels(["a"] * 3 + ["b"], ["a", "b"])["auprc"] == pytest.approx(0.25)  # positive-class share


def test_random_guessing_lands_near_chance():
    rng = np.random.default_rng(1)
    y_true = rng.choice(CLASSES, size=6000, p=[0.5, 0.3, 0.2])
    y_pred = rng.choice(CLASSES, size=6000)
    scores = rng.dirichlet(np.ones(3), size=6000)
    out, chance = compute_metrics(y_true, y_pred, scores, CLASSES), chance_levels(y_true, CLASSES)
    for metric in ("balanced_accuracy", "cohen_kappa", "f1_macro", "f1_weighted", "roc_auc", "auprc"):
        assert out[metric] == pytest.approx(chance[metric], abs=0.03), metric


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
