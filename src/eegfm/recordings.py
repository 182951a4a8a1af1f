"""One loader for every input: the built-in dataset, BIDS roots and plain files.

:func:`find_recordings` turns a :class:`~eegfm.config.Dataset` into a sorted
list of :class:`Recording` (file + subject/session/run/task, and a
recording-level label when the dataset takes labels from a table) without
reading any signal; :func:`read_recording` loads one of them with MNE, as a
continuous ``Raw`` or, for epoched files (EEGLAB ``.set`` holding epochs, FIF
``-epo.fif``), as ``Epochs``. Both raise :class:`RecordingError` with a
message that names the file or the search and says what to change.

The built-in dataset is written as BIDS (:mod:`eegfm.synthetic`) and goes
through exactly the BIDS code path. A recording inside a BIDS root (its file
name parses as BIDS and a parent folder holds ``dataset_description.json``) is
read with :func:`mne_bids.read_raw_bids`, so ``events.tsv`` becomes the
annotations and ``channels.tsv`` sets channel types; anything else is read
with :func:`mne.io.read_raw`.
"""

from __future__ import annotations

import glob
import logging
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from eegfm.config import BidsSource, Dataset, FilesSource
from eegfm.id_spellings import CLASH_RULE, spelling_clashes, spelling_key

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)

#: Data-file extensions taken from a BIDS root, in order of preference when
#: ``bids.extension`` is null and one recording exists in several formats.
BIDS_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")

#: Extensions of files that ``mne.io.read_raw`` opens (lower case). Companion
#: files (.fdt, .vmrk, BrainVision .eeg, sidecars) are skipped when globbing.
READABLE_EXTENSIONS = (
    ".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".set", ".vhdr", ".ahdr", ".cnt", ".mff", ".nxe", ".eeg", ".cdt",
)  # fmt: skip

#: A ``files.pattern`` for BIDS-named files (also inside subject folders): subject, session and run.
BIDS_NAME_PATTERN = r"sub-(?P<subject>[^_/]+)(?:_ses-(?P<session>[^_/]+))?(?:[^/]*_run-(?P<run>[^_/.]+))?[^/]*$"
_BIDS_SUBJECT = re.compile(r"(?:^|_)sub-([^_]+)")  # the subject entity of a file stem

_FIX_UNREADABLE = (
    "check that the file is complete and in a format MNE reads (EDF, BDF, FIF, EEGLAB .set with its .fdt, "
    "BrainVision .vhdr with its .vmrk/.eeg); re-export the file, or remove it from files.metadata / "
    "files.paths (or the BIDS root)"
)


@dataclass(frozen=True)
class Recording:
    """One continuous recording and who/when it belongs to.

    Attributes
    ----------
    path
        The file MNE reads (for BIDS: the data file, e.g. ``..._eeg.edf``).
    subject, session, run, task
        Labels used for grouping in cross-validation (``None`` when unknown).
    label
        The recording-level label every window of this recording gets (the raw
        table cell), or ``None`` when labels come from the events.
    label_source
        Where ``label`` came from, e.g. ``"files.metadata column 'group'"``.
    """

    path: str
    subject: str
    session: str | None = None
    run: str | None = None
    task: str | None = None
    label: str | None = None
    label_source: str | None = None


class RecordingError(RuntimeError):
    """A recording cannot be found or read; the message names it and the fix."""


# ----------------------------------------------------------------------------- finding


