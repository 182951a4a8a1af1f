"""A stage's outputs are reused only for the same input bytes, settings and code, and while they are unchanged."""

from __future__ import annotations

from eegfm import provenance, stage_reuse


def _stage(tmp_path):
    source = tmp_path / "windows.tsv"
    source.write_text("window_id\tlabel\n0\tleft\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "folds.json").write_text('{"folds": []}')
    return source, out


def test_outputs_written_from_the_same_inputs_are_reused(tmp_path):
    source, out = _stage(tmp_path)
    key = stage_reuse.inputs_key([source, tmp_path / "missing.tsv"], {"seed": 0})
    assert not stage_reuse.reusable(out, key)  # no record yet
    stage_reuse.record(out, key, ["folds.json"])
    assert stage_reuse.reusable(out, stage_reuse.inputs_key([source, tmp_path / "missing.tsv"], {"seed": 0}))
    spelled = tmp_path / "out" / ".." / source.name  # another spelling of the same file
    assert stage_reuse.reusable(out, stage_reuse.inputs_key([spelled, tmp_path / "missing.tsv"], {"seed": 0}))


def test_the_key_follows_the_bytes_a_missing_file_the_settings_and_the_code(tmp_path, monkeypatch):
    source, _ = _stage(tmp_path)
    key = stage_reuse.inputs_key([source], {"seed": 0})
    assert stage_reuse.inputs_key([source], {"seed": 1}) != key
    assert stage_reuse.inputs_key([source, tmp_path / "history.tsv"], {"seed": 0}) != key
    (tmp_path / "history.tsv").write_text("epoch\n")
    assert stage_reuse.inputs_key([source, tmp_path / "history.tsv"], {"seed": 0}) != key
    source.write_text("window_id\tlabel\n0\tright\n")
    assert stage_reuse.inputs_key([source], {"seed": 0}) != key
    source.write_text("window_id\tlabel\n0\tleft\n")
    assert stage_reuse.inputs_key([source], {"seed": 0}) == key
    monkeypatch.setattr(provenance, "source_digest", lambda: "other code")
    assert stage_reuse.inputs_key([source], {"seed": 0}) != key


def test_an_edited_or_missing_output_a_bad_record_or_a_forgotten_one_recomputes(tmp_path):
    source, out = _stage(tmp_path)
    key = stage_reuse.inputs_key([source], {})
    stage_reuse.record(out, key, ["folds.json"])
    assert not stage_reuse.reusable(out, "another key")
    (out / "folds.json").write_text('{"folds": [1]}')
    assert not stage_reuse.reusable(out, key)
    (out / "folds.json").unlink()
    assert not stage_reuse.reusable(out, key)
    (out / "folds.json").write_text('{"folds": []}')
    assert stage_reuse.reusable(out, key)
    (out / stage_reuse.RECORD).write_text("[1, 2]")  # not a record
    assert not stage_reuse.reusable(out, key)
    stage_reuse.record(out, key, ["folds.json"])
    stage_reuse.forget(out)
    assert not stage_reuse.reusable(out, key) and not (out / stage_reuse.RECORD).exists()
