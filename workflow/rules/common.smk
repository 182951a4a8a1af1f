# Config validation, paths and input functions shared by every rule.
import functools
import re
from pathlib import Path

from snakemake.utils import validate

# The Snakefile has put this checkout's src/ first on sys.path.
from eegfm.config import ConfigError, Pretrain, load_config
from eegfm.backbones.checkpoints import weights_files
from eegfm.dag import check_before_jobs, listed_recordings, recording_inputs, recording_stamp
from eegfm.hashing import sha256_json
from eegfm.recordings import RecordingError
from eegfm.windowing import WindowsError

# Validated twice (docs/architecture.md, invariant 5): pydantic first, for messages that name the
# key and the allowed values, then the JSON Schema generated from it.
try:  # a probe estimator that passed its check is remembered under .snakemake/ (no scikit-learn import)
    CFG = load_config(config, checked_dir=Path(".snakemake") / "eegfm" / "estimators-checked")
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


@functools.cache
def dataset_recordings(dataset):
    """The recordings of a files/BIDS dataset (names only, no signal): listed once by the main process
    and read back by the jobs a cluster executor starts (eegfm.dag.listed_recordings)."""
    return listed_recordings(
        CFG.datasets[dataset], Path(".snakemake") / "eegfm" / "recordings", main_process=workflow.is_main_process
    )


# Recordings that cannot be listed or cannot fill the folds (cv.n_splits above the
# number of subjects), regression targets in the metadata table that are no numbers,
# and pretrained weights that cannot fit their model stop the run here, before any
# job; only in the main process (cluster jobs re-parse the workflow). A passed
# weights check is remembered per file (path, size, mtime) under .snakemake/.
if workflow.is_main_process:
    try:
        check_before_jobs(CFG, dataset_recordings, weights_checked_dir=Path(".snakemake") / "eegfm" / "weights-checked")
    except (ConfigError, RecordingError, WindowsError, ValueError) as err:
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
    """The pretraining manifest a backbone's weights come from, or its local weights files:
    replacing them re-runs the jobs that load them (none without weights)."""
    b = CFG.backbone(wildcards.backbone)
    if b.pretrain_ref:
        return {"pretrained": f"{pretrain_dir(b.pretrain_ref)}/manifest.json"}
    return {"weights": [str(p) for p in weights_files(b.weights)]} if b.weights else {}


def weights_stamp(wildcards):
    """Sizes and mtimes of a backbone's local weights files: weights replaced by an
    older file (cp -p, an unpacked archive) re-run the jobs too, which the mtime check would miss."""
    b = CFG.backbone(wildcards.backbone)
    return "" if b.pretrain_ref or not b.weights else recording_stamp(weights_files(b.weights))


def windows_dir(dataset):
    return f"{RES}/{dataset}/windows"


@functools.cache
def recording_files(dataset):
    """Every file a files/BIDS dataset's windows are read from (recordings,
    companions, BIDS sidecars, the metadata table)."""
    return tuple(recording_inputs(CFG.datasets[dataset], dataset_recordings(dataset)))


def windows_inputs(wildcards):
    """The recording files, so that replacing one re-runs its windows."""
    if CFG.datasets[wildcards.dataset].source == "synthetic":
        return [f"{RES}/{wildcards.dataset}/raw/bids"]
    return list(recording_files(wildcards.dataset))


def windows_stamp(wildcards):
    """Sizes and mtimes of the recording files: a file replaced by an older one
    (cp -p, rsync -t) re-runs windowing too, which the mtime check would miss."""
    if CFG.datasets[wildcards.dataset].source == "synthetic":
        return ""
    return recording_stamp(recording_files(wildcards.dataset))


@functools.cache
def n_folds(dataset):
    """Folds are known when the DAG is built (eegfm.splits.expected_n_folds): n_splits,
    or counted from the one listing of the recordings' subjects/sessions/runs."""
    from eegfm.splits import expected_n_folds

    ds = CFG.datasets[dataset]
    if ds.source == "synthetic":  # one recording per subject
        syn = ds.synthetic
        n = syn.n_subjects if syn.task == "target" else syn.n_source_subjects
        return expected_n_folds(ds.cv, [(str(i), None, None) for i in range(n)])
    return expected_n_folds(ds.cv, lambda: [(r.subject, r.session, r.run) for r in dataset_recordings(dataset)])


def finetune_fold_dirs():
    """One folder per dataset x fine-tuned backbone x regime x fold."""
    return [
        f"{RES}/{d}/finetune/{b}/{r}/fold-{f}"
        for d in DATASETS
        for b in CFG.finetune.backbones
        for r in CFG.finetune.regimes
        for f in range(n_folds(d))
    ]


def probe_dirs():
    """One folder per dataset x backbone; the probe job writes fold-<k>/ inside it for every fold."""
    return [f"{RES}/{d}/probe/{b}" for d in DATASETS for b in BACKBONES]


def embedding_pointers():
    return [f"{RES}/{d}/embeddings/{b}.json" for d in DATASETS for b in BACKBONES]


def report_outputs():
    return [f"{RES}/report/{name}" for name in ("report.html", "summary.json", "metrics.tsv", "summary.tsv")]
