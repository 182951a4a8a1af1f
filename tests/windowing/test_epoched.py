"""Windows from real epoched files: names, recording-level labels, settings that do not apply."""

from __future__ import annotations

import numpy as np
import pytest

from eegfm.config import Windowing
from eegfm.recordings import Recording, read_recording
from eegfm.windowing import WindowsError
from eegfm.windowing.epoched import check_epoch_settings, cut_epochs, epoch_names

EEGLAB_EPOCHS = "sccn+eeglab/sample_data/eeglab_data_epochs_ica.set"


@pytest.fixture()
def epochs(real_data):
    return read_recording(Recording(path=str(real_data / EEGLAB_EPOCHS), subject="s"))


def test_epoch_names_join_eeglab_event_types(epochs):
    names = epoch_names(epochs)
    assert len(names) == 80 and names.count("square/rt") == 73 and names.count("square/square/rt") == 2


def test_recording_label_takes_every_epoch(epochs):
    rec = Recording(path="e.set", subject="s", label="control")
    onsets = epochs.events[:, 0] / 128
    X, rows, reason = cut_epochs(epochs, rec, Windowing(tmin=0.0, length_s=2.0), onsets)
    assert X.shape == (80, 32, 256) and reason is None
    assert {r["label"] for r in rows} == {"control"}
    assert np.allclose(X, epochs.get_data()[:, :, 128:384])
    only = cut_epochs(epochs, rec, Windowing(tmin=0.0, length_s=2.0, event_id={"square": "x"}), onsets)[1]
    assert len(only) == 5 and {r["label"] for r in only} == {"control"}  # event_id chooses, the label names
    none = cut_epochs(epochs, rec.__class__("e.set", "s"), Windowing(event_id={"rt": "x"}, length_s=1.0), onsets)
    assert len(none[0]) == 0 and "none of its events is listed in windows.event_id ['rt']" in none[2]


def test_continuous_only_settings_are_errors(epochs):
    rec = Recording(path="e.set", subject="s")
    with pytest.raises(WindowsError, match=r"e\.set holds 80 epochs.*stim_channel applies to continuous recordings"):
        check_epoch_settings(epochs, rec, Windowing(stim_channel="Status"))
    check_epoch_settings(epochs, rec, Windowing())


def test_eeglab_epochs_are_placed_where_they_were_recorded(real_data):
    """The audit's case: MNE's events hold an epoch's *first* event, so an epoch of 'square/square/rt' got an
    onset 0.695 s early, and two epochs that shared 2.3 s of signal looked 3 s apart to the time gap.
    EEG.urevent places each epoch's time 0 in the continuous recording: its signal is there, every epoch."""
    import mne

    from eegfm.windowing.epoched import eeglab_epoch_onsets

    epochs = mne.read_epochs_eeglab(real_data / EEGLAB_EPOCHS, verbose="error").pick("eeg")
    onsets = eeglab_epoch_onsets(str(real_data / EEGLAB_EPOCHS), len(epochs))
    assert onsets is not None and np.all(np.diff(onsets) > 0)
    assert onsets[1] - onsets[0] == pytest.approx(89 / 128)  # overlapping epochs, as recorded
    continuous = mne.io.read_raw_eeglab(real_data / "sccn+eeglab/sample_data/eeglab_data.set", preload=True,
                                        verbose="error").pick(epochs.ch_names).get_data()
    X = epochs.get_data()
    for i, onset in enumerate(onsets):
        start = round((onset + epochs.tmin) * 128)
        a, b = X[i], continuous[:, start:start + X.shape[2]]
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.9999, i
    assert not np.allclose(onsets, epochs.events[:, 0] / 128)  # what MNE's events say is not it


def test_an_eeglab_file_without_original_events_has_no_onsets(tmp_path):
    from eegfm.windowing.epoched import eeglab_epoch_onsets

    (tmp_path / "x.set").write_bytes(b"not a MATLAB file")
    assert eeglab_epoch_onsets(str(tmp_path / "x.set"), 3) is None


def test_an_epoch_name_spelled_otherwise_than_event_id_stops_the_job(epochs):
    """As for continuous recordings: an epoched file writing 'Square/RT' for event_id's 'square/rt' would lose
    those 73 epochs without a word."""
    rec = Recording(path="e.set", subject="s")
    onsets = epochs.events[:, 0] / 128
    win = Windowing(tmin=0.0, length_s=1.0, event_id={"Square/RT": "rt", "square": "sq"})
    with pytest.raises(WindowsError, match=r"e\.set \(subject s\): holds events 'square/rt' \(73x\) for "
                                           r"windows\.event_id's 'Square/RT'"):
        cut_epochs(epochs, rec, win, onsets)
    rows = cut_epochs(epochs, rec, Windowing(tmin=0.0, length_s=1.0, event_id={"square/rt": "rt"}), onsets)[1]
    assert len(rows) == 73
