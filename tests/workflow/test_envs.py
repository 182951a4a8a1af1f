"""Conda envs: one per rule family, pinned like pyproject.toml, enough for the code each rule runs.

Users build them with `snakemake --sdm conda --conda-create-envs-only` (then run
with `--sdm conda`); conda channels are not reachable from the dev machine, so
here the command can only fail, and must fail quickly and say why.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "workflow/rules").glob("*.smk")) + [REPO / "Snakefile"]
ACTIONS = ("script", "shell", "run", "notebook", "wrapper", "cwl")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


PINS = {
    normalize(dep.split("==")[0]): dep.split("==")[1]
    for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
}


def env_packages(env: Path) -> dict[str, str]:
    """pip requirements of an env file: normalized name -> pinned version."""
    spec = yaml.safe_load(env.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    return {normalize(line.split("==")[0]): line.split("==")[1] for line in pip}


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """rule name -> (file, text of its block), parsed from the Snakefile and workflow/rules/*.smk."""
    blocks: dict[str, tuple[Path, str]] = {}
    for path in RULE_FILES:
        name, lines = None, []
        for line in [*path.read_text().splitlines(), "EOF"]:
            if name is not None and line.strip() and not line.startswith((" ", "\t", "#")):
                blocks[name] = (path, "\n".join(lines))
                name, lines = None, []
            match = re.match(r"(?:rule|checkpoint)\s+(\w+)\s*:", line)
            if match:
                name, lines = match.group(1), []
            elif name is not None:
                lines.append(line)
    return blocks


def directive(block: str, key: str) -> str | None:
    match = re.search(rf"^\s+{key}:\s*(?:#.*)?\n?\s*\"([^\"]+)\"", block, flags=re.M)
    return match.group(1) if match else None


def has_action(block: str) -> bool:
    return any(re.search(rf"^\s+{action}:", block, flags=re.M) for action in ACTIONS)


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_pins_match_pyproject(env):
    for name, version in env_packages(env).items():
        if name == "torchaudio":
            assert version == "2.11.0"  # installed separately, see tools/install.sh
            continue
        assert PINS.get(name) == version, f"{env.name}: {name}=={version} but pyproject pins {PINS.get(name)}"
    spec = yaml.safe_load(env.read_text())
    assert "python=3.11" in spec["dependencies"] and "conda-forge" in spec["channels"]


def test_every_dependency_is_in_some_env():
    in_envs = set().union(*(env_packages(env) for env in (REPO / "envs").glob("*.yaml")))
    workflow_only = {"snakemake", "snakemake-executor-plugin-slurm"}  # run Snakemake, not a job
    assert set(PINS) - workflow_only - in_envs == set()


def test_every_rule_with_a_job_has_a_conda_env_that_exists():
    blocks = rule_blocks()
    # the parser saw every rule Snakemake sees (run offline, in a scratch dir)
    listed = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--list-rules"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert set(listed.stdout.split()) == set(blocks), listed.stdout
    used = set()
    for name, (path, block) in blocks.items():
        env = directive(block, "conda")
        if not has_action(block):
            assert env is None, f"rule {name} runs nothing but declares conda: {env}"
            continue
        assert env, f"rule {name} ({path.name}) has no conda: directive"
        resolved = (path.parent / env).resolve()  # conda: paths are relative to the .smk file
        assert resolved.is_file(), f"rule {name} ({path.name}): {env} does not exist"
        assert resolved.parent == REPO / "envs", f"rule {name}: {env} is not in envs/"
        used.add(resolved.name)
    assert used == {p.name for p in (REPO / "envs").glob("*.yaml")}, "an env in envs/ that no rule uses"


def test_creating_the_conda_envs_here_fails_fast_and_says_why(tmp_path):
    frontend = shutil.which("conda") or shutil.which("mamba")
    if frontend:
        pytest.skip(f"conda found at {frontend}: build the envs with "
                    "`snakemake --sdm conda --conda-create-envs-only --cores 1`")  # fmt: skip
    shutil.copy(REPO / "config/config.yaml", tmp_path / "config.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "--sdm", "conda",
           "--conda-create-envs-only", "--conda-prefix", str(tmp_path / "conda")]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Is conda installed and accessible?" in out or "CondaHTTPError" in out, out[-3000:]
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert not (tmp_path / "results").exists()


# Records, in every Snakemake script job, which top-level modules the rule's
# own code imports (the script itself and eegfm.*), whether or not they were
# already loaded by Snakemake's preamble.
AUDIT = r'''
import atexit, builtins, importlib, json, os, sys

_out = os.environ.get("EEGFM_IMPORT_AUDIT")
_script = sys.argv[0] if sys.argv else ""
if _out and "/.snakemake/scripts/" in _script.replace(os.sep, "/"):
    _seen = set()
    _import, _import_module = builtins.__import__, importlib.import_module

    def _note(importer, name):
        if isinstance(importer, str) and (importer == "__main__" or importer.split(".")[0] == "eegfm"):
            _seen.add(name.partition(".")[0])

    def _audited_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name:
            _note((globals or {}).get("__name__"), name)
        return _import(name, globals, locals, fromlist, level)

    def _audited_import_module(name, package=None):
        if not name.startswith("."):
            _note(sys._getframe(1).f_globals.get("__name__"), name)
        return _import_module(name, package)

    builtins.__import__ = _audited_import
    importlib.import_module = _audited_import_module

    @atexit.register
    def _dump():
        with open(os.path.join(_out, f"{os.getpid()}.json"), "w") as fh:
            json.dump({"script": os.path.basename(_script).split(".", 1)[1], "modules": sorted(_seen)}, fh)
'''


@pytest.mark.slow
def test_each_env_holds_what_its_rules_import(tmp_path):
    """Run the tiny workflow, record what each rule's code imports, check it is in the rule's env."""
    (tmp_path / "audit").mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "site/sitecustomize.py").write_text(AUDIT)
    config = {
        "results": "results",
        "cache": str(tmp_path / "cache"),
        "datasets": {
            "tiny": {
                "source": "synthetic",
                "synthetic": {"n_subjects": 4, "n_source_subjects": 2, "trials_per_class": 6},
                "windows": {"tmin": 0.5, "length_s": 3.0},
                "cv": {"scheme": "group_kfold", "n_splits": 2},
            }
        },
        "backbones": [{"name": "bandpower"}],
        "embedding": {"threads": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "EEGFM_IMPORT_AUDIT": str(tmp_path / "audit")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "2"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-6000:]

    script_rule = {}
    rule_env = {}
    for name, (path, block) in rule_blocks().items():
        if directive(block, "script") and directive(block, "conda"):
            script_rule[Path(directive(block, "script")).name] = name
            rule_env[name] = (path.parent / directive(block, "conda")).resolve()
    distributions = importlib.metadata.packages_distributions()
    ignore = set(sys.stdlib_module_names) | {"eegfm", "_bootstrap", "snakemake"}  # snakemake: the script preamble
    seen_rules = set()
    problems = []
    for record in map(json.loads, (p.read_text() for p in (tmp_path / "audit").glob("*.json"))):
        rule = script_rule[record["script"]]
        seen_rules.add(rule)
        listed = env_packages(rule_env[rule])
        for module in sorted(set(record["modules"]) - ignore):
            dists = {normalize(d) for d in distributions.get(module, [module])}
            if not dists & set(listed):
                problems.append(f"rule {rule} imports {module} ({', '.join(sorted(dists))}), "
                                f"missing in envs/{rule_env[rule].name}")  # fmt: skip
    assert seen_rules == {"synthetic", "windows", "splits", "embed", "probe", "aggregate"}
    assert not problems, "\n".join(problems)
