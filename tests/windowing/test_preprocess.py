"""Preprocessing of a real epoched file, and messages that point at channel types."""

from __future__ import annotations

import logging

import mne
import numpy as np
import pytest

from eegfm.config import Preprocessing
from eegfm.recordings import Recording, read_recording
from eegfm.windowing import WindowsError
from eegfm.windowing.preprocess import preprocess

EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"
EEGLAB_EPOCHS = "sccn+eeglab/sample_data/eeglab_data_epochs_ica.set"


def test_epochs_are_preprocessed_like_recordings(real_data, caplog):
    rec = Recording(path=str(real_data / EEGLAB_EPOCHS), subject="s")
    with caplog.at_level(logging.WARNING):
        done = preprocess(read_recording(rec), rec, Preprocessing(reference="average"), {}, segment_s=1.0)
    epochs = done.inst
    assert isinstance(epochs, mne.BaseEpochs) and epochs.info["sfreq"] == 200.0 and len(epochs.times) == 600
    assert len(epochs.ch_names) == 30 and done.channels.dropped == {"eog": ["EOG1", "EOG2"]}
    assert np.abs(epochs.get_data().mean(axis=1)).max() < 1e-9  # average reference
    assert "filter is 6.6 s long but the epochs only 3 s" in caplog.text and "edge effects" in caplog.text
    assert done.signal["problems"] == []


def test_missing_channel_that_was_typed_away(real_data):
    rec = Recording(path=str(real_data / EEGLAB), subject="s")
    message = r"lists channel\(s\) \['EOG1'\] .*\{'eog': \['EOG1'\]\} are there but typed as other channels"
    with pytest.raises(WindowsError, match=message):
        preprocess(read_recording(rec), rec, Preprocessing(channels=["Cz", "EOG1"]), {}, segment_s=4.0)
    kept = preprocess(
        read_recording(rec), rec, Preprocessing(channels=["Cz", "EOG1"], keep_types=["eeg", "eog"]), {}, 4.0
    )
    assert kept.inst.ch_names == ["Cz", "EOG1"]
