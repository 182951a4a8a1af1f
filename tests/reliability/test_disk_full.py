"""A full disk names the path and the free space, and leaves nothing half-written (finding 6 of issue 12).

The disk is a real one: a 2 MiB tmpfs mounted for the test (root only; CI runs as root).
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from eegfm.config import Backbone, Embedding, Preprocessing, Windowing


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB file system of its own."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs the suite as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazy: a failed writer may still hold a file


def _fill(mount, leave: int) -> None:
    """Take all but ``leave`` bytes of the file system."""
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    (mount / "ballast").write_bytes(b"\0" * max(free - leave, 0))


def _leftovers(folder) -> list[str]:
    return [p.name for p in folder.rglob(".tmp-*")]


def test_a_windows_store_on_a_full_disk(small_disk):
    from eegfm.config import Dataset, SyntheticSource
    from eegfm.recordings import find_recordings
    from eegfm.synthetic import write_synthetic_bids

    bids = write_synthetic_bids(small_disk.parent / "bids", SyntheticSource(n_subjects=6, trials_per_class=6))
    recordings = find_recordings(Dataset(source="synthetic"), synthetic_root=str(bids))
    out = small_disk / "results/tiny/windows"
    from eegfm.windows import build_windows

    with pytest.raises(OSError) as err:  # 108 windows x 19 channels x 400 samples do not fit in 2 MiB
        build_windows(recordings, Preprocessing(sfreq=200.0), Windowing(tmin=0.5, length_s=2.0), out_dir=out)
    message = str(err.value)
    assert type(err.value).__name__ == "DiskFullError" and err.value.errno == errno.ENOSPC
    assert f"disk full while writing {out / 'windows.zarr'}" in message
    assert "free of 2.0 MiB on the file system" in message and "results:" in message
    assert not _leftovers(small_disk) and not (out / "windows.json").exists()


def test_an_embedding_store_on_a_full_disk(ft_data, small_disk, tmp_path):
    from eegfm.embed import embed

    _fill(small_disk, leave=16 << 10)
    cache = small_disk / "cache"
    with pytest.raises(OSError, match=rf"disk full while writing {cache}/embeddings/\w\w/\w+\.zarr: "
                       r"\d+(\.\d)? (B|KiB) free of 2\.0 MiB"):
        embed(str(ft_data["windows"]), Backbone(name="bandpower"), Embedding(batch_size=16), 0, str(cache),
              str(tmp_path / "p.json"), "tiny")
    assert not _leftovers(small_disk) and not (tmp_path / "p.json").exists()


def test_a_pretraining_checkpoint_on_a_full_disk(small_disk):
    import torch

    from eegfm import atomic

    _fill(small_disk, leave=64 << 10)
    with pytest.raises(OSError, match=rf"disk full while writing {small_disk}/resume/step-000002: .* free"):
        with atomic.atomic_dir(small_disk / "resume/step-000002") as tmp:
            torch.save({"w": torch.zeros(256, 1024)}, tmp / "state.pt")  # 1 MiB
    assert not _leftovers(small_disk)
