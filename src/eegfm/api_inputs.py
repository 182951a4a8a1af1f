"""What :meth:`eegfm.api.Experiment.run` accepts: the arrays and the metadata table, checked and normalised.

A notebook hands over whatever it holds (a float64 or int16 array, a memmap,
a torch tensor, a list; a DataFrame whose ids are numbers or categories).
Each function here turns one argument into the windows store's form or stops
with a message naming the argument, the rows or channels at fault and the
fix, before anything is written. Nothing is dropped or guessed silently: a
column that looks like a misspelled known one, or a metadata index that was
reordered apart from ``X``, is an error (README: From Python).
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from eegfm.id_spellings import CLASH_RULE, spelling_clashes

logger = logging.getLogger(__name__)

#: Metadata columns the API reads (``subject`` and ``label`` are required).
METADATA_COLUMNS = ("subject", "session", "run", "label", "onset_s", "recording")
#: Units ``X`` may come in, and their factor to volts (the windows store's unit).
UNITS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6}


def _rows(positions: np.ndarray) -> str:
    """The first few positions of a boolean mask or index array, for a message."""
    idx = np.flatnonzero(positions) if positions.dtype == bool else np.asarray(positions)
    shown = ", ".join(str(int(i)) for i in idx[:5])
    return f"{shown}, ..." if len(idx) > 5 else shown


def checked_signal(X: Any, units: str) -> np.ndarray:
    """``X`` as a C-ordered float32 array in volts, shape (windows, channels, samples), every value finite.

    Accepts anything :func:`numpy.asarray` reads (a memmap, a list), torch
    tensors (detached and moved to the CPU first) and ``mne.Epochs``.
    """
    if units not in UNITS:
        raise ValueError(f"units '{units}' unknown; use one of {', '.join(UNITS)}")
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # a torch tensor (requires_grad, or on a GPU)
        X = X.detach().cpu().numpy()
    if type(X).__module__.startswith("mne."):
        X = _from_mne(X, units)
    try:
        X = np.asarray(X)
    except ValueError as err:  # a list of windows of different lengths or channel counts
        raise ValueError(f"X's windows differ in shape ({err}); cut every window to the same channels and "
                         "samples") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}. Pass a numeric array "
                         "(windows, channels, samples)")
    if X.ndim != 3:
        raise ValueError(f"X must be (windows, channels, samples); got shape {X.shape}. One recording "
                         "(channels, samples) is X[None]; cut continuous data into windows first")
    if 0 in X.shape:
        raise ValueError(f"X has shape {X.shape}: no windows, channels or samples to decode")
    if X.shape[2] < 2:  # the flat-signal check would call it a dead recording
        raise ValueError(f"X has shape {X.shape}: one sample per window; the last axis is time (windows, channels, "
                         "samples)")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes Inf, named below
        X = np.ascontiguousarray(X * UNITS[units], dtype=np.float32)  # the content key hashes these bytes
    finite = np.isfinite(X).all(axis=(1, 2))
    if not finite.all():
        channels = np.flatnonzero(~np.isfinite(X[~finite]).all(axis=(0, 2)))
        raise ValueError(
            f"X holds NaN or Inf (or values beyond float32 in {units}) in {int((~finite).sum())} window(s) "
            f"(windows {_rows(~finite)}; channels at positions {_rows(channels)}); interpolate the channel or "
            "drop those windows from X and their rows from metadata")
    return X


def _from_mne(X: Any, units: str) -> np.ndarray:
    """An ``mne.Epochs`` object's data in volts; a continuous recording is named (it has no windows yet)."""
    import mne

    if isinstance(X, mne.BaseEpochs):
        if units != "V":
            raise ValueError(f"X is {type(X).__name__}, whose data are volts; leave units='V' (given '{units}')")
        return X.get_data(units="V")
    raise ValueError(f"X is {type(X).__name__}, not windows; cut a recording into windows first, e.g. "
                     "mne.make_fixed_length_epochs(raw, duration=...), and pass the epochs (or epochs.get_data(), "
                     "volts) with sfreq=epochs.info['sfreq'], ch_names=epochs.ch_names")


