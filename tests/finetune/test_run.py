"""Each regime trains exactly what it may, on real windows of the built-in dataset (CPU, a few steps)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from eegfm.config import Backbone, Finetune
from eegfm.finetune.regimes import RegimeError, assert_regime, group_of, set_trainable
from eegfm.finetune.run import FinetuneDataError, prepare_fold, run_finetune
from eegfm.finetune.train import Split, train

CBRAMOD = Backbone(name="cbramod", kwargs={"n_layer": 1})


def _ft(**optim) -> Finetune:
    return Finetune(backbones=["cbramod"], optim={"max_epochs": 1, "batch_size": 16, **optim}, lp_epochs=1)


def _state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().float().clone() if p.dtype.is_floating_point else p.detach().clone()
            for n, p in model.named_parameters()}


def _changed(before, model) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach().to(before[n].dtype))}


@pytest.mark.parametrize("regime", ["head", "lora", "qlora", "full", "lp-ft", "scratch"])
def test_each_regime_changes_only_what_it_may(ft_data, regime):
    ft = _ft(max_epochs=2 if regime == "lp-ft" else 1)
    f = prepare_fold(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, ft, regime, 0, dataset="tiny")
    before = _state(f.model)
    result = train(f.model, Split(f.X[f.inner_ids], f.y[f.inner_ids]), Split(f.X[f.val_ids], f.y[f.val_ids]),
                   regime, ft, 0, f.device, f.dtype, unused=f.unused)
    assert result.status == "ok" and result.best_epoch is not None
    changed = _changed(before, f.model)
    groups = {group_of(n) for n in changed}
    names = dict(f.model.named_parameters())
    if regime == "head":
        assert groups == {"head"}
    elif regime in ("lora", "qlora"):
        assert groups == {"head", "adapter"}
        adapters = [n for n in names if group_of(n) == "adapter"]
        assert all(n in changed for n in adapters if "lora_B" in n)  # every adapter trained
    elif regime == "lp-ft" and result.best_epoch < ft.lp_epochs:  # the head-only epoch was best: restored
        assert groups == {"head"}
    else:
        reached = {n for n in names if group_of(n) == "backbone" and n not in f.unused}
        assert groups == {"head", "backbone"}
        assert reached <= changed, sorted(reached - changed)[:5]
        assert not (f.unused & changed)  # the model's own unused head stays as built
    if regime == "qlora":
        assert f.adapters.quantized and all("Linear4bit" in type(f.model.backbone.model.get_submodule(m)).__name__
                                            for m in f.adapters.quantized)
    counts = list(result.counts.values())[-1]
    assert counts["frozen"] + counts["trainable"] == counts["total"]
    if regime in ("lora", "qlora"):
        assert counts["trainable"] <= 0.10 * counts["total"]
    if regime == "lp-ft":
        assert list(result.counts) == ["probe@0", "main@1"]
        assert result.counts["probe@0"]["trainable"] == result.counts["probe@0"]["head_total"]
        assert result.counts["main@1"]["backbone_trainable"] > 0


def test_regime_assertion_catches_a_wrong_freeze(ft_data):
    ft = _ft()
    f = prepare_fold(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, ft, "lora", 0, dataset="tiny")
    set_trainable(f.model, "lora", unused=f.unused)
    counts = assert_regime(f.model, "lora", unused=f.unused)
    assert counts["adapter_trainable"] > 0 and counts["backbone_total"] > counts["trainable"]
    base = next(n for n, _ in f.model.named_parameters() if group_of(n) == "backbone" and n not in f.unused)
    f.model.get_parameter(base).requires_grad = True  # a base weight left trainable by mistake
    with pytest.raises(RegimeError, match="trains only"):
        assert_regime(f.model, "lora", unused=f.unused)
    with pytest.raises(RegimeError, match="trains only"):
        assert_regime(f.model, "head", unused=f.unused)
    set_trainable(f.model, "head", unused=f.unused)
    f.model.head[-1].weight.requires_grad = False
    f.model.head[-1].bias.requires_grad = False
    with pytest.raises(RegimeError, match="must train"):
        assert_regime(f.model, "head", unused=f.unused)


def test_nan_in_the_input_gives_diagnostics_and_a_reported_failure(ft_data, tmp_path):
    from eegfm.windows_store import open_windows

    X = np.asarray(open_windows(ft_data["windows"]).X[:]).copy()
    X[:, 3, 100] = np.nan
    out = tmp_path / "fold"
    record = run_finetune(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, _ft(), "full", 0, out,
                          dataset="tiny", X_override=X)
    assert record["status"] == "failed" and "non-finite input at epoch 0, step 0" in record["error"]
    assert all(v is None for v in record["metrics"].values())
    diagnostics = json.loads((out / "diagnostics.json").read_text())
    assert diagnostics["nonfinite"] == {"what": "input", "epoch": 0, "step": 0}
    assert json.loads((out / "metrics.json").read_text())["status"] == "failed"
    assert pd.read_csv(out / "predictions.tsv", sep="\t").empty
    for name in ("history.tsv", "model_card.json", "checkpoint.json", "checkpoint.safetensors"):
        assert (out / name).is_file()


def test_diverging_loss_stops_early_with_the_step(ft_data):
    ft = _ft(lr_backbone=1e12, lr_head=1e12, grad_clip=None, max_epochs=3)
    f = prepare_fold(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, ft, "full", 0, dataset="tiny")
    result = train(f.model, Split(f.X[f.inner_ids], f.y[f.inner_ids]), Split(f.X[f.val_ids], f.y[f.val_ids]),
                   "full", ft, 0, f.device, f.dtype, unused=f.unused)
    assert result.status == "failed"
    assert result.diagnostics["nonfinite"]["what"] in ("loss", "gradient")
    assert result.diagnostics["nonfinite"]["step"] >= 1  # the first step is finite; it blows up after
    assert len(result.history) < 3


def test_same_seed_same_metrics_and_checkpoint(ft_data, tmp_path):
    # the second run uses other resources: not science, so the same numbers and the same settings hash
    settings = [_ft(max_epochs=2), _ft(max_epochs=2).model_copy(update={"threads": 1, "mem_mb": 999, "gpus": 0})]
    runs = [run_finetune(ft_data["windows"], ft_data["folds"], 1, CBRAMOD, settings[i], "lora", 7,
                         tmp_path / str(i), dataset="tiny") for i in range(2)]
    assert runs[0]["metrics"] == runs[1]["metrics"] and runs[0]["status"] == "ok"
    assert runs[0]["settings_sha"] == runs[1]["settings_sha"] and len(runs[0]["settings_sha"]) == 64
    manifests = [json.loads((tmp_path / str(i) / "checkpoint.json").read_text()) for i in range(2)]
    assert manifests[0]["sha256"] == manifests[1]["sha256"]
    p0, p1 = (pd.read_csv(tmp_path / str(i) / "predictions.tsv", sep="\t") for i in range(2))
    pd.testing.assert_frame_equal(p0, p1)
    card = json.loads((tmp_path / "0" / "model_card.json").read_text())
    assert card["regime"] == "lora" and card["adapters"]["peft_modules"]
    history = pd.read_csv(tmp_path / "0" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == [0, 1] and history["val_loss"].notna().all()
    # inner validation subjects are training subjects, never test subjects
    assert not set(runs[0]["val_subjects"]) & set(runs[0]["test_subjects"])
    assert not set(runs[0]["val_subjects"]) & set(runs[0]["train_subjects"])


def test_a_class_missing_from_the_training_subjects_is_named(ft_data, tmp_path):
    windows = tmp_path / "windows"
    shutil.copytree(ft_data["windows"], windows)
    meta = pd.read_csv(windows / "windows.tsv", sep="\t", dtype=str)
    folds = json.loads(ft_data["folds"].read_text())
    test = {int(i) for i in folds["folds"][0]["test"]}
    drop = meta["window_id"].astype(int).map(lambda i: i not in test) & (meta["label"] == "feet")
    meta.loc[drop, "label"] = "left_hand"  # 'feet' now only in the test subjects
    meta.to_csv(windows / "windows.tsv", sep="\t", index=False)
    with pytest.raises(FinetuneDataError, match=r"\['feet'\].*inner training"):
        prepare_fold(windows, ft_data["folds"], 0, CBRAMOD, _ft(), "head", 0, dataset="tiny")


@pytest.mark.gpu
@pytest.mark.parametrize("regime", ["lora", "qlora"])
def test_bf16_on_cuda(ft_data, tmp_path, regime):
    """On a GPU: bf16 autocast and 4-bit base layers with bf16 compute train and score."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none visible): bf16 / QLoRA on CUDA not exercised here")
    ft = Finetune(backbones=["cbramod"], device="cuda", precision="auto", optim={"max_epochs": 1, "batch_size": 16})
    record = run_finetune(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, ft, regime, 0, tmp_path, dataset="tiny")
    assert record["status"] == "ok" and record["device"].startswith("cuda") and record["precision"] == "bf16"
    assert record["peak_memory_mb"] > 0


