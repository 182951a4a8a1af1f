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
    # First among ready jobs: it is cheap, its audit (leakage, content duplicates) should stop a run
    # before embeddings are spent, and every probe and fine-tune fold waits on it.
    priority: 10
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/splits.py"
