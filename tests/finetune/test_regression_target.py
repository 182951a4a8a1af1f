"""Fine-tuning a regression target: a one-output head trained with MSE (or Huber) on targets standardised with
the inner-training windows only, predictions mapped back to the target's units, r / R² / MAE and their chance."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from eegfm.config import Backbone, CrossValidation, Finetune
from eegfm.finetune.run import FinetuneDataError, prepare_fold, run_finetune
from eegfm.finetune.train import Split, train
from eegfm.splits import make_folds, write_folds
from eegfm.windows_store import open_windows

CBRAMOD = Backbone(name="cbramod", kwargs={"n_layer": 1})
VALUE = {"feet": "0.5", "left_hand": "1.5", "right_hand": "3.0"}  # a per-event value the signal encodes


def _ft(**optim) -> Finetune:
    return Finetune(backbones=["cbramod"], optim={"max_epochs": 2, "batch_size": 16, **optim})


@pytest.fixture(scope="module")
def reg_data(ft_data, tmp_path_factory):
    """The fine-tuning windows with numeric labels (a regression store) and folds made for them."""
    root = tmp_path_factory.mktemp("reg")
    shutil.copytree(ft_data["windows"], root / "windows")
    meta = pd.read_csv(root / "windows/windows.tsv", sep="\t", dtype=str)
    meta["label"] = meta["label"].map(VALUE)
    meta.to_csv(root / "windows/windows.tsv", sep="\t", index=False)
    info = json.loads((root / "windows/windows.json").read_text())
    (root / "windows/windows.json").write_text(json.dumps({**info, "target": "regression"}))
    store = open_windows(root / "windows")
    folds = make_folds(store.meta, CrossValidation(n_splits=3), seed=0, target="regression")
    write_folds(root / "folds.json", {**folds, "windows_key": store.key}, store.meta)
    return {"windows": root / "windows", "folds": root / "folds.json", "root": root}


def test_targets_are_standardised_with_the_inner_training_windows_only(reg_data):
    f = prepare_fold(reg_data["windows"], reg_data["folds"], 0, CBRAMOD, _ft(), "head", 0, dataset="reg")
    assert f.target == "regression" and f.classes == [] and f.y.dtype == torch.float32
    values = f.meta["label"].astype(float).to_numpy()
    inner = values[f.inner_ids]
    assert f.scaling == {"mean": pytest.approx(inner.mean()), "std": pytest.approx(inner.std()),
                         "fitted_on": "inner training windows", "n": len(f.inner_ids)}
    np.testing.assert_allclose(f.y.numpy(), (values - inner.mean()) / inner.std(), rtol=1e-6)
    assert abs(float(f.y[f.inner_ids].mean())) < 1e-5 and float(f.y[f.inner_ids].std(unbiased=False)) == \
        pytest.approx(1.0, rel=1e-5)
    assert f.model.head[-1].out_features == 1  # one output


def test_test_targets_change_neither_the_scaling_nor_the_predictions(reg_data, tmp_path):
    """No leakage: the test windows' targets reach neither the standardisation nor the fit."""
    windows = tmp_path / "windows"
    shutil.copytree(reg_data["windows"], windows)
    folds = json.loads(reg_data["folds"].read_text())
    test = [int(i) for i in folds["folds"][1]["test"]]
    meta = pd.read_csv(windows / "windows.tsv", sep="\t", dtype=str)
    meta.loc[meta["window_id"].astype(int).isin(test), "label"] = "1000"
    meta.to_csv(windows / "windows.tsv", sep="\t", index=False)
    runs = [run_finetune(w, reg_data["folds"], 1, CBRAMOD, _ft(), "head", 3, tmp_path / name, dataset="reg")
            for w, name in ((reg_data["windows"], "a"), (windows, "b"))]
    assert runs[0]["target_scaling"] == runs[1]["target_scaling"]
    a, b = (pd.read_csv(tmp_path / name / "predictions.tsv", sep="\t") for name in ("a", "b"))
    pd.testing.assert_series_equal(a["y_pred"], b["y_pred"])
    assert (b["y_true"] == 1000).all() and runs[1]["metrics"]["mae"] > 900


def test_run_finetune_on_a_regression_target(reg_data, tmp_path):
    record = run_finetune(reg_data["windows"], reg_data["folds"], 0, CBRAMOD, _ft(max_epochs=3), "full", 0, tmp_path,
                          dataset="reg")
    assert record["status"] == "ok" and record["target"] == "regression" and record["classes"] == []
    assert set(record["metrics"]) == set(record["chance"]) == {"pearson_r", "r2", "mae"}
    assert record["chance"]["pearson_r"] == 0.0 and record["target_scaling"]["fitted_on"] == "inner training windows"
    preds = pd.read_csv(tmp_path / "predictions.tsv", sep="\t")
    assert list(preds.columns) == ["window_id", "subject", "session", "run", "y_true", "y_pred"]
    assert set(preds["y_true"]) <= {0.5, 1.5, 3.0} and preds["y_pred"].between(-5, 10).all()  # target units
    history = pd.read_csv(tmp_path / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "phase", "lr_backbone", "lr_head", "train_loss", "val_loss", "val_r2",
                                     "val_pearson_r", "time_s"]
    assert history[["train_loss", "val_loss", "val_r2"]].notna().all().all()
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["metrics"] == record["metrics"] and card["data"]["classes"] == []


