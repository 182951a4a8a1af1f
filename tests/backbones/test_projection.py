"""The trainable channel projection of ``missing_channels: project``."""

from __future__ import annotations

import pickle

import numpy as np
import torch

from eegfm.backbones.channels import DOUBLE_BANANA, map_channels
from eegfm.backbones.projection import ChannelProjection

CH = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()


def test_channel_projection_module():
    for mapping in (map_channels(CH[1:], vocabulary=CH, missing="project"), map_channels(CH, montage=DOUBLE_BANANA)):
        proj = ChannelProjection.from_mapping(mapping)
        np.testing.assert_array_equal(proj.weight.detach().numpy(), mapping.matrix.astype(np.float32))
        x = torch.randn(2, len(mapping.names_in), 40)
        y = proj(x)
        assert y.shape == (2, len(mapping.names_out), 40)
        torch.testing.assert_close(y, torch.from_numpy(mapping.matrix.astype(np.float32)) @ x)
        y.pow(2).sum().backward()
        assert proj.weight.grad is not None and proj.weight.requires_grad
    frozen = ChannelProjection(np.eye(3), trainable=False)
    assert not frozen.weight.requires_grad and "trainable=False" in repr(frozen)
    again = pickle.loads(pickle.dumps(frozen))  # pickles by reference
    assert type(again) is ChannelProjection and torch.equal(again.weight, frozen.weight)
