"""A writer killed with SIGKILL leaves only temporaries, and the next write of that key sweeps them (finding 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eegfm.config import Backbone, Embedding
from eegfm.embed import embed
from tests.reliability.conftest import kill_when

EMBED = (
    "import sys; from eegfm.config import Backbone, Embedding; from eegfm.embed import embed\n"
    "embed(sys.argv[1], Backbone(name='cbramod', kwargs={'n_layer': 4}), Embedding(batch_size=4, threads=1), 0,\n"
    "      sys.argv[2], sys.argv[3], 'tiny')\n"
)
WINDOWS = (
    "import sys; from eegfm.config import Dataset, Preprocessing, Windowing\n"
    "from eegfm.recordings import find_recordings; from eegfm.windows import build_windows\n"
    "recordings = find_recordings(Dataset(source='synthetic'), synthetic_root=sys.argv[1])\n"
    "build_windows(recordings, Preprocessing(sfreq=200.0), Windowing(tmin=0.5, length_s=2.0), out_dir=sys.argv[2])\n"
)

pytestmark = pytest.mark.slow  # subprocesses killed by pid, each importing torch


def _temporaries(folder: Path) -> list[Path]:
    return list(folder.rglob(".tmp-*"))


def test_a_killed_embedding_writer_leaves_a_temporary_that_the_next_write_sweeps(ft_data, tmp_path):
    cache = tmp_path / "cache"
    kill_when(["-c", EMBED, str(ft_data["windows"]), str(cache), str(tmp_path / "killed.json")],
              ready=lambda: bool(_temporaries(cache)))
    assert _temporaries(cache) and not list(cache.rglob("*.zarr"))  # killed mid-write: only the temporary
    pointer = embed(str(ft_data["windows"]), Backbone(name="cbramod", kwargs={"n_layer": 4}),
                    Embedding(batch_size=4, threads=1), 0, str(cache), str(tmp_path / "p.json"), "tiny")
    assert pointer["cache"] == "miss" and Path(pointer["store"]).is_dir()
    assert _temporaries(cache) == []


def test_a_killed_windows_job_leaves_a_temporary_that_the_rerun_sweeps(tmp_path):
    from eegfm.config import Dataset, Preprocessing, SyntheticSource, Windowing
    from eegfm.recordings import find_recordings
    from eegfm.synthetic import write_synthetic_bids
    from eegfm.windows import build_windows

    bids = write_synthetic_bids(tmp_path / "bids", SyntheticSource(n_subjects=6, trials_per_class=6))
    out = tmp_path / "results/tiny/windows"
    kill_when(["-c", WINDOWS, str(bids), str(out)], ready=lambda: out.is_dir() and bool(_temporaries(out)))
    assert _temporaries(out) and not (out / "windows.json").exists()
    recordings = find_recordings(Dataset(source="synthetic"), synthetic_root=str(bids))
    build_windows(recordings, Preprocessing(sfreq=200.0), Windowing(tmin=0.5, length_s=2.0), out_dir=out)
    assert (out / "windows.json").is_file() and _temporaries(out) == []
