"""Windows that overlap BAD annotations are dropped as mne.Epochs(reject_by_annotation=True) drops them.

The audit's case: a FIF with ``BAD_movement`` over 5-11 s kept its event windows at 4.70, 5.15, 7.71 and
10.72 s and its fixed windows over 4-10 s, and a recording spliced with mne.concatenate_raws kept the window
across its ``BAD boundary``, all silently. Real recordings, read through the pipeline's loaders; the
annotations are added here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mne
import numpy as np
import pytest

from eegfm.config import Preprocessing, Windowing
from eegfm.recordings import Recording, read_raw
from eegfm.report_view import input_warnings
from eegfm.windowing.continuous import REJECTED
from eegfm.windows import WindowsError, build_windows
from eegfm.windows_store import open_windows

EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"
RAW_PRE = Preprocessing(l_freq=None, h_freq=None, sfreq=None)  # samples as recorded: comparable with mne.Epochs
EVENT_ID = {"square": "square", "rt": "rt"}
WIN = Windowing(event_id=EVENT_ID, tmin=-0.25, length_s=1.0)  # -32 .. 95 samples at 128 Hz


def _eeglab(real_data: Path, start: float, stop: float) -> mne.io.BaseRaw:
    """A stretch of the real EEGLAB recording, read by the pipeline's own loader."""
    return read_raw(Recording(path=str(real_data / EEGLAB), subject="s")).crop(start, stop, include_tmax=False)


def _bad_movement(real_data: Path) -> mne.io.BaseRaw:
    raw = _eeglab(real_data, 0.0, 40.0)
    raw.annotations.append(5.0, 6.0, "BAD_movement")
    return raw


def _spliced(real_data: Path) -> mne.io.BaseRaw:
    """Two stretches joined by mne.concatenate_raws: 'BAD boundary' and 'EDGE boundary' at 20 s."""
    return mne.concatenate_raws([_eeglab(real_data, 0.0, 20.0), _eeglab(real_data, 30.0, 50.0)])


def _mne_epochs(raw: mne.io.BaseRaw, win: Windowing, reject: bool) -> mne.Epochs:
    events, codes = mne.events_from_annotations(raw, event_id={"square": 1, "rt": 2}, verbose="error")
    sfreq = raw.info["sfreq"]
    return mne.Epochs(raw, events, codes, tmin=win.tmin, tmax=win.tmin + win.length_s - 1 / sfreq, baseline=None,
                      reject_by_annotation=reject, preload=True, verbose="error")


@pytest.mark.parametrize("make", [_bad_movement, _spliced], ids=["BAD_movement", "concatenate_raws"])
def test_event_windows_equal_what_mne_epochs_keeps(real_data, tmp_path, caplog, make):
    raw = make(real_data)
    path = tmp_path / "sub-01_raw.fif"
    raw.save(path, verbose="error")
    rec = Recording(path=str(path), subject="01")
    with caplog.at_level(logging.INFO, logger="eegfm.windowing.continuous"):
        info = build_windows([rec], RAW_PRE, WIN, tmp_path / "w")
    store = open_windows(tmp_path / "w")
    saved = mne.io.read_raw_fif(path, preload=True, verbose="error")
    epochs = _mne_epochs(saved, WIN, reject=True)
    kept_by_mne = epochs.events[:, 0] - saved.first_samp + int(round(WIN.tmin * 128))  # window starts
    assert np.array_equal(np.round(store.meta["onset_s"].to_numpy() * 128).astype(int), kept_by_mne)
    assert list(store.meta["label"]) == [{1: "square", 2: "rt"}[code] for code in epochs.events[:, 2]]
    np.testing.assert_allclose(store.X[:], epochs.get_data(picks=info["ch_names"]), rtol=1e-6, atol=1e-12)
    # the rejection is recorded, logged per recording and shown in the report
    all_events = _mne_epochs(saved, WIN, reject=False)
    n_rejected = len(all_events) - len(epochs)
    assert n_rejected > 0
    (record,) = [d for d in info["dropped_windows"] if d["reason"].startswith(REJECTED)]
    assert record["n"] == n_rejected and record["recording"] == str(path) and record["subject"] == "01"
    assert f"dropped {n_rejected} of " in caplog.text and "overlap rejection annotation(s)" in caplog.text
    assert any("BAD" in line and f"{n_rejected} labelled window(s)" in line for line in input_warnings("d", info))


