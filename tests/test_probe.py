"""The probe: estimator resolution, training-fold-only fitting, and the fold artifacts."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import StandardScaler

from eegfm.config import CrossValidation, Probe
from eegfm.estimators import ESTIMATORS, resolve_estimator
from eegfm.probe import build_pipeline, fit_pipeline, fit_predict, run_probe
from eegfm.splits import SplitError, make_folds, write_folds
from eegfm.windows_store import WindowsStoreWriter

CLASSES = ["left", "rest", "right"]


def make_data(n_subjects=6, per_class=10, dim=16, signal=1.5, seed=0):
    """Windows table plus embeddings whose mean depends on the class and (a little) on the subject."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(CLASSES), dim)) * signal
    rows, E = [], []
    for s in range(n_subjects):
        offset = rng.normal(size=dim) * 0.3
        for c, label in enumerate(CLASSES):
            for k in range(per_class):
                rows.append({"subject": f"{s:02d}", "session": "1", "run": "1", "label": label,
                             "onset_s": 4.0 * k, "recording": f"sub-{s:02d}"})
                E.append(centers[c] + offset + rng.normal(size=dim))
    meta = pd.DataFrame(rows)
    meta.insert(0, "window_id", np.arange(len(meta)))
    return np.asarray(E), meta


@pytest.fixture(scope="module")
def data():
    E, meta = make_data()
    folds = make_folds(meta, CrossValidation(n_splits=3), seed=0)
    return E, meta, folds


# ----------------------------------------------------------------------------- resolve_estimator


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_short_name_resolves_to_a_classifier(name):
    estimator = resolve_estimator(name, {})
    assert is_classifier(estimator)
    assert type(estimator).__module__.startswith("sklearn.")


def test_dotted_paths_and_params():
    svc = resolve_estimator("sklearn.svm.SVC", {"kernel": "linear", "C": 0.5})
    assert svc.get_params()["kernel"] == "linear" and svc.C == 0.5
    assert resolve_estimator("logistic_regression", {"C": 2.0}).get_params()["max_iter"] == 2000  # default cap kept
    assert resolve_estimator("logistic_regression", {"max_iter": 50}).max_iter == 50  # user wins


def test_unknown_estimator_lists_short_names():
    with pytest.raises(ValueError, match="unknown estimator 'svm'.*logistic_regression, lda, linear_svm"):
        resolve_estimator("svm", {})
    with pytest.raises(ValueError, match="unknown estimator"):
        resolve_estimator("os.system", {})
    with pytest.raises(ValueError, match="not a scikit-learn classifier"):
        resolve_estimator("sklearn.linear_model.Ridge", {})
    with pytest.raises(ValueError, match="no estimator class 'Nope'"):
        resolve_estimator("sklearn.svm.Nope", {})


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"does not take parameter\(s\) C.*valid parameters: .*n_neighbors"):
        resolve_estimator("knn", {"C": 1.0})


def test_invalid_parameter_value_fails_at_resolution():
    with pytest.raises(ValueError, match="'C' parameter"):
        resolve_estimator("logistic_regression", {"C": -1.0})


def test_importing_the_module_stays_light():
    code = "import sys, eegfm.probe; print(sorted(m for m in ('sklearn', 'pandas', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- build_pipeline


def test_pipeline_scales_and_seeds():
    pipe = build_pipeline(Probe(estimator="random_forest", params={"n_estimators": 10}), seed=7)
    assert isinstance(pipe.steps[0][1], StandardScaler)
    assert isinstance(pipe.steps[-1][1], RandomForestClassifier) and pipe.steps[-1][1].random_state == 7
    kept = build_pipeline(Probe(estimator="random_forest", params={"random_state": 3}, scale=False), seed=7)
    assert len(kept.steps) == 1 and kept.steps[-1][1].random_state == 3
    assert "random_state" not in build_pipeline(Probe(estimator="lda", params={}), 7).steps[-1][1].get_params()


# ----------------------------------------------------------------------------- fit_predict


