"""The aggregated report from fixture fold artifacts: tables (failed folds included), statistics,
figures, a one-line summary and a self-contained HTML page; the page rendered in headless Chromium."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegfm.config import CrossValidation
from eegfm.figures import FIGURES
from eegfm.metrics import METRICS, chance_levels, compute_metrics
from eegfm.report import aggregate, collect_warnings
from eegfm.splits import make_folds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VERSIONS = {"eegfm": "0.1.0", "git_commit": "abc1234", "python": "3.12.0", "scikit-learn": "1.9.1",
            "torch": "2.13.0", "braindecode": "1.8.1", "mne": "1.13.2"}
TITLE = "Toy <script>alert(1)</script> benchmark"
CONFIG_HASH = "c0ffee" * 4
# dataset -> (classes, subjects, folds); entry -> (model, regime, how often a prediction is right)
DATASETS = {"motor": (["feet", "left", "right"], 8, 4), "sleep": (["N2", "REM"], 6, 3)}
ENTRIES = {
    "motor": [("bandpower", "probe", 0.85), ("cbramod", "probe", 0.0), ("cbramod", "scratch", 0.5),
              ("cbramod", "full", 0.7)],
    "sleep": [("bandpower", "probe", 0.6), ("cbramod", "probe", 0.9)],
}
FAILED = ("motor", "cbramod", "full", 2)  # this fold crashed: status failed, empty predictions


def _windows(dataset):
    classes, n_subjects, _ = DATASETS[dataset]
    rows = [{"subject": f"{s:02d}", "session": "1", "run": "1", "label": c, "onset_s": 4.0 * k,
             "recording": f"sub-{s:02d}"} for s in range(n_subjects) for c in classes for k in range(4)]
    meta = pd.DataFrame(rows)
    meta.insert(0, "window_id", np.arange(len(meta)))
    return meta


def _predict(meta, ids, classes, right, rng):
    """Predictions that are right with probability ``right`` (0: uniform guesses), scores summing to 1."""
    y = meta.loc[ids, "label"].to_numpy()
    guess = rng.choice(classes, len(ids))
    y_pred = np.where(rng.random(len(ids)) < right, y, guess) if right else guess
    scores = rng.dirichlet(np.ones(len(classes)), len(ids)) * 0.5
    scores[np.arange(len(ids)), [classes.index(p) for p in y_pred]] += 0.5
    frame = pd.DataFrame({"window_id": ids, "subject": meta.loc[ids, "subject"].to_numpy(), "session": "1",
                          "run": "1", "y_true": y, "y_pred": y_pred})
    for j, c in enumerate(classes):
        frame[f"score_{c}"] = scores[:, j]
    return frame, compute_metrics(y, y_pred, scores, classes)


def _history(rng, n_epochs, level):
    epochs = np.arange(n_epochs)
    val = level - 0.3 * np.exp(-epochs / 2) + rng.normal(0, 0.02, n_epochs)
    return pd.DataFrame({"epoch": epochs, "phase": "train", "lr_backbone": 1e-4, "lr_head": 1e-3,
                         "train_loss": 1.0 / (epochs + 1), "val_loss": 1.1 / (epochs + 1),
                         "val_balanced_accuracy": val, "val_accuracy": val, "time_s": 1.5})


def build_inputs(root: Path) -> dict:
    """Fold folders, embedding stores + pointers, windows and folds files of two toy datasets."""
    import zarr

    from eegfm.integrity import write_array

    rng = np.random.default_rng(0)
    metrics_paths, pointer_paths, windows_paths, folds_paths = [], [], {}, {}
    for dataset, (classes, _, n_folds) in DATASETS.items():
        meta = _windows(dataset)
        wdir = root / dataset / "windows"
        wdir.mkdir(parents=True)
        meta.to_csv(wdir / "windows.tsv", sep="\t", index=False)
        counts = meta["label"].value_counts().sort_index()
        (wdir / "windows.json").write_text(json.dumps({
            "key": f"w-{dataset}", "n_windows": len(meta), "n_channels": 4, "n_times": 800, "sfreq": 200.0,
            "ch_names": ["C3", "Cz", "C4", "Pz"], "classes": classes,
            "class_counts": {k: int(v) for k, v in counts.items()}, "subjects": sorted(meta["subject"].unique())}))
        windows_paths[dataset] = str(wdir / "windows.json")
        folds = make_folds(meta, CrossValidation(n_splits=n_folds), seed=0)
        (root / dataset / "folds.json").write_text(json.dumps(folds))
        folds_paths[dataset] = str(root / dataset / "folds.json")
        for model, regime, right in ENTRIES[dataset]:
            for fold in folds["folds"]:
                k = fold["fold"]
                sub = f"probe/{model}" if regime == "probe" else f"finetune/{model}/{regime}"
                folder = root / dataset / sub / f"fold-{k}"
                folder.mkdir(parents=True)
                preds, metrics = _predict(meta, fold["test"], classes, right, rng)
                failed = (dataset, model, regime, k) == FAILED
                if failed:
                    preds = preds.iloc[:0]
                    metrics = {m: None for m in METRICS}
                preds.to_csv(folder / "predictions.tsv", sep="\t", index=False)
                trained = regime != "probe"
                record = {
                    "dataset": dataset, "model": model, "regime": regime, "fold": k,
                    "status": "failed" if failed else "ok",
                    "error": "CUDA out of memory at epoch 3" if failed else None,
                    "metrics": metrics, "chance": chance_levels(meta.loc[fold["test"], "label"], classes),
                    "n_train": len(fold["train"]), "n_test": len(fold["test"]), "classes": classes,
                    "train_subjects": fold["audit"]["train_subjects"],
                    "test_subjects": fold["audit"]["test_subjects"],
                    "windows_key": f"w-{dataset}", "embedding_key": None if trained else f"e-{dataset}-{model}",
                    "fingerprint_sha": f"f-{model}", "settings_sha": f"s-{model}-{regime}", "versions": VERSIONS,
                    "device": "cuda" if trained else "cpu",
                    "wall_time_s": 30.0 * (1 + (regime == "full")) if trained else 0.5,
                    "peak_memory_mb": 900.0 if trained else 200.0,
                    "trainable_params": {"probe": 27, "scratch": 4_000_000, "full": 4_000_000}[regime],
                    "frozen_params": 0 if trained else None,
                }
                if trained:
                    record.update({"n_val": 10, "total_params": 4_000_000, "best_epoch": 4})
                    if not failed:
                        _history(rng, 6 + k, right).to_csv(folder / "history.tsv", sep="\t", index=False)
                (folder / "metrics.json").write_text(json.dumps(record))
                metrics_paths.append(str(folder / "metrics.json"))
        for model in sorted({m for m, r, _ in ENTRIES[dataset] if r == "probe"}):
            E = rng.normal(size=(len(meta), 6)).astype("float32")
            if model == "bandpower":  # class structure in the embedding
                E[:, 0] += 3.0 * meta["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
            store = root / "cache" / f"{dataset}-{model}.zarr"
            group = zarr.open_group(str(store), mode="w")
            write_array(group, "E", E, key=f"e-{dataset}-{model}")
            group.attrs["key"] = f"e-{dataset}-{model}"
            pointer = {
                "key": f"e-{dataset}-{model}", "store": str(store), "dataset": dataset, "backbone": model,
                "windows_key": f"w-{dataset}",
                "fingerprint": {"name": model, "weights": "random-init:0" if model == "cbramod" else "sha256:" + "ab" * 32},
                "fingerprint_sha": f"f-{model}", "cache": "hit" if model == "bandpower" else "miss",
                "forward_passes": 0 if model == "bandpower" else 120, "dim": 6, "n_windows": len(meta),
                "adaptation": {"mapped": ["C3", "C4"], "interpolated": ["Cz"], "zero_filled": ["Pz"],
                               "dropped": ["EOG1"]},
                "corpus_overlap": ["TUEG"] if model == "cbramod" else [],
                "pretrain_overlap": {"windows": 12, "recordings": ["r1"], "any": True} if model == "cbramod" else None,
            }
            path = root / dataset / "embeddings" / f"{model}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(pointer))
            pointer_paths.append(str(path))
    return {"metrics_paths": metrics_paths, "pointer_paths": pointer_paths, "windows_paths": windows_paths,
            "folds_paths": folds_paths}


def run_aggregate(inputs, out_dir, **kwargs):
    options = {"title": TITLE, "primary_metric": "balanced_accuracy", "config_hash": CONFIG_HASH,
               "config": {"seed": 0, "datasets": {"motor": {"source": "synthetic"}}},
               "windows_paths": inputs["windows_paths"], "folds_paths": inputs["folds_paths"],
               "n_permutations": 199, "n_bootstrap": 200, "seed": 0}
    return aggregate(inputs["metrics_paths"], inputs["pointer_paths"], out_dir, **{**options, **kwargs})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return build_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, run_aggregate(inputs, out)


# ----------------------------------------------------------------------------- tables


def test_metrics_table_keeps_failed_folds(report):
    out, summary = report
    rows = pd.read_csv(out / "metrics.tsv", sep="\t", dtype={"fold": int})
    assert len(rows) == 4 * 4 + 2 * 3 == summary["n_rows"]
    assert {"dataset", "model", "regime", "fold", "status", "error", *METRICS, *(f"chance_{m}" for m in METRICS),
            "n_train", "n_test", "n_val", "trainable_params", "wall_time_s", "peak_memory_mb", "device",
            "windows_key", "embedding_key", "fingerprint_sha", "settings_hash", "git_commit", "version_eegfm",
            "version_torch", "version_braindecode", "version_mne"} <= set(rows.columns)
    assert "pearson_r" not in rows.columns  # no regression records
    failed = rows[rows["status"] == "failed"]
    assert len(failed) == 1 and tuple(failed.iloc[0][["dataset", "model", "regime", "fold"]]) == FAILED
    assert failed.iloc[0]["error"] == "CUDA out of memory at epoch 3"
    assert failed[list(METRICS)].isna().all(axis=None)
    assert (rows["git_commit"] == "abc1234").all() and "config_hash" not in rows  # the run's hash is not a row's
    assert (rows["settings_hash"] == "s-" + rows["model"] + "-" + rows["regime"]).all()  # each job's own


def test_summary_table(report, inputs):
    out, _ = report
    table = pd.read_csv(out / "summary.tsv", sep="\t").set_index(["dataset", "model", "regime"])
    assert len(table) == 6
    full = table.loc[("motor", "cbramod", "full")]
    assert (full["n_folds"], full["n_ok"], full["n_failed"], full["status"]) == (4, 3, 1, "partial")
    assert full["n_units"] == 6 and table.loc[("motor", "bandpower", "probe"), "n_units"] == 8
    # the pooled score and its verdict cover the completed folds only, and say so (they read as the whole design)
    assert full["verdict"].endswith("; pooled over 3 of 4 folds (fold 2 failed): 6 subjects, the failed fold's "
                                    "missing")
    assert "pooled over" not in table.loc[("motor", "bandpower", "probe"), "verdict"]
    folds = pd.read_csv(out / "metrics.tsv", sep="\t")
    ok = folds[(folds["model"] == "cbramod") & (folds["regime"] == "full") & (folds["status"] == "ok")]
    assert full["balanced_accuracy_mean"] == pytest.approx(ok["balanced_accuracy"].mean(), abs=1e-6)
    assert full["balanced_accuracy_std"] == pytest.approx(ok["balanced_accuracy"].std(ddof=1), abs=1e-6)
    scratch = table.loc[("motor", "cbramod", "scratch")]
    assert full["balanced_accuracy_gap_scratch"] == pytest.approx(
        full["balanced_accuracy_mean"] - scratch["balanced_accuracy_mean"], abs=1e-5)
    assert math.isnan(scratch["balanced_accuracy_gap_scratch"])
    assert math.isnan(table.loc[("motor", "bandpower", "probe"), "balanced_accuracy_gap_scratch"])
    for key, row in table.iterrows():
        assert row["balanced_accuracy_ci_low"] <= row["balanced_accuracy_pooled"] <= row["balanced_accuracy_ci_high"]
        # 8 subjects (report.ci_min_units) are resampled; sleep's 6, or motor's with a failed fold, are too few
        expected = "subject bootstrap (8 subjects" if row["n_units"] == 8 else "block bootstrap within subjects (6"
        assert row["ci_method"].startswith(expected), key
        assert row["verdict"].startswith(("above chance", "not distinguishable from chance")), key
        assert row["balanced_accuracy_gap_chance"] == pytest.approx(
            row["balanced_accuracy_mean"] - row["balanced_accuracy_chance"], abs=1e-5)
    good, guess = table.loc[("motor", "bandpower", "probe")], table.loc[("motor", "cbramod", "probe")]
    assert good["p_permutation"] == pytest.approx(1 / 200)  # 199 permutations, none reaches it
    assert good["p_binomial"] < 1e-6
    assert guess["p_permutation"] > 0.05
    assert guess["chance_permutation"] == pytest.approx(1 / 3, abs=0.03)
    assert table.loc[("motor", "bandpower", "probe"), "balanced_accuracy_chance"] == pytest.approx(1 / 3)
    assert table.loc[("motor", "cbramod", "full"), "trainable_params"] == 4_000_000
    assert table.loc[("motor", "cbramod", "full"), "device"] == "cuda"


def test_statistics_table(report):
    out, _ = report
    stats = pd.read_csv(out / "statistics.tsv", sep="\t")
    motor, sleep = stats[stats["dataset"] == "motor"], stats[stats["dataset"] == "sleep"]
    assert len(motor[motor["test"] == "wilcoxon"]) == 6  # 4 entries, all pairs
    assert motor.loc[motor["test"] == "wilcoxon", "p_holm"].notna().all()
    assert (motor.loc[motor["test"] == "wilcoxon", "exploratory"]).all()  # 4 folds < 6
    friedman = motor[motor["test"] == "friedman"].iloc[0]
    assert friedman["n"] == 3  # fold 2 of cbramod [full] failed
    assert set(motor.loc[motor["test"] == "average_rank", "entry_a"]) == {
        "bandpower", "cbramod", "cbramod [scratch]", "cbramod [full]"}
    assert "friedman" not in set(sleep["test"])  # only two entries
    assert set(stats.loc[stats["test"] == "permutation", "entry_a"]) >= {"bandpower", "cbramod [full]"}


def test_summary_json_is_one_line_headline(report):
    out, summary = report
    text = (out / "summary.json").read_text()
    assert text.count("\n") == 1 and text.endswith("\n") and "NaN" not in text
    assert json.loads(text) == summary
    best = summary["best"]["motor"]
    assert best["model"] == "bandpower" and best["regime"] == "probe"
    assert best["p_permutation"] == pytest.approx(1 / 200)
    assert best["ci"][0] <= best["pooled"] <= best["ci"][1]
    assert best["gap"] == pytest.approx(best["mean"] - best["chance"], abs=1e-5)
    assert summary["best"]["sleep"]["model"] == "cbramod"
    assert summary["n_failed"] == 1
    assert summary["headline"].startswith("motor: best of 4 models, bandpower Balanced accuracy")
    assert set(summary["means"]["motor"]) == {"bandpower", "cbramod", "cbramod [scratch]", "cbramod [full]"}


def test_every_figure_is_written_as_png_and_svg(report):
    out, _ = report
    import matplotlib.image

    for name in FIGURES:
        png = (out / "figures" / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC), name
        image = matplotlib.image.imread(out / "figures" / f"{name}.png")
        assert image.shape[0] > 150 and image.shape[1] > 300, name
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml"), name


# ----------------------------------------------------------------------------- html


def test_html_is_self_contained(report):
    out, _ = report
    page = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"https?://|@import|<script|<link|url\(", page, flags=re.I)
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == len(FIGURES) - 1  # every figure but predicted_vs_true (no regression dataset) applies
    assert all(src.startswith("data:image/png;base64,") for src in images)
    scores = (out / "figures" / "scores.png").read_bytes()
    assert any(base64.b64decode(src.split(",", 1)[1]) == scores for src in images)
    assert "<style>" in page


def test_html_sections_and_content(report):
    out, _ = report
    page = (out / "report.html").read_text()
    for section in ("summary", "config", "data", "results", "statistics", "cost", "embeddings", "provenance",
                    "warnings"):
        assert f'<h2 id="{section}">' in page, section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page  # escaped title
    # the failed fold is shown, not dropped
    assert "FAILED" in page and "CUDA out of memory at epoch 3" in page and "1 FAILED" in page
    # warnings: corpus overlap, failed fold, few folds
    assert "was pretrained on TUEG" in page
    assert "12 identical windows, 1 shared recordings" in page  # the workflow's own pretraining data
    assert "FAILED fold: motor · cbramod [full] fold 2" in page
    assert "exploratory" in page
    # statistics, methods, adaptation record, provenance, config
    assert "Holm" in page and "Friedman" in page and "permuted within each unit" in page
    # two models are testable against chance: the verdict rests on the Holm-adjusted p
    assert "above chance (permutation p = 0.005, Holm-adjusted over the 2 models tested p = 0.010, labels " \
        "shuffled within subjects)" in page
    assert "no usable out-of-fold predictions" not in page  # every completed fold has its predictions
    assert "EOG1" in page and "Cz" in page and "miss" in page and ">120<" in page
    assert CONFIG_HASH in page and "abc1234" in page and "scikit-learn" in page and "e-motor-cbramod" in page
    assert "<details><summary>Configuration</summary>" in page and "synthetic" in page
    assert "<b>random init</b> (seed 0)" in page and "sha256:abababab" in page


def test_a_probe_only_report_says_there_is_nothing_to_train(inputs, tmp_path):
    probes = {**inputs, "metrics_paths": [p for p in inputs["metrics_paths"] if "/probe/" in p]}
    probes.update(pointer_paths=[], windows_paths={}, folds_paths={})
    summary = run_aggregate(probes, tmp_path / "r", n_permutations=0, n_bootstrap=0)
    page = (tmp_path / "r" / "report.html").read_text()
    assert "No trained regimes (history.tsv)" in page
    assert "No frozen embeddings" in page
    assert summary["best"]["motor"]["p_permutation"] is None  # test switched off
    for name in FIGURES:  # placeholders still exist for snakemake's declared outputs
        assert (tmp_path / "r" / "figures" / f"{name}.png").is_file()


def test_a_record_without_predictions_has_no_interval_and_says_why(inputs, tmp_path):
    sleep = [p for p in inputs["metrics_paths"] if "/sleep/probe/bandpower/" in p]
    copies = []
    for path in sleep:
        target = tmp_path / "in" / Path(path).parent.name / "metrics.json"
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)  # no predictions.tsv beside it
        copies.append(str(target))
    run_aggregate({"metrics_paths": copies, "pointer_paths": [], "windows_paths": {}, "folds_paths": {}},
                  tmp_path / "r")
    row = pd.read_csv(tmp_path / "r" / "summary.tsv", sep="\t").iloc[0]
    assert row["ci_method"] == "no interval: no out-of-fold predictions (predictions.tsv)"  # no fold bootstrap
    assert math.isnan(row["balanced_accuracy_ci_low"]) and math.isnan(row["p_permutation"])
    assert row["verdict"] == "no verdict: no out-of-fold predictions"
    page = (tmp_path / "r" / "report.html").read_text()
    assert "no usable out-of-fold predictions" in page
    assert not re.search(r"n/a \[\d", page)  # never an interval beside a missing score


def test_regression_metrics_get_columns_only_when_present():
    from eegfm.tables import metrics_table, summary_table

    base = {"dataset": "age", "model": "m", "regime": "probe", "chance": {}, "versions": {}}
    records = [{**base, "fold": k, "metrics": {"pearson_r": r, "r2": r * r, "mae": 5.0 - r}}
               for k, r in enumerate([0.5, 0.7, 0.9])]
    table = metrics_table(records)
    assert {"pearson_r", "r2", "mae"} <= set(table.columns) and table["status"].eq("ok").all()
    assert table["balanced_accuracy"].isna().all()
    summary = summary_table(table, {}, "balanced_accuracy").iloc[0]
    assert summary["pearson_r_mean"] == pytest.approx(0.7) and summary["mae_mean"] == pytest.approx(4.3)
    assert summary["n_ok"] == 3


def test_a_tiny_p_value_is_not_rounded_to_zero():
    """The audit's 154 windows: p_binomial was written as 0.0 in summary.tsv and statistics.tsv."""
    from eegfm.tables import metrics_table, summary_table

    base = {"dataset": "d", "model": "m", "regime": "probe", "chance": {}, "versions": {}}
    table = metrics_table([{**base, "fold": k, "metrics": {"balanced_accuracy": 0.9}} for k in range(3)])
    stats = {("d", "m", "probe"): {"p_binomial": 3.2e-31, "p_permutation": 0.001}}
    row = summary_table(table, stats, "balanced_accuracy").iloc[0]
    assert row["p_binomial"] == 3.2e-31 and row["balanced_accuracy_mean"] == pytest.approx(0.9)


