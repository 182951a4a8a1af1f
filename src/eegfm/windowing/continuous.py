"""Windows of exactly ``round(length_s * sfreq)`` samples from a continuous recording.

``events`` mode
    one window per labelled event at ``onset + tmin``; windows that do not
    fit in the recording are dropped and counted.
``fixed`` mode
    consecutive windows every ``stride_s`` from the first sample, labelled by
    the span (annotation, marker span or recording-level label) that covers
    the whole window; unlabelled or ambiguous windows are dropped and counted.

In both modes a labelled window that overlaps a rejection annotation
(``BAD_*``, ``BAD boundary``) is dropped and counted, as ``mne.Epochs`` drops
it (:mod:`eegfm.windowing.rejection`; ``windows.reject_by_annotation``).

Samples are sliced straight from the preprocessed data; an event's sample is
its onset rounded to the sample grid, and ``tmin`` is snapped to the grid, so
every window has exactly ``n_times`` samples.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from eegfm.config import Windowing
from eegfm.recordings import Recording
from eegfm.windowing.events import Target, unlabelled_reason
from eegfm.windowing.rejection import overlapping

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)


def n_times(win: Windowing, sfreq: float) -> int:
    """Samples per window."""
    return int(round(win.length_s * sfreq))


#: Why a labelled window was dropped (the ``reason`` of :class:`Dropped`).
AMBIGUOUS_EVENTS = "events of different classes at one sample"
AMBIGUOUS_SPANS = "overlapping spans of different classes cover it"
OUTSIDE = "does not fit in the recording"
#: The start of the reason of windows rejected by annotation; the annotations' descriptions follow.
REJECTED = "overlaps rejection annotation(s)"


class Dropped(NamedTuple):
    """``n`` labelled windows of a recording dropped for one ``reason``: the first at ``first_s`` (event or
    window time), and the labels involved (the conflicting classes, or the classes of the windows lost)."""

    reason: str
    n: int
    first_s: float
    labels: list[str]


class Cut(NamedTuple):
    """One recording's windows (n, channels, n_times), their rows, why there are none, and what was dropped."""

    X: np.ndarray
    rows: list[dict[str, Any]]
    empty_reason: str | None
    dropped: list[Dropped]


def cut_continuous(raw: mne.io.BaseRaw, rec: Recording, win: Windowing, labelled: list[Target]) -> Cut:
    """Windows (n, channels, n_times), their metadata rows, why there are none (or ``None``), and the
    labelled windows dropped (two classes claim them, they do not fit in the recording, or they overlap a
    rejection annotation)."""
    sfreq, size = raw.info["sfreq"], n_times(win, raw.info["sfreq"])
    dropped: list[Dropped] = []
    if not labelled:
        kept, reason = [], unlabelled_reason(win)
    elif win.mode == "events":
        kept, reason, dropped = _event_starts(raw, rec, win, labelled, size)
    else:
        kept, reason, dropped = _fixed_starts(raw, rec, win, labelled, size)
    X = np.empty((len(kept), len(raw.ch_names), size), dtype=np.float32)
    for i, (start, _) in enumerate(kept):  # one window in float64 at a time
        X[i] = raw.get_data(start=start, stop=start + size)
    rows = [
        {
            "subject": rec.subject,
            "session": rec.session,
            "run": rec.run,
            "label": label,
            "onset_s": round(start / sfreq, 6),
            "recording": rec.path,
        }
        for start, label in kept
    ]
    return Cut(X, rows, reason, dropped)


def _event_starts(
    raw: mne.io.BaseRaw, rec: Recording, win: Windowing, events: list[Target], size: int
) -> tuple[list[tuple[int, str]], str | None, list[Dropped]]:
    """Window starts at each event + tmin that fit in the recording."""
    sfreq = raw.info["sfreq"]
    # Snap tmin to the sample grid: an event at sample e gives samples e + first .. e + first + size - 1.
    first = int(np.floor(win.tmin * sfreq + 0.5))
    labels_at: dict[int, list[str]] = {}
    for t in events:
        labels_at.setdefault(int(round(t.onset_s * sfreq)) + first, []).append(t.label)
    # Events of one class at one sample are one window; events of different classes at one sample make an
    # ambiguous window, dropped as fixed windows drop theirs (keeping the first would pick a label by file order).
    by_sample: dict[int, str] = {}
    conflicts: dict[int, list[str]] = {}
    for start, labels in labels_at.items():
        distinct = sorted(set(labels))
        if len(distinct) == 1:
            by_sample[start] = distinct[0]
        else:
            conflicts[start] = distinct
    dropped = []
    if conflicts:
        start, labels = min(conflicts.items())
        dropped.append(Dropped(AMBIGUOUS_EVENTS, len(conflicts), round((start - first) / sfreq, 6), labels))
        log.warning(
            "%s (subject %s): dropped %d event window(s) whose events of different classes share a sample (first at "
            "%.3f s: %s); check windows.event_id or the events of this recording",
            rec.path, rec.subject, len(conflicts), dropped[-1].first_s, labels,
        )  # fmt: skip
    repeated = sum(len(labels) for labels in labels_at.values()) - len(labels_at)
    if repeated:
        log.info("%s: %d event(s) repeat another event at the same sample; one window each", rec.path, repeated)
    fits = {start: 0 <= start and start + size <= raw.n_times for start in by_sample}
    kept, rejected = _reject(raw, rec, win, [(start, label) for start, label in by_sample.items() if fits[start]],
                             size, first)
    outside = sorted((start, label) for start, label in by_sample.items() if not fits[start])
    if outside:
        # an edge event (tmin < 0 at the start, the last trial at the end) is common: logged, and recorded so a
        # truncated recording that lost most of its trials shows in windows.json and the report
        dropped.append(Dropped(OUTSIDE, len(outside), round((outside[0][0] - first) / sfreq, 6),
                               sorted({label for _, label in outside})))
        log.info(
            "%s: dropped %d of %d event windows that do not fit in the recording (%.3g s)",
            rec.path, len(outside), len(by_sample), raw.n_times / sfreq,
        )  # fmt: skip
    dropped += rejected
    if kept:
        reason = None
    elif not by_sample and conflicts:
        reason = f"each of its {len(conflicts)} event windows has events of different classes at one sample"
    elif rejected:
        reason = f"each of its event windows that fit in the recording {rejected[0].reason}"
    else:
        reason = (f"none of its {len(by_sample)} event windows ({win.tmin:g} to {win.tmin + win.length_s:g} s around "
                  f"the event) fits in the recording ({raw.n_times / sfreq:.3g} s)")
    return kept, reason, dropped


