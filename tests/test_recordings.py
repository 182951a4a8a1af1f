"""One loader for all inputs, tested on real files (EEGLAB, EDF, BDF, BrainVision, FIF, BIDS)."""

from __future__ import annotations

from pathlib import Path

import mne
import mne_bids
import pytest

from eegfm.config import Dataset, SyntheticSource
from eegfm.recordings import (
    BIDS_NAME_PATTERN,
    Recording,
    RecordingError,
    find_recordings,
    read_raw,
    read_recording,
)
from eegfm.synthetic import write_synthetic_bids

EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"
EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"
BDF = "mne-tools+mne-testing-data/BDF/multiple_annotation_chans.bdf"
VHDR = "mne-tools+mne-testing-data/Brainvision/test_NO.vhdr"
EEGLAB_EPOCHS = "sccn+eeglab/sample_data/eeglab_data_epochs_ica.set"


def files(**kwargs) -> Dataset:
    return Dataset(source="files", files=kwargs)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    cfg = SyntheticSource(n_subjects=3, n_source_subjects=2, trials_per_class=2)
    return write_synthetic_bids(tmp_path_factory.mktemp("syn") / "bids", cfg)


@pytest.fixture(scope="module")
def fif(real_data, tmp_path_factory) -> Path:
    """A FIF written from the real EEGLAB recording (first 30 s)."""
    raw = mne.io.read_raw(real_data / EEGLAB, preload=True, verbose="error").crop(0, 30)
    path = tmp_path_factory.mktemp("fif") / "eeglab_raw.fif"
    raw.save(path, verbose="error")
    return path


@pytest.fixture(scope="module")
def bids_root(real_data, tmp_path_factory) -> Path:
    """A small BIDS root written by mne-bids from the real EDF: 2 subjects, 2 runs each."""
    root = tmp_path_factory.mktemp("bids") / "root"
    raw = mne.io.read_raw(real_data / EDF, verbose="error")
    for subject in ("01", "02"):
        for run in ("1", "2"):
            path = mne_bids.BIDSPath(subject=subject, session="a", task="motor", run=run, datatype="eeg", root=root)
            mne_bids.write_raw_bids(raw, path, overwrite=True, verbose=False)
    return root


# ----------------------------------------------------------------------------- synthetic and BIDS


def test_synthetic_goes_through_bids(synthetic_root):
    recs = find_recordings(Dataset(), synthetic_root=synthetic_root)
    assert [r.subject for r in recs] == ["01", "02", "03"]
    assert all(r.task == "target" and r.path.endswith("_eeg.edf") for r in recs)
    source = find_recordings(Dataset(synthetic={"task": "source"}), synthetic_root=synthetic_root)
    assert [r.subject for r in source] == ["04", "05"]
    raw = read_raw(recs[0])
    assert raw.preload and len(raw.ch_names) == 19
    assert set(raw.annotations.description) == {"left_hand", "right_hand", "feet"}


def test_synthetic_needs_its_root():
    with pytest.raises(RecordingError, match="synthetic_root"):
        find_recordings(Dataset())


def test_bids_filters_and_events(bids_root):
    recs = find_recordings(Dataset(source="bids", bids={"root": str(bids_root), "task": "motor"}))
    expected = [("01", "a", "1"), ("01", "a", "2"), ("02", "a", "1"), ("02", "a", "2")]
    assert [(r.subject, r.session, r.run) for r in recs] == expected
    only = find_recordings(
        Dataset(source="bids", bids={"root": str(bids_root), "subjects": ["02"], "runs": ["2"], "extension": "edf"})
    )
    assert [(r.subject, r.run) for r in only] == [("02", "2")]
    raw = read_raw(only[0])  # read_raw_bids: events.tsv -> annotations
    assert raw.preload and raw.info["sfreq"] == 128
    assert {"T0", "T1", "T2"} <= set(raw.annotations.description)


def test_bids_no_match_names_root_and_tasks(bids_root, tmp_path):
    with pytest.raises(RecordingError, match=r"task='rest'.*tasks \['motor'\]") as err:
        find_recordings(Dataset(source="bids", bids={"root": str(bids_root), "task": "rest"}))
    assert str(bids_root) in str(err.value)
    with pytest.raises(RecordingError, match="dataset_description.json"):
        find_recordings(Dataset(source="bids", bids={"root": str(tmp_path)}))


# ----------------------------------------------------------------------------- plain files


@pytest.mark.parametrize(
    ("name", "sfreq", "events"),
    [
        (EEGLAB, 128, {"square", "rt"}),
        (EDF, 128, {"T0", "T1", "T2"}),
        (BDF, 125, {"TestStim#1"}),
        (VHDR, 5000, set()),
    ],
)
def test_reads_real_formats(real_data, name, sfreq, events):
    recs = find_recordings(files(paths=[str(real_data / name)]))
    assert len(recs) == 1 and recs[0].subject == Path(name).stem
    raw = read_raw(recs[0])
    assert raw.preload and raw.info["sfreq"] == sfreq
    assert events <= set(raw.annotations.description)


