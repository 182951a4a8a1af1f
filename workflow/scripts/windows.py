"""Rule windows: recordings -> windows store (zarr + tsv + json)."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from eegfm.config import Dataset, Preprocessing, Windowing
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.recordings import find_recordings  # noqa: E402
from eegfm.groups import GROUP_COLUMNS  # noqa: E402
from eegfm.windows import build_windows  # noqa: E402

params = snakemake.params  # noqa: F821
dataset = Dataset.model_validate_json(params.source)
recordings = find_recordings(dataset, synthetic_root=params.synthetic_root)
build_windows(
    recordings,
    Preprocessing.model_validate_json(params.preprocessing),
    Windowing.model_validate_json(params.windows),
    out_dir=snakemake.output.info.rsplit("/", 1)[0],  # noqa: F821
    group_by=GROUP_COLUMNS[params.group_by],
    target=params.target,
    dataset=snakemake.wildcards.dataset,  # noqa: F821
)
