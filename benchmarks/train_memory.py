"""Peak memory of a fine-tuning job at 1x and 4x the windows: training streams, so the ratio stays near 1.

A synthetic BIDS dataset (19 channels, 4-s windows at 200 Hz) goes through the
real ``build_windows``; the 4x store holds the same windows four times, each
copy under new subject names (``WindowsStoreWriter``, the real store format),
so the only difference between the two jobs is the number of windows. Each
job is ``run_finetune`` (CBraMod, 1 layer, LoRA, one epoch; fold 0 of 3) in a
fresh process, whose peak RSS (``ru_maxrss``: imports, model, data, training,
predictions, artifacts) is printed with the size of the windows as float32.
Holding the windows in memory would add about that size (and twice it in
float64 while adapting) to the peak; streaming adds one batch.

    .venv/bin/python benchmarks/train_memory.py [--subjects 10] [--trials 25] [--threads 2] [--workers 0]

Exits 1 when peak(4x) / peak(1x) > 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT = 1.2


def build(root: Path, subjects: int, trials: int, copies: int = 4) -> dict:
    """Windows store of the synthetic dataset, and one holding ``copies`` copies of it; folds for both."""
    import numpy as np

    from eegfm.config import CrossValidation, Dataset, Preprocessing, SyntheticSource, Windowing
    from eegfm.recordings import find_recordings
    from eegfm.splits import make_folds, write_folds
    from eegfm.synthetic import write_synthetic_bids
    from eegfm.windows import build_windows
    from eegfm.windows_store import WindowsStoreWriter, open_windows

    syn = SyntheticSource(n_subjects=subjects, n_source_subjects=2, trials_per_class=trials)
    bids = write_synthetic_bids(root / "bids", syn)
    build_windows(find_recordings(Dataset(source="synthetic", synthetic=syn), synthetic_root=str(bids)),
                  Preprocessing(sfreq=200.0), Windowing(tmin=0.0, length_s=4.0), out_dir=root / "x1/windows")
    one = open_windows(root / "x1/windows")
    writer = WindowsStoreWriter(root / "x4/windows", one.info["ch_names"], one.info["sfreq"], one.info["n_times"])
    columns = [c for c in one.meta.columns if c != "window_id"]
    for copy in range(copies):
        for start in range(0, one.X.shape[0], 256):
            rows = one.meta.iloc[start : start + 256][columns].to_dict("records")
            for row in rows:
                row["subject"] = f"{row['subject']}c{copy}"
                row["recording"] = f"{row['recording']}#copy{copy}"
            writer.append(np.asarray(one.X[start : start + 256]), rows)
    writer.close(positions=one.info.get("positions"), settings=one.info.get("settings"))
    sizes = {}
    for name in ("x1", "x4"):
        store = open_windows(root / name / "windows")
        folds = make_folds(store.meta, CrossValidation(n_splits=3), seed=0)
        folds["windows_key"] = store.key
        write_folds(root / name / "folds.json", folds, store.meta)
        sizes[name] = {"windows": int(store.X.shape[0]), "mb": store.X.nbytes / 2**20}
    return sizes


def one_job(data: Path, out: Path, threads: int, workers: int) -> dict:
    """One fine-tuning job in this process; its peak RSS."""
    import torch

    from eegfm.config import Backbone, Finetune
    from eegfm.finetune.run import run_finetune

    torch.set_num_threads(threads)
    ft = Finetune(backbones=["cbramod"], regimes=["lora"], workers=workers, threads=threads,
                  optim={"max_epochs": 1, "batch_size": 32})
    t0 = time.perf_counter()
    record = run_finetune(data / "windows", data / "folds.json", 0, Backbone(name="cbramod", kwargs={"n_layer": 1}),
                          ft, "lora", 0, out, dataset="bench")
    return {"status": record["status"], "n_train": record["n_train"], "n_test": record["n_test"],
            "wall_s": time.perf_counter() - t0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--trials", type=int, default=25, help="trials per class and subject (3 classes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (their memory is not counted)")
    parser.add_argument("--one", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_job(Path(args.one[0]), Path(args.one[1]), args.threads, args.workers)))
        return

    os.environ["TQDM_DISABLE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = build(root, args.subjects, args.trials)
        rows = {}
        for name in ("x1", "x4"):
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--one", str(root / name), str(root / name / "fold"),
                 "--threads", str(args.threads), "--workers", str(args.workers)],
                capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
            )  # fmt: skip
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
            rows[name] = json.loads(lines[-1])
    print(f"fine-tune job: CBraMod (1 layer), LoRA, 1 epoch, batch 32, {args.threads} threads, "
          f"{args.workers} loader workers; peak RSS = ru_maxrss of the job's process")
    print(f"{'data':<5} {'windows':>8} {'float32 MB':>11} {'train/test':>11} {'peak RSS MB':>12} {'wall s':>7}")
    for name in ("x1", "x4"):
        r, s = rows[name], sizes[name]
        print(f"{name:<5} {s['windows']:>8} {s['mb']:>11.0f} {r['n_train']:>5}/{r['n_test']:<5} "
              f"{r['peak_rss_mb']:>12.0f} {r['wall_s']:>7.0f}")
    ratio = rows["x4"]["peak_rss_mb"] / rows["x1"]["peak_rss_mb"]
    held = sizes["x4"]["mb"] - sizes["x1"]["mb"]
    print(f"peak RSS 4x / 1x = {ratio:.3f} (limit {LIMIT}); holding the windows would add >= {held:.0f} MB at 4x")
    print("PASS" if ratio <= LIMIT else "FAIL")
    if ratio > LIMIT:
        sys.exit(1)


if __name__ == "__main__":
    main()