def test_predicts_only_test_windows_of_unseen_subjects(data):
    E, meta, folds = data
    fold = folds["folds"][0]
    preds, result = fit_predict(E, meta, fold, Probe(), seed=0)
    assert sorted(preds["window_id"]) == fold["test"]
    assert list(preds.columns) == ["window_id", "subject", "session", "run", "y_true", "y_pred",
                                   "score_left", "score_rest", "score_right"]
    assert set(result["train_subjects"]).isdisjoint(result["test_subjects"])
    assert set(preds["subject"]) == set(result["test_subjects"])
    assert result["n_train"] == len(fold["train"]) and result["n_test"] == len(fold["test"])
    assert result["classes"] == CLASSES
    assert (preds["y_true"] == meta.set_index("window_id").loc[preds["window_id"], "label"].to_numpy()).all()
    np.testing.assert_allclose(preds.filter(like="score_").sum(axis=1), 1.0)
    assert result["metrics"]["balanced_accuracy"] > 0.8 > result["chance"]["balanced_accuracy"]
    assert result["estimator_params"]["C"] == 1.0


def test_scaler_and_classifier_see_training_rows_only(data):
    E, meta, folds = data
    fold = folds["folds"][1]
    E = E.copy()
    E[fold["test"]] += 50.0  # a shift only the test rows have: an all-rows scaler would absorb part of it
    labels = meta["label"].to_numpy()
    cfg = Probe()
    fitted = fit_pipeline(E, labels, fold["train"], cfg, seed=0)
    scaler = fitted.steps[0][1]
    np.testing.assert_allclose(scaler.mean_, E[fold["train"]].mean(axis=0))
    assert not np.allclose(scaler.mean_, E.mean(axis=0))

    preds, _ = fit_predict(E, meta, fold, cfg, seed=0)
    by_id = preds.set_index("window_id").loc[fold["test"]]
    np.testing.assert_allclose(by_id.filter(like="score_").to_numpy(), fitted.predict_proba(E[fold["test"]]))
    leaky = build_pipeline(cfg, 0).fit(E, labels)  # the wrong thing, for contrast
    assert not np.allclose(by_id.filter(like="score_").to_numpy(), leaky.predict_proba(E[fold["test"]]))


def test_test_labels_do_not_influence_predictions(data):
    E, meta, folds = data
    fold = folds["folds"][2]
    shuffled = meta.copy()
    rng = np.random.default_rng(0)
    shuffled.loc[fold["test"], "label"] = rng.permutation(shuffled.loc[fold["test"], "label"].to_numpy())
    a, _ = fit_predict(E, meta, fold, Probe(), seed=0)
    b, _ = fit_predict(E, shuffled, fold, Probe(), seed=0)
    pd.testing.assert_frame_equal(a.drop(columns="y_true"), b.drop(columns="y_true"))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_estimator_gives_normalized_scores(data, name):
    E, meta, folds = data
    params = {"n_estimators": 20} if name == "random_forest" else {}
    preds, result = fit_predict(E, meta, folds["folds"][0], Probe(estimator=name, params=params), seed=0)
    scores = preds.filter(like="score_").to_numpy()
    assert scores.shape == (len(preds), 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    assert math.isfinite(result["metrics"]["roc_auc"]) and result["metrics"]["roc_auc"] > 0.7


def test_binary_decision_function_becomes_two_columns():
    E, meta = make_data()
    keep = meta["label"] != "rest"
    E, meta = E[keep.to_numpy()], meta[keep].reset_index(drop=True)
    meta["window_id"] = np.arange(len(meta))
    fold = make_folds(meta, CrossValidation(n_splits=2), seed=0)["folds"][0]
    preds, result = fit_predict(E, meta, fold, Probe(estimator="ridge", params={}), seed=0)
    assert list(preds.filter(like="score_").columns) == ["score_left", "score_right"]
    agree = (preds["score_right"] > 0.5) == (preds["y_pred"] == "right")
    assert agree.all()
    assert result["metrics"]["roc_auc"] > 0.8


def test_non_finite_embeddings_are_reported(data):
    E, meta, folds = data
    E = E.copy()
    E[[3, 5], 0] = np.nan
    E[7, 2] = np.inf
    with pytest.raises(ValueError, match="3 of 180 embedding rows.*re-run embed / check the backbone"):
        fit_predict(E, meta, folds["folds"][0], Probe(), seed=0)


def test_leaky_or_mismatched_fold_is_refused(data):
    E, meta, folds = data
    fold = folds["folds"][0]
    with pytest.raises(ValueError, match="in both train and test"):
        fit_predict(E, meta, {**fold, "test": fold["test"] + fold["train"][:1]}, Probe(), seed=0)
    with pytest.raises(ValueError, match="re-run embed"):
        fit_predict(E[:-1], meta, fold, Probe(), seed=0)


# ----------------------------------------------------------------------------- run_probe


def _write_inputs(tmp_path, E, meta, folds, windows_key_override=None):
    """A real windows store, an embedding zarr store and its pointer, and folds.json."""
    import zarr

    from eegfm.integrity import write_array

    writer = WindowsStoreWriter(tmp_path / "windows", ch_names=["C3", "C4"], sfreq=100.0, n_times=8)
    rng = np.random.default_rng(0)
    writer.append(rng.normal(size=(len(meta), 2, 8)).astype("float32"),
                  meta.drop(columns="window_id").to_dict("records"))
    info = writer.close()
    store = tmp_path / "cache" / "emb.zarr"
    group = zarr.open_group(str(store), mode="w")
    write_array(group, "E", E.astype("float32"), key="e" * 64)
    group.attrs["key"] = "e" * 64
    pointer = {"key": "e" * 64, "store": str(store), "dataset": "toy", "backbone": "bandpower",
               "windows_key": windows_key_override or info["key"], "fingerprint": {}, "fingerprint_sha": "f" * 64,
               "cache": "miss", "forward_passes": len(E), "dim": E.shape[1], "n_windows": len(E), "adaptation": {}}
    (tmp_path / "pointer.json").write_text(json.dumps(pointer))
    write_folds(tmp_path / "folds.json", {**folds, "windows_key": info["key"]}, meta)
    return info


def test_run_probe_writes_predictions_and_metrics(tmp_path, data):
    E, meta, folds = data
    info = _write_inputs(tmp_path, E, meta, folds)
    out = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                    tmp_path / "out", folds=[1])[0]
    written = json.loads((tmp_path / "out" / "fold-1" / "metrics.json").read_text())
    assert written == out
    for key in ("dataset", "model", "regime", "fold", "estimator", "metrics", "chance", "n_train", "n_test",
                "classes", "train_subjects", "test_subjects", "windows_key", "embedding_key", "fingerprint_sha",
                "versions"):
        assert key in written
    assert [written[k] for k in ("dataset", "model", "regime", "fold")] == ["toy", "bandpower", "probe", 1]
    assert written["windows_key"] == info["key"] and written["embedding_key"] == "e" * 64
    assert "scikit-learn" in written["versions"]
    preds = pd.read_csv(tmp_path / "out" / "fold-1" / "predictions.tsv", sep="\t", dtype={"subject": str})
    assert sorted(preds["window_id"]) == folds["folds"][1]["test"]
    assert set(preds["subject"]) == set(written["test_subjects"])
    assert written["unit"] == "subject" and written["test_groups"] == written["test_subjects"]


