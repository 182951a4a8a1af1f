"""The built-in dataset: BIDS layout, determinism, realism and learnability."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mne
import mne_bids
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from eegfm.config import SyntheticSource
from eegfm.synthetic import CHANNELS, CLASSES, simulate_raw, subject_labels, write_synthetic_bids

TINY = SyntheticSource(n_subjects=3, n_source_subjects=2, trials_per_class=4, seed=0)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_synthetic_bids(tmp_path_factory.mktemp("syn") / "bids", TINY)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_channels_are_the_19_of_10_20():
    assert len(CHANNELS) == 19 == len(set(CHANNELS))
    montage = mne.channels.make_standard_montage("colin27_1020")
    assert set(CHANNELS) <= set(montage.ch_names)


def test_subject_labels_continue_into_the_source_task():
    labels = subject_labels(SyntheticSource(n_subjects=10, n_source_subjects=12))
    assert labels["target"] == [f"{i:02d}" for i in range(1, 11)]
    assert labels["source"] == [f"{i:02d}" for i in range(11, 23)]
    wide = subject_labels(SyntheticSource(n_subjects=60, n_source_subjects=50))
    assert wide["target"][0] == "001" and wide["source"][-1] == "110"


def test_bids_layout_both_tasks(root):
    assert (root / "dataset_description.json").is_file()
    assert "synthetic" in (root / "README").read_text()
    assert json.loads((root / "dataset_description.json").read_text())["Name"] == "eegfm synthetic motor imagery"
    participants = pd.read_csv(root / "participants.tsv", sep="\t")
    assert list(participants["participant_id"]) == [f"sub-{i:02d}" for i in range(1, 6)]
    for task, subjects in (("target", ["01", "02", "03"]), ("source", ["04", "05"])):
        paths = mne_bids.find_matching_paths(root, tasks=task, extensions=".edf")
        assert sorted(p.subject for p in paths) == subjects
        events = pd.read_csv(paths[0].copy().update(suffix="events", extension=".tsv").fpath, sep="\t")
        assert events["trial_type"].value_counts().to_dict() == {c: TINY.trials_per_class for c in CLASSES[task]}
        assert (events["duration"] == 4.0).all()
        gaps = np.diff(events["onset"].to_numpy())
        assert gaps.min() >= 5.5 - 1e-6 and gaps.max() <= 6.5 + 1e-6  # 4 s trial + 1.5-2.5 s rest
        assert list(events["trial_type"]) != sorted(events["trial_type"])  # shuffled
    assert not list(root.parent.glob(".tmp-*"))  # written atomically, nothing left behind


def test_edf_round_trip_is_realistic(root):
    path = mne_bids.find_matching_paths(root, subjects="01", tasks="target", extensions=".edf")[0]
    raw = mne_bids.read_raw_bids(path, verbose=False).load_data()
    assert raw.ch_names == list(CHANNELS)
    assert set(raw.get_channel_types()) == {"eeg"}
    assert raw.info["sfreq"] == TINY.sfreq
    assert raw.get_montage() is not None
    assert set(raw.annotations.description) == set(CLASSES["target"])
    std = raw.get_data().std(axis=1)
    assert np.all((std > 5e-6) & (std < 60e-6)), std  # tens of µV, in volts
    # The EDF keeps the simulated signal up to 16-bit quantisation.
    original = simulate_raw("target", 0, TINY).get_data()
    n = min(original.shape[1], raw.n_times)
    assert np.abs(raw.get_data()[:, :n] - original[:, :n]).max() < 0.01 * np.abs(original).max()


def test_deterministic_and_subject_independent_of_counts(root, tmp_path):
    again = write_synthetic_bids(tmp_path / "again", TINY)
    assert _digests(again) == _digests(root)
    more = write_synthetic_bids(tmp_path / "more", TINY.model_copy(update={"n_subjects": 4}))
    first = "sub-01/eeg/sub-01_task-target_eeg.edf"
    assert _digests(more)[first] == _digests(root)[first]
    other_seed = simulate_raw("target", 0, TINY.model_copy(update={"seed": 1})).get_data()
    assert not np.allclose(other_seed[:, :1000], simulate_raw("target", 0, TINY).get_data()[:, :1000])


def test_rewrite_replaces_an_existing_root(tmp_path):
    cfg = TINY.model_copy(update={"n_subjects": 2, "trials_per_class": 2})
    write_synthetic_bids(tmp_path / "r", cfg)
    write_synthetic_bids(tmp_path / "r", cfg.model_copy(update={"n_subjects": 3}))
    assert len(list((tmp_path / "r").glob("sub-*"))) == 3 + cfg.n_source_subjects
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def _log_bandpower(raw: mne.io.BaseRaw) -> tuple[np.ndarray, list[str]]:
    raw = raw.copy().filter(1.0, 40.0, verbose="error")
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(raw, events, event_id, 0.0, 4.0 - 1 / raw.info["sfreq"], baseline=None, verbose="error")
    psd, freqs = epochs.compute_psd(fmin=4, fmax=40, verbose="error").get_data(return_freqs=True)
    bands = [(4, 8), (8, 13), (13, 20), (20, 30)]
    X = np.concatenate([np.log(psd[..., (freqs >= lo) & (freqs < hi)].mean(-1)) for lo, hi in bands], axis=1)
    names = {code: name for name, code in event_id.items()}
    return X, [names[code] for code in epochs.events[:, 2]]


@pytest.mark.parametrize(("task", "n_classes", "lo", "hi"), [("target", 3, 0.5, 0.9), ("source", 4, 0.35, 0.9)])
def test_learnable_but_not_trivial(task, n_classes, lo, hi):
    """Log-band-power + logistic regression, subject-wise CV: clearly above chance, far from perfect."""
    cfg = SyntheticSource(trials_per_class=15, seed=0)
    X, y, groups = [], [], []
    for index in range(8):
        feats, labels = _log_bandpower(simulate_raw(task, index, cfg))
        X.append(feats), y.extend(labels), groups.extend([index] * len(labels))
    X, y = np.concatenate(X), np.array(y)
    assert len(set(y)) == n_classes
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    pred = cross_val_predict(clf, X, y, groups=groups, cv=GroupKFold(4))
    score = balanced_accuracy_score(y, pred)
    assert lo < score < hi, f"{task}: balanced accuracy {score:.3f} (chance {1 / n_classes:.2f})"
