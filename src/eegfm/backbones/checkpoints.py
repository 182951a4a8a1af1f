"""Pretrained weights from local paths: identity (sha256) and strict, safe loading.

Only local files are read: a ``.safetensors`` file, a ``.pth/.pt/.ckpt/.bin``
state dict read with ``torch.load(weights_only=True)`` (a pickle that needs
code execution is refused), or a ``from_pretrained`` folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

from eegfm.hashing import sha256_file

logger = logging.getLogger(__name__)

#: State-dict prefixes of braindecode classification heads (never needed for features).
HEAD_PREFIXES = ("final_layer.",)


WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


_MAX_LISTED = 10


class BackboneWeightsError(ValueError):
    """Weights that are missing, unsafe to load, or do not fit the model."""


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


def folder_config(weights: str | None) -> dict[str, Any]:
    """Architecture kwargs from a ``from_pretrained`` folder's ``config.json`` (empty for a file)."""
    config_file = Path(weights).expanduser() / "config.json" if weights else None
    if config_file is None or not config_file.is_file():
        return {}
    config = json.loads(config_file.read_text())
    return {k: v for k, v in config.items() if k != "braindecode_version"}


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

