"""The Python API: the workflow's stages on windows in memory, the same cache, the same artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eegfm
from eegfm.config import ConfigError
from eegfm.windowing import WindowsError

CHANNELS = ["Fz", "F3", "F4", "C3", "Cz", "C4", "P3", "Pz", "P4", "O1", "O2", "T7"]
SFREQ = 200.0


def _data(n_subjects: int = 4, per_class: int = 10, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """1-s windows (volts) whose 10 Hz power over C3 (class 'left') or C4 ('right') gives the class away."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SFREQ)) / SFREQ
    X, rows = [], []
    for s in range(n_subjects):
        for k in range(2 * per_class):
            label = "left" if k % 2 else "right"
            x = rng.normal(scale=5e-6, size=(len(CHANNELS), len(t)))
            x[CHANNELS.index("C3" if label == "left" else "C4")] += 8e-6 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6))
            X.append(x)
            rows.append({"subject": f"s{s}", "label": label, "onset_s": float(k)})
    return np.asarray(X, dtype=np.float32), pd.DataFrame(rows)


def _small_loso(out_dir):
    """An experiment of 2 subjects x 8 windows, leave-one-subject-out on bandpower, few resamples."""
    X, meta = _data(n_subjects=2, per_class=4)
    config = {"backbones": [{"name": "bandpower"}], "cv": {"scheme": "loso"},
              "report": {"n_permutations": 10, "n_bootstrap": 10}}
    return eegfm.Experiment(config, out_dir=out_dir), X, meta, config


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    X, meta = _data()
    config = {"backbones": [{"name": "bandpower"}], "cv": {"scheme": "group_kfold", "n_splits": 2},
              "report": {"n_permutations": 200, "n_bootstrap": 200}}
    result = eegfm.Experiment(config, out_dir=out).run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="toy")
    return out, result, (X, meta, config)


def test_a_run_returns_the_report_tables_and_every_fold(probe_run):
    out, result, _ = probe_run
    assert list(result.metrics["fold"]) == [0, 1] and set(result.metrics["model"]) == {"bandpower"}
    row = result.summary.iloc[0]
    assert row["balanced_accuracy_pooled"] > 0.8 and row["verdict"].startswith("above chance")
    assert {"permutation", "binomial"} <= set(result.statistics["test"])
    assert result.headline["best"]["toy"]["model"] == "bandpower"
    for name in ("metrics.tsv", "summary.tsv", "statistics.tsv", "summary.json"):
        assert (out / "report" / name).is_file()  # the workflow's layout
    assert not (out / "report" / "report.html").exists()  # rendered on demand only
    metrics = result.artifacts("metrics")
    assert sorted(metrics) == [("toy", "bandpower", "probe", 0), ("toy", "bandpower", "probe", 1)]
    predictions = result.artifacts("predictions", fold=1)
    assert list(predictions) == [("toy", "bandpower", "probe", 1)]
    assert len(next(iter(predictions.values()))) == metrics[("toy", "bandpower", "probe", 1)]["n_test"]
    assert result.artifacts("model_card") == {}  # probes have none


def test_the_report_renders_on_demand_and_load_results_reads_the_same_tables(probe_run):
    out, result, _ = probe_run
    path = result.report()
    assert path == out / "report" / "report.html" and "data:image/png;base64," in path.read_text()
    loaded = eegfm.load_results(out)
    pd.testing.assert_frame_equal(loaded.summary, pd.read_csv(out / "report" / "summary.tsv", sep="\t"))
    assert loaded.headline == result.headline and loaded.report() == path
    assert loaded.artifacts("metrics").keys() == result.artifacts("metrics").keys()


def test_the_returned_tables_equal_those_load_results_reads_back(probe_run):
    """QA: the run's own frames held None and '' where load_results (the same files) holds NaN."""
    out, result, _ = probe_run
    loaded = eegfm.load_results(out)
    for table in ("metrics", "summary", "statistics"):
        pd.testing.assert_frame_equal(getattr(result, table), getattr(loaded, table))
    for column in ("windows_key", "embedding_key", "fingerprint_sha", "settings_hash", "git_commit",
                   "version_eegfm", "version_scikit-learn", "version_torch"):  # as the workflow's rows carry them
        assert result.metrics[column].notna().all(), column


