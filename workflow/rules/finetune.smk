# Windows x fold -> one trained model per backbone x regime (head, LoRA, QLoRA,
# full, LP-FT, scratch), with its history, checkpoint, model card and
# diagnostics. GPU, memory and runtime come from `finetune:` in the config;
# partitions and GPU models only from profiles (DESIGN §3.4).


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
        # resources and the job list are not science: changing them re-runs nothing
        finetune=as_json(CFG.finetune, exclude={"backbones", "regimes", "threads", "gpus", "mem_mb", "runtime"}),
        seed=CFG.seed,
        group_by=lambda w: CFG.datasets[w.dataset].cv.group_by,
    log:
        f"{LOGS}/finetune/{{dataset}}/{{backbone}}/{{regime}}/fold-{{fold}}.log",
    threads: CFG.finetune.threads
    resources:
        mem_mb=CFG.finetune.mem_mb,
        runtime=CFG.finetune.runtime,
        gpu=max(CFG.finetune.gpus, int(CFG.finetune.device == "cuda")),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/finetune.py"
