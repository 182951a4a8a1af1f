"""A trainable channel projection: how recorded channels feed a model, learned while fine-tuning.

Under ``missing_channels: project`` the channel mapping
(:class:`~eegfm.backbones.channels.ChannelMapping`) is not applied to the
windows; it initialises this layer instead, and fine-tuning trains it.
This module imports torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eegfm.backbones.channels import ChannelMapping


class ChannelProjection(nn.Module):
    """A 1x1 channel projection ``(B, C_in, T) -> (B, C_out, T)``, initialised from a mapping.

    The weight starts as :attr:`ChannelMapping.matrix` (identity rows for
    mapped channels, ±1 rows for bipolar derivations, zero rows for
    channels without a source) and is trainable by default, so
    fine-tuning can learn how recorded channels feed the model. No bias:
    an offset would leak DC into every channel.

    Parameters
    ----------
    matrix
        (C_out, C_in) initial weights, e.g. ``plan.channel_matrix``.
    trainable
        Whether the weight takes gradients.
    names_in, names_out
        Channel names, only for ``repr``.
    """

    def __init__(self, matrix, trainable: bool = True, names_in=None, names_out=None):
        super().__init__()
        weight = torch.as_tensor(np.asarray(matrix, dtype=np.float32)).clone()
        self.weight = nn.Parameter(weight, requires_grad=trainable)
        self.names_in, self.names_out = names_in, names_out

    @classmethod
    def from_mapping(cls, mapping: ChannelMapping, trainable: bool = True) -> ChannelProjection:
        """Projection initialised from a :class:`ChannelMapping`."""
        return cls(mapping.matrix, trainable, list(mapping.names_in), list(mapping.names_out))

    def forward(self, x):
        return torch.matmul(self.weight.to(x.dtype), x)

    def extra_repr(self) -> str:
        c_out, c_in = self.weight.shape
        return f"in_channels={c_in}, out_channels={c_out}, trainable={self.weight.requires_grad}"
