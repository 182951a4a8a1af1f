"""Pin a job to free GPUs on a workstation, where nothing else does.

SLURM sets ``CUDA_VISIBLE_DEVICES`` for a job that asked for ``--gpus``; a
local Snakemake run does not, so every GPU job would land on device 0.
:func:`claim_gpus` picks free devices itself: one lock file per device under
a folder shared by the jobs of a workflow, held (``flock``) for the life of
the process, so that concurrent jobs never share a device and a crashed job
frees its device. Cap concurrency with ``snakemake --resources gpu=N``.

Nothing here imports torch: ``CUDA_VISIBLE_DEVICES`` must be set before
torch initialises CUDA.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import re
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(".snakemake") / "eegfm" / "gpu-locks"

# File descriptors of the locks this process holds; never closed, so the locks
# last as long as the process (the kernel releases them when it exits).
_HELD: dict[int, int] = {}


def count_gpus() -> int:
    """Number of NVIDIA GPUs that ``nvidia-smi -L`` lists; 0 without a driver or GPU."""
    try:
        proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        logger.info("no NVIDIA GPU found (nvidia-smi -L: %s)", err)
        return 0
    if proc.returncode != 0:
        logger.info("no NVIDIA GPU found (nvidia-smi -L exited %d: %s)", proc.returncode,
                    (proc.stdout + proc.stderr).strip()[:300])
        return 0
    return sum(1 for line in proc.stdout.splitlines() if re.match(r"GPU \d+:", line))


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release(fds: dict[int, int]) -> None:
    for fd in fds.values():
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def claim_gpus(
    n: int,
    lock_dir: str | os.PathLike | None = None,
    *,
    timeout_s: float | None = None,
    poll_s: float = 2.0,
) -> list[int]:
    """Claim ``n`` free GPUs for this process and set ``CUDA_VISIBLE_DEVICES``.

    Parameters
    ----------
    n
        GPUs the job asked for (its Snakemake ``gpu`` resource). ``n <= 0``
        does nothing.
    lock_dir
        Folder of the per-device lock files, shared by all jobs that may run
        at once; default ``.snakemake/eegfm/gpu-locks`` in the working
        directory (Snakemake's ``--directory``).
    timeout_s
        How long to wait for ``n`` devices to become free (jobs started
        without a ``--resources gpu=N`` cap queue here); ``None`` waits until
        they are.
    poll_s
        Seconds between attempts while waiting.

    Returns
    -------
    list of int
        The device indices this process may use: the claimed ones, or those
        ``CUDA_VISIBLE_DEVICES`` already named (set by SLURM or the user, and
        left untouched). Empty when ``n <= 0`` or no GPU exists; the job then
        runs on the CPU (``device: auto``).

    Raises
    ------
    TimeoutError
        When ``timeout_s`` passed before ``n`` devices were free.
    """
    if n <= 0:
        return []
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    if preset is not None:
        logger.info("CUDA_VISIBLE_DEVICES=%r already set (by SLURM or the user); not pinning GPUs", preset)
        return [int(x) for x in preset.split(",") if x.strip().isdigit()]
    available = count_gpus()
    if available == 0:
        logger.info("job asked for %d GPU(s) but none exists; running on CPU", n)
        return []
    if n > available:
        logger.warning("job asked for %d GPUs but this machine has %d; using %d", n, available, available)
        n = available
    folder = Path(lock_dir) if lock_dir is not None else DEFAULT_LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waited = False
    while True:
        got: dict[int, int] = {}
        for index in range(available):
            fd = _try_lock(folder / f"gpu{index}.lock")
            if fd is not None:
                got[index] = fd
                if len(got) == n:
                    break
        if len(got) == n:
            break
        _release(got)  # all or nothing, so two jobs never hold half of what each needs
        if timeout_s is not None and time.monotonic() - start >= timeout_s:
            raise TimeoutError(
                f"no {n} free GPU(s) of {available} after {timeout_s:g} s (locks in {folder}); "
                "cap GPU jobs with `snakemake --resources gpu=N`"
            )
        if not waited:
            logger.info("all %d GPU(s) are claimed by other jobs (locks in %s); waiting", available, folder)
            waited = True
        time.sleep(poll_s * (0.5 + random.random()))
    _HELD.update(got)
    devices = sorted(got)
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
    logger.info("claimed GPU(s) %s of %d (locks in %s): CUDA_VISIBLE_DEVICES=%s",
                devices, available, folder, os.environ["CUDA_VISIBLE_DEVICES"])
    return devices
