"""The parse-time weights check: a checkpoint that cannot fit its model fails before any job runs.

:func:`check_weights` compares a checkpoint's tensor names and shapes (read
from the file header, after the family's ``key_remap``) with the model built
on the ``meta`` device for two nominal recordings, without the dataset;
:func:`check_config_weights` runs it for every backbone of a config.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegfm.backbones.adapt import InputPlan, plan_input
from eegfm.backbones.build import build_model
from eegfm.backbones.checkpoints import (
    HEAD_PREFIXES,
    BackboneWeightsError,
    compare_shapes,
    folder_files,
    listing,
    read_shapes,
    remap_keys,
    shapes,
    weights_file,
)
from eegfm.backbones.registry import get_spec
from eegfm.backbones.spec import BackboneSpec, nominal_windows
from eegfm.hashing import sha256_json
from eegfm.provenance import package_versions

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Backbone, Config

logger = logging.getLogger(__name__)

#: Bump when :func:`check_weights` changes what it accepts (invalidates its cache).
CHECK_VERSION = "1"


def nominal_recordings(spec: BackboneSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two windows-store summaries (``windows.json`` style) the model is built for at parse time.

    The first is the nominal recording (:func:`~eegfm.backbones.spec.nominal_windows`):
    the 19 channels of the 10-20 system at the native rate, windows of the
    registry's ``nominal_seconds`` adjusted to the length rules. The second
    lacks Fz and Pz and has 1 s longer windows (when the length is not fixed).
    Both go through :func:`~eegfm.backbones.adapt.plan_input` as real windows
    would, so a model fed a fixed channel vocabulary or bipolar montage gets
    the same channels from both; tensors whose shape still differs between
    the two builds depend on the input and are left to the embedding job.
    """
    first = nominal_windows(spec)
    n_times = spec.inputs.length.nearest(first["n_times"] + max(1, round(first["sfreq"])))
    fewer = [c for c in first["ch_names"] if c not in ("Fz", "Pz")]
    return first, {**first, "n_times": n_times, "ch_names": fewer}


def _nominal_plan(spec: BackboneSpec, cfg: Backbone, info: dict[str, Any]) -> InputPlan:
    """The job's input plan for a nominal recording (channels a vocabulary lacks are zero-filled)."""
    return plan_input(spec, info, cfg=cfg.model_copy(update={"missing_channels": "zero", "length_policy": "error"}))


def _reference_shapes(spec: BackboneSpec, cfg: Backbone, plan: InputPlan) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of the model the job would build for ``plan``, built on the meta device."""
    import torch

    kwargs, asset = spec.family.init_kwargs(spec, cfg, plan), spec.family.resolve_asset(spec, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. BIOT's "only trained at 200 Hz": irrelevant for shapes
        try:
            with torch.device("meta"):  # no memory, no initialisation compute
                model = build_model(spec, kwargs, 0, asset=asset)
        except (NotImplementedError, RuntimeError) as err:  # an __init__ that needs real values (.item())
            logger.info("%s: meta-device build failed (%s); building on CPU", spec.model_class, err)
            model = build_model(spec, kwargs, 0, asset=asset)
    return shapes(model.state_dict())


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
    files = folder_files(source) if source.is_dir() else [source]
    key = sha256_json({
        "check": CHECK_VERSION, "spec": asdict(spec), "family": type(spec.family).__qualname__,
        "weights": cfg.weights, "kwargs": cfg.kwargs,
        "files": [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files],
        "versions": package_versions(("braindecode", "torch")),
    })  # fmt: skip
    return Path(cache_dir) / f"{key}.ok"


def check_weights(spec: BackboneSpec, cfg: Backbone, *, cache_dir: str | Path | None = None) -> None:
    """Check, without the dataset, that ``cfg.weights`` can fit ``spec``'s model; meant for parse time.

    The model is built as the embedding job would build it (registry kwargs
    < weights folder ``config.json`` < ``backbones[].kwargs``) on the ``meta``
    device for two nominal recordings (see :func:`nominal_recordings`); the
    checkpoint's tensor names and shapes (read from the file header, after
    the family's ``key_remap`` for single files) must match, except the
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
    path = weights_file(source)
    if spec.offline:
        logger.warning("backbone '%s': cannot be built offline (%s); weights not checked", cfg.label, spec.offline)
        return
    marker = _cache_marker(spec, cfg, cache_dir)
    if marker is not None and marker.exists():
        return
    found = read_shapes(path, backbone=f"'{cfg.label}'")
    if source.is_file():
        found, _ = remap_keys(found, spec.family.key_remap)
    info_a, info_b = nominal_recordings(spec)
    plan = _nominal_plan(spec, cfg, info_a)
    expected = _reference_shapes(spec, cfg, plan)
    other = _reference_shapes(spec, cfg, _nominal_plan(spec, cfg, info_b))
    input_dependent = frozenset(k for k in expected.keys() | other.keys() if expected.get(k) != other.get(k))
    problems = compare_shapes(expected, found, input_dependent)
    if problems:
        later = sorted(k for k in input_dependent if not k.startswith(HEAD_PREFIXES))
        note = (
            f". Not checked here (shape depends on channels/length; checked when embedding): {listing(later)}"
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
