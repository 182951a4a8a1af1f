"""What the workflow learns about the recordings when it builds its DAG, before any job runs.

- :func:`recording_inputs`: every file a dataset's windows are read from, so
  that they are Snakemake inputs of its windows job and replacing one re-runs
  it: the files of a ``files.metadata`` table (and the table), the glob
  matches of ``files.paths``, and for a BIDS root each data file with its
  companions and the sidecars that shape the windows (``events.tsv``,
  ``channels.tsv``, ``eeg.json``, ``electrodes.tsv``, ... by the BIDS
  inheritance principle).
- :func:`recording_stamp`: a digest of those files' sizes and modification
  times, a rule parameter, so a file replaced by an *older* one (``cp -p``,
  ``rsync -t``), which Snakemake's mtime check misses, re-runs it too.
- :func:`check_cv_groups`: ``cv.n_splits`` against the subjects (or
  sessions/runs) the recordings already name, instead of after windowing
  and embedding.
- :func:`check_before_jobs`: every check of a validated config that the
  workflow runs at parse time (recordings and folds, regression targets,
  pretrained weights), shared with ``eegfm check-config``.
- :func:`listed_recordings`: one listing of a dataset's recordings per run.
  The main Snakemake process lists them and saves the listing; the jobs a
  cluster executor starts re-parse the workflow and read it back instead of
  listing a large BIDS root once per job. The listing gives the fold count
  of designs whose folds follow the recordings (LOSO, cross-session,
  leave-one-run-out) and the windows job's inputs.

Only names are read (and a BrainVision header's file references), never signals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from eegfm.config import Config, ConfigError, Dataset
from eegfm.hashing import sha256_json

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.recordings import Recording

__all__ = ["check_before_jobs", "check_cv_groups", "cv_groups", "listed_recordings", "recording_inputs",
           "recording_stamp"]

#: Entities a sidecar may carry that its data file does not (BIDS inheritance still applies).
_EXTRA_ENTITIES = {"space", "split"}


def listed_recordings(dataset: Dataset, cache_dir: str | os.PathLike, *, main_process: bool) -> list[Recording]:
    """The recordings of a files/BIDS dataset, listed once per run.

    Parameters
    ----------
    dataset
        The dataset settings (its listing is keyed by them).
    cache_dir
        Folder of the saved listings (e.g. ``.snakemake/eegfm/recordings``).
    main_process
        ``True`` in the process that builds the run's DAG: it lists the
        recordings afresh (files may have been added since the last run) and
        saves the listing. ``False`` in a job's re-parse: the saved listing
        of these settings is read back when there is one, else the
        recordings are listed.

    Returns
    -------
    list of Recording
        As :func:`eegfm.recordings.find_recordings` returns them.
    """
    import json
    from dataclasses import asdict

    from eegfm import atomic
    from eegfm.recordings import Recording, find_recordings

    path = Path(cache_dir) / f"{sha256_json(dataset.model_dump(mode='json'))}.json"
    if not main_process and path.is_file():
        return [Recording(**row) for row in json.loads(path.read_text())]
    recordings = find_recordings(dataset)
    if main_process:
        atomic.write_json(path, [asdict(r) for r in recordings])
    return recordings


def recording_inputs(dataset: Dataset, recordings: Sequence[Recording] | None = None) -> list[str]:
    """The files the windows of a ``files`` or ``bids`` dataset are made from (sorted, no duplicates).

    ``recordings`` is ``find_recordings(dataset)`` when the caller has it already.

    Raises
    ------
    eegfm.recordings.RecordingError
        When the recordings cannot be listed (a missing table, root or file).
    """
    if dataset.source == "files" and not dataset.files.metadata:
        import glob

        found = {p for pattern in dataset.files.paths for p in glob.glob(pattern, recursive=True)}
        return sorted(found | {c for p in found for c in _companions(Path(p))})  # an .fdt, .eeg, .vmrk too
    files: set[str] = set()
    if dataset.source == "files":
        files.add(dataset.files.metadata)
    if recordings is None:
        from eegfm.recordings import find_recordings

        recordings = find_recordings(dataset)
    listings: dict[Path, list[tuple[str, dict[str, str]]]] = {}  # each folder is listed once
    for recording in recordings:
        files.add(recording.path)
        files.update(_companions(Path(recording.path)))
        if dataset.source == "bids":
            files.update(_bids_sidecars(Path(recording.path), Path(dataset.bids.root).expanduser(), listings))
    if dataset.source == "bids" and dataset.bids.label_column:  # the labels' table (it names no entities)
        files.add(str(Path(dataset.bids.root).expanduser() / "participants.tsv"))
    return sorted(files)


def recording_stamp(files: Iterable[str]) -> str:
    """sha256 over each file's path, size and modification time (ns); changes when any file is replaced."""
    stamps = []
    for name in files:
        stat = os.stat(name)
        stamps.append((name, stat.st_size, stat.st_mtime_ns))
    return sha256_json(stamps)


