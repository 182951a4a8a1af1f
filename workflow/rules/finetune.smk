# Windows x fold -> one trained model per backbone x regime (head, LoRA, QLoRA,
# full, LP-FT, scratch), with its history, checkpoint, model card and
# diagnostics. GPU, memory and runtime come from `finetune:` in the config;
# partitions and GPU models only from profiles (docs/architecture.md, invariant 4). With
# finetune.processes (or gpus) > 1 one job trains data-parallel: torchrun on a
# workstation, srun tasks on SLURM (docs/distributed.md). finetune.export: onnx
# adds model.onnx to each fold folder (recorded in model_card.json).


rule finetune:
    input:
        unpack(pretrained_inputs),
        zarr=f"{RES}/{{dataset}}/windows/windows.zarr",
        info=f"{RES}/{{dataset}}/windows/windows.json",
        folds=f"{RES}/{{dataset}}/splits/folds.json",
    output:
        metrics=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/metrics.json",
        predictions=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/predictions.tsv",
        history=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/history.tsv",
        model_card=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/model_card.json",
        diagnostics=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/diagnostics.json",
        checkpoint=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/checkpoint.json",
        weights=f"{RES}/{{dataset}}/finetune/{{backbone}}/{{regime}}/fold-{{fold}}/checkpoint.safetensors",
    params:
        backbone=lambda w: backbone_json(w.backbone),
        weights=weights_stamp,
        # resources and the job list are not science: changing them re-runs nothing
        finetune=as_json(CFG.finetune, exclude=set(CFG.finetune.RUN_KEYS)),
        # how the job runs: processes (DDP), nodes, threads of each; not science, not in `finetune`
        processes=CFG.finetune.world_size,
        nodes=CFG.finetune.nodes,
        workers=CFG.finetune.workers,
        threads_per_process=CFG.finetune.threads,
        seed=CFG.seed,
        group_by=lambda w: CFG.datasets[w.dataset].cv.group_by,
    log:
        f"{LOGS}/finetune/{{dataset}}/{{backbone}}/{{regime}}/fold-{{fold}}.log",
    threads: training_threads(CFG.finetune)
    resources:
        runtime=CFG.finetune.runtime,
        **training_resources(CFG.finetune, CFG.finetune.mem_mb),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/finetune.py"
