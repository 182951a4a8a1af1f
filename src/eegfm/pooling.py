"""Out-of-fold predictions of every fold pooled into one set per dataset × model × regime.

:class:`Pooled` holds classification predictions as integer codes (and the
class scores); :class:`PooledRegression` holds a regression target and its
predictions as numbers. Both carry the design's held-out unit of every window
(:mod:`eegfm.groups`) and the window ids (time order), and both score B
replicates at once through ``batch`` — permuted label ``codes`` and/or
bootstrap window ``weights`` — which is all :mod:`eegfm.stats` needs for its
intervals and permutation tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eegfm.batch_metrics import batch_scores, regression_batch_scores
from eegfm.groups import block_label, group_labels
from eegfm.metrics import METRICS, REGRESSION_METRICS
from eegfm.tables import entry_label


@dataclass
class Pooled:
    """Out-of-fold predictions of one dataset × model × regime, as integer codes.

    ``y`` and ``pred`` index ``classes``; ``subject`` indexes ``subjects``
    and ``unit`` indexes ``units`` (the design's held-out unit, named
    ``unit_name``); ``window`` holds the window ids (time order within a
    recording); ``scores`` (n × K, columns in the order of ``classes``) is
    ``None`` when the model gave none.
    """

    y: np.ndarray
    pred: np.ndarray
    scores: np.ndarray | None
    subject: np.ndarray
    fold: np.ndarray
    classes: list[str]
    subjects: list[str]
    n_folds: int = 0
    unit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    units: list[str] = field(default_factory=list)
    unit_name: str = "subject"
    window: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    #: what the permutation test calls the true values
    label_word = "labels"

    def __len__(self) -> int:
        return len(self.y)

    @property
    def codes(self) -> np.ndarray:
        """Integer codes of the true labels: what :func:`unit_permutations` permutes."""
        return self.y

    def batch(self, metrics: Sequence[str], codes: np.ndarray | None = None,
              weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each metric for B replicates: permuted label ``codes`` rows and/or window ``weights`` rows."""
        return batch_scores(metrics, self.y if codes is None else codes, self.pred, self.scores, len(self.classes),
                            weights)


@dataclass
class Stacked:
    """The non-empty ``predictions.tsv`` of several folds stacked, with subject and unit codes (time order
    kept in ``window``)."""

    data: pd.DataFrame
    subject: np.ndarray
    subjects: list[str]
    unit: np.ndarray
    units: list[str]
    window: np.ndarray
    fold: np.ndarray
    n_folds: int


def stack_predictions(frames: Sequence[tuple[int, pd.DataFrame]], unit: str = "subject") -> Stacked | None:
    """Stack ``(fold, predictions)`` pairs (empty frames, of failed folds, skipped); ``None`` when none is left.

    ``unit`` is the design's held-out unit: ``subject``, ``session``, ``run``
    (from the ``subject``/``session``/``run`` columns) or ``block`` (the
    subject's stretch tested in a fold).
    """
    parts = [(int(k), f) for k, f in frames if f is not None and len(f)]
    if not parts:
        return None
    data = pd.concat([f.assign(_fold=k) for k, f in parts], ignore_index=True)
    data["subject"] = data["subject"].astype(str)
    subjects, subject_codes = np.unique(data["subject"].to_numpy(dtype=str), return_inverse=True)
    units, unit_codes = np.unique(_unit_labels(data, unit).astype(str), return_inverse=True)
    window = data["window_id"].to_numpy(dtype=int) if "window_id" in data else np.arange(len(data))
    return Stacked(data, subject_codes.astype(int), [str(s) for s in subjects], unit_codes.astype(int),
                   [str(u) for u in units], window, data["_fold"].to_numpy(dtype=int), len(parts))


def _unit_labels(data: pd.DataFrame, unit: str) -> np.ndarray:
    if unit == "block":
        return np.array([block_label(s, k) for s, k in zip(data["subject"], data["_fold"])], dtype=object)
    return group_labels(data, unit)


