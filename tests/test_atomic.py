"""Atomic outputs: a failure mid-write leaves nothing a rerun would trust."""

import pytest

from eegfm import atomic
from eegfm.atomic import _umask


def test_atomic_dir_publishes_on_success(tmp_path):
    target = tmp_path / "store"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
        assert not target.exists()
    assert (target / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "store"
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_existing_only_when_complete(tmp_path):
    target = tmp_path / "store"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "v").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "v").write_text("new")
        raise RuntimeError
    assert (target / "v").read_text() == "old"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "v").write_text("new")
    assert (target / "v").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "x.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic.atomic_file(target) as tmp:
        tmp.write_text("{broken")
        raise RuntimeError
    assert target.read_text().strip() == '{\n  "a": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_outputs_follow_the_umask_not_mkstemp(tmp_path):
    atomic.write_text(tmp_path / "f", "x")
    with atomic.atomic_dir(tmp_path / "d"):
        pass
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~_umask()
