"""Faults met through the workflow itself: real `snakemake` runs in scratch folders (findings 2, 3, 5, 8, 9, 10).

- two runs sharing one cache compute each embedding store once; a chunk deleted from
  it later makes the next run recompute it (moved aside, logged) instead of a silent hit;
- replacing a recording (or a BIDS sidecar) re-runs its windows, even with an older mtime;
  replacing a backbone's local weights file re-runs its embeddings likewise;
- a YAML error in the config names the file and the line; cv.n_splits above the number
  of subjects stops the run before any job;
- with a venv shared by two checkouts, a job imports the checkout's own code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_workflow import tiny_config

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, config: dict | None, *args: str, snakefile: Path = REPO / "Snakefile",
              env: dict | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(snakefile), "--cores", "2", "--directory",
           str(workdir)]  # targets first: --configfile takes every name after it
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(workdir / "config.yaml")]
    run = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if not wait:
        return subprocess.Popen(cmd, **run)
    proc = subprocess.run(cmd, timeout=900, **run)
    return proc.returncode, proc.stdout


def ok(result) -> str:
    code, out = result
    assert code == 0, out[-6000:]
    return out


def would_run(workdir: Path, config: dict, *targets: str) -> set[str]:
    """Rules a dry run would run (empty when nothing is to be done)."""
    out = ok(snakemake(workdir, config, "-n", *targets))
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.split() and line.split()[0] != "total"}


# ----------------------------------------------------------------------------- shared cache


def test_two_runs_sharing_a_cache_compute_each_store_once_and_a_damaged_store_is_recomputed(tmp_path):
    cache = tmp_path / "cache"
    config = tiny_config(cache, backbones=[{"name": "cbramod"}])
    target = "results/tiny/embeddings/cbramod.json"
    runs = []
    for name in ("a", "b"):  # started together: their embed jobs overlap
        (tmp_path / name).mkdir()
        runs.append(snakemake(tmp_path / name, config, target, wait=False))
    for proc in runs:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-6000:]
    pointers = [json.loads((tmp_path / name / target).read_text()) for name in ("a", "b")]
    assert sorted(p["cache"] for p in pointers) == ["hit", "miss"], pointers  # computed once
    assert sum(p["forward_passes"] for p in pointers) == max(p["forward_passes"] for p in pointers) > 0
    stores = list(cache.glob("embeddings/*/*.zarr"))
    assert len(stores) == 1 and not list(cache.rglob(".tmp-*"))

    # an interrupted copy of the cache: one chunk of E is gone
    chunk = next(p for p in sorted((stores[0] / "E" / "c").rglob("*")) if p.is_file())
    chunk.unlink()
    (tmp_path / "c").mkdir()
    ok(snakemake(tmp_path / "c", config, target))
    third = json.loads((tmp_path / "c" / target).read_text())
    assert third["cache"] == "miss" and third["key"] == pointers[0]["key"]
    log = (tmp_path / "c/results/logs/embed/tiny/cbramod.log").read_text()
    assert "is damaged" in log and "moved it aside" in log
    assert len(list(cache.glob("embeddings/*/*.zarr.damaged-*"))) == 1 and chunk.is_file()


# ----------------------------------------------------------------------------- recordings as inputs


@pytest.fixture(scope="module")
def recordings_run(real_data, tmp_path_factory):
    """Windows of a files.metadata dataset (two real EDF copies) and of a BIDS root, made once."""
    from eegfm.config import SyntheticSource
    from eegfm.synthetic import write_synthetic_bids

    work = tmp_path_factory.mktemp("inputs")
    source = real_data / "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"
    data = work / "data"
    data.mkdir()
    for name in ("s1.edf", "s2.edf"):
        shutil.copy(source, data / name)
    (data / "recordings.tsv").write_text("path\tsubject\ns1.edf\ts1\ns2.edf\ts2\n")
    bids = write_synthetic_bids(work / "bids", SyntheticSource(n_subjects=2, trials_per_class=4))
    config = {
        "results": "results", "cache": str(work / "cache"), "backbones": [{"name": "bandpower"}],
        "datasets": {
            "edf": {"source": "files", "files": {"metadata": str(data / "recordings.tsv")}, "cv": {"scheme": "loso"},
                    "windows": {"event_id": {"T1": "left", "T2": "right"}, "length_s": 2.0}},
            "bids": {"source": "bids", "bids": {"root": str(bids), "task": "target"}, "cv": {"scheme": "loso"},
                     "windows": {"tmin": 0.5, "length_s": 2.0}},
        },
    }  # fmt: skip
    targets = ["results/edf/windows/windows.json", "results/bids/windows/windows.json"]
    ok(snakemake(work, config, *targets))
    assert would_run(work, config, *targets) == set()
    return work, config, targets, data, bids


def test_replacing_a_recording_reruns_its_windows_even_with_an_older_mtime(recordings_run, real_data):
    work, config, targets, data, _ = recordings_run
    original = data / "s2.edf"
    saved = original.with_suffix(".saved")
    shutil.copy2(original, saved)
    try:
        # another recording under the same name, its old mtime kept (cp -p, rsync -t): older than the outputs
        shutil.copy2(real_data / "mne-tools+mne-testing-data/EDF/test_reduced.edf", original)
        assert os.stat(original).st_mtime < os.stat(work / targets[0]).st_mtime
        assert would_run(work, config, targets[0]) == {"windows"}
    finally:
        shutil.copy2(saved, original)
        saved.unlink()
    assert would_run(work, config, *targets) == set()


def test_editing_a_bids_sidecar_reruns_its_windows(recordings_run):
    work, config, targets, _, bids = recordings_run
    events = next(bids.glob("sub-01/eeg/sub-01_task-target_events.tsv"))
    text, stat = events.read_text(), events.stat()
    events.write_text(text.replace("\n", "\n", 1))  # rewritten (same content, new mtime): what an edit looks like
    try:
        assert would_run(work, config, targets[1]) == {"windows"}
    finally:
        os.utime(events, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert would_run(work, config, *targets) == set()


def _save_cbramod_weights(path: Path, seed: int) -> None:
    """A one-layer CBraMod's weights (as a user's own checkpoint), initialised with ``seed``."""
    import torch
    from braindecode.models import CBraMod
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = CBraMod(n_outputs=2, n_chans=19, n_times=600, sfreq=200, n_layer=1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def test_replacing_local_weights_reruns_the_jobs_that_load_them_even_with_an_older_mtime(tmp_path):
    work, weights = tmp_path / "work", tmp_path / "models/model.safetensors"
    work.mkdir()
    weights.parent.mkdir()
    _save_cbramod_weights(weights, seed=0)
    config = tiny_config(tmp_path / "cache", backbones=[
        {"name": "cbramod", "id": "mine", "kwargs": {"n_layer": 1}, "weights": str(weights)}])
    target = "results/tiny/embeddings/mine.json"
    ok(snakemake(work, config, target))
    first = json.loads((work / target).read_text())["fingerprint"]["weights"]
    assert would_run(work, config, target) == set()
    # a newer checkpoint saved under the same name, its old mtime kept (an unpacked archive, cp -p)
    newer = tmp_path / "newer.safetensors"
    _save_cbramod_weights(newer, seed=1)
    old = os.stat(work / target).st_mtime_ns - 3_600 * 10**9
    os.utime(newer, ns=(old, old))
    newer.replace(weights)
    assert would_run(work, config, target) == {"embed"}
    ok(snakemake(work, config, target))
    assert json.loads((work / target).read_text())["fingerprint"]["weights"] != first
    assert would_run(work, config, target) == set()


# ----------------------------------------------------------------------------- errors before any job


def test_a_yaml_error_in_the_config_names_the_file_and_the_line(tmp_path):
    (tmp_path / "config").mkdir()
    broken = "seed: 0\ndatasets:\n  tiny: {source: synthetic\nbackbones: [{name: bandpower}]\n"
    (tmp_path / "config/config.yaml").write_text(broken)  # the workflow's default config file, edited
    code, out = snakemake(tmp_path, None, "-n")
    assert code != 0 and "config file config/config.yaml, line 4, column 10: YAML syntax error" in out, out[-3000:]
    # a file given to --configfile is read by Snakemake first; `eegfm check-config` (make run CONFIG=...) names it
    (tmp_path / "mine.yaml").write_text(broken)
    check = subprocess.run([sys.executable, "-m", "eegfm.cli", "check-config", str(tmp_path / "mine.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 1 and f"config file {tmp_path / 'mine.yaml'}, line 4, column 10" in check.stderr
    # a key written twice passes Snakemake's own parser (the last one silently wins): the workflow names it
    (tmp_path / "twice.yaml").write_text(yaml.safe_dump(tiny_config(tmp_path / "cache")) + "seed: 3\n")
    code, out = snakemake(tmp_path, None, "-n", "--configfile", str(tmp_path / "twice.yaml"))
    assert code != 0 and f"config file {tmp_path / 'twice.yaml'}, line" in out and "'seed' is written twice" in out, \
        out[-3000:]


def test_n_splits_above_the_subjects_stops_the_run_before_any_job(real_data, tmp_path):
    source = real_data / "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"
    (tmp_path / "recordings.tsv").write_text(f"path\tsubject\n{source}\ta\n{source}\tb\n{source}\tc\n")
    config = tiny_config(tmp_path / "cache", backbones=[{"name": "bandpower"}])
    config["datasets"]["mine"] = {"source": "files", "files": {"metadata": str(tmp_path / "recordings.tsv")},
                                  "cv": {"n_splits": 5}}
    code, out = snakemake(tmp_path, config, "-n")
    assert code != 0, out[-3000:]
    assert "datasets.mine.cv.n_splits is 5 but the recordings name only 3 subject groups" in out
    assert "set datasets.mine.cv.n_splits to at most 3" in out and not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------- the checkout's code


MARKER = """
import os as _os, sys as _sys
if _os.environ.get("EEGFM_IMPORT_MARKER"):
    with open(_os.environ["EEGFM_IMPORT_MARKER"], "a") as _marker:
        _marker.write(" ".join(_sys.argv) + "\\n")
"""


def test_jobs_import_the_code_of_their_own_checkout_when_two_share_a_venv(tmp_path):
    """The venv has this checkout installed (editable); a copy of it runs with that venv's snakemake."""
    import eegfm

    assert Path(eegfm.__file__).resolve().is_relative_to(REPO / "src"), "the venv must hold this checkout"
    other = tmp_path / "other-checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("workflow", "src", "config", "envs"):
        shutil.copytree(REPO / name, other / name, ignore=ignore)
    shutil.copy2(REPO / "Snakefile", other / "Snakefile")
    with open(other / "src/eegfm/__init__.py", "a") as fh:
        fh.write(MARKER)  # only the copy's eegfm says where it was imported
    marker = tmp_path / "imported-by"
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "EEGFM_IMPORT_MARKER": str(marker)}
    env.pop("PYTHONPATH", None)
    config = tiny_config(tmp_path / "cache", backbones=[{"name": "bandpower"}])
    ok(snakemake(work, config, "results/tiny/windows/windows.json", snakefile=other / "Snakefile", env=env))
    importers = marker.read_text().splitlines()
    assert any("snakemake" in line for line in importers)  # parse time: the copy's code validated the config
    assert any("windows.py" in line for line in importers), importers  # the windows job ran the copy's code too
