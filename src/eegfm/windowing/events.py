"""Events and labels of one recording: what is windowed, and what each window is called.

Events come from the recording's annotations, or from a trigger channel
(``windows.stim_channel``, read with :func:`mne.find_events`; a code is the
event name ``'1'``, ``'2'``...), or, for epoched files, from the epochs' event
names. ``windows.event_id`` maps event names to labels; without it every name
is its own label (MNE's ``bad``/``edge`` rejection annotations excepted; the
windows that ``bad`` ones overlap are dropped, :mod:`eegfm.windowing.rejection`).
An event name that ``event_id`` lists in another spelling (``RT`` for ``rt``)
is an error: ignored, it would silently remove that class for the recording.

A recording-level label (``files.label_column``, ``bids.label_column``)
replaces the event's label: the events then only say *where* windows are (in
``fixed`` mode without ``event_id``, the whole recording is one span).

In ``fixed`` mode each labelled event is a span (``onset`` .. ``onset +
duration``); a zero-duration marker spans up to the next labelled marker
(``windows.marker_span: next``) or a fixed length (``marker_span: <seconds>``),
and markers of one label in a row make one span.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from eegfm.config import Windowing
from eegfm.id_spellings import spelling_clashes
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError
from eegfm.windowing.channel_types import infer_type

if TYPE_CHECKING:  # pragma: no cover
    import mne

# Annotations MNE treats as rejection markers, never as classes.
NON_CLASS_PREFIXES = ("bad", "edge")


@dataclass(frozen=True)
class Marker:
    """One event: onset and duration in seconds from the first sample, and its name."""

    onset_s: float
    duration_s: float
    name: str


@dataclass(frozen=True)
class Target:
    """A labelled event: where a window (events mode) or a labelled span (fixed mode) is."""

    onset_s: float
    duration_s: float
    label: str


def read_markers(raw: mne.io.BaseRaw, rec: Recording, win: Windowing) -> list[Marker]:
    """Every event of a continuous recording: its annotations, or its trigger channel's codes.

    Raises
    ------
    WindowsError
        When ``windows.stim_channel`` is missing from the recording or holds
        no events, or when the recording has no annotations but a trigger
        channel and ``windows.stim_channel`` is unset.
    """
    if win.stim_channel is not None:
        return _trigger_markers(raw, rec, win.stim_channel)
    ann = raw.annotations
    if not len(ann):
        stims = stim_channels(raw)
        if stims:
            raise WindowsError(
                f"{rec.path} (subject {rec.subject}): no annotations, but trigger channel(s) {stims}; set "
                f"windows.stim_channel (e.g. '{stims[0]}') to read its events, and map their codes with "
                "windows.event_id (e.g. {'1': left, '2': right})"
            )
        return []
    return [
        Marker(float(onset), float(duration), str(desc))
        for onset, duration, desc in zip(annotation_onsets(raw), ann.duration, ann.description, strict=True)
    ]


def annotation_onsets(raw: mne.io.BaseRaw) -> np.ndarray:
    """Onsets of ``raw``'s annotations in seconds from its first sample.

    Annotation onsets count from meas_date (orig_time set) or from absolute
    sample 0 (orig_time None); either way the data start ``first_time``
    later, as in :func:`mne.events_from_annotations`.
    """
    return np.asarray(raw.annotations.onset, dtype=float) - raw.first_time


def stim_channels(inst: mne.io.BaseRaw | mne.BaseEpochs) -> list[str]:
    """Names of the channels MNE (or the name rules) type as triggers."""
    return [
        name
        for name, kind in zip(inst.ch_names, inst.get_channel_types(), strict=True)
        if kind == "stim" or (kind == "eeg" and infer_type(name) == "stim")
    ]


def _trigger_markers(raw: mne.io.BaseRaw, rec: Recording, channel: str) -> list[Marker]:
    import mne

    lookup = {name.lower(): name for name in raw.ch_names}
    if channel.lower() not in lookup:
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): windows.stim_channel '{channel}' is not a channel of the "
            f"recording; its trigger channels are {stim_channels(raw) or 'none'}. Fix windows.stim_channel"
        )
    name = lookup[channel.lower()]
    try:
        events = mne.find_events(raw, stim_channel=name, verbose="error")
    except ValueError as err:
        raise WindowsError(f"{rec.path}: cannot read events from trigger channel '{name}' ({err})") from err
    if not len(events):
        values = np.unique(raw.get_data(picks=[name]))
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): trigger channel '{name}' holds no events (mne.find_events found "
            f"none; its values are {values[:6].tolist()}{'...' if len(values) > 6 else ''}); choose another "
            f"windows.stim_channel among {stim_channels(raw)}, or annotate the events"
        )
    sfreq = raw.info["sfreq"]
    return [Marker((sample - raw.first_samp) / sfreq, 0.0, str(code)) for sample, _, code in events]


def class_map(present: Counter[str] | set[str], win: Windowing) -> dict[str, str]:
    """Event name -> label for the names present that ``windows.event_id`` asks for."""
    if win.event_id is not None:
        return {name: label for name, label in win.event_id.items() if name in present}
    return {name: name for name in sorted(present) if not name.lower().startswith(NON_CLASS_PREFIXES)}


def check_spellings(present: Counter[str], rec: Recording, win: Windowing) -> None:
    """Stop when the recording spells a ``windows.event_id`` name otherwise (``RT`` for ``rt``, ``'rt '``).

    Unlisted names are ignored, so one subject's files written with another
    case would silently lose that class (and the benchmark its trials) for
    that subject. Two spellings are one name by the rule ids are compared
    with everywhere (:func:`eegfm.id_spellings.spelling_clashes`: case,
    surrounding or repeated spaces and leading zeros ignored).

    Raises
    ------
    WindowsError
        Naming the file, the subject, both spellings and the ``event_id`` that maps both.
    """
    if win.event_id is None:
        return
    unlisted = [name for name in present if name not in win.event_id]
    clashes = []
    for group in spelling_clashes([*win.event_id, *unlisted]):
        listed = [name for name in group if name in win.event_id]
        other = [name for name in group if name not in win.event_id]
        if listed and other:
            clashes.append((listed, other))
    if not clashes:
        return
    found = "; ".join(", ".join(f"{n!r} ({present[n]}x)" for n in other) + " for windows.event_id's "
                      + " / ".join(map(repr, listed)) for listed, other in clashes)
    fix = {**{n: win.event_id[n] for listed, _ in clashes for n in listed},
           **{n: win.event_id[listed[0]] for listed, other in clashes for n in other}}
    raise WindowsError(
        f"{rec.path} (subject {rec.subject}): holds events {found}, the same name spelled otherwise; unlisted names "
        "are ignored, so they would silently label no window and this subject would lose their class. Add "
        f"the spelling to windows.event_id ({{{', '.join(f'{k!r}: {v!r}' for k, v in fix.items())}}}) or rename "
        "the events"
    )


def unlabelled_reason(win: Windowing) -> str:
    """Why a recording gives no labelled event, for empty-recording records."""
    if win.event_id is not None:
        return f"none of its events is listed in windows.event_id {sorted(win.event_id)}"
    return "it has no events (other than bad/edge annotations)"


def targets(markers: list[Marker], rec: Recording, win: Windowing, end_s: float) -> list[Target]:
    """The labelled events of a continuous recording, with ``fixed``-mode spans.

    Parameters
    ----------
    markers
        Every event of the recording (:func:`read_markers`).
    rec
        The recording; its ``label``, when set, labels every target.
    win
        ``event_id``, ``mode`` and ``marker_span``.
    end_s
        The recording's length in seconds (the span of ``marker_span: next``'s last marker).

    Raises
    ------
    WindowsError
        In ``fixed`` mode, zero-duration markers without ``windows.marker_span``.
    """
    if rec.label is not None and win.mode == "fixed" and win.event_id is None:
        return [Target(0.0, end_s, rec.label)]  # a recording-level label covers the whole recording
    check_spellings(Counter(m.name for m in markers), rec, win)
    classes = class_map({m.name for m in markers}, win)
    chosen = sorted((m for m in markers if m.name in classes), key=lambda m: m.onset_s)
    labelled = [Target(m.onset_s, m.duration_s, rec.label or classes[m.name]) for m in chosen]
    if win.mode == "fixed":
        labelled = _spans(labelled, chosen, rec, win, end_s)
    return labelled


def _spans(labelled: list[Target], markers: list[Marker], rec: Recording, win: Windowing, end_s: float) -> list[Target]:
    """Zero-duration markers as spans, per ``windows.marker_span``."""
    zero = sorted({m.name for m in markers if m.duration_s <= 0})
    if not zero:
        return labelled
    if win.marker_span is None:
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): mode 'fixed' labels windows by the events that cover them, but "
            f"{zero} are markers without a duration, which cover nothing. Set windows.marker_span: next (each "
            "marker labels the signal up to the next one) or a length in seconds, use mode: events, or leave "
            "them out of windows.event_id"
        )
    onsets = np.array([t.onset_s for t in labelled])
    spans = []
    for t in labelled:
        if t.duration_s > 0:
            spans.append(t)
            continue
        if win.marker_span == "next":
            later = onsets[onsets > t.onset_s]
            stop = float(later[0]) if len(later) else end_s
        else:
            stop = t.onset_s + float(win.marker_span)
        spans.append(Target(t.onset_s, stop - t.onset_s, t.label))
    return _merge_repeats(spans)


def _merge_repeats(spans: list[Target]) -> list[Target]:
    """Consecutive spans of one label that touch or overlap, as one span.

    A marker repeated before another label's (``1 1 2``) says the signal is
    still the same class; without merging, a window across the repeated
    marker would lie in no single span and be lost.
    """
    merged: list[Target] = []
    for t in spans:
        last = merged[-1] if merged else None
        if last is not None and last.label == t.label and t.onset_s <= last.onset_s + last.duration_s + 1e-9:
            end = max(last.onset_s + last.duration_s, t.onset_s + t.duration_s)
            merged[-1] = Target(last.onset_s, end - last.onset_s, last.label)
        else:
            merged.append(t)
    return merged
