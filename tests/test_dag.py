"""What the DAG knows before any job: every file a dataset's windows read, and the CV groups of its recordings."""

from __future__ import annotations

import os

import pytest

from eegfm.config import Config, ConfigError, CrossValidation, Dataset, SyntheticSource
from eegfm.dag import check_cv_groups, cv_groups, recording_inputs, recording_stamp


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    from eegfm.synthetic import write_synthetic_bids

    return write_synthetic_bids(tmp_path_factory.mktemp("bids") / "bids",
                                SyntheticSource(n_subjects=3, n_source_subjects=2, trials_per_class=2))


def _table(tmp_path, rows):
    table = tmp_path / "recordings.tsv"
    table.write_text("path\tsubject\tsession\n" + "".join(f"{p}\t{s}\t{ses}\n" for p, s, ses in rows))
    return str(table)


def test_a_metadata_table_lists_its_files_and_their_companions(real_data, tmp_path):
    eeglab = real_data / "sccn+eeglab/sample_data/eeglab_data.set"
    vhdr = real_data / "mne-tools+mne-testing-data/Brainvision/test_NO.vhdr"
    edf = real_data / "sccn+eeglab/sample_data/test_data/test.edf"
    table = _table(tmp_path, [(eeglab, "a", "1"), (vhdr, "b", "1"), (edf, "c", "1")])
    ds = Dataset(source="files", files={"metadata": table})
    assert recording_inputs(ds) == sorted([
        table, str(eeglab), str(eeglab.with_suffix(".fdt")), str(vhdr), str(vhdr.with_suffix(".eeg")),
        str(vhdr.with_suffix(".vmrk")), str(edf),
    ])  # fmt: skip


def test_file_globs_list_their_companions_too(real_data):
    """The audit's case: with files.paths (no table), an EEGLAB .fdt rewritten with the data x 2 left the windows
    as they were ('Nothing to be done'): the companion was neither an input nor in the windows' recipe."""
    eeglab = real_data / "sccn+eeglab/sample_data/eeglab_data.set"
    vhdr = real_data / "mne-tools+mne-testing-data/Brainvision/test_NO.vhdr"
    ds = Dataset(source="files", files={"paths": [str(eeglab), str(vhdr.parent / "test_NO.vh*")]})
    assert recording_inputs(ds) == sorted([
        str(eeglab), str(eeglab.with_suffix(".fdt")), str(vhdr), str(vhdr.with_suffix(".eeg")),
        str(vhdr.with_suffix(".vmrk")),
    ])  # fmt: skip


def test_a_bids_root_lists_data_files_and_the_sidecars_that_apply(bids_root):
    ds = Dataset(source="bids", bids={"root": str(bids_root), "task": "target"})
    files = recording_inputs(ds)
    sub01 = [f for f in files if "/sub-01/" in f]
    names = sorted(os.path.basename(f) for f in sub01)
    assert "sub-01_task-target_eeg.edf" in names and "sub-01_task-target_events.tsv" in names
    assert "sub-01_task-target_channels.tsv" in names and "sub-01_space-CapTrak_electrodes.tsv" in names
    assert not any("task-source" in f for f in files)  # another task's recordings are not this dataset's
    assert {f.split("/sub-")[1][:2] for f in files if "/sub-" in f} == {"01", "02", "03"}


def test_labels_from_participants_tsv_make_it_an_input(bids_root):
    table = bids_root / "participants.tsv"
    ds = Dataset(source="bids", bids={"root": str(bids_root), "task": "target"})
    assert str(table) not in recording_inputs(ds)
    original = table.read_text() if table.exists() else None
    table.write_text("participant_id\tgroup\nsub-01\ta\nsub-02\tb\nsub-03\ta\n")
    try:
        labelled = Dataset(source="bids", bids={"root": str(bids_root), "task": "target", "label_column": "group"})
        assert str(table) in recording_inputs(labelled)  # editing a label re-runs (and misses the windows cache)
    finally:
        table.write_text(original) if original is not None else table.unlink()


def test_an_inherited_sidecar_above_the_data_applies(bids_root, tmp_path):
    inherited = bids_root / "task-target_events.json"
    inherited.write_text("{}")
    try:
        ds = Dataset(source="bids", bids={"root": str(bids_root), "task": "target"})
        assert str(inherited) in recording_inputs(ds)
    finally:
        inherited.unlink()


def test_the_stamp_changes_when_a_file_is_replaced_by_an_older_one(tmp_path):
    a, b = tmp_path / "a.edf", tmp_path / "b.edf"
    a.write_bytes(b"1" * 10)
    b.write_bytes(b"2" * 12)
    os.utime(b, ns=(10**18, 10**18))
    before = recording_stamp([str(a)])
    assert recording_stamp([str(a)]) == before
    os.replace(b, a)  # an older, different file under the same name (cp -p, rsync -t)
    assert recording_stamp([str(a)]) != before


