"""Subject-wise cross-validation folds with a leakage audit (DESIGN §2, §3.2).

A fold never puts one *group* on both sides of the train/test boundary. The
group is the subject (``group_by="subject"``), the subject+session
(``"session"``) or the subject+session+run (``"run"``). With ``"subject"`` the
subject is the group, so no subject straddles either; with ``"session"`` or
``"run"`` a subject may appear on both sides by design (within-subject,
cross-session evaluation) and the audit records it as ``shared_subjects``.

:func:`write_folds` re-derives the audit from the window ids themselves (and
from the windows table when given) before anything reaches disk, so a folds
file that exists has passed the leakage assertion.
"""

from __future__ import annotations

import json
import logging
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm import atomic
from eegfm.config import CrossValidation

logger = logging.getLogger(__name__)

GROUP_COLUMNS = {"subject": ("subject",), "session": ("subject", "session"), "run": ("subject", "session", "run")}
_SEP = "/"


class SplitError(ValueError):
    """Folds that cannot be made or that would leak; the message says how to fix it."""


# ----------------------------------------------------------------------------- groups


def _column_as_str(meta: pd.DataFrame, column: str) -> pd.Series:
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
    parts = [_column_as_str(meta, column) for column in GROUP_COLUMNS[group_by]]
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + _SEP + part
    return labels.to_numpy(dtype=object)


def _check_meta(meta: pd.DataFrame) -> None:
    for column in ("window_id", "subject", "label"):
        if column not in meta:
            raise SplitError(f"the windows table has no '{column}' column; re-run the windows rule")
    if meta["window_id"].duplicated().any():
        raise SplitError("window_id is not unique in the windows table; re-run the windows rule")
    if meta["label"].isna().any():
        n = int(meta["label"].isna().sum())
        raise SplitError(f"{n} windows have no label; check windows.event_id in the config")


# ----------------------------------------------------------------------------- folds