def test_reads_fif(fif):
    raw = read_raw(Recording(path=str(fif), subject="x"))
    assert raw.info["sfreq"] == 128 and {"square", "rt"} <= set(raw.annotations.description)


def test_metadata_table(real_data, fif, tmp_path):
    (tmp_path / "data").mkdir()
    local = tmp_path / "data" / "s1_raw.fif"
    mne.io.read_raw(fif, verbose="error").save(local, verbose="error")
    table = tmp_path / "recordings.tsv"
    table.write_text(  # absolute paths, and one relative to the TSV's folder
        "path\tsubject\tsession\trun\n"
        f"{real_data / EDF}\tS2\t1\tn/a\n"
        "data/s1_raw.fif\tS1\t2\t1\n"
        f"{real_data / EEGLAB}\tS1\t1\t\n"
    )
    recs = find_recordings(files(metadata=str(table), paths=["ignored/*.edf"]))
    assert [(r.subject, r.session, r.run) for r in recs] == [("S1", "1", None), ("S1", "2", "1"), ("S2", "1", None)]
    assert Path(recs[1].path) == local
    assert read_raw(recs[1]).n_times > 0


def test_metadata_errors(tmp_path, real_data):
    table = tmp_path / "m.tsv"
    table.write_text("file\tsubject\nx.edf\t1\n")
    with pytest.raises(RecordingError, match=r"lacks column\(s\) \['path'\]"):
        find_recordings(files(metadata=str(table)))
    table.write_text("path\tsubject\nmissing.edf\t1\n")
    with pytest.raises(RecordingError, match=r"line 2: .*missing\.edf' does not exist"):
        find_recordings(files(metadata=str(table)))


# ----------------------------------------------------------------------------- recording-level labels


def _table(tmp_path: Path, header: str, *rows: str) -> Path:
    table = tmp_path / "recordings.tsv"
    table.write_text(header + "\n" + "".join(row + "\n" for row in rows))
    return table


def test_metadata_label_column(real_data, tmp_path):
    rows = (f"{real_data / EDF}\tP1\tpatient\t71", f"{real_data / EEGLAB}\tC1\tcontrol\t64")
    table = _table(tmp_path, "path\tsubject\tdiagnosis\tage", *rows)
    recs = find_recordings(files(metadata=str(table), label_column="diagnosis"))
    assert [(r.subject, r.label) for r in recs] == [("C1", "control"), ("P1", "patient")]
    assert {r.label_source for r in recs} == {"files.metadata column 'diagnosis'"}
    ages = find_recordings(files(metadata=str(table), label_column="age"))
    assert [r.label for r in ages] == ["64", "71"]  # the raw cell: parsed later, where a design needs numbers


def test_metadata_label_column_is_never_ignored(real_data, tmp_path):
    """Issue 11, finding 4: a label column in the metadata table was silently ignored."""
    table = _table(tmp_path, "path\tsubject\tlabel", f"{real_data / EDF}\tP1\tpatient")
    message = r"has a 'label' column, but files\.label_column is not set.*label_column: label"
    with pytest.raises(RecordingError, match=message):
        find_recordings(files(metadata=str(table)))
    assert find_recordings(files(metadata=str(table), label_column="label"))[0].label == "patient"


def test_metadata_label_column_errors(real_data, tmp_path):
    rows = (f"{real_data / EDF}\tP1\tpatient", f"{real_data / EEGLAB}\tC1\tn/a")
    table = _table(tmp_path, "path\tsubject\tgroup", *rows)
    message = r"label_column 'diagnosis' is not a column .*\['path', 'subject', 'group'\]"
    with pytest.raises(RecordingError, match=message):
        find_recordings(files(metadata=str(table), label_column="diagnosis"))
    with pytest.raises(RecordingError, match=r"line 3: no value in the label column 'group'"):
        find_recordings(files(metadata=str(table), label_column="group"))


def test_metadata_ids_spelled_two_ways_are_refused(real_data, tmp_path):
    """'S01' and 's01' in a hand-typed table were two subjects: one person on both sides of a fold."""
    table = _table(tmp_path, "path\tsubject\tgroup", f"{real_data / EDF}\tS01\tpatient",
                   f"{real_data / EEGLAB}\ts01\tpatient")
    with pytest.raises(RecordingError, match=r"column 'subject': 'S01' and 's01' differ only in case, spaces or "
                       r"leading zeros, so they would be two subjects"):
        find_recordings(files(metadata=str(table)))
    table = _table(tmp_path, "path\tsubject\tgroup", f"{real_data / EDF}\tS01\tPatient",
                   f"{real_data / EEGLAB}\tS02\tpatient")
    with pytest.raises(RecordingError, match=r"column 'group': 'Patient' and 'patient' .* two classes"):
        find_recordings(files(metadata=str(table), label_column="group"))
    assert len(find_recordings(files(metadata=str(table)))) == 2  # without the label column: fine


