"""From a built braindecode model to one feature vector per window, as its registry entry says.

Models differ in where their representation lives: most return it from
``forward(x, return_features=True)``, some only expose it as the output of a
submodule (LUNA's final norm, CBraMod's encoder before its reconstruction
head) or as the input of their classifier (PBT's CLS token, the penultimate
activations of ShallowFBCSPNet/EEGNet/Deep4Net). :class:`FeatureModel` reads
it at the place the spec names (``feature_source``/``feature_module``), adds
the forward keyword arguments and constant channels some models need, and
pools it to ``(batch, dim)``. It is an ``nn.Module``, so fine-tuning code can
train through it exactly as embedding code runs it.

This module imports torch; :mod:`eegfm.backbones.build` imports it lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from eegfm.backbones.build import pool
from eegfm.backbones.registry import BackboneSpec

__all__ = ["FeatureModel", "live_modules", "lora_target_modules"]


class _Captured(Exception):  # noqa: N818 — control flow, not an error
    """Carries the hooked tensor out of the forward pass (nothing after the hook runs)."""

    def __init__(self, value: Any):
        super().__init__("feature captured")
        self.value = value


class FeatureModel(nn.Module):
    """A braindecode model read out as its registry entry says.

    Parameters
    ----------
    model
        The braindecode model (built for ``len(ch_names) + len(spec.extra_channels)`` channels).
    spec
        Its registry entry: ``feature_source``, ``feature_module``,
        ``pooling``, ``forward_kwargs``, ``ch_names_kwarg`` and ``extra_channels``.
    ch_names
        The model channel names, in input order (for ``spec.ch_names_kwarg``).
    pooling
        Overrides ``spec.pooling`` (``backbones[].pooling``).

    Attributes
    ----------
    model
        The wrapped braindecode model (its ``state_dict`` keys are unchanged
        under ``model.``).
    """

    def __init__(self, model: nn.Module, spec: BackboneSpec, ch_names: Sequence[str], pooling: str | None = None):
        super().__init__()
        self.model = model
        self.pooling = pooling or spec.pooling
        self.source = spec.feature_source
        self.forward_kwargs = dict(spec.forward_kwargs)
        if spec.ch_names_kwarg:
            self.forward_kwargs[spec.ch_names_kwarg] = list(ch_names)
        values = torch.tensor([float(v) for _, v in spec.extra_channels], dtype=torch.float32)
        self.register_buffer("extra_values", values, persistent=False)
        self.module_name = spec.feature_module
        if self.source != "return_features":
            if not spec.feature_module:
                raise ValueError(f"backbone '{spec.name}': feature_source '{self.source}' needs a feature_module")
            model.get_submodule(spec.feature_module)  # fail at build time on a wrong name

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with the spec's constant channels appended (BENDR's ``SCALE``)."""
        if not len(self.extra_values):
            return x
        extra = self.extra_values.to(x.dtype)[None, :, None].expand(x.shape[0], -1, x.shape[-1])
        return torch.cat([x, extra], dim=1)

    def features(self, x: torch.Tensor) -> Any:
        """The unpooled features: a ``{"features", "cls_token"}`` dict or the hooked tensor."""
        x = self.model_input(x)
        if self.source == "return_features":
            return self.model(x, return_features=True, **self.forward_kwargs)
        module = self.model.get_submodule(self.module_name)
        # The hook lives only for this call: the wrapped model stays usable on its own.
        if self.source == "module_output":
            handle = module.register_forward_hook(_capture_output)
        else:
            handle = module.register_forward_pre_hook(_capture_input)
        try:
            self.model(x, **self.forward_kwargs)
        except _Captured as captured:
            value = captured.value
            return value[0] if isinstance(value, tuple | list) else value  # e.g. (output, attentions)
        finally:
            handle.remove()
        raise RuntimeError(f"{type(self.model).__name__}.{self.module_name} did not run during the forward pass")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Windows (batch, channels, samples) in model units -> features (batch, dim)."""
        return pool(self.features(x), self.pooling)


def _capture_output(module: nn.Module, args: Any, output: Any) -> None:
    raise _Captured(output)


def _capture_input(module: nn.Module, args: Any) -> None:
    raise _Captured(args[0])


def live_modules(feature_model: FeatureModel, x: torch.Tensor) -> set[str]:
    """Names (as in ``feature_model.model.named_modules()``) of the submodules whose forward runs for ``x``.

    A module that is built but bypassed — a transformer decoder nobody calls,
    a ``qkv`` Linear whose weight is read with ``F.linear``, the ``out_proj``
    of an ``nn.MultiheadAttention`` — does not appear, so a LoRA adapter on
    it would never get a gradient.
    """
    ran: set[str] = set()
    handles = [
        module.register_forward_pre_hook(lambda *_, name=name: ran.add(name))
        for name, module in feature_model.model.named_modules()
        if name
    ]
    try:
        with torch.no_grad():
            feature_model(x)
    finally:
        for handle in handles:
            handle.remove()
    return ran


def lora_target_modules(feature_model: FeatureModel, targets: Sequence[str], x: torch.Tensor) -> list[str]:
    """Full names of the modules peft would wrap for ``targets`` that also run for ``x``.

    ``targets`` are matched as peft matches a list of ``target_modules``
    (the full name, or a suffix after a dot). Passing the result to peft as
    ``target_modules`` (prefixed with ``model.`` when wrapping a
    :class:`FeatureModel`) leaves out adapters that would never train.
    """
    ran = live_modules(feature_model, x)
    return [
        name
        for name, _ in feature_model.model.named_modules()
        if name in ran and any(name == t or name.endswith("." + t) for t in targets)
    ]
