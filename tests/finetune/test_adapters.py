"""LoRA reaches every registered target (peft, or a weight parametrization where peft cannot), QLoRA quantizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from eegfm.backbones.adapt import plan_input, prepare_input
from eegfm.backbones.build import build_feature_model
from eegfm.backbones.channels import CHANNELS_1020
from eegfm.backbones.features import live_modules
from eegfm.backbones.registry import REGISTRY, get_spec
from eegfm.config import Backbone
from eegfm.finetune.adapters import (
    AdapterError,
    LoRAParametrization,
    add_lora,
    quantize_linears,
)
from eegfm.finetune.regimes import RegimeError, check_gradients

LORA = sorted(n for n, s in REGISTRY.items() if s.kind == "braindecode" and s.lora_targets)
SMALL = {"labram": {"num_layers": 2}, "cbramod": {"n_layer": 1}, "eegdino": {"n_layer": 2}}


def _feature_model(name: str, kwargs=None):
    spec = get_spec(name)
    cfg = Backbone(name=name, kwargs=kwargs or {})
    n_times = spec.inputs.length.shortest
    info = {"sfreq": spec.inputs.sfreq, "n_times": n_times, "ch_names": list(CHANNELS_1020), "units": "V"}
    plan = plan_input(spec, info, cfg=cfg)
    fm = build_feature_model(spec, cfg, plan, seed=0).train()
    X = np.random.default_rng(0).normal(scale=2e-5, size=(2, len(CHANNELS_1020), n_times))
    return spec, fm, torch.from_numpy(prepare_input(X.astype(np.float32), plan))


def _adapter_grads(fm, x) -> dict[str, torch.Tensor | None]:
    for p in fm.parameters():
        p.requires_grad = "lora_" in _name_of(fm, p)
    fm(x).pow(2).mean().backward()
    return {n: p.grad for n, p in fm.named_parameters() if "lora_" in n}


def _name_of(fm, param):
    return next(n for n, p in fm.named_parameters() if p is param)


@pytest.mark.parametrize("name", LORA)
def test_every_registered_target_trains(name):
    """After one backward pass every adapter on the registry's targets is connected to the loss.

    LaBraM/EEG-DINO ``qkv`` (``F.linear``) and CBraMod's ``nn.MultiheadAttention``
    are reached through weight parametrizations.
    """
    spec, fm, x = _feature_model(name, SMALL.get(name))
    record = add_lora(fm.model, spec.lora_targets, lambda: fm(x), r=2, alpha=4, dropout=0.0)
    grads = _adapter_grads(fm, x)
    assert grads and all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None][:4]
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    if name in ("labram", "eegdino"):
        assert any(n.endswith("attn.qkv") for n in record.parametrized)


def test_a_plain_peft_adapter_on_labram_qkv_is_dead_and_eegfm_fails_loudly():
    """The trap itself: peft's wrapper on qkv gets no gradient, and check_gradients names it."""
    from peft import LoraConfig, inject_adapter_in_model

    _, fm, x = _feature_model("labram", SMALL["labram"])
    inject_adapter_in_model(LoraConfig(r=2, target_modules=["attn.qkv"]), fm.model)
    grads = _adapter_grads(fm, x.requires_grad_(True))
    assert grads and all(g is None for g in grads.values())
    with pytest.raises(RegimeError, match="got no gradient"):
        check_gradients(fm.named_parameters())


def test_a_target_the_features_never_reach_fails_loudly():
    spec, fm, x = _feature_model("cbramod", SMALL["cbramod"])
    with pytest.raises(AdapterError, match="never reach.*proj_out"):  # the reconstruction head: never runs
        add_lora(fm.model, ["proj_out"], lambda: fm(x), r=2, alpha=4, dropout=0.0)
    with pytest.raises(AdapterError, match="match no module"):
        add_lora(fm.model, ["no_such_layer"], lambda: fm(x), r=2, alpha=4, dropout=0.0)


def test_parametrization_starts_as_the_base_weight_and_learns_a_low_rank_update():
    lin = nn.Linear(6, 4)
    base = lin.weight.detach().clone()
    from torch.nn.utils import parametrize

    parametrize.register_parametrization(lin, "weight", LoRAParametrization(4, 6, r=2, alpha=4))
    torch.testing.assert_close(lin.weight, base)  # B starts at zero
    lora = lin.parametrizations.weight[0]
    with torch.no_grad():
        lora.lora_B.fill_(0.1)
    delta = lin.weight - base
    assert torch.linalg.matrix_rank(delta) <= 2
    torch.testing.assert_close(delta, 2.0 * lora.lora_B @ lora.lora_A)  # alpha / r = 2


def test_qlora_quantizes_live_linears_to_nf4_close_to_fp32():
    import bitsandbytes as bnb

    _, fm, x = _feature_model("labram", SMALL["labram"])
    fm.eval()
    with torch.no_grad():
        ref = fm(x)
    live = live_modules(fm.model, lambda: fm(x))
    replaced = quantize_linears(fm.model, live, "nf4", torch.float32)
    assert replaced and not any(n.endswith("attn.qkv") for n in replaced)  # read via F.linear: stays fp32
    assert all(isinstance(fm.model.get_submodule(n), bnb.nn.Linear4bit) for n in replaced)
    with torch.no_grad():
        out = fm(x)
    cosine = torch.nn.functional.cosine_similarity(ref.flatten(), out.flatten(), dim=0)
    assert 0.98 < cosine < 1.0  # quantized, yet the same function


def test_bitsandbytes_hub_kernel_advice_is_not_shown():
    """QA of issue 13: plain LoRA printed 'Failed to load CPU gemm_4bit_forward from kernels-community ... pip
    install kernels' (a package that downloads from the Hub at run time) on CPUs with AVX512-BF16."""
    import subprocess
    import sys

    code = (
        "import logging\n"
        "import eegfm.finetune.adapters, peft, bitsandbytes\n"
        # what bitsandbytes logs on an AVX512-BF16 CPU, also where this CPU has none
        "logging.getLogger('bitsandbytes.backends.cpu.ops').warning("
        "'Failed to load CPU gemm_4bit_forward from kernels-community: No module named kernels')\n"
        "logging.getLogger('bitsandbytes.backends.cpu.ops').warning('another bitsandbytes warning')\n"
        # with kernels installed, a failed download is news: kept
        "logging.getLogger('bitsandbytes.backends.cpu.ops').warning("
        "'Failed to load CPU gemm_4bit_forward from kernels-community: HTTP 503')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "No module named kernels" not in done.stderr and "another bitsandbytes warning" in done.stderr
    assert "kernels-community: HTTP 503" in done.stderr
