"""LoRA adapters (peft) and 4-bit base weights (bitsandbytes) on a backbone, in place.

Modules whose ``forward`` runs get peft's LoRA layers
(:func:`peft.inject_adapter_in_model`, no ``PeftModel`` wrapper, so parameter
names stay ``backbone.model.…``). A targeted module whose weight the model
reads directly — Labram's and EEG-DINO's ``F.linear(x, self.qkv.weight)``,
``nn.MultiheadAttention``'s ``out_proj`` — would get a peft adapter that
never trains; it gets a LoRA *parametrization* of its weight instead
(:mod:`torch.nn.utils.parametrize`), which every read of ``.weight`` goes
through. Whether each adapter really trains is checked after the first step
(:func:`eegfm.finetune.regimes.check_gradients`). Adapter parameters are
named ``lora_*`` (peft's convention, kept by :class:`LoRAParametrization`),
which is how :func:`eegfm.finetune.regimes.group_of` tells them apart.

For QLoRA, every live ``nn.Linear`` of the backbone becomes a
``bitsandbytes.nn.Linear4bit`` (NF4/FP4, frozen) before LoRA is injected;
weights read directly cannot be quantized (bitsandbytes dequantizes in its
own forward) and stay in full precision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from eegfm.backbones.features import live_modules
from eegfm.finetune.regimes import unreached_parameters

logger = logging.getLogger(__name__)

#: What bitsandbytes (which peft imports too, even for plain LoRA) logs on CPUs with AVX512-BF16 when the
#: optional ``kernels`` package is absent. That package would fetch a kernel from the Hugging Face Hub at run
#: time; without it bitsandbytes uses its own CPU path, so the advice to install it would only mislead.
HUB_KERNEL_NOTE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def _not_hub_kernel_note(record: logging.LogRecord) -> bool:
    return not (HUB_KERNEL_NOTE in record.getMessage() and "No module named" in record.getMessage())


# Set when this module is imported, before fine-tuning imports peft or bitsandbytes (finetune.run imports it
# first). Only the "not installed" note is dropped: with ``kernels`` installed, a failed download still shows.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_not_hub_kernel_note)


class AdapterError(ValueError):
    """LoRA targets that match nothing, or that cannot be adapted."""


class LoRAParametrization(nn.Module):
    """``W -> W + (alpha / r) · B A`` for a weight read outside its module's forward.

    ``A`` starts Kaiming-uniform and ``B`` at zero (as peft's LoRA), so the
    adapted model starts equal to the base model.
    """

    def __init__(self, out_features: int, in_features: int, r: int, alpha: int):
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(r, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.lora_B @ self.lora_A).to(weight.dtype) * self.scaling


@dataclass
class AdapterRecord:
    """What was adapted and how (written to the model card)."""

    peft_modules: list[str] = field(default_factory=list)
    parametrized: list[str] = field(default_factory=list)
    quantized: list[str] = field(default_factory=list)
    quant_type: str | None = None

    def as_dict(self) -> dict:
        return {
            "peft_modules": self.peft_modules,
            "parametrized": self.parametrized,
            "quantized": self.quantized,
            "quant_type": self.quant_type,
        }


def matches_target(name: str, targets: Sequence[str]) -> bool:
    """Whether peft's ``target_modules`` matching selects module ``name``: the full name, or a suffix after a dot."""
    return any(name == t or name.endswith("." + t) for t in targets)


def lora_target_modules(model: nn.Module, targets: Sequence[str], run) -> list[str]:
    """Full names of the modules peft would wrap for ``targets`` that also run during ``run()``.

    Passing the result to peft as ``target_modules`` leaves out adapters that
    would never train.
    """
    ran = live_modules(model, run)
    return [name for name, _ in model.named_modules() if name in ran and matches_target(name, targets)]


def quantize_linears(model: nn.Module, live: set[str], quant_type: str, compute_dtype: torch.dtype) -> list[str]:
    """Replace every live ``nn.Linear`` of ``model`` by a frozen 4-bit ``Linear4bit``, in place.

    Returns the names of the replaced modules.
    """
    import bitsandbytes as bnb

    replaced = []
    for name, module in list(model.named_modules()):
        if name not in live or type(module) is not nn.Linear:
            continue
        q = bnb.nn.Linear4bit(
            module.in_features, module.out_features, bias=module.bias is not None,
            compute_dtype=compute_dtype, quant_type=quant_type, device="meta",
        )
        q.weight = bnb.nn.Params4bit(module.weight.data.detach().clone(), requires_grad=False, quant_type=quant_type)
        if module.bias is not None:
            q.bias = nn.Parameter(module.bias.data.detach().clone(), requires_grad=False)
        # bitsandbytes' CPU inference fast path asserts on sizes not divisible by 32/64 (AVX512-BF16 CPUs).
        q.support_avx512bf16_for_cpu = False
        q = q.to(module.weight.device)  # quantizes
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, q)
        replaced.append(name)
    return replaced


