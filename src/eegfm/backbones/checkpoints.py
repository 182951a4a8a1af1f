"""Pretrained weights from local paths: identity, safe loading, key remapping and an early fit check.

Only local files are read: a ``.safetensors`` file, a ``.pth/.pt/.ckpt/.bin``
state dict read with ``torch.load(weights_only=True)`` (a pickle that needs
code execution is refused), or a ``from_pretrained`` folder (``config.json``
+ ``model.safetensors``, as braindecode's hub mixin writes it).

- :func:`weights_id` is the weights' sha256, which enters the backbone
  fingerprint (a change of weights changes the cache key).
- :func:`load_weights` loads strictly into a built model, renaming the keys
  of official (non-braindecode) releases with the family's ``key_remap``.
- :func:`read_shapes` and :func:`compare_shapes` serve the parse-time check
  (:mod:`eegfm.backbones.weights_check`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from eegfm.hashing import sha256_file

logger = logging.getLogger(__name__)

#: State-dict prefixes of braindecode classification heads (never needed for features).
HEAD_PREFIXES = ("final_layer.",)

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")

#: ``(regex, replacement)`` pairs; a ``None`` replacement drops the key.
KeyRemap = tuple[tuple[str, str | None], ...]

_MAX_LISTED = 10
_V = TypeVar("_V")


class BackboneWeightsError(ValueError):
    """Weights that are missing, unsafe to load, or do not fit the model."""


# ----------------------------------------------------------------------------- identity


def weights_id(weights: str | None, seed: int) -> str:
    """``sha256:<hex>`` of a weights file, ``sha256-dir:<hex>`` over a folder's files, else ``random-init:<seed>``."""
    if not weights:
        return f"random-init:{seed}"
    path = Path(weights).expanduser()
    if path.is_dir():
        digest = hashlib.sha256()
        for file in folder_files(path):
            digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
        return f"sha256-dir:{digest.hexdigest()}"
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise BackboneWeightsError(
                f"weights {path}: unsupported file type; expected one of {', '.join(WEIGHT_SUFFIXES)} or a folder"
            )
        return f"sha256:{sha256_file(path)}"
    raise BackboneWeightsError(f"weights {path} do not exist (backbones[].weights is a local path; run prefetch first)")


def weights_files(weights: str | None) -> list[Path]:
    """The files a backbone's local weights are read from (the file, or a folder's files); none without weights.

    The workflow makes them inputs of the jobs that load them, so replacing
    one re-runs those jobs (as it changes :func:`weights_id`).
    """
    if not weights:
        return []
    path = Path(weights).expanduser()
    return folder_files(path) if path.is_dir() else [path]


def folder_files(path: Path) -> list[Path]:
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


# ----------------------------------------------------------------------------- key remapping


def remap_keys(state: Mapping[str, _V], table: KeyRemap) -> tuple[dict[str, _V], list[tuple[int, str, str | None]]]:
    """Rename (or drop) state-dict keys with a ``key_remap`` table.

    Parameters
    ----------
    state
        Key -> tensor (or shape) mapping.
    table
        ``(regex, replacement)`` pairs applied in order to each key with
        :func:`re.sub` (first match only); a ``None`` replacement drops the key.

    Returns
    -------
    remapped : dict
        The renamed mapping, in the original order.
    changes : list of (rule index, old key, new key or None)
        Every key a rule changed or dropped (the last rule that touched it).

    Raises
    ------
    BackboneWeightsError
        If two keys end up with the same name.
    """
    out: dict[str, _V] = {}
    changes: list[tuple[int, str, str | None]] = []
    sources: dict[str, str] = {}
    for key, value in state.items():
        new: str | None = key
        last_rule = -1
        for i, (pattern, repl) in enumerate(table):
            if new is not None and re.search(pattern, new):
                new, last_rule = (None if repl is None else re.sub(pattern, repl, new, count=1)), i
        if new != key:
            changes.append((last_rule, key, new))
        if new is None:
            continue
        if new in out:
            raise BackboneWeightsError(f"key remapping maps both '{sources[new]}' and '{key}' to '{new}'")
        out[new], sources[new] = value, key
    return out, changes


