"""The optimisation loop: AdamW, warmup + cosine, clipping, early stopping, diagnostics.

One call trains one fold. The loop watches for non-finite inputs, losses and
gradients: the first one stops training and is recorded (what, epoch, step)
instead of raising, so the job can write its diagnostics and be reported as
failed rather than vanish. Early stopping watches the validation loss on
windows of held-out *training* subjects; the best state is kept in memory and
restored at the end.

While only the head trains, the frozen backbone runs once per window
(:mod:`eegfm.finetune.frozen`) and the head trains on its pooled features.

Windows are read from the store batch by batch (:mod:`eegfm.streaming`),
``finetune.workers`` processes ahead of the model. In a data-parallel job
(:mod:`eegfm.distributed`) every rank draws the same global batches and
trains on its contiguous share of each, in DistributedDataParallel; the loss
is normalised by the *global* batch, so the averaged gradient is the one a
single process would compute on the whole batch. Non-finite inputs/losses,
the logged loss and the validation predictions are combined over ranks, so
every rank takes the same early-stopping decision.

Classes are learnt with a (class-weighted) cross-entropy; a regression target
(float labels, standardised by the caller on the inner-training windows) with
the mean squared error of a one-output head, or the Huber loss
(``finetune.optim.regression_loss``), its validation scored by the loss, R²
and Pearson's r (both unchanged by the standardisation).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from eegfm import distributed
from eegfm.config import Finetune
from eegfm.finetune.frozen import FrozenFeatures
from eegfm.finetune.regimes import assert_regime, check_gradients, group_of, set_trainable
from eegfm.streaming import epoch_batches, loader, share

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """From ``epoch`` on, ``regime`` trains in ``phase`` with the top ``share`` of backbone blocks open."""

    epoch: int
    phase: str
    share: float


def phases(regime: str, ft: Finetune) -> list[Phase]:
    """The phases of a regime: lp-ft's head-only start, gradual unfreezing of 'full', else one."""
    if regime == "lp-ft":
        return [Phase(0, "probe", 0.0), Phase(ft.lp_epochs, "main", 1.0)]
    if regime == "full" and ft.unfreeze_schedule:
        return [Phase(e, "main", s) for e, s in sorted(ft.unfreeze_schedule.items())]
    return [Phase(0, "main", 1.0)]


@dataclass
class Split:
    """Windows and labels of one side of a fold.

    ``X`` is anything that ``X[index_tensor]`` turns into model-ready
    windows: a tensor, or :class:`~eegfm.streaming.AdaptedWindows` (read
    from the store batch by batch). ``y`` is a CPU tensor: integer class
    indices, or float (standardised) regression targets.
    """

    X: Any
    y: torch.Tensor


@dataclass
class TrainResult:
    """What the loop did."""

    status: str  # "ok" | "failed"
    error: str | None
    history: list[dict[str, Any]]
    best_epoch: int | None
    diagnostics: dict[str, Any]
    counts: dict[str, dict[str, int]]  # per phase
    trained: set[str] = field(default_factory=set)  # parameters that were trainable in some phase
    frozen_forwards_per_window: float | None = None  # backbone passes per window while only the head trained


