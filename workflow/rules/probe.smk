# Frozen embeddings -> a scikit-learn probe per fold, each fit on its training fold only.
# One job per dataset x backbone fits every fold (a fit takes milliseconds; a process
# per fold took seconds of imports) and writes one folder per fold.


rule probe:
    input:
        embedding=f"{RES}/{{dataset}}/embeddings/{{backbone}}.json",
        windows=f"{RES}/{{dataset}}/windows/windows.json",
        folds=f"{RES}/{{dataset}}/splits/folds.json",
    output:
        directory(f"{RES}/{{dataset}}/probe/{{backbone}}"),
    params:
        probe=as_json(CFG.probe),
        seed=CFG.seed,
    log:
        f"{LOGS}/probe/{{dataset}}/{{backbone}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/probe.py"
