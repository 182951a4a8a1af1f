"""Per-chunk digests: a store records a sha256 of every chunk when it is written and checks it when read.

A zarr array of rows (windows ``X``, embeddings ``E``) is chunked along its
first axis only, so chunk ``i`` holds rows ``[i*r, (i+1)*r)`` and its bytes are
those rows' bytes in order. The writer feeds rows as they are produced to
:class:`ChunkDigests` (no second pass over the data) and stores the digests in
the array's attributes (:func:`record`); :class:`VerifiedArray` wraps the
array for readers and checks each chunk the first time it is read, so a
verified read costs one sha256 per chunk read (about 1 GB/s), not a second
read. A chunk that was deleted (zarr fills it with zeros), truncated or
overwritten raises :class:`DamagedStoreError` naming the store, the chunk and
the fix.

Digests are over the decoded values (C order, the array's dtype), so they do
not depend on the compressor. They also name the key of the store they were
written for, so an array moved or copied into another store of the same
shape (two stores' ``E`` swapped) does not pass as that store's content.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["ATTR", "ChunkDigests", "DamagedStoreError", "VerifiedArray", "chunk_digest", "record", "write_array"]

#: Array attribute holding ``{"algorithm", "chunk_rows", "sha256": [...], "key"}``.
ATTR = "eegfm_chunk_digests"
_KEPT_CHUNKS = 4


class DamagedStoreError(ValueError):
    """Stored values that do not match the digests recorded when they were written."""


def chunk_digest(rows: np.ndarray) -> str:
    """sha256 of rows' values (C order)."""
    return hashlib.sha256(np.ascontiguousarray(rows)).hexdigest()


