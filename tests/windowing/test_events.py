"""Events and labels: annotations, trigger codes, marker spans and recording-level labels, on real files."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from eegfm.config import Windowing
from eegfm.recordings import Recording, read_raw
from eegfm.windowing import WindowsError
from eegfm.windowing.events import Marker, Target, class_map, read_markers, stim_channels, targets

EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"
BDF_STIM = "mne-tools+mne-testing-data/BDF/test_bdf_stim_channel.bdf"
EXIMIA = "mne-tools+mne-testing-data/eximia/test_eximia.nxe"
EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"


def _read(real_data, name: str) -> tuple[mne.io.BaseRaw, Recording]:
    rec = Recording(path=str(real_data / name), subject="s")
    return read_raw(rec), rec


def test_annotations_are_markers_from_the_first_sample(real_data):
    raw, rec = _read(real_data, EDF)
    raw.crop(10.0, None)  # first_samp > 0: onsets count from the data's first sample
    markers = read_markers(raw, rec, Windowing())
    ann = raw.annotations
    assert [m.name for m in markers] == list(ann.description)
    assert np.allclose([m.onset_s for m in markers], ann.onset - raw.first_time)
    assert np.allclose([m.duration_s for m in markers], ann.duration)


@pytest.mark.parametrize("meas_date", [True, False])
def test_markers_of_a_cropped_fif_match_mne_events(real_data, tmp_path, meas_date):
    """Without a measurement date, onsets still count from the first sample kept (they were 10 s late)."""
    raw, _ = _read(real_data, EDF)
    if not meas_date:
        raw.set_meas_date(None)
    raw.crop(10.0, None).save(tmp_path / "cropped_raw.fif", verbose="error")
    rec = Recording(path=str(tmp_path / "cropped_raw.fif"), subject="s")
    raw = read_raw(rec)
    assert (raw.annotations.orig_time is None) is not meas_date and raw.first_samp > 0
    events, codes = mne.events_from_annotations(raw, verbose="error")
    markers = read_markers(raw, rec, Windowing())
    names = {v: k for k, v in codes.items()}
    assert [m.name for m in markers] == [names[code] for code in events[:, 2]]
    sfreq = raw.info["sfreq"]  # MNE's events are whole samples
    assert np.allclose([m.onset_s for m in markers], (events[:, 0] - raw.first_samp) / sfreq, atol=1 / sfreq)


def test_trigger_codes_are_markers(real_data):
    raw, rec = _read(real_data, BDF_STIM)
    markers = read_markers(raw, rec, Windowing(stim_channel="STATUS"))  # case-insensitive
    events = mne.find_events(raw, stim_channel="Status", verbose="error")
    assert [m.name for m in markers] == [str(c) for c in events[:, 2]] == ["4", "2"] + ["1"] * 7
    assert np.allclose([m.onset_s for m in markers], events[:, 0] / 500) and {m.duration_s for m in markers} == {0.0}


def test_trigger_channel_errors(real_data):
    raw, rec = _read(real_data, BDF_STIM)
    with pytest.raises(
        WindowsError, match=r"stim_channel 'STI 014' is not a channel .*trigger channels are \['Status'\]"
    ):
        read_markers(raw, rec, Windowing(stim_channel="STI 014"))
    raw, rec = _read(real_data, EXIMIA)
    assert stim_channels(raw) == ["GateIn", "Trig1", "Trig2"]
    with pytest.raises(WindowsError, match=r"trigger channel 'GateIn' holds no events"):
        read_markers(raw, rec, Windowing(stim_channel="GateIn"))


def test_class_map_ignores_rejection_annotations():
    present = {"T0", "T1", "BAD_muscle", "edge boundary"}
    assert class_map(present, Windowing()) == {"T0": "T0", "T1": "T1"}
    assert class_map(present, Windowing(event_id={"T1": "left", "T7": "right"})) == {"T1": "left"}


MARKERS = [Marker(2.0, 0.0, "a"), Marker(5.0, 0.0, "noise"), Marker(9.0, 0.0, "b"), Marker(12.0, 3.0, "a")]
EVENT_ID = {"a": "A", "b": "B"}


def test_marker_spans_next_and_seconds():
    rec = Recording(path="r.edf", subject="s")
    nxt = targets(MARKERS, rec, Windowing(mode="fixed", event_id=EVENT_ID, marker_span="next"), end_s=20.0)
    # 'noise' is not listed, so it does not end a span; a marker with a duration keeps it
    assert nxt == [Target(2.0, 7.0, "A"), Target(9.0, 3.0, "B"), Target(12.0, 3.0, "A")]
    fixed = targets(MARKERS, rec, Windowing(mode="fixed", event_id=EVENT_ID, marker_span=1.5), end_s=20.0)
    assert fixed == [Target(2.0, 1.5, "A"), Target(9.0, 1.5, "B"), Target(12.0, 3.0, "A")]
    with pytest.raises(WindowsError, match=r"r\.edf \(subject s\): .*\['a', 'b'\] are markers without a duration"):
        targets(MARKERS, rec, Windowing(mode="fixed", event_id=EVENT_ID), end_s=20.0)
    events = targets(MARKERS, rec, Windowing(event_id=EVENT_ID), end_s=20.0)  # events mode: markers as they are
    assert [t.label for t in events] == ["A", "B", "A"]


def test_markers_of_one_label_in_a_row_make_one_span():
    """The audit's case: a trigger '1' repeated every 1.3 s; a window across a repeat lay in no single span and
    was lost, though the signal on both sides was class 'one'."""
    rec = Recording(path="r.edf", subject="s")
    repeated = [Marker(1.0, 0.0, "a"), Marker(3.0, 0.0, "a"), Marker(4.5, 0.0, "a"), Marker(6.0, 0.0, "b")]
    nxt = targets(repeated, rec, Windowing(mode="fixed", event_id=EVENT_ID, marker_span="next"), end_s=8.0)
    assert nxt == [Target(1.0, 5.0, "A"), Target(6.0, 2.0, "B")]
    fixed = targets(repeated, rec, Windowing(mode="fixed", event_id=EVENT_ID, marker_span=1.5), end_s=8.0)
    assert fixed == [Target(1.0, 1.5, "A"), Target(3.0, 3.0, "A"), Target(6.0, 1.5, "B")]  # 1.0+1.5 < 3.0: apart


def test_repeated_trigger_codes_keep_the_windows_between_them(real_data, tmp_path):
    """test_bdf_stim_channel.bdf: code 2 at 0.62 s, then code 1 seven times from 1.904 s to the end (10 s)."""
    from eegfm.config import Preprocessing
    from eegfm.windows import build_windows

    win = Windowing(mode="fixed", length_s=0.5, stim_channel="Status", event_id={"2": "two", "1": "one"},
                    marker_span="next")
    info = build_windows([Recording(str(real_data / BDF_STIM), "s")], Preprocessing(l_freq=None, h_freq=None,
                                                                                     sfreq=None), win, tmp_path / "w")
    assert info["class_counts"] == {"one": 16, "two": 1}  # 2.0 .. 10.0 s in 0.5 s windows; 1.0-1.5 s


def test_recording_label_replaces_event_labels():
    rec = Recording(path="r.edf", subject="s", label="patient")
    assert targets(MARKERS, rec, Windowing(mode="fixed"), end_s=20.0) == [Target(0.0, 20.0, "patient")]
    within = targets(MARKERS, rec, Windowing(event_id={"a": "x"}), end_s=20.0)
    assert within == [Target(2.0, 0.0, "patient"), Target(12.0, 3.0, "patient")]


def _spelled(real_data, tmp_path, name: str, spelling: str, crop: tuple[float, float]) -> Recording:
    """A FIF stretch of the real EEGLAB recording whose 'rt' events are written ``spelling``."""
    raw = read_raw(Recording(path=str(real_data / EEGLAB), subject="s")).crop(*crop)
    ann = raw.annotations
    raw.set_annotations(mne.Annotations(ann.onset - raw.first_time, ann.duration,
                                        [spelling if d == "rt" else d for d in ann.description]))
    raw.save(tmp_path / f"{name}_raw.fif", verbose="error")
    return Recording(path=str(tmp_path / f"{name}_raw.fif"), subject=name.split("-")[1])


def test_an_event_id_name_spelled_otherwise_stops_the_job(real_data, tmp_path):
    """The audit's case: sub-03 wrote 'RT' for 'rt'; its reaction-time trials were silently ignored and the run
    went on with only its 'square' windows."""
    from eegfm.config import Preprocessing
    from eegfm.windows import build_windows
    from eegfm.windows_store import open_windows

    recs = [_spelled(real_data, tmp_path, "sub-01", "rt", (0, 30)), _spelled(real_data, tmp_path, "sub-03", "RT",
                                                                            (30, 60))]
    n_rt = sum(d == "RT" for d in read_raw(recs[1]).annotations.description)
    pre = Preprocessing(l_freq=None, h_freq=None, sfreq=None)
    message = (rf"sub-03_raw\.fif \(subject 03\): holds events 'RT' \({n_rt}x\) for windows\.event_id's 'rt', "
               r"the same name spelled otherwise; .* Add the spelling to windows\.event_id \(\{'rt': 'rt', 'RT': 'rt'\}\)")
    with pytest.raises(WindowsError, match=message):
        build_windows(recs, pre, Windowing(event_id={"rt": "rt", "square": "square"}, length_s=1.0), tmp_path / "w")
    fixed = build_windows(recs, pre, Windowing(event_id={"rt": "rt", "RT": "rt", "square": "square"}, length_s=1.0),
                          tmp_path / "f")
    meta = open_windows(tmp_path / "f").meta
    assert set(meta.loc[meta["subject"] == "03", "label"]) == {"rt", "square"} and fixed["n_windows"] == len(meta)


def test_spellings_ignore_case_and_spaces_but_not_other_names():
    rec = Recording(path="r.edf", subject="s")
    win = Windowing(event_id={"left hand": "L", "right": "R"})
    spaced = [Marker(1.0, 0.0, "left hand"), Marker(2.0, 0.0, " Left  Hand"), Marker(3.0, 0.0, "right")]
    with pytest.raises(WindowsError, match=r"' Left  Hand' \(1x\) for windows\.event_id's 'left hand'"):
        targets(spaced, rec, win, end_s=10.0)
    others = [Marker(1.0, 0.0, "left hand"), Marker(2.0, 0.0, "right2"), Marker(3.0, 0.0, "BAD_right")]
    assert [t.label for t in targets(others, rec, win, end_s=10.0)] == ["L"]
    assert len(targets(spaced, rec, Windowing(), end_s=10.0)) == 3  # without event_id every name is a class
