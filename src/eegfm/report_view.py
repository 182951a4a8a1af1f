"""What the HTML report shows, as plain data for its template (``templates/report.html.j2``).

Every number is formatted, every caption, note and sentence written here;
the template only lays them out and escapes every string it is given
(docs/architecture.md §2.7). A table is a header and rows of :class:`Cell`
(or plain strings); no HTML is written here. The one exception is a
figure's ``data:`` URI, marked safe because base64 holds nothing to escape.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from markupsafe import Markup

from eegfm import figures, report_stats
from eegfm.groups import held_out_unit, plural
from eegfm.metrics import REGRESSION_METRICS
from eegfm.tables import METRIC_NAMES, finite_or_none, fmt, fmt_p, metric_columns, metric_of, ordered_metrics


@dataclass(frozen=True)
class Cell:
    """One table cell as the template draws it, in this order: a red ``tag`` (a failed fold), a bold
    ``strong`` lead, the ``text`` (in ``<code>`` when ``code``, grey when ``muted``), a grey second line
    ``note``, and ``lines`` (``(text, none)`` pairs, one per line; ``none`` adds a grey "none").
    ``cls`` is the cell's class: ``num`` (right-aligned) or ``muted``."""

    text: str = ""
    cls: str = ""
    tag: str = ""
    strong: str = ""
    code: bool = False
    muted: bool = False
    note: str | None = None
    lines: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class Table:
    """A header and rows of cells (a plain string is a plain cell); ``row_classes``: ``best``, ``failed``."""

    header: list[str]
    rows: list[list[Cell | str]]
    row_classes: list[str] = field(default_factory=list)


CAPTIONS = {
    "confusion_matrices": "Pooled out-of-fold predictions of every fold; each row (true class) sums to 1, so the "
                          "diagonal is the recall of each class.",
    "predicted_vs_true": "Regression datasets: pooled out-of-fold predictions against the true target. Small dots: "
                         "windows; large dots: the mean prediction of each held-out unit; dashed: perfect "
                         "prediction; dotted: the mean target (a model that ignores the input).",
    "training_curves": "Left: validation score per epoch of each trained regime, or its validation loss where no "
                       "fold defines a score (mean ± std over folds; folds that stopped early drop out of later "
                       "epochs). Middle: test score per entry (mean ± std over "
                       "folds). Right: trainable parameters (log scale) against the test score.",
    "critical_difference": "Average rank of each entry over the folds completed by all entries (1 = best, left). "
                           "Entries joined by a thick line do not differ by more than the Nemenyi critical "
                           "difference (CD).",
    "cost_frontier": "Each entry's mean score against its trainable parameters and its wall time per fold (log "
                     "scales); the dashed step line is the Pareto frontier.",
    "embeddings_pca": "First two principal components of each standardised frozen embedding; left coloured by "
                      "label (class structure), right by subject, or by session or run where the design holds "
                      "those out (structure a probe may latch onto).",
    "channel_adaptation": "How each backbone's input channels were obtained from the recorded ones: fed one-to-one "
                          "(mapped), derived (bipolar), interpolated, zero-filled or projected; dropped counts "
                          "recorded channels not used.",
    "leakage_audit": "Held-out units ({units}) on the training and test side of every fold; 'overlap' counts units "
                     "on both sides and must be 0.",
}

_VALIDATION = {"groups": "whole training units", "time_blocks": "time blocks (fallback)"}


# ----------------------------------------------------------------------------- formatting


def text_or_none(value: Any) -> str | None:
    """A text cell of the summary table, or None where it is empty (NaN)."""
    return value if isinstance(value, str) and value else None


def mean_pm_std(mean: Any, std: Any) -> str:
    """``mean ± std``; just the mean when the std is undefined (one fold)."""
    if finite_or_none(std) is None or finite_or_none(mean) is None:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def _fmt_int(value: Any) -> str:
    value = finite_or_none(value)
    return "n/a" if value is None else f"{int(value):,}"


