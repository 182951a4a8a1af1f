"""Rule pretrain: windows of the recipe's datasets -> weights folder, manifest, history (resumable)."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import Pretrain
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.gpus import claim_gpus  # noqa: E402

claim_gpus(int(snakemake.resources.get("gpu", 0)))  # noqa: F821 — before torch starts CUDA

import torch  # noqa: E402

from eegfm.pretrain.run import run_pretrain  # noqa: E402

torch.set_num_threads(snakemake.threads)  # noqa: F821
run_pretrain(
    [str(Path(p).parent) for p in snakemake.input.info],  # noqa: F821
    Pretrain.model_validate_json(snakemake.params.recipe),  # noqa: F821
    name=snakemake.wildcards.name,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    out_dir=Path(snakemake.output.manifest).parent,  # noqa: F821
)
