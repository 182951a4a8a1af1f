"""Recordings -> labelled windows in a windows store (the windows rule).

For each recording, in order (steps in :mod:`eegfm.windowing`): read it
(:func:`eegfm.recordings.read_recording`, continuous or epoched), read its
events (annotations, a trigger channel, or the epochs' event names) while the
trigger channels are still there, preprocess it (channel types, pick, checks,
band-pass, signal gates, reference, resample), then cut windows of exactly
``round(length_s * sfreq)`` samples:

``events`` mode
    one window per labelled event at ``onset + tmin`` (one per epoch for
    epoched files);
``fixed`` mode
    consecutive windows every ``stride_s``, labelled by the span that covers
    the whole window (an annotation, a marker up to the next one or for
    ``marker_span`` seconds, or the whole recording under a recording-level
    label); unlabelled or ambiguous windows are dropped.

Labels are event names mapped through ``windows.event_id``, or the recording's
own label (``files.label_column``, ``bids.label_column``). For a regression
target (``target: regression``) every label must read as a finite number
(:mod:`eegfm.windowing.regression_targets`): recording-level values are
checked before any file is read, event-derived ones after windowing; the
labels stay raw strings in ``windows.tsv``.

Windows stream into :class:`eegfm.windows_store.WindowsStoreWriter` one
recording at a time (memory is one recording, not the dataset); on any error
the writer is aborted so no half-written store remains. After the last
recording, the whole dataset is checked: an ``event_id`` name found in no
recording, a cross-validation group (subject, or session/run) left without
windows, fewer than two classes (classification) or a target that is not
numeric or does not vary (regression) stop the job. ``windows.json`` records
the kind of target (``target``; for regression also ``target_summary``),
where labels came from (``label_source``), the channels dropped by type
(``channels_dropped``), recordings without windows (``empty_recordings``),
labelled windows dropped because two classes claim them, they do not fit in
their recording or they overlap a ``BAD`` annotation (``dropped_windows``) and
the signal checks (``sanity``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eegfm.config import Preprocessing, Windowing
from eegfm.recordings import Recording, read_recording
from eegfm.windowing import WindowsError
from eegfm.windowing.continuous import Dropped, cut_continuous, n_times
from eegfm.windowing.epoched import check_epoch_settings, cut_epochs, eeglab_epoch_onsets, epoch_names
from eegfm.windowing.events import read_markers, stim_channels, targets
from eegfm.windowing.positions import channel_positions
from eegfm.windowing.preprocess import Preprocessed, preprocess
from eegfm.windowing.regression_targets import check_recording_targets, checked_window_targets
from eegfm.windowing.signal_checks import sanity_record
from eegfm.windows_store import WindowsStoreWriter

log = logging.getLogger(__name__)

__all__ = ["WindowsError", "build_windows"]


@dataclass
class _Windowed:
    """One recording's windows and what making them found."""

    X: np.ndarray
    rows: list[dict[str, Any]]
    empty_reason: str | None
    event_names: Counter[str]
    label_source: str
    prep: Preprocessed
    dropped: list[Dropped] = field(default_factory=list)


