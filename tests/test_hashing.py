"""Content keys are stable under key order and sensitive to content."""

from eegfm.hashing import canonical_json, sha256_file, sha256_json


def test_key_order_does_not_change_the_hash():
    assert sha256_json({"a": 1, "b": [1, 2]}) == sha256_json({"b": [1, 2], "a": 1})
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_content_changes_the_hash(tmp_path):
    assert sha256_json({"a": 1}) != sha256_json({"a": 1.5})
    (tmp_path / "x").write_bytes(b"abc")
    assert sha256_file(tmp_path / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
