"""Confidence intervals against hand-computed cases: unit and block bootstraps, and none where none fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eegfm import intervals, stats
from tests.test_stats import pooled_from


def test_fold_scores_are_never_bootstrapped():
    """Finding 10: a three-fold 'fold bootstrap' was printed as a 95 % CI; without predictions there is none."""
    assert not hasattr(stats, "fold_bootstrap")
    interval = intervals.confidence_intervals(None, ["accuracy"], min_units=8, n_bootstrap=200, level=0.95, seed=0)
    assert interval.kind == "none" and math.isnan(interval.ci["accuracy"][0])
    assert interval.method == "no interval: no out-of-fold predictions (predictions.tsv)"


def test_three_runs_get_a_block_bootstrap_conditional_on_them_not_a_three_unit_resample():
    """Finding 10: three units allow 10 resamples; the interval resamples time blocks within each run instead."""
    rng = np.random.default_rng(0)
    run = np.repeat([1, 2, 3], 64)
    y = np.tile(["a", "b"], 96)
    pred = np.where(rng.random(192) < 0.75, y, np.where(y == "a", "b", "a"))
    pooled = pooled_from(y, pred, np.zeros(192), run=run, unit="run")
    interval = intervals.confidence_intervals(pooled, ["accuracy"], min_units=8, n_bootstrap=2000, level=0.95, seed=0)
    assert interval.kind == "blocks"
    assert interval.method.startswith("block bootstrap within runs (3 runs < report.ci_min_units 8: too few to "
                                      "resample runs; stretches of up to 4 consecutive windows")
    assert interval.method.endswith("conditional on these runs)")
    low, high = interval.ci["accuracy"]
    observed = stats.pooled_scores(pooled, ["accuracy"])["accuracy"]
    half_width = 1.96 * math.sqrt(observed * (1 - observed) / 192)  # windows independent here
    assert low < observed < high and (high - low) / 2 == pytest.approx(half_width, rel=0.25)
    # enough runs: runs themselves are resampled
    many = pooled_from(np.tile(y, 3), np.tile(pred, 3), np.zeros(576), run=np.repeat(range(9), 64), unit="run")
    assert intervals.confidence_intervals(many, ["accuracy"], min_units=8, n_bootstrap=200, level=0.95, seed=0).method \
        == ("run bootstrap within subjects (9 runs; 1 subject < report.ci_min_units 8, too few to resample subjects: "
            "each subject redraws its own runs, 200 resamples; conditional on this subject)")


def test_runs_nested_in_subjects_resample_the_subjects():
    """QA of issue 11: 10 subjects x 2 runs (leave-one-run-out) resampled the 20 runs as if independent; half the
    subjects decoded perfectly and half not at all gave a CI of 20 units' width, not 10 subjects'."""
    subject, run = np.repeat(np.arange(10), 20), np.tile(np.repeat([1, 2], 10), 10)
    y = np.tile(["a", "b"], 100)
    pred = np.where(subject < 5, y, np.where(y == "a", "b", "a"))
    pooled = pooled_from(y, pred, subject, run=run, unit="run")
    interval = intervals.confidence_intervals(pooled, ["accuracy"], min_units=8, n_bootstrap=4000, level=0.95, seed=0)
    assert interval.method == ("subject bootstrap (10 subjects resampled with replacement, each with all of its 20 "
                               "runs in all; 4000 resamples)")
    low, high = interval.ci["accuracy"]
    assert (high - low) / 2 == pytest.approx(1.96 * math.sqrt(0.25 / 10), rel=0.15)  # 20 runs: ~0.22, too narrow
    rows = slice(60, 140)  # 4 subjects (2 right, 2 wrong), 8 runs
    few = pooled_from(y[rows], pred[rows], subject[rows], run=run[rows], unit="run")
    interval = intervals.confidence_intervals(few, ["accuracy"], min_units=8, n_bootstrap=500, level=0.95, seed=0)
    assert interval.method.startswith("run bootstrap within subjects (8 runs; 4 subjects < report.ci_min_units 8")
    assert interval.ci["accuracy"] == (0.5, 0.5)  # each subject redraws its own (alike) runs: conditional on them


def test_resamples_with_an_undefined_score_are_counted_in_the_method():
    """Eight subjects, two patients: about one subject resample in ten holds no patient, has no ROC AUC and was
    silently left out of the percentiles, while the method said '200 resamples'."""
    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(8), 10)
    y = np.where(subject < 2, "patient", "control")
    pred = np.where(rng.random(80) < 0.7, y, np.where(y == "patient", "control", "patient"))
    p_patient = np.clip(np.where(pred == "patient", 0.7, 0.3) + rng.normal(0, 0.1, 80), 0.01, 0.99)
    scores = np.stack([1 - p_patient, p_patient], axis=1)  # columns: control, patient
    interval = intervals.confidence_intervals(pooled_from(y, pred, subject, scores=scores), ["roc_auc", "accuracy"],
                                          min_units=8, n_bootstrap=200, level=0.95, seed=0)
    left_out = 200 - interval.defined["roc_auc"]
    assert 5 < left_out < 40 and interval.defined["accuracy"] == 200
    assert interval.method_for("roc_auc") == (
        f"{interval.method}; {left_out} of 200 resamples left out, their roc_auc undefined (e.g. a class "
        "absent): the interval is conditional on it being defined")
    assert interval.method_for("accuracy") == interval.method == \
        "subject bootstrap (8 subjects resampled with replacement, 200 resamples)"


def test_block_bootstrap_keeps_neighbouring_windows_together():
    # errors come in runs of 8 consecutive windows: blocks (~6 windows) see that clustering, so the interval
    # is wider than one that treats windows as independent
    y = np.tile(["a", "b"], 256)
    wrong = (np.arange(512) // 8) % 4 == 0  # a quarter wrong, in bursts
    pred = np.where(wrong, np.where(y == "a", "b", "a"), y)
    pooled = pooled_from(y, pred, np.zeros(512), run=np.repeat([1, 2], 256), unit="run")
    low, high = intervals.block_bootstrap(pooled, ["accuracy"], n_bootstrap=2000, level=0.95, seed=1)["accuracy"]
    independent = 1.96 * math.sqrt(0.75 * 0.25 / 512)
    assert (high - low) / 2 > 1.3 * independent
    block, block_unit, length = intervals.time_blocks(pooled)
    assert length == 6 and len(block_unit) == 2 * math.ceil(256 / 6)
    assert (np.diff(block[:256]) >= 0).all() and set(block_unit[block[256:]]) == {1}


def test_recording_level_labels_of_few_subjects_get_no_interval_but_a_reason():
    """The audit's case: 6 subjects, patient vs control: redrawing windows inside each subject gave
    [0.463, 0.660], narrower than the spread of the fold scores, with the permutation test 'not testable'."""
    subject = np.repeat(np.arange(6), 10)
    y = np.where(subject % 2 == 0, "patient", "control")
    pred = np.where(np.random.default_rng(0).random(60) < 0.55, y, np.where(y == "patient", "control", "patient"))
    interval = intervals.confidence_intervals(pooled_from(y, pred, subject), ["accuracy"], min_units=8,
                                          n_bootstrap=200, level=0.95, seed=0)
    assert interval.kind == "none" and np.isnan(interval.ci["accuracy"]).all()
    assert interval.method.startswith("no interval: every subject carries a single label")
    # with enough subjects, whole subjects are resampled as before
    many = pooled_from(np.tile(y, 2), np.tile(pred, 2), np.repeat(np.arange(12), 10))
    assert intervals.confidence_intervals(many, ["accuracy"], min_units=8, n_bootstrap=200, level=0.95,
                                      seed=0).kind == "units"


def test_a_single_window_has_no_interval_and_says_why():
    pooled = pooled_from(np.array(["a"]), np.array(["a"]), np.zeros(1), unit="run")
    interval = intervals.confidence_intervals(pooled, ["accuracy"], min_units=8, n_bootstrap=100, level=0.95, seed=0)
    assert interval.kind == "none" and "too few windows for time blocks" in interval.method


def test_unit_bootstrap_resamples_whole_subjects():
    # 20 subjects of 10 windows: half always right, half always wrong -> accuracy = share of "right" subjects
    # drawn, so the CI is the binomial one over 20 subjects, not over 200 windows
    subject = np.repeat(np.arange(20), 10)
    y = np.tile(["a", "b"], 100)
    right = subject < 10
    pred = np.where(right, y, np.where(y == "a", "b", "a"))
    pooled = pooled_from(y, pred, subject)
    (low, high), = intervals.unit_bootstrap(pooled, ["accuracy"], n_bootstrap=4000, level=0.95, seed=0).values()
    half_width = 1.96 * math.sqrt(0.25 / 20)  # ~0.22; windows as the unit would give ~0.07
    assert (low + high) / 2 == pytest.approx(0.5, abs=0.03)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    # every subject perfect: no uncertainty left
    perfect = pooled_from(y, y, subject)
    assert intervals.unit_bootstrap(perfect, ["balanced_accuracy"], n_bootstrap=200, level=0.95, seed=0) == \
        {"balanced_accuracy": (1.0, 1.0)}
    one = pooled_from(y[:10], y[:10], subject[:10])
    assert all(math.isnan(v) for v in intervals.unit_bootstrap(one, ["accuracy"], n_bootstrap=50, level=0.95,
                                                                seed=0)["accuracy"])
