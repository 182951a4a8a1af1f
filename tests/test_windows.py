"""Preprocessing and windowing into the windows store, on synthetic and real recordings."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from eegfm.config import Dataset, Preprocessing, SyntheticSource, Windowing
from eegfm.recordings import Recording, find_recordings, read_raw
from eegfm.synthetic import CHANNELS, write_synthetic_bids
from eegfm.windows import WindowsError, build_windows
from eegfm.windows_store import open_windows

EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"
EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"
CLASSES = {"left_hand", "right_hand", "feet"}
TRIALS = 4
PRE = Preprocessing()  # 0.5-45 Hz, 200 Hz


@pytest.fixture(scope="module")
def recs(tmp_path_factory) -> list[Recording]:
    cfg = SyntheticSource(n_subjects=3, n_source_subjects=2, trials_per_class=TRIALS)
    root = write_synthetic_bids(tmp_path_factory.mktemp("syn") / "bids", cfg)
    return find_recordings(Dataset(), synthetic_root=root)


@pytest.fixture(scope="module")
def events_store(recs, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("w") / "events"
    return build_windows(recs, PRE, Windowing(), out), out


def _variant(recs: list[Recording], tmp_path: Path, name: str, edit) -> Recording:
    """A FIF copy of the first synthetic recording, changed by ``edit(raw)``."""
    raw = read_raw(recs[0])
    raw = edit(raw) or raw
    path = tmp_path / f"{name}_raw.fif"
    raw.save(path, verbose="error")
    return Recording(path=str(path), subject="99")


def _assert_nothing_published(out: Path) -> None:
    assert not (out / "windows.json").exists() and not (out / "windows.zarr").exists()
    assert not list(out.parent.glob(f"{out.name}/.tmp-*"))


# ----------------------------------------------------------------------------- synthetic: shape, labels, keys


def test_events_mode_shape_labels_onsets(events_store, recs):
    info, out = events_store
    store = open_windows(out)
    n = 3 * len(CLASSES) * TRIALS
    assert store.X.shape == (n, 19, 800) and info["n_times"] == 800 and info["sfreq"] == 200.0
    assert info["ch_names"] == list(CHANNELS)
    assert info["class_counts"] == {c: 3 * TRIALS for c in sorted(CLASSES)}
    assert info["subjects"] == ["01", "02", "03"]
    assert set(info["positions"]) == set(CHANNELS)
    assert 0.05 < np.linalg.norm(info["positions"]["Cz"]) < 0.2  # metres, head frame
    assert info["settings"]["preprocessing"] == PRE.model_dump()
    meta = store.meta
    assert list(meta["window_id"]) == list(range(n))
    for rec in recs:  # onsets are the annotation onsets, in recording order
        rows = meta[meta["recording"] == rec.path]
        ann = read_raw(rec).annotations
        assert list(rows["subject"]) == [rec.subject] * len(ann)
        assert np.allclose(rows["onset_s"], ann.onset, atol=1 / 200)
        assert list(rows["label"]) == list(ann.description)
    X = store.X[:]
    assert np.isfinite(X).all() and 1e-6 < X.std() < 1e-4  # volts


def test_key_is_stable_label_free_and_signal_dependent(events_store, recs, tmp_path):
    info, _ = events_store
    again = build_windows(recs, PRE, Windowing(), tmp_path / "again")
    assert again["key"] == info["key"]
    renamed = build_windows(
        recs, PRE, Windowing(event_id={"left_hand": "L", "right_hand": "R", "feet": "F"}), tmp_path / "renamed"
    )
    assert renamed["key"] == info["key"] and renamed["classes"] == ["F", "L", "R"]
    assert set(open_windows(tmp_path / "renamed").meta["label"]) == {"F", "L", "R"}
    highpassed = build_windows(recs, PRE.model_copy(update={"l_freq": 1.0}), Windowing(), tmp_path / "hp")
    assert highpassed["key"] != info["key"]


def test_event_subset_tmin_and_exact_length(recs, tmp_path):
    win = Windowing(event_id={"left_hand": "left", "right_hand": "right"}, tmin=-0.0025, length_s=0.999)
    info = build_windows(recs[:2], PRE, win, tmp_path / "w")
    assert info["n_times"] == round(0.999 * 200) == 200  # tmin*sfreq = -0.5 samples: no off-by-one
    assert info["class_counts"] == {"left": 2 * TRIALS, "right": 2 * TRIALS}
    meta = open_windows(tmp_path / "w").meta
    ann = read_raw(recs[0]).annotations
    starts = [o for o, d in zip(ann.onset, ann.description) if d != "feet"]
    assert np.allclose(meta["onset_s"][: len(starts)], np.array(starts) - 0.0025, atol=1 / 200)


def test_fixed_mode_labels_from_covering_annotation(recs, tmp_path):
    info = build_windows(recs, PRE, Windowing(mode="fixed", length_s=2.0, stride_s=0.5), tmp_path / "fixed")
    store = open_windows(tmp_path / "fixed")
    assert store.X.shape[1:] == (19, 400) and set(info["classes"]) == CLASSES
    onsets = store.meta["onset_s"].to_numpy()
    assert np.allclose(np.round(onsets / 0.5) * 0.5, onsets)  # on the 0.5 s stride grid
    for rec in recs[:1]:
        ann = read_raw(rec).annotations
        rows = store.meta[store.meta["recording"] == rec.path]
        for onset, label in zip(rows["onset_s"], rows["label"]):
            inside = [d for o, d in zip(ann.onset, ann.description) if o - 1e-3 <= onset and onset + 2 <= o + 4 + 1e-3]
            assert inside == [label]
        # a 4 s trial holds 5 windows of 2 s at a 0.5 s stride (4 when it starts off-grid)
        assert 4 * len(ann) <= len(rows) <= 5 * len(ann)


def test_channels_case_insensitive_reference_and_resample(recs, tmp_path):
    pre = Preprocessing(channels=["c3", "CZ", "c4"], reference=["Pz"], sfreq=100.0, h_freq=40.0)
    info = build_windows(recs[:2], pre, Windowing(), tmp_path / "w")
    assert info["ch_names"] == ["c3", "CZ", "c4"] and info["sfreq"] == 100.0 and info["n_times"] == 400
    assert set(info["positions"]) == {"c3", "CZ", "c4"}
    pre = Preprocessing(channels=["C3", "Cz", "C4", "Pz"], reference="average")
    avg = build_windows(recs[:2], pre, Windowing(), tmp_path / "avg")
    X = open_windows(tmp_path / "avg").X[:]
    assert avg["n_channels"] == 4 and np.abs(X.mean(axis=1)).max() < 1e-9


def test_rates_may_differ_when_resampling(recs, tmp_path):
    slow = _variant(recs, tmp_path, "slow", lambda raw: raw.resample(128.0, verbose="error"))
    info = build_windows([recs[0], slow], PRE, Windowing(), tmp_path / "w")
    assert info["sfreq"] == 200.0 and info["n_windows"] == 2 * len(CLASSES) * TRIALS


# ----------------------------------------------------------------------------- real recordings


def test_real_eeglab_square_rt(real_data, tmp_path):
    rec = Recording(path=str(real_data / EEGLAB), subject="eeglab")
    info = build_windows([rec], Preprocessing(sfreq=None), Windowing(tmin=-0.2, length_s=1.0), tmp_path / "w")
    assert info["class_counts"] == {"rt": 74, "square": 80}
    assert info["n_times"] == 128 and info["n_channels"] == 32
    assert info["positions"] is not None and "Cz" in info["positions"]  # from the .set's own montage


def test_real_edf_t0_t1_t2(real_data, tmp_path):
    rec = Recording(path=str(real_data / EDF), subject="S001")
    info = build_windows([rec], Preprocessing(sfreq=160.0, reference="average"), Windowing(), tmp_path / "w")
    assert set(info["classes"]) == {"T0", "T1", "T2"} and info["n_times"] == 640
    assert info["n_channels"] == 64
    meta = pd.read_csv(tmp_path / "w" / "windows.tsv", sep="\t", dtype=str)
    assert set(meta["recording"]) == {rec.path}


# ----------------------------------------------------------------------------- bad inputs


def test_missing_channel(recs, tmp_path):
    with pytest.raises(WindowsError, match=r"lists channel\(s\) \['Oz'\].*EEG channels are \['Fp1'") as err:
        build_windows(recs, Preprocessing(channels=["C3", "Oz"]), Windowing(), tmp_path / "w")
    assert recs[0].path in str(err.value)
    _assert_nothing_published(tmp_path / "w")


def test_nan_names_file_and_subject(recs, tmp_path):
    def poison(raw):
        data = raw.get_data()
        data[3, 1000:1010] = np.nan
        return mne.io.RawArray(data, raw.info, verbose=False).set_annotations(raw.annotations)

    bad = _variant(recs, tmp_path, "nan", poison)
    with pytest.raises(WindowsError, match=r"nan_raw\.fif \(subject 99\): NaN or Inf.*\['F3'\].*interpolate or drop"):
        build_windows([recs[0], bad], PRE, Windowing(), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


def test_sfreq_mismatch_without_resampling(recs, tmp_path):
    slow = _variant(recs, tmp_path, "slow", lambda raw: raw.resample(128.0, verbose="error"))
    message = r"slow_raw\.fif is sampled at 128 Hz but .* at 250 Hz.*preprocessing\.sfreq"
    with pytest.raises(WindowsError, match=message):
        build_windows([recs[0], slow], Preprocessing(sfreq=None), Windowing(), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


def test_channel_set_mismatch(recs, tmp_path):
    fewer = _variant(recs, tmp_path, "fewer", lambda raw: raw.drop_channels(["O1", "O2"]))
    message = r"fewer_raw\.fif has different EEG channels .*missing \['O1', 'O2'\].*preprocessing\.channels"
    with pytest.raises(WindowsError, match=message):
        build_windows([recs[0], fewer], PRE, Windowing(), tmp_path / "w")


def test_no_requested_events(recs, tmp_path):
    message = r"none of the requested events \['rest'\].*annotations are \['feet', 'left_hand', 'right_hand'\]"
    with pytest.raises(WindowsError, match=message) as err:
        build_windows(recs, PRE, Windowing(event_id={"rest": "rest"}), tmp_path / "w")
    assert recs[0].path in str(err.value)


def test_fewer_than_two_classes(recs, tmp_path):
    with pytest.raises(WindowsError, match=r"1 class\(es\)"):
        build_windows(recs[:1], PRE, Windowing(event_id={"feet": "feet"}), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


def test_no_eeg_channels(tmp_path):
    raw = mne.io.RawArray(np.zeros((2, 1000)), mne.create_info(["a", "b"], 100.0, "misc"), verbose=False)
    raw.save(tmp_path / "misc_raw.fif", verbose="error")
    with pytest.raises(WindowsError, match=r"misc_raw\.fif: no EEG channels \(channel types: \['misc'\]\)"):
        build_windows([Recording(str(tmp_path / "misc_raw.fif"), "1")], PRE, Windowing(), tmp_path / "w")


def test_band_above_nyquist(real_data, tmp_path):
    rec = Recording(path=str(real_data / EEGLAB), subject="eeglab")
    with pytest.raises(WindowsError, match=r"eeglab_data\.set: cannot band-pass .* at 128 Hz"):
        build_windows([rec], Preprocessing(sfreq=None, h_freq=70.0), Windowing(), tmp_path / "w")


def test_failed_build_keeps_a_previous_store(recs, tmp_path):
    out = tmp_path / "w"
    first = build_windows(recs[:1], PRE, Windowing(), out)
    with pytest.raises(WindowsError):
        build_windows(recs, Preprocessing(channels=["nope"]), Windowing(), out)
    assert open_windows(out).key == first["key"]
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
