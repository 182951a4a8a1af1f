"""What the kind of target changes in the folds: stratification, the per-fold checks and the audit's counts.

Classification
    ``group_kfold`` stratifies on the classes (``StratifiedGroupKFold``); every
    class must occur on both sides of every fold (a class missing from a
    training set cannot be learnt, one missing from a test set cannot be
    scored); the audit counts the classes per side.

Regression
    ``group_kfold`` stratifies on **quantile bins of the held-out groups' mean
    target**: each group's windows get the bin of the group's mean, with as
    many bins as keep at least ``n_splits`` groups in each (at most 10), so
    every test fold spans the range of the target and no training fold
    misses one end of it (which would turn the test into an extrapolation and
    inflate the fold-to-fold variance). It balances the folds only; the held-
    out question (new subjects) is unchanged. A test fold may hold a single
    value (leave-one-subject-out with a recording-level target such as age):
    its own r and R² are undefined, the pooled out-of-fold ones are not. The
    training target of every fold must vary (a constant cannot be regressed
    on). The audit gives the target's n, mean, min and max per side.
"""

from __future__ import annotations

import numpy as np

from eegfm.groups import SplitError, plural
from eegfm.metrics import parse_targets

MAX_BINS = 10


def fold_targets(labels: np.ndarray, target: str) -> tuple[np.ndarray, list[str]]:
    """The labels as the folds see them, and the classes (empty for regression).

    Raises
    ------
    SplitError
        A single class, or a regression target that is not numeric or does not vary.
    """
    labels = np.array([str(v) for v in labels], dtype=object)
    if target == "regression":
        try:
            y = parse_targets(labels)
        except ValueError as err:
            raise SplitError(str(err)) from None
        if np.ptp(y) == 0:
            raise SplitError(f"the regression target is constant ({y[0]:g}) over all windows; it must vary. "
                             "Check the label column (files.label_column / bids.label_column, or the Python "
                             "API's metadata)")
        return y, []
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise SplitError(
            f"only one class ({classes}) in the windows; decoding needs at least 2. "
            "Check which labels the windows get: windows.event_id or the label column (the Python API: the "
            "metadata's label column)"
        )
    return labels, classes


def stratification_labels(y: np.ndarray, groups: np.ndarray, n_splits: int, target: str) -> np.ndarray:
    """What ``StratifiedGroupKFold`` balances: the classes, or quantile bins of each group's mean target."""
    if target != "regression":
        return y
    names, codes = np.unique(groups.astype(str), return_inverse=True)
    means = np.bincount(codes, weights=y) / np.bincount(codes)
    n_bins = int(np.clip(len(names) // max(n_splits, 1), 1, MAX_BINS))
    edges = np.quantile(means, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, means, side="right")[codes]


def check_fold_targets(fold: int, classes: list[str], y_train: np.ndarray, y_test: np.ndarray,
                       test_groups: list[str], scheme: str, n_splits: int, unit: str) -> None:
    """Every class on both sides (classification), or a training target that varies (regression)."""
    held_out = f"test {plural(unit)}: {', '.join(test_groups)}"
    if not classes:
        if np.ptp(y_train) == 0:
            raise SplitError(
                f"fold {fold}: the training target is constant ({y_train[0]:g}) ({held_out}); a regression cannot "
                f"be fitted on it. Use more {plural(unit)} or another cv.scheme"
            )
        return
    for side, labels in (("train", y_train), ("test", y_test)):
        missing = sorted(set(classes) - set(labels))
        if missing:
            fix = {
                "loso": "use cv.scheme: group_kfold (several subjects per test fold) instead of loso",
                "group_kfold": f"use fewer cv.n_splits (now {n_splits})",
                "within_subject": f"use fewer cv.n_splits (now {n_splits}) so each time block holds every class",
            }.get(scheme, f"use a design that does not hold out single {plural(unit)}")
            raise SplitError(
                f"fold {fold}: class(es) {missing} missing from the {side} set ({held_out}); {fix}, or check the "
                f"labels of these {plural(unit)} (windows.event_id, a label column, or the Python API's metadata)"
                f"{numeric_classes_hint(classes)}"
            )


def numeric_classes_hint(classes: list[str]) -> str:
    """``; the labels are numbers (...): for a continuous target set ...`` where every class parses as a number
    and some are fractional or they are many: most likely an age or a score decoded as classes."""
    try:
        values = np.array([float(c) for c in classes])
    except ValueError:
        return ""
    if len(values) <= 2 or (np.all(np.mod(values, 1) == 0) and len(values) < 10):
        return ""  # 0/1 or a few integer codes are plausible classes
    shown = ", ".join(repr(c) for c in classes[:4]) + (", ..." if len(classes) > 4 else "")
    return (f"; the {len(classes)} classes are numbers ({shown}): for a continuous target (age, a score) set "
            "datasets.<name>.target: regression (the Python API: target='regression')")


def side_summary(y: np.ndarray, regression: bool) -> dict:
    """The audit's description of one side of a fold: class counts, or the target's n, mean, min and max."""
    if regression:
        return {"n": int(len(y)), "mean": round(float(np.mean(y)), 6), "min": float(np.min(y)),
                "max": float(np.max(y))}
    values, counts = np.unique(y, return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}
