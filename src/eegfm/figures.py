"""The report's figures, drawn with matplotlib's object-oriented API on an Agg canvas.

Each ``*_figure`` function takes plain tables/arrays and returns a
:class:`matplotlib.figure.Figure` (no pyplot, no global backend switch);
:mod:`eegfm.figure_render` turns it into PNG and SVG bytes. When a figure has nothing to show (e.g. no fine-tuning
runs, fewer than three models), :func:`placeholder` says so in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from eegfm.groups import plural
from eegfm.metrics import LOWER_IS_BETTER
from eegfm.pooling import Pooled
from eegfm.tables import METRIC_NAMES, entry_label, metric_of

FIGURES = {
    "scores": "Scores",
    "confusion_matrices": "Confusion matrices",
    "predicted_vs_true": "Predicted vs true",
    "training_curves": "Training curves",
    "critical_difference": "Critical difference",
    "cost_frontier": "Cost frontier",
    "embeddings_pca": "Embeddings",
    "channel_adaptation": "Channel adaptation",
    "leakage_audit": "Leakage audit",
}


def new_figure(width: float, height: float):
    """A constrained-layout Figure bound to an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width, 3.0), max(height, 2.0)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def placeholder(title: str, message: str):
    """A small figure that states why there is nothing to plot (its ``eegfm_placeholder`` attribute holds
    the message)."""
    fig = new_figure(6.0, 2.0)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=9, color="#555555",
            transform=ax.transAxes)
    fig.eegfm_placeholder = message  # the HTML report shows the message instead of the image
    return fig


