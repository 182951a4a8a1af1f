"""Aggregate per-fold results into tables, a figure and a self-contained HTML report.

Inputs are the ``metrics.json`` of every dataset × model × fold (probe or
trained regimes alike) and the embedding pointer files (for the
channel-adaptation record, cache hits and forward passes). Outputs, each
written atomically into ``out_dir``::

    metrics.tsv          one row per dataset × model × regime × fold
    summary.tsv          per dataset × model × regime: mean, std, chance of every metric
    summary.json         one line: best model per dataset and primary-metric means
    figures/scores.png   primary metric per model, fold points, chance line
    report.html          everything above, with the figure inlined (no external resources)

Standard deviations are across folds with ``ddof=1`` (NaN for a single fold).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm import atomic
from eegfm.metrics import METRICS

logger = logging.getLogger(__name__)

KEY_COLUMNS = ["dataset", "model", "regime", "fold"]
METRIC_NAMES = {
    "balanced_accuracy": "Balanced accuracy",
    "accuracy": "Accuracy",
    "cohen_kappa": "Cohen's kappa",
    "f1_macro": "Macro F1",
    "roc_auc": "ROC AUC",
}


# ----------------------------------------------------------------------------- loading


def _read_json_files(paths: list[str | PathLike], what: str, rule: str) -> list[dict[str, Any]]:
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} {what} file(s) missing (run the {rule} rule): {', '.join(missing)}")
    out = []
    for path in paths:
        try:
            out.append(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); re-run the {rule} rule") from None
    return out


def _number(value: Any) -> float:
    """A metric value as float; null (undefined) becomes NaN."""
    return math.nan if value is None else float(value)


def metrics_table(records: list[dict[str, Any]], config_hash: str) -> pd.DataFrame:
    """One row per ``metrics.json``: keys, every metric and its chance, sizes, content keys, versions.

    Parameters
    ----------
    records
        Parsed ``metrics.json`` files.
    config_hash
        Hash of the run's config, repeated on every row.

    Returns
    -------
    pandas.DataFrame
        Sorted by dataset, model, regime and fold.

    Raises
    ------
    ValueError
        When two files describe the same dataset × model × regime × fold.
    """
    rows = []
    for rec in records:
        row: dict[str, Any] = {
            "dataset": str(rec.get("dataset")),
            "model": str(rec.get("model")),
            "regime": str(rec.get("regime", "probe")),
            "fold": int(rec["fold"]),
        }
        row.update({m: _number((rec.get("metrics") or {}).get(m)) for m in METRICS})
        row.update({f"chance_{m}": _number((rec.get("chance") or {}).get(m)) for m in METRICS})
        row.update(
            {
                "n_train": rec.get("n_train"),
                "n_test": rec.get("n_test"),
                "estimator": rec.get("estimator"),
                "windows_key": rec.get("windows_key"),
                "embedding_key": rec.get("embedding_key"),
                "fingerprint_sha": rec.get("fingerprint_sha"),
                "config_hash": config_hash,
            }
        )
        row.update({f"version_{pkg}": version for pkg, version in sorted((rec.get("versions") or {}).items())})
        rows.append(row)
    table = pd.DataFrame(rows)
    duplicated = table[table.duplicated(KEY_COLUMNS, keep=False)]
    if not duplicated.empty:
        keys = duplicated[KEY_COLUMNS].drop_duplicates().to_dict("records")
        raise ValueError(f"several metrics files for the same dataset/model/regime/fold: {keys}")
    return table.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def _ordered_metrics(primary_metric: str) -> list[str]:
    if primary_metric not in METRICS:
        raise ValueError(f"unknown primary_metric '{primary_metric}'; allowed: {', '.join(METRICS)}")
    return [primary_metric] + [m for m in METRICS if m != primary_metric]


def summary_table(table: pd.DataFrame, primary_metric: str) -> pd.DataFrame:
    """Per dataset × model × regime: ``n_folds`` and ``<metric>_mean/_std/_chance`` (primary metric first)."""
    grouped = table.groupby(["dataset", "model", "regime"], sort=True)
    out = grouped.size().rename("n_folds").to_frame()
    for metric in _ordered_metrics(primary_metric):
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1)
        out[f"{metric}_chance"] = grouped[f"chance_{metric}"].mean()
    return out.reset_index().round(6)  # means of a few folds: more digits are float noise


def entry_label(model: str, regime: str) -> str:
    """Name of a model in the figure and summary.json (the regime shown unless it is 'probe')."""
    return model if regime == "probe" else f"{model} [{regime}]"


def _finite_or_none(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def summary_dict(summary: pd.DataFrame, *, title: str, primary_metric: str, config_hash: str, n_rows: int) -> dict:
    """The ``summary.json`` content: best entry per dataset by the primary metric and every mean."""
    mean, std, chance = (f"{primary_metric}_{part}" for part in ("mean", "std", "chance"))
    best: dict[str, Any] = {}
    scores: dict[str, dict[str, float | None]] = {}
    for dataset, part in summary.groupby("dataset", sort=True):
        scores[str(dataset)] = {
            entry_label(r.model, r.regime): _finite_or_none(getattr(r, mean)) for r in part.itertuples()
        }
        ranked = part[part[mean].notna()].sort_values(mean, ascending=False, kind="stable")
        if ranked.empty:
            best[str(dataset)] = None
            continue
        top = ranked.iloc[0]
        best[str(dataset)] = {
            "model": entry_label(top["model"], top["regime"]),
            "mean": _finite_or_none(top[mean]),
            "std": _finite_or_none(top[std]),
            "chance": _finite_or_none(top[chance]),
            "n_folds": int(top["n_folds"]),
            "text": _pm(top[mean], top[std]),
        }
    return {
        "title": title,
        "config_hash": config_hash,
        "primary_metric": primary_metric,
        "n_rows": int(n_rows),
        "best": best,
        "means": scores,
    }


def _pm(mean: Any, std: Any) -> str:
    """``mean ± std``; just the mean when the std is undefined (one fold)."""
    if _finite_or_none(std) is None or _finite_or_none(mean) is None:
        return _fmt(mean)
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


# ----------------------------------------------------------------------------- figure


def scores_figure(table: pd.DataFrame, primary_metric: str) -> bytes:
    """PNG bytes: one panel per dataset, per model a mean bar ± std, jittered fold points and chance.

    Uses the object-oriented matplotlib API on an Agg canvas (no pyplot, no
    global backend switch), and a fixed jitter seed so the figure is
    reproducible.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = sorted(table["dataset"].unique())
    n_entries = [len(table.loc[table["dataset"] == d, ["model", "regime"]].drop_duplicates()) for d in datasets]
    widths = [max(3.2, 1.1 * n + 1.4) for n in n_entries]
    fig = Figure(figsize=(sum(widths), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False, width_ratios=widths)[0]
    rng = np.random.default_rng(0)
    models = sorted(table["model"].unique())
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, dataset in zip(axes, datasets):
        _draw_panel(ax, table[table["dataset"] == dataset], dataset, primary_metric, colors, rng)
    axes[0].set_ylabel(METRIC_NAMES[primary_metric])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    # short enough for a single narrow panel; the report's caption explains bars and points
    fig.suptitle(f"{METRIC_NAMES[primary_metric]} on held-out subjects", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _draw_panel(ax, part: pd.DataFrame, dataset: str, metric: str, colors: dict, rng) -> None:
    pairs = part[["model", "regime"]].drop_duplicates().itertuples(index=False)
    entries = sorted(pairs, key=lambda e: (e.model, e.regime != "probe", e.regime))  # the probe first
    low, high = 0.0, 1.0
    for x, (model, regime) in enumerate(entries):
        rows = part[(part["model"] == model) & (part["regime"] == regime)]
        values = rows[metric].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        chance = float(np.nanmean(rows[f"chance_{metric}"])) if rows[f"chance_{metric}"].notna().any() else math.nan
        if finite.size:
            mean = finite.mean()
            std = finite.std(ddof=1) if finite.size > 1 else 0.0
            ax.bar(x, mean, width=0.6, color=colors[model], alpha=0.35, edgecolor=colors[model],
                   yerr=std, capsize=4, error_kw={"elinewidth": 1})
            ax.scatter(x + rng.uniform(-0.18, 0.18, finite.size), finite, s=18, color=colors[model],
                       edgecolor="black", linewidth=0.4, zorder=3, label="fold" if x == 0 else None)
            ax.annotate(_fmt(mean, 2), (x, max(mean + std, finite.max())), xytext=(0, 4), textcoords="offset points",
                        ha="center", fontsize=8, zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
            low, high = min(low, finite.min()), max(high, finite.max())
        else:
            ax.annotate("n/a", (x, 0.02), ha="center", fontsize=8)
        if math.isfinite(chance):
            ax.hlines(chance, x - 0.4, x + 0.4, colors="black", linestyles="--", linewidth=1.2,
                      label="chance" if x == 0 else None, zorder=4)
    ax.set_xticks(range(len(entries)), [entry_label(m, r) for m, r in entries],
                  rotation=20 if len(entries) > 3 else 0, ha="right" if len(entries) > 3 else "center")
    ax.set_xlim(-0.6, len(entries) - 0.4)
    ax.set_ylim(low - 0.05 if low < 0 else 0.0, high + 0.1)
    ax.set_xlabel("model")
    n_folds = part["fold"].nunique()
    ax.set_title(f"{dataset} ({n_folds} fold{'s' if n_folds != 1 else ''})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


# ----------------------------------------------------------------------------- html


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{font-weight:600;background:#eef7ee}.muted{color:#777;font-size:.85em}
code{font-size:.85em;background:#f6f6f6;padding:0 .2em}pre{background:#f6f6f6;padding:1rem;overflow:auto}
img{max-width:100%;border:1px solid #eee}.warn{background:#fff4e0;border-left:4px solid #e69500;padding:.4rem .8rem}
"""


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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _num(value: Any, digits: int = 3) -> str:
    return f'<td class="num">{_e(_fmt(value, digits))}</td>'


def _summary_html(summary: pd.DataFrame, metrics: list[str], best: dict) -> str:
    header = ["dataset", "model", "regime", "folds"] + [METRIC_NAMES[m] for m in metrics]
    rows, classes = [], []
    for r in summary.to_dict("records"):
        cells = [_e(r["dataset"]), _e(r["model"]), _e(r["regime"]), _num(r["n_folds"], 0)]
        for m in metrics:
            cells.append(
                f'<td class="num">{_e(_pm(r[f"{m}_mean"], r[f"{m}_std"]))}'
                f'<br><span class="muted">chance {_e(_fmt(r[f"{m}_chance"]))}</span></td>'
            )
        rows.append(cells)
        top = best.get(r["dataset"])
        classes.append("best" if top and top["model"] == entry_label(r["model"], r["regime"]) else "")
    return _table(header, rows, classes)


def _folds_html(table: pd.DataFrame, metrics: list[str]) -> str:
    header = ["dataset", "model", "regime", "fold"] + [METRIC_NAMES[m] for m in metrics] + ["n_train", "n_test"]
    rows = [
        [_e(r["dataset"]), _e(r["model"]), _e(r["regime"]), _num(r["fold"], 0)]
        + [_num(r[m]) for m in metrics]
        + [_num(r["n_train"], 0), _num(r["n_test"], 0)]
        for r in table.to_dict("records")
    ]
    return _table(header, rows)


def _value_html(value: Any) -> str:
    """A compact, escaped rendering of an adaptation value (lists joined, dicts as key: value)."""
    if isinstance(value, list | tuple):
        return _e(", ".join(str(v) for v in value)) if value else '<span class="muted">none</span>'
    if isinstance(value, dict):
        return "<br>".join(f"{_e(k)}: {_value_html(v)}" for k, v in value.items()) or '<span class="muted">none</span>'
    return _e(value)


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
    for p in pointers:
        if p.get("corpus_overlap"):
            parts.append(
                f'<p class="warn">⚠ {_e(p.get("backbone"))} was pretrained on {_e(", ".join(p["corpus_overlap"]))}, '
                f"which {_e(p.get('dataset'))} comes from: its scores may be optimistic.</p>"
            )
    parts.append("<h3>Channel adaptation</h3>")
    for p in pointers:
        adaptation = p.get("adaptation") or {}
        parts.append(f"<p><b>{_e(p.get('dataset'))} · {_e(p.get('backbone'))}</b></p>")
        if isinstance(adaptation, dict) and adaptation:
            parts.append(_table(["field", "value"], [[_e(k), _value_html(v)] for k, v in adaptation.items()]))
        else:
            parts.append(f'<p class="muted">{_e(adaptation or "no adaptation record")}</p>')
        if p.get("fingerprint"):
            fingerprint = json.dumps(p["fingerprint"], indent=2, sort_keys=True, default=str)
            parts.append(f"<details><summary>backbone fingerprint</summary><pre>{_e(fingerprint)}</pre></details>")
    return "".join(parts)


def _weights_html(pointer: dict[str, Any]) -> str:
    """Where a backbone's weights came from: a random init is said plainly, a checkpoint by its hash."""
    weights = str((pointer.get("fingerprint") or {}).get("weights", ""))
    if weights.startswith("random-init"):
        return f"<b>random init</b> (seed {_e(weights.split(':', 1)[-1])})"
    if weights.startswith("sha256"):
        return f"<code>{_e(weights[:23])}</code>"
    return _e(weights or "-")


def _provenance_html(table: pd.DataFrame, pointers: list[dict], config_hash: str) -> str:
    version_cols = sorted(c for c in table.columns if c.startswith("version_"))
    versions = [
        [_e(c.removeprefix("version_")), _e(", ".join(sorted({str(v) for v in table[c].dropna()})))]
        for c in version_cols
    ]
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


def render_html(
    *, title: str, summary: pd.DataFrame, table: pd.DataFrame, summary_json: dict, pointers: list[dict],
    png: bytes, primary_metric: str, config_hash: str, config: dict,
) -> str:
    """The self-contained report: inline CSS, the figure as a base64 data URI, no external links."""
    metrics = _ordered_metrics(primary_metric)
    image = base64.b64encode(png).decode("ascii")
    best_lines = "".join(
        f"<li><b>{_e(d)}</b>: {_e(b['model'])} — {_e(METRIC_NAMES[primary_metric])} {_e(b['text'])} "
        f"(chance {_e(_fmt(b['chance']))}, {b['n_folds']} fold{'s' if b['n_folds'] != 1 else ''})</li>"
        for d, b in summary_json["best"].items() if b
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">{len(table)} result rows · config hash <code>{_e(config_hash[:16])}</code></p>
<ul>{best_lines}</ul>
<h2>Scores</h2>
<img alt="{_e(METRIC_NAMES[primary_metric])} per model and dataset" src="data:image/png;base64,{image}">
<p class="muted">Bars: mean over folds (± std across folds, ddof=1); dots: individual folds; dashed: chance.</p>
<h2>Summary</h2>
{_summary_html(summary, metrics, summary_json["best"])}
<h2>Per fold</h2>
{_folds_html(table, metrics)}
<h2>Embeddings</h2>
{_embeddings_html(pointers)}
<h2>Provenance</h2>
{_provenance_html(table, pointers, config_hash)}
<details><summary>Configuration</summary><pre>{_e(_config_text(config))}</pre></details>
</body></html>
"""


# ----------------------------------------------------------------------------- entry point


def aggregate(
    metrics_paths: list[str | PathLike],
    pointer_paths: list[str | PathLike],
    out_dir: str | PathLike,
    *,
    title: str,
    primary_metric: str,
    config_hash: str,
    config: dict,
) -> dict[str, Any]:
    """Aggregate fold results into ``metrics.tsv``, ``summary.tsv``, ``summary.json``,
    ``figures/scores.png`` and ``report.html`` under ``out_dir``.

    Parameters
    ----------
    metrics_paths
        ``metrics.json`` of every dataset × model × fold.
    pointer_paths
        Embedding pointer files (may be empty when no frozen embeddings are used).
    out_dir
        Output folder (created if needed).
    title
        Report title.
    primary_metric
        Metric of the figure, of the "best model" choice, and first in the tables.
    config_hash
        Hash of the run's config (recorded on every row and in the report).
    config
        The run's config, shown in the report.

    Returns
    -------
    dict
        The ``summary.json`` content.

    Raises
    ------
    ValueError
        No metrics files, an unknown primary metric, or duplicated results.
    FileNotFoundError
        A metrics or pointer file is missing (all missing paths are listed).
    """
    if not metrics_paths:
        raise ValueError("no metrics files to aggregate; check that the config lists datasets and backbones")
    _ordered_metrics(primary_metric)
    records = _read_json_files(list(metrics_paths), "metrics", "probe/finetune")
    pointers = _read_json_files(list(pointer_paths), "embedding pointer", "embed")
    out_dir = Path(out_dir)

    table = metrics_table(records, config_hash)
    summary = summary_table(table, primary_metric)
    result = summary_dict(
        summary, title=title, primary_metric=primary_metric, config_hash=config_hash, n_rows=len(table)
    )
    png = scores_figure(table, primary_metric)
    page = render_html(
        title=title, summary=summary, table=table, summary_json=result, pointers=pointers, png=png,
        primary_metric=primary_metric, config_hash=config_hash, config=config,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_tsv(out_dir / "metrics.tsv", table)
    atomic.write_tsv(out_dir / "summary.tsv", summary)
    atomic.write_text(out_dir / "summary.json", json.dumps(result, sort_keys=True, allow_nan=False) + "\n")
    with atomic.atomic_file(out_dir / "figures" / "scores.png") as tmp:
        tmp.write_bytes(png)
    atomic.write_text(out_dir / "report.html", page)
    logger.info("report of %d rows (%d dataset × model entries) in %s", len(table), len(summary), out_dir)
    return result
