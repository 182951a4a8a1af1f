"""Schedule, class weights, phases, devices and unfreezing of the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegfm.config import Finetune
from eegfm.finetune.regimes import backbone_blocks, set_trainable
from eegfm.finetune.train import class_weights, lr_lambda, phases, resolve_precision


def test_warmup_then_cosine_to_zero():
    f = lr_lambda(warmup_steps=4, total_steps=20)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    values = [f(s) for s in range(4, 21)]
    assert values[0] == 1.0 and values[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert f(12) == pytest.approx(0.5)  # half-way through the decay


def test_balanced_class_weights_match_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 10 + [1] * 30 + [2] * 20)
    ours = class_weights(torch.from_numpy(y), 3, "balanced").numpy()
    np.testing.assert_allclose(ours, compute_class_weight("balanced", classes=np.arange(3), y=y), rtol=1e-6)
    assert class_weights(torch.from_numpy(y), 3, "none") is None


def test_phases_of_each_regime():
    ft = Finetune(lp_epochs=3, unfreeze_schedule={0: 0.0, 2: 0.5, 4: 1.0})
    assert [(p.epoch, p.phase, p.share) for p in phases("lp-ft", ft)] == [(0, "probe", 0.0), (3, "main", 1.0)]
    assert [p.share for p in phases("full", ft)] == [0.0, 0.5, 1.0]
    assert [p.share for p in phases("scratch", ft)] == [1.0]  # the schedule is for 'full' only


def test_gradual_unfreezing_opens_blocks_from_the_top():
    from torch import nn

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Module()
            self.backbone.layers = nn.ModuleList(nn.Linear(2, 2) for _ in range(4))
            self.head = nn.Linear(2, 2)

    model = Toy()
    blocks = backbone_blocks(model)
    assert [b[0] for b in blocks] == [f"backbone.layers.{i}.weight" for i in range(4)]
    set_trainable(model, "full", share=0.5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"backbone.layers.{i}.{w}" for i in (2, 3) for w in ("weight", "bias")} | {
        "head.weight", "head.bias"}


def test_precision_resolution_on_cpu():
    """(Devices: tests/test_devices.py.)"""
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None  # bf16 is opt-in on CPU
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("fp32", cpu) is None
