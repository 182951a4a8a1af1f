"""Input plans: channel mapping, length policy, the adaptation record and its place in the cache key."""

from __future__ import annotations

import dataclasses

import mne
import numpy as np
import pytest
import zarr

from eegfm.backbones.adapt import BackboneInputError, plan_input, prepare_input
from eegfm.backbones.channels import CHANNELS_1020, DOUBLE_BANANA, template_position
from eegfm.backbones.fingerprint import fingerprint
from eegfm.backbones.registry import get_spec
from eegfm.backbones.spec import Channels, Length
from eegfm.config import Backbone, Embedding
from eegfm.embed import embed
from eegfm.windows_store import WindowsStoreWriter

CH = list(CHANNELS_1020)
#: CH as a TUH EDF names them: "EEG <NAME>-REF", old 10-20 names for T7/T8/P7/P8.
TUH = [f"EEG {({'T7': 'T3', 'T8': 'T4', 'P7': 'T5', 'P8': 'T6'}).get(c, c).upper()}-REF" for c in CH]

RECORD_KEYS = {
    "resampled_from", "resampled_to", "n_times_in", "n_times_out", "cropped_to", "padded_to", "channels",
    "mapped", "aliased", "bipolar", "interpolated", "zero_filled", "projected", "dropped", "projection",
    "interpolation", "template_positions", "scale", "input_norm",
}  # fmt: skip


def _info(ch_names=CH, sfreq=200.0, n_times=800, positions=None):
    return {
        "key": "k",
        "sfreq": sfreq,
        "n_times": n_times,
        "ch_names": list(ch_names),
        "units": "V",
        "positions": positions,
    }


def _positions(names, source=CH):
    """Template positions of ``source`` channels, keyed by the recorded ``names``."""
    return {name: template_position(c) for name, c in zip(names, source, strict=True)}


def _spec(channels: Channels | None = None, length: Length | None = None):
    """cbramod with other channel or length rules (what a registry entry could declare)."""
    spec = get_spec("cbramod")
    inputs = dataclasses.replace(
        spec.inputs, channels=channels or spec.inputs.channels, length=length or spec.inputs.length
    )
    return dataclasses.replace(spec, name="test", inputs=inputs)


def _cfg(name="cbramod", **kwargs):
    return Backbone(name=name, **kwargs)


def _windows(n=2, n_chans=19, n_times=800, seed=0):
    return np.random.default_rng(seed).normal(scale=1e-5, size=(n, n_chans, n_times))


# ----------------------------------------------------------------------------- names and vocabularies


def test_old_and_prefixed_names_pass_through_as_canonical_names():
    names = ["fp1", *TUH[1:4], "Fc5.", *TUH[5:]]
    plan = plan_input(get_spec("cbramod"), _info(names, positions={"fp1": template_position("Cz")}))
    assert plan.ch_names == [*CH[:4], "FC5", *CH[5:]]
    record = plan.record()
    assert record["aliased"]["EEG T3-REF"] == "T7" and record["aliased"]["EEG T5-REF"] == "P7"
    assert record["aliased"]["Fc5."] == "FC5" and record["aliased"]["fp1"] == "Fp1" and len(record["aliased"]) == 19
    assert record["mapped"] == plan.ch_names and record["dropped"] == [] and plan.channel_matrix is None
    assert plan.positions["Fp1"] == template_position("Cz")  # the store's position wins ...
    assert plan.positions["T7"] == template_position("T7") and "T7" in record["template_positions"]  # ... else MNE's
    assert "Fp1" not in record["template_positions"]


