"""Cross-validation folds by the designs researchers name, with a leakage audit (docs/architecture.md §2.2, invariant 2).

Each scheme (``cv.scheme``) holds out one kind of unit (:mod:`eegfm.groups`):

=====================  ==========  ==========================================================
scheme                 unit        fold k tests
=====================  ==========  ==========================================================
``group_kfold``        group_by    a seeded, class-stratified k-th share of the groups
                                   (sklearn ``StratifiedGroupKFold``; a regression target:
                                   quantile bins of the groups' mean, :mod:`eegfm.fold_targets`);
                                   cross-subject with ``group_by: subject``
``loso``               group_by    one group (``LeaveOneGroupOut``): leave-one-subject-out
``cross_session``      session     the k-th session of every subject
``leave_one_run_out``  run         the k-th run (by session, then run) of every subject
``within_subject``     block       the k-th of ``n_splits`` time-ordered blocks of every subject
=====================  ==========  ==========================================================

Sessions and runs are put in natural order (``run-2`` before ``run-10``).

**One pooled model per fold.** Every scheme trains one model per fold on
the training windows of all subjects. In the within-subject designs
(``cross_session``, ``leave_one_run_out``, ``within_subject``) fold k tests
the k-th session/run/block of *every* subject at once, so each subject's
test data is predicted by a model that saw that subject's other data (and
the other subjects'). This is the recommended design: the number of trained
models is the number of folds, not subjects × folds, each model gets more
data, and no test window's unit (or time neighbour) ever trains. With one
subject it is the classic single-subject design. Per-subject models are not
offered.

**Blocks and gaps.** ``within_subject`` orders each subject's windows by
session, run, recording and onset and cuts them into ``n_splits``
contiguous, nearly equal blocks. Where a block edge falls inside a
recording, training windows closer than ``cv.gap_s`` (edge to edge; null:
one window length) to a test window of the same recording are dropped from
that fold's training set; they are tested in their own fold. Overlapping
windows are always dropped. The audit re-checks the gap, and identical
windows (content hashes) anywhere across a split stop the job
(:mod:`eegfm.fold_audit`).

``cross_session`` and ``leave_one_run_out`` need at least two sessions/runs
for every subject: a subject with one would be tested without any of its own
data in training, silently mixing a cross-subject question into the design.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from eegfm.config import CrossValidation
from eegfm.fold_audit import audit_folds, check_duplicates, check_fold_records, warn_repeated, write_folds
from eegfm.fold_targets import check_fold_targets, fold_targets, side_summary, stratification_labels
from eegfm.groups import (
    GROUP_COLUMNS,
    SplitError,
    block_label,
    column_as_str,
    design_gap,
    group_labels,
    natural_key,
    near_windows,
    plural,
    time_order,
)

__all__ = ["GROUP_COLUMNS", "SplitError", "audit_folds", "expected_n_folds", "group_labels", "load_folds",
           "make_folds", "write_folds"]

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.windows_store import WindowsStore

logger = logging.getLogger(__name__)

# within-subject designs that hold out the k-th of these labels of every subject
POSITION_LEVELS = {"cross_session": ("session",), "leave_one_run_out": ("session", "run")}


# ----------------------------------------------------------------------------- fold counts


def _positions(subjects: list[str], keys: list[tuple], scheme: str) -> tuple[np.ndarray, int]:
    """Fold of each row = position of its session/run among its subject's (natural order)."""
    per_subject: dict[str, list[tuple]] = {}
    for subject, key in zip(subjects, keys):
        per_subject.setdefault(subject, [])
        if key not in per_subject[subject]:
            per_subject[subject].append(key)
    unit = POSITION_LEVELS[scheme][-1]
    single = sorted((s for s, k in per_subject.items() if len(k) < 2), key=natural_key)
    if single:
        raise SplitError(
            f"cv.scheme {scheme} tests each subject's {plural(unit)} against its other {plural(unit)}, but "
            f"subject(s) {', '.join(single)} have only one {unit}; remove them, or use cv.scheme group_kfold/loso "
            "(cross-subject) or within_subject (time blocks)"
        )
    order = {s: {k: i for i, k in enumerate(sorted(ks, key=lambda k: [natural_key(v) for v in k]))}
             for s, ks in per_subject.items()}
    fold = np.array([order[s][k] for s, k in zip(subjects, keys)], dtype=int)
    return fold, max(len(v) for v in per_subject.values())


