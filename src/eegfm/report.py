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

The statistics are described in :mod:`eegfm.stats`; standard deviations
are across folds with ``ddof=1`` (NaN for a single fold).
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm import atomic, comparisons, data_figures, figures, regression_figures, report_stats
from eegfm.groups import held_out_unit, plural
from eegfm.metrics import LOWER_IS_BETTER, REGRESSION_METRICS
from eegfm.pooling import pool_entries
from eegfm.tables import (
    METRIC_NAMES,
    dataset_targets,
    entry_label,
    finite_or_none,
    fmt,
    fmt_p,
    metric_columns,
    metric_of,
    metrics_table,
    ordered_metrics,
    primary_by_dataset,
    read_history,
    read_json_files,
    read_predictions,
    summary_table,
)

logger = logging.getLogger(__name__)

_PCA_MAX_POINTS = 2000


# ----------------------------------------------------------------------------- computing


def _pca_items(pointers: list[dict], windows_paths: Mapping[str, Any], seed: int, problems: list[str],
               kinds: Mapping[str, str] | None = None) -> list[dict]:
    """2-D PCA of each embedding the pointers name, with the windows' labels (``kinds``: each dataset's
    target) and subjects."""
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
        meta = pd.read_csv(tsv, sep="\t", dtype={"subject": str, "label": str}).sort_values("window_id")
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
    return items


def summary_dict(
    summary: pd.DataFrame, *, title: str, primary_metric: str | Mapping[str, str], config_hash: str, n_rows: int,
    n_failed: int,
) -> dict:
    """The ``summary.json`` content: the best entry per dataset by its primary metric (lowest MAE, highest
    of the others), with its pooled score, CI (and its method), chance, gap over chance, p-values and
    verdict, and every entry's mean. ``primary_metric`` is one name when every dataset shares it, else
    dataset -> name; ``best[dataset]["metric"]`` names it per dataset."""
    best: dict[str, Any] = {}
    means: dict[str, dict[str, float | None]] = {}
    headline = []
    used = {}
    for dataset, part in summary.groupby("dataset", sort=True):
        m = used[str(dataset)] = metric_of(primary_metric, dataset)
        means[str(dataset)] = {r["entry"]: finite_or_none(r[f"{m}_mean"]) for r in part.to_dict("records")}
        ranked = part[part[f"{m}_mean"].notna()].sort_values(f"{m}_mean", ascending=m in LOWER_IS_BETTER,
                                                             kind="stable")
        if ranked.empty:
            best[str(dataset)] = None
            headline.append(f"{dataset}: no completed fold")
            continue
        top = ranked.iloc[0]
        best[str(dataset)] = {
            "model": top["entry"], "backbone": top["model"], "regime": top["regime"], "metric": m,
            "target": _text(top.get("target")) or "classification",
            "mean": finite_or_none(top[f"{m}_mean"]), "std": finite_or_none(top[f"{m}_std"]),
            "ci": [finite_or_none(top[f"{m}_ci_low"]), finite_or_none(top[f"{m}_ci_high"])],
            "pooled": finite_or_none(top[f"{m}_pooled"]),
            "chance": finite_or_none(top[f"{m}_chance"]), "gap": finite_or_none(top[f"{m}_gap_chance"]),
            "p_permutation": finite_or_none(top["p_permutation"]), "p_binomial": finite_or_none(top["p_binomial"]),
            "n_folds": int(top["n_folds"]), "n_failed": int(top["n_failed"]),
            "text": _pm(top[f"{m}_mean"], top[f"{m}_std"]),
            "unit": _text(top.get("unit")),
            "n_units": int(top["n_units"]) if finite_or_none(top.get("n_units")) is not None else None,
            "ci_method": _text(top.get("ci_method")), "verdict": _text(top.get("verdict")),
        }
        b = best[str(dataset)]
        headline.append(f"{dataset}: {b['model']} {METRIC_NAMES[m]} {b['text']} (pooled {fmt(b['pooled'])}, "
                        f"chance {fmt(b['chance'])}, gap {fmt(b['gap'], signed=True)}): {b['verdict'] or 'no verdict'}")
    shared = set(used.values()) if isinstance(primary_metric, Mapping) else {primary_metric}
    return {
        "title": title, "config_hash": config_hash,
        "primary_metric": next(iter(shared)) if len(shared) == 1 else dict(sorted(used.items())),
        "n_rows": int(n_rows),
        "n_failed": int(n_failed), "headline": "; ".join(headline), "best": best, "means": means,
    }


# ----------------------------------------------------------------------------- formatting


def _text(value: Any) -> str | None:
    """A text cell of the summary table, or None where it is empty (NaN)."""
    return value if isinstance(value, str) and value else None


def _pm(mean: Any, std: Any) -> str:
    """``mean ± std``; just the mean when the std is undefined (one fold)."""
    if finite_or_none(std) is None or finite_or_none(mean) is None:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def _fmt_int(value: Any) -> str:
    value = finite_or_none(value)
    return "n/a" if value is None else f"{int(value):,}"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """An HTML table from already-escaped cells (cells starting with '<td' are used verbatim)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _num(value: Any, digits: int = 3) -> str:
    return f'<td class="num">{_e(fmt(value, digits))}</td>'


def _text_num(text: str) -> str:
    return f'<td class="num">{_e(text)}</td>'


# ----------------------------------------------------------------------------- html sections


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
nav{font-size:.9rem}nav a{margin-right:.8rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{font-weight:600;background:#eef7ee}tr.failed td{background:#fdecea}.muted{color:#777;font-size:.85em}
.failed-tag{color:#b00020;font-weight:700}
code{font-size:.85em;background:#f6f6f6;padding:0 .2em}pre{background:#f6f6f6;padding:1rem;overflow:auto}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555;max-width:900px}
.warn{background:#fff4e0;border-left:4px solid #e69500;padding:.4rem .8rem;margin:.4rem 0}
.ok{background:#eef7ee;border-left:4px solid #4c9a2a;padding:.4rem .8rem}.scroll{overflow-x:auto}
"""

_CAPTIONS = {
    "confusion_matrices": "Pooled out-of-fold predictions of every fold; each row (true class) sums to 1, so the "
                          "diagonal is the recall of each class.",
    "predicted_vs_true": "Regression datasets: pooled out-of-fold predictions against the true target. Small dots: "
                         "windows; large dots: the mean prediction of each held-out unit; dashed: perfect "
                         "prediction; dotted: the mean target (a model that ignores the input).",
    "training_curves": "Left: validation score per epoch of each trained regime (mean ± std over folds; folds that "
                       "stopped early drop out of later epochs). Middle: test score per entry (mean ± std over "
                       "folds). Right: trainable parameters (log scale) against the test score.",
    "critical_difference": "Average rank of each entry over the folds completed by all entries (1 = best, left). "
                           "Entries joined by a thick line do not differ by more than the Nemenyi critical "
                           "difference (CD).",
    "cost_frontier": "Each entry's mean score against its trainable parameters and its wall time per fold (log "
                     "scales); the dashed step line is the Pareto frontier.",
    "embeddings_pca": "First two principal components of each standardised frozen embedding; left coloured by "
                      "label (class structure), right by subject (subject structure a probe may latch onto).",
    "channel_adaptation": "How each backbone's input channels were obtained from the recorded ones: fed one-to-one "
                          "(mapped), derived (bipolar), interpolated, zero-filled or projected; dropped counts "
                          "recorded channels not used.",
    "leakage_audit": "Held-out units ({units}) on the training and test side of every fold; 'overlap' counts units "
                     "on both sides and must be 0.",
}


_VALIDATION = {"groups": "whole training units", "time_blocks": "time blocks (fallback)"}


def _figure_html(name: str, rendered: dict[str, dict], caption: str = "") -> str:
    item = rendered[name]
    if item.get("placeholder"):
        return f'<p class="muted">{_e(item["placeholder"])}</p>'
    data = base64.b64encode(item["png"]).decode("ascii")
    return (f'<figure id="fig-{_e(name)}"><img alt="{_e(figures.FIGURES[name])}" '
            f'src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>')


def _pooled_ci(pooled: Any, low: Any, high: Any) -> str:
    """``0.712 [0.650, 0.771]``; the pooled score alone without an interval; n/a without a score."""
    if finite_or_none(pooled) is None:
        return "n/a"
    if finite_or_none(low) is None or finite_or_none(high) is None:
        return fmt(pooled)
    return f"{fmt(pooled)} [{fmt(low)}, {fmt(high)}]"


def _run_summary_html(summary_json: dict, table: pd.DataFrame, summary: pd.DataFrame, warnings: list[str]) -> str:
    items = []
    for dataset, b in summary_json["best"].items():
        if not b:
            items.append(f"<li><b>{_e(dataset)}</b>: no completed fold</li>")
            continue
        m = b.get("metric") or metric_of(summary_json["primary_metric"], dataset)
        pooled = _pooled_ci(b["pooled"], *b["ci"])
        items.append(
            f"<li><b>{_e(dataset)}</b>: {_e(b['model'])} — {_e(METRIC_NAMES[m])} {_e(b['text'])} over "
            f"{b['n_folds']} fold{'s' if b['n_folds'] != 1 else ''}"
            f"{', ' + str(b['n_failed']) + ' failed' if b['n_failed'] else ''}; pooled {_e(pooled)} "
            f"(chance {_e(fmt(b['chance']))}, gap {_e(fmt(b['gap'], signed=True))}): "
            f"<b>{_e(b.get('verdict') or 'no verdict')}</b></li>"
        )
    n_failed = int((table["status"] == "failed").sum())
    facts = (f"{table['dataset'].nunique()} dataset(s) · {len(summary)} dataset × model entries · "
             f"{len(table)} fold results · {n_failed} failed")
    warn = (f'<p class="warn">{len(warnings)} warning(s): see <a href="#warnings">Warnings</a>.</p>'
            if warnings else '<p class="ok">No warnings.</p>')
    return f"<p>{_e(facts)}</p><ul>{''.join(items)}</ul>{warn}"


