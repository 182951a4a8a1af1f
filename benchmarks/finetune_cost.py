"""Fine-tuning cost per backbone x regime: parameters, peak memory and time of a few real training steps.

For each backbone (full-size registry defaults unless ``--kwargs`` says otherwise)
and each regime it prints trainable / total parameters, the trainable share,
peak memory and seconds per optimisation step, then the ratios the regimes
exist for: LoRA trainable / full trainable (PASS at <= 5 %), QLoRA / LoRA peak
memory and QLoRA / LoRA bytes of the frozen base weights.

How: a synthetic BIDS dataset (6 subjects, 4-s windows at 200 Hz) goes through
the real ``build_windows`` -> ``make_folds``/``write_folds``; every
(backbone, regime) then runs in a fresh subprocess (``--one``, one JSON line)
that calls the project's ``prepare_fold`` and ``train`` on ``--steps`` batches
of the fold's inner-training windows (one epoch, one validation batch), so each
measurement has its own memory high-water mark. Memory: on CPU the peak RSS of
the training call (the high-water mark is reset through /proc/self/clear_refs
after the model and data are built) and that peak minus the RSS after building
(the training's own memory); on CUDA ``torch.cuda.max_memory_allocated`` and
bf16 autocast. Seconds per step: the time between the starts of consecutive
training forwards (the first step, which also checks the gradients, is left
out when there are more). 'scratch' costs what 'full' costs (same network,
random init) and 'lp-ft' is a 'head' phase then a 'full' phase; they are
listed as such, not measured. On CPU, bitsandbytes' 4-bit layers run a slow
PyTorch fallback (dequantize on every forward), so QLoRA times and memory on
CPU say nothing about its GPU cost.

On CUDA every measurement runs in bf16 autocast and again in fp32, and two
more tables compare them: bf16 vs fp32 seconds per step (per backbone x
regime) and QLoRA vs LoRA peak GPU memory (goal: QLoRA <= 0.5x LoRA). On CPU
they print "not measured (no CUDA device)".

    .venv/bin/python benchmarks/finetune_cost.py [--backbones labram cbramod] [--regimes head lora qlora full]
        [--kwargs '{"labram": {"num_layers": 4}}'] [--lora-r 8] [--steps 3] [--batch-size 16] [--threads 2]

Exits 1 when a LoRA/full share is above 5 % or a measurement failed.
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

MEASURED = ("head", "lora", "qlora", "full", "scratch")
SUBJECTS, TRIALS_PER_CLASS, N_SPLITS = 6, 10, 3


# ----------------------------------------------------------------------------- data (parent)


def build_data(root: Path) -> dict:
    """Synthetic BIDS -> windows store (4-s windows at 200 Hz) -> folds.json, as tests/finetune/conftest.py."""
    from eegfm.config import CrossValidation, Dataset, Preprocessing, SyntheticSource, Windowing
    from eegfm.recordings import find_recordings
    from eegfm.splits import make_folds, write_folds
    from eegfm.synthetic import write_synthetic_bids
    from eegfm.windows import build_windows
    from eegfm.windows_store import open_windows

    syn = SyntheticSource(n_subjects=SUBJECTS, n_source_subjects=2, trials_per_class=TRIALS_PER_CLASS)
    bids = write_synthetic_bids(root / "bids", syn)
    info = build_windows(
        find_recordings(Dataset(source="synthetic", synthetic=syn), synthetic_root=str(bids)),
        Preprocessing(sfreq=200.0),
        Windowing(tmin=0.0, length_s=4.0),
        out_dir=root / "windows",
    )
    store = open_windows(root / "windows")
    folds = make_folds(store.meta, CrossValidation(n_splits=N_SPLITS), seed=0)
    folds["windows_key"] = info["key"]
    write_folds(root / "folds.json", folds, store.meta)
    return info


# ----------------------------------------------------------------------------- one measurement (child)


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (ru_maxrss / VmHWM) of this process; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _tensor_bytes(t) -> int:
    return t.numel() * t.element_size()


def base_weight_bytes(model) -> dict[str, int]:
    """Bytes of the frozen backbone tensors; a bitsandbytes Params4bit counts its packed uint8 data + quant state."""
    from eegfm.finetune.regimes import group_of

    out = {"bytes": 0, "quant_state_bytes": 0, "tensors_4bit": 0, "tensors": 0}
    for name, p in model.named_parameters():
        if group_of(name) != "backbone" or p.requires_grad:
            continue
        out["tensors"] += 1
        out["bytes"] += _tensor_bytes(p)
        state = getattr(p, "quant_state", None)
        if state is not None:
            out["tensors_4bit"] += 1
            extra = 0
            for t in (getattr(state, "absmax", None), getattr(state, "offset", None)):
                if t is not None and hasattr(t, "numel"):
                    extra += _tensor_bytes(t)
            nested = getattr(state, "state2", None)
            if nested is not None and getattr(nested, "absmax", None) is not None:
                extra += _tensor_bytes(nested.absmax)
            out["quant_state_bytes"] += extra
            out["bytes"] += extra
    return out


def measure_one(args) -> dict:
    """Build one fold's model in ``regime`` with prepare_fold, train ``steps`` steps with train(), report costs."""
    import numpy as np
    import torch

    from eegfm.config import Backbone, Finetune
    from eegfm.finetune.run import prepare_fold
    from eegfm.finetune.train import Split, train

    torch.set_num_threads(args.threads)
    name, regime = args.one
    kwargs = json.loads(args.kwargs).get(name, {})
    cuda = torch.cuda.is_available()
    ft = Finetune(
        backbones=[name], regimes=[regime], device="cuda" if cuda else "cpu", precision=args.precision,
        optim={"max_epochs": 1, "batch_size": args.batch_size, "warmup_epochs": 0.0}, threads=args.threads,
        **({"lora": {"r": args.lora_r, "alpha": 2 * args.lora_r}} if args.lora_r else {}),
    )
    data = Path(args.data)
    t0 = time.perf_counter()
    f = prepare_fold(data / "windows", data / "folds.json", 0, Backbone(name=name, kwargs=kwargs), ft, regime, 0,
                     dataset="synthetic", group_by="subject")
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)  # a seeded slice of the inner-training windows: steps x batch
    inner = sorted(rng.permutation(f.inner_ids)[: args.steps * args.batch_size].tolist())
    val = sorted(rng.permutation(f.val_ids)[: args.batch_size].tolist())
    train_split, val_split = Split(f.X[inner], f.y[inner]), Split(f.X[val], f.y[val])

    starts: list[tuple[float, bool]] = []

    def _stamp(module, _inputs):
        if cuda:
            torch.cuda.synchronize()
        starts.append((time.perf_counter(), module.training))

    hook = f.model.register_forward_pre_hook(_stamp)
    build_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(f.device)
        base_mb = torch.cuda.memory_allocated(f.device) / 2**20
        reset = True
    else:
        reset = _reset_peak_rss()
        base_mb = _rss_kib() / 1024
    t0 = time.perf_counter()
    result = train(f.model, train_split, val_split, regime, ft, 0, f.device, f.dtype, unused=f.unused,
                   desc=f"{name}/{regime}")
    if cuda:
        torch.cuda.synchronize()
        peak_mb = torch.cuda.max_memory_allocated(f.device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    train_s = time.perf_counter() - t0
    hook.remove()

    step_s = [b[0] - a[0] for a, b in zip(starts, starts[1:]) if a[1]]  # training forward -> next forward
    timed = step_s[1:] if len(step_s) > 1 else step_s
    counts = list(result.counts.values())[-1]
    return {
        "backbone": name, "kwargs": kwargs, "regime": regime, "status": result.status, "error": result.error,
        "device": str(f.device), "device_name": torch.cuda.get_device_name(f.device) if cuda else "cpu",
        "precision": "bf16" if f.dtype is not None else "fp32", "threads": args.threads,
        "memory": "cuda_max_allocated" if cuda else ("rss_peak_reset" if reset else "rss_peak_process"),
        "trainable": counts["trainable"], "frozen": counts["frozen"], "total": counts["total"],
        "counts": counts, "steps": result.diagnostics["steps"], "batch_size": args.batch_size,
        "n_windows": list(train_split.X.shape), "s_per_step": float(np.median(timed)) if timed else None,
        "s_per_step_min": min(timed) if timed else None,
        "first_step_s": step_s[0] if step_s else None, "step_s_all": step_s, "build_s": build_s, "train_s": train_s,
        "lora_r": ft.lora.r, "base_mb": base_mb, "peak_mb": peak_mb, "step_mb": peak_mb - base_mb, "build_peak_mb": build_peak_kib / 1024,
        "base_weights": base_weight_bytes(f.model),
        "quantized_modules": len(f.adapters.quantized) if f.adapters else 0,
        "parametrized_modules": len(f.adapters.parametrized) if f.adapters else 0,
        "peft_modules": len(f.adapters.peft_modules) if f.adapters else 0,
    }


# ----------------------------------------------------------------------------- table (parent)


def run_child(args, data: Path, name: str, regime: str, precision: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", name, regime, "--data", str(data),
           "--precision", precision,
           "--kwargs", args.kwargs, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--threads", str(args.threads)] + (["--lora-r", str(args.lora_r)] if args.lora_r else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        return {"backbone": name, "regime": regime, "status": "error", "error": tail}
    return json.loads(lines[-1])


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def _cuda_available() -> bool:
    proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                          capture_output=True, text=True)
    return proc.stdout.strip() == "True"


def gpu_tables(args, rows: dict, fp32: dict) -> None:
    """On CUDA: bf16 vs fp32 seconds per step, and QLoRA vs LoRA peak GPU memory (goal <= 0.5x)."""
    good = lambda r: r is not None and r.get("status") == "ok"  # noqa: E731
    if not fp32:
        print("\nbf16 vs fp32 step time, QLoRA vs LoRA peak GPU memory: not measured (no CUDA device)")
        return
    print(f"\nbf16 autocast vs fp32 on {next(iter(rows.values())).get('device_name', 'cuda')}: seconds per step "
          "(median of steps 2..n)")
    print(f"{'backbone':<9} {'regime':<8} {'fp32 s':>8} {'bf16 s':>8} {'speed-up':>9} {'fp32 MB':>8} {'bf16 MB':>8}")
    for (name, regime), r in rows.items():
        f = fp32.get((name, regime))
        if good(r) and good(f) and r["s_per_step"] and f["s_per_step"]:
            print(f"{name:<9} {regime:<8} {f['s_per_step']:>8.4f} {r['s_per_step']:>8.4f} "
                  f"{f['s_per_step'] / r['s_per_step']:>8.2f}x {f['peak_mb']:>8.0f} {r['peak_mb']:>8.0f}")
        else:
            print(f"{name:<9} {regime:<8} failed: {(f or {}).get('error') or r.get('error')}")
    print("\nQLoRA vs LoRA peak GPU memory (torch.cuda.max_memory_allocated during training; goal QLoRA <= 0.5x)")
    print(f"{'backbone':<9} {'precision':<9} {'LoRA MB':>8} {'QLoRA MB':>9} {'ratio':>7}  verdict")
    for precision, table in (("bf16", rows), ("fp32", fp32)):
        for name in args.backbones:
            lora, qlora = table.get((name, "lora")), table.get((name, "qlora"))
            if good(lora) and good(qlora):
                ratio = qlora["peak_mb"] / lora["peak_mb"]
                print(f"{name:<9} {precision:<9} {lora['peak_mb']:>8.0f} {qlora['peak_mb']:>9.0f} {ratio:>6.2f}x  "
                      f"{'PASS' if ratio <= 0.5 else 'above goal'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["labram", "cbramod"])
    parser.add_argument("--regimes", nargs="+", default=["head", "lora", "qlora", "full"], choices=MEASURED)
    parser.add_argument("--kwargs", default="{}", help='JSON {backbone: constructor kwargs}, e.g. \'{"cbramod": {"n_layer": 4}}\'')
    parser.add_argument("--steps", type=int, default=3, help="training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lora-r", type=int, help="LoRA rank (alpha = 2r); default: finetune.lora's (r 4, alpha 8)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per measurement subprocess")
    parser.add_argument("--one", nargs=2, metavar=("BACKBONE", "REGIME"), help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    json.loads(args.kwargs)  # fail early on bad JSON

    if args.one:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps(measure_one(args)))
        return

    os.environ["TQDM_DISABLE"] = "1"  # no progress bars from windowing
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        info = build_data(data)
        print(f"data: {info['n_windows']} windows of {info['n_channels']} ch x {info['n_times']} samples "
              f"@ {info['sfreq']:g} Hz ({SUBJECTS} synthetic subjects, fold 0 of {N_SPLITS}); "
              f"{args.steps} steps x batch {args.batch_size}, 1 epoch, {args.threads} threads; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        rows: dict[tuple[str, str], dict] = {}
        fp32: dict[tuple[str, str], dict] = {}  # on CUDA: the same measurement without autocast
        cuda = _cuda_available()
        for name in args.backbones:
            for regime in args.regimes:
                if cuda:
                    fp32[name, regime] = run_child(args, data, name, regime, "fp32")
                rows[name, regime] = run_child(args, data, name, regime, "bf16" if cuda else "fp32")
                r = rows[name, regime]
                print(f"  measured {name}/{regime}: {r['status']}"
                      + (f" ({r.get('train_s', 0):.1f} s training, {r.get('build_s', 0):.1f} s building)"
                         if r["status"] == "ok" else f"\n{r['error']}"), flush=True)

    ok = [r for r in rows.values() if r["status"] == "ok"]
    on_cuda = any(r["device"].startswith("cuda") for r in ok)
    if ok:
        r0 = ok[0]
        mem = {"cuda_max_allocated": "torch.cuda.max_memory_allocated",
               "rss_peak_reset": "peak RSS of the training call (high-water mark reset after building)",
               "rss_peak_process": "process peak RSS (ru_maxrss; reset not allowed: includes building)"}
        print(f"\ndevice: {r0['device']} ({r0['device_name']}), precision {r0['precision']}; "
              f"memory = {mem[r0['memory']]}")
    print(f"\n{'backbone':<9} {'regime':<8} {'trainable':>11} {'total':>11} {'share %':>8} {'peak MB':>8} "
          f"{'step MB':>8} {'s/step':>7} {'min s':>6}  note")
    for name in args.backbones:
        for regime in args.regimes:
            r = rows[name, regime]
            if r["status"] != "ok":
                print(f"{name:<9} {regime:<8} {'FAILED: ' + str(r['error']).splitlines()[-1]}")
                continue
            note = []
            if regime == "qlora":
                bw = r["base_weights"]
                note.append(f"{r['quantized_modules']} Linear4bit + {bw['tensors'] - bw['tensors_4bit']} other frozen "
                            "tensors in fp32")
                if not r["device"].startswith("cuda"):
                    note.append("bnb CPU fallback (slow)")
            if regime in ("lora", "qlora"):
                note.append(f"LoRA r={r['lora_r']}: {r['peft_modules']} peft + {r['parametrized_modules']} "
                            "parametrized")
            print(f"{name:<9} {regime:<8} {r['trainable']:>11,} {r['total']:>11,} "
                  f"{100 * r['trainable'] / r['total']:>8.3f} {r['peak_mb']:>8.0f} {r['step_mb']:>8.0f} "
                  f"{r['s_per_step']:>7.3f} {r['s_per_step_min']:>6.3f}  {'; '.join(note)}")
        full, head = rows.get((name, "full")), rows.get((name, "head"))
        if full and full["status"] == "ok" and "scratch" not in args.regimes:
            print(f"{name:<9} {'scratch':<8} = full (same network, random init; not measured)")
        if full and head and full["status"] == head["status"] == "ok":
            print(f"{name:<9} {'lp-ft':<8} = head ({head['trainable']:,} trainable) for lp_epochs, "
                  f"then full ({full['trainable']:,}); not measured")

    lora_r = next((r["lora_r"] for r in ok if r["regime"] in ("lora", "qlora")), None)
    print(f"\nLoRA at r={lora_r}: LoRA/full trainable (PASS at <= 5%), QLoRA/LoRA peak and step memory, "
          "frozen base weights")
    print(f"{'backbone':<9} {'LoRA/full trainable':>20} {'<=5%':>5} {'QLoRA/LoRA peak':>16} "
          f"{'QLoRA/LoRA step':>16} {'base MiB LoRA':>14} {'base MiB QLoRA':>15} {'QLoRA/LoRA base':>16}")
    verdicts = []
    for name in args.backbones:
        lora, qlora, full = (rows.get((name, k)) for k in ("lora", "qlora", "full"))
        good = lambda r: r is not None and r["status"] == "ok"  # noqa: E731
        ratio = verdict = peak = step = lb = qb = base = "-"
        if good(lora) and good(full):
            share = lora["trainable"] / full["trainable"]
            ratio, verdict = f"{100 * share:.2f}%", "PASS" if share <= 0.05 else "FAIL"
            verdicts.append(verdict)
        if good(lora) and good(qlora):
            peak = f"{qlora['peak_mb'] / lora['peak_mb']:.2f}x"
            step = f"{qlora['step_mb'] / lora['step_mb']:.2f}x" if lora["step_mb"] > 0 else "-"
            lb, qb = _mib(lora["base_weights"]["bytes"]), _mib(qlora["base_weights"]["bytes"])
            base = f"{qlora['base_weights']['bytes'] / lora['base_weights']['bytes']:.3f}x"
        print(f"{name:<9} {ratio:>20} {verdict:>5} {peak:>16} {step:>16} {lb:>14} {qb:>15} {base:>16}")
    print("\nLoRA/full trainable counts the head in both; base MiB = frozen backbone tensors (Params4bit: packed "
          "uint8 + quant state;\nweights read outside a Linear's forward, e.g. Labram's qkv, and layers no forward "
          "reaches stay fp32).")
    if not on_cuda:
        print("QLoRA on CPU: bitsandbytes runs its PyTorch fallback (dequantizes every forward), so its CPU time "
              "and memory are not its GPU cost.")
    gpu_tables(args, rows, fp32)
    print(f"wall time: {time.perf_counter() - wall:.0f} s (load average now {os.getloadavg()[0]:.1f}; s/step and min s are "
          "the median and fastest of steps 2..n; other load on the machine inflates them)")
    if "FAIL" in verdicts or len(ok) < len(rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
