"""From a registry spec and a windows store to a frozen feature extractor.

Three steps, the first two cheap and torch-free so that a cache lookup never
pays for importing or building a model:

1. :func:`plan_input` decides how windows are adapted to the backbone
   (resampling, channels, scale) and refuses window lengths the model cannot
   take, naming the config key to change.
2. :func:`fingerprint` collects everything that changes the embeddings
   (DESIGN §2) and nothing that does not (device, batch size, threads).
3. :func:`build_extractor` builds the model (seeded, ``eval()``), loads local
   weights strictly, and returns a callable ``(B, C, T) volts -> (B, D)``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import pickle
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.backbones.registry import BackboneSpec
from eegfm.hashing import canonical_json, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Backbone

logger = logging.getLogger(__name__)

#: Bump when a change here or in :mod:`eegfm.embed` changes embedding values.
EMBED_CODE_VERSION = "1"
#: Output units of the (unused) classification head the models are built with.
N_OUTPUTS = 2
#: Signal parameters eegfm derives from the windows; a config may not set them.
SIGNAL_KWARGS = ("n_outputs", "n_chans", "chs_info", "n_times", "input_window_seconds", "sfreq")
#: State-dict prefixes of braindecode classification heads (never needed for features).
HEAD_PREFIXES = ("final_layer.",)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")
_MAX_LISTED = 10


class BackboneInputError(ValueError):
    """Windows or settings a backbone cannot take; the message says what to change."""


class BackboneWeightsError(ValueError):
    """Weights that are missing, unsafe to load, or do not fit the model."""


# ----------------------------------------------------------------------------- input plan


@dataclass(frozen=True)
class InputPlan:
    """How windows are adapted to a backbone (recorded in the store and the report).

    Attributes
    ----------
    sfreq_in, sfreq_out
        Sampling rate of the windows and of the model input (Hz).
    n_times_in, n_times_out
        Samples per window before and after resampling.
    ch_names
        Channels fed to the model, in order.
    scale
        Factor from volts to the model's input unit.
    positions
        Channel positions (metres, head frame) by name, when the store has them.
    input_norm
        Per-window normalisation after scaling (see :class:`BackboneSpec`).
    """

    sfreq_in: float
    sfreq_out: float
    n_times_in: int
    n_times_out: int
    ch_names: list[str]
    scale: float
    positions: dict[str, list[float]] | None = None
    input_norm: str = "none"

    @property
    def resampled(self) -> bool:
        """Whether windows are resampled."""
        return self.sfreq_in != self.sfreq_out

    def record(self) -> dict[str, Any]:
        """The adaptation record stored with the embeddings and shown in the report."""
        return {
            "resampled_from": self.sfreq_in,
            "resampled_to": self.sfreq_out,
            "n_times_in": self.n_times_in,
            "n_times_out": self.n_times_out,
            "mapped": list(self.ch_names),  # passed through, in store order
            "aliased": {},
            "zero_filled": [],
            "interpolated": [],
            "dropped": [],
            "scale": self.scale,
            "input_norm": self.input_norm,
        }


def plan_input(spec: BackboneSpec, info: dict[str, Any], *, dataset: str | None = None) -> InputPlan:
    """Plan how the windows described by ``info`` are fed to ``spec``'s model.

    Parameters
    ----------
    spec
        The backbone's registry entry.
    info
        The windows store summary (``windows.json``): ``sfreq``, ``n_times``,
        ``ch_names``, ``units`` and optional ``positions``.
    dataset
        Dataset name, only to name the config key in error messages.

    Returns
    -------
    InputPlan

    Raises
    ------
    BackboneInputError
        If the window length does not fit the model after resampling (never
        padded or cropped silently); the message gives the lengths in seconds
        the backbone accepts and the config key to change.
    """
    units = info.get("units", "V")
    if units != "V":
        raise BackboneInputError(f"windows are in '{units}', expected volts ('V'); the scale to model units assumes volts")
    sfreq_in, n_in = float(info["sfreq"]), int(info["n_times"])
    sfreq_out = float(spec.sfreq) if spec.sfreq else sfreq_in
    n_out = _resampled_length(spec, n_in, sfreq_in, sfreq_out, dataset)
    _check_length(spec, n_in, sfreq_in, n_out, sfreq_out, dataset)
    ch_names = list(info["ch_names"])
    positions = info.get("positions") or None
    if positions:
        positions = {name: [float(v) for v in positions[name]] for name in ch_names if name in positions} or None
    return InputPlan(
        sfreq_in=sfreq_in,
        sfreq_out=sfreq_out,
        n_times_in=n_in,
        n_times_out=n_out,
        ch_names=ch_names,
        scale=float(spec.scale),
        positions=positions,
        input_norm=spec.input_norm,
    )


def _length_key(dataset: str | None) -> str:
    return f"datasets.{dataset or '<dataset>'}.windows.length_s"


def _resampled_length(spec: BackboneSpec, n_in: int, sfreq_in: float, sfreq_out: float, dataset: str | None) -> int:
    ratio = Fraction(sfreq_out).limit_denominator(10_000) / Fraction(sfreq_in).limit_denominator(10_000)
    exact = n_in * ratio
    if exact.denominator != 1:
        raise BackboneInputError(
            f"backbone '{spec.name}' runs at {sfreq_out:g} Hz, but windows of {n_in} samples at {sfreq_in:g} Hz "
            f"({n_in / sfreq_in:g} s) resample to {float(exact):.3f} samples, not a whole number; set "
            f"{_length_key(dataset)} so that length_s x {sfreq_out:g} is an integer"
        )
    return int(exact)


def _check_length(
    spec: BackboneSpec, n_in: int, sfreq_in: float, n_out: int, sfreq_out: float, dataset: str | None
) -> None:
    have = f"the windows are {n_in / sfreq_in:g} s ({n_in} samples at {sfreq_in:g} Hz, {n_out} at {sfreq_out:g} Hz)"
    key = _length_key(dataset)
    if spec.n_times_fixed is not None and n_out != spec.n_times_fixed:
        need_s = spec.n_times_fixed / sfreq_out
        raise BackboneInputError(
            f"backbone '{spec.name}' needs windows of exactly {need_s:g} s ({spec.n_times_fixed} samples at "
            f"{sfreq_out:g} Hz); {have}. Set {key}: {need_s:g}"
        )
    if n_out < spec.n_times_min:
        need_s = spec.n_times_min / sfreq_out
        raise BackboneInputError(
            f"backbone '{spec.name}' needs windows of at least {need_s:g} s ({spec.n_times_min} samples at "
            f"{sfreq_out:g} Hz); {have}. Set {key} to {need_s:g} or more"
        )
    m = spec.n_times_multiple
    if n_out % m:
        step = m / sfreq_out
        lower, upper = (n_out // m) * m / sfreq_out, (n_out // m + 1) * m / sfreq_out
        options = f"{lower:g} or {upper:g}" if lower > 0 else f"{upper:g}"
        raise BackboneInputError(
            f"backbone '{spec.name}' needs windows whose length is a multiple of {step:g} s ({m} samples at "
            f"{sfreq_out:g} Hz); {have}. Set {key} to {options} (windows are never padded or cropped silently)"
        )


# ----------------------------------------------------------------------------- fingerprint


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
    folder = _folder_config(cfg.weights)
    kwargs = {**spec.init_kwargs, **folder, **cfg.kwargs}
    kwargs.update(
        n_outputs=N_OUTPUTS,
        n_chans=len(plan.ch_names),
        n_times=plan.n_times_out,
        sfreq=plan.sfreq_out,
        chs_info=[{"ch_name": n, "loc": (plan.positions or {}).get(n)} for n in plan.ch_names],
    )
    return json.loads(canonical_json(kwargs))  # tuples -> lists: same settings, same fingerprint


def _folder_config(weights: str | None) -> dict[str, Any]:
    """Architecture kwargs from a ``from_pretrained`` folder's ``config.json`` (signal params dropped)."""
    config_file = Path(weights).expanduser() / "config.json" if weights else None
    if config_file is None or not config_file.is_file():
        return {}
    config = json.loads(config_file.read_text())
    return {k: v for k, v in config.items() if k not in SIGNAL_KWARGS and k != "braindecode_version"}


