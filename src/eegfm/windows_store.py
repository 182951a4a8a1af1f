"""The windows store: the contract between windowing and everything after it.

Layout of a windows folder (docs/architecture.md §2.1)::

    windows.zarr/   zarr group; array ``X`` float32 (windows, channels, samples),
                    chunked along windows, with a sha256 per chunk in its
                    attrs (checked as chunks are read, :mod:`eegfm.integrity`);
                    group attrs: sfreq, ch_names, units, key
    windows.tsv     one row per window: window_id, subject, session, run,
                    label, onset_s, recording (window_id = row of X), content_hash
                    (sha256 of the window's float32 bytes)
    windows.json    summary: key, shape, sfreq, ch_names, classes, counts,
                    channel positions, the settings that made it, and what
                    windowing found (label_source, channels_dropped,
                    empty_recordings, sanity)

The **content key** is a sha256 over the signal bytes (in window order), the
channel names, the sampling rate and the units. Labels, subjects and file
names never enter it, so relabelling or renaming a dataset keeps every
embedding cached. Each file is written atomically; ``windows.json`` is written
last and names the key, so its presence means the store is complete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegfm import atomic
from eegfm.hashing import canonical_json
from eegfm.integrity import ChunkDigests, VerifiedArray, record

META_COLUMNS = ("window_id", "subject", "session", "run", "label", "onset_s", "recording")
CHUNK_WINDOWS = 64


def _compressor():
    """Blosc LZ4 over shuffled bytes: EEG float32 compresses barely (1.1-1.15x) whatever the codec.

    Measured on synthetic and real (EEGLAB sample) windows: zarr's default
    zstd gives 1.08-1.10x and decodes at about 0.4-0.6 GB/s; LZ4 after a byte
    shuffle gives 1.13-1.14x and decodes three times faster. Every consumer
    reads the whole store at least once (each embedding, each epoch of
    streamed training), so decode speed matters more than the last percent.
    """
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=4)


class WindowsStoreWriter:
    """Stream windows into a new store; call :meth:`close` to publish it.

    Parameters
    ----------
    out_dir
        Folder receiving ``windows.zarr``, ``windows.tsv`` and ``windows.json``.
    ch_names, sfreq, n_times
        Channel names, sampling rate (Hz) and samples per window.
    units
        Physical unit of ``X`` (MNE data are volts).
    """

    def __init__(self, out_dir: str | Path, ch_names: list[str], sfreq: float, n_times: int, units: str = "V"):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ch_names, self.sfreq, self.n_times, self.units = list(ch_names), float(sfreq), int(n_times), units
        self._zarr_ctx = atomic.atomic_dir(self.out_dir / "windows.zarr")
        self._tmp = self._zarr_ctx.__enter__()
        import zarr

        self._group = zarr.open_group(str(self._tmp), mode="w")
        self._X = self._group.create_array(
            "X",
            shape=(0, len(self.ch_names), self.n_times),
            chunks=(CHUNK_WINDOWS, len(self.ch_names), self.n_times),
            dtype="float32",
            compressors=_compressor(),
        )
        self._chunk_digests = ChunkDigests(CHUNK_WINDOWS, "float32")
        self._digest = _key_digest(self.ch_names, self.sfreq, self.n_times, units)
        self._rows: list[dict[str, Any]] = []

    def append(self, X: np.ndarray, rows: list[dict[str, Any]]) -> None:
        """Add windows ``X`` (n, channels, samples) with one metadata row each."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (len(self.ch_names), self.n_times):
            raise ValueError(f"windows of shape {X.shape[1:]} do not fit store shape {(len(self.ch_names), self.n_times)}")
        if len(rows) != len(X):
            raise ValueError(f"{len(X)} windows but {len(rows)} metadata rows")
        if not np.isfinite(X).all():
            raise ValueError("windows contain NaN or Inf values")
        start = len(self._rows)
        for offset, (row, window) in enumerate(zip(rows, X)):
            self._rows.append({**row, "window_id": start + offset, "content_hash": window_hash(window)})
        with atomic.naming_full_disk(self.out_dir / "windows.zarr"):
            self._X.append(X, axis=0)
        self._digest.update(X.tobytes())
        self._chunk_digests.update(X)

    def abort(self) -> None:
        """Discard everything written so far (the temporary store is removed)."""
        self._zarr_ctx.__exit__(RuntimeError, RuntimeError("windows store aborted"), None)

    def close(
        self,
        *,
        positions: dict[str, list[float]] | None = None,
        settings: dict | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict:
        """Publish the store and return the ``windows.json`` summary.

        Parameters
        ----------
        positions
            Channel positions in metres (head frame), by name, when known.
        settings
            The preprocessing/windowing settings that produced the store.
        extra
            Further summary fields (e.g. ``label_source``, ``channels_dropped``,
            ``empty_recordings``, ``sanity``), added to ``windows.json`` as given.
        """
        if not self._rows:
            self.abort()
            raise ValueError("no windows were produced")
        key = self._digest.hexdigest()
        with atomic.naming_full_disk(self.out_dir / "windows.zarr"):
            record(self._X, self._chunk_digests, key=key)
            self._group.attrs.update(
                {"sfreq": self.sfreq, "ch_names": self.ch_names, "units": self.units, "key": key}
            )
        self._zarr_ctx.__exit__(None, None, None)
        meta = pd.DataFrame(self._rows)
        for column in META_COLUMNS:
            if column not in meta:
                meta[column] = None
        meta = meta[list(META_COLUMNS) + [c for c in meta.columns if c not in META_COLUMNS]]
        atomic.write_tsv(self.out_dir / "windows.tsv", meta)
        counts = meta["label"].value_counts().sort_index()
        info = {
            "key": key,
            "n_windows": len(meta),
            "n_channels": len(self.ch_names),
            "n_times": self.n_times,
            "sfreq": self.sfreq,
            "units": self.units,
            "ch_names": self.ch_names,
            "classes": [str(c) for c in counts.index],
            "class_counts": {str(k): int(v) for k, v in counts.items()},
            "subjects": sorted(str(s) for s in meta["subject"].unique()),
            "recordings": sorted(str(r) for r in meta["recording"].unique()),
            "positions": positions,
            "settings": settings or {},
            **(extra or {}),
        }
        atomic.write_json(self.out_dir / "windows.json", info)
        return info


def _key_digest(ch_names: list[str], sfreq: float, n_times: int, units: str):
    """The content key's sha256, fed with the signal-shaping settings; the window bytes follow in order."""
    settings = {"ch_names": list(ch_names), "sfreq": float(sfreq), "n_times": int(n_times), "units": units}
    return hashlib.sha256(canonical_json(settings).encode())


def content_key(X: np.ndarray, ch_names: list[str], sfreq: float, units: str = "V") -> str:
    """The content key a store of windows ``X`` (float32 in ``units``) would get, without writing one."""
    digest = _key_digest(ch_names, sfreq, X.shape[2], units)
    digest.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    return digest.hexdigest()


def window_hash(window: np.ndarray) -> str:
    """sha256 of one window's float32 bytes: the ``content_hash`` column, which finds duplicated recordings."""
    return hashlib.sha256(np.ascontiguousarray(window, dtype=np.float32).tobytes()).hexdigest()


def content_hashes(store: WindowsStore) -> pd.Series:
    """Each window's ``content_hash`` (by window id); computed from ``X`` for stores written before the column."""
    if "content_hash" in store.meta:
        return pd.Series(store.meta["content_hash"].astype(str).to_numpy(), index=store.meta["window_id"].to_numpy())
    hashes = []
    for start in range(0, store.X.shape[0], CHUNK_WINDOWS):
        hashes += [window_hash(w) for w in np.asarray(store.X[start:start + CHUNK_WINDOWS])]
    return pd.Series(hashes, index=np.arange(len(hashes)))


@dataclass(frozen=True)
class WindowsStore:
    """An opened windows store: ``X`` is read lazily (in batches) and each chunk is checked when first read.

    ``X`` is an :class:`~eegfm.integrity.VerifiedArray`: a chunk that does not
    match its recorded sha256 raises :class:`~eegfm.integrity.DamagedStoreError`.
    """

    X: Any
    meta: pd.DataFrame
    info: dict[str, Any]

    @property
    def key(self) -> str:
        return self.info["key"]


def rebuild_hint(out_dir: str | Path) -> str:
    """How to rebuild a damaged windows store (a Snakemake output, not a cache)."""
    # --forcerun, not deleting the file: Snakemake does not re-create a missing intermediate output whose
    # consumers are up to date ("Nothing to be done")
    return f"rebuild it: snakemake --forcerun {Path(out_dir) / 'windows.json'} (re-runs rule windows and what reads it)"


def read_windows_table(path: str | Path) -> pd.DataFrame:
    """``windows.tsv`` with its ids and labels as text; only an empty cell is missing (a subject or class
    named "NA" or "None" stays a name)."""
    return pd.read_csv(path, sep="\t", dtype={"subject": str, "session": str, "run": str, "label": str},
                       keep_default_na=False, na_values=[""])


def open_windows(out_dir: str | Path) -> WindowsStore:
    """Open a complete windows store (one whose ``windows.json`` exists).

    Raises
    ------
    FileNotFoundError, ValueError
        An incomplete store, or parts that disagree.
    eegfm.integrity.DamagedStoreError
        ``X`` has no chunk digests; later, when a chunk read does not match its digest.
    """
    import zarr

    out_dir = Path(out_dir)
    info_path = out_dir / "windows.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{out_dir} is not a complete windows store (no windows.json); {rebuild_hint(out_dir)}")
    info = json.loads(info_path.read_text())
    group = zarr.open_group(str(out_dir / "windows.zarr"), mode="r")
    X = VerifiedArray(group["X"], name=f"windows store {out_dir / 'windows.zarr'}", fix=rebuild_hint(out_dir),
                      key=info["key"])
    meta = read_windows_table(out_dir / "windows.tsv")
    if group.attrs.get("key") != info["key"]:
        raise ValueError(f"{out_dir}: windows.zarr and windows.json disagree on the content key; "
                         f"{rebuild_hint(out_dir)}")
    if X.shape[0] != len(meta):
        raise ValueError(f"{out_dir}: X has {X.shape[0]} windows but windows.tsv has {len(meta)} rows")
    return WindowsStore(X=X, meta=meta, info=info)
