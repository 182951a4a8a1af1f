"""The leakage audit of cross-validation folds, asserted before ``folds.json`` is written (docs/architecture.md §2.2, invariant 2).

:func:`audit_folds` re-derives everything from the window ids and, when
given, the windows table, independently of how the folds were made:

- no window on both sides of a fold, and test sets that partition the windows;
- no held-out unit (subject, session, run or block) on both sides; with
  ``subject`` units no subject either;
- no training window closer than the design's gap to a test window of the
  same recording (overlapping windows count as closer than any gap);
- where every subject's windows share one label (recording-level labels,
  e.g. patient vs control, or a target such as age), no subject on both
  sides: the subject's identity would give away its label; likewise, where
  every recording holds a single label, no recording on both sides (time
  blocks cut inside it);
- no identical window (``content_hash`` column of ``windows.tsv``, or the
  ``content_group`` of :mod:`eegfm.near_duplicates`, which also joins a copy
  saved in another format) under two subjects, nor on both sides of any
  fold: a recording listed twice (under two subject ids, or as two runs)
  would otherwise score as if it generalised.

:func:`write_folds` runs the audit, so a folds file that exists has passed it.
"""

from __future__ import annotations

import logging
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from eegfm import atomic
from eegfm.groups import SplitError, column_as_str, held_out_unit, near_windows, plural, window_units
from eegfm.near_duplicates import MIN_CORRELATION

logger = logging.getLogger(__name__)

_SHOWN = 4  # recordings named in a duplicate message


def _describe(rows: pd.DataFrame) -> str:
    """``"a.edf (subject 01): 40 windows, ..."`` for the recordings of some windows."""
    counts = rows.groupby([column_as_str(rows, "recording"), column_as_str(rows, "subject")]).size()
    parts = [f"{rec} (subject {subject}): {n} windows" for (rec, subject), n in counts.items()]
    more = f", and {len(parts) - _SHOWN} more" if len(parts) > _SHOWN else ""
    return ", ".join(parts[:_SHOWN]) + more


def _how(rows: pd.DataFrame) -> str:
    """How the copies were matched: by their bytes, or as the same signal in other bytes."""
    if "content_group" in rows and "content_hash" in rows and (rows["content_group"] != rows["content_hash"]).any():
        return (f"the same signal in other bytes: per-channel spread and correlation >= {MIN_CORRELATION} "
                "across recordings, e.g. a copy saved in another format")
    return "sha256 of the samples"


def _content_column(meta: pd.DataFrame) -> str | None:
    """The column that says which windows hold the same signal: ``content_group`` (copies in other bytes too,
    :mod:`eegfm.near_duplicates`) where present, else ``content_hash``; ``None`` without either."""
    return next((c for c in ("content_group", "content_hash") if c in meta), None)


def check_duplicates(meta: pd.DataFrame, entries: list[dict[str, Any]], units: pd.Series | None = None) -> bool:
    """Stop on identical windows under two subjects, in two held-out units, or on both sides of a fold.

    Parameters
    ----------
    meta
        Windows table; its ``content_group`` column (the same signal, see
        :mod:`eegfm.near_duplicates`) is compared where present, else
        ``content_hash``; without either nothing is checked.
    entries
        The folds (``train``/``test`` window ids).
    units
        Each window's held-out unit, indexed by ``window_id`` (named by the
        unit). Copies in two units stop the split even where these folds
        happen to test both units together: another seed's folds would put
        them on both sides, and a verdict must not hang on the seed.

    Returns
    -------
    bool
        Whether the check ran (the table had hashes).

    Raises
    ------
    SplitError
        Naming the recordings and subjects that hold the identical windows.
    """
    column = _content_column(meta)
    if column is None:
        return False
    table = meta.set_index(meta["window_id"].astype(int).to_numpy())
    hashes = table[column].astype(str)
    repeated = hashes[hashes.duplicated(keep=False)]
    if repeated.empty:
        return True
    subjects = column_as_str(table, "subject").loc[repeated.index]
    per_hash = subjects.groupby(repeated).nunique()
    crossing = set(per_hash.index[per_hash > 1])
    if crossing:
        rows = table.loc[repeated.index[repeated.isin(crossing)]]
        raise SplitError(
            f"{len(rows)} windows occur under more than one subject with identical content ({_how(rows)}): "
            f"{_describe(rows)}. The same recording is probably listed under two subject ids; "
            "remove or correct the duplicate (files.metadata, the file globs or the BIDS root). Left in, "
            "its windows would be tested against their own copies."
        )
    candidates = set(repeated.index)
    for entry in entries:
        _check_sides(entry, candidates, hashes, table)
    if units is not None:
        unit = units.name or "unit"
        per_unit = units.loc[repeated.index].astype(str).groupby(repeated).nunique()
        spread = set(per_unit.index[per_unit > 1])
        if spread:
            rows = table.loc[repeated.index[repeated.isin(spread)]]
            raise SplitError(
                f"{len(rows)} windows occur in more than one held-out {unit} with identical content "
                f"({_how(rows)}): {_describe(rows)}. A recording listed twice (e.g. as two runs or sessions)? "
                "Remove the duplicate; identical windows can also be flat or clipped stretches (check the "
                "recordings). These folds test both copies together; another seed's would test one against the "
                "other."
            )
    return True


