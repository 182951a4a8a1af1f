"""What Experiment.run accepts: each argument normalised, or a message naming it, the rows at fault and the fix."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from eegfm.api_inputs import (
    as_table,
    check_design,
    checked_channels,
    checked_positions,
    checked_sfreq,
    checked_signal,
    epochs_positions,
    metadata_rows,
)
from eegfm.windowing.positions import template_positions


def _meta(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"subject": [f"s{i // 2}" for i in range(n)], "label": ["a", "b"] * (n // 2)})


@pytest.mark.parametrize("make", [
    lambda X: X.astype(np.float64), lambda X: np.asfortranarray(X), lambda X: X.tolist(),
    lambda X: __import__("torch").from_numpy(X).requires_grad_(),  # torch refused .numpy() on it
])
def test_any_array_like_x_becomes_the_same_c_ordered_float32_volts(make):
    X = np.random.default_rng(0).normal(scale=1e-5, size=(3, 2, 8)).astype(np.float32)
    out = checked_signal(make(X), "V")
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, X)
    in_uv = checked_signal((X.astype(np.float64) * 1e6).round().astype(np.int16), "uV")
    np.testing.assert_allclose(in_uv, X, atol=1e-6)


def test_bad_x_is_named_with_the_windows_and_channels_at_fault():
    X = np.zeros((4, 3, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=r"got shape \(3, 8\).*X\[None\]"):
        checked_signal(X[0], "V")
    with pytest.raises(ValueError, match=r"shape \(0, 3, 8\): no windows"):
        checked_signal(X[:0], "V")
    with pytest.raises(ValueError, match=r"shape \(4, 3, 1\): one sample per window"):  # was 'every channel is flat'
        checked_signal(X[:, :, :1], "V")
    with pytest.raises(ValueError, match="X's windows differ in shape .*cut every window to the same"):
        checked_signal([np.zeros((2, 5)), np.zeros((2, 6))], "V")
    with pytest.raises(ValueError, match="real numbers; got dtype <U1"):
        checked_signal(np.full((1, 1, 2), "a"), "V")
    bad = X.copy()
    bad[2, 1, 4] = np.nan
    bad[3, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"in 2 window\(s\) \(windows 2, 3; channels at positions 1\)"):
        checked_signal(bad, "V")
    with pytest.raises(ValueError, match="beyond float32"):  # finite in float64, infinite as float32
        checked_signal(np.full((1, 1, 2), 1e300), "V")


def test_channel_names_must_be_unique_strings_one_per_channel():
    assert checked_channels(np.array(["C3", "C4"]), 2) == ["C3", "C4"]
    with pytest.raises(ValueError, match=r"ch_names repeats 'Fz' at \[0, 2\]"):  # the backbone named its aliases
        checked_channels(["Fz", "Cz", "FZ"], 3)
    with pytest.raises(ValueError, match="a list of channel names.*got str 'C3 C4'"):
        checked_channels("C3 C4", 2)
    with pytest.raises(ValueError, match="non-empty strings; got 1 at 1"):
        checked_channels(["C3", 1], 2)
    with pytest.raises(ValueError, match="X has 3 channels but ch_names names 2; give one name per channel, in X's "
                                         "order$"):
        checked_channels(["C3", "C4"], 3)
    with pytest.raises(ValueError, match=r"X has 200 channels .*looks like \(windows, samples, channels\): pass "
                                         r"X.transpose\(0, 2, 1\)"):
        checked_channels(["C3", "C4"], 200, 2)


@pytest.mark.parametrize("sfreq", [0, -200.0, float("nan"), "200", True, None])
def test_sfreq_must_be_a_positive_number(sfreq):
    with pytest.raises(ValueError, match="sfreq must be the sampling rate in Hz"):
        checked_sfreq(sfreq)
    assert checked_sfreq(np.int64(250)) == 250.0


def test_ids_become_strings_and_empty_ones_are_missing():
    meta = pd.DataFrame({"subject": pd.Categorical(["a", "a", "b", "b"]), "label": [0, 1, 0, 1],
                         "run": [1.0, 2.0, 1.0, np.nan]})  # a float column because of the NaN: run 1, not '1.0'
    rows = metadata_rows(meta, 4, 2.0, "d")
    assert rows["subject"].tolist() == ["a", "a", "b", "b"] and rows["label"].tolist() == ["0", "1", "0", "1"]
    assert rows["run"].tolist() == ["1", "2", "1", None]
    assert rows["recording"].tolist() == ["d:a//1", "d:a//2", "d:b//1", "d:b//"]
    assert rows["onset_s"].tolist() == [0.0, 0.0, 0.0, 0.0]
    for column, value in (("subject", " "), ("label", ""), ("subject", None)):
        bad = _meta().astype(object)
        bad.loc[2, column] = value
        with pytest.raises(ValueError, match=rf"1 window\(s\) without a {column} \(rows 2\)"):
            metadata_rows(bad, 4, 1.0, "d")
    records = as_table(_meta().to_records(index=False))  # a NumPy record array failed on `in`
    assert metadata_rows(records, 4, 1.0, "d")["subject"].tolist() == ["s0", "s0", "s1", "s1"]


def test_a_column_that_looks_like_a_known_one_is_named_not_ignored(caplog):
    """'sesion' or 'onset' were ignored: every window of a subject became one recording, onsets row order."""
    with pytest.raises(ValueError, match=r"column 'sesion' looks like 'session'.*rename\(columns=\{'sesion': "
                                         r"'session'\}\)"):
        metadata_rows(_meta().assign(sesion="1"), 4, 1.0, "d")
    with pytest.raises(ValueError, match="column 'onset' looks like 'onset_s'"):
        metadata_rows(_meta().assign(onset=0.0), 4, 1.0, "d")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['subject'\].*column 'Subject' looks like 'subject'"):
        metadata_rows(_meta().rename(columns={"subject": "Subject"}), 4, 1.0, "d")
    with caplog.at_level(logging.INFO, logger="eegfm.api_inputs"):
        metadata_rows(_meta().assign(age=30, trial=1), 4, 1.0, "d")  # other columns: read by nobody, logged
    assert "['age', 'trial'] are not read" in caplog.text


def test_a_reordered_metadata_index_is_refused_rows_match_x_by_position():
    """meta.sample(frac=1) or sort_values with X left as it was decoded mislabelled windows (chance level)."""
    meta = _meta()
    with pytest.raises(ValueError, match=r"index is out of order.*reset_index\(drop=True\).*sort_index\(\)"):
        metadata_rows(meta.iloc[[1, 0, 2, 3]], 4, 1.0, "d")
    kept = metadata_rows(_meta(8).iloc[[0, 2, 5, 7]], 4, 1.0, "d")  # a filtered table, in order
    assert kept["label"].tolist() == ["a", "a", "b", "b"]
    per_subject = pd.concat([_meta(2).assign(subject="s0"), _meta(2).assign(subject="s1")])  # index 0, 1, 0, 1
    assert metadata_rows(per_subject, 4, 1.0, "d")["subject"].tolist() == ["s0", "s0", "s1", "s1"]


def test_onsets_must_be_finite_numbers_and_unused_label_categories_are_warned(caplog):
    with pytest.raises(ValueError, match=r"onset_s: 1 value\(s\) are not finite numbers \(rows 1, e.g. 'x'\)"):
        metadata_rows(_meta().assign(onset_s=["0", "x", "1", "2"]), 4, 1.0, "d")
    with pytest.raises(ValueError, match=r"onset_s: 4 value\(s\)"):
        metadata_rows(_meta().assign(onset_s=np.nan), 4, 1.0, "d")
    as_time = _meta().assign(onset_s=pd.to_timedelta([0, 2, 0, 2], unit="s"))  # were read as nanoseconds
    assert metadata_rows(as_time, 4, 1.0, "d")["onset_s"].tolist() == [0.0, 2.0, 0.0, 2.0]
    labels = pd.Categorical(["a", "b", "a", "b"], categories=["a", "b", "rest"])
    with caplog.at_level(logging.WARNING, logger="eegfm.api_inputs"):
        metadata_rows(_meta().assign(label=labels), 4, 1.0, "d")
    assert "label categories ['rest'] have no window and are not decoded" in caplog.text


def test_fractional_labels_of_a_classification_point_to_a_regression_target():
    """QA: a continuous label left as a classification failed in scikit-learn ('n_splits=2 cannot be greater than
    the number of members in each class'), naming neither the label nor the target."""
    scores = _meta().assign(label=[0.5, 3.25, 7.0, 1.5])
    with pytest.raises(ValueError, match=r"label holds fractional numbers \(4 distinct values among 4 windows\).*"
                                         "target: 'regression'"):
        metadata_rows(scores, 4, 1.0, "d")
    assert metadata_rows(scores, 4, 1.0, "d", target="regression")["label"].tolist() == ["0.5", "3.25", "7.0", "1.5"]
    assert metadata_rows(_meta().assign(label=[1.0, 2.0, 1.0, 2.0]), 4, 1.0, "d")["label"].tolist() == [
        "1.0", "2.0", "1.0", "2.0"]  # whole numbers are classes


def test_positions_are_three_finite_metres_for_channels_of_x():
    """QA: positions with two coordinates, NaN, millimetres or channels X does not have were all taken as given."""
    names = ["C3", "C4"]
    assert checked_positions({"C3": (0.05, 0.0, 0.07)}, names) == {"C3": [0.05, 0.0, 0.07]}
    assert checked_positions(None, names) is None
    with pytest.raises(ValueError, match=r"positions names channel\(s\) \['Cz'\] that ch_names does not"):
        checked_positions({"Cz": [0, 0, 0.09]}, names)
    with pytest.raises(ValueError, match=r"positions\['C3'\] is \[0.0, 0.1\]; give three finite numbers"):
        checked_positions({"C3": [0.0, 0.1]}, names)
    with pytest.raises(ValueError, match="give three finite numbers"):
        checked_positions({"C3": [np.nan, 0.0, 0.1]}, names)
    with pytest.raises(ValueError, match="lies 90 from the origin; positions are in metres"):
        checked_positions({"C4": [0.0, 0.0, 90.0]}, names)


def test_a_design_holding_out_sessions_or_runs_names_the_missing_metadata_column():
    """QA: without a session column, cross_session said every subject 'has only one session'."""
    rows = metadata_rows(_meta(), 4, 1.0, "d")
    with pytest.raises(ValueError, match="holds out sessions .* metadata has no column 'session'"):
        check_design(rows, "cross_session", "session")
    rows = metadata_rows(_meta().assign(run=["1", "2", None, "2"]), 4, 1.0, "d")
    with pytest.raises(ValueError, match=r"holds out runs .* no value in 1 row\(s\) \(2\) 'run'"):
        check_design(rows, "group_kfold", "run")
    check_design(rows, "loso", "subject")


def test_ids_that_differ_only_in_case_or_spaces_are_named():
    """QA: 'S1' and 's1 ' were two subjects (one person on both sides of a LOSO fold), 'left' and 'Left' two
    classes."""
    with pytest.raises(ValueError, match=r"metadata subject: 's1' and 's1 ' differ only in case, spaces or leading zeros"):
        metadata_rows(_meta().assign(subject=["s0", "s0", "s1", "s1 "]), 4, 1.0, "d")
    with pytest.raises(ValueError, match=r"metadata label: 'Left' and 'left' differ only"):
        metadata_rows(_meta().assign(label=["left", "right", "Left", "right"]), 4, 1.0, "d")


def test_two_windows_of_one_recording_at_one_onset_point_to_missing_run_or_session_columns():
    """QA: two runs given without a run column became one recording whose windows interleaved by onset (the
    within_subject blocks and gaps mixed the runs)."""
    two_runs = _meta(8).assign(subject="s0", onset_s=[0.0, 1.0, 2.0, 3.0] * 2)
    with pytest.raises(ValueError, match=r"8 windows share a recording and an onset_s .*recording 'd:s0//' at 0 s.*"
                                         "Give the session and run columns"):
        metadata_rows(two_runs, 8, 1.0, "d")
    rows = metadata_rows(two_runs.assign(run=["1"] * 4 + ["2"] * 4), 8, 1.0, "d")
    assert rows["recording"].nunique() == 2


def test_mne_epochs_are_windows_and_a_raw_recording_is_named():
    import mne

    info = mne.create_info(["C3", "C4"], 100.0, "eeg")
    data = np.random.default_rng(0).normal(scale=1e-5, size=(3, 2, 50))
    epochs = mne.EpochsArray(data, info, verbose="error")
    np.testing.assert_allclose(checked_signal(epochs, "V"), data.astype(np.float32))
    with pytest.raises(ValueError, match="EpochsArray, whose data are volts; leave units='V'"):
        checked_signal(epochs, "uV")
    with pytest.raises(ValueError, match=r"X is RawArray, not windows; cut a recording into windows first"):
        checked_signal(mne.io.RawArray(data[0], info, verbose="error"), "V")


def test_mne_epochs_bring_their_own_positions_and_must_match_sfreq_and_ch_names():
    """Epochs' digitised positions were replaced by the 10-05 template without a word."""
    import mne

    info = mne.create_info(["C3", "C4", "X1"], 100.0, "eeg")
    own = {"C3": [-0.05, 0.01, 0.08], "C4": [0.05, 0.01, 0.08]}
    info.set_montage(mne.channels.make_dig_montage(ch_pos={k: np.array(v) for k, v in own.items()},
                                                   coord_frame="head"), on_missing="ignore")
    epochs = mne.EpochsArray(np.zeros((2, 3, 50)), info, verbose="error")
    found = epochs_positions(epochs, 100.0, ["C3", "C4", "X1"], None)
    assert set(found) == {"C3", "C4"} and np.allclose([found["C3"], found["C4"]], [own["C3"], own["C4"]])
    given = {"C3": [0.0, 0.0, 0.09]}
    assert epochs_positions(epochs, 100.0, epochs.ch_names, given) is given  # given positions win
    bare = mne.EpochsArray(np.zeros((2, 2, 50)), mne.create_info(["C3", "C4"], 100.0, "eeg"), verbose="error")
    assert epochs_positions(bare, 100.0, ["C3", "C4"], None) == template_positions(["C3", "C4"])  # no dig: template
    with pytest.raises(ValueError, match=r"sfreq=200 but the epochs are sampled at 100 Hz"):
        epochs_positions(epochs, 200.0, epochs.ch_names, None)
    with pytest.raises(ValueError, match=r"not the epochs' channels .*pass ch_names=epochs.ch_names"):
        epochs_positions(epochs, 100.0, ["C4", "C3", "X1"], None)
    with pytest.raises(ValueError, match=r"sfreq=250 but the epochs are sampled at 100 Hz"):
        epochs_positions(epochs, np.float32(250.0), epochs.ch_names, None)  # NumPy numbers are numbers
    assert epochs_positions(epochs, 100.0, None, None) is not None  # a missing ch_names: checked_channels names it
    assert epochs_positions(np.zeros((2, 3, 50)), 100.0, ["a", "b", "c"], None) is None  # arrays: unchanged


def test_epochs_get_the_positions_the_windows_job_stores_for_the_same_recording(real_data, tmp_path):
    """The API's embeddings are the workflow's only if both give a recording the same positions (its own here:
    EEGLAB's sample file carries digitised locations)."""
    import mne

    from eegfm.config import Preprocessing, Windowing
    from eegfm.recordings import Recording, read_raw
    from eegfm.windows import build_windows

    rec = Recording(path=str(real_data / "sccn+eeglab/sample_data/eeglab_data.set"), subject="s")
    win = Windowing(mode="events", length_s=0.5, event_id={"square": "square", "rt": "rt"})
    info = build_windows([rec], Preprocessing(), win, tmp_path / "w")
    stored = info["positions"]
    epochs = mne.make_fixed_length_epochs(read_raw(rec), duration=2.0, preload=True, verbose="error")
    epochs = epochs.pick([name for name in epochs.ch_names if name in stored])  # the channels the job kept
    given = epochs_positions(epochs, epochs.info["sfreq"], epochs.ch_names, None)
    assert set(given) == set(stored) and all(np.allclose(given[c], stored[c]) for c in stored)
    assert given != template_positions(epochs.ch_names)  # the file's own, not the template's


def test_labels_alone_are_named_as_not_a_table():
    """QA: run(X, y) (as in other libraries) said the metadata 'lacks column(s) ['subject', 'label']'."""
    for y in (np.array(["a", "b"]), pd.Series(["a", "b"], name="label"), ["a", "b"]):
        with pytest.raises(ValueError, match=r"metadata is one column .*pd.DataFrame\(\{'subject': subjects, 'label'"):
            as_table(y)
    assert list(as_table([{"subject": "s", "label": "a"}]).columns) == ["subject", "label"]  # records are a table


def test_a_recording_shared_by_subjects_is_named():
    """QA: recording 'run1' for every subject made one recording of two people (their windows were checked and
    gapped as one signal)."""
    with pytest.raises(ValueError, match="recording 'run1' holds windows of subjects s0, s1; a recording belongs to "
                                         "one subject"):
        metadata_rows(_meta().assign(recording="run1"), 4, 1.0, "d")