def test_errors(inputs, tmp_path):
    paths = inputs["metrics_paths"]
    with pytest.raises(ValueError, match="no metrics files"):
        run_aggregate({**inputs, "metrics_paths": []}, tmp_path / "r")
    with pytest.raises(FileNotFoundError, match=r"2 metrics file\(s\) missing .*nope1.json, .*nope2.json"):
        run_aggregate({**inputs, "metrics_paths": [*paths, str(tmp_path / "nope1.json"),
                                                   str(tmp_path / "nope2.json")]}, tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="embedding pointer"):
        run_aggregate({**inputs, "pointer_paths": [str(tmp_path / "gone.json")]}, tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="folds.json"):
        run_aggregate({**inputs, "folds_paths": {"motor": str(tmp_path / "gone.json")}}, tmp_path / "r")
    with pytest.raises(ValueError, match="same dataset/model/regime/fold"):
        run_aggregate({**inputs, "metrics_paths": [*paths, paths[0]]}, tmp_path / "r")
    with pytest.raises(ValueError, match="unknown primary_metric"):
        run_aggregate(inputs, tmp_path / "r", primary_metric="f2")
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- browser


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=10000"]
# appended to a copy of the report (the report itself has no scripts): writes what the browser decoded
_PROBE = """<script>
window.addEventListener("load", () => {
  const out = [...document.images].map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight,
    shown: i.getBoundingClientRect().width}));
  const pre = document.createElement("pre"); pre.id = "eegfm-images"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="eegfm-chromium-") as profile:
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(request, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI installs it with tools/system-packages.sh")
        pytest.skip("chromium not installed (tools/system-packages.sh installs it)")
    out, _ = request.getfixturevalue("report")  # built only when a browser is there
    page = (out / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"))
    dom = _run_chromium(browser, "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="eegfm-images">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, dom.stdout[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == len(FIGURES) - 1  # every figure but predicted_vs_true (no regression dataset)
    for image in images:  # decoded (a broken data URI has naturalWidth 0) and laid out
        assert image["w"] > 100 and image["h"] > 50 and image["shown"] > 100, image

    # the report itself (no probe script): a full-page screenshot kept as a test artifact
    artifacts = Path(os.environ.get("EEGFM_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report-screenshot.png"
    done = _run_chromium(browser, f"--screenshot={shot}", "--window-size=1280,2400", (out / "report.html").as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    print(f"report screenshot: {shot}")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    # not blank: a good share of the page is neither white nor one flat colour, and the figure area
    # (below the run summary) holds many distinct colours
    assert (pixels.std(axis=2) + np.abs(pixels.mean(axis=2) - 1)).mean() > 0.02
    assert len(np.unique((pixels[600:] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200


# ----------------------------------------------------------------------------- one subject, three runs


@pytest.fixture(scope="module")
def single_subject_report(tmp_path_factory):
    """Leave-one-run-out of one subject with three runs, configured as in the issue (loso by run): a good
    probe and a guessing one."""
    from tests.windows_tables import timed_meta

    root = tmp_path_factory.mktemp("loro")
    meta = timed_meta(subjects=("S001",), runs=("1", "2", "3"), n=40)
    folds = make_folds(meta, CrossValidation(scheme="loso", group_by="run"), seed=0)
    (root / "folds.json").write_text(json.dumps(folds))
    (root / "windows.json").write_text(json.dumps({
        "key": "w", "n_windows": len(meta), "n_channels": 4, "n_times": 400, "sfreq": 200.0, "classes": ["left", "right"],
        "class_counts": {"left": 60, "right": 60}, "subjects": ["S001"],
        "channels_dropped": {"eog": ["EOG1", "EOG2"]},
        "empty_recordings": [{"recording": "run-4.edf", "subject": "S001", "reason": "shorter than one window"}],
        "sanity": {"signal_check": "warn", "amplitude_range_uv": [0.1, 10000.0], "recordings": [
            {"recording": "run-3.edf", "subject": "S001", "median_ptp_uv": 2.458e8, "problems": [
                {"kind": "amplitude", "channels": [], "message": "run-3.edf (subject S001): the median peak-to-peak "
                                                                 "amplitude is 2.458e+08 µV, above 10000 µV"}]}]},
        "windows_dropped": [{"recording": "run-2.edf", "onset_s": float(t), "labels": "left+right"} for t in range(7)],
    }))
    rng = np.random.default_rng(0)
    table = meta.set_index("window_id")
    paths = []
    for model, right in (("good", 0.9), ("guess", 0.0)):
        for fold in folds["folds"]:
            rows = table.loc[fold["test"]]
            y = rows["label"].to_numpy()
            guess = rng.choice(["left", "right"], len(y))
            y_pred = np.where(rng.random(len(y)) < right, y, guess) if right else guess
            folder = root / model / f"fold-{fold['fold']}"
            folder.mkdir(parents=True)
            pd.DataFrame({"window_id": fold["test"], "subject": rows["subject"].to_numpy(), "session": "1",
                          "run": rows["run"].to_numpy(), "y_true": y, "y_pred": y_pred,
                          "score_left": (y_pred == "left") * 0.8 + 0.1, "score_right": (y_pred == "right") * 0.8 + 0.1,
                          }).to_csv(folder / "predictions.tsv", sep="\t", index=False)
            (folder / "metrics.json").write_text(json.dumps({
                "dataset": "motor", "model": model, "regime": "probe", "fold": fold["fold"], "status": "ok",
                "metrics": compute_metrics(y, y_pred, None, ["left", "right"]),
                "chance": chance_levels(y, ["left", "right"]), "n_train": len(fold["train"]),
                "n_test": len(fold["test"]), "classes": ["left", "right"], "versions": VERSIONS}))
            paths.append(str(folder / "metrics.json"))
    inputs = {"metrics_paths": paths, "pointer_paths": [], "windows_paths": {"motor": str(root / "windows.json")},
              "folds_paths": {"motor": str(root / "folds.json")}}
    out = root / "report"
    return out, run_aggregate(inputs, out)


def test_one_subject_three_runs_gets_pooled_score_ci_chance_permutation_p_and_a_verdict(single_subject_report):
    """Finding 1: one subject got no pooled score, no permutation/binomial p and no verdict."""
    out, summary = single_subject_report
    best = summary["best"]["motor"]
    assert best["model"] == "good" and best["unit"] == "run" and best["n_units"] == 3
    assert best["pooled"] > 0.8 and best["ci"][0] < best["pooled"] < best["ci"][1]
    assert best["p_permutation"] == pytest.approx(1 / 200) and best["p_binomial"] < 1e-6
    assert best["verdict"] == ("above chance (permutation p = 0.005, Holm-adjusted over the 2 models tested "
                               "p = 0.010, labels shuffled within runs)")
    assert best["ci_method"].startswith("block bootstrap within runs (3 runs < report.ci_min_units 8")
    rows = pd.read_csv(out / "summary.tsv", sep="\t").set_index("entry")
    assert rows.loc["guess", "verdict"].startswith("not distinguishable from chance (permutation p = ")
    assert rows.loc["guess", "chance_permutation"] == pytest.approx(0.5, abs=0.03)
    assert (rows["n_subjects"] == 1).all()


def test_the_gap_over_chance_is_named_as_the_fold_means_not_the_pooled_scores(single_subject_report):
    """The run summary printed 'pooled 0.558 [0.428, 0.658] (chance 0.500, gap +0.129)': the gap was the fold
    mean's (0.629), read beside the pooled score it is not. The line now also says what the folds held out."""
    out, summary = single_subject_report
    best = summary["best"]["motor"]
    gap = f"chance 0.500 (gap of the fold mean {best['gap']:+.3f}"
    page = (out / "report.html").read_text()
    assert f"over 3 folds holding out 3 runs, {gap}); pooled {best['pooled']:.3f} [" in page
    assert f"± 0.029 holding out 3 runs, {gap}; pooled {best['pooled']:.3f})" in summary["headline"]
    assert "gap over chance (fold mean)" in page and ", gap " not in page and ", gap " not in summary["headline"]
    assert "fold chance 0.500 · pooled" in page and "· chance" not in page  # the all-metrics cells


