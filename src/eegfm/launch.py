"""Start the processes of one data-parallel training job: torchrun on a workstation, srun inside SLURM.

A rule's script calls :func:`launch` instead of the training function when
the job has more than one process. It writes the call (function and
arguments) to a JSON spec and starts ``python -m eegfm.launch SPEC`` once
per process:

- **workstation** (no ``SLURM_JOB_ID``): ``torchrun --standalone
  --nproc-per-node N`` (``python -m torch.distributed.run``) on this machine;
  more than one node is an error here.
- **SLURM** (inside the job the executor plugin submitted with ``--ntasks``
  / ``--nodes``): ``srun --ntasks N --nodes M --kill-on-bad-exit=1``;
  rank 0's host and a free port are the rendezvous (``MASTER_ADDR``,
  ``MASTER_PORT``), ranks come from ``SLURM_PROCID``.

Each process joins the process group (:func:`eegfm.distributed.init_from_env`)
and calls the function; rank 0 writes the outputs. When any process dies
(an error, a kill, the OOM killer), torchrun or srun stops the others and
:func:`launch` raises, so the Snakemake job fails and its outputs are
removed. Nothing here imports torch: the launcher process stays small and
``CUDA_VISIBLE_DEVICES`` (set by :mod:`eegfm.gpus`) passes to every rank.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENTRIES = {
    "finetune": "eegfm.finetune.run:run_finetune",
    "pretrain": "eegfm.pretrain.run:run_pretrain",
}


class LaunchError(RuntimeError):
    """The processes could not be started, or one of them failed."""


def free_port() -> int:
    """A TCP port free on this host right now (the rendezvous port of an srun job)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def command(spec: str | os.PathLike, processes: int, nodes: int, threads: int,
            env: Mapping[str, str] | None = None) -> list[str]:
    """The command that starts ``processes`` ranks of ``python -m eegfm.launch SPEC``.

    Raises
    ------
    LaunchError
        More than one node outside SLURM.
    """
    env = os.environ if env is None else env
    if env.get("SLURM_JOB_ID"):
        return ["srun", f"--ntasks={processes}", f"--nodes={nodes}", f"--cpus-per-task={threads}",
                "--kill-on-bad-exit=1", sys.executable, "-m", "eegfm.launch", str(spec)]
    if nodes > 1:
        raise LaunchError(
            f"nodes: {nodes} needs SLURM (srun starts the processes on every node); on one machine set nodes: 1 "
            "or run with --profile workflow/profiles/slurm"
        )
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "--max-restarts=0", "-m", "eegfm.launch", str(spec)]


def _encode(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Arguments as JSON; pydantic config models as dicts, with their class names to rebuild them."""
    values, models = {}, {}
    for key, value in kwargs.items():
        if hasattr(value, "model_dump"):
            values[key], models[key] = value.model_dump(mode="json"), type(value).__name__
        elif isinstance(value, os.PathLike):
            values[key] = os.fspath(value)
        else:
            values[key] = value
    return values, models


def launch(entry: str, kwargs: dict[str, Any], *, processes: int, nodes: int = 1, threads: int = 1,
           spec_dir: str | os.PathLike | None = None) -> None:
    """Run ``ENTRIES[entry](**kwargs)`` in ``processes`` data-parallel processes and wait for them.

    Parameters
    ----------
    entry
        ``'finetune'`` or ``'pretrain'``.
    kwargs
        The function's arguments (JSON values, paths or eegfm config models).
    processes, nodes
        Ranks in all, and nodes they span (SLURM only).
    threads
        CPU threads of each rank.
    spec_dir
        Folder for the spec file, seen by every node (e.g. the job's output
        folder); default: this machine's temporary folder.

    Raises
    ------
    LaunchError
        A rank failed or was killed (the others were stopped); the job log
        holds every rank's output.
    """
    values, models = _encode(kwargs)
    spec = {"entry": ENTRIES[entry], "kwargs": values, "models": models, "threads": threads}
    env = dict(os.environ)
    if env.get("SLURM_JOB_ID"):
        env.setdefault("MASTER_ADDR", socket.gethostname())
        env.setdefault("MASTER_PORT", str(free_port()))
    try:
        out = sys.stderr.fileno()  # the job's log (eegfm.logs.log_to)
    except (AttributeError, OSError, ValueError):
        out = None
    if spec_dir is not None:
        Path(spec_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".eegfm-launch-", dir=spec_dir) as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        cmd = command(path, processes, nodes, threads, env)
        logger.info("%s: starting %d processes on %d node(s): %s", entry, processes, nodes, " ".join(cmd))
        sys.stderr.flush()
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out is not None else None)
    if proc.returncode != 0:
        raise LaunchError(
            f"{entry}: a training process failed or was killed ({cmd[0] if cmd[0] == 'srun' else 'torchrun'} "
            f"exited {proc.returncode}); every rank was stopped. The log above holds each rank's output"
        )


def run(entry: str, kwargs: dict[str, Any], *, processes: int, nodes: int = 1, threads: int = 1,
        spec_dir: str | os.PathLike | None = None) -> None:
    """A rule's training call: in this process with ``threads`` threads, or :func:`launch`'d when ``processes`` > 1."""
    if processes > 1:
        launch(entry, kwargs, processes=processes, nodes=nodes, threads=threads, spec_dir=spec_dir)
        return
    import torch

    torch.set_num_threads(threads)
    module, _, func = ENTRIES[entry].partition(":")
    getattr(importlib.import_module(module), func)(**kwargs)


def main(argv: list[str] | None = None) -> None:
    """One rank: join the process group, call the spec's function, leave."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    from eegfm.distributed import env_rank

    rank, size, _ = env_rank()
    if rank:
        os.environ["TQDM_DISABLE"] = "1"  # one progress bar per job: rank 0's
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format=f"%(asctime)s rank {rank}/{size} %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    import torch

    from eegfm import config, distributed

    torch.set_num_threads(int(spec["threads"]))
    kwargs = dict(spec["kwargs"])
    for key, name in spec["models"].items():
        kwargs[key] = getattr(config, name).model_validate(kwargs[key])
    module, _, func = spec["entry"].partition(":")
    distributed.init_from_env()
    try:
        getattr(importlib.import_module(module), func)(**kwargs)
    finally:
        distributed.close()


if __name__ == "__main__":
    main()
