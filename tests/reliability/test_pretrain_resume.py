"""A rerun after a crash resumes only state made with the same settings (finding 1 of issue 12)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from eegfm.config import Pretrain
from eegfm.pretrain.run import run_pretrain
from eegfm.windows_store import WindowsStoreWriter, open_windows
from tests.reliability.conftest import kill_when

SCRIPT = (
    "import sys; from eegfm.config import Pretrain; from eegfm.pretrain.run import run_pretrain\n"
    "run_pretrain(sys.argv[1].split(','), Pretrain.model_validate_json(sys.argv[2]), 'p', 0, sys.argv[3])\n"
)

pytestmark = pytest.mark.slow  # subprocesses killed by pid, each importing torch


def _recipe(**kw) -> Pretrain:
    settings = {"recipe": "contrastive", "batch_size": 16, "epochs": 2, "checkpoint_every": 2, "lr": 1e-3, **kw}
    return Pretrain(backbone="cbramod", kwargs={"n_layer": 1}, datasets=["x"], **settings)


@pytest.fixture(scope="module")
def killed(ft_data, tmp_path_factory):
    """A pretraining job SIGKILLed by pid after its first checkpoint (each test resumes a copy of it)."""
    out = tmp_path_factory.mktemp("killed") / "p"
    kill_when(["-c", SCRIPT, str(ft_data["windows"]), _recipe().model_dump_json(), str(out)],
              ready=lambda: bool(list((out / "resume").glob("step-*"))))
    assert not (out / "manifest.json").exists() and list((out / "resume").glob("step-*"))
    return out


def _copy(killed, tmp_path):
    return shutil.copytree(killed, tmp_path / "p")


@pytest.fixture(scope="module")
def other_windows(ft_data, tmp_path_factory):
    """Other pretraining data of the same shape: the windows in reverse order, scaled."""
    source = open_windows(ft_data["windows"])
    out = tmp_path_factory.mktemp("other") / "windows"
    writer = WindowsStoreWriter(out, source.info["ch_names"], source.info["sfreq"], source.info["n_times"])
    writer.append(np.asarray(source.X[:])[::-1] * 1.5, source.meta.drop(columns="window_id").to_dict("records")[::-1])
    writer.close()
    return str(out)


def test_sigkill_then_a_changed_lr_discards_the_resume_point(ft_data, killed, tmp_path, caplog):
    windows = [str(ft_data["windows"])]
    out = _copy(killed, tmp_path)
    with caplog.at_level("INFO", logger="eegfm.pretrain.run"):
        resumed = run_pretrain(windows, _recipe(lr=3e-4), "p", 0, out)
    assert "resuming" not in caplog.text
    assert "discarding resume/step-" in caplog.text and "recipe.lr changed" in caplog.text
    fresh = run_pretrain(windows, _recipe(lr=3e-4), "p", 0, tmp_path / "fresh")
    assert resumed["sha256"] == fresh["sha256"]  # the new lr's weights, not the old run's


def test_sigkill_then_changed_data_discards_the_resume_point(killed, other_windows, tmp_path, caplog):
    out = _copy(killed, tmp_path)
    with caplog.at_level("INFO", logger="eegfm.pretrain.run"):
        resumed = run_pretrain([other_windows], _recipe(), "p", 0, out)
    assert "resuming" not in caplog.text and "data changed" in caplog.text
    fresh = run_pretrain([other_windows], _recipe(), "p", 0, tmp_path / "fresh")
    assert resumed["sha256"] == fresh["sha256"] and resumed["windows_keys"] == fresh["windows_keys"]


def test_settings_that_do_not_change_the_weights_keep_the_resume_point(ft_data, killed, tmp_path, caplog):
    """Resuming itself (same weights as an uninterrupted run) is tests/pretrain/test_run.py's SIGKILL test."""
    out = _copy(killed, tmp_path)
    with caplog.at_level("INFO", logger="eegfm.pretrain.run"):
        run_pretrain([str(ft_data["windows"])], _recipe(checkpoint_every=4, threads=1, gpus=0), "p", 0, out,
                     stop_after=1)
    assert "resuming from step-" in caplog.text and "discarding" not in caplog.text


def test_a_non_finite_loss_leaves_no_resume_point(ft_data, tmp_path, caplog):
    windows = [str(ft_data["windows"])]
    out = tmp_path / "p"
    diverging = _recipe(recipe="masked", lr=1e3, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step \d+; lower pretrain\.p\.lr"):
        run_pretrain(windows, diverging, "p", 0, out)
    assert not (out / "resume").exists()
    fixed = _recipe(recipe="masked", lr=1e-3)
    with caplog.at_level("INFO", logger="eegfm.pretrain.run"):
        rerun = run_pretrain(windows, fixed, "p", 0, out)
    assert "resuming" not in caplog.text
    assert rerun["sha256"] == run_pretrain(windows, fixed, "p", 0, tmp_path / "fresh")["sha256"]
