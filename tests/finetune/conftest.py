"""A small real dataset for fine-tuning tests: synthetic BIDS -> MNE windows -> subject folds."""

from __future__ import annotations

import json

import pytest

from eegfm.config import CrossValidation, Dataset, Preprocessing, SyntheticSource, Windowing


@pytest.fixture(scope="session")
def ft_data(tmp_path_factory):
    """Windows store + folds.json of 6 synthetic subjects, 3 classes, 2-s windows at 200 Hz (3 folds)."""
    from eegfm.recordings import find_recordings
    from eegfm.splits import make_folds, write_folds
    from eegfm.synthetic import write_synthetic_bids
    from eegfm.windows import build_windows
    from eegfm.windows_store import open_windows

    root = tmp_path_factory.mktemp("ft")
    syn = SyntheticSource(n_subjects=6, n_source_subjects=2, trials_per_class=6)
    bids = write_synthetic_bids(root / "bids", syn)
    ds = Dataset(source="synthetic", synthetic=syn)
    info = build_windows(
        find_recordings(ds, synthetic_root=str(bids)),
        Preprocessing(sfreq=200.0),
        Windowing(tmin=0.5, length_s=2.0),
        out_dir=root / "windows",
    )
    store = open_windows(root / "windows")
    folds = make_folds(store.meta, CrossValidation(n_splits=3), seed=0)
    folds["windows_key"] = info["key"]
    write_folds(root / "folds.json", folds, store.meta)
    return {"windows": root / "windows", "folds": root / "folds.json", "info": json.loads((root / "windows/windows.json").read_text())}
