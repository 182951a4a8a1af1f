"""From a registry spec and an input plan to a frozen feature extractor.

:func:`fingerprint` collects everything that changes the embeddings
(DESIGN §2) and nothing that does not (device, batch size, threads); it never
imports torch. :func:`build_extractor` builds the model (seeded, ``eval()``),
loads local weights strictly, and returns a callable ``(B, C, T) volts -> (B, D)``
that reads features where the registry says
(:class:`~eegfm.backbones.features.FeatureModel`).

Classes that download a file at construction (REVE's position bank,
STEEGFormer's channel vocabulary) get it from local paths or a stand-in
eegfm makes (:func:`resolve_asset`); which one enters the fingerprint.
:func:`describe` builds a backbone at its nominal input for ``eegfm backbones``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.backbones.adapt import BackboneInputError, InputPlan, plan_input, prepare_input
from eegfm.backbones.checkpoints import BackboneWeightsError, folder_config, load_weights, weights_id
from eegfm.backbones.registry import BackboneSpec
from eegfm.hashing import canonical_json, sha256_file
from eegfm.provenance import package_versions

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Backbone

__all__ = [
    "BackboneInputError", "BackboneWeightsError", "InputPlan", "build_extractor", "describe", "fingerprint",
    "load_weights", "plan_input", "prepare_input", "resolve_asset", "resolve_init_kwargs", "weights_id",
]

logger = logging.getLogger(__name__)

#: Bump when a change here or in :mod:`eegfm.embed` changes embedding values.
EMBED_CODE_VERSION = "1"


#: Output units of the (unused) classification head the models are built with.
N_OUTPUTS = 2


#: Signal parameters eegfm derives from the windows; a config may not set them.
SIGNAL_KWARGS = ("n_outputs", "n_chans", "chs_info", "n_times", "input_window_seconds", "sfreq")


def resolve_init_kwargs(spec: BackboneSpec, cfg: Backbone, plan: InputPlan) -> dict[str, Any]:
    """Constructor arguments as JSON values: registry < weights folder config < config kwargs < signal.

    For ``bandpower`` these are the band-power settings. The result is what
    enters the fingerprint and exactly what the model is built from.

    Raises
    ------
    BackboneInputError
        If the config sets a signal parameter eegfm derives from the windows.
    """
    if spec.kind == "bandpower":
        from eegfm.backbones import bandpower

        if cfg.weights:
            raise BackboneInputError(f"backbone '{cfg.label}': bandpower has no weights; remove backbones[].weights")
        kwargs = bandpower.resolve_kwargs(spec.init_kwargs, cfg.kwargs)
        bandpower.check_bands(kwargs, plan.sfreq_out, plan.n_times_out)
        return kwargs
    if spec.kind == "riemann":
        from eegfm.backbones import riemann

        if cfg.weights:
            raise BackboneInputError(f"backbone '{cfg.label}': riemann has no weights; remove backbones[].weights")
        return riemann.resolve_kwargs(spec.init_kwargs, cfg.kwargs)
    forbidden = sorted(set(cfg.kwargs) & set(SIGNAL_KWARGS))
    if forbidden:
        raise BackboneInputError(
            f"backbone '{cfg.label}': kwargs {forbidden} are set by eegfm from the windows store; remove them"
        )
    check_fits(spec, plan)
    folder = {k: v for k, v in folder_config(cfg.weights).items() if k not in SIGNAL_KWARGS}
    kwargs = {**spec.init_kwargs, **folder, **cfg.kwargs}
    chs_info = [{"ch_name": n, "loc": (plan.positions or {}).get(n)} for n in plan.ch_names]
    kwargs.update(
        n_outputs=N_OUTPUTS,
        n_chans=spec.n_chans_model or len(plan.ch_names) + len(spec.extra_channels),
        n_times=plan.n_times_out,
        sfreq=plan.sfreq_out,
        # chs_info must name every model slot; unused slots (n_chans_model) have no name
        chs_info=chs_info if spec.pass_chs_info and not spec.n_chans_model else None,
    )
    _apply_asset(spec, kwargs, resolve_asset(spec, cfg), explicit=set(cfg.kwargs))
    return json.loads(canonical_json(kwargs))  # tuples -> lists: same settings, same fingerprint


def check_fits(spec: BackboneSpec, plan: InputPlan) -> None:
    """Refuse a plan the model cannot take, before any work: length, channel count, positions.

    Raises
    ------
    BackboneInputError
        Naming what to change.
    """
    n, sfreq = plan.n_times_out, plan.sfreq_out
    if not spec.accepts_n_times(n):
        raise BackboneInputError(
            f"backbone '{spec.name}' takes windows of {spec.length_rule()} samples; these are {n} samples "
            f"({n / sfreq:g} s at {sfreq:g} Hz). Set datasets.<dataset>.windows.length_s or backbones[].length_policy"
        )
    if spec.max_chans is not None and len(plan.ch_names) > spec.max_chans:
        raise BackboneInputError(
            f"backbone '{spec.name}' takes at most {spec.max_chans} channels; the plan has {len(plan.ch_names)} "
            f"({', '.join(plan.ch_names)}). Select channels in datasets.<dataset> or pick another backbone"
        )
    if spec.needs_positions:
        unplaced = [c for c in plan.ch_names if not (plan.positions or {}).get(c)]
        if unplaced:
            raise BackboneInputError(
                f"backbone '{spec.name}' needs a position for every channel; none is known for {', '.join(unplaced)} "
                "(not 10-05 names, and the windows store has no positions for them). Rename them with "
                "backbones[].channel_aliases or store positions with the recordings"
            )


# ----------------------------------------------------------------------------- offline assets


#: What each asset is, for error messages and file lookup.
_ASSET_FILES = {"reve_positions": "reve_positions.json", "steegformer_channels": "steegformer_channels.json"}


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


def resolve_asset(spec: BackboneSpec, cfg: Backbone) -> AssetSource | None:
    """The construction-time file ``spec``'s model needs, from local paths only (never a download).

    REVE's position bank (``reve_positions.json``) is read from the weights
    folder, else from MNE's ``REVE_POSITIONS_PATH`` config (braindecode's own
    lookup); without either, eegfm builds one from MNE's template montage at
    build time (a different fingerprint than the real file, whose coordinates
    REVE was pretrained with). STEEGFormer's channel vocabulary
    (``steegformer_channels.json``, from ``braindecode/STEEGFormer-*``) is
    read from the weights folder or next to a weights file; a random init
    needs none (its channel embedding starts at zero).

    Raises
    ------
    BackboneWeightsError
        STEEGFormer weights without their channel vocabulary.
    """
    if spec.asset is None:
        return None
    filename = _ASSET_FILES[spec.asset]
    local = _asset_file(cfg.weights, filename)
    if spec.asset == "reve_positions":
        if local is None:
            configured = _mne_config("REVE_POSITIONS_PATH")
            candidate = Path(configured).expanduser() / filename if configured else None
            local = candidate if candidate is not None and candidate.is_file() else None
        if local is None:
            import mne

            from eegfm.backbones.channels import STANDARD_MONTAGE

            return AssetSource(record=f"mne-template:{STANDARD_MONTAGE} (mne {mne.__version__})")
        return AssetSource(record=f"sha256:{sha256_file(local)}", path=local)
    if local is not None:
        return AssetSource(record=f"sha256:{sha256_file(local)}", path=local)
    if cfg.weights:
        raise BackboneWeightsError(
            f"backbone '{cfg.label}' ({spec.model_class}): its pretrained channel embedding is indexed by the montage "
            f"vocabulary {filename} (in the Hugging Face repo {spec.pretrained_source or 'of the weights'}), which "
            f"eegfm never downloads. Put {filename} in the weights folder {cfg.weights} (prefetch downloads it with "
            "the weights), or next to the weights file"
        )
    return AssetSource(record="identity: channel i -> slot i (random init; the channel embedding starts at zero)")


def _asset_file(weights: str | None, filename: str) -> Path | None:
    """``filename`` inside a weights folder, or next to a weights file."""
    if not weights:
        return None
    source = Path(weights).expanduser()
    candidate = (source if source.is_dir() else source.parent) / filename
    return candidate if candidate.is_file() else None


def _mne_config(key: str) -> str | None:
    """An MNE config value (the environment wins over ``~/.mne``), as braindecode reads it."""
    if key in os.environ:
        return os.environ[key]
    import mne

    return mne.get_config(key, None)


def _apply_asset(spec: BackboneSpec, kwargs: dict[str, Any], asset: AssetSource | None, explicit: set[str]) -> None:
    """Constructor arguments that depend on the asset: channel names REVE's bank knows, STEEGFormer's slots."""
    if asset is None:
        return
    names = [ch["ch_name"] for ch in kwargs["chs_info"]]
    if spec.asset == "reve_positions":
        known = json.loads(asset.path.read_text()) if asset.path else dict.fromkeys(_template_bank())
        by_upper = {k.upper(): k for k in known}
        unknown = [n for n in names if n.upper() not in by_upper]
        if unknown:
            raise BackboneInputError(
                f"backbone '{spec.name}': REVE's position bank ({asset.record}) has no position for "
                f"{', '.join(unknown)}; rename them with backbones[].channel_aliases"
            )
        for ch in kwargs["chs_info"]:  # the bank is looked up by exact name
            ch["ch_name"] = by_upper[ch["ch_name"].upper()]
        return
    if "chan_pos_idx" in explicit:
        return  # the config's explicit slots win, as in braindecode
    if asset.path is None:
        kwargs["chan_pos_idx"] = list(range(len(names)))
        return
    index = {name.upper(): i for i, name in enumerate(json.loads(asset.path.read_text()))}
    unknown = [n for n in names if n.upper() not in index]
    if unknown:
        raise BackboneInputError(
            f"backbone '{spec.name}': {', '.join(unknown)} are not in the channel vocabulary {asset.path}; rename "
            "them with backbones[].channel_aliases, or give backbones[].kwargs.chan_pos_idx"
        )
    kwargs["chan_pos_idx"] = [index[n.upper()] for n in names]


def _template_bank() -> dict[str, list[float]]:
    """``{name: [x, y, z]}`` (m, head frame) of every channel of MNE's template montage."""
    from eegfm.backbones.channels import standard_names, template_position

    return {name: template_position(name) for name in standard_names()}


