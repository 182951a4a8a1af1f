"""Results of a run, from Python: the report's tables and every fold's artifacts.

:func:`load_results` opens the ``results/`` folder of a finished workflow
run; :meth:`eegfm.api.Experiment.run` returns the same :class:`Results` for
an in-process run (which writes the same layout). Fold artifacts are read
from their folders (docs/architecture.md §2: fold artifacts)::

    <results>/<dataset>/probe/<backbone>/fold-<k>/              probes
    <results>/<dataset>/finetune/<backbone>/<regime>/fold-<k>/  trained regimes
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from eegfm.tables import read_history, read_predictions

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Report
    from eegfm.report import Aggregated

logger = logging.getLogger(__name__)

__all__ = ["ARTIFACTS", "Results", "fold_folder", "load_results"]

#: Artifact kinds :meth:`Results.artifacts` reads, and the file each comes from.
ARTIFACTS = {
    "metrics": "metrics.json",
    "predictions": "predictions.tsv",
    "training_history": "history.tsv",
    "model_card": "model_card.json",
    "diagnostics": "diagnostics.json",
    "checkpoints": "checkpoint.json",
}


#: The report tables a finished run has (``report/``), the headline last.
TABLES = ("metrics.tsv", "summary.tsv", "statistics.tsv", "summary.json")


def fold_folder(results_dir: str | PathLike, dataset: str, model: str, regime: str, fold: int) -> Path:
    """The folder of one fold's artifacts."""
    base = Path(results_dir) / dataset
    if regime == "probe":
        return base / "probe" / model / f"fold-{int(fold)}"
    return base / "finetune" / model / regime / f"fold-{int(fold)}"


@dataclass(frozen=True)
class _PendingReport:
    """What :meth:`Results.report` renders for an in-process run: its summary (computed once, when first
    needed), its config, and whether the results folder still holds this run's tables."""

    summarised: Callable[[], Aggregated]
    config: dict[str, Any]
    current: Callable[[], bool]