def epochs_positions(X: Any, sfreq: float, ch_names: Any, positions: Any) -> Any:
    """For ``mne.Epochs``, the positions its info carries (unless ``positions`` are given), after checking
    that ``sfreq`` and ``ch_names`` are the epochs' own; any other ``X``: ``positions`` unchanged."""
    import mne

    from eegfm.windowing.positions import channel_positions

    if not isinstance(X, mne.BaseEpochs):
        return positions
    if isinstance(sfreq, Real) and not np.isclose(float(sfreq), X.info["sfreq"]):
        raise ValueError(f"sfreq={float(sfreq):g} but the epochs are sampled at {X.info['sfreq']:g} Hz; pass "
                         "sfreq=epochs.info['sfreq']")
    # other types of sfreq and ch_names are named by checked_sfreq and checked_channels
    if isinstance(ch_names, Sequence | np.ndarray) and not isinstance(ch_names, str) and \
            list(ch_names) != list(X.ch_names):
        raise ValueError(f"ch_names {list(ch_names)[:4]}... are not the epochs' channels {X.ch_names[:4]}... in "
                         "their order; pass ch_names=epochs.ch_names")
    # The workflow's windows job takes a recording's own positions (a digitised montage); so does this, so the
    # same signal gets the same positions and the same embedding key either way.
    return positions if positions is not None else channel_positions(X.info)


def checked_channels(ch_names: Any, n_channels: int, n_samples: int | None = None) -> list[str]:
    """``ch_names`` as a list of unique, non-empty strings, one per channel of ``X`` (whose last axis has
    ``n_samples``: when that matches the names instead, ``X`` is transposed, and the message says so)."""
    if isinstance(ch_names, str) or not isinstance(ch_names, Sequence | np.ndarray | pd.Index):
        raise ValueError(f"ch_names must be a list of channel names, one per channel of X; got "
                         f"{type(ch_names).__name__} {ch_names!r:.60}")
    names = list(ch_names)
    wrong = [(i, n) for i, n in enumerate(names) if not isinstance(n, str) or not n.strip()]
    if wrong:
        raise ValueError(f"ch_names must be non-empty strings; got {', '.join(f'{n!r} at {i}' for i, n in wrong[:5])}")
    names = [str(n) for n in names]  # numpy str_ as plain str (JSON)
    if len(names) != n_channels:
        transposed = ("; X looks like (windows, samples, channels): pass X.transpose(0, 2, 1)"
                      if n_samples == len(names) else "")
        raise ValueError(f"X has {n_channels} channels but ch_names names {len(names)}; give one name per channel, "
                         f"in X's order{transposed}")
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        seen.setdefault(name.casefold(), []).append(i)
    repeated = [f"'{names[p[0]]}' at {p}" for p in seen.values() if len(p) > 1]
    if repeated:
        raise ValueError(f"ch_names repeats {', '.join(repeated)} (names are matched case-insensitively); give "
                         "every channel of X its own name, or drop the duplicated channel from X")
    return names


def checked_positions(positions: Any, ch_names: list[str]) -> dict[str, list[float]] | None:
    """``positions`` as ``{channel: [x, y, z]}`` in metres, for channels of ``ch_names`` only (``None``: none given)."""
    if positions is None:
        return None
    if not hasattr(positions, "items"):
        raise ValueError(f"positions must map channel names to [x, y, z] in metres; got {type(positions).__name__}")
    unknown = [str(k) for k in positions if k not in ch_names]
    if unknown:
        raise ValueError(f"positions names channel(s) {unknown[:5]} that ch_names does not; give positions for "
                         "channels of X only (names as in ch_names)")
    out = {}
    for name, pos in positions.items():
        xyz = np.asarray(pos, dtype=float).ravel()
        if xyz.shape != (3,) or not np.isfinite(xyz).all():
            raise ValueError(f"positions['{name}'] is {pos!r}; give three finite numbers [x, y, z] in metres")
        if np.linalg.norm(xyz) > 1.0:  # a head's radius is about 0.09 m
            raise ValueError(f"positions['{name}'] lies {np.linalg.norm(xyz):g} from the origin; positions are in "
                             "metres (head frame): millimetres divided by 1000")
        out[str(name)] = [float(v) for v in xyz]
    return out


def checked_sfreq(sfreq: Any) -> float:
    """``sfreq`` as a positive, finite float."""
    if isinstance(sfreq, bool) or not isinstance(sfreq, Real) or not math.isfinite(sfreq) or sfreq <= 0:
        raise ValueError(f"sfreq must be the sampling rate in Hz, a positive number; got {sfreq!r}")
    return float(sfreq)


