"""Backbone + aggregation + head: the network a fine-tuning job trains.

The backbone is a :class:`~eegfm.backbones.features.FeatureModel`, so it is
read out exactly where frozen embeddings are read (the family's feature
tap). Its unpooled features are pooled as ``finetune.head.aggregation`` says
(with :func:`eegfm.backbones.features.pool`, the pooling of frozen
embeddings) and fed to a small head; the backbone's own classification head
never runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from eegfm.backbones.features import pool
from eegfm.config import Head


def make_head(dim: int, n_classes: int, cfg: Head) -> nn.Module:
    """``Dropout -> Linear`` or ``Linear -> GELU -> Dropout -> Linear``."""
    if cfg.kind == "linear":
        return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(dim, n_classes))
    return nn.Sequential(nn.Linear(dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_classes))


def normalize(x: torch.Tensor, input_norm: str) -> torch.Tensor:
    """Torch twin of :func:`eegfm.backbones.adapt.normalize_input`, after a trainable channel projection."""
    if input_norm == "channel_q95":
        return x / (torch.quantile(x.abs(), 0.95, dim=-1, keepdim=True) + 1e-8)
    if input_norm == "window_minmax":
        low, high = x.amin(dim=(1, 2), keepdim=True), x.amax(dim=(1, 2), keepdim=True)
        return 2 * (x - low) / (high - low).clamp_min(1e-8) - 1
    if input_norm == "channel_zscore_clip15":
        z = (x - x.mean(dim=-1, keepdim=True)) / (x.std(dim=-1, unbiased=False, keepdim=True) + 1e-8)
        return z.clamp(-15, 15)
    if input_norm != "none":
        raise ValueError(f"unknown input_norm '{input_norm}'")
    return x


class Classifier(nn.Module):
    """``[channel projection ->] backbone features -> aggregation -> head``.

    Parameters
    ----------
    backbone
        The feature model (its parameters live under ``backbone.``).
    n_classes
        Outputs of the head.
    head
        Head settings (kind, hidden size, dropout, aggregation).
    example
        A few model-ready windows; one no-grad pass sizes the head.
    projection
        A :class:`~eegfm.backbones.projection.ChannelProjection` applied first
        (``missing_channels: project``); inputs are then the stored channels
        and ``input_norm`` runs here, after it.
    input_norm
        The backbone's per-window norm, applied after ``projection`` only.
    """

    def __init__(
        self,
        backbone: nn.Module,
        n_classes: int,
        head: Head,
        example: torch.Tensor,
        projection: nn.Module | None = None,
        input_norm: str = "none",
    ):
        super().__init__()
        self.projection = projection
        self.input_norm = input_norm
        self.backbone = backbone
        self.aggregation = head.aggregation
        with torch.no_grad():
            dim = self.pool(self.features(example)).shape[1]
        self.head = make_head(int(dim), n_classes, head)

    def features(self, x: torch.Tensor) -> Any:
        """Unpooled backbone features of model-ready (or, with a projection, stored-channel) windows."""
        if self.projection is not None:
            x = normalize(self.projection(x), self.input_norm)
        # A LoRA weight parametrization (eegfm.finetune.adapters) recomputes W + BA at every read of the weight,
        # and nn.MultiheadAttention reads its weights 2 (train) to 4 (eval: fast-path checks) times a forward;
        # cached, each is computed once per pass, with the same values and gradients.
        with parametrize.cached():
            return self.backbone.features(x)

    def pool(self, features: Any) -> torch.Tensor:
        """Pool features to (batch, dim)."""
        return pool(features, self.aggregation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))
