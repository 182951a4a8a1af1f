"""End to end: pretrain -> embed/probe + fine-tuning regimes -> report, on a tiny config.

The pretraining data deliberately duplicate the evaluation data (same
synthetic settings under another dataset name), so the overlap warning must
fire. ~1-2 min on 2 cores.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.workflow.test_workflow import ok, snakemake, tiny_config

pytestmark = pytest.mark.slow

REGIMES = ["scratch", "head", "lora"]
FOLDS = 2


def pretrain_config(cache) -> dict:
    config = tiny_config(cache)
    tiny = config["datasets"]["tiny"]
    tiny["windows"] = {"tmin": 0.5, "length_s": 2.0}
    tiny["cv"] = {"scheme": "group_kfold", "n_splits": FOLDS}  # each fine-tune fold is a job of its own
    config["datasets"]["again"] = {**tiny, "role": "pretrain"}  # the same recordings: overlap
    config["pretrain"] = {"pre": {"backbone": "cbramod", "kwargs": {"n_layer": 1}, "recipe": "masked",
                                  "datasets": ["again"], "epochs": 1, "batch_size": 16, "checkpoint_every": 2}}
    config["backbones"] = [{"name": "bandpower"},
                           {"name": "cbramod", "id": "cbramod_pre", "kwargs": {"n_layer": 1}, "weights": "pretrain:pre"}]
    config["finetune"] = {"backbones": ["cbramod_pre"], "regimes": REGIMES, "threads": 1,
                          "optim": {"max_epochs": 2, "batch_size": 16}}
    config["report"] = {"n_permutations": 99, "n_bootstrap": 100}
    return config


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("ft-run")
    config = pretrain_config(tmp_path_factory.mktemp("ft-cache"))
    ok(snakemake(work, config))
    return work, config


def test_every_regime_and_fold_lands_in_the_report(pretrained_run):
    work, _ = pretrained_run
    res = work / "results"
    for regime in REGIMES:
        for fold in range(FOLDS):
            d = res / f"tiny/finetune/cbramod_pre/{regime}/fold-{fold}"
            for name in ("metrics.json", "predictions.tsv", "history.tsv", "model_card.json", "diagnostics.json",
                         "checkpoint.json", "checkpoint.safetensors"):
                assert (d / name).is_file(), d / name
            record = json.loads((d / "metrics.json").read_text())
            assert record["status"] == "ok" and record["device"] == "cpu"
            assert record["weights"].startswith("random-init" if regime == "scratch" else "sha256-dir:")
    metrics = pd.read_csv(res / "report/metrics.tsv", sep="\t")
    assert set(zip(metrics["model"], metrics["regime"], strict=True)) == {
        ("bandpower", "probe"), ("cbramod_pre", "probe"), *(("cbramod_pre", r) for r in REGIMES)}
    assert len(metrics) == 5 * FOLDS
    assert not (res / "again").joinpath("splits").exists()  # pretraining data are never scored
    manifest = json.loads((res / "pretrain/pre/manifest.json").read_text())
    assert manifest["recipe"] == "masked" and manifest["steps"] > 0
    assert "it/s" in (res / "logs/finetune/tiny/cbramod_pre/lora/fold-0.log").read_text()  # progress bar


def test_pretraining_overlap_is_warned_about(pretrained_run):
    work, _ = pretrained_run
    pointer = json.loads((work / "results/tiny/embeddings/cbramod_pre.json").read_text())
    assert pointer["pretrain_overlap"]["any"] and pointer["pretrain_overlap"]["windows"] > 0
    html = (work / "results/report/report.html").read_text()
    assert "were pretrained by this workflow on data that overlaps" in html


def test_rerun_does_nothing_and_a_new_regime_adds_only_its_jobs(pretrained_run):
    work, config = pretrained_run
    proc = ok(snakemake(work, config, "-n"))
    assert "Nothing to be done" in proc.stdout + proc.stderr
    more = json.loads(json.dumps(config))
    more["finetune"]["regimes"] = [*REGIMES, "full"]
    out = ok(snakemake(work, more, "-n")).stdout
    assert job_counts(out) == {"finetune": FOLDS, "aggregate": 1, "all": 1, "total": FOLDS + 2}


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    lines = dry_run_output[dry_run_output.index("Job stats"):].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts
