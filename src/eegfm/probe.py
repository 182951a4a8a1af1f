"""Linear (or any scikit-learn) probe on frozen embeddings: every fold of a dataset × backbone in one job.

Everything fitted — the scaler and the classifier — sees the fold's training
windows only (docs/architecture.md, invariant 2): both live in one sklearn ``Pipeline`` fitted on
the training rows. A regression target (``target: regression``) gets the
configured regressor instead (``probe.regressor``, ridge by default) and,
with ``probe.scale``, its target standardised inside the same pipeline
(``TransformedTargetRegressor``: the training rows' mean and standard
deviation; predictions come back in the target's units). The embeddings are computed once per dataset × backbone
and merely indexed here (docs/architecture.md, invariant 1).

The estimators themselves come from :mod:`eegfm.estimators`. This module
imports no numpy, pandas or sklearn at module level.
"""

from __future__ import annotations

import json
import logging
import time
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegfm.estimators import resolve_estimator

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline

    from eegfm.config import Probe

logger = logging.getLogger(__name__)

def build_pipeline(cfg: Probe, seed: int, target: str = "classification") -> Pipeline:
    """``StandardScaler`` (when ``cfg.scale``) followed by the configured estimator.

    Parameters
    ----------
    cfg
        Probe settings (estimator, params, regressor, regressor_params, scale).
    seed
        Set as ``random_state`` when the estimator takes one and its params
        do not set it.
    target
        ``"classification"`` (``cfg.estimator``) or ``"regression"``
        (``cfg.regressor``, wrapped so that with ``cfg.scale`` the target is
        standardised on the training rows as well).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; fitting it fits the scalers on the same (training) rows.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = target == "regression"
    name, params = (cfg.regressor, cfg.regressor_params) if regression else (cfg.estimator, cfg.params)
    estimator = resolve_estimator(name, params, target)
    if "random_state" in estimator.get_params(deep=False) and "random_state" not in params:
        estimator.set_params(random_state=seed)
    if not cfg.scale:
        return make_pipeline(estimator)
    if regression:
        estimator = TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    return make_pipeline(StandardScaler(), estimator)


def final_estimator(pipeline: Pipeline) -> BaseEstimator:
    """The configured estimator of a pipeline: its last step, unwrapped from a target transform (fitted
    when the pipeline is)."""
    last = pipeline.steps[-1][1]
    for attribute in ("regressor_", "regressor"):  # no `or`: a forest's truth value is its length
        inner = getattr(last, attribute, None)
        if inner is not None:
            return inner
    return last


# ----------------------------------------------------------------------------- fitting


def check_finite(E: np.ndarray) -> None:
    """Raise ValueError when embedding rows hold NaN or Inf."""
    import numpy as np

    bad = ~np.isfinite(E).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {len(E)} embedding rows contain NaN or Inf "
            f"(e.g. window ids {np.flatnonzero(bad)[:5].tolist()}); re-run embed / check the backbone"
        )


def _softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_scores(pipeline: Pipeline, X: np.ndarray, classes: list[str]) -> np.ndarray | None:
    """Class scores with columns in the order of ``classes`` (rows sum to 1).

    ``predict_proba`` when the estimator has it, else a softmax of
    ``decision_function`` (a binary margin ``d`` becomes the two columns
    ``[0, d]``, i.e. a logistic of the margin); ``None`` when it has neither.
    A class the training fold lacked gets score 0.
    """
    import numpy as np

    if hasattr(pipeline, "predict_proba"):
        raw = np.asarray(pipeline.predict_proba(X), dtype=float)
    elif hasattr(pipeline, "decision_function"):
        margin = np.asarray(pipeline.decision_function(X), dtype=float)
        if margin.ndim == 1:
            margin = np.column_stack([np.zeros_like(margin), margin])
        raw = _softmax(margin)
    else:
        return None
    fitted = [str(c) for c in pipeline.classes_]
    out = np.zeros((len(X), len(classes)))
    for j, cls in enumerate(fitted):
        out[:, classes.index(cls)] = raw[:, j]
    return out


def fit_pipeline(
    E: np.ndarray, labels, train_ids: list[int], cfg: Probe, seed: int, target: str = "classification"
) -> Pipeline:
    """Fit :func:`build_pipeline` on the rows ``train_ids`` of ``E`` only.

    Parameters
    ----------
    E
        Embeddings, row i = window id i.
    labels
        Label (or numeric target) of every window, indexed by window id.
    train_ids
        Window ids of the training fold.
    cfg, seed, target
        Probe settings, seed and kind of target.

    Returns
    -------
    sklearn.pipeline.Pipeline
        The fitted pipeline (scaler statistics are those of the training rows).
    """
    import numpy as np

    train_ids = np.asarray(train_ids, dtype=int)
    pipeline = build_pipeline(cfg, seed, target)
    pipeline.fit(E[train_ids], np.asarray(labels)[train_ids])
    return pipeline


def _fold_ids(fold: dict[str, Any], n_rows: int) -> tuple[list[int], list[int]]:
    train, test = [int(v) for v in fold["train"]], [int(v) for v in fold["test"]]
    if not train or not test:
        raise ValueError(f"fold {fold.get('fold')} has an empty train or test set; re-run the splits rule")
    both = set(train) & set(test)
    if both:
        raise ValueError(f"fold {fold.get('fold')}: {len(both)} windows in both train and test; re-run the splits rule")
    if (fold.get("audit") or {}).get("overlap"):
        raise ValueError(f"fold {fold.get('fold')}: its audit reports leakage {fold['audit']['overlap']}")
    out_of_range = [i for i in (*train, *test) if not 0 <= i < n_rows]
    if out_of_range:
        raise ValueError(
            f"window ids {out_of_range[:5]} are outside the {n_rows} embedding rows; re-run embed and splits"
        )
    return train, test


def _plain_params(estimator: BaseEstimator) -> dict[str, Any]:
    """The estimator's effective constructor parameters, as JSON-friendly values."""
    out = {}
    for key, value in sorted(estimator.get_params(deep=False).items()):
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, list | tuple | dict):
            out[key] = json.loads(json.dumps(value, default=repr))
        else:
            out[key] = repr(value)
    return out


