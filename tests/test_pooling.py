"""Pooled predictions of a regression target (PooledRegression) through the statistics: pooled r, R² and MAE,
permutations that exchange a recording-level target between units, the design-aware intervals, and the
report's regression statistics and verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eegfm import intervals, report_stats, stats
from eegfm.metrics import REGRESSION_METRICS, compute_regression_metrics


def frame(y, pred, subject, run=None, fold=0):
    return pd.DataFrame({"window_id": np.arange(len(y)) + 1000 * fold, "subject": [str(s) for s in subject],
                         "session": "1", "run": "1" if run is None else [str(r) for r in run],
                         "y_true": [repr(float(v)) for v in y], "y_pred": [repr(float(v)) for v in pred]})


def aged_case(n_subjects=12, per=10, signal=1.0, seed=0):
    """Ages per subject (a recording-level target), predictions = signal x age + noise."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(20, 80, n_subjects).round(1)
    subject = np.repeat(np.arange(n_subjects), per)
    y = ages[subject]
    pred = 45 + signal * (y - 45) + rng.normal(0, 6, len(y))
    return y, pred, subject


def test_pool_regression_reads_numbers_and_units():
    y, pred, subject = aged_case(n_subjects=4, per=3)
    pooled = stats.pool_regression([(0, frame(y[:6], pred[:6], subject[:6])), (1, frame(y[6:], pred[6:], subject[6:],
                                    fold=1)), (2, frame([], [], []))])
    assert len(pooled) == 12 and pooled.n_folds == 2 and pooled.units == ["0", "1", "2", "3"]
    np.testing.assert_allclose(pooled.y, y)
    np.testing.assert_allclose(pooled.values[pooled.codes], y)
    assert stats.pooled_scores(pooled) == pytest.approx(compute_regression_metrics(y, pred))
    bad = frame(y[:3], pred[:3], subject[:3])
    bad.loc[1, "y_pred"] = "nan"
    with pytest.raises(ValueError, match="1 y_pred values of the pooled predictions are not finite"):
        stats.pool_regression([(0, bad)])
    assert len(stats.pool_regression([])) == 0


def test_recording_level_targets_are_only_exchanged_between_subjects():
    y, pred, subject = aged_case(n_subjects=6, per=4)
    pooled = stats.pool_regression([(0, frame(y, pred, subject))])
    perms = stats.unit_permutations(pooled.codes, pooled.unit, 200, 0)
    values = pooled.values[perms]
    for row in values:  # each subject keeps one value, and the multiset of subject values is kept
        per_subject = row.reshape(6, 4)
        assert (per_subject == per_subject[:, :1]).all()
        assert sorted(per_subject[:, 0]) == sorted(y[::4])
    assert stats.permutation_scheme(pooled) == "targets exchanged between subjects (one value per subject)"
    assert stats.log_relabellings(pooled.codes, pooled.unit) == pytest.approx(math.log(math.factorial(6)))


def test_event_level_targets_are_shuffled_within_runs():
    rng = np.random.default_rng(1)
    y = rng.choice([0.5, 1.0, 2.0], 24)
    run = np.repeat([1, 2, 3], 8)
    pooled = stats.pool_regression([(0, frame(y, y + rng.normal(0, 0.1, 24), ["S1"] * 24, run=run))], unit="run")
    assert stats.permutation_scheme(pooled) == "targets shuffled within runs"
    perms = pooled.values[stats.unit_permutations(pooled.codes, pooled.unit, 50, 0)]
    for r in range(3):
        assert all(sorted(p[run == r + 1]) == sorted(y[run == r + 1]) for p in perms)