def _input_notes(dataset: str, info: dict) -> list[str]:
    """Channels dropped by type and recordings without a window (fields of newer windows.json files)."""
    notes = []
    dropped = info.get("channels_dropped") or {}
    if dropped:
        parts = [f"{kind}: {', '.join(map(str, names))} ({len(names)})" for kind, names in sorted(dropped.items())]
        notes.append(f"{dataset}: channels dropped (not EEG) — {'; '.join(parts)}")
    for item in info.get("empty_recordings") or []:
        notes.append(f"{dataset}: no window from {item.get('recording')} (subject {item.get('subject')}): "
                     f"{item.get('reason')}")
    return notes


def _data_overview_html(windows: dict[str, dict], folds: dict[str, dict], table: pd.DataFrame) -> str:
    header = ["dataset", "windows", "subjects", "classes (windows) or target", "channels", "sfreq (Hz)",
              "window (s)", "cross-validation", "held-out units", "folds"]
    rows, notes = [], []
    for dataset in sorted(set(table["dataset"]) | set(windows)):
        info, f = windows.get(dataset) or {}, folds.get(dataset) or {}
        counts = info.get("class_counts") or {}
        sfreq, n_times = finite_or_none(info.get("sfreq")), finite_or_none(info.get("n_times"))
        length = fmt(n_times / sfreq, 2) if sfreq and n_times else "n/a"
        n_units = (f.get("audit") or {}).get("n_groups")
        units = f"{n_units} {plural(held_out_unit(f))}" if f and n_units is not None else "n/a"
        rows.append([
            _e(dataset), _text_num(_fmt_int(info.get("n_windows"))), _text_num(_fmt_int(len(info.get("subjects") or [])
                                                                                     or None)),
            _e(_target_text(info) or ", ".join(f"{k}: {v}" for k, v in counts.items()) or "n/a"),
            _text_num(_fmt_int(info.get("n_channels"))),
            _num(sfreq, 1), _text_num(length), _e(report_stats.design_sentence(f)), _text_num(units),
            _text_num(_fmt_int(len(f.get("folds") or []) or None)),
        ])
        notes += _input_notes(dataset, info)
    return _table(header, rows) + "".join(f'<p class="muted">{_e(n)}</p>' for n in notes)


def _metric_header(primary: str | Mapping[str, str], datasets) -> str | None:
    """The one metric name a table's header can carry, or None when the datasets differ (a metric column)."""
    names = {metric_of(primary, d) for d in datasets}
    return METRIC_NAMES[names.pop()] if len(names) == 1 else None


def _target_text(info: dict) -> str | None:
    """``regression: 8–61.5 (mean 34.5, median 34, 3 distinct values)`` from windows.json; None for classes."""
    t = info.get("target_summary") if info.get("target") == "regression" else None
    if not t:
        return None
    g = {k: "n/a" if finite_or_none(t.get(k)) is None else f"{float(t[k]):.4g}" for k in ("min", "max", "mean",
                                                                                          "median")}
    return (f"regression: {g['min']}–{g['max']} (mean {g['mean']}, median {g['median']}, {t.get('n_distinct')} "
            "distinct values)")


def _summary_html(summary: pd.DataFrame, primary: str | Mapping[str, str], best: dict) -> str:
    one = _metric_header(primary, summary["dataset"])
    header = ["dataset", "model", "regime", "folds", "failed", f"{one or 'primary metric'} mean ± std",
              "pooled [CI]", "chance", "gap over chance", "gap over scratch", "permutation p", "verdict",
              "CI method"]
    if one is None:
        header.insert(5, "metric")
    rows, classes = [], []
    for r in summary.to_dict("records"):
        m = metric_of(primary, r["dataset"])
        failed = int(r["n_failed"])
        failed_cell = (f'<td class="num"><span class="failed-tag">{failed} FAILED</span></td>' if failed
                       else _text_num("0"))
        rows.append([
            _e(r["dataset"]), _e(r["model"]), _e(r["regime"]), _text_num(str(r["n_folds"])), failed_cell,
            *([] if one else [_e(METRIC_NAMES[m])]),
            _text_num(_pm(r[f"{m}_mean"], r[f"{m}_std"])),
            _text_num(_pooled_ci(r[f"{m}_pooled"], r[f"{m}_ci_low"], r[f"{m}_ci_high"])),
            _num(r[f"{m}_chance"]), _text_num(fmt(r[f"{m}_gap_chance"], signed=True)),
            _text_num(fmt(r[f"{m}_gap_scratch"], signed=True)), _text_num(fmt_p(r["p_permutation"])),
            _e(_text(r.get("verdict")) or "no verdict"), f'<td class="muted">{_e(r["ci_method"])}</td>',
        ])
        top = best.get(r["dataset"])
        classes.append("failed" if r["status"] == "failed" else
                       ("best" if top and top["model"] == r["entry"] else ""))
    return _table(header, rows, classes)


