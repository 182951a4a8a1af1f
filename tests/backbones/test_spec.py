"""A backbone's spec: the one length rule, channel rules that cannot contradict, the nominal input."""

from __future__ import annotations

import pytest

from eegfm.backbones.adapt import BackboneInputError, plan_input
from eegfm.backbones.channels import CHANNELS_1020
from eegfm.backbones.registry import REGISTRY
from eegfm.backbones.spec import Channels, FeatureTap, Length, nominal_windows


def test_length_rule():
    patches = Length(multiple=200, minimum=400, maximum=1000)
    assert [n for n in range(0, 1201, 100) if patches.accepts(n)] == [400, 600, 800, 1000]
    assert patches.shortest == 400
    assert (patches.crop_target(999), patches.crop_target(5000), patches.crop_target(399)) == (800, 1000, None)
    assert (patches.pad_target(401), patches.pad_target(1), patches.pad_target(1001)) == (600, 400, None)
    assert patches.nearest(1001) == 1000 and patches.nearest(450) == 600
    assert patches.describe(200.0) == "k x 200 (1 s), >= 400, <= 1000 at 200 Hz"
    fixed = Length(fixed=512)
    assert fixed.accepts(512) and not fixed.accepts(256) and fixed.shortest == 512 == fixed.nearest(100)
    assert (fixed.crop_target(511), fixed.pad_target(513)) == (None, None) and fixed.describe() == "= 512"
    assert Length().describe(250.0) == "any" and Length(minimum=3).shortest == 3


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_input_plans_take_exactly_the_lengths_the_rule_accepts(name):
    """The plan and the rule agree: one rule of what a model takes, read everywhere."""
    spec = REGISTRY[name]
    length = spec.inputs.length
    sfreq = spec.inputs.sfreq or 200.0
    for n in sorted({1, 2, 31, 64, 99, 100, 152, 200, 256, 400, 512, 800, 1000, 2560, 5120, length.shortest}):
        info = {"sfreq": sfreq, "n_times": n, "ch_names": list(CHANNELS_1020), "units": "V"}
        try:
            plan_input(spec, info)
            planned = True
        except BackboneInputError:
            planned = False
        assert planned == length.accepts(n), (name, n)


def test_contradicting_rules_are_refused():
    with pytest.raises(ValueError, match="vocabulary or a bipolar montage"):
        Channels(vocabulary=("Cz",), montage=(("Fp1", "F7"),))
    with pytest.raises(ValueError, match="needs a vocabulary"):
        Channels(subset=True)
    with pytest.raises(ValueError, match="a hook needs a module"):
        FeatureTap("module_output")
    with pytest.raises(ValueError, match="return_features none"):
        FeatureTap("return_features", "encoder")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_nominal_input_is_the_10_20_system_at_a_length_the_model_takes(name):
    spec = REGISTRY[name]
    info = nominal_windows(spec)
    assert info["ch_names"] == list(CHANNELS_1020) and info["sfreq"] == (spec.inputs.sfreq or 200.0)
    assert spec.inputs.length.accepts(info["n_times"])
