"""The finetune rule: one dataset × backbone × regime × fold, trained and written out.

Artifacts in ``out_dir`` (docs/architecture.md §2.5), each written atomically::

    metrics.json       scores on the fold's test windows + status, sizes, cost, provenance
    predictions.tsv    one row per test window (empty but for the header when training failed)
    history.tsv        per epoch: phase, learning rates, train/val loss, val scores, time
    diagnostics.json   non-finite input/loss/gradient (what, epoch, step), gradient norms, lr trace
    model_card.json    backbone, weights, regime, parameter counts, adapters, data, split, metrics, versions
    checkpoint.json    manifest of checkpoint.safetensors: path, sha256, best epoch, tensors, base weights
    checkpoint.safetensors  the tensors training changed (adapters + head, or the whole network)

With ``finetune.export: onnx`` the fold folder also gets ``model.onnx``: the
trained network with adapters merged, checked against torch with onnxruntime
on the fold's test windows (:mod:`eegfm.finetune.export`; the check goes into
the model card).

Windows are streamed from the store (:mod:`eegfm.streaming`); in a
data-parallel job (:mod:`eegfm.distributed`) every rank trains and predicts
its share, and rank 0 alone writes the artifacts while the others wait.

A run whose loss diverges writes every artifact with ``status: failed`` and
returns normally, so the aggregate reports it as failed; bad inputs and
configuration (missing classes, wrong checkpoint, dead adapters) raise.

A regression target (the windows store's ``target: regression``) trains a
one-output head on targets standardised with the mean and standard deviation
of the inner-training windows only (recorded as ``target_scaling``); test
predictions are mapped back to the target's units and scored by r, R² and
MAE (:func:`eegfm.metrics.compute_regression_metrics`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm import atomic
from eegfm.config import Backbone, Finetune

logger = logging.getLogger(__name__)


class FinetuneDataError(ValueError):
    """A fold that cannot be trained on (e.g. a class missing from its training subjects)."""


def target_scaling(values: np.ndarray, inner_ids: list[int], fold: int) -> dict[str, Any]:
    """Mean and standard deviation of a regression target over the inner-training windows only (no leakage)."""
    inner = values[inner_ids]
    std = float(inner.std())
    if not std > 0:
        raise FinetuneDataError(f"fold {fold}: the regression target is constant ({inner[0]:g}) over the inner "
                                "training windows; a head cannot learn it. Use more subjects or another cv.scheme")
    return {"mean": float(inner.mean()), "std": std, "fitted_on": "inner training windows", "n": len(inner_ids)}


def _check_classes(classes: list[str], labels: np.ndarray, ids: list[int], side: str, fold: int) -> None:
    missing = sorted(set(classes) - set(labels[ids].tolist()))
    if missing:
        raise FinetuneDataError(
            f"fold {fold}: class(es) {missing} have no window in the {side} set, so the head cannot learn them; "
            "use fewer cv.n_splits or a larger finetune.optim.val_fraction / more subjects per class"
        )


def _peak_memory_mb(device) -> float | None:
    import torch

    from eegfm.provenance import peak_memory_mb

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_memory_mb()


def build_classifier(spec, cfg: Backbone, plan, regime: str, ft: Finetune, n_classes: int, example, seed: int):
    """Backbone (``cfg.weights`` or a seeded init) + optional trainable channel projection + head.

    Returns the model and the names of parameters no forward pass reaches.
    """
    import torch

    from eegfm.backbones.build import build_feature_model
    from eegfm.backbones.projection import ChannelProjection
    from eegfm.finetune.model import Classifier
    from eegfm.finetune.regimes import unreached_parameters

    backbone = build_feature_model(spec, cfg, plan, seed)
    projection = None
    if plan.mapping is not None and plan.mapping.projected:
        projection = ChannelProjection.from_mapping(plan.mapping, trainable=True)
    torch.manual_seed(seed)
    model = Classifier(backbone, n_classes, ft.head, example, projection=projection,
                       input_norm=plan.input_norm if projection is not None else "none")
    unused = unreached_parameters(model, lambda: model(example).sum())
    return model, unused


def add_adapters(model, spec, regime: str, ft: Finetune, example, device):
    """LoRA (and 4-bit base layers for ``qlora``) on the backbone; ``None`` for other regimes."""
    import torch

    from eegfm.backbones.features import live_modules
    from eegfm.finetune.adapters import add_lora, quantize_linears

    if regime not in ("lora", "qlora"):
        return None
    inner = model.backbone.model
    targets = ft.lora.targets or list(spec.lora_targets)
    quantized: list[str] = []
    if regime == "qlora":
        compute = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        model.to(device)
        live = live_modules(inner, lambda: model(example))
        quantized = quantize_linears(inner, live, ft.lora.quant_type, compute)
        if not quantized:
            raise ValueError(f"qlora: backbone '{spec.name}' has no Linear layer to quantize; use regime 'lora'")
    record = add_lora(inner, targets, lambda: model(example), r=ft.lora.r, alpha=ft.lora.alpha, dropout=ft.lora.dropout,
                      quantized=bool(quantized))
    record.quantized, record.quant_type = quantized, ft.lora.quant_type if quantized else None
    return record


@dataclass
class PreparedFold:
    """One fold ready to train: model-ready windows, labels, id sets and the built model."""

    X: Any  # eegfm.streaming.AdaptedWindows of every window: X[ids] reads them model-ready
    y: Any  # torch.Tensor of class indices, or of the standardised regression target
    classes: list[str]
    meta: pd.DataFrame
    inner_ids: list[int]
    val_ids: list[int]
    test_ids: list[int]
    units: pd.Series  # the design's held-out unit of every window, by window id
    validation: dict[str, Any]  # how the early-stopping split was made (validation_split.ValidationSplit.record)
    windows: Any  # the opened windows store
    spec: Any
    cfg: Backbone
    plan: Any
    model: Any
    unused: set[str]
    adapters: Any
    device: Any
    dtype: Any
    target: str = "classification"
    scaling: dict[str, Any] | None = None  # regression: the inner-training mean and std of the target


def prepare_fold(
    windows_dir: str | PathLike,
    folds_path: str | PathLike,
    fold: int,
    cfg: Backbone,
    ft: Finetune,
    regime: str,
    seed: int,
    *,
    dataset: str,
    group_by: str = "subject",
    X_override: np.ndarray | None = None,
) -> PreparedFold:
    """Read a fold, carve its inner validation split from its training units, build the model.

    ``group_by`` is the unit for folds files that name none (written before
    designs recorded their held-out unit).

    Raises
    ------
    FinetuneDataError
        A class without windows among the inner-training subjects.
    ValueError
        Folds made for other windows, or a fold that does not exist.
    """
    import torch

    from eegfm.backbones.adapt import plan_input
    from eegfm.backbones.registry import get_spec
    from eegfm.devices import resolve_device
    from eegfm.distributed import device_for
    from eegfm.finetune.train import resolve_precision
    from eegfm.groups import window_units
    from eegfm.splits import load_folds
    from eegfm.streaming import AdaptedWindows
    from eegfm.validation_split import carve_validation
    from eegfm.windows_store import open_windows

    windows = open_windows(windows_dir)
    folds = load_folds(folds_path, windows)  # its windows, audited again as read: a hand-edited file is refused
    entry = next((f for f in folds["folds"] if int(f["fold"]) == int(fold)), None)
    if entry is None:
        raise ValueError(f"{folds_path} has folds {[f['fold'] for f in folds['folds']]}, not fold {fold}")
    meta = windows.meta.sort_values("window_id").reset_index(drop=True)
    target = windows.info.get("target", "classification")
    train_ids, test_ids = [int(v) for v in entry["train"]], [int(v) for v in entry["test"]]
    units = window_units(meta, {"group_by": group_by, **folds})
    split = carve_validation(meta, train_ids, ft.optim.val_fraction, seed, units=units,
                             max_share=ft.optim.val_max_share, window_s=windows.info["n_times"] / windows.info["sfreq"],
                             gap_s=folds.get("gap_s"), target=target)
    inner_ids, val_ids = split.inner, split.val
    scaling = None
    if target == "regression":
        from eegfm.metrics import parse_targets

        values = parse_targets(meta["label"].to_numpy())
        scaling = target_scaling(values, inner_ids, fold)
        classes, y = [], torch.from_numpy(((values - scaling["mean"]) / scaling["std"]).astype(np.float32))
    else:
        labels = meta["label"].astype(str).to_numpy()
        classes = sorted(set(labels))
        _check_classes(classes, labels, inner_ids, "inner training", fold)
        index = {c: i for i, c in enumerate(classes)}
        y = torch.from_numpy(np.array([index[c] for c in labels], dtype=np.int64))

    spec = get_spec(cfg.name)
    if regime == "scratch":  # same architecture, seeded random init: the baseline that shows what pretraining adds
        cfg = cfg.model_copy(update={"weights": None})
    plan = plan_input(spec, windows.info, dataset=dataset, cfg=cfg)
    projected = plan.mapping is not None and bool(plan.mapping.projected)
    X = windows.X if X_override is None else np.asarray(X_override)
    X_in = AdaptedWindows(X, range(len(meta)), plan, channels=not projected)  # read batch by batch

    device = device_for(torch.device(resolve_device(ft.device, "finetune.device")))
    dtype = resolve_precision(ft.precision, device)
    # sizing and reachability passes only; the training loop reports non-finite inputs itself
    example = torch.nan_to_num(X_in[inner_ids[:2]])
    model, unused = build_classifier(spec, cfg, plan, regime, ft, len(classes) or 1, example, seed)
    adapters = add_adapters(model, spec, regime, ft, example.to(device), device)
    model.to(device)
    return PreparedFold(X_in, y, classes, meta, inner_ids, val_ids, test_ids, units, split.record, windows, spec,
                        cfg, plan, model, unused, adapters, device, dtype, target, scaling)


def _test_outputs(f: PreparedFold, ok: bool, ft: Finetune) -> tuple[pd.DataFrame, dict, dict]:
    """Predictions table, metrics and chance levels of the fold's test windows (null metrics when not ``ok``)."""
    from eegfm.finetune.train import predict, predict_values
    from eegfm.metrics import (
        METRICS,
        REGRESSION_METRICS,
        chance_levels,
        compute_metrics,
        compute_regression_metrics,
        parse_targets,
        regression_chance,
    )

    rows = f.meta.loc[f.test_ids]
    predictions = pd.DataFrame({
        "window_id": rows["window_id"].astype(int).to_numpy(),
        **{c: rows[c].to_numpy() for c in ("subject", "session", "run")},
    })
    test = f.X.subset(f.test_ids)
    if f.target == "regression":
        values = parse_targets(f.meta["label"].to_numpy())
        predictions["y_true"] = values[f.test_ids]
        chance = regression_chance(values[f.inner_ids + f.val_ids], values[f.test_ids])
        if not ok:
            return predictions.assign(y_pred=np.nan).iloc[:0], dict.fromkeys(REGRESSION_METRICS), chance
        standardised = predict_values(f.model, test, ft.optim.batch_size, f.device, f.dtype, ft.workers).numpy()
        predictions["y_pred"] = standardised.astype(float) * f.scaling["std"] + f.scaling["mean"]  # target units
        return predictions, compute_regression_metrics(predictions["y_true"], predictions["y_pred"]), chance

    labels = f.meta["label"].astype(str).to_numpy()
    predictions["y_true"] = labels[f.test_ids]
    chance = chance_levels(labels[f.test_ids], f.classes)
    if not ok:  # nothing to score: an empty table with the usual columns, reported as failed
        empty = pd.DataFrame(columns=[*predictions.columns, "y_pred", *(f"score_{c}" for c in f.classes)])
        return empty, dict.fromkeys(METRICS), chance
    probs = predict(f.model, test, ft.optim.batch_size, f.device, f.dtype, ft.workers).numpy().astype(float)
    predictions["y_pred"] = np.array(f.classes, dtype=object)[probs.argmax(1)].astype(str)
    for j, cls in enumerate(f.classes):
        predictions[f"score_{cls}"] = probs[:, j]
    return predictions, compute_metrics(labels[f.test_ids], predictions["y_pred"], probs, f.classes), chance


