"""The ``backbones`` and ``embedding`` sections: which models embed the windows, and how the forward pass runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from eegfm.backbones.registry import REGISTRY
from eegfm.config.base import NAME_PATTERN, StrictModel

#: ``weights: pretrain:<name>`` takes the weights the workflow's own pretraining recipe <name> writes.
PRETRAIN_PREFIX = "pretrain:"

class Backbone(StrictModel):
    """One backbone to embed with: a registry entry plus optional weights."""

    name: str = Field(
        "bandpower",
        description="Registry name (see `eegfm backbones`).",
        json_schema_extra={"enum": sorted(REGISTRY)},
    )
    id: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="Label of this entry in results (defaults to name); set it to compare two "
        "variants of one backbone.",
    )
    weights: str | None = Field(
        None,
        description="Local path to pretrained weights (a from_pretrained folder or a "
        ".safetensors/.pth file), or 'pretrain:<name>' for the weights the workflow's own pretraining "
        "recipe <name> writes; null uses a seeded random init.",
    )
    kwargs: dict[str, Any] = Field(
        default={}, description="Extra constructor arguments for the model, merged over the registry's."
    )
    missing_channels: Literal["error", "zero", "interpolate", "project"] = Field(
        "error",
        description="When the backbone expects channels the windows lack: 'error' (stop and name them), "
        "'zero' (zero-filled), 'interpolate' (MNE spherical spline from positions) or 'project' "
        "(a channel projection, identity/bipolar initialised, trainable when fine-tuning).",
    )
    channel_aliases: dict[str, str] = Field(
        default={},
        description="Extra channel renames applied before matching (e.g. {'EEG 001': 'Fp1'}); the common "
        "10-20 aliases (T3->T7, T4->T8, T5->P7, T6->P8) and case/punctuation are handled already.",
    )
    pooling: Literal["mean", "cls", "flatten", "grouped_mean"] | None = Field(
        None,
        description="How frozen features become one embedding per window, overriding the registry's: 'mean' "
        "over tokens, 'cls', 'flatten', or 'grouped_mean' (per-channel means concatenated, for "
        "(channels x patches) features such as CBraMod's; keeps spatial patterns). null: the registry's.",
    )
    length_policy: Literal["error", "crop", "pad"] = Field(
        "error",
        description="When the window length does not fit the backbone: 'error' (default), 'crop' to the "
        "longest length that fits, or 'pad' with zeros to the next one. Never done silently.",
    )

    @property
    def label(self) -> str:
        """Name of this backbone in paths and result rows."""
        return self.id or self.name

    @property
    def pretrain_ref(self) -> str | None:
        """The recipe name of ``weights: pretrain:<name>``, else ``None``."""
        if self.weights and self.weights.startswith(PRETRAIN_PREFIX):
            return self.weights.removeprefix(PRETRAIN_PREFIX)
        return None

    @field_validator("name")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value not in REGISTRY:
            raise ValueError(f"unknown backbone '{value}'; allowed: {', '.join(sorted(REGISTRY))}")
        return value


class Embedding(StrictModel):
    """How frozen embeddings are computed (none of this enters the cache key)."""

    batch_size: int = Field(
        32, ge=2, description="Windows per forward pass; the last batch is padded to this size for determinism."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Device for the forward pass; 'auto' takes CUDA when available."
    )
    threads: int = Field(2, ge=1, description="CPU threads of an embedding job (Snakemake threads).")
    gpus: int = Field(
        0,
        ge=0,
        description="GPUs an embedding job declares (Snakemake resource 'gpu'; sbatch --gpus on SLURM). "
        "Device 'cuda' declares at least 1.",
    )