def _pooled_ci(pooled: Any, low: Any, high: Any, method: Any = None) -> str:
    """``0.712 [0.650, 0.771]``; the pooled score alone without an interval; n/a without a score.

    With the interval's ``method`` given, an interval conditional on the units observed says so beside the
    numbers (``0.712 [0.650, 0.771], conditional on these runs``), not only in the method column.
    """
    if finite_or_none(pooled) is None:
        return "n/a"
    if finite_or_none(low) is None or finite_or_none(high) is None:
        return fmt(pooled)
    found = re.search(r"conditional on (these \w+|this \w+)", str(method or ""))
    return f"{fmt(pooled)} [{fmt(low)}, {fmt(high)}]" + (f", conditional on {found.group(1)}" if found else "")


def _num(value: Any, digits: int = 3) -> Cell:
    return Cell(fmt(value, digits), cls="num")


def _num_text(text: str) -> Cell:
    return Cell(text, cls="num")


def _metric_header(primary: str | Mapping[str, str], datasets) -> str | None:
    """The one metric name a table's header can carry, or None when the datasets differ (a metric column)."""
    names = {metric_of(primary, d) for d in datasets}
    return METRIC_NAMES[names.pop()] if len(names) == 1 else None


def _figure(name: str, rendered: dict[str, dict], caption: str) -> dict[str, Any]:
    item = rendered[name]
    if item.get("placeholder"):
        return {"placeholder": item["placeholder"]}
    data = base64.b64encode(item["png"]).decode("ascii")
    # base64 holds only [A-Za-z0-9+/=]: nothing to escape, so it is marked safe rather than scanned
    return {"placeholder": None, "id": f"fig-{name}", "alt": figures.FIGURES[name], "caption": caption,
            "src": Markup(f"data:image/png;base64,{data}")}


# ----------------------------------------------------------------------------- sections


def held_out_text(best: Mapping[str, Any]) -> str:
    """`` holding out 3 runs`` from a summary.json ``best`` entry (its unit and their number); empty without.
    After a failed fold the pooled units are fewer than the design's, so only the unit is named (the verdict
    says how many were pooled)."""
    unit, n = best.get("unit"), best.get("n_units")
    if not unit or n is None:
        return ""
    if best.get("n_failed"):
        return f" holding out {plural(unit)}"
    return f" holding out {n} {plural(unit) if n != 1 else unit}"


def _run_summary(summary_json: dict, table: pd.DataFrame, summary: pd.DataFrame) -> dict[str, Any]:
    items = []
    for dataset, b in summary_json["best"].items():
        if not b:
            items.append({"dataset": str(dataset), "text": "no completed fold", "verdict": None})
            continue
        m = b.get("metric") or metric_of(summary_json["primary_metric"], dataset)
        failed = f", {b['n_failed']} failed" if b["n_failed"] else ""
        items.append({"dataset": str(dataset), "verdict": b.get("verdict") or "no verdict", "text": (
            f"{report_stats.best_of_text(b)}{b['model']} — {METRIC_NAMES[m]} {b['text']} over {b['n_folds']} fold{'s' if b['n_folds'] != 1 else ''}"
            f"{held_out_text(b)}{failed}, chance {fmt(b['chance'])} (gap of the fold mean "
            f"{fmt(b['gap'], signed=True)}); pooled {_pooled_ci(b['pooled'], *b['ci'], b.get('ci_method'))}")})
    n_failed = int((table["status"] == "failed").sum())
    facts = (f"{table['dataset'].nunique()} dataset(s) · {len(summary)} dataset × model entries · "
             f"{len(table)} fold results · {n_failed} failed")
    return {"facts": facts, "items": items}


#: most items of one windows.json record listed in the report (the rest are counted)
MAX_LISTED = 5


