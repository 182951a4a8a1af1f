"""Typed configuration: the single source of truth for every config key.

Every field carries a description and a default. The JSON Schema in
``workflow/schemas/config.schema.yaml`` is generated from these models
(``eegfm schema``) and a test keeps the two in sync, so the workflow validates
the same contract twice: JSON Schema at parse time and these pydantic models
(``extra="forbid"``), whose errors name the offending key and the allowed
values.

Each rule receives only the sub-model it uses (e.g. :class:`Windowing`), so a
change to an unrelated key does not re-run it.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eegfm.backbones.registry import REGISTRY

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
PRETRAIN_PREFIX = "pretrain:"
#: MNE channel types a channel may be given (``preprocessing.channel_types``) or kept as (``keep_types``).
ChannelType = Literal[
    "eeg", "eog", "emg", "ecg", "resp", "stim", "misc", "bio", "gsr", "temperature", "seeg", "ecog", "dbs"
]


class ConfigError(ValueError):
    """A config that does not validate; the message names keys and allowed values."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- sources


class SyntheticSource(_Model):
    """The built-in deterministic dataset (written as BIDS/EDF, read back like user data)."""

    task: Literal["target", "source"] = Field(
        "target",
        description="Which task of the generated BIDS root to read: 'target' (the decoding task) "
        "or 'source' (different subjects, shifted class structure, for pretraining).",
    )
    n_subjects: int = Field(10, ge=2, le=100, description="Subjects in the target task.")
    n_source_subjects: int = Field(12, ge=2, le=100, description="Subjects in the source task.")
    trials_per_class: int = Field(20, ge=2, le=500, description="Trials of each class per subject.")
    sfreq: float = Field(250.0, gt=0, description="Sampling rate (Hz) of the generated recordings.")
    seed: int = Field(0, ge=0, description="Seed of the generator; same seed, same files.")


class BidsSource(_Model):
    """A BIDS root read with mne-bids."""

    root: str = Field("", description="Path to the BIDS root (the folder holding dataset_description.json).")
    task: str | None = Field(None, description="BIDS task label to read; null reads every task.")
    datatype: str = Field("eeg", description="BIDS datatype folder.")
    subjects: list[str] | None = Field(None, description="Subject labels to read (without 'sub-'); null reads all.")
    sessions: list[str] | None = Field(None, description="Session labels to read; null reads all.")
    runs: list[str] | None = Field(None, description="Run labels to read; null reads all.")
    extension: str | None = Field(
        None, description="File extension to read (e.g. '.edf'); null takes the first EEG format found per recording."
    )
    label_column: str | None = Field(
        None,
        description="Column of the root's participants.tsv whose value labels every window of that participant's "
        "recordings (a recording-level label, e.g. 'group'); null takes labels from the events.",
    )