@pytest.mark.parametrize("metric", ["pearson_r", "r2", "mae"])
def test_permutation_test_finds_a_real_relation_and_not_a_null_one(metric):
    y, pred, subject = aged_case(n_subjects=12, signal=1.0)
    real = stats.pool_regression([(0, frame(y, pred, subject))])
    result = stats.permutation_test(real, metric, n_permutations=499, seed=0)
    assert result.p_value < 0.01 and result.note is None
    if metric == "mae":  # lower is better: the observed MAE sits below the null, so does the quantile
        assert result.observed < result.null_quantile < result.null_mean
    else:
        assert result.observed > result.null_quantile > result.null_mean
    y0, pred0, subject0 = aged_case(n_subjects=12, signal=0.0, seed=3)
    null = stats.pool_regression([(0, frame(y0, pred0, subject0))])
    assert stats.permutation_test(null, metric, n_permutations=499, seed=0).p_value > 0.05


def test_r_of_a_perfect_ranking_of_two_subjects_cannot_be_tested():
    y, pred, subject = np.array([30.0, 30, 60, 60]), np.array([31.0, 29, 61, 62]), [0, 0, 1, 1]
    result = stats.permutation_test(stats.pool_regression([(0, frame(y, pred, subject))]), "pearson_r",
                                    n_permutations=99, seed=0)
    assert result.too_few and "2 subjects allow only 2 distinct label arrangements" in result.note


def test_intervals_resample_subjects_or_blocks_within_them():
    y, pred, subject = aged_case(n_subjects=12)
    pooled = stats.pool_regression([(0, frame(y, pred, subject))])
    interval = intervals.confidence_intervals(pooled, list(REGRESSION_METRICS), min_units=8, n_bootstrap=300,
                                          level=0.95, seed=0)
    assert interval.kind == "units" and interval.method.startswith("subject bootstrap (12 subjects")
    observed = stats.pooled_scores(pooled)
    for m in REGRESSION_METRICS:
        low, high = interval.ci[m]
        assert low < observed[m] < high, m
    # fewer subjects than ci_min_units, each with one age: windows redrawn inside subjects would give an
    # interval of the windows' noise, far narrower than the variation between subjects, so none is given
    few = intervals.confidence_intervals(pooled, ["mae"], min_units=20, n_bootstrap=300, level=0.95, seed=0)
    assert few.kind == "none" and np.isnan(few.ci["mae"]).all()
    assert "every subject carries a single value (a recording-level label or target) and 12 subjects < " \
           "report.ci_min_units 20" in few.method


def test_per_window_targets_with_few_subjects_get_blocks_within_them():
    y, pred, subject = aged_case(n_subjects=4)
    y = y + np.tile(np.arange(10.0), 4)  # a target that varies inside each subject (e.g. a per-trial score)
    pooled = stats.pool_regression([(0, frame(y, pred, subject))])
    few = intervals.confidence_intervals(pooled, ["mae"], min_units=8, n_bootstrap=300, level=0.95, seed=0)
    observed = stats.pooled_scores(pooled)
    assert few.kind == "blocks" and few.ci["mae"][0] < observed["mae"] < few.ci["mae"][1]


def test_regression_statistics_and_the_verdict_sentence():
    y, pred, subject = aged_case(n_subjects=12)
    pooled = stats.pool_regression([(0, frame(y, pred, subject))])
    entry = report_stats.regression_statistics(pooled, list(REGRESSION_METRICS), "pearson_r", n_permutations=299,
                                               n_bootstrap=200, ci_level=0.95, ci_min_units=8, alpha=0.05, seed=0)
    assert set(entry["pooled"]) == set(REGRESSION_METRICS) and "p_binomial" not in entry
    assert entry["n_units"] == 12 and entry["p_permutation"] < 0.01
    text = report_stats.verdict(entry, 0.05, "pearson_r")
    r = entry["pooled"]["pearson_r"]
    assert text == (f"r = {r:.3f}, above chance (permutation p = {entry['p_permutation']:.3f}, targets exchanged "
                    "between subjects (one value per subject))")
    with pytest.raises(TypeError, match="PooledRegression"):
        report_stats.regression_statistics(stats.pool_predictions([], ["a"]), [], "r2", n_permutations=1,
                                           n_bootstrap=2, ci_level=0.9, ci_min_units=2, alpha=0.05, seed=0)
