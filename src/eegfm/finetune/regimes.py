"""What each training regime may train, set and then asserted before any step.

Parameter groups of a :class:`~eegfm.finetune.model.Classifier`:
``head`` (``head.*``), ``projection`` (a trainable channel projection),
``adapter`` (LoRA, see :func:`is_adapter`) and
``backbone`` (everything else). A regime allows a set of groups; the
assertion fails when a parameter outside them trains, when an allowed group
that must train does not, or when frozen + trainable != total.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import torch
from torch import nn

from eegfm.config import REGIMES  # the regimes a config may name: one list for both


class RegimeError(RuntimeError):
    """Parameters train that the regime does not allow, or adapters that get no gradient."""


def is_adapter(name: str) -> bool:
    """Whether a parameter name belongs to a LoRA adapter (peft's ``lora_*`` or a parametrization's)."""
    return "lora_" in name


def group_of(name: str) -> str:
    """``'head'``, ``'projection'``, ``'adapter'`` or ``'backbone'`` for a parameter name."""
    if name.startswith("head."):
        return "head"
    if name.startswith("projection."):
        return "projection"
    if is_adapter(name):
        return "adapter"
    return "backbone"


def allowed_groups(regime: str, phase: str = "main") -> set[str]:
    """Groups that train in ``regime`` (``phase`` ``'probe'`` is lp-ft's head-only start)."""
    if regime == "head" or (regime == "lp-ft" and phase == "probe"):
        return {"head"}
    if regime in ("lora", "qlora"):
        return {"head", "adapter", "projection"}
    if regime in ("full", "lp-ft", "scratch"):
        return {"head", "backbone", "projection"}
    raise ValueError(f"unknown regime '{regime}'; use one of {', '.join(REGIMES)}")


def _numel(p: torch.Tensor) -> int:
    # bitsandbytes packs two 4-bit values per byte; count the logical weights
    shape = getattr(getattr(p, "quant_state", None), "shape", None)
    return int(torch.Size(shape).numel()) if shape is not None else p.numel()


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable, frozen and total parameters, and trainable/total per group."""
    out = {"trainable": 0, "frozen": 0, "total": 0}
    for name, p in model.named_parameters():
        n = _numel(p)
        out["total"] += n
        out["trainable" if p.requires_grad else "frozen"] += n
        g = group_of(name)
        out[f"{g}_total"] = out.get(f"{g}_total", 0) + n
        if p.requires_grad:
            out[f"{g}_trainable"] = out.get(f"{g}_trainable", 0) + n
    return out


def backbone_blocks(model: nn.Module) -> list[list[str]]:
    """Backbone parameter names grouped into blocks, bottom to top.

    A block is the parameters sharing a prefix up to the first numbered
    container (``backbone.model.encoder.layers.3.``); parameters outside any
    numbered container form their own blocks, in registration order. Gradual
    unfreezing opens blocks from the top.
    """
    blocks: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if group_of(name) != "backbone":
            continue
        m = re.match(r"(.*?\.\d+)\.", name)
        key = m.group(1) if m else name.rsplit(".", 1)[0]
        blocks.setdefault(key, []).append(name)
    return list(blocks.values())


def set_trainable(
    model: nn.Module, regime: str, phase: str = "main", share: float = 1.0, unused: Iterable[str] = ()
) -> None:
    """Set ``requires_grad`` as ``regime`` allows.

    ``share`` (gradual unfreezing) keeps only the top ``share`` of backbone
    blocks trainable in regimes that train the backbone. ``unused``
    parameters (no forward pass reaches them) always stay frozen.
    """
    groups, unused = allowed_groups(regime, phase), set(unused)
    for name, p in model.named_parameters():
        p.requires_grad = group_of(name) in groups and p.dtype.is_floating_point and name not in unused
    if "backbone" in groups and share < 1.0:
        blocks = backbone_blocks(model)
        n_open = round(share * len(blocks))
        closed = {n for block in blocks[: len(blocks) - n_open] for n in block}
        for name, p in model.named_parameters():
            if name in closed:
                p.requires_grad = False


def assert_regime(
    model: nn.Module, regime: str, phase: str = "main", share: float = 1.0, unused: Iterable[str] = ()
) -> dict[str, int]:
    """Check the trainable parameters against the regime; return :func:`count_parameters`.

    ``unused`` parameters must be frozen (they would get no gradient).

    Raises
    ------
    RegimeError
        A parameter of a group the regime does not allow is trainable (names
        a few), a group the regime trains has nothing trainable, or the
        counts do not add up.
    """
    groups = allowed_groups(regime, phase)
    wrong = [n for n, p in model.named_parameters() if p.requires_grad and group_of(n) not in groups]
    if wrong:
        raise RegimeError(
            f"regime '{regime}' ({phase}) trains only {sorted(groups)}, but {len(wrong)} other parameter "
            f"tensor(s) are trainable, e.g. {wrong[:3]}"
        )
    unused = set(unused)
    reached = [n for n, p in model.named_parameters() if p.requires_grad and n in unused]
    if reached:
        raise RegimeError(f"{len(reached)} parameter tensor(s) that no forward pass reaches are trainable: {reached[:3]}")
    counts = count_parameters(model)
    must = {"head"} | ({"adapter"} if regime in ("lora", "qlora") else set())
    if "backbone" in groups and share > 0:
        must.add("backbone")
    idle = [g for g in sorted(must) if not counts.get(f"{g}_trainable")]
    if idle:
        raise RegimeError(f"regime '{regime}' ({phase}) must train {idle} but none of their parameters is trainable")
    if counts["frozen"] + counts["trainable"] != counts["total"]:  # pragma: no cover — arithmetic guard
        raise RegimeError(f"frozen + trainable != total: {counts}")
    return counts


def unreached_parameters(model: nn.Module, loss_of: Callable[[], torch.Tensor]) -> set[str]:
    """Parameters that get no gradient from ``loss_of()`` with everything trainable.

    These are parts of the braindecode model the feature path never runs
    (its own classification head, a reconstruction head); they stay frozen
    in every regime and are counted as frozen.
    """
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad = p.dtype.is_floating_point
        p.grad = None
    loss_of().backward()
    out = {n for n, p in model.named_parameters() if p.grad is None}
    for n, p in model.named_parameters():
        p.requires_grad, p.grad = flags[n], None
    return out


def check_gradients(named_parameters: Iterable[tuple[str, torch.Tensor]]) -> None:
    """After the first backward pass: every trainable tensor must have a gradient.

    A LoRA ``A`` matrix legitimately gets an all-zero gradient at the first
    step (``B`` starts at zero), so the test is "has a gradient", i.e. the
    tensor is connected to the loss.

    Raises
    ------
    RegimeError
        Naming the trainable tensors that got none (dead adapters).
    """
    dead = [n for n, p in named_parameters if p.requires_grad and p.grad is None]
    if dead:
        raise RegimeError(
            f"{len(dead)} trainable tensor(s) got no gradient at the first step, e.g. {dead[:4]}: the forward "
            "pass never reads them (a LoRA target the model bypasses?); change finetune.lora.targets"
        )
