"""Windows from an epoched recording (EEGLAB epochs, FIF ``-epo.fif``): one per epoch.

Each epoch's label is its event name (mapped through ``windows.event_id``) or
the recording-level label. The window runs from ``windows.tmin`` to ``tmin +
length_s`` relative to the epoch's event (time 0 of the epoch); a window that
does not fit inside the epochs is an error naming the file and both spans.
``onset_s`` is the time-locking event's time in the original recording plus
``tmin``, so windows of overlapping epochs are as close as they were
recorded and the time gap between folds sees them (:mod:`eegfm.groups`). A
FIF file keeps that time as its events' samples. An EEGLAB file keeps it
in ``EEG.urevent`` (MNE's events hold the latency of an epoch's *first*
event, in the epochs laid end to end): :func:`eeglab_epoch_onsets` reads it
there, and where it cannot (no ``urevent``, an HDF5 ``.set``), the epochs'
place end to end is used, which is still in time order.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.config import Windowing
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError
from eegfm.windowing.continuous import n_times
from eegfm.windowing.events import check_spellings, class_map, unlabelled_reason

if TYPE_CHECKING:  # pragma: no cover
    import mne


def epoch_names(epochs: mne.BaseEpochs) -> list[str]:
    """The event name of each epoch (MNE joins several EEGLAB event types with '/')."""
    names = {code: name for name, code in epochs.event_id.items()}
    return [names[code] for code in epochs.events[:, 2]]


def eeglab_epoch_onsets(path: str, n_epochs: int) -> np.ndarray | None:
    """Each epoch's time-locking event in the original recording (s), from an EEGLAB ``.set``; None if unknown.

    The time-locking event of epoch ``i`` is the one at epoch time 0
    (latency ``i * pnts + 1 - xmin * srate``, 1-based, in the epochs laid
    end to end); its ``urevent`` indexes ``EEG.urevent``, whose latency is
    in the continuous recording the epochs were cut from.
    """
    import scipy.io

    try:
        data = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except (NotImplementedError, ValueError, OSError, scipy.io.matlab.MatReadError):  # v7.3 (HDF5), unreadable
        return None
    eeg = data.get("EEG")

    def field(name: str):
        return getattr(eeg, name, None) if eeg is not None else data.get(name)

    events, urevents = field("event"), field("urevent")
    pnts, xmin, srate = field("pnts"), field("xmin"), field("srate")
    if events is None or urevents is None or pnts is None or xmin is None or not srate:
        return None
    events, urevents = np.atleast_1d(events), np.atleast_1d(urevents)
    zero = 1 - float(xmin) * float(srate)  # epoch time 0, 1-based sample within an epoch
    onsets = np.full(n_epochs, np.nan)
    for event in events:
        epoch, latency, ur = (getattr(event, k, None) for k in ("epoch", "latency", "urevent"))
        if not all(isinstance(v, int | float | np.number) for v in (epoch, latency, ur)):
            continue
        i = int(epoch) - 1
        if 0 <= i < n_epochs and np.isnan(onsets[i]) and abs(latency - i * float(pnts) - zero) < 0.5 \
                and 1 <= int(ur) <= len(urevents):
            original = getattr(urevents[int(ur) - 1], "latency", None)
            if isinstance(original, int | float | np.number):
                onsets[i] = (float(original) - 1) / float(srate)
    return None if np.isnan(onsets).any() else onsets


def check_epoch_settings(epochs: mne.BaseEpochs, rec: Recording, win: Windowing) -> None:
    """Settings that only make sense for continuous recordings are errors for epoched ones."""
    if win.mode != "events":
        raise WindowsError(
            f"{rec.path} holds {len(epochs)} epochs: it gives one window per epoch, so it needs windows.mode: "
            "events (windows.tmin and length_s place the window in each epoch)"
        )
    if win.stim_channel is not None:
        raise WindowsError(
            f"{rec.path} holds {len(epochs)} epochs, whose events come with the file; windows.stim_channel applies "
            "to continuous recordings only: unset it, or list the epoched files in another dataset"
        )


def cut_epochs(
    epochs: mne.BaseEpochs, rec: Recording, win: Windowing, onsets_s: np.ndarray
) -> tuple[np.ndarray, list[dict[str, Any]], str | None]:
    """Windows (n, channels, n_times), their rows, and why there are none (or ``None``).

    Parameters
    ----------
    epochs
        The preprocessed epochs.
    rec, win
        The recording (its ``label``, when set, labels every window) and the window settings.
    onsets_s
        Each epoch's event time in seconds in the file, measured before resampling.
    """
    sfreq = epochs.info["sfreq"]
    size = n_times(win, sfreq)
    first = int(np.floor((win.tmin - epochs.tmin) * sfreq + 0.5))
    if first < 0 or first + size > len(epochs.times):
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): the window {win.tmin:g} to {win.tmin + win.length_s:g} s "
            f"(windows.tmin .. tmin + length_s) does not fit in its epochs, which span {epochs.tmin:g} to "
            f"{epochs.tmax + 1 / sfreq:.4g} s around their events; choose windows.tmin and length_s inside that span"
        )
    names = epoch_names(epochs)
    if rec.label is not None and win.event_id is None:
        chosen = [(i, rec.label) for i in range(len(names))]
    else:
        check_spellings(Counter(names), rec, win)  # as for continuous recordings: 'Square/RT' is not silently lost
        classes = class_map(Counter(names), win)
        chosen = [(i, rec.label or classes[name]) for i, name in enumerate(names) if name in classes]
    index = [i for i, _ in chosen]
    X = (
        epochs.get_data(item=index, copy=False)[:, :, first : first + size]
        if index
        else np.empty((0, len(epochs.ch_names), size))
    )
    rows = [
        {
            "subject": rec.subject,
            "session": rec.session,
            "run": rec.run,
            "label": label,
            "onset_s": round(float(onsets_s[i]) + first / sfreq + epochs.tmin, 6),
            "recording": rec.path,
        }
        for i, label in chosen
    ]
    reason = None if rows else unlabelled_reason(win)
    return X, rows, reason
