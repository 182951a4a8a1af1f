"""Folds of a regression target: stratified on quantile bins of the groups' mean target, every training
target varies, the audit describes the target per side; classification keeps its class checks."""

from __future__ import annotations

import numpy as np
import pytest

from eegfm.config import CrossValidation
from eegfm.fold_targets import fold_targets, side_summary, stratification_labels
from eegfm.splits import SplitError, make_folds
from eegfm.validation_split import carve_validation
from tests.windows_tables import aged_meta, timed_meta

AGES = {f"S{i:02d}": 20 + 5 * i for i in range(12)}  # 20 ... 75 years, one per subject


def test_group_kfold_on_ages_spreads_the_range_over_every_fold():
    """Finding 11 (regression): a continuous label column stopped the splits job (each age became a 'class')."""
    meta = aged_meta(AGES)
    folds = make_folds(meta, CrossValidation(scheme="group_kfold", n_splits=4), seed=0, target="regression")
    assert folds["target"] == "regression" and folds["classes"] == [] and folds["n_splits"] == 4
    subject_age = dict(AGES)
    tested = []
    for fold in folds["folds"]:
        ages = sorted(subject_age[s] for s in fold["audit"]["test_subjects"])
        # three bins of four subjects (20-35, 40-55, 60-75): each test fold takes one subject from each
        assert [np.digitize(a, [37.5, 57.5]) for a in ages] == [0, 1, 2], ages
        audit = fold["audit"]
        assert audit["test_target"] == {"n": 18, "mean": pytest.approx(np.mean(ages)), "min": ages[0],
                                        "max": ages[-1]}
        assert audit["train_target"]["n"] == 54 and "train_class_counts" not in audit
        tested += fold["test"]
    assert sorted(tested) == list(meta["window_id"])


def test_leave_one_subject_out_with_a_recording_level_target_allows_a_constant_test_fold():
    folds = make_folds(aged_meta(AGES), CrossValidation(scheme="loso"), seed=0, target="regression")
    assert folds["n_splits"] == 12
    assert all(f["audit"]["test_target"]["min"] == f["audit"]["test_target"]["max"] for f in folds["folds"])


def test_a_training_fold_with_a_constant_target_is_an_error_naming_the_fold():
    meta = aged_meta({"A": 30, "B": 30, "C": 50})
    with pytest.raises(SplitError, match=r"fold 2: the training target is constant \(30\) \(test subjects: C\); "
                                         "a regression cannot be fitted"):
        make_folds(meta, CrossValidation(scheme="loso"), seed=0, target="regression")


def test_a_target_that_is_no_number_or_never_varies_stops_the_splits():
    meta = aged_meta({"A": 30, "B": 40})
    meta.loc[0, "label"] = "thirty"
    with pytest.raises(SplitError, match=r"1 regression target\(s\) are not finite numbers, e.g. \['thirty'\]"):
        make_folds(meta, CrossValidation(scheme="loso"), seed=0, target="regression")
    with pytest.raises(SplitError, match=r"the regression target is constant \(30\) over all windows"):
        make_folds(aged_meta({"A": 30, "B": 30.0}), CrossValidation(scheme="loso"), seed=0, target="regression")


def test_ages_decoded_as_classes_name_the_regression_target_in_the_error():
    """Audit: label_column: age without target: regression stopped with "classes ['34', '55', '61.5'] missing
    from the train set" and no word of target: regression."""
    meta = aged_meta({"A": 34, "B": 55, "C": 61.5, "D": 70})
    with pytest.raises(SplitError, match=r"missing from the train set .*the 4 classes are numbers \('34', '55', "
                                         r"'61.5', '70'\): for a continuous target .* set datasets.<name>.target: "
                                         "regression"):
        make_folds(meta, CrossValidation(scheme="loso"), seed=0)
    # integer codes of a few classes are plausible classes: no hint
    coded = timed_meta(subjects=("01", "02"), runs=("1",), n=4).assign(label=lambda m: m["subject"].map(
        {"01": "1", "02": "2"}))
    with pytest.raises(SplitError) as err:
        make_folds(coded, CrossValidation(scheme="loso"), seed=0)
    assert "regression" not in str(err.value)


def test_within_subject_regression_on_event_values():
    meta = timed_meta(subjects=("01", "02"), runs=("1",), n=12)
    meta["label"] = [str(0.5 * (k % 4)) for k in range(len(meta))]  # a per-event value
    folds = make_folds(meta, CrossValidation(scheme="within_subject", n_splits=3), seed=0, window_s=2.0,
                       target="regression")
    assert folds["n_splits"] == 3 and all(f["audit"]["train_target"]["max"] == 1.5 for f in folds["folds"])


def test_the_pieces():
    y, classes = fold_targets(np.array(["1", "2.5", "4"], dtype=object), "regression")
    assert y.tolist() == [1.0, 2.5, 4.0] and classes == []
    y, classes = fold_targets(np.array(["b", "a", "b"], dtype=object), "classification")
    assert classes == ["a", "b"] and isinstance(y[0], str)
    groups = np.repeat([f"g{i}" for i in range(9)], 2)
    values = np.repeat(np.arange(9.0), 2)
    assert stratification_labels(values, groups, 3, "regression").tolist() == np.repeat([0, 0, 0, 1, 1, 1, 2, 2, 2],
                                                                                          2).tolist()
    assert stratification_labels(values, groups, 5, "regression").tolist() == [0] * 18  # too few groups for bins
    assert side_summary(np.array(["a", "b", "a"]), False) == {"a": 2, "b": 1}
    assert side_summary(np.array([1.0, 3.0]), True) == {"n": 2, "mean": 2.0, "min": 1.0, "max": 3.0}


def test_validation_for_a_regression_target_takes_whole_units_without_class_balancing(caplog):
    meta = aged_meta(AGES)
    train = meta.loc[meta["subject"] != "S00", "window_id"].tolist()
    split = carve_validation(meta, train, 0.2, seed=0, target="regression")
    assert split.method == "groups" and split.record["missing_classes"] == []
    assert len(split.record["val_groups"]) == 2 and not set(split.val) & set(split.inner)
    assert "keeps every class" not in caplog.text