def _all_metrics_html(summary: pd.DataFrame, metrics: list[str]) -> str:
    header = ["dataset", "entry"] + [METRIC_NAMES[m] for m in metrics]
    rows = []
    for r in summary.to_dict("records"):
        cells = [_e(r["dataset"]), _e(r["entry"])]
        for m in metrics:
            pooled = _pooled_ci(r[f"{m}_pooled"], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
            cells.append(f'<td class="num">{_e(_pm(r[f"{m}_mean"], r[f"{m}_std"]))}'
                         f'<br><span class="muted">pooled {_e(pooled)} · chance {_e(fmt(r[f"{m}_chance"]))}'
                         '</span></td>')
        rows.append(cells)
    return _table(header, rows)


def _folds_html(table: pd.DataFrame, metrics: list[str]) -> str:
    validation = "validation" in table and table["validation"].notna().any()
    header = ["dataset", "model", "regime", "fold", "status"] + [METRIC_NAMES[m] for m in metrics] + [
        "n_train", "n_test"] + (["early-stopping validation"] if validation else [])
    rows, classes = [], []
    for r in table.to_dict("records"):
        failed = r["status"] == "failed"
        status = (f'<span class="failed-tag">FAILED</span><br><span class="muted">{_e(r.get("error") or "")}</span>'
                  if failed else "ok")
        rows.append([_e(r["dataset"]), _e(r["model"]), _e(r["regime"]), _num(r["fold"], 0), status]
                    + [_num(r[m]) for m in metrics]
                    + [_text_num(_fmt_int(r["n_train"])), _text_num(_fmt_int(r["n_test"]))]
                    + ([_e(_VALIDATION.get(r["validation"], "-"))] if validation else []))
        classes.append("failed" if failed else "")
    return _table(header, rows, classes)


def _chance_html(summary: pd.DataFrame, primary: str | Mapping[str, str]) -> str:
    one = _metric_header(primary, summary["dataset"])
    header = ["dataset", "entry", "pooled score", "analytic chance", "empirical chance (null mean)",
              "null 95th pct. (MAE: 5th)", "permutation p", "permutations", "labels permuted",
              "majority rate (binomial p0)", "binomial p", "note"]
    if one is None:
        header.insert(2, "metric")
    rows = [[_e(r["dataset"]), _e(r["entry"]), *([] if one else [_e(METRIC_NAMES[m])]), _num(r[f"{m}_pooled"]),
             _num(r[f"{m}_chance"]), _num(r["chance_permutation"]), _num(r["chance_permutation_q"]), _text_num(fmt_p(r["p_permutation"])),
             _text_num(_fmt_int(r["n_permutations"])), _e(_text(r.get("permutation_scheme")) or "-"),
             _num(r["binomial_p0"]), _text_num(fmt_p(r["p_binomial"])),
             f'<td class="muted">{_e(_text(r.get("permutation_note")) or "")}</td>']
            for r, m in ((r, metric_of(primary, r["dataset"])) for r in summary.to_dict("records"))]
    return _table(header, rows)


def _comparisons_html(statistics: pd.DataFrame) -> str:
    parts = []
    for dataset, part in statistics.groupby("dataset", sort=True):
        pairs = part[part["test"] == "wilcoxon"]
        if pairs.empty:
            continue
        parts.append(f"<h4>{_e(dataset)}</h4>")
        rows = [[_e(r["entry_a"]), _e(r["entry_b"]), _text_num(_fmt_int(r["n"])), _e(r["detail"]),
                 _text_num(fmt_p(r["p_value"])), _text_num(fmt_p(r["p_holm"])),
                 "yes" if r["significant"] else "no", "exploratory" if r["exploratory"] else ""]
                for r in pairs.to_dict("records")]
        parts.append(_table(["a", "b", "paired folds", "difference", "Wilcoxon p", "Holm p", "significant", ""],
                            rows))
        fried = part[part["test"] == "friedman"]
        if not fried.empty:
            f = fried.iloc[0]
            ranks = part[part["test"] == "average_rank"].sort_values("statistic")
            rank_text = ", ".join(f"{e} {fmt(v, 2)}" for e, v in zip(ranks["entry_a"], ranks["statistic"]))
            parts.append(
                f"<p>Friedman χ² = {_e(fmt(f['statistic'], 2))}, p = {_e(fmt_p(f['p_value']))} "
                f"({_e(f['detail'])}){' — <b>exploratory</b>' if f['exploratory'] else ''}. "
                f"Average ranks: {_e(rank_text)}.</p>"
            )
        else:
            parts.append('<p class="muted">No Friedman test (needs ≥ 3 entries with ≥ 2 folds completed by all).</p>')
    return "".join(parts) or '<p class="muted">Only one model per dataset: nothing to compare.</p>'


def _methods_html(primary: str | Mapping[str, str], n_permutations: int, n_bootstrap: int, ci_level: float,
                  ci_min_units: int, alpha: float, units: str) -> str:
    used = {primary} if isinstance(primary, str) else set(primary.values())
    names = ", ".join(METRIC_NAMES[m] for m in sorted(used))
    return f"""<details open><summary>Methods</summary><ul>
<li><b>Unit of inference</b>: the design's held-out unit (here: {_e(units)}). Windows of one unit are not
independent, so intervals and permutations work on units, never on windows alone. Every fold's test predictions
are pooled into one <b>pooled out-of-fold score</b> per model, defined for any design, one subject included.</li>
<li><b>Confidence intervals</b> ({ci_level:.0%}, percentile, {n_bootstrap} resamples, of the pooled score): with at
least {ci_min_units} units, units are resampled with replacement, each bringing all of its predictions, so the
interval includes the variation between units. With fewer units that resample is too coarse (3 units give 10
distinct resamples) and is not used: each unit's windows, in time order, are cut into blocks of about n^(1/3)
consecutive windows and every unit redraws its own blocks. That interval keeps neighbouring windows together but is
<b>conditional on the units observed</b>: it does not cover what a new unit would bring. The CI method column says
which was used; without out-of-fold predictions there is no interval.</li>
<li><b>Analytic chance</b>: the expected score of a predictor that guesses uniformly at random (balanced accuracy
1/K, ROC AUC 0.5, kappa 0, F1 and AUPRC from the class shares); for accuracy, always predicting the majority class.
<b>Binomial test</b>: correct pooled predictions against the majority-class rate, one-sided; it treats windows as
independent and is therefore optimistic.</li>
<li><b>Empirical chance and permutation p</b> ({n_permutations} permutations, {_e(names)}): no model
is refitted. The pooled out-of-fold predictions stay fixed and the true labels are permuted within each unit (each
unit keeps its own class counts); units whose windows all carry one label exchange it as a block with the other such
units. p = (1 + #null ≥ observed) / (permutations + 1); the null mean is the empirical chance level. This tests
whether the predictions carry label information beyond the unit. Windows within a unit are treated as
exchangeable, so temporal dependence makes it somewhat optimistic. When the design allows so few distinct
relabellings that p cannot fall below α = {alpha}, the verdict says the units are too few for the test.</li>
{_regression_methods_html() if used & set(REGRESSION_METRICS) else ""}
<li><b>Verdict</b>: above chance when the permutation p is below α = {alpha}, else not distinguishable from
chance.</li>
<li><b>Model comparisons</b> (per dataset, over folds): paired two-sided Wilcoxon signed-rank tests between every
pair of entries with Holm correction (α = {alpha}); with ≥ 3 entries a Friedman test, average ranks and the Nemenyi
critical difference. Folds share training data, so these tests are optimistic. With N folds the smallest exact
Wilcoxon p is 2^(1−N): below 6 folds no difference can reach p &lt; 0.05, and results are labelled
<b>exploratory</b>.</li></ul></details>"""


def _regression_methods_html() -> str:
    return """<li><b>Regression targets</b> (r, R², MAE): the pooled out-of-fold predictions against the true values.
<b>Analytic chance</b> is what a model that ignores the input scores, learning one number from each fold's training
targets: r = 0 (no linear relation); R² of predicting the training mean (at most 0, below 0 when the test targets'
mean differs from the training mean); MAE of predicting the training median. The <b>permutation test</b> shuffles
the targets within each held-out unit, and units whose windows share one value (a recording-level target such as
age) exchange it as a block, which for a recording-level target is the only exchange there is: it asks whether the
predictions order the units' values better than any relabelling of units would. For MAE lower is better, so p counts
permutations with an MAE at or below the observed one. There is no binomial test for a continuous target.
R² and MAE are in the target's units; r and R² of a single test fold are undefined when its target is constant
(e.g. one subject's age), the pooled ones are not.</li>"""


def _cost_html(summary: pd.DataFrame, primary: str | Mapping[str, str]) -> str:
    one = _metric_header(primary, summary["dataset"])
    header = ["dataset", "entry", "trainable params", "frozen params", "wall time / fold (s)", "peak memory (MB)",
              "device", f"{one} mean" if one else "primary metric mean"]
    rows = []
    for r in summary.to_dict("records"):
        m = metric_of(primary, r["dataset"])
        score = _num(r[f"{m}_mean"]) if one else _text_num(f"{METRIC_NAMES[m]} {fmt(r[f'{m}_mean'])}")
        rows.append([_e(r["dataset"]), _e(r["entry"]), _text_num(_fmt_int(r.get("trainable_params"))),
                     _text_num(_fmt_int(r.get("frozen_params"))), _num(r.get("wall_time_s"), 1),
                     _num(r.get("peak_memory_mb"), 0), _e(r.get("device") or "n/a"), score])
    return _table(header, rows)


def _value_html(value: Any) -> str:
    """A compact, escaped rendering of an adaptation value (lists joined, dicts as key: value)."""
    if isinstance(value, list | tuple):
        return _e(", ".join(str(v) for v in value)) if value else '<span class="muted">none</span>'
    if isinstance(value, dict):
        return "<br>".join(f"{_e(k)}: {_value_html(v)}" for k, v in value.items()) or '<span class="muted">none</span>'
    return _e(value)


def _weights_html(pointer: dict[str, Any]) -> str:
    """Where a backbone's weights came from: a random init is said plainly, a checkpoint by its hash."""
    weights = str((pointer.get("fingerprint") or {}).get("weights", ""))
    if weights.startswith("random-init"):
        return f"<b>random init</b> (seed {_e(weights.split(':', 1)[-1])})"
    if weights.startswith("sha256"):
        return f"<code>{_e(weights[:23])}</code>"
    if weights == "none":
        return '<span class="muted">none (feature baseline)</span>'
    return _e(weights or "-")


def _embeddings_html(pointers: list[dict[str, Any]]) -> str:
    if not pointers:
        return '<p class="muted">No frozen embeddings in this report.</p>'
    header = ["dataset", "backbone", "weights", "embedding key", "cache", "forward passes", "windows", "dim",
              "fingerprint"]
    rows = [
        [_e(p.get("dataset")), _e(p.get("backbone")), _weights_html(p),
         f"<code>{_e(str(p.get('key', ''))[:16])}</code>",
         _e(p.get("cache")), _num(p.get("forward_passes"), 0), _num(p.get("n_windows"), 0), _num(p.get("dim"), 0),
         f"<code>{_e(str(p.get('fingerprint_sha', ''))[:16])}</code>"]
        for p in pointers
    ]
    parts = [_table(header, rows)]
    parts.append("<h3>Channel adaptation records</h3>")
    for p in pointers:
        adaptation = p.get("adaptation") or {}
        parts.append(f"<details><summary><b>{_e(p.get('dataset'))} · {_e(p.get('backbone'))}</b></summary>")
        if isinstance(adaptation, dict) and adaptation:
            parts.append(_table(["field", "value"], [[_e(k), _value_html(v)] for k, v in adaptation.items()]))
        else:
            parts.append(f'<p class="muted">{_e(adaptation or "no adaptation record")}</p>')
        if p.get("fingerprint"):
            fingerprint = json.dumps(p["fingerprint"], indent=2, sort_keys=True, default=str)
            parts.append(f"<details><summary>backbone fingerprint</summary><pre>{_e(fingerprint)}</pre></details>")
        parts.append("</details>")
    return "".join(parts)


def _provenance_html(table: pd.DataFrame, pointers: list[dict], config_hash: str) -> str:
    version_cols = sorted(c for c in table.columns if c.startswith("version_"))
    versions = [
        [_e(c.removeprefix("version_")), _e(", ".join(sorted({str(v) for v in table[c].dropna()})))]
        for c in version_cols
    ]
    commits = sorted({str(v) for v in table["git_commit"].dropna()}) if "git_commit" in table else []
    versions.insert(0, ["git commit", _e(", ".join(commits) or "unknown")])
    windows = table[["dataset", "windows_key"]].dropna().drop_duplicates().to_dict("records")
    keys = [[_e(w["dataset"]), "windows", f"<code>{_e(w['windows_key'])}</code>"] for w in windows]
    keys += [
        [_e(p.get("dataset")), f"embedding · {_e(p.get('backbone'))}", f"<code>{_e(p.get('key'))}</code>"]
        for p in pointers
    ]
    keys += [
        [_e(p.get("dataset")), f"fingerprint · {_e(p.get('backbone'))}",
         f"<code>{_e(p.get('fingerprint_sha'))}</code>"]
        for p in pointers
    ]
    return (
        f"<p>config hash: <code>{_e(config_hash)}</code></p>"
        + "<h3>Versions</h3>" + _table(["package", "version"], versions)
        + "<h3>Content keys</h3>" + _table(["dataset", "what", "key"], keys)
    )


def _config_text(config: dict) -> str:
    try:
        import yaml

        return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    except Exception:  # a config holding non-plain values still gets shown
        return json.dumps(config, indent=2, sort_keys=True, default=str)


def collect_warnings(
    table: pd.DataFrame, summary: pd.DataFrame, pointers: list[dict], problems: list[str], alpha: float
) -> list[str]:
    """Plain-text warnings: pretraining-corpus and pretraining-data overlap, failed folds, few folds, missing
    predictions, too few units for a permutation test, time-blocked early-stopping validation, problems."""
    out = []
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
        if comparisons.is_exploratory(n, alpha):
            out.append(f"{dataset} has {n} fold(s): comparisons over folds cannot reach p < {alpha} "
                       f"(smallest exact Wilcoxon p {comparisons.min_wilcoxon_p(n):.3g}); they are exploratory.")
    for r in summary.to_dict("records"):
        if r["n_ok"] and finite_or_none(r["n_windows"]) is None:  # completed folds, yet nothing was pooled
            out.append(f"{r['dataset']} · {r['entry']}: no usable out-of-fold predictions (a completed fold's "
                       "predictions.tsv is missing or unreadable); no pooled score, interval or chance test.")
        if finite_or_none(r["p_permutation"]) is not None and _text(r.get("permutation_note")):
            out.append(f"{r['dataset']} · {r['entry']}: {r['permutation_note']}.")
    if "validation" in table:
        fallback = table[table["validation"] == "time_blocks"]
        for (dataset, model, regime), part in fallback.groupby(["dataset", "model", "regime"], sort=True):
            folds = ", ".join(str(f) for f in part["fold"])
            out.append(f"{dataset} · {entry_label(model, regime)} fold(s) {folds}: early stopping watched the last "
                       "windows of each training unit in time (finetune.optim.val_max_share): whole units would "
                       "have taken too much of the training data; see each fold's metrics.json 'validation'.")
    return out + problems


def _predictions_figures_html(summary: pd.DataFrame, rendered: dict[str, dict], captions: dict[str, str]) -> str:
    """Confusion matrices for classification datasets, predicted-vs-true scatters for regression datasets."""
    kinds = set(summary["target"]) if "target" in summary else {"classification"}
    parts = []
    if kinds - {"regression"}:
        parts.append(f'<h3>Confusion matrices</h3>{_figure_html("confusion_matrices", rendered, captions["confusion_matrices"])}')
    if "regression" in kinds:
        parts.append(f'<h3>Predicted vs true</h3>{_figure_html("predicted_vs_true", rendered, captions["predicted_vs_true"])}')
    return "\n".join(parts)


def render_html(
    *, title: str, summary: pd.DataFrame, table: pd.DataFrame, statistics: pd.DataFrame, summary_json: dict,
    pointers: list[dict], rendered: dict[str, dict], windows: dict[str, dict], folds: dict[str, dict],
    warnings: list[str], primary_metric: str | Mapping[str, str], config_hash: str, config: dict, n_permutations: int,
    n_bootstrap: int, ci_level: float, ci_min_units: int, alpha: float,
) -> str:
    """The self-contained report: inline CSS, figures as base64 data URIs, no scripts, no external links."""
    metrics = ordered_metrics(primary_metric, metric_columns(table))
    used = {primary_metric} if isinstance(primary_metric, str) else set(primary_metric.values())
    names = " / ".join(METRIC_NAMES[m] for m in sorted(used))
    units = ", ".join(sorted({plural(held_out_unit(f)) for f in folds.values() if f})) or "subjects"
    captions = {k: v.format(units=units) for k, v in _CAPTIONS.items()}
    captions["scores"] = figures.scores_caption(summary, primary_metric, ci_level)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("summary", "Run summary"), ("config", "Configuration"), ("data", "Data"), ("results", "Results"),
        ("statistics", "Statistics"), ("cost", "Cost"), ("embeddings", "Embeddings"), ("provenance", "Provenance"),
        ("warnings", "Warnings")))
    warning_html = "".join(f'<p class="warn">⚠ {_e(w)}</p>' for w in warnings) or '<p class="ok">No warnings.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">{len(table)} fold results · config hash <code>{_e(config_hash[:16])}</code></p>
