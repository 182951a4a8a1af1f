"""ONNX export of a fine-tuned fold (``finetune.export: onnx``), checked with onnxruntime.

:func:`merged_copy` turns the trained classifier into a plain fp32 network:
peft LoRA layers become ``nn.Linear`` with ``W + ΔW`` (a 4-bit QLoRA base is
dequantized first, so the exported weights are the ones training used),
leftover ``Linear4bit`` layers are dequantized, and LoRA weight
parametrizations are folded into their weights. :func:`export_onnx` writes
that network with torch's ONNX exporter, TorchScript-based or else
torch.export-based (input
``windows`` (batch, channels, samples), model-ready as the fold's training
windows; output ``logits``), then runs it in onnxruntime on held-out windows
and records the largest absolute difference from the trained torch model.
docs/onnx.md lists which backbones export.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from eegfm import atomic

logger = logging.getLogger(__name__)

EXPORT_CHECK_WINDOWS = 64  # held-out windows run through both torch and onnxruntime
OPSET = 18
TOLERANCE = 1e-3  # max |logit difference| above which the export is reported as inexact


class ExportError(RuntimeError):
    """A model the ONNX exporter (or onnxruntime) cannot take; the message names the backbone and the fix."""


def _dequantized(layer: nn.Module) -> nn.Linear:
    """A bitsandbytes ``Linear4bit`` as an fp32 ``nn.Linear`` holding its dequantized weight."""
    import bitsandbytes as bnb

    weight = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    out = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        out.weight.copy_(weight)
        if layer.bias is not None:
            out.bias.copy_(layer.bias.float())
    return out


def _is_4bit(layer: nn.Module) -> bool:
    return type(layer).__name__ == "Linear4bit" and hasattr(getattr(layer, "weight", None), "quant_state")


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def merged_copy(model: nn.Module) -> nn.Module:
    """A CPU fp32 copy of ``model`` in eval mode with every adapter merged and no 4-bit layer left."""
    from peft.tuners.lora import LoraLayer

    net = copy.deepcopy(model).cpu()
    for name, module in list(net.named_modules()):
        if not isinstance(module, LoraLayer):
            continue
        base = module.get_base_layer()
        if isinstance(base, nn.Linear) or _is_4bit(base):
            weight = _dequantized(base).weight.data if _is_4bit(base) else base.weight.data.float()
            delta = sum(module.get_delta_weight(a).float().cpu() for a in module.active_adapters)
            merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
            with torch.no_grad():
                merged.weight.copy_(weight + delta)
                if base.bias is not None:
                    merged.bias.copy_(base.bias.float())
            _replace(net, name, merged)
        else:  # peft merges other layer types itself
            module.merge(safe_merge=True)
            _replace(net, name, module.get_base_layer())
    for name, module in list(net.named_modules()):
        if _is_4bit(module):
            _replace(net, name, _dequantized(module))
    for module in list(net.modules()):
        if parametrize.is_parametrized(module):
            _own_class(module)
            for attr in list(module.parametrizations):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
    return net.float().eval()


def _own_class(module: nn.Module) -> None:
    """Give a deep-copied parametrized module its own copy of its class.

    Parametrizing makes a class per module (``ParametrizedLinear``) whose
    properties compute the weights; a deep copy shares that class with the
    original, and removing the parametrization deletes the property from the
    class, which would break the original model too.
    """
    cls = module.__class__
    body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, body)


EXPORTERS = ("torchscript", "dynamo")


def _write(net: nn.Module, example: torch.Tensor, path: Path, exporter: str) -> None:
    with warnings.catch_warnings():  # the TorchScript exporter warns that it is deprecated, and about traced shapes
        warnings.simplefilter("ignore")
        extra = {"external_data": False, "verbose": False} if exporter == "dynamo" else {}
        torch.onnx.export(net, (example,), str(path), dynamo=exporter == "dynamo", opset_version=OPSET,
                          input_names=["windows"], output_names=["logits"],
                          dynamic_axes={"windows": {0: "batch"}, "logits": {0: "batch"}}, **extra)


def _run(path: Path, windows: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"windows": windows})[0]


def _first_line(err: BaseException) -> str:
    while err.__cause__ is not None and "Failed to export the model with torch.export" in str(err):
        err = err.__cause__  # the exporter's wrapper says which step failed; its cause says why
    text = " ".join(str(err).split())  # ANSI colour codes and line breaks of the exporters' messages
    text = text.replace("\x1b[96m", "").replace("\x1b[0m", "")
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def _export_and_run(net: nn.Module, example: torch.Tensor, windows: np.ndarray, path: Path,
                    label: str) -> tuple[str, np.ndarray]:
    """Export with each exporter in turn until onnxruntime runs the file on ``windows``; (exporter, logits).

    The TorchScript exporter comes first (no FFT, but most models); the
    torch.export one (onnxscript) takes some it cannot. ``windows`` should
    hold another number of windows than ``example``, so a graph whose batch
    size was fixed by tracing fails here.

    Raises
    ------
    ExportError
        Naming every exporter's reason and the fix.
    """
    reasons = []
    for exporter in EXPORTERS:
        try:
            _write(net, example, path, exporter)
        except Exception as err:  # noqa: BLE001 — every exporter failure is a reason to report
            reasons.append(f"{exporter} exporter: {_first_line(err)}")
            continue
        try:
            return exporter, _run(path, windows)
        except Exception as err:  # noqa: BLE001
            reasons.append(f"{exporter} exporter's model in onnxruntime: {_first_line(err)}")
    raise ExportError(
        f"{label}: no ONNX export of this model runs ({'; '.join(reasons)}). docs/onnx.md lists the backbones that "
        "export. Set finetune.export: none (or fine-tune this backbone in a separate run without export)"
    )


def check_exportable(model: nn.Module, example: torch.Tensor, label: str) -> None:
    """Export the (untrained) model to a temporary file and run it once: fails before any training step.

    Raises
    ------
    ExportError
        The exporter or onnxruntime cannot take this network.
    """
    net = merged_copy(model)
    example = torch.nan_to_num(example.float().cpu())
    with tempfile.TemporaryDirectory() as tmp:  # traced with 2 windows, run on 3
        _export_and_run(net, example[:2], torch.cat([example, example[:1]]).numpy(), Path(tmp) / "model.onnx", label)


def export_onnx(model: nn.Module, windows: torch.Tensor, path: str | Path, label: str) -> dict[str, Any]:
    """Write ``model`` (adapters merged) to ``path`` and compare it with torch on ``windows``.

    Parameters
    ----------
    model
        The trained classifier (any device; it is not changed).
    windows
        Model-ready held-out windows (the fold's test windows).
    path
        Where ``model.onnx`` goes (written atomically).
    label
        Names the fold in messages.

    Returns
    -------
    dict
        The model card's ``export`` record: file, sha256, opset, versions, the
        number of windows checked and the largest absolute logit difference
        between onnxruntime and the trained torch model.

    Raises
    ------
    ExportError
        The exporter or onnxruntime failed.
    """
    import onnx
    import onnxruntime

    from eegfm.hashing import sha256_file

    path = Path(path)
    windows = torch.nan_to_num(windows.float().cpu())
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():  # the trained model as training left it: adapters unmerged, on its device, fp32
        expected = model(windows.to(device)).float().cpu().numpy()
    model.train(was_training)
    net = merged_copy(model)
    with atomic.atomic_file(path) as tmp:
        exporter, got = _export_and_run(net, windows[:2], windows.numpy(), Path(tmp), label)
    diff = float(np.max(np.abs(got - expected))) if len(windows) else None
    if diff is not None and not diff <= TOLERANCE:
        logger.warning("%s: model.onnx differs from the trained model by up to %.3g in the logits (above %g)",
                       label, diff, TOLERANCE)
    logger.info("%s: wrote %s; onnxruntime vs torch on %d held-out windows: max |diff| %.3g", label, path.name,
                len(windows), diff if diff is not None else float("nan"))
    return {
        "format": "onnx", "path": path.name, "sha256": sha256_file(path), "opset": OPSET,
        "exporter": f"torch.onnx ({exporter})", "input": {"name": "windows", "shape": ["batch", *windows.shape[1:]]},
        "output": {"name": "logits", "shape": ["batch", int(expected.shape[1])]},
        "checked_windows": len(windows), "max_abs_diff": diff, "tolerance": TOLERANCE,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
