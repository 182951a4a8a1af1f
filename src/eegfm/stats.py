"""Chance of pooled out-of-fold predictions, for every study design: permutation and binomial tests.

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

Confidence intervals
    :mod:`eegfm.intervals` (the bootstrap that fits the design).

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
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from eegfm.batch_metrics import replicate_chunks
from eegfm.groups import constant_units, plural
from eegfm.metrics import LOWER_IS_BETTER
from eegfm.pooling import Pooled, PooledRegression, pool_predictions, pool_regression, pooled_scores

__all__ = ["PermutationResult", "Pooled", "PooledRegression", "binomial_test", "log_relabellings",
           "permutation_scheme", "permutation_test", "pool_predictions", "pool_regression", "pooled_scores",
           "unit_permutations"]

logger = logging.getLogger(__name__)


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
    constant = constant_units(y, unit, len(units))
    if len(constant) > 1:  # unit-level labels: exchanged as blocks among the units that have one
        first = np.unique(unit, return_index=True)[1]
        labels = y[first][constant]
        order = rng.permuted(np.tile(np.arange(len(constant)), (n_permutations, 1)), axis=1)
        slot = np.full(len(units), -1)
        slot[constant] = np.arange(len(constant))
        windows = np.flatnonzero(slot[unit] >= 0)
        out[:, windows] = labels[order][:, slot[unit[windows]]]
    return out


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
    constant = set(constant_units(y, unit, len(units)).tolist())
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
    n_constant = len(constant_units(pooled.codes, pooled.unit, len(pooled.units)))
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
    if n_units > 1 and len(constant_units(pooled.y, pooled.unit, n_units)) == n_units:
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
