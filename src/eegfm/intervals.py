"""Confidence intervals of pooled out-of-fold scores whose resampling unit fits the study design.

Everything here works on small numpy arrays (:mod:`eegfm.pooling` holds the
pooled predictions; :mod:`eegfm.stats` the chance tests), so each piece is
tested against hand-computed cases. Windows of one subject, session or run
are not independent, so resampling works on the design's held-out unit
(:mod:`eegfm.groups`).

Confidence intervals (percentile bootstrap of the pooled score)
    - With at least ``min_units`` units (``report.ci_min_units``, 8 by
      default): a *cluster bootstrap* — units are drawn with replacement,
      each bringing all of its windows, so the interval reflects the
      variation between units (what a new subject or run would bring).
      Runs, sessions and blocks are nested in subjects and not independent
      of each other, so where there are several per subject the top level
      is resampled: the subjects (each with all of its units) when there
      are at least ``min_units`` of them, else each subject redraws its own
      units and the interval is conditional on the subjects observed.
    - With fewer units a cluster bootstrap is not a confidence interval: 3
      units allow only 10 distinct resamples, and its coverage falls far
      below the nominal level (as did the three-fold "fold bootstrap" this
      replaces). A *stratified block bootstrap* is used instead: each unit's
      windows, in time order, are cut into non-overlapping blocks of
      ``round(n_u^(1/3))`` consecutive windows (Künsch's rate), and every
      unit redraws as many of its own blocks with replacement. Blocks keep
      overlapping windows and trials together, so short-range dependence is
      not mistaken for independent evidence. The interval is **conditional
      on the units observed** — it covers the sampling of windows within
      these runs (or subjects), not the variation a new one would bring —
      and the method text says so. For a single-subject study that is the
      question asked; a missing interval would say less. Window ids follow
      recording time (the windows store writes each recording's windows in
      onset order), which is the time order used.
    - Labels (or target values) fixed per subject or per unit
      (recording-level labels: patient vs control, age) and fewer than
      ``min_units`` of those: no interval, with the reason. The score then
      varies only between subjects; windows redrawn inside each would give
      an interval of their noise, narrower than that variation.
    - Fewer than two blocks in all, or no out-of-fold predictions: no
      interval, with the reason. Fold scores are never resampled (a handful
      of fold means cannot be bootstrapped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eegfm.batch_metrics import replicate_chunks
from eegfm.groups import constant_units, plural
from eegfm.pooling import Pooled


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return math.nan, math.nan
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def _resampled(pooled: Pooled, metrics: Sequence[str], counts_of, cluster: np.ndarray, n_bootstrap: int,
               level: float, defined: dict[str, int] | None = None) -> dict[str, tuple[float, float]]:
    """Percentile intervals from replicate weights (``counts_of(start, stop)``: replicates x clusters);
    ``defined`` (when given) receives the number of replicates with a defined score, per metric."""
    parts = [pooled.batch(metrics, weights=counts_of(start, stop)[:, cluster])
             for start, stop in replicate_chunks(n_bootstrap, len(pooled))]
    values = {m: np.concatenate([p[m] for p in parts]) for m in metrics}
    if defined is not None:
        defined.update({m: int(np.isfinite(v).sum()) for m, v in values.items()})
    return {m: _percentile_interval(v, level) for m, v in values.items()}


def unit_bootstrap(
    pooled: Pooled, metrics: Sequence[str], *, n_bootstrap: int, level: float, seed: int, by: str = "unit",
    within_subjects: bool = False, defined: dict[str, int] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each pooled metric, resampling held-out units (or subjects) with replacement.

    Each replicate draws as many clusters as there are; a cluster drawn twice
    counts its windows twice. Replicates where a metric is undefined (e.g. a
    class absent) are dropped for that metric.

    Parameters
    ----------
    by
        ``"unit"``: the held-out units are the clusters; ``"subject"``: the
        subjects, each bringing all of its units (for units nested in
        subjects: runs, sessions, blocks).
    within_subjects
        With ``by="unit"``: every subject redraws as many of its own units
        as it has (a stratified resample, conditional on the subjects).
    defined
        When given, receives the number of replicates with a defined score.

    Returns
    -------
    dict
        metric -> (low, high); NaN bounds with fewer than 2 clusters.
    """
    cluster = pooled.subject if by == "subject" else pooled.unit
    n = len(pooled.subjects) if by == "subject" else len(pooled.units)
    if n < 2 or n_bootstrap < 2:
        return {m: (math.nan, math.nan) for m in metrics}
    rng = np.random.default_rng(seed)
    if within_subjects:
        subject_of = np.zeros(n, dtype=int)
        subject_of[pooled.unit] = pooled.subject  # units are nested in subjects
        members = [np.flatnonzero(subject_of == s) for s in range(len(pooled.subjects))]
        draws = np.concatenate([m[rng.integers(0, len(m), size=(n_bootstrap, len(m)))] for m in members if len(m)],
                               axis=1)
    else:
        draws = rng.integers(0, n, size=(n_bootstrap, n))

    def counts_of(start, stop):
        counts = np.zeros((stop - start, n))
        np.add.at(counts, (np.repeat(np.arange(stop - start), draws.shape[1]), draws[start:stop].ravel()), 1.0)
        return counts

    return _resampled(pooled, metrics, counts_of, cluster, n_bootstrap, level, defined)


