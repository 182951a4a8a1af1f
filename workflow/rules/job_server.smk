# The job server (docs/architecture.md §4.4): when this run has jobs to do on this
# machine, one warm process imports their libraries once and forks each job, instead of
# every job importing numpy, MNE, scikit-learn, torch, braindecode or peft again.
# Settings only: a job runs the same script with the same inputs, in a fork or in a
# process of its own, and writes the same outputs. EEGFM_JOB_SERVER=off turns it off.
import os
import sys
import threading

from snakemake.settings.types import DeploymentMethod

from eegfm import job_server
from eegfm.job_protocol import ENV_SOCKET, OFF

# What each rule's job imports, in pipeline order: (light modules, which the server imports
# between two requests, heavy ones, which a successor imports beside it and then answers the
# jobs that need them; docs/architecture.md §4.4). A module a job needs and the
# server has not imported yet, the job imports itself.
JOB_SERVER_PRELOAD = {
    "synthetic": (["eegfm.synthetic", "mne.io", "mne_bids"], []),
    "windows": (["eegfm.recordings", "eegfm.windows", "eegfm.windowing.preprocess", "mne.io", "mne.filter",
                 "mne.epochs", "scipy.signal", "scipy.stats", "pandas", "zarr"], []),
    "splits": (["eegfm.splits", "eegfm.fold_audit", "sklearn.model_selection", "sklearn.metrics"], []),
    "pretrain": ([], ["torch", "braindecode.models", "eegfm.pretrain.run"]),
    "embed": (["eegfm.embed", "eegfm.provenance"], ["torch", "braindecode.models", "eegfm.backbones.build"]),
    "probe": (["eegfm.probe", "eegfm.estimators", "eegfm.fold_reuse", "sklearn.linear_model", "sklearn.pipeline",
               "sklearn.preprocessing", "sklearn.svm", "sklearn.compose"], []),
    "finetune": (["eegfm.launch", "eegfm.finetune.run"],
                 ["torch", "braindecode.models", "peft", "eegfm.finetune.train", "eegfm.finetune.adapters"]),
    "aggregate": (["eegfm.report", "eegfm.report_stats", "eegfm.report_view", "eegfm.report_page", "eegfm.figures",
                   "eegfm.data_figures", "eegfm.tables", "matplotlib.pyplot", "sklearn.decomposition", "scipy.stats",
                   "jinja2"], []),
}

# Rules whose jobs always need torch (and peft): they queue for the successor's imports instead
# of importing the same modules beside it on the same cores. An embed job needs torch only on a
# cache miss: it starts at once, and on a miss goes to the queue (job_protocol.wait_for_heavy_modules).
JOB_SERVER_WAIT = ["finetune", "pretrain"]

# Rules whose jobs start on a few modules: a windows job first looks for its store in the cache
# (eegfm.windows_cache: hashing only) and asks for MNE and scipy only on a miss.
JOB_SERVER_QUICK = {"windows": ["eegfm.windows_cache"]}


def job_server_wanted():
    """Why this run starts no job server, or None: jobs on other machines, in other
    interpreters (conda, containers), a platform without fork, or a user who said off."""
    if os.environ.get(ENV_SOCKET, "on").lower() in OFF:
        return f"{ENV_SOCKET}={os.environ[ENV_SOCKET]}"
    if not sys.platform.startswith("linux"):
        return "forking a process that loaded these libraries is safe only on Linux"
    if not workflow.local_exec:
        return "jobs run on other machines"
    methods = workflow.deployment_settings.deployment_method
    if DeploymentMethod.CONDA in methods or DeploymentMethod.APPTAINER in methods:
        return "jobs run in their own environments"
    return None


JOB_SERVER = []


onstart:
    if workflow.is_main_process and job_server_wanted() is None:
        rules = {job.rule.name for job in workflow.dag.needrun_jobs()}
        light, heavy = ([m for r, mods in JOB_SERVER_PRELOAD.items() if r in rules for m in mods[i]] for i in (0, 1))
        # torch starts importing once the first rule's modules are in (MNE, scipy, pandas: braindecode's too)
        first = next((mods[0] for r, mods in JOB_SERVER_PRELOAD.items() if r in rules and mods[0]), [None])
        JOB_SERVER.append(job_server.start(SRC, list(dict.fromkeys(light)), list(dict.fromkeys(heavy)),
                                           Path(".snakemake") / "eegfm" / "job-server.log", wait=JOB_SERVER_WAIT,
                                           needs={r: mods[0] for r, mods in JOB_SERVER_PRELOAD.items()},
                                           heavy_after=first[-1], quick=JOB_SERVER_QUICK))


def end_of_run():
    """Stop the job server, and let this process end now.

    After each round that started jobs, Snakemake's scheduler starts a 1 s
    ``threading.Timer`` (its job rate limiter, default 100 jobs/1 s) that
    wakes it to schedule again. The timer's thread is not a daemon, so
    after the last job the process idles until it fires: 1 s on every run.
    When ``onsuccess``/``onerror`` run, scheduling is over; the timers are
    cancelled (docs/architecture.md §4.4).
    """
    for handle in JOB_SERVER:
        handle.stop()
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


onsuccess:
    end_of_run()


onerror:
    end_of_run()
