"""End to end on real EEG: a single-subject study of three runs, evaluated leave-one-run-out and
within-subject, and the same recording listed under two subject ids (the splits job must stop).

The runs are the real 124 s motor EDF of ../shared cut into three files (tests/conftest.py
``three_runs``); only the band-power backbone runs, so the whole module takes well under a minute.
"""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest

from tests.workflow.test_workflow import COST, ok, snakemake

pytestmark = pytest.mark.slow


def designs_config(cache, metadata) -> dict:
    motor = {
        "source": "files",
        "files": {"metadata": str(metadata)},
        "preprocessing": {"l_freq": 1.0, "h_freq": 40.0, "sfreq": 128.0},
        "windows": {"mode": "fixed", "event_id": {"T1": "left", "T2": "right"}, "length_s": 2.0, "stride_s": 1.0},
        "cv": {"scheme": "leave_one_run_out"},
    }
    within = {**motor, "cv": {"scheme": "within_subject", "n_splits": 4}}  # block edges inside runs
    return {"results": "results", "cache": str(cache), "seed": 0, "datasets": {"motor": motor, "within": within},
            "backbones": [{"name": "bandpower"}], "embedding": {"threads": 1},
            "report": {"n_permutations": 199, "n_bootstrap": 200}}


@pytest.fixture(scope="module")
def designs_run(three_runs, tmp_path_factory):
    work = tmp_path_factory.mktemp("designs")
    config = designs_config(tmp_path_factory.mktemp("designs-cache"), three_runs / "recordings.tsv")
    ok(snakemake(work, config))
    return work, config


def test_leave_one_run_out_report_states_score_ci_chance_p_and_verdict(designs_run):
    work, _ = designs_run
    report = work / "results/report"
    summary = json.loads((report / "summary.json").read_text())
    for dataset, unit, n in (("motor", "run", 3), ("within", "block", 4)):
        best = summary["best"][dataset]
        assert best["unit"] == unit and best["n_units"] == n and best["n_folds"] == n
        assert best["pooled"] is not None and None not in best["ci"] and best["chance"] is not None
        assert best["p_permutation"] is not None and best["p_binomial"] is not None
        assert best["verdict"].startswith(("above chance (permutation p ", "not distinguishable from chance"))
        assert f"labels shuffled within {unit}s" in best["verdict"]
        assert best["ci_method"].startswith(f"block bootstrap within {unit}s ({n} {unit}s < report.ci_min_units 8")
    html = (report / "report.html").read_text()
    assert "leave_one_run_out: 3 folds holding out runs" in html and ">3 runs<" in html
    assert "within_subject: 4 folds holding out blocks, gap 2 s" in html
    assert "Held-out units (blocks, runs)" in html and "held-out subjects" not in html
    assert "no usable out-of-fold predictions" not in html
    # the headline says, beside the numbers, that a block-bootstrap interval is conditional on these runs
    assert re.search(r"pooled -?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\], conditional on these runs", html)
    rows = pd.read_csv(report / "summary.tsv", sep="\t")
    assert rows["verdict"].notna().all() and rows["p_permutation"].notna().all()


def test_folds_probe_records_and_audit_speak_of_runs(designs_run):
    work, _ = designs_run
    res = work / "results"
    folds = json.loads((res / "motor/splits/folds.json").read_text())
    assert folds["unit"] == "run" and folds["audit"]["overlap_total"] == 0 and folds["audit"]["duplicates_checked"]
    assert [f["audit"]["test_groups"] for f in folds["folds"]] == [["S001/1/1"], ["S001/1/2"], ["S001/1/3"]]
    for k in range(3):
        record = json.loads((res / f"motor/probe/bandpower/fold-{k}/metrics.json").read_text())
        assert record["unit"] == "run" and record["test_groups"] == [f"S001/1/{k + 1}"]
        assert len(record["train_groups"]) == 2 and record["train_subjects"] == ["S001"]
    within = json.loads((res / "within/splits/folds.json").read_text())
    assert within["gap_s"] == 2.0 and sum(f["audit"]["gap_dropped"] for f in within["folds"]) > 0
    meta = pd.read_csv(res / "within/windows/windows.tsv", sep="\t").set_index("window_id")
    for fold in within["folds"]:  # no training window within 2 s (edge to edge) of a test window of its run
        train, test = meta.loc[fold["train"]], meta.loc[fold["test"]]
        for recording, part in test.groupby("recording"):
            onsets = train.loc[train["recording"] == recording, "onset_s"].to_numpy()
            distance = abs(onsets[:, None] - part["onset_s"].to_numpy()[None, :]) - 2.0
            assert distance.size == 0 or distance.min() >= 2.0 - 1e-6


def test_rerun_does_nothing(designs_run):
    work, config = designs_run
    proc = ok(snakemake(work, config, "-n"))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_second_results_folder_reuses_the_windows_from_the_cache(designs_run, tmp_path):
    work, config = designs_run
    ok(snakemake(tmp_path, config))
    for dataset in ("motor", "within"):
        log = (tmp_path / f"results/logs/windows/{dataset}.log").read_text()
        assert "windows cache hit" in log and "the job that built these windows logged" in log
        first, second = (w / f"results/{dataset}/windows" for w in (work, tmp_path))
        files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
        assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
        assert os.path.samefile(first / "windows.zarr/zarr.json", second / "windows.zarr/zarr.json")  # linked
    own = pd.read_csv(tmp_path / "results/report/metrics.tsv", sep="\t")
    before = pd.read_csv(work / "results/report/metrics.tsv", sep="\t")
    cost = [c for c in own.columns if c in COST]
    pd.testing.assert_frame_equal(before.drop(columns=cost), own.drop(columns=cost), check_exact=True)


def test_a_recording_under_two_subject_ids_stops_the_splits_job(three_runs, tmp_path):
    """Finding 3: the same file under two subject ids scored 1.000 (p = 0.005) with a clean audit.

    The splits job runs first among ready jobs (its priority), so with the cores taken by one embed job
    the run stops before any embedding is computed."""
    table = tmp_path / "recordings.tsv"
    run1 = three_runs / "S001_run-1_raw.fif"
    run2 = three_runs / "S001_run-2_raw.fif"
    table.write_text(f"path\tsubject\n{run1}\tS001\n{run2}\tS001\n{run1}\tS002\n{run2}\tS002\n")
    config = designs_config(tmp_path / "cache", table)
    config["datasets"] = {"dup": {**config["datasets"]["motor"], "cv": {"scheme": "loso"}}}
    config["embedding"] = {"threads": 2}  # = --cores: embed and splits cannot run side by side
    proc = snakemake(tmp_path, config)
    assert proc.returncode != 0
    assert not (tmp_path / "results/dup/embeddings").exists() and not (tmp_path / "results/logs/embed").exists()
    log = (tmp_path / "results/logs/splits/dup.log").read_text()
    assert "occur under more than one subject with identical content" in log
    assert f"{run1} (subject S001)" in log and f"{run1} (subject S002)" in log
    assert not (tmp_path / "results/dup/splits/folds.json").exists()
