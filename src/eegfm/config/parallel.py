"""How one training job (fine-tuning or pretraining) spreads over processes and nodes."""

from __future__ import annotations

from pydantic import Field, model_validator

from eegfm.config.base import StrictModel


class DataParallel(StrictModel):
    """How one training job spreads over processes and nodes (DDP; docs/distributed.md). Not science: not in params."""

    processes: int | None = Field(
        None,
        ge=1,
        description="Data-parallel (DDP) processes of one job, all nodes together; each trains on its share "
        "of every global batch (the batch size setting stays the global batch). null: one per GPU ('gpus'), or 1. "
        "Started with torchrun on a workstation, with srun inside a SLURM job.",
    )
    nodes: int = Field(
        1, ge=1, description="Nodes one job spans (SLURM only; processes are spread evenly over them)."
    )
    workers: int = Field(
        0, ge=0, description="DataLoader worker processes per training process that read and adapt the next "
        "batches from the windows store (0: read in the training process)."
    )

    @model_validator(mode="after")
    def _one_process_per_gpu(self):
        if self.processes is not None and self.gpus > 0 and self.processes != self.gpus:
            raise ValueError(
                f"processes ({self.processes}) must equal gpus ({self.gpus}): one process per GPU; "
                "leave processes null to take one per GPU"
            )
        if self.world_size % self.nodes:
            raise ValueError(f"processes ({self.world_size}) must be a multiple of nodes ({self.nodes})")
        return self

    @property
    def world_size(self) -> int:
        """Processes of one job: ``processes``, else one per GPU, else 1."""
        return self.processes if self.processes is not None else max(1, self.gpus)
