"""MNE preprocessing of one recording, continuous (Raw) or epoched (Epochs) alike.

In order: channel types (:mod:`~eegfm.windowing.channel_types`), the channel
pick of ``preprocessing.channels``, the same-channels and sampling-rate checks
across recordings, NaN/Inf, band-pass, the signal gates
(:mod:`~eegfm.windowing.signal_checks`), re-reference and resampling.

Epoched files are filtered epoch by epoch: a band-pass whose filter is longer
than an epoch distorts its edges (the filter runs into the padding), so a
warning names the filter and epoch lengths; band-pass before epoching where
possible, or set ``preprocessing.l_freq: null`` for epochs that are filtered
already.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from eegfm.config import Preprocessing
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError
from eegfm.windowing.channel_types import ChannelSelection, kept_label, select_channel_types
from eegfm.windowing.signal_checks import check_finite, check_signal

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preprocessed:
    """A preprocessed recording and what preprocessing found.

    Attributes
    ----------
    inst
        The recording (``Raw`` or ``Epochs``), changed in place.
    channels
        Channel types: the dropped channels and the overrides that applied.
    signal
        The signal-check record (:func:`~eegfm.windowing.signal_checks.check_signal`).
    """

    inst: Any
    channels: ChannelSelection
    signal: dict[str, Any]


def preprocess(
    inst: mne.io.BaseRaw | mne.BaseEpochs,
    rec: Recording,
    pre: Preprocessing,
    reference: dict[str, Any],
    segment_s: float,
) -> Preprocessed:
    """Apply ``pre`` to one recording in place.

    Parameters
    ----------
    inst
        The recording as read (:func:`eegfm.recordings.read_recording`).
    rec
        Its entry, for messages.
    pre
        Channel types and pick, band-pass, gates, reference, resampling.
    reference
        Channel names and rate of the first recording, filled on first use
        and shared across the recordings of one dataset.
    segment_s
        Segment length of the amplitude measure (the window length).

    Raises
    ------
    WindowsError
        Missing channels, NaN/Inf, mismatched rates or channel sets, a band
        the rate cannot hold, or a signal gate with ``signal_check: error``.
    """
    selection = select_channel_types(inst, rec, pre)
    ref_extra = _pick_channels(inst, rec, pre, selection)
    if inst.info["bads"]:
        # Kept so every recording has the same channels; an average reference leaves them out.
        log.warning("%s: channels marked bad are kept as recorded: %s", rec.path, inst.info["bads"])
    if pre.channels is None:
        _check_same_channels(inst, rec, reference)
    check_finite(inst, rec)
    _check_rate(inst, rec, pre, reference)
    if pre.l_freq is not None or pre.h_freq is not None:
        _band_pass(inst, rec, pre)
    signal = check_signal(inst, rec, pre, segment_s)
    if pre.reference == "average":
        # Over the kept channels only, so every recording is referenced alike.
        inst.set_eeg_reference("average", projection=False, verbose="error")
    elif pre.reference is not None:
        names = _match(inst.ch_names, pre.reference, rec, "reference", pre, selection)
        inst.set_eeg_reference(names, projection=False, verbose="error")
        inst.drop_channels(ref_extra)  # reference channels outside preprocessing.channels
    if pre.sfreq is not None and not np.isclose(inst.info["sfreq"], pre.sfreq):
        inst.resample(pre.sfreq, verbose="error")
    return Preprocessed(inst=inst, channels=selection, signal=signal)


def _band_pass(inst, rec: Recording, pre: Preprocessing) -> None:
    import mne

    sfreq = inst.info["sfreq"]
    try:
        if isinstance(inst, mne.BaseEpochs):
            taps = mne.filter.create_filter(None, sfreq, pre.l_freq, pre.h_freq, verbose="error")
            epoch_s = len(inst.times) / sfreq
            if len(taps) / sfreq > epoch_s:
                log.warning(
                    "%s: the %.3g-%s Hz band-pass filter is %.3g s long but the epochs only %.3g s, so it "
                    "distorts their edges (edge effects); band-pass before epoching, raise preprocessing.l_freq, "
                    "or set it null for epochs filtered already",
                    rec.path, pre.l_freq or 0, pre.h_freq, len(taps) / sfreq, epoch_s,
                )  # fmt: skip
        inst.filter(pre.l_freq, pre.h_freq, verbose="error")
    except ValueError as err:
        raise WindowsError(
            f"{rec.path}: cannot band-pass {pre.l_freq}-{pre.h_freq} Hz at {sfreq:g} Hz ({err}); "
            "adjust preprocessing.l_freq/h_freq (h_freq must be below half the recording's rate)"
        ) from err


def _match(
    available: list[str], wanted: list[str], rec: Recording, key: str, pre: Preprocessing, selection: ChannelSelection
) -> list[str]:
    """Names in ``available`` matching ``wanted`` case-insensitively, in ``wanted``'s order."""
    lookup = {name.lower(): name for name in available}
    missing = [name for name in wanted if name.lower() not in lookup]
    if missing:
        lower = {m.lower() for m in missing}
        typed = {kind: [n for n in names if n.lower() in lower] for kind, names in selection.dropped.items()}
        typed = {kind: names for kind, names in typed.items() if names}
        other = (
            f" ({typed} are there but typed as other channels: keep those types with preprocessing.keep_types "
            "or retype the channels with preprocessing.channel_types)"
            if typed
            else ""
        )
        raise WindowsError(
            f"{rec.path} (subject {rec.subject}): preprocessing.{key} lists channel(s) {missing} that the recording "
            f"lacks; its {kept_label(pre)} channels are {available}{other}. Fix preprocessing.{key} or drop this "
            "recording"
        )
    return [lookup[name.lower()] for name in wanted]