def test_two_training_runs_validate_on_time_blocks_and_the_card_lists_runs(ft_data, tmp_path):
    """Finding 9: with two training runs, val_fraction 0.2 silently took one whole run (half the data)."""
    from eegfm.config import CrossValidation
    from eegfm.splits import make_folds, write_folds
    from eegfm.windows_store import open_windows

    windows = tmp_path / "windows"
    shutil.copytree(ft_data["windows"], windows)
    meta = pd.read_csv(windows / "windows.tsv", sep="\t", dtype={"subject": str, "session": str, "run": str})
    meta["run"] = meta["subject"].map({"01": "1", "02": "1", "03": "2", "04": "2", "05": "3", "06": "3"})
    meta["subject"] = "01"  # one subject, three runs of two recordings each
    meta.to_csv(windows / "windows.tsv", sep="\t", index=False)
    store = open_windows(windows)
    window_s = ft_data["info"]["n_times"] / ft_data["info"]["sfreq"]
    folds = make_folds(store.meta, CrossValidation(scheme="leave_one_run_out"), seed=0, window_s=window_s)
    write_folds(tmp_path / "folds.json", {**folds, "windows_key": store.key}, store.meta)
    out = tmp_path / "fold"
    record = run_finetune(windows, tmp_path / "folds.json", 0, CBRAMOD, _ft(), "head", 0, out, dataset="tiny")
    validation = record["validation"]
    assert validation["method"] == "time_blocks" and validation["unit"] == "run"
    assert validation["reason"].startswith("whole runs would take 50% of the training windows")
    assert validation["share"] == pytest.approx(0.2, abs=0.05) and record["n_val"] < 0.3 * record["n_train"]
    assert record["unit"] == "run" and record["test_groups"] == ["01//1"]
    assert record["train_groups"] == record["val_groups"] == ["01//2", "01//3"]
    card = json.loads((out / "model_card.json").read_text())
    assert card["split"]["unit"] == "run" and card["split"]["test_groups"] == ["01//1"]
    assert card["split"]["validation"]["method"] == "time_blocks"