class FilesSource(_Model):
    """Plain recordings (EDF, BDF, FIF, EEGLAB .set, BrainVision .vhdr) from globs or a table."""

    paths: list[str] = Field(
        default=[],
        description="Glob patterns of recordings, relative to the working directory; ignored when 'metadata' is set.",
    )
    metadata: str | None = Field(
        None,
        description="TSV with columns path, subject and optional session, run (and the label column named by "
        "'label_column'); relative paths are resolved against the TSV's folder. Takes precedence over 'paths'.",
    )
    label_column: str | None = Field(
        None,
        description="Column of the 'metadata' table whose value labels every window of that recording (a "
        "recording-level label, e.g. patient vs control); null takes labels from the events. A table with a "
        "'label' column needs this key set (it is never ignored silently).",
    )
    pattern: str | None = Field(
        None,
        description="Regex with named groups (subject, optional session, run) matched against each "
        "path from 'paths'; without it each file is its own subject (its file stem).",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                groups = re.compile(value).groupindex
            except re.error as err:
                raise ValueError(f"not a valid regex: {err}") from err
            if "subject" not in groups:
                raise ValueError("needs a named group (?P<subject>...)")
        return value

    @model_validator(mode="after")
    def _label_column_needs_table(self) -> FilesSource:
        if self.label_column is not None and not self.metadata:
            raise ValueError("label_column needs files.metadata (the table that holds the column)")
        return self


# ----------------------------------------------------------------------------- preprocessing, windows, splits


class Preprocessing(_Model):
    """MNE preprocessing applied to each recording before windowing."""

    channels: list[str] | None = Field(
        None,
        description="EEG channels to keep, in this order; a recording missing one is an error. "
        "null keeps every EEG channel (all recordings must then share the same set).",
    )
    reference: Literal["average"] | list[str] | None = Field(
        None, description="Re-reference: null keeps the recorded reference, 'average', or a list of channel names."
    )
    l_freq: float | None = Field(0.5, ge=0, description="High-pass edge in Hz (null: none).")
    h_freq: float | None = Field(45.0, gt=0, description="Low-pass edge in Hz (null: none).")
    sfreq: float | None = Field(
        200.0, gt=0, description="Resample every recording to this rate (Hz); null keeps the recorded rate."
    )
    keep_types: list[ChannelType] = Field(
        default=["eeg"],
        min_length=1,
        description="Channel types that enter the windows (and the backbones). Other channels (EOG, EMG, ECG, "
        "accelerometers, triggers...) are dropped, logged and listed in windows.json (channels_dropped).",
    )
    channel_types: dict[str, ChannelType] = Field(
        default={},
        description="Channel types by channel name (case-insensitive), over the file's own types and the types "
        "inferred from names (e.g. an 'EOG1' typed EEG is taken as 'eog'): e.g. {X1: eeg, 'Ergo-Left': misc}.",
    )
    amplitude_range_uv: tuple[float, float] = Field(
        (0.1, 10000.0),
        description="Plausible median peak-to-peak amplitude of a recording's windows, in microvolts, after "
        "band-pass and before re-referencing; outside it the signal check fires (units, reference, dead amplifier).",
    )
    signal_check: Literal["error", "warn"] = Field(
        "error",
        description="What an implausible amplitude, a flat channel or a flat recording does: 'error' stops the "
        "windows job naming the file, channel and likely cause; 'warn' logs it and goes on. Either way "
        "windows.json records what was found (sanity).",
    )

    @model_validator(mode="after")
    def _band_is_ordered(self) -> Preprocessing:
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq})")
        if self.sfreq is not None and self.h_freq is not None and self.h_freq >= self.sfreq / 2:
            raise ValueError(f"h_freq ({self.h_freq}) must be below the Nyquist rate sfreq/2 ({self.sfreq / 2})")
        low, high = self.amplitude_range_uv
        if not 0 < low < high:
            raise ValueError(f"amplitude_range_uv must be [low, high] with 0 < low < high; got {[low, high]}")
        return self


class Windowing(_Model):
    """How windows and their labels are cut from each recording."""

    mode: Literal["events", "fixed"] = Field(
        "events",
        description="'events': one window per event (annotation, trigger or epoch) at onset + tmin; "
        "'fixed': consecutive windows labelled by the annotation that covers them (or, with a recording-level "
        "label, over the whole recording).",
    )
    event_id: dict[str, str] | None = Field(
        None,
        description="Map from event name (annotation description, trigger code as a string such as '1', or an "
        "epoched file's event name) to class label; events not listed are ignored, and a listed name that "
        "occurs in no recording is an error. null uses every event name as its own label.",
    )
    tmin: float = Field(
        0.0, description="'events' mode: window start relative to the event onset (or an epoch's event), in seconds."
    )
    length_s: float = Field(4.0, gt=0, description="Window length in seconds.")
    stride_s: float | None = Field(
        None, gt=0, description="'fixed' mode: step between window starts in seconds; null equals length_s."
    )
    stim_channel: str | None = Field(
        None,
        description="Trigger channel to read events from (mne.find_events), e.g. 'Status' (BioSemi BDF) or "
        "'STI 014'; its codes are the event names (map them with event_id: {'1': left}). null reads annotations.",
    )
    marker_span: Literal["next"] | float | None = Field(
        None,
        description="'fixed' mode: how far a zero-duration marker (annotation or trigger) labels the signal: "
        "'next' (up to the next listed marker, the last one to the end of the recording) or a length in seconds. "
        "null: markers without a duration are an error in 'fixed' mode.",
    )

    @field_validator("marker_span")
    @classmethod
    def _positive_span(cls, value: str | float | None) -> str | float | None:
        if isinstance(value, float | int) and value <= 0:
            raise ValueError(f"must be 'next' or a positive number of seconds; got {value}")
        return value

    @model_validator(mode="after")
    def _span_needs_fixed_mode(self) -> Windowing:
        if self.marker_span is not None and self.mode != "fixed":
            raise ValueError("marker_span applies to mode: fixed (in 'events' mode every marker is one window)")
        return self


