"""A workflow job hands itself to the job server, which runs it in a fork of a warm process.

Called by ``workflow/scripts/_bootstrap.py`` before any heavy import. When a
server is announced (:data:`eegfm.job_protocol.ENV_SOCKET`) and accepts, this
process only relays: signals go to the forked child, and the child's exit
status becomes this process's. In every other case (no server, GPU or
multi-process jobs, another interpreter, a refusal) the job runs here as
before, so the server can only save time, never change what runs
(docs/architecture.md §4.4).
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import sys
from types import ModuleType

from eegfm.job_protocol import ENV_SOCKET, ENV_WAIT, OFF, interpreter, receive, send, waiting_path

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _wants_own_process(snakemake: object) -> str | None:
    """Why a job must start its own process, or None.

    GPU jobs claim devices and set ``CUDA_VISIBLE_DEVICES`` before torch
    starts; multi-process jobs are launched by srun/torchrun. Both keep the
    process model they were measured and tested with.
    """
    resources = getattr(snakemake, "resources", None)
    if int(getattr(resources, "gpu", 0) or 0) > 0:
        return "a GPU job"
    if int(getattr(resources, "tasks", 1) or 1) > 1:
        return "a multi-process job"
    return None


def run_in_job_server(main: ModuleType, src: str) -> int | None:
    """Run the job script ``main`` in the job server; its exit status, or None to run it here.

    Parameters
    ----------
    main
        The job's ``__main__`` module: Snakemake's preamble has set its
        ``snakemake`` object and pointed ``__file__`` at the real script.
    src
        The ``src/`` folder this job imports eegfm from; the server must run
        the same checkout.
    """
    path = os.environ.get(ENV_SOCKET, "")
    snakemake = getattr(main, "snakemake", None)
    script = getattr(main, "__file__", None)
    if path.lower() in OFF or snakemake is None or script is None or _wants_own_process(snakemake):
        return None
    request = {
        "script": os.path.realpath(script),
        "rule": getattr(snakemake, "rule", None),
        "snakemake": pickle.dumps(snakemake, protocol=pickle.HIGHEST_PROTOCOL),
        "argv": list(sys.argv),
        "path": list(sys.path),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": _umask(),
        "interpreter": interpreter(),
        "src": os.path.realpath(src),
    }
    if request["rule"] in os.environ.get(ENV_WAIT, "").split(","):
        path = waiting_path(path)  # queue for the heavy modules
    # A job may start again (job_protocol.Requeue), at most once for each kind of module it comes to need.
    for _ in range(3):
        sock = _ask(path, request)
        if sock is None:
            return None
        outcome = _relay(*sock)
        if isinstance(outcome, int):
            return outcome
        wants, request["carry"] = outcome
        request["restarted"] = True  # the next attempt appends to the job's log
        if wants == "light" and not request.get("all_modules"):  # again, once its rule's modules are in
            request["all_modules"] = True
        elif wants == "heavy" and path != waiting_path(path):  # at the door of the process that has them
            path = waiting_path(path)
        else:
            break
    print("eegfm: the job server asked the job to start again once too often; it starts its own process",
          file=sys.stderr)
    return None


def _ask(path: str, request: dict) -> tuple[socket.socket, int] | None:
    """Send the job to the server at ``path``: the connection and the forked child's pid, or None (after
    saying why) when the job must run in this process."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5)
        sock.connect(path)
        # A queued job waits for the heavy imports (seconds); a server that never answers is a bug,
        # and the job then runs here (a fork that starts late finds this process gone and ends).
        sock.settimeout(600)
        send(sock, request, fds=[0, 1, 2])
        reply, _ = receive(sock)
        sock.settimeout(None)
    except OSError as err:  # no server (it ended, or a cluster node cannot see it): run here
        sock.close()
        print(f"eegfm: job server at {path} not reachable ({err}); the job starts its own process", file=sys.stderr)
        return None
    if not isinstance(reply, dict) or "pid" not in reply:
        sock.close()
        why = reply.get("refused") if isinstance(reply, dict) else "no answer"
        print(f"eegfm: job server declined ({why}); the job starts its own process", file=sys.stderr)
        return None
    return sock, int(reply["pid"])


def _relay(sock: socket.socket, pid: int) -> int | tuple[str, dict]:
    """Forward signals to the child until it reports its exit status; ``(wants, carry)`` when it asked to
    start again where those modules are (:class:`eegfm.job_protocol.Requeue`)."""

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    before = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    message, _ = receive(sock)
    sock.close()
    for signum, handler in before.items():
        signal.signal(signum, handler)
    if isinstance(message, dict) and message.get("requeue") in ("light", "heavy"):
        return message["requeue"], dict(message.get("carry") or {})
    if not isinstance(message, dict) or "exit" not in message:
        print(f"eegfm: the job's process {pid} ended without an exit status", file=sys.stderr)
        return 1
    code = int(message["exit"])
    # A child killed by a signal reads as the shell writes it: 128 + signal number.
    return 128 - code if code < 0 else code


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