def find_recordings(dataset: Dataset, *, synthetic_root: str | Path | None = None) -> list[Recording]:
    """List the recordings of a dataset, sorted by (subject, session, run, path).

    Parameters
    ----------
    dataset
        The dataset settings; ``dataset.source`` selects the branch.
    synthetic_root
        For ``source: synthetic``, the BIDS root written by
        :func:`eegfm.synthetic.write_synthetic_bids`.

    Returns
    -------
    list of Recording

    Raises
    ------
    RecordingError
        When nothing matches (naming the root or globs and what to check), or a
        metadata table is malformed or names a missing file.
    """
    if dataset.source == "synthetic":
        if synthetic_root is None:
            raise RecordingError("source 'synthetic' needs synthetic_root (the folder written by write_synthetic_bids)")
        bids = BidsSource(root=str(synthetic_root), task=dataset.synthetic.task, extension=".edf")
        recordings = _find_bids(bids)
    elif dataset.source == "bids":
        recordings = _find_bids(dataset.bids)
        if dataset.bids.label_column:
            root = Path(dataset.bids.root).expanduser()
            recordings = _participant_labels(recordings, root, dataset.bids.label_column)
    else:
        recordings = _find_files(dataset.files)
    recordings = sorted(recordings, key=_sort_key)
    _warn_duplicates(recordings)
    log.info("found %d recordings of %d subjects", len(recordings), len({r.subject for r in recordings}))
    return recordings


def _sort_key(rec: Recording) -> tuple:
    return (rec.subject, rec.session or "", rec.run or "", rec.path)


def _warn_duplicates(recordings: list[Recording]) -> None:
    """Two files with the same subject/session/run/task are legal but often a labelling slip."""
    seen: dict[tuple, str] = {}
    for rec in recordings:
        ident = (rec.subject, rec.session, rec.run, rec.task)
        if ident in seen:
            log.warning(
                "%s and %s share subject=%s session=%s run=%s task=%s; they are grouped together in CV",
                seen[ident], rec.path, *ident,
            )  # fmt: skip
        seen.setdefault(ident, rec.path)


def _find_bids(bids: BidsSource) -> list[Recording]:
    """Data files of a BIDS root that match the filters, one format per recording."""
    import mne_bids

    root = Path(bids.root).expanduser()
    if not (root / "dataset_description.json").is_file():
        raise RecordingError(
            f"bids.root '{bids.root}' is not a BIDS root (no dataset_description.json there); "
            "point bids.root at the top folder of the dataset"
        )
    extensions = ["." + bids.extension.lstrip(".")] if bids.extension else list(BIDS_EXTENSIONS)
    paths = mne_bids.find_matching_paths(
        root,
        subjects=bids.subjects,
        sessions=bids.sessions,
        runs=bids.runs,
        tasks=bids.task,
        datatypes=bids.datatype,
        suffixes=bids.datatype,
        extensions=extensions,
    )
    # Keep the first split only (read_raw_bids joins the others) and one format per recording.
    chosen: dict[str, object] = {}
    for path in sorted(paths, key=lambda p: (_recording_id(p), extensions.index(p.extension))):
        if path.split not in (None, "01"):
            continue
        chosen.setdefault(_recording_id(path), path)
    if not chosen:
        tasks = mne_bids.get_entity_vals(root, "task")
        subjects = mne_bids.get_entity_vals(root, "subject")
        raise RecordingError(
            f"no BIDS recordings in '{root}' match task={bids.task!r}, datatype={bids.datatype!r}, "
            f"subjects={bids.subjects}, sessions={bids.sessions}, runs={bids.runs}, extensions={extensions}; "
            f"the root has tasks {tasks} and {len(subjects)} subjects: check bids.task/datatype/subjects/"
            "sessions/runs/extension against the file names (e.g. sub-01/eeg/sub-01_task-X_eeg.edf)"
        )
    return [
        Recording(path=str(p.fpath), subject=p.subject, session=p.session, run=p.run, task=p.task)
        for p in chosen.values()
    ]


def _participant_labels(recordings: list[Recording], root: Path, column: str) -> list[Recording]:
    """Recordings labelled by their participant's ``column`` in the root's participants.tsv."""
    import pandas as pd

    table = root / "participants.tsv"
    if not table.is_file():
        raise RecordingError(
            f"bids.label_column '{column}' needs {table}, which does not exist; add it (participant_id plus the "
            "label column) or unset bids.label_column"
        )
    frame = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in frame.columns or column not in frame.columns:
        raise RecordingError(
            f"{table} lacks column 'participant_id' or the bids.label_column '{column}'; it has "
            f"{list(frame.columns)}. Set bids.label_column to one of them"
        )
    ids = frame["participant_id"].str.removeprefix("sub-")
    labels = {pid: _label(value) for pid, value in zip(ids, frame[column], strict=True)}
    unlabelled = sorted({r.subject for r in recordings if labels.get(r.subject) is None})
    if unlabelled:
        raise RecordingError(
            f"{table}: participant(s) {unlabelled} have no value in column '{column}' (missing row, empty or n/a); "
            "fill it in or leave those subjects out with bids.subjects"
        )
    source = f"participants.tsv column '{column}'"
    return [replace(r, label=labels[r.subject], label_source=source) for r in recordings]


