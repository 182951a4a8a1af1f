"""Group-wise folds: no group/subject leakage, complete test coverage, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eegfm.config import CrossValidation
from eegfm.splits import SplitError, audit_folds, carve_validation, load_folds, make_folds, write_folds


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
    expected_audit = {"overlap_total": 0, "every_window_tested_once": True, "n_windows": len(meta), "n_groups": 6}
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


def test_carve_validation_uses_only_training_subjects():
    meta = make_meta(n_subjects=8)
    fold = make_folds(meta, CrossValidation(n_splits=4), seed=0)["folds"][0]
    inner, val = carve_validation(meta, fold["train"], fraction=0.34, seed=0)
    assert sorted(inner + val) == sorted(fold["train"])
    assert not _side(meta, inner, "subject") & _side(meta, val, "subject")
    assert not _side(meta, val, "subject") & set(fold["audit"]["test_subjects"])
    assert len(_side(meta, val, "subject")) == 2  # round(0.34 * 6)
    assert _side(meta, val, "label") == _side(meta, inner, "label") == {"left", "right"}
    assert carve_validation(meta, fold["train"], 0.34, seed=0) == (inner, val)


def test_carve_validation_needs_two_groups_and_a_valid_fraction():
    meta = make_meta(n_subjects=2)
    one_subject = meta.loc[meta["subject"] == "00", "window_id"].tolist()
    with pytest.raises(SplitError, match="at least 2"):
        carve_validation(meta, one_subject, 0.2, seed=0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        carve_validation(meta, meta["window_id"].tolist(), 1.0, seed=0)
