"""The pretrain rule: one recipe trained on its datasets' windows, resumable after a kill.

Layout under ``out_dir`` (``results/pretrain/<name>``)::

    weights/model.safetensors   the braindecode model's state dict (what backbones[].weights loads)
    weights/recipe.json         the recipe, seed and data keys (deterministic: part of the weights' hash)
    history.tsv                 loss per epoch
    manifest.json               sha256 of the weights, recipe, steps, data (subjects, recordings)
    data.json                   the pretraining windows' content hashes and recordings (overlap checks)
    resume/step-NNNNNN/         the last complete checkpoint (model, head, optimiser, schedule, losses,
                                and the settings it was made with)

A checkpoint is written to a temporary folder and renamed, so a kill never
leaves one half-written; a restarted job continues from the newest. Every
random draw of step ``s`` comes from generators seeded by ``(seed, s)``, so
a resumed run ends with the same weights as an uninterrupted one.

A checkpoint is resumed only when it was made with the same settings
(:func:`resume_settings`: the recipe, seed, the data's content keys, the
model's input and the training code); otherwise it is discarded with a log
line and training starts from step 0. A run stopped by a non-finite loss
removes its checkpoints, so a rerun never continues the diverged state.

Windows are streamed from the stores batch by batch (:mod:`eegfm.streaming`).
With ``pretrain.<name>.processes`` > 1 (:mod:`eegfm.distributed`) every rank
draws the same global batches and trains on its share in
DistributedDataParallel, with its own masks and views (generators seeded by
``(seed, step, rank)``); rank 0 alone writes checkpoints and outputs. The
contrastive loss then finds negatives within each rank's share only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import eegfm
from eegfm import atomic, distributed
from eegfm.config import Backbone, Pretrain
from eegfm.pretrain.overlap import window_hashes
from eegfm.provenance import package_versions

logger = logging.getLogger(__name__)

RESUME = "resume"
#: Recipe settings that never change the weights (per-step seeding makes checkpoints interchangeable).
#: Recipe settings that do not change the weights (the process count does: it enters as ``processes``).
_NOT_RESULT = {"threads", "gpus", "checkpoint_every", "processes", "nodes", "workers"}
#: Packages whose code shapes a pretraining step (the model, its input, the objectives and the schedule).
_TRAINING_CODE = ("pretrain", "backbones", "finetune")


def training_code_version() -> str:
    """sha256 over the source of the packages that shape training, plus the eegfm, torch and braindecode versions."""
    root = Path(eegfm.__file__).resolve().parent
    digest = hashlib.sha256(json.dumps([eegfm.__version__, package_versions(("torch", "braindecode"))]).encode())
    for package in _TRAINING_CODE:
        for file in sorted((root / package).rglob("*.py")):
            digest.update(f"{file.relative_to(root).as_posix()}\0".encode() + file.read_bytes())
    return digest.hexdigest()


def resume_settings(recipe: Pretrain, seed: int, windows_keys: list[str], plan, processes: int = 1) -> dict[str, Any]:
    """Everything that changes the weights a run ends with; a checkpoint is resumed only under equal settings.

    Parameters
    ----------
    recipe, seed
        The run's recipe and seed.
    windows_keys
        Content keys of the pretraining windows stores, in order.
    plan
        The backbone's input plan (channels, samples, rate).
    processes
        Data-parallel processes of the run: each draws its own masks and views.
    """
    return {
        "recipe": recipe.model_dump(mode="json", exclude=_NOT_RESULT),
        "seed": seed,
        "data": list(windows_keys),
        "processes": processes,
        "input": {"channels": list(plan.ch_names), "n_times": plan.n_times_out, "sfreq": plan.sfreq_out},
        "code": training_code_version(),
    }


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ (``recipe.lr``, ``data``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(old.keys() | new.keys())
                for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def _load_data(windows_dirs: list[str], spec, cfg: Backbone):
    """The datasets' windows as one streamed source (nothing read yet but labels and window hashes)."""
    from eegfm.backbones.adapt import plan_input
    from eegfm.streaming import AdaptedWindows, ConcatWindows
    from eegfm.windows_store import open_windows

    parts, labels, subjects, recordings, hashes, keys, plan = [], [], [], [], [], [], None
    for d in windows_dirs:
        w = open_windows(d)
        p = plan_input(spec, w.info, dataset=Path(d).parent.name, cfg=cfg)
        if plan is not None and (p.ch_names, p.n_times_out) != (plan.ch_names, plan.n_times_out):
            raise ValueError(
                f"pretraining datasets feed {spec.name} different inputs ({plan.ch_names[:3]}..., "
                f"{plan.n_times_out} samples vs {p.ch_names[:3]}..., {p.n_times_out}); use datasets with the "
                "same channels and window length"
            )
        plan = p
        hashes += window_hashes(w.X)
        parts.append(AdaptedWindows(w.X, range(w.X.shape[0]), p))
        labels += w.meta["label"].astype(str).tolist()
        subjects += [f"{Path(d).parent.name}/{s}" for s in w.meta["subject"].astype(str)]
        recordings += w.meta["recording"].astype(str).tolist()
        keys.append(w.key)
    return ConcatWindows(parts), labels, subjects, recordings, hashes, keys, plan


