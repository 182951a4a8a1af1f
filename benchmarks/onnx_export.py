"""Which registered backbones export to ONNX: the table in docs/onnx.md, measured.

For every trainable backbone of the registry (registry defaults, random init,
19 channels of the 10-20 system at the backbone's own rate, 4 s or the
nearest length it takes) this builds the fine-tuning classifier as a fold
would (``build_classifier``; LoRA on the registry's targets where it has
some, else the full network), gives every LoRA ``B`` matrix random values
(as if trained, so merging is exercised), then exports it with
:func:`eegfm.finetune.export.export_onnx` and runs it in onnxruntime on 8
random windows. It prints one markdown row per backbone: exported or not,
the max absolute logit difference from torch, the exporter's error.

    .venv/bin/python benchmarks/onnx_export.py [--backbones cbramod labram ...] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4",
            "P8", "O1", "O2"]
FEATURE_ONLY = {"bandpower", "riemann"}


def n_times_for(spec) -> int:
    sfreq = spec.sfreq
    if spec.n_times_fixed:
        return spec.n_times_fixed
    m = spec.n_times_multiple
    n = max(spec.n_times_min, math.ceil(4 * sfreq / m) * m)
    n_max = getattr(spec, "n_times_max", None)
    return min(n, (n_max // m) * m) if n_max else n


def measure(name: str) -> dict:
    import torch

    from eegfm.backbones.adapt import plan_input
    from eegfm.backbones.registry import get_spec
    from eegfm.config import Backbone, Finetune
    from eegfm.finetune.export import export_onnx
    from eegfm.finetune.run import add_adapters, build_classifier

    spec = get_spec(name)
    regime = "lora" if spec.lora_targets else "full"
    info = {"sfreq": spec.sfreq, "n_times": n_times_for(spec), "ch_names": CHANNELS, "units": "V"}
    cfg = Backbone(name=name)
    plan = plan_input(spec, info, cfg=cfg)
    ft = Finetune(backbones=[name], regimes=[regime])
    x = torch.randn(8, len(plan.ch_names), plan.n_times_out, generator=torch.Generator().manual_seed(0))
    model, _ = build_classifier(spec, cfg, plan, regime, ft, 3, x[:2], 0)
    add_adapters(model, spec, regime, ft, x[:2], torch.device("cpu"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        record = export_onnx(model, x, Path(tmp) / "model.onnx", name)
        size = (Path(tmp) / "model.onnx").stat().st_size
    return {"regime": regime, "max_abs_diff": record["max_abs_diff"], "mb": size / 2**20,
            "s": time.perf_counter() - t0, "shape": [len(plan.ch_names), plan.n_times_out, plan.sfreq_out]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import warnings

        import torch

        warnings.filterwarnings("ignore")
        torch.set_num_threads(args.threads)
        try:
            print(json.dumps({"ok": True, **measure(args.one)}))
        except Exception as err:  # noqa: BLE001 — the failure is the measurement
            print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"}))
        return

    from eegfm.backbones.registry import REGISTRY

    names = args.backbones or [n for n in REGISTRY if n not in FEATURE_ONLY]
    print("| backbone | adapted as | input (ch x samples @ Hz) | exports | max abs logit diff (onnxruntime vs torch) "
          "| notes |")
    print("|---|---|---|---|---|---|")
    for name in names:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name, "--threads",
                               str(args.threads)], capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        r = json.loads(lines[-1]) if lines else {"ok": False, "error": (proc.stderr or "crashed").strip()[-300:]}
        if r["ok"]:
            ch, n, sf = r["shape"]
            print(f"| {name} | {r['regime']} | {ch} x {n} @ {sf:g} | yes | {r['max_abs_diff']:.1e} | "
                  f"{r['mb']:.1f} MB, {r['s']:.0f} s |", flush=True)
        else:
            error = " ".join(r["error"].split())[:800].replace("|", "/")
            print(f"| {name} | | | **no** | | {error} |", flush=True)


if __name__ == "__main__":
    main()