def test_run_probe_lists_the_held_out_runs_of_a_run_wise_design(tmp_path):
    """Finding 2: a run-wise design listed only the one subject on every side, never the runs."""
    from tests.windows_tables import timed_meta

    meta = timed_meta(runs=("1", "2", "3"), n=12)
    E = np.random.default_rng(0).normal(size=(len(meta), 4)) + (meta["label"] == "left").to_numpy()[:, None]
    folds = make_folds(meta, CrossValidation(scheme="loso", group_by="run"), seed=0)
    _write_inputs(tmp_path, E, meta, folds)
    out = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                    tmp_path / "out", folds=[2])[0]
    assert out["unit"] == "run" and out["test_groups"] == ["01/1/3"]
    assert out["train_groups"] == ["01/1/1", "01/1/2"] and out["train_subjects"] == out["test_subjects"] == ["01"]


def test_run_probe_records_status_cost_and_device(tmp_path, data):
    E, meta, folds = data
    _write_inputs(tmp_path, E, meta, folds)
    out = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                    tmp_path / "p", folds=[0])[0]
    assert (out["status"], out["error"], out["device"]) == ("ok", None, "cpu")
    assert out["trainable_params"] == 3 * 16 + 3  # logistic regression: 3 classes x 16 dims + 3 intercepts
    assert out["frozen_params"] is None and out["total_params"] is None
    assert 0 < out["wall_time_s"] < 120
    assert 10 < out["peak_memory_mb"] < 100_000  # MB, not KiB or bytes
    knn = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json",
                    Probe(estimator="knn", params={}), 0, tmp_path / "p2", folds=[0])[0]
    assert knn["trainable_params"] is None  # no coefficients to count


