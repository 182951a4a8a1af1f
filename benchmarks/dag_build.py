"""DAG build time with every recording file a Snakemake input: `snakemake -n` on 1,000 recordings.

Builds, in a temporary folder, a `files.metadata` table of N recordings and a
BIDS root of N recordings (each with its events.tsv, channels.tsv and eeg.json
sidecars; the data files are hard links of one EDF written by eegfm's
synthetic generator, since only names and mtimes are read when the DAG is
built), then times `snakemake -n` on each and on a 10-recording baseline.
Prints seconds; the extra time of N recordings over 10 is the cost of
tracking them (the check: a few seconds at most).

    .venv/bin/python benchmarks/dag_build.py [--recordings 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from eegfm.config import SyntheticSource
from eegfm.synthetic import write_synthetic_bids

REPO = Path(__file__).resolve().parents[1]


def template(folder: Path) -> dict[str, Path]:
    """One synthetic subject's EEG files (data file and sidecars), by name after ``sub-01_``."""
    root = write_synthetic_bids(folder / "template", SyntheticSource(n_subjects=2, n_source_subjects=2,
                                                                     trials_per_class=2))
    return {f.name.removeprefix("sub-01_"): f for f in sorted((root / "sub-01" / "eeg").iterdir())}


def metadata_dataset(folder: Path, n: int, parts: dict[str, Path]) -> dict:
    data = folder / "files"
    data.mkdir()
    rows = ["path\tsubject"]
    for i in range(n):
        os.link(parts["task-target_eeg.edf"], data / f"rec{i:04d}.edf")
        rows.append(f"rec{i:04d}.edf\ts{i:04d}")
    (data / "recordings.tsv").write_text("\n".join(rows) + "\n")
    return {"source": "files", "files": {"metadata": str(data / "recordings.tsv")}}


def bids_dataset(folder: Path, n: int, parts: dict[str, Path]) -> dict:
    root = folder / "bids"
    (root).mkdir()
    (root / "dataset_description.json").write_text('{"Name": "bench", "BIDSVersion": "1.9.0"}')
    for i in range(n):
        sub = root / f"sub-{i:04d}" / "eeg"
        sub.mkdir(parents=True)
        for rest, source in parts.items():
            os.link(source, sub / f"sub-{i:04d}_{rest}")
    return {"source": "bids", "bids": {"root": str(root), "task": "target"}}


def dry_run(workdir: Path, dataset: dict) -> float:
    config = {"results": "results", "cache": str(workdir / "cache"), "datasets": {"d": dataset},
              "backbones": [{"name": "bandpower"}], "finetune": {"backbones": []}, "pretrain": {}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "1", "-n", "--quiet", "all"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the first is cold, the rest warm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts = template(tmp)
        print(f"snakemake -n (DAG build, Snakemake start-up included), {args.recordings} vs 10 recordings; "
              f"first run (cold), then the minimum of {args.repeats - 1} more (interleaved):")
        for kind, make in (("files.metadata", metadata_dataset), ("bids", bids_dataset)):
            runs: dict[int, list[float]] = {10: [], args.recordings: []}
            datasets = {}
            for n in runs:
                folder = tmp / f"{kind}-{n}"
                folder.mkdir()
                datasets[n] = (folder, {**make(folder, n, parts), "cv": {"scheme": "group_kfold", "n_splits": 5}})
            for _ in range(args.repeats):  # interleaved, so a busy moment hits both sizes alike
                for n, (folder, dataset) in datasets.items():
                    runs[n].append(dry_run(folder, dataset))
            for label, pick in (("cold", lambda t: t[0]), ("warm", lambda t: min(t[1:] or t))):
                small, large = pick(runs[10]), pick(runs[args.recordings])
                print(f"  {kind:15s} {label}  {small:6.2f} s (10)  {large:6.2f} s ({args.recordings})  "
                      f"tracking {args.recordings} recordings costs {large - small:+.2f} s")


if __name__ == "__main__":
    main()
