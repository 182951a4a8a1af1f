"""Early-stopping validation carved from a fold's training windows, never from its test windows.

Fine-tuning (:mod:`eegfm.finetune.run`) holds out part of each fold's
training set to pick its best epoch. Whole training units are held out
(``finetune.optim.val_fraction`` of them) unless that would take more than
``finetune.optim.val_max_share`` of the training windows: with two training
runs, one run would be half the data. Then the last ``val_fraction`` of
every training unit in time is held out instead, with the design's gap to
the inner-training windows of the same recording. Which method was used,
and why, is recorded with the fold (``ValidationSplit.record``;
docs/architecture.md §3, invariant 2).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from eegfm.groups import SplitError, design_gap, group_labels, natural_key, near_windows, plural, time_order

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationSplit:
    """A fold's training windows split for early stopping, and how (``record`` goes into metrics.json).

    ``method`` is ``"groups"`` (whole training units held out) or
    ``"time_blocks"`` (the last ``fraction`` of every training unit in time,
    after a gap), the fallback when whole units would take more than
    ``max_share`` of the training windows.
    """

    inner: list[int]
    val: list[int]
    method: str
    record: dict[str, Any] = field(default_factory=dict)


def _group_carve(groups: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whole groups for validation: among seeded shuffles, the first that keeps every class on both sides."""
    unique = np.array(sorted(set(groups), key=natural_key), dtype=object)
    n_val = int(np.clip(round(fraction * len(unique)), 1, len(unique) - 1))
    classes = set(labels)
    rng = np.random.default_rng(seed)
    first = None
    for _ in range(100):
        val_groups = set(rng.permutation(unique)[:n_val])
        is_val = np.array([g in val_groups for g in groups])
        first = is_val if first is None else first
        if set(labels[is_val]) == classes and set(labels[~is_val]) == classes:
            return is_val
    logger.warning("no validation split of %d groups keeps every class on both sides", len(unique))
    return first


def _time_carve(sub: pd.DataFrame, groups: np.ndarray, fraction: float) -> np.ndarray:
    """The last ``fraction`` (at least one window) of every training group with two or more windows, in time."""
    order = time_order(sub)
    is_val = np.zeros(len(sub), dtype=bool)
    for group in set(groups):
        mine = order[groups[order] == group]
        if len(mine) >= 2:
            is_val[mine[len(mine) - max(1, math.ceil(fraction * len(mine))):]] = True
    return is_val


def carve_validation(
    meta: pd.DataFrame, train_ids: list[int], fraction: float, seed: int, group_by: str = "subject", *,
    units: pd.Series | None = None, max_share: float = 1.0, window_s: float | None = None,
    gap_s: float | None = None, target: str = "classification",
) -> ValidationSplit:
    """Split a fold's training windows into inner-train and validation windows.

    Only training windows are used, so early stopping never sees test data.
    Whole training units (``round(fraction × units)``, at least one) are held
    out when that takes at most ``max_share`` of the training windows (training
    windows closer than ``gap_s`` to them in the same recording, as between the
    blocks of a within-subject design, are dropped); else
    (e.g. two training runs, where one would be half the data) the last
    ``fraction`` of every training unit in time is, and training windows
    closer than ``gap_s`` to it in the same recording are dropped.

    Parameters
    ----------
    meta
        Windows table.
    train_ids
        Window ids of the fold's training set.
    fraction
        Share of the training units (or of each unit's windows) for validation, in (0, 1).
    seed
        Seed of the unit shuffle.
    group_by
        ``"subject"``, ``"session"`` or ``"run"`` when ``units`` is not given.
    units
        Unit of every window, indexed by window id and named by the unit
        (:func:`eegfm.groups.window_units`); overrides ``group_by``.
    max_share
        Largest share of the training windows whole units may take.
    window_s, gap_s
        Window length and gap (null: one window length) kept between
        validation and inner-training windows of one recording; ``window_s``
        is needed when the time-blocked fallback is taken.
    target
        ``"regression"``: no classes to keep on both sides (the first seeded
        shuffle of units is taken).

    Returns
    -------
    ValidationSplit
        Sorted inner-train and validation ids, the method and its record.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    sub = meta.set_index(meta["window_id"].astype(int).to_numpy(), drop=False).loc[sorted(int(v) for v in train_ids)]
    unit = str(units.name) if units is not None and units.name else group_by
    groups = units.loc[sub.index].to_numpy(dtype=object) if units is not None else group_labels(sub, group_by)
    # a continuous target has no classes to keep on both sides: one pseudo-class takes the first shuffle
    labels = np.full(len(sub), "", dtype=object) if target == "regression" else sub["label"].astype(str).to_numpy()
    n_units = len(set(groups))
    gap = design_gap(window_s, gap_s)
    reason = None
    if n_units >= 2:
        is_val = _group_carve(groups, labels, fraction, seed)
        share = float(is_val.mean())
        if share <= max_share + 1e-12:
            # units inside one recording (within-subject blocks) touch: their neighbours keep the design's gap
            dropped = _near_validation(sub, is_val, window_s, gap)
            return _validation(sub, is_val, dropped, "groups", groups, labels, unit, {
                "fraction": fraction, "max_share": max_share, "reason": None, "gap_s": gap})
        reason = (f"whole {plural(unit)} would take {share:.0%} of the training windows ({int(is_val.sum())} of "
                  f"{len(sub)}; finetune.optim.val_max_share {max_share})")
    else:
        reason = f"the training set holds a single {unit}"
    if window_s is None:
        raise SplitError(f"validation by time blocks ({reason}) needs the window length (window_s)")
    is_val = _time_carve(sub, groups, fraction)
    if not is_val.any():
        raise SplitError(f"the training set ({len(sub)} windows) is too small for a validation set")
    dropped = _near_validation(sub, is_val, window_s, gap)
    logger.warning("validation by time blocks: %s; the last %.0f%% of each training %s is used instead "
                   "(gap %.3g s, %d windows dropped)", reason, 100 * fraction, unit, gap, int(dropped.sum()))
    return _validation(sub, is_val, dropped, "time_blocks", groups, labels, unit, {
        "fraction": fraction, "max_share": max_share, "reason": reason, "gap_s": gap})


def _near_validation(sub: pd.DataFrame, is_val: np.ndarray, window_s: float | None, gap: float | None) -> np.ndarray:
    """Inner-training windows closer than ``gap`` to a validation window of the same recording (none without
    a window length, :func:`eegfm.groups.design_gap`)."""
    dropped = np.zeros(len(sub), dtype=bool)
    if window_s is None or gap is None:
        return dropped
    dropped[np.flatnonzero(~is_val)] = near_windows(sub.reset_index(drop=True), np.flatnonzero(~is_val),
                                                    np.flatnonzero(is_val), float(window_s), gap)
    return dropped


def _validation(sub, is_val, dropped, method, groups, labels, unit, extra) -> ValidationSplit:
    ids = sub.index.to_numpy()
    missing = sorted(set(labels) - set(labels[is_val]))
    if missing:
        logger.warning("validation windows lack class(es) %s; early stopping watches the others", missing)
    record = {
        "method": method, "unit": unit, **extra, "share": round(float(is_val.mean()), 6),
        "n_val": int(is_val.sum()), "n_inner": int((~is_val & ~dropped).sum()), "gap_dropped": int(dropped.sum()),
        "val_groups": sorted({str(g) for g in groups[is_val]}, key=natural_key), "missing_classes": missing,
    }
    return ValidationSplit(
        inner=sorted(int(v) for v in ids[~is_val & ~dropped]), val=sorted(int(v) for v in ids[is_val]),
        method=method, record=record,
    )