class _Step(torch.nn.Module):
    """Backbone + objective as one module, so DistributedDataParallel sees every trained parameter."""

    def __init__(self, fm, objective):
        super().__init__()
        self.fm, self.objective = fm, objective

    def forward(self, x, y, generator):
        return self.objective(self.fm.features, x, y, generator)


def _checkpoints(resume_dir: Path) -> list[Path]:
    return sorted(p for p in resume_dir.glob("step-*") if (p / "state.pt").is_file())


def run_pretrain(
    windows_dirs: list[str | PathLike],
    recipe: Pretrain,
    name: str,
    seed: int,
    out_dir: str | PathLike,
    *,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) one pretraining recipe and write its weights.

    Parameters
    ----------
    windows_dirs
        Windows stores of the recipe's datasets.
    recipe
        The recipe settings.
    name
        The recipe's name (``weights: pretrain:<name>``).
    seed
        Seeds the initialisation and every per-step draw.
    out_dir
        ``results/pretrain/<name>``.
    stop_after
        Stop (as if killed) after this many steps, leaving only checkpoints (tests).

    Returns
    -------
    dict
        The manifest (``{}`` when stopped early).
    """
    from eegfm.backbones.build import build_feature_model
    from eegfm.backbones.features import pool
    from eegfm.backbones.registry import get_spec
    from eegfm.devices import resolve_device
    from eegfm.finetune.train import lr_lambda
    from eegfm.pretrain.recipes import POOLING, Objective, patch_tokens
    from eegfm.streaming import loader, share

    out = Path(out_dir)
    resume_dir = out / RESUME
    w = distributed.world()
    spec = get_spec(recipe.backbone)
    cfg = Backbone(name=recipe.backbone, kwargs=recipe.kwargs)
    X, labels, subjects, recordings, hashes, keys, plan = _load_data([str(d) for d in windows_dirs], spec, cfg)
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(c) for c in labels])
    device = distributed.device_for(torch.device(resolve_device(recipe.device, f"pretrain.{name}.device")))

    torch.manual_seed(seed)
    fm = build_feature_model(spec, cfg, plan, seed).to(device).train()
    patch = round(recipe.patch_s * plan.sfreq_out)
    with torch.no_grad():
        example = fm.features(X[[0, 1]].to(device))
        dim = pool(example, POOLING).shape[1]
        token_dim = None
        if recipe.recipe == "masked":
            token_dim = patch_tokens(example, X.shape[1], X.shape[2] // patch).shape[-1]
    objective = Objective(recipe, dim, token_dim, len(classes), patch, plan.sfreq_out).to(device)
    params = [p for p in (*fm.parameters(), *objective.parameters()) if p.dtype.is_floating_point]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = len(X) // recipe.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"pretrain.{name}: {len(X)} windows are fewer than one batch ({recipe.batch_size})")
    total = steps_per_epoch * recipe.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(steps_per_epoch, total))

    settings = resume_settings(recipe, seed, keys, plan, processes=w.size)
    start, losses = 0, []
    state = _resume_state(resume_dir, settings, name, device)
    if state is not None:
        fm.load_state_dict(state["model"])
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = int(state["step"]), list(state["losses"])
        logger.info("pretrain %s: resuming from step-%06d (step %d of %d)", name, start, start, total)

    t0 = time.perf_counter()
    net = distributed.wrap(_Step(fm, objective), device, find_unused=True)  # the model's own head never trains
    bar = tqdm(total=total, desc=f"pretrain {name}", initial=start, mininterval=5)
    for epoch in range(start // steps_per_epoch, recipe.epochs):
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        first = max(start - epoch * steps_per_epoch, 0)
        steps = range(epoch * steps_per_epoch + first, (epoch + 1) * steps_per_epoch)
        batches = [order[within * recipe.batch_size : (within + 1) * recipe.batch_size].tolist()
                   for within in range(first, steps_per_epoch)]
        parts = [share(b, w.rank, w.size) for b in batches]
        for step, (xb, yb) in zip(steps, loader(X, y, parts, recipe.workers), strict=True):
            # draws of (seed, step), and of the rank in a data-parallel job; one process draws as it always did
            draws = torch.Generator().manual_seed((seed * 1_000_003 + step) * w.size + w.rank)
            torch.manual_seed((seed * 1_000_033 + step) * w.size + w.rank)  # dropout
            loss = net(xb.to(device), yb.to(device), draws)
            (mean,) = distributed.all_sum([loss.item() / w.size], device)
            if not np.isfinite(mean):
                if w.main:
                    shutil.rmtree(resume_dir, ignore_errors=True)  # the state that diverged must not be continued
                raise FloatingPointError(
                    f"pretrain {name}: non-finite loss at step {step}; lower pretrain.{name}.lr (its checkpoints "
                    "were removed: the rerun starts from step 0)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(mean)
            bar.update()
            finished = step + 1
            if (finished % recipe.checkpoint_every == 0 or finished == total) and w.main:
                _save_checkpoint(resume_dir, finished, fm, objective, optimizer, scheduler, losses, settings)
            if stop_after is not None and finished >= stop_after:
                logger.info("pretrain %s: stopped after step %d (stop_after)", name, finished)
                distributed.barrier()
                return {}
    bar.close()
    logger.info("pretrain %s: %d steps in %.1f s, loss %.4f -> %.4f", name, total, time.perf_counter() - t0,
                float(np.mean(losses[:steps_per_epoch])), float(np.mean(losses[-steps_per_epoch:])))
    manifest = {}
    if w.main:  # rank 0 writes; the others wait until it has
        manifest = _write_outputs(out, fm, recipe, name, seed, losses, steps_per_epoch, keys, subjects, recordings,
                                  hashes, classes)
    distributed.barrier()
    return manifest


def _resume_state(resume_dir: Path, settings: dict[str, Any], name: str, device) -> dict[str, Any] | None:
    """The newest checkpoint's state if it was made with ``settings``; otherwise the checkpoints are discarded."""
    done = _checkpoints(resume_dir)
    if not done:
        return None
    try:
        state = torch.load(done[-1] / "state.pt", map_location=device, weights_only=True)
        made_with = json.loads(state["settings"])
    except Exception as err:  # noqa: BLE001 - an unreadable or pre-settings checkpoint is not resumed
        reason = f"it cannot be read ({type(err).__name__}: {err})"
    else:
        if made_with == settings:
            return state
        reason = f"it was made with other settings ({', '.join(_differences(made_with, settings))} changed)"
    logger.warning("pretrain %s: discarding %s/%s: %s; training starts from step 0", name, RESUME, done[-1].name,
                   reason)
    shutil.rmtree(resume_dir, ignore_errors=True)
    return None


