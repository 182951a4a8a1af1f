"""What a re-run rebuilds: only the jobs whose code or settings changed, and what depends on them.

The workflow (Snakefile, workflow/, src/, config/, envs/) is copied to a scratch folder
and edited there, never in the repository. After one full run of a tiny config,
each edit is checked with a dry run (`-n`), whose job table names what would
re-run; undoing the edit must leave nothing to do. A plain re-run doing nothing
is in test_workflow.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_workflow import tiny_config as base_config

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def tiny_config(cache: Path, **extra) -> dict:
    """The end-to-end tiny config with only the (fast) band-power backbone."""
    return base_config(cache, backbones=[{"name": "bandpower"}], **extra)


class Workflow:
    """A copy of the workflow code and a working directory that runs it."""

    def __init__(self, root: Path):
        self.code = root / "code"
        self.work = root / "work"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("workflow", "src", "config", "envs"):  # envs: Snakemake records them per job
            shutil.copytree(REPO / name, self.code / name, ignore=ignore)
        shutil.copy2(REPO / "Snakefile", self.code / "Snakefile")
        self.work.mkdir()

    def snakemake(self, config: dict, *args: str) -> str:
        (self.work / "config.yaml").write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(self.code / "Snakefile"), "--cores", "2",
               "--directory", str(self.work), "--configfile", str(self.work / "config.yaml"), *args]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        return out

    def would_run(self, config: dict) -> dict[str, int]:
        """Jobs a dry run would run, per rule (the `Job stats` table); {} when nothing is to be done."""
        out = self.snakemake(config, "-n")
        if "Nothing to be done" in out:
            return {}
        table = out.split("Job stats:", 1)[1]
        counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M))
        total = int(counts.pop("total"))
        counts = {rule: int(n) for rule, n in counts.items()}
        assert sum(counts.values()) == total, table
        counts.pop("all", None)  # the target rule runs no job
        return counts


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    wf = Workflow(tmp_path_factory.mktemp("rerun"))
    config = tiny_config(wf.work.parent / "cache")
    wf.snakemake(config)
    assert wf.would_run(config) == {}
    return wf, config


def test_editing_a_rule_script_reruns_that_rule_and_what_follows(finished):
    wf, config = finished
    script = wf.code / "workflow/scripts/probe.py"
    original, stat = script.read_text(), script.stat()
    script.write_text(original + "# an edit\n")
    try:
        assert wf.would_run(config) == {"probe": 1, "aggregate": 1}
    finally:
        # Snakemake compares a script's mtime with the outputs' (not its text):
        # undoing the edit means restoring both
        script.write_text(original)
        os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert wf.would_run(config) == {}


def test_editing_a_probe_setting_reruns_probes_and_the_report(finished):
    wf, config = finished
    edited = {**config, "probe": {"estimator": "logistic_regression", "params": {"C": 0.5}}}
    assert wf.would_run(edited) == {"probe": 1, "aggregate": 1}
    assert wf.would_run(config) == {}


def test_editing_the_report_title_reruns_only_the_report(finished):
    wf, config = finished
    edited = {**config, "report": {"title": "another title"}}
    assert wf.would_run(edited) == {"aggregate": 1}
    assert wf.would_run(config) == {}
