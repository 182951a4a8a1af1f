"""The job server and its client, end to end with real processes (no Snakemake).

A stand-in job script does what Snakemake's preamble does (sets ``snakemake``,
puts workflow/scripts on the path) and then ``import _bootstrap``, exactly as
the workflow's scripts start. The workflow-level check (every metric equal
with and without the server) is in tests/workflow/test_workflow.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from eegfm import job_server
from eegfm.job_protocol import ENV_SOCKET, ENV_WAIT, waiting_path

REPO = Path(__file__).resolve().parents[1]
SRC = str(REPO / "src")

JOB = textwrap.dedent(
    f"""
    import json, os, sys, time, types
    sys.path.insert(0, {str(REPO / "workflow" / "scripts")!r})
    snakemake = globals().get("snakemake") or types.SimpleNamespace(
        resources=types.SimpleNamespace(gpu=int(os.environ.get("JOB_GPU", "0"))), rule=os.environ.get("RULE", "x"))
    import _bootstrap  # noqa: F401 (hands the job to the server, if there is one)
    from threadpoolctl import threadpool_info
    print(json.dumps({{"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "mark": os.environ.get("MARK"),
                      "argv": sys.argv[1:], "rule": snakemake.rule, "server": os.environ.get({ENV_SOCKET!r}),
                      "blas": sorted({{p["num_threads"] for p in threadpool_info()}})}}), flush=True)
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "fail":
        raise RuntimeError("the job failed on purpose")
    if action.startswith("exit"):
        sys.exit(int(action[4:]))
    if action == "sleep":
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(60)
    if action == "light":  # as a windows job that missed the cache: it needs its rule's modules now
        from eegfm import job_protocol
        had = "colorsys" in sys.modules
        job_protocol.wait_for_light_modules(carry={{"key": "computed once"}})
        print(json.dumps({{"pid": os.getpid(), "had": had, "carried": job_protocol.carried}}), flush=True)
    if action == "logged":  # as a windows job that moved a damaged cache entry aside, then missed the cache
        import logging
        from eegfm import job_protocol
        from eegfm.logs import log_to
        log_to(sys.argv[2])
        logging.getLogger("job").warning("attempt in %d", os.getpid())
        job_protocol.wait_for_light_modules()
    if action == "soon":  # as a windows job that missed the cache
        from eegfm.job_protocol import heavy_modules_soon
        heavy_modules_soon()
    if action == "heavy":  # needs the heavy module from here on, as an embed job on a cache miss
        from eegfm.job_protocol import wait_for_heavy_modules
        wait_for_heavy_modules()
        print(json.dumps({{"pid": os.getpid(), "heavy": "slow_heavy" in sys.modules}}), flush=True)
    """
)


def _quiet_env(monkeypatch):
    """start() announces the server in this process's environment: undone after each test."""
    monkeypatch.setenv(ENV_SOCKET, "off")
    monkeypatch.setenv(ENV_WAIT, "")


@pytest.fixture
def server(tmp_path, monkeypatch):
    _quiet_env(monkeypatch)
    # "decimal" stands in for the heavy modules: a successor imports it and answers the second door
    # "colorsys" is the light module rule "x" needs: imported before the fork, whatever its place in the list
    handle = job_server.start(SRC, ["numpy", "threadpoolctl", "colorsys"], ["decimal"], tmp_path / "server.log",
                              wait=["train"], needs={"x": ["colorsys"]})
    yield handle
    handle.stop()
    assert handle.process.returncode == 0  # it ended on the request, not killed after the wait ran out


