"""The probe on a regression target: ridge after StandardScaler, the target standardised on the training fold
only, numeric predictions, r / R² / MAE with their chance levels, and the same provenance as classification."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from eegfm.config import CrossValidation, Probe
from eegfm.estimators import REGRESSORS
from eegfm.metrics import REGRESSION_METRICS
from eegfm.probe import build_pipeline, final_estimator, fit_pipeline, fit_predict, n_fitted_params, run_probe
from eegfm.splits import make_folds, write_folds
from eegfm.windows_store import WindowsStoreWriter
from tests.windows_tables import aged_meta


def make_aged(n_subjects=12, n=10, dim=8, seed=0):
    """Subjects of ages 20..75 whose embeddings carry the age along one direction, plus noise."""
    rng = np.random.default_rng(seed)
    ages = {f"S{i:02d}": 20.0 + 5 * i for i in range(n_subjects)}
    meta = aged_meta(ages, n=n)
    direction = rng.normal(size=dim)
    age = meta["label"].astype(float).to_numpy()
    E = (age[:, None] - 47.5) / 17.0 * direction + rng.normal(size=(len(meta), dim)) * 0.5
    return E, meta


@pytest.fixture(scope="module")
def aged():
    E, meta = make_aged()
    folds = make_folds(meta, CrossValidation(scheme="group_kfold", n_splits=4), seed=0, target="regression")
    return E, meta, folds


def test_ridge_predicts_numbers_scored_by_r_r2_and_mae(aged):
    E, meta, folds = aged
    fold = folds["folds"][0]
    preds, result = fit_predict(E, meta, fold, Probe(), seed=0, target="regression")
    assert list(preds.columns) == ["window_id", "subject", "session", "run", "y_true", "y_pred"]
    assert preds["y_true"].dtype == float and preds["y_pred"].dtype == float
    truth = meta.set_index("window_id").loc[preds["window_id"], "label"].astype(float).to_numpy()
    np.testing.assert_array_equal(preds["y_true"].to_numpy(), truth)
    assert result["target"] == "regression" and result["estimator"] == "ridge" and result["classes"] == []
    assert list(result["metrics"]) == list(REGRESSION_METRICS) == list(result["chance"])
    assert result["metrics"]["pearson_r"] > 0.9 and result["metrics"]["r2"] > 0.7
    assert result["metrics"]["mae"] < 0.5 * result["chance"]["mae"]
    assert result["chance"]["pearson_r"] == 0.0 and result["chance"]["r2"] <= 0.0
    assert result["estimator_params"]["alpha"] == 1.0  # Ridge's own parameters, not the wrapper's
    assert result["trainable_params"] == E.shape[1] + 1
    assert set(result["train_subjects"]).isdisjoint(result["test_subjects"])


def test_scalers_of_the_features_and_the_target_see_training_rows_only(aged):
    """Standardising embeddings and targets: statistics of the training fold only; test targets change nothing."""
    E, meta, folds = aged
    fold = folds["folds"][1]
    E = E.copy()
    E[fold["test"]] += 40.0  # shifts only the test rows have: a scaler fitted on all rows would absorb them
    y = meta["label"].astype(float).to_numpy()
    fitted = fit_pipeline(E, y, fold["train"], Probe(), seed=0, target="regression")
    scaler, wrapped = fitted.steps[0][1], fitted.steps[-1][1]
    assert isinstance(scaler, StandardScaler) and isinstance(wrapped, TransformedTargetRegressor)
    np.testing.assert_allclose(scaler.mean_, E[fold["train"]].mean(axis=0))
    np.testing.assert_allclose(wrapped.transformer_.mean_, [y[fold["train"]].mean()])
    np.testing.assert_allclose(wrapped.transformer_.scale_, [y[fold["train"]].std()])
    assert not np.isclose(wrapped.transformer_.mean_[0], y.mean())

    older = meta.copy()
    older.loc[older["window_id"].isin(fold["test"]), "label"] = "90"  # test targets the fit must never read
    a, _ = fit_predict(E, meta, fold, Probe(), seed=0, target="regression")
    b, _ = fit_predict(E, older, fold, Probe(), seed=0, target="regression")
    pd.testing.assert_frame_equal(a.drop(columns="y_true"), b.drop(columns="y_true"))
    np.testing.assert_allclose(a.set_index("window_id").loc[fold["test"], "y_pred"], fitted.predict(E[fold["test"]]))


def test_the_target_is_standardised_so_the_units_do_not_change_the_fit(aged):
    E, meta, folds = aged
    fold = folds["folds"][2]
    months = meta.assign(label=(meta["label"].astype(float) * 12).astype(str))
    cfg = Probe(regressor="lasso", regressor_params={"alpha": 0.1})
    years, _ = fit_predict(E, meta, fold, cfg, seed=0, target="regression")
    in_months, _ = fit_predict(E, months, fold, cfg, seed=0, target="regression")
    np.testing.assert_allclose(in_months["y_pred"], 12 * years["y_pred"], rtol=1e-6)
    raw = build_pipeline(Probe(scale=False), 0, "regression")
    assert len(raw.steps) == 1 and isinstance(raw.steps[0][1], Ridge)


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_every_regressor_fits_the_age(aged, name):
    E, meta, folds = aged
    params = {"n_estimators": 20} if name == "random_forest" else {"alpha": 0.01} if name in ("lasso",
                                                                                                  "elastic_net") else {}
    preds, result = fit_predict(E, meta, folds["folds"][0], Probe(regressor=name, regressor_params=params), seed=0,
                                target="regression")
    assert result["metrics"]["pearson_r"] > 0.7, name
    assert np.isfinite(preds["y_pred"]).all()


def test_forest_parameters_are_counted_as_none_and_seeded():
    pipe = build_pipeline(Probe(regressor="random_forest"), 5, "regression")
    assert final_estimator(pipe).random_state == 5
    E, meta = make_aged(n_subjects=4, n=4)
    fitted = fit_pipeline(E, meta["label"].astype(float).to_numpy(), list(range(8)), Probe(regressor="random_forest",
                          regressor_params={"n_estimators": 5}), 0, "regression")
    assert n_fitted_params(fitted) is None


def test_run_probe_on_a_regression_store(tmp_path, aged):
    E, meta, folds = aged
    writer = WindowsStoreWriter(tmp_path / "windows", ch_names=["C3", "C4"], sfreq=100.0, n_times=8)
    writer.append(np.random.default_rng(0).normal(size=(len(meta), 2, 8)).astype("float32"),
                  meta.drop(columns="window_id").to_dict("records"))
    info = writer.close(extra={"target": "regression"})
    import zarr

    from eegfm.integrity import write_array

    group = zarr.open_group(str(tmp_path / "emb.zarr"), mode="w")
    write_array(group, "E", E.astype("float32"), key="e" * 64)  # with the chunk digests a reader verifies
    group.attrs["key"] = "e" * 64
    (tmp_path / "pointer.json").write_text(json.dumps({
        "key": "e" * 64, "store": str(tmp_path / "emb.zarr"), "dataset": "ages", "backbone": "bandpower",
        "windows_key": info["key"], "fingerprint_sha": "f" * 64, "n_windows": len(E), "dim": E.shape[1]}))
    write_folds(tmp_path / "folds.json", {**folds, "windows_key": info["key"]}, meta)
    out = run_probe(tmp_path / "pointer.json", tmp_path / "windows", tmp_path / "folds.json", Probe(), 0,
                    tmp_path / "out", folds=[3])[0]
    written = json.loads((tmp_path / "out/fold-3/metrics.json").read_text())
    assert written == out and written["target"] == "regression" and written["estimator"] == "ridge"
    for key in ("dataset", "model", "regime", "fold", "metrics", "chance", "n_train", "n_test", "train_subjects",
                "test_subjects", "unit", "test_groups", "windows_key", "embedding_key", "fingerprint_sha", "versions",
                "status", "wall_time_s", "peak_memory_mb", "trainable_params"):
        assert key in written, key
    assert set(written["metrics"]) == {"pearson_r", "r2", "mae"}
    preds = pd.read_csv(tmp_path / "out/fold-3/predictions.tsv", sep="\t")
    assert preds["y_true"].dtype == float and preds["y_pred"].dtype == float
