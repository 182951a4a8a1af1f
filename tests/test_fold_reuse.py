"""A fold's artifacts are reused only when every key of what produced them matches."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from eegfm.fold_reuse import REUSE_KEYS, fold_sha, remember, reusable_record

META = pd.DataFrame({"window_id": [0, 1, 2, 3], "label": ["a", "b", "a", "b"], "subject": ["1", "1", "2", "2"]})
FOLDS = {"scheme": "group_kfold", "group_by": "subject", "unit": "subject", "seed": 0,
         "folds": [{"fold": 0, "train": [0, 1], "test": [2, 3]}]}
KEYS = {key: f"{key}-value" for key in REUSE_KEYS}


def _write(folder, record, predictions=True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(record))
    if predictions:
        (folder / "predictions.tsv").write_text("window_id\ty_true\ty_pred\n")
        remember(folder, record)


def test_a_record_with_every_key_equal_is_reused(tmp_path):
    _write(tmp_path, {**KEYS, "status": "ok", "metrics": {"balanced_accuracy": 0.9}})
    assert reusable_record(tmp_path, KEYS)["metrics"] == {"balanced_accuracy": 0.9}


@pytest.mark.parametrize("key", REUSE_KEYS)
def test_one_other_key_means_recompute(tmp_path, key):
    _write(tmp_path, {**KEYS, "status": "ok"})
    assert reusable_record(tmp_path, {**KEYS, key: "other"}) is None
    _write(tmp_path, {**{k: v for k, v in KEYS.items() if k != key}, "status": "ok"})  # a record without it
    assert reusable_record(tmp_path, KEYS) is None


def test_a_failed_fold_missing_predictions_or_an_unreadable_record_is_recomputed(tmp_path):
    _write(tmp_path / "failed", {**KEYS, "status": "failed"})
    _write(tmp_path / "no-predictions", {**KEYS, "status": "ok"}, predictions=False)
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn/metrics.json").write_text('{"status": "o')
    for name in ("failed", "no-predictions", "torn", "absent"):
        assert reusable_record(tmp_path / name, KEYS) is None, name


@pytest.mark.parametrize("edit", ["metrics.json", "predictions.tsv", "reuse.json"])
def test_a_file_edited_since_it_was_written_is_recomputed(tmp_path, edit):
    """QA: a hand-edited score or prediction was reused as it stood (the record's keys still matched)."""
    _write(tmp_path, {**KEYS, "status": "ok", "metrics": {"balanced_accuracy": 0.9}})
    assert reusable_record(tmp_path, KEYS) is not None
    if edit == "metrics.json":
        (tmp_path / edit).write_text(json.dumps({**KEYS, "status": "ok", "metrics": {"balanced_accuracy": 0.1}}))
    elif edit == "predictions.tsv":
        (tmp_path / edit).write_text("window_id\ty_true\ty_pred\n0\ta\tb\n")
    else:
        (tmp_path / edit).unlink()  # no digests: written by the workflow, or by an older eegfm
    assert reusable_record(tmp_path, KEYS) is None


def test_the_fold_key_follows_labels_groups_ids_and_design_only():
    entry = FOLDS["folds"][0]
    key = fold_sha(FOLDS, entry, META, "classification")
    assert key == fold_sha(FOLDS, dict(entry), META.copy(), "classification")
    assert key != fold_sha(FOLDS, entry, META.assign(label=["b", "a", "b", "a"]), "classification")
    assert key != fold_sha(FOLDS, entry, META.assign(subject=["1", "1", "3", "3"]), "classification")
    assert key != fold_sha(FOLDS, {**entry, "test": [3, 2]}, META, "classification")
    assert key != fold_sha({**FOLDS, "seed": 1}, entry, META, "classification")
    assert key != fold_sha(FOLDS, entry, META, "regression")
