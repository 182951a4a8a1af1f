"""Aggregate every fold into tables, statistics, figures and a self-contained HTML report.

Inputs are the ``metrics.json`` of every dataset × model × regime × fold
(frozen probes and trained regimes alike) with their sibling
``predictions.tsv`` (and ``history.tsv`` for trained regimes), the embedding
pointer files, and per dataset its ``windows.json`` (``windows.tsv`` beside
it) and ``folds.json``. Outputs, each written atomically into ``out_dir``::

    metrics.tsv               one row per dataset × model × regime × fold (failed folds included)
    summary.tsv               per dataset × model × regime: mean ± std, CI, chance, gaps, p-values, failures
    statistics.tsv            chance tests per entry; Wilcoxon + Holm, Friedman, ranks, Nemenyi per dataset
    summary.json              one line: the headline (best entry per dataset, score, CI, chance, gap, p)
    figures/<name>.png|.svg   see eegfm.figures.FIGURES (predicted_vs_true: eegfm.regression_figures)
    report.html               everything above, figures inlined (no external resources)

The statistics are described in :mod:`eegfm.intervals` and :mod:`eegfm.stats`; standard deviations
are across folds with ``ddof=1`` (NaN for a single fold). This module
orchestrates: :mod:`eegfm.report_view` says what ``report.html`` shows,
:mod:`eegfm.report_page` fills the template ``eegfm/templates/report.html.j2``
(docs/architecture.md §2.7).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm import (
    atomic,
    comparisons,
    data_figures,
    figure_render,
    figures,
    regression_figures,
    report_stats,
    report_view,
)
from eegfm.groups import group_labels, held_out_unit
from eegfm.metrics import LOWER_IS_BETTER
from eegfm.pooling import pool_entries
from eegfm.report_view import mean_pm_std, text_or_none
from eegfm.tables import (
    METRIC_NAMES,
    dataset_targets,
    entry_label,
    finite_or_none,
    fmt,
    fmt_p,
    metric_of,
    metrics_table,
    primary_by_dataset,
    read_history,
    read_json_files,
    read_predictions,
    summary_table,
)
from eegfm.windows_store import read_windows_table

logger = logging.getLogger(__name__)

_PCA_MAX_POINTS = 2000


# ----------------------------------------------------------------------------- computing


def _pca_items(pointers: list[dict], windows_paths: Mapping[str, Any], seed: int, problems: list[str],
               kinds: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None) -> list[dict]:
    """2-D PCA of each embedding the pointers name, with the windows' labels (``kinds``: each dataset's
    target) and groups: the held-out sessions or runs where ``units`` names them for the dataset (one
    subject's windows all share one colour by subject), else the subjects."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from eegfm.embed import open_embeddings

    items = []
    for pointer in sorted(pointers, key=lambda p: (str(p.get("dataset")), str(p.get("backbone")))):
        dataset, path = str(pointer.get("dataset")), pointer.get("_path")
        tsv = Path(windows_paths[dataset]).with_name("windows.tsv") if dataset in windows_paths else None
        if path is None or tsv is None or not tsv.is_file():
            continue
        try:
            E, _ = open_embeddings(str(path))
        except (OSError, ValueError, KeyError) as err:
            problems.append(f"embedding PCA of {dataset} · {pointer.get('backbone')} skipped: {err}")
            continue
        meta = read_windows_table(tsv).sort_values("window_id")
        if len(meta) != len(E) or E.shape[1] < 2 or not np.isfinite(E).all():
            problems.append(f"embedding PCA of {dataset} · {pointer.get('backbone')} skipped: "
                            f"{E.shape} embeddings for {len(meta)} windows, or non-finite values")
            continue
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(E), _PCA_MAX_POINTS, replace=False)) if len(E) > _PCA_MAX_POINTS \
            else np.arange(len(E))
        X = StandardScaler().fit_transform(E[rows].astype(np.float64))
        pca = PCA(n_components=2, random_state=seed).fit(X)
        items.append({
            "dataset": dataset, "backbone": str(pointer.get("backbone")), "coords": pca.transform(X),
            "explained": tuple(float(v) for v in pca.explained_variance_ratio_),
            "labels": meta["label"].to_numpy()[rows], "subjects": meta["subject"].to_numpy()[rows],
            "n_total": len(E), "target": (kinds or {}).get(dataset, "classification"),
        })
        unit = (units or {}).get(dataset)
        if unit in ("session", "run"):
            items[-1].update(groups=group_labels(meta, unit)[rows], group_word=unit)
    return items


