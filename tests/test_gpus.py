"""GPU pinning on a workstation: real processes, a fake ``nvidia-smi`` on PATH, real flock locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Claims, prints the result and what the process sees, then holds its locks
# until stdin closes.
CLAIM = """
import json, os, sys
from eegfm.gpus import claim_gpus
kwargs = json.loads(sys.argv[2])
try:
    got = claim_gpus(int(sys.argv[1]), **kwargs)
except TimeoutError as err:
    got = f"timeout: {err}"
print(json.dumps({"got": got, "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"), "torch": "torch" in sys.modules}),
      flush=True)
sys.stdin.read()
"""


@pytest.fixture
def fake_smi(tmp_path):
    """A folder with an ``nvidia-smi`` that lists two GPUs and records each call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "smi-calls"
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{calls}"\n'
        'echo "GPU 0: NVIDIA Fake A100 (UUID: GPU-00000000-0000-0000-0000-000000000000)"\n'
        'echo "GPU 1: NVIDIA Fake A100 (UUID: GPU-11111111-1111-1111-1111-111111111111)"\n'
    )
    script.chmod(0o755)
    return bin_dir, calls


def start(n: int, path_dir: Path, lock_dir: Path, cvd: str | None = None, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = str(path_dir)  # only the fake nvidia-smi (or nothing) is found
    env["PYTHONPATH"] = str(REPO / "src")
    if cvd is not None:
        env["CUDA_VISIBLE_DEVICES"] = cvd
    kwargs = {"lock_dir": str(lock_dir), **kwargs}
    return subprocess.Popen([sys.executable, "-c", CLAIM, str(n), json.dumps(kwargs)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return json.loads(line)


def finish(*procs: subprocess.Popen) -> None:
    for proc in procs:
        proc.communicate(timeout=30)


def test_two_processes_get_different_devices(fake_smi, tmp_path):
    bin_dir, calls = fake_smi
    locks = tmp_path / "locks"
    first = start(1, bin_dir, locks)
    a = result(first)
    second = start(1, bin_dir, locks)
    b = result(second)
    assert a["got"] in ([0], [1]) and b["got"] in ([0], [1]) and a["got"] != b["got"]
    assert a["cvd"] == str(a["got"][0]) and b["cvd"] == str(b["got"][0])
    assert not a["torch"] and not b["torch"]  # CUDA_VISIBLE_DEVICES is set before torch is imported
    assert calls.read_text().split("\n")[0] == "-L"
    # both devices are taken: a third job waits, here until its timeout
    third = start(1, bin_dir, locks, timeout_s=0.5, poll_s=0.1)
    c = result(third)
    assert c["got"].startswith("timeout: no 1 free GPU(s) of 2") and "--resources gpu=N" in c["got"]
    assert c["cvd"] is None
    # a finished job frees its device for the next one
    finish(first, third)
    fourth = start(1, bin_dir, locks)
    assert result(fourth)["got"] == a["got"]
    finish(second, fourth)


def test_a_job_with_two_gpus_gets_both_or_waits(fake_smi, tmp_path):
    bin_dir, _ = fake_smi
    locks = tmp_path / "locks"
    one = start(1, bin_dir, locks)
    assert len(result(one)["got"]) == 1
    both = start(2, bin_dir, locks, timeout_s=0.5, poll_s=0.1)
    assert result(both)["got"].startswith("timeout: no 2 free GPU(s) of 2")
    finish(one, both)
    both = start(2, bin_dir, locks)
    got = result(both)
    assert got["got"] == [0, 1] and got["cvd"] == "0,1"
    finish(both)


def test_cuda_visible_devices_set_by_slurm_is_respected(fake_smi, tmp_path):
    bin_dir, calls = fake_smi
    proc = start(1, bin_dir, tmp_path / "locks", cvd="3")
    got = result(proc)
    finish(proc)
    assert got == {"got": [3], "cvd": "3", "torch": False}
    assert not calls.exists()  # nvidia-smi was not even asked
    assert not (tmp_path / "locks").exists()


def test_no_gpu_means_cpu_and_nothing_set(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = start(1, empty, tmp_path / "locks")  # no nvidia-smi on PATH
    got = result(proc)
    finish(proc)
    assert got == {"got": [], "cvd": None, "torch": False}


def test_failing_driver_means_cpu(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(
        "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n"
    )
    (bin_dir / "nvidia-smi").chmod(0o755)
    proc = start(1, bin_dir, tmp_path / "locks")
    got = result(proc)
    finish(proc)
    assert got["got"] == [] and got["cvd"] is None


def test_zero_gpus_does_nothing(fake_smi, tmp_path):
    bin_dir, calls = fake_smi
    proc = start(0, bin_dir, tmp_path / "locks")
    got = result(proc)
    finish(proc)
    assert got["got"] == [] and got["cvd"] is None and not calls.exists()


def test_claim_is_logged(fake_smi, tmp_path, monkeypatch, caplog):
    import eegfm.gpus as gpus

    bin_dir, _ = fake_smi
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset-again-after-the-test")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(gpus, "_HELD", {})
    with caplog.at_level("INFO", logger="eegfm.gpus"):
        got = gpus.claim_gpus(1, tmp_path / "locks")
    try:
        assert got == [0] and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert "claimed GPU(s) [0] of 2" in caplog.text and "CUDA_VISIBLE_DEVICES=0" in caplog.text
        assert (tmp_path / "locks/gpu0.lock").read_text().strip() == str(os.getpid())
    finally:
        gpus._release(gpus._HELD)


@pytest.mark.gpu
def test_a_real_gpu_is_claimed_and_torch_sees_only_it(tmp_path):
    """With a real nvidia-smi and driver: the claimed device is the one torch then uses."""
    import shutil

    if shutil.which("nvidia-smi") is None:
        pytest.skip("needs a real nvidia-smi (none on PATH): GPU pinning on a real device not exercised here")
    code = (
        "import json, os, sys\n"
        "from eegfm.gpus import claim_gpus, count_gpus\n"
        "got = claim_gpus(1, sys.argv[1])\n"
        "import torch\n"
        "print(json.dumps({'got': got, 'visible': os.environ.get('CUDA_VISIBLE_DEVICES'), 'n': count_gpus(),"
        " 'torch': torch.cuda.device_count(), 'name': torch.cuda.get_device_name(0) if got else None}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["n"] == 0:
        pytest.skip("nvidia-smi lists no GPU: GPU pinning on a real device not exercised here")
    assert len(out["got"]) == 1 and out["visible"] == str(out["got"][0]) and out["torch"] == 1, out
    assert (tmp_path / f"gpu{out['got'][0]}.lock").read_text().strip().isdigit()
