"""Channel types from files, names and overrides, on every real recording."""

from __future__ import annotations

import mne
import pytest

from eegfm.config import Preprocessing
from eegfm.recordings import Recording, read_recording
from eegfm.windowing import WindowsError
from eegfm.windowing.channel_types import infer_type, select_channel_types

REAL_NON_EEG = [
    ("sccn+eeglab/sample_data/eeglab_data.set", {"eog": ["EOG1", "EOG2"]}),  # typed EEG in the file
    ("sccn+eeglab/sample_data/eeglab_data_epochs_ica.set", {"eog": ["EOG1", "EOG2"]}),  # typed EOG in the file
    ("sccn+eeglab/sample_data/test_data/test.edf", {}),  # 'EEG Fp1' ... 'EEG T3'
    ("sccn+eeglab/sample_data/test_data/test.bdf", {"stim": ["Status"]}),
    ("mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf", {}),  # 'Fc5.' ... 'Iz..'
    ("mne-tools+mne-testing-data/EDF/test_reduced.edf", {"misc": ["Ergo-Left", "Ergo-Right"], "stim": ["Status"]}),
    (
        "mne-tools+mne-testing-data/BDF/multiple_annotation_chans.bdf",
        {"emg": ["EMG"], "eog": ["EOG"], "stim": ["Trigger"], "ecg": ["ECG"], "misc": ["acc1", "acc2", "acc3"]},
    ),
    ("mne-tools+mne-testing-data/BDF/test_bdf_stim_channel.bdf", {"stim": ["Status"]}),
    ("mne-tools+mne-testing-data/Brainvision/test_NO.vhdr", {"emg": ["EMGright", "EMGleft"]}),
    ("mne-tools+mne-testing-data/NihonKohden/MB0400FU.EEG", {"bio": ["X1"], "misc": ["$A2", "$A1"]}),
    ("mne-tools+mne-testing-data/eximia/test_eximia.nxe", {"stim": ["GateIn", "Trig1", "Trig2"], "eog": ["EOG"]}),
]


@pytest.mark.parametrize(("name", "dropped"), REAL_NON_EEG, ids=[n.rsplit("/", 1)[-1] for n, _ in REAL_NON_EEG])
def test_only_eeg_is_kept_on_real_files(real_data, name, dropped):
    """Issue 11, finding 5: EOG, EMG, ECG, accelerometer and misc channels entered every backbone as EEG."""
    inst = read_recording(Recording(path=str(real_data / name), subject="s"))
    n_channels = len(inst.ch_names)
    selection = select_channel_types(inst, Recording(path=name, subject="s"), Preprocessing())
    assert selection.dropped == dropped
    assert set(inst.get_channel_types()) == {"eeg"}
    assert len(inst.ch_names) == n_channels - sum(map(len, dropped.values()))


def test_no_standard_electrode_name_is_taken_for_another_type():
    for montage in mne.channels.get_builtin_montages():  # 10-20/10-05, BioSemi, EGI (E1..E256), EasyCap...
        names = mne.channels.make_standard_montage(montage).ch_names
        assert [n for n in names if infer_type(n)] == [], montage
    for name in ("EEG Fp1", "EEG T3-REF", "Fc5.", "A1", "M2", "Cz", "E"):
        assert infer_type(name) is None, name


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("EOG1", "eog"), ("VEOG", "eog"), ("EEG LOC-A2", "eog"), ("EMGright", "emg"), ("EMG Chin", "emg"),
        ("ECG", "ecg"), ("EKG II", "ecg"), ("Resp Thorax", "resp"), ("STI 014", "stim"), ("Status", "stim"),
        ("acc1", "misc"), ("Ergo-Left", "misc"), ("SpO2", "misc"), ("GSR", "gsr"), ("Temp", "temperature"),
    ],
)  # fmt: skip
def test_names_imply_types(name, kind):
    assert infer_type(name) == kind


def test_overrides_and_kept_types(real_data):
    rec = Recording(path=str(real_data / "mne-tools+mne-testing-data/BDF/multiple_annotation_chans.bdf"), subject="s")
    inst = read_recording(rec)
    pre = Preprocessing(keep_types=["eeg", "ecg"], channel_types={"ecg": "ecg", "a1": "misc", "EMG": "eeg"})
    selection = select_channel_types(inst, rec, pre)
    assert selection.overridden == {"ecg", "a1", "emg"}
    assert "EMG" in inst.ch_names and "ECG" in inst.ch_names and "A1" not in inst.ch_names
    assert selection.dropped == {"eog": ["EOG"], "misc": ["A1", "acc1", "acc2", "acc3"], "stim": ["Trigger"]}


def test_nothing_kept_names_the_types(real_data):
    rec = Recording(path=str(real_data / "mne-tools+mne-testing-data/BDF/test_bdf_stim_channel.bdf"), subject="s")
    pre = Preprocessing(channel_types={"C3": "misc", "C4": "misc", "Cz": "misc"})
    with pytest.raises(
        WindowsError, match=r"test_bdf_stim_channel\.bdf: no EEG channels \(channel types: \['misc', 'stim'\]\)"
    ):
        select_channel_types(read_recording(rec), rec, pre)
