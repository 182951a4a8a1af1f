"""The report's figure of regression targets: predicted against true values, per dataset × model.

It takes the place the confusion matrices have for classification: one panel
per entry of a dataset with ``target: regression``, from the pooled
out-of-fold predictions (:class:`eegfm.pooling.PooledRegression`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from eegfm.figures import entry_grid, placeholder
from eegfm.groups import plural
from eegfm.pooling import PooledRegression, pooled_scores
from eegfm.tables import entry_label, fmt

_MAX_POINTS = 4000  # windows drawn per panel (a seeded subsample beyond it; the unit means use every window)


def predicted_vs_true_figure(pooled: Mapping[tuple[str, str, str], Any]):
    """Pooled out-of-fold predictions against the true target, one panel per dataset × entry (rows: datasets).

    Each panel shows the windows (small dots), the mean prediction of each
    held-out unit (large dots: with a recording-level target such as age, the
    unit's one true value against what the model says on average), the
    identity line (perfect prediction, dashed) and the training-free baseline
    of the pooled mean (dotted). The title gives the pooled r, R² and MAE.
    """
    items = {k: p for k, p in pooled.items() if isinstance(p, PooledRegression) and len(p)}
    if not items:
        return placeholder("Predicted vs true", "No regression dataset in this report (datasets.<name>.target: "
                           "regression), or no out-of-fold predictions to draw.")
    fig, _, panels = entry_grid(items, 3.6, 3.7, 0.4, 0.5)
    rng = np.random.default_rng(0)
    for ax, key in panels:
        _panel(ax, items[key], f"{key[0]} · {entry_label(key[1], key[2])}", rng)
    one_column = max(Counter(key[0] for key in items).values()) == 1
    fig.suptitle("Predicted vs true target" + ("\n" if one_column else " ") + "(pooled out-of-fold predictions)",
                 fontsize=10)  # one 4-inch column: two lines
    return fig


def _panel(ax, p: PooledRegression, title: str, rng: np.random.Generator) -> None:
    shown = np.arange(len(p)) if len(p) <= _MAX_POINTS else np.sort(rng.choice(len(p), _MAX_POINTS, replace=False))
    ax.scatter(p.y[shown], p.pred[shown], s=6, alpha=0.35, color="#4c72b0", linewidth=0, label="window")
    counts = np.bincount(p.unit, minlength=len(p.units))
    present = counts > 0
    unit_true = np.bincount(p.unit, weights=p.y, minlength=len(p.units))[present] / counts[present]
    unit_pred = np.bincount(p.unit, weights=p.pred, minlength=len(p.units))[present] / counts[present]
    ax.scatter(unit_true, unit_pred, s=36, color="#dd8452", edgecolor="black", linewidth=0.5, zorder=3,
               label=f"{p.unit_name} mean")
    values = np.concatenate([p.y, p.pred])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", linestyle="--", linewidth=1,
            label="identity")
    ax.axhline(float(p.y.mean()), color="#555555", linestyle=":", linewidth=1, label="mean target")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("true", fontsize=8)
    ax.set_ylabel("predicted", fontsize=8)
    ax.tick_params(labelsize=7)
    scores = pooled_scores(p)
    ax.set_title(f"{title}\nr = {fmt(scores['pearson_r'])}, R² = {fmt(scores['r2'])}, MAE = {fmt(scores['mae'])}\n"
                 f"{len(p)} windows, {len(p.units)} {plural(p.unit_name)}", fontsize=8)  # 3 lines fit 3.6 in
    ax.legend(fontsize=6, frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