def run_finetune(
    windows_dir: str | PathLike,
    folds_path: str | PathLike,
    fold: int,
    cfg: Backbone,
    ft: Finetune,
    regime: str,
    seed: int,
    out_dir: str | PathLike,
    *,
    dataset: str,
    group_by: str = "subject",
    X_override: np.ndarray | None = None,
    pretrain_dir: str | None = None,
) -> dict[str, Any]:
    """Train one fold in one regime and write its artifacts (see the module docstring).

    Parameters
    ----------
    windows_dir, folds_path, fold
        The dataset's windows store, its ``folds.json`` and the fold number.
    cfg
        The backbone entry (name, weights, channel/length policies).
    ft
        Fine-tuning settings.
    regime
        ``head``, ``lora``, ``qlora``, ``full``, ``lp-ft`` or ``scratch``.
    seed
        Seeds the inner split, initialisation, batch order and dropout.
    out_dir
        Folder of the fold's artifacts.
    dataset
        Dataset name (records and messages).
    group_by
        Held-out unit for folds files that name none (the CV's ``group_by``);
        the inner validation split holds out the folds' own unit.
    X_override
        Windows to use instead of the store's (same shape; tests inject NaNs with it).
    pretrain_dir
        ``results/pretrain/<name>`` when the weights come from the workflow's
        own pretraining; windows/recordings it shares with this dataset are
        recorded as ``pretrain_overlap`` (and warned about).

    Returns
    -------
    dict
        The content of ``metrics.json`` (``{}`` on ranks other than 0 of a data-parallel job).
    """
    from eegfm.backbones.checkpoints import weights_id
    from eegfm.backbones.fingerprint import fingerprint
    from eegfm.distributed import barrier, world
    from eegfm.finetune.artifacts import write_artifacts
    from eegfm.finetune.export import EXPORT_CHECK_WINDOWS, check_exportable, export_onnx
    from eegfm.finetune.train import Split, train
    from eegfm.groups import unit_list
    from eegfm.hashing import sha256_json
    from eegfm.pretrain.overlap import warn_overlap
    from eegfm.pretrain.verify import verify_weights
    from eegfm.provenance import versions

    t_start = time.perf_counter()
    if pretrain_dir and regime != "scratch":
        verify_weights(pretrain_dir)
    w = world()
    f = prepare_fold(windows_dir, folds_path, fold, cfg, ft, regime, seed, dataset=dataset, group_by=group_by,
                     X_override=X_override)
    label = f"{dataset}/{cfg.label}/{regime}/fold-{fold}"
    logger.info("%s: %d inner-train / %d val / %d test windows on %s%s%s", label, len(f.inner_ids), len(f.val_ids),
                len(f.test_ids), f.device, " (bf16 autocast)" if f.dtype is not None else "",
                f", rank {w.rank} of {w.size}" if w.distributed else "")
    if w.main:  # a model.onnx of an earlier run of this fold must not outlive it
        (Path(out_dir) / "model.onnx").unlink(missing_ok=True)
    if ft.export == "onnx" and w.main:  # an architecture the exporter cannot take fails before training
        check_exportable(f.model, f.X[f.inner_ids[:2]], label)
    result = train(f.model, Split(f.X.subset(f.inner_ids), f.y[f.inner_ids]),
                   Split(f.X.subset(f.val_ids), f.y[f.val_ids]), regime, ft, seed, f.device, f.dtype,
                   unused=f.unused, desc=label)
    final = list(result.counts.values())[-1] if result.counts else {}

    predictions, metrics, chance = _test_outputs(f, result.status == "ok", ft)
    if not w.main:  # rank 0 writes; the others wait until it has
        barrier()
        return {}

    fp = fingerprint(f.spec, f.cfg, f.plan, seed)
    subjects = lambda ids: sorted(set(f.meta.loc[ids, "subject"].astype(str)))  # noqa: E731
    groups = {f"{side}_groups": unit_list(f.units, ids)
              for side, ids in (("train", f.inner_ids), ("val", f.val_ids), ("test", f.test_ids))}
    record = atomic.json_safe({
        "dataset": dataset, "model": cfg.label, "regime": regime, "fold": int(fold), "target": f.target,
        "status": result.status, "error": result.error,
        "metrics": metrics, "chance": chance,
        "n_train": len(f.inner_ids), "n_val": len(f.val_ids), "n_test": len(f.test_ids), "classes": f.classes,
        "train_subjects": subjects(f.inner_ids), "val_subjects": subjects(f.val_ids),
        "test_subjects": subjects(f.test_ids), "unit": f.units.name, **groups, "validation": f.validation,
        "windows_key": f.windows.key, "embedding_key": None, "fingerprint_sha": sha256_json(fp),
        "settings_sha": sha256_json({"backbone": f.cfg.model_dump(mode="json"), "regime": regime, "seed": seed,
                                     "finetune": ft.model_dump(mode="json", exclude=set(Finetune.RUN_KEYS))}),
        "weights": weights_id(f.cfg.weights, seed), "versions": versions(), "device": str(f.device),
        "precision": "bf16" if f.dtype is not None else "fp32",
        "wall_time_s": time.perf_counter() - t_start, "peak_memory_mb": _peak_memory_mb(f.device),
        "trainable_params": final.get("trainable"), "frozen_params": final.get("frozen"),
        "total_params": final.get("total"), "best_epoch": result.best_epoch,
        "frozen_forwards_per_window": result.frozen_forwards_per_window,
        "pretrain_overlap": warn_overlap(pretrain_dir if regime != "scratch" else None, f.windows, label),
        "processes": w.size,
        **({"target_scaling": f.scaling} if f.scaling else {}),
    })
    exported = None
    if ft.export == "onnx" and result.status == "ok":
        exported = export_onnx(f.model, f.X[f.test_ids[:EXPORT_CHECK_WINDOWS]], Path(out_dir) / "model.onnx", label)
    write_artifacts(Path(out_dir), record, predictions, result, f.model, result.counts,
                    f.adapters.as_dict() if f.adapters else None, fp, ft, f.unused, export=exported)
    barrier()
    level = logging.INFO if result.status == "ok" else logging.ERROR
    shown = "pearson_r" if f.target == "regression" else "balanced_accuracy"
    logger.log(level, "%s: %s, test %s %s", label, result.status, shown, metrics.get(shown))
    return record