def as_table(metadata: Any) -> pd.DataFrame:
    """``metadata`` (a DataFrame, a dict of columns, records or a NumPy record array) as a DataFrame."""
    if isinstance(metadata, pd.DataFrame):
        return metadata
    one_column = isinstance(metadata, pd.Series | np.ndarray | list | tuple) and np.ndim(metadata) == 1 and not (
        isinstance(metadata, np.ndarray) and metadata.dtype.names)
    if one_column and not (len(metadata) and isinstance(next(iter(metadata)), dict)):
        raise ValueError(f"metadata is one column ({type(metadata).__name__}, labels?); it is a table of one row per "
                         "window with subject and label columns: pd.DataFrame({'subject': subjects, 'label': y})")
    try:
        return pd.DataFrame(metadata)
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata must be a table (a pandas DataFrame, or a dict of columns); got "
                         f"{type(metadata).__name__}: {err}") from None


def metadata_rows(meta: pd.DataFrame, n: int, window_s: float, name: str,
                  target: str = "classification") -> pd.DataFrame:
    """The windows table rows: required columns checked, optional ones filled as the workflow fills them.

    Rows are matched to ``X``'s windows by position. Every id becomes a
    string; an empty one counts as missing. Fractional numbers as the labels
    of a classification are refused: they look like a continuous target.
    """
    _check_columns(meta)
    if len(meta) != n:
        raise ValueError(f"metadata has {len(meta)} rows for {n} windows; give one row per window")
    _check_order(meta.index)
    meta = meta.reset_index(drop=True)
    _warn_unused_categories(meta)
    _check_classes(meta["label"], target)
    out = pd.DataFrame({c: _as_ids(meta[c]) if c in meta else None for c in ("subject", "session", "run", "label")})
    required = ["subject", "label", *(["recording"] if "recording" in meta else [])]
    if "recording" in meta:
        out["recording"] = _as_ids(meta["recording"])
    for column in required:
        if out[column].isna().any():
            missing = out[column].isna().to_numpy()
            raise ValueError(f"metadata: {int(missing.sum())} window(s) without a {column} (rows {_rows(missing)}); "
                             f"give every window its {column}")
    for column in ("subject", "label"):
        _check_spellings(out[column], column)
    if "recording" in meta:
        shared = out.groupby("recording", sort=False)["subject"].unique()
        shared = shared[shared.map(len) > 1]
        if len(shared):
            raise ValueError(f"metadata recording {shared.index[0]!r} holds windows of subjects "
                             f"{', '.join(map(str, shared.iloc[0][:5]))}; a recording belongs to one subject: make "
                             "the recording ids unique per subject (e.g. subject + run), or drop the column")
    if "recording" not in meta:
        out["recording"] = f"{name}:" + out["subject"] + "/" + out["session"].fillna("") + "/" + out["run"].fillna("")
    if "onset_s" in meta:
        onset = meta["onset_s"]
        if pd.api.types.is_timedelta64_dtype(onset):  # to_numeric would read nanoseconds as seconds
            onset = onset.dt.total_seconds()
        onset = pd.to_numeric(onset, errors="coerce").astype(float)
        bad = ~np.isfinite(onset.to_numpy())
        if bad.any():
            raise ValueError(f"metadata column onset_s: {int(bad.sum())} value(s) are not finite numbers (rows "
                             f"{_rows(bad)}, e.g. {meta['onset_s'].iloc[int(np.argmax(bad))]!r}); give each window's "
                             "start in seconds from its recording's start, or drop the column")
        out["onset_s"] = onset
        _check_onsets(out)
    else:  # consecutive windows within each recording, in row order
        out["onset_s"] = out.groupby("recording", sort=False).cumcount() * window_s
    return out


def check_design(rows: pd.DataFrame, scheme: str, group_by: str) -> None:
    """A design holding out sessions or runs needs every window's session or run in the metadata."""
    if group_by not in ("session", "run"):
        return
    missing = rows[group_by].isna().to_numpy()
    if missing.any():
        what = "no column" if missing.all() else f"no value in {int(missing.sum())} row(s) ({_rows(missing)})"
        raise ValueError(f"cv holds out {group_by}s (scheme {scheme}, group_by {group_by}) but metadata has "
                         f"{what} '{group_by}'; give every window its {group_by}, or hold out subjects "
                         "(cv.scheme group_kfold or loso, group_by: subject)")


