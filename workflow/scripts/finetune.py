"""Rule finetune: windows + folds -> one trained fold (metrics, predictions, history, checkpoint, card).

With more than one process (finetune.processes, or gpus > 1) the fold trains
data-parallel: eegfm.launch starts the processes (torchrun, or srun inside a
SLURM job) and rank 0 writes the artifacts.
"""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import Backbone, Finetune
from eegfm.launch import run
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.gpus import claim_gpus  # noqa: E402

# Before torch starts CUDA: pin free GPUs on a workstation (SLURM pins its own); every rank inherits them.
claim_gpus(int(snakemake.resources.get("gpu", 0)))  # noqa: F821

params = snakemake.params  # noqa: F821
wildcards = snakemake.wildcards  # noqa: F821
ft = Finetune.model_validate_json(params.finetune).model_copy(
    update={"processes": params.processes, "nodes": params.nodes, "workers": params.workers})
out_dir = Path(snakemake.output.metrics).parent  # noqa: F821
kwargs = dict(
    windows_dir=snakemake.input.info.rsplit("/", 1)[0],  # noqa: F821
    folds_path=snakemake.input.folds,  # noqa: F821
    fold=int(wildcards.fold),
    cfg=Backbone.model_validate_json(params.backbone),
    ft=ft,
    regime=wildcards.regime,
    seed=params.seed,
    out_dir=out_dir,
    dataset=wildcards.dataset,
    group_by=params.group_by,
    pretrain_dir=str(Path(snakemake.input.pretrained).parent) if "pretrained" in snakemake.input.keys() else None,  # noqa: F821
)
# one process here, or params.processes data-parallel ones (torchrun / srun)
run("finetune", kwargs, processes=params.processes, nodes=params.nodes, threads=params.threads_per_process,
    spec_dir=out_dir)