@contextlib.contextmanager
def _asset_in_place(spec: BackboneSpec, asset: AssetSource | None):
    """Make the braindecode constructor find its file locally (REVE reads ``REVE_POSITIONS_PATH``)."""
    if spec.asset != "reve_positions":
        yield
        return
    with tempfile.TemporaryDirectory(prefix="eegfm-reve-") as tmp:
        if asset is not None and asset.path is not None:
            folder = asset.path.parent
            if asset.path.name != _ASSET_FILES["reve_positions"]:
                folder = Path(tmp)
                (folder / _ASSET_FILES["reve_positions"]).write_bytes(asset.path.read_bytes())
        else:
            folder = Path(tmp)
            (folder / _ASSET_FILES["reve_positions"]).write_text(json.dumps(_template_bank(), sort_keys=True))
        previous = os.environ.get("REVE_POSITIONS_PATH")
        os.environ["REVE_POSITIONS_PATH"] = str(folder)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("REVE_POSITIONS_PATH", None)
            else:
                os.environ["REVE_POSITIONS_PATH"] = previous


def _library_versions(spec: BackboneSpec, plan: InputPlan) -> dict[str, str]:
    names = ["mne", "numpy", "scipy"] if spec.kind == "bandpower" else ["braindecode", "torch"]
    if spec.kind == "riemann":
        names = ["numpy", "scipy", "scikit-learn", "pyriemann"]
    if plan.resampled and spec.kind != "bandpower":
        names += ["mne", "scipy"]  # the polyphase resampler
    return package_versions(names)