def test_metadata_ids_that_differ_in_leading_zeros_are_refused(real_data, tmp_path):
    """A spreadsheet saved subject '01' as '1' on one row: the same person on both sides of a fold."""
    table = _table(tmp_path, "path\tsubject\tgroup", f"{real_data / EDF}\t01\tpatient",
                   f"{real_data / EEGLAB}\t1\tpatient", f"{real_data / BDF}\t2\tcontrol")
    with pytest.raises(RecordingError, match=r"column 'subject': '01' and '1' differ only in case, spaces or leading "
                       r"zeros, so they would be two subjects"):
        find_recordings(files(metadata=str(table)))
    table = _table(tmp_path, "path\tsubject\tgroup", f"{real_data / EDF}\tS01\t01",
                   f"{real_data / EEGLAB}\tS02\t1")
    with pytest.raises(RecordingError, match=r"column 'group': '01' and '1' .*leading zeros.* two classes"):
        find_recordings(files(metadata=str(table), label_column="group"))


def test_bids_participants_label_column(bids_root, tmp_path):
    import pandas as pd

    participants = pd.read_csv(bids_root / "participants.tsv", sep="\t", dtype=str)
    participants["group"] = participants["participant_id"].map({"sub-01": "patient", "sub-02": "control"})
    participants.to_csv(bids_root / "participants.tsv", sep="\t", index=False)
    recs = find_recordings(Dataset(source="bids", bids={"root": str(bids_root), "label_column": "group"}))
    assert [(r.subject, r.label) for r in recs] == [("01", "patient")] * 2 + [("02", "control")] * 2
    assert recs[0].label_source == "participants.tsv column 'group'"
    with pytest.raises(RecordingError, match=r"participants\.tsv lacks .* 'diagnosis'"):
        find_recordings(Dataset(source="bids", bids={"root": str(bids_root), "label_column": "diagnosis"}))
    assert find_recordings(Dataset(source="bids", bids={"root": str(bids_root)}))[0].label is None


# ----------------------------------------------------------------------------- epoched files


def test_reads_epoched_eeglab(real_data):
    rec = Recording(path=str(real_data / EEGLAB_EPOCHS), subject="s")
    epochs = read_recording(rec)
    assert isinstance(epochs, mne.BaseEpochs) and len(epochs) == 80 and epochs.info["sfreq"] == 128
    assert epochs.tmin == -1.0 and set(epochs.event_id) == {"square", "square/rt", "square/square/rt"}
    with pytest.raises(RecordingError, match=r"holds 80 epochs, not a continuous recording"):
        read_raw(rec)


def test_reads_epochs_fif_by_name_and_by_content(real_data, tmp_path):
    raw = mne.io.read_raw(real_data / EDF, preload=True, verbose="error")
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(raw, events, event_id, tmin=-0.5, tmax=2.0, baseline=None, preload=True, verbose="error")
    named = tmp_path / "run1-epo.fif"
    epochs.save(named, verbose="error")
    unnamed = tmp_path / "run1.fif"  # MNE warns about the name but writes it; read_raw refuses it
    with pytest.warns(RuntimeWarning):
        epochs.save(unnamed, verbose="warning")
    for path in (named, unnamed):
        read = read_recording(Recording(path=str(path), subject="s"))
        assert isinstance(read, mne.BaseEpochs) and len(read) == len(epochs)
        assert read.event_id == event_id


def test_glob_with_pattern(real_data):
    glob = str(real_data / "sccn+eeglab/sample_data/test_data/test.*")
    recs = find_recordings(files(paths=[glob], pattern=r"(?P<subject>test)\.(?P<run>edf|bdf)$"))
    expected = [("test", "bdf", "test.bdf"), ("test", "edf", "test.edf")]
    assert [(r.subject, r.run, Path(r.path).name) for r in recs] == expected
    assert all(read_raw(r).info["sfreq"] == 256 for r in recs)


def test_glob_pattern_on_files_written_from_real_data(fif, tmp_path):
    raw = mne.io.read_raw(fif, verbose="error")
    for subject, session in (("02", "1"), ("01", "2"), ("01", "1")):
        raw.save(tmp_path / f"sub-{subject}_ses-{session}_raw.fif", verbose="error")
    recs = find_recordings(
        files(paths=[str(tmp_path / "*.fif")], pattern=r"sub-(?P<subject>\d+)_ses-(?P<session>\d+)")
    )
    assert [(r.subject, r.session) for r in recs] == [("01", "1"), ("01", "2"), ("02", "1")]