def _log_remap(changes: list[tuple[int, str, str | None]], table: KeyRemap, path: Path) -> None:
    """One log line per remapping rule: how many keys it renamed or dropped, with an example."""
    if not changes:
        return
    logger.info("weights %s: %d keys remapped to braindecode names", path, len(changes))
    for i, (pattern, repl) in enumerate(table):
        hits = [(old, new) for rule, old, new in changes if rule == i]
        if hits:
            old, new = hits[0]
            action = "dropped" if repl is None else f"-> {repl!r}"
            logger.info("  %r %s: %d keys, e.g. %s -> %s", pattern, action, len(hits), old, new or "(dropped)")
    for _, old, new in changes:
        logger.debug("  %s -> %s", old, new or "(dropped)")


# ----------------------------------------------------------------------------- loading


def load_weights(model, weights: str, key_remap: KeyRemap = (), *, backbone: str | None = None) -> None:
    """Load local weights into ``model`` strictly (classification head keys ignored).

    Parameters
    ----------
    model
        A braindecode model.
    weights
        A ``.safetensors`` file, a ``.pth/.pt/.ckpt/.bin`` file (read with
        ``torch.load(weights_only=True)``), or a ``from_pretrained`` folder
        (``model.safetensors`` or ``pytorch_model.bin`` + ``config.json``).
    key_remap
        Renames applied to a single file's keys (official releases; the
        family's ``key_remap``). Folders are braindecode's own layout and are
        never remapped.
    backbone
        Names the backbone in the error raised for a damaged file (default:
        the model's class).

    Raises
    ------
    BackboneWeightsError
        Naming the missing, unexpected and mis-shaped keys, or refusing a file
        that needs pickle code execution.
    """
    source = Path(weights).expanduser()
    path = weights_file(source)
    state = _read_state_dict(path, backbone=backbone or type(model).__name__)
    if source.is_file():
        state, changes = remap_keys(state, key_remap)
        _log_remap(changes, key_remap, path)
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    problems = compare_shapes(shapes(expected), shapes(state))
    if problems:
        raise BackboneWeightsError(
            f"weights {path} do not fit {type(model).__name__} built for these windows ({_model_input(model)}) — "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=False)  # strictness checked above, head excluded
    logger.info("loaded %d tensors from %s", len(state), path)


def shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a state dict."""
    return {k: tuple(v.shape) for k, v in state.items()}


def compare_shapes(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    input_dependent: frozenset[str] = frozenset(),
) -> list[str]:
    """``"missing keys: ..."``, ``"unexpected keys: ..."``, ``"shape mismatches: ..."`` parts (empty if it fits).

    Head keys are ignored; ``input_dependent`` keys may be absent from either
    side and their shapes are not compared.
    """
    expected = {k: v for k, v in expected.items() if not k.startswith(HEAD_PREFIXES)}
    found = {k: v for k, v in found.items() if not k.startswith(HEAD_PREFIXES)}
    missing = [k for k in expected if k not in found and k not in input_dependent]
    unexpected = sorted((k for k in found if k not in expected and k not in input_dependent), key=_natural)
    mismatched = [
        f"{k} {v} vs model {expected[k]}"
        for k, v in found.items()
        if k in expected and k not in input_dependent and v != expected[k]
    ]
    return [
        f"{label}: {listing(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if keys
    ]


def _natural(key: str) -> list:
    """Sort key putting ``layers.2`` before ``layers.10`` (safetensors files store keys sorted as text)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _model_input(model) -> str:
    """``19 channels, 800 samples at 200 Hz`` for a braindecode model (best effort)."""
    try:
        return f"{model.n_chans} channels, {model.n_times} samples at {model.sfreq:g} Hz"
    except Exception:  # noqa: BLE001 — a description only; never hide the real error
        return "input unknown"