def _job(tmp_path: Path, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path, env=environ, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _finish(proc: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=120)
    first = out.splitlines()[0] if out.strip() else "{}"
    return proc.returncode, json.loads(first), err


def test_a_job_runs_in_a_fork_of_the_server_with_its_own_streams_directory_environment_and_threads(server, tmp_path):
    code, seen, err = _finish(_job(tmp_path, "exit3", env={"MARK": "job-1"}))
    assert code == 3, err
    # forked by the server (or the successor that took over: the same process group), not started by the job process
    assert os.getpgid(seen["ppid"]) == server.process.pid
    assert seen["cwd"] == str(tmp_path) and seen["mark"] == "job-1" and seen["argv"] == ["exit3"]
    assert seen["rule"] == "x"  # the job's snakemake object travelled
    assert seen["server"] is None  # the job's own subprocesses start as usual
    assert seen["blas"] == [1]  # OMP_NUM_THREADS of the job, not the server's
    log = Path(tmp_path / "server.log").read_text()
    assert log.index("imported colorsys") < log.index("forked")


def test_light_jobs_stay_with_the_first_server_and_waiting_ones_go_to_the_successor(server, tmp_path):
    code, seen, err = _finish(_job(tmp_path))
    assert code == 0, err
    assert seen["ppid"] == server.process.pid  # it has the light modules
    time.sleep(0.5)
    assert "successor" not in (tmp_path / "server.log").read_text()  # nobody wanted the heavy modules yet
    code, seen, err = _finish(_job(tmp_path, env={"RULE": "train"}))  # a knock at the second door wants them
    assert code == 0, err
    assert seen["ppid"] != server.process.pid and os.getpgid(seen["ppid"]) == server.process.pid
    assert "answers the second door" in (tmp_path / "server.log").read_text()


def test_a_job_can_ask_for_the_heavy_modules_before_it_needs_them(server, tmp_path):
    code, _, err = _finish(_job(tmp_path, "soon"))
    assert code == 0, err
    log = tmp_path / "server.log"
    for _ in range(100):
        if "answers the second door" in log.read_text():
            break
        time.sleep(0.1)
    assert "answers the second door" in log.read_text()


def test_a_job_of_a_waiting_rule_is_answered_by_the_successor_only(server, tmp_path):
    code, seen, err = _finish(_job(tmp_path, env={"RULE": "train"}))
    assert code == 0, err
    assert "decimal" in Path(tmp_path / "server.log").read_text()
    assert seen["ppid"] != server.process.pid and os.getpgid(seen["ppid"]) == server.process.pid


def test_a_failing_job_reports_its_traceback_and_status(server, tmp_path):
    code, _, err = _finish(_job(tmp_path, "fail"))
    assert code == 1 and "RuntimeError: the job failed on purpose" in err


def test_gpu_jobs_and_jobs_without_a_server_start_their_own_process(server, tmp_path, monkeypatch):
    proc = _job(tmp_path, env={"JOB_GPU": "1"})
    code, seen, _ = _finish(proc)
    assert code == 0 and seen["pid"] == proc.pid
    monkeypatch.setenv(ENV_SOCKET, str(tmp_path / "no-such-socket"))
    proc = _job(tmp_path)
    code, seen, err = _finish(proc)
    assert code == 0 and seen["pid"] == proc.pid and "not reachable" in err
    monkeypatch.setenv(ENV_SOCKET, "off")
    proc = _job(tmp_path)
    code, seen, err = _finish(proc)
    assert code == 0 and seen["pid"] == proc.pid and err == ""


def test_a_server_of_another_checkout_declines_and_the_job_runs_itself(tmp_path, monkeypatch):
    _quiet_env(monkeypatch)
    handle = job_server.start(SRC, [], [], tmp_path / "server.log")
    handle.process.terminate()  # replace it by one that says it serves another src/
    handle.process.wait()
    Path(handle.socket_path).unlink(missing_ok=True)
    Path(waiting_path(handle.socket_path)).unlink(missing_ok=True)
    other = subprocess.Popen([sys.executable, "-c", "from eegfm.job_server import main; main()", handle.socket_path,
                              str(os.getpid()), str(tmp_path), '{"light": [], "heavy": [], "needs": {}}'],
                             env={**os.environ, "PYTHONPATH": SRC})
    try:
        for _ in range(100):
            if Path(handle.socket_path).exists():
                break
            time.sleep(0.1)
        monkeypatch.setenv(ENV_SOCKET, handle.socket_path)
        proc = _job(tmp_path)
        code, seen, err = _finish(proc)
        assert code == 0 and seen["pid"] == proc.pid
        assert "declined" in err and str(tmp_path) in err
    finally:
        other.terminate()
        other.wait()
        handle.stop()


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _child_pid(path: Path) -> int:
    for _ in range(200):
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the job never started")


def test_a_signal_to_the_job_process_reaches_the_forked_job(server, tmp_path):
    proc = _job(tmp_path, "sleep", str(tmp_path / "pid"))
    child = _child_pid(tmp_path / "pid")
    assert child != proc.pid
    proc.send_signal(signal.SIGTERM)
    code, _, _ = _finish(proc)
    assert code == 128 + signal.SIGTERM
    assert _gone(child, 5)


def test_a_killed_job_process_takes_its_forked_job_with_it(server, tmp_path):
    proc = _job(tmp_path, "sleep", str(tmp_path / "pid"))
    child = _child_pid(tmp_path / "pid")
    proc.kill()  # SIGKILL: nothing relays, the child notices the closed connection
    proc.wait()
    assert _gone(child, 5)


def test_stopping_the_server_removes_its_socket(tmp_path, monkeypatch):
    _quiet_env(monkeypatch)
    handle = job_server.start(SRC, [], [], tmp_path / "server.log")
    for _ in range(100):
        if Path(handle.socket_path).exists():
            break
        time.sleep(0.1)
    handle.stop()
    assert handle.process.poll() is not None and not Path(handle.socket_path).parent.exists()


def test_a_job_that_needs_the_heavy_modules_midway_starts_again_where_they_are(tmp_path, monkeypatch):
    _quiet_env(monkeypatch)
    (tmp_path / "slow_heavy.py").write_text("import time\ntime.sleep(3)\n")  # stands in for torch
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    handle = job_server.start(SRC, ["numpy", "threadpoolctl"], ["slow_heavy"], tmp_path / "server.log",
                              wait=["train"])
    try:
        proc = _job(tmp_path, "heavy")
        out, err = proc.communicate(timeout=120)
        lines = [json.loads(line) for line in out.splitlines()]
        assert proc.returncode == 0, err
        # the first attempt (forked by the first server, without the heavy module) stopped at
        # wait_for_heavy_modules; the second ran to the end in a fork of the successor, once it had the module
        first, second, end = lines
        assert first["pid"] != second["pid"] == end["pid"] != proc.pid
        assert first["ppid"] == handle.process.pid and second["ppid"] != handle.process.pid
        assert end["heavy"] is True
        # where the heavy modules are, the same call does nothing: one attempt
        out, err = _job(tmp_path, "heavy", env={"RULE": "train"}).communicate(timeout=120)
        (attempt, end) = [json.loads(line) for line in out.splitlines()]
        assert attempt["pid"] == end["pid"] and end["heavy"] is True
    finally:
        handle.stop()
    # in a process of its own, nothing happens either
    monkeypatch.setenv(ENV_SOCKET, "off")
    out, _ = _job(tmp_path, "heavy").communicate(timeout=120)
    assert len(out.splitlines()) == 2 and json.loads(out.splitlines()[1])["heavy"] is False


def test_a_quick_job_starts_on_few_modules_and_again_once_its_rule_s_modules_are_in(tmp_path, monkeypatch):
    _quiet_env(monkeypatch)
    handle = job_server.start(SRC, ["threadpoolctl"], [], tmp_path / "server.log", needs={"x": ["colorsys"]},
                              quick={"x": []})
    try:
        out, err = _job(tmp_path, "light").communicate(timeout=120)
        first, second, end = [json.loads(line) for line in out.splitlines()]
        assert first["pid"] != second["pid"] == end["pid"]
        assert end["had"] is True  # the second attempt was forked after the server imported the rule's modules
        assert end["carried"] == {"key": "computed once"}  # what the first attempt handed on
        log = (tmp_path / "server.log").read_text()
        assert log.index("forked") < log.index("imported colorsys")  # the first attempt did not wait for them
    finally:
        handle.stop()


def test_a_job_started_again_keeps_what_its_first_attempt_logged(tmp_path, monkeypatch):
    """The audit's case: a damaged windows-cache entry was logged as moved aside, then the job started again
    in the server and reopened its log for writing: the line was gone (it stayed with EEGFM_JOB_SERVER=off)."""
    _quiet_env(monkeypatch)
    handle = job_server.start(SRC, ["threadpoolctl"], [], tmp_path / "server.log", needs={"x": ["colorsys"]},
                              quick={"x": []})
    try:
        proc = _job(tmp_path, "logged", str(tmp_path / "job.log"))
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        handle.stop()
    attempts = [line for line in (tmp_path / "job.log").read_text().splitlines() if "attempt in" in line]
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # two attempts, two processes, both lines kept
