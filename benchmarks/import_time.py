"""What each workflow job pays for its imports, measured inside the jobs of a real run.

A tiny synthetic study (4 subjects, 2 subject folds, a random-init CBraMod:
windows, splits, embed, one probe job, two LoRA fine-tune folds of one
epoch, aggregate) runs through ``snakemake``. A ``sitecustomize`` put on
every job's path times each top-level import statement (the time between
entering and leaving the outermost ``__import__``, so nested imports count
once, under the statement that pulled them in) and the job's whole process
time; at exit each job writes its figures. Printed per workflow script:
jobs, import seconds, process seconds, the import share and the heaviest
top-level packages.

The job server is off here: this is what each job pays in a process of its
own (a cluster job, a conda env), the cost the server saves on a machine.

This is ``python -X importtime`` measured where it matters (in the job,
function-level imports included) rather than on the script's first lines.

    .venv/bin/python benchmarks/import_time.py [--record benchmarks/results/import_time.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = textwrap.dedent(
    """
    import atexit, builtins, json, os, sys, time

    _start, _depth, _spent = time.perf_counter(), [0], {}
    _import = builtins.__import__

    def _timed_import(name, *args, **kwargs):
        _depth[0] += 1
        t0 = time.perf_counter()
        try:
            return _import(name, *args, **kwargs)
        finally:
            _depth[0] -= 1
            if _depth[0] == 0:
                top = name.split(".")[0] or "(relative)"
                _spent[top] = _spent.get(top, 0.0) + time.perf_counter() - t0

    builtins.__import__ = _timed_import

    def _write():
        script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        if ".snakemake/scripts" not in (sys.argv[0] if sys.argv else ""):
            return  # snakemake itself, not a job
        out = os.path.join(os.environ["EEGFM_IMPORT_TIMES"], f"{os.getpid()}.json")
        with open(out, "w") as f:
            json.dump({"script": script.split(".", 1)[-1], "process_s": time.perf_counter() - _start,
                       "imports": _spent}, f)

    atexit.register(_write)
    """
)


def study(cache: Path) -> dict:
    """The measured study: every job kind of the workflow once, on data small enough for seconds of work."""
    return {
        "results": "results", "cache": str(cache), "seed": 0,
        "datasets": {"tiny": {
            "source": "synthetic",
            "synthetic": {"n_subjects": 4, "n_source_subjects": 2, "trials_per_class": 6},
            "windows": {"tmin": 0.5, "length_s": 4.0},
            "cv": {"scheme": "group_kfold", "n_splits": 2},
        }},
        "backbones": [{"name": "cbramod"}],
        "embedding": {"threads": 1},
        "finetune": {"backbones": ["cbramod"], "regimes": ["lora"], "optim": {"max_epochs": 1}},
        "report": {"n_permutations": 200, "n_bootstrap": 200},
    }  # fmt: skip


def run(workdir: Path) -> list[dict]:
    """Run the study with the timing ``sitecustomize``; the per-job records."""
    site, records = workdir / "site", workdir / "records"
    site.mkdir(parents=True)
    records.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (workdir / "config.yaml").write_text(yaml.safe_dump(study(workdir / "cache")))
    # Without the job server (docs/architecture.md §4.4): what a job pays in a process of its own.
    env = {**os.environ, "PYTHONPATH": str(site), "EEGFM_IMPORT_TIMES": str(records), "EEGFM_JOB_SERVER": "off"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2",
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--quiet", "all"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the study failed:\n{proc.stderr[-5000:]}")
    print(f"study ran in {time.perf_counter() - start:.1f} s")
    return [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]


def table(records: list[dict]) -> list[str]:
    """Markdown rows: per script, jobs, median import and process seconds, share, heaviest packages."""
    by_script: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_script[record["script"]].append(record)
    lines = ["| job script | jobs | imports s (median) | process s (median) | import share | heaviest imports (s) |",
             "|---|---:|---:|---:|---:|---|"]
    for script, jobs in sorted(by_script.items()):
        imports = [sum(j["imports"].values()) for j in jobs]
        process = [j["process_s"] for j in jobs]
        heavy: dict[str, float] = defaultdict(float)
        for j in jobs:
            for name, seconds in j["imports"].items():
                heavy[name] += seconds / len(jobs)
        top = ", ".join(f"{n} {s:.2f}" for n, s in sorted(heavy.items(), key=lambda kv: -kv[1])[:4])
        share = statistics.median(imports) / statistics.median(process)
        lines.append(f"| {script} | {len(jobs)} | {statistics.median(imports):.2f} | "
                     f"{statistics.median(process):.2f} | {share:.0%} | {top} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="also write the table (and how it was made) to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lines = table(run(Path(tmp)))
    print("\n".join(lines))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(
            f"# Import time per workflow job\n\nMeasured {time.strftime('%Y-%m-%d')} by "
            f"`python benchmarks/import_time.py --record {args.record}` on {os.cpu_count()} cores "
            "(see the script's docstring for what is timed).\n\n" + "\n".join(lines) + "\n"
        )


if __name__ == "__main__":
    main()