def test_one_subject_report_speaks_of_runs(single_subject_report):
    out, summary = single_subject_report
    page = (out / "report.html").read_text()
    assert "loso: 3 folds holding out runs" in page and ">3 runs<" in page
    assert "Held-out units (runs)" in page  # the leakage audit's caption
    assert "labels shuffled within runs" in page and "conditional on these runs" in page
    assert "above chance (permutation p = 0.005, Holm-adjusted over the 2 models tested p = 0.010, labels " \
        "shuffled within runs)" in page
    assert "no usable out-of-fold predictions" not in page
    # the scores caption promises exactly what is drawn: diamond, whisker, chance and the null quantile
    assert "black diamond: score of the pooled out-of-fold predictions, whisker: its 95% confidence interval " \
           "(block bootstrap within runs)" in page and "dotted: 95th percentile of the permutation null" in page
    # what the input side recorded is shown
    assert "channels dropped (not EEG) — eog: EOG1, EOG2 (2)" in page
    assert "no window from run-4.edf (subject S001): shorter than one window" in page


def test_what_the_windows_job_warned_about_is_in_the_reports_warnings(single_subject_report):
    """Amplitude problems kept under signal_check: warn were only in the windows log and windows.json; a
    recording without a window or windows dropped (any windows.json '*dropped*' record) only in the data notes."""
    out, _ = single_subject_report
    page = (out / "report.html").read_text()
    warnings = page[page.index('id="warnings"'):]
    assert "motor: signal check (preprocessing.signal_check: warn): run-3.edf (subject S001): the median " \
           "peak-to-peak amplitude is 2.458e+08 µV" in warnings
    assert "motor: no window from run-4.edf (subject S001): shorter than one window" in warnings
    assert "motor: windows dropped: recording run-2.edf, onset_s 0.0, labels left+right" in warnings
    assert "onset_s 4.0" in warnings and "onset_s 5.0" not in warnings  # five listed, the rest counted
    assert "motor: 2 more in windows.json &#39;windows_dropped&#39;" in warnings
    assert "channels dropped (not EEG)" not in warnings  # by design (keep_types), a data note only