def _item_text(item: Any) -> str:
    if isinstance(item, Mapping):
        return ", ".join(f"{k} {v}" for k, v in item.items())
    return str(item)


def input_warnings(dataset: str, info: dict) -> list[str]:
    """What the windows job warned about, read back from its ``windows.json``: recordings without a window
    (``empty_recordings``), signal-check findings kept under ``preprocessing.signal_check: warn``
    (``sanity``), labelled windows dropped (``dropped_windows``: two classes claim them, they do not fit, or
    they overlap a ``BAD*`` annotation) and other records of dropped data (a top-level key with ``dropped``, other
    than ``channels_dropped``), read generically: a list gives one line per item, a mapping one line per
    key, a number its count. Up to :data:`MAX_LISTED` lines per record; the rest are counted."""
    out = []
    for item in info.get("empty_recordings") or []:
        out.append(f"{dataset}: no window from {item.get('recording')} (subject {item.get('subject')}): "
                   f"{item.get('reason')}")
    sanity = info.get("sanity") or {}
    problems = [p for rec in sanity.get("recordings") or [] for p in rec.get("problems") or []]
    out += _capped([f"{dataset}: signal check (preprocessing.signal_check: {sanity.get('signal_check')}): "
                    f"{p.get('message') or p.get('kind')}" for p in problems], dataset, "sanity")
    out += _capped([f"{dataset}: {d.get('n')} labelled window(s) of {d.get('recording')} (subject "
                    f"{d.get('subject')}) dropped: {d.get('reason')} (first at {d.get('first_s')} s; "
                    f"{', '.join(map(str, d.get('labels') or []))})"
                    for d in info.get("dropped_windows") or []], dataset, "dropped_windows")
    for key in sorted(k for k in info if "dropped" in k and k not in ("channels_dropped", "dropped_windows")):
        value, name = info[key], key.replace("_", " ")
        if isinstance(value, Mapping):
            lines = [f"{dataset}: {name}: {k}: {_item_text(v)}" for k, v in value.items()]
        elif isinstance(value, list | tuple):
            lines = [f"{dataset}: {name}: {_item_text(v)}" for v in value]
        else:
            lines = [f"{dataset}: {name}: {value}"] if value else []
        out += _capped(lines, dataset, key)
    return out


def _capped(lines: list[str], dataset: str, key: str) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return [*lines[:MAX_LISTED], f"{dataset}: {len(lines) - MAX_LISTED} more in windows.json '{key}'"]


def _input_notes(dataset: str, info: dict) -> list[str]:
    """Channels dropped by type, then what the windows job warned about (:func:`input_warnings`)."""
    notes = []
    dropped = info.get("channels_dropped") or {}
    if dropped:
        parts = [f"{kind}: {', '.join(map(str, names))} ({len(names)})" for kind, names in sorted(dropped.items())]
        notes.append(f"{dataset}: channels dropped (not EEG) — {'; '.join(parts)}")
    return notes + input_warnings(dataset, info)


def _target_text(info: dict) -> str | None:
    """``regression: 8–61.5 (mean 34.5, median 34, 3 distinct values)`` from windows.json; None for classes."""
    t = info.get("target_summary") if info.get("target") == "regression" else None
    if not t:
        return None
    g = {k: "n/a" if finite_or_none(t.get(k)) is None else f"{float(t[k]):.4g}" for k in ("min", "max", "mean",
                                                                                          "median")}
    return (f"regression: {g['min']}–{g['max']} (mean {g['mean']}, median {g['median']}, {t.get('n_distinct')} "
            "distinct values)")