def _bids_named(real_data: Path, folder: Path, *names: str) -> str:
    """Links named ``names`` to one real EDF recording in ``folder``; the glob that finds them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(real_data / EDF)
    return str(folder / "*.edf")


def test_files_sharing_a_bids_subject_need_a_pattern(real_data, tmp_path):
    """Without files.pattern each file was its own subject: sub-01's two runs on both sides of a fold."""
    glob = _bids_named(real_data, tmp_path, "sub-01_run-1_eeg.edf", "sub-01_run-2_eeg.edf", "sub-02_run-1_eeg.edf")
    with pytest.raises(RecordingError, match=r"share a BIDS subject .*: sub-01_run-1_eeg\.edf, sub-01_run-2_eeg\.edf; "
                       r"one person would sit on both sides .* files\.pattern: 'sub-\(\?P<subject>") as err:
        find_recordings(files(paths=[glob]))
    assert "sub-02" not in str(err.value)
    recs = find_recordings(files(paths=[glob], pattern=BIDS_NAME_PATTERN))  # the pattern the message suggests
    assert [(r.subject, r.session, r.run) for r in recs] == [("01", None, "1"), ("01", None, "2"), ("02", None, "1")]
    assert all(read_raw(r).info["sfreq"] == 128 for r in recs[:1])
    nested = _bids_named(real_data, tmp_path / "bids/sub-03/ses-1/eeg", "sub-03_ses-1_task-mi_run-4_eeg.edf")
    assert [(r.subject, r.session, r.run) for r in find_recordings(files(paths=[nested], pattern=BIDS_NAME_PATTERN))] \
        == [("03", "1", "4")]  # the pattern reads the file name, not the subject folder
    single = _bids_named(real_data, tmp_path / "one", "sub-01_eeg.edf", "sub-02_eeg.edf")
    assert [r.subject for r in find_recordings(files(paths=[single]))] == ["sub-01_eeg", "sub-02_eeg"]


def test_pattern_subjects_spelled_two_ways_are_refused(real_data, tmp_path):
    glob = _bids_named(real_data, tmp_path, "sub-01_run-1_eeg.edf", "sub-1_run-2_eeg.edf")
    with pytest.raises(RecordingError, match=r"subjects: '01' and '1' differ only in case, spaces or leading zeros"):
        find_recordings(files(paths=[glob], pattern=BIDS_NAME_PATTERN))
    with pytest.raises(RecordingError, match=r"sub-01_run-1_eeg\.edf, sub-1_run-2_eeg\.edf"):
        find_recordings(files(paths=[glob]))  # without a pattern: one BIDS subject, spelled two ways


def test_glob_skips_companion_files(real_data):
    recs = find_recordings(files(paths=[str(real_data / "mne-tools+mne-testing-data/Brainvision/test_NO.*")]))
    assert [Path(r.path).name for r in recs] == ["test_NO.vhdr"]  # not .eeg / .vmrk
    recs = find_recordings(files(paths=[str(real_data / "sccn+eeglab/sample_data/eeglab_data.*")]))
    assert [Path(r.path).name for r in recs] == ["eeglab_data.set"]  # not .fdt


def test_glob_errors(tmp_path, real_data):
    with pytest.raises(RecordingError, match=r"nothing/\*\.edf.*check the globs"):
        find_recordings(files(paths=[str(tmp_path / "nothing/*.edf")]))
    with pytest.raises(RecordingError, match="does not match files.pattern"):
        find_recordings(files(paths=[str(real_data / EDF)], pattern=r"sub-(?P<subject>\d+)"))


# ----------------------------------------------------------------------------- broken files


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_truncated_edf_raises_naming_the_file(real_data, tmp_path):
    bad = _truncate(real_data / EDF, tmp_path / "cut.edf", 0.6)
    with pytest.raises(RecordingError, match=r"cut\.edf: truncated.*re-export the file") as err:
        read_raw(Recording(path=str(bad), subject="1"))
    assert str(bad) in str(err.value)


def test_truncated_header_and_fif_raise(real_data, fif, tmp_path):
    header_only = _truncate(real_data / EDF, tmp_path / "head.edf", 0.001)
    for bad in (header_only, _truncate(fif, tmp_path / "cut_raw.fif", 0.5)):
        with pytest.raises(RecordingError, match=rf"{bad.name}: cannot read it \(.+\); .*remove it from files.metadata"):
            read_raw(Recording(path=str(bad), subject="1"))


def test_missing_file_raises(tmp_path):
    with pytest.raises(RecordingError, match="gone.edf: file not found"):
        read_raw(Recording(path=str(tmp_path / "gone.edf"), subject="1"))
