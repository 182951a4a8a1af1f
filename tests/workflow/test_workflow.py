"""End to end: snakemake on a tiny config, report files, no-op rerun, cache hits.

These run the real workflow (real synthetic EDF/BIDS files, MNE, CBraMod,
scikit-learn) in a temporary working directory; ~1-2 min on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]

pytestmark = pytest.mark.slow

#: Columns that measure the machine, not the result.
COST = ("wall_time_s", "peak_memory_mb")


def tiny_config(cache: Path, dataset: str = "tiny", **extra) -> dict:
    return {
        "results": "results",
        "cache": str(cache),
        "seed": 0,
        "datasets": {
            dataset: {
                "source": "synthetic",
                "synthetic": {"n_subjects": 6, "n_source_subjects": 2, "trials_per_class": 10},
                "windows": {"tmin": 0.5, "length_s": 3.0},
                "cv": {"scheme": "group_kfold", "n_splits": 3},
            }
        },
        "backbones": [{"name": "bandpower"}, {"name": "cbramod"}],
        "embedding": {"batch_size": 16, "threads": 1},
        **extra,
    }


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env=None if env is None else {**os.environ, **env})


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return proc


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    config = tiny_config(cache)
    ok(snakemake(work, config))
    return work, cache, config


def test_report_files(finished_run):
    work, _, _ = finished_run
    report = work / "results/report"
    for name in ("report.html", "summary.json", "metrics.tsv", "summary.tsv", "figures/scores.png"):
        assert (report / name).is_file(), name
    metrics = pd.read_csv(report / "metrics.tsv", sep="\t")
    assert len(metrics) == 2 * 3  # backbones x folds
    assert set(metrics["model"]) == {"bandpower", "cbramod"}
    for column in ("balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "roc_auc", "settings_hash", "windows_key"):
        assert metrics[column].notna().all(), column
    summary = (report / "summary.json").read_text()
    assert summary.count("\n") <= 1 and json.loads(summary)
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html
    # the band-power baseline decodes the synthetic task above chance
    assert metrics.loc[metrics["model"] == "bandpower", "balanced_accuracy"].mean() > 0.5
    # every rule wrote its log
    logs = {p.relative_to(work / "results/logs").parts[0] for p in (work / "results/logs").rglob("*.log")}
    assert logs == {"synthetic", "windows", "splits", "embed", "probe", "aggregate.log"}
    assert "it/s" in (work / "results/logs/embed/tiny/cbramod.log").read_text()  # progress bar
    # one probe job per dataset x backbone fits all three folds
    assert sorted(p.name for p in (work / "results/logs/probe/tiny").iterdir()) == ["bandpower.log", "cbramod.log"]
    assert "3/3" in (work / "results/logs/probe/tiny/cbramod.log").read_text()


def test_jobs_compute_the_same_numbers_without_the_job_server(finished_run, tmp_path):
    work, _, _ = finished_run
    served = (work / ".snakemake/eegfm/job-server.log").read_text()
    for script in ("windows.py", "splits.py", "embed.py", "probe.py", "aggregate.py"):
        assert f"for {script}" in served, served  # every job of the run was forked by the server
    ok(snakemake(tmp_path, tiny_config(tmp_path / "cache"), env={"EEGFM_JOB_SERVER": "off"}))
    assert not (tmp_path / ".snakemake/eegfm/job-server.log").exists()
    for table in ("metrics", "summary", "statistics"):
        forked = pd.read_csv(work / f"results/report/{table}.tsv", sep="\t")
        own = pd.read_csv(tmp_path / f"results/report/{table}.tsv", sep="\t")
        cost = [c for c in own.columns if c in COST]
        pd.testing.assert_frame_equal(forked.drop(columns=cost), own.drop(columns=cost), check_exact=True)


def test_snakemake_report_includes_the_figure(finished_run):
    work, _, config = finished_run
    ok(snakemake(work, config, "--report", "smk-report.zip"))
    import zipfile

    with zipfile.ZipFile(work / "smk-report.zip") as archive:
        assert any(name.endswith("scores.png") for name in archive.namelist())


def test_rerun_does_nothing(finished_run):
    work, _, config = finished_run
    proc = ok(snakemake(work, config, "-n"))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_renamed_dataset_hits_the_embedding_cache(finished_run):
    work, cache, config = finished_run
    before = pd.read_csv(work / "results/report/metrics.tsv", sep="\t")
    renamed = tiny_config(cache, dataset="renamed", report={"title": "other title"})
    ok(snakemake(work, renamed))
    for backbone in ("bandpower", "cbramod"):
        first = json.loads((work / f"results/tiny/embeddings/{backbone}.json").read_text())
        second = json.loads((work / f"results/renamed/embeddings/{backbone}.json").read_text())
        assert first["cache"] == "miss" and first["forward_passes"] > 0
        assert second["cache"] == "hit" and second["forward_passes"] == 0
        assert second["key"] == first["key"]
    a = pd.read_csv(work / "results/report/metrics.tsv", sep="\t")
    assert set(a["dataset"]) == {"renamed"}
    # each row's settings hash is its own job's: a new title and dataset name leave the probes' settings alone
    assert list(a["settings_hash"]) == list(before["settings_hash"]) and a["settings_hash"].nunique() == 1


def test_config_typo_fails_before_any_job(tmp_path):
    bad = tiny_config(tmp_path / "cache")
    bad["datasets"]["tiny"]["windows"]["lenght_s"] = 2.0
    proc = snakemake(tmp_path, bad, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "datasets.tiny.windows.lenght_s: unknown key" in out and "length_s" in out
    assert not (tmp_path / "results").exists()


def test_checkpoint_of_the_wrong_shape_fails_before_any_job(tmp_path):
    import torch
    from braindecode.models import CBraMod
    from safetensors.torch import save_file

    state = CBraMod(n_chans=19, n_times=800, sfreq=200, n_outputs=2).state_dict()
    state.pop(next(k for k in state if k.endswith("proj_out.0.weight") or "patch_embedding" in k))
    state["encoder.layers.0.linear1.weight"] = torch.zeros(3, 3)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "bad.safetensors"))
    bad = tiny_config(tmp_path / "cache")
    bad["backbones"] = [{"name": "cbramod", "weights": str(tmp_path / "bad.safetensors")}]
    proc = snakemake(tmp_path, bad, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "missing keys" in out and "encoder.layers.0.linear1.weight (3, 3)" in out
    assert not (tmp_path / "results").exists()


def test_the_python_api_on_the_same_windows_gives_the_workflows_numbers(finished_run, tmp_path):
    """eegfm.Experiment runs the workflow's stage functions: same windows, same config, same fold metrics,
    and the workflow's embeddings are reused from the shared cache (no forward pass)."""
    import numpy as np

    import eegfm
    from eegfm.windows_store import open_windows

    work, cache, config = finished_run
    store = open_windows(work / "results/tiny/windows")
    sections = {k: v for k, v in config.items() if k not in ("results", "datasets")}
    sections["cv"] = config["datasets"]["tiny"]["cv"]
    result = eegfm.Experiment(sections, out_dir=tmp_path).run(
        np.asarray(store.X[:]), store.meta, sfreq=store.info["sfreq"], ch_names=store.info["ch_names"], name="tiny")
    for backbone in ("bandpower", "cbramod"):
        pointer = json.loads((tmp_path / f"tiny/embeddings/{backbone}.json").read_text())
        assert (pointer["cache"], pointer["windows_forwarded"]) == ("hit", 0), backbone
    ours = result.metrics.set_index(["model", "fold"])
    assert len(ours) == 2 * 3
    for (model, fold), row in ours.iterrows():
        probe = json.loads((work / f"results/tiny/probe/{model}/fold-{fold}/metrics.json").read_text())
        assert row["balanced_accuracy"] == pytest.approx(probe["metrics"]["balanced_accuracy"], abs=1e-12)
        assert row["windows_key"] == probe["windows_key"] and row["settings_hash"] == probe["settings_sha"]
    # every metric, chance level and key of every fold row, and the columns themselves (versions included)
    flow = eegfm.load_results(work / "results")
    for table in ("metrics", "summary", "statistics"):  # load_results reads the run's own files
        pd.testing.assert_frame_equal(getattr(flow, table), pd.read_csv(work / f"results/report/{table}.tsv", sep="\t"))
    theirs = flow.metrics.set_index(["model", "fold"])
    assert list(ours.columns) == list(theirs.columns)
    numbers = [c for c in theirs.columns if pd.api.types.is_float_dtype(theirs[c]) and c not in ("wall_time_s",
                                                                                                 "peak_memory_mb")]
    pd.testing.assert_frame_equal(ours[numbers], theirs.loc[ours.index, numbers], check_exact=False, atol=1e-6, rtol=0)
    keys = ["windows_key", "embedding_key", "fingerprint_sha", "settings_hash", "estimator", "n_train", "n_test",
            *(c for c in theirs.columns if c.startswith("version_"))]
    pd.testing.assert_frame_equal(ours[keys], theirs.loc[ours.index, keys])