def _save_checkpoint(resume_dir: Path, step: int, fm, objective, optimizer, scheduler, losses,
                     settings: dict[str, Any]) -> None:
    resume_dir.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "model": fm.state_dict(), "objective": objective.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "losses": losses,
             "settings": json.dumps(settings, sort_keys=True)}
    with atomic.atomic_dir(resume_dir / f"step-{step:06d}") as tmp:
        torch.save(state, Path(tmp) / "state.pt")
    for old in _checkpoints(resume_dir)[:-1]:  # keep only the newest complete one
        shutil.rmtree(old, ignore_errors=True)


def _write_outputs(out, fm, recipe, name, seed, losses, steps_per_epoch, keys, subjects, recordings, hashes,
                   classes) -> dict[str, Any]:
    from safetensors.torch import save_file

    from eegfm.hashing import sha256_file
    from eegfm.provenance import versions

    weights = out / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in fm.model.state_dict().items()}
    with atomic.atomic_file(weights / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    atomic.write_json(weights / "recipe.json", {"name": name, "recipe": recipe.model_dump(mode="json"),
                                                "seed": seed, "windows_keys": keys})
    per_epoch = [losses[i : i + steps_per_epoch] for i in range(0, len(losses), steps_per_epoch)]
    atomic.write_tsv(out / "history.tsv", pd.DataFrame(
        {"epoch": range(len(per_epoch)), "loss": [float(np.mean(e)) for e in per_epoch],
         "steps": [len(e) for e in per_epoch]}))
    atomic.write_json(out / "data.json", {"windows_keys": keys, "window_hashes": hashes,
                                          "recordings": sorted(set(recordings)), "subjects": sorted(set(subjects))})
    manifest = {
        "name": name, "backbone": recipe.backbone, "kwargs": recipe.kwargs, "recipe": recipe.recipe,
        "weights": "weights/model.safetensors", "sha256": sha256_file(weights / "model.safetensors"),
        "steps": len(losses), "loss_first_epoch": float(np.mean(per_epoch[0])),
        "loss_last_epoch": float(np.mean(per_epoch[-1])), "n_windows": len(hashes),
        "subjects": sorted(set(subjects)), "classes": classes if recipe.recipe == "supervised-source" else None,
        "windows_keys": keys, "versions": versions(),
    }
    atomic.write_json(out / "manifest.json", manifest)
    shutil.rmtree(out / RESUME, ignore_errors=True)
    return manifest