def n_fitted_params(pipeline: Pipeline) -> int | None:
    """Fitted coefficients plus intercepts of the pipeline's final estimator; ``None`` when it has no
    ``coef_`` (trees, neighbours)."""
    import numpy as np

    estimator = final_estimator(pipeline)
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        return None
    intercept = getattr(estimator, "intercept_", None)
    fitted_intercept = intercept is not None and estimator.get_params().get("fit_intercept", True) is not False
    return int(np.size(coef) + (np.size(intercept) if fitted_intercept else 0))


def _subjects(meta: pd.DataFrame, ids: list[int]) -> list[str]:
    return sorted({str(s) for s in meta.loc[ids, "subject"]})


def _classify(E: np.ndarray, labels: np.ndarray, train: list[int], test: list[int], cfg: Probe, seed: int):
    """Fit the classifier; prediction columns, the metrics fields and the fitted pipeline."""
    import numpy as np

    from eegfm.metrics import chance_levels, compute_metrics

    labels = labels.astype(str)
    classes = sorted(set(labels))
    pipeline = fit_pipeline(E, labels, train, cfg, seed)
    y_pred = np.asarray(pipeline.predict(E[test])).astype(str)
    scores = class_scores(pipeline, E[test], classes)
    y_true = labels[test]
    columns = {"y_true": y_true, "y_pred": y_pred}
    if scores is not None:
        columns.update({f"score_{cls}": scores[:, j] for j, cls in enumerate(classes)})
    fields = {"estimator": cfg.estimator, "metrics": compute_metrics(y_true, y_pred, scores, classes),
              "chance": chance_levels(y_true, classes), "classes": classes}
    return columns, fields, pipeline


def _regress(E: np.ndarray, labels: np.ndarray, train: list[int], test: list[int], cfg: Probe, seed: int):
    """Fit the regressor; prediction columns (numbers), the metrics fields and the fitted pipeline."""
    import numpy as np

    from eegfm.metrics import compute_regression_metrics, parse_targets, regression_chance

    y = parse_targets(labels)
    pipeline = fit_pipeline(E, y, train, cfg, seed, "regression")
    y_pred = np.asarray(pipeline.predict(E[test]), dtype=float).ravel()
    if not np.isfinite(y_pred).all():
        raise ValueError(f"the regressor {cfg.regressor} predicted non-finite values; check probe.regressor_params")
    y_true = y[test]
    fields = {"estimator": cfg.regressor, "metrics": compute_regression_metrics(y_true, y_pred),
              "chance": regression_chance(y[train], y_true), "classes": []}
    return {"y_true": y_true, "y_pred": y_pred}, fields, pipeline


def fit_predict(
    E: np.ndarray, meta: pd.DataFrame, fold: dict[str, Any], cfg: Probe, seed: int, units: pd.Series | None = None,
    target: str = "classification",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit the probe on a fold's training windows and predict its test windows.

    Parameters
    ----------
    E
        Embeddings (n_windows × dim), row i = window id i.
    meta
        Windows table (``window_id``, ``subject``, ``session``, ``run``, ``label``).
    fold
        One entry of ``folds["folds"]``: ``{"fold", "train", "test", ...}``.
    cfg
        Probe settings.
    seed
        Seed for estimators that take a ``random_state``.
    units
        The design's held-out unit of every window, by window id
        (:func:`eegfm.groups.window_units`); lists the units of each side.
    target
        ``"classification"`` or ``"regression"`` (the windows store's
        ``target``): a regression target is parsed as numbers, fitted with
        ``cfg.regressor`` and scored by :func:`eegfm.metrics.compute_regression_metrics`.

    Returns
    -------
    predictions : pandas.DataFrame
        One row per test window: ``window_id, subject, session, run, y_true,
        y_pred`` and, for classification, ``score_<class>...``; for
        regression ``y_true`` and ``y_pred`` are numbers.
    metrics : dict
        ``target``, ``estimator`` (its name) and ``estimator_params``
        (effective), ``metrics`` and ``chance`` (on the test set; for
        regression :func:`eegfm.metrics.regression_chance`), ``n_train``,
        ``n_test``, ``classes`` (empty for regression), ``train_subjects``,
        ``test_subjects``, with ``units`` the ``unit`` and its
        ``train_groups`` / ``test_groups``, and ``trainable_params``
        (:func:`n_fitted_params`).

    Raises
    ------
    ValueError
        Non-finite embeddings, a leaky or malformed fold, shapes that do
        not match, or a regression target that is not numeric.
    """
    import numpy as np
    import pandas as pd

    E = np.asarray(E)
    if E.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (windows × dim), got shape {E.shape}")
    check_finite(E)
    meta = meta.set_index(meta["window_id"].astype(int).to_numpy(), drop=False).sort_index()
    if len(meta) != len(E) or not np.array_equal(meta.index.to_numpy(), np.arange(len(E))):
        raise ValueError(
            f"embeddings have {len(E)} rows but the windows table has {len(meta)} windows (ids must be 0..n-1); "
            "the embedding does not belong to these windows: re-run embed"
        )
    train, test = _fold_ids(fold, len(E))
    fit = _regress if target == "regression" else _classify
    columns, fields, pipeline = fit(E, meta["label"].to_numpy(), train, test, cfg, seed)

    rows = meta.loc[test]
    predictions = pd.DataFrame(
        {
            "window_id": rows["window_id"].astype(int).to_numpy(),
            **{c: rows[c].to_numpy() if c in rows else None for c in ("subject", "session", "run")},
            **columns,
        }
    )
    metrics = {
        "target": target,
        "estimator": fields.pop("estimator"),
        "estimator_params": _plain_params(final_estimator(pipeline)),
        **fields,
        "n_train": len(train),
        "n_test": len(test),
        "train_subjects": _subjects(meta, train),
        "test_subjects": _subjects(meta, test),
        "trainable_params": n_fitted_params(pipeline),
    }
    if units is not None:
        from eegfm.groups import unit_list

        metrics.update({"unit": units.name, "train_groups": unit_list(units, train),
                        "test_groups": unit_list(units, test)})
    shown = "pearson_r" if target == "regression" else "balanced_accuracy"
    logger.info(
        "fold %s: %s on %d train / %d test windows, %s %.3f",
        fold.get("fold"), metrics["estimator"], len(train), len(test), shown, metrics["metrics"][shown],
    )
    return predictions, metrics


# ----------------------------------------------------------------------------- rule entry point


def _check_pointer(pointer: dict, windows_key: str, pointer_path: str) -> None:
    """The embedding must describe the windows of the store (the folds are checked as read: ``load_folds``)."""
    if pointer.get("windows_key") and pointer["windows_key"] != windows_key:
        raise ValueError(
            f"embedding pointer {pointer_path} was computed from windows {pointer['windows_key'][:12]} but the "
            f"windows store is now {windows_key[:12]}; re-run the embed rule: snakemake --forcerun {pointer_path}"
        )


def settings_sha(cfg: Probe, seed: int) -> str:
    """Hash of the settings a probe job uses (docs/architecture.md, invariant 9); its inputs have their own keys."""
    from eegfm.hashing import sha256_json

    return sha256_json({"probe": cfg.model_dump(mode="json"), "seed": int(seed)})


def _selected_folds(folds: dict, wanted: list[int] | None, folds_path: str) -> list[dict]:
    """The fold entries to probe: every fold, or those numbered in ``wanted`` (in that order)."""
    by_number = {int(entry["fold"]): entry for entry in folds["folds"]}
    if wanted is None:
        return [by_number[k] for k in sorted(by_number)]
    missing = [k for k in wanted if int(k) not in by_number]
    if missing:
        raise ValueError(f"{folds_path} has folds {sorted(by_number)}, not fold(s) {missing}")
    return [by_number[int(k)] for k in wanted]


def fold_dir(out_dir: str | PathLike, fold: int) -> Path:
    """``<out_dir>/fold-<k>``: where one fold's ``predictions.tsv`` and ``metrics.json`` go."""
    return Path(out_dir) / f"fold-{int(fold)}"


def run_probe(
    embedding_pointer: str | PathLike,
    windows_dir: str | PathLike,
    folds_path: str | PathLike,
    cfg: Probe,
    seed: int,
    out_dir: str | PathLike,
    *,
    folds: list[int] | None = None,
    reuse: bool = False,
) -> list[dict[str, Any]]:
    """Probe every fold of one dataset × backbone in one process and write each fold's artifacts.

    The embeddings, windows table and folds are read once; each fold then
    fits its own pipeline on its training rows (nothing is shared between
    folds but the frozen embeddings, docs/architecture.md invariants 1-2). Starting one process
    per fold cost seconds of imports for a fit of milliseconds; the fold
    artifacts are the same as before.

    Parameters
    ----------
    embedding_pointer
        Pointer JSON naming the embedding store (``store``, ``key``,
        ``windows_key``, ``backbone``, ``dataset``, ``fingerprint_sha``, ...).
    windows_dir
        The dataset's windows store folder.
    folds_path
        ``folds.json`` of the dataset.
    cfg, seed
        Probe settings and seed.
    out_dir
        Folder receiving ``fold-<k>/predictions.tsv`` and ``fold-<k>/metrics.json``
        (each written atomically).
    folds
        Fold numbers to probe; ``None``: every fold of ``folds.json``.
    reuse
        Keep a fold's artifacts already in ``out_dir`` when they were made
        from the same inputs and settings (:mod:`eegfm.fold_reuse`; the
        Python API's rerun). The workflow leaves this to Snakemake.

    Returns
    -------
    list of dict
        The content of each fold's ``metrics.json`` (undefined metrics are
        ``None``), including ``status`` ("ok"), ``error`` (None), ``device``
        ("cpu"), ``wall_time_s`` (this fold's fit and prediction plus an equal
        share of the one-off reading), ``peak_memory_mb`` (of the process),
        ``trainable_params`` (fitted coefficients + intercepts) and
        ``frozen_params`` (None: the backbone's count is not known here).

    Raises
    ------
    ValueError
        When the pointer, the folds and the windows store disagree on the
        windows key (the message names the rule to re-run), or a requested
        fold does not exist.
    """
    from tqdm import tqdm

    from eegfm import atomic
    from eegfm.embed import open_embeddings
    from eegfm.fold_reuse import fold_sha, remember, reusable_record
    from eegfm.groups import window_units
    from eegfm.provenance import peak_memory_mb, versions
    from eegfm.splits import load_folds
    from eegfm.windows_store import open_windows

    started = time.perf_counter()
    pointer_path = Path(embedding_pointer)
    if not pointer_path.exists():
        raise FileNotFoundError(f"embedding pointer {pointer_path} does not exist; run the embed rule")
    pointer = json.loads(pointer_path.read_text())
    windows = open_windows(windows_dir)
    all_folds = load_folds(folds_path, windows)  # audited again as read: a hand-edited file is refused
    _check_pointer(pointer, windows.key, str(pointer_path))
    entries = _selected_folds(all_folds, folds, str(folds_path))
    E, _ = open_embeddings(str(pointer_path))
    units = window_units(windows.meta, all_folds)
    target = windows.info.get("target", "classification")
    shared_s = (time.perf_counter() - started) / len(entries)  # reading, split evenly over the folds
    common = {
        "dataset": pointer.get("dataset"), "model": pointer.get("backbone"), "regime": "probe", "status": "ok",
        "error": None, "estimator": cfg.estimator, "frozen_params": None, "total_params": None,
        "windows_key": windows.key, "embedding_key": pointer.get("key"),
        "fingerprint_sha": pointer.get("fingerprint_sha"), "settings_sha": settings_sha(cfg, seed),
        "versions": versions(), "device": "cpu",
    }  # fmt: skip
    records = []
    label = f"probe {pointer.get('dataset')}/{pointer.get('backbone')}"
    for entry in tqdm(entries, desc=label, unit="fold"):
        t0 = time.perf_counter()
        folder = fold_dir(out_dir, entry["fold"])
        keys = {**common, "fold_sha": fold_sha(all_folds, entry, windows.meta, target)}
        kept = reusable_record(folder, keys) if reuse else None
        if kept is not None:
            logger.info("%s fold %s: inputs and settings unchanged, artifacts reused", label, entry["fold"])
            records.append(kept)
            continue
        predictions, result = fit_predict(E, windows.meta, entry, cfg, seed, units, target=target)
        record = atomic.json_safe({
            **keys, "fold": int(entry["fold"]), **result,
            "wall_time_s": round(time.perf_counter() - t0 + shared_s, 3), "peak_memory_mb": peak_memory_mb(),
        })
        atomic.write_tsv(folder / "predictions.tsv", predictions)
        atomic.write_json(folder / "metrics.json", record)
        if reuse:  # the digests a rerun checks the files against
            remember(folder, keys)
        records.append(record)
    return records
