"""Embedding throughput: eegfm's embed stage against a bare ``model(x)`` forward, in one process.

The claim behind content-addressed embeddings (docs/architecture.md, invariant 1)
is that computing them costs no more than running the model. For each backbone
this script times, on the same windows:

* **bare**: the braindecode model, built as eegfm builds it (same init
  arguments and seed), in ``eval()`` and ``torch.inference_mode``, called as
  ``model(x)`` on model-ready float32 batches already in memory (input
  adaptation done beforehand, not timed);
* **eegfm**: :func:`eegfm.embed.embed` into an empty cache: reading the windows
  store, input adaptation, building the model, the forward pass to the
  feature tap, pooling, writing the verified zarr store and the pointer.

Both use the same batch size and threads; each is repeated (interleaved) and
the fastest run counts. The ratio printed is bare time / eegfm time (eegfm's
throughput as a share of the bare forward's): the goal is >= 0.9.

    .venv/bin/python benchmarks/embed_throughput.py [--backbones cbramod labram biot] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_windows(folder: Path, n_subjects: int) -> Path:
    """The built-in synthetic target task at 200 Hz, cut into 4-s windows (19 channels x 800 samples)."""
    from eegfm.config import Dataset, Preprocessing, SyntheticSource, Windowing
    from eegfm.recordings import find_recordings
    from eegfm.synthetic import write_synthetic_bids
    from eegfm.windows import build_windows

    dataset = Dataset(source="synthetic", synthetic=SyntheticSource(n_subjects=n_subjects, n_source_subjects=2,
                                                                    trials_per_class=20, sfreq=200.0))
    write_synthetic_bids(folder / "bids", dataset.synthetic)
    build_windows(find_recordings(dataset, synthetic_root=folder / "bids"), Preprocessing(), Windowing(length_s=4.0),
                  folder / "windows")
    return folder / "windows"


def bare_forward(name: str, windows_dir: Path, batch_size: int, seed: int) -> float:
    """Seconds to build the model and run ``model(x)`` over every window (model-ready input in memory)."""
    import torch

    from eegfm.backbones.adapt import plan_input, prepare_input
    from eegfm.backbones.build import build_model
    from eegfm.backbones.registry import get_spec
    from eegfm.config import Backbone
    from eegfm.windows_store import open_windows

    windows = open_windows(windows_dir)
    spec, cfg = get_spec(name), Backbone(name=name)
    plan = plan_input(spec, windows.info, cfg=cfg)
    x = torch.from_numpy(prepare_input(np.asarray(windows.X[:]), plan))
    family = spec.family
    kwargs = family.model_forward_kwargs(plan.ch_names)
    start = time.perf_counter()
    model = build_model(spec, family.init_kwargs(spec, cfg, plan), seed).eval()
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            if len(xb) < batch_size:  # the same fixed batch shape eegfm uses
                xb = torch.cat([xb, xb[-1:].expand(batch_size - len(xb), *xb.shape[1:])])
            model(family_input(family, xb), **kwargs)
    return time.perf_counter() - start


def family_input(family, xb):
    """The model input with the family's constant channels (BENDR's SCALE), as FeatureModel feeds it."""
    import torch

    if not family.constant_channels:
        return xb
    values = torch.tensor([float(v) for _, v in family.constant_channels], dtype=xb.dtype)
    return torch.cat([xb, values[None, :, None].expand(xb.shape[0], -1, xb.shape[-1])], dim=1)


def eegfm_embed(name: str, windows_dir: Path, cache: Path, batch_size: int, threads: int, seed: int) -> float:
    """Seconds of :func:`eegfm.embed.embed` computing a store (a cache miss)."""
    from eegfm.config import Backbone, Embedding
    from eegfm.embed import embed

    start = time.perf_counter()
    pointer = embed(str(windows_dir), Backbone(name=name), Embedding(batch_size=batch_size, threads=threads), seed,
                    str(cache), str(cache / f"{name}.json"), "bench")
    elapsed = time.perf_counter() - start
    assert pointer["cache"] == "miss", pointer["cache"]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["cbramod", "labram", "biot"])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        windows_dir = make_windows(tmp, args.subjects)
        from eegfm.windows_store import open_windows

        n = open_windows(windows_dir).X.shape[0]
        print(f"{n} windows of 19 channels x 800 samples at 200 Hz; batch {args.batch_size}, {args.threads} threads, "
              f"best of {args.repeats}")
        print(f"{'backbone':<10} {'bare s':>8} {'eegfm s':>8} {'bare w/s':>9} {'eegfm w/s':>10} {'ratio':>6}  goal >= 0.9")
        for name in args.backbones:
            bare_forward(name, windows_dir, args.batch_size, 0)  # warm-up: first-call allocations, lazy imports
            bare, ours = [], []
            for r in range(args.repeats):
                bare.append(bare_forward(name, windows_dir, args.batch_size, 0))
                ours.append(eegfm_embed(name, windows_dir, tmp / f"cache-{name}-{r}", args.batch_size, args.threads,
                                        0))
            b, e = min(bare), min(ours)
            print(f"{name:<10} {b:>8.2f} {e:>8.2f} {n / b:>9.1f} {n / e:>10.1f} {b / e:>6.2f}  "
                  f"{'PASS' if b / e >= 0.9 else 'FAIL'}")


if __name__ == "__main__":
    main()
