"""Rule windows: recordings -> windows store (zarr + tsv + json), or the same store from the cache."""

import _bootstrap  # noqa: F401 — puts src/ on sys.path

from eegfm.logs import log_to

log_to(snakemake.log[0])  # noqa: F821

from eegfm import job_protocol, windows_cache  # noqa: E402

params = snakemake.params  # noqa: F821
dataset_name = snakemake.wildcards.dataset  # noqa: F821
out_dir = snakemake.output.info.rsplit("/", 1)[0]  # noqa: F821
# The recipe: every input file's bytes and these settings (eegfm.windows_cache); hashing only, no MNE yet.
settings = {"source": params.source, "preprocessing": params.preprocessing, "windows": params.windows,
            "group_by": params.group_by, "target": params.target, "dataset": dataset_name}
# (a second attempt in the job server gets the key from the first: job_protocol.carried)
key = job_protocol.carried.get("recipe_key") or windows_cache.recipe_key(list(snakemake.input), settings)  # noqa: F821
what = f"windows {dataset_name}"
if windows_cache.restore(params.cache, key, out_dir, what=what) is None:
    job_protocol.heavy_modules_soon()  # new windows, new embeddings: the job server starts importing torch now
    job_protocol.wait_for_light_modules(carry={"recipe_key": key})  # in the job server: again once MNE is in
    from eegfm.config import Dataset, Preprocessing, Windowing
    from eegfm.groups import GROUP_COLUMNS
    from eegfm.recordings import find_recordings
    from eegfm.windows import build_windows

    dataset = Dataset.model_validate_json(params.source)
    recordings = find_recordings(dataset, synthetic_root=params.synthetic_root)
    build_windows(
        recordings,
        Preprocessing.model_validate_json(params.preprocessing),
        Windowing.model_validate_json(params.windows),
        out_dir=out_dir,
        group_by=GROUP_COLUMNS[params.group_by],
        target=params.target,
        dataset=dataset_name,
    )
    windows_cache.save(params.cache, key, out_dir, what=what, log_path=snakemake.log[0])  # noqa: F821