class CrossValidation(_Model):
    """The study design: which unit is held out in each fold (see eegfm.splits for each scheme)."""

    scheme: Literal["group_kfold", "loso", "cross_session", "leave_one_run_out", "within_subject"] = Field(
        "group_kfold",
        description="'group_kfold': stratified group k-fold (cross-subject with group_by: subject); 'loso': "
        "leave one group (subject) out; 'cross_session': fold k tests the k-th session of every subject, "
        "trained on their other sessions; 'leave_one_run_out': fold k tests the k-th run of every subject; "
        "'within_subject': k-fold inside each subject in time-ordered blocks, fold k tests block k of every "
        "subject. One pooled model is trained per fold.",
    )
    n_splits: int = Field(
        5, ge=2, description="Folds for 'group_kfold' and 'within_subject' (blocks per subject); ignored otherwise."
    )
    group_by: Literal["subject", "session", "run"] = Field(
        "subject",
        description="'group_kfold' and 'loso': unit that never straddles train and test: 'subject', 'session' "
        "(subject+session) or 'run' (subject+session+run). The other schemes fix their own unit.",
    )
    gap_s: float | None = Field(
        None,
        ge=0,
        description="Training windows closer than this (seconds, edge to edge) to a test window of the same "
        "recording are dropped from that fold's training set (they are tested in their own fold); overlapping "
        "windows are always dropped. Matters where a recording straddles train and test ('within_subject') "
        "and for the time-blocked validation fallback. null: one window length.",
    )

    @property
    def unit(self) -> str:
        """The held-out unit: 'subject', 'session', 'run' or 'block' (a time block of one subject)."""
        return "block" if self.scheme == "within_subject" else self.group_by

    @model_validator(mode="before")
    @classmethod
    def _group_by_from_the_scheme(cls, data: Any) -> Any:
        """The designs beyond group_kfold/loso fix their unit: group_by is set from the scheme (a dumped
        config reads back the same), and a contradicting group_by is an error."""
        implied = {"cross_session": "session", "leave_one_run_out": "run", "within_subject": "subject"}
        if isinstance(data, dict) and data.get("scheme") in implied:
            scheme, given = data["scheme"], data.get("group_by")
            if given is not None and given != implied[scheme]:
                raise ValueError(
                    f"group_by: '{given}' does not fit scheme '{scheme}', which holds out "
                    f"{'blocks' if scheme == 'within_subject' else implied[scheme] + 's'}; leave group_by out "
                    "(or use scheme group_kfold/loso with group_by)"
                )
            data = {**data, "group_by": implied[scheme]}
        return data


class Dataset(_Model):
    """One dataset: where recordings come from, and how they become labelled windows."""

    source: Literal["synthetic", "bids", "files"] = Field(
        "synthetic", description="Kind of input: the built-in 'synthetic' dataset, a 'bids' root or plain 'files'."
    )
    synthetic: SyntheticSource = Field(default=SyntheticSource(), description="Settings for source: synthetic.")
    bids: BidsSource = Field(default=BidsSource(), description="Settings for source: bids.")
    files: FilesSource = Field(default=FilesSource(), description="Settings for source: files.")
    preprocessing: Preprocessing = Field(default=Preprocessing(), description="MNE preprocessing.")
    windows: Windowing = Field(default=Windowing(), description="Windowing and labels.")
    cv: CrossValidation = Field(default=CrossValidation(), description="Cross-validation scheme.")
    corpus: list[str] = Field(
        default=[],
        description="Public datasets these recordings come from (e.g. ['TUEG']); a backbone pretrained on one "
        "of them gets an overlap warning in its log and the report.",
    )
    role: Literal["evaluate", "pretrain"] = Field(
        "evaluate",
        description="'evaluate': probed, fine-tuned and reported; 'pretrain': only windowed, as data for the "
        "recipes under 'pretrain' (never scored).",
    )
    target: Literal["classification", "regression"] = Field(
        "classification",
        description="What the labels are: 'classification' (classes) or 'regression' (a continuous value such as "
        "age or a clinical score, from files.label_column / bids.label_column or from event names mapped by "
        "windows.event_id; every label must parse as a finite number). Regression datasets are probed with "
        "probe.regressor, fine-tuned with a one-output head and an MSE loss, and scored by r, R² and MAE.",
    )

    @model_validator(mode="after")
    def _source_is_configured(self) -> Dataset:
        if self.source == "bids" and not self.bids.root:
            raise ValueError("source 'bids' needs bids.root (path to the BIDS root)")
        if self.source == "files" and not (self.files.paths or self.files.metadata):
            raise ValueError("source 'files' needs files.paths (globs) or files.metadata (a TSV)")
        return self

    @model_validator(mode="after")
    def _regression_values_are_numbers(self) -> Dataset:
        if self.target == "regression" and self.windows.event_id:
            bad = {k: v for k, v in self.windows.event_id.items() if not _is_finite_number(v)}
            if bad:
                raise ValueError(
                    f"target: regression needs windows.event_id to map event names to numbers; {bad} are not finite "
                    "numbers (e.g. {T1: '0.5', T2: '2.0'}), or set target: classification"
                )
        return self


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# ----------------------------------------------------------------------------- models


