"""Embedding cost: first computation vs cache hit, per backbone, on the built-in data.

Prints windows/s of the first computation and the ratio miss/hit wall time
(the point of content-addressed stores: a rerun, a renamed dataset or another
head costs almost nothing). Ratios, not absolute times, are the check.

    .venv/bin/python benchmarks/embed_cache.py [--subjects 10] [--backbones bandpower cbramod]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from eegfm.config import Backbone, Dataset, Embedding, SyntheticSource
from eegfm.embed import embed
from eegfm.recordings import find_recordings
from eegfm.synthetic import write_synthetic_bids
from eegfm.windows import build_windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--backbones", nargs="+", default=["bandpower", "cbramod"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset = Dataset(source="synthetic", synthetic=SyntheticSource(n_subjects=args.subjects, n_source_subjects=2))
        write_synthetic_bids(tmp / "bids", dataset.synthetic)
        info = build_windows(
            find_recordings(dataset, synthetic_root=tmp / "bids"), dataset.preprocessing, dataset.windows, tmp / "w"
        )
        emb = Embedding(batch_size=args.batch_size, threads=args.threads)
        print(f"{info['n_windows']} windows of {info['n_channels']} x {info['n_times']} @ {info['sfreq']:g} Hz")
        print(f"{'backbone':<12} {'windows/s':>10} {'miss s':>8} {'hit s':>8} {'miss/hit':>9}")
        for name in args.backbones:
            times = []
            for attempt in ("miss", "hit"):
                start = time.perf_counter()
                pointer = embed(str(tmp / "w"), Backbone(name=name), emb, 0, str(tmp / "cache"),
                                str(tmp / f"{name}-{attempt}.json"), "bench")
                times.append(time.perf_counter() - start)
                assert pointer["cache"] == attempt, pointer["cache"]
            print(f"{name:<12} {info['n_windows'] / times[0]:>10.1f} {times[0]:>8.2f} {times[1]:>8.3f} "
                  f"{times[0] / times[1]:>9.0f}x")


if __name__ == "__main__":
    main()
