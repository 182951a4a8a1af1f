"""The report's statistics: per entry the pooled score, its interval, chance tests and a plain verdict;
per dataset the comparisons between models (``statistics.tsv``).

The numbers come from :mod:`eegfm.intervals` and :mod:`eegfm.stats` (confidence and chance, with the
design's held-out unit as the unit of inference) and
:mod:`eegfm.comparisons` (tests over folds); this module only decides which
apply to an entry and words the result. Classification entries are handled
by :func:`classification_statistics` (pooled scores, intervals, permutation
and binomial tests), regression entries by :func:`regression_statistics`
(pooled r, R² and MAE, intervals, and the permutation test: targets
shuffled within the held-out unit, units with one value — a recording-level
target such as age — exchanging it as a block; no binomial test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from eegfm import comparisons, stats
from eegfm.groups import held_out_unit, plural
from eegfm.intervals import confidence_intervals
from eegfm.metrics import LOWER_IS_BETTER
from eegfm.tables import (
    ENTRY_COLUMNS,
    KIND_METRICS,
    finite_or_none,
    fmt,
    fmt_p,
    fold_matrix,
    metric_columns,
    metric_of,
)

#: how the verdict names a regression metric
SHORT_NAMES = {"pearson_r": "r", "r2": "R²", "mae": "MAE"}

STATISTICS_COLUMNS = ["dataset", "test", "entry_a", "entry_b", "metric", "n", "statistic", "p_value", "p_holm",
                      "significant", "exploratory", "detail"]


def p_text(p: Any) -> str:
    """``p = 0.004`` or ``p < 0.001``."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def verdict(entry: Mapping[str, Any], alpha: float, metric: str | None = None) -> str:
    """One plain sentence: is this entry's pooled score above chance, and by which test.

    Examples: ``above chance (permutation p = 0.004, labels shuffled within
    runs)``, ``not distinguishable from chance (permutation p = 0.41, ...)``,
    ``not testable against chance: too few subjects ...``. With ``metric``
    (regression entries) the pooled score leads: ``r = 0.41, above chance
    (permutation p = 0.003, targets exchanged between subjects (one value per
    subject))``.
    """
    score = finite_or_none((entry.get("pooled") or {}).get(metric)) if metric else None
    text = _verdict(entry, alpha)
    return f"{SHORT_NAMES.get(metric, metric)} = {fmt(score)}, {text}" if score is not None else text


def binomial_trials_text(entry: Mapping[str, Any]) -> str:
    """What the binomial test counted: ``windows treated as independent``, or ``6 subjects as trials, each
    by the majority vote of its windows`` (one label per unit, :func:`eegfm.stats.binomial_test`)."""
    trials = entry.get("binomial_trials")
    if not isinstance(trials, str) or trials == "windows":
        return "windows treated as independent"
    n = finite_or_none(entry.get("binomial_n"))
    return f"{int(n) if n is not None else '?'} {trials} as trials, each by the majority vote of its windows"


def best_of_text(best: Mapping[str, Any]) -> str:
    """``best of 6 models, `` where a summary.json ``best`` entry was picked among several (its verdict's p is
    then Holm-adjusted over them); empty otherwise."""
    n = best.get("n_entries") or 0
    return f"best of {n} models, " if n > 1 else ""


def _holm_p(entry: Mapping[str, Any]) -> float | None:
    """The entry's Holm-adjusted permutation p where it was tested together with other entries, else ``None``."""
    family = finite_or_none(entry.get("n_chance_tests"))
    return finite_or_none(entry.get("p_permutation_holm")) if family is not None and family > 1 else None


def decisive_p(entry: Mapping[str, Any]) -> float | None:
    """The permutation p a verdict rests on: Holm-adjusted over the dataset's tested entries where there are
    several (:func:`adjust_chance_tests`), else the entry's own."""
    adjusted = _holm_p(entry)
    return adjusted if adjusted is not None else finite_or_none(entry.get("p_permutation"))


