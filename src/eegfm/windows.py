"""MNE preprocessing and windowing of recordings into the windows store.

For each recording, in order: read it (:func:`eegfm.recordings.read_raw`),
keep its EEG channels (or exactly ``preprocessing.channels``), refuse NaN/Inf,
band-pass, re-reference, resample, then cut windows of exactly
``round(length_s * sfreq)`` samples:

``events`` mode
    one window per annotation at ``onset + tmin``, labelled by its
    description (mapped through ``windows.event_id``);
``fixed`` mode
    consecutive windows every ``stride_s``, labelled by the annotation that
    covers the whole window; unlabelled or ambiguous windows are dropped.

Windows stream into :class:`eegfm.windows_store.WindowsStoreWriter` one
recording at a time (memory is one recording, not the dataset); on any error
the writer is aborted so no half-written store remains. Problems in the input
raise :class:`WindowsError` naming the file and what to change in the config.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from eegfm.config import Preprocessing, Windowing
from eegfm.recordings import Recording, read_raw
from eegfm.windows_store import WindowsStoreWriter

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)

#: Montage used for channel positions the recordings do not carry themselves
#: (MNE 1.13's name for 'standard_1005'; same positions).
FALLBACK_MONTAGE = "colin27_1005"

# Annotations MNE treats as rejection markers, never as classes.
_NON_CLASS_PREFIXES = ("bad", "edge")


class WindowsError(RuntimeError):
    """Recordings that cannot become windows; the message names the file and the fix."""


def build_windows(recordings: list[Recording], pre: Preprocessing, win: Windowing, out_dir: str | Path) -> dict:
    """Preprocess recordings and write their labelled windows to a windows store.

    Parameters
    ----------
    recordings
        Recordings to window, in the order their windows are stored.
    pre
        Channel selection, band-pass, reference and resampling.
    win
        Windowing mode, labels and window length.
    out_dir
        Folder of the windows store (``windows.zarr``, ``windows.tsv``,
        ``windows.json``).

    Returns
    -------
    dict
        The store summary (``windows.json``): key, shape, classes, counts,
        channel positions and the settings used.

    Raises
    ------
    WindowsError
        Missing channels, NaN/Inf, mismatched sampling rates or channel sets,
        a recording without the requested events, or fewer than two classes.
    eegfm.recordings.RecordingError
        A recording that cannot be read.
    """
    if not recordings:
        raise WindowsError("no recordings to window; check the dataset's source settings")
    writer: WindowsStoreWriter | None = None
    reference: dict[str, Any] = {}  # channel names and rate of the first recording
    positions: dict[str, list[float]] | None = None
    labels: Counter[str] = Counter()
    try:
        for rec in tqdm(recordings, desc="windows", unit="recording"):
            raw = _preprocess(rec, pre, reference)
            X, rows = _cut(raw, rec, win)
            if writer is None:
                writer = WindowsStoreWriter(out_dir, raw.ch_names, raw.info["sfreq"], _n_times(win, raw))
                positions = _positions(raw)
            if len(X):
                writer.append(X, rows)
            labels.update(row["label"] for row in rows)
            log.info("%s: %d windows %s", rec.path, len(rows), dict(Counter(r["label"] for r in rows)))
            del raw, X
        if len(labels) < 2:
            raise WindowsError(
                f"the windows hold {len(labels)} class(es) {dict(labels)} over {len(recordings)} recordings; "
                "a benchmark needs at least 2: check windows.event_id / windows.mode against the recordings' "
                "annotations"
            )
        info = writer.close(
            positions=positions, settings={"preprocessing": pre.model_dump(), "windows": win.model_dump()}
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    log.info(
        "windows store %s: %d windows, classes %s, key %s",
        out_dir, info["n_windows"], info["class_counts"], info["key"],
    )  # fmt: skip
    return info


# ----------------------------------------------------------------------------- preprocessing


def _preprocess(rec: Recording, pre: Preprocessing, reference: dict[str, Any]) -> mne.io.BaseRaw:
    """Read one recording and apply channel selection, checks, filter, reference, resampling."""
    raw = read_raw(rec)
    try:
        raw.pick("eeg")
    except ValueError as err:
        types = sorted(set(raw.get_channel_types()))
        raise WindowsError(
            f"{rec.path}: no EEG channels (channel types: {types}); mark the EEG channels as 'eeg' "
            "(BIDS channels.tsv, or re-export with channel types)"
        ) from err
    ref_extra = _pick_channels(raw, rec, pre)
    if raw.info["bads"]:
        # Kept so every recording has the same channels; an average reference leaves them out.
        log.warning("%s: channels marked bad are kept as recorded: %s", rec.path, raw.info["bads"])
    if pre.channels is None:
        _check_same_channels(raw, rec, reference)
    _check_finite(raw, rec)
    _check_rate(raw, rec, pre, reference)
    if pre.l_freq is not None or pre.h_freq is not None:
        try:
            raw.filter(pre.l_freq, pre.h_freq, verbose="error")
        except ValueError as err:
            raise WindowsError(
                f"{rec.path}: cannot band-pass {pre.l_freq}-{pre.h_freq} Hz at {raw.info['sfreq']:g} Hz ({err}); "
                "adjust preprocessing.l_freq/h_freq (h_freq must be below half the recording's rate)"
            ) from err
    if pre.reference == "average":
        # Over the kept channels only, so every recording is referenced alike.
        raw.set_eeg_reference("average", projection=False, verbose="error")
    elif pre.reference is not None:
        raw.set_eeg_reference(_match(raw.ch_names, pre.reference, rec, "reference"), projection=False, verbose="error")
        raw.drop_channels(ref_extra)  # reference channels outside preprocessing.channels
    if pre.sfreq is not None and not np.isclose(raw.info["sfreq"], pre.sfreq):
        raw.resample(pre.sfreq, verbose="error")
    return raw


def _match(available: list[str], wanted: list[str], rec: Recording, key: str) -> list[str]:
    """Names in ``available`` matching ``wanted`` case-insensitively, in ``wanted``'s order."""
    lookup = {name.lower(): name for name in available}
    missing = [name for name in wanted if name.lower() not in lookup]
    if missing:
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): preprocessing.{key} lists channel(s) {missing} that the recording "
            f"lacks; its EEG channels are {available}. Fix preprocessing.{key} or drop this recording"
        )
    return [lookup[name.lower()] for name in wanted]


