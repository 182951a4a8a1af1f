"""Channel names, vocabularies, bipolar montages, spline interpolation and the trainable projection."""

from __future__ import annotations

import subprocess
import sys

import mne
import numpy as np
import pytest

from eegfm.backbones.channels import (
    CHANNELS_1020,
    DOUBLE_BANANA,
    STANDARD_MONTAGE,
    TCP_22,
    ChannelError,
    MissingChannelsError,
    bipolar_name,
    canonical_names,
    clean_name,
    interpolation_matrix,
    map_channels,
    template_position,
)

CH = list(CHANNELS_1020)


@pytest.mark.parametrize(
    "recorded, canonical",
    [
        ("Fc5.", "FC5"),  # PhysioNet EEGMMIDB
        ("Cz..", "Cz"),
        ("fp1", "Fp1"),
        ("FPZ", "Fpz"),
        ("EEG T3-REF", "T7"),  # TUH average reference, old 10-20 name
        ("EEG FP1-REF", "Fp1"),
        ("EEG FP1-LE", "Fp1"),  # TUH linked ears
        ("EEG Fp1", "Fp1"),
        ("EEG:O2", "O2"),
        ("T4", "T8"),
        ("T5", "P7"),
        ("t6", "P8"),
        ("EEG A1-REF", "A1"),
        ("EEG FP1-F7", "Fp1-F7"),  # an already bipolar channel
        ("C3-A2", "C3-A2"),  # a bipolar channel to an ear, not a reference suffix
        ("EOG left", "EOG left"),  # unknown names are kept as recorded
        ("EEG 001", "EEG 001"),
        (" Status ", "Status"),
    ],
)
def test_clean_name(recorded, canonical):
    assert clean_name(recorded) == canonical


def test_canonical_names_records_renames_and_applies_user_aliases():
    names, renamed = canonical_names(["EEG T5-REF", "Cz", "fp1", "EEG 001"], {"eeg 001": "fp2"})
    assert names == ["P7", "Cz", "Fp1", "Fp2"]
    assert renamed == {"EEG T5-REF": "P7", "fp1": "Fp1", "EEG 001": "Fp2"}  # unchanged names are not listed


def test_two_names_for_one_channel_is_an_error():
    with pytest.raises(ChannelError, match=r"'T3' and 'T7' both mean 'T7'.*channel_aliases"):
        canonical_names(["T3", "Cz", "T7"])


def test_standard_vocabularies_are_canonical_10_05_names():
    names = set(mne.channels.make_standard_montage(STANDARD_MONTAGE).ch_names)
    assert set(CH) <= names and len(CH) == 19
    for montage in (DOUBLE_BANANA, TCP_22):
        assert {e for pair in montage for e in pair} <= names
        assert all(clean_name(bipolar_name(*pair)) == bipolar_name(*pair) for pair in montage)


def test_pass_through_is_identity():
    mapping = map_channels(["C3", "EOG left", "Cz"])
    assert mapping.names_out == ("C3", "EOG left", "Cz") and mapping.is_identity
    assert mapping.mapped == mapping.names_out and mapping.dropped == ()


def test_vocabulary_order_and_dropped_channels():
    mapping = map_channels(["O2", "Cz", "EOG", "Fp1"], vocabulary=["Fp1", "Cz", "O2"])
    assert mapping.names_out == ("Fp1", "Cz", "O2") and mapping.dropped == ("EOG",)
    x = np.arange(4.0)[:, None] * np.ones((4, 3))  # channel i carries value i
    np.testing.assert_array_equal(mapping.matrix @ x, [[3] * 3, [1] * 3, [0] * 3])
    assert not mapping.matrix.flags.writeable


def test_vocabulary_subset_takes_what_is_there():
    mapping = map_channels(["O2", "Cz", "EOG"], vocabulary=CH, subset=True)
    assert mapping.names_out == ("Cz", "O2") and mapping.dropped == ("EOG",)
    with pytest.raises(ChannelError, match="none of the recorded channels"):
        map_channels(["EOG"], vocabulary=CH, subset=True)


def test_missing_channels_error_names_them():
    with pytest.raises(MissingChannelsError) as info:
        map_channels(CH[2:], vocabulary=CH)
    assert info.value.missing == ["Fp1", "Fp2"] and info.value.available == CH[2:]


def test_zero_fill_and_project_start_at_zero_rows():
    zero = map_channels(CH[1:], vocabulary=CH, missing="zero")
    assert zero.zero_filled == ("Fp1",) and zero.mapped == tuple(CH[1:]) and zero.projection is None
    assert not zero.matrix[0].any() and np.array_equal(zero.matrix[1:], np.eye(18))
    project = map_channels(CH[1:], vocabulary=CH, missing="project")
    assert project.projected == ("Fp1",) and project.projection == "identity" and not project.zero_filled
    np.testing.assert_array_equal(project.matrix, zero.matrix)


def _template(names):
    return {n: template_position(n) for n in names}


def test_interpolation_matrix_is_what_interpolate_bads_does():
    """W @ x equals MNE's interpolate_bads on x (same positions, same origin)."""
    sources, targets = [c for c in CH if c not in ("C3", "P8")], ["C3", "P8"]
    W = interpolation_matrix(_template(sources), _template(targets))
    assert W.shape == (2, 17)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-6)  # splines reproduce a constant field
    x = np.random.default_rng(0).normal(size=(17, 50))
    info = mne.create_info(sources + targets, 100.0, "eeg")
    info.set_montage(mne.channels.make_dig_montage(ch_pos=_template(sources + targets), coord_frame="head"))
    raw = mne.io.RawArray(np.vstack([x, np.zeros((2, 50))]), info, verbose="error")
    raw.info["bads"] = targets
    raw.interpolate_bads(origin="auto", verbose="error")
    np.testing.assert_allclose(W @ x, raw.get_data(picks=targets), rtol=1e-10, atol=1e-12)


