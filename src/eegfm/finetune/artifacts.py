"""Writing a fine-tuning fold's artifacts (see :mod:`eegfm.finetune.run` for the list)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from eegfm import atomic
from eegfm.config import Finetune
from eegfm.finetune.train import TrainResult
from eegfm.hashing import sha256_file

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "phase", "lr_backbone", "lr_head", "train_loss", "val_loss",
                   "val_balanced_accuracy", "val_accuracy", "time_s")
# a regression target: the validation loss (MSE or Huber, standardised target), R² and Pearson's r
REGRESSION_HISTORY_COLUMNS = ("epoch", "phase", "lr_backbone", "lr_head", "train_loss", "val_loss", "val_r2",
                              "val_pearson_r", "time_s")


def trained_tensors(model: nn.Module, names: set[str]) -> dict[str, torch.Tensor]:
    """The parameters training changed, plus floating buffers, contiguous on CPU (safetensors-ready)."""
    out = {n: p.detach().float().cpu().contiguous() for n, p in model.named_parameters() if n in names}
    out.update({n: b.detach().cpu().contiguous() for n, b in model.named_buffers()
                if b.dtype.is_floating_point and n.startswith(("backbone.", "head.", "projection."))})
    return out


def _diagnostics(result: TrainResult) -> dict[str, Any]:
    norms = np.asarray(result.diagnostics["grad_norm"], dtype=float)
    return {
        "status": result.status,
        "error": result.error,
        "nonfinite": result.diagnostics["nonfinite"],
        "steps": result.diagnostics["steps"],
        "grad_norm": {
            "per_step": norms.tolist(),
            "max": float(norms.max()) if norms.size else None,
            "mean": float(norms.mean()) if norms.size else None,
        },
        "lr_per_step": result.diagnostics["lr"],
    }


def write_artifacts(
    out: Path,
    record: dict[str, Any],
    predictions: pd.DataFrame,
    result: TrainResult,
    model: nn.Module,
    counts: dict[str, dict[str, int]],
    adapters: dict[str, Any] | None,
    fingerprint: dict[str, Any],
    ft: Finetune,
    unused: set[str],
    export: dict[str, Any] | None = None,
) -> None:
    """Write every artifact of one fold atomically; metrics.json last, as the rule's completion marker.

    ``export`` is the ONNX export record (:func:`eegfm.finetune.export.export_onnx`), kept in the model card.
    """
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    columns = REGRESSION_HISTORY_COLUMNS if record.get("target") == "regression" else HISTORY_COLUMNS
    history = pd.DataFrame(result.history, columns=list(columns))
    atomic.write_tsv(out / "history.tsv", history)
    atomic.write_json(out / "diagnostics.json", _diagnostics(result))

    ckpt = out / "checkpoint.safetensors"
    tensors = trained_tensors(model, result.trained)
    with atomic.atomic_file(ckpt) as tmp:
        save_file(tensors, str(tmp))  # no metadata: safetensors writes it in hash order, so bytes would vary
    manifest = {
        "path": ckpt.name,
        "sha256": sha256_file(ckpt),
        "best_epoch": result.best_epoch,
        "n_tensors": len(tensors),
        "n_values": int(sum(t.numel() for t in tensors.values())),
        "contents": "trained parameters and floating buffers (load over the base model built from 'base')",
        "base": {"backbone": fingerprint.get("backbone"), "weights": record["weights"],
                 "fingerprint_sha": record["fingerprint_sha"]},
        "regime": record["regime"],
    }
    atomic.write_json(out / "checkpoint.json", manifest)
    card = {
        "backbone": {"label": record["model"], "name": fingerprint.get("backbone"), "weights": record["weights"],
                     "init_kwargs": fingerprint.get("init_kwargs"), "fingerprint_sha": record["fingerprint_sha"]},
        "regime": record["regime"],
        "parameters": counts,
        "unused_parameters": sorted(unused),
        "adapters": adapters,
        "head": ft.head.model_dump(),
        "optim": ft.optim.model_dump(),
        "data": {"dataset": record["dataset"], "windows_key": record["windows_key"], "classes": record["classes"],
                 "n_train": record["n_train"], "n_val": record["n_val"], "n_test": record["n_test"]},
        "split": {"fold": record["fold"], "unit": record["unit"], "train_groups": record["train_groups"],
                  "val_groups": record["val_groups"], "test_groups": record["test_groups"],
                  "train_subjects": record["train_subjects"], "val_subjects": record["val_subjects"],
                  "test_subjects": record["test_subjects"], "validation": record["validation"]},
        "status": record["status"],
        "metrics": record["metrics"],
        "best_epoch": result.best_epoch,
        "device": record["device"],
        "precision": record["precision"],
        "processes": record.get("processes", 1),
        "export": export,
        "versions": record["versions"],
    }
    atomic.write_json(out / "model_card.json", card)
    atomic.write_tsv(out / "predictions.tsv", predictions)
    atomic.write_json(out / "metrics.json", record)
