"""Atomic outputs: write to a temporary sibling, then rename into place.

A job killed mid-write leaves only a ``.tmp-<name>-<host>.<pid>-*`` sibling
behind, never a half-written file or store at the final path, so a rerun
cannot trust it. The next atomic write into the same folder removes the
siblings of writers that are dead (same host, process gone); a caller that
holds the only right to write a path (a cache key's lock) removes all of its
siblings with :func:`sweep_stale`.

A full disk raises :class:`DiskFullError`, naming the path and the space
left, and a folder that cannot be written (read-only, another owner)
:class:`NotWritableError`, naming the folder and the fix, instead of the
library's bare ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Temporary names carry the writer (a short hash of the host, and the pid), so
# a later writer can tell a dead writer's leftovers from a live writer's work.
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_WRITER = re.compile(r"^\.tmp-.+-(?P<host>[0-9a-f]{8})\.(?P<pid>\d+)-[a-z0-9_]+$")


def writer_tag(pid: int | None = None) -> str:
    """``<host hash>.<pid>``: the writer part of a temporary name (this process by default)."""
    return f"{_HOST}.{os.getpid() if pid is None else pid}"


class DiskFullError(OSError):
    """A write failed because the file system is full (or the quota is used up)."""


class NotWritableError(OSError):
    """A folder cannot be written: a read-only file system, or no permission."""


@contextlib.contextmanager
def naming_unwritable(folder: str | os.PathLike) -> Iterator[None]:
    """Turn a permission or read-only failure inside the block into a :class:`NotWritableError` naming
    ``folder`` and the fix."""
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS) or isinstance(err, NotWritableError):
            raise
        why = "is on a read-only file system" if err.errno == errno.EROFS else "is not writable by this user"
        raise NotWritableError(
            err.errno,
            f"{folder} {why} ({err.strerror}: {err.filename}); point `results:`/`cache:` at a folder you can "
            "write, or fix its permissions, then re-run (nothing was written)",
        ) from err


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def move_aside(path: str | os.PathLike) -> Path:
    """Rename a damaged store or cache entry to ``<name>.damaged-<time>-<pid>`` beside it (a cache never
    deletes what failed its check silently); returns the new path."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    path.rename(aside)
    return aside


def sweep_stale(path: str | os.PathLike, *, any_writer: bool = False) -> list[Path]:
    """Remove temporary siblings left by writers that died; return what was removed.

    Parameters
    ----------
    path
        A path written atomically; its folder is swept.
    any_writer
        Also remove ``path``'s own temporary siblings whatever their writer
        (other hosts, older eegfm versions): only for a caller that holds the
        lock that makes it the sole writer of ``path``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    own = f".tmp-{path.name}-"
    for entry in os.scandir(path.parent):
        if not entry.name.startswith(".tmp-"):
            continue
        match = _WRITER.match(entry.name)
        dead = match is not None and match["host"] == _HOST and not _writer_alive(int(match["pid"]))
        if dead or (any_writer and entry.name.startswith(own)):
            stale = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    if removed:
        logger.info("removed %d temporary leftovers of interrupted writes in %s: %s", len(removed), path.parent,
                    ", ".join(p.name for p in removed))
    return removed


def _tmp_sibling(path: Path, *, directory: bool) -> Path:
    prefix = f".tmp-{path.name}-{writer_tag()}-"
    with naming_unwritable(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
        fd, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    os.close(fd)
    return Path(name)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


#: Messages of writers that report a full disk without an errno (numpy's tofile, safetensors, zarr's codecs).
_FULL = re.compile(r"No space left on device|os error 28|Disk quota exceeded|\d+ requested and \d+ written", re.I)
#: Below this much free space, a bare OSError/RuntimeError is taken for a full disk whatever its message
#: (torch.save reports a short write as "unexpected pos").
_NEARLY_FULL = 1 << 20


def _is_disk_full(err: BaseException, free: int) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return bool(_FULL.search(str(err))) or (type(err) in (OSError, RuntimeError) and free < _NEARLY_FULL)


@contextlib.contextmanager
def naming_full_disk(path: str | os.PathLike) -> Iterator[None]:
    """Turn a write failure on a full disk inside the block into a :class:`DiskFullError` naming ``path``.

    The free space is measured when the error is caught, before any
    temporary file is removed, so it is the space the write met.
    """
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        folder = Path(path).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        usage = shutil.disk_usage(folder)
        if not _is_disk_full(err, usage.free):
            raise
        raise DiskFullError(
            errno.ENOSPC,
            f"disk full while writing {path}: {_size(usage.free)} free of {_size(usage.total)} on the file system "
            f"holding {folder} ({type(err).__name__}: {err}); free space there or point `results:`/`cache:` at a "
            "larger disk, then re-run (nothing half-written was kept)",
        ) from err


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` on success.

    On an exception the temporary directory is removed and ``path`` is left
    as it was. An existing ``path`` is replaced only after the new content is
    complete. Leftovers of dead writers in the folder are removed first; a
    full disk raises :class:`DiskFullError`.
    """
    path = Path(path)
    sweep_stale(path)
    tmp = _tmp_sibling(path, directory=True)
    try:
        with naming_full_disk(path):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    if path.exists():
        old = _tmp_sibling(path, directory=True)
        old.rmdir()
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` on success."""
    path = Path(path)
    sweep_stale(path)
    tmp = _tmp_sibling(path, directory=False)
    try:
        with naming_full_disk(path):
            yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared like any other file
    os.replace(tmp, path)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_safe(value: Any) -> Any:
    """NaN/Inf become null so metrics.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_tsv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as TSV to ``path`` atomically."""
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)
