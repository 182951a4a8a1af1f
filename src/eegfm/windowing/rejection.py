"""Windows that overlap a rejection annotation, dropped as :class:`mne.Epochs` drops them.

MNE marks signal not to analyse with annotations whose description starts
with ``bad`` (case-insensitive): ``BAD_movement`` set by hand or by
``mne.preprocessing.annotate_*``, and the zero-duration ``BAD boundary`` that
:func:`mne.concatenate_raws` puts at each splice. ``mne.Epochs`` drops an
epoch that overlaps one (``reject_by_annotation=True``, its default); the
windows job does the same under ``windows.reject_by_annotation: true`` (the
default), so a window of movement noise or across a splice never reaches a
backbone. ``EDGE boundary`` only limits filtering, as in MNE, and does not
reject.

The overlap rule is MNE's (``BaseRaw._check_bad_segment``): a window of
samples ``start .. stop - 1`` (from the first sample) overlaps an annotation
when ``onset < stop / sfreq`` and ``onset + duration > start / sfreq``, so a
window that merely touches one (starts where it ends, or ends where it
starts) is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from eegfm.windowing.events import annotation_onsets

if TYPE_CHECKING:  # pragma: no cover
    import mne

#: Annotations whose description starts with this (case-insensitive) reject the windows they overlap.
REJECT_PREFIX = "bad"


def bad_spans(raw: mne.io.BaseRaw) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Onsets (s from the first sample), ends (s) and descriptions of the rejection annotations of ``raw``."""
    ann = raw.annotations
    bad = [i for i, desc in enumerate(ann.description) if str(desc).lower().startswith(REJECT_PREFIX)]
    onsets = annotation_onsets(raw)[bad]
    ends = onsets + np.asarray(ann.duration, dtype=float)[bad]
    return onsets, ends, [str(ann.description[i]) for i in bad]


def overlapping(raw: mne.io.BaseRaw, starts: list[int], size: int) -> list[list[str]]:
    """For each window start (samples from the first sample), the rejection annotations the window overlaps.

    Parameters
    ----------
    raw
        The (preprocessed) recording whose annotations are read.
    starts
        First sample of each window.
    size
        Samples per window.

    Returns
    -------
    list of list of str
        One list per start, in order: the descriptions it overlaps (empty: the window is kept).
    """
    onsets, ends, names = bad_spans(raw)
    if not names:
        return [[] for _ in starts]
    sfreq = raw.info["sfreq"]
    out = []
    for start in starts:
        hit = (onsets < (start + size) / sfreq) & (ends > start / sfreq)
        out.append(sorted({names[i] for i in np.flatnonzero(hit)}))
    return out