def cv_groups(dataset: Dataset, recordings: Sequence[Recording] | None = None) -> int:
    """Number of cross-validation groups (subjects, or sessions/runs per ``cv.group_by``) the recordings name.

    ``recordings`` is ``find_recordings(dataset)`` when the caller has it
    already (ignored for the built-in data, whose counts are in the config).
    """
    if dataset.source == "synthetic":  # one recording per subject, written by the synthetic rule
        syn = dataset.synthetic
        return syn.n_subjects if syn.task == "target" else syn.n_source_subjects
    from eegfm.recordings import find_recordings
    from eegfm.splits import GROUP_COLUMNS

    columns = GROUP_COLUMNS[dataset.cv.group_by]
    found = find_recordings(dataset) if recordings is None else recordings
    return len({tuple(getattr(r, c) for c in columns) for r in found})


def check_cv_groups(config: Config, recordings: Callable[[str], Sequence[Recording]] | None = None) -> None:
    """Refuse folds that cannot be made from the recordings found, before any job.

    Windowing can only drop groups (a subject without events), so a design
    the recordings cannot fill here can never be split: ``group_kfold`` with
    more ``n_splits`` than groups or fewer than 2 groups, and the designs
    whose folds follow the recordings (:func:`eegfm.splits.expected_n_folds`:
    LOSO with one group, ``cross_session``/``leave_one_run_out`` with a
    subject of a single session/run). ``within_subject`` splits inside each
    subject, so one subject is enough; its blocks are checked on the windows.
    ``recordings(name)`` gives a dataset's recordings when the caller keeps
    them (the workflow lists each dataset once per run).

    Raises
    ------
    ConfigError
        One line per dataset with a problem: for any dataset, why its
        recordings cannot be listed; for an evaluated one, the key, the
        groups found and the fix.
    """
    from eegfm.recordings import RecordingError, find_recordings
    from eegfm.splits import SplitError, expected_n_folds

    errors = []
    for name, ds in sorted(config.datasets.items()):
        found = None
        if ds.source != "synthetic":
            try:  # every dataset, pretraining ones too: a missing table, root or file is named with its dataset
                found = recordings(name) if recordings is not None else find_recordings(ds)
            except RecordingError as err:
                errors.append(f"datasets.{name}: {err}")
                continue
        if ds.role != "evaluate" or ds.cv.scheme == "within_subject":
            continue
        if ds.cv.scheme != "group_kfold":
            try:
                expected_n_folds(ds.cv, lambda ds=ds, found=found: _units(ds, found))
            except SplitError as err:
                errors.append(f"datasets.{name}.cv: {err}")
            continue
        n, unit = cv_groups(ds, found), ds.cv.group_by
        if n < 2:
            errors.append(f"datasets.{name}: the recordings name {n} {unit} group; cross-validation needs at "
                          "least 2 (add subjects, set cv.group_by: session/run if subjects have several, or use "
                          "cv.scheme: within_subject / leave_one_run_out for one subject)")
        elif ds.cv.n_splits > n:
            errors.append(f"datasets.{name}.cv.n_splits is {ds.cv.n_splits} but the recordings name only {n} "
                          f"{unit} groups; set datasets.{name}.cv.n_splits to at most {n}, or cv.scheme: loso")
    if errors:
        raise ConfigError("datasets whose recordings or cross-validation cannot be used (checked before any job "
                          "runs):\n  " + "\n  ".join(errors))