def listing(keys: list[str]) -> str:
    """Up to ten keys, then how many more."""
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" (and {len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def weights_file(path: Path) -> Path:
    """The weights file itself, or the one inside a ``from_pretrained`` folder."""
    if not path.exists():
        raise BackboneWeightsError(
            f"weights {path} do not exist (backbones[].weights is a local path; run prefetch first)"
        )
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise BackboneWeightsError(
                f"weights {path}: unsupported file type; expected one of {', '.join(WEIGHT_SUFFIXES)} or a folder"
            )
        return path
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return path / name
    candidates = [p for p in folder_files(path) if p.suffix in WEIGHT_SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    raise BackboneWeightsError(
        f"weights folder {path}: expected model.safetensors, pytorch_model.bin or exactly one weights file; "
        f"found {[p.name for p in candidates]}"
    )


#: What torch's weights-only unpickler says when a real pickle needs code it refuses (a pickled class or function);
#: any other unpickling failure ("Unsupported operand 60": bytes that are no pickle, e.g. an HTML error page) is a
#: damaged or wrong file.
_NEEDS_CODE = ("GLOBAL", "add_safe_globals")


def _unpickler_reason(err: pickle.UnpicklingError) -> str:
    """The line of torch's long unpickling message that says what went wrong."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else "").split(". Please use")[0]


@contextlib.contextmanager
def _readable(path: Path, backbone: str | None):
    """Turn a reader's failure on a damaged file (truncated, not a weights file) into an error naming it."""
    import struct

    from safetensors import SafetensorError

    of = f" of backbone {backbone}" if backbone else ""
    try:
        yield
    except BackboneWeightsError:
        raise
    except pickle.UnpicklingError as err:
        reason = _unpickler_reason(err)
        if any(marker in reason for marker in _NEEDS_CODE):
            raise BackboneWeightsError(
                f"weights {path}{of} need pickle code execution to load, which eegfm refuses ({reason}); "
                "re-save them as a plain state dict, ideally .safetensors"
            ) from None
        raise _unreadable(path, of, f"UnpicklingError: {reason}") from None
    # a reader fed bytes that are not what it expects fails in many ways (KeyError/struct.error from the unpickler)
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError, KeyError, IndexError, struct.error) as err:
        detail = str(err).split(". ")[0].splitlines()[0] if str(err).strip() else ""
        raise _unreadable(path, of, f"{type(err).__name__}: {detail}" if detail else type(err).__name__) from None


def _unreadable(path: Path, of: str, reason: str) -> BackboneWeightsError:
    return BackboneWeightsError(
        f"weights {path}{of} cannot be read: the file is truncated or corrupt ({path.stat().st_size} bytes; "
        f"{reason}), e.g. an interrupted download or copy; copy or download it again (`eegfm prefetch` for "
        "registry weights)"
    )


def _read_state_dict(path: Path, device: str = "cpu", *, backbone: str | None = None) -> dict[str, Any]:
    """Tensors of a weights file; ``device="meta"`` reads names and shapes only (no tensor data).

    ``backbone`` names the model in the error raised for a damaged file.
    """
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        with _readable(path, backbone):
            return load_file(str(path), device="cpu")
    with _readable(path, backbone):
        obj = torch.load(path, map_location=device, weights_only=True)
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


def read_shapes(path: Path, *, backbone: str | None = None) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a weights file without reading its tensors.

    A ``.safetensors`` header is read with ``safe_open(framework="numpy")``
    (which also checks that the file holds every byte the header promises);
    a pickle state dict is loaded with ``weights_only=True`` onto the
    ``meta`` device (shapes only, no memory for the data). ``backbone``
    names the model in the error raised for a damaged file.
    """
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with _readable(path, backbone), safe_open(str(path), framework="numpy") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return shapes(_read_state_dict(path, device="meta", backbone=backbone))
