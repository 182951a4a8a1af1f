"""Faults driven for real: processes killed with SIGKILL by pid, chunks deleted, a full disk, concurrent runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.finetune.conftest import ft_data  # noqa: F401 — a small real windows store (6 subjects, 3 classes)

#: Children see the same eegfm as the tests (the checkout's src first).
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Jobs run in-process here set torch's thread count (embed does); later tests must not inherit it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def kill_when(args: list[str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start ``python args...``, SIGKILL it by pid as soon as ``ready()`` holds; fail if it ended first."""
    proc = subprocess.Popen([sys.executable, *args], env=CHILD_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the process ended (or timed out) before it could be killed: {proc.communicate()[1][-3000:]}")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