<nav>{nav}</nav>
<h2 id="summary">Run summary</h2>
{_run_summary_html(summary_json, table, summary, warnings)}
<h2 id="config">Configuration</h2>
<p>config hash <code>{_e(config_hash)}</code></p>
<details><summary>Configuration</summary><pre>{_e(_config_text(config))}</pre></details>
<h2 id="data">Data overview</h2>
{_data_overview_html(windows, folds, table)}
<h3>Leakage audit</h3>
{_figure_html("leakage_audit", rendered, captions["leakage_audit"])}
<h2 id="results">Results</h2>
{_figure_html("scores", rendered, captions["scores"])}
<h3>Summary ({_e(names)})</h3>
{_summary_html(summary, primary_metric, summary_json["best"])}
<h3>All metrics (mean ± std over folds)</h3>
{_all_metrics_html(summary, metrics)}
<h3>Per fold</h3>
{_folds_html(table, metrics)}
{_predictions_figures_html(summary, rendered, captions)}
<h3>Training curves</h3>
{_figure_html("training_curves", rendered, captions["training_curves"])}
<h2 id="statistics">Statistics</h2>
{_methods_html(primary_metric, n_permutations, n_bootstrap, ci_level, ci_min_units, alpha, units)}
<h3>Chance</h3>
{_chance_html(summary, primary_metric)}
<h3>Comparisons between models ({_e(names)})</h3>
{_comparisons_html(statistics)}
{_figure_html("critical_difference", rendered, captions["critical_difference"])}
<h2 id="cost">Cost frontier</h2>
{_figure_html("cost_frontier", rendered, captions["cost_frontier"])}
{_cost_html(summary, primary_metric)}
<h2 id="embeddings">Embeddings and channel adaptation</h2>
{_embeddings_html(pointers)}
{_figure_html("channel_adaptation", rendered, captions["channel_adaptation"])}
{_figure_html("embeddings_pca", rendered, captions["embeddings_pca"])}
<h2 id="provenance">Provenance</h2>
{_provenance_html(table, pointers, config_hash)}
<h2 id="warnings">Warnings</h2>
{warning_html}
</body></html>
"""


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
    return Aggregated(table, summary, statistics, result, records, pointers, windows, folds, windows_paths, pooled,
                      histories, units, kinds, primary, problems)


def render_report(
    agg: Aggregated, out_dir: str | PathLike, *, title: str, config_hash: str, config: dict,
    n_permutations: int = 1000, n_bootstrap: int = 1000, ci_level: float = 0.95, ci_min_units: int = 8,
    alpha: float = 0.05, seed: int = 0, **_settings: Any,
) -> Path:
    """Draw the figures and write them and ``report.html`` into ``out_dir``; returns the report's path.

    ``**_settings`` takes (and ignores) :func:`summarise`'s other keywords, so
    one settings dict serves both calls.
    """
    out_dir = Path(out_dir)
    table, summary, statistics, units, primary = agg.table, agg.summary, agg.statistics, agg.units, agg.primary
    problems = list(agg.problems)
    drawn = {
        "scores": figures.scores_figure(table, summary, primary, ci_level, units=units),
        "confusion_matrices": figures.confusion_figure(agg.pooled),
        "predicted_vs_true": regression_figures.predicted_vs_true_figure(agg.pooled),
        "training_curves": figures.training_curves_figure(agg.histories, summary, primary),
        "critical_difference": figures.critical_difference_figure(report_stats.cd_inputs(statistics), alpha),
        "cost_frontier": figures.cost_figure(summary, primary),
        "embeddings_pca": data_figures.embeddings_figure(
            _pca_items(agg.pointers, agg.windows_paths, seed, problems, agg.kinds)),
        "channel_adaptation": data_figures.channel_adaptation_figure(agg.pointers),
        "leakage_audit": data_figures.leakage_figure(agg.folds),
    }
    rendered = {}
    for name, fig in drawn.items():
        png, svg = figures.render(fig)
        rendered[name] = {"png": png, "svg": svg, "placeholder": getattr(fig, "eegfm_placeholder", None)}
    warnings = collect_warnings(table, summary, agg.pointers, problems, alpha)
    page = render_html(
        title=title, summary=summary, table=table, statistics=statistics, summary_json=agg.result,
        pointers=[{k: v for k, v in p.items() if k != "_path"} for p in agg.pointers], rendered=rendered,
        windows=agg.windows, folds=agg.folds, warnings=warnings, primary_metric=primary,
        config_hash=config_hash, config=config, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
        ci_level=ci_level, ci_min_units=ci_min_units, alpha=alpha,
    )
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
        and the seed of both (see :mod:`eegfm.stats`).

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
    settings = {"title": title, "primary_metric": primary_metric, "config_hash": config_hash,
                "n_permutations": n_permutations, "n_bootstrap": n_bootstrap, "ci_level": ci_level,
                "ci_min_units": ci_min_units, "alpha": alpha, "seed": seed}
    agg = summarise(metrics_paths, pointer_paths, windows_paths=windows_paths, folds_paths=folds_paths, **settings)
    agg.write_tables(out_dir)
    render_report(agg, out_dir, config=config, **settings)
    return agg.result
