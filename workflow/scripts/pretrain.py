"""Rule pretrain: windows of the recipe's datasets -> weights folder, manifest, history (resumable).

With more than one process (pretrain.<name>.processes, or gpus > 1) the recipe
trains data-parallel: eegfm.launch starts the processes (torchrun, or srun
inside a SLURM job) and rank 0 writes checkpoints and outputs.
"""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import Pretrain
from eegfm.launch import run
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.gpus import claim_gpus  # noqa: E402

claim_gpus(int(snakemake.resources.get("gpu", 0)))  # noqa: F821 — before torch starts CUDA

params = snakemake.params  # noqa: F821
recipe = Pretrain.model_validate_json(params.recipe).model_copy(
    update={"processes": params.processes, "nodes": params.nodes, "workers": params.workers})
out_dir = Path(snakemake.output.manifest).parent  # noqa: F821
kwargs = dict(
    windows_dirs=[str(Path(p).parent) for p in snakemake.input.info],  # noqa: F821
    recipe=recipe,
    name=snakemake.wildcards.name,  # noqa: F821
    seed=params.seed,
    out_dir=out_dir,
)
# one process here, or params.processes data-parallel ones (torchrun / srun)
run("pretrain", kwargs, processes=params.processes, nodes=params.nodes, threads=params.threads_per_process,
    spec_dir=out_dir)
