"""The windows cache: a recipe key over bytes, settings and code; verified, linked entries; damage is a miss."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from eegfm import provenance, windows_cache
from eegfm.windows_store import WindowsStoreWriter, open_windows

CH = ["C3", "Cz", "C4"]
SETTINGS = {"source": "{}", "preprocessing": "{}", "windows": "{}", "group_by": "subject",
            "target": "classification", "dataset": "d"}


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "data" / "s01.edf"
    path.parent.mkdir()
    path.write_bytes(b"recording bytes")
    return path


def _store(out, seed=0):
    """A real windows store (70 windows: two zarr chunks)."""
    X = np.random.default_rng(seed).normal(size=(70, 3, 50)).astype("float32")
    writer = WindowsStoreWriter(out, CH, 100.0, 50)
    writer.append(X, [{"subject": "01", "label": "ab"[i % 2], "onset_s": float(i), "recording": "s01.edf"}
                      for i in range(70)])
    writer.close(settings={"k": 1})
    return X


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_key_follows_the_bytes_the_settings_and_the_code(recording, tmp_path, monkeypatch):
    key = windows_cache.recipe_key([recording], SETTINGS)
    assert windows_cache.recipe_key([str(recording)], dict(SETTINGS)) == key
    assert windows_cache.recipe_key([recording.parent], SETTINGS) == key  # a folder: every file under it
    assert windows_cache.recipe_key([recording], {**SETTINGS, "windows": '{"length_s": 2}'}) != key
    stat = recording.stat()
    recording.write_bytes(b"recording byteS")  # same size, same mtime: the content decides
    os.utime(recording, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert windows_cache.recipe_key([recording], SETTINGS) != key
    recording.write_bytes(b"recording bytes")
    monkeypatch.setattr(provenance, "source_digest", lambda: "other code")
    assert windows_cache.recipe_key([recording], SETTINGS) != key


def test_a_saved_store_is_restored_verified_and_linked(recording, tmp_path, caplog):
    X = _store(tmp_path / "first")
    (tmp_path / "first.log").write_text("INFO built 70 windows\n")
    key = windows_cache.recipe_key([recording], SETTINGS)
    cache = tmp_path / "cache"
    assert windows_cache.restore(cache, key, tmp_path / "second", what="windows d") is None  # a miss
    entry = windows_cache.save(cache, key, tmp_path / "first", what="windows d", log_path=tmp_path / "first.log")
    assert entry == windows_cache.entry_path(cache, key) and (entry / "manifest.json").is_file()
    with caplog.at_level(logging.INFO):
        assert windows_cache.restore(cache, key, tmp_path / "second", what="windows d") == entry
    assert _files(tmp_path / "second") == _files(tmp_path / "first")
    np.testing.assert_array_equal(open_windows(tmp_path / "second").X[:], X)
    assert "windows cache hit" in caplog.text and "built 70 windows" in caplog.text  # the builder's log, replayed
    chunk = next(p for p in (tmp_path / "second" / "windows.zarr").rglob("*") if p.is_file())
    twin = entry / "windows.zarr" / chunk.relative_to(tmp_path / "second" / "windows.zarr")
    assert os.path.samefile(chunk, twin)  # one file system: a hard link, no second copy


@pytest.mark.parametrize("damage", ["delete a chunk", "change a byte", "truncate the table"])
def test_a_damaged_entry_is_a_miss_moved_aside_and_saved_again(recording, tmp_path, caplog, damage):
    _store(tmp_path / "first")
    key = windows_cache.recipe_key([recording], SETTINGS)
    cache = tmp_path / "cache"
    # a copy, not links, so that damaging the entry leaves the results folder alone
    entry = windows_cache.save(cache, key, tmp_path / "first", what="windows d")
    for path in entry.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            path.unlink()
            path.write_bytes(data)
    chunks = sorted(p for p in (entry / "windows.zarr" / "X" / "c").rglob("*") if p.is_file())
    if damage == "delete a chunk":
        chunks[0].unlink()
    elif damage == "change a byte":
        data = bytearray(chunks[-1].read_bytes())
        data[len(data) // 2] ^= 1
        chunks[-1].write_bytes(bytes(data))
    else:
        (entry / "windows.tsv").write_text((entry / "windows.tsv").read_text()[:50])
    with caplog.at_level(logging.WARNING):
        assert windows_cache.restore(cache, key, tmp_path / "second", what="windows d") is None
    assert "damaged" in caplog.text and not entry.exists()
    assert [p.name.startswith(f"{key}.damaged-") for p in entry.parent.iterdir() if p.is_dir()] == [True]
    assert not (tmp_path / "second" / "windows.json").exists()  # nothing was published
    windows_cache.save(cache, key, tmp_path / "first", what="windows d")
    assert windows_cache.restore(cache, key, tmp_path / "second", what="windows d") == entry


def test_a_read_only_cache_serves_its_hits_and_a_miss_only_warns(recording, tmp_path, freezable_folder, caplog):
    cache, freeze = freezable_folder
    _store(tmp_path / "first")
    key = windows_cache.recipe_key([recording], SETTINGS)
    windows_cache.save(cache, key, tmp_path / "first", what="windows d")  # across file systems: copies
    freeze()
    assert windows_cache.restore(cache, key, tmp_path / "second", what="windows d") is not None
    assert _files(tmp_path / "second") == _files(tmp_path / "first")
    other = windows_cache.recipe_key([recording], {**SETTINGS, "dataset": "e"})
    with caplog.at_level(logging.WARNING):
        assert windows_cache.save(cache, other, tmp_path / "first", what="windows e") is None
    assert "could not keep the windows in the cache" in caplog.text
