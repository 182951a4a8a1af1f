# Frozen embeddings x fold -> a scikit-learn probe fit on the training fold only.


rule probe:
    input:
        embedding=f"{RES}/{{dataset}}/embeddings/{{backbone}}.json",
        windows=f"{RES}/{{dataset}}/windows/windows.json",
        folds=f"{RES}/{{dataset}}/splits/folds.json",
    output:
        predictions=f"{RES}/{{dataset}}/probe/{{backbone}}/fold-{{fold}}/predictions.tsv",
        metrics=f"{RES}/{{dataset}}/probe/{{backbone}}/fold-{{fold}}/metrics.json",
    params:
        probe=as_json(CFG.probe),
        seed=CFG.seed,
    log:
        f"{LOGS}/probe/{{dataset}}/{{backbone}}/fold-{{fold}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/probe.py"
