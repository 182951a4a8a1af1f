"""From a registry spec and an input plan to a frozen feature extractor.

:func:`build_extractor` builds the model (seeded, ``eval()``), loads local
weights strictly, and returns a callable ``(B, C, T) volts -> (B, D)`` that
reads features where the family says
(:class:`~eegfm.backbones.features.FeatureModel`); a feature baseline builds
its own extractor. :func:`build_model` is the one place a braindecode class
is constructed: offline, seeded, with construction-time files from local paths.
:func:`describe` builds a backbone at its nominal input for ``eegfm backbones``.

What enters the cache key is :mod:`eegfm.backbones.fingerprint`'s business.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.backbones.adapt import BackboneInputError, InputPlan, plan_input, prepare_input
from eegfm.backbones.checkpoints import load_weights
from eegfm.backbones.family import AssetSource
from eegfm.backbones.spec import BackboneSpec, nominal_windows

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Backbone

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def hub_offline():
    """Refuse every Hugging Face Hub request while the block runs, then restore the caller's setting.

    braindecode classes may fetch files at construction; eegfm supplies
    those from local paths, so a request at run time is a bug (and without
    this, an offline machine spends tens of seconds in retries). The hub
    reads ``HF_HUB_OFFLINE`` once, at import, so the switch is its module
    constant, not the environment of the caller's process.
    """
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


@contextlib.contextmanager
def quiet(spec: BackboneSpec):
    """Silence the warnings the family declares irrelevant to how eegfm uses the model."""
    with warnings.catch_warnings():
        for message in spec.family.quiet:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def build_model(spec: BackboneSpec, kwargs: dict[str, Any], seed: int, asset: AssetSource | None = None):
    """The braindecode model for resolved ``kwargs`` (see ``spec.family.init_kwargs``), seeded.

    Construction-time files come from ``asset``; ``asset=None`` for a model
    that needs one stands in for it as a random init would (REVE: a
    position bank from MNE's template). Nothing reaches the network.

    Raises
    ------
    BackboneInputError
        Constructor arguments the class refuses.
    """
    import torch
    from braindecode import models
    from braindecode.models.util import resolve_type_kwargs

    cls = getattr(models, spec.model_class)
    ctor = dict(kwargs)
    if kwargs.get("chs_info") is not None:
        ctor["chs_info"] = [_ch_info(ch) for ch in kwargs["chs_info"]]
    resolve_type_kwargs(cls, ctor)  # e.g. "torch.nn.GELU" strings from a config.json -> classes
    torch.manual_seed(seed)
    file_in_place = spec.family.asset.in_place(asset) if spec.family.asset is not None else contextlib.nullcontext()
    try:
        with hub_offline(), file_in_place, quiet(spec):
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


def build_feature_model(spec: BackboneSpec, cfg: Backbone, plan: InputPlan, seed: int, *, pretrained: bool = True):
    """The braindecode model wrapped as a :class:`~eegfm.backbones.features.FeatureModel` (train mode).

    Parameters
    ----------
    spec, cfg, plan, seed
        As for :func:`~eegfm.backbones.fingerprint.fingerprint`.
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
    family = spec.family
    model = build_model(spec, family.init_kwargs(spec, cfg, plan), seed, asset=family.resolve_asset(spec, cfg))
    if cfg.weights and pretrained:
        load_weights(model, cfg.weights, family.key_remap, backbone=f"{spec.name} ({spec.model_class})")
    from eegfm.backbones.features import FeatureModel

    return FeatureModel(model, spec, plan.ch_names, pooling=cfg.pooling)


def build_extractor(spec: BackboneSpec, cfg: Backbone, plan: InputPlan, seed: int, device: str = "cpu"):
    """Build a frozen feature extractor.

    Parameters
    ----------
    spec, cfg, plan, seed
        As for :func:`~eegfm.backbones.fingerprint.fingerprint`.
    device
        Torch device of the forward pass (ignored by the feature baselines).

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
    if spec.kind != "braindecode":
        return spec.family.extractor(plan, spec.family.init_kwargs(spec, cfg, plan))
    features = build_feature_model(spec, cfg, plan, seed).eval().to(device)
    return TorchExtractor(features, spec, plan, device)


class TorchExtractor:
    """Frozen braindecode model + input preparation + feature read-out, as a numpy callable.

    Parameters
    ----------
    features
        A :class:`~eegfm.backbones.features.FeatureModel` (model in ``eval()``
        mode) on ``device``.
    spec
        Its registry entry (warnings its family silences).
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

    def __init__(self, features, spec: BackboneSpec, plan: InputPlan, device: str):
        self.features, self.spec, self.plan, self.device = features, spec, plan, device
        self.model = features.model
        self.dim: int | None = None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(prepare_input(X, self.plan)).to(self.device)
        with torch.inference_mode(), quiet(self.spec):
            feats = self.features(x).float().cpu().numpy()
        self.dim = feats.shape[1]
        return feats


def describe(spec: BackboneSpec, seed: int = 0) -> dict[str, int]:
    """Size of ``spec``'s neural backbone at its nominal input, by building and running it.

    The nominal input is :func:`~eegfm.backbones.spec.nominal_windows`: the
    19 channels of the 10-20 system (positions from MNE's template) at the
    native rate, windows of ``spec.nominal_seconds``.

    Returns
    -------
    dict
        ``params``: parameters of the model without its classification head
        (``spec.family.head_module``); ``dim``: the embedding size.

    Raises
    ------
    BackboneInputError
        If the backbone is not a braindecode model or cannot be built offline.
    """
    from eegfm.config import Backbone

    if spec.kind != "braindecode":
        raise BackboneInputError(f"backbone '{spec.name}' is not a neural network")
    info = nominal_windows(spec)
    cfg = Backbone(name=spec.name)
    extractor = build_extractor(spec, cfg, plan_input(spec, info, cfg=cfg), seed)
    X = np.random.default_rng(seed).normal(scale=1e-5, size=(2, len(info["ch_names"]), info["n_times"]))
    dim = extractor(X.astype(np.float32)).shape[1]
    head = spec.family.head_module
    params = sum(
        p.numel() for name, p in extractor.model.named_parameters() if name != head and not name.startswith(head + ".")
    )
    return {"params": int(params), "dim": int(dim)}
