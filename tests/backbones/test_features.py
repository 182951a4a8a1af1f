"""One pooling for frozen embeddings, fine-tuning heads and pretraining objectives; live-module tracing."""

from __future__ import annotations

import typing

import pytest
import torch

from eegfm.backbones.features import POOLINGS, live_modules, pool
from eegfm.config import Backbone, Head


def test_pool_modes():
    feats = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert pool({"features": feats, "cls_token": None}, "mean").shape == (2, 5)
    assert pool({"features": feats, "cls_token": None}, "flatten").shape == (2, 60)
    assert pool({"features": feats, "cls_token": torch.ones(2, 7)}, "cls").shape == (2, 7)
    with pytest.raises(ValueError, match="cls_token"):
        pool({"features": feats, "cls_token": None}, "cls")
    with pytest.raises(ValueError, match="expected"):
        pool({"features": feats, "cls_token": None}, "as_is")


def test_aggregations_of_channel_patch_features():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # (B, channels, patches, dim)
    assert pool(x, "mean").shape == (2, 5)
    torch.testing.assert_close(pool(x, "mean"), x.mean(dim=(1, 2)))
    assert pool(x, "flatten").shape == (2, 60)
    torch.testing.assert_close(pool(x, "grouped_mean"), x.mean(dim=2).reshape(2, 15))
    torch.testing.assert_close(pool(x, "grouped_mean")[:, :5], x[:, 0].mean(dim=1))  # channel 0 first
    torch.testing.assert_close(pool(x[:, 0], "grouped_mean"), x[:, 0].mean(dim=1))  # other shapes: the mean
    torch.testing.assert_close(pool(x, "first"), x[:, 0, 0])


def test_first_takes_the_cls_token_when_there_is_one():
    feats = {"features": torch.zeros(2, 7, 4), "cls_token": torch.ones(2, 4)}
    torch.testing.assert_close(pool(feats, "first"), torch.ones(2, 4))
    torch.testing.assert_close(pool({"features": torch.zeros(2, 4), "cls_token": torch.ones(2, 4)}, "first"),
                               torch.ones(2, 4))  # fmt: skip
    assert pool(feats, "mean").abs().sum() == 0
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(feats, "max")


def test_every_pooling_a_config_can_ask_for_is_the_one_pool():
    """backbones[].pooling, finetune.head.aggregation and the registry's pooling all go through ``pool``."""
    from eegfm.backbones.registry import REGISTRY
    from eegfm.finetune import model
    from eegfm.pretrain import recipes

    asked = set(typing.get_args(Backbone.model_fields["pooling"].annotation.__args__[0]))
    asked |= set(typing.get_args(Head.model_fields["aggregation"].annotation))
    asked |= {spec.pooling for spec in REGISTRY.values() if spec.kind == "braindecode"} | {recipes.POOLING}
    assert asked <= set(POOLINGS)
    x = torch.randn(2, 3, 4, 5)
    for how in asked - {"cls", "as_is"}:
        assert pool(x, how).ndim == 2
    assert model.pool is pool and recipes.pool is pool  # no second pooling in fine-tuning or pretraining


def test_live_modules_are_those_whose_forward_runs():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.bypassed, self.unused = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)

        def forward(self, x):
            return torch.nn.functional.linear(self.used(x), self.bypassed.weight)  # weight read directly

    net = Net()
    assert live_modules(net, lambda: net(torch.zeros(1, 3))) == {"used"}
    assert not any(m._forward_pre_hooks for m in net.modules())  # the hooks are gone afterwards
