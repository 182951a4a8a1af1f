"""Data-parallel training (torch.distributed): who this process is, and the few collectives training needs.

A fine-tuning or pretraining job started with ``finetune.processes`` /
``pretrain.<name>.processes`` > 1 runs the same code in every process
(:mod:`eegfm.launch` starts them with torchrun or srun). Each process calls
:func:`init_from_env` once; the training code then asks :func:`world` who
it is. With one process nothing here communicates and :func:`world` says
rank 0 of 1, so single-process jobs run the code they always ran.

Backends: NCCL when CUDA is available, else gloo (CPU processes).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

# A rank that waits longer than this for the others (one of them hangs) fails the job.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This process's place among the job's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes artifacts."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The current process group's view of this process (rank 0 of 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def env_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's variables, else srun's (SLURM_PROCID ...), else (0, 1, 0)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", "0"))
    return 0, 1, 0


def init_from_env() -> World:
    """Join the job's process group (MASTER_ADDR/MASTER_PORT from the launcher); pick this rank's GPU.

    Returns
    -------
    World
        Rank 0 of 1, without a process group, when the environment names no other process.
    """
    rank, size, local = env_rank()
    if size == 1:
        return World()
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(size), "LOCAL_RANK": str(local)})
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(cuda_index(local))
    dist.init_process_group(backend, timeout=TIMEOUT)
    slurm = os.environ.get("SLURM_STEP_ID")
    where = f", SLURM job {os.environ.get('SLURM_JOB_ID')} step {slurm} task {os.environ.get('SLURM_PROCID')}" if slurm else ""
    logger.info("rank %d of %d (local %d) on %s joined the process group (%s, %s:%s%s)", rank, size, local,
                os.uname().nodename, backend, os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT"), where)
    return World(rank, size, local)


def cuda_index(local_rank: int) -> int:
    """This rank's CUDA device: its local rank among the visible devices (srun may show each task one)."""
    return local_rank % max(1, torch.cuda.device_count())


def device_for(device: torch.device) -> torch.device:
    """``device`` made this rank's own: ``cuda`` -> ``cuda:<local rank>`` in a distributed job."""
    w = world()
    if device.type == "cuda" and w.distributed:
        return torch.device("cuda", cuda_index(w.local_rank))
    return device


def close() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world().distributed:
        dist.barrier()


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over ranks (float64 on ``device``; as given in one process)."""
    if not world().distributed:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_rows(part: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows, in rank order (``part`` as is in one process)."""
    if not world().distributed:
        return part
    parts: list[Any] = [None] * world().size
    dist.all_gather_object(parts, part.cpu())
    return torch.cat([p for p in parts if p.numel()])


def wrap(model: torch.nn.Module, device: torch.device, *, find_unused: bool = False) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged over ranks), or as is in one process.

    Wrap again whenever ``requires_grad`` changes (a new training phase):
    DDP registers the trainable parameters when it is built.
    """
    if not world().distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