def resolve_precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 when asked (and supported), 'auto' -> bf16 on CUDA that supports it; else None."""
    if requested == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    else:
        supported = device.type == "cpu"  # CPU autocast supports bf16 (slow without AVX512-BF16)
    if requested == "bf16":
        if not supported:
            raise RuntimeError(f"finetune.precision 'bf16' is not supported on {device}; use 'fp32' or 'auto'")
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" and supported else None


def class_weights(y: torch.Tensor, n_classes: int, how: str) -> torch.Tensor | None:
    """Inverse-frequency weights ``n / (K · count)`` (sklearn's 'balanced'), or None."""
    if how == "none":
        return None
    counts = torch.bincount(y, minlength=n_classes).double()
    return (len(y) / (n_classes * counts.clamp_min(1))).float()


def lr_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Linear warmup to 1, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _param_groups(model: nn.Module, trainable: set[str], ft: Finetune) -> list[dict[str, Any]]:
    """AdamW groups: head vs backbone learning rates; no decay on biases and norms (ndim < 2)."""
    groups: dict[tuple[str, bool], list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        if name in trainable:
            key = ("head" if group_of(name) == "head" else "backbone", p.ndim >= 2)
            groups.setdefault(key, []).append(p)
    out = []
    for (part, decay), params in sorted(groups.items()):
        lr = ft.optim.lr_head if part == "head" else ft.optim.lr_backbone
        out.append({"params": params, "lr": lr, "weight_decay": ft.optim.weight_decay if decay else 0.0, "name": part})
    return out


def snapshot(model: nn.Module, names: set[str]) -> dict[str, torch.Tensor]:
    """Copies of the parameters in ``names`` and of every floating buffer (batch-norm statistics)."""
    state = {n: p.detach().clone() for n, p in model.named_parameters() if n in names}
    state.update({n: b.detach().clone() for n, b in model.named_buffers() if b.dtype.is_floating_point})
    return state


def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a :func:`snapshot` back into ``model`` in place."""
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        for name, value in state.items():
            tensors[name].copy_(value)


def _trainable_union(model: nn.Module, regime: str, plan: list[Phase], unused: set[str]) -> set[str]:
    names: set[str] = set()
    for ph in plan:
        set_trainable(model, regime, ph.phase, ph.share, unused=unused)
        names |= {n for n, p in model.named_parameters() if p.requires_grad}
    return names


def outputs(model: nn.Module, X: Any, batch_size: int, device: torch.device, dtype, workers: int = 0) -> torch.Tensor:
    """The head's outputs (N, K) in eval mode; batches are padded to ``batch_size`` (batch-size-invariant).

    In a data-parallel job each rank predicts a contiguous share of the
    windows and every rank gets all rows back, in order.
    """
    w = distributed.world()
    mine = share(list(range(len(X))), w.rank, w.size)
    batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    model.eval()
    out = []
    with torch.no_grad():
        for xb, _ in loader(X, torch.zeros(len(X), dtype=torch.long), batches, workers):
            n = len(xb)
            if batch_size - n:
                xb = torch.cat([xb, xb[-1:].expand(batch_size - n, *xb.shape[1:])])
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out.append(model(xb.to(device)).float()[:n].cpu())
    part = torch.cat(out) if out else torch.empty(0)
    if w.distributed:
        part = distributed.gather_rows(part)
    return part


def predict(model: nn.Module, X: Any, batch_size: int, device: torch.device, dtype, workers: int = 0) -> torch.Tensor:
    """Class probabilities (N, K) in eval mode: a softmax of :func:`outputs`."""
    logits = outputs(model, X, batch_size, device, dtype, workers)
    return torch.softmax(logits, dim=1) if len(logits) else logits


def predict_values(model: nn.Module, X: Any, batch_size: int, device: torch.device, dtype,
                   workers: int = 0) -> torch.Tensor:
    """A one-output head's values (N,) in eval mode: the standardised regression target's prediction."""
    values = outputs(model, X, batch_size, device, dtype, workers)
    return values[:, 0] if len(values) else values


@dataclass
class Objective:
    """What the loop minimises and watches: ``loss(outputs, y)`` per window (summed by the loop and divided by
    the global batch's ``weight(labels)``), and ``evaluate(model, split, batch_size, dtype, workers)`` -> the
    history's validation columns (``val_loss`` first: what early stopping watches)."""

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    weight: Callable[[torch.Tensor], float]
    evaluate: Callable[..., dict[str, float]]


def objective(train_split: Split, val_split: Split, opt_cfg, device: torch.device) -> Objective:
    """Cross-entropy (class-weighted, label-smoothed) for class indices; MSE or Huber of one output for a
    float (standardised) regression target."""
    if train_split.y.is_floating_point():
        criterion = nn.HuberLoss(reduction="none", delta=opt_cfg.huber_delta) \
            if opt_cfg.regression_loss == "huber" else nn.MSELoss(reduction="none")

        def evaluate_values(model, split: Split, batch_size: int, dtype, workers: int) -> dict[str, float]:
            from eegfm.metrics import compute_regression_metrics

            values = predict_values(model, split.X, batch_size, device, dtype, workers)
            if not torch.isfinite(values).all():  # never the best epoch; training's own checks say why
                return {"val_loss": math.nan, "val_r2": math.nan, "val_pearson_r": math.nan}
            scores = compute_regression_metrics(split.y.numpy(), values.numpy())
            return {"val_loss": float(criterion(values, split.y).mean()), "val_r2": scores["r2"],
                    "val_pearson_r": scores["pearson_r"]}

        return Objective(lambda out, y: criterion(out.squeeze(1), y), lambda labels: float(len(labels)),
                         evaluate_values)

    n_classes = int(max(train_split.y.max(), val_split.y.max())) + 1
    weight = class_weights(train_split.y, n_classes, opt_cfg.class_weight)
    loss_fn = nn.CrossEntropyLoss(weight=None if weight is None else weight.to(device),
                                  label_smoothing=opt_cfg.label_smoothing, reduction="none")
    window_weight = torch.ones(n_classes) if weight is None else weight
    eval_loss = nn.NLLLoss(weight=weight)

    def evaluate_classes(model, split: Split, batch_size: int, dtype, workers: int) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, balanced_accuracy_score

        probs = predict(model, split.X, batch_size, device, dtype, workers)
        pred, y = probs.argmax(1).numpy(), split.y.numpy()
        return {"val_loss": float(eval_loss(torch.log(probs.clamp_min(1e-12)), split.y)),
                "val_balanced_accuracy": float(balanced_accuracy_score(y, pred)),
                "val_accuracy": float(accuracy_score(y, pred))}

    return Objective(loss_fn, lambda labels: float(window_weight[labels].sum()), evaluate_classes)


def train(
    model: nn.Module,
    train_split: Split,
    val_split: Split,
    regime: str,
    ft: Finetune,
    seed: int,
    device: torch.device,
    dtype: torch.dtype | None,
    unused: set[str] = frozenset(),
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` in ``regime`` with early stopping on ``val_split``; restore the best state.

    Parameters
    ----------
    model
        A :class:`~eegfm.finetune.model.Classifier` (adapters already added);
        one output for a regression target.
    train_split, val_split
        Inner-train and validation windows (validation subjects are training
        subjects held out, never test subjects); float labels are a
        regression target, standardised on the inner-training windows.
    regime
        One of :data:`~eegfm.finetune.regimes.REGIMES`.
    ft
        Fine-tuning settings.
    seed
        Seeds the batch order and dropout.
    device, dtype
        Torch device and autocast dtype (None: fp32).
    unused
        Parameter names no forward pass reaches (kept frozen, e.g. the
        braindecode model's own classification head).
    desc
        Progress-bar label.

    Returns
    -------
    TrainResult
        ``status`` is ``"failed"`` (with ``error`` and ``diagnostics.nonfinite``)
        when an input, loss or gradient became non-finite.

    Raises
    ------
    RegimeError
        Trainable parameters the regime does not allow, or tensors that get
        no gradient at the first step.
    """
    opt_cfg = ft.optim
    w = distributed.world()
    workers = ft.workers
    plan = phases(regime, ft)
    trained = _trainable_union(model, regime, plan, unused)
    optimizer = torch.optim.AdamW(_param_groups(model, trained, ft))
    steps_per_epoch = math.ceil(len(train_split.y) / opt_cfg.batch_size)
    total = steps_per_epoch * opt_cfg.max_epochs
    warmup = round(opt_cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total))
    # summed per window and divided by the global batch's weight: the mean a single process takes
    goal = objective(train_split, val_split, opt_cfg, device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed + w.rank)  # dropout: each rank its own masks

    history: list[dict[str, Any]] = []
    diagnostics: dict[str, Any] = {"nonfinite": None, "grad_norm": [], "lr": [], "steps": 0}
    counts: dict[str, dict[str, int]] = {}
    best = {"loss": math.inf, "epoch": None, "state": None}
    bad_epochs, step = 0, 0
    current: Phase | None = None
    checked = False
    status, error = "ok", None
    net = model
    frozen = FrozenFeatures(model, opt_cfg.batch_size, device, dtype, workers)
    head_only = ever_head_only = False

    for epoch in range(opt_cfg.max_epochs):
        phase = [p for p in plan if p.epoch <= epoch][-1]
        if phase != current:
            set_trainable(model, regime, phase.phase, phase.share, unused=unused)
            counts[f"{phase.phase}@{epoch}"] = assert_regime(model, regime, phase.phase, phase.share, unused=unused)
            current, checked = phase, False
            # Only the head trains: it learns from features the frozen part computes once per window.
            head_only = not any(p.requires_grad for n, p in model.named_parameters() if group_of(n) != "head")
            ever_head_only |= head_only
            if not head_only:
                frozen.clear()  # the backbone trains from here on: its old features are stale
            net = distributed.wrap(model.head if head_only else model, device)  # DDP registers what trains now
            logger.info("epoch %d: %s phase %s, %s%s", epoch, regime, phase.phase, counts[f"{phase.phase}@{epoch}"],
                        " (head on frozen features, one backbone pass per window)" if head_only else "")
        params = [p for p in model.parameters() if p.requires_grad]
        backbone_trains = not head_only
        if head_only:
            X_train, X_val, data_workers, scorer = frozen(0, train_split.X), frozen(1, val_split.X), 0, model.head
        else:
            X_train, X_val, data_workers, scorer = train_split.X, val_split.X, workers, model
        lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}  # at the epoch's start
        model.train()
        if not backbone_trains:  # a frozen backbone is a fixed function: no dropout, no batch-norm updates
            model.backbone.eval()
        t0, losses = time.perf_counter(), []
        batches = epoch_batches(len(train_split.y), opt_cfg.batch_size, generator)
        totals = [goal.weight(train_split.y[b]) for b in batches]
        parts = [share(b, w.rank, w.size) or b[:1] for b in batches]  # an empty share runs one window at weight 0
        bar = tqdm(zip(loader(X_train, train_split.y, parts, data_workers), batches, totals, strict=True),
                   total=len(batches), desc=f"{desc} epoch {epoch}", leave=False, mininterval=5)
        for (xb, yb), batch, total_weight in bar:
            xb, yb = xb.to(device), yb.to(device)
            keep = float(bool(share(batch, w.rank, w.size)))
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                per_window = goal.loss(net(xb).float(), yb)
            loss = per_window.sum() * (keep * w.size / total_weight)
            bad_input, global_loss = distributed.all_sum(
                [float(not torch.isfinite(xb).all()), loss.item() / w.size], device)
            if bad_input:
                status, error = "failed", f"non-finite input at epoch {epoch}, step {step}"
                diagnostics["nonfinite"] = {"what": "input", "epoch": epoch, "step": step}
                break
            if not math.isfinite(global_loss):
                status, error = "failed", f"non-finite loss ({global_loss}) at epoch {epoch}, step {step}"
                diagnostics["nonfinite"] = {"what": "loss", "epoch": epoch, "step": step}
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if not checked:  # first step of each phase: every trainable tensor must be reached
                check_gradients((n, p) for n, p in model.named_parameters())
                checked = True
            norm = torch.nn.utils.clip_grad_norm_(params, opt_cfg.grad_clip or math.inf)
            if not torch.isfinite(norm):
                status, error = "failed", f"non-finite gradient norm at epoch {epoch}, step {step}"
                diagnostics["nonfinite"] = {"what": "gradient", "epoch": epoch, "step": step}
                break
            optimizer.step()
            scheduler.step()
            diagnostics["grad_norm"].append(float(norm))
            diagnostics["lr"].append([g["lr"] for g in optimizer.param_groups])
            losses.append(global_loss)
            step += 1
        if status == "failed":
            logger.error("%s: %s; training stopped", desc, error)
            break
        scores = goal.evaluate(scorer, Split(X_val, val_split.y), opt_cfg.batch_size, dtype, data_workers)
        val_loss = scores["val_loss"]
        history.append({
            "epoch": epoch, "phase": phase.phase, "lr_backbone": lrs.get("backbone"), "lr_head": lrs.get("head"),
            "train_loss": float(np.mean(losses)) if losses else math.nan, **scores,
            "time_s": time.perf_counter() - t0,
        })
        logger.info("%s epoch %d: train loss %.4f, %s", desc, epoch, history[-1]["train_loss"],
                    ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        if val_loss < best["loss"] - 1e-6:
            best = {"loss": val_loss, "epoch": epoch, "state": snapshot(model, trained)}
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= opt_cfg.patience:
                logger.info("%s: early stop at epoch %d (best epoch %d)", desc, epoch, best["epoch"])
                break
    if best["state"] is not None:
        restore(model, best["state"])
    diagnostics["steps"] = step
    per_window = frozen.forwarded / (len(train_split.y) + len(val_split.y)) if ever_head_only else None
    return TrainResult(status, error, history, best["epoch"], diagnostics, counts, trained,
                       frozen_forwards_per_window=per_window)
