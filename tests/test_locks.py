"""One writer per cache key: the lock excludes a second process until the first releases it (or dies)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from eegfm.locks import key_lock, lock_path

HOLD = """
import sys, time
from eegfm.locks import key_lock
with key_lock(sys.argv[1], what="test"):
    open(sys.argv[2], "w").close()
    time.sleep(float(sys.argv[3]))
"""


def _holder(tmp_path, seconds):
    entry, held = tmp_path / "k.zarr", tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(entry), str(held), str(seconds)])
    deadline = time.time() + 60
    while not held.exists():
        assert proc.poll() is None and time.time() < deadline, "the holder did not take the lock"
        time.sleep(0.02)
    return entry, proc


def test_a_second_writer_waits_for_the_first(tmp_path, caplog):
    entry, proc = _holder(tmp_path, 1.5)
    t0 = time.perf_counter()
    with caplog.at_level("INFO", logger="eegfm.locks"), key_lock(entry, what="entry k"):
        waited = time.perf_counter() - t0
    assert proc.wait(timeout=30) == 0
    assert waited > 1.0 and "entry k: another process is writing it; waiting" in caplog.text
    assert lock_path(entry) == tmp_path / "k.zarr.lock"


def test_a_killed_holder_releases_the_lock(tmp_path):
    entry, proc = _holder(tmp_path, 600)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.perf_counter()
    with key_lock(entry, what="entry"):
        assert time.perf_counter() - t0 < 5
