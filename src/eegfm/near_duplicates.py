"""Copies of a recording whose bytes differ: windows of the same signal across recordings (docs/architecture.md §2.2).

The duplicate audit (:mod:`eegfm.fold_audit`) compares each window's
``content_hash``, the sha256 of its float32 samples. A recording saved again
in another format (an EDF re-exported as a float32 FIF, a re-scaled copy)
holds the same signal in other bytes, and after filtering the two rarely
agree to the last bit. This module finds such copies across recordings and
gives every window a ``content_group``: the smallest ``content_hash`` among the
windows that hold its signal, so the audit treats the copies as identical.

1. **Signature:** each window's per-channel log standard deviation, centred
   over its channels (a copy in other units has the same signature), on a
   grid of ``GRID`` (1 % of spread). Rounding and filtering a copy moves it
   by about 1e-6, so a window's copy lands in the same cell unless a channel
   sits on a cell edge (a few in a thousand windows): a copied recording is
   still found by its other windows.
2. **Confirmation:** two windows of different recordings in one cell are the
   same signal when the Pearson correlation of their samples (each channel
   centred) is at least ``MIN_CORRELATION``; independent EEG, even of one
   subject, is nowhere near it.

Windows of one recording are not compared with each other: overlapping
windows of a slow signal can correlate that strongly, and the gap rule
(:func:`eegfm.groups.near_windows`) is what keeps them apart.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

GRID = 0.01  # cell width of the centred log-std signature (natural log: 1 % of spread)
MIN_CORRELATION = 0.999
_ROWS = 64  # windows read at a time


def signatures(X) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the centred log-std signature on the grid (int64) and the window's correlation vector.

    Parameters
    ----------
    X
        Windows (n, channels, samples), any array that slices by rows (a
        zarr or :class:`~eegfm.integrity.VerifiedArray` store is read in
        blocks).

    Returns
    -------
    cells : ndarray of int64, shape (n, channels)
        The signature, in grid cells; a row of ``-1`` for a window with a flat
        channel (no spread to compare).
    norms : ndarray of float64, shape (n,)
        The norm of each window's channel-centred samples (0 for a flat
        window), for the correlation of candidates.
    """
    n = X.shape[0]
    cells = np.empty((n, X.shape[1]), dtype=np.int64)
    norms = np.empty(n)
    for start in range(0, n, _ROWS):
        block = np.asarray(X[start:start + _ROWS], dtype=np.float64)
        centred = block - block.mean(axis=2, keepdims=True)
        spread = np.sqrt((centred**2).mean(axis=2))
        norms[start:start + len(block)] = np.sqrt((centred**2).sum(axis=(1, 2)))
        flat = (spread <= 0).any(axis=1)
        log_spread = np.log(np.where(spread > 0, spread, 1.0))
        grid = np.floor((log_spread - log_spread.mean(axis=1, keepdims=True)) / GRID).astype(np.int64)
        grid[flat] = -1
        cells[start:start + len(block)] = grid
    return cells, norms


def content_groups(X, meta: pd.DataFrame) -> pd.Series:
    """Each window's ``content_group``: the smallest ``content_hash`` among the windows holding its signal.

    Parameters
    ----------
    X
        The windows store's ``X``, rows in ``window_id`` order.
    meta
        Windows table with ``window_id``, ``recording`` and ``content_hash``.

    Returns
    -------
    pandas.Series
        Indexed by window id; equal to ``content_hash`` for a window with no
        copy in another recording.
    """
    ids = meta["window_id"].to_numpy().astype(int)
    hashes = meta.set_index(ids)["content_hash"].astype(str)
    recordings = meta.set_index(ids)["recording"].astype(str)
    cells, norms = signatures(X)
    buckets: dict[bytes, list[int]] = defaultdict(list)
    for window in ids:
        if cells[window, 0] != -1 and norms[window] > 0:
            buckets[cells[window].tobytes()].append(int(window))
    parent = {int(w): int(w) for w in ids}

    def root(w: int) -> int:
        while parent[w] != w:
            parent[w] = parent[parent[w]]
            w = parent[w]
        return w

    for members in buckets.values():
        if len(members) < 2 or recordings.loc[members].nunique() < 2:
            continue
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if recordings.loc[a] != recordings.loc[b] and _correlation(X, a, b, norms) >= MIN_CORRELATION:
                    parent[root(a)] = root(b)
    group_hash: dict[int, str] = {}
    for window in ids:
        r = root(int(window))
        group_hash[r] = min(group_hash.get(r, hashes.loc[window]), hashes.loc[window])
    return pd.Series([group_hash[root(int(w))] for w in ids], index=ids, name="content_group")


def _correlation(X, a: int, b: int, norms: np.ndarray) -> float:
    """Pearson correlation of two windows' samples, each channel centred."""
    wa, wb = (np.asarray(X[w], dtype=np.float64) for w in (a, b))
    wa, wb = wa - wa.mean(axis=1, keepdims=True), wb - wb.mean(axis=1, keepdims=True)
    return float((wa * wb).sum() / (norms[a] * norms[b]))
