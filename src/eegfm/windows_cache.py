"""Windows stores kept in the cache, keyed by everything that makes them (docs/architecture.md §2.1).

A windows store is a deterministic function of its inputs: the recording
files (with their companions, BIDS sidecars and the metadata table), the
dataset's settings, the eegfm code and the libraries that read and filter
the signals. Its *recipe key* is a sha256 over all of them:

- every input file's path (absolute: ``windows.tsv`` names the recordings)
  and the sha256 of its bytes (a folder input: every file under it);
- the settings: source, preprocessing, windowing, the held-out unit, the
  target kind and the dataset's name;
- the code (:func:`eegfm.provenance.code_identity`): the digest of the
  installed eegfm package's files (any code change is a miss, no version
  constant to forget) and the versions of Python and of the reading and
  signal libraries (:data:`LIBRARIES`).

The entry ``<cache>/windows/<key[:2]>/<key>/`` holds the store's three
files, the log of the job that built it, and ``manifest.json`` with the
sha256 of every file (the entry is published whole, by one rename).
Files are hard links where the cache and the results share a file system
(no second copy on disk; nothing writes to a published store), else copies. A hit is verified file by file
against the manifest before anything is published; a damaged entry is
logged, moved aside and built again. One writer per key (:func:`eegfm.locks.key_lock`).

Only the standard library and eegfm's own light modules are imported, so a
hit costs hashing and linking, not MNE's and scipy's imports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eegfm import atomic
from eegfm.hashing import sha256_file, sha256_json
from eegfm.locks import key_lock
from eegfm.provenance import code_identity

logger = logging.getLogger(__name__)

#: The files of a windows store (see :mod:`eegfm.windows_store`); ``windows.json`` is published last.
STORE_FILES = ("windows.zarr", "windows.tsv", "windows.json")
#: Libraries whose versions enter the key: they read, filter, resample and write the windows.
LIBRARIES = ("mne", "mne-bids", "numpy", "scipy", "pandas", "zarr", "numcodecs", "pymatreader", "h5py", "edfio",
             "eeglabio", "pybv", "defusedxml")
MANIFEST = "manifest.json"
BUILD_LOG = "build.log"


class DamagedEntryError(Exception):
    """A cached windows store does not match its manifest."""


def _files(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    found: set[Path] = set()
    for name in inputs:
        path = Path(os.path.abspath(name))
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file())
        else:
            found.add(path)
    return sorted(found)


def recipe_key(inputs: Sequence[str | os.PathLike], settings: Mapping[str, Any]) -> str:
    """The cache key of the windows store made from ``inputs`` (files or folders) with ``settings``."""
    return sha256_json({"inputs": [[str(p), sha256_file(p)] for p in _files(inputs)], "settings": settings,
                        **code_identity(LIBRARIES)})


def entry_path(cache_dir: str | os.PathLike, key: str) -> Path:
    """Where the windows store of ``key`` is cached."""
    return Path(cache_dir) / "windows" / key[:2] / key


def _store_files(folder: Path) -> list[Path]:
    """Every file of a store folder, relative to it, in a stable order."""
    out = []
    for name in STORE_FILES:
        path = folder / name
        out.extend(sorted(p.relative_to(folder) for p in path.rglob("*") if p.is_file()) if path.is_dir() else [Path(name)])
    return out


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, target)


def restore(cache_dir: str | os.PathLike, key: str, out_dir: str | os.PathLike, *, what: str) -> Path | None:
    """Publish the cached store of ``key`` as ``out_dir``'s windows store; the entry, or None on a miss.

    Every file is checked against the manifest first (no lock: entries are
    published whole, so a read-only shared cache serves hits too). A damaged
    entry (a file missing, changed or truncated) is logged and moved aside,
    and the caller builds the store again.
    """
    entry = entry_path(cache_dir, key)
    if not (entry / MANIFEST).is_file():
        return None
    try:
        manifest = _verified(entry, key)
    except DamagedEntryError as err:
        _move_aside(entry, key, err, what)
        return None
    out = Path(out_dir)
    try:
        with atomic.atomic_dir(out / "windows.zarr") as tmp:
            for name in manifest["files"]:
                if name.startswith("windows.zarr/"):
                    _link_or_copy(entry / name, tmp / name.removeprefix("windows.zarr/"))
        for name in ("windows.tsv", "windows.json"):
            with atomic.atomic_file(out / name) as tmp:
                shutil.copyfile(entry / name, tmp)
    except FileNotFoundError:  # another run moved the entry aside meanwhile
        (out / "windows.json").unlink(missing_ok=True)
        return None
    logger.info("%s: windows cache hit %s (every file verified against its sha256)", what, entry)
    built = entry / BUILD_LOG
    if built.is_file():
        logger.info("%s: the job that built these windows logged:\n%s", what, built.read_text(errors="replace").rstrip())
    return entry


def _move_aside(entry: Path, key: str, problem: Exception, what: str) -> None:
    try:
        with key_lock(entry, what=f"{what}: windows cache entry {entry}"):
            try:
                _verified(entry, key)
                return  # another run has just replaced it with a sound one
            except DamagedEntryError:
                pass
            aside = atomic.move_aside(entry)
    except OSError as err:  # a read-only cache: leave it, build the windows here
        logger.warning("%s: the cached windows store %s is damaged (%s) and cannot be moved aside (%s); building "
                       "the windows again", what, entry, problem, err)
        return
    logger.warning("%s: the cached windows store %s is damaged (%s); moved it aside to %s and building the "
                   "windows again", what, entry, problem, aside.name)


def _verified(entry: Path, key: str) -> dict[str, Any]:
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise DamagedEntryError(f"unreadable manifest: {err}") from None
    if manifest.get("key") != key or not isinstance(manifest.get("files"), dict):
        raise DamagedEntryError("the manifest names another key")
    present = {p.as_posix() for p in _store_files(entry)}
    if present != set(manifest["files"]):
        raise DamagedEntryError(f"files missing or added: {sorted(present ^ set(manifest['files']))[:5]}")
    for name, digest in manifest["files"].items():
        if sha256_file(entry / name) != digest:
            raise DamagedEntryError(f"{name} does not match its sha256")
    return manifest


def save(cache_dir: str | os.PathLike, key: str, out_dir: str | os.PathLike, *, what: str,
         log_path: str | os.PathLike | None = None) -> Path | None:
    """Keep ``out_dir``'s newly built windows store in the cache under ``key``; the entry, or None.

    ``log_path`` (the building job's log so far) is kept beside it and shown
    when a later run hits the entry. A cache that cannot be written (read
    only, full) is a warning, not an error: the windows are in ``out_dir``.
    """
    entry = entry_path(cache_dir, key)
    out = Path(out_dir)
    try:
        with key_lock(entry, what=f"{what}: windows cache entry {entry}"):
            with contextlib.suppress(DamagedEntryError):
                if entry.exists():
                    _verified(entry, key)
                    return entry  # another run cached the same store meanwhile
            if entry.exists():  # damaged: kept aside, never deleted silently
                aside = atomic.move_aside(entry)
                logger.warning("%s: the cached windows store %s was damaged; moved it aside to %s", what, entry,
                               aside.name)
            with atomic.atomic_dir(entry) as tmp:
                files = {}
                for name in _store_files(out):
                    _link_or_copy(out / name, tmp / name)
                    files[name.as_posix()] = sha256_file(tmp / name)
                if log_path is not None and Path(log_path).is_file():
                    shutil.copyfile(log_path, tmp / BUILD_LOG)
                (tmp / MANIFEST).write_text(json.dumps({"key": key, "files": files}, indent=1, sort_keys=True))
    except OSError as err:
        logger.warning("%s: could not keep the windows in the cache (%s); this run goes on, a later one builds "
                       "them again", what, err)
        return None
    logger.info("%s: windows kept in the cache as %s", what, entry)
    return entry
