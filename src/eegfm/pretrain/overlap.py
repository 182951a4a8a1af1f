"""Which evaluation windows and recordings were also pretraining data (torch-free).

The pretrain job stores the sha256 of every pretraining window's float32
bytes and the recordings they came from (``data.json``); embed and finetune
jobs whose weights come from that pretraining compare their own windows with
them, record the overlap and warn, since scores on data the backbone has
already seen are optimistic.
"""

from __future__ import annotations

import hashlib
import json
import logging
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


BLOCK = 64  # windows read at a time (the store's chunk): memory O(block), not O(dataset)


def window_hashes(X) -> list[str]:
    """sha256 of each window's float32 bytes (content keys of single windows).

    ``X`` may be a lazy zarr array: it is read ``BLOCK`` windows at a time.
    """
    out = []
    for start in range(0, X.shape[0], BLOCK):
        block = np.asarray(X[start : start + BLOCK], dtype=np.float32)
        out += [hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() for x in block]
    return out


def pretrain_overlap(pretrain_dir: str | PathLike, windows) -> dict[str, Any]:
    """Windows and recordings of an evaluation dataset that were also pretraining data.

    Parameters
    ----------
    pretrain_dir
        ``results/pretrain/<name>`` (its ``data.json``).
    windows
        An opened evaluation windows store.

    Returns
    -------
    dict
        ``windows`` (count of identical windows, by content hash),
        ``recordings`` (shared recording paths) and ``any`` (bool).
    """
    data = json.loads((Path(pretrain_dir) / "data.json").read_text())
    shared_windows = len(set(window_hashes(windows.X)) & set(data["window_hashes"]))
    shared_recordings = sorted(set(windows.meta["recording"].astype(str)) & set(data["recordings"]))
    return {"windows": shared_windows, "recordings": shared_recordings,
            "any": bool(shared_windows or shared_recordings)}


def warn_overlap(pretrain_dir: str | PathLike | None, windows, label: str) -> dict[str, Any] | None:
    """:func:`pretrain_overlap`, logged as a warning when there is any; ``None`` without ``pretrain_dir``.

    ``label`` names the dataset/backbone (and regime) in the warning.
    """
    if not pretrain_dir:
        return None
    overlap = pretrain_overlap(pretrain_dir, windows)
    if overlap["any"]:
        logger.warning(
            "%s: %d windows and %d recordings of this dataset were pretraining data of %s; scores are optimistic",
            label, overlap["windows"], len(overlap["recordings"]), pretrain_dir,
        )
    return overlap
