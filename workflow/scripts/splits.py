"""Rule splits: windows.tsv -> leakage-audited folds.json."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

import json

from eegfm.config import CrossValidation
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

import pandas as pd  # noqa: E402

from eegfm.splits import make_folds, write_folds  # noqa: E402

meta = pd.read_csv(snakemake.input.tsv, sep="\t", dtype={"subject": str, "session": str, "run": str, "label": str})  # noqa: F821
folds = make_folds(meta, CrossValidation.model_validate_json(snakemake.params.cv), seed=snakemake.params.seed)  # noqa: F821
with open(snakemake.input.info) as fh:  # noqa: F821
    folds["windows_key"] = json.load(fh)["key"]
write_folds(snakemake.output[0], folds, meta)  # noqa: F821