def summary_dict(
    summary: pd.DataFrame, *, title: str, primary_metric: str | Mapping[str, str], config_hash: str, n_rows: int,
    n_failed: int,
) -> dict:
    """The ``summary.json`` content: the best entry per dataset by its primary metric (lowest MAE, highest
    of the others; the fold mean, or the pooled score where no fold defines the metric), with its pooled
    score, CI (and its method), chance, gap over chance, p-values (the permutation p also Holm-adjusted over
    the dataset's tested entries, on which the verdict rests) and verdict, and every entry's mean.
    ``primary_metric`` is one name when every dataset shares it, else dataset -> name;
    ``best[dataset]["metric"]`` names it per dataset."""
    best: dict[str, Any] = {}
    means: dict[str, dict[str, float | None]] = {}
    headline = []
    used = {}
    for dataset, part in summary.groupby("dataset", sort=True):
        m = used[str(dataset)] = metric_of(primary_metric, dataset)
        means[str(dataset)] = {r["entry"]: finite_or_none(r[f"{m}_mean"]) for r in part.to_dict("records")}
        # rank by the fold mean; where no fold defines it (r and R² of folds testing one target value, e.g.
        # leave-one-subject-out over ages) by the pooled out-of-fold score, which is defined for any design
        by = f"{m}_mean" if part[f"{m}_mean"].notna().any() else f"{m}_pooled"
        ranked = part[part[by].notna()].sort_values(by, ascending=m in LOWER_IS_BETTER, kind="stable")
        if ranked.empty:
            best[str(dataset)] = None
            headline.append(f"{dataset}: no completed fold")
            continue
        top = ranked.iloc[0]
        best[str(dataset)] = {
            "model": top["entry"], "backbone": top["model"], "regime": top["regime"], "metric": m,
            "target": text_or_none(top.get("target")) or "classification",
            "mean": finite_or_none(top[f"{m}_mean"]), "std": finite_or_none(top[f"{m}_std"]),
            "ci": [finite_or_none(top[f"{m}_ci_low"]), finite_or_none(top[f"{m}_ci_high"])],
            "pooled": finite_or_none(top[f"{m}_pooled"]),
            "chance": finite_or_none(top[f"{m}_chance"]), "gap": finite_or_none(top[f"{m}_gap_chance"]),
            "p_permutation": finite_or_none(top["p_permutation"]),
            "p_permutation_holm": finite_or_none(top.get("p_permutation_holm")),
            "n_chance_tests": int(top["n_chance_tests"]) if finite_or_none(top.get("n_chance_tests")) is not None
            else None, "n_entries": len(part),
            "p_binomial": finite_or_none(top["p_binomial"]),
            "binomial_trials": text_or_none(top.get("binomial_trials")),
            "n_folds": int(top["n_folds"]), "n_failed": int(top["n_failed"]),
            "text": mean_pm_std(top[f"{m}_mean"], top[f"{m}_std"]) if by == f"{m}_mean" else
            "undefined in every fold (e.g. each test fold holds one target value)",
            "unit": text_or_none(top.get("unit")),
            "n_units": int(top["n_units"]) if finite_or_none(top.get("n_units")) is not None else None,
            "ci_method": text_or_none(top.get("ci_method")), "verdict": text_or_none(top.get("verdict")),
        }
        b = best[str(dataset)]
        headline.append(f"{dataset}: {report_stats.best_of_text(b)}{b['model']} {METRIC_NAMES[m]} {b['text']}"
                        f"{report_view.held_out_text(b)}, "
                        f"chance {fmt(b['chance'])} (gap of the fold mean {fmt(b['gap'], signed=True)}; "
                        f"pooled {fmt(b['pooled'])}): "
                        f"{b['verdict'] or 'no verdict'}")
    shared = set(used.values()) if isinstance(primary_metric, Mapping) else {primary_metric}
    return {
        "title": title, "config_hash": config_hash,
        "primary_metric": next(iter(shared)) if len(shared) == 1 else dict(sorted(used.items())),
        "n_rows": int(n_rows),
        "n_failed": int(n_failed), "headline": "; ".join(headline), "best": best, "means": means,
    }


