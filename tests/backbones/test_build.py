"""Input plans, fingerprints, weights loading and real braindecode extractors."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from eegfm.backbones.adapt import BackboneInputError, plan_input, prepare_input
from eegfm.backbones.build import build_extractor
from eegfm.backbones.checkpoints import BackboneWeightsError
from eegfm.backbones.fingerprint import fingerprint
from eegfm.backbones.registry import REGISTRY, get_spec
from eegfm.config import Backbone

CH = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()


def _info(sfreq=200.0, n_times=800, ch_names=CH, positions=None):
    return {"key": "k", "sfreq": sfreq, "n_times": n_times, "ch_names": list(ch_names), "units": "V", "positions": positions}


def _windows(n=4, n_chans=19, n_times=800, seed=0):
    return np.random.default_rng(seed).normal(scale=1e-5, size=(n, n_chans, n_times)).astype(np.float32)


# ----------------------------------------------------------------------------- plans


def test_plan_resamples_to_native_rate_and_records_adaptation():
    plan = plan_input(get_spec("cbramod"), _info(sfreq=250.0, n_times=1000))
    assert (plan.sfreq_out, plan.n_times_out, plan.ch_names) == (200.0, 800, CH)
    record = plan.record()
    assert record["resampled_from"] == 250.0 and record["resampled_to"] == 200.0
    assert record["mapped"] == CH and record["zero_filled"] == [] and record["dropped"] == []
    assert record["scale"] == pytest.approx(1e4)


def test_wrong_window_length_names_seconds_and_config_key():
    with pytest.raises(BackboneInputError, match=r"multiple of 1 s.*datasets\.ds\.windows\.length_s to 4 or 5"):
        plan_input(get_spec("cbramod"), _info(n_times=900), dataset="ds")  # 4.5 s


def test_length_that_does_not_resample_to_whole_samples_is_refused():
    with pytest.raises(BackboneInputError, match="not a whole number"):
        plan_input(get_spec("cbramod"), _info(sfreq=256.0, n_times=1001))


def test_biot_minimum_length():
    with pytest.raises(BackboneInputError, match="at least 1 s"):
        plan_input(get_spec("biot"), _info(n_times=100))
    assert plan_input(get_spec("biot"), _info(n_times=850)).n_times_out == 850


def test_prepare_input_resamples_polyphase_and_scales():
    sfreq_in, t = 250.0, np.arange(1000) / 250.0
    X = np.tile(1e-5 * np.sin(2 * np.pi * 10 * t), (1, 19, 1)).astype(np.float32)
    plan = plan_input(get_spec("cbramod"), _info(sfreq=sfreq_in, n_times=1000))
    x = prepare_input(X, plan)
    t_out = np.arange(800) / 200.0
    expected = 1e-5 * 1e4 * np.sin(2 * np.pi * 10 * t_out)
    np.testing.assert_allclose(x[0, 0, 50:-50], expected[50:-50], atol=2e-3)  # edges: filter transients
    assert x.dtype == np.float32 and x.shape == (1, 19, 800)


def test_channel_q95_normalisation():
    plan = plan_input(get_spec("biot"), _info())
    x = prepare_input(_windows(2), plan, dtype=np.float64)
    np.testing.assert_allclose(np.quantile(np.abs(x), 0.95, axis=-1), 1.0, rtol=1e-6)


# ----------------------------------------------------------------------------- fingerprints


def test_fingerprint_has_settings_that_change_embeddings_only():
    spec, plan = get_spec("cbramod"), plan_input(get_spec("cbramod"), _info())
    fp = fingerprint(spec, Backbone(name="cbramod"), plan, seed=0)
    assert fp == fingerprint(spec, Backbone(name="cbramod", id="other-label"), plan, seed=0)
    assert fp["weights"] == "random-init:0" and fp["backbone"] == "cbramod" and fp["model_class"] == "CBraMod"
    assert {fp["init_kwargs"][k] for k in ("n_chans", "n_times", "sfreq")} == {19, 800, 200.0}
    assert set(fp["versions"]) == {"braindecode", "torch"} and fp["embed_code_version"]
    text = json.dumps(fp)
    assert "batch" not in text and "device" not in text and "threads" not in text
    assert fingerprint(spec, Backbone(name="cbramod"), plan, seed=1) != fp
    assert fingerprint(spec, Backbone(name="cbramod", kwargs={"n_layer": 2}), plan, seed=0) != fp


def test_bandpower_fingerprint_normalises_bands():
    spec, plan = get_spec("bandpower"), plan_input(get_spec("bandpower"), _info())
    as_lists = Backbone(name="bandpower", kwargs={"bands": [[1, 4], [4, 8], [8, 13], [13, 30], [30, 45]]})
    assert fingerprint(spec, as_lists, plan, 0) == fingerprint(spec, Backbone(name="bandpower"), plan, 0)
    assert fingerprint(spec, Backbone(name="bandpower"), plan, 0) == fingerprint(spec, Backbone(name="bandpower"), plan, 5)


def test_signal_kwargs_and_unknown_kwargs_are_refused():
    spec, plan = get_spec("cbramod"), plan_input(get_spec("cbramod"), _info())
    with pytest.raises(BackboneInputError, match="n_chans"):
        fingerprint(spec, Backbone(name="cbramod", kwargs={"n_chans": 3}), plan, 0)
    with pytest.raises(BackboneInputError, match="not_a_kwarg"):
        build_extractor(spec, Backbone(name="cbramod", kwargs={"not_a_kwarg": 1}), plan, 0)


def test_missing_weights_path_is_an_error(tmp_path):
    spec, plan = get_spec("cbramod"), plan_input(get_spec("cbramod"), _info())
    with pytest.raises(BackboneWeightsError, match="do not exist"):
        fingerprint(spec, Backbone(name="cbramod", weights=str(tmp_path / "nope.safetensors")), plan, 0)


# ----------------------------------------------------------------------------- real models


SMALL = {"n_layer": 2}  # a 2-layer CBraMod: same code paths, faster tests


def _cbramod(plan, seed, **kwargs):
    return build_extractor(get_spec("cbramod"), Backbone(name="cbramod", kwargs=SMALL, **kwargs), plan, seed)


@pytest.mark.parametrize("name, dim", [("cbramod", 200), ("biot", 256)])
def test_extractors_pool_to_vectors(name, dim):
    plan = plan_input(get_spec(name), _info(sfreq=250.0, n_times=1000))
    extractor = build_extractor(get_spec(name), Backbone(name=name), plan, seed=0)
    E = extractor(_windows(4, n_times=1000))
    assert E.shape == (4, dim) and E.dtype == np.float32 and np.isfinite(E).all()
    assert not extractor.model.training


def test_same_seed_same_embeddings_and_batch_composition_does_not_matter():
    plan = plan_input(get_spec("cbramod"), _info())
    X = _windows(8)
    a, b = _cbramod(plan, 0), _cbramod(plan, 0)
    np.testing.assert_array_equal(a(X), b(X))
    np.testing.assert_array_equal(a(X)[4:], a(X[4:]))
    assert not np.array_equal(a(X), _cbramod(plan, 1)(X))


def _state_dict_file(tmp_path, plan, seed, name="w.safetensors", **kwargs):
    from safetensors.torch import save_file

    model = _cbramod(plan, seed, **kwargs).model
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_safetensors_weights_are_loaded_and_fingerprinted(tmp_path):
    plan = plan_input(get_spec("cbramod"), _info())
    path = _state_dict_file(tmp_path, plan, seed=1)
    X = _windows(4)
    loaded = _cbramod(plan, 0, weights=str(path))
    np.testing.assert_array_equal(loaded(X), _cbramod(plan, 1)(X))  # seed 0 init fully overwritten
    fp = fingerprint(get_spec("cbramod"), Backbone(name="cbramod", kwargs=SMALL, weights=str(path)), plan, 0)
    assert fp["weights"].startswith("sha256:")


def test_head_keys_are_ignored(tmp_path):
    """A checkpoint from other channels differs only in the head, which is never used."""
    plan19 = plan_input(get_spec("cbramod"), _info())
    plan3 = plan_input(get_spec("cbramod"), _info(ch_names=CH[:3]))
    path = _state_dict_file(tmp_path, plan19, seed=1)
    extractor = _cbramod(plan3, 0, weights=str(path))
    assert extractor(_windows(2, n_chans=3)).shape == (2, 200)


def test_wrong_checkpoint_names_keys(tmp_path):
    plan = plan_input(get_spec("cbramod"), _info())
    path = _state_dict_file(tmp_path, plan, seed=0)  # 2 layers, dim_feedforward 800
    with pytest.raises(BackboneWeightsError, match=r"missing keys: encoder\.layers\.2\."):
        build_extractor(get_spec("cbramod"), Backbone(name="cbramod", kwargs={"n_layer": 3}, weights=str(path)), plan, 0)
    with pytest.raises(BackboneWeightsError, match=r"shape mismatches: .*encoder\.layers\.0\.linear1\.weight \(800, 200\) vs model \(400, 200\)"):
        build_extractor(
            get_spec("cbramod"),
            Backbone(name="cbramod", kwargs={**SMALL, "dim_feedforward": 400}, weights=str(path)),
            plan,
            0,
        )
    with pytest.raises(BackboneWeightsError, match="unexpected keys: encoder.layers.1"):
        build_extractor(get_spec("cbramod"), Backbone(name="cbramod", kwargs={"n_layer": 1}, weights=str(path)), plan, 0)


def test_pth_state_dict_wrappers_load_and_pickled_code_is_refused(tmp_path):
    import torch

    plan = plan_input(get_spec("cbramod"), _info())
    state = _cbramod(plan, 1).model.state_dict()
    wrapped = tmp_path / "w.ckpt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    X = _windows(2)
    np.testing.assert_array_equal(_cbramod(plan, 0, weights=str(wrapped))(X), _cbramod(plan, 1)(X))
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=1.0)}, unsafe)
    with pytest.raises(BackboneWeightsError, match=r"pickle code execution.*argparse\.Namespace"):
        _cbramod(plan, 0, weights=str(unsafe))


def test_from_pretrained_folder_config_and_weights(tmp_path):
    from safetensors.torch import save_file

    plan = plan_input(get_spec("cbramod"), _info())
    folder = tmp_path / "cbramod-local"
    folder.mkdir()
    model = _cbramod(plan, 1).model
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    config = {"n_layer": 2, "n_chans": 22, "n_times": 1000, "sfreq": 200, "n_outputs": 4, "braindecode_version": "1.8.1"}
    (folder / "config.json").write_text(json.dumps(config))
    cfg = Backbone(name="cbramod", weights=str(folder))  # architecture comes from config.json
    extractor = build_extractor(get_spec("cbramod"), cfg, plan, 0)
    np.testing.assert_array_equal(extractor(_windows(2)), _cbramod(plan, 1)(_windows(2)))
    fp = fingerprint(get_spec("cbramod"), cfg, plan, 0)
    assert fp["init_kwargs"]["n_layer"] == 2 and fp["init_kwargs"]["n_chans"] == 19
    assert fp["weights"].startswith("sha256-dir:")


def test_registry_entries_are_consistent():
    for spec in REGISTRY.values():
        if spec.kind == "braindecode":
            assert spec.model_class and spec.inputs.sfreq and spec.pooling in ("cls", "mean", "flatten", "as_is")


def test_building_a_model_leaves_the_callers_hub_settings_alone(monkeypatch, tmp_path):
    """Construction refuses hub requests, and afterwards the process is as it was (no HF_HUB_OFFLINE left set)."""
    import time

    from huggingface_hub import constants, hf_hub_download

    from eegfm.backbones.build import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = constants.HF_HUB_OFFLINE
    _cbramod(plan_input(get_spec("cbramod"), _info()), 0)
    assert "HF_HUB_OFFLINE" not in os.environ and constants.HF_HUB_OFFLINE == before
    with hub_offline():
        assert constants.is_offline_mode()
        t0 = time.perf_counter()
        with pytest.raises(Exception, match="(?i)offline|outgoing traffic has been disabled|cannot find"):
            hf_hub_download("braindecode/no-such-repo", "config.json", cache_dir=str(tmp_path))
        assert time.perf_counter() - t0 < 5  # refused at once, no retries
    assert constants.HF_HUB_OFFLINE == before
