"""From a built braindecode model to one feature vector per window, as its family says.

Models differ in where their representation lives: most return it from
``forward(x, return_features=True)``, some only expose it as the output of a
submodule (LUNA's final norm, CBraMod's encoder before its reconstruction
head) or as the input of their classifier (PBT's CLS token, the penultimate
activations of ShallowFBCSPNet/EEGNet/Deep4Net). :class:`FeatureModel` reads
it at the family's :class:`~eegfm.backbones.spec.FeatureTap`, adds the
forward keyword arguments and constant channels some models need, and pools
it to ``(batch, dim)`` with :func:`pool`, the one pooling of eegfm (frozen
embeddings, fine-tuning heads and pretraining objectives alike). It is an
``nn.Module``, so fine-tuning code can train through it exactly as
embedding code runs it.

This module imports torch; :mod:`eegfm.backbones.build` imports it lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from eegfm.backbones.spec import BackboneSpec

__all__ = ["POOLINGS", "FeatureModel", "live_modules", "pool"]

#: Every way :func:`pool` reduces features to one vector per window.
POOLINGS = ("mean", "cls", "first", "flatten", "grouped_mean", "as_is")


def pool(features: Any, how: str) -> torch.Tensor:
    """Unpooled features -> (batch, dim).

    Parameters
    ----------
    features
        A tensor (batch, ..., dim) or braindecode's ``{"features", "cls_token"}``
        dict (``forward(..., return_features=True)``).
    how
        ``'mean'`` over every token axis; ``'cls'``: the CLS token (an error
        when the model returns none); ``'first'``: the CLS token when the
        model returns one, else the first token; ``'flatten'``: all tokens
        concatenated; ``'grouped_mean'``: for (batch, channels, patches, dim)
        features the mean over patches within each channel, channels
        concatenated (``'mean'`` for any other shape); ``'as_is'``: features
        that already are (batch, dim).

    Raises
    ------
    ValueError
        An unknown ``how``, ``'cls'`` without a CLS token, or features that
        do not end up (batch, dim).
    """
    cls = features.get("cls_token") if isinstance(features, dict) else None
    x = features["features"] if isinstance(features, dict) else features
    if how == "cls":
        if cls is None:
            raise ValueError("pooling 'cls' but the model returned no cls_token")
        x = cls
    elif how == "first" and cls is not None:
        x = cls
    elif how == "first" and x.ndim > 2:
        x = x.reshape(x.shape[0], -1, x.shape[-1])[:, 0]
    elif how == "mean" or (how == "grouped_mean" and x.ndim != 4):
        x = x.mean(dim=tuple(range(1, x.ndim - 1))) if x.ndim > 2 else x
    elif how == "grouped_mean":
        x = x.mean(dim=2).reshape(x.shape[0], -1)
    elif how == "flatten":
        x = x.reshape(x.shape[0], -1)
    elif how not in POOLINGS:
        raise ValueError(f"unknown pooling '{how}'; use one of {', '.join(POOLINGS)}")
    if x.ndim != 2:
        raise ValueError(f"pooling '{how}' left features of shape {tuple(x.shape)}, expected (batch, dim)")
    return x


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
        The braindecode model (built for the channels plus the family's constant channels).
    spec
        Its registry entry: ``pooling``, and the family's feature tap,
        forward keyword arguments and constant channels.
    ch_names
        The model channel names, in input order (for a family that passes them to ``forward``).
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
        family = spec.family
        self.model = model
        self.pooling = pooling or spec.pooling
        self.source, self.module_name = family.tap.source, family.tap.module
        self.forward_kwargs = family.model_forward_kwargs(ch_names)
        values = torch.tensor([float(v) for _, v in family.constant_channels], dtype=torch.float32)
        self.register_buffer("extra_values", values, persistent=False)
        if self.module_name is not None:
            model.get_submodule(self.module_name)  # fail at build time on a wrong name

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


def live_modules(model: nn.Module, run: Callable[[], Any]) -> set[str]:
    """Names (as in ``model.named_modules()``) of the submodules whose forward runs during ``run()``.

    A module that is built but bypassed — a transformer decoder nobody calls,
    a ``qkv`` Linear whose weight is read with ``F.linear``, the ``out_proj``
    of an ``nn.MultiheadAttention`` — does not appear, so a LoRA adapter on
    it would never get a gradient.
    """
    ran: set[str] = set()
    handles = [m.register_forward_pre_hook(lambda *_, n=n: ran.add(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return ran
