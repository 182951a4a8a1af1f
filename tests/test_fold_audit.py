"""The leakage audit: identical windows across a split, time gaps inside a recording."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegfm.config import CrossValidation
from eegfm.fold_audit import audit_folds, warn_repeated, write_folds
from eegfm.splits import SplitError, make_folds


def _meta(subjects=("01", "02", "03", "04"), n=8):
    rows = [{"subject": s, "session": "1", "run": "1", "label": ("a", "b")[k % 2], "onset_s": 2.0 * k,
             "recording": f"{s}.edf", "content_hash": f"{s}-{k}"} for s in subjects for k in range(n)]
    meta = pd.DataFrame(rows)
    meta.insert(0, "window_id", np.arange(len(meta)))
    return meta


def test_a_recording_listed_under_two_subject_ids_stops_the_split():
    """Finding 3: the same file under two subject ids scored 1.000 with a clean audit."""
    meta = _meta()
    copy = meta["subject"] == "02"
    meta.loc[meta["subject"] == "04", "content_hash"] = meta.loc[copy, "content_hash"].to_numpy()
    meta.loc[meta["subject"] == "04", "recording"] = "02.edf"
    message = (r"16 windows occur under more than one subject with identical content.*02\.edf \(subject 02\): "
               r"8 windows, 02\.edf \(subject 04\): 8 windows.*listed under two subject ids")
    with pytest.raises(SplitError, match=message):
        make_folds(meta, CrossValidation(scheme="loso"), seed=0)


def test_identical_windows_on_both_sides_of_a_fold_stop_the_split(tmp_path):
    # one subject whose run 1 was also listed as run 2: the copies straddle every fold
    meta = pd.concat([_meta(("01",)).assign(run="1"), _meta(("01",)).assign(run="2", recording="copy.edf"),
                      _meta(("01",)).assign(run="3", content_hash=lambda t: "x" + t["content_hash"])],
                     ignore_index=True)
    meta["window_id"] = np.arange(len(meta))
    with pytest.raises(SplitError, match=r"fold 0: 8 test windows are identical .* Test side: 01\.edf "
                                         r"\(subject 01\): 8 windows; training side: copy\.edf \(subject 01\)"):
        make_folds(meta, CrossValidation(scheme="leave_one_run_out"), seed=0)
    assert not (tmp_path / "folds.json").exists()


def test_identical_windows_on_one_side_are_warned_about_and_counted(caplog):
    """A recording listed twice under one subject leaks nothing under LOSO, but counts twice: said, not silent."""
    meta = _meta()
    copy = _meta(("02",)).assign(recording="02-copy.edf")
    meta = pd.concat([meta, copy], ignore_index=True).assign(window_id=lambda t: np.arange(len(t)))
    folds = make_folds(meta, CrossValidation(scheme="loso"), seed=0)  # passes: the copies never straddle a fold
    with caplog.at_level("WARNING", logger="eegfm.fold_audit"):
        assert warn_repeated(meta) == 16
    assert "16 windows are identical to other windows of the same subject (sha256 of the samples)" in caplog.text
    assert "02-copy.edf (subject 02): 8 windows, 02.edf (subject 02): 8 windows" in caplog.text
    assert folds["audit"]["duplicates_checked"] and warn_repeated(_meta()) == 0


@pytest.mark.parametrize("seed", range(4))
def test_copies_in_two_held_out_units_stop_the_split_whatever_the_seed(seed):
    """QA: with two runs per test fold, a run listed twice passed when both copies were drawn into one test set
    and stopped otherwise: the verdict hung on the seed."""
    runs = [_meta(("01",)).assign(run=str(r), recording=f"run{r}.edf",
                                  content_hash=lambda t, r=r: f"r{r}-" + t["content_hash"]) for r in range(1, 5)]
    runs.append(runs[0].assign(run="5", recording="run1-copy.edf"))  # run 1 again, as run 5
    meta = pd.concat(runs, ignore_index=True).assign(window_id=lambda t: np.arange(len(t)))
    cv = CrossValidation(scheme="group_kfold", group_by="run", n_splits=2)
    # on both sides of a fold, or tested together (then the seed decided): stopped either way
    with pytest.raises(SplitError, match=r"(test windows are identical|16 windows occur in more than one held-out "
                                         r"run with identical content).*run1-copy\.edf \(subject 01\): 8 windows"):
        make_folds(meta, cv, seed=seed)


def test_distinct_windows_pass_and_say_so():
    folds = make_folds(_meta(), CrossValidation(scheme="loso"), seed=0)
    assert folds["audit"]["duplicates_checked"] is True and folds["audit"]["overlap_total"] == 0


def test_a_training_window_inside_the_gap_is_leakage(tmp_path):
    meta = _meta(("01",), n=12)
    folds = make_folds(meta, CrossValidation(scheme="within_subject", n_splits=3), seed=0, window_s=2.0)
    folds["folds"][0]["train"] = sorted(folds["folds"][0]["train"] + [4])  # the window right after block 0
    with pytest.raises(SplitError, match=r"leakage in fold 0: 1 training windows lie within 2 s .* 01\.edf at 8\.0"):
        write_folds(tmp_path / "folds.json", folds, meta)
    assert not (tmp_path / "folds.json").exists()


def test_folds_written_before_units_are_audited_by_group_by():
    meta = _meta().drop(columns="content_hash")
    folds = make_folds(meta, CrossValidation(n_splits=2), seed=0)
    old = {k: v for k, v in folds.items() if k not in ("unit", "window_s", "gap_s")}
    assert audit_folds(old, meta)["unit"] == "subject"


@pytest.mark.parametrize("scheme", ["leave_one_run_out", "within_subject"])
def test_one_label_per_subject_with_the_subject_on_both_sides_is_leakage(scheme):
    """QA of issue 11: patient/control labels from the metadata table, cross-validated leave-one-run-out,
    scored with every subject on both sides of every fold and no word of the leak."""
    meta = pd.concat([_meta(("01", "02", "03", "04"), n=8).assign(run=str(r)) for r in (1, 2)], ignore_index=True)
    meta["label"] = meta["subject"].map({"01": "patient", "02": "control", "03": "patient", "04": "control"})
    meta["content_hash"] = meta["content_hash"] + "-" + meta["run"]
    meta["recording"] = meta["recording"] + "-" + meta["run"]
    meta["window_id"] = np.arange(len(meta))
    message = (r"leakage in fold 0: every window of a subject carries the same label .* subject\(s\) \['01', '02', "
               r"'03', '04'\] are on both sides .*group_kfold or loso with group_by: subject")
    with pytest.raises(SplitError, match=message):
        make_folds(meta, CrossValidation(scheme=scheme, n_splits=2), seed=0, window_s=2.0)
    assert make_folds(meta, CrossValidation(n_splits=2), seed=0)["audit"]["overlap_total"] == 0  # by subject
    meta["label"] = np.where(np.arange(len(meta)) % 2, "a", "b")  # labels that vary within subjects: no leak
    assert make_folds(meta, CrossValidation(scheme=scheme, n_splits=2), seed=0, window_s=2.0)["n_splits"] == 2


def test_one_label_per_recording_with_time_blocks_inside_it_is_leakage():
    """QA of issue 11: eyes open and eyes closed recorded in files of their own, cross-validated within_subject:
    a block edge inside the eyes-closed file let the file (its impedances, drift) give its label away."""
    parts = [_meta(("01", "02"), n=8).assign(label=label, recording=lambda t, f=f: t["subject"] + f,
                                               content_hash=lambda t, f=f: f + t["content_hash"])
             for f, label in (("-a", "open"), ("-b", "closed"), ("-c", "open"))]
    meta = pd.concat(parts, ignore_index=True)
    meta["window_id"] = np.arange(len(meta))
    message = (r"leakage in fold 0: every recording carries a single label, and recording\(s\) \['01-b', '02-b'\] "
               r"are on both sides .*each class \(or target value\) recorded in several recordings")
    with pytest.raises(SplitError, match=message):
        make_folds(meta, CrossValidation(scheme="within_subject", n_splits=2), seed=0, window_s=1.0)
