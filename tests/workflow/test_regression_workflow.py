"""End to end on real EEG: a regression study with a recording-level numeric label ("age") in the metadata
table, probed with ridge on band powers, reported with r / R² / MAE, permutation chance and a verdict.

Eight "subjects" are 15 s stretches of the real 124 s motor EDF of ../shared, each written as its own FIF with
a 10 Hz rhythm whose amplitude falls with the subject's age (40 µV at 20 years, none at 69): a label that
genuinely lives in the signal, so the probe must find it above chance. Only the band-power backbone runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegfm.report_stats import p_text
from tests.workflow.test_workflow import ok, snakemake

pytestmark = pytest.mark.slow

MOTOR_EDF = "mne-tools+mne-testing-data/EDF/test_edf_overlapping_annotations.edf"
AGES = [20 + 7 * i for i in range(8)]


@pytest.fixture(scope="module")
def aged_subjects(real_data, tmp_path_factory) -> Path:
    """``ages.tsv`` (path, subject, age) and one FIF per subject: 15 s of real EEG plus a 10 Hz rhythm of
    40 · (69 − age) / 49 µV on every channel."""
    import mne

    raw = mne.io.read_raw(real_data / MOTOR_EDF, preload=True, verbose="error")
    folder = tmp_path_factory.mktemp("aged")
    rng = np.random.default_rng(0)
    rows = ["path\tsubject\tage"]
    for i, age in enumerate(AGES):
        part = raw.copy().crop(15.0 * i, 15.0 * (i + 1), include_tmax=False)
        amplitude = 40e-6 * (AGES[-1] - age) / (AGES[-1] - AGES[0])
        rhythm = amplitude * np.sin(2 * np.pi * 10.0 * part.times + rng.uniform(0, 2 * np.pi))
        part.apply_function(lambda x, r=rhythm: x + r, picks="eeg", channel_wise=True)
        part.save(folder / f"sub-{i:02d}_raw.fif", verbose="error")
        rows.append(f"sub-{i:02d}_raw.fif\tP{i:02d}\t{age}")
    (folder / "ages.tsv").write_text("\n".join(rows) + "\n")
    return folder


def regression_config(cache: Path, table: Path) -> dict:
    ages = {
        "source": "files",
        "target": "regression",
        "files": {"metadata": str(table), "label_column": "age"},
        "preprocessing": {"l_freq": 1.0, "h_freq": 40.0, "sfreq": 128.0},
        "windows": {"mode": "fixed", "length_s": 2.0},
        "cv": {"scheme": "group_kfold", "n_splits": 4},
    }
    return {"results": "results", "cache": str(cache), "seed": 0, "datasets": {"ages": ages},
            "backbones": [{"name": "bandpower"}], "embedding": {"threads": 1},
            "report": {"n_permutations": 499, "n_bootstrap": 200}}


@pytest.fixture(scope="module")
def regression_run(aged_subjects, tmp_path_factory):
    work = tmp_path_factory.mktemp("regression")
    config = regression_config(tmp_path_factory.mktemp("regression-cache"), aged_subjects / "ages.tsv")
    ok(snakemake(work, config))
    return work, config


def test_the_probe_finds_the_age_above_chance_and_the_report_says_so(regression_run):
    """Finding 11 (regression): a continuous label column was impossible; compute_regression_metrics never ran."""
    work, _ = regression_run
    report = work / "results/report"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["primary_metric"] == "pearson_r"
    best = summary["best"]["ages"]
    assert best["metric"] == "pearson_r" and best["target"] == "regression" and best["unit"] == "subject"
    assert best["pooled"] > 0.6 and None not in best["ci"] and best["ci"][0] > 0 and best["chance"] == 0.0
    assert best["p_permutation"] < 0.01 and best["p_binomial"] is None
    assert best["verdict"] == (f"r = {best['pooled']:.3f}, above chance (permutation {p_text(best['p_permutation'])}, "
                               "targets exchanged between subjects (one value per subject))")
    rows = pd.read_csv(report / "summary.tsv", sep="\t")
    assert rows.loc[0, "target"] == "regression" and rows.loc[0, "r2_pooled"] > 0
    assert rows.loc[0, "mae_pooled"] < rows.loc[0, "mae_chance"]  # better than the training median
    statistics = pd.read_csv(report / "statistics.tsv", sep="\t")
    assert list(statistics["test"]) == ["permutation"] and statistics.loc[0, "metric"] == "pearson_r"
    html = (report / "report.html").read_text()
    assert "<h3>Predicted vs true</h3>" in html and "<h3>Confusion matrices</h3>" not in html
    assert "regression: 20–69 (mean 44.5, median 44.5, 8 distinct values)" in html
    assert (report / "figures/predicted_vs_true.png").stat().st_size > 10_000


def test_windows_folds_and_probe_records_carry_the_target(regression_run):
    work, _ = regression_run
    res = work / "results/ages"
    info = json.loads((res / "windows/windows.json").read_text())
    assert info["target"] == "regression" and info["target_summary"]["n_distinct"] == 8
    meta = pd.read_csv(res / "windows/windows.tsv", sep="\t", dtype={"label": str})
    assert sorted(meta["label"].unique()) == sorted(str(a) for a in AGES)  # the raw cells
    folds = json.loads((res / "splits/folds.json").read_text())
    assert folds["target"] == "regression" and folds["classes"] == [] and folds["n_splits"] == 4
    for fold in folds["folds"]:
        assert fold["audit"]["train_target"]["max"] > fold["audit"]["train_target"]["min"]
        record = json.loads((res / f"probe/bandpower/fold-{fold['fold']}/metrics.json").read_text())
        assert record["target"] == "regression" and record["estimator"] == "ridge"
        assert set(record["metrics"]) == set(record["chance"]) == {"pearson_r", "r2", "mae"}
        preds = pd.read_csv(res / f"probe/bandpower/fold-{fold['fold']}/predictions.tsv", sep="\t")
        assert preds["y_true"].dtype == float and preds["y_pred"].dtype == float


def test_rerun_does_nothing(regression_run):
    work, config = regression_run
    proc = ok(snakemake(work, config, "-n"))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_an_age_that_is_no_number_stops_the_run_before_any_job_naming_dataset_recording_and_value(aged_subjects,
                                                                                                 tmp_path):
    table = tmp_path / "ages.tsv"
    rows = (aged_subjects / "ages.tsv").read_text().splitlines()
    rows[3] = rows[3].rsplit("\t", 1)[0] + "\tthirty-four"
    table.write_text("\n".join(rows).replace("sub-", f"{aged_subjects}/sub-") + "\n")
    proc = snakemake(tmp_path, regression_config(tmp_path / "cache", table), "--until", "windows")
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "dataset 'ages' has target: regression, but 1 recording(s) have a value in files.metadata column 'age'" \
           in message and "sub-02_raw.fif (subject P02): 'thirty-four'" in message
    assert not (tmp_path / "results").exists()  # stopped when the DAG was built: no job ran
