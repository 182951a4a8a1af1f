"""The Python API: the workflow's stages in one process, on windows already in memory.

::

    import eegfm

    result = eegfm.Experiment({"backbones": [{"name": "cbramod"}], "cv": {"scheme": "loso"}}).run(
        X, metadata, sfreq=200.0, ch_names=ch_names)
    result.summary                       # summary.tsv as a DataFrame
    result.artifacts("model_card")       # per fold, for the fine-tuned regimes
    result.report()                      # report.html, rendered on demand

:class:`Experiment` takes the same typed config sections as the workflow
(:mod:`eegfm.config`: ``backbones``, ``embedding``, ``probe``, ``finetune``,
``report``, ``seed``, ``cache``) plus the dataset's ``cv``, and runs the same
stage functions the rules call (docs/architecture.md §1): the arrays become
a windows store (:mod:`eegfm.windows_store`, same content key as the
workflow's, so embeddings are shared through the same content-addressed
cache), then :func:`eegfm.splits.make_folds`, :func:`eegfm.embed.embed`,
:func:`eegfm.probe.run_probe`, :func:`eegfm.finetune.run.run_finetune` and
:func:`eegfm.report.summarise`. Everything lands under ``out_dir`` in the
workflow's layout, so :func:`eegfm.results.load_results` reads an API run
and a workflow run alike. A second run on the same arrays reuses the
windows store and the embeddings (zero forward passes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegfm.config import NAME_PATTERN, ConfigError, ExperimentConfig, check_probe, format_errors

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from eegfm.results import Results

logger = logging.getLogger(__name__)

__all__ = ["Experiment", "ExperimentConfig"]

#: Metadata columns the API reads (``subject`` and ``label`` are required).
METADATA_COLUMNS = ("subject", "session", "run", "label", "onset_s", "recording")
#: Units ``X`` may come in, and their factor to volts (the windows store's unit).
UNITS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6}


class Experiment:
    """One benchmark on in-memory windows, run with the workflow's stage functions.

    Parameters
    ----------
    config
        An :class:`ExperimentConfig`, or a mapping of its sections (unknown
        keys are an error naming them, as in the workflow).
    out_dir
        Folder of everything the run writes, in the workflow's
        ``results/`` layout.
    """

    def __init__(self, config: ExperimentConfig | Mapping[str, Any] | None = None, *,
                 out_dir: str | PathLike = "eegfm-results"):
        if isinstance(config, ExperimentConfig):
            self.config = config
        else:
            from pydantic import ValidationError

            try:
                self.config = ExperimentConfig.model_validate(dict(config or {}))
            except ValidationError as err:
                raise ConfigError(format_errors(err, ExperimentConfig)) from None
        check_probe(self.config.probe, (self.config.target,))
        self.out_dir = Path(out_dir)

    def run(
        self,
        X: np.ndarray,
        metadata: pd.DataFrame,
        *,
        sfreq: float,
        ch_names: Sequence[str],
        units: str = "V",
        name: str = "data",
        positions: Mapping[str, Sequence[float]] | None = None,
        signal_check: str = "error",
    ) -> Results:
        """Embed, split, probe and fine-tune ``X``; return the results (tables; the report on demand).

        Parameters
        ----------
        X
            Windows, shape (windows, channels, samples), finite.
        metadata
            One row per window: ``subject`` and ``label`` (required),
            ``session``, ``run``, ``onset_s`` (seconds from the recording's
            start; default: the row order within each recording) and
            ``recording`` (default: subject/session/run).
        sfreq
            Sampling rate (Hz).
        ch_names
            Channel names, in the order of ``X``'s second axis.
        units
            Unit of ``X``: ``"V"`` (as MNE holds data), ``"mV"`` or ``"uV"``.
        name
            The dataset's name in paths and tables.
        positions
            Channel positions in metres (head frame), by name; default: the
            10-05 template for the names it knows.
        signal_check
            ``"error"`` (default): windows whose median peak-to-peak
            amplitude, in ``units``, lies outside the workflow's plausible
            EEG range (``preprocessing.amplitude_range_uv``, 0.1 µV - 10 mV),
            or that are all flat, are refused before any work (almost always
            the wrong ``units``); ``"warn"`` logs it and runs.

        Returns
        -------
        eegfm.results.Results
        """
        import re

        from tqdm import tqdm

        from eegfm.embed import embed
        from eegfm.probe import run_probe
        from eegfm.results import Results

        if not re.match(NAME_PATTERN, name):
            raise ValueError(f"name '{name}' must match {NAME_PATTERN}")
        cfg, res = self.config, self.out_dir
        cache = Path(cfg.cache) if cfg.cache else res / "cache"
        started = time.perf_counter()
        windows_dir = res / name / "windows"
        stages = ["windows", "splits", *(f"embed+probe {b.label}" for b in cfg.backbones)]
        trained = [(b, r) for b in cfg.finetune.backbones for r in cfg.finetune.regimes]
        if "onset_s" not in metadata and (cfg.cv.scheme == "within_subject" or trained):
            logger.warning(  # the gap at block edges and the time-blocked validation read time from onset_s
                "metadata has no onset_s: the windows of each recording are taken as consecutive and not "
                "overlapping (onset = row x window length), which the within_subject gap and the time-blocked "
                "early-stopping validation rely on; windows cut with a stride shorter than their length would "
                "overlap across a block edge unseen. Give onset_s (seconds from the recording's start)")
        with tqdm(total=len(stages) + len(trained), desc=f"eegfm {name}", unit="stage") as bar:
            bar.set_postfix_str("windows")
            _store_windows(windows_dir, X, metadata, sfreq=sfreq, ch_names=ch_names, units=units,
                           positions=positions, name=name, target=cfg.target, signal_check=signal_check)
            bar.update()
            folds_path = _store_folds(res / name / "splits" / "folds.json", windows_dir, cfg)
            bar.update()
            pointers = []
            for backbone in cfg.backbones:
                bar.set_postfix_str(backbone.label)
                pointer = res / name / "embeddings" / f"{backbone.label}.json"
                embed(str(windows_dir), backbone, cfg.embedding, cfg.seed, str(cache), str(pointer), name)
                run_probe(pointer, windows_dir, folds_path, cfg.probe, cfg.seed, res / name / "probe" / backbone.label,
                          reuse=True)  # a rerun on unchanged inputs refits nothing (eegfm.fold_reuse)
                pointers.append(pointer)
                bar.update()
            for label, regime in trained:
                bar.set_postfix_str(f"{label} {regime}")
                _finetune(res / name, windows_dir, folds_path, cfg, label, regime, name)
                bar.update()
        result = Results.from_run(res, [name], pointers, config=cfg.model_dump(mode="json"), report=cfg.report,
                                  seed=cfg.seed)
        logger.info("experiment %s: %d fold results in %.1f s, in %s", name, len(result.metrics),
                    time.perf_counter() - started, res)
        return result


# ----------------------------------------------------------------------------- stages


def _metadata(meta: pd.DataFrame, n: int, window_s: float, name: str) -> pd.DataFrame:
    """The windows table rows: required columns checked, optional ones filled as the workflow fills them."""
    import numpy as np
    import pandas as pd

    meta = pd.DataFrame(meta).reset_index(drop=True)
    missing = [c for c in ("subject", "label") if c not in meta]
    if missing:
        raise ValueError(f"metadata lacks column(s) {missing}; it needs subject and label (optional: "
                         f"{', '.join(c for c in METADATA_COLUMNS if c not in ('subject', 'label'))})")
    if len(meta) != n:
        raise ValueError(f"metadata has {len(meta)} rows for {n} windows; give one row per window")
    out = pd.DataFrame({c: meta[c] if c in meta else None for c in ("subject", "session", "run", "label")})
    for column in ("subject", "session", "run", "label"):
        out[column] = out[column].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                      else str(v))
    if out["label"].isna().any():
        raise ValueError(f"metadata: {int(out['label'].isna().sum())} windows have no label")
    recording = meta["recording"].astype(str) if "recording" in meta else (
        f"{name}:" + out["subject"] + "/" + out["session"].fillna("") + "/" + out["run"].fillna(""))
    out["recording"] = recording
    if "onset_s" in meta:
        out["onset_s"] = pd.to_numeric(meta["onset_s"]).astype(float)
    else:  # consecutive windows within each recording, in row order
        out["onset_s"] = out.groupby("recording", sort=False).cumcount() * window_s
    return out


def _check_amplitude(X, units: str, signal_check: str) -> None:
    """The windows job's amplitude gate (:mod:`eegfm.windowing.signal_checks`) on windows already in volts."""
    import numpy as np

    from eegfm.config import Preprocessing
    from eegfm.windowing.signal_checks import FLAT_V

    if signal_check not in ("error", "warn"):
        raise ValueError(f"signal_check '{signal_check}' unknown; use 'error' or 'warn'")
    low, high = Preprocessing().amplitude_range_uv
    median_v = float(np.median(np.median(np.ptp(X, axis=2), axis=0)))
    if median_v < FLAT_V:
        problem = f"X is flat (median peak-to-peak below {FLAT_V:g} V): zero-filled or empty windows"
    elif not low <= median_v * 1e6 <= high:
        other = ", ".join(f"'{u}'" for u in UNITS if u not in (units, "µV"))
        problem = (f"the windows' median peak-to-peak amplitude is {median_v * 1e6:.4g} µV with units='{units}', "
                   f"outside the plausible EEG range {low:g} µV - {high:g} µV: almost always the wrong units "
                   f"(pass units={other}, whichever X is in)")
    else:
        return
    if signal_check == "warn":
        logger.warning("%s (signal_check='warn')", problem)
        return
    raise ValueError(f"{problem}; pass signal_check='warn' to run anyway")