def test_a_second_run_reuses_the_windows_store_the_embeddings_and_the_unchanged_probe_folds(probe_run):
    out, first, (X, meta, config) = probe_run
    zarr_mtime = (out / "toy/windows/windows.zarr").stat().st_mtime_ns
    fold_files = sorted((out / "toy/probe/bandpower").glob("fold-*/*"))
    fold_mtimes = [p.stat().st_mtime_ns for p in fold_files]
    summaries = [out / "toy/splits/folds.json", *(out / "report" / n for n in ("metrics.tsv", "summary.json"))]
    summary_mtimes = [p.stat().st_mtime_ns for p in summaries]
    again = eegfm.Experiment(config, out_dir=out).run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="toy")
    pointer = json.loads((out / "toy/embeddings/bandpower.json").read_text())
    assert (pointer["cache"], pointer["forward_passes"]) == ("hit", 0)
    assert (out / "toy/windows/windows.zarr").stat().st_mtime_ns == zarr_mtime
    assert [p.stat().st_mtime_ns for p in fold_files] == fold_mtimes  # same inputs and settings: nothing refit
    # nor split again nor summarised again (eegfm.stage_reuse)
    assert [p.stat().st_mtime_ns for p in summaries] == summary_mtimes
    pd.testing.assert_frame_equal(again.metrics, first.metrics)
    pd.testing.assert_frame_equal(again.summary, first.summary)
    relabelled = meta.assign(label=meta["label"].map({"left": "right", "right": "left"}))
    assert again.report().is_file()  # the latest run's page
    eegfm.Experiment(config, out_dir=out).run(X, relabelled, sfreq=SFREQ, ch_names=CHANNELS, name="toy")
    written = pd.read_csv(out / "toy/windows/windows.tsv", sep="\t")
    assert list(written["label"]) == list(relabelled["label"])  # new labels, same content key: table rewritten
    assert json.loads((out / "toy/embeddings/bandpower.json").read_text())["cache"] == "hit"
    # the labels are not in the windows key but are in each fold's key: every probe fold was fitted again
    assert all(p.stat().st_mtime_ns != m for p, m in zip(fold_files, fold_mtimes, strict=True))
    assert all(p.stat().st_mtime_ns != m for p, m in zip(summaries, summary_mtimes, strict=True))
    with pytest.raises(FileNotFoundError, match=r"report.html does not exist; .*call report\(\) on the Results"):
        eegfm.load_results(out).report()  # QA: the first run's page, for the relabelled run's tables
    stronger = {**config, "probe": {"params": {"C": 0.01}}}
    before = [p.stat().st_mtime_ns for p in fold_files]
    eegfm.Experiment(stronger, out_dir=out).run(X, relabelled, sfreq=SFREQ, ch_names=CHANNELS, name="toy")
    assert all(p.stat().st_mtime_ns != m for p, m in zip(fold_files, before, strict=True))  # other settings


@pytest.mark.parametrize("reused", [False, True])
def test_an_earlier_runs_report_is_refused_once_a_later_run_wrote_the_same_out_dir(tmp_path, reused):
    """QA: a reused run's page was summarised from the later run's fold files, under the earlier title."""
    experiment, X, meta, config = _small_loso(tmp_path)
    earlier = experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    if reused:  # its tables kept, its summary deferred to report()
        earlier = experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    relabelled = meta.assign(label=meta["label"].map({"left": "right", "right": "left"}))
    later = eegfm.Experiment({**config, "report": {**config["report"], "title": "later"}}, out_dir=tmp_path).run(
        X, relabelled, sfreq=SFREQ, ch_names=CHANNELS)
    with pytest.raises(RuntimeError, match="no longer holds this run's tables: another run wrote into"):
        earlier.report()
    assert "later" in later.report().read_text()


def test_another_run_on_the_same_signal_shares_the_cache_and_units_become_volts(probe_run, tmp_path):
    out, first, (X, meta, config) = probe_run
    shared = {**config, "cache": str(out / "cache")}
    eegfm.Experiment(shared, out_dir=tmp_path / "a").run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="toy")
    assert json.loads((tmp_path / "a/toy/embeddings/bandpower.json").read_text())["cache"] == "hit"
    in_uv = eegfm.Experiment(shared, out_dir=tmp_path / "b").run(X.astype(np.float64) * 1e6, meta, sfreq=SFREQ,
                                                                 ch_names=CHANNELS, units="uV", name="toy")
    from eegfm.windows_store import open_windows

    np.testing.assert_allclose(np.asarray(open_windows(tmp_path / "b/toy/windows").X[:]), X, rtol=1e-6)
    assert (in_uv.metrics["balanced_accuracy"].round(6) == first.metrics["balanced_accuracy"].round(6)).all()


