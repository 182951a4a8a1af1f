"""Embedding stores: content-addressed, computed once, atomic, deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import eegfm.embed as embed_mod
from eegfm.backbones.build import BackboneInputError
from eegfm.config import Backbone, Embedding
from eegfm.embed import (
    POINTER_KEYS,
    NonFiniteEmbeddingError,
    embed,
    embedding_key,
    open_embeddings,
    store_path,
)
from eegfm.windows_store import WindowsStoreWriter

CH = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()
SMALL = Backbone(name="cbramod", kwargs={"n_layer": 2})  # same code paths as the full model, ~4x faster


def _positions():
    import mne

    ch_pos = mne.channels.make_standard_montage("colin27_1020").get_positions()["ch_pos"]
    return {name: [float(v) for v in ch_pos[name]] for name in CH}


def make_store(path, n=10, seconds=4.0, sfreq=200.0, seed=0):
    """A tiny windows store: ``n`` windows x 19 channels (Fp1..O2, with positions)."""
    n_times = round(seconds * sfreq)
    writer = WindowsStoreWriter(path, CH, sfreq, n_times)
    X = np.random.default_rng(seed).normal(scale=1e-5, size=(n, len(CH), n_times)).astype(np.float32)
    writer.append(X, [{"subject": f"s{i % 3}", "label": "ab"[i % 2], "recording": "r.edf"} for i in range(n)])
    writer.close(positions=_positions())
    return str(path)


@pytest.fixture(scope="module")
def store10(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("w10") / "windows")


@pytest.fixture(scope="module")
def store40(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("w40") / "windows", n=40, seed=1)


def _info(windows_dir):
    return json.loads((Path(windows_dir) / "windows.json").read_text())


def _embed(windows, tmp_path, cfg=SMALL, batch_size=16, cache="cache", pointer="p.json", dataset="ds", seed=0):
    return embed(windows, cfg, Embedding(batch_size=batch_size), seed, str(tmp_path / cache), str(tmp_path / pointer), dataset)


def test_full_cbramod_embeds_to_200_and_second_call_is_a_cache_hit(store10, tmp_path, monkeypatch):
    first = _embed(store10, tmp_path, cfg=Backbone(name="cbramod"))
    assert tuple(sorted(first)) == tuple(sorted(POINTER_KEYS))
    assert (first["cache"], first["forward_passes"], first["dim"], first["n_windows"]) == ("miss", 1, 200, 10)
    assert first["windows_forwarded"] == 10  # every window once
    E1, pointer = open_embeddings(str(tmp_path / "p.json"))
    assert E1.shape == (10, 200) and E1.dtype == np.float32 and pointer == first
    assert first["store"] == str(store_path(tmp_path / "cache", first["key"]).resolve())
    attrs = dict(zarr.open_group(first["store"], mode="r").attrs)
    assert attrs["fingerprint"] == first["fingerprint"] and attrs["adaptation"]["mapped"] == CH
    assert attrs["windows_key"] == first["windows_key"] and attrs["forward_passes"] == 1 and attrs["created_by"]["torch"]

    def no_build(*args, **kwargs):  # a hit must not build the model
        raise AssertionError("model built on a cache hit")

    monkeypatch.setattr(embed_mod, "build_extractor", no_build)
    second = _embed(store10, tmp_path, cfg=Backbone(name="cbramod", id="cbramod-again"), pointer="q.json", dataset="other")
    assert (second["cache"], second["forward_passes"], second["key"]) == ("hit", 0, first["key"])
    assert second["windows_forwarded"] == 0
    assert (second["dataset"], second["backbone"]) == ("other", "cbramod-again")
    E2, _ = open_embeddings(str(tmp_path / "q.json"))
    np.testing.assert_array_equal(E1, E2)


def test_cache_hit_in_a_fresh_process_imports_no_torch(store10, tmp_path):
    first = _embed(store10, tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from eegfm.config import Backbone, Embedding
        from eegfm.embed import embed
        p = embed({store10!r}, Backbone(name="cbramod", kwargs={{"n_layer": 2}}), Embedding(batch_size=16), 0,
                  {str(tmp_path / "cache")!r}, {str(tmp_path / "hit.json")!r}, "ds")
        assert p["cache"] == "hit" and p["key"] == {first["key"]!r}, p
        assert "torch" not in sys.modules and "braindecode" not in sys.modules
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_weights_change_the_key(store10, tmp_path):
    from safetensors.torch import save_file

    from eegfm.backbones.build import build_extractor, plan_input
    from eegfm.backbones.registry import get_spec

    spec = get_spec("cbramod")
    plan = plan_input(spec, _info(store10))
    model = build_extractor(spec, SMALL, plan, seed=7).model
    weights = tmp_path / "random.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    random_init = _embed(store10, tmp_path)
    pretrained = _embed(store10, tmp_path, cfg=Backbone(name="cbramod", kwargs={"n_layer": 2}, weights=str(weights)), pointer="w.json")
    assert pretrained["key"] != random_init["key"] and pretrained["cache"] == "miss"
    assert pretrained["fingerprint"]["weights"].startswith("sha256:")
    assert embedding_key(random_init["windows_key"], random_init["fingerprint"]) == random_init["key"]


def test_killed_write_leaves_no_store_and_next_call_recomputes(store40, tmp_path, monkeypatch):
    real_build = embed_mod.build_extractor

    def build_then_die(*args, **kwargs):
        extractor, calls = real_build(*args, **kwargs), []

        def dies_on_second_batch(X):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt("killed mid-write")
            return extractor(X)

        return dies_on_second_batch

    monkeypatch.setattr(embed_mod, "build_extractor", build_then_die)
    with pytest.raises(KeyboardInterrupt):
        _embed(store40, tmp_path)
    embeddings = tmp_path / "cache" / "embeddings"
    assert not list(embeddings.rglob("*.zarr")) and not list(embeddings.rglob(".tmp-*"))
    assert not (tmp_path / "p.json").exists()
    monkeypatch.setattr(embed_mod, "build_extractor", real_build)
    again = _embed(store40, tmp_path)
    assert (again["cache"], again["forward_passes"]) == ("miss", 3)  # 40 windows in batches of 16


def test_wrong_window_length_is_refused_before_any_work(tmp_path):
    windows = make_store(tmp_path / "w45", n=2, seconds=4.5)
    with pytest.raises(BackboneInputError, match=r"datasets\.short\.windows\.length_s to 4 or 5"):
        _embed(windows, tmp_path, dataset="short")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "p.json").exists()


def test_same_seed_is_bitwise_identical_and_batch_size_does_not_matter(store40, tmp_path):
    a = _embed(store40, tmp_path, cache="c1", pointer="a.json", batch_size=16)
    b = _embed(store40, tmp_path, cache="c2", pointer="b.json", batch_size=16)
    c = _embed(store40, tmp_path, cache="c3", pointer="c.json", batch_size=32)
    assert a["key"] == b["key"] == c["key"] and {a["cache"], b["cache"], c["cache"]} == {"miss"}
    assert (a["forward_passes"], c["forward_passes"]) == (3, 2)
    Ea, Eb, Ec = (open_embeddings(str(tmp_path / f"{x}.json"))[0] for x in "abc")
    np.testing.assert_array_equal(Ea, Eb)
    np.testing.assert_array_equal(Ea, Ec)
    other_seed = _embed(store40, tmp_path, cache="c4", pointer="d.json", seed=1)
    assert other_seed["key"] != a["key"]


def test_non_finite_embeddings_are_an_error_and_nothing_is_written(store10, tmp_path, monkeypatch):
    real_build = embed_mod.build_extractor

    def build_nan(*args, **kwargs):
        extractor = real_build(*args, **kwargs)

        def with_nan(X):
            out = extractor(X)
            out[[1, 3], :5] = np.nan
            return out

        return with_nan

    monkeypatch.setattr(embed_mod, "build_extractor", build_nan)
    with pytest.raises(NonFiniteEmbeddingError, match=r"'cbramod' \(cbramod\) produced 10 non-finite .* 2 of 10 windows"):
        _embed(store10, tmp_path)
    assert not list((tmp_path / "cache").rglob("*.zarr"))


def test_bandpower_store(store10, tmp_path):
    pointer = _embed(store10, tmp_path, cfg=Backbone(name="bandpower"))
    E, _ = open_embeddings(str(tmp_path / "p.json"))
    assert E.shape == (10, 19 * 5) and np.isfinite(E).all()
    assert pointer["fingerprint"]["weights"] == "none" and "torch" not in pointer["fingerprint"]["versions"]


def test_open_embeddings_detects_a_cleared_cache(store10, tmp_path):
    import shutil

    pointer = _embed(store10, tmp_path, cfg=Backbone(name="bandpower"))
    shutil.rmtree(pointer["store"])
    with pytest.raises(FileNotFoundError, match="re-run the embed rule"):
        open_embeddings(str(tmp_path / "p.json"))


def _delete_a_chunk(store: str) -> Path:
    chunk = sorted((Path(store) / "E" / "c").rglob("*"))[-1]
    assert chunk.is_file()
    chunk.unlink()  # an interrupted copy of a shared cache
    return chunk


def test_a_store_with_a_deleted_chunk_is_a_miss_moved_aside_and_recomputed(store40, tmp_path, caplog):
    cfg = Backbone(name="bandpower")
    first = _embed(store40, tmp_path, cfg=cfg)
    E1, _ = open_embeddings(str(tmp_path / "p.json"))
    _delete_a_chunk(first["store"])
    with pytest.raises(ValueError, match=r"chunk 0 .* does not match the sha256.*snakemake --forcerun .*p\.json"):
        open_embeddings(str(tmp_path / "p.json"))  # a reader names the store and the fix
    with caplog.at_level("WARNING", logger="eegfm.embed"):
        again = _embed(store40, tmp_path, cfg=cfg, pointer="again.json")
    assert (again["cache"], again["key"]) == ("miss", first["key"]) and again["forward_passes"] > 0
    assert "is damaged" in caplog.text and "moved it aside" in caplog.text
    aside = list(Path(first["store"]).parent.glob(f"{first['key']}.zarr.damaged-*"))
    assert len(aside) == 1  # kept for inspection, never silently deleted
    E2, _ = open_embeddings(str(tmp_path / "again.json"))
    np.testing.assert_array_equal(E1, E2)
    assert _embed(store40, tmp_path, cfg=cfg, pointer="third.json")["cache"] == "hit"


def test_two_stores_with_their_arrays_swapped_are_misses_not_each_others_hits(store10, tmp_path):
    cfg = Backbone(name="bandpower")
    other = make_store(tmp_path / "other", n=10, seed=5)  # same shape, other windows
    a, b = _embed(store10, tmp_path, cfg=cfg, pointer="a.json"), _embed(other, tmp_path, cfg=cfg, pointer="b.json")
    Ea, _ = open_embeddings(str(tmp_path / "a.json"))
    swap = tmp_path / "E-swap"
    (Path(a["store"]) / "E").rename(swap)
    (Path(b["store"]) / "E").rename(Path(a["store"]) / "E")
    swap.rename(Path(b["store"]) / "E")  # each E and its digests now sit in the other's store
    with pytest.raises(ValueError, match=r"written for store key .*not this store's"):
        open_embeddings(str(tmp_path / "a.json"))
    again = _embed(store10, tmp_path, cfg=cfg, pointer="again.json")
    assert (again["cache"], again["key"]) == ("miss", a["key"])
    np.testing.assert_array_equal(open_embeddings(str(tmp_path / "again.json"))[0], Ea)


def test_a_store_without_digests_is_recomputed(store10, tmp_path):
    from eegfm.integrity import ATTR

    cfg = Backbone(name="bandpower")
    first = _embed(store10, tmp_path, cfg=cfg)
    E = zarr.open_group(first["store"], mode="r+")["E"]
    E.attrs.update({ATTR: None})  # as written by an older eegfm
    assert _embed(store10, tmp_path, cfg=cfg, pointer="again.json")["cache"] == "miss"


def test_a_second_process_waits_for_the_writer_and_hits(store40, tmp_path):
    from eegfm.locks import key_lock

    cfg = Backbone(name="bandpower")
    key = _embed(store40, tmp_path, cfg=cfg, cache="probe")["key"]
    path = store_path(tmp_path / "cache", key)
    script = textwrap.dedent(
        f"""
        from eegfm.config import Backbone, Embedding
        from eegfm.embed import embed
        p = embed({store40!r}, Backbone(name="bandpower"), Embedding(batch_size=16), 0,
                  {str(tmp_path / "cache")!r}, {str(tmp_path / "other.json")!r}, "ds")
        print(p["cache"])
        """
    )
    with key_lock(path, what="test"):  # we are the writer: compute while the other process waits
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        import time

        time.sleep(3)
        assert proc.poll() is None, "the second process did not wait for the writer"
        mine = _embed(store40, tmp_path, cfg=cfg)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "hit" and mine["cache"] == "miss"