def _store_windows(folder: Path, X, metadata, *, sfreq: float, ch_names, units: str, positions, name: str,
                   target: str = "classification", signal_check: str = "error") -> None:
    """The arrays as a windows store (reused as it is when content, metadata and target are unchanged).

    A regression target is checked as the workflow's windows job checks it:
    every label a finite number, and not one value for all windows.
    """
    import json
    from collections import Counter

    import numpy as np

    from eegfm.windowing.regression_targets import checked_window_targets
    from eegfm.windows_store import WindowsStoreWriter, content_key

    if units not in UNITS:
        raise ValueError(f"units '{units}' unknown; use one of {', '.join(UNITS)}")
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != len(ch_names):
        raise ValueError(f"X must be (windows, {len(ch_names)} channels, samples); got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or Inf values; interpolate or drop those windows first")
    X = np.ascontiguousarray(X * UNITS[units], dtype=np.float32)
    _check_amplitude(X, units, signal_check)
    rows = _metadata(metadata, len(X), X.shape[2] / sfreq, name)
    extra = {"label_source": "metadata (Python API)", "target": target}
    if target == "regression":  # checked as the windows job checks them
        by_recording = {rec: Counter(part["label"]) for rec, part in rows.groupby("recording", sort=False)}
        extra["target_summary"] = checked_window_targets(by_recording, name)
    key = content_key(X, ch_names, sfreq)
    info_path = folder / "windows.json"
    if info_path.is_file():
        import pandas as pd

        info = json.loads(info_path.read_text())
        old = pd.read_csv(folder / "windows.tsv", sep="\t", dtype=str, keep_default_na=False)
        same = [c for c in ("subject", "session", "run", "label", "recording")]
        new = rows[same].fillna("").astype(str).reset_index(drop=True)
        if (info.get("key") == key and info.get("target", "classification") == target and len(old) == len(new)
                and old[same].equals(new)):
            logger.info("windows store %s: unchanged (key %s), reused", folder, key[:12])
            return
    writer = WindowsStoreWriter(folder, list(ch_names), sfreq, X.shape[2])
    try:
        for start in range(0, len(X), 256):
            writer.append(X[start : start + 256], rows.iloc[start : start + 256].to_dict("records"))
        writer.close(positions=_positions(ch_names, positions), settings={"source": "eegfm.api"},
                     extra=extra)
    except BaseException:
        writer.abort()
        raise