def warn_repeated(meta: pd.DataFrame) -> int:
    """Log identical windows that :func:`check_duplicates` let pass; return how many windows they are.

    No fold has one copy in training and another in test (that stops
    :func:`check_duplicates`), so they leak nothing, but each copy counts
    again in training and in the score, and a CI over windows would be too
    narrow: said, not stopped, as flat or clipped stretches and two events at
    one sample repeat too. Only copies within one held-out unit get here:
    copies in two units stop :func:`check_duplicates` whatever the seed.
    """
    column = _content_column(meta)
    if column is None:
        return 0
    rows = meta[column_as_str(meta, column).duplicated(keep=False).to_numpy()]
    if len(rows):
        logger.warning(
            "%d windows are identical to other windows of the same subject (%s): %s. Each copy counts again in "
            "training and in the score; a recording listed twice under one subject? Remove the duplicate, or "
            "check for flat or clipped stretches", len(rows), _how(rows), _describe(rows))
    return len(rows)


def _check_sides(entry: dict[str, Any], candidates: set[int], hashes: pd.Series, table: pd.DataFrame) -> None:
    """Stop when a fold holds identical windows on its training and its test side."""
    train = [int(w) for w in entry["train"] if int(w) in candidates]
    test = [int(w) for w in entry["test"] if int(w) in candidates]
    common = set(hashes.loc[train]) & set(hashes.loc[test])
    if common:
        test_rows = table.loc[[w for w in test if hashes.loc[w] in common]]
        train_rows = table.loc[[w for w in train if hashes.loc[w] in common]]
        raise SplitError(
            f"fold {entry.get('fold')}: {len(test_rows)} test windows are identical "
            f"({_how(pd.concat([test_rows, train_rows]))}) "
            f"to training windows. Test side: {_describe(test_rows)}; training side: {_describe(train_rows)}. "
            "A recording listed twice (e.g. as two runs or sessions)? Remove the duplicate; identical "
            "windows can also be flat or clipped stretches (check the recordings)."
        )


def _check_gap(meta: pd.DataFrame, entry: dict[str, Any], rows_of: pd.Series, window_s: float, gap_s: float) -> None:
    train = rows_of.loc[[int(v) for v in entry["train"]]].to_numpy()
    test = rows_of.loc[[int(v) for v in entry["test"]]].to_numpy()
    close = near_windows(meta, train, test, window_s, gap_s)
    if close.any():
        first = meta.iloc[train[np.flatnonzero(close)[0]]]
        raise SplitError(
            f"leakage in fold {entry.get('fold')}: {int(close.sum())} training windows lie within {gap_s:g} s "
            f"(edge to edge) of a test window of the same recording, e.g. {first.get('recording')} at "
            f"{first.get('onset_s')} s; re-run splits"
        )


def _one_label_per(meta: pd.DataFrame, column: str) -> bool:
    """Whether the labels are a property of ``column`` (subject or recording): one label (or target value) per
    value of it, several overall."""
    if "label" not in meta.columns or column not in meta.columns or meta.empty:
        return False
    labels = column_as_str(meta, "label")
    return labels.nunique() > 1 and bool((labels.groupby(column_as_str(meta, column)).nunique() == 1).all())


def _check_subject_labels(fold: Any, shared_subjects: set, unit: str) -> None:
    if shared_subjects:
        raise SplitError(
            f"leakage in fold {fold}: every window of a subject carries the same label (a recording-level label "
            f"such as files.label_column, or a target such as age), and subject(s) {sorted(shared_subjects)[:5]} "
            f"are on both sides of the fold (held-out unit: {unit}): a model that recognises the subject predicts "
            "its label. Cross-validate by subject: cv.scheme group_kfold or loso with group_by: subject"
        )


def _check_recording_labels(fold: Any, shared_recordings: set) -> None:
    if shared_recordings:
        raise SplitError(
            f"leakage in fold {fold}: every recording carries a single label, and recording(s) "
            f"{sorted(shared_recordings)[:3]} are on both sides of the fold (time blocks cut inside them): a model "
            "that recognises the recording (its impedances, noise, drift) predicts its label. Hold out whole "
            "recordings (cv.scheme leave_one_run_out, cross_session, or group_kfold with group_by: run), which needs "
            "each class (or target value) recorded in several recordings per subject"
        )


