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
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegfm import api_inputs
from eegfm.config import NAME_PATTERN, ConfigError, ExperimentConfig, SignalChecks, check_probe, format_errors

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from eegfm.results import Results

logger = logging.getLogger(__name__)

__all__ = ["Experiment", "ExperimentConfig"]

#: Top-level keys of the workflow's config that the API takes in another form, and where.
WORKFLOW_ONLY = {
    "datasets": "the data are run(X, metadata, sfreq=..., ch_names=..., name=...); a dataset's cv, target and "
    "preprocessing (amplitude_range_uv, signal_check) go at the top level",
    "results": "give the folder as Experiment(config, out_dir=...)",
    "pretrain": "pretrain with the workflow; pass its weights file as backbones[].weights",
    "windows": "X is windowed already (windows, channels, samples): cut it before run",
    "corpus": "pass it to run(..., corpus=[...])",
    **dict.fromkeys(("source", "bids", "files", "synthetic", "role"),
                    "a dataset's key: the data are run(X, metadata, ...)"),
}
#: A dataset's preprocessing keys that change the signal (the API takes X as it is).
PREPROCESSING_ONLY = ("channel_types", "channels", "h_freq", "keep_types", "l_freq", "reference", "sfreq")
#: Folders of the results layout a dataset must not be named after (its folder is ``out_dir/<name>``).
RESERVED_NAMES = ("report", "logs", "cache", "pretrain")


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

            config = dict(config or {})
            workflow = [f"{k}: {WORKFLOW_ONLY[k]}" for k in config if k in WORKFLOW_ONLY]
            signal = config.get("preprocessing")
            workflow += [f"preprocessing.{k}: X is not filtered, re-referenced, resampled or channel-selected "
                         "here: do it before run (preprocessing takes amplitude_range_uv and signal_check)"
                         for k in (signal if isinstance(signal, Mapping) else ()) if k in PREPROCESSING_ONLY]
            if workflow:  # a workflow config.yaml pasted whole
                raise ConfigError("invalid eegfm config: keys of the workflow's config.yaml that the Python API takes "
                                  "elsewhere:\n  " + "\n  ".join(workflow))
            try:
                self.config = ExperimentConfig.model_validate(config)
            except ValidationError as err:
                raise ConfigError(format_errors(err, ExperimentConfig)) from None
        check_probe(self.config.probe, (self.config.target,))
        _check_training(self.config)
        _check_weights(self.config)
        self.out_dir = Path(out_dir).expanduser()  # "~/results" in a notebook is the home folder

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
        corpus: Sequence[str] = (),
    ) -> Results:
        """Embed, split, probe and fine-tune ``X``; return the results (tables; the report on demand).

        Parameters
        ----------
        X
            Windows, shape (windows, channels, samples), finite: any array
            NumPy reads (a memmap, a list) or a torch tensor; stored as
            float32 volts.
        metadata
            One row per window, matched to ``X`` by position (a DataFrame or a
            dict of columns): ``subject`` and ``label`` (required),
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
            Channel positions in metres (head frame), by name (channels of
            ``X`` only, three numbers each); default: those the workflow's
            windows job would take (:mod:`eegfm.windowing.positions`): an
            ``mne.Epochs``' own, else the 10-05 template's for the names it
            knows. For ``mne.Epochs``, ``sfreq`` and ``ch_names`` must be the
            epochs' own. ``X`` is checked as the
            windows job checks a recording (amplitude, flat channels), under
            the config's ``preprocessing`` (``signal_check``,
            ``amplitude_range_uv``).
        corpus
            Public datasets the recordings come from (as a dataset's
            ``corpus``, e.g. ``["TUEG"]``): a backbone pretrained on one of
            them is warned about in the log and the report.

        Returns
        -------
        eegfm.results.Results

        Raises
        ------
        ValueError
            An argument that does not fit (:mod:`eegfm.api_inputs`; the
            message names it, the rows or channels at fault and the fix),
            before anything is written.
        """
        import re

        from tqdm import tqdm

        from eegfm.backbones.registry import get_spec
        from eegfm.embed import embed
        from eegfm.probe import run_probe
        from eegfm.results import Results

        if not isinstance(name, str) or not re.match(NAME_PATTERN, name) or name in RESERVED_NAMES:
            raise ValueError(f"name {name!r} names the dataset's folder under out_dir: letters, digits, '_', '-', "
                             f"'.' (pattern {NAME_PATTERN}), and none of {', '.join(RESERVED_NAMES)} (folders of "
                             "the results layout)")
        cfg, res = self.config, self.out_dir
        cache = Path(cfg.cache).expanduser() if cfg.cache else res / "cache"
        started = time.perf_counter()
        windows_dir = res / name / "windows"
        stages = ["windows", "splits", *(f"embed+probe {b.label}" for b in cfg.backbones)]
        trained = [(b, r) for b in cfg.finetune.backbones for r in cfg.finetune.regimes]
        if isinstance(corpus, str) or not all(isinstance(c, str) for c in corpus):
            raise ValueError(f"corpus must be a list of dataset identifiers (e.g. ['TUEG']); got {corpus!r}")
        corpus = list(corpus)
        positions = api_inputs.epochs_positions(X, sfreq, ch_names, positions)
        X = api_inputs.checked_signal(X, units)
        sfreq = api_inputs.checked_sfreq(sfreq)
        ch_names = api_inputs.checked_channels(ch_names, X.shape[1], X.shape[2])
        metadata = api_inputs.as_table(metadata)
        rows = api_inputs.metadata_rows(metadata, len(X), X.shape[2] / sfreq, name, cfg.target)
        api_inputs.check_design(rows, cfg.cv.scheme, cfg.cv.group_by)
        if "onset_s" not in metadata and (cfg.cv.scheme == "within_subject" or trained):
            logger.warning(  # the gap at block edges and the time-blocked validation read time from onset_s
                "metadata has no onset_s: the windows of each recording are taken as consecutive and not "
                "overlapping (onset = row x window length), which the within_subject gap and the time-blocked "
                "early-stopping validation rely on; windows cut with a stride shorter than their length would "
                "overlap across a block edge unseen. Give onset_s (seconds from the recording's start)")
        positions = _positions(ch_names, api_inputs.checked_positions(positions, ch_names))
        _check_backbones(cfg, {"sfreq": sfreq, "n_times": X.shape[2], "ch_names": ch_names, "positions": positions},
                         name)
        uses_torch = bool(trained) or any(get_spec(b.name).kind == "braindecode" for b in cfg.backbones)
        with _torch_state_kept(uses_torch), \
                tqdm(total=len(stages) + len(trained), desc=f"eegfm {name}", unit="stage") as bar:
            bar.set_postfix_str("windows")
            _store_windows(windows_dir, X, rows, sfreq=sfreq, ch_names=ch_names, units=units,
                           positions=positions, name=name, target=cfg.target, checks=cfg.preprocessing)
            bar.update()
            folds_path = _store_folds(res / name / "splits" / "folds.json", windows_dir, cfg)
            bar.update()
            pointers = []
            for backbone in cfg.backbones:
                bar.set_postfix_str(backbone.label)
                pointer = res / name / "embeddings" / f"{backbone.label}.json"
                embed(str(windows_dir), backbone, cfg.embedding, cfg.seed, str(cache), str(pointer), name,
                      corpus=corpus)
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