def weights_id(weights: str | None, seed: int) -> str:
    """``sha256:<hex>`` of a weights file, ``sha256-dir:<hex>`` over a folder's files, else ``random-init:<seed>``."""
    if not weights:
        return f"random-init:{seed}"
    path = Path(weights).expanduser()
    if path.is_dir():
        digest = hashlib.sha256()
        for file in _folder_files(path):
            digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
        return f"sha256-dir:{digest.hexdigest()}"
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise BackboneWeightsError(
                f"weights {path}: unsupported file type; expected one of {', '.join(WEIGHT_SUFFIXES)} or a folder"
            )
        return f"sha256:{sha256_file(path)}"
    raise BackboneWeightsError(f"weights {path} do not exist (backbones[].weights is a local path; run prefetch first)")


def _folder_files(path: Path) -> list[Path]:
    """Files of a weights folder, sorted; hidden entries (e.g. a hub ``.cache``) are skipped."""
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


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


# ----------------------------------------------------------------------------- input preparation


def prepare_input(X: np.ndarray, plan: InputPlan, dtype: Any = np.float32) -> np.ndarray:
    """Resample (polyphase), scale and normalise windows in volts to the model's input.

    Each window is processed independently, so the result does not depend on
    how windows are batched.
    """
    X = np.asarray(X)
    expected = (len(plan.ch_names), plan.n_times_in)
    if X.ndim != 3 or X.shape[1:] != expected:
        raise ValueError(f"windows of shape {X.shape} do not match the plan (batch, {expected[0]}, {expected[1]})")
    x = X.astype(np.float64)
    if plan.resampled:
        from mne.filter import resample

        x = resample(x, up=plan.sfreq_out, down=plan.sfreq_in, method="polyphase", verbose="error")
    x *= plan.scale
    if plan.input_norm == "channel_q95":
        x /= np.quantile(np.abs(x), 0.95, axis=-1, method="linear", keepdims=True) + 1e-8
    return x.astype(dtype)