def test_plain_old_names_are_recorded_as_aliased():
    names = [{"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}.get(c, c) for c in CH]  # e.g. Nihon Kohden
    plan = plan_input(get_spec("cbramod"), _info(names))
    assert plan.ch_names == CH and plan.record()["aliased"] == {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


def test_user_aliases_are_applied_first():
    names = ["EEG 001", *CH[1:]]
    plan = plan_input(get_spec("cbramod"), _info(names), cfg=_cfg(channel_aliases={"EEG 001": "FP1"}))
    assert plan.ch_names == CH and plan.record()["aliased"] == {"EEG 001": "Fp1"}


def test_duplicate_names_after_cleanup_are_an_error():
    with pytest.raises(BackboneInputError, match=r"'cbramod', dataset 'ds'.*'T3' and 'EEG T7-REF' both mean 'T7'"):
        plan_input(get_spec("cbramod"), _info(["T3", "EEG T7-REF"]), dataset="ds")


def test_vocabulary_order_drops_extras_and_feeds_values():
    vocab = ("Cz", "P7", "Fp1")
    names = ["EEG FP1-REF", "EOG", "EEG T5-REF", "EEG CZ-REF"]
    plan = plan_input(_spec(Channels(vocabulary=vocab)), _info(names))
    assert plan.ch_names == list(vocab)
    record = plan.record()
    assert record["mapped"] == list(vocab) and record["dropped"] == ["EOG"] and record["channels"] == list(vocab)
    X = _windows(n_chans=4)
    np.testing.assert_allclose(prepare_input(X, plan, np.float64), X[:, [3, 2, 0]] * 1e4)  # cbramod: µV / 100


def test_vocabulary_subset_keeps_what_it_knows():
    plan = plan_input(_spec(Channels(vocabulary=tuple(CH), subset=True)), _info(["O2", "EOG", "Cz"]))
    assert plan.ch_names == ["Cz", "O2"] and plan.record()["dropped"] == ["EOG"]


# ----------------------------------------------------------------------------- missing channels


def test_missing_channels_error_names_everything_needed():
    names = [c for c in TUH if "T3" not in c and "FZ" not in c]
    with pytest.raises(BackboneInputError) as info:
        plan_input(_spec(Channels(vocabulary=tuple(CH))), _info(names), dataset="ds")
    message = str(info.value)
    assert "backbone 'test'" in message and "dataset 'ds'" in message
    assert "missing Fz, T7" in message
    assert "Available channels: Fp1 (EEG FP1-REF), Fp2 (EEG FP2-REF), F7 (EEG F7-REF)" in message
    assert "P7 (EEG T5-REF)" in message
    assert "backbones[].missing_channels" in message
    assert (
        "'zero', 'interpolate'" in message
        and "'project'" in message
        and "allowed: error, zero, interpolate, project" in message
    )
    assert "backbones[].channel_aliases" in message


def test_missing_derivations_name_the_electrodes_and_what_they_feed():
    names = [c for c in CH if c != "F8"]
    with pytest.raises(
        BackboneInputError, match=r"'biot' expects bipolar derivations.*missing F8 \(needed for F8: Fp2-F8, F8-T8\)"
    ):
        plan_input(get_spec("biot"), _info(names))


def test_zero_fill_records_and_feeds_zeros():
    names = [c for c in CH if c != "Cz"]
    plan = plan_input(_spec(Channels(vocabulary=tuple(CH))), _info(names), cfg=_cfg(missing_channels="zero"))
    record = plan.record()
    assert record["zero_filled"] == ["Cz"] and record["interpolated"] == [] and "Cz" not in record["mapped"]
    x = prepare_input(_windows(n_chans=18), plan, np.float64)
    assert not x[:, CH.index("Cz")].any() and x.shape == (2, 19, 800)


def test_interpolate_matches_mne_on_the_stored_positions():
    names = [c for c in TUH if "CZ" not in c]
    canonical = [c for c in CH if c != "Cz"]
    positions = _positions(names, canonical)
    plan = plan_input(
        _spec(Channels(vocabulary=tuple(CH))), _info(names, positions=positions), cfg=_cfg(missing_channels="interpolate")
    )
    record = plan.record()
    assert record["interpolated"] == ["Cz"] and record["interpolation"]["mne"] == mne.__version__
    assert len(record["interpolation"]["weights_sha256"]) == 16
    X = _windows(n_chans=18)
    x = prepare_input(X, plan, np.float64) / plan.scale
    info = mne.create_info(canonical + ["Cz"], 200.0, "eeg")
    ch_pos = {**{c: template_position(c) for c in canonical}, "Cz": template_position("Cz")}
    info.set_montage(mne.channels.make_dig_montage(ch_pos=ch_pos, coord_frame="head"))
    raw = mne.io.RawArray(np.vstack([X[0], np.zeros((1, 800))]), info, verbose="error")
    raw.info["bads"] = ["Cz"]
    raw.interpolate_bads(origin="auto", verbose="error")
    np.testing.assert_allclose(x[0, CH.index("Cz")], raw.get_data(picks="Cz")[0], rtol=1e-8, atol=1e-15)


def test_interpolating_an_unknown_channel_names_it():
    with pytest.raises(BackboneInputError, match=r"cannot interpolate Xyz: no position.*'zero' or 'project'"):
        plan_input(_spec(Channels(vocabulary=(*CH, "Xyz"))), _info(), cfg=_cfg(missing_channels="interpolate"))


def test_project_starts_as_identity_and_zero_rows():
    names = [c for c in CH if c != "O2"]
    plan = plan_input(_spec(Channels(vocabulary=tuple(CH))), _info(names), cfg=_cfg(missing_channels="project"))
    record = plan.record()
    assert record["projected"] == ["O2"] and record["projection"] == "identity" and record["zero_filled"] == []
    expected = np.insert(np.eye(18), CH.index("O2"), 0.0, axis=0)
    np.testing.assert_array_equal(plan.channel_matrix, expected)


# ----------------------------------------------------------------------------- bipolar montage (BIOT)


def test_biot_gets_the_double_banana_from_old_tuh_names():
    plan = plan_input(get_spec("biot"), _info(TUH))
    assert plan.ch_names == [f"{a}-{c}" for a, c in DOUBLE_BANANA]
    record = plan.record()
    assert record["bipolar"] == plan.ch_names and record["dropped"] == ["Fz", "Cz", "Pz"]
    assert record["aliased"]["EEG T4-REF"] == "T8" and record["input_norm"] == "channel_q95"
    X = _windows()
    x = prepare_input(X, plan, np.float64)
    fp1_f7 = 1e6 * (X[:, CH.index("Fp1")] - X[:, CH.index("F7")])
    np.testing.assert_allclose(x[:, 0], fp1_f7 / (np.quantile(np.abs(fp1_f7), 0.95, axis=-1, keepdims=True) + 1e-8))
    unmapped = prepare_input(X, plan, np.float64, channels=False)  # for a trainable ChannelProjection
    np.testing.assert_allclose(unmapped, X * 1e6)


def test_biot_project_is_bipolar_initialised():
    plan = plan_input(get_spec("biot"), _info(), cfg=_cfg("biot", missing_channels="project"))
    assert plan.record()["projection"] == "bipolar"
    np.testing.assert_array_equal(plan.channel_matrix, plan_input(get_spec("biot"), _info()).channel_matrix)


# ----------------------------------------------------------------------------- length policy


def test_crop_keeps_the_start():
    plan = plan_input(get_spec("cbramod"), _info(sfreq=250.0, n_times=1125), cfg=_cfg(length_policy="crop"))  # 4.5 s
    assert (plan.n_times_out, plan.record()["cropped_to"], plan.record()["padded_to"]) == (800, 800, None)
    X = _windows(n_times=1125)
    full = plan_input(get_spec("cbramod"), _info(sfreq=250.0, n_times=1250), cfg=_cfg(length_policy="crop"))
    np.testing.assert_array_equal(prepare_input(X, plan, np.float64), _resampled(X, full)[..., :800])


def _resampled(X, plan):
    from mne.filter import resample

    return resample(X.astype(np.float64), up=200.0, down=250.0, method="polyphase", verbose="error") * plan.scale


def test_pad_appends_zeros():
    plan = plan_input(get_spec("cbramod"), _info(n_times=900), cfg=_cfg(length_policy="pad"))
    assert (plan.n_times_out, plan.record()["padded_to"], plan.record()["cropped_to"]) == (1000, 1000, None)
    X = _windows(n_times=900)
    x = prepare_input(X, plan, np.float64)
    np.testing.assert_allclose(x[..., :900], X * 1e4)
    assert not x[..., 900:].any()


def test_length_errors_name_both_keys():
    with pytest.raises(
        BackboneInputError,
        match=r"length_s to 4 or 5, or set backbones\[\]\.length_policy to 'crop' \(to 4 s\) or 'pad' \(to 5 s\)",
    ):
        plan_input(get_spec("cbramod"), _info(n_times=900), dataset="ds")
    with pytest.raises(
        BackboneInputError, match=r"at least 1 s.*length_policy 'crop' cannot reach.*'pad' would give 1 s"
    ):
        plan_input(get_spec("biot"), _info(n_times=100), cfg=_cfg("biot", length_policy="crop"))
    plan = plan_input(get_spec("biot"), _info(n_times=100), cfg=_cfg("biot", length_policy="pad"))
    assert plan.n_times_out == 200


def test_a_policy_that_does_nothing_changes_nothing():
    X = _windows()
    base = plan_input(get_spec("cbramod"), _info())
    for cfg in (_cfg(length_policy="crop"), _cfg(length_policy="pad"), _cfg(missing_channels="zero")):
        plan = plan_input(get_spec("cbramod"), _info(), cfg=cfg)
        assert plan.record() == base.record()
        np.testing.assert_array_equal(prepare_input(X, plan), prepare_input(X, base))


# ----------------------------------------------------------------------------- record and cache key


def test_record_has_every_field_and_is_json():
    import json

    plan = plan_input(
        get_spec("biot"), _info(TUH, sfreq=250.0, n_times=1000), cfg=_cfg("biot", missing_channels="zero")
    )
    record = plan.record()
    assert set(record) == RECORD_KEYS
    assert (record["resampled_from"], record["resampled_to"], record["n_times_in"], record["n_times_out"]) == (
        250.0,
        200.0,
        1000,
        800,
    )
    assert json.loads(json.dumps(record)) == record


def test_fingerprint_changes_with_what_the_policy_did():
    spec = _spec(Channels(vocabulary=tuple(CH)))
    info = _info(
        [c for c in CH if c != "Pz"], positions=_positions([c for c in CH if c != "Pz"], [c for c in CH if c != "Pz"])
    )

    def fp(**kwargs):
        cfg = _cfg(kwargs={"n_layer": 2}, **kwargs)
        return fingerprint(spec, cfg, plan_input(spec, info, cfg=cfg), seed=0)

    zero, interp, project = (
        fp(missing_channels="zero"),
        fp(missing_channels="interpolate"),
        fp(missing_channels="project"),
    )
    assert len({str(zero), str(interp), str(project)}) == 3
    assert zero["input"]["zero_filled"] == ["Pz"] and interp["input"]["interpolated"] == ["Pz"]
    full = plan_input(get_spec("cbramod"), _info(n_times=900), cfg=_cfg(length_policy="crop"))
    padded = plan_input(get_spec("cbramod"), _info(n_times=900), cfg=_cfg(length_policy="pad"))
    assert fingerprint(get_spec("cbramod"), _cfg(), full, 0) != fingerprint(get_spec("cbramod"), _cfg(), padded, 0)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tuh_store(tmp_path_factory):
    """A tiny windows store as a TUH EDF would give it: EEG xx-REF names, T3/T4/T5/T6, no positions."""
    path = tmp_path_factory.mktemp("tuh") / "windows"
    writer = WindowsStoreWriter(path, TUH, 250.0, 1000)
    X = _windows(n=6, n_times=1000, seed=3).astype(np.float32)
    writer.append(X, [{"subject": f"s{i % 2}", "label": "ab"[i % 2], "recording": "r.edf"} for i in range(6)])
    writer.close(positions=None)
    return str(path)


@pytest.mark.parametrize(
    "cfg, dim, channels, n_times",
    [
        (Backbone(name="biot", kwargs={"num_layers": 1}), 256, [f"{a}-{c}" for a, c in DOUBLE_BANANA], 800),
        (Backbone(name="cbramod", kwargs={"n_layer": 1}), 200, CH, 800),
        (Backbone(name="bandpower"), 19 * 5, CH, 1000),  # any rate: not resampled
    ],
    ids=["biot", "cbramod", "bandpower"],
)
def test_embed_a_store_with_old_names(tuh_store, tmp_path, cfg, dim, channels, n_times):
    pointer = embed(
        tuh_store, cfg, Embedding(batch_size=4), 0, str(tmp_path / "cache"), str(tmp_path / "p.json"), "tuh"
    )
    assert pointer["dim"] == dim and pointer["n_windows"] == 6
    record = pointer["adaptation"]
    assert record["channels"] == channels and record["aliased"]["EEG T3-REF"] == "T7"
    assert record["resampled_from"] == 250.0 and record["n_times_out"] == n_times
    attrs = dict(zarr.open_group(pointer["store"], mode="r").attrs)
    assert attrs["adaptation"] == record and pointer["fingerprint"]["input"] == record
    E = np.asarray(zarr.open_group(pointer["store"], mode="r")["E"][:])
    assert E.shape == (6, dim) and np.isfinite(E).all()
    if cfg.name == "cbramod":  # chs_info carries the canonical names and template positions
        chs = pointer["fingerprint"]["init_kwargs"]["chs_info"]
        assert [c["ch_name"] for c in chs] == CH and chs[CH.index("T7")]["loc"] == template_position("T7")


def test_a_real_edf_feeds_biot_its_montage(real_data):
    """eeglab's test.edf names channels 'EEG Fp1' ... 'EEG T3' (old 10-20): all 16 BIOT derivations follow."""
    raw = mne.io.read_raw_edf(real_data / "sccn+eeglab/sample_data/test_data/test.edf", verbose="error")
    plan = plan_input(get_spec("biot"), _info(raw.ch_names, sfreq=raw.info["sfreq"], n_times=1024))
    record = plan.record()
    assert record["bipolar"] == [f"{a}-{c}" for a, c in DOUBLE_BANANA] and record["dropped"] == []
    assert record["aliased"]["EEG T3"] == "T7" and record["n_times_out"] == 800
    X = raw.get_data(start=0, stop=1024)[None]
    x = prepare_input(X, plan, np.float64, channels=False)
    np.testing.assert_allclose(
        (plan.channel_matrix @ x)[0, 1], x[0, raw.ch_names.index("EEG F7")] - x[0, raw.ch_names.index("EEG T3")]
    )


def test_crop_respects_a_maximum_length():
    spec = _spec(length=Length(multiple=40, maximum=400))
    with pytest.raises(BackboneInputError, match=r"at most 2 s.*'crop' \(to 2 s\)"):
        plan_input(spec, _info(n_times=1000))
    plan = plan_input(spec, _info(n_times=1000), cfg=_cfg(length_policy="crop"))
    assert plan.n_times_out == plan.record()["cropped_to"] == 400
    with pytest.raises(BackboneInputError, match="'pad' cannot reach"):
        plan_input(spec, _info(n_times=1000), cfg=_cfg(length_policy="pad"))


def test_bendr_and_reve_input_norms():
    from eegfm.backbones.adapt import normalize_input

    x = np.random.default_rng(0).normal(size=(3, 4, 1000)) * 50  # z of one outlier <= sqrt(n - 1)
    x[0, 1, 5] = 10_000.0  # an artefact
    mm = normalize_input(x, "window_minmax")
    assert np.allclose(mm.min(axis=(1, 2)), -1) and np.allclose(mm.max(axis=(1, 2)), 1)
    z = normalize_input(x, "channel_zscore_clip15")
    assert z.max() == 15.0  # the artefact is clipped
    assert np.allclose(z[1:].mean(axis=-1), 0, atol=1e-9) and np.allclose(z[1:].std(axis=-1), 1, atol=1e-6)
    np.testing.assert_array_equal(normalize_input(x[1:2], "window_minmax"), mm[1:2])  # per window


@pytest.mark.parametrize("n", [1, 2, 7, 200, 800, 1001])
@pytest.mark.parametrize("q", [0.0, 0.05, 0.5, 0.95, 0.975, 1.0])
def test_abs_quantile_is_numpys(n, q):
    from eegfm.backbones.adapt import abs_quantile

    x = np.random.default_rng(n).normal(size=(3, 4, n)) * 40
    x[0, 0, :] = 2.5  # ties
    np.testing.assert_array_equal(abs_quantile(x, q), np.quantile(np.abs(x), q, axis=-1, keepdims=True))