def fingerprint(spec: BackboneSpec, cfg: Backbone, plan: InputPlan, seed: int) -> dict[str, Any]:
    """Everything that changes a backbone's embeddings (DESIGN §2), as JSON values.

    Parameters
    ----------
    spec
        Registry entry.
    cfg
        The config's backbone entry (weights, kwargs; its label is not included).
    plan
        The input plan from :func:`plan_input`.
    seed
        Seed of the random init (only enters through ``weights`` when no
        weights are given).

    Returns
    -------
    dict
        registry name, kind, model class, resolved init kwargs, weights id,
        input adaptation record, scale, pooling, embedding code version and
        library versions; for neural backbones also where features are read
        and how construction-time files were supplied (``asset``). Device,
        batch size and threads are deliberately absent. Computing it never
        imports torch.
    """
    fp = {
        "backbone": spec.name,
        "kind": spec.kind,
        "model_class": spec.model_class,
        "init_kwargs": resolve_init_kwargs(spec, cfg, plan),
        "weights": "none" if spec.kind in ("bandpower", "riemann") else weights_id(cfg.weights, seed),
        "input": plan.record(),
        "scale": plan.scale,
        "pooling": cfg.pooling or spec.pooling,
        "embed_code_version": EMBED_CODE_VERSION,
        "versions": _library_versions(spec, plan),
    }
    if spec.kind == "braindecode":
        fp["features"] = _features_record(spec)
        if (asset := resolve_asset(spec, cfg)) is not None:
            fp["asset"] = {spec.asset: asset.record}
    return json.loads(canonical_json(fp))


