"""The ``finetune`` section: per-fold training of a head, adapters or the whole backbone."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from eegfm.config.base import StrictModel
from eegfm.config.parallel import DataParallel

#: The training regimes a fold can run (what trains; :mod:`eegfm.finetune.regimes` sets them up).
Regime = Literal["head", "lora", "qlora", "full", "lp-ft", "scratch"]
REGIMES: tuple[str, ...] = Regime.__args__


class Head(StrictModel):
    """The trainable head put on the backbone's features."""

    kind: Literal["linear", "mlp"] = Field("linear", description="'linear' or 'mlp' (one hidden layer, GELU).")
    hidden: int = Field(128, ge=1, description="Hidden units of the 'mlp' head.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the head's (last) linear layer.")
    aggregation: Literal["mean", "first", "flatten", "grouped_mean"] = Field(
        "mean",
        description="How the backbone's token features become one vector: 'mean' over tokens, 'first' "
        "(the CLS/first token), 'flatten' (all tokens concatenated) or 'grouped_mean' (mean over "
        "tokens within each channel, channels concatenated; falls back to 'mean' without a channel axis).",
    )


class Lora(StrictModel):
    """LoRA adapters (peft) for the 'lora' and 'qlora' regimes."""

    r: int = Field(
        4, ge=1, description="Rank of the adapters (4 keeps LaBraM/CBraMod adapters + head under 5% of full)."
    )
    alpha: int = Field(8, ge=1, description="Scaling numerator (lora_alpha); the update is scaled by alpha/r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    targets: list[str] | None = Field(
        None,
        description="Module-name suffixes to adapt; null takes the registry's default for the backbone. "
        "A target whose weight the model reads directly (e.g. Labram's qkv) is adapted through a "
        "parametrization; a target no forward pass reaches is an error.",
    )
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="'qlora': 4-bit type of the frozen base weights.")


class Optimisation(StrictModel):
    """AdamW with warmup + cosine decay, early stopping on an inner validation split."""

    max_epochs: int = Field(10, ge=1, description="Epochs at most.")
    patience: int = Field(3, ge=1, description="Stop after this many epochs without a better validation loss.")
    batch_size: int = Field(32, ge=2, description="Windows per optimisation step.")
    lr_backbone: float = Field(1e-4, gt=0, description="Learning rate of backbone parameters (and adapters).")
    lr_head: float = Field(1e-3, gt=0, description="Learning rate of the head.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_epochs: float = Field(1.0, ge=0, description="Linear warmup length in epochs, then cosine decay to 0.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this value (null: no clipping).")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss.")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="'balanced' weights the loss by inverse class frequency of the training windows."
    )
    regression_loss: Literal["mse", "huber"] = Field(
        "mse",
        description="Loss of a regression target (target: regression), on targets standardised with the "
        "inner-training windows' mean and standard deviation: 'mse' or 'huber' (robust to outlying values).",
    )
    huber_delta: float = Field(
        1.0, gt=0, description="'huber': where the loss turns from quadratic to linear, in standard deviations."
    )
    val_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of the training groups (the design's held-out unit: subjects, sessions, runs or "
        "blocks) held out for early stopping; never test data.",
    )
    val_max_share: float = Field(
        0.35,
        gt=0,
        le=1,
        description="Largest share of the training windows that whole validation groups may take (e.g. 2 "
        "training runs: one is half the data). Above it, validation is the last val_fraction of each training "
        "group in time instead, after a gap of cv.gap_s; metrics.json records which was used.",
    )


class Finetune(DataParallel):
    """Per-fold training of a head, adapters or the whole backbone (one job per dataset x model x regime x fold)."""

    #: Keys that choose which jobs run and how (resources, processes), not what a job computes: they are left
    #: out of a job's params and its settings hash.
    RUN_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"backbones", "regimes", "threads", "gpus", "mem_mb", "runtime", "processes", "nodes", "workers"}
    )

    backbones: list[str] = Field(
        default=[],
        description="Labels (id or name) of the backbones to train; empty trains none. Feature-only "
        "baselines (bandpower, riemann) cannot be trained.",
    )
    regimes: list[Regime] = Field(
        default=["scratch", "full"],
        description="'head' (frozen backbone), 'lora', 'qlora' (4-bit base + LoRA), 'full', 'lp-ft' "
        "(head first, then everything) and 'scratch' (random init, everything trains).",
    )
    head: Head = Field(default=Head(), description="The trainable head.")
    lora: Lora = Field(default=Lora(), description="LoRA / QLoRA adapters.")
    optim: Optimisation = Field(default=Optimisation(), description="Optimiser, schedule and early stopping.")
    lp_epochs: int = Field(2, ge=1, description="'lp-ft': epochs training the head only before unfreezing everything.")
    unfreeze_schedule: dict[int, float] | None = Field(
        None,
        description="Gradual unfreezing for 'full': {epoch: share of backbone blocks trainable, counted from "
        "the top}, e.g. {0: 0.0, 2: 0.5, 4: 1.0}; null trains everything from the first epoch.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="'bf16' autocast where the device supports it; 'auto' takes bf16 on CUDA, fp32 on CPU."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="'auto' takes cuda, then mps, then cpu."
    )
    threads: int = Field(2, ge=1, description="CPU threads of each training process (Snakemake threads: "
                         "threads x processes per node).")
    gpus: int = Field(0, ge=0, description="GPUs a training job declares (Snakemake resource 'gpu'); with more "
                      "than one, the job trains data-parallel on all of them (one process per GPU).")
    mem_mb: int = Field(3000, ge=500, description="Memory of each training process (the job declares "
                        "mem_mb x processes per node as Snakemake resource mem_mb).")
    runtime: int = Field(120, ge=1, description="Minutes a training job declares (Snakemake resource runtime).")
    export: Literal["none", "onnx"] = Field(
        "none",
        description="'onnx' also writes model.onnx in each fold folder: the trained network with adapters merged, "
        "checked against torch with onnxruntime on the fold's test windows (docs/onnx.md lists the backbones "
        "that export).",
    )

    @field_validator("unfreeze_schedule")
    @classmethod
    def _schedule_shares(cls, value: dict[int, float] | None) -> dict[int, float] | None:
        if value is not None:
            if not value or 0 not in value:
                raise ValueError("needs an entry for epoch 0 (e.g. {0: 0.0, 2: 1.0})")
            bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0 or k < 0}
            if bad:
                raise ValueError(f"epochs must be >= 0 and shares in [0, 1]; got {bad}")
        return value
