"""Per-chunk digests: written with the rows, checked as chunks are read."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from eegfm.integrity import ATTR, ChunkDigests, DamagedStoreError, VerifiedArray, chunk_digest, record


def _array(path, batches, chunk_rows=4):
    group = zarr.open_group(str(path), mode="w")
    array = group.create_array("X", shape=(0, 3, 5), chunks=(chunk_rows, 3, 5), dtype="float32")
    digests = ChunkDigests(chunk_rows, "float32")
    for batch in batches:
        array.append(batch, axis=0)
        digests.update(batch)
    record(array, digests)
    return zarr.open_group(str(path), mode="r")["X"]


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 3, 5)).astype("float32") for n in (3, 5, 2, 1)]  # 11 rows, batches across chunks


def test_digests_do_not_depend_on_batch_sizes(tmp_path, rows):
    X = np.concatenate(rows)
    array = _array(tmp_path / "a", rows)
    assert array.attrs[ATTR]["sha256"] == [chunk_digest(X[i : i + 4]) for i in (0, 4, 8)]
    assert _array(tmp_path / "b", [X]).attrs[ATTR] == array.attrs[ATTR]


def test_reads_return_the_values(tmp_path, rows):
    X = np.concatenate(rows)
    v = VerifiedArray(_array(tmp_path / "a", rows), name="X", fix="fix")
    assert v.shape == X.shape and len(v) == 11 and v.dtype == np.float32
    for key in (slice(None), slice(2, 7), slice(5, 6), slice(-3, None), slice(1, 10, 3)):
        np.testing.assert_array_equal(v[key], X[key])
    np.testing.assert_array_equal(v[5], X[5])
    np.testing.assert_array_equal(v[2:7, 1], X[2:7, 1])
    np.testing.assert_array_equal(np.asarray(v), X)
    assert v[4:4].shape == (0, 3, 5)
    for batch in ([9, 0, 5, 4, 9], np.array([10, -1]), [], [3, 4, 5]):  # a training batch: any order, repeats
        np.testing.assert_array_equal(v[batch], X[np.asarray(batch, dtype=int)])
    np.testing.assert_array_equal(v[[7, 1], 2], X[[7, 1], 2])
    with pytest.raises(IndexError, match=r"rows \[11\] out of range"):
        v[[0, 11]]


def test_a_batch_by_row_numbers_checks_the_chunks_it_reads(tmp_path, rows):
    _array(tmp_path / "a", rows)
    (tmp_path / "a/X/c/2/0/0").unlink()
    v = VerifiedArray(zarr.open_group(str(tmp_path / "a"), mode="r")["X"], name="S", fix="fix")
    assert v[[0, 7, 3]].shape == (3, 3, 5)
    with pytest.raises(DamagedStoreError, match="chunk 2"):
        v[[1, 9]]


def test_a_deleted_chunk_is_found_when_read_and_names_the_store(tmp_path, rows):
    _array(tmp_path / "a", rows)
    (tmp_path / "a/X/c/1/0/0").unlink()  # zarr would read it back as zeros
    v = VerifiedArray(zarr.open_group(str(tmp_path / "a"), mode="r")["X"], name="store S", fix="rebuild it")
    assert v[0:4].shape == (4, 3, 5)  # chunk 0 is fine
    with pytest.raises(DamagedStoreError, match=r"store S: chunk 1 \(rows 4-7\) does not match .*; rebuild it"):
        v[3:5]
    with pytest.raises(DamagedStoreError, match="chunk 1"):
        v.verify()


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4"])  # the embedding stores' codec, the windows stores'
def test_a_truncated_chunk_is_a_damaged_store_not_a_codec_error(tmp_path, rows, codec):
    """The audit's case: a truncated chunk file failed in the decoder ('error during blosc decompression: -1')
    before any digest was compared, naming neither the store nor the fix."""
    compressors = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=4) \
        if codec == "blosc-lz4" else "auto"
    group = zarr.open_group(str(tmp_path / "a"), mode="w")
    array = group.create_array("X", shape=(0, 3, 5), chunks=(4, 3, 5), dtype="float32", compressors=compressors)
    digests = ChunkDigests(4, "float32")
    X = np.concatenate(rows)
    array.append(X, axis=0)
    digests.update(X)
    record(array, digests)
    chunk = tmp_path / "a/X/c/1/0/0"
    chunk.write_bytes(chunk.read_bytes()[: len(chunk.read_bytes()) // 2])
    v = VerifiedArray(zarr.open_group(str(tmp_path / "a"), mode="r")["X"], name="store S", fix="rebuild it")
    with pytest.raises(DamagedStoreError, match=r"store S: (chunk 1 \()?rows 4-7\)? (cannot be decoded|does not "
                                                r"match).*truncated.*; rebuild it"):
        v[4:6]


def test_an_overwritten_chunk_is_found(tmp_path, rows):
    array = _array(tmp_path / "a", rows)
    writable = zarr.open_group(str(tmp_path / "a"), mode="r+")["X"]
    writable[9] = writable[9] + 1
    with pytest.raises(DamagedStoreError, match=r"chunk 2 \(rows 8-10\)"):
        VerifiedArray(array, name="S", fix="").verify()


def test_an_array_without_digests_is_not_trusted(tmp_path):
    group = zarr.open_group(str(tmp_path / "a"), mode="w")
    group.create_array("X", shape=(4, 2), chunks=(2, 2), dtype="float32")[:] = 1
    with pytest.raises(DamagedStoreError, match="records no chunk digests"):
        VerifiedArray(group["X"], name="S", fix="")


def test_digests_of_another_chunking_are_refused(tmp_path, rows):
    array = _array(tmp_path / "a", rows)
    meta = dict(array.attrs[ATTR])
    writable = zarr.open_group(str(tmp_path / "a"), mode="r+")["X"]
    writable.attrs[ATTR] = {**meta, "sha256": meta["sha256"][:2]}
    with pytest.raises(DamagedStoreError, match="mixed from two writes"):
        VerifiedArray(writable, name="S", fix="")


def test_digests_written_for_another_store_are_refused(tmp_path, rows):
    group = zarr.open_group(str(tmp_path / "a"), mode="w")
    array = group.create_array("X", shape=(11, 3, 5), chunks=(4, 3, 5), dtype="float32")
    array[:] = np.concatenate(rows)
    digests = ChunkDigests(4, "float32")
    digests.update(np.concatenate(rows))
    record(array, digests, key="k1")
    np.testing.assert_array_equal(VerifiedArray(array, name="S", fix="", key="k1")[:], np.concatenate(rows))
    with pytest.raises(DamagedStoreError, match=r"S: its array was written for store key k1, not this store's k2"):
        VerifiedArray(array, name="S", fix="", key="k2")
    array.attrs[ATTR] = {k: v for k, v in array.attrs[ATTR].items() if k != "key"}  # as written before keys
    with pytest.raises(DamagedStoreError, match="name no store key"):
        VerifiedArray(array, name="S", fix="", key="k1")
