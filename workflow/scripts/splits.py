"""Rule splits: windows store -> leakage-audited folds.json (design, gaps, content duplicates)."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import CrossValidation
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.splits import split_store  # noqa: E402
from eegfm.windows_store import open_windows  # noqa: E402

split_store(
    open_windows(Path(snakemake.input.info).parent),  # noqa: F821
    CrossValidation.model_validate_json(snakemake.params.cv),  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    path=snakemake.output[0],  # noqa: F821
    expected=snakemake.params.n_folds,  # noqa: F821
)
