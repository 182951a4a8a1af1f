"""Every registered neural backbone, built for real: embeds, is deterministic, and is what the registry says."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from eegfm.backbones.adapt import BackboneInputError, plan_input, prepare_input
from eegfm.backbones.build import build_extractor, describe
from eegfm.backbones.channels import CHANNELS_1020, clean_name
from eegfm.backbones.checkpoints import BackboneWeightsError
from eegfm.backbones.fingerprint import fingerprint
from eegfm.backbones.registry import REGISTRY, get_spec
from eegfm.config import Backbone
from eegfm.embed import _pad

NEURAL = sorted(name for name, spec in REGISTRY.items() if spec.kind == "braindecode")

#: Backbones whose forward pass is slow on a CPU (seconds per window): embedded with 2 windows.
SLOW = {"eegpt", "zuna", "bendr", "reve"}


def _info(spec, n_times=None, ch_names=CHANNELS_1020, positions=None):
    """A windows-store summary: the 19 10-20 channels at the native rate (positions: MNE's template)."""
    n = spec.inputs.length.shortest if n_times is None else n_times
    return {"sfreq": spec.inputs.sfreq, "n_times": n, "ch_names": list(ch_names), "units": "V", "positions": positions}


def _windows(n, n_times, n_chans=19, seed=0):
    return np.random.default_rng(seed).normal(scale=1e-5, size=(n, n_chans, n_times)).astype(np.float32)


def _build(name, seed=0, n_times=None, **cfg):
    spec, backbone = get_spec(name), Backbone(name=name, **cfg)
    plan = plan_input(spec, _info(spec, n_times), cfg=backbone)
    return build_extractor(spec, backbone, plan, seed)


# ----------------------------------------------------------------------------- every backbone


@pytest.mark.parametrize("name", NEURAL)
def test_backbone_embeds_deterministically_at_19_channels(name):
    """Builds at 19 channels and its shortest valid window; embeds like `embed` does (last batch padded).

    Also: every registered LoRA target names a module whose forward runs for
    the features, so an adapter there gets a gradient (LaBraM's and
    EEG-DINO's ``qkv`` are read with ``F.linear`` and must not be targets).
    """
    import torch

    from eegfm.finetune.adapters import lora_target_modules

    spec = get_spec(name)
    t0 = time.perf_counter()
    batch = 2 if name in SLOW else 4
    a, b = _build(name), _build(name)
    X = _windows(batch - 1, spec.inputs.length.shortest)  # one short of a batch: padded as embed pads the last batch
    E = a(_pad(X, batch))[: len(X)]
    assert E.shape == (len(X), a.dim) and E.dtype == np.float32 and np.isfinite(E).all()
    if spec.embedding_dim is not None:
        assert a.dim == spec.embedding_dim
    np.testing.assert_array_equal(E, b(_pad(X, batch))[: len(X)])  # same seed, separate builds: bitwise equal
    assert not a.model.training and not a.features.training
    plan, rule = a.plan, spec.inputs.channels
    if rule.vocabulary is None and rule.montage is None:
        assert plan.ch_names == list(CHANNELS_1020)  # passed through as recorded
    elif rule.vocabulary is not None:
        assert set(plan.ch_names) <= set(rule.vocabulary)
    x = torch.from_numpy(prepare_input(X[:1], plan))
    live = lora_target_modules(a.features.model, spec.lora_targets, lambda: a.features(x))
    linears = {n for n, m in a.model.named_modules() if isinstance(m, torch.nn.Linear)}
    for target in spec.lora_targets:
        assert any(n == target or n.endswith("." + target) for n in set(live) | linears), f"{target} matches nothing"
    print(f"{name}: dim {a.dim}, {len(plan.ch_names)} channels, {spec.inputs.length.shortest} samples, "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip


def test_registry_entries_are_complete():
    for name in NEURAL:
        spec = get_spec(name)
        inputs, tap = spec.inputs, spec.family.tap
        assert spec.model_class and inputs.sfreq and inputs.scale > 0 and inputs.scale_note, name
        assert inputs.length.accepts(inputs.length.shortest) and inputs.length.accepts(spec.nominal_n_times), name
        assert (tap.source == "return_features") == (tap.module is None), name
        assert spec.pooling in ("cls", "mean", "flatten", "as_is"), name
        assert spec.offline is None, f"{name} is registered as not buildable offline: {spec.offline}"


def test_channel_vocabularies_match_braindecode():
    """The registry's vocabularies are braindecode's lists in eegfm's canonical spelling, in order."""
    from braindecode.models.bendr import BENDR_CHANNEL_ORDER
    from braindecode.models.eegpt import EEGPT_CHANNELS
    from braindecode.models.labram import LABRAM_CHANNEL_ORDER
    from braindecode.models.signal_jepa import _PRETRAIN_CHS_INFO

    def canonical(names):
        return tuple(dict.fromkeys(clean_name(n) for n in names))

    def vocabulary(name):
        return get_spec(name).inputs.channels.vocabulary

    assert vocabulary("labram") == canonical(LABRAM_CHANNEL_ORDER)
    assert vocabulary("eegpt") == canonical(EEGPT_CHANNELS)
    assert vocabulary("signal_jepa") == canonical(ch["ch_name"] for ch in _PRETRAIN_CHS_INFO)
    constant = tuple(name for name, _ in get_spec("bendr").family.constant_channels)
    assert vocabulary("bendr") + constant == canonical(BENDR_CHANNEL_ORDER)


# ----------------------------------------------------------------------------- model-specific needs, generically


def test_labram_gets_channel_names_and_uses_their_position_embeddings():
    spec = get_spec("labram")
    X = _windows(2, 200)
    full = _build("labram")
    names = ["Cz", "Fp1", "O2"]  # a subset, fed in vocabulary order
    subset_spec, cfg = spec, Backbone(name="labram")
    plan = plan_input(subset_spec, _info(spec, ch_names=names), cfg=cfg)
    assert plan.ch_names == ["Fp1", "Cz", "O2"]
    small = build_extractor(spec, cfg, plan, 0)
    assert small.features.forward_kwargs == {"ch_names": ["Fp1", "Cz", "O2"]}
    assert small(X[:, [CHANNELS_1020.index(n) for n in names]]).shape == (2, 200)
    assert full.features.forward_kwargs["ch_names"] == list(CHANNELS_1020)


def test_hooked_features_stop_the_forward_before_the_head():
    """PBT's features are the input of its head: the head never runs (and costs nothing)."""
    import torch

    extractor = _build("pbt")
    calls = []
    extractor.model.final_layer.register_forward_hook(lambda *_: calls.append(1))
    assert extractor(_windows(2, 64)).shape == (2, 128) and not calls
    with torch.no_grad():  # the same module output read directly
        x = torch.from_numpy(prepare_input(_windows(2, 64), extractor.plan))
        assert extractor.features.features(x).shape == (2, 128)


def test_cbramod_features_are_its_encoder_output_not_the_reconstruction_head():
    import torch

    extractor = _build("cbramod", kwargs={"n_layer": 2})
    model = extractor.model
    x = torch.from_numpy(prepare_input(_windows(2, 200), extractor.plan))
    with torch.no_grad():
        expected = model.encoder(model.patch_embedding(model.rearrange(x), None)).mean(dim=(1, 2))
        torch.testing.assert_close(extractor.features(x), expected, rtol=0, atol=0)


def test_bendr_gets_its_scale_channel():
    extractor = _build("bendr")
    assert extractor.model.n_chans == 20 and extractor.plan.ch_names == list(CHANNELS_1020)
    assert extractor.features.extra_values.tolist() == [0.0]


def test_channel_count_length_and_positions_are_checked_before_building():
    eegdino = get_spec("eegdino")
    twenty = [*CHANNELS_1020, "Oz"]
    plan = plan_input(eegdino, _info(eegdino, ch_names=twenty))
    with pytest.raises(BackboneInputError, match="at most 19 channels"):
        fingerprint(eegdino, Backbone(name="eegdino"), plan, 0)
    zuna = get_spec("zuna")
    too_long = dataclasses.replace(plan_input(zuna, _info(zuna)), n_times_out=zuna.inputs.length.maximum + 32)
    with pytest.raises(BackboneInputError, match="<= 8192"):
        fingerprint(zuna, Backbone(name="zuna"), too_long, 0)
    luna = get_spec("luna")
    unplaced = plan_input(luna, _info(luna, ch_names=[*CHANNELS_1020[:18], "EXG1"]))
    with pytest.raises(BackboneInputError, match="position for every channel.*EXG1"):
        fingerprint(luna, Backbone(name="luna"), unplaced, 0)


def test_a_backbone_that_cannot_be_built_offline_says_why():
    spec = dataclasses.replace(get_spec("pbt"), offline="its class downloads a file at construction")
    plan = plan_input(spec, _info(spec))
    with pytest.raises(BackboneInputError, match="cannot be built offline: its class downloads a file"):
        build_extractor(spec, Backbone(name="pbt"), plan, 0)


# ----------------------------------------------------------------------------- files fetched at construction


def test_reve_builds_offline_from_mnes_template_and_a_real_bank_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("REVE_POSITIONS_PATH", raising=False)
    spec, cfg = get_spec("reve"), Backbone(name="reve")
    plan = plan_input(spec, _info(spec))
    template = fingerprint(spec, cfg, plan, 0)
    assert template["asset"]["reve_positions"].startswith("mne-template:colin27_1005")
    bank = {name.upper(): [0.01 * i, 0.0, 0.05] for i, name in enumerate(CHANNELS_1020)}  # another bank, other case
    (tmp_path / "reve_positions.json").write_text(json.dumps(bank))
    monkeypatch.setenv("REVE_POSITIONS_PATH", str(tmp_path))
    real = fingerprint(spec, cfg, plan, 0)
    assert real["asset"]["reve_positions"].startswith("sha256:") and real != template
    X = _windows(2, 200)
    E_real = build_extractor(spec, cfg, plan, 0)(X)
    monkeypatch.delenv("REVE_POSITIONS_PATH")
    E_template = build_extractor(spec, cfg, plan, 0)(X)
    assert np.isfinite(E_real).all() and not np.array_equal(E_real, E_template)  # positions matter
    unknown = plan_input(spec, _info(spec, ch_names=[*CHANNELS_1020[:18], "EXG1"]))
    with pytest.raises(BackboneInputError, match="no position for EXG1"):
        fingerprint(spec, cfg, unknown, 0)


def test_steegformer_needs_its_vocabulary_only_with_weights(tmp_path):
    spec = get_spec("steegformer")
    plan = plan_input(spec, _info(spec))
    random_init = spec.family.init_kwargs(spec, Backbone(name="steegformer"), plan)
    assert random_init["chan_pos_idx"] == list(range(19))  # no download: the slot order is explicit
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not read by the fingerprint")
    with pytest.raises(BackboneWeightsError, match="steegformer_channels.json.*never downloads"):
        fingerprint(spec, Backbone(name="steegformer", weights=str(weights)), plan, 0)
    vocabulary = ["AFz", *reversed(CHANNELS_1020)]
    (tmp_path / "steegformer_channels.json").write_text(json.dumps([n.upper() for n in vocabulary]))
    fp = fingerprint(spec, Backbone(name="steegformer", weights=str(weights)), plan, 0)
    assert fp["init_kwargs"]["chan_pos_idx"] == [vocabulary.index(n) for n in CHANNELS_1020]
    assert fp["asset"]["steegformer_channels"].startswith("sha256:")


# ----------------------------------------------------------------------------- the CLI's numbers


def test_describe_counts_parameters_without_the_head():
    spec = get_spec("pbt")
    summary = describe(spec)
    extractor = _build("pbt", n_times=spec.nominal_n_times)
    total = sum(p.numel() for p in extractor.model.parameters())
    head = sum(p.numel() for p in extractor.model.final_layer.parameters())
    assert summary == {"params": total - head, "dim": spec.embedding_dim}

