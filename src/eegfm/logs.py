"""Send a job's stderr, warnings and logging to its Snakemake log file."""

from __future__ import annotations

import logging
import os
import sys
import traceback


def log_to(path: str | os.PathLike) -> None:
    """Redirect stderr (progress bars, warnings) and logging to ``path``.

    An uncaught exception is written to the log and, in one line, to the
    terminal, so the cause is visible without opening the log.
    """
    from eegfm import job_protocol  # standard library only

    # a job started again by the job server keeps what its first attempt logged (a damaged cache entry)
    mode = "a" if job_protocol.restarted else "w"
    stream = open(path, mode, buffering=1, encoding="utf-8")  # noqa: SIM115 — lives as long as the job
    sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        stream=stream,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)

    def _hook(kind, value, tb):
        traceback.print_exception(kind, value, tb, file=stream)
        print(f"eegfm error ({path}): {kind.__name__}: {value}", file=sys.__stderr__)

    sys.excepthook = _hook