@pytest.mark.parametrize("regime", ["head", pytest.param("lora", marks=pytest.mark.slow)])  # lora: peft's imports
def test_fine_tuned_regimes_expose_history_card_checkpoint_and_diagnostics(tmp_path, regime):
    X, meta = _data(n_subjects=3, per_class=6)
    config = {"backbones": [{"name": "cbramod", "kwargs": {"n_layer": 1}}],
              "cv": {"scheme": "loso"},
              "finetune": {"backbones": ["cbramod"], "regimes": [regime], "optim": {"max_epochs": 1, "patience": 1}},
              "report": {"n_permutations": 50, "n_bootstrap": 50}}
    import torch

    original = torch.get_num_threads()
    torch.set_num_threads(3)
    before = torch.get_rng_state()
    result = eegfm.Experiment(config, out_dir=tmp_path).run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="toy",
                                                            corpus=["TUEG"])
    # QA: the recordings' corpus could not be given, so no pretraining overlap was ever warned about
    assert json.loads((tmp_path / "toy/embeddings/cbramod.json").read_text())["corpus_overlap"] == ["TUEG"]
    # QA: the run left the session's torch on embedding.threads (2) and its generator seeded by the config
    assert torch.get_num_threads() == 3 and torch.equal(torch.get_rng_state(), before)
    torch.set_num_threads(original)
    assert set(result.summary["regime"]) == {"probe", regime}
    for kind in ("training_history", "model_card", "diagnostics", "checkpoints"):
        found = result.artifacts(kind, regime=regime)
        assert sorted(k[3] for k in found) == [0, 1, 2], kind
    assert (result.metrics["status"] == "ok").all() and result.metrics["trainable_params"].gt(0).all()
    for column in ("windows_key", "settings_hash", "version_torch", "git_commit"):  # as a probe row carries them
        assert result.metrics[column].notna().all(), column
    card = result.artifacts("model_card", fold=0)[("toy", "cbramod", regime, 0)]
    assert card["regime"] == regime
    checkpoint = result.artifacts("checkpoints", fold=0)[("toy", "cbramod", regime, 0)]
    assert checkpoint["path"].endswith("checkpoint.safetensors") and Path(checkpoint["path"]).is_file()
    assert len(result.artifacts("training_history", fold=0)[("toy", "cbramod", regime, 0)]) == 1  # one epoch


def test_bad_input_is_named_before_any_work(tmp_path):
    X, meta = _data(n_subjects=2, per_class=2)
    with pytest.raises(ConfigError, match="estimatr"):
        eegfm.Experiment({"probe": {"estimatr": "lda"}}, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown estimator 'nope'"):
        eegfm.Experiment({"probe": {"estimator": "nope"}}, out_dir=tmp_path)
    pasted = r"datasets: the data are run\(X, metadata.*cv, target and preprocessing .* go at(.|\n)*results: give"
    with pytest.raises(ConfigError, match=pasted):  # QA: the workflow's config.yaml pasted whole
        eegfm.Experiment({"datasets": {"mine": {"cv": {"scheme": "loso"}}}, "results": "out"}, out_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"windows: X is windowed already(.|\n)*corpus: pass it to run\(\.\.\., "
                                          r"corpus(.|\n)*preprocessing.l_freq: X is not filtered, .* do it before run"):
        eegfm.Experiment({"windows": {"length_s": 2}, "preprocessing": {"l_freq": 1.0, "signal_check": "warn"},
                          "corpus": ["TUEG"]}, out_dir=tmp_path)  # a dataset's section pasted at the top
    experiment = eegfm.Experiment({}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="name 'report' names the dataset's folder.*none of report, logs, cache"):
        experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="report")  # QA: mixed into out_dir/report
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['label'\]"):
        experiment.run(X, meta.drop(columns="label"), sfreq=SFREQ, ch_names=CHANNELS)
    with pytest.raises(ValueError, match="7 rows for 8 windows"):
        experiment.run(X, meta.iloc[:7], sfreq=SFREQ, ch_names=CHANNELS)
    with pytest.raises(ValueError, match="NaN or Inf"):
        experiment.run(np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), meta, sfreq=SFREQ,
                       ch_names=CHANNELS)
    with pytest.raises(ValueError, match="units 'volts' unknown"):
        experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, units="volts")
    with pytest.raises(ValueError, match=r"1 window\(s\) without a subject \(rows 3\)"):
        experiment.run(X, meta.assign(subject=meta["subject"].where(meta.index != 3)), sfreq=SFREQ,
                       ch_names=CHANNELS)
    with pytest.raises(ValueError, match="X has 12 channels.* but ch_names names 11"):
        experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS[:-1])
    assert not (tmp_path / "data").exists()