def _data_overview(windows: dict[str, dict], folds: dict[str, dict], table: pd.DataFrame) -> dict[str, Any]:
    header = ["dataset", "windows", "subjects", "classes (windows) or target", "channels", "sfreq (Hz)",
              "window (s)", "cross-validation", "held-out units", "folds"]
    rows, notes = [], []
    for dataset in sorted(set(table["dataset"]) | set(windows)):
        info, f = windows.get(dataset) or {}, folds.get(dataset) or {}
        counts = info.get("class_counts") or {}
        sfreq, n_times = finite_or_none(info.get("sfreq")), finite_or_none(info.get("n_times"))
        n_units = (f.get("audit") or {}).get("n_groups")
        rows.append([
            str(dataset), _num_text(_fmt_int(info.get("n_windows"))),
            _num_text(_fmt_int(len(info.get("subjects") or []) or None)),
            _target_text(info) or ", ".join(f"{k}: {v}" for k, v in counts.items()) or "n/a",
            _num_text(_fmt_int(info.get("n_channels"))), _num(sfreq, 1),
            _num_text(fmt(n_times / sfreq, 2) if sfreq and n_times else "n/a"), report_stats.design_sentence(f),
            _num_text(f"{n_units} {plural(held_out_unit(f))}" if f and n_units is not None else "n/a"),
            _num_text(_fmt_int(len(f.get("folds") or []) or None)),
        ])
        notes += _input_notes(dataset, info)
    return {"table": Table(header, rows), "notes": notes}


def _summary_table(summary: pd.DataFrame, primary: str | Mapping[str, str], best: dict) -> Table:
    one = _metric_header(primary, summary["dataset"])
    # fold-mean columns first (chance is the mean of the folds' analytic chance), then the pooled score's
    header = ["dataset", "model", "regime", "folds", "failed", f"{one or 'primary metric'} mean ± std", "chance",
              "gap over chance (fold mean)", "gap over scratch (fold mean)", "pooled [CI]", "permutation p",
              "verdict", "CI method"]
    if one is None:
        header.insert(5, "metric")
    rows, classes = [], []
    for r in summary.to_dict("records"):
        m = metric_of(primary, r["dataset"])
        failed = int(r["n_failed"])
        rows.append([
            str(r["dataset"]), str(r["model"]), str(r["regime"]), _num_text(str(r["n_folds"])),
            Cell(cls="num", tag=f"{failed} FAILED") if failed else _num_text("0"),
            *([] if one else [METRIC_NAMES[m]]),
            _num_text(mean_pm_std(r[f"{m}_mean"], r[f"{m}_std"])),
            _num(r[f"{m}_chance"]), _num_text(fmt(r[f"{m}_gap_chance"], signed=True)),
            _num_text(fmt(r[f"{m}_gap_scratch"], signed=True)),
            _num_text(_pooled_ci(r[f"{m}_pooled"], r[f"{m}_ci_low"], r[f"{m}_ci_high"])),
            _num_text(fmt_p(r["p_permutation"])),
            text_or_none(r.get("verdict")) or "no verdict", Cell(str(r["ci_method"]), cls="muted"),
        ])
        top = best.get(r["dataset"])
        classes.append("failed" if r["status"] == "failed" else
                       ("best" if top and top["model"] == r["entry"] else ""))
    return Table(header, rows, classes)


def _all_metrics_table(summary: pd.DataFrame, metrics: list[str]) -> Table:
    rows = [[str(r["dataset"]), str(r["entry"])] + [
        Cell(mean_pm_std(r[f"{m}_mean"], r[f"{m}_std"]), cls="num",
             note=f"fold chance {fmt(r[f'{m}_chance'])} · pooled "
                  f"{_pooled_ci(r[f'{m}_pooled'], r[f'{m}_ci_low'], r[f'{m}_ci_high'])}")
        for m in metrics] for r in summary.to_dict("records")]
    return Table(["dataset", "entry"] + [METRIC_NAMES[m] for m in metrics], rows)


