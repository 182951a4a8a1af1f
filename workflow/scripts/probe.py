"""Rule probe: frozen embeddings -> fold-<k>/predictions.tsv + metrics.json for every fold."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from eegfm.config import Probe
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.probe import run_probe  # noqa: E402

run_probe(
    embedding_pointer=snakemake.input.embedding,  # noqa: F821
    windows_dir=snakemake.input.windows.rsplit("/", 1)[0],  # noqa: F821
    folds_path=snakemake.input.folds,  # noqa: F821
    cfg=Probe.model_validate_json(snakemake.params.probe),  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    out_dir=snakemake.output[0],  # noqa: F821
)