def _verdict(entry: Mapping[str, Any], alpha: float) -> str:
    p, note, scheme = finite_or_none(entry.get("p_permutation")), entry.get("permutation_note"), \
        entry.get("permutation_scheme")
    holm = _holm_p(entry)
    adjusted = "" if holm is None else \
        f", Holm-adjusted over the {int(entry['n_chance_tests'])} models tested {p_text(holm)}"
    if finite_or_none(entry.get("n_windows")) is None:
        return "no verdict: no out-of-fold predictions"
    if p is None:
        binomial = finite_or_none(entry.get("p_binomial"))
        extra = f"; binomial {p_text(binomial)}, {binomial_trials_text(entry)}" if binomial is not None else ""
        return f"no verdict: {note or 'no permutation test'}{extra}"
    if note:
        return f"not testable against chance: {note} (permutation {p_text(p)}, {scheme})"
    # one model among several is called above chance only by its Holm-adjusted p: the best of N models
    # under the null beats an unadjusted p < alpha far more often than alpha
    if decisive_p(entry) < alpha:
        return f"above chance (permutation {p_text(p)}{adjusted}, {scheme})"
    return f"not distinguishable from chance (permutation {p_text(p)}{adjusted}, {scheme})"


def _partial_text(part: pd.DataFrame, entry: Mapping[str, Any]) -> str:
    """``; pooled over 3 of 4 folds (fold 2 failed): 6 subjects, the failed fold's missing`` when the pooled
    score, its interval and tests cover only the completed folds; empty otherwise."""
    failed = sorted(int(f) for f in part.loc[part["status"] == "failed", "fold"]) if "status" in part else []
    n_units = finite_or_none(entry.get("n_units"))
    if not failed or n_units is None:
        return ""
    n = int(part["fold"].nunique())
    folds = f"fold{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} failed"
    unit = str(entry.get("unit") or "subject")
    whose = "folds'" if len(failed) > 1 else "fold's"
    return (f"; pooled over {n - len(failed)} of {n} folds ({folds}): {int(n_units)} "
            f"{plural(unit) if n_units != 1 else unit}, the failed {whose} missing")


def pooled_statistics(
    pooled: stats.Pooled | stats.PooledRegression | None, metrics: list[str], primary_metric: str, *,
    n_permutations: int, n_bootstrap: int, ci_level: float, ci_min_units: int, alpha: float, seed: int,
) -> dict[str, Any]:
    """Pooled scores, their intervals and the primary metric's permutation test of one entry of either kind."""
    interval = confidence_intervals(pooled, metrics, min_units=ci_min_units, n_bootstrap=n_bootstrap,
                                          level=ci_level, seed=seed)
    entry: dict[str, Any] = {"ci": interval.ci, "ci_method": interval.method_for(primary_metric),
                             "ci_kind": interval.kind}
    if pooled is None or not len(pooled):
        return entry
    perm = stats.permutation_test(pooled, primary_metric, n_permutations=n_permutations, seed=seed + 1, alpha=alpha)
    entry.update({
        "pooled": stats.pooled_scores(pooled, metrics),
        "n_subjects": len(pooled.subjects), "n_units": len(pooled.units), "n_windows": len(pooled),
        "chance_permutation": perm.null_mean, "chance_permutation_q": perm.null_quantile,
        "p_permutation": perm.p_value, "n_permutations": perm.n_permutations, "p_min": perm.min_p,
        "permutation_scheme": perm.scheme, "permutation_note": perm.note,
    })
    return entry


def classification_statistics(
    pooled: stats.Pooled | None, metrics: list[str], primary_metric: str, *, n_permutations: int,
    n_bootstrap: int, ci_level: float, ci_min_units: int, alpha: float, seed: int,
) -> dict[str, Any]:
    """Pooled scores, their intervals and the primary metric's chance tests of one classification entry:
    :func:`pooled_statistics` plus the binomial test."""
    entry = pooled_statistics(pooled, metrics, primary_metric, n_permutations=n_permutations,
                              n_bootstrap=n_bootstrap, ci_level=ci_level, ci_min_units=ci_min_units, alpha=alpha,
                              seed=seed)
    if pooled is not None and len(pooled):
        binom = stats.binomial_test(pooled)
        entry.update({"p_binomial": binom.p_value, "binomial_p0": binom.p0, "majority_class": binom.majority_class,
                      "binomial_trials": binom.trials, "binomial_n": binom.n,
                      "binomial_accuracy": binom.n_correct / binom.n})
    return entry