def build_windows(
    recordings: list[Recording],
    pre: Preprocessing,
    win: Windowing,
    out_dir: str | Path,
    *,
    group_by: tuple[str, ...] = ("subject",),
    target: str = "classification",
    dataset: str | None = None,
) -> dict:
    """Preprocess recordings and write their labelled windows to a windows store.

    Parameters
    ----------
    recordings
        Recordings to window, in the order their windows are stored.
    pre
        Channel types and selection, band-pass, signal gates, reference and resampling.
    win
        Windowing mode, events, labels and window length.
    out_dir
        Folder of the windows store (``windows.zarr``, ``windows.tsv``,
        ``windows.json``).
    group_by
        The :class:`~eegfm.recordings.Recording` fields that make up the unit
        cross-validation holds out (``("subject",)``, or with ``"session"``,
        ``"run"``); every such group needs at least one window.
    target
        ``"classification"`` or ``"regression"`` (``datasets.<name>.target``).
    dataset
        The dataset's name, for messages.

    Returns
    -------
    dict
        The store summary (``windows.json``): key, shape, classes, counts,
        channel positions, the settings used, ``target`` (and for regression
        ``target_summary``), ``label_source``, ``channels_dropped``,
        ``empty_recordings``, ``dropped_windows`` and ``sanity``.

    Raises
    ------
    WindowsError
        Missing channels, NaN/Inf, a signal gate, mismatched sampling rates or
        channel sets, unreadable events, an ``event_id`` name found in no
        recording, a group without windows, fewer than two classes, or (regression)
        a label that is not a finite number or a target that does not vary.
    eegfm.recordings.RecordingError
        A recording that cannot be read.
    """
    if not recordings:
        raise WindowsError("no recordings to window; check the dataset's source settings")
    if target == "regression":
        check_recording_targets(recordings, dataset)  # before any file is read
    writer: WindowsStoreWriter | None = None
    reference: dict[str, Any] = {}  # channel names and rate of the first recording
    positions: dict[str, list[float]] | None = None
    found = _Findings()
    try:
        for rec in tqdm(recordings, desc="windows", unit="recording"):
            done = _window_one(rec, pre, win, reference)
            inst = done.prep.inst
            if writer is None:
                size = n_times(win, inst.info["sfreq"])
                writer = WindowsStoreWriter(out_dir, inst.ch_names, inst.info["sfreq"], size)
                positions = channel_positions(inst.info)
            if len(done.X):
                writer.append(done.X, done.rows)
            found.add(rec, done)
            del done, inst
        _check_overrides_used(pre, found.overridden)
        _check_event_id_used(win, found.event_names, len(recordings))
        _check_groups_have_windows(recordings, found.empty, group_by)
        _check_event_labels_windowed(recordings, found, win, target)
        extra = {"target": target}
        if target == "regression":
            extra["target_summary"] = checked_window_targets(found.by_recording, dataset)
        else:
            _check_classes(recordings, found)
        info = writer.close(
            positions=positions,
            settings={"preprocessing": pre.model_dump(), "windows": win.model_dump()},
            extra={**extra, **found.summary(pre)},
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    log.info(
        "windows store %s: %d windows, classes %s, key %s",
        out_dir, info["n_windows"], info["class_counts"], info["key"],
    )  # fmt: skip
    if found.dropped:
        log.info("channels dropped (not %s): %s", "/".join(pre.keep_types), found.dropped)
    return info


@dataclass
class _Findings:
    """What windowing found over the recordings: for the dataset-wide checks and windows.json."""

    labels: Counter[str] = field(default_factory=Counter)
    by_recording: dict[str, Counter[str]] = field(default_factory=dict)
    event_names: Counter[str] = field(default_factory=Counter)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    overridden: set[str] = field(default_factory=set)
    empty: list[dict[str, str]] = field(default_factory=list)
    dropped_windows: list[dict[str, Any]] = field(default_factory=list)
    signal: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, rec: Recording, done: _Windowed) -> None:
        counts = Counter(row["label"] for row in done.rows)
        log.info("%s: %d windows %s", rec.path, len(done.rows), dict(counts))
        if not done.rows:
            log.warning("%s (subject %s): no windows: %s", rec.path, rec.subject, done.empty_reason)
            self.empty.append({"recording": rec.path, "subject": rec.subject, "reason": done.empty_reason or ""})
        self.dropped_windows += [{"recording": rec.path, "subject": rec.subject, **d._asdict()} for d in done.dropped]
        self.labels.update(counts)
        self.by_recording.setdefault(rec.path, Counter()).update(counts)
        self.event_names.update(done.event_names)
        for kind, names in done.prep.channels.dropped.items():
            known = self.dropped.setdefault(kind, [])
            known += [name for name in names if name not in known]
        self.overridden |= done.prep.channels.overridden
        self.signal.append(done.prep.signal)
        if done.label_source not in self.sources:
            self.sources.append(done.label_source)

    def summary(self, pre: Preprocessing) -> dict[str, Any]:
        """The windows.json fields: label_source, channels_dropped, empty_recordings, dropped_windows, sanity."""
        return {
            "label_source": " + ".join(self.sources),
            "channels_dropped": self.dropped,
            "empty_recordings": self.empty,
            "dropped_windows": self.dropped_windows,
            "sanity": sanity_record(pre, self.signal),
        }


def _epoch_onsets(epochs, rec: Recording) -> np.ndarray:
    """Each epoch's time-locking event in the original recording (s), before resampling changes the rate."""
    sfreq = epochs.info["sfreq"]
    if rec.path.lower().endswith(".set"):
        original = eeglab_epoch_onsets(rec.path, len(epochs))
        if original is not None:
            return original
        log.warning("%s: the epochs' times in the original recording are unknown (no EEG.urevent); they are "
                       "placed end to end, so the time gap cannot see epochs that overlapped when recorded", rec.path)
        return np.arange(len(epochs)) * len(epochs.times) / sfreq - epochs.tmin
    return epochs.events[:, 0] / sfreq


def _window_one(rec: Recording, pre: Preprocessing, win: Windowing, reference: dict[str, Any]) -> _Windowed:
    """Read, preprocess and cut one recording."""
    import mne

    inst = read_recording(rec)
    if isinstance(inst, mne.BaseEpochs):
        check_epoch_settings(inst, rec, win)
        names = Counter(epoch_names(inst))
        onsets = _epoch_onsets(inst, rec)
        prep = preprocess(inst, rec, pre, reference, win.length_s)
        X, rows, reason = cut_epochs(prep.inst, rec, win, onsets)
        return _Windowed(X, rows, reason, names, rec.label_source or "epochs' event names", prep)
    end_s = inst.n_times / inst.info["sfreq"]
    needs_events = not (rec.label is not None and win.mode == "fixed" and win.event_id is None)
    markers = read_markers(inst, rec, win) if needs_events else []
    stims = stim_channels(inst)
    prep = preprocess(inst, rec, pre, reference, win.length_s)
    labelled = targets(markers, rec, win, end_s)
    X, rows, reason, dropped = cut_continuous(prep.inst, rec, win, labelled)
    names = Counter(m.name for m in markers)
    if reason is not None and not labelled:
        reason += f"; its events are {dict(sorted(names.items())) or 'none'}"
        if stims and win.stim_channel is None:
            reason += f" (trigger channels {stims}: see windows.stim_channel)"
    source = rec.label_source or (f"trigger channel '{win.stim_channel}'" if win.stim_channel else "annotations")
    return _Windowed(X, rows, reason, names, source, prep, dropped)