def audit_folds(folds: dict[str, Any], meta: pd.DataFrame | None = None) -> dict[str, Any]:
    """Check folds for leakage and completeness; return the top-level audit block.

    Parameters
    ----------
    folds
        A folds dict as made by :func:`eegfm.splits.make_folds` (or by hand);
        ``unit`` (else ``group_by``) names the held-out unit, ``window_s`` and
        ``gap_s`` (when present) the gap to check.
    meta
        Windows table; recommended, it makes the check independent of the
        fold audits and enables the gap and duplicate checks.

    Returns
    -------
    dict
        ``{"overlap_total": 0, "every_window_tested_once": True, "n_windows",
        "n_groups", "unit", "duplicates_checked"}``.

    Raises
    ------
    SplitError
        A window on both sides of a fold, a unit (or, with subject units or
        one label per subject, a subject; with one label per recording, a
        recording) on both sides, a training window
        too close to a test window of its recording, identical windows
        across subjects or sides, or test sets that do not partition the
        windows.
    """
    unit = held_out_unit(folds)
    entries = folds.get("folds") or []
    if not entries:
        raise SplitError("folds dict holds no folds")
    lookup = None
    if meta is not None:
        ids = meta["window_id"].astype(int).to_numpy()
        for entry in entries:
            unknown = sorted({int(v) for v in (*entry["train"], *entry["test"])} - set(ids))
            if unknown:
                raise SplitError(f"fold {entry.get('fold')}: window ids {unknown[:5]} are not in the windows table; "
                                 "re-run splits")
        lookup = pd.DataFrame(
            {"group": window_units(meta, folds).loc[ids].to_numpy(),
             "subject": column_as_str(meta, "subject").to_numpy(dtype=object),
             "recording": column_as_str(meta, "recording").to_numpy(dtype=object), "row": np.arange(len(meta))},
            index=ids,
        )
    window_s, gap_s = folds.get("window_s"), folds.get("gap_s")
    subject_labels = meta is not None and _one_label_per(meta, "subject")
    recording_labels = meta is not None and not subject_labels and _one_label_per(meta, "recording")
    overlap_total = 0
    for entry in entries:
        fold = entry.get("fold")
        train, test = [int(v) for v in entry["train"]], [int(v) for v in entry["test"]]
        both = set(train) & set(test)
        if both:
            raise SplitError(f"fold {fold}: {len(both)} windows are in both train and test (e.g. {sorted(both)[:5]})")
        if lookup is not None:
            sides = {"train": lookup.loc[train], "test": lookup.loc[test]}
            shared_groups = set(sides["train"]["group"]) & set(sides["test"]["group"])
            shared_subjects = set(sides["train"]["subject"]) & set(sides["test"]["subject"])
            if window_s is not None and gap_s is not None:
                _check_gap(meta, entry, lookup["row"], float(window_s), float(gap_s))
        else:
            audit = entry.get("audit") or {}
            shared_groups = set(audit.get("train_groups", [])) & set(audit.get("test_groups", []))
            shared_subjects = set(audit.get("train_subjects", [])) & set(audit.get("test_subjects", []))
        if shared_groups:
            raise SplitError(f"leakage in fold {fold}: {unit} group(s) {sorted(shared_groups)} are in both train and test")
        if unit == "subject" and shared_subjects:
            raise SplitError(f"leakage in fold {fold}: subject(s) {sorted(shared_subjects)} are in both train and test")
        if subject_labels:
            _check_subject_labels(fold, shared_subjects, unit)
        if recording_labels:  # meta given, so the sides were looked up
            _check_recording_labels(fold, set(sides["train"]["recording"]) & set(sides["test"]["recording"]))
        if shared_subjects:
            logger.info("fold %s: subjects %s on both sides (held-out unit: %s)", fold, sorted(shared_subjects), unit)
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
    checked = check_duplicates(meta, entries, lookup["group"].rename(unit)) if lookup is not None else False
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
        "unit": unit,
        "duplicates_checked": checked,
    }


def check_fold_records(folds: dict[str, Any], meta: pd.DataFrame) -> None:
    """Each fold's recorded units (its ``audit``) are those its windows hold.

    The per-fold audit is what the report, the model cards and the fold
    records cite as held out; a ``folds.json`` edited after the splits job (a
    window moved from test to train) would keep citing the old sides.

    Raises
    ------
    SplitError
        Naming the fold, the side, the recorded units and the units found.
    """
    units = window_units(meta, folds)
    unit = plural(held_out_unit(folds))
    for entry in folds.get("folds") or []:
        audit = entry.get("audit") or {}
        for side in ("train", "test"):
            recorded = audit.get(f"{side}_groups")
            if recorded is None:  # folds made by hand, without per-fold audits: audit_folds is the check
                continue
            found = {str(u) for u in units.loc[[int(v) for v in entry[side]]]}
            if {str(u) for u in recorded} != found:
                raise SplitError(
                    f"fold {entry.get('fold')}: its audit lists {side} {unit} {sorted(map(str, recorded))[:6]} but "
                    f"its {side} windows hold {sorted(found)[:6]}"
                )


def write_folds(path: str | PathLike, folds: dict[str, Any], meta: pd.DataFrame | None = None) -> None:
    """Assert the leakage audit, then write ``folds`` as JSON atomically.

    Parameters
    ----------
    path
        Destination ``folds.json``.
    folds
        Folds dict (see :func:`eegfm.splits.make_folds`).
    meta
        Windows table; when given, units and subjects are recomputed from it
        rather than read from the folds' own audit lists, and the gap and
        duplicate checks run (recommended).

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
    atomic.write_json(path, {**folds, "audit": {**stored, **audit}})
