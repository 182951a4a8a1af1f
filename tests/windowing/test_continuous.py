"""Windows cut from a real continuous recording: exact samples, and why a recording gives none."""

from __future__ import annotations

import numpy as np

from eegfm.config import Windowing
from eegfm.recordings import Recording, read_raw
from eegfm.windowing.continuous import AMBIGUOUS_EVENTS, AMBIGUOUS_SPANS, OUTSIDE, Dropped, cut_continuous
from eegfm.windowing.events import Target

EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"


def test_event_windows_are_the_recorded_samples(real_data):
    rec = Recording(path=str(real_data / EDF), subject="s")
    raw = read_raw(rec)
    labelled = [Target(0.0, 1.375, "T0"), Target(1.375, 5.125, "T1"), Target(124.0, 1.0, "T0")]
    X, rows, reason, dropped = cut_continuous(raw, rec, Windowing(tmin=-0.5, length_s=2.0), labelled)
    # the first window would start before the recording and the last end after it: dropped, and recorded
    assert reason is None and [r["onset_s"] for r in rows] == [0.875] and [r["label"] for r in rows] == ["T1"]
    assert dropped == [Dropped(OUTSIDE, 2, 0.0, ["T0"])]
    start = round(0.875 * 128)
    assert np.allclose(X[0], raw.get_data()[:, start : start + 256], atol=1e-7)  # float32
    none = cut_continuous(raw, rec, Windowing(tmin=200.0, length_s=2.0), labelled)
    assert none[2] == "none of its 3 event windows (200 to 202 s around the event) fits in the recording (124 s)"


def test_fixed_windows_need_a_covering_span(real_data):
    rec = Recording(path=str(real_data / EDF), subject="s")
    raw = read_raw(rec)
    X, rows, _, _ = cut_continuous(raw, rec, Windowing(mode="fixed", length_s=2.0), [Target(1.375, 5.125, "T1")])
    assert [r["onset_s"] for r in rows] == [2.0, 4.0] and X.shape == (2, 64, 256)
    reason = cut_continuous(raw, rec, Windowing(mode="fixed", length_s=8.0), [Target(1.375, 5.125, "T1")])[2]
    assert reason == "no window lies fully inside one labelled span (15 of 15 windows unlabelled, 0 ambiguous)"
    short = cut_continuous(raw.crop(0, 1.0), rec, Windowing(mode="fixed", length_s=2.0), [Target(0, 1, "x")])[2]
    assert short.startswith("shorter than one window (1.01 s < windows.length_s 2 s)")


def test_events_of_different_classes_at_one_sample_drop_their_window_with_a_warning(real_data, caplog):
    """Two events of different classes at one sample labelled the window by the first in the file, at INFO."""
    rec = Recording(path=str(real_data / EDF), subject="s")
    raw = read_raw(rec)
    events = [Target(10.0, 0.0, "left"), Target(10.0, 0.0, "right"), Target(20.0, 0.0, "left"),
              Target(20.0, 0.0, "left"), Target(30.0, 0.0, "right")]
    with caplog.at_level("WARNING", logger="eegfm.windowing.continuous"):
        X, rows, reason, dropped = cut_continuous(raw, rec, Windowing(length_s=2.0), events)
    assert [(r["onset_s"], r["label"]) for r in rows] == [(20.0, "left"), (30.0, "right")] and len(X) == 2
    assert "dropped 1 event window(s) whose events of different classes share a sample (first at 10.000 s: " \
           "['left', 'right'])" in caplog.text
    assert dropped == [Dropped(AMBIGUOUS_EVENTS, 1, 10.0, ["left", "right"])]  # for windows.json and the report
    only = cut_continuous(raw, rec, Windowing(length_s=2.0), events[:2])
    assert only.empty_reason == "each of its 1 event windows has events of different classes at one sample"


def test_fixed_windows_that_two_classes_cover_are_dropped_and_recorded(real_data, caplog):
    """Overlapping spans of two classes: the windows both cover were dropped with an INFO line only."""
    rec = Recording(path=str(real_data / EDF), subject="s")
    raw = read_raw(rec)
    spans = [Target(0.0, 10.0, "left"), Target(6.0, 10.0, "right")]
    with caplog.at_level("WARNING", logger="eegfm.windowing.continuous"):
        cut = cut_continuous(raw, rec, Windowing(mode="fixed", length_s=2.0), spans)
    assert [(r["onset_s"], r["label"]) for r in cut.rows] == [(0.0, "left"), (2.0, "left"), (4.0, "left"),
                                                               (10.0, "right"), (12.0, "right"), (14.0, "right")]
    assert cut.dropped == [Dropped(AMBIGUOUS_SPANS, 2, 6.0, ["left", "right"])]
    assert "dropped 2 fixed window(s) that overlapping spans of different classes both cover (first at 6.000 s" \
           in caplog.text
