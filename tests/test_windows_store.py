"""The windows store contract: layout, content key, atomic publication."""

import numpy as np
import pytest

from eegfm.windows_store import WindowsStoreWriter, open_windows

CH = ["C3", "Cz", "C4"]


def _write(out, X, labels, sfreq=100.0):
    writer = WindowsStoreWriter(out, CH, sfreq, X.shape[-1])
    rows = [{"subject": f"{i % 2}", "label": lab, "onset_s": float(i), "recording": "r.edf"} for i, lab in enumerate(labels)]
    writer.append(X, rows)
    return writer.close(settings={"k": 1})


def test_roundtrip_and_layout(tmp_path):
    X = np.random.default_rng(0).normal(size=(5, 3, 50)).astype("float32")
    info = _write(tmp_path / "w", X, list("aabba"))
    store = open_windows(tmp_path / "w")
    np.testing.assert_array_equal(store.X[:], X)
    assert list(store.meta["window_id"]) == [0, 1, 2, 3, 4]
    assert store.meta["subject"].tolist() == ["0", "1", "0", "1", "0"]
    assert info["classes"] == ["a", "b"] and info["class_counts"] == {"a": 3, "b": 2}
    assert store.key == info["key"]


def test_key_ignores_labels_but_not_signal(tmp_path):
    X = np.random.default_rng(0).normal(size=(4, 3, 50)).astype("float32")
    k1 = _write(tmp_path / "a", X, list("abab"))["key"]
    k2 = _write(tmp_path / "b", X, list("xyxy"))["key"]
    k3 = _write(tmp_path / "c", X * 2, list("abab"))["key"]
    k4 = _write(tmp_path / "d", X, list("abab"), sfreq=128.0)["key"]
    assert k1 == k2
    assert len({k1, k3, k4}) == 3


def test_nan_windows_are_refused_and_nothing_is_published(tmp_path):
    X = np.zeros((2, 3, 10), dtype="float32")
    X[1, 0, 3] = np.nan
    writer = WindowsStoreWriter(tmp_path / "w", CH, 100.0, 10)
    with pytest.raises(ValueError, match="NaN"):
        writer.append(X, [{"label": "a"}, {"label": "b"}])
    writer.abort()
    assert not (tmp_path / "w" / "windows.zarr").exists()
    with pytest.raises(FileNotFoundError, match="windows.json"):
        open_windows(tmp_path / "w")


def test_each_window_has_a_content_hash_and_old_stores_get_theirs_from_X(tmp_path):
    import hashlib

    import pandas as pd

    from eegfm.windows_store import content_hashes

    X = np.random.default_rng(0).normal(size=(70, 3, 50)).astype("float32")  # more than one chunk
    X[3] = X[1]  # a duplicated window
    _write(tmp_path / "w", X, ["a", "b"] * 35)
    store = open_windows(tmp_path / "w")
    assert store.meta["content_hash"][0] == hashlib.sha256(X[0].tobytes()).hexdigest()
    assert store.meta["content_hash"][3] == store.meta["content_hash"][1] != store.meta["content_hash"][2]
    written = content_hashes(store)
    store.meta.drop(columns="content_hash").to_csv(tmp_path / "w" / "windows.tsv", sep="\t", index=False)
    old = open_windows(tmp_path / "w")  # a store written before the column existed
    assert "content_hash" not in old.meta
    pd.testing.assert_series_equal(content_hashes(old), written, check_names=False)


def test_a_damaged_windows_store_names_the_file_and_the_rule(tmp_path):
    from pathlib import Path

    from eegfm.integrity import DamagedStoreError

    X = np.random.default_rng(0).normal(size=(130, 3, 50)).astype("float32")  # 3 chunks of 64 windows
    _write(tmp_path / "w", X, ["a"] * 130)
    np.testing.assert_array_equal(open_windows(tmp_path / "w").X[:], X)
    (tmp_path / "w/windows.zarr/X/c/1/0/0").unlink()
    store = open_windows(tmp_path / "w")
    np.testing.assert_array_equal(store.X[:64], X[:64])  # intact chunks still read
    with pytest.raises(DamagedStoreError) as err:
        store.X[60:70]
    message = str(err.value)
    assert str(Path(tmp_path / "w/windows.zarr")) in message and "chunk 1 (rows 64-127)" in message
    assert "rule windows" in message and "windows.json" in message


def test_windows_stores_with_their_arrays_swapped_are_refused(tmp_path):
    from eegfm.integrity import DamagedStoreError

    rng = np.random.default_rng(0)
    for name in ("a", "b"):  # same shape, other signals
        _write(tmp_path / name, rng.normal(size=(10, 3, 50)).astype("float32"), ["x"] * 10)
    (tmp_path / "a/windows.zarr/X").rename(tmp_path / "X")
    (tmp_path / "b/windows.zarr/X").rename(tmp_path / "a/windows.zarr/X")
    (tmp_path / "X").rename(tmp_path / "b/windows.zarr/X")
    for name in ("a", "b"):
        with pytest.raises(DamagedStoreError, match=r"written for store key .*rule windows"):
            open_windows(tmp_path / name)


def test_subjects_and_classes_named_like_missing_values_keep_their_names(tmp_path):
    """QA of the Python API: a class 'None' or a subject 'NA' came back as NaN (pandas' default NA strings), so
    the splits stopped on windows 'without a label'; only an empty cell is missing."""
    X = np.random.default_rng(0).normal(size=(4, 3, 50)).astype("float32")
    writer = WindowsStoreWriter(tmp_path / "w", CH, 100.0, 50)
    writer.append(X, [{"subject": s, "label": lab, "onset_s": float(i), "recording": "r"}
                      for i, (s, lab) in enumerate([("NA", "None"), ("NA", "null"), ("s2", "None"), ("s2", "NA")])])
    writer.close()
    meta = open_windows(tmp_path / "w").meta
    assert meta["subject"].tolist() == ["NA", "NA", "s2", "s2"]
    assert meta["label"].tolist() == ["None", "null", "None", "NA"]
    assert meta["session"].isna().all()  # never given: still missing


def test_windows_are_compressed_with_fast_lz4(tmp_path):
    import zarr

    writer = WindowsStoreWriter(tmp_path, ["C3", "C4"], 100.0, 50)
    X = np.random.default_rng(0).normal(scale=1e-5, size=(3, 2, 50)).astype(np.float32)
    writer.append(X, [{"subject": "01", "session": "", "run": "", "label": "a", "onset_s": i, "recording": "r"}
                      for i in range(3)])
    writer.close()
    (codec,) = zarr.open_array(str(tmp_path / "windows.zarr" / "X"), mode="r").compressors
    assert type(codec).__name__ == "BloscCodec" and codec.cname.value == "lz4" and codec.shuffle.value == "shuffle"
    np.testing.assert_array_equal(open_windows(tmp_path).X[:], X)