def _features_record(spec: BackboneSpec) -> dict[str, Any]:
    """Where and how a neural backbone's features are read."""
    return {
        "source": spec.feature_source,
        "module": spec.feature_module,
        "forward_kwargs": dict(spec.forward_kwargs),
        "ch_names_kwarg": spec.ch_names_kwarg,
        "extra_channels": [list(pair) for pair in spec.extra_channels],
    }


def resolve_device(requested: str, key: str = "embedding.device") -> str:
    """``"auto"`` -> ``"cuda"``, then ``"mps"``, else ``"cpu"``; an unavailable explicit device is an error naming ``key``."""
    import torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (requested.startswith("cuda") and not cuda) or (requested == "mps" and not mps):
        raise RuntimeError(f"{key} is '{requested}' but torch sees no such device; set it to 'auto' or 'cpu'")
    return requested


def build_extractor(spec: BackboneSpec, cfg: Backbone, plan: InputPlan, seed: int, device: str = "cpu"):
    """Build a frozen feature extractor.

    Parameters
    ----------
    spec, cfg, plan, seed
        As for :func:`fingerprint`.
    device
        Torch device of the forward pass (ignored by ``bandpower``).

    Returns
    -------
    callable
        ``extractor(X)`` maps float32 windows (B, C, T) in volts to a float32
        array (B, D). It has ``dim`` (``None`` until the first call for neural
        backbones) and ``plan`` attributes.

    Raises
    ------
    BackboneInputError
        Unknown constructor kwargs, or a backbone that cannot be built offline.
    BackboneWeightsError
        Weights missing, needing pickle code execution, or not fitting the model.
    """
    kwargs = resolve_init_kwargs(spec, cfg, plan)
    if spec.kind == "bandpower":
        from eegfm.backbones.bandpower import BandpowerExtractor

        return BandpowerExtractor(plan, kwargs)
    if spec.kind == "riemann":
        from eegfm.backbones.riemann import RiemannExtractor

        return RiemannExtractor(plan, kwargs)
    features = build_feature_model(spec, cfg, plan, seed).eval().to(device)
    return TorchExtractor(features, plan, device)


def build_feature_model(spec: BackboneSpec, cfg: Backbone, plan: InputPlan, seed: int, *, pretrained: bool = True):
    """The braindecode model wrapped as a :class:`~eegfm.backbones.features.FeatureModel` (train mode).

    Parameters
    ----------
    spec, cfg, plan, seed
        As for :func:`fingerprint`.
    pretrained
        Load ``cfg.weights`` when set; ``False`` keeps the seeded random init
        (the from-scratch baseline of fine-tuning).

    Raises
    ------
    BackboneInputError, BackboneWeightsError
        As :func:`build_extractor`.
    """
    if spec.kind != "braindecode":
        raise BackboneInputError(f"backbone '{spec.name}' is a feature baseline, not a neural network")
    if spec.offline:
        raise BackboneInputError(f"backbone '{spec.name}' cannot be built offline: {spec.offline}")
    model = _build_model(spec, resolve_init_kwargs(spec, cfg, plan), seed, asset=resolve_asset(spec, cfg))
    if cfg.weights and pretrained:
        load_weights(model, cfg.weights)
    from eegfm.backbones.features import FeatureModel

    return FeatureModel(model, spec, plan.ch_names, pooling=cfg.pooling)


