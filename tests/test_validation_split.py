"""Early-stopping validation: carved from the training units only, by time blocks when units are few."""

from __future__ import annotations

import pytest

from eegfm.config import CrossValidation
from eegfm.splits import SplitError, make_folds
from eegfm.validation_split import carve_validation
from tests.test_splits import _side, make_meta
from tests.windows_tables import timed_meta


def test_carve_validation_uses_only_training_subjects():
    meta = make_meta(n_subjects=8)
    fold = make_folds(meta, CrossValidation(n_splits=4), seed=0)["folds"][0]
    split = carve_validation(meta, fold["train"], fraction=0.34, seed=0)
    inner, val = split.inner, split.val
    assert sorted(inner + val) == sorted(fold["train"])
    assert not _side(meta, inner, "subject") & _side(meta, val, "subject")
    assert not _side(meta, val, "subject") & set(fold["audit"]["test_subjects"])
    assert len(_side(meta, val, "subject")) == 2  # round(0.34 * 6)
    assert _side(meta, val, "label") == _side(meta, inner, "label") == {"left", "right"}
    assert split.method == "groups" and split.record["val_groups"] == sorted(_side(meta, val, "subject"))
    assert carve_validation(meta, fold["train"], 0.34, seed=0) == split


def test_carve_validation_needs_a_valid_fraction_and_the_window_length_for_time_blocks():
    meta = make_meta(n_subjects=2)
    one_subject = meta.loc[meta["subject"] == "00", "window_id"].tolist()
    with pytest.raises(SplitError, match=r"single subject.*needs the window length"):
        carve_validation(meta, one_subject, 0.2, seed=0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        carve_validation(meta, meta["window_id"].tolist(), 1.0, seed=0)


def test_two_training_runs_fall_back_to_time_blocks_instead_of_a_whole_run():
    """Finding 9: val_fraction 0.2 with two training runs took one whole run (half the training data)."""
    meta = timed_meta(runs=("1", "2", "3"), n=20, stride=2.0)
    fold = make_folds(meta, CrossValidation(scheme="leave_one_run_out"), seed=0, window_s=2.0)["folds"][0]
    split = carve_validation(meta, fold["train"], 0.2, seed=0, group_by="run", max_share=0.35, window_s=2.0)
    assert split.method == "time_blocks"
    assert split.record["reason"].startswith("whole runs would take 50% of the training windows")
    table = meta.set_index("window_id")
    for run in ("2", "3"):
        val = table.loc[split.val].loc[lambda t, r=run: t["run"] == r, "onset_s"]
        inner = table.loc[split.inner].loc[lambda t, r=run: t["run"] == r, "onset_s"]
        assert sorted(val) == [32.0, 34.0, 36.0, 38.0]  # the last 20% of the run
        assert inner.max() == 28.0  # 30.0 is the gap (one window length) before validation
    assert split.record["share"] == 0.2 and split.record["gap_dropped"] == 2
    assert split.record["val_groups"] == ["01/1/2", "01/1/3"]
    # a share within the limit keeps whole groups
    assert carve_validation(meta, fold["train"], 0.2, seed=0, group_by="run", max_share=0.5).method == "groups"


def test_within_subject_validation_blocks_keep_the_gap_to_inner_training_windows():
    """Audit: whole-block validation in a within-subject design took no gap, so overlapping windows (stride
    0.5 s, 2-s windows) of a validation block and its neighbouring inner-training block shared samples."""
    from eegfm.groups import window_units

    meta = timed_meta(runs=("1",), n=80, stride=0.5)
    folds = make_folds(meta, CrossValidation(scheme="within_subject", n_splits=5, gap_s=1.0), seed=0, window_s=2.0)
    units = window_units(meta, folds)
    onsets = meta.set_index("window_id")["onset_s"]
    for fold in folds["folds"]:
        split = carve_validation(meta, fold["train"], 0.34, seed=0, units=units, window_s=2.0, gap_s=1.0)
        assert split.method == "groups" and split.record["gap_s"] == 1.0
        val, inner = onsets.loc[split.val].to_numpy(), onsets.loc[split.inner].to_numpy()
        closest = min(abs(a - b) for a in val for b in inner)
        assert closest >= 2.0 + 1.0, (fold["fold"], closest)  # window length + gap, onset to onset
        dropped = set(fold["train"]) - set(split.inner) - set(split.val)
        assert split.record["gap_dropped"] == len(dropped) > 0
