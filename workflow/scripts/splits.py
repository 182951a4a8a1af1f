"""Rule splits: windows store -> leakage-audited folds.json (design, gaps, content duplicates)."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from pathlib import Path

from eegfm.config import CrossValidation
from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm.splits import SplitError, make_folds, write_folds  # noqa: E402
from eegfm.windows_store import content_hashes, open_windows  # noqa: E402

store = open_windows(Path(snakemake.input.info).parent)  # noqa: F821
meta = store.meta.assign(content_hash=content_hashes(store).loc[store.meta["window_id"]].to_numpy())
cv = CrossValidation.model_validate_json(snakemake.params.cv)  # noqa: F821
folds = make_folds(meta, cv, seed=snakemake.params.seed, window_s=store.info["n_times"] / store.info["sfreq"],  # noqa: F821
                   target=store.info.get("target", "classification"))
expected = snakemake.params.n_folds  # noqa: F821
if folds["n_splits"] != expected:
    raise SplitError(
        f"the windows give {folds['n_splits']} {cv.scheme} folds but the workflow planned {expected} from the "
        "recordings (a recording without windows?); fix or remove the recordings that yield no window"
    )
folds["windows_key"] = store.key
write_folds(snakemake.output[0], folds, meta)  # noqa: F821