# ----------------------------------------------------------------------------- model building


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


# ----------------------------------------------------------------------------- weights


def load_weights(model, weights: str) -> None:
    """Load local weights into ``model`` strictly (classification head keys ignored).

    Parameters
    ----------
    model
        A braindecode model.
    weights
        A ``.safetensors`` file, a ``.pth/.pt/.ckpt/.bin`` file (read with
        ``torch.load(weights_only=True)``), or a ``from_pretrained`` folder
        (``model.safetensors`` or ``pytorch_model.bin`` + ``config.json``).

    Raises
    ------
    BackboneWeightsError
        Naming the missing, unexpected and mis-shaped keys, or refusing a file
        that needs pickle code execution.
    """
    path = _weights_file(Path(weights).expanduser())
    state = _read_state_dict(path)
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    missing = [k for k in expected if not k.startswith(HEAD_PREFIXES) and k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = [f"{label}: {_listing(keys)}" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)) if keys]
        raise BackboneWeightsError(
            f"weights {path} do not fit {type(model).__name__} built for these windows — " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=False)  # strictness checked above, head excluded
    logger.info("loaded %d tensors from %s", len(state), path)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" (and {len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def _weights_file(path: Path) -> Path:
    """The weights file itself, or the one inside a ``from_pretrained`` folder."""
    if not path.exists():
        raise BackboneWeightsError(f"weights {path} do not exist")
    if path.is_file():
        return path
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return path / name
    candidates = [p for p in _folder_files(path) if p.suffix in WEIGHT_SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    raise BackboneWeightsError(
        f"weights folder {path}: expected model.safetensors, pytorch_model.bin or exactly one weights file; "
        f"found {[p.name for p in candidates]}"
    )


def _read_state_dict(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is long; keep the line naming the offending global
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0] if lines else "")
        reason = reason.split(". Please use")[0]
        raise BackboneWeightsError(
            f"weights {path} need pickle code execution to load, which eegfm refuses ({reason}); "
            "re-save them as a plain state dict, ideally .safetensors"
        ) from None
    return _unwrap_state_dict(obj, path)


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, Any]:
    """Accept a plain state dict or the common ``{"state_dict": ...}`` wrappers; strip DataParallel's ``module.``."""
    import torch

    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model_state_dict", "model", "module"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneWeightsError(f"weights {path} hold no state dict of tensors (found {type(obj).__name__})")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------- extraction


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
