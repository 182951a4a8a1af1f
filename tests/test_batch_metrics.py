"""Vectorised metrics against scikit-learn, with and without replicate weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from eegfm.batch_metrics import batch_scores, regression_batch_scores
from eegfm.metrics import METRICS, REGRESSION_METRICS, compute_metrics, compute_regression_metrics
from eegfm.stats import pooled_scores
from tests.test_stats import pooled_from, random_case


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("quantised", [False, True])
def test_vectorised_metrics_match_sklearn(k, quantised):
    y, pred, subject, scores, classes = random_case(k=k, quantised=quantised)
    pooled = pooled_from(y, pred, subject, scores, classes)
    fast = pooled_scores(pooled)
    reference = compute_metrics(y, pred, scores, classes)
    assert fast == pytest.approx(reference, abs=1e-12)


def test_weighted_metrics_match_sklearn_sample_weights():
    y, pred, subject, scores, classes = random_case(k=3, quantised=True, seed=3)
    pooled = pooled_from(y, pred, subject, scores, classes)
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 3, size=(4, len(y))).astype(float)
    values = batch_scores(METRICS, pooled.y, pooled.pred, pooled.scores, 3, weights)
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


def test_weighted_regression_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=50) * 10 + 40, rng.normal(size=50) * 10 + 40
    fast = {m: v[0] for m, v in regression_batch_scores(REGRESSION_METRICS, y, pred).items()}
    assert fast == pytest.approx(compute_regression_metrics(y, pred), abs=1e-10)
    weights = rng.integers(0, 3, size=(4, 50)).astype(float)
    values = regression_batch_scores(REGRESSION_METRICS, y, pred, weights)
    for b, w in enumerate(weights):
        repeated = np.repeat(np.arange(50), w.astype(int))  # integer weights = windows drawn that often
        assert values["pearson_r"][b] == pytest.approx(np.corrcoef(y[repeated], pred[repeated])[0, 1], abs=1e-10)
        assert values["r2"][b] == pytest.approx(r2_score(y, pred, sample_weight=w), abs=1e-10)
        assert values["mae"][b] == pytest.approx(mean_absolute_error(y, pred, sample_weight=w), abs=1e-10)
    permuted = np.stack([rng.permutation(y) for _ in range(3)])
    batch = regression_batch_scores(["pearson_r", "accuracy"], permuted, pred)
    assert batch["pearson_r"] == pytest.approx([np.corrcoef(p, pred)[0, 1] for p in permuted])
    assert np.isnan(batch["accuracy"]).all()
    constant = regression_batch_scores(REGRESSION_METRICS, np.full(5, 0.1), np.arange(5.0))
    assert math.isnan(constant["pearson_r"][0]) and math.isnan(constant["r2"][0])  # as compute_regression_metrics