def test_n_splits_above_the_subjects_of_a_metadata_table_is_refused(real_data, tmp_path):
    edf = real_data / "sccn+eeglab/sample_data/test_data/test.edf"
    table = _table(tmp_path, [(edf, "a", "1"), (edf, "a", "2"), (edf, "b", "1")])
    ds = Dataset(source="files", files={"metadata": table}, cv=CrossValidation(n_splits=3))
    assert cv_groups(ds) == 2
    with pytest.raises(ConfigError, match=r"datasets\.mine\.cv\.n_splits is 3 but the recordings name only 2 "
                       r"subject groups; set datasets\.mine\.cv\.n_splits to at most 2, or cv\.scheme: loso"):
        check_cv_groups(Config(datasets={"mine": ds}))
    by_session = ds.model_copy(update={"cv": CrossValidation(n_splits=3, group_by="session")})
    check_cv_groups(Config(datasets={"mine": by_session}))  # 3 subject/session groups: fine


def test_n_splits_against_the_built_in_data_and_pretraining_roles():
    small = Dataset(synthetic=SyntheticSource(n_subjects=3), cv=CrossValidation(n_splits=4))
    with pytest.raises(ConfigError, match=r"datasets\.tiny\.cv\.n_splits is 4 but the recordings name only 3"):
        check_cv_groups(Config(datasets={"tiny": small}))
    pretraining = small.model_copy(update={"role": "pretrain"})  # never split
    check_cv_groups(Config(datasets={"pre": pretraining, "ok": Dataset(synthetic=SyntheticSource(n_subjects=5))}))
    check_cv_groups(Config(datasets={"tiny": small.model_copy(update={"cv": CrossValidation(scheme="loso")})}))


def test_recordings_are_listed_once_per_run_and_read_back_by_job_reparses(real_data, tmp_path):
    """The main process lists and saves; a cluster job's re-parse reads that listing instead of the root."""
    from eegfm.dag import listed_recordings

    edf = real_data / "sccn+eeglab/sample_data/test_data/test.edf"
    bdf = real_data / "sccn+eeglab/sample_data/test_data/test.bdf"
    table = tmp_path / "recordings.tsv"
    table.write_text(f"path\tsubject\n{edf}\ta\n")
    ds = Dataset(source="files", files={"metadata": str(table)})
    first = listed_recordings(ds, tmp_path / "cache", main_process=True)
    assert [r.subject for r in first] == ["a"] and len(list((tmp_path / "cache").glob("*.json"))) == 1
    table.write_text(f"path\tsubject\n{edf}\ta\n{bdf}\tb\n")  # a recording added after the run was planned
    assert listed_recordings(ds, tmp_path / "cache", main_process=False) == first  # the run's own listing
    assert [r.subject for r in listed_recordings(ds, tmp_path / "cache", main_process=True)] == ["a", "b"]
    other = Dataset(source="files", files={"metadata": str(table)}, cv={"scheme": "loso"})
    assert [r.subject for r in listed_recordings(other, tmp_path / "cache", main_process=False)] == ["a", "b"]


def test_one_subject_designs_are_checked_by_their_own_unit(real_data, tmp_path):
    """One subject is a valid within-subject or run-wise study; the check follows the design, not subjects."""
    edf = real_data / "sccn+eeglab/sample_data/test_data/test.edf"
    table = tmp_path / "recordings.tsv"
    table.write_text("path\tsubject\tsession\trun\n" + "".join(f"{edf}\ts01\t1\t{r}\n" for r in (1, 2, 3)))
    files = {"metadata": str(table)}
    for cv in ({"scheme": "within_subject", "n_splits": 5}, {"scheme": "leave_one_run_out"},
               {"scheme": "loso", "group_by": "run"}):
        check_cv_groups(Config(datasets={"s01": Dataset(source="files", files=files, cv=cv)}))
    with pytest.raises(ConfigError, match=r"datasets\.s01\.cv: .*cross_session"):
        check_cv_groups(Config(datasets={"s01": Dataset(source="files", files=files, cv={"scheme": "cross_session"})}))
    with pytest.raises(ConfigError, match=r"datasets\.s01: the recordings name 1 subject group.*within_subject"):
        check_cv_groups(Config(datasets={"s01": Dataset(source="files", files=files)}))


def test_recordings_that_cannot_be_listed_are_named_with_their_dataset(tmp_path):
    """Several datasets in one config: 'files.metadata ... does not exist' named no dataset."""
    ok = Dataset(synthetic=SyntheticSource(n_subjects=5))
    gone = Dataset(source="files", files={"metadata": str(tmp_path / "gone.tsv")})
    with pytest.raises(ConfigError, match=r"datasets\.second: files\.metadata '.*gone\.tsv' does not exist"):
        check_cv_groups(Config(datasets={"first": ok, "second": gone}))
