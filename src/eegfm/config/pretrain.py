"""The ``pretrain`` section: recipes that train a backbone architecture on pretraining datasets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from eegfm.backbones.registry import REGISTRY
from eegfm.config.base import StrictModel
from eegfm.config.parallel import DataParallel


class Augment(StrictModel):
    """Random views of a window for the contrastive loss."""

    time_shift_s: float = Field(0.2, ge=0, description="Largest circular time shift, in seconds.")
    amplitude: float = Field(0.2, ge=0, lt=1, description="Amplitude scaled by a factor in [1-a, 1+a].")
    channel_dropout: float = Field(0.1, ge=0, lt=1, description="Share of channels zeroed.")
    noise: float = Field(0.05, ge=0, description="Gaussian noise, as a share of each window's standard deviation.")


class Pretrain(DataParallel):
    """One pretraining recipe: a backbone architecture trained on pretraining datasets, written as weights."""

    backbone: str = Field(
        "cbramod",
        description="Registry name of the architecture; backbones that use these weights must have the same "
        "name and kwargs.",
        json_schema_extra={"enum": sorted(REGISTRY)},
    )
    kwargs: dict[str, Any] = Field(default={}, description="Constructor arguments, as backbones[].kwargs.")
    recipe: Literal["masked", "contrastive", "supervised-source"] = Field(
        "masked",
        description="'masked': reconstruct masked patches from the backbone's patch features (plus "
        "contrastive_weight x InfoNCE); 'contrastive': InfoNCE between two augmented views; "
        "'supervised-source': classify the source task's labels, then drop the head.",
    )
    datasets: list[str] = Field(
        default=[],
        description="Datasets (role: pretrain) whose windows are the pretraining data; every subject of them is used.",
    )
    mask_ratio: float = Field(0.5, gt=0, lt=1, description="'masked': share of (channel, patch) cells masked.")
    patch_s: float = Field(1.0, gt=0, description="'masked': patch length in seconds (the backbone's patch size).")
    contrastive_weight: float = Field(
        0.0, ge=0, description="'masked': weight of an added InfoNCE term (0: reconstruction only)."
    )
    temperature: float = Field(0.1, gt=0, description="InfoNCE temperature.")
    augment: Augment = Field(default=Augment(), description="Views for the contrastive loss.")
    epochs: int = Field(5, ge=1, description="Passes over the pretraining windows.")
    batch_size: int = Field(32, ge=2, description="Windows per step.")
    lr: float = Field(5e-4, gt=0, description="AdamW learning rate (warmup for the first epoch, then cosine).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    checkpoint_every: int = Field(
        20, ge=1, description="Steps between resumable checkpoints (a killed job restarts from the last one)."
    )
    threads: int = Field(2, ge=1, description="CPU threads of each pretraining process.")
    gpus: int = Field(0, ge=0, description="GPUs a pretraining job declares (Snakemake resource 'gpu').")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="As finetune.device.")
