"""What a workflow job and the job server say to each other (docs/architecture.md §4.4).

A message is a pickle behind an 8-byte length. Pickle is safe here because
both ends are the same user's processes: the socket lives in a folder only
that user can enter (``mkdtemp``, mode 0700). The job's request carries its
standard streams as file descriptors (``SCM_RIGHTS``), so the forked child
writes straight into the files Snakemake opened for the job.

Only the standard library is imported: the client side runs before anything
heavy in every job.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
import sys

#: Set by the Snakefile for the jobs it starts locally: the server's socket.
#: A user disables the server with ``EEGFM_JOB_SERVER=off`` before calling Snakemake.
ENV_SOCKET = "EEGFM_JOB_SERVER"
OFF = ("", "0", "off", "false", "no")
#: Rules (comma-separated) whose jobs queue for the server's heavy imports instead of
#: starting at once without them, at :func:`waiting_path`.
ENV_WAIT = "EEGFM_JOB_SERVER_WAIT"

_HEADER = struct.Struct("!Q")

#: True only in a job forked by a server whose successor holds the heavy modules (set by
#: :mod:`eegfm.job_server` in the child); see :func:`wait_for_heavy_modules`.
forked_before_heavy = False
#: True only in a job forked on the few modules its rule starts with (``quick`` of
#: :func:`eegfm.job_server.start`); see :func:`wait_for_light_modules`.
forked_on_few_modules = False

#: What the job's previous attempt handed on when it asked to start again (set by
#: :mod:`eegfm.job_server` in the child; empty in a first attempt and outside the server).
carried: dict = {}
#: True in a job's second or later attempt in the server: its log is appended to, so what the attempt
#: before logged (e.g. a damaged cache entry moved aside) stays (set by :mod:`eegfm.job_server`).
restarted = False

#: The signal a job sends the server that forked it: the heavy modules will be wanted soon.
HEAVY_WANTED = signal.SIGUSR1


class Requeue(BaseException):
    """Ends a job's attempt in a fork before it wrote anything; the client sends the same job again.

    ``wants`` is ``"light"`` (again at the first door, once the server has
    imported every light module of the job's rule) or ``"heavy"`` (at
    :func:`waiting_path`, where the heavy modules are); ``carry`` (small,
    picklable) reaches the next attempt as :data:`carried`, so it need not
    compute it again.
    """

    def __init__(self, wants: str, carry: dict | None = None) -> None:
        super().__init__(wants)
        self.wants = wants
        self.carry = carry or {}


def heavy_modules_soon() -> None:
    """Called by a job whose outcome means the heavy modules will be wanted soon.

    A windows job that builds its store (a cache miss) calls it: new windows
    mean new embeddings, so torch is needed. The server that forked the job
    then starts importing the heavy modules in its successor; without such a
    hint it waits for the first job that knocks at the second door, so a run
    whose embeddings are all cached never imports torch. Anywhere else it
    does nothing.
    """
    if forked_before_heavy:
        os.kill(os.getppid(), HEAVY_WANTED)


def wait_for_light_modules(carry: dict | None = None) -> None:
    """Called by a job that started on few modules just before it needs the rest of its rule's.

    A windows job first looks for its store in the cache (hashing only) and
    needs MNE and scipy only on a miss. In a fork made on those few modules,
    this ends the attempt (:class:`Requeue`) and the job starts again once
    the server has imported the rule's light modules, instead of importing
    them beside the server on the same cores; ``carry`` reaches the new
    attempt as :data:`carried` (the windows job's cache key: its inputs are
    not hashed twice). Anywhere else it does nothing.
    """
    if forked_on_few_modules:
        raise Requeue("light", carry)


def wait_for_heavy_modules() -> None:
    """Called by a job just before it first needs torch (and the other heavy modules).

    A job of a rule that needs torch only sometimes (an embed job computes its
    store only on a cache miss) starts at the first door and calls this at
    the point where it needs torch. In a fork of the server that lacks the
    heavy modules, it ends this attempt (:class:`Requeue`, before anything was
    written) and the client sends the same job to the door of the successor,
    which has them (or queues there until it does), instead of importing
    them beside it on the same cores. Anywhere else (a process of its own, a
    fork that has them) it does nothing.
    """
    if forked_before_heavy:
        raise Requeue("heavy")


def waiting_path(socket_path: str) -> str:
    """The socket where jobs of the rules in :data:`ENV_WAIT` queue for the heavy modules."""
    return os.path.join(os.path.dirname(socket_path), "w")


def interpreter() -> dict[str, str]:
    """The interpreter a job runs in: the server forks only for jobs of its own interpreter
    (a conda env of `envs/` or another venv runs the job itself)."""
    return {"executable": os.path.realpath(sys.executable), "version": sys.version, "prefix": sys.prefix}


def send(sock: socket.socket, message: object, fds: list[int] | None = None) -> None:
    """Send one message; ``fds`` travel with its first bytes."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    header = _HEADER.pack(len(data))
    if fds:
        socket.send_fds(sock, [header], fds)
        sock.sendall(data)
    else:
        sock.sendall(header + data)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[object | None, list[int]]:
    """One message and the file descriptors sent with it; ``(None, [])`` when the peer closed."""
    fds: list[int] = []
    header = b""
    while len(header) < _HEADER.size:
        if max_fds and not fds:
            chunk, got, _, _ = socket.recv_fds(sock, _HEADER.size - len(header), max_fds)
            fds.extend(got)
        else:
            chunk = sock.recv(_HEADER.size - len(header))
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None, []
        header += chunk
    (size,) = _HEADER.unpack(header)
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None, []
        data += chunk
    return pickle.loads(data), fds
