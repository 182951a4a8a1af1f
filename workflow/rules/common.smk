# Config validation, paths and input functions shared by every rule.
import glob
import re
import sys
from pathlib import Path

from snakemake.utils import validate

# Make src/ importable at parse time without `pip install -e .`; jobs get it
# through workflow/scripts/_bootstrap.py.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from eegfm.config import ConfigError, Pretrain, load_config
from eegfm.hashing import sha256_json

# Validated twice (DESIGN §3.5): pydantic first, for messages that name the
# key and the allowed values, then the JSON Schema generated from it.
try:
    CFG = load_config(config)
except ConfigError as err:
    raise ValueError(str(err)) from None
validate(config, "../schemas/config.schema.yaml")

RES = CFG.results.rstrip("/")
LOGS = f"{RES}/logs"
# Evaluated datasets; those with role: pretrain are only windowed for pretraining.
DATASETS = sorted(d for d, ds in CFG.datasets.items() if ds.role == "evaluate")
ALL_DATASETS = sorted(CFG.datasets)
PRETRAIN = sorted(CFG.pretrain)
BACKBONES = [b.label for b in CFG.backbones]
CONFIG_HASH = sha256_json(CFG.model_dump(mode="json"))

# Pretrained weights that cannot fit their model stop the run here, before any
# job; only in the main process (cluster jobs re-parse the workflow). A passed
# check is remembered per file (path, size, mtime) under .snakemake/.
if workflow.is_main_process and any(b.weights and not b.pretrain_ref for b in CFG.backbones):
    from eegfm.backbones.checkpoints import check_config_weights

    try:
        check_config_weights(CFG, cache_dir=Path(".snakemake") / "eegfm" / "weights-checked")
    except ValueError as err:
        raise ValueError(str(err)) from None


wildcard_constraints:
    dataset="|".join(map(re.escape, ALL_DATASETS)),
    backbone="|".join(map(re.escape, BACKBONES)),
    fold=r"\d+",
    regime="|".join(map(re.escape, CFG.finetune.regimes)) or "none",
    name="|".join(map(re.escape, PRETRAIN)) or "none",


def as_json(model, **kwargs):
    """A pydantic (sub-)config as a stable JSON string for `params:`; only the
    settings a rule uses enter its params, so unrelated edits do not re-run it."""
    return model.model_dump_json(**kwargs)


def training_resources(settings, mem_mb, distributed=None):
    """Resources of a training job with settings.world_size data-parallel processes (docs/distributed.md).

    Locally `threads` and `mem_mb` are the job's whole share of the machine:
    per process x processes. On SLURM every process is a task with `threads`
    CPUs (`cpus_per_task`) and `mem_mb` is per node; `mpi` tells the executor
    plugin that the script starts its own tasks (srun, through eegfm.launch),
    so it does not wrap the job in `srun -n1`. One process per GPU.
    `distributed` (default: more than one process) adds the task keys.
    """
    procs, nodes = settings.world_size, settings.nodes
    res = {"mem_mb": mem_mb * -(-procs // nodes), "gpu": max(settings.gpus, int(settings.device == "cuda"))}
    if procs > 1 if distributed is None else distributed:
        res.update(tasks=procs, nodes=nodes, cpus_per_task=settings.threads, mpi="srun",
                   tasks_per_gpu=int(bool(res["gpu"]) and procs > 1))
    return res


def pretrain_resources(mem_mb):
    """training_resources of each pretraining recipe, as wildcard functions with one key set for all."""
    distributed = any(p.world_size > 1 for p in CFG.pretrain.values())
    keys = training_resources(Pretrain(), mem_mb, distributed)
    return {k: (lambda w, k=k: training_resources(CFG.pretrain[w.name], mem_mb, distributed)[k]) for k in keys}


def training_threads(settings):
    """Cores a training job takes on one machine: threads of each process x processes per node."""
    return settings.threads * -(-settings.world_size // settings.nodes)


def pretrain_dir(name):
    return f"{RES}/pretrain/{name}"


def backbone_json(label):
    """A backbone entry for a job's params, with 'pretrain:<name>' resolved to the weights folder."""
    b = CFG.backbone(label)
    if b.pretrain_ref:
        b = b.model_copy(update={"weights": f"{pretrain_dir(b.pretrain_ref)}/weights"})
    return as_json(b)


def pretrained_inputs(wildcards):
    """The pretraining manifest a backbone's weights come from (none for other weights)."""
    ref = CFG.backbone(wildcards.backbone).pretrain_ref
    return {"pretrained": f"{pretrain_dir(ref)}/manifest.json"} if ref else {}


def windows_dir(dataset):
    return f"{RES}/{dataset}/windows"


def windows_inputs(wildcards):
    """Recording files of a dataset, so that editing them re-runs windowing."""
    ds = CFG.datasets[wildcards.dataset]
    if ds.source == "synthetic":
        return [f"{RES}/{wildcards.dataset}/raw/bids"]
    if ds.source == "files":
        if ds.files.metadata:
            return [ds.files.metadata]
        return sorted({p for pattern in ds.files.paths for p in glob.glob(pattern, recursive=True)})
    return []  # BIDS: read by mne-bids; re-run with --forcerun windows after editing the root


def n_folds(dataset):
    """Folds are known when the DAG is built: n_splits, or the number of
    groups for leave-one-subject-out (counted from the recordings found)."""
    ds = CFG.datasets[dataset]
    if ds.cv.scheme == "group_kfold":
        return ds.cv.n_splits
    if ds.source == "synthetic":
        syn = ds.synthetic
        return syn.n_subjects if syn.task == "target" else syn.n_source_subjects
    from eegfm.recordings import find_recordings
    from eegfm.splits import GROUP_COLUMNS

    columns = GROUP_COLUMNS[ds.cv.group_by]
    return len({tuple(getattr(r, c) for c in columns) for r in find_recordings(ds)})


def probe_metrics():
    return [
        f"{RES}/{d}/probe/{b}/fold-{f}/metrics.json"
        for d in DATASETS
        for b in BACKBONES
        for f in range(n_folds(d))
    ]


def finetune_fold_dirs():
    """One folder per dataset x fine-tuned backbone x regime x fold."""
    return [
        f"{RES}/{d}/finetune/{b}/{r}/fold-{f}"
        for d in DATASETS
        for b in CFG.finetune.backbones
        for r in CFG.finetune.regimes
        for f in range(n_folds(d))
    ]


def probe_fold_dirs():
    return [f"{RES}/{d}/probe/{b}/fold-{f}" for d in DATASETS for b in BACKBONES for f in range(n_folds(d))]


def embedding_pointers():
    return [f"{RES}/{d}/embeddings/{b}.json" for d in DATASETS for b in BACKBONES]


def report_outputs():
    return [f"{RES}/report/{name}" for name in ("report.html", "summary.json", "metrics.tsv", "summary.tsv")]
