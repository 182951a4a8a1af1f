"""Regression targets at windowing: numbers checked (recording-level before any file is read, event-derived
after windowing), kept as raw strings in windows.tsv, the kind and a summary recorded in windows.json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import mne
import numpy as np
import pytest

from eegfm.config import Dataset, Preprocessing, Windowing
from eegfm.recordings import Recording, find_recordings
from eegfm.windowing.regression_targets import (
    as_number,
    check_recording_targets,
    check_target_varies,
    check_window_targets,
    checked_window_targets,
    target_summary,
)
from eegfm.windows import WindowsError, build_windows
from eegfm.windows_store import open_windows

EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"  # 124 s, 64 ch, T0/T1/T2
RAW_PRE = Preprocessing(l_freq=None, h_freq=None, sfreq=None)


@pytest.fixture(scope="module")
def crops(real_data, tmp_path_factory) -> Path:
    """Three 30 s crops of the real motor EDF, as three subjects' FIF files."""
    folder = tmp_path_factory.mktemp("crops")
    raw = mne.io.read_raw(real_data / EDF, preload=True, verbose="error")
    for i in range(3):
        raw.copy().crop(30.0 * i, 30.0 * (i + 1), include_tmax=False).save(folder / f"S{i}_raw.fif", verbose="error")
    return folder


def _table(folder: Path, ages: list[str]) -> Path:
    rows = ["path\tsubject\tage"] + [f"S{i}_raw.fif\tS{i}\t{age}" for i, age in enumerate(ages)]
    table = folder / f"ages-{abs(hash(tuple(ages)))}.tsv"
    table.write_text("\n".join(rows) + "\n")
    return table


def _recordings(table: Path) -> list[Recording]:
    return find_recordings(Dataset(source="files", files={"metadata": str(table), "label_column": "age"}))


def test_numeric_recording_level_targets_are_kept_raw_and_summarised(crops, tmp_path):
    recs = _recordings(_table(crops, ["34", "61.5", "8"]))
    info = build_windows(recs, RAW_PRE, Windowing(mode="fixed", length_s=5.0), tmp_path / "w",
                         target="regression", dataset="ages")
    assert info["target"] == "regression"
    assert info["target_summary"] == {"n_windows": 18, "n_distinct": 3, "min": 8.0, "max": 61.5,
                                      "mean": pytest.approx((34 + 61.5 + 8) / 3),
                                      "std": pytest.approx(np.std([34, 61.5, 8] * 6, ddof=1)),
                                      "median": 34.0}
    meta = open_windows(tmp_path / "w").meta
    assert sorted(set(meta["label"].astype(str))) == ["34", "61.5", "8"]  # the table cells, as written


def test_classification_stores_record_their_kind(crops, tmp_path):
    recs = _recordings(_table(crops, ["34", "61.5", "8"]))
    info = build_windows(recs, RAW_PRE, Windowing(mode="fixed", length_s=5.0), tmp_path / "w")
    assert info["target"] == "classification" and "target_summary" not in info


def test_a_recording_level_value_that_is_no_number_stops_before_any_file_is_read(crops, tmp_path):
    table = _table(crops, ["34", "about 60", "n/a"])  # 'n/a' is a missing value: find_recordings refuses it
    with pytest.raises(Exception, match="no value in the label column 'age'"):
        _recordings(table)
    recs = _recordings(_table(crops, ["34", "about 60", "inf"]))
    recs[1] = Recording(path=str(tmp_path / "missing.fif"), subject=recs[1].subject, label=recs[1].label,
                        label_source=recs[1].label_source)  # reading it would fail with another error
    expected = (r"dataset 'ages' has target: regression, but 2 recording\(s\) have a value in files.metadata column "
                r"'age' that is not a finite number: .*missing.fif \(subject S1\): 'about 60'; .*S2_raw.fif "
                r"\(subject S2\): 'inf'")
    with pytest.raises(WindowsError, match=expected):
        build_windows(recs, RAW_PRE, Windowing(mode="fixed", length_s=5.0), tmp_path / "w", target="regression",
                      dataset="ages")
    assert not (tmp_path / "w" / "windows.json").exists()


