"""Shared fixtures: real recordings from ../shared and tiny stores built through eegfm itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("EEGFM_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real recordings (see its README); skips with the reason if absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DATA} (set EEGFM_REAL_DATA)")
    return REAL_DATA


MOTOR_EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"


@pytest.fixture(scope="session")
def three_runs(real_data, tmp_path_factory) -> Path:
    """A single-subject, three-run study from real EEG: the 124 s motor EDF (64 channels, 128 Hz, T0/T1/T2)
    cut into three ~41 s runs, each written as its own FIF file, listed in ``recordings.tsv``
    (columns path, subject, session, run; paths relative to the table)."""
    import mne

    raw = mne.io.read_raw(real_data / MOTOR_EDF, preload=True, verbose="error")
    folder = tmp_path_factory.mktemp("three_runs")
    edges = [0.0, 41.0, 82.0, raw.times[-1]]
    rows = ["path\tsubject\tsession\trun"]
    for run, (start, stop) in enumerate(zip(edges[:-1], edges[1:]), start=1):
        path = folder / f"S001_run-{run}_raw.fif"
        raw.copy().crop(start, stop, include_tmax=False).save(path, verbose="error")
        rows.append(f"{path.name}\tS001\t1\t{run}")
    (folder / "recordings.tsv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def freezable_folder(tmp_path):
    """A folder and a function that makes it read-only for this process: a tmpfs remounted read-only for
    root (root ignores permissions), else mode 0500."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        yield folder, lambda: folder.chmod(0o500)
        folder.chmod(0o700)
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    yield folder, lambda: subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def read_only_folder(freezable_folder):
    """A folder this process cannot write (see ``freezable_folder``)."""
    folder, freeze = freezable_folder
    freeze()
    return folder