def entry_colors(entries: Sequence[str]) -> dict[str, str]:
    """A stable colour per entry label (sorted), shared by every figure."""
    names = sorted(set(entries))
    palette = "tab10" if len(names) <= 10 else "tab20"
    import matplotlib

    cmap = matplotlib.colormaps[palette]
    return {name: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def _entries(frame: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = frame[["model", "regime"]].drop_duplicates().itertuples(index=False)
    return sorted(((p.model, p.regime) for p in pairs), key=lambda e: (e[0], e[1] != "probe", e[1]))


def _fmt(value: Any, digits: int = 2) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _log_x(ax) -> None:
    """Log-scale x axis labelled with plain numbers (1000, 2.5, ...) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human_number(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def human_number(value: float) -> str:
    """Short tick label: 0.5, 20, 1k, 250k, 4M, 1.2G."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


# ----------------------------------------------------------------------------- scores


def _primary_values(summary: pd.DataFrame, metric: str | Mapping[str, str], suffix: str) -> pd.Series:
    """Each summary row's ``<its primary metric>_<suffix>`` as numbers (NaN where the column is absent)."""
    if isinstance(metric, str):
        column = summary.get(f"{metric}_{suffix}", pd.Series(math.nan, index=summary.index))
        return pd.to_numeric(column, errors="coerce")
    values = [row.get(f"{metric_of(metric, row['dataset'])}_{suffix}", math.nan) for row in summary.to_dict("records")]
    return pd.to_numeric(pd.Series(values, index=summary.index, dtype=object), errors="coerce")


def _drawn(summary: pd.DataFrame, metric: str | Mapping[str, str], suffix: str) -> bool:
    return bool(len(summary)) and _primary_values(summary, metric, suffix).notna().any()


def scores_caption(summary: pd.DataFrame, metric: str | Mapping[str, str], ci_level: float = 0.95) -> str:
    """The caption of :func:`scores_figure`, naming only what it draws for this summary (``metric``: one, or
    dataset -> metric)."""
    parts = ["Bars: mean over completed folds; dots: single folds"]
    if _drawn(summary, metric, "pooled"):
        pooled = "black diamond: score of the pooled out-of-fold predictions"
        if _drawn(summary, metric, "ci_low") & _drawn(summary, metric, "ci_high"):
            lows = _primary_values(summary, metric, "ci_low")
            methods = sorted({str(v).split(" (")[0] for v, low in zip(summary["ci_method"], lows) if pd.notna(low)})
            pooled += f", whisker: its {ci_level:.0%} confidence interval ({'; '.join(methods)})"
        parts.append(pooled)
    if _drawn(summary, metric, "chance"):
        parts.append("dashed: analytic chance")
    if len(summary) and "chance_permutation_q" in summary and summary["chance_permutation_q"].notna().any():
        schemes = sorted({str(v) for v in summary.get("permutation_scheme", pd.Series(dtype=object)).dropna()})
        lower = {metric in LOWER_IS_BETTER} if isinstance(metric, str) else \
            {metric_of(metric, d) in LOWER_IS_BETTER for d in summary["dataset"]}
        pct = " / ".join(name for flag, name in ((False, "95th"), (True, "5th (MAE: lower is better)"))
                         if flag in lower)
        parts.append(f"dotted: {pct} percentile of the permutation null ({'; '.join(schemes)})")
    text = "; ".join(parts) + "."
    if "n_failed" in summary and (summary["n_failed"] > 0).any():
        text += " Failed folds are counted in red."
    return text


_SCORES_MIN_WIDTH = 5.6  # inches: the suptitle and a legend of two rows
_LEGEND_COLUMN_IN = 1.75  # inches one legend entry takes at 8 pt ("permutation 95th pct." and its line)


def scores_figure(table: pd.DataFrame, summary: pd.DataFrame, metric: str | Mapping[str, str],
                  ci_level: float = 0.95, units: Mapping[str, str] | None = None):
    """One panel per dataset: per entry the mean over folds (bar), the folds (points), the pooled
    out-of-fold score with its confidence interval (diamond and whisker), the analytic chance
    level (dashed) and the permutation null's significance quantile (dotted); failed folds are counted
    in red under their entry. ``units`` (dataset -> held-out unit) names what the folds held out;
    ``metric`` is one metric or dataset -> metric (each panel in its dataset's).
    """
    by_dataset = metric
    units = dict(units or {})
    datasets = sorted(table["dataset"].unique())
    n_entries = [len(_entries(table[table["dataset"] == d])) for d in datasets]
    widths = [max(3.4, 1.2 * n + 1.4) for n in n_entries]
    widths[-1] += max(0.0, _SCORES_MIN_WIDTH - sum(widths))  # room for the legend and title under one panel
    fig = new_figure(sum(widths), 4.6)
    axes = fig.subplots(1, len(datasets), squeeze=False, width_ratios=widths)[0]
    colors = entry_colors(entry_label(m, r) for m, r in _entries(table))
    rng = np.random.default_rng(0)
    stats = summary.set_index(["dataset", "model", "regime"])
    for ax, dataset in zip(axes, datasets):
        metric = metric_of(by_dataset, dataset)
        part = table[table["dataset"] == dataset]
        entries = _entries(part)
        low, high = 0.0, 1.0
        for x, (model, regime) in enumerate(entries):
            label = entry_label(model, regime)
            rows = part[(part["model"] == model) & (part["regime"] == regime)]
            row = stats.loc[(dataset, model, regime)]
            values = rows.loc[rows["status"] == "ok", metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            color = colors[label]
            if finite.size:
                mean = finite.mean()
                ax.bar(x, mean, width=0.6, color=color, alpha=0.35, edgecolor=color)
                ax.scatter(x - 0.08 + rng.uniform(-0.14, 0.14, finite.size), finite, s=18, color=color,
                           edgecolor="black", linewidth=0.4, zorder=3, label="fold" if x == 0 else None)
                ax.annotate(_fmt(mean), (x, max(mean, finite.max())), xytext=(0, 4), textcoords="offset points",
                            ha="center", fontsize=8, zorder=5,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
                low, high = min(low, finite.min()), max(high, finite.max())
            else:
                ax.annotate("no fold score", (x, 0.03), ha="center", fontsize=8, color="#c0392b")  # pooled: beside it
            pooled, ci_low, ci_high = (float(row[f"{metric}_{k}"]) for k in ("pooled", "ci_low", "ci_high"))
            if math.isfinite(pooled):
                err = None
                if math.isfinite(ci_low) and math.isfinite(ci_high):
                    err = [[max(pooled - ci_low, 0.0)], [max(ci_high - pooled, 0.0)]]
                    low, high = min(low, ci_low), max(high, ci_high)
                ax.errorbar(x + 0.2, pooled, yerr=err, fmt="D", color="black", markersize=4, capsize=3,
                            elinewidth=1, zorder=4,
                            label=(f"pooled, {ci_level:.0%} CI" if err is not None else "pooled") if x == 0 else None)
            chance = float(row[f"{metric}_chance"])
            if math.isfinite(chance):
                ax.hlines(chance, x - 0.4, x + 0.4, colors="black", linestyles="--", linewidth=1.2,
                          label="chance" if x == 0 else None, zorder=4)
            null_q = float(row["chance_permutation_q"]) if "chance_permutation_q" in row else math.nan
            if math.isfinite(null_q):
                pct = "5th" if metric in LOWER_IS_BETTER else "95th"
                ax.hlines(null_q, x - 0.4, x + 0.4, colors="#555555", linestyles=":", linewidth=1.2,
                          label=f"permutation {pct} pct." if x == 0 else None, zorder=4)
                low, high = min(low, null_q), max(high, null_q)
            n_failed = int(row["n_failed"])
            if n_failed:
                ax.annotate(f"{n_failed} failed", (x, 0.0), xytext=(0, 3), textcoords="offset points",
                            ha="center", fontsize=8, color="#c0392b", fontweight="bold")
        rotate = len(entries) > 3
        ax.set_xticks(range(len(entries)), [entry_label(m, r) for m, r in entries],
                      rotation=25 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
        ax.set_xlim(-0.6, len(entries) - 0.4)
        ax.set_ylim(low - 0.05 if low < 0 else 0.0, high + 0.1)
        ax.set_xlabel("model")
        n_folds = part["fold"].nunique()
        ax.set_title(f"{dataset} ({n_folds} fold{'s' if n_folds != 1 else ''}, held-out "
                     f"{plural(units.get(dataset, 'subject'))})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_ylabel(METRIC_NAMES.get(metric, metric) + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
    legend: dict[str, Any] = {}  # every panel's entries once (a MAE panel's null quantile is the 5th percentile)
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    columns = max(1, min(5, len(labels), int(sum(widths) // _LEGEND_COLUMN_IN)))  # wrap rather than clip
    fig.legend(handles, labels, loc="outside lower center", ncols=columns, fontsize=8, frameon=False)
    held_out = sorted({plural(units.get(d, "subject")) for d in datasets})
    names = sorted({METRIC_NAMES.get(metric_of(by_dataset, d), d) for d in datasets})
    fig.suptitle(f"{' / '.join(names)} on held-out {' / '.join(held_out)}", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- per-entry panels


def entry_grid(keys, width: float, height: float, extra_width: float = 0.0, extra_height: float = 0.0):
    """A grid of panels: one row per dataset, one panel per ``(dataset, model, regime)`` key (probes first).

    Returns
    -------
    tuple
        The figure, its axes array, and ``(ax, key)`` for every panel in use
        (the unused cells of shorter rows are switched off).
    """
    datasets = sorted({k[0] for k in keys})
    per_row = {d: sorted((k for k in keys if k[0] == d), key=lambda k: (k[1], k[2] != "probe", k[2]))
               for d in datasets}
    n_cols = max(len(v) for v in per_row.values())
    fig = new_figure(width * n_cols + extra_width, height * len(datasets) + extra_height)
    axes = fig.subplots(len(datasets), n_cols, squeeze=False)
    panels = []
    for i, dataset in enumerate(datasets):
        for j in range(n_cols):
            if j < len(per_row[dataset]):
                panels.append((axes[i][j], per_row[dataset][j]))
            else:
                axes[i][j].set_axis_off()
    return fig, axes, panels


# ----------------------------------------------------------------------------- confusion matrices


def confusion_figure(pooled: Mapping[tuple[str, str, str], Any]):
    """Row-normalised confusion matrix (recall per true class) of the pooled out-of-fold predictions,
    one panel per dataset × entry (rows: datasets)."""
    items = {k: p for k, p in pooled.items() if isinstance(p, Pooled) and len(p)}  # regression: predicted_vs_true
    if not items:
        return placeholder("Confusion matrices", "No out-of-fold predictions (predictions.tsv) of a classification "
                           "dataset to tabulate.")
    size = 1.2 + 0.45 * max(len(p.classes) for p in items.values())
    fig, axes, panels = entry_grid(items, size, size, 1.0, 0.6)
    image = None
    for ax, key in panels:
        dataset = key[0]
        p = items[key]
        k = len(p.classes)
        cm = np.zeros((k, k))
        np.add.at(cm, (p.y, p.pred), 1.0)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        image = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        if k <= 10:
            for (r, c), value in np.ndenumerate(norm):
                ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 else "black")
        ax.set_xticks(range(k), p.classes, rotation=45 if k > 3 else 0, fontsize=7)
        ax.set_yticks(range(k), p.classes, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(f"{dataset} · {entry_label(key[1], key[2])}\n{len(p)} windows, {len(p.units)} "
                     f"{plural(p.unit_name)}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="share of the true class")
    fig.suptitle("Confusion matrices of pooled out-of-fold predictions (rows sum to 1)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- training curves


def _curve_column(frames: Sequence[pd.DataFrame]) -> str | None:
    """The first validation column every fold has and some fold filled: R² of a validation set holding one
    target value (one subject's age) is undefined in every epoch, and its panel stayed empty."""
    for column in ("val_balanced_accuracy", "val_accuracy", "val_r2", "val_loss"):
        if all(column in f.columns for f in frames) and any(
                pd.to_numeric(f[column], errors="coerce").notna().any() for f in frames):
            return column
    return None


def training_curves_figure(
    histories: Mapping[tuple[str, str, str], Sequence[pd.DataFrame]], summary: pd.DataFrame,
    metric: str | Mapping[str, str],
):
    """Per dataset (rows) three panels, like EEGDash's fine-tuning comparison: the validation curve per
    epoch (mean ± std over folds) of each trained entry, the final test score (mean ± std over folds)
    of every entry, and trainable parameters (log scale) against the test score."""
    items = {k: [f for f in v if f is not None and len(f)] for k, v in histories.items()}
    items = {k: v for k, v in items.items() if v}
    if not items:
        return placeholder("Training curves", "No trained regimes (history.tsv) in this report: only frozen "
                           "probes ran. Configure finetune.backbones to train.")
    datasets = sorted({k[0] for k in items})
    fig = new_figure(15.0, 3.9 * len(datasets) + 0.6)
    axes = fig.subplots(len(datasets), 3, squeeze=False)
    colors = entry_colors(summary["entry"])
    by_dataset = metric
    for i, dataset in enumerate(datasets):
        metric = metric_of(by_dataset, dataset)
        name = METRIC_NAMES.get(metric, metric)
        ax_curve, ax_bar, ax_cost = axes[i]
        keys = sorted((k for k in items if k[0] == dataset), key=lambda k: (k[1], k[2]))
        column = None
        for key in keys:
            frames = items[key]
            column = _curve_column(frames)
            if column is None:
                continue
            stacked = pd.concat([f[["epoch", column]].assign(_fold=n) for n, f in enumerate(frames)])
            curve = stacked.groupby("epoch")[column].agg(["mean", "std", "count"]).sort_index()
            label = entry_label(key[1], key[2])
            x, mean, std = curve.index.to_numpy(), curve["mean"].to_numpy(), curve["std"].fillna(0).to_numpy()
            ax_curve.plot(x, mean, marker="o", markersize=3, color=colors.get(label), label=label)
            ax_curve.fill_between(x, mean - std, mean + std, color=colors.get(label), alpha=0.2, linewidth=0)
        ylabel = {"val_balanced_accuracy": "validation balanced accuracy", "val_accuracy": "validation accuracy",
                  "val_r2": "validation R²", "val_loss": "validation loss"}.get(column or "", "validation score")
        ax_curve.set(xlabel="epoch", ylabel=ylabel, title=f"{dataset}: validation per epoch (mean ± std)")
        ax_curve.legend(fontsize=7, frameon=False)
        ax_curve.grid(alpha=0.3)

        part = summary[summary["dataset"] == dataset].reset_index(drop=True)
        means, stds = part[f"{metric}_mean"].to_numpy(float), np.nan_to_num(part[f"{metric}_std"].to_numpy(float))
        ax_bar.bar(range(len(part)), np.nan_to_num(means), yerr=stds, capsize=3,
                   color=[colors.get(e) for e in part["entry"]], alpha=0.8)
        chance = part[f"{metric}_chance"].mean()
        if math.isfinite(chance):
            ax_bar.axhline(chance, color="black", linestyle="--", linewidth=1, label="chance")
            ax_bar.legend(fontsize=7, frameon=False)
        ax_bar.set_xticks(range(len(part)), part["entry"], rotation=25, ha="right", fontsize=7)
        ax_bar.set(ylabel=f"test {name}", title="final test score (mean ± std over folds)")
        ax_bar.grid(axis="y", alpha=0.3)

        params = pd.to_numeric(part.get("trainable_params"), errors="coerce") if "trainable_params" in part else None
        if params is not None and params.notna().any():
            for j, row in part.iterrows():
                if not (params[j] > 0) or not math.isfinite(row[f"{metric}_mean"]):
                    continue
                ax_cost.errorbar(params[j], row[f"{metric}_mean"], yerr=np.nan_to_num(row[f"{metric}_std"]),
                                 fmt="o", color=colors.get(row["entry"]), capsize=3, label=row["entry"])
            _log_x(ax_cost)
            ax_cost.legend(fontsize=7, frameon=False)
        else:
            ax_cost.text(0.5, 0.5, "no parameter counts", ha="center", va="center", transform=ax_cost.transAxes)
        ax_cost.set(xlabel="trainable parameters (log scale)", ylabel=f"test {name}",
                    title="trainable parameters vs score")
        ax_cost.grid(alpha=0.3)
    return fig


# ----------------------------------------------------------------------------- critical difference


def critical_difference_figure(results: Mapping[str, dict[str, Any]], alpha: float = 0.05):
    """Demšar's critical-difference diagram per dataset: entries on the axis of average ranks (1 = best,
    left), the Nemenyi critical difference as a bar, and thick lines joining entries whose ranks do not
    differ by more than it.

    ``results[dataset]`` holds ``entries``, ``ranks``, ``cd``, ``n``, ``p_value``, ``cliques`` and
    ``exploratory``.
    """
    if not results:
        return placeholder("Critical difference", "A critical-difference diagram needs at least 3 models with "
                           "at least 2 folds completed by all of them on one dataset.")
    datasets = sorted(results)
    heights = [1.3 + 0.3 * math.ceil(len(results[d]["entries"]) / 2) for d in datasets]
    fig = new_figure(9.0, sum(heights) + 0.3)
    axes = fig.subplots(len(datasets), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, dataset in zip(axes, datasets):
        res = results[dataset]
        entries, ranks, cd = list(res["entries"]), np.asarray(res["ranks"], float), float(res["cd"])
        k = len(entries)
        order = np.argsort(ranks, kind="stable")
        n_left = math.ceil(k / 2)
        rows = n_left
        ax.set_xlim(0.4, k + 0.6)
        ax.set_ylim(-(0.7 * rows + 0.4), 1.6)
        ax.set_axis_off()
        ax.hlines(0, 1, k, color="black", linewidth=1)
        for r in range(1, k + 1):
            ax.vlines(r, 0, 0.12, color="black", linewidth=1)
            ax.text(r, 0.2, str(r), ha="center", va="bottom", fontsize=8)
        for pos, idx in enumerate(order):
            rank = ranks[idx]
            left = pos < n_left
            level = -(pos + 1) if left else -(k - pos)
            x_text = 0.5 if left else k + 0.5
            ax.plot([rank, rank, x_text], [0, level * 0.7, level * 0.7], color="black", linewidth=0.8)
            ax.text(x_text + (-0.05 if left else 0.05), level * 0.7, f"{entries[idx]} ({rank:.2f})",
                    ha="right" if left else "left", va="center", fontsize=8)
        if math.isfinite(cd):
            ax.plot([1, 1 + cd], [1.15, 1.15], color="#c0392b", linewidth=2)
            ax.text(1 + cd / 2, 1.25, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8, color="#c0392b")
        for g, members in enumerate(res.get("cliques") or []):
            lo, hi = ranks[members].min(), ranks[members].max()
            y = -0.25 - 0.18 * g
            ax.plot([lo - 0.03, hi + 0.03], [y, y], color="black", linewidth=3, solid_capstyle="round")
        note = " — exploratory (few folds)" if res.get("exploratory") else ""
        ax.set_title(f"{dataset}: average rank over {res['n']} folds, Friedman p = {_fmt(res['p_value'], 3)}, "
                     f"Nemenyi α = {alpha}{note}", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- cost frontier


def cost_figure(summary: pd.DataFrame, metric: str | Mapping[str, str]):
    """Per dataset (rows): trainable parameters and wall time per fold (log scales) against the mean
    score (of each dataset's metric); the Pareto frontier (no cheaper entry scores better) is drawn as a
    step line."""
    datasets = sorted(summary["dataset"].unique())
    costs = [("trainable_params", "trainable parameters (log scale)"),
             ("wall_time_s", "wall time per fold, s (log scale)")]
    if not any(c in summary and pd.to_numeric(summary[c], errors="coerce").gt(0).any() for c, _ in costs):
        return placeholder("Cost frontier", "No parameter counts or wall times in the fold records.")
    fig = new_figure(11.0, 3.8 * len(datasets) + 0.6)
    axes = fig.subplots(len(datasets), 2, squeeze=False)
    colors = entry_colors(summary["entry"])
    by_dataset = metric
    for i, dataset in enumerate(datasets):
        metric = metric_of(by_dataset, dataset)
        name = METRIC_NAMES.get(metric, metric)
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        part = summary[summary["dataset"] == dataset]
        for ax, (column, xlabel) in zip(axes[i], costs):
            x = pd.to_numeric(part.get(column), errors="coerce") if column in part else pd.Series(dtype=float)
            y = part[f"{metric}_mean"]
            ok = (x > 0) & y.notna()
            if not ok.any():
                ax.text(0.5, 0.5, f"no {column}", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            for entry, xi, yi, si in zip(part["entry"][ok], x[ok], y[ok], part[f"{metric}_std"][ok]):
                ax.errorbar(xi, yi, yerr=0 if not math.isfinite(si) else si, fmt="o", capsize=3,
                            color=colors.get(entry), label=entry)
            points = sorted(zip(x[ok], y[ok]), key=lambda p: (p[0], -sign * p[1]))  # cheapest first, best first
            frontier, best = [], -math.inf
            for xi, yi in points:
                if sign * yi > best:
                    frontier.append((xi, yi))
                    best = sign * yi
            if len(frontier) > 1:
                fx, fy = zip(*frontier)
                ax.step(fx, fy, where="post", color="#555555", linestyle="--", linewidth=1, label="Pareto frontier")
            _log_x(ax)
            ax.set(xlabel=xlabel, ylabel=f"{name} (mean over folds)", title=dataset)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, frameon=False)
    names = sorted({METRIC_NAMES.get(metric_of(by_dataset, d), d) for d in datasets})
    fig.suptitle(f"Cost against {' / '.join(names)}", fontsize=10)
    return fig