def pool_predictions(
    frames: Sequence[tuple[int, pd.DataFrame]], classes: Sequence[str] | None = None, unit: str = "subject"
) -> Pooled:
    """Stack the ``predictions.tsv`` of several folds into one :class:`Pooled`.

    Parameters
    ----------
    frames
        ``(fold, predictions)`` pairs; empty frames (failed folds) are skipped.
    classes
        The label set; the union of the labels seen is added to it (sorted).
    unit
        The design's held-out unit: ``subject``, ``session``, ``run`` (from
        the ``subject``/``session``/``run`` columns) or ``block`` (the
        subject's stretch tested in a fold).

    Returns
    -------
    Pooled
        Scores are kept only when every non-empty fold has a ``score_<class>``
        column for every class.
    """
    parts = [(int(k), f) for k, f in frames if f is not None and len(f)]
    seen = {str(v) for _, f in parts for col in ("y_true", "y_pred") for v in f[col]}
    labels = sorted(set(map(str, classes or [])) | seen)
    index = {c: i for i, c in enumerate(labels)}
    stacked = stack_predictions(parts, unit)
    if stacked is None:
        empty = np.zeros(0, dtype=int)
        return Pooled(empty, empty, None, empty, empty, labels, [], 0, empty, [], unit, empty)
    data = stacked.data
    score_cols = [f"score_{c}" for c in labels]
    scores = None
    if all(c in data.columns for c in score_cols):
        scores = data[score_cols].to_numpy(dtype=float)
        if not np.isfinite(scores).all():
            scores = None
    return Pooled(
        y=np.array([index[str(v)] for v in data["y_true"]], dtype=int),
        pred=np.array([index[str(v)] for v in data["y_pred"]], dtype=int),
        scores=scores,
        subject=stacked.subject,
        fold=stacked.fold,
        classes=labels,
        subjects=stacked.subjects,
        n_folds=stacked.n_folds,
        unit=stacked.unit,
        units=stacked.units,
        unit_name=unit,
        window=stacked.window,
    )


@dataclass
class PooledRegression:
    """Out-of-fold predictions of a regression target: true values ``y`` and predictions ``pred`` (floats),
    with the same subject, fold, unit and window fields as :class:`Pooled`."""

    y: np.ndarray
    pred: np.ndarray
    subject: np.ndarray
    fold: np.ndarray
    subjects: list[str]
    n_folds: int = 0
    unit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    units: list[str] = field(default_factory=list)
    unit_name: str = "subject"
    window: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    label_word = "targets"

    def __post_init__(self) -> None:
        self.values, codes = np.unique(np.asarray(self.y, dtype=float), return_inverse=True)
        self._codes = codes.astype(int)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def codes(self) -> np.ndarray:
        """Integer codes of the distinct true values (``values[codes] == y``): what permutations permute."""
        return self._codes

    def batch(self, metrics: Sequence[str], codes: np.ndarray | None = None,
              weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each metric for B replicates: permuted value ``codes`` rows and/or window ``weights`` rows."""
        y = self.y if codes is None else self.values[codes]
        return regression_batch_scores(metrics, y, self.pred, weights)


def pool_regression(frames: Sequence[tuple[int, pd.DataFrame]], unit: str = "subject") -> PooledRegression:
    """Stack the ``predictions.tsv`` of several folds of a regression target into one :class:`PooledRegression`.

    Raises
    ------
    ValueError
        A ``y_true`` or ``y_pred`` cell that is not a finite number.
    """
    stacked = stack_predictions(frames, unit)
    if stacked is None:
        empty = np.zeros(0, dtype=int)
        return PooledRegression(np.zeros(0), np.zeros(0), empty, empty, [], 0, empty, [], unit, empty)
    values = {c: pd.to_numeric(stacked.data[c], errors="coerce").to_numpy(dtype=float) for c in ("y_true", "y_pred")}
    for column, v in values.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{int((~np.isfinite(v)).sum())} {column} values of the pooled predictions are not "
                             "finite numbers; re-run the probe/finetune rule")
    return PooledRegression(values["y_true"], values["y_pred"], stacked.subject, stacked.fold, stacked.subjects,
                            stacked.n_folds, stacked.unit, stacked.units, unit, stacked.window)


def pooled_scores(pooled: Pooled | PooledRegression, metrics: Sequence[str] | None = None) -> dict[str, float]:
    """Each metric on all pooled out-of-fold predictions (default: every metric of the pooled kind)."""
    if metrics is None:
        metrics = REGRESSION_METRICS if isinstance(pooled, PooledRegression) else METRICS
    if not len(pooled):
        return {m: math.nan for m in metrics}
    values = pooled.batch(metrics)
    return {m: float(v[0]) for m, v in values.items()}


def pool_entries(
    predictions: Mapping[tuple, list], classes: Mapping[tuple, set], kinds: Mapping[str, str],
    units: Mapping[str, str], problems: list[str],
) -> dict[tuple, Pooled | PooledRegression]:
    """The pooled out-of-fold predictions of every ``(dataset, model, regime)`` entry whose folds all left a
    predictions.tsv: :class:`PooledRegression` for datasets whose ``kinds`` entry is ``regression``, else
    :class:`Pooled` (over ``classes``). Unreadable regression predictions are skipped and said in ``problems``."""
    pooled: dict[tuple, Pooled | PooledRegression] = {}
    for key, frames in predictions.items():
        if not all(f is not None for _, f in frames):
            continue
        unit = units.get(key[0], "subject")
        if kinds.get(key[0]) == "regression":
            try:
                pooled[key] = pool_regression(frames, unit=unit)
            except ValueError as err:
                problems.append(f"{key[0]} · {entry_label(key[1], key[2])}: {err}")
        elif classes.get(key):
            pooled[key] = pool_predictions(frames, sorted(classes[key]), unit=unit)
    return pooled