class Backbone(_Model):
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


class Embedding(_Model):
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


class Probe(_Model):
    """The scikit-learn classifier (or regressor, for regression targets) fit on frozen embeddings of the
    training fold."""

    estimator: str = Field(
        "logistic_regression",
        description="Classifier after StandardScaler: a short name (logistic_regression, lda, "
        "linear_svm, ridge, random_forest, knn) or a dotted sklearn path such as "
        "'sklearn.svm.SVC'.",
    )
    params: dict[str, Any] = Field(
        default={},
        description="Constructor parameters of the estimator (unknown names are an error); "
        "unset ones keep scikit-learn's defaults, except max_iter, raised for the iterative linear models.",
    )
    regressor: str = Field(
        "ridge",
        description="Regressor of datasets with target: regression, after StandardScaler: a short name (ridge, "
        "lasso, elastic_net, linear_svr, random_forest, knn) or a dotted sklearn path such as "
        "'sklearn.svm.SVR'. A classifier here (or a regressor as 'estimator') is an error.",
    )
    regressor_params: dict[str, Any] = Field(
        default={},
        description="Constructor parameters of the regressor (unknown names are an error); unset ones keep "
        "scikit-learn's defaults, except max_iter, raised for lasso, elastic_net and linear_svr.",
    )
    scale: bool = Field(
        True,
        description="Put a StandardScaler (fit on the training fold) before the estimator; for a regression "
        "target, also standardise the target on the training fold (predictions are mapped back to its units).",
    )


# ----------------------------------------------------------------------------- fine-tuning

REGIMES = ("head", "lora", "qlora", "full", "lp-ft", "scratch")


class Head(_Model):
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


class Lora(_Model):
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


class Optimisation(_Model):
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


class _DataParallel(_Model):
    """How one training job spreads over processes and nodes (DDP; docs/distributed.md). Not science: not in params."""

    processes: int | None = Field(
        None,
        ge=1,
        description="Data-parallel (DDP) processes of one job, all nodes together; each trains on its share "
        "of every global batch (the batch size setting stays the global batch). null: one per GPU ('gpus'), or 1. "
        "Started with torchrun on a workstation, with srun inside a SLURM job.",
    )
    nodes: int = Field(
        1, ge=1, description="Nodes one job spans (SLURM only; processes are spread evenly over them)."
    )
    workers: int = Field(
        0, ge=0, description="DataLoader worker processes per training process that read and adapt the next "
        "batches from the windows store (0: read in the training process)."
    )

    @model_validator(mode="after")
    def _one_process_per_gpu(self):
        if self.processes is not None and self.gpus > 0 and self.processes != self.gpus:
            raise ValueError(
                f"processes ({self.processes}) must equal gpus ({self.gpus}): one process per GPU; "
                "leave processes null to take one per GPU"
            )
        if self.world_size % self.nodes:
            raise ValueError(f"processes ({self.world_size}) must be a multiple of nodes ({self.nodes})")
        return self

    @property
    def world_size(self) -> int:
        """Processes of one job: ``processes``, else one per GPU, else 1."""
        return self.processes if self.processes is not None else max(1, self.gpus)


