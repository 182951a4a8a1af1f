"""Training windows read from the windows store batch by batch: memory O(batch), not O(dataset).

Fine-tuning and pretraining never hold a dataset's windows in memory. An
:class:`AdaptedWindows` names the windows (rows of the store's ``X``) of one
side of a split and the backbone's :class:`~eegfm.backbones.adapt.InputPlan`;
indexing it with a list of positions reads just those rows from the zarr
store (the chunks they lie in, in row order) and applies
:func:`~eegfm.backbones.adapt.prepare_input` to that batch. Input adaptation
is per window (see its docstring), so a window reads back bitwise the same
whether it comes alone, in a batch or from the whole array: a streamed fold
trains exactly as one loaded into memory (``tests/test_streaming.py``).

:func:`loader` turns a list of batches (position lists) into a
``torch.utils.data.DataLoader``; ``workers > 0`` reads and adapts the next
batches in worker processes while the model trains on the current one.
Which windows make a batch is decided in the main process
(:func:`epoch_batches`), so workers never change what is trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def read_rows(X: Any, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted, unique) of a zarr array or an in-memory array, as float32.

    A zarr array is read one chunk at a time (only the chunks holding these
    rows): zarr would otherwise decode every chunk of the selection at once,
    up to one chunk per row of the batch.
    """
    out = np.empty((len(rows), *X.shape[1:]), dtype=np.float32)
    if not hasattr(X, "get_orthogonal_selection"):
        out[:] = X[rows]
        return out
    chunk = X.chunks[0]
    starts = np.flatnonzero(np.diff(rows // chunk, prepend=-1))
    for a, b in zip(starts, [*starts[1:], len(rows)], strict=True):
        out[a:b] = X.get_orthogonal_selection((rows[a:b], slice(None), slice(None)))
    return out


class AdaptedWindows:
    """Windows ``ids`` (rows of ``X``), adapted to a backbone when read.

    ``windows[positions]`` reads the windows at those positions of ``ids``
    and returns them model-ready, as a float32 tensor (batch, channels,
    samples). ``len(windows)`` is ``len(ids)``.

    Parameters
    ----------
    X
        The store's lazy zarr array (or an in-memory array: tests inject
        NaNs with one), windows x stored channels x stored samples, volts.
    ids
        Rows of ``X`` these windows are.
    plan
        The backbone's input plan.
    channels
        ``False`` keeps the stored channels (see
        :func:`~eegfm.backbones.adapt.prepare_input`): for a trainable
        channel projection.
    """

    def __init__(self, X: Any, ids: Sequence[int], plan: Any, *, channels: bool = True):
        self.X, self.plan, self.channels = X, plan, channels
        self.ids = np.asarray(ids, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, positions: Sequence[int]) -> AdaptedWindows:
        """The windows at ``positions`` (still unread)."""
        return AdaptedWindows(self.X, self.ids[np.asarray(positions, dtype=np.int64)], self.plan,
                              channels=self.channels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(windows, model channels, model samples), without reading anything."""
        n_chans = len(self.plan.ch_names) if self.channels else len(self.plan.ch_names_in or self.plan.ch_names)
        return len(self.ids), n_chans, self.plan.n_times_out

    def __getitem__(self, positions: Any) -> torch.Tensor:
        from eegfm.backbones.adapt import prepare_input

        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        rows, inverse = np.unique(self.ids[pos], return_inverse=True)  # sorted: chunks read in order, once
        x = prepare_input(read_rows(self.X, rows), self.plan, channels=self.channels)
        return torch.from_numpy(np.ascontiguousarray(x[inverse]))


class ConcatWindows:
    """Several :class:`AdaptedWindows` (one per store) read as one: positions count through them in order."""

    def __init__(self, parts: Sequence[AdaptedWindows]):
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *(len(p) for p in self.parts)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self), *self.parts[0].shape[1:]

    def __getitem__(self, positions: Any) -> torch.Tensor:
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        which = np.searchsorted(self.offsets, pos, side="right") - 1
        out: torch.Tensor | None = None
        for k in np.unique(which):
            mask = which == k
            block = self.parts[k][pos[mask] - self.offsets[k]]
            if out is None:
                out = block.new_empty((len(pos), *block.shape[1:]))
            out[torch.from_numpy(mask)] = block
        return out if out is not None else torch.empty(0)


class LabelledWindows(Dataset):
    """Windows and their labels for a DataLoader whose sampler yields whole batches (lists of positions)."""

    def __init__(self, X: Any, y: torch.Tensor):
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, positions: Any) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(positions, dtype=np.int64))
        return self.X[idx], self.y[idx]


def loader(X: Any, y: torch.Tensor, batches: Sequence[Sequence[int]], workers: int = 0) -> DataLoader:
    """Iterate ``(windows, labels)`` of ``batches`` in order, read by ``workers`` processes (0: this one)."""
    # forked workers: zarr resets its I/O loop in a forked child (zarr.core.sync), so they may read the store
    return DataLoader(LabelledWindows(X, y), batch_size=None, sampler=list(batches), num_workers=workers)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[list[int]]:
    """One epoch's global batches: a seeded permutation of ``range(n)`` (or the order as is) cut into batches."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return [b.tolist() for b in order.split(batch_size)]


def share(batch: Sequence[int], rank: int, size: int) -> list[int]:
    """Rank ``rank``'s contiguous part of a global batch (sizes differ by at most one; may be empty)."""
    bounds = np.linspace(0, len(batch), size + 1).round().astype(int)
    return list(batch[bounds[rank] : bounds[rank + 1]])
