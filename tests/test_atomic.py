"""Atomic outputs: a failure mid-write leaves nothing a rerun would trust."""

import os
import subprocess

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


def _dead_pid() -> int:
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_writers_are_swept_by_the_next_write(tmp_path):

    dead = _dead_pid()
    stale_dir = tmp_path / f".tmp-store-{atomic.writer_tag(dead)}-abc123"
    stale_file = tmp_path / f".tmp-other.json-{atomic.writer_tag(dead)}-x_y9"
    live = tmp_path / f".tmp-store-{atomic.writer_tag(os.getppid())}-zzz"  # a live writer (our parent)
    foreign = tmp_path / ".tmp-store-0123abcd.1-q"  # another host: cannot tell, kept
    for p in (stale_dir, live, foreign):
        p.mkdir()
        (p / "part").write_text("x")
    stale_file.write_text("{")
    with atomic.atomic_dir(tmp_path / "store") as tmp:
        (tmp / "a").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["store", live.name, foreign.name])
    removed = atomic.sweep_stale(tmp_path / "store", any_writer=True)  # the key's lock holder: any writer's
    assert sorted(p.name for p in removed) == sorted([live.name, foreign.name])


def test_temporary_names_carry_the_writer(tmp_path):

    with atomic.atomic_file(tmp_path / "f.json") as tmp:
        assert tmp.name.startswith(f".tmp-f.json-{atomic.writer_tag()}-")


def test_a_folder_that_cannot_be_written_is_named_with_the_fix(read_only_folder):
    """A read-only results or cache folder gave a bare OSError [Errno 30] (issue 12 QA)."""
    from eegfm.locks import key_lock

    for attempt in (lambda: atomic.write_json(read_only_folder / "sub/metrics.json", {}),
                    lambda: atomic.write_json(read_only_folder / "metrics.json", {}),
                    lambda: key_lock(read_only_folder / "entry.zarr", what="entry").__enter__()):
        with pytest.raises(atomic.NotWritableError, match=rf"{read_only_folder}.* (is on a read-only file system|is "
                                                          r"not writable by this user).*point `results:`/`cache:`"):
            attempt()
