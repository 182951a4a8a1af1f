# Every fold of every dataset x model x regime -> tables, statistics, figures and report.


REPORT = f"{RES}/report"
# figure name -> category in the Snakemake report; captions in workflow/report/<name>.rst
REPORT_FIGURES = {
    "scores": "Scores",
    "confusion_matrices": "Scores",
    "predicted_vs_true": "Scores",
    "training_curves": "Training",
    "critical_difference": "Comparisons",
    "cost_frontier": "Cost",
    "embeddings_pca": "Embeddings",
    "channel_adaptation": "Embeddings",
    "leakage_audit": "Data",
}


rule aggregate:
    input:
        probes=probe_dirs(),
        metrics=[f"{d}/metrics.json" for d in finetune_fold_dirs()],
        predictions=[f"{d}/predictions.tsv" for d in finetune_fold_dirs()],
        histories=[f"{d}/history.tsv" for d in finetune_fold_dirs()],
        pointers=embedding_pointers(),
        windows=[f"{RES}/{d}/windows/windows.json" for d in DATASETS],
        windows_tables=[f"{RES}/{d}/windows/windows.tsv" for d in DATASETS],
        folds=[f"{RES}/{d}/splits/folds.json" for d in DATASETS],
    output:
        metrics=f"{REPORT}/metrics.tsv",
        summary=f"{REPORT}/summary.tsv",
        statistics=f"{REPORT}/statistics.tsv",
        summary_json=f"{REPORT}/summary.json",
        html=f"{REPORT}/report.html",
        **{
            name: report(
                f"{REPORT}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category=category,
            )
            for name, category in REPORT_FIGURES.items()
        },
        **{f"{name}_svg": f"{REPORT}/figures/{name}.svg" for name in REPORT_FIGURES},
    params:
        title=CFG.report.title,
        primary_metric=CFG.report.primary_metrics,
        n_permutations=CFG.report.n_permutations,
        n_bootstrap=CFG.report.n_bootstrap,
        ci_level=CFG.report.ci_level,
        ci_min_units=CFG.report.ci_min_units,
        alpha=CFG.report.alpha,
        seed=CFG.seed,
        datasets=DATASETS,
        config_hash=CONFIG_HASH,
        config=CFG.model_dump(mode="json"),
    log:
        f"{LOGS}/aggregate.log",
    # two processes draw the figures (eegfm.figure_render.render_all); Snakemake gives at most --cores
    # locally, and a cluster job asks for 2 CPUs, which every node has
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/aggregate.py"