def _pick_channels(raw: mne.io.BaseRaw, rec: Recording, pre: Preprocessing) -> list[str]:
    """Keep ``pre.channels`` (in order, renamed to the config's spelling).

    Returns the reference channels kept only until re-referencing.
    """
    if pre.channels is None:
        return []
    chosen = _match(raw.ch_names, pre.channels, rec, "channels")
    ref_only: list[str] = []
    if isinstance(pre.reference, list):
        ref_names = _match(raw.ch_names, pre.reference, rec, "reference")
        ref_only = [name for name in ref_names if name not in chosen]
    raw.pick(chosen + ref_only)
    raw.rename_channels({old: new for old, new in zip(chosen, pre.channels, strict=True) if old != new})
    return ref_only


def _check_same_channels(raw: mne.io.BaseRaw, rec: Recording, reference: dict[str, Any]) -> None:
    """Every recording must hold the first one's EEG channels (reordered to its order)."""
    first = reference.setdefault("channels", (rec.path, list(raw.ch_names)))
    first_path, names = first
    if set(raw.ch_names) != set(names):
        extra = sorted(set(raw.ch_names) - set(names))
        missing = sorted(set(names) - set(raw.ch_names))
        raise WindowsError(
            f"{rec.path} has different EEG channels from {first_path}: extra {extra}, missing {missing}; "
            "set preprocessing.channels to the channels all recordings share"
        )
    if raw.ch_names != names:
        raw.reorder_channels(names)


