"""Sanity gates on the signal: NaN/Inf, flat channels or recordings, implausible amplitudes.

The amplitude of a channel is the median peak-to-peak of its window-long
segments (of its epochs, for epoched files), measured after the band-pass and
before re-referencing, so DC offsets do not count and a dead electrode is not
hidden by an average reference. A recording whose median channel amplitude
lies outside ``preprocessing.amplitude_range_uv`` (0.1 µV - 10 mV by default)
is almost always a units problem (volts read as microvolts, or twice scaled)
or a missing reference; a channel far below the others is dead or the
recording reference stored as zeros. ``preprocessing.signal_check`` decides
whether these stop the job (default) or are logged; either way the findings
are returned for windows.json.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.config import Preprocessing, SignalChecks
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)

#: Peak-to-peak (V) below which a channel carries no signal at all (a constant, after the band-pass).
FLAT_V = 1e-12
#: A channel below this share of the recording's median amplitude is flat (dead or the reference).
FLAT_FRACTION = 0.01

_FIX_WARN = "or set preprocessing.signal_check: warn to window it anyway"


def check_finite(inst: mne.io.BaseRaw | mne.BaseEpochs, rec: Recording) -> None:
    """Refuse NaN or Inf samples, naming the channels (one channel in memory at a time)."""
    bad = [name for i, name in enumerate(inst.ch_names) if not np.isfinite(inst.get_data(picks=[i])).all()]
    if bad:
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): NaN or Inf samples in channel(s) {bad}; "
            "interpolate or drop the bad segment/channel before running eegfm"
        )


def channel_amplitudes(inst: mne.io.BaseRaw | mne.BaseEpochs, segment_s: float) -> np.ndarray:
    """Median peak-to-peak (V) of each channel over its ``segment_s``-long segments (or its epochs)."""
    n = max(1, int(round(segment_s * inst.info["sfreq"])))
    amplitudes = np.empty(len(inst.ch_names))
    for i in range(len(inst.ch_names)):
        x = inst.get_data(picks=[i])
        if x.ndim == 3:  # epochs: one segment per epoch
            segments = x[:, 0, :]
        else:
            x = x[0]
            k = max(1, len(x) // n)
            segments = x[: k * n].reshape(k, -1) if len(x) >= n else x[None, :]
        amplitudes[i] = np.median(np.ptp(segments, axis=1))
    return amplitudes


#: How a workflow user fixes each finding (config keys of the dataset); the Python API passes its own.
WORKFLOW_FIXES = {
    "flat_recording": "remove the recording",
    "amplitude": "Check the file's physical units and fix its scaling, set preprocessing.reference (e.g. BioSemi BDF "
    "records against CMS) or preprocessing.l_freq (DC drift), or widen preprocessing.amplitude_range_uv if the "
    "amplitude is real",
    "flat_channels": "Leave them out with preprocessing.channels, drop them with preprocessing.channel_types "
    "(e.g. {{{channel}: misc}})",
}


def sanity_record(pre: Preprocessing | SignalChecks, recordings: list[dict[str, Any]]) -> dict[str, Any]:
    """``windows.json``'s ``sanity``: the gates applied and each recording's findings (:func:`check_signal`)."""
    return {"signal_check": pre.signal_check, "amplitude_range_uv": list(pre.amplitude_range_uv),
            "recordings": recordings}


def check_signal(
    inst: mne.io.BaseRaw | mne.BaseEpochs, rec: Recording, pre: Preprocessing, segment_s: float
) -> dict[str, Any]:
    """Measure the amplitudes of a recording and apply the gates of ``pre`` (error or warning).

    Returns
    -------
    dict
        ``{"recording", "subject", "median_ptp_uv", "problems"}``, as
        :func:`check_amplitudes`.

    Raises
    ------
    WindowsError
        With ``pre.signal_check == "error"``, when any gate fires.
    """
    found = check_amplitudes(channel_amplitudes(inst, segment_s), list(inst.ch_names),
                             f"{rec.path} (subject {rec.subject})", pre)
    return {"recording": rec.path, "subject": rec.subject, **found}


def check_amplitudes(
    amplitudes: np.ndarray,
    ch_names: list[str],
    where: str,
    pre: Preprocessing | SignalChecks,
    fixes: dict[str, str] = WORKFLOW_FIXES,
    fix_warn: str = _FIX_WARN,
) -> dict[str, Any]:
    """Apply the gates of ``pre`` to one recording's channel amplitudes (median peak-to-peak, V).

    Parameters
    ----------
    where
        Names the recording (and subject) in messages.
    fixes, fix_warn
        The fix each message names (``flat_recording``, ``amplitude``,
        ``flat_channels``), and how to go on anyway: config keys of the
        workflow by default.

    Returns
    -------
    dict
        ``{"median_ptp_uv", "problems": [{"kind", "channels", "message"}]}``
        with kinds ``flat_recording``, ``amplitude_high``, ``amplitude_low``
        and ``flat_channels``.

    Raises
    ------
    WindowsError
        With ``pre.signal_check == "error"``, when any gate fires; the message
        names the recording, the channels and the likely cause.
    """
    median = float(np.median(amplitudes))
    low, high = pre.amplitude_range_uv
    problems: list[dict[str, Any]] = []

    def found(kind: str, channels: list[str], message: str) -> None:
        problems.append({"kind": kind, "channels": channels, "message": f"{where}: {message}, {fix_warn}"})

    recording_flat = bool((amplitudes < FLAT_V).all())
    if recording_flat:
        found(
            "flat_recording",
            list(ch_names),
            f"every channel is flat (peak-to-peak below {FLAT_V:g} V): an empty or zero-filled recording "
            f"(amplifier off or disconnected, a failed export); {fixes['flat_recording']}",
        )
    elif median * 1e6 > high:
        found(
            "amplitude_high",
            [],
            f"the median peak-to-peak amplitude is {median * 1e6:.4g} µV, above {high:g} µV "
            "(preprocessing.amplitude_range_uv). Likely causes: wrong units (values in microvolts read as volts, "
            "a factor of 1e6), no reference or DC drift without a high-pass. "
            f"{fixes['amplitude']}",
        )
    elif median * 1e6 < low:
        found(
            "amplitude_low",
            [],
            f"the median peak-to-peak amplitude is {median * 1e6:.4g} µV, below {low:g} µV "
            "(preprocessing.amplitude_range_uv). Likely causes: wrong units (values in volts scaled to volts "
            "again, a factor of 1e-6) or channels recorded against themselves. "
            f"{fixes['amplitude']}",
        )
    limit = max(FLAT_V, FLAT_FRACTION * median)  # the absolute floor finds dead channels even when most are
    flat = [] if recording_flat else [n for n, amp in zip(ch_names, amplitudes, strict=True) if amp < limit]
    if flat:
        found(
            "flat_channels",
            flat,
            f"flat channel(s) {flat} (peak-to-peak below {FLAT_FRACTION:.0%} of the recording's median, "
            f"{median * 1e6:.4g} µV): a dead or disconnected electrode, or the recording reference stored as zeros. "
            + fixes["flat_channels"].format(channel=flat[0]),
        )
    for problem in problems:
        if pre.signal_check == "warn":
            log.warning("%s (preprocessing.signal_check: warn)", problem["message"])
    if problems and pre.signal_check == "error":
        raise WindowsError("; and ".join(p["message"] for p in problems))
    return {"median_ptp_uv": round(median * 1e6, 6), "problems": problems}
