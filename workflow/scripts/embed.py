"""Rule embed: windows x backbone -> content-addressed embedding store + pointer."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import Backbone, Embedding
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.gpus import claim_gpus  # noqa: E402

# Before torch starts CUDA: pin free GPUs on a workstation (SLURM pins its own).
claim_gpus(int(snakemake.resources.get("gpu", 0)))  # noqa: F821

from eegfm.embed import embed  # noqa: E402
from eegfm.job_protocol import wait_for_heavy_modules  # noqa: E402

params = snakemake.params  # noqa: F821
embed(
    windows_dir=snakemake.input.info.rsplit("/", 1)[0],  # noqa: F821
    cfg=Backbone.model_validate_json(params.backbone),
    emb=Embedding.model_validate_json(params.embedding).model_copy(update={"threads": snakemake.threads}),  # noqa: F821
    seed=params.seed,
    cache_dir=params.cache,
    pointer_path=snakemake.output[0],  # noqa: F821
    dataset=snakemake.wildcards.dataset,  # noqa: F821
    corpus=params.corpus,
    pretrain_dir=str(Path(snakemake.input.pretrained).parent) if "pretrained" in snakemake.input.keys() else None,  # noqa: F821
    before_compute=wait_for_heavy_modules,  # a cache hit needs no torch (docs/architecture.md §4.4)
)