class Finetune(_DataParallel):
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
    regimes: list[Literal["head", "lora", "qlora", "full", "lp-ft", "scratch"]] = Field(
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



# ----------------------------------------------------------------------------- pretraining


class Augment(_Model):
    """Random views of a window for the contrastive loss."""

    time_shift_s: float = Field(0.2, ge=0, description="Largest circular time shift, in seconds.")
    amplitude: float = Field(0.2, ge=0, lt=1, description="Amplitude scaled by a factor in [1-a, 1+a].")
    channel_dropout: float = Field(0.1, ge=0, lt=1, description="Share of channels zeroed.")
    noise: float = Field(0.05, ge=0, description="Gaussian noise, as a share of each window's standard deviation.")


class Pretrain(_DataParallel):
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


ClassificationMetric = Literal[
    "balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "f1_weighted", "roc_auc", "auprc"
]
RegressionMetric = Literal["pearson_r", "r2", "mae"]
#: the primary metric of each kind of target when the config names none for it
DEFAULT_PRIMARY = {"classification": "balanced_accuracy", "regression": "pearson_r"}
REGRESSION_METRIC_NAMES = RegressionMetric.__args__


class PrimaryMetrics(_Model):
    """The primary metric of each kind of target (a config with classification and regression datasets)."""

    classification: ClassificationMetric = Field(
        "balanced_accuracy", description="Primary metric of the datasets with target: classification."
    )
    regression: RegressionMetric = Field(
        "pearson_r", description="Primary metric of the datasets with target: regression."
    )


class Report(_Model):
    """The aggregated report and its statistics (seeded by the top-level seed)."""

    title: str = Field("eegfm benchmark", description="Title of report.html.")
    primary_metric: ClassificationMetric | RegressionMetric | PrimaryMetrics = Field(
        "balanced_accuracy",
        description="Metric of the figures, the chance tests, the model comparisons and the best-model "
        "headline; first in the summary. A classification metric (balanced_accuracy, accuracy, cohen_kappa, "
        "f1_macro, f1_weighted, roc_auc, auprc) applies to classification datasets, a regression metric "
        "(pearson_r, r2, mae) to regression datasets; the other kind keeps its default (balanced_accuracy, "
        "pearson_r). With both kinds of dataset, name both: {classification: ..., regression: ...}.",
    )
    n_permutations: int = Field(
        1000,
        ge=0,
        description="Label permutations (within the design's held-out unit: subject, session, run or block; no "
        "refitting) of the empirical chance level and permutation p-value; 0 skips the test. The smallest "
        "attainable p is 1/(n_permutations+1).",
    )
    n_bootstrap: int = Field(
        1000,
        ge=0,
        description="Bootstrap resamples of the confidence intervals (of held-out units, or of time blocks "
        "within them when there are fewer than ci_min_units).",
    )
    ci_min_units: int = Field(
        8,
        ge=2,
        description="Fewest held-out units (subjects, sessions, runs or blocks) whose resampling gives the "
        "confidence interval; with fewer, contiguous blocks of windows are resampled within each unit, and "
        "the interval is then conditional on these units (the report says so).",
    )
    ci_level: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap confidence intervals.")
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Significance level of the model comparisons (Holm-corrected Wilcoxon, Friedman, Nemenyi "
        "critical difference); fewer folds than can reach it mark the comparisons exploratory.",
    )

    @property
    def primary_metrics(self) -> dict[str, str]:
        """The primary metric of each kind of target: ``{"classification": ..., "regression": ...}``."""
        if isinstance(self.primary_metric, PrimaryMetrics):
            return self.primary_metric.model_dump()
        kind = "regression" if self.primary_metric in REGRESSION_METRIC_NAMES else "classification"
        return {**DEFAULT_PRIMARY, kind: self.primary_metric}


class Config(_Model):
    """Top-level configuration of an eegfm run."""

    results: str = Field("results", description="Folder for every output of the workflow.")
    cache: str = Field(
        "results/cache",
        description="Folder of the content-addressed embedding stores; share it between runs and "
        "datasets to reuse embeddings.",
    )
    seed: int = Field(0, ge=0, description="Seed for splits, model initialisation and estimators.")
    datasets: dict[str, Dataset] = Field(
        default={"synthetic": Dataset()},
        description="Datasets by name (letters, digits, '_', '-', '.').",
    )
    backbones: list[Backbone] = Field(
        default=[Backbone(name="bandpower"), Backbone(name="cbramod")],
        description="Backbones to embed every dataset with.",
    )
    embedding: Embedding = Field(default=Embedding(), description="Embedding computation.")
    probe: Probe = Field(default=Probe(), description="Probe on frozen embeddings.")
    finetune: Finetune = Field(default=Finetune(), description="Per-fold training regimes.")
    pretrain: dict[str, Pretrain] = Field(
        default={},
        description="Pretraining recipes by name; a backbone uses one with weights: 'pretrain:<name>'.",
    )
    report: Report = Field(default=Report(), description="Report settings.")

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: dict[str, Dataset]) -> dict[str, Dataset]:
        if not value:
            raise ValueError("at least one dataset is needed")
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"dataset name '{name}' must match {NAME_PATTERN}")
        return value

    @field_validator("backbones")
    @classmethod
    def _unique_backbones(cls, value: list[Backbone]) -> list[Backbone]:
        return _unique_labels(value)

    @model_validator(mode="after")
    def _finetune_backbones_exist(self) -> Config:
        _check_finetune_backbones(self.backbones, self.finetune)
        return self

    @model_validator(mode="after")
    def _pretraining_is_wired(self) -> Config:
        for name, recipe in self.pretrain.items():
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"pretrain name '{name}' must match {NAME_PATTERN}")
            if not recipe.datasets:
                raise ValueError(f"pretrain.{name}.datasets: name at least one dataset (role: pretrain)")
            for ds in recipe.datasets:
                if ds not in self.datasets:
                    raise ValueError(f"pretrain.{name}.datasets: unknown dataset '{ds}'; allowed: {', '.join(self.datasets)}")
                if self.datasets[ds].role != "pretrain":
                    raise ValueError(f"pretrain.{name}.datasets: '{ds}' must have role: pretrain (it is evaluated)")
            if REGISTRY[recipe.backbone].kind != "braindecode":
                raise ValueError(f"pretrain.{name}.backbone: '{recipe.backbone}' is a feature baseline, nothing to train")
        for b in self.backbones:
            ref = b.pretrain_ref
            if ref is None:
                continue
            if ref not in self.pretrain:
                raise ValueError(
                    f"backbones ({b.label}).weights: no recipe '{ref}' under pretrain; allowed: "
                    f"{', '.join(self.pretrain) or '(none defined)'}"
                )
            recipe = self.pretrain[ref]
            if (recipe.backbone, recipe.kwargs) != (b.name, b.kwargs):
                raise ValueError(
                    f"backbones ({b.label}): name/kwargs {b.name} {b.kwargs} differ from pretrain.{ref} "
                    f"({recipe.backbone} {recipe.kwargs}); the weights would not fit"
                )
        if not any(d.role == "evaluate" for d in self.datasets.values()):
            raise ValueError("datasets: at least one dataset needs role: evaluate")
        return self

    @model_validator(mode="after")
    def _primary_metric_fits_a_dataset(self) -> Config:
        metric = self.report.primary_metric
        if isinstance(metric, str) and "primary_metric" in self.report.model_fields_set:  # the default fits any
            kind = "regression" if metric in REGRESSION_METRIC_NAMES else "classification"
            kinds = {d.target for d in self.datasets.values() if d.role == "evaluate"}
            if kind not in kinds:
                raise ValueError(
                    f"report.primary_metric: '{metric}' is a {kind} metric, but no evaluated dataset has target: "
                    f"{kind}; use a {' or '.join(sorted(kinds))} metric (regression: pearson_r, r2, mae; "
                    "classification: balanced_accuracy, accuracy, cohen_kappa, f1_macro, f1_weighted, roc_auc, auprc)"
                )
        return self

    def backbone(self, label: str) -> Backbone:
        """The backbone entry whose label is ``label``."""
        return next(b for b in self.backbones if b.label == label)


