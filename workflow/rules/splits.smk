# Windows -> subject-wise folds with a leakage audit.


rule splits:
    input:
        tsv=f"{RES}/{{dataset}}/windows/windows.tsv",
        info=f"{RES}/{{dataset}}/windows/windows.json",
    output:
        f"{RES}/{{dataset}}/splits/folds.json",
    params:
        cv=lambda w: as_json(CFG.datasets[w.dataset].cv),
        seed=CFG.seed,
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