def _build_model(spec: BackboneSpec, kwargs: dict[str, Any], seed: int, asset: AssetSource | None = None):
    """The braindecode model for resolved ``kwargs``, seeded; construction-time files from ``asset``.

    ``asset=None`` for a model that needs one stands in for it as a random
    init would (REVE: a position bank from MNE's template).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing reaches the network at run time
    import torch
    from braindecode import models
    from braindecode.models.util import resolve_type_kwargs

    cls = getattr(models, spec.model_class)
    ctor = dict(kwargs)
    if kwargs.get("chs_info") is not None:
        ctor["chs_info"] = [_ch_info(ch) for ch in kwargs["chs_info"]]
    resolve_type_kwargs(cls, ctor)  # e.g. "torch.nn.GELU" strings from a config.json -> classes
    torch.manual_seed(seed)
    try:
        with _asset_in_place(spec, asset), warnings.catch_warnings():
            # LaBraM warns that chs_info alone does not select its position embeddings: eegfm passes ch_names
            warnings.filterwarnings("ignore", message="Labram chs_info does not match", category=UserWarning)
            return cls(**ctor)
    except TypeError as err:
        raise BackboneInputError(f"{spec.model_class}: {err}; check backbones[].kwargs") from err
    except ValueError as err:  # the constructor's own checks (channel counts, names, lengths)
        raise BackboneInputError(f"backbone '{spec.name}' ({spec.model_class}): {err}") from err


def _ch_info(ch: dict[str, Any]) -> dict[str, Any]:
    """MNE-like channel dict: position in ``loc[:3]`` (NaN when unknown)."""
    loc = np.full(12, np.nan)
    if ch["loc"] is not None:
        loc[:3] = ch["loc"][:3]
        loc[3:] = 0.0
    return {"ch_name": ch["ch_name"], "loc": loc}


class TorchExtractor:
    """Frozen braindecode model + input preparation + feature read-out, as a numpy callable.

    Parameters
    ----------
    features
        A :class:`~eegfm.backbones.features.FeatureModel` (model in ``eval()``
        mode) on ``device``.
    plan
        The input plan.
    device
        Torch device of the forward pass.

    Attributes
    ----------
    model
        The braindecode model.
    dim
        Embedding size (``None`` until the first call).
    """

    def __init__(self, features, plan: InputPlan, device: str):
        self.features, self.plan, self.device = features, plan, device
        self.model = features.model
        self.dim: int | None = None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(prepare_input(X, self.plan)).to(self.device)
        with torch.inference_mode(), warnings.catch_warnings():
            # BIOT's STFT uses torch's default rectangular window on purpose (as pretrained)
            warnings.filterwarnings("ignore", message="A window was not provided", category=UserWarning)
            feats = self.features(x).float().cpu().numpy()
        self.dim = feats.shape[1]
        return feats


def pool(out: Any, pooling: str):
    """Reduce a ``forward(..., return_features=True)`` output to (B, D)."""
    feats = out["features"] if isinstance(out, dict) else out
    if pooling == "cls":
        if not isinstance(out, dict) or out.get("cls_token") is None:
            raise ValueError("pooling 'cls' but the model returned no cls_token")
        feats = out["cls_token"]
    elif pooling == "mean":
        if feats.ndim > 2:
            feats = feats.mean(dim=tuple(range(1, feats.ndim - 1)))
    elif pooling == "flatten":
        feats = feats.reshape(feats.shape[0], -1)
    elif pooling == "grouped_mean":  # (B, channels, patches, D): per-channel means, concatenated
        feats = feats.mean(dim=2).reshape(feats.shape[0], -1) if feats.ndim == 4 else pool(out, "mean")
    elif pooling != "as_is":
        raise ValueError(f"unknown pooling '{pooling}'")
    if feats.ndim != 2:
        raise ValueError(f"pooling '{pooling}' left features of shape {tuple(feats.shape)}, expected (batch, dim)")
    return feats


def describe(spec: BackboneSpec, seed: int = 0) -> dict[str, int]:
    """Size of ``spec``'s neural backbone at its nominal input, by building and running it.

    The nominal input is the 19 channels of the 10-20 system (positions from
    MNE's template) at the native rate, windows of ``spec.nominal_seconds``.

    Returns
    -------
    dict
        ``params``: parameters of the model without its classification head
        (``spec.head_module``); ``dim``: the embedding size.

    Raises
    ------
    BackboneInputError
        If the backbone is not a braindecode model or cannot be built offline.
    """
    from eegfm.backbones.channels import CHANNELS_1020
    from eegfm.config import Backbone

    if spec.kind != "braindecode":
        raise BackboneInputError(f"backbone '{spec.name}' is not a neural network")
    info = {"sfreq": spec.sfreq, "n_times": spec.nominal_n_times, "ch_names": list(CHANNELS_1020), "units": "V"}
    cfg = Backbone(name=spec.name)
    extractor = build_extractor(spec, cfg, plan_input(spec, info, cfg=cfg), seed)
    X = np.random.default_rng(seed).normal(scale=1e-5, size=(2, len(CHANNELS_1020), info["n_times"]))
    dim = extractor(X.astype(np.float32)).shape[1]
    head = spec.head_module
    params = sum(
        p.numel() for name, p in extractor.model.named_parameters() if name != head and not name.startswith(head + ".")
    )
    return {"params": int(params), "dim": int(dim)}