def _folds_table(table: pd.DataFrame, metrics: list[str]) -> Table:
    validation = "validation" in table and table["validation"].notna().any()
    header = ["dataset", "model", "regime", "fold", "status"] + [METRIC_NAMES[m] for m in metrics] + [
        "n_train", "n_test"] + (["early-stopping validation"] if validation else [])
    rows, classes = [], []
    for r in table.to_dict("records"):
        failed = r["status"] == "failed"
        rows.append([str(r["dataset"]), str(r["model"]), str(r["regime"]), _num(r["fold"], 0),
                     Cell(tag="FAILED", note=str(r.get("error") or "")) if failed else "ok"]
                    + [_num(r[m]) for m in metrics]
                    + [_num_text(_fmt_int(r["n_train"])), _num_text(_fmt_int(r["n_test"]))]
                    + ([_VALIDATION.get(r["validation"], "-")] if validation else []))
        classes.append("failed" if failed else "")
    return Table(header, rows, classes)


def _binomial_note(row: Mapping[str, Any]) -> str | None:
    """Under a binomial p counted over units rather than windows: what was counted."""
    if finite_or_none(row.get("p_binomial")) is None or text_or_none(row.get("binomial_trials")) in (None, "windows"):
        return None
    return report_stats.binomial_trials_text(row)


def _chance_table(summary: pd.DataFrame, primary: str | Mapping[str, str]) -> Table:
    one = _metric_header(primary, summary["dataset"])
    header = ["dataset", "entry", "pooled score", "analytic chance", "empirical chance (null mean)",
              "null 95th pct. (MAE: 5th)", "permutation p", "Holm-adjusted p", "permutations", "labels permuted",
              "majority rate (binomial p0)", "binomial p", "note"]
    if one is None:
        header.insert(2, "metric")
    rows = [[str(r["dataset"]), str(r["entry"]), *([] if one else [METRIC_NAMES[m]]), _num(r[f"{m}_pooled"]),
             _num(r[f"{m}_chance"]), _num(r["chance_permutation"]), _num(r["chance_permutation_q"]),
             _num_text(fmt_p(r["p_permutation"])), _num_text(fmt_p(r.get("p_permutation_holm"))),
             _num_text(_fmt_int(r["n_permutations"])),
             text_or_none(r.get("permutation_scheme")) or "-", _num(r["binomial_p0"]),
             Cell(fmt_p(r["p_binomial"]), cls="num", note=_binomial_note(r)),
             Cell(_chance_note(r), cls="muted")]
            for r, m in ((r, metric_of(primary, r["dataset"])) for r in summary.to_dict("records"))]
    return Table(header, rows)


def _chance_note(row: Mapping[str, Any]) -> str:
    """The permutation test's note, and for a regression target why there is no binomial test."""
    notes = [text_or_none(row.get("permutation_note"))]
    if text_or_none(row.get("target")) == "regression":
        notes.append("no binomial test: it counts correct predictions, which a continuous target does not have; "
                     "the permutation test is its chance test")
    return "; ".join(n for n in notes if n)


def _comparisons(statistics: pd.DataFrame) -> list[dict[str, Any]]:
    """Per dataset with pairs to compare: its Wilcoxon table and its Friedman test (None: not run)."""
    out = []
    for dataset, part in statistics.groupby("dataset", sort=True):
        pairs = part[part["test"] == "wilcoxon"]
        if pairs.empty:
            continue
        rows = [[str(r["entry_a"]), str(r["entry_b"]), _num_text(_fmt_int(r["n"])), str(r["detail"]),
                 _num_text(fmt_p(r["p_value"])), _num_text(fmt_p(r["p_holm"])),
                 "yes" if r["significant"] else "no", "exploratory" if r["exploratory"] else ""]
                for r in pairs.to_dict("records")]
        friedman = None
        fried = part[part["test"] == "friedman"]
        if not fried.empty:
            f = fried.iloc[0]
            ranks = part[part["test"] == "average_rank"].sort_values("statistic")
            friedman = {"text": f"Friedman χ² = {fmt(f['statistic'], 2)}, p = {fmt_p(f['p_value'])} ({f['detail']})",
                        "exploratory": bool(f["exploratory"]),
                        "ranks": ", ".join(f"{e} {fmt(v, 2)}" for e, v in zip(ranks["entry_a"], ranks["statistic"]))}
        out.append({"dataset": str(dataset), "friedman": friedman, "table": Table(
            ["a", "b", "paired folds", "difference", "Wilcoxon p", "Holm p", "significant", ""], rows)})
    return out


