"""Copies of a recording in other bytes: found by signal, not missed by the sha256 of the samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegfm.config import CrossValidation, Dataset, FilesSource, Preprocessing, Windowing
from eegfm.near_duplicates import content_groups
from eegfm.recordings import find_recordings
from eegfm.splits import SplitError, split_store
from eegfm.windows import build_windows
from eegfm.windows_store import open_windows, window_hash
from tests.conftest import MOTOR_EDF


def _eeg(rng, n, channels=8, samples=256):
    """Windows of smooth, channel-specific noise (a random walk, so neighbouring samples correlate)."""
    gains = rng.uniform(5e-6, 40e-6, size=(1, channels, 1))
    return np.cumsum(rng.normal(size=(n, channels, samples)), axis=2) * gains / 10


def _meta(recordings: list[str], X: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"window_id": np.arange(len(X)), "recording": recordings,
                         "content_hash": [window_hash(w) for w in X]})


def test_a_float32_rescaled_copy_in_another_recording_joins_its_original():
    rng = np.random.default_rng(0)
    original = _eeg(rng, 6)
    copy = (original * 1e6).astype(np.float32).astype(np.float64) * 1e-6 + 1e-9  # units, rounding, an offset
    X = np.concatenate([original, copy, _eeg(rng, 6)]).astype(np.float32)
    groups = content_groups(X, _meta(["a.edf"] * 6 + ["b.fif"] * 6 + ["c.edf"] * 6, X))
    assert (groups.iloc[:6].to_numpy() == groups.iloc[6:12].to_numpy()).all()
    assert len(set(groups.iloc[:12])) == 6 and set(groups.iloc[:6]) <= set(_meta(["x"] * 18, X)["content_hash"])
    assert len(set(groups.iloc[12:])) == 6 and not set(groups.iloc[12:]) & set(groups.iloc[:12])


def test_overlapping_windows_of_one_recording_are_not_copies():
    """Shifted by one sample, a slow signal correlates above the threshold: the gap rule handles those."""
    rng = np.random.default_rng(1)
    signal = np.cumsum(rng.normal(size=(8, 2000)), axis=1) * 1e-6
    X = np.stack([signal[:, s:s + 256] for s in range(0, 40)]).astype(np.float32)
    groups = content_groups(X, _meta(["a.edf"] * len(X), X))
    assert groups.nunique() == len(X)


def test_flat_windows_are_left_to_the_exact_check():
    X = np.zeros((4, 3, 64), dtype=np.float32)
    groups = content_groups(X, _meta(["a.edf", "a.edf", "b.edf", "b.edf"], X))
    assert (groups.to_numpy() == _meta(["x"] * 4, X)["content_hash"].to_numpy()).all()


@pytest.mark.parametrize("fmt", ["fif-float32", "scaled-float32"])
def test_a_real_recording_saved_again_under_another_subject_stops_the_splits(real_data, tmp_path, fmt):
    """The audit's finding: an EDF re-saved as FIF (float32) under a second subject id scored 0.774, 'above
    chance', with a clean audit, because the sha256 of the samples differed."""
    import mne

    raw = mne.io.read_raw(real_data / MOTOR_EDF, preload=True, verbose="error").crop(0, 40)
    rows = ["path\tsubject"]
    for subject, start in (("S01", 0.0), ("S03", 20.0)):
        path = tmp_path / f"{subject}_raw.fif"
        raw.copy().crop(start, start + 20, include_tmax=False).save(path, fmt="double", verbose="error")
        rows.append(f"{path}\t{subject}")
    copy = tmp_path / "copy_raw.fif"
    if fmt == "fif-float32":
        raw.copy().crop(0, 20, include_tmax=False).save(copy, fmt="single", verbose="error")
    else:  # the same signal in other units: every sample x 2, then float32 (as if recorded with another gain)
        scaled = raw.copy().crop(0, 20, include_tmax=False).apply_function(lambda x: 2 * x)
        scaled.save(copy, fmt="single", verbose="error")
    rows.append(f"{copy}\tS02")
    (tmp_path / "recordings.tsv").write_text("\n".join(rows) + "\n")
    dataset = Dataset(source="files", files=FilesSource(metadata=str(tmp_path / "recordings.tsv")))
    pre = Preprocessing(l_freq=1.0, h_freq=40.0, sfreq=128.0)
    build_windows(find_recordings(dataset), pre, Windowing(mode="fixed", length_s=2.0,
                                                           event_id={"T1": "left", "T2": "right"}), tmp_path / "w")
    store = open_windows(tmp_path / "w")
    assert store.meta.query("subject == 'S01'")["content_hash"].isin(
        store.meta.query("subject == 'S02'")["content_hash"]).sum() == 0  # the bytes differ: sha256 alone misses it
    with pytest.raises(SplitError, match=r"under more than one subject with identical content \(the same signal in "
                                         r"other bytes.*S01_raw\.fif \(subject S01\).*copy_raw\.fif \(subject S02\)"):
        split_store(store, CrossValidation(scheme="loso"), 0, tmp_path / "folds.json")
    assert not (tmp_path / "folds.json").exists()
