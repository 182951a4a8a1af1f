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