def _direct_weights(module: nn.Module) -> list[tuple[nn.Module, str]]:
    """Weights adapted by parametrization: a Linear's ``weight``; an attention's input and output projections.

    ``nn.MultiheadAttention`` reads ``in_proj_weight`` and ``out_proj.weight``
    directly; peft's wrapper for it merges and unmerges the base weights on
    every forward, which leaves the frozen weights drifting by ~1e-8.
    """
    if isinstance(module, nn.MultiheadAttention):
        inputs = ["in_proj_weight"] if module.in_proj_weight is not None else ["q_proj_weight", "k_proj_weight",
                                                                                  "v_proj_weight"]
        return [(module, a) for a in inputs] + [(module.out_proj, "weight")]
    if isinstance(module, nn.Linear):
        return [(module, "weight")]
    return []


def reached_modules(model: nn.Module, run) -> set[str]:
    """Names of modules with a parameter that gets a gradient from ``run().sum()``.

    A module outside this set lies in a part of the network the features
    never use (a decoder, a reconstruction head): adapting it is pointless.
    """
    unreached = unreached_parameters(model, lambda: run().float().sum())
    reached = {n.rpartition(".")[0] for n, _ in model.named_parameters() if n not in unreached}
    return {m for name in reached for m in _prefixes(name)}


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def add_lora(
    model: nn.Module,
    targets: Sequence[str],
    run,
    *,
    r: int,
    alpha: int,
    dropout: float,
    quantized: bool = False,
) -> AdapterRecord:
    """Put LoRA on the modules of ``model`` matched by ``targets``, in place.

    Parameters
    ----------
    model
        The backbone's braindecode model.
    targets
        Module-name suffixes (peft's ``target_modules`` matching).
    run
        ``run()`` computes the features from a small batch. Matched modules
        whose forward runs get peft adapters; matched ``nn.Linear`` whose
        weight is read directly and every ``nn.MultiheadAttention`` get a
        weight parametrization; matched modules no gradient reaches (unused
        decoders and heads) are skipped.
    r, alpha, dropout
        LoRA rank, scaling numerator and input dropout (dropout applies to
        peft adapters only: a weight parametrization has no input).
    quantized
        The model holds ``Linear4bit`` layers (tells peft to wrap them).

    Raises
    ------
    AdapterError
        When no module matches, or a matched module that does not run is
        not a Linear layer (nothing could reach its weight).
    """
    from peft import LoraConfig, inject_adapter_in_model

    if not targets:
        raise AdapterError(
            f"{type(model).__name__} has no registered LoRA targets (a convolutional baseline?); set "
            "finetune.lora.targets to module names, or use regime 'full' or 'head'"
        )
    matched = [name for name, _ in model.named_modules() if name and matches_target(name, targets)]
    if not matched:
        sample = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][:8]
        raise AdapterError(
            f"LoRA targets {list(targets)} match no module of {type(model).__name__}; Linear layers are named "
            f"like {sample}; set finetune.lora.targets"
        )
    record = AdapterRecord()
    matched = [n for n in matched if not any(n.startswith(p + ".") for p in matched if p != n)]  # outermost
    live, reached = live_modules(model, run), reached_modules(model, run)
    skipped = [n for n in matched if n not in reached]
    matched = [n for n in matched if n in reached]
    if not matched:
        raise AdapterError(
            f"LoRA targets {list(targets)} match only modules the features never reach ({skipped[:4]}); "
            "set finetune.lora.targets to layers of the encoder"
        )
    if skipped:
        logger.info("LoRA targets not adapted (no gradient reaches them from the features): %s", skipped)
    peft_names = []
    for name in matched:
        module = model.get_submodule(name)
        weights = _direct_weights(module) if (name not in live or isinstance(module, nn.MultiheadAttention)) else []
        if name in live and not weights:
            peft_names.append(name)
            continue
        if not weights:
            raise AdapterError(
                f"LoRA target '{name}' ({type(module).__name__}) never runs its forward and is not a Linear layer "
                "whose weight could be adapted; remove it from finetune.lora.targets"
            )
        for owner, attr in weights:
            out_f, in_f = getattr(owner, attr).shape
            parametrize.register_parametrization(owner, attr, LoRAParametrization(out_f, in_f, r, alpha))
        record.parametrized.append(name)
    if peft_names:
        if quantized:
            model.is_loaded_in_4bit = True  # peft only dispatches to its 4-bit LoRA layer when this is set
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=peft_names, bias="none")
        inject_adapter_in_model(config, model)
        record.peft_modules = peft_names
    if record.parametrized:
        logger.info("LoRA by weight parametrization (weights read outside forward): %s", record.parametrized)
    return record
