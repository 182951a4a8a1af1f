"""Rule synthetic: write the built-in dataset as a BIDS root."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from eegfm.config import SyntheticSource
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 — `snakemake` is injected by the script directive

from eegfm.synthetic import write_synthetic_bids  # noqa: E402

write_synthetic_bids(snakemake.output[0], SyntheticSource.model_validate_json(snakemake.params.settings))  # noqa: F821
