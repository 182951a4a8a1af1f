"""How a family of models is driven: the generic braindecode way, and the hooks a family file overrides.

A :class:`~eegfm.backbones.spec.BackboneSpec` says *what* a backbone is; its
``family`` object says *how* eegfm builds and reads it. Most braindecode
models need nothing but :class:`Braindecode` with a feature tap; a family
with a quirk subclasses it in its own file under
:mod:`eegfm.backbones.families` and overrides one hook (BENDR's constructor
slots, REVE's position bank, …), so everything about one model lives in one
place. The feature baselines (band power, Riemannian tangent space) are
:class:`FeatureBaseline` objects with their own extractors.

Importing this module is cheap (no torch, no braindecode).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from eegfm.backbones.adapt import BackboneInputError, check_fits, prepare_input
from eegfm.backbones.checkpoints import KeyRemap, folder_config
from eegfm.backbones.spec import FeatureTap
from eegfm.hashing import canonical_json, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.backbones.adapt import InputPlan
    from eegfm.backbones.spec import BackboneSpec
    from eegfm.config import Backbone

#: Output units of the (unused) classification head the models are built with.
N_OUTPUTS = 2

#: Signal parameters eegfm derives from the windows; a config may not set them.
SIGNAL_KWARGS = ("n_outputs", "n_chans", "chs_info", "n_times", "input_window_seconds", "sfreq")


# ----------------------------------------------------------------------------- construction-time files


@dataclass(frozen=True)
class AssetSource:
    """Where a model's construction-time file comes from.

    Attributes
    ----------
    record
        What enters the fingerprint: ``sha256:<hex>`` of a real file, or how
        eegfm stands in for it (never a path, so caches move between machines).
    path
        The file to use; ``None`` when eegfm stands in for it.
    """

    record: str
    path: Path | None = None

    @classmethod
    def of_file(cls, path: Path) -> AssetSource:
        """A real file, recorded by its content."""
        return cls(record=f"sha256:{sha256_file(path)}", path=path)


@dataclass(frozen=True)
class Asset:
    """A file a braindecode class downloads at construction, which eegfm supplies from local paths instead.

    A family file subclasses it (REVE's position bank, STEEGFormer's channel
    vocabulary) and sets :attr:`name`, :attr:`filename` and :attr:`offline_note`.
    """

    #: Key of the fingerprint's ``asset`` entry.
    name: ClassVar[str] = ""
    #: The file's name, in a weights folder or next to a weights file.
    filename: ClassVar[str] = ""
    #: How ``eegfm backbones`` says the model builds offline.
    offline_note: ClassVar[str] = "yes"

    def resolve(self, spec: BackboneSpec, cfg: Backbone) -> AssetSource:
        """Where the file comes from for this config (never a download)."""
        raise NotImplementedError

    def apply(self, spec: BackboneSpec, kwargs: dict[str, Any], source: AssetSource, explicit: set[str]) -> None:
        """Change constructor arguments that depend on the file (``explicit``: keys the config set)."""

    def in_place(self, source: AssetSource | None) -> contextlib.AbstractContextManager:
        """A context in which the braindecode constructor finds the file locally."""
        return contextlib.nullcontext()

    def beside_weights(self, weights: str | None) -> Path | None:
        """:attr:`filename` inside a weights folder, or next to a weights file."""
        if not weights:
            return None
        source = Path(weights).expanduser()
        candidate = (source if source.is_dir() else source.parent) / self.filename
        return candidate if candidate.is_file() else None


# ----------------------------------------------------------------------------- braindecode models


@dataclass(frozen=True)
class Braindecode:
    """A ``braindecode.models`` class driven the generic way.

    Attributes
    ----------
    tap
        Where the feature tensor is read.
    ch_names_kwarg
        Forward keyword that receives the model channel names (LaBraM's
        ``ch_names``), or ``None``.
    forward_kwargs
        Constant keyword arguments of every forward call.
    constant_channels
        ``(name, value)`` constant channels appended to every window after
        the model channels (BENDR's ``SCALE``); ``n_chans`` counts them.
    key_remap
        Renames from an official (non-braindecode) checkpoint's state-dict
        keys to the braindecode model's: ``(regex, replacement)`` pairs
        applied in order with :func:`re.sub` (count 1); a ``None``
        replacement drops the key. Applied to single weights files only
        (a ``from_pretrained`` folder is braindecode's own layout).
    asset
        A file the class downloads at construction, supplied offline by eegfm.
    head_module
        The classification head (not a feature parameter; excluded from the
        parameter count of ``eegfm backbones``).
    quiet
        Warnings of the class (message prefixes) that do not apply to the way
        eegfm uses it, silenced while it is built and run.
    """

    kind: ClassVar[str] = "braindecode"
    #: Packages whose versions enter the fingerprint.
    libraries: ClassVar[tuple[str, ...]] = ("braindecode", "torch")

    tap: FeatureTap = FeatureTap()
    ch_names_kwarg: str | None = None
    forward_kwargs: Mapping[str, Any] = field(default_factory=dict)
    constant_channels: tuple[tuple[str, float], ...] = ()
    key_remap: KeyRemap = ()
    asset: Asset | None = None
    head_module: str = "final_layer"
    quiet: tuple[str, ...] = ()

    # -- hooks a family file overrides

    def slots(self, plan: InputPlan) -> dict[str, Any]:
        """The constructor arguments that describe the channels: ``n_chans`` and ``chs_info``."""
        chs_info = [{"ch_name": n, "loc": (plan.positions or {}).get(n)} for n in plan.ch_names]
        return {"n_chans": len(plan.ch_names) + len(self.constant_channels), "chs_info": chs_info}

    def model_forward_kwargs(self, ch_names: list[str]) -> dict[str, Any]:
        """Keyword arguments of every forward call for these model channels."""
        kwargs = dict(self.forward_kwargs)
        if self.ch_names_kwarg:
            kwargs[self.ch_names_kwarg] = list(ch_names)
        return kwargs

    # -- what the generic code asks

    def init_kwargs(self, spec: BackboneSpec, cfg: Backbone, plan: InputPlan) -> dict[str, Any]:
        """Constructor arguments as JSON values: registry < weights folder config < config kwargs < signal.

        The result is what enters the fingerprint and exactly what the model is built from.

        Raises
        ------
        BackboneInputError
            If the config sets a signal parameter eegfm derives from the
            windows, or the plan does not fit the model (:func:`~eegfm.backbones.adapt.check_fits`).
        """
        forbidden = sorted(set(cfg.kwargs) & set(SIGNAL_KWARGS))
        if forbidden:
            raise BackboneInputError(
                f"backbone '{cfg.label}': kwargs {forbidden} are set by eegfm from the windows store; remove them"
            )
        check_fits(spec, plan)
        folder = {k: v for k, v in folder_config(cfg.weights).items() if k not in SIGNAL_KWARGS}
        kwargs = {**spec.init_kwargs, **folder, **cfg.kwargs}
        kwargs.update(n_outputs=N_OUTPUTS, n_times=plan.n_times_out, sfreq=plan.sfreq_out, **self.slots(plan))
        if self.asset is not None:
            self.asset.apply(spec, kwargs, self.asset.resolve(spec, cfg), explicit=set(cfg.kwargs))
        return json.loads(canonical_json(kwargs))  # tuples -> lists: same settings, same fingerprint

    def resolve_asset(self, spec: BackboneSpec, cfg: Backbone) -> AssetSource | None:
        """The construction-time file for this config, when the class needs one."""
        return self.asset.resolve(spec, cfg) if self.asset is not None else None

    def record(self, spec: BackboneSpec, cfg: Backbone) -> dict[str, Any]:
        """The fingerprint's entries for how the model is read: ``features``, and ``asset`` when there is one."""
        out: dict[str, Any] = {
            "features": {
                "source": self.tap.source,
                "module": self.tap.module,
                "forward_kwargs": dict(self.forward_kwargs),
                "ch_names_kwarg": self.ch_names_kwarg,
                "extra_channels": [list(pair) for pair in self.constant_channels],
            }
        }
        if (source := self.resolve_asset(spec, cfg)) is not None:
            out["asset"] = {self.asset.name: source.record}
        return out


# ----------------------------------------------------------------------------- feature baselines


@dataclass(frozen=True)
class FeatureBaseline:
    """A non-neural feature extractor (no weights, nothing to train); subclassed by its family file."""

    kind: ClassVar[str] = ""
    libraries: ClassVar[tuple[str, ...]] = ()

    def resolve_kwargs(self, init_kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The registry's settings merged with the config's, validated and as JSON values."""
        raise NotImplementedError

    def check(self, kwargs: dict[str, Any], plan: InputPlan) -> None:
        """Refuse settings the planned windows cannot support (default: none)."""

    def extractor(self, plan: InputPlan, kwargs: dict[str, Any]):
        """The callable ``(B, C, T) volts -> (B, D)`` for these windows and settings."""
        raise NotImplementedError

    def init_kwargs(self, spec: BackboneSpec, cfg: Backbone, plan: InputPlan) -> dict[str, Any]:
        """The extractor's settings (what enters the fingerprint).

        Raises
        ------
        BackboneInputError
            Weights given to a baseline that has none, or invalid settings.
        """
        if cfg.weights:
            raise BackboneInputError(f"backbone '{cfg.label}': {self.kind} has no weights; remove backbones[].weights")
        kwargs = self.resolve_kwargs(spec.init_kwargs, cfg.kwargs)
        self.check(kwargs, plan)
        return kwargs

    def record(self, spec: BackboneSpec, cfg: Backbone) -> dict[str, Any]:
        """No entries beyond the common ones."""
        return {}


#: What a :class:`~eegfm.backbones.spec.BackboneSpec`'s ``family`` is.
Family = Braindecode | FeatureBaseline


class BaselineExtractor:
    """Windows in volts (B, C, T) -> float32 features (B, dim) of a feature baseline.

    Each window is prepared by the plan (channels, rate, length, scale, in
    float64), then :meth:`features` turns the batch into vectors.

    Parameters
    ----------
    plan
        The input plan.
    dim
        The embedding size.
    """

    def __init__(self, plan: InputPlan, dim: int):
        self.plan, self.dim = plan, dim

    def features(self, X: np.ndarray) -> np.ndarray:
        """Prepared windows (B, C, T) in model units -> (B, dim)."""
        raise NotImplementedError

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.features(prepare_input(X, self.plan, dtype=np.float64))
