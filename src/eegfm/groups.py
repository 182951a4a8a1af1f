"""Held-out units of a study design, read from a windows table.

A cross-validation design holds out one kind of **unit** per fold: a
``subject``, a ``session`` (subject+session), a ``run``
(subject+session+run) or a ``block`` (a time-contiguous stretch of one
subject's windows, ``within_subject``). Splits, the audit, the probe and
fine-tuning records, the statistics and the report all name and count that
unit through the helpers here, so a run-wise design says "runs" everywhere.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

GROUP_COLUMNS = {"subject": ("subject",), "session": ("subject", "session"), "run": ("subject", "session", "run")}
UNIT_PLURAL = {"subject": "subjects", "session": "sessions", "run": "runs", "block": "blocks"}
SEP = "/"


class SplitError(ValueError):
    """Folds that cannot be made or that would leak; the message says how to fix it."""


def column_as_str(meta: pd.DataFrame, column: str) -> pd.Series:
    """A metadata column as strings, with missing values (no session/run) as ''."""
    if column not in meta:
        return pd.Series([""] * len(meta), index=meta.index, dtype=object)
    values = meta[column]
    return values.where(values.notna(), "").astype(str)


def group_labels(meta: pd.DataFrame, group_by: str) -> np.ndarray:
    """One group label per row of ``meta``: e.g. ``"03/ses1"`` for ``group_by="session"``.

    Parameters
    ----------
    meta
        Windows table (``subject``, and ``session``/``run`` when grouping by them).
    group_by
        ``"subject"``, ``"session"`` or ``"run"``.

    Returns
    -------
    numpy.ndarray
        Object array of strings, aligned with the rows of ``meta``.
    """
    if group_by not in GROUP_COLUMNS:
        raise SplitError(f"unknown group_by '{group_by}'; allowed: {', '.join(GROUP_COLUMNS)}")
    if "subject" not in meta:
        raise SplitError("the windows table has no 'subject' column; re-run the windows rule")
    parts = [column_as_str(meta, column) for column in GROUP_COLUMNS[group_by]]
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + SEP + part
    return labels.to_numpy(dtype=object)


def block_label(subject: Any, fold: int) -> str:
    """Name of the time block of ``subject`` that fold ``fold`` tests (``within_subject``)."""
    return f"{subject}{SEP}block-{int(fold)}"


def held_out_unit(folds: dict[str, Any]) -> str:
    """The unit a folds dict holds out; folds written before designs had a ``unit`` use ``group_by``."""
    return str(folds.get("unit") or folds.get("group_by") or "subject")


def plural(unit: str) -> str:
    """``"runs"`` for ``"run"``; unknown units get an ``s``."""
    return UNIT_PLURAL.get(unit, f"{unit}s")


def window_units(meta: pd.DataFrame, folds: dict[str, Any]) -> pd.Series:
    """The held-out unit of every window, indexed by ``window_id`` and named by the unit.

    For ``block`` units the block of a window is the fold that tests it, so
    ``folds`` must cover every window of ``meta`` in some test set.
    """
    ids = meta["window_id"].astype(int).to_numpy()
    unit = held_out_unit(folds)
    if unit != "block":
        return pd.Series(group_labels(meta, unit), index=ids, dtype=object, name=unit)
    tested_in = {int(w): int(entry["fold"]) for entry in folds["folds"] for w in entry["test"]}
    missing = [int(w) for w in ids if int(w) not in tested_in]
    if missing:
        raise SplitError(f"windows {missing[:5]} are in no test set, so they have no block; re-run splits")
    subjects = column_as_str(meta, "subject").to_numpy(dtype=object)
    labels = [block_label(s, tested_in[int(w)]) for s, w in zip(subjects, ids)]
    return pd.Series(labels, index=ids, dtype=object, name=unit)


def unit_list(units: pd.Series, ids) -> list[str]:
    """The distinct units of some window ids, in natural order (for metrics.json and model cards)."""
    return sorted({str(u) for u in units.loc[[int(i) for i in ids]]}, key=natural_key)


def natural_key(value: Any) -> list:
    """Sort key that orders ``"run2"`` before ``"run10"`` (digit runs compared as numbers)."""
    parts = re.split(r"(\d+)", str(value))
    return [int(p) if i % 2 else p for i, p in enumerate(parts)]


def time_order(meta: pd.DataFrame) -> np.ndarray:
    """Row positions of ``meta`` in recording time order: session, run, recording, then onset."""
    keys = [column_as_str(meta, c).map(natural_key).tolist() for c in ("session", "run", "recording")]
    onset = pd.to_numeric(meta["onset_s"], errors="coerce").fillna(0.0).to_numpy() if "onset_s" in meta \
        else np.zeros(len(meta))
    rows = sorted(range(len(meta)), key=lambda i: (keys[0][i], keys[1][i], keys[2][i], onset[i], i))
    return np.asarray(rows, dtype=int)


def design_gap(window_s: float | None, gap_s: float | None) -> float | None:
    """The gap kept between training and held-out windows of one recording: ``gap_s``, or one window length
    where it is null; ``None`` without a window length (no gap can be measured)."""
    return None if window_s is None else float(window_s if gap_s is None else gap_s)


def near_windows(meta: pd.DataFrame, candidates: np.ndarray, anchors: np.ndarray, window_s: float,
                 gap_s: float) -> np.ndarray:
    """Which ``candidates`` rows lie closer than ``gap_s`` (edge to edge) to an ``anchors`` row of the same recording.

    Windows span ``[onset, onset + window_s)``; two windows whose onsets differ
    by less than ``window_s`` overlap, so with ``gap_s = 0`` exactly the
    overlapping candidates are flagged.

    Parameters
    ----------
    meta
        Windows table with ``recording`` and ``onset_s``.
    candidates, anchors
        Row positions in ``meta``.
    window_s, gap_s
        Window length and the smallest allowed gap, in seconds.

    Returns
    -------
    numpy.ndarray
        Boolean mask over ``candidates``.
    """
    out = np.zeros(len(candidates), dtype=bool)
    if not len(candidates) or not len(anchors) or "recording" not in meta or "onset_s" not in meta:
        return out
    recording = column_as_str(meta, "recording").to_numpy(dtype=object)
    onset = pd.to_numeric(meta["onset_s"], errors="coerce").to_numpy(dtype=float)
    reach = window_s + gap_s - 1e-9
    anchor_recordings = recording[anchors]
    anchor_onsets = {rec: np.sort(onset[anchors][anchor_recordings == rec]) for rec in set(anchor_recordings)}
    for rec in set(recording[candidates]) & set(anchor_onsets):
        mine = np.flatnonzero(recording[candidates] == rec)
        sorted_anchors = anchor_onsets[rec]
        x = onset[candidates[mine]]
        pos = np.searchsorted(sorted_anchors, x)
        left = np.abs(x - sorted_anchors[np.clip(pos - 1, 0, len(sorted_anchors) - 1)])
        right = np.abs(sorted_anchors[np.clip(pos, 0, len(sorted_anchors) - 1)] - x)
        out[mine] = np.minimum(left, right) < reach
    return out


def constant_units(y: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """Codes of the units whose windows all carry one label."""
    pairs = np.unique(np.stack([unit, y]), axis=1)
    return np.flatnonzero(np.bincount(pairs[0], minlength=n_units) == 1)