def _cost_table(summary: pd.DataFrame, primary: str | Mapping[str, str]) -> Table:
    one = _metric_header(primary, summary["dataset"])
    header = ["dataset", "entry", "trainable params", "frozen params", "wall time / fold (s)", "peak memory (MB)",
              "device", f"{one} mean" if one else "primary metric mean"]
    rows = []
    for r in summary.to_dict("records"):
        m = metric_of(primary, r["dataset"])
        score = _num(r[f"{m}_mean"]) if one else _num_text(f"{METRIC_NAMES[m]} {fmt(r[f'{m}_mean'])}")
        rows.append([str(r["dataset"]), str(r["entry"]), _num_text(_fmt_int(r.get("trainable_params"))),
                     _num_text(_fmt_int(r.get("frozen_params"))), _num(r.get("wall_time_s"), 1),
                     _num(r.get("peak_memory_mb"), 0), str(r.get("device") or "n/a"), score])
    return Table(header, rows)


def _value_lines(value: Any) -> tuple[tuple[str, bool], ...]:
    """An adaptation value as lines (lists joined, dicts one ``key: value`` a line); ``True``: an empty one."""
    if isinstance(value, list | tuple):
        return ((", ".join(str(v) for v in value), False),) if value else (("", True),)
    if isinstance(value, dict):
        lines: list[tuple[str, bool]] = []
        for k, v in value.items():
            (first, empty), *rest = _value_lines(v)
            lines += [(f"{k}: {first}", empty), *rest]
        return tuple(lines) or (("", True),)
    return ((str(value), False),)


def _weights(pointer: dict[str, Any]) -> Cell:
    """Where a backbone's weights came from: a random init is said plainly, a checkpoint by its hash."""
    weights = str((pointer.get("fingerprint") or {}).get("weights", ""))
    if weights.startswith("random-init"):
        return Cell(f" (seed {weights.split(':', 1)[-1]})", strong="random init")
    if weights.startswith("sha256"):
        return Cell(weights[:23], code=True)
    if weights == "none":
        return Cell("none (feature baseline)", muted=True)
    return Cell(weights or "-")


def _embeddings(pointers: list[dict[str, Any]]) -> dict[str, Any]:
    """The embeddings table and, per pointer, its channel adaptation record and backbone fingerprint."""
    header = ["dataset", "backbone", "weights", "embedding key", "cache", "forward passes", "windows", "dim",
              "fingerprint"]
    rows = [[str(p.get("dataset")), str(p.get("backbone")), _weights(p), Cell(str(p.get("key", ""))[:16], code=True),
             str(p.get("cache")), _num(p.get("forward_passes"), 0), _num(p.get("n_windows"), 0), _num(p.get("dim"), 0),
             Cell(str(p.get("fingerprint_sha", ""))[:16], code=True)] for p in pointers]
    records = []
    for p in pointers:
        adaptation = p.get("adaptation") or {}
        table = (Table(["field", "value"], [[str(k), Cell(lines=_value_lines(v))] for k, v in adaptation.items()])
                 if isinstance(adaptation, dict) and adaptation else None)
        records.append({
            "name": f"{p.get('dataset')} · {p.get('backbone')}", "table": table,
            "note": str(adaptation or "no adaptation record"),
            "fingerprint": json.dumps(p["fingerprint"], indent=2, sort_keys=True, default=str)
            if p.get("fingerprint") else None,
        })
    return {"table": Table(header, rows) if pointers else None, "records": records}


