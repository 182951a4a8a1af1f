"""Checkpoints: key remapping of official releases, and the parse-time fit check (no dataset, meta device)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import warnings

import numpy as np
import pytest

from eegfm.backbones import weights_check
from eegfm.backbones.adapt import plan_input
from eegfm.backbones.build import build_extractor
from eegfm.backbones.checkpoints import BackboneWeightsError, load_weights, read_shapes, remap_keys
from eegfm.backbones.registry import REGISTRY, get_spec
from eegfm.backbones.weights_check import check_config_weights, check_weights
from eegfm.config import Backbone, Config

CH = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()
INFO = {"sfreq": 200.0, "n_times": 800, "ch_names": CH, "units": "V"}


def _model(name, seed=1, weights=None, **kwargs):
    """A real braindecode model, built the way an embedding job builds it for 19 channels x 4 s at 200 Hz."""
    spec, cfg = get_spec(name), Backbone(name=name, kwargs=kwargs, weights=weights)
    return build_extractor(spec, cfg, plan_input(spec, INFO, cfg=cfg), seed=seed)


def _save_safetensors(state, path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


# ----------------------------------------------------------------------------- remapping


def test_remap_keys_applies_rules_in_order_drops_and_refuses_collisions():
    table = (
        (r"^biot\.", ""),
        (r"^prediction\.", None),
        (r"^index$", None),
        (r"^(patch|transformer)\.", r"encoder.\1."),
    )
    state = {"biot.patch.w": 1, "biot.index": 2, "prediction.0.w": 3, "encoder.patch.b": 4, "other": 5}
    out, changes = remap_keys(state, table)
    assert out == {"encoder.patch.w": 1, "encoder.patch.b": 4, "other": 5}
    assert changes == [(3, "biot.patch.w", "encoder.patch.w"), (2, "biot.index", None), (1, "prediction.0.w", None)]
    assert remap_keys(out, table)[0] == out  # braindecode names are left alone: the table is idempotent
    with pytest.raises(BackboneWeightsError, match="maps both 'biot.patch.w' and 'encoder.patch.w'"):
        remap_keys({"biot.patch.w": 1, "encoder.patch.w": 2}, table)


def _official_biot(state, layout):
    """Rename a braindecode BIOT state dict the way the official BIOT code stores it.

    ``encoder``: the released ``pretrained-models/*.ckpt`` (BIOTEncoder state
    dict, with its frozen ``index`` Parameter); ``pretrain``: the whole
    ``UnsupervisedPretrain`` module (``biot.`` + its ``prediction`` head);
    ``lightning``: a Lightning checkpoint of ``BIOTClassifier``.
    """
    import torch

    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    n_chans = encoder["channel_tokens.weight"].shape[0]
    encoder["index"] = torch.arange(n_chans)
    if layout == "encoder":
        return encoder
    if layout == "pretrain":
        head = {"prediction.0.weight": torch.zeros(256, 256), "prediction.2.bias": torch.zeros(256)}
        return {**{f"biot.{k}": v for k, v in encoder.items()}, **head}
    classifier = {"model.classifier.clshead.1.weight": torch.zeros(6, 256)}
    return {"state_dict": {**{f"model.biot.{k}": v for k, v in encoder.items()}, **classifier}, "epoch": 7}


@pytest.fixture(scope="module")
def biot_reference():
    extractor = _model("biot", seed=1)
    X = np.random.default_rng(0).normal(scale=1e-5, size=(2, len(CH), 800)).astype(np.float32)
    return extractor.model.state_dict(), X, extractor(X)


@pytest.mark.parametrize("layout", ["encoder", "pretrain", "lightning"])
def test_official_biot_checkpoint_is_remapped_and_loads(tmp_path, caplog, biot_reference, layout):
    import torch

    state, X, expected = biot_reference
    path = tmp_path / "EEG-SHHS+PREST-18-channels.ckpt"
    torch.save(_official_biot(state, layout), path)
    spec = get_spec("biot")
    cfg = Backbone(name="biot", weights=str(path))
    with caplog.at_level(logging.INFO, logger="eegfm.backbones.checkpoints"):
        extractor = build_extractor(spec, cfg, plan_input(spec, INFO, cfg=cfg), seed=0)
    np.testing.assert_array_equal(extractor(X), expected)  # seed 0 init fully replaced by the seed 1 weights
    log = caplog.text
    assert "keys remapped to braindecode names" in log
    assert "'^index$' dropped: 1 keys" in log
    assert "patch_embedding.projection.weight -> encoder.patch_embedding.projection.weight" in log
    check_weights(spec, cfg)  # and the parse-time check accepts it


def test_without_the_remap_official_keys_do_not_fit(tmp_path, biot_reference):
    import torch

    state, _, _ = biot_reference
    path = tmp_path / "official.ckpt"
    torch.save(_official_biot(state, "encoder"), path)
    model = _model("biot", seed=0).model
    with pytest.raises(
        BackboneWeightsError,
        match=r"missing keys: encoder\.patch_embedding.*unexpected keys: channel_tokens\.weight, index, patch_embedding",
    ):
        load_weights(model, str(path), key_remap=())


# ----------------------------------------------------------------------------- parse-time check


@pytest.fixture(scope="module")
def cbramod_state():
    """The state dict of the full registry CBraMod (12 layers), as its embedding job would build it."""
    return _model("cbramod").model.state_dict()


def test_wrong_checkpoint_fails_at_parse_time_naming_keys_and_input(tmp_path, cbramod_state):
    import torch

    state = {k: v for k, v in cbramod_state.items() if not k.startswith("encoder.layers.11.")}  # a layer removed
    state["proj_out.0.weight"] = torch.zeros(100, 200)  # a tensor resized
    state["decoder.bogus"] = torch.zeros(3)
    path = _save_safetensors(state, tmp_path / "cbramod-wrong.safetensors")
    with pytest.raises(BackboneWeightsError) as info:
        check_weights(get_spec("cbramod"), Backbone(name="cbramod", weights=str(path)))
    msg = str(info.value)
    assert "missing keys: encoder.layers.11.self_attn_s.in_proj_weight" in msg and "(and 6 more)" in msg
    assert "unexpected keys: decoder.bogus" in msg
    assert "shape mismatches: proj_out.0.weight (100, 200) vs model (200, 200)" in msg
    assert "nominal input of 19 channels (Fp1…O2) from a 19-channel 10-20 recording, 800 samples (4 s at 200 Hz)" in msg
    assert "final_layer" not in msg  # the head is never compared


def test_fitting_checkpoints_pass_in_every_format(tmp_path, cbramod_state):
    import torch

    spec = get_spec("cbramod")
    check_weights(
        spec, Backbone(name="cbramod", weights=str(_save_safetensors(cbramod_state, tmp_path / "w.safetensors")))
    )
    wrapped = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in cbramod_state.items()}, "epoch": 3}, wrapped)
    check_weights(spec, Backbone(name="cbramod", weights=str(wrapped)))
    check_weights(spec, Backbone(name="cbramod"))  # no weights: nothing to check


def test_from_pretrained_folder_is_checked_with_its_config(tmp_path):
    folder = tmp_path / "cbramod-small"
    _model("cbramod", n_layer=2).model.save_pretrained(str(folder))  # braindecode's hub layout
    assert {"config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    spec = get_spec("cbramod")
    check_weights(spec, Backbone(name="cbramod", weights=str(folder)))  # n_layer=2 comes from config.json
    with pytest.raises(BackboneWeightsError, match=r"kwargs \{'n_layer': 3\}.*missing keys: encoder\.layers\.2\."):
        check_weights(spec, Backbone(name="cbramod", weights=str(folder), kwargs={"n_layer": 3}))


def test_read_shapes_reads_headers_only(tmp_path, cbramod_state):
    import torch

    st = _save_safetensors(cbramod_state, tmp_path / "w.safetensors")
    torch.save(cbramod_state, tmp_path / "w.pth")
    expected = {k: tuple(v.shape) for k, v in cbramod_state.items()}
    assert read_shapes(st) == expected == read_shapes(tmp_path / "w.pth")


def test_reference_model_is_built_on_the_meta_device(monkeypatch, cbramod_state, tmp_path):
    import torch

    devices, real_build = [], weights_check.build_model

    def spy(*args, **kwargs):
        model = real_build(*args, **kwargs)
        devices.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(weights_check, "build_model", spy)
    path = _save_safetensors(cbramod_state, tmp_path / "w.safetensors")
    check_weights(get_spec("cbramod"), Backbone(name="cbramod", weights=str(path)))
    assert devices == ["meta", "meta"]  # two nominal inputs, no memory, no init compute
    assert torch.empty(1).device.type == "cpu"  # the default device is restored


def test_input_dependent_tensors_are_left_to_the_embedding_job(tmp_path, biot_reference):
    """A BIOT fed referential channels as they are: its channel tokens follow the recording's channel count."""
    import torch

    from eegfm.backbones.family import Braindecode
    from eegfm.backbones.spec import Channels

    spec = get_spec("biot")  # fed as recorded (no montage), built for the channels fed (no 18-token slots)
    inputs = dataclasses.replace(spec.inputs, channels=Channels())
    passthrough = dataclasses.replace(spec, inputs=inputs, family=Braindecode(key_remap=spec.family.key_remap))
    state, _, _ = biot_reference
    official = _official_biot(state, "encoder")
    official["channel_tokens.weight"] = torch.zeros(18, 256)  # pretrained on 18 channels
    official["index"] = torch.arange(18)
    path = tmp_path / "biot18.ckpt"
    torch.save(official, path)
    check_weights(passthrough, Backbone(name="biot", weights=str(path)))  # 18 vs 19 channels: the job decides
    official["patch_embedding.projection.weight"] = torch.zeros(256, 51)  # n_fft 100: wrong for any input
    torch.save(official, path)
    with pytest.raises(BackboneWeightsError) as info:
        check_weights(passthrough, Backbone(name="biot", weights=str(path)))
    msg = str(info.value)
    assert "encoder.patch_embedding.projection.weight (256, 51) vs model (256, 101)" in msg
    assert (
        "Not checked here (shape depends on channels/length; checked when embedding): encoder.channel_tokens.weight"
        in msg
    )


def test_unsafe_missing_and_misplaced_weights_are_refused(tmp_path, cbramod_state):
    import torch

    spec = get_spec("cbramod")
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"state_dict": cbramod_state, "args": argparse.Namespace(lr=1.0)}, unsafe)
    with pytest.raises(BackboneWeightsError, match=r"pickle code execution.*argparse\.Namespace"):
        check_weights(spec, Backbone(name="cbramod", weights=str(unsafe)))
    with pytest.raises(BackboneWeightsError, match="do not exist.*run prefetch first"):
        check_weights(spec, Backbone(name="cbramod", weights=str(tmp_path / "nope")))
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(BackboneWeightsError, match="unsupported file type"):
        check_weights(spec, Backbone(name="cbramod", weights=str(tmp_path / "w.npz")))
    for name in ("bandpower", "riemann"):
        with pytest.raises(BackboneWeightsError, match=f"{name} has no weights"):
            check_weights(get_spec(name), Backbone(name=name, weights=str(unsafe)))


def test_config_check_lists_every_bad_backbone(tmp_path, cbramod_state):
    good = _save_safetensors(cbramod_state, tmp_path / "good.safetensors")
    config = Config(
        backbones=[
            Backbone(name="bandpower"),
            Backbone(name="cbramod", weights=str(good)),
            Backbone(name="cbramod", id="small", weights=str(good), kwargs={"n_layer": 2}),
            Backbone(name="cbramod", id="gone", weights=str(tmp_path / "gone.safetensors")),
        ]
    )
    with pytest.raises(BackboneWeightsError) as info:
        check_config_weights(config)
    lines = str(info.value).splitlines()
    assert lines[0] == "weights that cannot be used (checked before any job runs):"
    assert lines[1].startswith("  backbones[2] (small): ") and "unexpected keys: encoder.layers.2." in lines[1]
    assert lines[2].startswith("  backbones[3] (gone): ") and "do not exist" in lines[2]
    assert len(lines) == 3


def test_passed_checks_are_cached_until_the_weights_change(tmp_path, monkeypatch, cbramod_state):
    path = _save_safetensors(cbramod_state, tmp_path / "w.safetensors")
    cfg, spec, cache = Backbone(name="cbramod", weights=str(path)), get_spec("cbramod"), tmp_path / "checked"
    calls, real = [], weights_check._reference_shapes

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(weights_check, "_reference_shapes", counting)
    check_weights(spec, cfg, cache_dir=cache)
    check_weights(spec, cfg, cache_dir=cache)
    assert len(calls) == 2 and len(list(cache.iterdir())) == 1  # second call: no model built, no torch needed
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    check_weights(spec, cfg, cache_dir=cache)
    assert len(calls) == 4
    check_weights(spec, cfg.model_copy(update={"kwargs": {"n_layer": 12}}), cache_dir=cache)
    assert len(calls) == 6  # other kwargs, other check


BRAINDECODE = sorted(name for name, spec in REGISTRY.items() if spec.kind == "braindecode" and not spec.offline)


@pytest.mark.slow
@pytest.mark.parametrize("name", BRAINDECODE)
def test_a_checkpoint_from_the_job_model_passes_for_every_registered_backbone(tmp_path, name):
    """No false alarms: weights of the model a job builds for other windows (18 channels, a longer
    window) pass the parse-time check, whose input-dependent tensors cover what changed."""
    spec = get_spec(name)
    nominal, _ = weights_check.nominal_recordings(spec)
    n_times = spec.inputs.length.nearest(nominal["n_times"] + round(2 * nominal["sfreq"]))
    info = {**nominal, "n_times": n_times, "ch_names": [c for c in CH if c != "Cz"]}
    cfg = Backbone(name=name, missing_channels="zero")  # models with a fixed montage get Cz zero-filled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_extractor(spec, cfg, plan_input(spec, info, cfg=cfg), seed=0).model
    path = _save_safetensors(model.state_dict(), tmp_path / f"{name}.safetensors")
    _write_asset(spec, tmp_path)  # real releases ship it beside the weights
    check_weights(spec, cfg.model_copy(update={"weights": str(path)}))


def _write_asset(spec, folder):
    """A construction-time file in the released format: REVE's position bank, STEEGFormer's vocabulary."""
    import json

    from eegfm.backbones.families.reve import template_bank

    asset = spec.family.asset
    if asset is not None and asset.name == "reve_positions":
        (folder / asset.filename).write_text(json.dumps(template_bank()))
    elif asset is not None and asset.name == "steegformer_channels":  # 145 slots: ours, then placeholders
        names = list(CH) + [f"slot{i}" for i in range(145 - len(CH))]
        (folder / asset.filename).write_text(json.dumps(names))
    else:
        assert asset is None, f"{spec.name}: write its {asset.filename} here"


def test_biot_18_token_checkpoint_reads_the_16_bipolar_derivations(tmp_path):
    """The registered BIOT weights hold 18 channel tokens; the double banana feeds 16 (as BIOT's fine-tuning)."""
    from braindecode.models import BIOT
    from safetensors.torch import save_file

    from eegfm.backbones.channels import CHANNELS_1020

    path = tmp_path / "biot18.safetensors"
    state = BIOT(n_chans=18, n_times=800, sfreq=200, n_outputs=2).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    spec, cfg = REGISTRY["biot"], Backbone(name="biot", weights=str(path))
    check_weights(spec, cfg)  # the parse-time check accepts it
    info = {"sfreq": 200.0, "n_times": 800, "ch_names": list(CHANNELS_1020), "units": "V", "positions": None}
    plan = plan_input(spec, info, cfg=cfg)
    assert len(plan.ch_names) == 16
    E = build_extractor(spec, cfg, plan, 0)(np.random.default_rng(0).normal(size=(2, 19, 800)).astype("float32") * 1e-5)
    assert E.shape == (2, 256) and np.isfinite(E).all()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_weights_name_the_file_and_the_backbone(tmp_path, cbramod_state, suffix):
    """An interrupted download or copy: the library's bare error becomes one naming the file, the backbone, the fix."""
    import torch

    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        _save_safetensors(cbramod_state, path)
    else:
        torch.save(cbramod_state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BackboneWeightsError, match=rf"weights {path} of backbone cbramod \(CBraMod\) cannot be read: "
                       r"the file is truncated or corrupt \(\d+ bytes; .*\).*download it again"):
        _model("cbramod", weights=str(path))  # as an embedding or fine-tuning job loads them
    with pytest.raises(BackboneWeightsError, match=rf"weights {path} of backbone CBraMod cannot be read"):
        load_weights(_model("cbramod").model, str(path))  # called directly: the model's class
    config = Config(backbones=[Backbone(name="cbramod", id="mine", weights=str(path))])
    with pytest.raises(BackboneWeightsError, match=rf"backbones\[0\] \(mine\): weights {path} of backbone 'mine' "
                       "cannot be read: the file is truncated"):
        check_config_weights(config)  # and at parse time, before any job


@pytest.mark.parametrize("content", [b"hello\n", b"<html><body>404 Not Found</body></html>", b"\x00" * 100],
                         ids=["text", "html-error-page", "zeros"])
def test_a_pth_file_that_is_no_pickle_is_corrupt_not_pickle_code(tmp_path, content):
    """A download that saved an error page, a text file or zeros: not weights, and not 'pickle code' either."""
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    config = Config(backbones=[Backbone(name="cbramod", id="mine", weights=str(path))])
    with pytest.raises(BackboneWeightsError, match=rf"backbones\[0\] \(mine\): weights {path} of backbone 'mine' "
                       r"cannot be read: the file is truncated or corrupt \(\d+ bytes; .*download it again"):
        check_config_weights(config)
