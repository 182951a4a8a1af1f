"""Pretraining on real windows: each recipe lowers its loss, a killed run resumes exactly, overlap is found."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from eegfm.config import Backbone, Pretrain
from eegfm.pretrain.overlap import pretrain_overlap
from eegfm.pretrain.recipes import RecipeError
from eegfm.pretrain.run import run_pretrain
from eegfm.windows_store import open_windows


def _recipe(recipe: str, **kw) -> Pretrain:
    settings = {"batch_size": 16, "epochs": 2, **kw}
    return Pretrain(backbone="cbramod", kwargs={"n_layer": 1}, recipe=recipe, datasets=["x"], **settings)


@pytest.mark.parametrize("recipe", ["masked", "contrastive", "supervised-source"])
def test_loss_decreases(ft_data, tmp_path, recipe):
    # ft_data windows are 2 s: CBraMod's 1-s patches give 2 patches per channel
    manifest = run_pretrain([ft_data["windows"]], _recipe(recipe, lr=1e-3), "p", 0, tmp_path / "p")
    assert manifest["loss_last_epoch"] < manifest["loss_first_epoch"]
    assert manifest["steps"] == 2 * (108 // 16)
    assert (tmp_path / "p/weights/model.safetensors").is_file() and not (tmp_path / "p/resume").exists()


def test_weights_load_into_the_backbone_and_change_its_embeddings(ft_data, tmp_path):
    from eegfm.backbones.adapt import plan_input
    from eegfm.backbones.build import build_extractor
    from eegfm.backbones.registry import get_spec

    run_pretrain([ft_data["windows"]], _recipe("supervised-source", epochs=1), "p", 0, tmp_path / "p")
    spec, w = get_spec("cbramod"), open_windows(ft_data["windows"])
    pre = Backbone(name="cbramod", kwargs={"n_layer": 1}, weights=str(tmp_path / "p/weights"))
    rand = Backbone(name="cbramod", kwargs={"n_layer": 1})
    X = w.X[:4]
    e_pre = build_extractor(spec, pre, plan_input(spec, w.info, cfg=pre), 0)(X)
    e_rand = build_extractor(spec, rand, plan_input(spec, w.info, cfg=rand), 0)(X)
    assert not torch.allclose(torch.from_numpy(e_pre), torch.from_numpy(e_rand))


def test_a_killed_run_resumes_from_its_last_checkpoint_to_the_same_weights(ft_data, tmp_path):
    recipe = _recipe("masked", contrastive_weight=0.5, checkpoint_every=4)
    full = run_pretrain([ft_data["windows"]], recipe, "p", 0, tmp_path / "full")
    assert run_pretrain([ft_data["windows"]], recipe, "p", 0, tmp_path / "cut", stop_after=6) == {}
    resume = tmp_path / "cut/resume"
    assert [p.name for p in resume.iterdir()] == ["step-000004"]  # steps 5-6 were lost with the "kill"
    (resume / ".tmp-step-000008-x").mkdir()  # a half-written checkpoint: ignored
    (resume / "step-000009").mkdir()  # no state.pt: incomplete, ignored
    resumed = run_pretrain([ft_data["windows"]], recipe, "p", 0, tmp_path / "cut")
    assert resumed["sha256"] == full["sha256"]
    a = load_file(tmp_path / "full/weights/model.safetensors")
    b = load_file(tmp_path / "cut/weights/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_masked_recipe_needs_patch_features(ft_data, tmp_path):
    recipe = Pretrain(backbone="biot", recipe="masked", datasets=["x"], batch_size=16, epochs=1)
    with pytest.raises(RecipeError, match="patch features"):
        run_pretrain([ft_data["windows"]], recipe, "p", 0, tmp_path / "p")


def test_overlap_with_an_evaluation_dataset_is_found(ft_data, tmp_path):
    run_pretrain([ft_data["windows"]], _recipe("contrastive", epochs=1), "p", 0, tmp_path / "p")
    overlap = pretrain_overlap(tmp_path / "p", open_windows(ft_data["windows"]))
    assert overlap["any"] and overlap["windows"] == 108 and len(overlap["recordings"]) == 6
    data = json.loads((tmp_path / "p/data.json").read_text())
    assert len(data["window_hashes"]) == 108


def test_a_sigkilled_job_leaves_no_half_written_checkpoint_and_resumes(ft_data, tmp_path, caplog):
    """A real kill: the job process is SIGKILLed after its first checkpoint; a rerun finishes identically."""
    import os
    import signal
    import subprocess
    import sys
    import time

    recipe = _recipe("contrastive", checkpoint_every=2, epochs=3)
    # Both halves of the run use one thread: a float sum over 2 threads may differ in its last bit, and the
    # pytest process's thread count is whatever an earlier test left (jobs pin theirs through eegfm.launch).
    script = (
        "import sys, torch; from eegfm.config import Pretrain; from eegfm.pretrain.run import run_pretrain\n"
        "torch.set_num_threads(1)\n"
        "run_pretrain([sys.argv[1]], Pretrain.model_validate_json(sys.argv[2]), 'p', 0, sys.argv[3])\n"
    )
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(ft_data["windows"]), recipe.model_dump_json(),
                             str(out)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list((out / "resume").glob("step-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (out / "manifest.json").exists()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with caplog.at_level("INFO", logger="eegfm.pretrain.run"):
            resumed = run_pretrain([ft_data["windows"]], recipe, "p", 0, out)
        full = run_pretrain([ft_data["windows"]], recipe, "p", 0, tmp_path / "full")
    finally:
        torch.set_num_threads(threads)
    assert "resuming from step-" in caplog.text
    assert resumed["sha256"] == full["sha256"] and resumed["steps"] == full["steps"]


@pytest.mark.slow
def test_two_processes_pretrain_and_resume_to_the_same_weights(ft_data, tmp_path):
    """2 gloo ranks (torchrun): rank 0 writes checkpoints and weights; a stopped run resumes to the same bytes."""
    from eegfm.launch import launch

    recipe = _recipe("masked", contrastive_weight=0.5, checkpoint_every=2, epochs=1, processes=2, threads=1)

    def job(out, **kw):
        launch("pretrain", {"windows_dirs": [str(ft_data["windows"])], "recipe": recipe, "name": "p", "seed": 0,
                            "out_dir": str(out), **kw}, processes=2, threads=1)

    job(tmp_path / "full")
    manifest = json.loads((tmp_path / "full/manifest.json").read_text())
    assert manifest["steps"] == 108 // 16 and not (tmp_path / "full/resume").exists()
    job(tmp_path / "cut", stop_after=3)
    assert [p.name for p in (tmp_path / "cut/resume").iterdir()] == ["step-000002"]
    job(tmp_path / "cut")
    assert json.loads((tmp_path / "cut/manifest.json").read_text())["sha256"] == manifest["sha256"]