def _positions(ch_names, positions) -> dict[str, list[float]] | None:
    if positions is not None:
        return {str(k): [float(v) for v in pos] for k, pos in positions.items()}
    import mne

    info = mne.create_info(list(ch_names), 100.0, "eeg")
    info.set_montage("colin27_1005", match_case=False, on_missing="ignore", verbose="error")
    placed = {ch["ch_name"]: [float(v) for v in ch["loc"][:3]] for ch in info["chs"]}
    return {k: v for k, v in placed.items() if any(v)} or None


def _store_folds(path: Path, windows_dir: Path, cfg: ExperimentConfig) -> Path:
    """The splits stage (milliseconds: always re-run, so the folds always match the design asked for)."""
    from eegfm.splits import split_store
    from eegfm.windows_store import open_windows

    split_store(open_windows(windows_dir), cfg.cv, cfg.seed, path)
    return path


def _finetune(dataset_dir: Path, windows_dir: Path, folds_path: Path, cfg: ExperimentConfig, label: str,
              regime: str, name: str) -> None:
    from eegfm.finetune.run import run_finetune
    from eegfm.splits import load_folds

    backbone = next(b for b in cfg.backbones if b.label == label)
    for entry in load_folds(folds_path)["folds"]:
        fold = int(entry["fold"])
        out = dataset_dir / "finetune" / label / regime / f"fold-{fold}"
        run_finetune(windows_dir, folds_path, fold, backbone, cfg.finetune, regime, cfg.seed, out, dataset=name,
                     group_by=cfg.cv.group_by)
