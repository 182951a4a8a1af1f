"""The aggregated report: tables, one-line summary, a valid figure and a self-contained HTML page."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from eegfm.metrics import METRICS
from eegfm.report import aggregate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VERSIONS = {"eegfm": "0.1.0", "python": "3.12.0", "scikit-learn": "1.9.1"}
# dataset -> model -> balanced accuracy of each fold
SCORES = {
    "motor": {"bandpower": [0.6, 0.7, 0.8], "cbramod": [0.5, 0.55, 0.6]},
    "sleep": {"bandpower": [0.4, 0.45], "cbramod": [0.7, 0.75]},
}


def _metrics_record(dataset, model, fold, score, regime="probe"):
    metrics = {m: score for m in METRICS}
    metrics["roc_auc"] = None if model == "cbramod" and dataset == "sleep" else score  # undefined AUC
    return {
        "dataset": dataset, "model": model, "regime": regime, "fold": fold, "estimator": "logistic_regression",
        "metrics": metrics,
        "chance": {"balanced_accuracy": 0.5, "accuracy": 0.5 + 0.01 * fold, "cohen_kappa": 0.0, "f1_macro": 0.5,
                   "roc_auc": 0.5},
        "n_train": 80, "n_test": 40, "classes": ["a", "b"], "train_subjects": ["01"], "test_subjects": ["02"],
        "windows_key": f"w-{dataset}", "embedding_key": f"e-{dataset}-{model}", "fingerprint_sha": f"f-{model}",
        "versions": VERSIONS,
    }


def _pointer(dataset, model):
    return {
        "key": f"e-{dataset}-{model}", "store": f"/cache/{dataset}-{model}.zarr", "dataset": dataset,
        "backbone": model, "windows_key": f"w-{dataset}",
        "fingerprint": {"name": model, "weights": "random-init:0" if model == "cbramod" else "sha256:" + "ab" * 32},
        "fingerprint_sha": f"f-{model}", "cache": "hit" if model == "bandpower" else "miss",
        "forward_passes": 0 if model == "bandpower" else 120, "dim": 64, "n_windows": 120,
        "adaptation": {"mapped": ["C3", "C4"], "interpolated": ["Cz"], "zero_filled": [], "dropped": ["EOG1"]},
        "corpus_overlap": ["TUEG"] if model == "cbramod" else [],
    }


@pytest.fixture
def inputs(tmp_path):
    metrics_paths, pointer_paths = [], []
    for dataset, models in SCORES.items():
        for model, scores in models.items():
            for fold, score in enumerate(scores):
                path = tmp_path / "in" / dataset / model / f"fold{fold}" / "metrics.json"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(_metrics_record(dataset, model, fold, score)))
                metrics_paths.append(str(path))
            pointer = tmp_path / "in" / dataset / f"{model}.pointer.json"
            pointer.write_text(json.dumps(_pointer(dataset, model)))
            pointer_paths.append(str(pointer))
    return metrics_paths, pointer_paths


def _aggregate(inputs, out_dir, **kwargs):
    options = {"title": "Toy benchmark", "primary_metric": "balanced_accuracy", "config_hash": "c0ffee" * 4,
               "config": {"seed": 0, "datasets": {"motor": {"source": "synthetic"}}}}
    return aggregate(*inputs, out_dir, **{**options, **kwargs})


def test_tables_and_summary(inputs, tmp_path):
    out = tmp_path / "report"
    summary = _aggregate(inputs, out)

    rows = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert len(rows) == 10 == summary["n_rows"]
    assert {"dataset", "model", "regime", "fold", *METRICS, "n_train", "n_test", "windows_key", "embedding_key",
            "fingerprint_sha", "config_hash", "version_scikit-learn", "version_eegfm"} <= set(rows.columns)
    assert (rows["config_hash"] == "c0ffee" * 4).all()

    table = pd.read_csv(out / "summary.tsv", sep="\t").set_index(["dataset", "model"])
    assert len(table) == 4
    assert table.loc[("motor", "bandpower"), "n_folds"] == 3
    assert table.loc[("motor", "bandpower"), "balanced_accuracy_mean"] == pytest.approx(0.7)
    assert table.loc[("motor", "bandpower"), "balanced_accuracy_std"] == pytest.approx(np.std([0.6, 0.7, 0.8], ddof=1))
    assert table.loc[("motor", "bandpower"), "accuracy_chance"] == pytest.approx(0.51)  # mean of per-fold chance
    assert math.isnan(table.loc[("sleep", "cbramod"), "roc_auc_mean"])
    assert list(table.columns[:4]) == ["regime", "n_folds", "balanced_accuracy_mean", "balanced_accuracy_std"]

    text = (out / "summary.json").read_text()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert json.loads(text) == summary
    assert summary["best"]["motor"]["model"] == "bandpower"
    assert summary["best"]["sleep"]["model"] == "cbramod"
    assert summary["best"]["sleep"]["mean"] == pytest.approx(0.725)
    assert summary["means"]["motor"] == pytest.approx({"bandpower": 0.7, "cbramod": 0.55})


def test_primary_metric_with_undefined_values_gives_null_not_nan(inputs, tmp_path):
    summary = _aggregate(inputs, tmp_path / "r", primary_metric="roc_auc")
    assert summary["means"]["sleep"]["cbramod"] is None
    assert summary["best"]["sleep"]["model"] == "bandpower"
    assert "NaN" not in (tmp_path / "r" / "summary.json").read_text()


def test_figure_is_a_valid_png(inputs, tmp_path):
    _aggregate(inputs, tmp_path / "r")
    png = (tmp_path / "r" / "figures" / "scores.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "r" / "figures" / "scores.png")
    assert image.shape[0] > 200 and image.shape[1] > 400


def test_html_is_self_contained(inputs, tmp_path):
    _aggregate(inputs, tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    png = (tmp_path / "r" / "figures" / "scores.png").read_bytes()
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match and base64.b64decode(match.group(1)) == png
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"https?://|@import|<script|<link", page, flags=re.I)
    assert "<style>" in page and "Toy benchmark" in page
    # adaptation record, cache and forward passes, provenance, config
    assert "EOG1" in page and "Cz" in page and "miss" in page and ">120<" in page
    assert "c0ffee" * 4 in page and "scikit-learn" in page and "e-motor-cbramod" in page
    assert "<details><summary>Configuration</summary>" in page and "synthetic" in page
    assert "0.700 ± 0.100" in page
    # a random init is said plainly, a checkpoint by its hash
    assert "was pretrained on TUEG" in page
    assert "<b>random init</b> (seed 0)" in page and "sha256:abababab" in page


def test_html_escapes_user_text(inputs, tmp_path):
    _aggregate(inputs, tmp_path / "r", title="<script>alert(1)</script>")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_trained_regimes_are_separate_entries(inputs, tmp_path):
    metrics_paths, pointer_paths = inputs
    extra = tmp_path / "in" / "finetune.json"
    extra.write_text(json.dumps({**_metrics_record("motor", "cbramod", 0, 0.9, regime="lora"), "embedding_key": None}))
    summary = _aggregate(([*metrics_paths, str(extra)], pointer_paths), tmp_path / "r")
    assert summary["best"]["motor"]["model"] == "cbramod [lora]"
    assert summary["n_rows"] == 11


def test_errors(inputs, tmp_path):
    metrics_paths, pointer_paths = inputs
    with pytest.raises(ValueError, match="no metrics files"):
        _aggregate(([], pointer_paths), tmp_path / "r")
    with pytest.raises(FileNotFoundError, match=r"2 metrics file\(s\) missing .*nope1.json, .*nope2.json"):
        _aggregate(([*metrics_paths, str(tmp_path / "nope1.json"), str(tmp_path / "nope2.json")], pointer_paths),
                   tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="embedding pointer"):
        _aggregate((metrics_paths, [str(tmp_path / "gone.json")]), tmp_path / "r")
    with pytest.raises(ValueError, match="same dataset/model/regime/fold"):
        _aggregate(([*metrics_paths, metrics_paths[0]], pointer_paths), tmp_path / "r")
    assert not (tmp_path / "r").exists()
