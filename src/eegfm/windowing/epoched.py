"""Windows from an epoched recording (EEGLAB epochs, FIF ``-epo.fif``): one per epoch.

Each epoch's label is its event name (mapped through ``windows.event_id``) or
the recording-level label. The window runs from ``windows.tmin`` to ``tmin +
length_s`` relative to the epoch's event (time 0 of the epoch); a window that
does not fit inside the epochs is an error naming the file and both spans.
``onset_s`` is the event's sample in the file divided by the rate, plus
``tmin`` (EEGLAB epochs holding several events keep the first event's
latency, as MNE reads them).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.config import Windowing
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError
from eegfm.windowing.continuous import n_times
from eegfm.windowing.events import class_map, unlabelled_reason

if TYPE_CHECKING:  # pragma: no cover
    import mne


def epoch_names(epochs: mne.BaseEpochs) -> list[str]:
    """The event name of each epoch (MNE joins several EEGLAB event types with '/')."""
    names = {code: name for name, code in epochs.event_id.items()}
    return [names[code] for code in epochs.events[:, 2]]


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
