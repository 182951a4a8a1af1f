"""The report's figures about the data rather than the scores: frozen embeddings, channel adaptation
and the leakage audit (same conventions as :mod:`eegfm.figures`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eegfm.figures import new_figure, placeholder
from eegfm.groups import held_out_unit, plural
from eegfm.tables import fmt

ADAPTATION_KINDS = ("mapped", "bipolar", "interpolated", "zero_filled", "projected", "dropped")
_ADAPTATION_COLORS = {"mapped": "#4c9a2a", "bipolar": "#2b7bba", "interpolated": "#e69500",
                      "zero_filled": "#c0392b", "projected": "#8e44ad", "dropped": "#999999"}


# ----------------------------------------------------------------------------- embeddings


def embeddings_figure(items: Sequence[dict[str, Any]]):
    """2-D PCA of each frozen embedding (rows: dataset × backbone), coloured by label and by subject.

    Each item holds ``dataset``, ``backbone``, ``coords`` (n × 2), ``explained`` (two variance
    shares), ``labels`` and ``subjects`` (n each) and ``n_total`` (windows before subsampling); with
    ``target: "regression"`` the labels are numbers, coloured on a continuous scale. Optional
    ``groups`` (n) and ``group_word`` (``run``) colour the right panel by the design's held-out
    sessions or runs instead of subjects.
    """
    if not items:
        return placeholder("Embeddings", "No frozen embeddings (pointer files) in this report.")
    fig = new_figure(10.0, 3.8 * len(items) + 0.4)
    axes = fig.subplots(len(items), 2, squeeze=False)
    for row, item in zip(axes, items):
        coords = np.asarray(item["coords"], dtype=float)
        right = ("groups", item["group_word"]) if item.get("groups") is not None else ("subjects", "subject")
        for ax, key, what in ((row[0], "labels", "label"), (row[1], *right)):
            if key == "labels" and item.get("target") == "regression":
                points = ax.scatter(coords[:, 0], coords[:, 1], s=8, alpha=0.7, linewidths=0, cmap="viridis",
                                    c=np.asarray(item[key], dtype=float))
                fig.colorbar(points, ax=ax, label="target")
                what = "target"
            else:
                _categories(ax, coords, np.asarray(item[key]).astype(str), what)
            ev = item.get("explained") or (math.nan, math.nan)
            ax.set(xlabel=f"PC1 ({fmt(100 * ev[0], 1)}% var.)", ylabel=f"PC2 ({fmt(100 * ev[1], 1)}% var.)")
            shown = len(coords)
            sub = f", {shown} of {item['n_total']} windows" if item.get("n_total", shown) > shown else ""
            ax.set_title(f"{item['dataset']} · {item['backbone']}: by {what}{sub}", fontsize=9)
            ax.grid(alpha=0.2)
    fig.suptitle("Frozen embeddings, first two principal components (standardised)", fontsize=10)
    return fig


def _categories(ax, coords: np.ndarray, values: np.ndarray, what: str) -> None:
    """Points coloured by category, with a legend for up to 12 of them."""
    import matplotlib

    groups = sorted(set(values))
    cmap = matplotlib.colormaps["tab10" if len(groups) <= 10 else "tab20"]
    for g, group in enumerate(groups):
        mask = values == group
        ax.scatter(coords[mask, 0], coords[mask, 1], s=8, alpha=0.7, color=cmap(g % cmap.N), label=group,
                   linewidths=0)
    if len(groups) <= 12:
        ax.legend(fontsize=7, frameon=False, markerscale=1.5, title=what, title_fontsize=7, loc="center left",
                  bbox_to_anchor=(1.0, 0.5))
    else:
        ax.text(0.99, 0.01, f"{len(groups)} {what}s", transform=ax.transAxes, ha="right", fontsize=7)


# ----------------------------------------------------------------------------- channel adaptation


def adaptation_counts(adaptation: Mapping[str, Any]) -> dict[str, int]:
    """Number of channels in each adaptation category of a pointer's adaptation record."""
    out = {}
    for kind in ADAPTATION_KINDS:
        value = adaptation.get(kind) if isinstance(adaptation, Mapping) else None
        out[kind] = len(value) if isinstance(value, list | tuple | dict) else 0
    return out


def channel_adaptation_figure(pointers: Sequence[dict[str, Any]]):
    """Per dataset a panel of stacked horizontal bars: for each backbone, how many model input channels
    were fed one-to-one (mapped), derived (bipolar), interpolated, zero-filled or projected, and how many
    recorded channels were dropped."""
    if not pointers:
        return placeholder("Channel adaptation", "No frozen embeddings (pointer files) in this report.")
    datasets = sorted({str(p.get("dataset")) for p in pointers})
    heights = [1.2 + 0.4 * sum(str(p.get("dataset")) == d for p in pointers) for d in datasets]
    fig = new_figure(9.0, sum(heights) + 0.8)
    axes = fig.subplots(len(datasets), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, dataset in zip(axes, datasets):
        mine = sorted((p for p in pointers if str(p.get("dataset")) == dataset), key=lambda p: str(p.get("backbone")))
        names = [str(p.get("backbone")) for p in mine]
        counts = [adaptation_counts(p.get("adaptation") or {}) for p in mine]
        left = np.zeros(len(mine))
        for kind in ADAPTATION_KINDS:
            values = np.array([c[kind] for c in counts], dtype=float)
            bars = ax.barh(range(len(mine)), values, left=left, color=_ADAPTATION_COLORS[kind],
                           label=kind.replace("_", "-"), height=0.6)
            for bar, value in zip(bars, values):
                if value:
                    ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2, f"{int(value)}",
                            ha="center", va="center", fontsize=7, color="white")
            left += values
        ax.set_yticks(range(len(mine)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlabel="channels", title=f"{dataset}: channel adaptation per backbone")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8, frameon=False)
    return fig


# ----------------------------------------------------------------------------- leakage audit


def leakage_figure(folds: Mapping[str, dict[str, Any]]):
    """Per dataset, per fold: held-out units (subjects, sessions, runs or blocks, as the design says) on
    the training and test sides (bars) and units on both sides (red, labelled; 0 everywhere when the
    split does not leak), from each fold's audit."""
    datasets = [d for d in sorted(folds) if (folds[d] or {}).get("folds")]
    if not datasets:
        return placeholder("Leakage audit", "No folds.json to audit.")
    fig = new_figure(max(6.0, 4.3 * len(datasets)), 3.8)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        info = folds[dataset]
        units = plural(held_out_unit(info))
        entries = info["folds"]
        audits = [e.get("audit") or {} for e in entries]
        x = np.arange(len(entries))
        train = [len(a.get("train_groups", [])) for a in audits]
        test = [len(a.get("test_groups", [])) for a in audits]
        shared = [len(set(a.get("train_groups", [])) & set(a.get("test_groups", []))) for a in audits]
        ax.bar(x - 0.2, train, width=0.4, color="#2b7bba", label=f"train {units}")
        ax.bar(x + 0.2, test, width=0.4, color="#e69500", label=f"test {units}")
        ax.bar(x, shared, width=0.25, color="#c0392b", label="in both")
        top = max(train + test + [1])
        for xi, n in zip(x, shared):
            ax.annotate(f"overlap {n}", (xi, top * 1.02), ha="center", fontsize=7,
                        color="#c0392b" if n else "#4c9a2a")
        ax.set_xticks(x, [str(e.get("fold")) for e in entries])
        ax.set_ylim(0, top * 1.15 + 0.5)
        ax.set(xlabel="fold", ylabel=units)
        ax.set_title(f"{dataset}: {info.get('scheme', '?')}, held-out {units}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig
