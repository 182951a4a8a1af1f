"""Rule finetune: windows + folds -> one trained fold (metrics, predictions, history, checkpoint, card)."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import Backbone, Finetune
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.gpus import claim_gpus  # noqa: E402

# Before torch starts CUDA: pin free GPUs on a workstation (SLURM pins its own).
claim_gpus(int(snakemake.resources.get("gpu", 0)))  # noqa: F821

import torch  # noqa: E402

from eegfm.finetune.run import run_finetune  # noqa: E402

torch.set_num_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
wildcards = snakemake.wildcards  # noqa: F821
run_finetune(
    windows_dir=snakemake.input.info.rsplit("/", 1)[0],  # noqa: F821
    folds_path=snakemake.input.folds,  # noqa: F821
    fold=int(wildcards.fold),
    cfg=Backbone.model_validate_json(params.backbone),
    ft=Finetune.model_validate_json(params.finetune),
    regime=wildcards.regime,
    seed=params.seed,
    out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    dataset=wildcards.dataset,
    group_by=params.group_by,
    pretrain_dir=str(Path(snakemake.input.pretrained).parent) if "pretrained" in snakemake.input.keys() else None,  # noqa: F821
)