def test_the_signal_checks_of_the_windows_job_stop_wrong_units_and_flat_recordings(tmp_path):
    """µV passed as volts (a factor of 1e6) and an all-zero recording ran as if nothing were wrong: the
    first scored, the second was taken for a duplicated recording."""
    X, meta = _data(n_subjects=2, per_class=2)
    experiment = eegfm.Experiment({}, out_dir=tmp_path)
    with pytest.raises(WindowsError, match=r"recording data:s0// \(subject s0\): the median peak-to-peak amplitude "
                                           r"is .* µV, above 10000 µV.*given units='V'"):
        experiment.run(X * 1e6, meta, sfreq=SFREQ, ch_names=CHANNELS)
    z = (X - X.mean(axis=2, keepdims=True)) / X.std(axis=2, keepdims=True)
    with pytest.raises(WindowsError, match=r"standardised \(z-scored\) X has no unit: pass it before scaling"):
        experiment.run(z, meta, sfreq=SFREQ, ch_names=CHANNELS)
    flat = np.where((meta["subject"] == "s1").to_numpy()[:, None, None], 0.0, X)
    with pytest.raises(WindowsError, match=r"recording data:s1// \(subject s1\): every channel is flat.*drop its "
                                           r"windows from X and metadata"):
        experiment.run(flat, meta, sfreq=SFREQ, ch_names=CHANNELS)
    dead = X.copy()
    dead[:, CHANNELS.index("Pz")] = 0.0
    with pytest.raises(WindowsError, match=r"flat channel\(s\) \['Pz'\].*Drop them from X and ch_names"):
        experiment.run(dead, meta, sfreq=SFREQ, ch_names=CHANNELS)
    assert not (tmp_path / "data").exists()
    warned = eegfm.Experiment({"preprocessing": {"signal_check": "warn"}, "cv": {"scheme": "loso"}},
                              out_dir=tmp_path).run(dead, meta, sfreq=SFREQ, ch_names=CHANNELS)
    sanity = json.loads((tmp_path / "data/windows/windows.json").read_text())["sanity"]
    assert sanity["signal_check"] == "warn" and len(warned.metrics) == 2
    assert [p["channels"] for r in sanity["recordings"] for p in r["problems"]] == [["Pz"], ["Pz"]]


def test_a_regression_target_is_probed_with_the_regressor_and_scored_by_r(tmp_path):
    """Labels that are numbers (10 Hz power over C3 grows with them): ridge, r / R² / MAE, a verdict."""
    rng = np.random.default_rng(1)
    t = np.arange(int(SFREQ)) / SFREQ
    X, rows = [], []
    for s in range(6):
        for k in range(12):
            value = float(rng.uniform(0, 10))
            x = rng.normal(scale=5e-6, size=(len(CHANNELS), len(t)))
            x[CHANNELS.index("C3")] += value * 1.5e-6 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6))
            X.append(x)
            rows.append({"subject": f"s{s}", "label": value, "onset_s": float(k)})
    config = {"target": "regression", "backbones": [{"name": "bandpower"}],
              "cv": {"scheme": "group_kfold", "n_splits": 3}, "report": {"n_permutations": 200, "n_bootstrap": 200}}
    result = eegfm.Experiment(config, out_dir=tmp_path).run(np.asarray(X, dtype=np.float32), pd.DataFrame(rows),
                                                            sfreq=SFREQ, ch_names=CHANNELS, name="scores")
    info = json.loads((tmp_path / "scores/windows/windows.json").read_text())
    assert info["target"] == "regression" and info["target_summary"]["n_windows"] == 72
    row = result.summary.iloc[0]
    assert row["target"] == "regression"
    assert {"pearson_r_pooled", "r2_pooled", "mae_pooled"} <= set(result.summary.columns)
    assert row["pearson_r_pooled"] > 0.5 and row["p_permutation"] < 0.05
    records = result.artifacts("metrics")
    assert {r["estimator"] for r in records.values()} == {"ridge"}
    assert all(set(r["metrics"]) == {"pearson_r", "r2", "mae"} for r in records.values())
    predictions = pd.concat(result.artifacts("predictions").values())  # numbers, unlike a classification's labels
    assert predictions["y_true"].dtype == float and predictions["y_pred"].dtype == float


