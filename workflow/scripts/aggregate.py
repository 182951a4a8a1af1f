"""Rule aggregate: every fold's metrics -> metrics.tsv, summary, figure, report.html."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.report import aggregate  # noqa: E402

params = snakemake.params  # noqa: F821
aggregate(
    list(snakemake.input.metrics),  # noqa: F821
    list(snakemake.input.pointers),  # noqa: F821
    str(Path(snakemake.output.html).parent),  # noqa: F821
    title=params.title,
    primary_metric=params.primary_metric,
    config_hash=params.config_hash,
    config=dict(params.config),
)
