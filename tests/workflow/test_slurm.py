"""The workflow on a real single-node SLURM, through workflow/profiles/slurm.

tools/slurm/start.sh starts munged, slurmctld and slurmd on this machine (one
node, one fake GPU); every job then goes through sbatch, as on a cluster. Needs
root and the packages of tools/system-packages.sh: skipped without them, except
in CI (``CI`` set), where a missing cluster is a failure. ~3 min on 2 cores,
most of it SLURM start-up per job and the plugin's status polling (the probe
run and the fine-tune go through SLURM at once, sharing those waits).

    sudo tools/system-packages.sh && .venv/bin/python -m pytest tests/workflow/test_slurm.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.workflow.test_workflow import tiny_config as base_config

REPO = Path(__file__).resolve().parents[2]
SLURM_TOOLS = REPO / "tools" / "slurm"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# Status polling for a test: the profile's 20 s suits a cluster, not 8 short jobs.
# After a job finished the plugin checks again in N s, then N + 10 s later, then
# N + 20 s later ...: with N = 2 a job (or a wave of them) of 3-14 s, as most
# here, is seen after 14 s (with N = 5: after 20 s; 40 s less in all).
FAST_POLLING = ["--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"]
RULES = {"synthetic": 1, "windows": 1, "splits": 1, "embed": 1, "probe": 1, "aggregate": 1}

pytestmark = pytest.mark.slow


def tiny_config(cache: Path, gpus: int = 1) -> dict:
    """The end-to-end tiny config, band power only, its embed jobs declaring ``gpus`` GPUs."""
    return base_config(cache, backbones=[{"name": "bandpower"}],
                       embedding={"batch_size": 16, "gpus": gpus, "device": "auto", "threads": 1})


FOLD = "results/tiny/finetune/cbramod/lora/fold-0"


def ddp_config(cache: Path, gpus: int = 0) -> dict:
    """One LoRA fine-tune of a 1-layer CBraMod trained by 2 data-parallel processes of 1 thread each."""
    config = base_config(cache, backbones=[{"name": "cbramod", "kwargs": {"n_layer": 1, "drop_prob": 0.0}}])
    config["datasets"]["tiny"]["windows"] = {"tmin": 0.5, "length_s": 2.0}
    config["finetune"] = {"backbones": ["cbramod"], "regimes": ["lora"], "threads": 1, "processes": 2, "gpus": gpus,
                          "head": {"dropout": 0.0}, "optim": {"max_epochs": 2, "batch_size": 16}}
    if gpus:
        config["finetune"]["processes"] = gpus
    return config


def snakemake_cmd(workdir: Path, config: dict, *args: str) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]


def output_of(proc) -> str:
    return (proc.stdout or "") + (proc.stderr or "")


def unavailable(reason: str):
    """Skip where SLURM cannot run here; in CI, where it must, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test: tools/system-packages.sh installs SLURM; run as root)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node SLURM, stopped at the end whatever happened."""
    sbin = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [c for c in ("slurmctld", "slurmd", "munged", "sbatch", "squeue") if shutil.which(c, path=sbin) is None]
    if missing:
        unavailable(f"SLURM not installed (missing {', '.join(missing)}): sudo tools/system-packages.sh")
    if os.geteuid() != 0:
        unavailable("the SLURM test starts slurmctld/slurmd/munged and writes /etc/slurm: run it as root")
    state = tmp_path_factory.mktemp("slurm-state")
    start = subprocess.run([str(SLURM_TOOLS / "start.sh"), str(state)], capture_output=True, text=True, timeout=120)
    if start.returncode == 3:
        unavailable(start.stderr.strip())
    if start.returncode != 0:
        subprocess.run([str(SLURM_TOOLS / "stop.sh"), str(state)], capture_output=True, timeout=120)
        pytest.fail(f"tools/slurm/start.sh failed ({start.returncode}):\n{start.stderr}")
    try:
        yield state
    finally:
        stop = subprocess.run([str(SLURM_TOOLS / "stop.sh"), str(state)], capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, f"tools/slurm/stop.sh failed:\n{stop.stderr}"


def run_all(runs: dict[str, tuple[list[str], list[str]]], timeout: float = 900) -> tuple[dict[str, str], set[str]]:
    """Run name -> (local command, SLURM command), all at once; name -> SLURM output, and the SLURM steps seen.

    A SLURM run mostly waits on the plugin's status checks, so the runs share
    those waits instead of queueing behind each other (about 100 s less than
    one after the other). Each local twin runs at the lowest priority, filling
    the CPU while SLURM jobs start up. Job steps are visible only while they
    run, so ``scontrol show step`` is polled throughout.
    """
    procs: dict[tuple[str, str], subprocess.Popen] = {}
    steps: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        for name, (local, slurm) in runs.items():
            procs[name, "local"] = subprocess.Popen(local, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                                    preexec_fn=lambda: os.nice(19))
            procs[name, "slurm"] = subprocess.Popen(slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while any(p.poll() is None for (_, kind), p in procs.items() if kind == "slurm"):
            if time.monotonic() > deadline:
                pytest.fail(f"the SLURM runs took over {timeout:.0f} s")
            proc = subprocess.run(["scontrol", "show", "step", "-o"], capture_output=True, text=True, timeout=30)
            steps |= {line for line in proc.stdout.splitlines() if line.startswith("StepId=")}
            time.sleep(0.5)
        outputs = {key: p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0] for key, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for (name, kind), p in procs.items():
        assert p.returncode == 0, f"{kind} run {name!r} failed:\n{outputs[name, kind][-8000:]}"
    return {name: outputs[name, "slurm"] for name in runs}, steps


@pytest.fixture(scope="module")
def cluster_runs(cluster, tmp_path_factory):
    """The tiny probe run and the 2-process fine-tune (srun, 2 tasks), each through SLURM and locally (own caches,
    so every run computes everything); name -> (base folder, SLURM output), and the SLURM steps seen."""
    bases = {"probe": tmp_path_factory.mktemp("runs"), "ddp": tmp_path_factory.mktemp("ddp")}
    configs = {"probe": (tiny_config, ()), "ddp": (ddp_config, (f"{FOLD}/metrics.json",))}
    commands = {}
    for name, (make, targets) in configs.items():
        base = bases[name]
        commands[name] = (
            snakemake_cmd(base / "local", make(base / "local-cache"), "--cores", "2", *targets),
            snakemake_cmd(base / "slurm", make(base / "slurm-cache"), "--profile", str(PROFILE), *FAST_POLLING,
                          "--slurm-keep-successful-logs", *targets),
        )  # fmt: skip
    t0 = time.monotonic()
    outputs, steps = run_all(commands)
    print(f"SLURM runs {time.monotonic() - t0:.0f} s")
    return {name: (bases[name], outputs[name]) for name in bases}, steps


@pytest.fixture(scope="module")
def runs(cluster_runs):
    """The same tiny config run through SLURM and locally: (base folder, SLURM output)."""
    return cluster_runs[0]["probe"]


@pytest.fixture(scope="module")
def ddp_runs(cluster_runs):
    """The 2-process fine-tune through SLURM and locally (torchrun): (base folder, SLURM output, steps seen)."""
    return (*cluster_runs[0]["ddp"], cluster_runs[1])


def dry_run_resources(tmp_path: Path, config: dict, *args: str) -> dict[str, str]:
    """rule -> the `resources:` line of its first job in a dry run (no cluster needed)."""
    proc = subprocess.run(snakemake_cmd(tmp_path, config, "-n", *args), capture_output=True, text=True, timeout=300)
    out = output_of(proc)
    assert proc.returncode == 0, out[-4000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M)
    return {rule: resources for rule, resources in reversed(jobs)}


def test_slurm_profile_sets_memory_time_and_polling_but_not_the_gpu_count(tmp_path):
    res = dry_run_resources(tmp_path, tiny_config(tmp_path / "cache", gpus=2), "--profile", str(PROFILE))
    assert "mem_mb=16000" in res["embed"] and "runtime=120" in res["embed"]
    assert "gpu=2" in res["embed"]  # from the config, not the profile
    assert "mem_mb=2000" in res["probe"] and "gpu" not in res["probe"]
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    # the plugin keeps squeue only while MinJobAge (300 s in tools/slurm) >= 3 x this
    assert 3 * profile["slurm-init-seconds-before-status-checks"] <= 300
    assert "slurm_partition" not in profile["default-resources"]  # placeholders stay comments


def test_workstation_profile_caps_gpus_and_doubles_memory_on_a_retry(tmp_path):
    workstation = REPO / "workflow/profiles/workstation"
    res = dry_run_resources(tmp_path, tiny_config(tmp_path / "cache", gpus=2), "--profile", str(workstation))
    assert "gpu=1" in res["embed"]  # 2 asked, capped by `resources: gpu: 1`
    assert "mem_mb=6000" in res["embed"] and "mem_mb=4000" in res["windows"]
    profile = yaml.safe_load((workstation / "config.yaml").read_text())
    assert profile["retries"] == 1 and profile["set-resources"]["embed"]["mem_mb"] == "6000 * attempt"


def submitted(output: str) -> dict[str, str]:
    """SLURM job id -> the log path the plugin named when it submitted the job."""
    return dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)", output))


def scontrol(job_id: str) -> dict[str, str]:
    proc = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return dict(re.findall(r"(\w+)=(\S*)", proc.stdout))


def test_every_job_goes_through_sbatch_and_only_embed_asks_for_a_gpu(runs):
    base, output = runs
    jobs = submitted(output)
    per_rule: dict[str, int] = {}
    for job_id in jobs:
        info = scontrol(job_id)  # kept by slurmctld for MinJobAge=300 s
        rule = re.match(r"rule_([a-z]+)", info["Comment"]).group(1)
        per_rule[rule] = per_rule.get(rule, 0) + 1
        assert info["JobState"] == "COMPLETED", info
        asked = info.get("TresPerJob", "")
        if rule == "embed":
            assert asked == "gres:gpu:1", info  # embedding.gpus: 1 -> --gpus=1
        else:
            assert "gpu" not in asked, info
    assert per_rule == RULES
    # nothing ran on the submitting machine but the target rule
    assert re.findall(r"^localrule (\w+):", output, flags=re.M) == ["all"]
    # inside the job SLURM set CUDA_VISIBLE_DEVICES (the fake GPU), which the
    # embed script respected, and `device: auto` still ran on the CPU
    embed_log = (base / "slurm/results/logs/embed/tiny/bandpower.log").read_text()
    assert "CUDA_VISIBLE_DEVICES='0' already set" in embed_log, embed_log
    assert re.search(r"batches of \d+ on cpu", embed_log), embed_log
    # the plugin wrote one SLURM log per job
    assert len(list((base / "slurm/.snakemake/slurm_logs").rglob("*.log"))) == len(jobs)


def test_slurm_results_equal_a_local_run(runs):
    from eegfm.metrics import METRICS

    base, _ = runs
    tables = {kind: pd.read_csv(base / kind / "results/report/metrics.tsv", sep="\t") for kind in ("local", "slurm")}
    columns = ["dataset", "model", "fold", "n_train", "n_test", "windows_key", "embedding_key", "fingerprint_sha"]
    columns += [c for m in METRICS for c in (m, f"chance_{m}") if c in tables["local"]]
    assert len(tables["local"]) == 3 and tables["local"][["windows_key", "embedding_key"]].notna().all().all()
    pd.testing.assert_frame_equal(tables["local"][columns], tables["slurm"][columns], check_exact=True)
    for fold in range(3):
        rel = f"results/tiny/probe/bandpower/fold-{fold}/predictions.tsv"
        assert (base / "local" / rel).read_text() == (base / "slurm" / rel).read_text(), rel
    # the same embedding numbers, computed twice in two caches
    key = tables["local"]["embedding_key"].iloc[0]
    import zarr

    stores = [zarr.open_group(str(base / f"{kind}-cache/embeddings/{key[:2]}/{key}.zarr"), mode="r")
              for kind in ("local", "slurm")]  # fmt: skip
    np.testing.assert_array_equal(stores[0]["E"][:], stores[1]["E"][:])


def test_impossible_gpu_request_fails_fast_with_the_slurm_reason(runs):
    base, _ = runs
    # the finished SLURM run, asking for 2 GPUs per embedding job on a 1-GPU node:
    # only embed (its params changed) and what follows it would re-run
    work = base / "impossible"
    shutil.copytree(base / "slurm", work, symlinks=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            snakemake_cmd(work, tiny_config(base / "slurm-cache", gpus=2), "--profile", str(PROFILE), *FAST_POLLING),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"snakemake hung on an impossible request:\n{(err.stdout or b'')[-4000:]!r}")
    elapsed = time.monotonic() - t0
    out = output_of(proc)
    assert proc.returncode != 0, out[-4000:]
    assert "Requested node configuration is not available" in out, out[-4000:]
    assert "--gpus=2" in out  # the sbatch call is shown with the error
    assert elapsed < 120
    assert "Params have changed" in out and "rule synthetic:" not in out


# ----------------------------------------------------------------------------- one fine-tune, 2 SLURM tasks (DDP)

def test_a_multi_process_fine_tune_asks_slurm_for_one_task_per_process(tmp_path):
    res = dry_run_resources(tmp_path / "cpu", ddp_config(tmp_path / "cache"), "--profile", str(PROFILE), f"{FOLD}/metrics.json")
    for part in ("tasks=2", "nodes=1", "cpus_per_task=1", "mpi=srun", "tasks_per_gpu=0", "mem_mb=6000", "gpu=0"):
        assert part in res["finetune"].split(", "), res["finetune"]
    res = dry_run_resources(tmp_path / "gpu", ddp_config(tmp_path / "cache", gpus=2), "--profile", str(PROFILE),
                            f"{FOLD}/metrics.json")
    assert "gpu=2" in res["finetune"] and "tasks_per_gpu=1" in res["finetune"]  # -> --gpus=2 --ntasks-per-gpu=1


def test_the_fine_tune_runs_as_two_srun_tasks_of_one_slurm_job(ddp_runs):
    base, output, steps = ddp_runs
    jobs = {job_id: scontrol(job_id) for job_id in submitted(output)}
    finetune = [(job_id, info) for job_id, info in jobs.items() if info["Comment"].startswith("rule_finetune")]
    assert len(finetune) == 1, jobs
    job_id, info = finetune[0]
    assert info["JobState"] == "COMPLETED" and info["NumTasks"] == "2" and info["NumCPUs"] == "2", info
    # scontrol saw the job's srun step with both tasks while it ran
    ours = [s for s in steps if s.startswith(f"StepId={job_id}.") and "Tasks=2" in s]
    assert ours, sorted(steps)
    log = (base / "slurm/results/logs/finetune/tiny/cbramod/lora/fold-0.log").read_text()
    assert "srun --ntasks=2 --nodes=1 --cpus-per-task=1 --kill-on-bad-exit=1" in log, log[-3000:]
    for rank in (0, 1):  # both tasks of one srun step of this job
        assert re.search(rf"rank {rank} of 2 .* joined the process group \(gloo, .*SLURM job {job_id} step \d+ "
                         rf"task {rank}\)", log), log[-3000:]
    record = json.loads((base / "slurm" / FOLD / "metrics.json").read_text())
    assert record["status"] == "ok" and record["processes"] == 2


def test_slurm_and_torchrun_train_the_same_fold(ddp_runs):
    from safetensors.torch import load_file

    base, _, _ = ddp_runs
    local, slurm = (json.loads((base / kind / FOLD / "metrics.json").read_text()) for kind in ("local", "slurm"))
    assert local["processes"] == slurm["processes"] == 2
    assert local["metrics"] == slurm["metrics"] and local["best_epoch"] == slurm["best_epoch"]
    a, b = (load_file(base / kind / FOLD / "checkpoint.safetensors") for kind in ("local", "slurm"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # 2 gloo ranks reduce in one order wherever they run
