"""A warm process that forks the workflow's local jobs, so each job skips its imports.

Every job of the workflow is a Python process, and most of a cheap job's
time is importing its stack (numpy, scipy, MNE, scikit-learn, torch,
braindecode, peft: `benchmarks/results/import_time.md`). The Snakefile
starts this server when a run has local jobs to do. It imports the light
modules those jobs need (a requesting job's own first), in pipeline order,
between answering requests, so no job waits behind an import it may not
need. When the heavy ones (torch, braindecode, peft) are wanted, a
successor it forks imports them beside it, on another core, and then
answers a second socket, where the jobs that need them queue. A request is
answered by forking: the child takes the job's streams, working directory,
environment, ``sys.argv``, ``sys.path`` and thread settings, runs the job's
script with its ``snakemake`` object, and reports the exit status
(docs/architecture.md §4.4).

What keeps the numbers the same as in a fresh process:

- the server imports modules and nothing else: no model, no data, no torch
  operation, so no intra-op thread pool exists before a fork (it forks only
  while it is the one Python thread; OpenBLAS's idle workers shut down
  around ``fork`` themselves);
- the child sets the thread counts Snakemake gives a fresh job
  (``OMP_NUM_THREADS`` and friends are read when a library loads, which here
  happened in the server) and reseeds ``random`` and numpy's legacy global
  generator, as a fresh process would;
- requests from another interpreter or another checkout are declined, and
  the job runs in its own process.

Run as ``python -c 'from eegfm.job_server import main; main()' SOCKET PARENT_PID SRC PRELOAD_JSON``
(see :func:`start`).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import pickle
import random
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from eegfm import job_protocol
from eegfm.job_protocol import ENV_SOCKET, ENV_WAIT, HEAVY_WANTED, Requeue, interpreter, receive, send, waiting_path


@dataclass
class Handle:
    """A started server, as the Snakefile keeps it: its process and its socket."""

    process: subprocess.Popen
    socket_path: str

    def stop(self) -> None:
        """End the server and its successor (running jobs finish on their own) and remove the socket folder."""
        try:  # the server's session: it and its successor; each job has a process group of its own
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        folder = Path(self.socket_path).parent
        Path(self.socket_path).unlink(missing_ok=True)
        Path(waiting_path(self.socket_path)).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass


def start(src: str, light: list[str], heavy: list[str], log_path: str | Path, wait: list[str] | None = None,
          needs: dict[str, list[str]] | None = None, heavy_after: str | None = None,
          quick: dict[str, list[str]] | None = None) -> Handle:
    """Start a server for this process's jobs (it ends by itself when this process does).

    Parameters
    ----------
    src
        The checkout's ``src/``, put first on the server's ``sys.path`` as
        ``workflow/scripts/_bootstrap.py`` does for every job.
    light, heavy
        Modules to import, in the order jobs will want them: ``light`` by the
        server between two requests (each import delays a request by at most
        its own time); ``heavy`` by a successor, forked when a job wants
        them, which then answers the second door.
    log_path
        Where the server writes what it did (imports and their seconds, each fork).
    wait
        Rules whose jobs need the heavy modules (an embedding, a fine-tune
        fold, pretraining): they wait for the successor rather than import
        the same modules beside it.
    needs
        The light modules of each rule: a job's request makes the server
        import those of its rule first, once, rather than the job in its fork.
    heavy_after
        A light module the successor is forked after, even when the heavy
        modules are wanted earlier (they import much of what comes before
        it); None: as soon as they are wanted.
    quick
        Rules whose jobs start on a few modules (a windows job looks for its
        store in the cache first) and ask for the rest of ``needs`` only when
        they need them (:func:`eegfm.job_protocol.wait_for_light_modules`).
    """
    # A Unix socket path holds at most 107 bytes: a short private folder in the temp dir.
    socket_path = os.path.join(tempfile.mkdtemp(prefix="eegfm-jobs-"), "s")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    code = f"import sys; sys.path.insert(0, {src!r}); from eegfm.job_server import main; main()"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code, socket_path, str(os.getpid()), os.path.realpath(src),
             json.dumps({"light": light, "heavy": heavy, "needs": needs or {}, "heavy_after": heavy_after,
                         "quick": quick or {}})],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # The first job asks at once: wait for the sockets (a fresh interpreter and this module's
    # imports, well under a second; the waiting room is bound last), or leave the jobs to start
    # their own processes.
    deadline = time.monotonic() + 10
    while not os.path.exists(waiting_path(socket_path)) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # Jobs find the server through their environment, which they inherit from this process.
    os.environ[ENV_SOCKET] = socket_path
    os.environ[ENV_WAIT] = ",".join(wait or [])
    return Handle(process, socket_path)


def _listen(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(64)
    return sock


def main() -> None:
    socket_path, parent, src, preload = sys.argv[1:]
    modules = json.loads(preload)
    Server(socket_path, int(parent), src, modules["light"], modules["heavy"], modules["needs"],
           modules.get("heavy_after"), modules.get("quick")).serve()
    sys.stdout.flush()
    os._exit(0)  # nothing left to clean up; tearing down torch's modules would keep Snakemake waiting


#: How long the server imports nothing while a quick job decides whether it needs its rule's other modules.
QUICK_DECISION_S = 1.0
#: Exit status of a forked job that asked to start again (the client hears why; the server needs only this).
REQUEUED = 75


class Server:
    """Accept job requests and fork, importing light modules between requests; a successor imports the
    heavy ones and answers the second door."""

    def __init__(self, socket_path: str, parent: int, src: str, light: list[str], heavy: list[str],
                 needs: dict[str, list[str]], heavy_after: str | None = None,
                 quick: dict[str, list[str]] | None = None) -> None:
        self.parent = parent
        self.src = src
        self.needs = needs
        self.quick = quick or {}
        self.heavy_after = heavy_after if heavy_after in light else None
        self.pending = list(light)
        self.heavy = [m for m in heavy if m not in light]
        self.successor_pid = 0  # in the first server, while its successor lives
        self.is_successor = False
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        # Two doors: jobs that can start now, and jobs of rules that need the heavy modules
        # (fine-tuning, pretraining, an embedding on a cache miss), which queue at the second door
        # until the successor has imported them.
        self.listener = _listen(socket_path)
        self.waiting_room = _listen(waiting_path(socket_path))
        self.started = time.monotonic()
        # A stop request wakes the select below at once (select resumes after a Python handler otherwise).
        # (The successor shares the pipe, so either may find it drained: neither end blocks.)
        self.wakeup, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup, False)
        os.set_blocking(self.wakeup_write, False)
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.heavy_wanted = False
        signal.signal(HEAVY_WANTED, self._want_heavy)
        self.quick_job: tuple[int, float, str] | None = None  # pid, until when to wait for it, rule

    def _stop(self, _signum, _frame) -> None:
        self.stopping = True

    def _want_heavy(self, _signum, _frame) -> None:
        self.heavy_wanted = True

    def _say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:7.2f} s] {text}", flush=True)

    def _parent_alive(self) -> bool:
        try:
            os.kill(self.parent, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def serve(self) -> None:
        self._say(f"serving; pid {os.getpid()}; {len(self.pending)} light and {len(self.heavy)} heavy preloads")
        while not self.stopping and self._parent_alive():
            # The successor starts when the heavy modules are wanted (a job knocks at the second door, or a
            # windows job that missed the cache announces new embeddings: job_protocol.heavy_modules_soon)
            # and the first rule's modules are in (MNE, scipy, pandas: braindecode imports them too). It
            # imports torch on another core while this process goes on; a run whose embeddings are all
            # cached never imports torch.
            if self.heavy and self.heavy_wanted and (not self.pending or self.heavy_after not in self.pending):
                self._fork_successor()
            # Between two imports, answer whoever is waiting: a job never waits for the whole preload.
            # While a quick job decides whether it needs its rule's other modules, import nothing (see _reap).
            deciding = self.quick_job is not None and time.monotonic() < self.quick_job[1]
            timeout = 0.02 if deciding else 0 if self.pending else 0.5
            if self.is_successor:
                doors = [self.waiting_room]
            else:  # the second door too when no successor will have the heavy modules (none wanted, or it died)
                doors = [self.listener] + ([] if self.successor_pid or self.heavy else [self.waiting_room])
            # a knock at the second door is noticed, not answered (and not while waiting on a quick job: no spin)
            knocks = [self.waiting_room] if self.heavy and not self.is_successor and not deciding else []
            try:
                ready, _, _ = select.select([self.wakeup, *doors, *knocks], [], [], timeout)
            except InterruptedError:
                continue
            if self.wakeup in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wakeup, 512)
            if knocks and self.waiting_room in ready:
                self.heavy_wanted = True
            answered = False
            for door in doors:
                if door in ready and not self.stopping:
                    conn, _ = door.accept()
                    self._answer(conn)
                    answered = True
            self._reap()
            if self.pending and not answered and not deciding:
                self._preload(self.pending.pop(0))
        self.listener.close()
        self.waiting_room.close()
        self._say(f"{os.getpid()} stopped")

    def _fork_successor(self) -> None:
        """A fork that imports the heavy modules, then answers the second door (this process keeps the first)."""
        sys.stdout.flush()
        pid = os.fork()
        if pid:
            self.successor_pid = pid
            self.heavy = []
            return
        self.is_successor = True
        self.children = {}
        self.pending = []  # the light modules stay with the first server; a job's own are imported on request
        self._say(f"successor {os.getpid()} importing {len(self.heavy)} heavy modules")
        for name in self.heavy:
            if self.stopping or not self._parent_alive():
                os._exit(0)
            self._preload(name)
        self.heavy = []
        self._say(f"successor {os.getpid()} answers the second door")

    def _preload(self, name: str) -> None:
        began = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as err:  # a job that needs it raises the same error in its own import
            self._say(f"preload {name} failed: {err!r}")
            return
        self._say(f"imported {name} in {time.perf_counter() - began:.2f} s")

    def _refusal(self, request: dict) -> str | None:
        if request.get("interpreter") != interpreter():
            return f"the job runs {request.get('interpreter', {}).get('executable')}, the server {sys.executable}"
        if request.get("src") != self.src:
            return f"the job imports eegfm from {request.get('src')}, the server from {self.src}"
        if threading.active_count() > 1:
            return "the server has started a thread, and forking it would not be safe"
        return None

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)  # a job sends its request as soon as it connects; never hang on one that does not
        try:
            request, fds = receive(conn, max_fds=3)
        except (OSError, pickle.UnpicklingError, EOFError) as err:
            self._say(f"unreadable request: {err!r}")
            conn.close()
            return
        if not isinstance(request, dict) or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        reason = self._refusal(request)
        if reason:
            self._say(f"declined {request.get('script')}: {reason}")
            for fd in fds:
                os.close(fd)
            send(conn, {"refused": reason})
            conn.close()
            return
        rule = request.get("rule")
        few = rule in self.quick and not request.get("all_modules")
        for name in self.quick[rule] if few else self.needs.get(rule, []):
            if name not in sys.modules:  # the job needs it at once: imported here, once, not in each fork
                if name in self.pending:
                    self.pending.remove(name)
                self._preload(name)
        conn.settimeout(None)
        sys.stdout.flush()
        heavy_later = bool(self.successor_pid or self.heavy)  # the first server's jobs find torch at the second door
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            self.listener.close()
            self.waiting_room.close()
            for other in self.children.values():  # the other jobs' connections are theirs alone
                other.close()
            signal.set_wakeup_fd(-1)
            os.close(self.wakeup)
            os.close(self.wakeup_write)
            job_protocol.forked_before_heavy = heavy_later
            job_protocol.forked_on_few_modules = few
            job_protocol.carried = dict(request.get("carry") or {})
            job_protocol.restarted = bool(request.get("restarted"))
            _run_job(conn, request, fds)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        if few:  # e.g. a windows job looking up its store: wait a moment for its outcome (_reap)
            self.quick_job = (pid, time.monotonic() + QUICK_DECISION_S, rule)
        self._say(f"forked {pid} for {Path(request['script']).name}")

    def _reap(self) -> None:
        if self.successor_pid and os.waitpid(self.successor_pid, os.WNOHANG)[0]:
            self.successor_pid = 0
            self._say("the successor ended; this server answers the second door")
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if not done:
                continue
            conn = self.children.pop(pid)
            if self.quick_job is not None and self.quick_job[0] == pid:
                rule = self.quick_job[2]
                self.quick_job = None
                if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == REQUEUED):  # it did not need them:
                    later = [m for m in self.pending if m in self.needs.get(rule, [])]  # the others' come first
                    self.pending = [m for m in self.pending if m not in later] + later
            if os.WIFSIGNALED(status):  # it could not report itself: killed, or out of memory
                try:
                    send(conn, {"exit": -os.WTERMSIG(status)})
                except OSError:
                    pass
            conn.close()


def _run_job(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the job, run its script, report the exit status."""
    code = 1
    finished = threading.Event()
    try:
        os.setpgid(0, 0)  # its own group, so the job's own children end with it
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT, HEAVY_WANTED):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(ENV_SOCKET, None)  # the job's own subprocesses start as usual
        os.environ.pop(ENV_WAIT, None)
        sys.argv[:] = request["argv"]
        sys.path[:] = request["path"]
        _fresh_process_state()
        send(conn, {"pid": os.getpid()})
        threading.Thread(target=_end_with_client, args=(conn, finished), daemon=True).start()
        code = _run_script(request["script"], pickle.loads(request["snakemake"]))
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a fresh process runs at exit (log handlers, temp folders)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            finished.set()
            again = isinstance(code, Requeue)
            try:
                send(conn, {"requeue": code.wants, "carry": code.carry} if again else {"exit": code})
            except OSError:
                pass
            os._exit(REQUEUED if again else code)


def _fresh_process_state() -> None:
    """What a fresh process would have: Snakemake's thread counts, unshared random seeds."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        if any(name in sys.modules for name in ("numpy", "scipy", "sklearn", "torch")):  # BLAS and OpenMP loaded
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # scikit-learn's dependency; without it, no BLAS pool to size either
                pass
            else:
                threadpool_limits(int(threads))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def _run_script(script: str, snakemake: object) -> int | Requeue:
    """Run a job script as ``python script`` would, with Snakemake's preamble object; its exit status,
    or its request to start again (:class:`~eegfm.job_protocol.Requeue`)."""
    try:
        runpy.run_path(script, init_globals={"snakemake": snakemake}, run_name="__main__")
    except Requeue as again:
        return again
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return int(exit_.code or 0)
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _end_with_client(conn: socket.socket, finished: threading.Event) -> None:
    """The relaying job process is gone (killed, or Snakemake was): end this job and its children."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    if finished.is_set():
        return
    os.killpg(0, signal.SIGTERM)
    time.sleep(10)
    os.killpg(0, signal.SIGKILL)
