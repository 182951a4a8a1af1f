"""Vectorised metrics against scikit-learn, with and without replicate weights."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    roc_auc_score,
)

from eegfm.batch_metrics import batch_scores
from eegfm.metrics import METRICS, compute_metrics
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