class ExperimentConfig(_Model):
    """The sections an in-memory experiment (:class:`eegfm.api.Experiment`) takes: the workflow's own models
    and defaults, with the study design (a dataset's ``cv``) at the top level and no datasets."""

    cv: CrossValidation = Field(default=CrossValidation(), description="The study design (as datasets.<name>.cv).")
    backbones: list[Backbone] = Field(default=[Backbone(name="bandpower")], description="As backbones.")
    embedding: Embedding = Field(default=Embedding(), description="As embedding.")
    probe: Probe = Field(default=Probe(), description="As probe.")
    finetune: Finetune = Field(default=Finetune(regimes=[]), description="As finetune (no regime by default).")
    report: Report = Field(default=Report(), description="As report.")
    seed: int = Field(0, ge=0, description="As seed.")
    cache: str | None = Field(None, description="Folder of the embedding stores; null: <out_dir>/cache.")

    @field_validator("backbones")
    @classmethod
    def _unique_backbones(cls, value: list[Backbone]) -> list[Backbone]:
        return _unique_labels(value)

    @model_validator(mode="after")
    def _finetune_backbones_exist(self) -> ExperimentConfig:
        _check_finetune_backbones(self.backbones, self.finetune)
        return self


def _unique_labels(backbones: list[Backbone]) -> list[Backbone]:
    if not backbones:
        raise ValueError("at least one backbone is needed")
    labels = [b.label for b in backbones]
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(f"backbone labels must be unique; repeated: {duplicated} (set 'id' to tell them apart)")
    return backbones