def _store_windows(folder: Path, X: np.ndarray, rows: pd.DataFrame, *, sfreq: float, ch_names: list[str],
                   units: str, positions: dict | None, name: str, target: str = "classification",
                   checks: SignalChecks | None = None) -> None:
    """The checked arrays (float32 volts, :mod:`eegfm.api_inputs`) as a windows store.

    Checked as the workflow's windows job checks recordings: each
    recording's amplitude and flat channels (:func:`_signal_checks`), and a
    regression target (every label a finite number, not one value for all).
    An existing store is reused only when its signal (content key) and
    everything else it records (every metadata row, onsets included, the
    positions, target and signal checks: ``inputs_sha``) are unchanged, and
    its table and info have the bytes they were written with
    (:mod:`eegfm.stage_reuse`; the signal's chunks are checked as read).
    """
    from collections import Counter

    from eegfm import stage_reuse
    from eegfm.hashing import sha256_json
    from eegfm.windowing.regression_targets import checked_window_targets
    from eegfm.windowing.signal_checks import sanity_record
    from eegfm.windows_store import WindowsStoreWriter, content_key

    checks = checks or SignalChecks()
    sanity = sanity_record(checks, _signal_checks(X, rows, ch_names, units, checks))
    extra = {"label_source": "metadata (Python API)", "target": target, "sanity": sanity}
    if target == "regression":  # checked as the windows job checks them
        by_recording = {rec: Counter(part["label"]) for rec, part in rows.groupby("recording", sort=False)}
        extra["target_summary"] = checked_window_targets(by_recording, name)
    table = rows.astype(object).where(rows.notna(), None)
    extra["inputs_sha"] = sha256_json({"rows": table.to_dict("list"), "positions": positions, **extra})
    key = content_key(X, ch_names, sfreq)
    # the signal is checked chunk by chunk as it is read; its table and info against their recorded digests
    reuse_key = sha256_json({"key": key, "inputs_sha": extra["inputs_sha"]})
    if stage_reuse.reusable(folder, reuse_key):
        logger.info("windows store %s: unchanged (key %s), reused", folder, key[:12])
        return
    stage_reuse.forget(folder)
    writer = WindowsStoreWriter(folder, ch_names, sfreq, X.shape[2])
    try:
        for start in range(0, len(X), 256):
            writer.append(X[start : start + 256], rows.iloc[start : start + 256].to_dict("records"))
        writer.close(positions=positions, settings={"source": "eegfm.api"}, extra=extra)
    except BaseException:
        writer.abort()
        raise
    stage_reuse.record(folder, reuse_key, ["windows.tsv", "windows.json"])


