"""The in-process peer of issue 13, coco-pipe 0.0.3, run on the benchmark's windows (used by probe_cv.py --peer).

coco-pipe runs a whole cross-validation in one Python process through
``Experiment(config).run(X, y, groups=...)``. Installed beside eegfm's venv,
never into it, and without dependencies: it takes torch, braindecode, peft,
skorch and scikit-learn from the venv (any other torch spec would pull CUDA
wheels); xarray is the one module its decoding path imports that the venv
lacks::

    .venv/bin/python benchmarks/peer_coco_pipe.py install ~/coco-pipe-peer
    .venv/bin/python benchmarks/probe_cv.py --peer ~/coco-pipe-peer

It always loads CBraMod through ``from_pretrained`` of its pinned Hugging
Face repository and revision (``decoding/foundation_models/_braindecode.py``),
and nothing here reaches Hugging Face; ``install`` writes the benchmark's own
random-init CBraMod (``torch.manual_seed(0)``, the by-hand baseline's
weights) into an offline Hugging Face cache under that repository and
revision, so coco-pipe's own loading call gets the same backbone the other
runs use. coco-pipe resizes the head; the 213 backbone tensors are equal.

What each run does, in coco-pipe's own API and defaults:

* **probe**: one ``Experiment.run`` with a ``frozen_backbone`` model (CBraMod
  mean-pooled features, logistic regression; coco-pipe adds no scaler on this
  path and takes ``model(x, return_features=True)``, i.e. braindecode's
  ``proj_out`` after the encoder), 4 stratified subject-grouped folds;
* **lora**: one ``Experiment.run`` with a ``neural_finetune`` model, LoRA r=8,
  alpha 16 on linear1/linear2, 2 epochs, batch 32, AdamW lr 1e-3, and
  coco-pipe's defaults otherwise (weight decay 0.01, 20 % of the training
  subjects held out for a validation loss every epoch, no early stopping,
  class-balanced loss). coco-pipe feeds the model what it is given: its
  users give µV (the model spec says it expects µV); ``scale`` runs it at
  eegfm's µV/100 too. Labels go in as integers: string labels fail inside
  skorch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

VERSION = "0.0.3"
EXTRA = ("xarray",)  # imported by coco_pipe.decoding, absent from eegfm's venv
# the checkpoint coco-pipe 0.0.3 loads for "cbramod" (decoding/foundation_models/_braindecode.py)
HF_REPO, HF_REVISION = "braindecode/cbramod-pretrained", "584cdc415913739a05d84bf0c1cb3db397764507"

WEIGHTS = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from braindecode.models import CBraMod
    snapshot = Path(sys.argv[1])
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(snapshot.name)
    torch.manual_seed(0)  # the by-hand baseline's model (probe_cv.BASELINE)
    CBraMod(n_chans=19, n_times=800, sfreq=200.0, n_outputs=2).save_pretrained(snapshot)
    """
)

_READ = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pandas as pd, torch, zarr
from braindecode.models import CBraMod  # the by-hand baseline imports it before its CV clock too
from sklearn.metrics import balanced_accuracy_score
from coco_pipe.decoding import Experiment, ExperimentConfig
torch.set_num_threads(2)
t_cv = time.perf_counter()
folder, scale = sys.argv[1], float(sys.argv[2])
seed = None if sys.argv[3] == "None" else int(sys.argv[3])
X = np.asarray(zarr.open_group(folder + "/windows.zarr", mode="r")["X"][:]) * scale
meta = pd.read_csv(folder + "/windows.tsv", sep="\\t", dtype=str)
info = json.load(open(folder + "/windows.json"))
classes = sorted(set(meta["label"]))
y, groups = np.array([classes.index(c) for c in meta["label"]]), meta["subject"].to_numpy()
cv = {"strategy": "stratified_group_kfold", "n_splits": 4, "shuffle": True, "random_state": 0}
"""

_SCORE = """
end = time.perf_counter()
raw = result.raw[name]
if "error" in raw:
    raise SystemExit(f"coco-pipe failed: {raw['error']}")
pred = np.empty(len(y), dtype=int)
for idx, fold in zip(raw["indices"], raw["predictions"]):
    pred[np.asarray(idx)] = np.asarray(fold["y_pred"])
print(json.dumps({"imports_s": t_cv - t0, "cv_s": end - t_cv, "wall_s": end - t0,
                  "balanced_accuracy": float(balanced_accuracy_score(y, pred))}))  # pooled, as eegfm reports
"""

PROBE = _READ + textwrap.dedent(
    """
    name = "cbramod_lr"
    backbone = {"kind": "foundation_embedding", "model_key": "cbramod", "pooling": "mean",
                "sfreq": float(info["sfreq"]), "ch_names": list(info["ch_names"]), "cache_embeddings": True}
    head = {"method": "ClassicalModel", "estimator": "LogisticRegression", "params": {"max_iter": 2000}}
    config = ExperimentConfig(task="classification", cv=cv, metrics=["balanced_accuracy"], n_jobs=1, verbose=False,
                              models={name: {"kind": "frozen_backbone", "backbone": backbone, "head": head}})
    result = Experiment(config).run(X, y, groups=groups)
    """
) + _SCORE

LORA = _READ + textwrap.dedent(
    """
    name = "cbramod_lora"
    model = {"kind": "neural_finetune", "model_key": "cbramod", "train_mode": "lora",
             "sfreq": float(info["sfreq"]), "ch_names": list(info["ch_names"]), "device": {"device": "cpu"},
             "trainer": {"max_epochs": 2, "batch_size": 32, "lr": 1e-3},
             "lora": {"r": 8, "alpha": 16, "target_modules": ["linear1", "linear2"]}}
    config = ExperimentConfig(task="classification", cv=cv, metrics=["balanced_accuracy"], n_jobs=1, verbose=False,
                              models={name: model}, random_state=seed)
    result = Experiment(config).run(X, y, groups=groups)
    """
) + _SCORE


def install(target: Path) -> None:
    """coco-pipe and its missing module into ``target``, and the offline weights into ``target/hf``."""
    target = Path(target).expanduser().resolve()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target / "lib"),
                    f"coco-pipe=={VERSION}", *EXTRA], check=True)
    snapshot = target / "hf" / "hub" / f"models--{HF_REPO.replace('/', '--')}" / "snapshots" / HF_REVISION
    if not snapshot.is_dir():
        subprocess.run([sys.executable, "-c", WEIGHTS, str(snapshot)], check=True)
    print(f"coco-pipe {VERSION} in {target}; run benchmarks/probe_cv.py --peer {target}")


def run(script: str, target: Path, windows_dir: Path, scale: float, seed: int | None = None) -> dict:
    """One coco-pipe run (``PROBE`` or ``LORA``) in a process of its own; its JSON line, plus ``process_s``.

    ``seed`` is coco-pipe's master ``random_state`` (folds, model init, batch
    order); ``None`` keeps its defaults.
    """
    import time

    target = Path(target).expanduser().resolve()
    if not (target / "lib" / "coco_pipe").is_dir():
        raise SystemExit(f"no coco-pipe in {target}; run: {sys.executable} {__file__} install {target}")
    env = {**os.environ, "PYTHONPATH": str(target / "lib"), "HF_HOME": str(target / "hf"), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, str(windows_dir), str(scale), str(seed)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"coco-pipe run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - start}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "install":
        raise SystemExit(f"usage: {sys.executable} {sys.argv[0]} install DIR")
    install(Path(sys.argv[2]))