def _check_finetune_backbones(backbones: list[Backbone], finetune: Finetune) -> None:
    """Fine-tuned labels must name configured backbones that have something to train."""
    by_label = {b.label: b for b in backbones}
    unknown = [name for name in finetune.backbones if name not in by_label]
    if unknown:
        raise ValueError(
            f"finetune.backbones: {unknown} not among the configured backbones; allowed: {', '.join(by_label)}"
        )
    frozen_only = [name for name in finetune.backbones if REGISTRY[by_label[name].name].kind != "braindecode"]
    if frozen_only:
        raise ValueError(f"finetune.backbones: {frozen_only} are feature baselines with nothing to train")


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at ``loc`` (for 'unknown key' messages)."""
    def is_model(tp: Any) -> bool:
        return isinstance(tp, type) and not hasattr(tp, "__origin__") and issubclass(tp, BaseModel)

    current: Any = model
    skip = 0  # loc parts that are list indices or dict keys, not field names
    for part in loc[:-1]:
        if skip:
            skip -= 1
            continue
        field = current.model_fields.get(part) if is_model(current) else None
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        skip = 1 if getattr(annotation, "__origin__", None) in (list, dict) else 0
        current = next((a for a in (annotation, *args) if is_model(a)), None)
        if current is None:
            return []
    return sorted(current.model_fields) if is_model(current) else []


def format_errors(err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Render pydantic errors as ``key.path: message`` lines, listing allowed keys for typos.

    ``model`` is the validated model (default :class:`Config`).
    """
    lines = []
    for item in err.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(part) for part in loc) or "<root>"
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(model or Config, loc)
            msg = f"unknown key '{loc[-1]}'" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        lines.append(f"  {key}: {msg}")
    return "invalid eegfm config:\n" + "\n".join(lines)


def load_config(raw: dict[str, Any] | None, *, checked_dir: str | os.PathLike | None = None) -> Config:
    """Validate a raw config mapping (e.g. Snakemake's ``config``) into a :class:`Config`.

    Parameters
    ----------
    raw
        The mapping read from YAML.
    checked_dir
        Optional folder remembering probe estimators that passed
        :func:`eegfm.estimators.resolve_estimator` (by estimator, parameters
        and scikit-learn version): checking one imports scikit-learn, a cost
        every ``snakemake`` invocation would otherwise pay at parse time.

    Raises
    ------
    ConfigError
        With one line per problem, naming the key and the allowed values.
    """
    try:
        cfg = Config.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None
    # Checked here, not in the Probe model, so importing this module stays
    # cheap for every job (it imports scikit-learn).
    from eegfm.estimators import KINDS, check_estimator

    for kind, (name, params) in {"classification": (cfg.probe.estimator, cfg.probe.params),
                                 "regression": (cfg.probe.regressor, cfg.probe.regressor_params)}.items():
        try:
            check_estimator(name, params, kind, checked_dir=checked_dir)
        except ValueError as err:
            raise ConfigError(f"invalid eegfm config:\n  {KINDS[kind][1]}: {err}") from None
    return cfg


def json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`Config` (what ``workflow/schemas/config.schema.yaml`` holds)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