def _recording_id(path) -> str:
    """A BIDS data file's path without extension and split: one id per recording."""
    stem = path.basename.removesuffix(path.extension).replace(f"_split-{path.split}", "")
    return str(Path(path.directory) / stem)


def _find_files(files: FilesSource) -> list[Recording]:
    if files.metadata:
        return _from_metadata(Path(files.metadata).expanduser(), files.label_column)
    return _from_globs(files.paths, files.pattern)


def _label(value) -> str | None:
    """A metadata cell as a label: empty, 'n/a' and NaN mean unknown."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in ("", "n/a", "nan", "none") else text


def _from_metadata(table: Path, label_column: str | None = None) -> list[Recording]:
    """Recordings listed in a TSV (path, subject, optional session, run, label column)."""
    import pandas as pd

    if not table.is_file():
        raise RecordingError(
            f"files.metadata '{table}' does not exist; fix the path (relative to the working directory)"
        )
    try:
        frame = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001 - any parse failure is the user's table
        raise RecordingError(f"cannot parse files.metadata '{table}' as a TSV: {err}") from err
    missing = [c for c in ("path", "subject") if c not in frame.columns]
    if missing:
        raise RecordingError(
            f"files.metadata '{table}' lacks column(s) {missing}; it has {list(frame.columns)}. "
            "Needed: path, subject (tab-separated, with a header row); optional: session, run"
        )
    if frame.empty:
        raise RecordingError(f"files.metadata '{table}' has no rows; add one row per recording")
    if label_column is None and "label" in frame.columns:
        raise RecordingError(
            f"files.metadata '{table}' has a 'label' column, but files.label_column is not set, so it would be "
            "ignored and the labels taken from the events. Set files.label_column: label to label every window "
            "of a recording by it, or rename or remove the column"
        )
    if label_column is not None and label_column not in frame.columns:
        raise RecordingError(
            f"files.label_column '{label_column}' is not a column of files.metadata '{table}'; it has "
            f"{list(frame.columns)}"
        )
    recordings = []
    for line, row in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        raw_path, subject = _label(row["path"]), _label(row["subject"])
        if raw_path is None or subject is None:
            raise RecordingError(f"files.metadata '{table}' line {line}: path and subject must not be empty")
        path = Path(raw_path).expanduser()
        path = path if path.is_absolute() else table.parent / path
        if not path.exists():
            raise RecordingError(
                f"files.metadata '{table}' line {line}: '{path}' does not exist; "
                "fix the path (relative paths are resolved against the TSV's folder) or remove the row"
            )
        label = None
        if label_column is not None:
            label = _label(row[label_column])
            if label is None:
                raise RecordingError(
                    f"files.metadata '{table}' line {line}: no value in the label column '{label_column}' "
                    "(empty or n/a); every recording needs its label, or remove the row"
                )
        recordings.append(
            Recording(
                path=str(path),
                subject=subject,
                session=_label(row.get("session")),
                run=_label(row.get("run")),
                label=label,
                label_source=None if label is None else f"files.metadata column '{label_column}'",
            )
        )
    for column, ids in (("subject", [r.subject for r in recordings]),
                        (label_column, [r.label for r in recordings] if label_column else [])):
        _refuse_clashes(ids, f"files.metadata '{table}' column '{column}'",
                        "subjects" if column == "subject" else "classes",
                        "spell each one way in the table, or give them names that differ")
    return recordings


def _refuse_clashes(ids, where: str, what: str, fix: str) -> None:
    """A :class:`RecordingError` when ids are spelled two ways (:func:`eegfm.id_spellings.spelling_clashes`)."""
    clashes = spelling_clashes(set(ids))
    if clashes:
        shown = ", ".join(" and ".join(map(repr, c)) for c in clashes[:5])
        raise RecordingError(f"{where}: {shown} {CLASH_RULE}, so they would be two {what}; {fix}")


def _readable(path: Path) -> bool:
    """Whether a globbed path is a recording MNE opens (not a companion or sidecar)."""
    name = path.name.lower()
    ext = next((e for e in sorted(READABLE_EXTENSIONS, key=len, reverse=True) if name.endswith(e)), None)
    if ext is None or (path.is_dir() and ext != ".mff"):
        return False
    # BrainVision keeps its samples in a .eeg next to the .vhdr; Nihon Kohden's .eeg stands alone.
    if ext == ".eeg" and any(path.with_suffix(s).exists() for s in (".vhdr", ".VHDR", ".ahdr")):
        return False
    return True


def _from_globs(patterns: list[str], regex: str | None) -> list[Recording]:
    """Recordings matched by glob patterns; labels from ``regex`` or the file stem."""
    matched = sorted({p for pattern in patterns for p in glob.glob(str(Path(pattern).expanduser()), recursive=True)})
    paths = [p for p in matched if _readable(Path(p))]
    if not paths:
        found = sorted({"".join(Path(p).suffixes) or Path(p).name for p in matched})
        raise RecordingError(
            f"files.paths {patterns} matched no readable recording (working directory: {Path.cwd()}); "
            + (f"matched only files with extensions {found}; " if matched else "")
            + f"check the globs; readable extensions are {', '.join(READABLE_EXTENSIONS)}"
        )
    skipped = len(matched) - len(paths)
    if skipped:
        log.info("skipped %d matched files that are not recordings (companions, sidecars)", skipped)
    if regex is None:
        _check_bids_subjects(paths)
        return [Recording(path=p, subject=Path(p).name.split(".")[0]) for p in paths]  # the file stem
    recordings = [_labels_from_path(p, re.compile(regex)) for p in paths]
    _refuse_clashes([r.subject for r in recordings], f"files.pattern {regex!r} subjects", "subjects",
                    "rename the files so each subject is spelled one way, or list them in files.metadata")
    return recordings


def _check_bids_subjects(paths: list[str]) -> None:
    """Without files.pattern each file is its own subject: files whose names share a BIDS ``sub-<label>``
    (``sub-01_run-1``, ``sub-01_run-2``) would put one person on both sides of a cross-subject fold."""
    files: dict[str, list[str]] = {}
    for path in paths:
        found = _BIDS_SUBJECT.search(Path(path).name.split(".")[0])
        if found:
            files.setdefault(spelling_key(found.group(1)), []).append(Path(path).name)
    shared = [names for names in files.values() if len(names) > 1]
    if shared:
        raise RecordingError(
            f"files.paths: without files.pattern each file is its own subject, but these files share a BIDS subject "
            f"(sub-<label>): {'; '.join(', '.join(names) for names in shared[:5])}; one person would sit on both "
            "sides of a cross-subject fold. Set files.pattern with a (?P<subject>...) group (groups: subject, "
            f"session, run), e.g. files.pattern: '{BIDS_NAME_PATTERN}'"
        )


def _labels_from_path(path: str, regex: re.Pattern) -> Recording:
    match = regex.search(Path(path).as_posix())
    if match is None:
        raise RecordingError(
            f"'{path}' does not match files.pattern {regex.pattern!r}; fix the pattern or narrow files.paths"
        )
    groups = match.groupdict()
    return Recording(path=path, subject=groups["subject"], session=groups.get("session"), run=groups.get("run"))


# ----------------------------------------------------------------------------- reading


#: File-name endings of MNE's epochs FIF files.
EPOCHS_FIF_SUFFIXES = ("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")


def read_recording(rec: Recording) -> mne.io.BaseRaw | mne.BaseEpochs:
    """Load one recording with MNE (preloaded): continuous as ``Raw``, epoched as ``Epochs``.

    Files inside a BIDS root are read with :func:`mne_bids.read_raw_bids`
    (events.tsv -> annotations, channels.tsv -> channel types). Other files
    are read with :func:`mne.io.read_raw`, except epoched files: FIF files
    named ``*-epo.fif`` (:func:`mne.read_epochs`), and EEGLAB ``.set`` or FIF
    files that MNE refuses as continuous but reads as epochs. Reader warnings
    are logged with the file name.

    Parameters
    ----------
    rec
        The recording to load.

    Returns
    -------
    mne.io.BaseRaw or mne.BaseEpochs

    Raises
    ------
    RecordingError
        When the file is missing, unreadable or truncated; the message names
        the file, the reason and the fix.
    """
    path = Path(rec.path)
    if not path.exists():
        raise RecordingError(f"{rec.path}: file not found; fix the path or remove it from the dataset")
    bids_path = _bids_path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if bids_path is not None:
                import mne_bids

                inst = mne_bids.read_raw_bids(bids_path, verbose="warning")
                inst.load_data(verbose=False)
            else:
                inst = _read_file(path)
        except Exception as err:  # noqa: BLE001 - every reader failure gets the same actionable message
            reason = f"{type(err).__name__}: {err}"
            raise RecordingError(f"{rec.path}: cannot read it ({reason}); {_FIX_UNREADABLE}") from err
    for item in caught:
        log.warning("%s: %s", rec.path, item.message)
    _check_not_truncated(path, [str(item.message) for item in caught])
    return inst


def read_raw(rec: Recording) -> mne.io.BaseRaw:
    """Load one continuous recording (:func:`read_recording`, refusing epoched files)."""
    import mne

    inst = read_recording(rec)
    if isinstance(inst, mne.BaseEpochs):
        raise RecordingError(f"{rec.path}: holds {len(inst)} epochs, not a continuous recording")
    return inst


def _read_file(path: Path) -> mne.io.BaseRaw | mne.BaseEpochs:
    """A plain file as Raw, or as Epochs when it is epoched (by name, or when MNE refuses it as Raw)."""
    import mne

    if path.name.lower().endswith(EPOCHS_FIF_SUFFIXES):
        return mne.read_epochs(path, preload=True, verbose="warning")
    try:
        return mne.io.read_raw(path, preload=True, verbose="warning")
    except Exception as as_raw:  # noqa: BLE001 - retried as epochs below, re-raised if that fails too
        readers = {".set": mne.read_epochs_eeglab, ".fif": mne.read_epochs}
        reader = readers.get(path.suffix.lower())
        if reader is None:
            raise
        try:
            epochs = reader(path, verbose="warning")
        except Exception:  # noqa: BLE001 - not epochs either: the continuous reader's error is the useful one
            raise as_raw from None
        return epochs.load_data()


def _bids_path(path: Path):
    """The BIDSPath of a data file inside a BIDS root, else None."""
    if not path.name.startswith("sub-"):
        return None
    # sub-X/[ses-Y/]datatype/file: the root is two or three levels up.
    root = next((p for p in path.parents[1:4] if (p / "dataset_description.json").is_file()), None)
    if root is None:
        return None
    import mne_bids

    try:
        bids_path = mne_bids.get_bids_path_from_fname(path, check=False, verbose=False)
    except Exception:  # noqa: BLE001 - not a BIDS name after all: read it as a plain file
        return None
    return bids_path.update(root=root)


def _check_not_truncated(path: Path, messages: list[str]) -> None:
    """EDF/BDF whose header promises more records than the file holds.

    MNE reads such files silently shortened (it only warns); a header record
    count of -1 (recording not closed) is legal and left alone.
    """
    if path.suffix.lower() not in (".edf", ".bdf"):
        return
    if not any("does not match the file size" in m for m in messages):
        return
    with open(path, "rb") as fh:
        fh.seek(236)  # EDF/BDF header: number of data records, 8 ASCII bytes
        field = fh.read(8).decode("ascii", errors="replace").strip()
    if field == "-1":
        return
    raise RecordingError(
        f"{path}: truncated — its header declares {field} data records but the file holds fewer "
        f"(an interrupted copy or export); {_FIX_UNREADABLE}"
    )