def time_blocks(pooled: Pooled) -> tuple[np.ndarray, np.ndarray, int]:
    """Non-overlapping blocks of ``round(n_u^(1/3))`` consecutive windows (by window id) within each unit.

    Returns
    -------
    tuple
        Block code of every window, unit code of every block, and the largest block length.
    """
    block = np.zeros(len(pooled), dtype=int)
    block_unit: list[int] = []
    longest = 1
    for u in range(len(pooled.units)):
        rows = np.flatnonzero(pooled.unit == u)
        rows = rows[np.argsort(pooled.window[rows], kind="stable")]
        length = max(1, round(len(rows) ** (1 / 3)))
        longest = max(longest, length)
        n_blocks = math.ceil(len(rows) / length)
        block[rows] = len(block_unit) + np.arange(len(rows)) // length
        block_unit += [u] * n_blocks
    return block, np.asarray(block_unit, dtype=int), longest


def block_bootstrap(
    pooled: Pooled, metrics: Sequence[str], *, n_bootstrap: int, level: float, seed: int,
    defined: dict[str, int] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each pooled metric, redrawing time blocks within each unit (see the module docstring).

    Every unit keeps its number of blocks and draws them, with replacement,
    from its own; the interval is conditional on the units observed.

    Returns
    -------
    dict
        metric -> (low, high); NaN bounds with fewer than 2 blocks in all.
    """
    block, block_unit, _ = time_blocks(pooled)
    if len(block_unit) < 2 or n_bootstrap < 2:
        return {m: (math.nan, math.nan) for m in metrics}
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(block_unit == u) for u in range(len(pooled.units))]
    draws = np.concatenate([m[rng.integers(0, len(m), size=(n_bootstrap, len(m)))] for m in members if len(m)],
                           axis=1)

    def counts_of(start, stop):
        counts = np.zeros((stop - start, len(block_unit)))
        np.add.at(counts, (np.repeat(np.arange(stop - start), draws.shape[1]), draws[start:stop].ravel()), 1.0)
        return counts

    return _resampled(pooled, metrics, counts_of, block, n_bootstrap, level, defined)


@dataclass
class Interval:
    """Confidence intervals of the pooled metrics and how they were made.

    ``kind`` is ``units`` (cluster bootstrap), ``blocks`` (block bootstrap
    within units, conditional on them) or ``none``; ``method`` is the text the
    report prints, ``note`` says why there is no interval (or why blocks).
    ``defined``: per metric, the resamples with a defined score (the others
    are left out of the percentiles; :meth:`method_for` says so).
    """

    ci: dict[str, tuple[float, float]]
    kind: str
    method: str
    note: str | None = None
    defined: dict[str, int] = field(default_factory=dict)
    n_bootstrap: int = 0

    def method_for(self, metric: str) -> str:
        """``method``, plus how many resamples were left out for ``metric`` when any were."""
        k = self.defined.get(metric)
        if k is None or k >= self.n_bootstrap:
            return self.method
        return (f"{self.method}; {self.n_bootstrap - k} of {self.n_bootstrap} resamples left out, their {metric} "
                "undefined (e.g. a class absent): the interval is conditional on it being defined")


def confidence_intervals(
    pooled: Pooled | None, metrics: Sequence[str], *, min_units: int, n_bootstrap: int, level: float, seed: int
) -> Interval:
    """The design-fitting interval of each pooled metric (cluster bootstrap, else block bootstrap, else none)."""
    none = {m: (math.nan, math.nan) for m in metrics}
    if pooled is None or not len(pooled):
        return Interval(none, "none", "no interval: no out-of-fold predictions (predictions.tsv)",
                        "no out-of-fold predictions to resample")
    if n_bootstrap < 2:
        return Interval(none, "none", "no interval: report.n_bootstrap is below 2", "bootstrap switched off")
    unit, units, n = pooled.unit_name, plural(pooled.unit_name), len(pooled.units)
    n_subjects = len(pooled.subjects)
    nested = n > n_subjects  # several runs, sessions or blocks per subject: not independent of each other
    defined: dict[str, int] = {}
    counted = {"defined": defined, "n_bootstrap": n_bootstrap}
    label_unit = _label_unit(pooled)
    if label_unit and (n_subjects if label_unit == "subject" else n) < min_units:
        # windows redrawn inside units that each carry one label cannot move the score the way a new unit would
        count = n_subjects if label_unit == "subject" else n
        why = (f"every {label_unit} carries a single {'label' if pooled.label_word == 'labels' else 'value'} "
               f"(a recording-level label or target) and {count} {plural(label_unit)} < report.ci_min_units "
               f"{min_units}: the score varies between {plural(label_unit)}, too few to resample, and redrawing "
               f"windows within each {label_unit} would give an interval narrower than that variation")
        return Interval(none, "none", f"no interval: {why}", why)
    if nested and n_subjects >= min_units:
        ci = unit_bootstrap(pooled, metrics, n_bootstrap=n_bootstrap, level=level, seed=seed, by="subject",
                            defined=defined)
        return Interval(ci, "units", f"subject bootstrap ({n_subjects} subjects resampled with replacement, each "
                                     f"with all of its {n} {units} in all; {n_bootstrap} resamples)", **counted)
    if n >= min_units:
        ci = unit_bootstrap(pooled, metrics, n_bootstrap=n_bootstrap, level=level, seed=seed, within_subjects=nested,
                            defined=defined)
        if nested:
            who, these = (f"{n_subjects} subjects", "these subjects") if n_subjects > 1 else ("1 subject",
                                                                                             "this subject")
            return Interval(ci, "units", f"{unit} bootstrap within subjects ({n} {units}; {who} < report.ci_min_units "
                                         f"{min_units}, too few to resample subjects: each subject redraws its own "
                                         f"{units}, {n_bootstrap} resamples; conditional on {these})", **counted)
        return Interval(ci, "units", f"{unit} bootstrap ({n} {units} resampled with replacement, "
                                     f"{n_bootstrap} resamples)", **counted)
    _, block_unit, length = time_blocks(pooled)
    why = f"{n} {plural(unit) if n != 1 else unit} < report.ci_min_units {min_units}: too few to resample {units}"
    if len(block_unit) < 2:
        return Interval(none, "none", f"no interval: {why}, and too few windows for time blocks", why)
    ci = block_bootstrap(pooled, metrics, n_bootstrap=n_bootstrap, level=level, seed=seed, defined=defined)
    return Interval(ci, "blocks", f"block bootstrap within {units} ({why}; stretches of up to {length} consecutive "
                                  f"windows redrawn within each {unit}, {n_bootstrap} resamples; conditional on "
                                  f"these {units})", why, **counted)


def _label_unit(pooled: Pooled) -> str | None:
    """``"subject"`` or the held-out unit when every one of them carries one label (or target value), else None.

    The subject is named first: with labels fixed per subject, runs of one
    subject carry the same label too, and subjects are what vary.
    """
    codes = pooled.codes
    if len(np.unique(codes)) < 2:
        return None
    if len(constant_units(codes, pooled.subject, len(pooled.subjects))) == len(pooled.subjects):
        return "subject"
    if len(constant_units(codes, pooled.unit, len(pooled.units))) == len(pooled.units):
        return pooled.unit_name
    return None