def expected_n_folds(
    cv: CrossValidation, units: Iterable[tuple] | Callable[[], Iterable[tuple]] | None = None
) -> int:
    """How many folds :func:`make_folds` makes, known before any recording is read (the DAG needs it).

    Parameters
    ----------
    cv
        The design.
    units
        ``(subject, session, run)`` of every recording (``None`` for unknown
        session/run), or a callable returning them; only called for schemes
        whose fold count depends on the recordings (not ``group_kfold`` and
        ``within_subject``, which make ``n_splits`` folds).

    Raises
    ------
    SplitError
        Fewer than 2 folds, or a subject with a single session/run for
        ``cross_session``/``leave_one_run_out`` (naming the subjects).
    """
    if cv.scheme in ("group_kfold", "within_subject"):
        return cv.n_splits
    if units is None:
        raise ValueError(f"cv.scheme {cv.scheme}: the fold count needs the recordings' subject/session/run")
    rows = [tuple("" if v is None else str(v) for v in r) for r in (units() if callable(units) else units)]
    if cv.scheme == "loso":
        n = len({r[: len(GROUP_COLUMNS[cv.group_by])] for r in rows})
        if n < 2:
            raise SplitError(
                f"cv.scheme loso: only {n} {cv.group_by} group(s) in the recordings; it needs 2. For one subject, "
                "use cv.scheme leave_one_run_out (runs), cross_session (sessions) or within_subject (time blocks)"
            )
        return n
    depth = 1 + len(POSITION_LEVELS[cv.scheme])
    return _positions([r[0] for r in rows], [r[1:depth] for r in rows], cv.scheme)[1]


# ----------------------------------------------------------------------------- fold assignment


def _check_meta(meta: pd.DataFrame) -> None:
    for column in ("window_id", "subject", "label"):
        if column not in meta:
            raise SplitError(f"the windows table has no '{column}' column; re-run the windows rule")
    if meta["window_id"].duplicated().any():
        raise SplitError("window_id is not unique in the windows table; re-run the windows rule")
    if meta["label"].isna().any():
        n = int(meta["label"].isna().sum())
        raise SplitError(f"{n} windows have no label; check windows.event_id in the config")


def _sklearn_splits(y: np.ndarray, groups: np.ndarray, cv: CrossValidation, seed: int) -> list[tuple]:
    """(train_rows, test_rows) pairs of row positions from the sklearn splitter."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise SplitError(
            f"only {n_groups} {cv.group_by} group(s) in the data; cross-validation needs at least 2 "
            "(add subjects, or use cv.scheme leave_one_run_out / cross_session / within_subject for one subject)"
        )
    if cv.scheme == "loso":
        splitter = LeaveOneGroupOut()
    else:
        if cv.n_splits > n_groups:
            raise SplitError(
                f"cv.n_splits={cv.n_splits} but the data have only {n_groups} {cv.group_by} groups; "
                f"set cv.n_splits <= {n_groups} or use cv.scheme: loso"
            )
        splitter = StratifiedGroupKFold(n_splits=cv.n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def _block_folds(meta: pd.DataFrame, n_splits: int) -> np.ndarray:
    """Fold of each row for ``within_subject``: its subject's time-ordered block."""
    order = time_order(meta)
    subjects = column_as_str(meta, "subject").to_numpy(dtype=object)
    fold = np.full(len(meta), -1, dtype=int)
    small = []
    for subject in sorted(set(subjects), key=natural_key):
        rows = order[subjects[order] == subject]
        if len(rows) < n_splits:
            small.append(f"{subject} ({len(rows)})")
            continue
        for k, block in enumerate(np.array_split(rows, n_splits)):
            fold[block] = k
    if small:
        raise SplitError(f"cv.scheme within_subject cuts each subject into {n_splits} blocks, but subject(s) "
                         f"{', '.join(small)} have fewer windows; lower cv.n_splits or remove them")
    return fold


