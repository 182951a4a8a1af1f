"""Frozen phases forward each window once: the backbone's pooled features, computed once per job.

While only the head trains (the ``head`` regime, the first phase of
``lp-ft``, an unfreezing schedule that starts at 0), everything before the
head is a fixed function of the window: the backbone is frozen and in
``eval()`` (docs/architecture.md, invariant 1). Recomputing it every epoch
is the per-epoch cost a frozen backbone exists to avoid, so
:class:`FrozenFeatures` runs it once per window of a split and the head
trains on the pooled features, every epoch, validation included.

The features are computed in batches padded to the training batch size
(batch-size-invariant, as embedding does) and, in a data-parallel job, each
rank computes a contiguous share and every rank gets all rows. A window
whose input is not finite gets NaN features, so the training loop still
reports a non-finite *input* at the step that meets it.
"""

from __future__ import annotations

from typing import Any

import torch

from eegfm import distributed
from eegfm.streaming import loader, share

__all__ = ["FrozenFeatures"]


class FrozenFeatures:
    """Pooled features of a :class:`~eegfm.finetune.model.Classifier`'s frozen part, one pass per window.

    Parameters
    ----------
    model
        The classifier; only ``model.features`` and ``model.pool`` run.
    batch_size
        Windows per forward pass (the last batch is padded).
    device, dtype
        Device and autocast dtype of the pass.
    workers
        DataLoader workers reading the windows.

    Attributes
    ----------
    forwarded
        Windows forwarded through the backbone so far (each split once).
    """

    def __init__(self, model: torch.nn.Module, batch_size: int, device: torch.device, dtype, workers: int = 0):
        self.model, self.batch_size, self.device, self.dtype, self.workers = model, batch_size, device, dtype, workers
        self.forwarded = 0
        self._cache: dict[int, torch.Tensor] = {}

    def __call__(self, key: int, X: Any) -> torch.Tensor:
        """The features (windows, dim) of ``X``, computed the first time ``key`` is asked for."""
        if key not in self._cache:
            self._cache[key] = self._compute(X)
        return self._cache[key]

    def clear(self) -> None:
        """Forget every split's features (the backbone is about to train)."""
        self._cache.clear()

    def _compute(self, X: Any) -> torch.Tensor:
        w = distributed.world()
        mine = share(list(range(len(X))), w.rank, w.size)
        batches = [mine[i : i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
        self.model.eval()
        out = []
        with torch.no_grad():
            for xb, _ in loader(X, torch.zeros(len(X), dtype=torch.long), batches, self.workers):
                n = len(xb)
                finite = torch.isfinite(xb.reshape(n, -1)).all(dim=1)
                if self.batch_size - n:
                    xb = torch.cat([xb, xb[-1:].expand(self.batch_size - n, *xb.shape[1:])])
                with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                    feats = self.model.pool(self.model.features(torch.nan_to_num(xb).to(self.device)))
                feats = feats.float()[:n].cpu()
                feats[~finite] = float("nan")  # reported by the training loop as a non-finite input
                out.append(feats)
        part = torch.cat(out) if out else torch.empty(0)
        self.forwarded += len(X)
        return distributed.gather_rows(part) if w.distributed else part
