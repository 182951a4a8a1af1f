"""Channel types: by default only EEG channels enter the windows and the backbones.

Many EDF/BDF writers type every channel as EEG, so an EEG-typed channel whose
name says otherwise (``EOG1``, ``EMGright``, ``ECG``, ``acc1``, ``Status``,
``Ergo-Left``...) takes the type its name implies (:func:`infer_type`).
``preprocessing.channel_types`` overrides both the file's types and the
inference; ``preprocessing.keep_types`` says which types stay. The channels
dropped are returned by type, so that the windows store can record them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eegfm.config import Preprocessing
from eegfm.recordings import Recording
from eegfm.windowing import WindowsError

if TYPE_CHECKING:  # pragma: no cover
    import mne

log = logging.getLogger(__name__)

#: (type, pattern) matched against each lower-case token of a channel name
#: ('EEG LOC-A2' -> 'eeg', 'loc', 'a2'); the first type with a matching token wins.
#: No 10-20/10-05 electrode name matches any of them.
NAME_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("stim", re.compile(r"(status|trigger|trig\d*|sti\d*|stim\d*|events?|markers?)")),
    ("eog", re.compile(r"([hv]?eog\w*|[lr]oc)")),
    ("emg", re.compile(r"(emg\w*|chin\d*)")),
    ("ecg", re.compile(r"(ecg|ekg)\w*")),
    ("resp", re.compile(r"(resp\w*|thor\w*|abdo?\w*|airflow|nasal\w*)")),
    ("gsr", re.compile(r"(gsr|eda)\w*")),
    ("temperature", re.compile(r"temp\d*")),
    ("misc", re.compile(r"(acc|accel|gyro|ergo|spo2|sao2|pleth|pulse|hr|photic|mic)\w*")),
)


@dataclass(frozen=True)
class ChannelSelection:
    """What :func:`select_channel_types` did to one recording.

    Attributes
    ----------
    dropped
        Names of the channels left out, by type (``{"eog": ["EOG1", "EOG2"]}``).
    overridden
        The ``preprocessing.channel_types`` keys (lower case) that named a
        channel of this recording.
    """

    dropped: dict[str, list[str]]
    overridden: frozenset[str]


def infer_type(name: str) -> str | None:
    """The non-EEG type a channel name implies (``'EOG1'`` -> ``'eog'``), else ``None``."""
    for token in re.split(r"[^a-z0-9]+", name.lower()):
        for kind, pattern in NAME_RULES:
            if token and pattern.fullmatch(token):
                return kind
    return None


def select_channel_types(inst: mne.io.BaseRaw | mne.BaseEpochs, rec: Recording, pre: Preprocessing) -> ChannelSelection:
    """Retype channels (overrides, then names of EEG-typed channels) and keep ``pre.keep_types``, in place.

    Raises
    ------
    WindowsError
        When no channel of the kept types remains; the message lists the
        recording's types and the keys that change them.
    """
    overrides = {name.lower(): kind for name, kind in pre.channel_types.items()}
    current = dict(zip(inst.ch_names, inst.get_channel_types(), strict=True))
    retyped: dict[str, str] = {}
    for name, kind in current.items():
        wanted = overrides.get(name.lower()) or (infer_type(name) if kind == "eeg" else None)
        if wanted is not None and wanted != kind:
            retyped[name] = wanted
    if retyped:
        inst.set_channel_types(retyped, on_unit_change="ignore", verbose="error")
        inferred = {n: t for n, t in retyped.items() if n.lower() not in overrides}
        if inferred:
            log.info("%s: channel types taken from the names of EEG-typed channels: %s", rec.path, inferred)
    types = dict(zip(inst.ch_names, inst.get_channel_types(), strict=True))
    kept = [name for name, kind in types.items() if kind in pre.keep_types]
    dropped: dict[str, list[str]] = {}
    for name, kind in types.items():
        if kind not in pre.keep_types:
            dropped.setdefault(kind, []).append(name)
    if not kept:
        raise WindowsError(
            f"{rec.path}: no {kept_label(pre)} channels (channel types: {sorted(set(types.values()))}); mark the "
            "EEG channels as 'eeg' (preprocessing.channel_types, a BIDS channels.tsv, or a re-export with channel "
            "types) or keep other types with preprocessing.keep_types"
        )
    if dropped:
        n_dropped = sum(map(len, dropped.values()))
        log.info("%s: dropped %d non-%s channel(s): %s", rec.path, n_dropped, kept_label(pre), dropped)
    inst.pick(kept)
    matched = frozenset(name.lower() for name in current if name.lower() in overrides)
    return ChannelSelection(dropped=dropped, overridden=matched)


def kept_label(pre: Preprocessing) -> str:
    """The kept types for messages, e.g. ``'EEG'`` or ``'EEG/EOG'``."""
    return "/".join(t.upper() for t in pre.keep_types)