def _split_indices(y: np.ndarray, groups: np.ndarray, cv: CrossValidation, seed: int) -> list[tuple]:
    """(train_rows, test_rows) pairs of row positions from the sklearn splitter."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise SplitError(
            f"only {n_groups} {cv.group_by} group(s) in the data; cross-validation needs at least 2 "
            "(add subjects, or group_by: session/run if subjects have several sessions/runs)"
        )
    if cv.scheme == "loso":
        splitter = LeaveOneGroupOut()
    elif cv.scheme == "group_kfold":
        if cv.n_splits > n_groups:
            raise SplitError(
                f"cv.n_splits={cv.n_splits} but the data have only {n_groups} {cv.group_by} groups; "
                f"set cv.n_splits <= {n_groups} or use cv.scheme: loso"
            )
        splitter = StratifiedGroupKFold(n_splits=cv.n_splits, shuffle=True, random_state=seed)
    else:  # guarded by the config, kept for callers that bypass it
        raise SplitError(f"unknown cv.scheme '{cv.scheme}'; allowed: group_kfold, loso")
    return list(splitter.split(np.zeros(len(y)), y, groups))


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def _check_classes(fold: int, classes: list[str], y_train, y_test, test_subjects: list[str], cv: CrossValidation):
    for side, labels in (("train", y_train), ("test", y_test)):
        missing = sorted(set(classes) - set(labels))
        if missing:
            fix = (
                "use cv.scheme: group_kfold (several subjects per test fold) instead of loso"
                if cv.scheme == "loso"
                else f"use fewer cv.n_splits (now {cv.n_splits})"
            )
            raise SplitError(
                f"fold {fold}: class(es) {missing} missing from the {side} set "
                f"(test subjects: {', '.join(test_subjects)}); {fix}, or check the labels of these "
                "subjects (windows.event_id)"
            )


def make_folds(meta: pd.DataFrame, cv: CrossValidation, seed: int) -> dict[str, Any]:
    """Split windows into group-wise cross-validation folds.

    Parameters
    ----------
    meta
        Windows table with ``window_id``, ``subject``, ``session``, ``run``, ``label``.
    cv
        Scheme (``group_kfold``: sklearn ``StratifiedGroupKFold`` with shuffling;
        ``loso``: ``LeaveOneGroupOut``), ``n_splits`` and ``group_by``.
    seed
        Seed of the shuffle; same meta, config and seed give the same folds.

    Returns
    -------
    dict
        ``{"scheme", "group_by", "n_splits", "seed", "folds": [...], "audit": {...}}``
        where each fold holds sorted ``train``/``test`` window ids and an audit
        (groups, subjects and class counts per side). The caller may add
        ``windows_key``.

    Raises
    ------
    SplitError
        A single class overall, more splits than groups, or a class missing
        from a fold's train or test set; the message says how to fix it.
    """
    _check_meta(meta)
    y = meta["label"].astype(str).to_numpy()
    classes = sorted(set(y))
    if len(classes) < 2:
        raise SplitError(
            f"only one class ({classes}) in the windows; decoding needs at least 2. "
            "Check windows.event_id (which annotations become labels)"
        )
    groups = group_labels(meta, cv.group_by)
    subjects = _column_as_str(meta, "subject").to_numpy(dtype=object)
    ids = meta["window_id"].to_numpy().astype(int)

    folds = []
    for i, (train_rows, test_rows) in enumerate(_split_indices(y, groups, cv, seed)):
        if len(test_rows) == 0 or len(train_rows) == 0:
            raise SplitError(f"fold {i} has an empty train or test set; use fewer cv.n_splits")
        test_subjects = sorted(set(subjects[test_rows]))
        _check_classes(i, classes, y[train_rows], y[test_rows], test_subjects, cv)
        train_ids = sorted(int(v) for v in ids[train_rows])
        test_ids = sorted(int(v) for v in ids[test_rows])
        folds.append(
            {
                "fold": i,
                "train": train_ids,
                "test": test_ids,
                "audit": _fold_audit(
                    groups[train_rows], groups[test_rows], subjects[train_rows], subjects[test_rows],
                    y[train_rows], y[test_rows],
                ),
            }
        )
    result = {
        "scheme": cv.scheme,
        "group_by": cv.group_by,
        "n_splits": len(folds),
        "seed": int(seed),
        "classes": classes,
        "folds": folds,
    }
    result["audit"] = audit_folds(result, meta)
    logger.info(
        "%d %s folds over %d windows, %d %s groups", len(folds), cv.scheme, len(meta), len(set(groups)), cv.group_by
    )
    return result


def _fold_audit(train_groups, test_groups, train_subjects, test_subjects, y_train, y_test) -> dict[str, Any]:
    train_g, test_g = set(train_groups), set(test_groups)
    train_s, test_s = set(train_subjects), set(test_subjects)
    return {
        "train_groups": sorted(train_g),
        "test_groups": sorted(test_g),
        "train_subjects": sorted(train_s),
        "test_subjects": sorted(test_s),
        "overlap": sorted(train_g & test_g),
        "shared_subjects": sorted(train_s & test_s),
        "train_class_counts": _class_counts(np.asarray(y_train, dtype=object).astype(str)),
        "test_class_counts": _class_counts(np.asarray(y_test, dtype=object).astype(str)),
    }


# ----------------------------------------------------------------------------- audit


def audit_folds(folds: dict[str, Any], meta: pd.DataFrame | None = None) -> dict[str, Any]:
    """Check folds for leakage and completeness; return the top-level audit block.

    The check is independent of how the folds were made: it reads only the
    window ids of each fold and, when ``meta`` is given, recomputes groups and
    subjects from the windows table (otherwise it trusts each fold's audit lists).

    Parameters
    ----------
    folds
        A folds dict as made by :func:`make_folds` (or by hand).
    meta
        Windows table; recommended, it makes the check independent of the
        fold audits.

    Returns
    -------
    dict
        ``{"overlap_total": 0, "every_window_tested_once": True, "n_windows", "n_groups"}``.

    Raises
    ------
    SplitError
        A window on both sides of a fold, a group (or, with ``group_by:
        subject``, a subject) on both sides, or test sets that do not
        partition the windows.
    """
    group_by = folds.get("group_by", "subject")
    entries = folds.get("folds") or []
    if not entries:
        raise SplitError("folds dict holds no folds")
    lookup = None
    if meta is not None:
        lookup = pd.DataFrame(
            {"group": group_labels(meta, group_by), "subject": _column_as_str(meta, "subject").to_numpy(dtype=object)},
            index=meta["window_id"].astype(int).to_numpy(),
        )
    overlap_total = 0
    for entry in entries:
        fold = entry.get("fold")
        train, test = [int(v) for v in entry["train"]], [int(v) for v in entry["test"]]
        both = set(train) & set(test)
        if both:
            raise SplitError(f"fold {fold}: {len(both)} windows are in both train and test (e.g. {sorted(both)[:5]})")
        if lookup is not None:
            unknown = sorted((set(train) | set(test)) - set(lookup.index))
            if unknown:
                raise SplitError(f"fold {fold}: window ids {unknown[:5]} are not in the windows table; re-run splits")
            sides = {side: lookup.loc[ids] for side, ids in (("train", train), ("test", test))}
            shared_groups = set(sides["train"]["group"]) & set(sides["test"]["group"])
            shared_subjects = set(sides["train"]["subject"]) & set(sides["test"]["subject"])
        else:
            audit = entry.get("audit") or {}
            shared_groups = set(audit.get("train_groups", [])) & set(audit.get("test_groups", []))
            shared_subjects = set(audit.get("train_subjects", [])) & set(audit.get("test_subjects", []))
        if shared_groups:
            raise SplitError(
                f"leakage in fold {fold}: {group_by} group(s) {sorted(shared_groups)} are in both train and test"
            )
        if group_by == "subject" and shared_subjects:
            raise SplitError(f"leakage in fold {fold}: subject(s) {sorted(shared_subjects)} are in both train and test")
        if shared_subjects:
            logger.info("fold %s: subjects %s on both sides (group_by=%s)", fold, sorted(shared_subjects), group_by)
        overlap_total += len(shared_groups)

    all_tests = [int(v) for entry in entries for v in entry["test"]]
    universe = {int(v) for entry in entries for v in (*entry["train"], *entry["test"])}
    if lookup is not None:
        universe |= set(lookup.index)
    if len(all_tests) != len(set(all_tests)):
        raise SplitError("some windows are tested in more than one fold; test sets must be disjoint")
    untested = universe - set(all_tests)
    if untested:
        raise SplitError(f"{len(untested)} windows are never tested (e.g. {sorted(untested)[:5]}); re-run splits")
    n_groups = (
        int(lookup["group"].nunique())
        if lookup is not None
        else len({g for entry in entries for g in (entry.get("audit") or {}).get("test_groups", [])})
    )
    return {
        "overlap_total": overlap_total,
        "every_window_tested_once": True,
        "n_windows": len(universe),
        "n_groups": n_groups,
    }


# ----------------------------------------------------------------------------- inner validation


def carve_validation(
    meta: pd.DataFrame, train_ids: list[int], fraction: float, seed: int, group_by: str = "subject"
) -> tuple[list[int], list[int]]:
    """Split a fold's training windows into inner-train and validation by group.

    Only training groups are used, so early stopping never sees test subjects.
    Among seeded shuffles of the groups, the first that leaves every training
    class on both sides is taken (falling back to the first shuffle, with a
    warning).

    Parameters
    ----------
    meta
        Windows table.
    train_ids
        Window ids of the fold's training set.
    fraction
        Share of training groups for validation, in (0, 1); at least one group
        goes to each side.
    seed
        Seed of the group shuffle.
    group_by
        ``"subject"``, ``"session"`` or ``"run"``.

    Returns
    -------
    tuple of list of int
        Sorted inner-train window ids and sorted validation window ids.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    sub = meta.set_index(meta["window_id"].astype(int)).loc[sorted(int(v) for v in train_ids)]
    groups = group_labels(sub, group_by)
    unique = np.array(sorted(set(groups)), dtype=object)
    if len(unique) < 2:
        raise SplitError(
            f"the training set has {len(unique)} {group_by} group(s); an inner validation set needs at least 2 "
            "(use fewer cv.n_splits so more subjects train)"
        )
    n_val = int(np.clip(round(fraction * len(unique)), 1, len(unique) - 1))
    labels = sub["label"].astype(str).to_numpy()
    classes = set(labels)
    rng = np.random.default_rng(seed)
    first = None
    for _ in range(100):
        val_groups = set(rng.permutation(unique)[:n_val])
        is_val = np.array([g in val_groups for g in groups])
        first = is_val if first is None else first
        if set(labels[is_val]) == classes and set(labels[~is_val]) == classes:
            break
    else:
        logger.warning("no validation split of %d %s groups keeps every class on both sides", len(unique), group_by)
        is_val = first
    ids = sub.index.to_numpy()
    return sorted(int(v) for v in ids[~is_val]), sorted(int(v) for v in ids[is_val])


# ----------------------------------------------------------------------------- io


def write_folds(path: str | PathLike, folds: dict[str, Any], meta: pd.DataFrame | None = None) -> None:
    """Assert the leakage audit, then write ``folds`` as JSON atomically.

    Parameters
    ----------
    path
        Destination ``folds.json``.
    folds
        Folds dict (see :func:`make_folds`).
    meta
        Windows table; when given, groups and subjects are recomputed from it
        rather than read from the folds' own audit lists (recommended).

    Raises
    ------
    SplitError
        If the folds leak or their test sets do not partition the windows;
        nothing is written then.
    """
    audit = audit_folds(folds, meta)
    stored = folds.get("audit") or {}
    if stored.get("overlap_total", 0) != 0 or stored.get("every_window_tested_once") is False:
        raise SplitError(f"the folds' own audit reports leakage: {stored}")
    out = {**folds, "audit": {**stored, **audit}}
    atomic.write_json(path, out)


def load_folds(path: str | PathLike) -> dict[str, Any]:
    """Read a ``folds.json`` written by :func:`write_folds`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the splits rule")
    folds = json.loads(path.read_text())
    if "folds" not in folds:
        raise ValueError(f"{path} is not a folds file (no 'folds' key)")
    return folds
