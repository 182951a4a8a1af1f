# Windows -> cross-validation folds of the configured design, with a leakage audit
# (units, gaps, content duplicates).


rule splits:
    input:
        zarr=f"{RES}/{{dataset}}/windows/windows.zarr",
        tsv=f"{RES}/{{dataset}}/windows/windows.tsv",
        info=f"{RES}/{{dataset}}/windows/windows.json",
    output:
        f"{RES}/{{dataset}}/splits/folds.json",
    params:
        cv=lambda w: as_json(CFG.datasets[w.dataset].cv),
        seed=CFG.seed,
        n_folds=lambda w: n_folds(w.dataset),
    log:
        f"{LOGS}/splits/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/splits.py"
