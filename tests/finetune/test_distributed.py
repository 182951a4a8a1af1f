"""Data-parallel fine-tuning for real: 2 CPU processes (gloo) started by torchrun through eegfm.launch.

Each rank trains on its half of every global batch; gradients are averaged by
DDP and the loss is normalised by the global batch, so 2 processes follow the
single-process trajectory. Dropout is off (masks are drawn per rank) and
CBraMod has no batch norm, so what remains is float32 summation order:
final weights agree to TOLERANCE.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from eegfm.config import Backbone, Finetune
from eegfm.finetune.run import run_finetune
from eegfm.launch import LaunchError, command, launch

pytestmark = pytest.mark.slow

# measured: max |w_2proc - w_1proc| ~1e-6 after 2 epochs (float32 reduction order); 1e-4 leaves room
TOLERANCE = 1e-4
CBRAMOD = Backbone(name="cbramod", kwargs={"n_layer": 1, "drop_prob": 0.0})


def _ft(epochs: int = 2, **kw) -> Finetune:
    return Finetune(backbones=["cbramod"], head={"dropout": 0.0}, threads=1,
                    optim={"max_epochs": epochs, "batch_size": 16, "patience": epochs}, **kw)


def _kwargs(ft_data, regime: str, out: Path, ft: Finetune) -> dict:
    return {"windows_dir": ft_data["windows"], "folds_path": ft_data["folds"], "fold": 0, "cfg": CBRAMOD,
            "ft": ft, "regime": regime, "seed": 3, "out_dir": out, "dataset": "tiny"}


@pytest.mark.parametrize("regime", ["lora", "full", "lp-ft"])  # lp-ft: DDP re-wrapped when the phase changes
def test_two_processes_match_one_with_the_same_global_batch(ft_data, tmp_path, regime):
    one = run_finetune(**_kwargs(ft_data, regime, tmp_path / "one", _ft(lp_epochs=1)))
    launch("finetune", _kwargs(ft_data, regime, tmp_path / "two", _ft(processes=2, lp_epochs=1)), processes=2,
           threads=1)
    two = json.loads((tmp_path / "two/metrics.json").read_text())
    assert one["status"] == two["status"] == "ok"
    assert one["processes"] == 1 and two["processes"] == 2
    assert one["best_epoch"] == two["best_epoch"]
    a, b = load_file(tmp_path / "one/checkpoint.safetensors"), load_file(tmp_path / "two/checkpoint.safetensors")
    assert a.keys() == b.keys() and len(a) > 2
    worst = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].numel())
    changed = max(float((a[k] - b[k]).abs().max()) for k in a if k.startswith("head."))
    print(f"{regime}: max |weight difference| 1 vs 2 processes = {worst:.2e}")
    assert worst <= TOLERANCE, worst
    assert changed < TOLERANCE
    for name in METRIC_KEYS:
        assert one["metrics"][name] == pytest.approx(two["metrics"][name], abs=1e-3), name
    h1, h2 = (pd.read_csv(tmp_path / d / "history.tsv", sep="\t") for d in ("one", "two"))
    assert list(h1["epoch"]) == list(h2["epoch"])
    assert (h1["train_loss"] - h2["train_loss"]).abs().max() < 1e-4  # the global batch's loss, not a rank's
    assert (h1["val_loss"] - h2["val_loss"]).abs().max() < 1e-4
    p1, p2 = (pd.read_csv(tmp_path / d / "predictions.tsv", sep="\t") for d in ("one", "two"))
    assert list(p1["window_id"]) == list(p2["window_id"])  # every test window once, in order
    # only rank 0 wrote: no second set of files, no leftover launch spec
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


METRIC_KEYS = ("balanced_accuracy", "accuracy")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_killed_rank_fails_the_job_and_stops_the_other(ft_data, tmp_path):
    out = tmp_path / "fold"
    kwargs = _kwargs(ft_data, "full", out, _ft(epochs=50, processes=2))
    log = tmp_path / "job.log"
    script = (
        "import sys, json, pathlib\n"
        "from eegfm.config import Backbone, Finetune\n"
        "from eegfm.launch import launch\n"
        "kw = json.loads(pathlib.Path(sys.argv[1]).read_text())\n"
        "kw['cfg'] = Backbone.model_validate(kw['cfg']); kw['ft'] = Finetune.model_validate(kw['ft'])\n"
        "launch('finetune', kw, processes=2, threads=1)\n"
    )
    spec = tmp_path / "kw.json"
    spec.write_text(json.dumps({k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else str(v)
                                    if isinstance(v, Path) else v) for k, v in kwargs.items()}))
    with open(log, "w") as fh:
        job = subprocess.Popen([sys.executable, "-c", script, str(spec)], stdout=fh, stderr=subprocess.STDOUT,
                               env={**os.environ, "TQDM_DISABLE": "1"})
    try:
        deadline = time.monotonic() + 300
        while "epoch 0:" not in log.read_text() and time.monotonic() < deadline:  # both ranks are training
            assert job.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        agent = _children(job.pid)
        ranks = [pid for a in agent for pid in _children(a)]
        assert len(ranks) == 2, (agent, ranks)
        victim = max(ranks)  # started second: rank 1
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        rc = job.wait(timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        if job.poll() is None:
            job.kill()
    text = log.read_text()
    assert rc != 0, text[-3000:]
    assert "LaunchError" in text and "every rank was stopped" in text, text[-3000:]
    assert elapsed < 90
    assert not any(_alive(pid) for pid in ranks)  # the surviving rank was stopped, not left waiting
    assert not (out / "metrics.json").exists()  # nothing pretends to be a finished fold


def test_the_launcher_uses_srun_inside_slurm_and_torchrun_elsewhere(tmp_path):
    spec = tmp_path / "spec.json"
    slurm = command(spec, 4, 2, 3, env={"SLURM_JOB_ID": "7"})
    assert slurm[:5] == ["srun", "--ntasks=4", "--nodes=2", "--cpus-per-task=3", "--kill-on-bad-exit=1"]
    local = command(spec, 2, 1, 1, env={})
    assert local[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    with pytest.raises(LaunchError, match="needs SLURM"):
        command(spec, 4, 2, 1, env={})


@pytest.mark.gpu
def test_cuda_ddp_across_gpus(ft_data, tmp_path):
    """On a machine with 2+ GPUs: one process per GPU (NCCL), matching one process within bf16 noise."""
    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs 2 CUDA GPUs ({torch.cuda.device_count()} visible): DDP across GPUs not exercised here")
    ft = _ft(gpus=2, device="cuda", precision="fp32")
    launch("finetune", _kwargs(ft_data, "lora", tmp_path / "two", ft), processes=2, threads=1)
    record = json.loads((tmp_path / "two/metrics.json").read_text())
    assert record["status"] == "ok" and record["processes"] == 2 and record["device"] == "cuda:0"
