"""Channel positions (metres, head frame) of a recording or of channel names.

One rule for the windows job and the Python API, so that the same signal gets
the same positions, and so the same embedding key, through both
(``docs/architecture.md`` §2.1): a channel's own position when the recording
carries one, else the 10-05 template's for the names it knows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)

#: Montage used for channel positions the recordings do not carry themselves
#: (MNE 1.13's name for 'standard_1005'; same positions).
FALLBACK_MONTAGE = "colin27_1005"


def channel_positions(info: mne.Info) -> dict[str, list[float]] | None:
    """Positions by channel name: each channel's own (``info['chs'][i]['loc']``), else the template's.

    Channels with neither are left out and named in the log: a channel
    without a position may be a mistyped non-EEG channel
    (:mod:`eegfm.windowing.channel_types`). ``None`` when no channel has one.
    """
    from mne.io.constants import FIFF

    template = _template(info.ch_names, info["sfreq"])
    positions = {}
    for ch in info["chs"]:
        own = ch["loc"][:3]  # EEG electrodes are in the head frame; anything else (a MEG sensor) is not a scalp site
        kept = _known(own) and ch["coord_frame"] == FIFF.FIFFV_COORD_HEAD
        chosen = own if kept else template.get(ch["ch_name"])
        if chosen is not None and _known(chosen):
            positions[ch["ch_name"]] = [float(v) for v in chosen]
    missing = [name for name in info.ch_names if name not in positions]
    if missing:
        log.info("no position for %d of %d channels: %s (a non-EEG channel typed as EEG? the workflow retypes "
                 "it with preprocessing.channel_types; in the Python API, drop it from X or pass positions)",
                 len(missing), len(info.ch_names), ", ".join(missing[:10]))
    return positions or None


def template_positions(ch_names: Sequence[str]) -> dict[str, list[float]] | None:
    """The 10-05 template's positions for the names it knows (windows that carry no positions)."""
    import mne

    return channel_positions(mne.create_info(list(ch_names), 100.0, "eeg"))


def _template(ch_names: list[str], sfreq: float) -> dict[str, np.ndarray]:
    import mne

    info = mne.create_info(ch_names, sfreq, "eeg")
    info.set_montage(FALLBACK_MONTAGE, match_case=False, on_missing="ignore", verbose="error")
    return {ch["ch_name"]: ch["loc"][:3] for ch in info["chs"]}


def _known(loc: np.ndarray) -> bool:
    return bool(np.isfinite(loc).all() and np.any(loc != 0))
