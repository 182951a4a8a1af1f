"""Chance and confidence of pooled out-of-fold predictions, for every study design.

Everything here works on small numpy arrays and is independent of files and
figures, so each piece is tested against hand-computed cases. The pooled
predictions themselves (classification and regression) live in
:mod:`eegfm.pooling`; every function here takes either kind. Model
comparisons over folds live in :mod:`eegfm.comparisons`.

Unit of inference
    Windows of one subject, session or run are not independent, so
    resampling and permutation work on the design's **held-out unit**
    (:mod:`eegfm.groups`): the subject for cross-subject designs, the
    session or run for ``cross_session`` / ``leave_one_run_out`` (or
    ``group_by: session/run``), the time block for ``within_subject``. The
    pooled out-of-fold score (every fold's test predictions together) is
    defined for any design, a single subject included.

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

Empirical chance and permutation test
    No model is refitted: the pooled predictions stay fixed and the true
    labels are permuted within each unit (every unit keeps its class
    counts); units whose windows all carry one label (recording-level
    labels, e.g. patient vs control) exchange that label as a block with the
    other such units. Under the null hypothesis that predictions carry no
    label information beyond the unit, every such relabelling is equally
    likely, so ``p = (1 + #{null >= observed}) / (n_permutations + 1)`` is
    valid, and the null's mean is the empirical chance level. Windows inside
    a unit are treated as exchangeable; temporal dependence between
    neighbours makes the test somewhat optimistic, like any window-level
    test. When the design allows so few distinct relabellings that p cannot
    fall below ``alpha`` (e.g. two subjects with one label each: 2
    arrangements), the result says the units are too few for the test.

Binomial test
    The number of correct pooled predictions against the majority-class rate
    (at least ``1/K``), one-sided. It treats windows as independent and is
    therefore optimistic; it is reported because it is the test most papers
    use. Where every unit carries one label (recording-level labels), the
    trials are the units instead, each predicted by the majority vote of its
    windows: its windows are one observation of that label, not many.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from eegfm.batch_metrics import replicate_chunks
from eegfm.groups import plural
from eegfm.metrics import LOWER_IS_BETTER
from eegfm.pooling import Pooled, PooledRegression, pool_predictions, pool_regression, pooled_scores

__all__ = ["Interval", "PermutationResult", "Pooled", "PooledRegression", "binomial_test", "block_bootstrap",
           "confidence_intervals", "log_relabellings", "permutation_scheme", "permutation_test", "pool_predictions",
           "pool_regression", "pooled_scores", "time_blocks", "unit_bootstrap", "unit_permutations"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- confidence intervals


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


# ----------------------------------------------------------------------------- chance


def unit_permutations(
    y: np.ndarray, unit: np.ndarray, n_permutations: int, rng: int | np.random.Generator
) -> np.ndarray:
    """Label permutations that respect the unit structure (see the module docstring).

    Labels are shuffled within each unit; units whose windows share a single
    label additionally exchange that label among themselves.

    Parameters
    ----------
    y, unit
        Label and unit codes of each window.
    n_permutations
        Number of permutations (rows).
    rng
        Seed or generator.

    Returns
    -------
    numpy.ndarray
        (n_permutations, n) permuted label codes.
    """
    rng = np.random.default_rng(rng)
    y = np.asarray(y)
    units, unit = np.unique(np.asarray(unit), return_inverse=True)
    n = len(y)
    by_unit = np.argsort(unit, kind="stable")
    out = np.empty((n_permutations, n), dtype=y.dtype)
    sort_keys = unit[None, :] + rng.random((n_permutations, n))  # the integer part keeps the unit
    out[:, by_unit] = y[np.argsort(sort_keys, axis=1, kind="stable")]
    constant = _constant_units(y, unit, len(units))
    if len(constant) > 1:  # unit-level labels: exchanged as blocks among the units that have one
        first = np.unique(unit, return_index=True)[1]
        labels = y[first][constant]
        order = rng.permuted(np.tile(np.arange(len(constant)), (n_permutations, 1)), axis=1)
        slot = np.full(len(units), -1)
        slot[constant] = np.arange(len(constant))
        windows = np.flatnonzero(slot[unit] >= 0)
        out[:, windows] = labels[order][:, slot[unit[windows]]]
    return out


def _label_unit(pooled: Pooled) -> str | None:
    """``"subject"`` or the held-out unit when every one of them carries one label (or target value), else None.

    The subject is named first: with labels fixed per subject, runs of one
    subject carry the same label too, and subjects are what vary.
    """
    codes = pooled.codes
    if len(np.unique(codes)) < 2:
        return None
    if len(_constant_units(codes, pooled.subject, len(pooled.subjects))) == len(pooled.subjects):
        return "subject"
    if len(_constant_units(codes, pooled.unit, len(pooled.units))) == len(pooled.units):
        return pooled.unit_name
    return None


def _constant_units(y: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """Codes of the units whose windows all carry one label."""
    pairs = np.unique(np.stack([unit, y]), axis=1)
    return np.flatnonzero(np.bincount(pairs[0], minlength=n_units) == 1)


def _log_multinomial(counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=float)
    return float(gammaln(counts.sum() + 1) - gammaln(counts + 1).sum())


def log_relabellings(y: np.ndarray, unit: np.ndarray) -> float:
    """Natural log of the number of distinct label arrangements :func:`unit_permutations` reaches.

    Within each unit with several labels, the multinomial number of
    orderings; across the units with one label each, the multinomial number
    of ways to hand their labels out.
    """
    y = np.asarray(y)
    units, unit = np.unique(np.asarray(unit), return_inverse=True)
    constant = set(_constant_units(y, unit, len(units)).tolist())
    total = sum(_log_multinomial(np.unique(y[unit == u], return_counts=True)[1])
                for u in range(len(units)) if u not in constant)
    if len(constant) > 1:
        first = np.unique(unit, return_index=True)[1]
        total += _log_multinomial(np.unique(y[first][sorted(constant)], return_counts=True)[1])
    return total


@dataclass
class PermutationResult:
    """Observed pooled score, its permutation p-value and the null distribution's summary.

    ``scheme`` says how labels were permuted (``"labels shuffled within
    runs"``); ``min_p`` is the smallest p the design and the number of
    permutations allow; ``note`` says why there is no test, or why it cannot
    reach ``alpha`` (too few units).
    """

    observed: float
    p_value: float
    null_mean: float
    null_quantile: float
    n_permutations: int
    scheme: str = ""
    min_p: float = math.nan
    note: str | None = None

    @property
    def too_few(self) -> bool:
        """True when the test ran but no outcome could reach the significance level."""
        return self.note is not None and math.isfinite(self.p_value)


def permutation_scheme(pooled: Pooled) -> str:
    """How :func:`unit_permutations` relabels ``pooled``, in words.

    ``labels shuffled within runs[, runs with a single label exchanging it
    as a block]`` (regression: ``targets``, ``value``), or ``labels exchanged
    between subjects (one label per subject)`` when every unit holds a single
    label or value (patient vs control, age), the only exchange there is.
    """
    unit, units, word = pooled.unit_name, plural(pooled.unit_name), pooled.label_word
    n_constant = len(_constant_units(pooled.codes, pooled.unit, len(pooled.units)))
    single = "label" if word == "labels" else "value"
    if n_constant == len(pooled.units) > 1:  # nothing to shuffle within a unit (patient vs control, age)
        return f"{word} exchanged between {units} (one {single} per {unit})"
    text = f"{word} shuffled within {units}"
    if n_constant > 1:
        text += f", {units} with a single {single} exchanging it as a block"
    return text


def permutation_test(
    pooled: Pooled, metric: str, *, n_permutations: int, seed: int, quantile: float = 0.95, alpha: float = 0.05
) -> PermutationResult:
    """Permutation test of the pooled out-of-fold ``metric`` against chance, within the design's unit.

    ``p = (1 + #{null >= observed}) / (n_permutations + 1)`` (``<=`` for
    metrics where lower is better, e.g. MAE); the null's mean is the
    empirical chance level and its ``quantile`` (``1 - quantile`` for
    lower-is-better metrics) the score needed to be significant at
    ``1 - quantile``. When the design allows fewer than ``1 / alpha``
    distinct relabellings, the test still runs (its p is valid) but
    ``note`` says it cannot reach ``alpha``. ``pooled`` is a
    :class:`Pooled` or a :class:`eegfm.regression_stats.PooledRegression`.
    """
    observed = pooled_scores(pooled, [metric])[metric] if len(pooled) else math.nan
    scheme = permutation_scheme(pooled) if len(pooled) else ""
    if n_permutations < 1:
        return PermutationResult(observed, math.nan, math.nan, math.nan, 0, scheme,
                                 note="permutation test switched off (report.n_permutations: 0)")
    if not math.isfinite(observed):
        return PermutationResult(observed, math.nan, math.nan, math.nan, 0, scheme,
                                 note=f"the pooled {metric} is undefined")
    rng = np.random.default_rng(seed)
    null = np.concatenate([
        pooled.batch([metric], codes=unit_permutations(pooled.codes, pooled.unit, stop - start, rng))[metric]
        for start, stop in replicate_chunks(n_permutations, len(pooled))
    ])
    null = null[np.isfinite(null)]
    if not null.size:
        return PermutationResult(observed, math.nan, math.nan, math.nan, 0, scheme,
                                 note=f"the {metric} of every permutation is undefined")
    lower = metric in LOWER_IS_BETTER
    exceed = int(np.sum(null <= observed + 1e-12)) if lower else int(np.sum(null >= observed - 1e-12))
    log_count = log_relabellings(pooled.codes, pooled.unit)
    min_p = max(1.0 / (null.size + 1), math.exp(-log_count))
    note = None
    units = plural(pooled.unit_name)
    # arrangements <= 1/alpha means p >= alpha; on the log count (exp(-log 20) is 0.04999...: 3 + 3 subjects)
    if log_count <= math.log(1.0 / alpha) + 1e-9:
        note = (f"too few {units} for a permutation test: {len(pooled.units)} {units} allow only "
                f"{round(math.exp(log_count))} distinct label arrangements, so p cannot fall below {min_p:.3g} "
                f"(alpha {alpha})")
    elif min_p >= alpha:
        note = f"too few permutations (report.n_permutations {n_permutations}) for p to fall below alpha {alpha}"
    return PermutationResult(
        observed=observed,
        p_value=(1 + exceed) / (null.size + 1),
        null_mean=float(null.mean()),
        null_quantile=float(np.quantile(null, 1 - quantile if lower else quantile)),
        n_permutations=int(null.size),
        scheme=scheme,
        min_p=min_p,
        note=note,
    )


@dataclass
class BinomialResult:
    """One-sided binomial test of the number of correct predictions against the majority-class rate.

    ``trials``: ``windows``, or the held-out units (``subjects``) counted by majority vote.
    """

    n_correct: int
    n: int
    p0: float
    majority_class: str
    p_value: float
    trials: str = "windows"


def binomial_test(pooled: Pooled) -> BinomialResult:
    """Binomial test of pooled accuracy against ``p0`` = the majority class's share (>= 1/K), one-sided.

    The trials are the windows, treated as independent (optimistic); when every held-out unit carries one
    label (patient vs control) they are the units, each predicted by the majority vote of its windows (a tie
    counts as wrong): a unit's windows are one observation of its label, not many.
    """
    from scipy.stats import binomtest

    n = len(pooled)
    if n == 0:
        return BinomialResult(0, 0, math.nan, "", math.nan)
    y, pred, trials = pooled.y, pooled.pred, "windows"
    n_units = len(pooled.units)
    if n_units > 1 and len(_constant_units(pooled.y, pooled.unit, n_units)) == n_units:
        votes = np.zeros((n_units, len(pooled.classes)), dtype=int)
        np.add.at(votes, (pooled.unit, pooled.pred), 1)
        top = votes.argmax(1)
        tie = (votes == votes.max(1, keepdims=True)).sum(1) > 1
        y = pooled.y[np.unique(pooled.unit, return_index=True)[1]]
        pred, trials, n = np.where(tie, -1, top), plural(pooled.unit_name), n_units
    counts = np.bincount(y, minlength=len(pooled.classes))
    p0 = max(counts.max() / n, 1.0 / len(pooled.classes))
    correct = int(np.sum(y == pred))
    p_value = float(binomtest(correct, n, p0, alternative="greater").pvalue) if p0 < 1 else 1.0
    return BinomialResult(correct, n, float(p0), pooled.classes[int(counts.argmax())], p_value, trials)
