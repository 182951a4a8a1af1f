"""Channel names, standard vocabularies, and the matrix that maps recorded channels to a model's.

Everything here is linear algebra on channel *names*: a recording's channels
are cleaned up to canonical 10-05 spellings (:func:`clean_name`), matched
against what a backbone expects (a fixed vocabulary, a vocabulary it takes any
subset of, or a bipolar montage) and turned into one (C_out x C_in) matrix
(:func:`map_channels`). Missing channels are zero-filled, interpolated with
MNE's spherical splines (:func:`interpolation_matrix`) or left to a trainable
projection (:class:`eegfm.backbones.projection.ChannelProjection`), as the
config asks.

Importing this module is cheap: MNE is imported inside the functions that need
it, and nothing here imports torch.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

MissingPolicy = Literal["error", "zero", "interpolate", "project"]
MISSING_POLICIES: tuple[str, ...] = ("error", "zero", "interpolate", "project")

#: MNE template of channel names and positions (MNE 1.13's name for
#: 'standard_1005'; the windows store uses the same one for missing positions).
STANDARD_MONTAGE = "colin27_1005"

#: Old 10-20 names -> their 10-10 names (same electrode sites).
ALIASES_1020: dict[str, str] = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

#: The 19 channels of the international 10-20 system, in the usual order.
CHANNELS_1020: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
    "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2",
)  # fmt: skip

#: The 16-derivation longitudinal bipolar ("double banana") montage, in the order
#: BIOT's pretrained weights expect: the TUAB/TUEV preprocessing of BIOT and
#: its README (https://github.com/ycq091044/BIOT, "EEG-PREST-16-channels").
DOUBLE_BANANA: tuple[tuple[str, str], ...] = (
    ("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"),
    ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"), ("P8", "O2"),
    ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
)  # fmt: skip

#: BIOT's 18-channel checkpoints: :data:`DOUBLE_BANANA` plus SHHS's C3-A2, C4-A1.
BIOT_18: tuple[tuple[str, str], ...] = DOUBLE_BANANA + (("C3", "A2"), ("C4", "A1"))

#: The TUH EEG corpus' 22-channel temporal central parasagittal (TCP) montage.
TCP_22: tuple[tuple[str, str], ...] = (
    ("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"),
    ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"), ("P8", "O2"),
    ("A1", "T7"), ("T7", "C3"), ("C3", "Cz"), ("Cz", "C4"), ("C4", "T8"), ("T8", "A2"),
    ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
)  # fmt: skip

# "EEG Fp1" / "EEG:Fp1" / "EEG_Fp1" (EDF, TUH, BrainVision exports); a separator is required.
_PREFIX = re.compile(r"^(?:EEG|EXG)[\s:_-]+", re.IGNORECASE)
# "Fp1-REF" (TUH average reference), "Fp1-LE" (linked ears), "Fp1-AVG"/"-AR"/"-CAR".
_REF_SUFFIX = re.compile(r"[\s_-]+(?:REF|LE|AR|AVG|AV|CAR)$", re.IGNORECASE)
# "Fc5." (PhysioNet EEGMMIDB pads names with dots), stray spaces, underscores, stars.
_PUNCT = re.compile(r"^[\s.:_*-]+|[\s.:_*-]+$")


class ChannelError(ValueError):
    """Channels that cannot be mapped as asked; the message names them."""


class InterpolationError(ChannelError):
    """Missing channels that cannot be interpolated (no position, too few positioned sources)."""


class MissingChannelsError(ChannelError):
    """The backbone needs channels the recording lacks (policy ``'error'``).

    Attributes
    ----------
    missing
        Canonical names of the missing channels (electrodes for a montage).
    available
        Canonical names of the recording's channels.
    needed_for
        For a bipolar montage, the derivations each missing electrode is part of.
    """

    def __init__(self, missing: list[str], available: list[str], needed_for: dict[str, list[str]] | None = None):
        self.missing, self.available, self.needed_for = missing, available, needed_for or {}
        super().__init__(f"missing channels: {', '.join(missing)}")


# ----------------------------------------------------------------------------- names


@functools.cache
def standard_names() -> tuple[str, ...]:
    """Canonical spellings of the 10-05 channel names (MNE's :data:`STANDARD_MONTAGE`)."""
    import mne

    return tuple(mne.channels.make_standard_montage(STANDARD_MONTAGE).ch_names)


@functools.cache
def _canonical_by_upper() -> dict[str, str]:
    table = {name.upper(): name for name in standard_names()}
    table.update({old.upper(): new for old, new in ALIASES_1020.items()})  # T3 -> T7, ...
    return table


def _lookup(name: str) -> str | None:
    return _canonical_by_upper().get(name.upper())


def _strip(name: str) -> str:
    name = _PUNCT.sub("", _PREFIX.sub("", name.strip()))
    return _PUNCT.sub("", _REF_SUFFIX.sub("", name))


def clean_name(name: str) -> str:
    """Canonical 10-05 spelling of a recorded channel name, or the name unchanged.

    Case is ignored; ``EEG`` prefixes, reference suffixes (``-REF``, ``-LE``,
    ``-AVG``, ``-AR``, ``-CAR``) and surrounding punctuation are stripped;
    the old 10-20 names become their 10-10 names (:data:`ALIASES_1020`). A
    bipolar name whose two ends are known is cleaned end by end. Names that
    are not 10-05 channels after cleanup are returned unchanged (stripped of
    surrounding whitespace), never mangled.

    Examples
    --------
    >>> [clean_name(n) for n in ("Fc5.", "EEG T3-REF", "fp1", "EEG FP1-F7", "EOG left")]
    ['FC5', 'T7', 'Fp1', 'Fp1-F7', 'EOG left']
    """
    stripped = _strip(name)
    canonical = _lookup(stripped)
    if canonical:
        return canonical
    ends = stripped.split("-")
    if len(ends) == 2 and all(_lookup(_strip(end)) for end in ends):
        return bipolar_name(*(_lookup(_strip(end)) for end in ends))
    return name.strip()


def bipolar_name(anode: str, cathode: str) -> str:
    """Name of the derivation ``anode - cathode``, e.g. ``'Fp1-F7'``."""
    return f"{anode}-{cathode}"


def canonical_names(
    ch_names: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Clean up a recording's channel names.

    Parameters
    ----------
    ch_names
        Channel names as recorded.
    aliases
        User renames ``{recorded: new}`` applied before cleanup (matched exactly,
        else case-insensitively); the new name is cleaned up in turn.

    Returns
    -------
    names : list of str
        Canonical names, in the recording's order.
    renamed : dict
        ``{recorded: canonical}`` for every name that changed.

    Raises
    ------
    ChannelError
        If two recorded channels end up with the same name.
    """
    by_upper = {k.upper(): v for k, v in (aliases or {}).items()}
    names, renamed, seen = [], {}, {}
    for raw in ch_names:
        target = (aliases or {}).get(raw, by_upper.get(raw.upper(), raw))
        name = clean_name(target)
        if name in seen:
            raise ChannelError(
                f"channels '{seen[name]}' and '{raw}' both mean '{name}'; rename one with backbones[].channel_aliases"
            )
        seen[name] = raw
        names.append(name)
        if name != raw:
            renamed[raw] = name
    return names, renamed


# ----------------------------------------------------------------------------- positions


@functools.cache
def _template_positions() -> dict[str, tuple[float, float, float]]:
    import mne

    names = list(standard_names())
    info = mne.create_info(names, 100.0, "eeg")
    info.set_montage(STANDARD_MONTAGE, verbose="error")  # head frame, metres (as the windows store)
    # Rounded to a nanometre: the transform to the head frame differs in the last bits between
    # CPUs (BLAS kernels), and these positions enter the model and its fingerprint, so a
    # cache key would differ between two machines running the same config.
    return {ch["ch_name"]: tuple(round(float(v), 9) for v in ch["loc"][:3]) for ch in info["chs"]}


def template_position(name: str) -> list[float] | None:
    """Head-frame position (m) of a canonical channel name in :data:`STANDARD_MONTAGE`, else ``None``."""
    canonical = _lookup(name)
    pos = _template_positions().get(canonical) if canonical else None
    return list(pos) if pos is not None else None


def interpolation_matrix(
    source_positions: Mapping[str, Sequence[float]], target_positions: Mapping[str, Sequence[float]]
) -> np.ndarray:
    """Spherical-spline weights from source to target channels, computed by MNE.

    The weights come from :meth:`mne.io.Raw.interpolate_bads` itself, applied
    to an identity basis: the sources carry the identity matrix (one "sample"
    per source channel), the targets are marked bad and interpolated, and the
    interpolated rows are the weights. Interpolation is linear in the data, so
    ``W @ x`` equals what ``interpolate_bads`` gives on ``x``.

    Parameters
    ----------
    source_positions, target_positions
        ``{name: [x, y, z]}`` in metres, head frame; names must not overlap.

    Returns
    -------
    np.ndarray
        (n_targets, n_sources) float64, rows in ``target_positions`` order.
    """
    import mne

    sources, targets = list(source_positions), list(target_positions)
    names = sources + targets
    info = mne.create_info(names, 1.0, "eeg")
    ch_pos = {n: np.asarray(p, dtype=float) for n, p in {**source_positions, **target_positions}.items()}
    info.set_montage(mne.channels.make_dig_montage(ch_pos=ch_pos, coord_frame="head"), verbose="error")
    basis = np.zeros((len(names), len(sources)))
    basis[: len(sources)] = np.eye(len(sources))
    raw = mne.io.RawArray(basis, info, verbose="error")
    raw.info["bads"] = targets
    raw.interpolate_bads(reset_bads=True, origin="auto", verbose="error")
    return raw.get_data(picks=targets)


# ----------------------------------------------------------------------------- mapping


@dataclass(frozen=True, eq=False)
class ChannelMapping:
    """How a recording's channels become a model's input channels.

    Attributes
    ----------
    names_in
        Canonical names of the recorded channels (columns of ``matrix``).
    names_out
        The model's input channels, in order (rows of ``matrix``).
    matrix
        (C_out, C_in) float64, read-only: model input = ``matrix @ recording``.
    mapped
        Model channels fed one-to-one from a recorded channel.
    bipolar
        Derivations computed as ``anode - cathode`` from recorded (or
        interpolated) electrodes.
    interpolated
        Channels (electrodes, for a montage) interpolated by spherical splines.
    zero_filled
        Model channels fed zeros (policy ``'zero'``).
    projected
        Model channels with no source whose rows start at zero in a trainable
        projection (policy ``'project'``).
    dropped
        Recorded channels the model input does not use (all-zero columns).
    projection
        ``None``, or the initialisation of the trainable projection
        (``'identity'`` or ``'bipolar'``) under policy ``'project'``.
    interpolation
        ``None``, or how interpolation weights were computed (method, MNE
        version, sha256 of the weights rounded to 1e-9).
    """

    names_in: tuple[str, ...]
    names_out: tuple[str, ...]
    matrix: np.ndarray = field(repr=False)
    mapped: tuple[str, ...] = ()
    bipolar: tuple[str, ...] = ()
    interpolated: tuple[str, ...] = ()
    zero_filled: tuple[str, ...] = ()
    projected: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    projection: str | None = None
    interpolation: dict[str, str] | None = None

    @functools.cached_property
    def is_identity(self) -> bool:
        """Whether the model gets the recorded channels unchanged, in recorded order."""
        m = self.matrix
        return m.shape[0] == m.shape[1] and bool(np.array_equal(m, np.eye(len(m))))


def map_channels(
    names_in: Sequence[str],
    positions: Mapping[str, Sequence[float]] | None = None,
    *,
    vocabulary: Sequence[str] | None = None,
    subset: bool = False,
    montage: Sequence[tuple[str, str]] | None = None,
    missing: MissingPolicy = "error",
) -> ChannelMapping:
    """Map recorded channels onto what a model expects.

    Parameters
    ----------
    names_in
        Canonical recorded channel names (see :func:`canonical_names`).
    positions
        ``{name: [x, y, z]}`` (m, head frame) of recorded channels, used as
        interpolation sources; channels without one fall back to the
        :data:`STANDARD_MONTAGE` template. Targets always use the template.
    vocabulary
        The model's channels in order. ``None`` with no ``montage``: the
        recorded channels pass through unchanged.
    subset
        With ``vocabulary``: the model takes any non-empty subset of it
        (fed in vocabulary order), so nothing is ever missing.
    montage
        Bipolar derivations ``(anode, cathode)`` the model expects; a
        recorded channel already named ``'anode-cathode'`` is used as is.
    missing
        Policy for channels the model needs but the recording lacks:
        ``'error'``, ``'zero'``, ``'interpolate'`` or ``'project'``.

    Returns
    -------
    ChannelMapping

    Raises
    ------
    MissingChannelsError
        Channels are missing and ``missing='error'``.
    InterpolationError
        Channels to interpolate without a known position, or fewer than 3
        recorded channels with one.
    ChannelError
        No recorded channel is in a ``subset`` vocabulary.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"unknown missing-channel policy '{missing}'; allowed: {', '.join(MISSING_POLICIES)}")
    if vocabulary is not None and montage is not None:
        raise ValueError("give a channel vocabulary or a bipolar montage, not both")
    names_in = list(names_in)
    if montage is not None:
        return _map_montage(names_in, positions, montage, missing)
    if vocabulary is None:
        return _finish(names_in, names_in, np.eye(len(names_in)), mapped=names_in)
    if subset:
        out = [v for v in vocabulary if v in names_in]
        if not out:
            raise ChannelError(f"none of the recorded channels ({', '.join(names_in)}) is in the model's vocabulary")
        return _finish(names_in, out, _selection(names_in, out), mapped=out)
    return _map_vocabulary(names_in, positions, list(vocabulary), missing)


def _selection(names_in: list[str], names: list[str]) -> np.ndarray:
    rows = np.zeros((len(names), len(names_in)))
    for r, name in enumerate(names):
        rows[r, names_in.index(name)] = 1.0
    return rows


def _map_vocabulary(names_in, positions, vocabulary, missing) -> ChannelMapping:
    present = [v for v in vocabulary if v in names_in]
    absent = [v for v in vocabulary if v not in names_in]
    if absent and missing == "error":
        raise MissingChannelsError(absent, names_in)
    rows, interpolation = _electrode_rows(names_in, vocabulary, positions, interpolate=missing == "interpolate")
    return _finish(
        names_in, vocabulary, np.stack([rows[v] for v in vocabulary]), mapped=present,
        interpolation=interpolation, projection="identity" if missing == "project" else None,
        **_missing_fields(absent, missing),
    )  # fmt: skip


def _map_montage(names_in, positions, montage, missing) -> ChannelMapping:
    out = [bipolar_name(a, c) for a, c in montage]
    direct = [name for name in out if name in names_in]  # already-derived channels are used as is
    derived = [(a, c) for (a, c), name in zip(montage, out, strict=True) if name not in direct]
    needed = list(dict.fromkeys(e for pair in derived for e in pair))
    absent = [e for e in needed if e not in names_in]
    if absent and missing == "error":
        needed_for = {e: [bipolar_name(a, c) for a, c in derived if e in (a, c)] for e in absent}
        raise MissingChannelsError(absent, names_in, needed_for)
    interpolate = missing == "interpolate"
    electrodes, interpolation = _electrode_rows(names_in, needed, positions, interpolate=interpolate)
    rows, incomplete, computed = {}, [], []
    for (a, c), name in zip(montage, out, strict=True):
        if name in direct:
            rows[name] = _selection(names_in, [name])[0]
        elif not interpolate and (a in absent or c in absent):
            rows[name] = np.zeros(len(names_in))  # never a referential signal posing as a derivation
            incomplete.append(name)
        else:
            rows[name] = electrodes[a] - electrodes[c]
            computed.append(name)
    return _finish(
        names_in, out, np.stack([rows[n] for n in out]), mapped=direct, bipolar=computed,
        interpolated=absent if interpolate else [], interpolation=interpolation,
        projection="bipolar" if missing == "project" else None,
        **({} if interpolate else _missing_fields(incomplete, missing)),
    )  # fmt: skip


def _missing_fields(absent: list[str], missing: str) -> dict[str, Any]:
    key = {"zero": "zero_filled", "interpolate": "interpolated", "project": "projected"}.get(missing)
    return {key: absent} if key and absent else {}


def _electrode_rows(names_in, electrodes, positions, *, interpolate: bool) -> tuple[dict[str, Any], dict | None]:
    """Row of each electrode over the recorded channels: one-hot, spline weights or zeros."""
    rows = {e: _selection(names_in, [e])[0] for e in electrodes if e in names_in}
    absent = [e for e in electrodes if e not in names_in]
    if not (absent and interpolate):
        return {**rows, **{e: np.zeros(len(names_in)) for e in absent}}, None
    weights, interpolation = _interpolate(names_in, positions, absent)
    return {**rows, **{e: weights[i] for i, e in enumerate(absent)}}, interpolation


def _interpolate(names_in, positions, targets) -> tuple[np.ndarray, dict[str, str]]:
    import mne

    unknown = [t for t in targets if template_position(t) is None]
    if unknown:
        raise InterpolationError(
            f"cannot interpolate {', '.join(unknown)}: no position known for "
            f"{'it' if len(unknown) == 1 else 'them'} (not 10-05 names in MNE's {STANDARD_MONTAGE} template)"
        )
    source_pos = {}
    for name in names_in:
        pos = (positions or {}).get(name) or template_position(name)
        if pos is not None and np.all(np.isfinite(pos)):
            source_pos[name] = pos
    if len(source_pos) < 3:
        raise InterpolationError(
            f"cannot interpolate {', '.join(targets)}: only {len(source_pos)} recorded channel(s) have a known "
            "position (need at least 3)"
        )
    w = interpolation_matrix(source_pos, {t: template_position(t) for t in targets})
    full = np.zeros((len(targets), len(names_in)))
    full[:, [names_in.index(n) for n in source_pos]] = w
    digest = hashlib.sha256((np.round(full, 9) + 0.0).astype("<f8").tobytes()).hexdigest()
    return full, {
        "method": "spherical spline (mne interpolate_bads)",
        "mne": mne.__version__,
        "weights_sha256": digest[:16],
    }


def _finish(names_in, names_out, matrix, **fields) -> ChannelMapping:
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    matrix.setflags(write=False)
    used = np.any(matrix != 0, axis=0)
    dropped = [n for n, u in zip(names_in, used, strict=True) if not u]
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items()}
    return ChannelMapping(tuple(names_in), tuple(names_out), matrix, dropped=tuple(dropped), **fields)