@dataclass(repr=False)
class Results:
    """The tables of a run (as ``report/*.tsv``) and access to its fold artifacts.

    Attributes
    ----------
    results_dir
        The run's results folder.
    metrics, summary, statistics
        ``metrics.tsv`` (one row per dataset × model × regime × fold),
        ``summary.tsv`` (per dataset × model × regime: scores, CI, chance,
        verdict) and ``statistics.tsv`` (chance tests, model comparisons).
    headline
        ``summary.json``: the best model per dataset with its score, CI,
        chance and p-values.
    """

    results_dir: Path
    metrics: pd.DataFrame
    summary: pd.DataFrame
    statistics: pd.DataFrame
    headline: dict[str, Any]
    _pending: _PendingReport | None = field(default=None, repr=False)  # an in-process run's page, until report()

    @classmethod
    def from_run(
        cls, results_dir: str | PathLike, datasets: Sequence[str], pointers: Sequence[str | PathLike], *,
        config: dict[str, Any], report: Report, seed: int,
    ) -> Results:
        """Summarise an in-process run's folds (tables written, figures and HTML deferred to :meth:`report`).

        A rerun whose fold artifacts, windows and folds files, settings and
        code are all unchanged keeps the tables it wrote
        (:mod:`eegfm.stage_reuse`); :meth:`report` summarises again when asked.
        """
        from eegfm import stage_reuse
        from eegfm.hashing import sha256_json
        from eegfm.report import summarise
        from eegfm.splits import load_folds

        results_dir = Path(results_dir)
        finetune = config.get("finetune") or {}
        metrics_paths = []
        for dataset in datasets:
            folds = [int(f["fold"]) for f in load_folds(results_dir / dataset / "splits" / "folds.json")["folds"]]
            models = [(b.get("id") or b["name"], "probe") for b in config["backbones"]]
            models += [(b, r) for b in finetune.get("backbones", []) for r in finetune.get("regimes", [])]
            metrics_paths += [fold_folder(results_dir, dataset, m, r, k) / "metrics.json" for m, r in models
                              for k in folds]
        settings = {"title": report.title, "primary_metric": report.primary_metrics,
                    "config_hash": sha256_json(config), "n_permutations": report.n_permutations,
                    "n_bootstrap": report.n_bootstrap, "ci_level": report.ci_level,
                    "ci_min_units": report.ci_min_units, "alpha": report.alpha, "seed": seed}
        windows_paths = {d: results_dir / d / "windows" / "windows.json" for d in datasets}
        folds_paths = {d: results_dir / d / "splits" / "folds.json" for d in datasets}

        # computed here, or on a reuse only if report() is called; once either way
        summarised = functools.cache(functools.partial(
            summarise, metrics_paths, list(pointers), windows_paths=windows_paths, folds_paths=folds_paths, **settings))

        report_dir = results_dir / "report"
        # the tables read no embedding pointer (a cache hit rewrites it; only the page shows it)
        read = [*windows_paths.values(), *folds_paths.values()]
        read += [path.with_name(name) for path in metrics_paths for name in ("metrics.json", "predictions.tsv",
                                                                              "history.tsv")]
        key = stage_reuse.inputs_key(read, settings)
        if stage_reuse.reusable(report_dir, key):
            logger.info("report tables %s: every fold and setting unchanged, reused", report_dir)
        else:
            stage_reuse.forget(report_dir)
            agg = summarised()
            _warn_replaced(report_dir, datasets)
            agg.write_tables(report_dir)
            stage_reuse.record(report_dir, key, TABLES)
        # an earlier run's page would pass for this one's (load_results(...).report()) until report() renders it
        (report_dir / "report.html").unlink(missing_ok=True)

        def current() -> bool:  # the folder still holds this run's tables, made from files unchanged since
            return stage_reuse.reusable(report_dir, key) and stage_reuse.inputs_key(read, settings) == key

        # the tables as written, so this object and load_results(results_dir) hold equal frames (empty cells)
        return cls(results_dir, *_read_tables(report_dir), _pending=_PendingReport(summarised, config, current))

    def __repr__(self) -> str:  # a notebook shows this; the tables print themselves
        entries = self.summary.groupby(["dataset"]).size().to_dict() if "dataset" in self.summary else {}
        return (f"Results({str(self.results_dir)!r}: {len(self.metrics)} fold rows; "
                f"{', '.join(f'{d}: {n} model x regime' for d, n in entries.items()) or 'no summary'})")

    def artifacts(
        self, kind: str = "metrics", *, dataset: str | None = None, model: str | None = None,
        regime: str | None = None, fold: int | None = None,
    ) -> dict[tuple[str, str, str, int], Any]:
        """One kind of fold artifact for every fold (or those matching the filters).

        Parameters
        ----------
        kind
            ``"metrics"``, ``"predictions"`` (DataFrame), ``"training_history"``
            (DataFrame), ``"model_card"``, ``"diagnostics"`` or
            ``"checkpoints"`` (the manifest, with ``path`` set to the
            ``checkpoint.safetensors`` beside it). Probes have metrics and
            predictions only; trained regimes have every kind.
        dataset, model, regime, fold
            Keep only the folds that match.

        Returns
        -------
        dict
            ``(dataset, model, regime, fold) -> artifact``, for the folds
            that have one (a failed fold has no checkpoint, for instance).
            Predictions keep labels as text (a regression's as numbers).

        Raises
        ------
        ValueError
            An unknown ``kind``, or a filter no fold matches (the message
            lists the values that would).
        """
        if kind not in ARTIFACTS:
            close = difflib.get_close_matches(kind, ARTIFACTS, n=1)
            raise ValueError(f"unknown artifact kind '{kind}'"
                             f"{f' (did you mean {close[0]!r}?)' if close else ''}; use one of {', '.join(ARTIFACTS)}")
        rows = self.metrics
        for column, wanted in (("dataset", dataset), ("model", model), ("regime", regime), ("fold", fold)):
            if wanted is not None:
                kept = rows[rows[column].astype(str) == str(wanted)]
                if kept.empty:  # a misspelled filter would otherwise look like a fold without artifacts
                    raise ValueError(f"no fold has {column}={wanted!r}; this run's {column}s (given the other "
                                     f"filters): {', '.join(map(str, rows[column].unique()))}")
                rows = kept
        out = {}
        if "target" not in rows:  # a run from before regression targets
            rows = rows.assign(target="classification")
        for row in rows[["dataset", "model", "regime", "fold", "target"]].itertuples(index=False):
            key = (str(row.dataset), str(row.model), str(row.regime), int(row.fold))
            path = fold_folder(self.results_dir, *key) / ARTIFACTS[kind]
            if not path.is_file() or path.stat().st_size == 0:
                continue
            if kind == "predictions":
                value = read_predictions(path)
                if row.target == "regression":  # numbers, as the fold wrote them
                    value[["y_true", "y_pred"]] = value[["y_true", "y_pred"]].apply(pd.to_numeric)
            elif kind == "training_history":
                value = read_history(path)
            else:
                value = json.loads(path.read_text())
                if kind == "checkpoints":
                    value["path"] = str(path.with_suffix(".safetensors"))
            if value is not None:
                out[key] = value
        return out

    def report(self) -> Path:
        """``report.html`` (with its figures), rendered now for an in-process run; returns its path.

        Raises
        ------
        RuntimeError
            For an in-process run whose results folder another run has
            written since (its page would show that run's folds).
        FileNotFoundError
            When there is no page to return (a workflow run without one).
        """
        path = self.results_dir / "report" / "report.html"
        if self._pending is not None:
            from eegfm.report import render_report

            if not self._pending.current():  # its page would show another run's numbers beside these tables
                raise RuntimeError(
                    f"{path.parent} no longer holds this run's tables: another run wrote into "
                    f"{self.results_dir} since, or its fold files changed; call report() on the Results of the "
                    "latest run, or run this experiment again")
            render_report(self._pending.summarised(), path.parent, config=self._pending.config)
            self._pending = None
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; run the workflow's aggregate rule, or call report() on "
                                    "the Results that eegfm.Experiment(...).run(...) returned")
        return path