def _check_finite(raw: mne.io.BaseRaw, rec: Recording) -> None:
    data = raw.get_data()
    if not np.isfinite(data).all():
        bad = [name for name, row in zip(raw.ch_names, data, strict=True) if not np.isfinite(row).all()]
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): NaN or Inf samples in channel(s) {bad}; "
            "interpolate or drop the bad segment/channel before running eegfm"
        )


def _check_rate(raw: mne.io.BaseRaw, rec: Recording, pre: Preprocessing, reference: dict[str, Any]) -> None:
    """Without resampling, all recordings must share one sampling rate."""
    first_path, rate = reference.setdefault("sfreq", (rec.path, raw.info["sfreq"]))
    if pre.sfreq is None and not np.isclose(raw.info["sfreq"], rate):
        raise WindowsError(
            f"{rec.path} is sampled at {raw.info['sfreq']:g} Hz but {first_path} at {rate:g} Hz; "
            "set preprocessing.sfreq to resample every recording to one rate"
        )


# ----------------------------------------------------------------------------- windowing


def _n_times(win: Windowing, raw: mne.io.BaseRaw) -> int:
    return int(round(win.length_s * raw.info["sfreq"]))


def _class_annotations(raw: mne.io.BaseRaw, rec: Recording, win: Windowing) -> dict[str, str]:
    """Map of annotation description -> label for the requested descriptions present.

    Raises when none of the requested descriptions occurs in the recording.
    """
    present = sorted(set(raw.annotations.description))
    if win.event_id is not None:
        requested = dict(win.event_id)
    else:
        requested = {d: d for d in present if not d.lower().startswith(_NON_CLASS_PREFIXES)}
    found = {d: label for d, label in requested.items() if d in present}
    if not found:
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): none of the requested events "
            f"{sorted(requested) if win.event_id is not None else '(any annotation)'} occurs; "
            f"its annotations are {present or 'none'}. Fix windows.event_id or remove the recording"
        )
    return found