def _fixed_starts(
    raw: mne.io.BaseRaw, rec: Recording, win: Windowing, spans: list[Target], size: int
) -> tuple[list[tuple[int, str]], str | None, list[Dropped]]:
    """Window starts on the stride grid whose whole window one label covers."""
    sfreq = raw.info["sfreq"]
    if raw.n_times < size:
        return [], f"shorter than one window ({raw.n_times / sfreq:.3g} s < windows.length_s {win.length_s:g} s)", []
    step = max(1, int(round((win.stride_s or win.length_s) * sfreq)))
    starts = np.arange(0, raw.n_times - size + 1, step)
    tol = 0.5 / sfreq  # span edges are rounded to samples
    kept, unlabelled, claimed = [], 0, []
    for start in starts:
        t0, t1 = start / sfreq, (start + size) / sfreq
        covering = {t.label for t in spans if t.onset_s <= t0 + tol and t.onset_s + t.duration_s >= t1 - tol}
        if len(covering) == 1:
            kept.append((int(start), covering.pop()))
        elif covering:
            claimed.append((int(start), sorted(covering)))
        else:
            unlabelled += 1  # a gap between spans: not part of the task, as in any annotated recording
    if unlabelled:
        log.info("%s: fixed windows: %d of %d lie in no labelled span", rec.path, unlabelled, len(starts))
    # only labelled windows count as rejected: a window in a gap between spans was never part of the task
    kept, rejected = _reject(raw, rec, win, kept, size, 0)
    dropped = list(rejected)
    if claimed:
        dropped.append(Dropped(AMBIGUOUS_SPANS, len(claimed), round(claimed[0][0] / sfreq, 6), claimed[0][1]))
        log.warning(
            "%s (subject %s): dropped %d fixed window(s) that overlapping spans of different classes both cover "
            "(first at %.3f s: %s); check windows.event_id or the annotations of this recording",
            rec.path, rec.subject, len(claimed), dropped[-1].first_s, claimed[0][1],
        )  # fmt: skip
    if kept:
        reason = None
    elif rejected:
        reason = f"each of its labelled windows {rejected[0].reason}"
    else:
        reason = (f"no window lies fully inside one labelled span ({unlabelled} of {len(starts)} windows "
                  f"unlabelled, {len(claimed)} ambiguous)")
    return kept, reason, dropped


def _reject(
    raw: mne.io.BaseRaw, rec: Recording, win: Windowing, kept: list[tuple[int, str]], size: int, shift: int
) -> tuple[list[tuple[int, str]], list[Dropped]]:
    """The windows of ``kept`` (start sample, label) that overlap no rejection annotation, and a record of the
    others (as ``mne.Epochs(reject_by_annotation=True)`` drops them); ``shift`` is the window start minus the
    event sample (events mode), so ``first_s`` is an event time as for the other reasons."""
    if not win.reject_by_annotation or not kept:
        return kept, []
    hits = overlapping(raw, [start for start, _ in kept], size)
    rejected = sorted((start, label) for (start, label), names in zip(kept, hits, strict=True) if names)
    if not rejected:
        return kept, []
    names = sorted({name for found in hits for name in found})
    record = Dropped(f"{REJECTED} {names} (windows.reject_by_annotation)", len(rejected),
                     round((rejected[0][0] - shift) / raw.info["sfreq"], 6), sorted({label for _, label in rejected}))
    # counted per recording, as MNE logs its rejected epochs; windows.json and the report list it too
    log.info(
        "%s (subject %s): dropped %d of %d labelled window(s) that overlap rejection annotation(s) %s (first at "
        "%.3f s); set windows.reject_by_annotation: false to keep them",
        rec.path, rec.subject, len(rejected), len(kept), names, record.first_s,
    )  # fmt: skip
    return [k for k, found in zip(kept, hits, strict=True) if not found], [record]