def _pick_channels(inst, rec: Recording, pre: Preprocessing, selection: ChannelSelection) -> list[str]:
    """Keep ``pre.channels`` (in order, renamed to the config's spelling).

    Returns the reference channels kept only until re-referencing.
    """
    if pre.channels is None:
        return []
    chosen = _match(inst.ch_names, pre.channels, rec, "channels", pre, selection)
    ref_only: list[str] = []
    if isinstance(pre.reference, list):
        ref_names = _match(inst.ch_names, pre.reference, rec, "reference", pre, selection)
        ref_only = [name for name in ref_names if name not in chosen]
    inst.pick(chosen + ref_only)
    inst.rename_channels({old: new for old, new in zip(chosen, pre.channels, strict=True) if old != new})
    return ref_only


def _check_same_channels(inst, rec: Recording, reference: dict[str, Any]) -> None:
    """Every recording must hold the first one's channels (reordered to its order)."""
    first = reference.setdefault("channels", (rec.path, list(inst.ch_names)))
    first_path, names = first
    if set(inst.ch_names) != set(names):
        extra = sorted(set(inst.ch_names) - set(names))
        missing = sorted(set(names) - set(inst.ch_names))
        raise WindowsError(
            f"{rec.path} has different EEG channels from {first_path}: extra {extra}, missing {missing}; "
            "set preprocessing.channels to the channels all recordings share"
        )
    if inst.ch_names != names:
        inst.reorder_channels(names)


def _check_rate(inst, rec: Recording, pre: Preprocessing, reference: dict[str, Any]) -> None:
    """Without resampling, all recordings must share one sampling rate."""
    first_path, rate = reference.setdefault("sfreq", (rec.path, inst.info["sfreq"]))
    if pre.sfreq is None and not np.isclose(inst.info["sfreq"], rate):
        raise WindowsError(
            f"{rec.path} is sampled at {inst.info['sfreq']:g} Hz but {first_path} at {rate:g} Hz; "
            "set preprocessing.sfreq to resample every recording to one rate"
        )