def test_scores_caption_only_promises_what_is_drawn():
    from eegfm.figures import scores_caption

    bare = pd.DataFrame({"balanced_accuracy_pooled": [np.nan], "balanced_accuracy_ci_low": [np.nan],
                         "balanced_accuracy_ci_high": [np.nan], "balanced_accuracy_chance": [0.5],
                         "chance_permutation_q": [np.nan], "ci_method": ["no interval: ..."], "n_failed": [0]})
    assert scores_caption(bare, "balanced_accuracy") == \
        "Bars: mean over completed folds; dots: single folds; dashed: analytic chance."


def test_the_report_warns_when_holm_leaves_no_comparison_reachable():
    """Six LOSO folds, three entries: each comparison was shown as confirmatory although Holm's smallest p
    (0.094) cannot fall below 0.05."""
    table = pd.DataFrame([{"dataset": "loso", "model": model, "regime": "probe", "fold": fold, "status": "ok"}
                          for model in ("a", "b", "c") for fold in range(6)])
    warnings = collect_warnings(table, pd.DataFrame(), [], [], 0.05)
    assert warnings == ["loso: 3 pairwise comparisons over 6 folds cannot reach a Holm-adjusted p < 0.05 "
                        "(smallest 0.0938); they are exploratory."]
    assert collect_warnings(table[table["model"] != "c"], pd.DataFrame(), [], [], 0.05) == []


def test_the_report_warns_about_identical_windows_the_splits_job_counted():
    table = pd.DataFrame([{"dataset": "d", "model": "a", "regime": "probe", "fold": f, "status": "ok"}
                          for f in range(8)])
    folds = {"d": {"audit": {"repeated_windows": 16}}, "e": {"audit": {"repeated_windows": 0}}}
    warnings = collect_warnings(table, pd.DataFrame(), [], [], 0.05, folds=folds)
    assert len(warnings) == 1 and warnings[0].startswith(
        "d: 16 windows are identical to other windows of the same subject (a recording listed twice, two events "
        "at one sample, or flat or clipped stretches); no test window has a copy in its training set")
