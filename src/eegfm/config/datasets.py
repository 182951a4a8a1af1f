"""The ``datasets.<name>`` section: where recordings come from and how they become labelled windows.

A :class:`Dataset` names its source (the built-in synthetic data, a BIDS root
or plain files), the MNE preprocessing, the windowing and labels, and its study
design (:class:`~eegfm.config.cv.CrossValidation`).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from eegfm.config.base import StrictModel
from eegfm.config.cv import CrossValidation

#: MNE channel types a channel may be given (``preprocessing.channel_types``) or kept as (``keep_types``).
ChannelType = Literal[
    "eeg", "eog", "emg", "ecg", "resp", "stim", "misc", "bio", "gsr", "temperature", "seeg", "ecog", "dbs"
]


# ----------------------------------------------------------------------------- sources


class SyntheticSource(StrictModel):
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


class BidsSource(StrictModel):
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


def _number_as_text(value: Any) -> Any:
    """``1`` -> ``'1'``, ``1.5`` -> ``'1.5'``; booleans and everything else unchanged."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


#: Named groups a ``files.pattern`` may have: the ids a recording gets from its path.
PATTERN_GROUPS = ("subject", "session", "run")


class FilesSource(StrictModel):
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
        description="Regex with named groups (subject, optional session, run; no others) matched against each "
        "path from 'paths'; without it each file is its own subject (its file stem), and file names that share "
        "a BIDS subject (sub-01_run-1, sub-01_run-2) are refused.",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        """The regex compiles, names a subject and no group the loader would ignore (a typo such as 'runs')."""
        if value is not None:
            try:
                groups = re.compile(value).groupindex
            except re.error as err:
                raise ValueError(f"not a valid regex: {err}") from err
            if "subject" not in groups:
                raise ValueError("needs a named group (?P<subject>...)")
            unknown = sorted(set(groups) - set(PATTERN_GROUPS))
            if unknown:
                raise ValueError(f"unknown named group(s) {', '.join(map(repr, unknown))}: they would be ignored; "
                                 f"the groups a pattern may name are {', '.join(PATTERN_GROUPS)}")
        return value

    @model_validator(mode="after")
    def _label_column_needs_table(self) -> FilesSource:
        if self.label_column is not None and not self.metadata:
            raise ValueError("label_column needs files.metadata (the table that holds the column)")
        return self


# ----------------------------------------------------------------------------- preprocessing, windows


def _ordered_range(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not 0 < low < high:
        raise ValueError(f"amplitude_range_uv must be [low, high] with 0 < low < high; got {[low, high]}")
    return value


#: A plausible amplitude range in µV, [low, high] with 0 < low < high.
AmplitudeRange = Annotated[tuple[float, float], AfterValidator(_ordered_range)]


class Preprocessing(StrictModel):
    """MNE preprocessing applied to each recording before windowing (and the signal checks)."""

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
    amplitude_range_uv: AmplitudeRange = Field(
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
        return self


class SignalChecks(StrictModel):
    """The signal checks of :class:`Preprocessing` alone (same keys, defaults and meaning): what the Python
    API applies to windows it does not filter (``eegfm.windowing.signal_checks``)."""

    amplitude_range_uv: AmplitudeRange = Preprocessing.model_fields["amplitude_range_uv"]
    signal_check: Literal["error", "warn"] = Preprocessing.model_fields["signal_check"]


class Windowing(StrictModel):
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
        "occurs in no recording is an error. Numbers are read as their text ({1: left} is {'1': left}). null uses "
        "every event name as its own label.",
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
    reject_by_annotation: bool = Field(
        True,
        description="Drop windows of continuous recordings that overlap an annotation whose description starts "
        "with 'bad' (case-insensitive: BAD_movement, the 'BAD boundary' mne.concatenate_raws puts at a splice), "
        "as mne.Epochs(reject_by_annotation=True) does; they are counted per recording in the log, windows.json "
        "(dropped_windows) and the report. false keeps them.",
    )

    @field_validator("event_id", mode="before")
    @classmethod
    def _numbers_as_names(cls, value: Any) -> Any:
        """YAML reads ``{1: left}`` (a trigger code) and ``{T1: 1}`` (a regression value) as numbers: names and
        labels are text, so a number becomes its text (``1`` -> ``'1'``); anything else is validated as given."""
        if not isinstance(value, dict):
            return value
        return {_number_as_text(k): _number_as_text(v) for k, v in value.items()}

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


class Dataset(StrictModel):
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