def test_the_loss_is_mse_or_huber_of_the_standardised_target(reg_data):
    f = prepare_fold(reg_data["windows"], reg_data["folds"], 2, CBRAMOD, _ft(), "head", 0, dataset="reg")
    state = {k: v.clone() for k, v in f.model.state_dict().items()}
    for loss in ("mse", "huber"):
        f.model.load_state_dict(state)
        ft = _ft(max_epochs=1, regression_loss=loss, huber_delta=0.5)
        result = train(f.model, Split(f.X[f.inner_ids], f.y[f.inner_ids]), Split(f.X[f.val_ids], f.y[f.val_ids]),
                       "head", ft, 0, f.device, f.dtype, unused=f.unused)
        assert result.status == "ok"
        from eegfm.finetune.train import predict_values

        values = predict_values(f.model, f.X[f.val_ids], 16, f.device, f.dtype)
        expected = torch.nn.HuberLoss(delta=0.5) if loss == "huber" else torch.nn.MSELoss()
        assert result.history[-1]["val_loss"] == pytest.approx(float(expected(values, f.y[f.val_ids])), rel=1e-5)


def test_a_constant_inner_training_target_is_named(reg_data, tmp_path):
    windows = tmp_path / "windows"
    shutil.copytree(reg_data["windows"], windows)
    folds = json.loads(reg_data["folds"].read_text())
    test = {int(i) for i in folds["folds"][0]["test"]}
    meta = pd.read_csv(windows / "windows.tsv", sep="\t", dtype=str)
    meta["label"] = ["7" if int(i) not in test else "9" for i in meta["window_id"]]
    meta.to_csv(windows / "windows.tsv", sep="\t", index=False)
    with pytest.raises(FinetuneDataError, match=r"fold 0: the regression target is constant \(7\) over the inner"):
        prepare_fold(windows, reg_data["folds"], 0, CBRAMOD, _ft(), "head", 0, dataset="reg")


@pytest.mark.gpu
def test_regression_head_with_bf16_on_cuda(reg_data, tmp_path):
    """On a GPU: the one-output head trains under bf16 autocast and predicts in the target's units."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none visible): bf16 regression fine-tuning on CUDA not exercised here")
    ft = Finetune(backbones=["cbramod"], device="cuda", precision="auto", optim={"max_epochs": 1, "batch_size": 16})
    record = run_finetune(reg_data["windows"], reg_data["folds"], 0, CBRAMOD, ft, "lora", 0, tmp_path, dataset="reg")
    assert record["status"] == "ok" and record["precision"] == "bf16" and record["target"] == "regression"
    assert np.isfinite(pd.read_csv(tmp_path / "predictions.tsv", sep="\t")["y_pred"]).all()


@pytest.mark.slow
def test_two_processes_train_a_regression_head_like_one(reg_data, tmp_path):
    """Data-parallel (2 CPU processes, gloo): the MSE of the global batch, so the trajectory matches one process."""
    from safetensors.torch import load_file

    from eegfm.launch import launch

    cfg = Backbone(name="cbramod", kwargs={"n_layer": 1, "drop_prob": 0.0})

    def kwargs(out, **extra):
        ft = Finetune(backbones=["cbramod"], head={"dropout": 0.0}, threads=1, **extra,
                      optim={"max_epochs": 2, "batch_size": 16, "patience": 2})
        return {"windows_dir": reg_data["windows"], "folds_path": reg_data["folds"], "fold": 0, "cfg": cfg,
                "ft": ft, "regime": "full", "seed": 3, "out_dir": out, "dataset": "reg"}

    one = run_finetune(**kwargs(tmp_path / "one"))
    launch("finetune", kwargs(tmp_path / "two", processes=2), processes=2, threads=1)
    two = json.loads((tmp_path / "two/metrics.json").read_text())
    assert one["status"] == two["status"] == "ok" and two["processes"] == 2 and two["target"] == "regression"
    assert one["target_scaling"] == two["target_scaling"]
    a, b = load_file(tmp_path / "one/checkpoint.safetensors"), load_file(tmp_path / "two/checkpoint.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].numel()) <= 1e-4
    for name in ("pearson_r", "r2", "mae"):
        assert one["metrics"][name] == pytest.approx(two["metrics"][name], abs=1e-3), name
    h1, h2 = (pd.read_csv(tmp_path / d / "history.tsv", sep="\t") for d in ("one", "two"))
    assert (h1["train_loss"] - h2["train_loss"]).abs().max() < 1e-4 and (h1["val_r2"] - h2["val_r2"]).abs().max() < 1e-3
