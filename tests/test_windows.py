"""Preprocessing and windowing into the windows store, on synthetic and real recordings."""

from __future__ import annotations

import re
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


def test_dropped_event_windows_are_recorded_in_windows_json(events_store, recs, tmp_path):
    """Two classes at one event sample: the window was dropped with a log line only, nowhere in the store."""
    assert events_store[0]["dropped_windows"] == []

    def add_conflict(raw):
        first = raw.annotations[0]
        other = sorted(CLASSES - {first["description"]})[0]
        ann = raw.annotations
        raw.set_annotations(ann + mne.Annotations([first["onset"]], [0.0], [other], orig_time=ann.orig_time))

    rec = _variant(recs, tmp_path, "conflict", add_conflict)
    info = build_windows([rec, *recs[1:]], PRE, Windowing(), tmp_path / "w")
    (item,) = info["dropped_windows"]
    assert item["recording"] == rec.path and item["subject"] == "99" and item["n"] == 1
    assert item["reason"] == "events of different classes at one sample"
    assert len(item["labels"]) == 2 and item["first_s"] == pytest.approx(read_raw(recs[0]).annotations[0]["onset"])
    assert sum(info["class_counts"].values()) == 3 * len(CLASSES) * TRIALS - 1


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
    assert info["n_times"] == 128 and info["n_channels"] == 30  # EOG1/EOG2 are typed EEG in the file
    assert info["channels_dropped"] == {"eog": ["EOG1", "EOG2"]}
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
    message = r"event_id names \['rest'\], which occur in no recording.*\{'feet': 12, 'left_hand': 12, 'right_hand': 12"
    with pytest.raises(WindowsError, match=message):
        build_windows(recs, PRE, Windowing(event_id={"rest": "rest"}), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


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


# ----------------------------------------------------------------------------- study inputs on real files (issue 11)

EEGLAB_EPOCHS = "sccn+eeglab/sample_data/eeglab_data_epochs_ica.set"
BDF_STIM = "mne-tools+mne-testing-data/BDF/test_bdf_stim_channel.bdf"
BDF_MARKERS = "mne-tools+mne-testing-data/BDF/multiple_annotation_chans.bdf"
EXIMIA = "mne-tools+mne-testing-data/eximia/test_eximia.nxe"
RAW_PRE = Preprocessing(l_freq=None, h_freq=None, sfreq=None)  # samples as recorded: windows comparable across paths


def _real_fif(src: Path, dst: Path, edit=None, crop: tuple[float, float] | None = None) -> Path:
    """A FIF copy of a real recording, cropped and/or changed by ``edit(raw)``."""
    raw = mne.io.read_raw(src, preload=True, verbose="error")
    if crop is not None:
        raw.crop(*crop)
    raw = (edit(raw) if edit else None) or raw
    raw.save(dst, verbose="error", overwrite=True)
    return dst


def test_epoched_eeglab_gives_one_window_per_epoch(real_data, tmp_path):
    rec = Recording(path=str(real_data / EEGLAB_EPOCHS), subject="s")
    win = Windowing(tmin=-0.2, length_s=1.0, event_id={"square/rt": "hit", "square": "miss"})
    info = build_windows([rec], RAW_PRE, win, tmp_path / "w")
    assert info["class_counts"] == {"hit": 73, "miss": 5}  # 'square/square/rt' is not listed
    assert info["n_times"] == 128 and info["n_channels"] == 30 and info["channels_dropped"] == {"eog": ["EOG1", "EOG2"]}
    assert info["label_source"] == "epochs' event names"
    epochs = mne.read_epochs_eeglab(real_data / EEGLAB_EPOCHS, verbose="error").pick("eeg")
    names = {code: name for name, code in epochs.event_id.items()}
    chosen = [i for i, code in enumerate(epochs.events[:, 2]) if names[code] != "square/square/rt"]
    store = open_windows(tmp_path / "w")
    first = round(0.8 * 128)  # tmin -0.2 s in epochs starting at -1 s
    assert np.allclose(store.X[:], epochs.get_data()[chosen, :, first : first + 128], atol=1e-9)
    # onset_s is where the window lies in the continuous recording the epochs were cut from (EEG.urevent): its
    # signal there is the window's, up to each epoch's baseline (MNE's events hold an epoch's first event, 0.695 s
    # early for epoch 1, where the correlation is about 0)
    continuous = mne.io.read_raw_eeglab(real_data / "sccn+eeglab/sample_data/eeglab_data.set", preload=True,
                                        verbose="error").pick(epochs.ch_names).get_data()
    for row, window in zip(store.meta.itertuples(), store.X[:]):
        start = round(row.onset_s * 128)
        there = continuous[:, start:start + 128]
        np.testing.assert_allclose(window - window.mean(1, keepdims=True), there - there.mean(1, keepdims=True),
                                   rtol=1e-4, atol=1e-9)


def test_epochs_fif_matches_the_continuous_recording(real_data, tmp_path):
    raw = mne.io.read_raw(real_data / EDF, preload=True, verbose="error")
    events, event_id = mne.events_from_annotations(raw, event_id={"T1": 2, "T2": 3}, verbose="error")
    epochs = mne.Epochs(raw, events, event_id, tmin=-1.0, tmax=4.0, baseline=None, preload=True, verbose="error")
    epochs.save(tmp_path / "S001R04-epo.fif", verbose="error")
    win = Windowing(event_id={"T1": "left", "T2": "right"}, tmin=0.5, length_s=2.0)
    from_epochs = build_windows([Recording(str(tmp_path / "S001R04-epo.fif"), "S001")], RAW_PRE, win, tmp_path / "e")
    from_raw = build_windows([Recording(str(real_data / EDF), "S001")], RAW_PRE, win, tmp_path / "r")
    assert from_epochs["class_counts"] == from_raw["class_counts"] == {"left": 10, "right": 9}
    assert from_epochs["key"] == from_raw["key"]  # the same samples, byte for byte
    epo, cont = open_windows(tmp_path / "e").meta, open_windows(tmp_path / "r").meta
    assert list(epo["label"]) == list(cont["label"]) and np.allclose(epo["onset_s"], cont["onset_s"])


def test_epoched_window_must_fit_the_epochs(real_data, tmp_path):
    rec = Recording(path=str(real_data / EEGLAB_EPOCHS), subject="s")
    message = r"eeglab_data_epochs_ica\.set \(subject s\): the window 1\.5 to 2\.5 s .* epochs, which span -1 to 2 s"
    with pytest.raises(WindowsError, match=message):
        build_windows([rec], RAW_PRE, Windowing(tmin=1.5, length_s=1.0), tmp_path / "w")
    with pytest.raises(WindowsError, match=r"holds 80 epochs: it gives one window per epoch, so it needs windows"):
        build_windows([rec], RAW_PRE, Windowing(mode="fixed", length_s=1.0), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


def test_trigger_channel_events(real_data, tmp_path):
    rec = Recording(path=str(real_data / BDF_STIM), subject="s")
    win = Windowing(stim_channel="status", event_id={"1": "one", "2": "two", "4": "four"}, length_s=0.4)
    info = build_windows([rec], RAW_PRE, win, tmp_path / "w")
    assert info["class_counts"] == {"four": 1, "one": 7, "two": 1}
    assert info["label_source"] == "trigger channel 'status'" and info["channels_dropped"] == {"stim": ["Status"]}
    assert info["ch_names"] == ["C3", "C4", "Cz"]
    raw = mne.io.read_raw(real_data / BDF_STIM, verbose="error")
    events = mne.find_events(raw, stim_channel="Status", verbose="error")
    assert np.allclose(open_windows(tmp_path / "w").meta["onset_s"], events[:, 0] / 500)


@pytest.mark.parametrize(("name", "channels"), [(BDF_STIM, "['Status']"), (EXIMIA, "['GateIn', 'Trig1', 'Trig2']")])
def test_trigger_channels_without_the_key_are_named(real_data, tmp_path, name, channels):
    rec = Recording(path=str(real_data / name), subject="s")
    message = rf"no annotations, but trigger channel\(s\) {re.escape(channels)}; set windows\.stim_channel"
    with pytest.raises(WindowsError, match=message):
        build_windows([rec], RAW_PRE, Windowing(length_s=0.5), tmp_path / "w")


def test_fixed_windows_between_zero_duration_markers(real_data, tmp_path):
    rec = Recording(path=str(real_data / BDF_MARKERS), subject="s")
    event_id = {"EEG-check#1": "check", "Ligths-Off#1": "lights_off"}  # markers at 22.488 s and 194.792 s
    message = r"\['EEG-check#1', 'Ligths-Off#1'\] are markers without a duration.*marker_span"
    with pytest.raises(WindowsError, match=message):
        build_windows([rec], RAW_PRE, Windowing(mode="fixed", event_id=event_id), tmp_path / "w")
    win = Windowing(mode="fixed", event_id=event_id, marker_span="next")
    to_next = build_windows([rec], RAW_PRE, win, tmp_path / "n")
    meta = open_windows(tmp_path / "n").meta
    end = mne.io.read_raw(real_data / BDF_MARKERS, verbose="error").times[-1] + 1 / 125
    for label, start, stop in (("check", 22.488, 194.792), ("lights_off", 194.792, end)):
        onsets = meta.loc[meta["label"] == label, "onset_s"]
        expected = np.arange(np.ceil(start / 4) * 4, stop - 4 + 1e-9, 4.0)  # the 4 s grid inside the span
        assert np.allclose(onsets, expected), label
    assert to_next["class_counts"] == {"check": 42, "lights_off": 12}
    ten = build_windows([rec], RAW_PRE, Windowing(mode="fixed", event_id=event_id, marker_span=10.0), tmp_path / "t")
    assert list(open_windows(tmp_path / "t").meta["onset_s"]) == [24.0, 28.0, 196.0, 200.0]
    assert ten["class_counts"] == {"check": 2, "lights_off": 2}


def test_recording_level_labels_from_the_metadata_table(real_data, tmp_path):
    crop = _real_fif(real_data / EDF, tmp_path / "S002_raw.fif", crop=(0, 60))
    table = tmp_path / "recordings.tsv"
    table.write_text(f"path\tsubject\tlabel\n{real_data / EDF}\tS001\tpatient\n{crop.name}\tS002\tcontrol\n")
    dataset = Dataset(source="files", files={"metadata": str(table), "label_column": "label"})
    info = build_windows(find_recordings(dataset), RAW_PRE, Windowing(mode="fixed", length_s=4.0), tmp_path / "w")
    assert info["class_counts"] == {"control": 15, "patient": 31}  # whole recordings: 60 s and 124 s
    assert info["label_source"] == "files.metadata column 'label'"
    meta = open_windows(tmp_path / "w").meta
    assert set(zip(meta["subject"], meta["label"])) == {("S001", "patient"), ("S002", "control")}
    # events mode: the events say where, the table says what
    win = Windowing(event_id={"T1": "left", "T2": "right"}, length_s=4.0)
    events = build_windows(find_recordings(dataset), RAW_PRE, win, tmp_path / "e")
    assert events["class_counts"] == {"control": 9, "patient": 19}


def test_non_eeg_channels_are_dropped_and_recorded(real_data, tmp_path):
    rec = Recording(path=str(real_data / BDF_MARKERS), subject="s")
    win = Windowing(mode="fixed", event_id={"EEG-check#1": "a", "Ligths-Off#1": "b"}, marker_span="next")
    info = build_windows([rec], RAW_PRE, win, tmp_path / "w")
    assert info["ch_names"] == ["A1", "A2", "C3", "C4", "F3", "Fz", "F4", "P3", "Pz", "P4", "O1", "O2"]
    assert info["channels_dropped"] == {
        "emg": ["EMG"], "eog": ["EOG"], "stim": ["Trigger"], "ecg": ["ECG"], "misc": ["acc1", "acc2", "acc3"]
    }  # fmt: skip
    pre = RAW_PRE.model_copy(update={"keep_types": ["eeg", "eog"], "channel_types": {"a1": "misc", "A2": "misc"}})
    kept = build_windows([rec], pre, win, tmp_path / "k")
    assert "EOG" in kept["ch_names"] and not {"A1", "A2"} & set(kept["ch_names"])
    assert kept["channels_dropped"]["misc"] == ["A1", "A2", "acc1", "acc2", "acc3"]
    typo = RAW_PRE.model_copy(update={"channel_types": {"EOG2": "eog"}})
    with pytest.raises(WindowsError, match=r"channel_types names channel\(s\) \['EOG2'\] that no recording has"):
        build_windows([rec], typo, win, tmp_path / "x")


@pytest.mark.parametrize(
    "event_id",
    [{"T0": "rest", "T1": "left", "T7": "right"}, {"T1": "left", "T7": "right"}],
    ids=["3-classes", "2-classes"],
)
def test_event_id_name_found_in_no_recording(real_data, tmp_path, event_id):
    """Issue 11, finding 6: event_id {T0, T1, T7} on a file of T0/T1/T2 silently ran two classes, naming T7 nowhere."""
    rec = Recording(path=str(real_data / EDF), subject="S001")
    message = r"windows\.event_id names \['T7'\], which occur in no recording.*\{'T0': 19, 'T1': 10, 'T2': 9\}"
    with pytest.raises(WindowsError, match=message):
        build_windows([rec], RAW_PRE, Windowing(event_id=event_id), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


@pytest.mark.parametrize(("target", "labels", "what"), [
    ("classification", ("rest", "left", "right"), r"class\(es\)"),
    ("regression", ("0", "0.5", "2.0"), r"target value\(s\)")])
def test_listed_class_without_any_window_stops_the_job(real_data, tmp_path, target, labels, what):
    """QA of issue 11: T0 lasts 1.375 s, so no 2-s fixed window lies inside one and its class (or target value)
    silently vanished: a two-class (two-value) benchmark run for a three-class event_id."""
    rec = Recording(path=str(real_data / EDF), subject="S001")
    win = Windowing(mode="fixed", event_id=dict(zip(("T0", "T1", "T2"), labels)), length_s=2.0, stride_s=1.0)
    message = (rf"asks for {what} \{{'{labels[0]}': \['T0'\]\}}.*these events \{{'T0': 19\}}.*shorter than "
               rf"windows\.length_s \(2 s\).*2 {what} \['{labels[1]}', '{labels[2]}'\] instead of 3")
    with pytest.raises(WindowsError, match=message):
        build_windows([rec], RAW_PRE, win, tmp_path / "w", target=target)
    _assert_nothing_published(tmp_path / "w")


def test_subject_without_windows_stops_the_job(real_data, tmp_path):
    """Issue 11, finding 7: a recording shorter than one window silently dropped its subject."""
    short = _real_fif(real_data / EDF, tmp_path / "S002_raw.fif", crop=(0, 3 - 1 / 128))
    recs = [Recording(str(real_data / EDF), "S001"), Recording(str(short), "S002")]
    message = r"S002_raw\.fif \(shorter than one window \(3 s < windows\.length_s 4 s\)\).*remove them from the dataset"
    with pytest.raises(WindowsError, match=r"1 cross-validation group\(s\) \(by subject\).*subject S002: .*" + message):
        build_windows(recs, RAW_PRE, Windowing(mode="fixed", length_s=4.0), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")


def test_empty_run_is_recorded_or_stops_run_wise_cv(real_data, tmp_path):
    """Issue 11, finding 7: an empty run failed later at the probe ("not fold 3") instead of being named."""
    short = _real_fif(real_data / EDF, tmp_path / "short_raw.fif", crop=(0, 3 - 1 / 128))
    other = _real_fif(real_data / EDF, tmp_path / "other_raw.fif", crop=(0, 60))
    recs = [
        Recording(str(real_data / EDF), "S1", run="1"),
        Recording(str(short), "S1", run="2"),
        Recording(str(other), "S2", run="1"),
    ]
    win = Windowing(mode="fixed", length_s=4.0)
    info = build_windows(recs, RAW_PRE, win, tmp_path / "w")
    assert info["empty_recordings"] == [
        {"recording": str(short), "subject": "S1", "reason": "shorter than one window (3 s < windows.length_s 4 s)"}
    ]
    with pytest.raises(WindowsError, match=r"\(by subject/session/run\).*subject S1, session \(none\), run 2: .*short"):
        build_windows(recs, RAW_PRE, win, tmp_path / "r", group_by=("subject", "session", "run"))


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (1e6, r"above 10000 µV .* wrong units \(values in microvolts read as volts"),
        (1e-6, r"below 0\.1 µV .* wrong units"),
    ],
)
def test_implausible_amplitude_stops_the_job(real_data, tmp_path, scale, message):
    scaled = _real_fif(
        real_data / EEGLAB, tmp_path / "scaled_raw.fif", edit=lambda raw: raw.apply_function(lambda x: x * scale)
    )
    recs = [Recording(str(scaled), "s")]
    with pytest.raises(WindowsError, match=r"scaled_raw\.fif \(subject s\): the median peak-to-peak .*" + message):
        build_windows(recs, PRE, Windowing(), tmp_path / "w")
    _assert_nothing_published(tmp_path / "w")
    warned = build_windows(recs, PRE.model_copy(update={"signal_check": "warn"}), Windowing(), tmp_path / "w")
    (found,) = warned["sanity"]["recordings"]
    assert [p["kind"] for p in found["problems"]] == ["amplitude_high" if scale > 1 else "amplitude_low"]


def test_flat_channel_and_flat_recording_stop_the_job(real_data, tmp_path):
    def zero(picks):
        return lambda raw: raw.apply_function(lambda x: x * 0.0, picks=picks)

    dead = _real_fif(real_data / EEGLAB, tmp_path / "dead_raw.fif", edit=zero(["Fz"]))
    average = PRE.model_copy(update={"reference": "average"})  # the gate looks before re-referencing
    with pytest.raises(WindowsError, match=r"dead_raw\.fif \(subject s\): flat channel\(s\) \['Fz'\].*dead or"):
        build_windows([Recording(str(dead), "s")], average, Windowing(), tmp_path / "w")
    flat = _real_fif(real_data / EEGLAB, tmp_path / "flat_raw.fif", edit=zero(None))
    with pytest.raises(WindowsError, match=r"flat_raw\.fif \(subject s\): every channel is flat"):
        build_windows([Recording(str(flat), "s")], PRE, Windowing(), tmp_path / "w")
