"""Signal gates on a real recording: plausible as recorded, caught when scaled, zeroed or flat."""

from __future__ import annotations

import logging

import mne
import numpy as np
import pytest

from eegfm.config import Preprocessing
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError
from eegfm.windowing.signal_checks import channel_amplitudes, check_finite, check_signal

EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"
REC = Recording(path="eeglab_data.set", subject="s")


@pytest.fixture()
def raw(real_data) -> mne.io.BaseRaw:
    """The real EEGLAB recording's EEG, band-passed as the pipeline does before the gates."""
    raw = mne.io.read_raw(real_data / EEGLAB, preload=True, verbose="error").pick(["eeg"])
    raw.drop_channels(["EOG1", "EOG2"])
    return raw.filter(0.5, 45.0, verbose="error")


def test_real_recording_passes(raw):
    found = check_signal(raw, REC, Preprocessing(), segment_s=4.0)
    assert found["problems"] == [] and 5 < found["median_ptp_uv"] < 500


def test_amplitudes_are_median_segment_peak_to_peak(raw):
    amplitudes = channel_amplitudes(raw, 4.0)
    x = raw.get_data(picks=[0])[0]
    n = 4 * 128
    k = len(x) // n
    assert np.isclose(amplitudes[0], np.median(np.ptp(x[: k * n].reshape(k, n), axis=1)))
    epochs = mne.make_fixed_length_epochs(raw, duration=2.0, preload=True, verbose="error")
    per_epoch = channel_amplitudes(epochs, 4.0)  # epochs are their own segments
    assert np.isclose(per_epoch[0], np.median(np.ptp(epochs.get_data(picks=[0])[:, 0], axis=1)))


@pytest.mark.parametrize(("scale", "kind"), [(1e6, "amplitude_high"), (1e-6, "amplitude_low")])
def test_scaled_recording_is_caught(raw, scale, kind, caplog):
    """Issue 11, finding 8: amplitudes x1e6 (693 V of "EEG") were scored as if nothing were wrong."""
    raw.apply_function(lambda x: x * scale)
    with pytest.raises(WindowsError, match=r"eeglab_data\.set \(subject s\): the median peak-to-peak .*wrong units"):
        check_signal(raw, REC, Preprocessing(), segment_s=4.0)
    with caplog.at_level(logging.WARNING):
        found = check_signal(raw, REC, Preprocessing(signal_check="warn"), segment_s=4.0)
    assert [p["kind"] for p in found["problems"]] == [kind] and "wrong units" in caplog.text
    wide = Preprocessing(amplitude_range_uv=(1e-6, 1e12))  # a real amplitude outside the usual range
    assert check_signal(raw, REC, wide, segment_s=4.0)["problems"] == []


def test_dead_channel_and_flat_recording(raw):
    """Issue 11, finding 8: a completely flat recording was scored as if nothing were wrong."""
    raw.apply_function(lambda x: x * 0.0, picks=["Cz"])
    raw.apply_function(lambda x: x * 1e-3, picks=["Pz"])  # shorted to the reference: a thousandth of its signal
    with pytest.raises(WindowsError, match=r"flat channel\(s\) \['Cz', 'Pz'\] .*\{Cz: misc\}"):
        check_signal(raw, REC, Preprocessing(), segment_s=4.0)
    found = check_signal(raw, REC, Preprocessing(signal_check="warn"), segment_s=4.0)
    assert found["problems"][0]["channels"] == ["Cz", "Pz"]
    most = raw.ch_names[:20]  # most channels dead: the median is zero, the absolute floor still finds them
    raw.apply_function(lambda x: x * 0.0, picks=most)
    found = check_signal(raw, REC, Preprocessing(signal_check="warn"), segment_s=4.0)
    assert found["problems"][-1]["channels"] == sorted(set(most) | {"Cz", "Pz"}, key=raw.ch_names.index)
    raw.apply_function(lambda x: x * 0.0 + 3e-3)  # a constant DC level on every channel, band-passed to nothing
    raw.filter(0.5, None, verbose="error")
    with pytest.raises(WindowsError, match=r"every channel is flat .*amplifier off or disconnected"):
        check_signal(raw, REC, Preprocessing(), segment_s=4.0)


def test_nan_names_channels(raw):
    raw.apply_function(lambda x: np.where(np.arange(len(x)) == 100, np.nan, x), picks=[3])
    with pytest.raises(WindowsError, match=rf"NaN or Inf samples in channel\(s\) \['{raw.ch_names[3]}'\]"):
        check_finite(raw, REC)
