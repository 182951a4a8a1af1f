# Every fold of every dataset x model -> metrics, summary, figure and report.


rule aggregate:
    input:
        metrics=probe_metrics(),
        pointers=embedding_pointers(),
    output:
        metrics=f"{RES}/report/metrics.tsv",
        summary=f"{RES}/report/summary.tsv",
        summary_json=f"{RES}/report/summary.json",
        figure=report(
            f"{RES}/report/figures/scores.png",
            caption="../report/scores.rst",
            category="Scores",
        ),
        html=f"{RES}/report/report.html",
    params:
        title=CFG.report.title,
        primary_metric=CFG.report.primary_metric,
        config_hash=CONFIG_HASH,
        config=CFG.model_dump(mode="json"),
    log:
        f"{LOGS}/aggregate.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/eegfm.yaml"
    script:
        "../scripts/aggregate.py"
