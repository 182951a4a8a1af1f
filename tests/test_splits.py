"""Group-wise folds: no group/subject leakage, complete test coverage, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eegfm.config import CrossValidation, Dataset
from eegfm.splits import (
    SplitError,
    audit_folds,
    expected_n_folds,
    load_folds,
    make_folds,
    write_folds,
)
from tests.windows_tables import timed_meta


def make_meta(n_subjects=6, sessions=("1",), runs=("1",), per_class=4, classes=("left", "right"), seed=0):
    """A windows table: every subject × session × run has ``per_class`` windows of each class."""
    rows = []
    for s in range(n_subjects):
        for ses in sessions:
            for run in runs:
                for cls in classes:
                    for k in range(per_class):
                        rows.append({"subject": f"{s:02d}", "session": ses, "run": run, "label": cls,
                                     "onset_s": k * 4.0, "recording": f"sub-{s:02d}_ses-{ses}_run-{run}"})
    meta = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    meta.insert(0, "window_id", np.arange(len(meta)))
    return meta


def _side(meta, ids, column):
    return set(meta.set_index("window_id").loc[ids, column])


@pytest.mark.parametrize("scheme,n_splits,expected", [("group_kfold", 3, 3), ("loso", 5, 6)])
def test_folds_never_share_a_subject_and_test_every_window_once(scheme, n_splits, expected):
    meta = make_meta()
    folds = make_folds(meta, CrossValidation(scheme=scheme, n_splits=n_splits), seed=0)
    assert folds["n_splits"] == expected == len(folds["folds"])
    tested = []
    for fold in folds["folds"]:
        assert not _side(meta, fold["train"], "subject") & _side(meta, fold["test"], "subject")
        assert set(fold["train"]) | set(fold["test"]) == set(meta["window_id"])
        assert fold["audit"]["overlap"] == [] and fold["audit"]["shared_subjects"] == []
        assert fold["audit"]["test_subjects"] == sorted(_side(meta, fold["test"], "subject"))
        assert set(fold["audit"]["train_class_counts"]) == {"left", "right"}
        tested += fold["test"]
    assert sorted(tested) == sorted(meta["window_id"])
    expected_audit = {"overlap_total": 0, "every_window_tested_once": True, "n_windows": len(meta), "n_groups": 6,
                      "unit": "subject", "duplicates_checked": False}
    assert folds["audit"] == expected_audit


def test_loso_leaves_one_subject_out():
    meta = make_meta(n_subjects=4)
    folds = make_folds(meta, CrossValidation(scheme="loso"), seed=0)
    assert sorted(s for f in folds["folds"] for s in f["audit"]["test_subjects"]) == ["00", "01", "02", "03"]
    assert all(len(f["audit"]["test_subjects"]) == 1 for f in folds["folds"])


def test_same_seed_same_folds_other_seed_other_folds():
    meta = make_meta(n_subjects=9)
    cv = CrossValidation(n_splits=3)
    assert make_folds(meta, cv, seed=1) == make_folds(meta, cv, seed=1)
    tests = lambda seed: [f["audit"]["test_subjects"] for f in make_folds(meta, cv, seed)["folds"]]  # noqa: E731
    assert any(tests(1) != tests(s) for s in range(2, 6))


def test_session_groups_keep_sessions_apart_but_may_share_subjects():
    meta = make_meta(n_subjects=2, sessions=("1", "2"))
    folds = make_folds(meta, CrossValidation(scheme="loso", group_by="session"), seed=0)
    assert folds["n_splits"] == 4 and folds["audit"]["n_groups"] == 4
    for fold in folds["folds"]:
        train = set(zip(*(meta.set_index("window_id").loc[fold["train"], c] for c in ("subject", "session"))))
        test = set(zip(*(meta.set_index("window_id").loc[fold["test"], c] for c in ("subject", "session"))))
        assert not train & test
        assert fold["audit"]["shared_subjects"]  # the other session of the test subject trains


def test_run_groups_combine_subject_session_run():
    meta = make_meta(n_subjects=2, sessions=("1",), runs=("1", "2", "3"))
    folds = make_folds(meta, CrossValidation(n_splits=3, group_by="run"), seed=0)
    groups = {g for f in folds["folds"] for g in f["audit"]["test_groups"]}
    assert groups == {f"{s}/1/{r}" for s in ("00", "01") for r in ("1", "2", "3")}


def test_more_splits_than_groups_names_both_and_suggests_loso():
    with pytest.raises(SplitError, match=r"n_splits=5 .* only 3 subject groups.*loso"):
        make_folds(make_meta(n_subjects=3), CrossValidation(n_splits=5), seed=0)


def test_single_class_is_an_error():
    with pytest.raises(SplitError, match="only one class"):
        make_folds(make_meta(classes=("rest",)), CrossValidation(n_splits=2), seed=0)


def test_class_missing_from_a_test_subject_names_fold_class_and_subject():
    meta = make_meta(n_subjects=3)
    meta = meta[~((meta["subject"] == "01") & (meta["label"] == "right"))]
    expected = r"fold \d+: class\(es\) \['right'\] missing from the test set \(test subjects: 01\)"
    with pytest.raises(SplitError, match=expected):
        make_folds(meta, CrossValidation(scheme="loso"), seed=0)


def test_missing_session_column_values_are_fine():
    meta = make_meta().drop(columns=["session", "run"])
    folds = make_folds(meta, CrossValidation(n_splits=2, group_by="session"), seed=0)
    assert all(g.endswith("/") for f in folds["folds"] for g in f["audit"]["test_groups"])


def test_write_and_load_round_trip(tmp_path):
    meta = make_meta()
    folds = make_folds(meta, CrossValidation(n_splits=3), seed=0)
    folds["windows_key"] = "abc"
    path = tmp_path / "folds.json"
    write_folds(path, folds, meta)
    assert load_folds(path) == json.loads(json.dumps(folds))
    assert not list(tmp_path.glob(".tmp-*"))


def _leaky_folds():
    """Hand-made: subject 00 has windows on both sides of fold 0."""
    meta = make_meta(n_subjects=2, per_class=4)
    ids = meta.sort_values("subject")["window_id"].tolist()  # 8 windows of 00, then 8 of 01
    folds = {
        "scheme": "group_kfold", "group_by": "subject", "n_splits": 2, "seed": 0,
        "folds": [
            {"fold": 0, "train": ids[:6], "test": ids[6:]},
            {"fold": 1, "train": ids[8:], "test": ids[:6]},
        ],
    }
    return meta, folds


def test_write_folds_refuses_a_leaky_split(tmp_path):
    meta, folds = _leaky_folds()
    with pytest.raises(SplitError, match=r"leakage in fold 0: subject group\(s\) \['00'\]"):
        write_folds(tmp_path / "folds.json", folds, meta)
    assert not (tmp_path / "folds.json").exists()


def test_write_folds_checks_leakage_from_the_fold_audits_without_meta(tmp_path):
    meta, folds = _leaky_folds()
    for fold in folds["folds"]:
        table = meta.set_index("window_id")
        fold["audit"] = {
            "train_groups": sorted(set(table.loc[fold["train"], "subject"])),
            "test_groups": sorted(set(table.loc[fold["test"], "subject"])),
        }
    with pytest.raises(SplitError, match="leakage in fold 0"):
        write_folds(tmp_path / "folds.json", folds)


def test_write_folds_refuses_windows_in_both_sides_or_untested(tmp_path):
    meta = make_meta(n_subjects=2, per_class=1)
    ids = meta["window_id"].tolist()
    both = {"group_by": "subject", "folds": [{"fold": 0, "train": ids, "test": ids[:1]}]}
    with pytest.raises(SplitError, match="in both train and test"):
        write_folds(tmp_path / "f.json", both)
    table = meta.set_index("window_id")
    sub0 = table.index[table["subject"] == "00"].tolist()
    sub1 = table.index[table["subject"] == "01"].tolist()
    untested = {"group_by": "subject", "folds": [{"fold": 0, "train": sub0, "test": sub1}]}
    with pytest.raises(SplitError, match=r"\d+ windows are never tested"):
        write_folds(tmp_path / "f.json", untested, meta)
    twice = {"group_by": "subject", "folds": [{"fold": 0, "train": sub0, "test": sub1},
                                              {"fold": 1, "train": sub0, "test": sub1}]}
    with pytest.raises(SplitError, match="more than one fold"):
        audit_folds(twice, meta)


# ----------------------------------------------------------------------------- designs beyond subjects


def test_leave_one_run_out_holds_out_the_kth_run_of_every_subject():
    meta = timed_meta(subjects=("01", "02"), runs=("1", "2", "10"))
    cv = CrossValidation(scheme="leave_one_run_out")
    folds = make_folds(meta, cv, seed=0, window_s=2.0)
    assert folds["unit"] == "run" and folds["n_splits"] == 3 == expected_n_folds(cv, _units(meta))
    # natural order: run 10 is the third run, not the second
    assert [f["audit"]["test_groups"] for f in folds["folds"]] == [
        ["01/1/1", "02/1/1"], ["01/1/2", "02/1/2"], ["01/1/10", "02/1/10"]]
    for fold in folds["folds"]:
        assert fold["audit"]["overlap"] == [] and fold["audit"]["shared_subjects"] == ["01", "02"]
        assert fold["audit"]["gap_dropped"] == 0  # runs are separate recordings: nothing to drop
    assert folds["audit"]["overlap_total"] == 0 and folds["audit"]["n_groups"] == 6


def test_cross_session_and_its_fold_count():
    meta = timed_meta(subjects=("01", "02"), sessions=("a", "b"), runs=("1", "2"))
    cv = CrossValidation(scheme="cross_session")
    folds = make_folds(meta, cv, seed=0)
    assert folds["unit"] == "session" and folds["n_splits"] == 2 == expected_n_folds(cv, _units(meta))
    assert folds["folds"][1]["audit"]["test_groups"] == ["01/b", "02/b"]
    train = set(zip(*(meta.set_index("window_id").loc[folds["folds"][1]["train"], c] for c in ("subject", "session"))))
    assert train == {("01", "a"), ("02", "a")}


def test_a_subject_with_one_run_cannot_join_leave_one_run_out():
    meta = pd.concat([timed_meta(subjects=("01",)), timed_meta(subjects=("02",), runs=("1",))], ignore_index=True)
    meta["window_id"] = np.arange(len(meta))
    with pytest.raises(SplitError, match=r"subject\(s\) 02 have only one run"):
        make_folds(meta, CrossValidation(scheme="leave_one_run_out"), seed=0)
    with pytest.raises(SplitError, match=r"subject\(s\) 02 have only one run"):
        expected_n_folds(CrossValidation(scheme="leave_one_run_out"), _units(meta))


def test_within_subject_blocks_are_time_ordered_and_overlapping_neighbours_never_straddle():
    # one recording per subject, 40 windows of 2 s every 1 s: neighbours overlap by half
    meta = timed_meta(subjects=("01", "02"), runs=("1",), n=40, stride=1.0)
    cv = CrossValidation(scheme="within_subject", n_splits=4, gap_s=0.0)
    folds = make_folds(meta, cv, seed=0, window_s=2.0)
    assert folds["unit"] == "block" and folds["n_splits"] == 4 == expected_n_folds(cv)
    table = meta.set_index("window_id")
    for fold in folds["folds"]:
        k = fold["fold"]
        assert fold["audit"]["test_groups"] == [f"01/block-{k}", f"02/block-{k}"]
        for subject in ("01", "02"):
            onsets = sorted(table.loc[fold["test"]].loc[lambda t, s=subject: t["subject"] == s, "onset_s"])
            assert onsets == [float(v) for v in range(10 * k, 10 * k + 10)]  # a contiguous quarter
            train = table.loc[fold["train"]].loc[lambda t, s=subject: t["subject"] == s, "onset_s"].to_numpy()
            # no training window overlaps a test window (|onset difference| < window length)
            assert np.min(np.abs(train[:, None] - np.array(onsets)[None, :])) >= 2.0
        # one window lost at each inner block edge per subject
        assert fold["audit"]["gap_dropped"] == 2 * (1 if k in (0, 3) else 2)


def test_within_subject_gap_defaults_to_one_window_length():
    meta = timed_meta(runs=("1",), n=40, stride=2.0)  # contiguous, not overlapping
    folds = make_folds(meta, CrossValidation(scheme="within_subject", n_splits=4), seed=0, window_s=2.0)
    assert folds["gap_s"] == 2.0
    table = meta.set_index("window_id")
    test = table.loc[folds["folds"][1]["test"], "onset_s"]
    train = table.loc[folds["folds"][1]["train"], "onset_s"]
    assert (test.min(), test.max()) == (20.0, 38.0)
    assert 18.0 not in set(train) and 40.0 not in set(train) and {16.0, 42.0} <= set(train)


def test_within_subject_needs_the_window_length_and_enough_windows():
    meta = timed_meta(runs=("1",), n=3)
    with pytest.raises(SplitError, match="window length"):
        make_folds(meta, CrossValidation(scheme="within_subject", n_splits=3), seed=0)
    with pytest.raises(SplitError, match=r"subject\(s\) 01 \(3\) have fewer windows"):
        make_folds(meta, CrossValidation(scheme="within_subject", n_splits=4), seed=0, window_s=1.0)


def test_group_by_that_contradicts_the_scheme_is_a_config_error():
    with pytest.raises(ValueError, match="does not fit scheme 'leave_one_run_out'"):
        CrossValidation(scheme="leave_one_run_out", group_by="subject")
    assert CrossValidation(scheme="leave_one_run_out", group_by="run").unit == "run"
    assert CrossValidation(scheme="within_subject").unit == "block"
    for scheme in ("cross_session", "leave_one_run_out", "within_subject"):  # a dumped config reads back
        cv = CrossValidation(scheme=scheme)
        assert CrossValidation.model_validate_json(cv.model_dump_json()) == cv
    assert CrossValidation(scheme="loso", group_by="session").unit == "session"


def test_expected_fold_count_of_loso_and_kfold():
    units = [("01", "a", "1"), ("01", "a", "2"), ("02", "a", "1")]
    assert expected_n_folds(CrossValidation(scheme="loso"), units) == 2
    assert expected_n_folds(CrossValidation(scheme="loso", group_by="run"), lambda: units) == 3
    assert expected_n_folds(CrossValidation(n_splits=4)) == 4  # no recordings needed
    with pytest.raises(SplitError, match=r"only 1 subject group\(s\).*For one subject, use cv.scheme "
                                         r"leave_one_run_out \(runs\), cross_session .* within_subject"):
        expected_n_folds(CrossValidation(scheme="loso"), units[:2])


def _units(meta):
    return list(meta[["subject", "session", "run"]].drop_duplicates().itertuples(index=False, name=None))


# ----------------------------------------------------------------------------- real recordings


def _real_windows(three_runs, tmp_path, recordings):
    from eegfm.config import Preprocessing, Windowing
    from eegfm.windows import build_windows
    from eegfm.windows_store import open_windows

    win = Windowing(mode="fixed", event_id={"T1": "left", "T2": "right"}, length_s=1.0, stride_s=0.5)
    build_windows(recordings, Preprocessing(sfreq=None, h_freq=40.0), win, tmp_path / "w")
    return open_windows(tmp_path / "w")


def test_real_three_runs_of_one_subject_leave_one_run_out(three_runs, tmp_path):
    from eegfm.recordings import find_recordings

    ds = Dataset(source="files", files={"metadata": str(three_runs / "recordings.tsv")}, cv={"scheme": "leave_one_run_out"})
    recordings = find_recordings(ds)
    store = _real_windows(three_runs, tmp_path, recordings)
    assert store.meta["content_hash"].str.len().eq(64).all()  # written with the windows
    folds = make_folds(store.meta, ds.cv, seed=0, window_s=1.0)
    assert folds["n_splits"] == 3 == expected_n_folds(ds.cv, [(r.subject, r.session, r.run) for r in recordings])
    assert [f["audit"]["test_groups"] for f in folds["folds"]] == [["S001/1/1"], ["S001/1/2"], ["S001/1/3"]]
    assert all(f["audit"]["train_subjects"] == f["audit"]["test_subjects"] == ["S001"] for f in folds["folds"])
    assert folds["audit"]["overlap_total"] == 0 and folds["audit"]["duplicates_checked"]
    # within the same subject: time blocks, overlapping windows (0.5 s stride, 1 s long) kept apart
    within = make_folds(store.meta, CrossValidation(scheme="within_subject", n_splits=3, gap_s=0.0), 0, window_s=1.0)
    assert sum(f["audit"]["gap_dropped"] for f in within["folds"]) > 0


def test_real_recording_under_two_subject_ids_names_both(three_runs, tmp_path):
    from eegfm.recordings import Recording

    path = str(three_runs / "S001_run-1_raw.fif")
    store = _real_windows(three_runs, tmp_path, [Recording(path, "S001"), Recording(path, "S002")])
    with pytest.raises(SplitError, match=r"S001_run-1_raw\.fif \(subject S001\).*S001_run-1_raw\.fif \(subject S002\)"):
        make_folds(store.meta, CrossValidation(scheme="loso"), seed=0, window_s=1.0)