def check_before_jobs(config: Config, recordings: Callable[[str], Sequence[Recording]] | None = None, *,
                      weights_checked_dir: str | os.PathLike | None = None) -> None:
    """Everything about a validated config that can be checked before any job runs.

    The recordings can be listed and give the folds the design needs
    (:func:`check_cv_groups`), a regression target in a metadata table is
    a number (:func:`eegfm.windowing.regression_targets.check_config_targets`),
    and local pretrained weights fit their backbone
    (:func:`eegfm.backbones.weights_check.check_config_weights`; a passed
    check is remembered in ``weights_checked_dir``). The workflow runs it
    when it parses (main process only); ``eegfm check-config`` runs it on a
    file.

    Raises
    ------
    ConfigError, eegfm.recordings.RecordingError, eegfm.windowing.WindowsError, ValueError
        Each naming the key, dataset or backbone and the fix.
    """
    from eegfm.windowing.regression_targets import check_config_targets

    if recordings is None:
        from eegfm.recordings import find_recordings

        def recordings(name: str) -> Sequence[Recording]:
            return find_recordings(config.datasets[name])

    check_cv_groups(config, recordings)
    check_config_targets(config, recordings)
    if any(b.weights and not b.pretrain_ref for b in config.backbones):  # the workflow's own weights: made later
        from eegfm.backbones.weights_check import check_config_weights

        check_config_weights(config, cache_dir=weights_checked_dir)


def _units(dataset: Dataset, recordings: Sequence[Recording] | None) -> list[tuple]:
    """``(subject, session, run)`` of every recording (the built-in data, whose ``recordings`` is ``None``: one
    recording per subject)."""
    if dataset.source == "synthetic":
        syn = dataset.synthetic
        return [(str(i), None, None) for i in range(syn.n_subjects if syn.task == "target" else syn.n_source_subjects)]
    return [(r.subject, r.session, r.run) for r in recordings]


# ----------------------------------------------------------------------------- internals


def _companions(path: Path) -> list[str]:
    """Files a recording's reader opens besides the named one (EEGLAB data, BrainVision markers and data)."""
    suffix = path.suffix.lower()
    if suffix == ".set":
        return [str(p) for p in (path.with_suffix(".fdt"), path.with_suffix(".FDT")) if p.is_file()][:1]
    if suffix in (".vhdr", ".ahdr"):
        text = path.read_text(encoding="latin-1", errors="replace")
        refs = re.findall(r"^\s*(?:DataFile|MarkerFile)\s*=\s*(.+?)\s*$", text, flags=re.M | re.I)
        return [str(path.parent / ref) for ref in refs if (path.parent / ref).is_file()]
    return []


def _entities(name: str) -> dict[str, str] | None:
    """BIDS entities of a file name (``sub-01_task-x_eeg.edf`` -> {sub: 01, task: x}); None if none."""
    parts = name.split(".")[0].split("_")
    pairs = [p.split("-", 1) for p in parts[:-1] if "-" in p]
    return dict(pairs) if pairs else None


def _bids_sidecars(data_file: Path, root: Path, listings: dict[Path, list[tuple[str, dict[str, str]]]]) -> list[str]:
    """Sidecars that apply to a BIDS data file: at its level and every level above it up to the root,
    files whose entities (but space/split) are a subset of the data file's (the inheritance principle).

    ``listings`` keeps each folder's named entries between calls."""
    own = _entities(data_file.name) or {}
    found = []
    folder = data_file.parent
    levels = [folder, *folder.parents]
    for level in levels[: levels.index(root) + 1] if root in levels else [folder]:
        if level not in listings:
            named = ((name, _entities(name)) for name in sorted(os.listdir(level)))
            listings[level] = [(name, entities) for name, entities in named if entities]
        for name, entities in listings[level]:
            if name != data_file.name and all(
                own.get(k) == v for k, v in entities.items() if k not in _EXTRA_ENTITIES
            ):
                found.append(str(level / name))
    return found
