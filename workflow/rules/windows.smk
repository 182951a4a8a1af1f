# Recordings -> preprocessed, labelled windows (zarr + tsv) and their content key.


rule windows:
    input:
        windows_inputs,
    output:
        zarr=directory(f"{RES}/{{dataset}}/windows/windows.zarr"),
        tsv=f"{RES}/{{dataset}}/windows/windows.tsv",
        info=f"{RES}/{{dataset}}/windows/windows.json",
    params:
        source=lambda w: as_json(CFG.datasets[w.dataset], include={"source", CFG.datasets[w.dataset].source}),
        preprocessing=lambda w: as_json(CFG.datasets[w.dataset].preprocessing),
        windows=lambda w: as_json(CFG.datasets[w.dataset].windows),
        synthetic_root=lambda w: f"{RES}/{w.dataset}/raw/bids",
        # The held-out unit: every such group must keep at least one window.
        group_by=lambda w: CFG.datasets[w.dataset].cv.group_by,
        # 'regression': every label must be a finite number (checked, recorded in windows.json).
        target=lambda w: CFG.datasets[w.dataset].target,
        recordings=windows_stamp,
        # a store built before from the same bytes and settings is reused (eegfm.windows_cache)
        cache=CFG.cache,
    log:
        f"{LOGS}/windows/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/windows.py"