def _cut(raw: mne.io.BaseRaw, rec: Recording, win: Windowing) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Windows (n, channels, n_times) and their metadata rows for one recording."""
    import mne

    classes = _class_annotations(raw, rec, win)
    sfreq, n_times = raw.info["sfreq"], _n_times(win, raw)
    if win.mode == "events":
        codes = {d: code for code, d in enumerate(sorted(classes), start=1)}
        events, _ = mne.events_from_annotations(raw, event_id=codes, verbose="error")
        labels = {code: classes[d] for d, code in codes.items()}
        tmin = win.tmin
    else:
        # Here events are window starts and their codes stand for labels directly.
        events, codes = _fixed_events(raw, classes, win, n_times)
        labels = {code: label for label, code in codes.items()}
        tmin = 0.0
        if not len(events):
            log.warning("%s: no window lies fully inside a labelled annotation", rec.path)
            return np.empty((0, len(raw.ch_names), n_times), np.float32), []
    # Snap tmin to the sample grid so MNE's rounding of tmin and of its inclusive tmax
    # cannot disagree (e.g. tmin = -0.5 samples gave n_times - 1); last sample = first + n_times - 1.
    first = int(np.floor(tmin * sfreq + 0.5))
    tmin = first / sfreq
    epochs = mne.Epochs(
        raw, events, event_id=codes, tmin=tmin, tmax=(first + n_times - 1) / sfreq,
        baseline=None, preload=True, reject_by_annotation=False, event_repeated="drop", on_missing="ignore",
        verbose="error",
    )  # fmt: skip
    _log_drops(rec, epochs, len(events))
    X = epochs.get_data(copy=False)[..., :n_times]
    if X.shape[-1] != n_times:  # pragma: no cover - guards MNE's rounding of tmin/tmax
        raise WindowsError(f"{rec.path}: epochs of {X.shape[-1]} samples, expected {n_times}")
    starts = (epochs.events[:, 0] - raw.first_samp) / sfreq + tmin
    rows = [
        {
            "subject": rec.subject,
            "session": rec.session,
            "run": rec.run,
            "label": labels[code],
            "onset_s": round(float(start), 6),
            "recording": rec.path,
        }
        for code, start in zip(epochs.events[:, 2], starts, strict=True)
    ]
    return X, rows


def _log_drops(rec: Recording, epochs, n_events: int) -> None:
    reasons = Counter(reason for log_entry in epochs.drop_log for reason in log_entry)
    if reasons:
        log.info(
            "%s: dropped %d of %d windows (%s); 'NO_DATA'/'TOO_SHORT' windows do not fit in the recording",
            rec.path, n_events - len(epochs), n_events, dict(reasons),
        )  # fmt: skip


def _annotation_spans(raw: mne.io.BaseRaw, classes: dict[str, str]) -> list[tuple[float, float, str]]:
    """(start, stop, description) in seconds from the first sample, for class annotations."""
    ann = raw.annotations
    # Annotations with an orig_time count from meas_date; the data start first_samp later.
    offset = raw.first_time if ann.orig_time is not None else 0.0
    return [
        (onset - offset, onset - offset + duration, desc)
        for onset, duration, desc in zip(ann.onset, ann.duration, ann.description, strict=True)
        if desc in classes
    ]


def _fixed_events(raw, classes: dict[str, str], win: Windowing, n_times: int) -> tuple[np.ndarray, dict[str, int]]:
    """Events at consecutive window starts whose whole window one label covers."""
    sfreq = raw.info["sfreq"]
    step = max(1, int(round((win.stride_s or win.length_s) * sfreq)))
    starts = np.arange(0, raw.n_times - n_times + 1, step)
    spans = _annotation_spans(raw, classes)
    codes = {label: code for code, label in enumerate(sorted(set(classes.values())), start=1)}
    events, unlabelled, ambiguous = [], 0, 0
    tol = 0.5 / sfreq  # annotation edges are rounded to samples
    for start in starts:
        t0, t1 = start / sfreq, (start + n_times) / sfreq
        covering = {classes[d] for a, b, d in spans if a <= t0 + tol and b >= t1 - tol}
        if len(covering) == 1:
            events.append([start + raw.first_samp, 0, codes[covering.pop()]])
        elif covering:
            ambiguous += 1
        else:
            unlabelled += 1
    if unlabelled or ambiguous:
        log.info(
            "fixed windows: dropped %d unlabelled and %d ambiguous (several labels) of %d",
            unlabelled, ambiguous, len(starts),
        )  # fmt: skip
    # In fixed mode the event "description" is the label itself.
    return np.array(events, dtype=int).reshape(-1, 3), codes


def _positions(raw: mne.io.BaseRaw) -> dict[str, list[float]] | None:
    """Channel positions (m, head frame): the recording's montage, else the 10-05 template."""
    import mne

    template: dict[str, np.ndarray] = {}
    info = mne.create_info(raw.ch_names, raw.info["sfreq"], "eeg")
    with_template = info.set_montage(FALLBACK_MONTAGE, match_case=False, on_missing="ignore", verbose="error")
    for ch in with_template["chs"]:
        template[ch["ch_name"]] = ch["loc"][:3]
    positions = {}
    for ch in raw.info["chs"]:
        own = ch["loc"][:3]
        chosen = own if _known(own) else template.get(ch["ch_name"])
        if chosen is not None and _known(chosen):
            positions[ch["ch_name"]] = [float(v) for v in chosen]
    missing = len(raw.ch_names) - len(positions)
    if missing:
        log.info("no position for %d of %d channels", missing, len(raw.ch_names))
    return positions or None


def _known(loc: np.ndarray) -> bool:
    return bool(np.isfinite(loc).all() and np.any(loc != 0))
