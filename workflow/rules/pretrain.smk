# Windows of role: pretrain datasets -> weights of one pretraining recipe, in
# the registry's local format; backbones use them with weights: pretrain:<name>.
# Checkpoints under resume/ are not outputs, so a killed job's rerun keeps them.
# pretrain.<name>.processes (or gpus) > 1: one job trains data-parallel
# (torchrun locally, srun tasks on SLURM; docs/distributed.md).


rule pretrain:
    input:
        info=lambda w: [f"{RES}/{d}/windows/windows.json" for d in CFG.pretrain[w.name].datasets],
        zarr=lambda w: [f"{RES}/{d}/windows/windows.zarr" for d in CFG.pretrain[w.name].datasets],
    output:
        weights=f"{RES}/pretrain/{{name}}/weights/model.safetensors",
        recipe=f"{RES}/pretrain/{{name}}/weights/recipe.json",
        manifest=f"{RES}/pretrain/{{name}}/manifest.json",
        history=f"{RES}/pretrain/{{name}}/history.tsv",
        data=f"{RES}/pretrain/{{name}}/data.json",
    params:
        recipe=lambda w: as_json(CFG.pretrain[w.name], exclude={"threads", "gpus", "processes", "nodes", "workers"}),
        processes=lambda w: CFG.pretrain[w.name].world_size,
        nodes=lambda w: CFG.pretrain[w.name].nodes,
        workers=lambda w: CFG.pretrain[w.name].workers,
        threads_per_process=lambda w: CFG.pretrain[w.name].threads,
        seed=CFG.seed,
    log:
        f"{LOGS}/pretrain/{{name}}.log",
    threads: lambda w: training_threads(CFG.pretrain[w.name])
    resources:
        runtime=240,
        **pretrain_resources(6000),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain.py"