def _check_training(cfg: ExperimentConfig) -> None:
    """Regimes without backbones train nothing (an error: the run would quietly be probes only); backbones
    without regimes train the workflow's default regimes (said, since they are the costly ones)."""
    ft = cfg.finetune
    if ft.regimes and not ft.backbones and "regimes" in ft.model_fields_set:
        raise ConfigError(f"invalid eegfm config:\n  finetune.regimes {list(ft.regimes)} but finetune.backbones is "
                          f"empty, so nothing would be trained; name the backbones to train (labels of backbones: "
                          f"{', '.join(b.label for b in cfg.backbones)})")
    if ft.backbones and "regimes" not in ft.model_fields_set:
        logger.warning("finetune.regimes not given: %s train the workflow's default regimes %s; name the regimes "
                       "to choose (head, lora, qlora, full, lp-ft, scratch)", ft.backbones, list(ft.regimes))


@contextmanager
def _torch_state_kept(uses_torch: bool) -> Iterator[None]:
    """The stages set torch's thread count (``embedding.threads``) and seed its global generator, as a job
    process may; the caller's session (a notebook) gets both back as they were."""
    if uses_torch:
        import torch
    torch = sys.modules.get("torch")
    if torch is None:  # nothing here imports it
        yield
        return
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)


def _check_weights(cfg: ExperimentConfig) -> None:
    """Weights files that cannot fit their model stop the experiment when it is made, as the workflow stops
    before any job; ``pretrain:<name>`` names a workflow recipe, whose folder the API needs instead."""
    from eegfm.backbones.weights_check import check_config_weights

    refs = [f"backbones[{i}].weights: '{b.weights}' names the workflow's pretraining recipe '{b.pretrain_ref}'; "
            f"give the folder it wrote instead (<results>/pretrain/{b.pretrain_ref}/weights)"
            for i, b in enumerate(cfg.backbones) if b.pretrain_ref]
    if refs:
        raise ConfigError("invalid eegfm config:\n  " + "\n  ".join(refs))
    if any(b.weights for b in cfg.backbones):
        check_config_weights(cfg)