def test_bad_movement_drops_exactly_the_audited_windows(real_data, tmp_path):
    """Event windows (0 .. 1 s after the event) at 4.70, 5.15, 7.71 and 10.72 s overlap 5-11 s; 3.0 s does not."""
    path = tmp_path / "sub-01_raw.fif"
    _bad_movement(real_data).save(path, verbose="error")
    win = Windowing(event_id=EVENT_ID, length_s=1.0)
    build_windows([Recording(str(path), "01")], RAW_PRE, win, tmp_path / "w")
    onsets = open_windows(tmp_path / "w").meta["onset_s"].to_numpy()
    assert not np.any((onsets > 4.0) & (onsets < 11.0))
    kept = build_windows([Recording(str(path), "01")], RAW_PRE, win.model_copy(update={"reject_by_annotation": False}),
                         tmp_path / "k")
    everything = open_windows(tmp_path / "k").meta["onset_s"].to_numpy()
    assert np.allclose(np.setdiff1d(everything, onsets), [4.703, 5.148, 7.711, 10.719], atol=0.01)
    assert not any(d["reason"].startswith(REJECTED) for d in kept["dropped_windows"])


def test_fixed_windows_lose_only_those_overlapping_the_annotation(real_data, tmp_path):
    """A recording-level label spans the whole recording; BAD over 5-10 s removes the 2-s windows at 4, 6 and 8 s
    only (the one at 10 s touches its end and is kept, as in mne.make_fixed_length_epochs)."""
    raw = _eeglab(real_data, 0.0, 20.0)
    raw.annotations.append(5.0, 5.0, "bad_segment")  # lower case: MNE's rule is case-insensitive
    path = tmp_path / "sub-01_raw.fif"
    raw.save(path, verbose="error")
    other = tmp_path / "sub-02_raw.fif"
    _eeglab(real_data, 20.0, 40.0).save(other, verbose="error")
    recs = [Recording(path=str(path), subject="01", label="patient"), Recording(str(other), "02", label="control")]
    info = build_windows(recs, RAW_PRE, Windowing(mode="fixed", length_s=2.0), tmp_path / "w")
    meta = open_windows(tmp_path / "w").meta
    onsets = list(meta.loc[meta["subject"] == "01", "onset_s"])
    assert onsets == [0.0, 2.0, 10.0, 12.0, 14.0, 16.0, 18.0]
    assert list(meta.loc[meta["subject"] == "02", "onset_s"]) == [float(t) for t in range(0, 20, 2)]
    saved = mne.io.read_raw_fif(path, preload=True, verbose="error")
    epochs = mne.make_fixed_length_epochs(saved, duration=2.0, reject_by_annotation=True, preload=True,
                                          verbose="error")
    assert list((epochs.events[:, 0] - saved.first_samp) / 128) == onsets
    (record,) = info["dropped_windows"]
    assert record["n"] == 3 and record["first_s"] == 4.0 and record["labels"] == ["patient"]
    assert record["reason"] == f"{REJECTED} ['bad_segment'] (windows.reject_by_annotation)"


def test_a_recording_whose_windows_are_all_rejected_says_why(real_data, tmp_path):
    raw = _eeglab(real_data, 0.0, 20.0)
    raw.annotations.append(0.0, 20.0, "BAD_all")
    path = tmp_path / "sub-01_run-2_raw.fif"
    raw.save(path, verbose="error")
    other = tmp_path / "sub-01_run-1_raw.fif"
    _eeglab(real_data, 20.0, 40.0).save(other, verbose="error")
    win = Windowing(event_id=EVENT_ID, length_s=1.0)
    why = f"each of its event windows that fit in the recording {REJECTED} ['BAD_all'] (windows.reject_by_annotation)"
    info = build_windows([Recording(str(other), "01", run="1"), Recording(str(path), "01", run="2")], RAW_PRE, win,
                         tmp_path / "w")
    assert info["empty_recordings"] == [{"recording": str(path), "subject": "01", "reason": why}]
    # a subject left without windows stops the job, naming the rejection
    with pytest.raises(WindowsError, match=r"subject 02: .*sub-01_run-2_raw\.fif \(each of its event .*BAD_all"):
        build_windows([Recording(str(other), "01"), Recording(str(path), "02")], RAW_PRE, win, tmp_path / "x")