def regression_statistics(
    pooled: stats.PooledRegression | None, metrics: list[str], primary_metric: str, *, n_permutations: int,
    n_bootstrap: int, ci_level: float, ci_min_units: int, alpha: float, seed: int,
) -> dict[str, Any]:
    """Pooled r, R² and MAE of one regression entry, their design-aware intervals and the primary metric's
    permutation test (:func:`pooled_statistics`; a binomial test has no meaning for a continuous target)."""
    if pooled is not None and not isinstance(pooled, stats.PooledRegression):
        raise TypeError("regression statistics need regression predictions (PooledRegression)")
    return pooled_statistics(pooled, metrics, primary_metric, n_permutations=n_permutations,
                             n_bootstrap=n_bootstrap, ci_level=ci_level, ci_min_units=ci_min_units, alpha=alpha,
                             seed=seed)


def entry_statistics(
    table: pd.DataFrame, pooled: Mapping[tuple, stats.Pooled | stats.PooledRegression],
    primary_metric: str | Mapping[str, str], *, units: Mapping[str, str], n_permutations: int, n_bootstrap: int,
    ci_level: float, ci_min_units: int, alpha: float, seed: int,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per ``(dataset, model, regime)``: what :func:`eegfm.tables.summary_table` puts beside the fold means.

    Parameters
    ----------
    table
        The metrics table.
    pooled
        Pooled out-of-fold predictions per entry (absent: none usable).
    primary_metric
        Metric of the chance tests and the verdict (or dataset -> metric).
    units
        Held-out unit per dataset (``subject`` when absent).
    n_permutations, n_bootstrap, ci_level, ci_min_units, alpha, seed
        As in ``report:`` of the config.
    """
    out, parts = {}, {}
    for key, part in table.groupby(ENTRY_COLUMNS, sort=True):
        p = pooled.get(key)
        unit = p.unit_name if p is not None else units.get(key[0], "subject")
        regression = str(part["target"].iloc[0]) == "regression" if "target" in part else False
        kind = "regression" if regression else "classification"
        metrics = [m for m in metric_columns(table) if m in KIND_METRICS[kind]]
        compute = regression_statistics if regression else classification_statistics
        primary = metric_of(primary_metric, key[0])
        entry = {"unit": unit, "n_subjects": math.nan, "n_units": math.nan, "n_windows": math.nan,
                 **compute(p, metrics, primary, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                           ci_level=ci_level, ci_min_units=ci_min_units, alpha=alpha, seed=seed)}
        out[key], parts[key] = entry, (part, primary if regression else None)
    adjust_chance_tests(out)  # the verdicts rest on p-values adjusted over each dataset's entries
    for key, (part, regression_metric) in parts.items():
        out[key]["verdict"] = verdict(out[key], alpha, regression_metric) + _partial_text(part, out[key])
    return out


def testable(entry: Mapping[str, Any]) -> bool:
    """Whether the entry's permutation p can make a claim: computed, and the design allows it to reach alpha."""
    return finite_or_none(entry.get("p_permutation")) is not None and not entry.get("permutation_note")


def adjust_chance_tests(entries: Mapping[tuple[str, str, str], dict[str, Any]]) -> None:
    """Holm-adjust the permutation p-values of each dataset's testable entries together (in place).

    The report's headline names the best of a dataset's models: under the null
    the best of nine exceeds an unadjusted p < 0.05 about a third of the time.
    Each entry gets ``p_permutation_holm`` (NaN where not testable) and
    ``n_chance_tests``, the number of entries adjusted together; the verdict
    then rests on the adjusted p.
    """
    for dataset in {key[0] for key in entries}:
        keys = [k for k in entries if k[0] == dataset and testable(entries[k])]
        adjusted = comparisons.holm([entries[k]["p_permutation"] for k in keys])
        for k in entries:
            if k[0] == dataset:
                entries[k]["p_permutation_holm"] = math.nan
                entries[k]["n_chance_tests"] = len(keys)
        for k, p in zip(keys, adjusted, strict=True):
            entries[k]["p_permutation_holm"] = float(p)


def statistics_table(
    table: pd.DataFrame, summary: pd.DataFrame, primary_metric: str | Mapping[str, str], alpha: float
) -> pd.DataFrame:
    """statistics.tsv: per entry the chance tests (permutation; binomial for classification), per dataset the
    model comparisons on its primary metric (MAE: lower is better)."""
    frames = []
    for r in summary.to_dict("records"):
        metric = metric_of(primary_metric, r["dataset"])
        p_perm, p_binom = finite_or_none(r["p_permutation"]), finite_or_none(r["p_binomial"])
        note = r.get("permutation_note")
        decisive = decisive_p(r)  # several entries of a dataset are tested together: the Holm-adjusted p
        lower = metric in LOWER_IS_BETTER
        rows = [
            {"dataset": r["dataset"], "test": "permutation", "entry_a": r["entry"], "entry_b": "",
             "metric": metric, "n": r["n_permutations"], "statistic": r[f"{metric}_pooled"],
             "p_value": r["p_permutation"], "p_holm": r.get("p_permutation_holm", math.nan),
             "significant": bool(p_perm is not None and decisive < alpha and not isinstance(note, str)),
             "exploratory": False,
             "detail": f"pooled score vs {r.get('permutation_scheme') or 'permuted labels'}; null mean "
                       f"{fmt(r['chance_permutation'])}, {'5th' if lower else '95th'} pct. "
                       f"{fmt(r['chance_permutation_q'])}" + (f"; {note}" if isinstance(note, str) else "")},
        ]
        if r.get("target", "classification") != "regression":
            rows.append(
                {"dataset": r["dataset"], "test": "binomial", "entry_a": r["entry"], "entry_b": "",
                 "metric": "accuracy", "n": r.get("binomial_n", r["n_windows"]),
                 "statistic": r.get("binomial_accuracy", r.get("accuracy_pooled", math.nan)),
                 "p_value": r["p_binomial"], "p_holm": math.nan,
                 "significant": bool(p_binom is not None and p_binom < alpha), "exploratory": False,
                 "detail": f"correct pooled predictions vs majority rate p0={fmt(r['binomial_p0'])} "
                           f"({r['majority_class']}); {binomial_trials_text(r)}"})
        frames.append(pd.DataFrame(rows))
    for dataset in sorted(table["dataset"].unique()):
        metric = metric_of(primary_metric, dataset)
        matrix = fold_matrix(table, dataset, metric)
        if matrix.shape[1] >= 2:
            frames.append(comparisons.compare_entries(matrix, metric, alpha=alpha,
                                                      higher_is_better=metric not in LOWER_IS_BETTER)
                          .assign(dataset=dataset))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=STATISTICS_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[STATISTICS_COLUMNS]
    _adjust_binomial(out, alpha)
    return out


def _adjust_binomial(statistics: pd.DataFrame, alpha: float) -> None:
    """Holm-adjust each dataset's binomial tests together, as its permutation tests (in place)."""
    for _, part in statistics[statistics["test"] == "binomial"].groupby("dataset"):
        adjusted = comparisons.holm(part["p_value"].to_numpy(float))
        if np.isfinite(adjusted).sum() > 1:
            statistics.loc[part.index, "p_holm"] = adjusted
            statistics.loc[part.index, "significant"] = adjusted < alpha


def cd_inputs(statistics: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per dataset with a Friedman test: what the critical-difference diagram needs."""
    out = {}
    for dataset, part in statistics.groupby("dataset", sort=True):
        fried = part[part["test"] == "friedman"]
        if fried.empty:
            continue
        ranks = part[part["test"] == "average_rank"]
        cd = float(part.loc[part["test"] == "nemenyi_cd", "statistic"].iloc[0])
        entries, values = list(ranks["entry_a"]), ranks["statistic"].to_numpy(float)
        out[str(dataset)] = {
            "entries": entries, "ranks": values, "cd": cd, "n": int(fried["n"].iloc[0]),
            "p_value": float(fried["p_value"].iloc[0]), "cliques": comparisons.cliques(values, cd),
            "exploratory": bool(fried["exploratory"].iloc[0]),
        }
    return out


def design_sentence(folds: Mapping[str, Any]) -> str:
    """``leave_one_run_out: 3 folds, each holding out runs`` for the data overview."""
    if not folds:
        return "n/a"
    unit = held_out_unit(folds)
    n = len(folds.get("folds") or [])
    gap = finite_or_none(folds.get("gap_s"))
    gap_text = f", gap {gap:g} s" if gap and folds.get("scheme") == "within_subject" else ""
    return f"{folds.get('scheme', '?')}: {n} folds holding out {plural(unit)}{gap_text}"