def test_interpolated_channel_of_a_smooth_field_is_close_to_the_truth():
    """A broad potential blob over the scalp is recovered at a removed electrode."""
    montage = mne.channels.make_standard_montage("colin27_1020").ch_names
    names = [
        n for n in dict.fromkeys(map(clean_name, montage)) if template_position(n) and n not in ("A1", "A2", "M1", "M2")
    ]
    pos = np.array([template_position(n) for n in names])
    field = np.exp(-np.sum((pos - template_position("CP5")) ** 2, axis=1) / (2 * 0.05**2))  # peak 1, sd 5 cm
    target, keep = "C3", [n for n in names if n != "C3"]
    mapping = map_channels(keep, _template(keep), vocabulary=CH, missing="interpolate")
    assert mapping.interpolated == (target,) and mapping.interpolation["mne"] == mne.__version__
    got = mapping.matrix @ field[[names.index(n) for n in keep]]
    assert got[CH.index(target)] == pytest.approx(field[names.index(target)], abs=0.01)  # 84 sources
    np.testing.assert_allclose(np.delete(got, CH.index(target)), field[[names.index(c) for c in CH if c != target]])


def test_interpolation_needs_positions():
    with pytest.raises(ChannelError, match="cannot interpolate X1: no position"):
        map_channels(CH, vocabulary=CH + ["X1"], missing="interpolate")
    with pytest.raises(ChannelError, match="only 2 recorded channel"):
        map_channels(["Cz", "Pz", "EOG"], vocabulary=["Cz", "Pz", "Oz"], missing="interpolate")


def test_bipolar_derivation_values():
    mapping = map_channels(CH, montage=DOUBLE_BANANA)
    assert mapping.names_out[:2] == ("Fp1-F7", "F7-T7") and mapping.bipolar == mapping.names_out
    assert mapping.dropped == ("Fz", "Cz", "Pz")
    x = np.random.default_rng(1).normal(size=(2, 19, 30))
    y = mapping.matrix @ x
    for k, (a, c) in enumerate(DOUBLE_BANANA):
        np.testing.assert_array_equal(y[:, k], x[:, CH.index(a)] - x[:, CH.index(c)])


def test_recorded_bipolar_channels_are_used_as_is():
    names = [bipolar_name(a, c) for a, c in DOUBLE_BANANA[:4]] + CH
    mapping = map_channels(names, montage=DOUBLE_BANANA)
    assert mapping.mapped == tuple(names[:4]) and mapping.bipolar == tuple(bipolar_name(*p) for p in DOUBLE_BANANA[4:])
    np.testing.assert_array_equal(mapping.matrix[:4, :4], np.eye(4))


def test_bipolar_with_missing_electrodes():
    no_f7 = [c for c in CH if c != "F7"]
    with pytest.raises(MissingChannelsError) as info:
        map_channels(no_f7, montage=DOUBLE_BANANA)
    assert info.value.missing == ["F7"] and info.value.needed_for == {"F7": ["Fp1-F7", "F7-T7"]}
    zero = map_channels(no_f7, montage=DOUBLE_BANANA, missing="zero")
    assert zero.zero_filled == ("Fp1-F7", "F7-T7") and not zero.matrix[:2].any()  # not Fp1 alone
    interp = map_channels(no_f7, _template(no_f7), montage=DOUBLE_BANANA, missing="interpolate")
    assert interp.interpolated == ("F7",) and interp.bipolar == interp.names_out and not interp.zero_filled
    f7 = interpolation_matrix(_template(no_f7), _template(["F7"]))[0]
    np.testing.assert_allclose(interp.matrix[0], np.eye(18)[no_f7.index("Fp1")] - f7)


def test_project_matrix_is_bipolar_init():
    mapping = map_channels(CH, montage=DOUBLE_BANANA, missing="project")
    np.testing.assert_array_equal(mapping.matrix, map_channels(CH, montage=DOUBLE_BANANA).matrix)
    assert mapping.projection == "bipolar" and mapping.projected == ()


def test_importing_channels_imports_neither_torch_nor_mne():
    code = "import sys, eegfm.backbones.channels; assert 'torch' not in sys.modules and 'mne' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_registry_channel_fields_use_canonical_names():
    """A vocabulary spelt otherwise ('FP1') would never match the cleaned-up recorded names."""
    from eegfm.backbones.registry import REGISTRY

    for spec in REGISTRY.values():
        rule = spec.inputs.channels
        names = list(rule.vocabulary or ()) + [e for pair in rule.montage or () for e in pair]
        assert [clean_name(n) for n in names] == names, spec.name
        assert not (rule.vocabulary and rule.montage), spec.name
        assert len(set(rule.vocabulary or ())) == len(rule.vocabulary or ()), spec.name
        assert not rule.subset or rule.vocabulary, spec.name


def test_template_positions_are_the_same_on_every_cpu():
    """MNE's transform to the head frame differs in the last bits between CPUs (an AMD EPYC and
    the CI machine disagreed at 1e-17 m); the positions enter the model and its fingerprint, so
    they are rounded to a nanometre, and a cache key is the same on both."""
    for name in ("Fp1", "Cz", "O2", "FC1"):
        position = template_position(name)
        assert position is not None and all(v == round(v, 9) for v in position), name