def _design_folds(meta: pd.DataFrame, y: np.ndarray, cv: CrossValidation, seed: int, target: str):
    """(train_rows, test_rows) pairs and each row's unit label."""
    if cv.scheme in ("group_kfold", "loso"):
        groups = group_labels(meta, cv.group_by)
        return _sklearn_splits(stratification_labels(y, groups, cv.n_splits, target), groups, cv, seed), groups
    subjects = column_as_str(meta, "subject").to_numpy(dtype=object)
    if cv.scheme == "within_subject":
        fold = _block_folds(meta, cv.n_splits)
        groups = np.array([block_label(s, k) for s, k in zip(subjects, fold)], dtype=object)
    else:
        columns = POSITION_LEVELS[cv.scheme]
        keys = list(zip(*(column_as_str(meta, c).tolist() for c in columns)))
        fold, _ = _positions(list(subjects), keys, cv.scheme)
        groups = group_labels(meta, cv.unit)
    pairs = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(int(fold.max()) + 1)]
    return pairs, groups


def make_folds(
    meta: pd.DataFrame, cv: CrossValidation, seed: int, window_s: float | None = None, target: str = "classification"
) -> dict[str, Any]:
    """Split windows into cross-validation folds of the design ``cv`` (see the module docstring).

    Parameters
    ----------
    meta
        Windows table with ``window_id``, ``subject``, ``session``, ``run``,
        ``label`` (and ``recording``, ``onset_s`` for time order and gaps;
        ``content_hash`` for the duplicate audit).
    cv
        Scheme, ``n_splits``, ``group_by`` and ``gap_s``.
    seed
        Seed of the ``group_kfold`` shuffle (the other schemes are
        deterministic); same meta, config and seed give the same folds.
    window_s
        Window length in seconds; needed by ``within_subject`` (gaps at
        block edges). When given, every scheme drops training windows closer
        than the gap to a test window of the same recording.
    target
        ``"classification"`` or ``"regression"`` (the windows store's
        ``target``): what ``group_kfold`` stratifies on and what every fold
        is checked for (:mod:`eegfm.fold_targets`).

    Returns
    -------
    dict
        ``{"scheme", "group_by", "unit", "n_splits", "seed", "target",
        "classes", "window_s", "gap_s", "folds": [...], "audit": {...}}``
        where each fold holds sorted ``train``/``test`` window ids and an
        audit (units, subjects and class counts per side — for regression
        ``train_target``/``test_target`` with n, mean, min, max —
        ``gap_dropped``). ``classes`` is empty for regression. The caller may
        add ``windows_key``.

    Raises
    ------
    SplitError
        A single class overall, more splits than groups, a subject with too
        few sessions/runs/windows for the design, a class missing from a
        fold's train or test set, a regression target that is not numeric or
        is constant over a fold's training set, or a leaking split; the
        message says how to fix it.
    """
    _check_meta(meta)
    y, classes = fold_targets(meta["label"].to_numpy(), target)
    regression = target == "regression"
    side = "target" if regression else "class_counts"
    if cv.scheme == "within_subject" and window_s is None:
        raise SplitError("cv.scheme within_subject needs the window length (window_s) for the gap at block edges")
    gap_s = design_gap(window_s, cv.gap_s)
    pairs, groups = _design_folds(meta, y, cv, seed, target)
    subjects = column_as_str(meta, "subject").to_numpy(dtype=object)
    ids = meta["window_id"].to_numpy().astype(int)

    # before gaps are cut: a recording listed twice shares its path, so the gap would silently drop its copy
    check_duplicates(meta, [{"fold": i, "train": ids[tr], "test": ids[te]} for i, (tr, te) in enumerate(pairs)],
                     pd.Series(groups, index=ids, dtype=object, name=cv.unit))
    folds = []
    for i, (train_rows, test_rows) in enumerate(pairs):
        dropped = 0
        if window_s is not None:
            close = near_windows(meta, train_rows, test_rows, float(window_s), gap_s)
            dropped, train_rows = int(close.sum()), train_rows[~close]
        if len(test_rows) == 0 or len(train_rows) == 0:
            raise SplitError(f"fold {i} has an empty train or test set; use fewer cv.n_splits")
        test_groups = sorted(set(groups[test_rows]), key=natural_key)
        check_fold_targets(i, classes, y[train_rows], y[test_rows], test_groups, cv.scheme, cv.n_splits, cv.unit)
        folds.append({
            "fold": i,
            "train": sorted(int(v) for v in ids[train_rows]),
            "test": sorted(int(v) for v in ids[test_rows]),
            "audit": {
                "train_groups": sorted(set(groups[train_rows]), key=natural_key),
                "test_groups": test_groups,
                "train_subjects": sorted(set(subjects[train_rows])),
                "test_subjects": sorted(set(subjects[test_rows])),
                "overlap": sorted(set(groups[train_rows]) & set(groups[test_rows])),
                "shared_subjects": sorted(set(subjects[train_rows]) & set(subjects[test_rows])),
                "gap_dropped": dropped,
                f"train_{side}": side_summary(y[train_rows], regression),
                f"test_{side}": side_summary(y[test_rows], regression),
            },
        })
    result = {
        "scheme": cv.scheme, "group_by": cv.group_by, "unit": cv.unit, "n_splits": len(folds), "seed": int(seed),
        "target": target, "classes": classes, "window_s": None if window_s is None else float(window_s), "gap_s": gap_s, "folds": folds,
    }
    result["audit"] = audit_folds(result, meta)
    logger.info("%d %s folds over %d windows, %d held-out %s", len(folds), cv.scheme, len(meta), len(set(groups)),
                plural(cv.unit))
    return result


