"""The report of a regression dataset beside a classification one: each dataset scored, tested and compared on
its own primary metric, regression verdicts that name the score, a predicted-vs-true figure, no binomial test.

The fold artifacts come from the real probe (eegfm.probe.fit_predict) on embeddings that carry the target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegfm.config import CrossValidation, Probe
from eegfm.groups import window_units
from eegfm.probe import fit_predict
from eegfm.report import aggregate
from eegfm.splits import make_folds
from tests.test_probe import make_data
from tests.test_probe_regression import make_aged

VERSIONS = {"eegfm": "0.1.0", "python": "3.12.0", "scikit-learn": "1.9.1"}


def _dataset(root: Path, name: str, E_by_model: dict, meta: pd.DataFrame, target: str, n_splits: int,
             scheme: str = "group_kfold") -> list[str]:
    """windows.json/tsv, folds.json and every probe fold of one dataset; returns the metrics.json paths."""
    wdir = root / name / "windows"
    wdir.mkdir(parents=True)
    meta.to_csv(wdir / "windows.tsv", sep="\t", index=False)
    info = {"key": f"w-{name}", "n_windows": len(meta), "n_channels": 2, "n_times": 400, "sfreq": 100.0,
            "target": target, "subjects": sorted(meta["subject"].unique())}
    if target == "regression":
        ages = meta["label"].astype(float)
        info["target_summary"] = {"n_windows": len(meta), "n_distinct": int(ages.nunique()), "min": ages.min(),
                                  "max": ages.max(), "mean": ages.mean(), "std": ages.std(), "median": ages.median()}
    (wdir / "windows.json").write_text(json.dumps(info))
    folds = make_folds(meta, CrossValidation(scheme=scheme, n_splits=n_splits), seed=0, target=target)
    (root / name / "folds.json").write_text(json.dumps(folds))
    units = window_units(meta, folds)
    paths = []
    for model, E in E_by_model.items():
        for fold in folds["folds"]:
            preds, result = fit_predict(E, meta, fold, Probe(), 0, units, target=target)
            folder = root / name / "probe" / model / f"fold-{fold['fold']}"
            folder.mkdir(parents=True)
            preds.to_csv(folder / "predictions.tsv", sep="\t", index=False)
            record = {"dataset": name, "model": model, "regime": "probe", "fold": fold["fold"], "status": "ok",
                      "error": None, **result, "windows_key": f"w-{name}", "versions": VERSIONS, "device": "cpu",
                      "wall_time_s": 0.1, "peak_memory_mb": 100.0}
            (folder / "metrics.json").write_text(json.dumps(record))
            paths.append(str(folder / "metrics.json"))
    return paths


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    E_age, ages = make_aged(n_subjects=12, n=8)
    noise = np.random.default_rng(5).normal(size=E_age.shape)
    E_cls, classes = make_data(n_subjects=6, per_class=6)
    paths = _dataset(root, "age", {"ridge_good": E_age, "ridge_noise": noise}, ages, "regression", 4)
    paths += _dataset(root, "motor", {"bandpower": E_cls}, classes, "classification", 3)
    out = root / "report"
    summary = aggregate(paths, [], out, title="mixed", primary_metric={"classification": "balanced_accuracy",
                                                                        "regression": "mae"},
                        config_hash="c" * 24, config={}, n_permutations=199, n_bootstrap=200, seed=0,
                        windows_paths={d: str(root / d / "windows/windows.json") for d in ("age", "motor")},
                        folds_paths={d: str(root / d / "folds.json") for d in ("age", "motor")})
    return out, summary


def test_each_dataset_is_reported_on_its_own_primary_metric(mixed):
    out, summary = mixed
    assert summary["primary_metric"] == {"age": "mae", "motor": "balanced_accuracy"}
    best = summary["best"]["age"]
    assert best["metric"] == "mae" and best["target"] == "regression"
    assert best["model"] == "ridge_good"  # the lowest MAE wins
    assert best["pooled"] < best["chance"] and best["gap"] > 0  # MAE below the training-median baseline
    assert best["verdict"].startswith("MAE = ") and ", above chance (permutation p " in best["verdict"]
    assert best["verdict"].endswith("targets exchanged between subjects (one value per subject))")
    assert best["p_binomial"] is None
    assert summary["best"]["motor"]["metric"] == "balanced_accuracy"
    assert "age: best of 2 models, ridge_good MAE" in summary["headline"]


def test_summary_and_statistics_tables(mixed):
    out, _ = mixed
    rows = pd.read_csv(out / "summary.tsv", sep="\t").set_index(["dataset", "model"])
    good, noise = rows.loc[("age", "ridge_good")], rows.loc[("age", "ridge_noise")]
    assert good["target"] == "regression" and rows.loc[("motor", "bandpower"), "target"] == "classification"
    assert good["pearson_r_pooled"] > 0.8 and good["r2_pooled"] > 0.5 and good["pearson_r_chance"] == 0.0
    assert good["r2_chance"] <= 0 and good["mae_ci_low"] < good["mae_pooled"] < good["mae_ci_high"]
    assert good["p_permutation"] < 0.05 and noise["p_permutation"] > 0.05
    assert noise["verdict"].startswith("MAE = ") and "not distinguishable from chance" in noise["verdict"]
    assert np.isnan(good["p_binomial"]) and np.isnan(good["balanced_accuracy_mean"])
    statistics = pd.read_csv(out / "statistics.tsv", sep="\t")
    age = statistics[statistics["dataset"] == "age"]
    assert set(age["test"]) == {"permutation", "wilcoxon"}  # no binomial test for a continuous target
    assert set(age["metric"]) == {"mae"} and "5th pct." in age.loc[age["test"] == "permutation", "detail"].iloc[0]
    wilcoxon = age[age["test"] == "wilcoxon"].iloc[0]
    assert wilcoxon["n"] == 4  # the four folds' MAE compared
    motor = statistics[statistics["dataset"] == "motor"]
    assert set(motor["test"]) == {"permutation", "binomial"}
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert {"pearson_r", "r2", "mae", "chance_mae", "target"} <= set(metrics.columns)


def test_figures_and_html(mixed):
    out, _ = mixed
    page = (out / "report.html").read_text()
    assert "<h3>Predicted vs true</h3>" in page and "<h3>Confusion matrices</h3>" in page
    assert page.count('id="fig-predicted_vs_true"') == 1
    assert "<b>Regression targets</b> (r, R², MAE)" in page
    assert "regression: 20–75 (mean 47.5, median 47.5, 12 distinct values)" in page
    assert "Summary (Balanced accuracy / MAE)" in page and "<th>metric</th>" in page
    assert (out / "figures/predicted_vs_true.png").read_bytes().startswith(b"\x89PNG")
    # the binomial column is n/a for the regression rows only, with the reason beside it
    assert page.count("no binomial test: it counts correct predictions") == 2  # ridge_good, ridge_noise on age


def test_a_regression_only_report_defaults_to_r(tmp_path):
    E, meta = make_aged(n_subjects=8, n=6)
    paths = _dataset(tmp_path, "age", {"ridge": E}, meta, "regression", 4)
    summary = aggregate(paths, [], tmp_path / "report", title="ages", primary_metric="balanced_accuracy",
                        config_hash="c" * 24, config={}, n_permutations=99, n_bootstrap=50, seed=0,
                        windows_paths={"age": str(tmp_path / "age/windows/windows.json")},
                        folds_paths={"age": str(tmp_path / "age/folds.json")})
    assert summary["primary_metric"] == "pearson_r" and summary["best"]["age"]["verdict"].startswith("r = ")
    page = (tmp_path / "report/report.html").read_text()
    assert "<h3>Confusion matrices</h3>" not in page and "Summary (Pearson r)" in page


def test_leave_one_subject_out_over_ages_gets_a_best_entry_and_verdict(tmp_path):
    """QA of issue 11: each LOSO fold tests one age, so no fold defines r; summary.json had best = null and the
    headline and run summary said "no completed fold" beside a pooled r, CI and verdict in summary.tsv."""
    E, meta = make_aged(n_subjects=8, n=6)
    paths = _dataset(tmp_path, "age", {"ridge": E}, meta, "regression", 8, scheme="loso")
    summary = aggregate(paths, [], tmp_path / "report", title="ages", primary_metric="pearson_r",
                        config_hash="c" * 24, config={}, n_permutations=99, n_bootstrap=50, seed=0,
                        windows_paths={"age": str(tmp_path / "age/windows/windows.json")},
                        folds_paths={"age": str(tmp_path / "age/folds.json")})
    best = summary["best"]["age"]
    assert best is not None and best["mean"] is None and best["pooled"] > 0.5 and best["n_folds"] == 8
    assert best["text"].startswith("undefined in every fold") and best["verdict"].startswith("r = ")
    assert "no completed fold" not in summary["headline"]
    assert "no completed fold" not in (tmp_path / "report/report.html").read_text()
