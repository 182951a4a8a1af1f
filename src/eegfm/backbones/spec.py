"""What a backbone is: its registry entry, the input it takes, and where its features are read.

Everything here is data (frozen dataclasses) plus the small rules that read
it, so importing it is cheap (no torch, no braindecode): the config validator
and the CLI read specs at parse time. How a model is driven — the family
object in :attr:`BackboneSpec.family` — lives with the family, in
:mod:`eegfm.backbones.families`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from eegfm.backbones.channels import CHANNELS_1020

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.backbones.family import Family

Pooling = Literal["cls", "mean", "flatten", "as_is", "none"]
InputNorm = Literal["none", "channel_q95", "window_minmax", "channel_zscore_clip15"]
FeatureSource = Literal["return_features", "module_output", "module_input"]

#: Sampling rate of the nominal input of a backbone that takes any rate.
NOMINAL_SFREQ = 200.0


@dataclass(frozen=True)
class Length:
    """The window lengths (samples at the model's rate) a model takes.

    Attributes
    ----------
    multiple
        The length must be a multiple of this.
    minimum
        The model needs at least this many samples.
    maximum
        The model takes at most this many samples (``None``: no limit).
    fixed
        The model needs exactly this many samples (``None``: any allowed length).
    note
        What the model itself does with the samples (shown by ``eegfm
        backbones``), e.g. a patch stride that leaves the last samples unused.
    """

    multiple: int = 1
    minimum: int = 1
    maximum: int | None = None
    fixed: int | None = None
    note: str = ""

    def accepts(self, n: int) -> bool:
        """Whether the model takes windows of ``n`` samples."""
        if self.fixed is not None:
            return n == self.fixed
        too_long = self.maximum is not None and n > self.maximum
        return n >= max(self.minimum, 1) and n % self.multiple == 0 and not too_long

    @property
    def shortest(self) -> int:
        """The shortest window the model takes."""
        if self.fixed is not None:
            return self.fixed
        return -(-max(self.minimum, 1) // self.multiple) * self.multiple

    def crop_target(self, n: int) -> int | None:
        """The longest accepted length ``<= n`` (``None`` if there is none)."""
        if self.fixed is not None:
            return self.fixed if self.fixed <= n else None
        top = min(n, self.maximum) if self.maximum is not None else n
        k = (top // self.multiple) * self.multiple
        return k if k >= max(self.minimum, 1) else None

    def pad_target(self, n: int) -> int | None:
        """The shortest accepted length ``>= n`` (``None`` if there is none)."""
        if self.fixed is not None:
            return self.fixed if self.fixed >= n else None
        k = -(-max(n, self.minimum, 1) // self.multiple) * self.multiple
        return k if self.maximum is None or k <= self.maximum else None

    def nearest(self, n: int) -> int:
        """An accepted length near ``n``: the shortest one ``>= n``, else the longest one ``<= n``."""
        target = self.pad_target(n)
        return target if target is not None else self.crop_target(n) or self.shortest

    def describe(self, sfreq: float | None = None, with_rate: bool = True) -> str:
        """The rule in samples, e.g. ``"k x 200 (1 s) at 200 Hz"``."""
        if self.fixed is not None:
            return f"= {self.fixed}"
        rate = f" at {sfreq:g} Hz" if sfreq and with_rate else ""
        parts = []
        if self.multiple > 1:
            seconds = f" ({self.multiple / sfreq:g} s)" if sfreq else ""
            parts.append(f"k x {self.multiple}{seconds}")
        if self.minimum > self.multiple:
            parts.append(f">= {self.minimum}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum}")
        return (", ".join(parts) or "any") + (rate if parts else "")


@dataclass(frozen=True)
class Channels:
    """The channels a model takes.

    Attributes
    ----------
    description
        Human-readable requirement, e.g. ``"any (10-20 names)"``.
    vocabulary
        The channels the pretrained model was trained on, in the order its
        input expects, as canonical 10-05 names (``Fp1``, ``T7``, ``FC5``; see
        :func:`eegfm.backbones.channels.clean_name`). Recorded channels are
        mapped onto exactly these (others are dropped; missing ones follow
        ``backbones[].missing_channels``). ``None``: any channel set, passed
        through in the recording's order with cleaned-up names.
    subset
        With ``vocabulary``: the model takes any non-empty subset of it
        (e.g. a learned embedding per channel name, as LaBraM), fed in
        vocabulary order; nothing is ever missing, unknown channels are dropped.
    montage
        ``(anode, cathode)`` derivations the model expects, in order (e.g.
        :data:`eegfm.backbones.channels.DOUBLE_BANANA`); each is computed as
        anode - cathode from referential channels (or taken as is when a
        recorded channel is already named ``"anode-cathode"``). Exclusive
        with ``vocabulary``.
    max_count
        The model takes at most this many channels (``None``: no limit).
    needs_positions
        The model reads channel positions from ``chs_info`` (every channel
        needs one, from the windows store or MNE's template).
    """

    description: str = "any"
    vocabulary: tuple[str, ...] | None = None
    subset: bool = False
    montage: tuple[tuple[str, str], ...] | None = None
    max_count: int | None = None
    needs_positions: bool = False

    def __post_init__(self):
        if self.vocabulary is not None and self.montage is not None:
            raise ValueError("give a channel vocabulary or a bipolar montage, not both")
        if self.subset and self.vocabulary is None:
            raise ValueError("subset=True needs a vocabulary")


@dataclass(frozen=True)
class Inputs:
    """The input a model takes: rate, length rule, channels and unit.

    Attributes
    ----------
    sfreq
        Native sampling rate in Hz; windows are resampled to it. ``None``
        accepts any rate.
    length
        The window lengths it takes, in samples at ``sfreq``.
    channels
        The channels it takes.
    scale
        Factor from volts (the windows store's unit) to the model's input unit.
    norm
        Per-window normalisation applied after ``scale``, as in the model's
        pretraining code: ``"none"``, ``"channel_q95"`` (divide each channel
        by its 95th percentile of absolute amplitude + 1e-8, as BIOT does),
        ``"window_minmax"`` (BENDR) or ``"channel_zscore_clip15"`` (REVE).
    scale_note
        Where ``scale`` / ``norm`` come from (the model's documentation or
        pretraining code), and what differs from the pretraining pipeline.
    """

    sfreq: float | None = None
    length: Length = Length()
    channels: Channels = Channels()
    scale: float = 1.0
    norm: InputNorm = "none"
    scale_note: str = ""


@dataclass(frozen=True)
class FeatureTap:
    """Where a neural model's feature tensor is read.

    Attributes
    ----------
    source
        ``"return_features"`` (braindecode's ``forward(x, return_features=True)``),
        ``"module_output"`` or ``"module_input"`` (a forward hook on
        ``module``; the forward stops there, so a classification head after
        it never runs).
    module
        Dotted name of the hooked submodule (e.g. ``"norm"``, ``"final_layer"``).
    """

    source: FeatureSource = "return_features"
    module: str | None = None

    def __post_init__(self):
        if (self.source == "return_features") != (self.module is None):
            raise ValueError(f"feature source '{self.source}' and module {self.module!r}: a hook needs a module, "
                             "return_features none")  # fmt: skip


@dataclass(frozen=True)
class BackboneSpec:
    """Everything eegfm needs to know about one backbone (one registry entry).

    Attributes
    ----------
    name
        Registry name used in configs and result rows.
    family
        How the model is built and read (an object from
        :mod:`eegfm.backbones.families`): braindecode models share
        :class:`eegfm.backbones.family.Braindecode`, whose subclasses hold a
        family's quirks; the feature baselines have their own.
    inputs
        The input the model takes (rate, length rule, channels, unit).
    model_class
        braindecode class name, e.g. ``"CBraMod"`` (``None`` for non-neural).
    pooling
        How the feature tensor becomes one vector per window
        (:func:`eegfm.backbones.features.pool`).
    init_kwargs
        Constructor arguments beyond the signal parameters.
    lora_targets
        Default peft ``target_modules`` for LoRA.
    embedding_dim
        The embedding size, when it does not depend on the input (checked
        against the built model by the tests); ``None`` when it does.
    nominal_seconds
        A typical window length (s) that the model takes: the input at which
        ``eegfm backbones`` counts parameters and the weights check builds it.
    pretraining_corpus
        Identifiers of the datasets the published weights were trained on
        (:mod:`eegfm.backbones.corpora`), for the overlap warning.
    pretrained_source
        Where official weights live (e.g. a Hugging Face repo), for prefetch.
    offline
        ``None`` when the model builds offline, else the reason it cannot.
    """

    name: str
    family: Family
    inputs: Inputs = Inputs()
    model_class: str | None = None
    pooling: Pooling = "mean"
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    lora_targets: tuple[str, ...] = ()
    embedding_dim: int | None = None
    nominal_seconds: float = 4.0
    pretraining_corpus: tuple[str, ...] = ()
    pretrained_source: str | None = None
    offline: str | None = None

    @property
    def kind(self) -> str:
        """``"braindecode"`` for neural models, else the feature baseline's name."""
        return self.family.kind

    @property
    def nominal_n_times(self) -> int | None:
        """``nominal_seconds`` in samples at the native rate (``None`` without one)."""
        sfreq = self.inputs.sfreq
        return round(self.nominal_seconds * sfreq) if sfreq else None


def nominal_windows(spec: BackboneSpec, seconds: float | None = None, ch_names=CHANNELS_1020) -> dict[str, Any]:
    """A windows-store summary (``windows.json`` style) of a nominal recording for ``spec``.

    The 19 channels of the 10-20 system (positions: MNE's template) at the
    native rate (else :data:`NOMINAL_SFREQ`), windows of ``seconds`` (default
    ``spec.nominal_seconds``) moved to the nearest length the model takes.
    ``eegfm backbones`` sizes models at it and the parse-time weights check
    builds them for it.
    """
    sfreq = float(spec.inputs.sfreq or NOMINAL_SFREQ)
    n_times = spec.inputs.length.nearest(round((seconds or spec.nominal_seconds) * sfreq))
    return {"sfreq": sfreq, "n_times": n_times, "ch_names": list(ch_names), "units": "V"}