def test_a_regression_target_that_is_not_a_number_is_named(tmp_path):
    X, meta = _data(n_subjects=2, per_class=2)
    with pytest.raises(ConfigError, match="unknown regressor 'logistic_regression'"):
        eegfm.Experiment({"target": "regression", "probe": {"regressor": "logistic_regression"}}, out_dir=tmp_path)
    with pytest.raises(WindowsError, match="left"):  # the labels 'left'/'right' are no numbers: named
        eegfm.Experiment({"target": "regression"}, out_dir=tmp_path).run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    assert not (tmp_path / "data/windows/windows.json").exists()


def test_within_subject_without_onsets_warns_that_windows_are_taken_as_consecutive(tmp_path, caplog):
    """QA of issue 11: without onset_s, sliding windows (stride < length) were silently taken as abutting, so the
    within_subject gap could not see them overlap across a block edge."""
    X, meta = _data(n_subjects=2, per_class=4)
    config = {"cv": {"scheme": "within_subject", "n_splits": 2}, "report": {"n_permutations": 10, "n_bootstrap": 10}}
    with caplog.at_level("WARNING", logger="eegfm.api"):
        eegfm.Experiment(config, out_dir=tmp_path / "a").run(X, meta.drop(columns="onset_s"), sfreq=SFREQ,
                                                             ch_names=CHANNELS)
    assert "metadata has no onset_s" in caplog.text and "Give onset_s" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="eegfm.api"):
        eegfm.Experiment(config, out_dir=tmp_path / "b").run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    assert "onset_s" not in caplog.text


def test_windows_given_twice_within_a_subject_are_warned_about_and_recorded(tmp_path, caplog):
    """QA of issue 13: X concatenated with itself (no onset_s) ran silently, each window counted twice."""
    X, meta = _data(n_subjects=2, per_class=4)
    twice = pd.concat([meta[meta["subject"] == "s0"]] * 2 + [meta[meta["subject"] == "s1"]], ignore_index=True)
    X2 = np.concatenate([X[meta["subject"] == "s0"]] * 2 + [X[meta["subject"] == "s1"]])
    config = {"backbones": [{"name": "bandpower"}], "cv": {"scheme": "loso"},
              "report": {"n_permutations": 10, "n_bootstrap": 10}}
    with caplog.at_level("WARNING", logger="eegfm.fold_audit"):
        result = eegfm.Experiment(config, out_dir=tmp_path).run(X2, twice.drop(columns="onset_s"), sfreq=SFREQ,
                                                                ch_names=CHANNELS)
    assert "16 windows are identical to other windows of the same subject" in caplog.text
    assert "(subject s0): 16 windows" in caplog.text and "Each copy counts again" in caplog.text
    folds = json.loads((tmp_path / "data/splits/folds.json").read_text())
    assert folds["audit"]["repeated_windows"] == 16
    assert "16 windows are identical to other windows of the same subject" in result.report().read_text()


def test_a_misspelled_artifact_filter_or_kind_is_named_not_an_empty_answer(probe_run):
    _, result, _ = probe_run
    with pytest.raises(ValueError, match=r"no fold has model='bandpowr'; this run's models \(given the other "
                                         r"filters\): bandpower"):
        result.artifacts("metrics", model="bandpowr")
    with pytest.raises(ValueError, match="no fold has fold=7"):
        result.artifacts("metrics", fold=7)
    with pytest.raises(ValueError, match="unknown artifact kind 'checkpoint' \\(did you mean 'checkpoints'\\?\\)"):
        result.artifacts("checkpoint")