def _check_columns(meta: pd.DataFrame) -> None:
    """Required columns present; an unknown column that looks like a known, absent one is an error."""
    columns = [str(c) for c in meta.columns]
    absent = [c for c in METADATA_COLUMNS if c not in columns]
    near = {}
    for column in columns:
        if column in METADATA_COLUMNS:
            continue
        match = [c for c in absent if c == column.strip().casefold().replace(" ", "_")]
        match = match or difflib.get_close_matches(column.casefold(), absent, n=1, cutoff=0.75)
        if match:
            near[column] = match[0]
    missing = [c for c in ("subject", "label") if c not in columns]
    problems = [f"metadata lacks column(s) {missing}; it needs subject and label (optional: "
                f"{', '.join(c for c in METADATA_COLUMNS if c not in ('subject', 'label'))})"] if missing else []
    problems += [f"metadata column '{c}' looks like '{k}', which the API reads: rename it "
                 f"(metadata.rename(columns={{'{c}': '{k}'}})) or drop it" for c, k in near.items()]
    if problems:
        raise ValueError("; ".join(problems))
    ignored = [c for c in columns if c not in METADATA_COLUMNS]
    if ignored:
        logger.info("metadata: column(s) %s are not read (the API reads %s)", ignored, ", ".join(METADATA_COLUMNS))


def _check_order(index: pd.Index) -> None:
    """A unique integer index out of order means the table was sorted or shuffled apart from ``X`` (a repeated
    one is tables concatenated, each numbered from 0: in order)."""
    if index.dtype.kind in "iu" and index.is_unique and not index.is_monotonic_increasing:
        raise ValueError(
            "metadata's index is out of order (as after sort_values or sample), but its rows are matched to X's "
            "windows by position, not by index. If X was reordered the same way, pass "
            "metadata.reset_index(drop=True); else restore the order with metadata.sort_index()")


def _warn_unused_categories(meta: pd.DataFrame) -> None:
    """A categorical label declaring classes that no window has: those classes are not decoded; say so."""
    label = meta["label"]
    if isinstance(label.dtype, pd.CategoricalDtype):
        unused = [str(c) for c in label.cat.categories if not (label == c).any()]
        if unused:
            logger.warning("metadata: label categories %s have no window and are not decoded (the classes are %s)",
                           unused, sorted(str(c) for c in label.dropna().unique()))


def _check_onsets(rows: pd.DataFrame) -> None:
    """Two windows of one recording at the same onset are most likely two recordings (runs or sessions
    without their column): kept as one, their windows would interleave in time order and in the gaps."""
    repeated = rows.duplicated(["recording", "onset_s"], keep=False).to_numpy()
    if repeated.any():
        first = rows[repeated].iloc[0]
        raise ValueError(f"metadata: {int(repeated.sum())} windows share a recording and an onset_s with another "
                         f"(rows {_rows(repeated)}; e.g. recording {first['recording']!r} at {first['onset_s']:g} s): "
                         "windows of several recordings? Give the session and run columns (or recording) that tell "
                         "them apart")


def _check_spellings(ids: pd.Series, column: str) -> None:
    """Two ids that differ only in case, surrounding spaces or leading zeros ('S01', 's01 ', 's1') are most likely
    one subject or class; kept apart, one subject would sit on both sides of a fold, one class would be two."""
    clashes = spelling_clashes(ids.unique())
    if clashes:
        shown = ", ".join(" and ".join(map(repr, c)) for c in clashes[:5])
        raise ValueError(f"metadata {column}: {shown} {CLASH_RULE}; spell each {column} one way (e.g. "
                         f"metadata['{column}'].str.strip()), or give them names that differ")


def _check_classes(label: pd.Series, target: str) -> None:
    """Labels that are fractional numbers decoded as classes would make every value its own class."""
    if target != "classification" or label.dtype.kind != "f":
        return
    values = label.dropna().to_numpy()
    if not np.all(np.mod(values, 1) == 0):
        raise ValueError(f"metadata label holds fractional numbers ({len(np.unique(values))} distinct values among "
                         f"{len(values)} windows), decoded as classes they would each be a class of their own; for a "
                         "continuous target set target: 'regression' in the config, or bin the labels into classes")


def _as_ids(column: pd.Series) -> pd.Series:
    """Ids as strings (ints stay ints: 3 -> '3', 3.0 -> '3'); missing, empty or blank as None."""

    def as_id(value):
        if value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float | np.floating) and float(value).is_integer() and column.name != "label":
            value = int(value)  # a subject column with a NaN became float: 3.0 is subject 3
        text = str(value)
        return text if text.strip() else None

    return pd.Series([as_id(v) for v in column.astype(object)], index=column.index, dtype=object)