def test_run_probe_refuses_a_stale_embedding(tmp_path, data):
    E, meta, folds = data
    _write_inputs(tmp_path, E, meta, folds, windows_key_override="0" * 64)
    # the fix must be one Snakemake acts on: a plain re-run of an up-to-date DAG does nothing
    with pytest.raises(ValueError, match=f"re-run the embed rule: snakemake --forcerun {tmp_path / 'pointer.json'}"):
        run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                  tmp_path / "p", folds=[0])
    assert not (tmp_path / "p").exists()


def test_run_probe_refuses_a_missing_or_foreign_store(tmp_path, data):
    E, meta, folds = data
    _write_inputs(tmp_path, E, meta, folds)
    pointer = json.loads((tmp_path / "pointer.json").read_text())
    args = (tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0, tmp_path / "p")
    (tmp_path / "pointer.json").write_text(json.dumps({**pointer, "key": "d" * 64}))
    with pytest.raises(ValueError, match="not the pointer's; re-run embed"):
        run_probe(*args)
    (tmp_path / "pointer.json").write_text(json.dumps({**pointer, "store": str(tmp_path / "gone.zarr")}))
    with pytest.raises(FileNotFoundError, match="re-run the embed rule"):
        run_probe(*args)


def test_run_probe_refuses_stale_folds_and_unknown_fold(tmp_path, data):
    E, meta, folds = data
    _write_inputs(tmp_path, E, meta, folds)
    stale = json.loads((tmp_path / "folds.json").read_text())
    (tmp_path / "folds.json").write_text(json.dumps({**stale, "windows_key": "1" * 64}))
    with pytest.raises(ValueError, match=f"re-run the splits rule: snakemake --forcerun {tmp_path / 'folds.json'}"):
        run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0, tmp_path / "p")
    (tmp_path / "folds.json").write_text(json.dumps(stale))
    with pytest.raises(ValueError, match=r"not fold\(s\) \[9\]"):
        run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                  tmp_path / "p", folds=[9])


def test_run_probe_refuses_folds_edited_after_their_audit(tmp_path, data):
    """The audit's case: one test window of a held-out subject moved into training by hand; the probe re-ran on
    it (accuracy 0.444 -> 0.482, exit 0) while the fold's audit still listed the old sides."""
    E, meta, folds = data
    _write_inputs(tmp_path, E, meta, folds)
    good = json.loads((tmp_path / "folds.json").read_text())
    edited = json.loads(json.dumps(good))
    moved = edited["folds"][0]["test"].pop(0)
    edited["folds"][0]["train"] = sorted(edited["folds"][0]["train"] + [moved])
    (tmp_path / "folds.json").write_text(json.dumps(edited))
    args = (tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0, tmp_path / "p")
    with pytest.raises(SplitError, match=r"folds\.json: leakage in fold 0: subject group\(s\) \['\d+'\] are in both "
                                         r"train and test\. Edited after the splits job\? Re-make it: snakemake "
                                         r"--forcerun .*folds\.json"):
        run_probe(*args)
    # an edit that leaks nothing but leaves the fold's audit describing other windows is refused too
    swapped = json.loads(json.dumps(good))
    a, b = swapped["folds"][0], swapped["folds"][1]
    a["test"], b["test"] = b["test"], a["test"]
    a["train"], b["train"] = b["train"], a["train"]
    (tmp_path / "folds.json").write_text(json.dumps(swapped))
    with pytest.raises(SplitError, match=r"fold 0: its audit lists train subjects .* but its train windows hold"):
        run_probe(*args)
    assert not (tmp_path / "p").exists()


def test_run_probe_fits_every_fold_in_one_call_each_on_its_own_training_rows(tmp_path, data):
    """One job per dataset x backbone: every fold gets its own folder, fitted on that fold's training rows
    only (the same record as probing the fold alone)."""
    E, meta, folds = data
    _write_inputs(tmp_path, E, meta, folds)
    records = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                        tmp_path / "all")
    assert [r["fold"] for r in records] == [f["fold"] for f in folds["folds"]]
    for entry, record in zip(folds["folds"], records):
        folder = tmp_path / "all" / f"fold-{entry['fold']}"
        assert json.loads((folder / "metrics.json").read_text()) == record
        preds = pd.read_csv(folder / "predictions.tsv", sep="\t")
        assert sorted(preds["window_id"]) == entry["test"]
        alone = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                          tmp_path / "alone", folds=[entry["fold"]])[0]
        assert alone["metrics"] == record["metrics"] and alone["n_train"] == record["n_train"] == len(entry["train"])
