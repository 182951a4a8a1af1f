"""The backbone registry: one :class:`BackboneSpec` per backbone, defined once.

Importing this module is cheap (no torch, no braindecode): the config
validator and the CLI read it at parse time. Building a model happens in
:mod:`eegfm.backbones.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Pooling = Literal["cls", "mean", "flatten", "as_is", "none"]
InputNorm = Literal["none", "channel_q95"]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything eegfm needs to know about one backbone.

    Attributes
    ----------
    name
        Registry name used in configs and result rows.
    kind
        ``"braindecode"`` (a ``braindecode.models`` class) or ``"bandpower"``
        (non-neural log band power).
    model_class
        braindecode class name, e.g. ``"CBraMod"`` (``None`` for non-neural).
    sfreq
        Native sampling rate in Hz; windows are resampled to it. ``None``
        accepts any rate.
    n_times_multiple
        The window length in samples (at ``sfreq``) must be a multiple of this.
    n_times_fixed
        The model needs exactly this many samples (``None``: any allowed length).
    n_times_min
        The model needs at least this many samples (at ``sfreq``).
    channels
        Human-readable channel requirement, e.g. ``"any (10-20 names)"``.
    scale
        Factor from volts (the windows store's unit) to the model's input unit.
    input_norm
        Per-window normalisation applied after ``scale``, as in the model's
        pretraining code: ``"none"``, or ``"channel_q95"`` (divide each channel
        by its 95th percentile of absolute amplitude + 1e-8, as BIOT does).
    pooling
        How ``return_features`` output becomes one vector per window.
    init_kwargs
        Constructor arguments beyond the signal parameters.
    lora_targets
        Default peft ``target_modules`` for LoRA.
    pretraining_corpus
        Datasets the published weights were trained on (overlap warning).
    pretrained_source
        Where official weights live (e.g. a Hugging Face repo), for prefetch.
    offline
        ``None`` when the model builds offline, else the reason it cannot.
    """

    name: str
    kind: Literal["braindecode", "bandpower"]
    model_class: str | None = None
    sfreq: float | None = None
    n_times_multiple: int = 1
    n_times_fixed: int | None = None
    n_times_min: int = 1
    channels: str = "any"
    scale: float = 1.0
    input_norm: InputNorm = "none"
    pooling: Pooling = "mean"
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    lora_targets: tuple[str, ...] = ()
    pretraining_corpus: tuple[str, ...] = ()
    pretrained_source: str | None = None
    offline: str | None = None


_SPECS: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        name="bandpower",
        kind="bandpower",
        channels="any",
        scale=1e6,
        pooling="none",
        # Welch segments of welch_seconds (half overlap), capped at the window length.
        init_kwargs={"bands": ((1, 4), (4, 8), (8, 13), (13, 30), (30, 45)), "welch_seconds": 2.0},
    ),
    BackboneSpec(
        name="cbramod",
        kind="braindecode",
        model_class="CBraMod",
        sfreq=200.0,
        n_times_multiple=200,
        channels="any",
        scale=1e6 / 100,  # CBraMod was pretrained on µV / 100
        pooling="mean",
        lora_targets=("self_attn", "linear1", "linear2"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/cbramod-pretrained",
    ),
    BackboneSpec(
        name="biot",
        kind="braindecode",
        model_class="BIOT",
        sfreq=200.0,
        n_times_min=200,  # below 1 s BIOT silently changes its STFT size (n_fft)
        channels="any (pretrained on 16/18 TCP bipolar derivations)",
        scale=1e6,  # µV before the per-channel q95 normalisation of BIOT's loaders
        input_norm="channel_q95",
        pooling="as_is",
        lora_targets=("to_q", "to_k", "to_v", "to_out"),
        pretraining_corpus=("SHHS", "PREST"),
        pretrained_source="braindecode/biot-pretrained-shhs-prest-18chs",
    ),
)

REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> BackboneSpec:
    """The spec registered as ``name``; the error lists the registered names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backbone '{name}'; registered: {', '.join(sorted(REGISTRY))}") from None
