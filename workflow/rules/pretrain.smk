# Windows of role: pretrain datasets -> weights of one pretraining recipe, in
# the registry's local format; backbones use them with weights: pretrain:<name>.
# Checkpoints under resume/ are not outputs, so a killed job's rerun keeps them.


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
        recipe=lambda w: as_json(CFG.pretrain[w.name], exclude={"threads", "gpus"}),
        seed=CFG.seed,
    log:
        f"{LOGS}/pretrain/{{name}}.log",
    threads: lambda w: CFG.pretrain[w.name].threads
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=lambda w: max(CFG.pretrain[w.name].gpus, int(CFG.pretrain[w.name].device == "cuda")),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain.py"