def load_results(results_dir: str | PathLike = "results") -> Results:
    """The :class:`Results` of a finished workflow run (its ``results:`` folder).

    Raises
    ------
    FileNotFoundError
        When the run has no report tables yet (the message names the files).
    """
    results_dir = Path(results_dir).expanduser()
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir} is not a folder; give the run's results folder (the config's "
                                "results: key, or the out_dir of eegfm.Experiment)")
    if (results_dir / "metrics.tsv").is_file() and (results_dir / "summary.json").is_file():
        raise FileNotFoundError(f"{results_dir} is a run's report folder; give the results folder above it: "
                                f"load_results({str(results_dir.parent)!r})")
    report = results_dir / "report"
    missing = [str(report / n) for n in TABLES if not (report / n).is_file()]
    if missing:
        raise FileNotFoundError(f"no finished run in {results_dir}: {', '.join(missing)} missing; run the workflow "
                                "(snakemake) or eegfm.Experiment(...).run(...) first")
    return Results(results_dir, *_read_tables(report))


def _warn_replaced(report: Path, datasets: Sequence[str]) -> None:
    """Say so when this run's tables replace those of other datasets (their fold folders stay, unreported)."""
    try:
        earlier = set(pd.read_csv(report / "metrics.tsv", sep="\t", usecols=["dataset"], dtype=str,
                                  keep_default_na=False)["dataset"])
    except (OSError, ValueError):
        return
    others = sorted(earlier - set(datasets))
    if others:
        logger.warning("%s: the report of dataset(s) %s is replaced by this run's (%s); give each study its own "
                       "out_dir to keep both reports", report, others, ", ".join(datasets))


def _read_tables(report: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """metrics, summary and statistics tables and the headline; only an empty cell is missing (a dataset,
    model or class named 'NA' or 'None' stays a name)."""
    tables = [pd.read_csv(report / n, sep="\t", keep_default_na=False, na_values=[""]) for n in TABLES[:3]]
    return (*tables, json.loads((report / TABLES[3]).read_text()))