@pytest.mark.parametrize("regime", ["head", "lp-ft"])
def test_while_only_the_head_trains_the_backbone_runs_once_per_window(ft_data, regime):
    """head and lp-ft's first phase: the frozen backbone forwards each training and validation window once in
    all, not once per epoch (validation included); lp-ft's second phase trains through the backbone again."""
    ft = _ft(max_epochs=4, patience=10)
    f = prepare_fold(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, ft, regime, 0, dataset="tiny")
    seen: list[int] = []
    handle = f.model.backbone.model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    try:
        result = train(f.model, Split(f.X[f.inner_ids], f.y[f.inner_ids]), Split(f.X[f.val_ids], f.y[f.val_ids]),
                       regime, ft, 0, f.device, f.dtype, unused=f.unused)
    finally:
        handle.remove()
    n = len(f.inner_ids) + len(f.val_ids)
    batches = sum(-(-len(ids) // 16) for ids in (f.inner_ids, f.val_ids))  # padded batches of the one pass
    assert result.status == "ok" and result.frozen_forwards_per_window == 1.0
    if regime == "head":
        assert len(seen) == batches and [p["phase"] for p in result.history] == ["main"] * 4
    else:  # lp_epochs=1 head-only epoch, then 3 epochs through the backbone (training + validation passes)
        assert len(seen) > batches and seen[:batches] == [16] * batches
        assert [p["phase"] for p in result.history] == ["probe", "main", "main", "main"]
    assert sum(seen[:batches]) >= n


def test_a_non_finite_input_is_still_reported_when_the_head_trains_on_frozen_features(ft_data, tmp_path):
    from eegfm.windows_store import open_windows

    X = np.asarray(open_windows(ft_data["windows"]).X[:]).copy()
    X[:, 3, 100] = np.nan
    record = run_finetune(ft_data["windows"], ft_data["folds"], 0, CBRAMOD, _ft(), "head", 0, tmp_path / "fold",
                          dataset="tiny", X_override=X)
    assert record["status"] == "failed" and "non-finite input at epoch 0, step 0" in record["error"]