def test_event_values_must_be_numbers(real_data, tmp_path):
    rec = Recording(path=str(real_data / EDF), subject="s")
    numeric = Windowing(event_id={"T1": "0.5", "T2": "2"}, length_s=4.0)
    info = build_windows([rec], RAW_PRE, numeric, tmp_path / "n", target="regression")
    assert info["target_summary"]["n_distinct"] == 2 and info["target_summary"]["min"] == 0.5
    with pytest.raises(WindowsError, match=r"windows of 1 recording\(s\) carry labels that are not finite numbers "
                                           r"\(label: windows\): .*test_edf_overlapping_annotations.edf: "
                                           r"\{'T0': \d+, 'T1': \d+, 'T2': \d+\}.*windows.event_id"):
        build_windows([rec], RAW_PRE, Windowing(length_s=4.0), tmp_path / "raw", target="regression")
    with pytest.raises(WindowsError, match=r"holds? 1 distinct value\(s\) \['0.5'\]; a regression needs the target"):
        build_windows([rec], RAW_PRE, Windowing(event_id={"T1": "0.5"}, length_s=4.0), tmp_path / "one",
                      target="regression")


def test_the_checks_one_by_one():
    assert as_number("12.5") == 12.5 and as_number(" 3 ") == 3.0
    assert as_number("nan") is None and as_number("-inf") is None and as_number("old") is None
    check_recording_targets([Recording(path="a", subject="1", label="3")])
    check_recording_targets([Recording(path="a", subject="1")])  # events give the values
    check_window_targets({"a": Counter({"1": 3, "2.5": 1})})
    check_target_varies(Counter({"1": 3, "1.0": 2, "2": 1}), 1)
    with pytest.raises(WindowsError, match=r"1 distinct value\(s\)"):
        check_target_varies(Counter({"1": 3, "1.0": 2}), 2)  # the same number written twice
    assert target_summary(Counter({"1": 2, "4": 1})) == {"n_windows": 3, "n_distinct": 2, "min": 1.0, "max": 4.0,
                                                         "mean": 2.0, "std": pytest.approx(3**0.5), "median": 1.0}



def test_the_window_checks_run_together_and_give_the_summary():
    """What the windows job and the Python API both call."""
    summary = checked_window_targets({"a": Counter({"1": 2}), "b": Counter({"4": 1})}, "ages")
    assert summary == target_summary(Counter({"1": 2, "4": 1}))
    with pytest.raises(WindowsError, match="ages"):
        checked_window_targets({"a": Counter({"old": 2}), "b": Counter({"4": 1})}, "ages")
    with pytest.raises(WindowsError, match=r"over 2 recording\(s\) hold 1 distinct value"):
        checked_window_targets({"a": Counter({"3": 2}), "b": Counter({"3.0": 1})}, "ages")


def test_the_config_check_covers_every_regression_dataset_reading_files():
    from eegfm.config import load_config
    from eegfm.windowing.regression_targets import check_config_targets

    cfg = load_config({"datasets": {
        "ages": {"source": "files", "target": "regression", "files": {"metadata": "ages.tsv", "label_column": "age"}},
        "groups": {"source": "files", "files": {"metadata": "groups.tsv", "label_column": "group"}},
    }})
    listed = {"ages": [Recording(path="a.edf", subject="1", label="34"), Recording(path="b.edf", subject="2",
                                                                                   label="old")],
              "groups": [Recording(path="c.edf", subject="3", label="patient")]}  # classes: not checked
    with pytest.raises(WindowsError, match=r"dataset 'ages' has target: regression.*b.edf \(subject 2\): 'old'"):
        check_config_targets(cfg, listed.__getitem__)
    listed["ages"][1] = Recording(path="b.edf", subject="2", label="61.5")
    check_config_targets(cfg, listed.__getitem__)
