"""Aggregations and heads of the fine-tuned classifier."""

from __future__ import annotations

import pytest
import torch

from eegfm.config import Head
from eegfm.finetune.model import aggregate, make_head, normalize


def test_aggregations_of_channel_patch_features():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # (B, channels, patches, dim)
    assert aggregate(x, "mean").shape == (2, 5)
    torch.testing.assert_close(aggregate(x, "mean"), x.mean(dim=(1, 2)))
    assert aggregate(x, "flatten").shape == (2, 60)
    torch.testing.assert_close(aggregate(x, "grouped_mean"), x.mean(dim=2).reshape(2, 15))
    torch.testing.assert_close(aggregate(x, "first"), x[:, 0, 0])


def test_first_takes_the_cls_token_when_there_is_one():
    feats = {"features": torch.zeros(2, 7, 4), "cls_token": torch.ones(2, 4)}
    torch.testing.assert_close(aggregate(feats, "first"), torch.ones(2, 4))
    assert aggregate(feats, "mean").abs().sum() == 0
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(feats, "max")


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