def _check_backbones(cfg: ExperimentConfig, info: dict[str, Any], name: str) -> None:
    """Every backbone's input plan (rate, length, channels) fits the windows, before anything is written.

    The workflow's messages name dataset keys (``datasets.<name>.windows``);
    here the windows are ``X`` as given, which the message adds.
    """
    from eegfm.backbones.adapt import BackboneInputError, plan_input
    from eegfm.backbones.registry import get_spec

    for backbone in cfg.backbones:
        try:
            plan_input(get_spec(backbone.name), {**info, "units": "V"}, dataset=name, cfg=backbone)
        except BackboneInputError as err:
            raise BackboneInputError(
                f"{err}. In the Python API the windows are X as given ({info['n_times']} samples at "
                f"{info['sfreq']:g} Hz = {info['n_times'] / info['sfreq']:g} s, channels ch_names): where this "
                f"names a datasets.{name}.windows key or a channel selection, cut or select X instead; "
                "backbones[] keys apply as they are") from None


def _signal_checks(X, rows: pd.DataFrame, ch_names: list[str], units: str, checks: SignalChecks) -> list[dict]:
    """The windows job's amplitude gates, per recording: a channel's amplitude is its median peak-to-peak
    over the recording's windows (X in volts)."""
    import numpy as np

    from eegfm.windowing.signal_checks import check_amplitudes

    fixes = {
        "flat_recording": "drop its windows from X and metadata",
        "amplitude": f"Pass the unit X is in (units='V', 'mV' or 'uV'; given units='{units}'); a standardised "
        "(z-scored) X has no unit: pass it before scaling, as the backbones' input scale assumes volts; or widen "
        "preprocessing.amplitude_range_uv if the amplitude is real",
        "flat_channels": "Drop them from X and ch_names (e.g. {channel})",
    }
    found = []
    for recording, part in rows.groupby("recording", sort=False):
        amplitudes = np.median(np.ptp(X[part.index.to_numpy()], axis=2), axis=0)
        subject = part["subject"].iloc[0]
        result = check_amplitudes(amplitudes, ch_names, f"recording {recording} (subject {subject})", checks, fixes,
                                  fix_warn="or set preprocessing.signal_check: 'warn' in the config to go on anyway")
        found.append({"recording": recording, "subject": subject, **result})
    return found


def _positions(ch_names, positions) -> dict[str, list[float]] | None:
    """Channel positions by name: those given, else the 10-05 template's for the names it knows."""
    from eegfm.windowing.positions import template_positions

    return positions if positions is not None else template_positions(ch_names)


def _store_folds(path: Path, windows_dir: Path, cfg: ExperimentConfig) -> Path:
    """The splits stage; a rerun keeps the folds while the windows store's table and info (its content key,
    every metadata row), the design, the seed and the code are unchanged (:mod:`eegfm.stage_reuse`)."""
    from eegfm import stage_reuse
    from eegfm.splits import split_store
    from eegfm.windows_store import open_windows

    key = stage_reuse.inputs_key([windows_dir / "windows.json", windows_dir / "windows.tsv"],
                                 {"cv": cfg.cv.model_dump(mode="json"), "seed": cfg.seed})
    if stage_reuse.reusable(path.parent, key):
        logger.info("folds %s: windows, design and seed unchanged, reused", path)
        return path
    stage_reuse.forget(path.parent)
    split_store(open_windows(windows_dir), cfg.cv, cfg.seed, path)
    stage_reuse.record(path.parent, key, [path.name])
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