def test_a_rerun_with_other_onsets_or_positions_rewrites_the_windows_store(tmp_path):
    """QA: the store was reused when only onset_s changed (its key hashes the signal, the reuse check compared
    ids and labels), so the folds' gaps read the old onsets."""
    X, meta = _data(n_subjects=2, per_class=4)
    config = {"backbones": [{"name": "bandpower"}], "cv": {"scheme": "within_subject", "n_splits": 2},
              "report": {"n_permutations": 10, "n_bootstrap": 10}}
    experiment = eegfm.Experiment(config, out_dir=tmp_path)
    experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    stored = tmp_path / "data/windows"
    experiment.run(X, meta.assign(onset_s=meta["onset_s"] * 10), sfreq=SFREQ, ch_names=CHANNELS)
    assert pd.read_csv(stored / "windows.tsv", sep="\t")["onset_s"].tolist() == (meta["onset_s"] * 10).tolist()
    assert json.loads((tmp_path / "data/embeddings/bandpower.json").read_text())["cache"] == "hit"  # same signal
    moved = {name: [0.0, 0.0, i / 100] for i, name in enumerate(CHANNELS)}
    experiment.run(X, meta.assign(onset_s=meta["onset_s"] * 10), sfreq=SFREQ, ch_names=CHANNELS, positions=moved)
    assert json.loads((stored / "windows.json").read_text())["positions"]["Cz"] == moved["Cz"]


def test_a_hand_edited_windows_table_or_fold_is_not_reused(tmp_path):
    """QA: labels flipped in windows.tsv, or a fold's predictions edited, were reused by the next run."""
    experiment, X, meta, config = _small_loso(tmp_path)
    first = experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    table = tmp_path / "data/windows/windows.tsv"
    edited = pd.read_csv(table, sep="\t", dtype=str)
    edited.loc[:3, "label"] = edited.loc[:3, "label"].map({"left": "right", "right": "left"})
    edited.to_csv(table, sep="\t", index=False)
    predictions = tmp_path / "data/probe/bandpower/fold-0/predictions.tsv"
    predictions.write_text(predictions.read_text().replace("left", "xx").replace("right", "left").replace("xx", "right"))
    again = experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    assert list(pd.read_csv(table, sep="\t")["label"]) == list(meta["label"])  # the table written again
    scores = ["balanced_accuracy_pooled", "p_permutation", "verdict"]  # every fold fitted again, to equal scores
    pd.testing.assert_frame_equal(again.summary[scores], first.summary[scores])
    pd.testing.assert_frame_equal(again.metrics[["fold", "balanced_accuracy"]], first.metrics[["fold", "balanced_accuracy"]])


def test_a_window_that_does_not_fit_a_backbone_is_named_before_anything_is_written(tmp_path):
    """QA: CBraMod on 0.8-s windows (200 samples at 250 Hz) failed after the windows, the splits and the
    backbones before it, naming a datasets.data.windows key the API has no way to set."""
    X, meta = _data(n_subjects=2, per_class=2)
    config = {"backbones": [{"name": "bandpower"}, {"name": "cbramod"}]}
    with pytest.raises(ValueError, match=r"multiple of 1 s.*In the Python API the windows are X as given \(200 "
                                         r"samples at 250 Hz = 0.8 s"):
        eegfm.Experiment(config, out_dir=tmp_path).run(X, meta, sfreq=250.0, ch_names=CHANNELS)
    assert not tmp_path.joinpath("data").exists()


def test_predictions_keep_labels_as_the_metadata_gave_them(tmp_path):
    """QA: integer labels came back from artifacts('predictions') as int64 (and a class 'None' as NaN), so
    they matched neither the metadata's labels nor the metrics' classes."""
    X, meta = _data(n_subjects=2, per_class=4)
    meta = meta.assign(label=meta["label"].map({"left": 0, "right": 1}))
    config = {"backbones": [{"name": "bandpower"}], "cv": {"scheme": "loso"},
              "report": {"n_permutations": 10, "n_bootstrap": 10}}
    result = eegfm.Experiment(config, out_dir=tmp_path).run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    predictions = pd.concat(result.artifacts("predictions").values())
    assert set(predictions["y_true"]) == {"0", "1"} and set(predictions["y_pred"]) <= {"0", "1"}
    assert result.artifacts("metrics", fold=0)[("data", "bandpower", "probe", 0)]["classes"] == ["0", "1"]


