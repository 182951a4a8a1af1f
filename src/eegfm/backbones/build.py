"""From a registry spec and an input plan to a frozen feature extractor.

:func:`fingerprint` collects everything that changes the embeddings
(DESIGN §2) and nothing that does not (device, batch size, threads); it never
imports torch. :func:`build_extractor` builds the model (seeded, ``eval()``),
loads local weights strictly, and returns a callable ``(B, C, T) volts -> (B, D)``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.backbones.adapt import BackboneInputError, InputPlan, plan_input, prepare_input
from eegfm.backbones.checkpoints import BackboneWeightsError, folder_config, load_weights, weights_id
from eegfm.backbones.registry import BackboneSpec
from eegfm.hashing import canonical_json

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Backbone

__all__ = [
    "BackboneInputError", "BackboneWeightsError", "InputPlan", "build_extractor", "fingerprint",
    "load_weights", "plan_input", "prepare_input", "resolve_init_kwargs", "weights_id",
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
    forbidden = sorted(set(cfg.kwargs) & set(SIGNAL_KWARGS))
    if forbidden:
        raise BackboneInputError(
            f"backbone '{cfg.label}': kwargs {forbidden} are set by eegfm from the windows store; remove them"
        )
    folder = {k: v for k, v in folder_config(cfg.weights).items() if k not in SIGNAL_KWARGS}
    kwargs = {**spec.init_kwargs, **folder, **cfg.kwargs}
    kwargs.update(
        n_outputs=N_OUTPUTS,
        n_chans=len(plan.ch_names),
        n_times=plan.n_times_out,
        sfreq=plan.sfreq_out,
        chs_info=[{"ch_name": n, "loc": (plan.positions or {}).get(n)} for n in plan.ch_names],
    )
    return json.loads(canonical_json(kwargs))  # tuples -> lists: same settings, same fingerprint


def _library_versions(spec: BackboneSpec, plan: InputPlan) -> dict[str, str]:
    names = ["mne", "numpy", "scipy"] if spec.kind == "bandpower" else ["braindecode", "torch"]
    if plan.resampled and spec.kind != "bandpower":
        names += ["mne", "scipy"]  # the polyphase resampler
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not-installed"
    return out


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
        library versions. Device, batch size and threads are deliberately
        absent. Computing it never imports torch.
    """
    fp = {
        "backbone": spec.name,
        "kind": spec.kind,
        "model_class": spec.model_class,
        "init_kwargs": resolve_init_kwargs(spec, cfg, plan),
        "weights": "none" if spec.kind == "bandpower" else weights_id(cfg.weights, seed),
        "input": plan.record(),
        "scale": plan.scale,
        "pooling": spec.pooling,
        "embed_code_version": EMBED_CODE_VERSION,
        "versions": _library_versions(spec, plan),
    }
    return json.loads(canonical_json(fp))


def resolve_device(requested: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; an unavailable ``"cuda"`` is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("embedding.device is 'cuda' but torch sees no CUDA device; set it to 'auto' or 'cpu'")
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
    if spec.offline:
        raise BackboneInputError(f"backbone '{spec.name}' cannot be built offline: {spec.offline}")
    model = _build_model(spec, kwargs, seed)
    if cfg.weights:
        load_weights(model, cfg.weights)
    return TorchExtractor(model.eval().to(device), plan, spec.pooling, device)


def _build_model(spec: BackboneSpec, kwargs: dict[str, Any], seed: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing reaches the network at run time
    import torch
    from braindecode import models
    from braindecode.models.util import resolve_type_kwargs

    cls = getattr(models, spec.model_class)
    ctor = dict(kwargs)
    ctor["chs_info"] = [_ch_info(ch) for ch in kwargs["chs_info"]]
    resolve_type_kwargs(cls, ctor)  # e.g. "torch.nn.GELU" strings from a config.json -> classes
    torch.manual_seed(seed)
    try:
        return cls(**ctor)
    except TypeError as err:
        raise BackboneInputError(f"{spec.model_class}: {err}; check backbones[].kwargs") from err


def _ch_info(ch: dict[str, Any]) -> dict[str, Any]:
    """MNE-like channel dict: position in ``loc[:3]`` (NaN when unknown)."""
    loc = np.full(12, np.nan)
    if ch["loc"] is not None:
        loc[:3] = ch["loc"][:3]
        loc[3:] = 0.0
    return {"ch_name": ch["ch_name"], "loc": loc}


class TorchExtractor:
    """Frozen braindecode model + input preparation + pooling, as a numpy callable.

    Parameters
    ----------
    model
        A braindecode model in ``eval()`` mode on ``device``.
    plan
        The input plan.
    pooling
        ``"mean"`` (over every non-batch axis but the last), ``"cls"``,
        ``"as_is"`` or ``"flatten"``.
    device
        Torch device of the forward pass.
    """

    def __init__(self, model, plan: InputPlan, pooling: str, device: str):
        self.model, self.plan, self.pooling, self.device = model, plan, pooling, device
        self.dim: int | None = None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(prepare_input(X, self.plan)).to(self.device)
        with torch.inference_mode(), warnings.catch_warnings():
            # BIOT's STFT uses torch's default rectangular window on purpose (as pretrained)
            warnings.filterwarnings("ignore", message="A window was not provided", category=UserWarning)
            out = self.model(x, return_features=True)
        feats = pool(out, self.pooling).float().cpu().numpy()
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
    elif pooling != "as_is":
        raise ValueError(f"unknown pooling '{pooling}'")
    if feats.ndim != 2:
        raise ValueError(f"pooling '{pooling}' left features of shape {tuple(feats.shape)}, expected (batch, dim)")
    return feats

