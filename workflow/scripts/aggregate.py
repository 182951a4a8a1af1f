"""Rule aggregate: every fold's artifacts -> tables, statistics, figures, report.html."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.report import aggregate  # noqa: E402
from eegfm.splits import load_folds  # noqa: E402

params = snakemake.params  # noqa: F821
inputs = snakemake.input  # noqa: F821
# A probe folder holds fold-<k>/ for every fold its dataset's folds.json lists.
folds = {d: load_folds(path)["folds"] for d, path in zip(params.datasets, inputs.folds)}
probe_metrics = [
    f"{folder}/fold-{entry['fold']}/metrics.json"
    for folder in inputs.probes
    for entry in folds[Path(folder).parts[-3]]  # <results>/<dataset>/probe/<backbone>
]
aggregate(
    probe_metrics + list(inputs.metrics),
    list(inputs.pointers),
    str(Path(snakemake.output.html).parent),  # noqa: F821
    title=params.title,
    primary_metric=params.primary_metric,
    config_hash=params.config_hash,
    config=dict(params.config),
    windows_paths=dict(zip(params.datasets, inputs.windows)),
    folds_paths=dict(zip(params.datasets, inputs.folds)),
    n_permutations=params.n_permutations,
    n_bootstrap=params.n_bootstrap,
    ci_level=params.ci_level,
    ci_min_units=params.ci_min_units,
    alpha=params.alpha,
    seed=params.seed,
    workers=snakemake.threads,  # noqa: F821
)
