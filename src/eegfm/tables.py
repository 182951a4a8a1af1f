"""Fold artifacts read back, and the report's tables built from them.

A fold folder (probe: ``<dataset>/probe/<backbone>/fold-<k>/``; fine-tuning:
``<dataset>/finetune/<backbone>/<regime>/fold-<k>/``) holds ``metrics.json``
and ``predictions.tsv``, and for trained regimes ``history.tsv``. A failed
fold keeps its ``metrics.json`` (``status: "failed"``, null metrics) and an
empty ``predictions.tsv``: it stays a row of every table, marked failed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm.config import DEFAULT_PRIMARY
from eegfm.metrics import LOWER_IS_BETTER, METRICS, REGRESSION_METRICS

KEY_COLUMNS = ["dataset", "model", "regime", "fold"]
ENTRY_COLUMNS = ["dataset", "model", "regime"]
METRIC_NAMES = {
    "balanced_accuracy": "Balanced accuracy",
    "accuracy": "Accuracy",
    "cohen_kappa": "Cohen's kappa",
    "f1_macro": "Macro F1",
    "f1_weighted": "Weighted F1",
    "roc_auc": "ROC AUC",
    "auprc": "AUPRC",
    "pearson_r": "Pearson r",
    "r2": "R²",
    "mae": "MAE",
}
# record fields copied as they are (after the metrics), in this order
RECORD_COLUMNS = [
    "n_train", "n_val", "n_test", "trainable_params", "frozen_params", "total_params", "best_epoch",
    "wall_time_s", "peak_memory_mb", "device", "estimator", "windows_key", "embedding_key", "fingerprint_sha",
]
# metrics by kind of target (datasets.<name>.target)
KIND_METRICS = {"classification": METRICS, "regression": REGRESSION_METRICS}
# per-entry statistics (eegfm.report_stats) copied into summary.tsv after the metric columns
SUMMARY_STAT_COLUMNS = (
    "unit", "n_subjects", "n_units", "n_windows", "ci_method", "ci_kind", "chance_permutation",
    "chance_permutation_q", "p_permutation", "p_permutation_holm", "n_chance_tests", "n_permutations", "p_min",
    "permutation_scheme", "permutation_note",
    "p_binomial", "binomial_p0", "majority_class", "binomial_trials", "binomial_n", "binomial_accuracy",
    "verdict",
)
PROVENANCE_PACKAGES = ("eegfm", "torch", "braindecode", "mne", "numpy", "scikit-learn", "zarr", "peft", "python")


# ----------------------------------------------------------------------------- reading


def read_json_files(paths: list[str | PathLike], what: str, rule: str) -> list[dict[str, Any]]:
    """Parse JSON files; every missing path is named at once, with the rule that makes it."""
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


def read_predictions(path: str | PathLike) -> pd.DataFrame | None:
    """A fold's ``predictions.tsv`` (labels and subjects as text); ``None`` when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    text_columns = {c: str for c in ("subject", "session", "run", "y_true", "y_pred")}
    frame = pd.read_csv(path, sep="\t", dtype=text_columns, keep_default_na=False)
    missing = {"subject", "y_true", "y_pred"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks column(s) {sorted(missing)}; re-run the probe/finetune rule")
    for column in frame.columns:
        if column.startswith("score_"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def read_history(path: str | PathLike) -> pd.DataFrame | None:
    """A fold's ``history.tsv`` (one row per epoch); ``None`` when absent or empty."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    frame = pd.read_csv(path, sep="\t")
    return frame if len(frame) else None


# ----------------------------------------------------------------------------- labels and numbers


def entry_label(model: str, regime: str) -> str:
    """Name of a model in figures, comparisons and summary.json (the regime shown unless it is 'probe')."""
    return model if regime == "probe" else f"{model} [{regime}]"


def number(value: Any) -> float:
    """A metric value as float; null (undefined) or text becomes NaN."""
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def finite_or_none(value: Any) -> float | None:
    """A finite float, or None (for strict JSON)."""
    value = number(value)
    return value if math.isfinite(value) else None


def fmt(value: Any, digits: int = 3, signed: bool = False) -> str:
    """A number for the report's text, or ``n/a`` when undefined."""
    value = finite_or_none(value)
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_p(value: Any) -> str:
    """A p-value: ``< 0.001`` below that, three decimals otherwise, ``n/a`` when undefined."""
    value = finite_or_none(value)
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def record_status(rec: dict[str, Any]) -> str:
    """``ok`` or ``failed``; records written before the status field are ok."""
    return "failed" if str(rec.get("status", "ok")).lower() == "failed" else "ok"


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The metrics present in a metrics table: classification ones, then regression ones any record holds."""
    return [m for m in METRICS if m in table.columns] + [m for m in REGRESSION_METRICS if m in table.columns]


def kind_of_metric(metric: str) -> str:
    """``classification`` or ``regression``: the kind of target a metric scores."""
    for kind, names in KIND_METRICS.items():
        if metric in names:
            return kind
    raise ValueError(f"unknown primary_metric '{metric}'; allowed: {', '.join((*METRICS, *REGRESSION_METRICS))}")


def primary_by_dataset(primary_metric: str | Mapping[str, str], kinds: Mapping[str, str]) -> dict[str, str]:
    """The primary metric of each dataset, from the config's ``report.primary_metric`` and each dataset's target.

    Parameters
    ----------
    primary_metric
        One metric (it applies to datasets of its kind; the other kind keeps
        its default, :data:`eegfm.config.DEFAULT_PRIMARY`) or a mapping
        ``{"classification": ..., "regression": ...}``.
    kinds
        Dataset -> ``classification`` or ``regression``.
    """
    per_kind = dict(DEFAULT_PRIMARY)
    if isinstance(primary_metric, str):
        per_kind[kind_of_metric(primary_metric)] = primary_metric
    else:
        for kind, metric in primary_metric.items():
            if kind not in per_kind or kind_of_metric(metric) != kind:
                raise ValueError(f"primary_metric: '{metric}' is not a {kind} metric")
            per_kind[kind] = metric
    return {dataset: per_kind[kind] for dataset, kind in kinds.items()}


def metric_of(primary: str | Mapping[str, str], dataset: str) -> str:
    """The primary metric of ``dataset``: ``primary`` itself, or its entry for the dataset."""
    return primary if isinstance(primary, str) else primary[str(dataset)]


def ordered_metrics(primary: str | Mapping[str, str], available: list[str] | None = None) -> list[str]:
    """The primary metric(s) first (classification before regression), then the others."""
    metrics = list(available) if available is not None else list(METRICS)
    primaries = [primary] if isinstance(primary, str) else sorted(set(primary.values()), key=kind_of_metric)
    for metric in primaries:
        kind_of_metric(metric)  # an unknown name is an error
    return primaries + [m for m in metrics if m not in primaries]


# ----------------------------------------------------------------------------- metrics table


def metrics_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per ``metrics.json``: keys, status, every metric and its chance, sizes, cost, provenance.

    Parameters
    ----------
    records
        Parsed ``metrics.json`` files.

    Returns
    -------
    pandas.DataFrame
        Sorted by dataset, model, regime and fold. A failed fold is a row
        with ``status == "failed"``, its ``error`` and NaN metrics. Regression
        metrics get columns only when some record holds them. Versions are
        ``version_<package>`` columns; ``git_commit`` has its own;
        ``settings_hash`` is the hash of the settings the fold's own job used
        (its ``settings_sha``: an edit that re-runs no fold changes no row);
        ``validation`` is the early-stopping split's method (``groups`` or
        ``time_blocks``) of trained regimes; ``target`` is the kind of
        target (``classification`` for records written before it).

    Raises
    ------
    ValueError
        When two files describe the same dataset × model × regime × fold.
    """
    regression = [m for m in REGRESSION_METRICS if any(m in (r.get("metrics") or {}) for r in records)]
    rows = []
    for rec in records:
        status = record_status(rec)
        metrics = rec.get("metrics") or {}
        chance = rec.get("chance") or {}
        row: dict[str, Any] = {
            "dataset": str(rec.get("dataset")),
            "model": str(rec.get("model")),
            "regime": str(rec.get("regime") or "probe"),
            "fold": int(rec["fold"]),
            "target": str(rec.get("target") or "classification"),
            "status": status,
            "error": rec.get("error") if status == "failed" else None,
        }
        row.update({m: math.nan if status == "failed" else number(metrics.get(m)) for m in (*METRICS, *regression)})
        row.update({f"chance_{m}": number(chance.get(m)) for m in (*METRICS, *regression)})
        row.update({c: rec.get(c) for c in RECORD_COLUMNS})
        row["validation"] = (rec.get("validation") or {}).get("method")  # fine-tuning: how early stopping validated
        versions = dict(rec.get("versions") or {})
        row["settings_hash"] = rec.get("settings_sha")
        row["git_commit"] = versions.pop("git_commit", None)
        row.update({f"version_{pkg}": version for pkg, version in sorted(versions.items())})
        rows.append(row)
    table = pd.DataFrame(rows)
    duplicated = table[table.duplicated(KEY_COLUMNS, keep=False)]
    if not duplicated.empty:
        keys = duplicated[KEY_COLUMNS].drop_duplicates().to_dict("records")
        raise ValueError(f"several metrics files for the same dataset/model/regime/fold: {keys}")
    for column in ("n_train", "n_val", "n_test", "trainable_params", "frozen_params", "total_params", "best_epoch"):
        table[column] = pd.array(table[column], dtype="Int64")
    return table.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def dataset_targets(table: pd.DataFrame, windows: Mapping[str, dict]) -> dict[str, str]:
    """Each dataset's kind of target: its ``windows.json`` ``target``, else what its fold records say."""
    kinds = {}
    for dataset, part in table.groupby("dataset", sort=True):
        recorded = (windows.get(str(dataset)) or {}).get("target")
        kinds[str(dataset)] = str(recorded or ("regression" if (part["target"] == "regression").any()
                                               else "classification"))
    return kinds


# ----------------------------------------------------------------------------- summary table


def summary_table(
    table: pd.DataFrame, entry_stats: dict[tuple[str, str, str], dict[str, Any]],
    primary_metric: str | Mapping[str, str],
) -> pd.DataFrame:
    """Per dataset × model × regime: fold counts, then for every metric mean, std, CI, chance and gaps.

    Parameters
    ----------
    table
        :func:`metrics_table`.
    entry_stats
        Per ``(dataset, model, regime)`` (:func:`eegfm.report_stats.entry_statistics`):
        ``ci`` (metric -> (low, high)), ``pooled`` (metric -> pooled
        out-of-fold score) and the fields of ``SUMMARY_STAT_COLUMNS`` (the
        held-out unit and counts, the interval's method, the primary
        metric's permutation and binomial tests, the verdict).
    primary_metric
        Listed first (a mapping dataset -> metric lists each dataset's).

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, model, regime, entry, target, n_folds, n_ok,
        n_failed, status`` then per metric ``<m>_mean`` and ``<m>_std`` (over the folds
        that completed, ddof=1), ``<m>_ci_low/_ci_high``, ``<m>_pooled``,
        ``<m>_chance`` (mean analytic chance of the folds), ``<m>_gap_chance``
        (mean - chance) and ``<m>_gap_scratch`` (mean - the mean of the
        ``scratch`` regime of the same dataset and backbone; NaN without
        one), then the primary metric's tests. Cost columns summarise the
        completed folds: ``trainable_params`` and ``frozen_params``
        (median), ``wall_time_s`` (mean), ``peak_memory_mb`` (max) and
        ``device``.
    """
    metrics = ordered_metrics(primary_metric, metric_columns(table))
    rows = []
    for (dataset, model, regime), part in table.groupby(ENTRY_COLUMNS, sort=True):
        ok = part[part["status"] == "ok"]
        n_failed = int((part["status"] == "failed").sum())
        stats = entry_stats.get((dataset, model, regime), {})
        row: dict[str, Any] = {
            "dataset": dataset, "model": model, "regime": regime, "entry": entry_label(model, regime),
            "target": str(part["target"].iloc[0]) if "target" in part else "classification", "n_folds": len(part), "n_ok": len(ok), "n_failed": n_failed,
            "status": "failed" if len(ok) == 0 else ("partial" if n_failed else "ok"),
            "trainable_params": _median(ok.get("trainable_params")),
            "frozen_params": _median(ok.get("frozen_params")),
            "wall_time_s": _mean(ok.get("wall_time_s")),
            "peak_memory_mb": _max(ok.get("peak_memory_mb")),
            "device": ", ".join(sorted({str(v) for v in ok["device"].dropna()})) or None,
        }
        for m in metrics:
            values = ok[m].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if finite.size else math.nan
            chance_col = f"chance_{m}"
            chance = float(np.nanmean(part[chance_col])) if chance_col in part and part[chance_col].notna().any() \
                else math.nan
            low, high = (stats.get("ci") or {}).get(m, (math.nan, math.nan))
            row.update({
                f"{m}_mean": mean,
                f"{m}_std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
                f"{m}_ci_low": low, f"{m}_ci_high": high,
                f"{m}_pooled": (stats.get("pooled") or {}).get(m, math.nan),
                f"{m}_chance": chance,
                f"{m}_gap_chance": mean - chance if m not in LOWER_IS_BETTER else chance - mean,
            })
        for key in SUMMARY_STAT_COLUMNS:
            row[key] = stats.get(key, math.nan)
        rows.append(row)
    summary = pd.DataFrame(rows)
    scratch = summary[summary["regime"] == "scratch"].set_index(["dataset", "model"])
    for m in metrics:
        baseline = [scratch[f"{m}_mean"].get((d, mo), math.nan) if r != "scratch" else math.nan
                    for d, mo, r in zip(summary["dataset"], summary["model"], summary["regime"])]
        sign = -1.0 if m in LOWER_IS_BETTER else 1.0
        summary[f"{m}_gap_scratch"] = sign * (summary[f"{m}_mean"] - np.asarray(baseline, dtype=float))
    ordered = ["dataset", "model", "regime", "entry", "target", "n_folds", "n_ok", "n_failed", "status"]
    cost = ["trainable_params", "frozen_params", "wall_time_s", "peak_memory_mb", "device"]
    for m in metrics:
        ordered += [f"{m}_{part}" for part in ("mean", "std", "ci_low", "ci_high", "pooled", "chance", "gap_chance",
                                               "gap_scratch")]
    ordered += [c for c in summary.columns if c not in ordered and c not in cost] + cost
    # means of a few folds: more digits are float noise; p-values keep theirs (1e-30 is not 0)
    return summary[ordered].round({c: 6 for c in ordered if not c.startswith("p_")})


def _numeric(values) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    out = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return out[np.isfinite(out)]


def _median(values) -> float:
    x = _numeric(values)
    return float(np.median(x)) if x.size else math.nan


def _mean(values) -> float:
    x = _numeric(values)
    return float(x.mean()) if x.size else math.nan


def _max(values) -> float:
    x = _numeric(values)
    return float(x.max()) if x.size else math.nan


def fold_matrix(table: pd.DataFrame, dataset: str, metric: str) -> pd.DataFrame:
    """Folds × entries scores of one dataset (NaN for failed folds), for comparisons and ranks."""
    part = table[table["dataset"] == dataset].assign(
        entry=lambda t: [entry_label(m, r) for m, r in zip(t["model"], t["regime"])]
    )
    return part.pivot(index="fold", columns="entry", values=metric).sort_index()