# ----------------------------------------------------------------------------- warnings


def collect_warnings(
    table: pd.DataFrame, summary: pd.DataFrame, pointers: list[dict], problems: list[str], alpha: float,
    windows: Mapping[str, dict] | None = None, folds: Mapping[str, dict] | None = None,
) -> list[str]:
    """Plain-text warnings: what each dataset's windows job warned about (``windows``: its windows.json, see
    :func:`eegfm.report_view.input_warnings`), identical windows the splits job counted (``folds``),
    pretraining-corpus and pretraining-data overlap, failed folds, few folds, missing predictions, too few units
    for a permutation test, time-blocked early-stopping validation, problems."""
    out = [line for dataset, info in sorted((windows or {}).items())
           for line in report_view.input_warnings(str(dataset), info or {})]
    for dataset, info in sorted((folds or {}).items()):
        repeated = ((info or {}).get("audit") or {}).get("repeated_windows")
        if repeated:
            out.append(f"{dataset}: {repeated} windows are identical to other windows of the same subject (a "
                       "recording listed twice, two events at one sample, or flat or clipped stretches); no test "
                       "window has a copy in its training set, but each copy counts again in training and in the "
                       "scores, and intervals over windows are too narrow. The splits log names the recordings.")
    for p in pointers:
        if p.get("corpus_overlap"):
            out.append(f"{p.get('backbone')} was pretrained on {', '.join(p['corpus_overlap'])}, which "
                       f"{p.get('dataset')} comes from: its scores may be optimistic.")
        shared = p.get("pretrain_overlap") or {}
        if shared.get("any"):
            out.append(f"{p.get('backbone')}'s weights were pretrained by this workflow on data that overlaps "
                       f"{p.get('dataset')}: {shared['windows']} identical windows, {len(shared['recordings'])} "
                       "shared recordings. Its scores (probe and fine-tuned) are optimistic.")
    for r in table[table["status"] == "failed"].to_dict("records"):
        out.append(f"FAILED fold: {r['dataset']} · {entry_label(r['model'], r['regime'])} fold {r['fold']}: "
                   f"{r.get('error') or 'no error message'}")
    for dataset, part in table.groupby("dataset", sort=True):
        n = int(part["fold"].nunique())
        k = len(part.drop_duplicates(["model", "regime"]))
        m = k * (k - 1) // 2  # pairwise Wilcoxon tests, Holm-corrected together
        if comparisons.is_exploratory(n, alpha):
            out.append(f"{dataset} has {n} fold(s): comparisons over folds cannot reach p < {alpha} "
                       f"(smallest exact Wilcoxon p {comparisons.min_wilcoxon_p(n):.3g}); they are exploratory.")
        elif m > 1 and comparisons.is_exploratory(n, alpha, m):
            out.append(f"{dataset}: {m} pairwise comparisons over {n} folds cannot reach a Holm-adjusted p < {alpha} "
                       f"(smallest {comparisons.min_holm_p(n, m):.3g}); they are exploratory.")
    for r in summary.to_dict("records"):
        if r["n_ok"] and finite_or_none(r["n_windows"]) is None:  # completed folds, yet nothing was pooled
            out.append(f"{r['dataset']} · {r['entry']}: no usable out-of-fold predictions (a completed fold's "
                       "predictions.tsv is missing or unreadable); no pooled score, interval or chance test.")
        if finite_or_none(r["p_permutation"]) is not None and text_or_none(r.get("permutation_note")):
            out.append(f"{r['dataset']} · {r['entry']}: {r['permutation_note']}.")
    out += _holm_reach_warnings(summary, alpha)
    if "validation" in table:
        fallback = table[table["validation"] == "time_blocks"]
        for (dataset, model, regime), part in fallback.groupby(["dataset", "model", "regime"], sort=True):
            folds = ", ".join(str(f) for f in part["fold"])
            out.append(f"{dataset} · {entry_label(model, regime)} fold(s) {folds}: early stopping watched the last "
                       "windows of each training unit in time (finetune.optim.val_max_share): whole units would "
                       "have taken too much of the training data; see each fold's metrics.json 'validation'.")
    return out + problems


def _holm_reach_warnings(summary: pd.DataFrame, alpha: float) -> list[str]:
    """Datasets whose models, tested against chance together, cannot reach a Holm-adjusted p < alpha."""
    out = []
    if "n_chance_tests" not in summary:
        return out
    for dataset, part in summary.groupby("dataset", sort=True):
        n = finite_or_none(part["n_chance_tests"].max())
        p_min = finite_or_none(part.loc[part["p_permutation_holm"].notna(), "p_min"].min())
        if n is None or n < 2 or p_min is None or n * p_min < alpha:
            continue
        needed = math.floor(n / alpha + 1e-9)  # the smallest p is 1 / (n_permutations + 1)
        out.append(f"{dataset}: {int(n)} models are tested against chance together (Holm), and with this many "
                   f"permutations the smallest adjusted p is {fmt_p(n * p_min)}, not below {alpha}: no model can "
                   f"be called above chance. Raise report.n_permutations to at least {needed}.")
    return out


# ----------------------------------------------------------------------------- entry point


@dataclass
class Aggregated:
    """Every fold of a run read back and summarised: the tables and what the figures need."""

    table: pd.DataFrame  # metrics.tsv
    summary: pd.DataFrame  # summary.tsv
    statistics: pd.DataFrame  # statistics.tsv
    result: dict[str, Any]  # summary.json
    records: list[dict[str, Any]]
    pointers: list[dict[str, Any]]
    windows: dict[str, dict]
    folds: dict[str, dict]
    windows_paths: dict[str, str | PathLike]
    pooled: dict[tuple, Any]
    histories: dict[tuple, list]
    units: dict[str, str]
    kinds: dict[str, str]  # each dataset's target: classification or regression
    primary: dict[str, str]  # each dataset's primary metric
    problems: list[str]  # what could not be read or pooled, for the report's warnings
    settings: dict[str, Any]  # what summarise was called with (title, config hash, test and interval settings)

    def write_tables(self, out_dir: str | PathLike) -> None:
        """``metrics.tsv``, ``summary.tsv``, ``statistics.tsv`` and ``summary.json`` into ``out_dir``, atomically."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_tsv(out_dir / "metrics.tsv", self.table)
        atomic.write_tsv(out_dir / "summary.tsv", self.summary)
        atomic.write_tsv(out_dir / "statistics.tsv", self.statistics)
        atomic.write_text(out_dir / "summary.json", json.dumps(self.result, sort_keys=True, allow_nan=False) + "\n")


def summarise(
    metrics_paths: list[str | PathLike],
    pointer_paths: list[str | PathLike],
    *,
    title: str,
    primary_metric: str | Mapping[str, str],
    config_hash: str,
    windows_paths: Mapping[str, str | PathLike] | None = None,
    folds_paths: Mapping[str, str | PathLike] | None = None,
    n_permutations: int = 1000,
    n_bootstrap: int = 1000,
    ci_level: float = 0.95,
    ci_min_units: int = 8,
    alpha: float = 0.05,
    seed: int = 0,
) -> Aggregated:
    """Read every fold's artifacts and compute the tables and statistics (no figures, nothing written).

    Parameters are those of :func:`aggregate`. The Python API
    (:mod:`eegfm.api`) calls this directly and renders figures and HTML only
    when asked.
    """
    if not metrics_paths:
        raise ValueError("no metrics files to aggregate; check that the config lists datasets and backbones")
    primary_by_dataset(primary_metric, {})  # an unknown metric stops here
    windows_paths, folds_paths = dict(windows_paths or {}), dict(folds_paths or {})
    records = read_json_files(list(metrics_paths), "metrics", "probe/finetune")
    pointers = read_json_files(list(pointer_paths), "embedding pointer", "embed")
    pointers = [{**p, "_path": str(path)} for p, path in zip(pointers, pointer_paths)]
    windows = dict(zip(windows_paths, read_json_files(list(windows_paths.values()), "windows.json", "windows")))
    folds = dict(zip(folds_paths, read_json_files(list(folds_paths.values()), "folds.json", "splits")))

    table = metrics_table(records)
    kinds = dataset_targets(table, windows)
    table["target"] = table["dataset"].map(kinds)
    primary = primary_by_dataset(primary_metric, kinds)
    predictions: dict[tuple, list] = {}
    histories: dict[tuple, list] = {}
    classes: dict[tuple, set] = {}
    for rec, path in zip(records, metrics_paths):
        key = (str(rec.get("dataset")), str(rec.get("model")), str(rec.get("regime") or "probe"))
        classes.setdefault(key, set()).update(str(c) for c in rec.get("classes") or [])
        folder = Path(path).parent
        if str(rec.get("status", "ok")).lower() != "failed":
            predictions.setdefault(key, []).append((int(rec["fold"]), read_predictions(folder / "predictions.tsv")))
        history = read_history(folder / "history.tsv")
        if history is not None:
            histories.setdefault(key, []).append(history)
    units = {dataset: held_out_unit(f) for dataset, f in folds.items() if f}
    problems: list[str] = []
    pooled = pool_entries(predictions, classes, kinds, units, problems)

    entry_stats = report_stats.entry_statistics(
        table, pooled, primary, units=units, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
        ci_level=ci_level, ci_min_units=ci_min_units, alpha=alpha, seed=seed)
    summary = summary_table(table, entry_stats, primary)
    statistics = report_stats.statistics_table(table, summary, primary, alpha)
    result = summary_dict(summary, title=title, primary_metric=primary, config_hash=config_hash,
                          n_rows=len(table), n_failed=int((table["status"] == "failed").sum()))
    settings = {"title": title, "config_hash": config_hash, "n_permutations": n_permutations,
                "n_bootstrap": n_bootstrap, "ci_level": ci_level, "ci_min_units": ci_min_units, "alpha": alpha,
                "seed": seed}
    return Aggregated(table, summary, statistics, result, records, pointers, windows, folds, windows_paths, pooled,
                      histories, units, kinds, primary, problems, settings)


def render_report(agg: Aggregated, out_dir: str | PathLike, *, config: dict, workers: int = 1) -> Path:
    """Draw the figures and write them and ``report.html`` into ``out_dir``; returns the report's path.

    The title, tests and intervals described are those :func:`summarise` computed (``agg.settings``);
    ``config`` is the run's config, shown in the report; ``workers`` processes render the figures.
    """
    # here, not at the top: Jinja2 takes 0.3 s to import, and summarise (the Python API's tables) needs no page
    from eegfm import report_page

    out_dir = Path(out_dir)
    table, summary, statistics, units, primary = agg.table, agg.summary, agg.statistics, agg.units, agg.primary
    problems = list(agg.problems)
    settings = agg.settings
    ci_level, alpha, seed = settings["ci_level"], settings["alpha"], settings["seed"]
    pca = _pca_items(agg.pointers, agg.windows_paths, seed, problems, agg.kinds, units)  # may add problems
    draw = {
        "scores": partial(figures.scores_figure, table, summary, primary, ci_level, units=units),
        "confusion_matrices": partial(figures.confusion_figure, agg.pooled),
        "predicted_vs_true": partial(regression_figures.predicted_vs_true_figure, agg.pooled),
        "training_curves": partial(figures.training_curves_figure, agg.histories, summary, primary),
        "critical_difference": partial(figures.critical_difference_figure, report_stats.cd_inputs(statistics), alpha),
        "cost_frontier": partial(figures.cost_figure, summary, primary),
        "embeddings_pca": partial(data_figures.embeddings_figure, pca),
        "channel_adaptation": partial(data_figures.channel_adaptation_figure, agg.pointers),
        "leakage_audit": partial(data_figures.leakage_figure, agg.folds),
    }
    rendered = figure_render.render_all(draw, workers)
    warnings = collect_warnings(table, summary, agg.pointers, problems, alpha, agg.windows, agg.folds)
    page = report_page.render_page(report_view.page_context(
        summary=summary, table=table, statistics=statistics, summary_json=agg.result,
        pointers=[{k: v for k, v in p.items() if k != "_path"} for p in agg.pointers], rendered=rendered,
        windows=agg.windows, folds=agg.folds, warnings=warnings, primary_metric=primary,
        config=config, **{k: settings[k] for k in ("title", "config_hash", "n_permutations", "n_bootstrap",
                                                      "ci_level", "ci_min_units", "alpha")},
    ))
    for name, item in rendered.items():
        for ext in ("png", "svg"):
            with atomic.atomic_file(out_dir / "figures" / f"{name}.{ext}") as tmp:
                tmp.write_bytes(item[ext])
    atomic.write_text(out_dir / "report.html", page)
    logger.info("report of %d rows (%d entries, %d failed folds, %d warnings) in %s", len(table), len(summary),
                agg.result["n_failed"], len(warnings), out_dir)
    return out_dir / "report.html"


def aggregate(
    metrics_paths: list[str | PathLike],
    pointer_paths: list[str | PathLike],
    out_dir: str | PathLike,
    *,
    title: str,
    primary_metric: str | Mapping[str, str],
    config_hash: str,
    config: dict,
    windows_paths: Mapping[str, str | PathLike] | None = None,
    folds_paths: Mapping[str, str | PathLike] | None = None,
    n_permutations: int = 1000,
    n_bootstrap: int = 1000,
    ci_level: float = 0.95,
    ci_min_units: int = 8,
    alpha: float = 0.05,
    seed: int = 0,
    workers: int = 1,
) -> dict[str, Any]:
    """Aggregate fold results into the tables, statistics, figures and ``report.html`` under ``out_dir``.

    Parameters
    ----------
    metrics_paths
        ``metrics.json`` of every dataset × model × regime × fold; the
        ``predictions.tsv`` and (trained regimes) ``history.tsv`` beside
        each are read when present.
    pointer_paths
        Embedding pointer files (may be empty when no frozen embeddings are used).
    out_dir
        Output folder (created if needed).
    title
        Report title.
    primary_metric
        Metric of the figures, the tests and the "best model" choice; first in
        the tables. One metric applies to the datasets of its kind (the other
        kind keeps its default); ``{"classification": ..., "regression": ...}``
        names both (``report.primary_metrics`` of the config).
    config_hash
        Hash of the run's config (recorded on every row and in the report).
    config
        The run's config, shown in the report.
    windows_paths, folds_paths
        Per dataset its ``windows.json`` (with ``windows.tsv`` beside it) and
        ``folds.json``, for the data overview, the embedding PCA and the
        leakage audit; datasets left out are simply not shown there.
    n_permutations, n_bootstrap, ci_level, ci_min_units, alpha, seed
        Permutations of the chance test (0: none), bootstrap resamples, the
        confidence level, the fewest held-out units that are resampled
        themselves (else time blocks within them), the significance level
        and the seed of both (see :mod:`eegfm.intervals`, :mod:`eegfm.stats`).
    workers
        Processes that render the figures (:func:`eegfm.figure_render.render_all`).

    Returns
    -------
    dict
        The ``summary.json`` content.

    Raises
    ------
    ValueError
        No metrics files, an unknown primary metric, or duplicated results.
    FileNotFoundError
        A metrics, pointer, windows or folds file is missing (all missing paths are listed).
    """
    agg = summarise(
        metrics_paths, pointer_paths, title=title, primary_metric=primary_metric, config_hash=config_hash,
        windows_paths=windows_paths, folds_paths=folds_paths, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
        ci_level=ci_level, ci_min_units=ci_min_units, alpha=alpha, seed=seed,
    )  # fmt: skip
    agg.write_tables(out_dir)
    render_report(agg, out_dir, config=config, workers=workers)
    return agg.result
