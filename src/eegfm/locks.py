"""One writer per cache key: an exclusive POSIX record lock on a file next to the entry.

``fcntl.lockf`` (POSIX ``fcntl`` locks) works across processes and, unlike
``flock``, across the hosts of a shared NFS/Lustre/GPFS file system. The
kernel drops the lock when its holder dies (kill -9 included), so a crashed
writer never leaves a key locked. Lock files are tiny and are kept: deleting
one while another process waits on it would let two writers in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from eegfm.atomic import naming_unwritable

logger = logging.getLogger(__name__)


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of a cache entry: ``<entry>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def key_lock(path: str | os.PathLike, *, what: str) -> Iterator[None]:
    """Hold the exclusive lock of cache entry ``path`` for the block; wait while another process holds it.

    Parameters
    ----------
    path
        The cache entry (it need not exist yet).
    what
        How the entry is named in the log line written while waiting.
    """
    lock = lock_path(path)
    with naming_unwritable(lock.parent):
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP):  # e.g. NFS mounted with nolock
                logger.warning("%s: the file system of %s has no POSIX locks (%s); two runs sharing this cache may "
                               "compute the same entry twice (each still publishes it atomically)", what, lock, err)
            elif err.errno in (errno.EACCES, errno.EAGAIN):
                logger.info("%s: another process is writing it; waiting for it to finish (lock %s)", what, lock)
                t0 = time.perf_counter()
                fcntl.lockf(fd, fcntl.LOCK_EX)
                logger.info("%s: the other writer finished after %.1f s", what, time.perf_counter() - t0)
            else:
                raise
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
