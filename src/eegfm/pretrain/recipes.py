"""The pretraining objectives: masked-patch reconstruction, InfoNCE between views, source-task labels.

Each objective is an ``nn.Module`` holding its own small task head, called
as ``objective(features_fn, x, y, generator) -> loss``; every random draw
(masks, augmentations) comes from ``generator`` so a resumed run draws the
same numbers as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from eegfm.backbones.features import pool
from eegfm.config import Augment, Pretrain

Features = Callable[[torch.Tensor], Any]
# Per-channel means, concatenated: a plain mean over channels would erase the
# spatial patterns (which hemisphere) that most EEG tasks are about.
POOLING = "grouped_mean"


class RecipeError(ValueError):
    """A recipe that cannot run with this backbone or data."""


def patch_tokens(features: Any, n_chans: int, n_patches: int) -> torch.Tensor:
    """Backbone features as (batch, channels, patches, dim), or a clear error.

    Accepts (B, C, N, D), or (B, L, D) token sequences with L = C·N (channel-
    major, as LaBraM's) optionally preceded by one CLS token.
    """
    x = features["features"] if isinstance(features, dict) else features
    if x.ndim == 4 and x.shape[1:3] == (n_chans, n_patches):
        return x
    if x.ndim == 3 and x.shape[1] in (n_chans * n_patches, n_chans * n_patches + 1):
        x = x[:, -n_chans * n_patches :]
        return x.reshape(x.shape[0], n_chans, n_patches, x.shape[-1])
    raise RecipeError(
        f"recipe 'masked' needs patch features (batch, {n_chans} channels, {n_patches} patches, dim) but the "
        f"backbone gives {tuple(x.shape)}; check pretrain.patch_s or use recipe 'contrastive' / 'supervised-source'"
    )


def augment(x: torch.Tensor, cfg: Augment, sfreq: float, generator: torch.Generator) -> torch.Tensor:
    """A random view: circular time shift, amplitude scaling, channel dropout and Gaussian noise."""
    b, c, t = x.shape
    max_shift = int(cfg.time_shift_s * sfreq)
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator) if max_shift else torch.zeros(b)
    idx = (torch.arange(t)[None, :] - shifts[:, None].long()) % t
    view = torch.gather(x, 2, idx[:, None, :].expand(b, c, t).to(x.device))
    scale = 1 + (2 * torch.rand(b, 1, 1, generator=generator) - 1) * cfg.amplitude
    keep = (torch.rand(b, c, 1, generator=generator) >= cfg.channel_dropout).float()
    noise = torch.randn(b, c, t, generator=generator) * cfg.noise
    std = x.std(dim=(1, 2), keepdim=True)
    return view * scale.to(x) * keep.to(x) + noise.to(x) * std


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric NT-Xent: each view's positive is the other view of the same window, negatives the rest."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), -math.inf)
    n = len(z1)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


class Objective(nn.Module):
    """One recipe's loss with its task head (projector, reconstruction or class head)."""

    def __init__(self, cfg: Pretrain, dim: int, token_dim: int | None, n_classes: int, patch: int, sfreq: float):
        super().__init__()
        self.cfg, self.patch, self.sfreq = cfg, patch, sfreq
        self.recon = nn.Linear(token_dim, patch) if cfg.recipe == "masked" and token_dim else None
        wants_nce = cfg.recipe == "contrastive" or cfg.contrastive_weight > 0
        self.projector = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 128)) if wants_nce else None
        self.classifier = nn.Linear(dim, n_classes) if cfg.recipe == "supervised-source" else None

    def forward(self, features: Features, x: torch.Tensor, y: torch.Tensor | None,
                generator: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        if cfg.recipe == "supervised-source":
            return F.cross_entropy(self.classifier(pool(features(x), POOLING)), y)
        loss = x.new_zeros(())
        if cfg.recipe == "masked":
            loss = loss + self.masked(features, x, generator)
        if self.projector is not None:
            weight = 1.0 if cfg.recipe == "contrastive" else cfg.contrastive_weight
            v1, v2 = (augment(x, cfg.augment, self.sfreq, generator) for _ in range(2))
            z1, z2 = (self.projector(pool(features(v), POOLING)) for v in (v1, v2))
            loss = loss + weight * info_nce(z1, z2, cfg.temperature)
        return loss

    def masked(self, features: Features, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """MSE of reconstructed masked patches (the unmasked ones are context only)."""
        b, c, t = x.shape
        n = t // self.patch
        patches = x[..., : n * self.patch].reshape(b, c, n, self.patch)
        mask = torch.rand(b, c, n, generator=generator) < self.cfg.mask_ratio
        mask = mask.to(x.device)
        masked = patches.masked_fill(mask[..., None], 0.0).reshape(b, c, n * self.patch)
        x_in = torch.cat([masked, x[..., n * self.patch :]], dim=-1)
        tokens = patch_tokens(features(x_in), c, n)
        recon = self.recon(tokens)
        if not mask.any():
            return recon.sum() * 0.0
        return F.mse_loss(recon[mask], patches[mask])