def test_a_second_dataset_into_the_same_out_dir_says_it_replaces_the_first_ones_report(tmp_path, caplog):
    """QA: the report tables held only the latest dataset, and nothing said the earlier one had left them."""
    X, meta = _data(n_subjects=2, per_class=4)
    experiment = eegfm.Experiment({"cv": {"scheme": "loso"}, "report": {"n_permutations": 10, "n_bootstrap": 10}},
                                  out_dir=tmp_path)
    experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="first")
    with caplog.at_level("WARNING", logger="eegfm.results"):
        experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS, name="second")
    assert "the report of dataset(s) ['first'] is replaced by this run's (second)" in caplog.text
    assert set(eegfm.load_results(tmp_path).metrics["dataset"]) == {"second"}


def test_weights_that_cannot_be_used_stop_the_experiment_when_it_is_made(tmp_path):
    """QA: a missing weights file failed in the embed stage (after windows and splits) saying 'run prefetch',
    and 'pretrain:<name>' (a workflow recipe the API does not run) said the same."""
    from eegfm.backbones.checkpoints import BackboneWeightsError

    with pytest.raises(ConfigError, match=r"backbones\[0\].weights: 'pretrain:pre' names the workflow's pretraining "
                                          r"recipe 'pre'; give the folder it wrote instead"):
        eegfm.Experiment({"backbones": [{"name": "cbramod", "weights": "pretrain:pre"}]}, out_dir=tmp_path)
    with pytest.raises(BackboneWeightsError, match=r"checked before any job runs(.|\n)*backbones\[1\] \(cbramod\)"):
        eegfm.Experiment({"backbones": [{"name": "bandpower"}, {"name": "cbramod", "weights": str(tmp_path / "no")}]},
                         out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_one_changed_value_in_x_misses_the_cache_and_refits_every_fold(tmp_path):
    """The content key sees a single sample (guard: the embeddings and the probe folds are not reused)."""
    experiment, X, meta, config = _small_loso(tmp_path)
    first = experiment.run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    changed = X.copy()
    changed[5, 3, 17] += 1e-6
    second = experiment.run(changed, meta, sfreq=SFREQ, ch_names=CHANNELS)
    pointer = json.loads((tmp_path / "data/embeddings/bandpower.json").read_text())
    assert (pointer["cache"], pointer["windows_forwarded"]) == ("miss", len(X))
    assert set(second.metrics["windows_key"]).isdisjoint(first.metrics["windows_key"])
    assert set(second.metrics["embedding_key"]).isdisjoint(first.metrics["embedding_key"])


def test_a_home_relative_out_dir_and_cache_are_the_home_folder(tmp_path, monkeypatch):
    """QA: '~/eegfm' made a folder named '~' in the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    X, meta = _data(n_subjects=2, per_class=2)
    eegfm.Experiment({"cv": {"scheme": "loso"}, "cache": "~/cache", "report": {"n_permutations": 10, "n_bootstrap": 10}},
                     out_dir="~/out").run(X, meta, sfreq=SFREQ, ch_names=CHANNELS)
    assert (tmp_path / "home/out/report/metrics.tsv").is_file() and any((tmp_path / "home/cache").iterdir())
    assert not (tmp_path / "~").exists()
    assert eegfm.load_results("~/out").results_dir == tmp_path / "home/out"


def test_regimes_without_backbones_are_named_and_backbones_without_regimes_say_what_they_train(tmp_path, caplog):
    """QA: finetune.regimes ['lora'] without finetune.backbones ran probes only, saying nothing."""
    with pytest.raises(ConfigError, match=r"finetune.regimes \['lora'\] but finetune.backbones is empty.*labels of "
                                          "backbones: cbramod"):
        eegfm.Experiment({"backbones": [{"name": "cbramod"}], "finetune": {"regimes": ["lora"]}}, out_dir=tmp_path)
    with caplog.at_level("WARNING", logger="eegfm.api"):
        eegfm.Experiment({"backbones": [{"name": "cbramod"}], "finetune": {"backbones": ["cbramod"]}}, out_dir=tmp_path)
    assert "finetune.regimes not given: ['cbramod'] train the workflow's default regimes ['scratch', 'full']" in caplog.text
