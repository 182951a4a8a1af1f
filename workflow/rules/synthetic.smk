# The built-in dataset, written as BIDS/EDF so it is read like users' data.


rule synthetic:
    output:
        directory(f"{RES}/{{dataset}}/raw/bids"),
    params:
        # the task is chosen when reading; both tasks are always generated
        settings=lambda w: as_json(CFG.datasets[w.dataset].synthetic, exclude={"task"}),
    log:
        f"{LOGS}/synthetic/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/synthetic.py"
