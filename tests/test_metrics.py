"""Fold metrics agree with sklearn, handle undefined AUC, and chance levels are right."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from eegfm.metrics import METRICS, chance_levels, compute_metrics

CLASSES = ["a", "b", "c"]


def test_perfect_predictions_score_one():
    y = ["a", "b", "c", "a", "b", "c"]
    scores = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    out = compute_metrics(y, y, scores, CLASSES)
    assert list(out) == list(METRICS)
    assert all(isinstance(v, float) for v in out.values())
    assert out == pytest.approx({m: 1.0 for m in METRICS})


def test_binary_auc_uses_the_second_class_column():
    y_true = np.array(["no", "no", "yes", "yes"])
    p_yes = np.array([0.1, 0.6, 0.4, 0.9])
    scores = np.column_stack([1 - p_yes, p_yes])
    out = compute_metrics(y_true, ["no", "yes", "no", "yes"], scores, ["no", "yes"])
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y_true == "yes", p_yes)) == pytest.approx(0.75)
    assert out["balanced_accuracy"] == pytest.approx(0.5)
    assert out["cohen_kappa"] == pytest.approx(0.0)


def test_multiclass_auc_is_one_vs_rest_macro():
    rng = np.random.default_rng(0)
    y_true = np.array(CLASSES * 10)
    scores = rng.dirichlet(np.ones(3), size=len(y_true))
    y_pred = np.array(CLASSES)[scores.argmax(1)]
    out = compute_metrics(y_true, y_pred, scores, CLASSES)
    expected = np.mean([roc_auc_score(y_true == c, scores[:, j]) for j, c in enumerate(CLASSES)])
    assert out["roc_auc"] == pytest.approx(expected)


def test_auc_is_nan_without_scores_or_with_an_absent_class():
    y = ["a", "b", "a", "b"]
    assert math.isnan(compute_metrics(y, y, None, CLASSES)["roc_auc"])
    scores = np.full((4, 3), 1 / 3)
    out = compute_metrics(y, y, scores, CLASSES)  # class 'c' is absent from y_true
    assert math.isnan(out["roc_auc"])
    assert out["accuracy"] == 1.0
    assert out["f1_macro"] == pytest.approx(2 / 3)  # macro over all classes: 'c' counts as 0


def test_scores_of_the_wrong_shape_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(["a", "b", "c"], ["a", "b", "c"], np.ones((3, 2)) / 2, CLASSES)


def test_chance_levels():
    y = ["a"] * 6 + ["b"] * 3 + ["c"] * 1
    assert chance_levels(y, CLASSES) == pytest.approx(
        {"balanced_accuracy": 1 / 3, "accuracy": 0.6, "cohen_kappa": 0.0, "f1_macro": 1 / 3, "roc_auc": 0.5}
    )


def test_random_guessing_lands_near_chance():
    rng = np.random.default_rng(1)
    y_true = rng.choice(CLASSES, size=6000, p=[0.5, 0.3, 0.2])
    y_pred = rng.choice(CLASSES, size=6000)
    scores = rng.dirichlet(np.ones(3), size=6000)
    out, chance = compute_metrics(y_true, y_pred, scores, CLASSES), chance_levels(y_true, CLASSES)
    for metric in ("balanced_accuracy", "cohen_kappa", "roc_auc"):
        assert out[metric] == pytest.approx(chance[metric], abs=0.03)
