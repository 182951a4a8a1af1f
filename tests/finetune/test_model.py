"""Heads and input norms of the fine-tuned classifier (its pooling: tests/backbones/test_features.py)."""

from __future__ import annotations

import torch

from eegfm.config import Head
from eegfm.finetune.model import make_head, normalize


def test_heads():
    linear = make_head(16, 3, Head(kind="linear"))
    mlp = make_head(16, 3, Head(kind="mlp", hidden=8))
    assert sum(p.numel() for p in linear.parameters()) == 16 * 3 + 3
    assert sum(p.numel() for p in mlp.parameters()) == 16 * 8 + 8 + 8 * 3 + 3
    assert mlp(torch.zeros(2, 16)).shape == (2, 3)


def test_torch_norms_match_the_numpy_ones():
    import numpy as np

    from eegfm.backbones.adapt import normalize_input

    x = np.random.default_rng(0).normal(size=(2, 3, 50))
    for norm in ("none", "channel_q95", "window_minmax", "channel_zscore_clip15"):
        np.testing.assert_allclose(normalize(torch.from_numpy(x), norm).numpy(), normalize_input(x, norm),
                                   rtol=1e-6, atol=1e-9)


class _Attention(torch.nn.Module):
    """A stand-in backbone: one self-attention layer, read out as (batch, tokens, dim) features."""

    def __init__(self):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)

    def features(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def test_lora_weights_are_computed_once_per_forward_with_the_same_values_and_gradients():
    from torch.nn.utils import parametrize

    from eegfm.finetune.adapters import LoRAParametrization
    from eegfm.finetune.model import Classifier

    torch.manual_seed(0)
    backbone = _Attention()
    for owner, attr in ((backbone.attn, "in_proj_weight"), (backbone.attn.out_proj, "weight")):
        out_f, in_f = getattr(owner, attr).shape
        parametrize.register_parametrization(owner, attr, LoRAParametrization(out_f, in_f, r=2, alpha=4))
        torch.nn.init.normal_(owner.parametrizations[attr][0].lora_B)  # a non-zero update
    x = torch.randn(3, 5, 8)
    model = Classifier(backbone, 2, Head(kind="linear", dropout=0.0), x)
    calls = []
    for p in backbone.modules():
        if isinstance(p, LoRAParametrization):
            p.register_forward_hook(lambda *_: calls.append(1))

    for mode in ("train", "eval"):
        getattr(model, mode)()
        calls.clear()
        with torch.set_grad_enabled(mode == "train"):
            out = model(x)
        assert len(calls) == 2  # one computation per adapted weight
        with torch.set_grad_enabled(mode == "train"):
            plain = model.head(model.pool(backbone.features(x)))  # uncached: a read, a computation
        assert len(calls) > 4
        assert torch.equal(out, plain)
        if mode == "train":
            lora = [p for n, p in model.named_parameters() if "lora_" in n]
            cached = torch.autograd.grad(out.sum(), lora)
            assert all(torch.equal(a, b) for a, b in zip(cached, torch.autograd.grad(plain.sum(), lora), strict=True))
