"""Pretrained weights from local paths: identity, safe loading, key remapping and an early fit check.

Only local files are read: a ``.safetensors`` file, a ``.pth/.pt/.ckpt/.bin``
state dict read with ``torch.load(weights_only=True)`` (a pickle that needs
code execution is refused), or a ``from_pretrained`` folder (``config.json``
+ ``model.safetensors``, as braindecode's hub mixin writes it).

- :func:`weights_id` is the weights' sha256, which enters the backbone
  fingerprint (a change of weights changes the cache key).
- :func:`load_weights` loads strictly into a built model, renaming the keys
  of official (non-braindecode) releases with the registry's ``key_remap``.
- :func:`check_weights` compares a checkpoint's tensor names and shapes with
  the model built on the ``meta`` device at a nominal input, at workflow
  parse time, so a checkpoint that cannot fit fails before any job runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import math
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from eegfm.hashing import sha256_file, sha256_json

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.backbones.adapt import InputPlan
    from eegfm.backbones.registry import BackboneSpec
    from eegfm.config import Backbone, Config

logger = logging.getLogger(__name__)

#: State-dict prefixes of braindecode classification heads (never needed for features).
HEAD_PREFIXES = ("final_layer.",)

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")

#: ``(regex, replacement)`` pairs; a ``None`` replacement drops the key.
KeyRemap = tuple[tuple[str, str | None], ...]

#: The 19 channels of the 10-20 system: the nominal input of the parse-time check.
NOMINAL_CHANNELS = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
                    "P7", "P3", "Pz", "P4", "P8", "O1", "O2")  # fmt: skip
#: Window length of the nominal input when the registry gives none.
NOMINAL_SECONDS = 4.0
#: Bump when :func:`check_weights` changes what it accepts (invalidates its cache).
CHECK_VERSION = "1"

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


def registry_key_remap(model_class: str) -> KeyRemap:
    """The ``key_remap`` registered for a braindecode class (empty if none)."""
    from eegfm.backbones.registry import REGISTRY

    return next(
        (spec.key_remap for spec in REGISTRY.values() if spec.model_class == model_class and spec.key_remap), ()
    )


# ----------------------------------------------------------------------------- loading


def load_weights(model, weights: str, key_remap: KeyRemap | None = None) -> None:
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
        Renames applied to a single file's keys (official releases); ``None``
        takes the registry's table for the model's class. Folders are
        braindecode's own layout and are never remapped.

    Raises
    ------
    BackboneWeightsError
        Naming the missing, unexpected and mis-shaped keys, or refusing a file
        that needs pickle code execution.
    """
    source = Path(weights).expanduser()
    path = _weights_file(source)
    state = _read_state_dict(path, backbone=_backbone_of(model))
    if source.is_file():
        table = registry_key_remap(type(model).__name__) if key_remap is None else key_remap
        state, changes = remap_keys(state, table)
        _log_remap(changes, table, path)
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    problems = _compare(_shapes(expected), _shapes(state))
    if problems:
        raise BackboneWeightsError(
            f"weights {path} do not fit {type(model).__name__} built for these windows ({_model_input(model)}) — "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=False)  # strictness checked above, head excluded
    logger.info("loaded %d tensors from %s", len(state), path)


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _compare(
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
        f"{label}: {_listing(keys)}"
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


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" (and {len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def _weights_file(path: Path) -> Path:
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
    candidates = [p for p in _folder_files(path) if p.suffix in WEIGHT_SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    raise BackboneWeightsError(
        f"weights folder {path}: expected model.safetensors, pytorch_model.bin or exactly one weights file; "
        f"found {[p.name for p in candidates]}"
    )


def _backbone_of(model) -> str:
    """``cbramod (CBraMod)``: the registry names of a built model's class, for messages."""
    from eegfm.backbones.registry import REGISTRY

    cls = type(model).__name__
    names = sorted(name for name, spec in REGISTRY.items() if spec.model_class == cls)
    return f"{'/'.join(names)} ({cls})" if names else cls


@contextlib.contextmanager
def _readable(path: Path, backbone: str | None):
    """Turn a reader's failure on a damaged file (truncated, not a weights file) into an error naming it."""
    from safetensors import SafetensorError

    try:
        yield
    except BackboneWeightsError:
        raise
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError) as err:
        detail = str(err).split(". ")[0].splitlines()[0] if str(err).strip() else ""
        reason = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
        raise BackboneWeightsError(
            f"weights {path}{f' of backbone {backbone}' if backbone else ''} cannot be read: the file is truncated "
            f"or corrupt ({path.stat().st_size} bytes; {reason}), e.g. an interrupted download "
            "or copy; copy or download it again (`eegfm prefetch` for registry weights)"
        ) from None


def _read_state_dict(path: Path, device: str = "cpu", *, backbone: str | None = None) -> dict[str, Any]:
    """Tensors of a weights file; ``device="meta"`` reads names and shapes only (no tensor data).

    ``backbone`` names the model in the error raised for a damaged file.
    """
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        with _readable(path, backbone):
            return load_file(str(path), device="cpu")
    try:
        with _readable(path, backbone):
            obj = torch.load(path, map_location=device, weights_only=True)
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
    return _shapes(_read_state_dict(path, device="meta", backbone=backbone))


# ----------------------------------------------------------------------------- parse-time check


def nominal_recordings(spec: BackboneSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two windows-store summaries (``windows.json`` style) the model is built for at parse time.

    The first is the nominal recording: the 19 channels of the 10-20 system
    at the native rate, windows of the registry's ``nominal_seconds`` (else
    4 s) adjusted to the length rules. The second lacks Fz and Pz and has
    longer windows (when the length is not fixed). Both go through
    :func:`~eegfm.backbones.adapt.plan_input` as real windows would, so a
    model fed a fixed channel vocabulary or bipolar montage gets the same
    channels from both; tensors whose shape still differs between the two
    builds depend on the input and are left to the embedding job.
    """
    sfreq = float(spec.sfreq or 200.0)
    seconds = getattr(spec, "nominal_seconds", None) or NOMINAL_SECONDS
    n_a = _valid_length(spec, round(seconds * sfreq))
    n_b = n_a if spec.n_times_fixed else _valid_length(spec, n_a + max(1, round(sfreq)))
    fewer = [c for c in NOMINAL_CHANNELS if c not in ("Fz", "Pz")]
    return (
        {"sfreq": sfreq, "n_times": n_a, "ch_names": list(NOMINAL_CHANNELS), "units": "V"},
        {"sfreq": sfreq, "n_times": n_b, "ch_names": fewer, "units": "V"},
    )


def _valid_length(spec: BackboneSpec, n: int) -> int:
    if spec.n_times_fixed:
        return spec.n_times_fixed
    m = max(1, spec.n_times_multiple)
    n = max(n, spec.n_times_min)
    return math.ceil(n / m) * m


def _nominal_plan(spec: BackboneSpec, cfg: Backbone, info: dict[str, Any]) -> InputPlan:
    """The job's input plan for a nominal recording (channels a vocabulary lacks are zero-filled)."""
    from eegfm.backbones.adapt import plan_input

    return plan_input(spec, info, cfg=cfg.model_copy(update={"missing_channels": "zero", "length_policy": "error"}))


def _reference_shapes(spec: BackboneSpec, cfg: Backbone, plan: InputPlan) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of the model the job would build for ``plan``, built on the meta device."""
    import torch

    from eegfm.backbones.build import _build_model, resolve_asset, resolve_init_kwargs

    kwargs, asset = resolve_init_kwargs(spec, cfg, plan), resolve_asset(spec, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. BIOT's "only trained at 200 Hz": irrelevant for shapes
        try:
            with torch.device("meta"):  # no memory, no initialisation compute
                model = _build_model(spec, kwargs, 0, asset=asset)
        except (NotImplementedError, RuntimeError) as err:  # an __init__ that needs real values (.item())
            logger.info("%s: meta-device build failed (%s); building on CPU", spec.model_class, err)
            model = _build_model(spec, kwargs, 0, asset=asset)
    return _shapes(model.state_dict())


def _describe(plan: InputPlan) -> str:
    """``16 channels (Fp1-F7…P4-O2) from a 19-channel 10-20 recording, 800 samples (4 s at 200 Hz)``."""
    names, n_in = plan.ch_names, len(getattr(plan, "ch_names_in", None) or plan.ch_names)
    channels = f"{len(names)} channels ({names[0]}…{names[-1]}) from a {n_in}-channel 10-20 recording"
    return f"{channels}, {plan.n_times_out} samples ({plan.n_times_out / plan.sfreq_out:g} s at {plan.sfreq_out:g} Hz)"


def _cache_marker(spec: BackboneSpec, cfg: Backbone, cache_dir: Path | None) -> Path | None:
    """A file whose existence means this exact check passed (weights files by path, size and mtime)."""
    if cache_dir is None:
        return None
    source = Path(cfg.weights).expanduser().resolve()
    files = _folder_files(source) if source.is_dir() else [source]
    versions = {}
    for name in ("braindecode", "torch"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    key = sha256_json({
        "check": CHECK_VERSION, "spec": asdict(spec), "weights": cfg.weights, "kwargs": cfg.kwargs,
        "files": [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files], "versions": versions,
    })  # fmt: skip
    return Path(cache_dir) / f"{key}.ok"


def check_weights(spec: BackboneSpec, cfg: Backbone, *, cache_dir: str | Path | None = None) -> None:
    """Check, without the dataset, that ``cfg.weights`` can fit ``spec``'s model; meant for parse time.

    The model is built as the embedding job would build it (registry kwargs
    < weights folder ``config.json`` < ``backbones[].kwargs``) on the ``meta``
    device for two nominal recordings (see :func:`nominal_recordings`); the
    checkpoint's tensor names and shapes (read from the file header, after
    the registry's ``key_remap`` for single files) must match, except the
    classification head and tensors whose shape depends on the input, which
    the job checks against the real windows.

    Parameters
    ----------
    spec
        Registry entry.
    cfg
        The config's backbone entry; nothing to check when ``weights`` is null.
    cache_dir
        Optional folder of markers of passed checks, so that re-parsing the
        workflow skips the torch import; a marker is keyed by the spec, the
        kwargs and each weights file's path, size and mtime.

    Raises
    ------
    BackboneWeightsError
        Weights that are missing, unsafe, of the wrong kind for the backbone,
        or whose keys/shapes cannot fit; the message names the missing,
        unexpected and mis-shaped keys and the input the model was built for.
    BackboneInputError
        ``backbones[].kwargs`` the model does not accept.
    """
    if not cfg.weights:
        return
    if spec.kind != "braindecode":
        raise BackboneWeightsError(f"backbone '{cfg.label}': {spec.kind} has no weights; remove backbones[].weights")
    source = Path(cfg.weights).expanduser()
    path = _weights_file(source)
    if spec.offline:
        logger.warning("backbone '%s': cannot be built offline (%s); weights not checked", cfg.label, spec.offline)
        return
    marker = _cache_marker(spec, cfg, cache_dir)
    if marker is not None and marker.exists():
        return
    found = read_shapes(path, backbone=f"'{cfg.label}'")
    if source.is_file():
        found, _ = remap_keys(found, spec.key_remap)
    info_a, info_b = nominal_recordings(spec)
    plan = _nominal_plan(spec, cfg, info_a)
    expected = _reference_shapes(spec, cfg, plan)
    other = _reference_shapes(spec, cfg, _nominal_plan(spec, cfg, info_b))
    input_dependent = frozenset(k for k in expected.keys() | other.keys() if expected.get(k) != other.get(k))
    problems = _compare(expected, found, input_dependent)
    if problems:
        later = sorted(k for k in input_dependent if not k.startswith(HEAD_PREFIXES))
        note = (
            f". Not checked here (shape depends on channels/length; checked when embedding): {_listing(later)}"
            if later
            else ""
        )
        raise BackboneWeightsError(
            f"backbone '{cfg.label}': weights {path} do not fit {spec.model_class} as configured "
            f"(backbones[].kwargs {cfg.kwargs or '{}'}), built for the nominal input of {_describe(plan)} — "
            + "; ".join(problems)
            + note
        )
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def check_config_weights(config: Config, *, cache_dir: str | Path | None = None) -> None:
    """:func:`check_weights` for every backbone of a config; one error listing every problem.

    A backbone whose check cannot import torch/braindecode here is skipped
    with a warning (its embedding job still loads the weights strictly).

    Raises
    ------
    BackboneWeightsError
        One line per backbone whose weights (or kwargs) do not fit.
    """
    from eegfm.backbones.registry import get_spec

    errors = []
    for i, backbone in enumerate(config.backbones):
        try:
            check_weights(get_spec(backbone.name), backbone, cache_dir=cache_dir)
        except ImportError as err:  # e.g. a Snakemake env without torch: the embed job still checks
            logger.warning("backbones[%d] (%s): weights not checked at parse time (%s)", i, backbone.label, err)
        except ValueError as err:  # BackboneWeightsError, BackboneInputError
            errors.append(
                f"  backbones[{i}] ({backbone.label}): {str(err).removeprefix(f'backbone {backbone.label!r}: ')}"
            )
    if errors:
        raise BackboneWeightsError("weights that cannot be used (checked before any job runs):\n" + "\n".join(errors))