class ChunkDigests:
    """Digest rows chunk by chunk as they are written, in any batch sizes.

    Parameters
    ----------
    chunk_rows
        Rows per chunk (``array.chunks[0]``).
    dtype
        The array's dtype: rows are hashed as stored.
    """

    def __init__(self, chunk_rows: int, dtype: Any):
        self.chunk_rows, self.dtype = int(chunk_rows), np.dtype(dtype)
        self.digests: list[str] = []
        self._hash = hashlib.sha256()
        self._filled = 0

    def update(self, rows: np.ndarray) -> None:
        """Add the next rows (in store order)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        while len(rows):
            take = min(self.chunk_rows - self._filled, len(rows))
            self._hash.update(np.ascontiguousarray(rows[:take]))
            self._filled += take
            rows = rows[take:]
            if self._filled == self.chunk_rows:
                self._close_chunk()

    def finish(self) -> list[str]:
        """The digest of every chunk, the last (partial) one included."""
        if self._filled:
            self._close_chunk()
        return self.digests

    def _close_chunk(self) -> None:
        self.digests.append(self._hash.hexdigest())
        self._hash, self._filled = hashlib.sha256(), 0


def record(array, digests: ChunkDigests, *, key: str | None = None) -> None:
    """Store the digests in ``array``'s attributes (call once all rows are written).

    ``key`` is the content key of the store the array belongs to; a reader
    that expects a key (:class:`VerifiedArray`) accepts only digests naming it.
    """
    if digests.chunk_rows != array.chunks[0]:
        raise ValueError(f"digests of {digests.chunk_rows}-row chunks for an array chunked by {array.chunks[0]}")
    array.attrs[ATTR] = {"algorithm": "sha256", "chunk_rows": digests.chunk_rows, "sha256": digests.finish(),
                         "key": key}


def write_array(group, name: str, data: np.ndarray, *, key: str | None = None, **kwargs):
    """Create array ``name`` in a zarr group from ``data`` in one go, with its chunk digests; return it.

    For arrays held in memory whole; writers that stream rows use
    :class:`ChunkDigests` and :func:`record`. ``key`` as in :func:`record`.
    """
    array = group.create_array(name, data=data, **kwargs)
    digests = ChunkDigests(array.chunks[0], array.dtype)
    digests.update(np.asarray(data))
    record(array, digests, key=key)
    return array


class VerifiedArray:
    """A row-chunked zarr array whose chunks are checked against their digests as they are read.

    Supports what the stores' readers use: ``shape``, ``dtype``, ``len()``,
    ``np.asarray(a)`` and indexing whose first element is a slice, an
    integer or a sequence of row numbers (``a[i:j]``, ``a[:]``, ``a[i]``,
    ``a[i:j, ...]``, ``a[[3, 70, 71]]``: a training batch, read chunk by
    chunk). The last small block read is kept, so consecutive reads smaller
    than a chunk decode it once.

    Parameters
    ----------
    array
        The zarr array.
    name
        The store, as named in errors (e.g. its path).
    fix
        What to do when it is damaged, appended to errors.
    key
        The content key of the store being read: its digests must name it
        (else they were written for another store, e.g. a swapped array).

    Raises
    ------
    DamagedStoreError
        On creation when the array has no (or inconsistent) digests, or
        digests of another store than ``key``; on a read when a chunk does not
        match its digest.
    """

    def __init__(self, array, *, name: str, fix: str, key: str | None = None):
        self._array, self.name, self.fix = array, name, fix
        self.shape, self.dtype, self.ndim = tuple(array.shape), np.dtype(array.dtype), array.ndim
        self._rows = int(array.chunks[0])
        self._verified: set[int] = set()
        self._block: tuple[int, int, np.ndarray] | None = None
        meta = array.attrs.get(ATTR)
        n_chunks = -(-self.shape[0] // self._rows)
        if not isinstance(meta, dict) or meta.get("algorithm") != "sha256":
            raise DamagedStoreError(f"{name} records no chunk digests (written by an older eegfm?); {fix}")
        if meta.get("chunk_rows") != self._rows or len(meta.get("sha256", [])) != n_chunks:
            raise DamagedStoreError(
                f"{name}: its digests describe {len(meta.get('sha256', []))} chunks of {meta.get('chunk_rows')} "
                f"rows, the array has {n_chunks} of {self._rows} (a store mixed from two writes); {fix}"
            )
        if key is not None and meta.get("key") != key:
            whose = (f"its array was written for store key {meta['key'][:12]}, not this store's {key[:12]} "
                     "(an array copied or moved between stores)") if meta.get("key") else \
                "its digests name no store key (written by an older eegfm?)"
            raise DamagedStoreError(f"{name}: {whose}; {fix}")
        self._digests: list[str] = list(meta["sha256"])

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        n = self.shape[0]
        if isinstance(first, int | np.integer):
            index = int(first) + n if first < 0 else int(first)
            if not 0 <= index < n:
                raise IndexError(f"row {first} out of range for {n} rows")
            return self._read(index, index + 1)[0][rest]
        if isinstance(first, list | tuple | np.ndarray):
            return self._rows_at(np.asarray(first))[(slice(None), *rest)]
        if not isinstance(first, slice):
            raise TypeError(f"{self.name}: index rows with a slice, an integer or row numbers, "
                            f"not {type(first).__name__}")
        start, stop, step = first.indices(n)
        if step != 1:
            return self._read(0, n)[start:stop:step][(slice(None), *rest)]
        if stop <= start:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)[(slice(None), *rest)]
        return self._read(start, stop)[(slice(None), *rest)]

    def _rows_at(self, rows: np.ndarray) -> np.ndarray:
        """Rows by number (any order, repeats allowed), reading each chunk they touch once."""
        n = self.shape[0]
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise TypeError(f"{self.name}: row numbers must be integers, not {rows.dtype}")
        rows = np.where(rows < 0, rows + n, rows).astype(int)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"rows {rows[(rows < 0) | (rows >= n)][:5].tolist()} out of range for {n} rows")
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        chunks = rows // self._rows
        for chunk in np.unique(chunks):
            lo = int(chunk) * self._rows
            here = chunks == chunk
            out[here] = self._read(lo, min(lo + self._rows, n))[rows[here] - lo]
        return out

    def verify(self, *, chunks_per_read: int = 16) -> None:
        """Check every chunk (reading ``chunks_per_read`` chunks at a time)."""
        step = self._rows * chunks_per_read
        for start in range(0, self.shape[0], step):
            self._read(start, min(start + step, self.shape[0]))
        self._block = None

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``, every chunk they touch checked once."""
        if self._block is not None and self._block[0] <= start and stop <= self._block[1]:
            lo, _, data = self._block
            return data[start - lo : stop - lo]
        first, last = start // self._rows, (stop - 1) // self._rows
        lo, hi = first * self._rows, min((last + 1) * self._rows, self.shape[0])
        try:
            data = np.asarray(self._array[lo:hi])
        except (RuntimeError, ValueError, OSError) as error:  # a truncated chunk fails in its codec, before any digest
            raise DamagedStoreError(
                f"{self.name}: rows {lo}-{hi - 1} cannot be decoded ({type(error).__name__}: {error}; a truncated "
                f"or overwritten chunk file, e.g. an interrupted copy); {self.fix}"
            ) from error
        for i in range(first, last + 1):
            if i in self._verified:
                continue
            a = (i - first) * self._rows
            if chunk_digest(data[a : a + self._rows]) != self._digests[i]:
                raise DamagedStoreError(
                    f"{self.name}: chunk {i} (rows {i * self._rows}-{min((i + 1) * self._rows, self.shape[0]) - 1}) "
                    "does not match the sha256 recorded when it was written (a deleted, truncated or overwritten "
                    f"chunk file, e.g. an interrupted copy); {self.fix}"
                )
            self._verified.add(i)
        # keep small blocks only: a kept full read would hold a second copy once the caller drops its own
        self._block = (lo, hi, data) if last - first < _KEPT_CHUNKS else None
        return data[start - lo : stop - lo]