def _provenance(table: pd.DataFrame, pointers: list[dict]) -> dict[str, Table]:
    commits = sorted({str(v) for v in table["git_commit"].dropna()}) if "git_commit" in table else []
    versions: list[list[Cell | str]] = [["git commit", ", ".join(commits) or "unknown"]] + [
        [c.removeprefix("version_"), ", ".join(sorted({str(v) for v in table[c].dropna()}))]
        for c in sorted(c for c in table.columns if c.startswith("version_"))]
    windows = table[["dataset", "windows_key"]].dropna().drop_duplicates().to_dict("records")
    keys: list[list[Cell | str]] = [[str(w["dataset"]), "windows", Cell(str(w["windows_key"]), code=True)]
                                    for w in windows]
    keys += [[str(p.get("dataset")), f"embedding · {p.get('backbone')}", Cell(str(p.get("key")), code=True)]
             for p in pointers]
    keys += [[str(p.get("dataset")), f"fingerprint · {p.get('backbone')}", Cell(str(p.get("fingerprint_sha")), code=True)]
             for p in pointers]
    return {"versions": Table(["package", "version"], versions), "keys": Table(["dataset", "what", "key"], keys)}


def _config_text(config: dict) -> str:
    try:
        import yaml

        return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    except Exception:  # a config holding non-plain values still gets shown
        return json.dumps(config, indent=2, sort_keys=True, default=str)


# ----------------------------------------------------------------------------- the page


def page_context(
    *, title: str, summary: pd.DataFrame, table: pd.DataFrame, statistics: pd.DataFrame, summary_json: dict,
    pointers: list[dict], rendered: dict[str, dict], windows: dict[str, dict], folds: dict[str, dict],
    warnings: list[str], primary_metric: str | Mapping[str, str], config_hash: str, config: dict, n_permutations: int,
    n_bootstrap: int, ci_level: float, ci_min_units: int, alpha: float,
) -> dict[str, Any]:
    """Everything ``report.html.j2`` shows: formatted text, tables of cells, figures (``rendered``: each
    figure's PNG bytes or its placeholder text), captions, notes and warnings."""
    metrics = ordered_metrics(primary_metric, metric_columns(table))
    used = {primary_metric} if isinstance(primary_metric, str) else set(primary_metric.values())
    units = ", ".join(sorted({plural(held_out_unit(f)) for f in folds.values() if f})) or "subjects"
    captions = {k: v.format(units=units) for k, v in CAPTIONS.items()}
    captions["scores"] = figures.scores_caption(summary, primary_metric, ci_level)
    kinds = set(summary["target"]) if "target" in summary else {"classification"}
    return {
        "title": title, "config_hash": config_hash, "n_results": len(table), "warnings": warnings,
        "run_summary": _run_summary(summary_json, table, summary),
        "config_text": _config_text(config),
        "data": _data_overview(windows, folds, table),
        "metric_names": " / ".join(METRIC_NAMES[m] for m in sorted(used)),
        "summary_table": _summary_table(summary, primary_metric, summary_json["best"]),
        "all_metrics": _all_metrics_table(summary, metrics),
        "folds_table": _folds_table(table, metrics),
        "classification": bool(kinds - {"regression"}), "regression": "regression" in kinds,
        "methods": {"units": units, "ci_level": f"{ci_level:.0%}", "n_bootstrap": n_bootstrap,
                    "ci_min_units": ci_min_units, "n_permutations": n_permutations, "alpha": alpha,
                    "names": ", ".join(METRIC_NAMES[m] for m in sorted(used)),
                    "regression": bool(used & set(REGRESSION_METRICS))},
        "chance_table": _chance_table(summary, primary_metric),
        "comparisons": _comparisons(statistics),
        "cost_table": _cost_table(summary, primary_metric),
        "embeddings": _embeddings(pointers),
        "provenance": _provenance(table, pointers),
        "figures": {name: _figure(name, rendered, captions[name]) for name in rendered},
    }