# ----------------------------------------------------------------------------- io


def load_folds(path: str | PathLike, store: WindowsStore | None = None) -> dict[str, Any]:
    """Read a ``folds.json`` written by :func:`eegfm.fold_audit.write_folds`.

    Parameters
    ----------
    path
        The folds file.
    store
        The windows store the folds were made from. Given (as every stage that
        trains on the folds gives it), the folds must name its content key,
        the leakage audit runs again on the file as read against its windows
        table, and each fold's recorded units are checked against its
        windows: a ``folds.json`` edited after the splits job is refused
        rather than trained on (docs/architecture.md §2.2).

    Raises
    ------
    ValueError
        With ``store``: the folds were made for other windows.
    SplitError
        With ``store``: the folds leak, or a fold's audit no longer describes
        its windows; the message names the file and how to re-make it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the splits rule")
    folds = json.loads(path.read_text())
    if "folds" not in folds:
        raise ValueError(f"{path} is not a folds file (no 'folds' key)")
    if store is not None:
        if folds.get("windows_key") and folds["windows_key"] != store.key:
            raise ValueError(f"folds {path} were made for windows {folds['windows_key'][:12]} but the windows store "
                             f"is now {store.key[:12]}; re-run the splits rule: snakemake --forcerun {path}")
        try:
            audit_folds(folds, store.meta)
            check_fold_records(folds, store.meta)
        except SplitError as error:
            raise SplitError(f"{path}: {error}. Edited after the splits job? Re-make it: "
                             f"snakemake --forcerun {path}") from error
    return folds


def split_store(
    store: WindowsStore, cv: CrossValidation, seed: int, path: str | PathLike, *, expected: int | None = None
) -> dict[str, Any]:
    """The splits stage: folds of an opened windows store, audited and written to ``path``.

    What the splits rule and the Python API run. ``expected`` is the fold
    count the workflow planned when it built its DAG; a store that gives
    another count (a recording without windows) stops here, before anything
    is trained on folds that do not match the plan.

    Returns
    -------
    dict
        The folds as written (see :func:`make_folds`), with ``windows_key``.
    """
    from eegfm.near_duplicates import content_groups
    from eegfm.windows_store import content_hashes

    meta = store.meta.assign(content_hash=content_hashes(store).loc[store.meta["window_id"]].to_numpy())
    # a recording saved again in another format has other bytes: the audit compares the signal (docs §2.2)
    meta["content_group"] = content_groups(store.X, meta).loc[meta["window_id"]].to_numpy()
    folds = make_folds(meta, cv, seed=seed, window_s=store.info["n_times"] / store.info["sfreq"],
                       target=store.info.get("target", "classification"))
    if expected is not None and folds["n_splits"] != expected:
        raise SplitError(
            f"the windows give {folds['n_splits']} {cv.scheme} folds but the workflow planned {expected} from the "
            "recordings (a recording without windows?); fix or remove the recordings that yield no window"
        )
    folds["windows_key"] = store.key
    folds["audit"]["repeated_windows"] = warn_repeated(meta)  # recorded: each copy counts twice
    write_folds(path, folds, meta)
    return folds
