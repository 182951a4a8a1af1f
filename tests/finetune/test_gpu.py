"""CUDA checks of fine-tuning: bf16 autocast, QLoRA's peak GPU memory against LoRA's. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from eegfm.config import Backbone, Finetune
from eegfm.finetune.run import prepare_fold
from eegfm.finetune.train import Split, resolve_precision, train

pytestmark = pytest.mark.gpu


def _needs_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none visible): bf16 autocast / QLoRA on CUDA not exercised here")


def test_bf16_autocast_is_what_auto_takes_on_cuda():
    _needs_cuda()
    device = torch.device("cuda")
    assert resolve_precision("auto", device) == (torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    assert resolve_precision("fp32", device) is None


def _peak_train_mb(ft_data, regime: str) -> float:
    ft = Finetune(backbones=["labram"], device="cuda", precision="auto", optim={"max_epochs": 1, "batch_size": 32})
    f = prepare_fold(ft_data["windows"], ft_data["folds"], 0, Backbone(name="labram"), ft, regime, 0, dataset="tiny")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    result = train(f.model, Split(f.X.subset(f.inner_ids), f.y[f.inner_ids]),
                   Split(f.X.subset(f.val_ids), f.y[f.val_ids]), regime, ft, 0, f.device, f.dtype, unused=f.unused)
    torch.cuda.synchronize()
    assert result.status == "ok"
    return torch.cuda.max_memory_allocated() / 2**20


def test_qlora_trains_in_less_gpu_memory_than_lora(ft_data):
    """Full-size LaBraM: 4-bit frozen base weights must lower the peak; benchmarks/finetune_cost.py has the figures."""
    _needs_cuda()
    lora, qlora = _peak_train_mb(ft_data, "lora"), _peak_train_mb(ft_data, "qlora")
    print(f"peak GPU memory: LoRA {lora:.0f} MB, QLoRA {qlora:.0f} MB ({qlora / lora:.2f}x)")
    assert qlora < lora
