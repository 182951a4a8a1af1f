# Windows x backbone -> one frozen embedding store, computed once and shared by
# every fold and head. The store lives in the content-addressed cache; the
# pointer file under results/ names its key so Snakemake sees a normal output.


rule embed:
    input:
        unpack(pretrained_inputs),
        zarr=f"{RES}/{{dataset}}/windows/windows.zarr",
        info=f"{RES}/{{dataset}}/windows/windows.json",
    output:
        f"{RES}/{{dataset}}/embeddings/{{backbone}}.json",
    params:
        backbone=lambda w: backbone_json(w.backbone),
        weights=weights_stamp,
        embedding=as_json(CFG.embedding),
        seed=CFG.seed,
        cache=CFG.cache,
        corpus=lambda w: CFG.datasets[w.dataset].corpus,
    log:
        f"{LOGS}/embed/{{dataset}}/{{backbone}}.log",
    threads: CFG.embedding.threads
    resources:
        mem_mb=6000,
        runtime=120,
        gpu=max(CFG.embedding.gpus, int(CFG.embedding.device == "cuda")),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/embed.py"