# ----------------------------------------------------------------------------- dataset-wide checks


def _check_classes(recordings: list[Recording], found: _Findings) -> None:
    if len(found.labels) >= 2:
        return
    where = (
        "the recording-level labels (files.label_column / bids.label_column)"
        if any(r.label is not None for r in recordings)
        else f"windows.event_id / windows.mode against the recordings' events {dict(sorted(found.event_names.items()))}"
    )
    raise WindowsError(
        f"the windows hold {len(found.labels)} class(es) {dict(found.labels)} over {len(recordings)} recordings; "
        f"a benchmark needs at least 2: check {where}"
    )


def _check_event_labels_windowed(recordings: list[Recording], found: _Findings, win: Windowing, target: str) -> None:
    """Every class (or target value) ``event_id`` asks for must label a window: events that yield none would
    silently shrink the task."""
    if win.event_id is None or any(r.label is not None for r in recordings):
        return
    lost = {label: sorted(n for n, lab in win.event_id.items() if lab == label)
            for label in sorted(set(win.event_id.values()) - set(found.labels))}
    if not lost:
        return
    events = {name: found.event_names[name] for names in lost.values() for name in names}
    how = ("in mode 'fixed' a window is labelled only when one event's span covers all of it, so events shorter "
           f"than windows.length_s ({win.length_s:g} s) label nothing" if win.mode == "fixed" else
           "in mode 'events' a window that does not fit in its recording (tmin, length_s) is dropped")
    what = "class(es)" if target == "classification" else "target value(s)"
    raise WindowsError(
        f"windows.event_id asks for {what} {lost} (label: event names), but no window carries them although the "
        f"recordings hold these events {events} (name: count): {how}. The benchmark would silently have "
        f"{len(found.labels)} {what} {sorted(found.labels)} instead of {len(set(win.event_id.values()))}. "
        "Shorten windows.length_s, use mode: events (or a fixed-mode marker_span), or remove them from "
        "windows.event_id to benchmark without them"
    )


def _check_overrides_used(pre: Preprocessing, overridden: set[str]) -> None:
    unused = [name for name in pre.channel_types if name.lower() not in overridden]
    if unused:
        raise WindowsError(
            f"preprocessing.channel_types names channel(s) {unused} that no recording has; fix the names "
            "(matched case-insensitively) or remove them"
        )


def _check_event_id_used(win: Windowing, event_names: Counter[str], n_recordings: int) -> None:
    """Every ``event_id`` name must occur somewhere: a typo would silently drop a class."""
    if win.event_id is None:
        return
    missing = [name for name in win.event_id if not event_names[name]]
    if missing:
        raise WindowsError(
            f"windows.event_id names {missing}, which occur in no recording; the {n_recordings} recording(s) hold "
            f"the events {dict(sorted(event_names.items())) or '(none)'} (name: count). Fix windows.event_id "
            "(trigger codes are names such as '1'; epoched EEGLAB files name epochs with several events 'a/b')"
        )


def _check_groups_have_windows(
    recordings: list[Recording], empty: list[dict[str, str]], group_by: tuple[str, ...]
) -> None:
    """A subject (or session/run group) without windows would silently leave cross-validation."""
    reasons = {e["recording"]: e["reason"] for e in empty}
    groups: dict[tuple, list[Recording]] = {}
    for rec in recordings:
        groups.setdefault(tuple(getattr(rec, field) for field in group_by), []).append(rec)
    lost = {key: recs for key, recs in groups.items() if all(r.path in reasons for r in recs)}
    if not lost:
        return
    lines = []
    for key, recs in lost.items():
        who = ", ".join(f"{field} {'(none)' if value is None else value}" for field, value in zip(group_by, key))
        files = "; ".join(f"{r.path} ({reasons[r.path]})" for r in recs)
        lines.append(f"{who}: {files}")
    raise WindowsError(
        f"{len(lost)} cross-validation group(s) (by {'/'.join(group_by)}) have no window at all, so they would "
        "silently drop out of the folds: " + " | ".join(lines) + ". Fix windows.length_s, tmin or event_id so these "
        "recordings yield windows (windows.reject_by_annotation: false keeps windows over BAD annotations), or remove them from the dataset (files.metadata / files.paths / bids.subjects)"
    )
