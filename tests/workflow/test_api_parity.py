"""The Python API and the workflow on the same windows: a fine-tuned regime, the summary and the statistics.

The probe-only parity is in test_workflow.py (its shared run); this one runs
the workflow once more with a head fine-tune (CBraMod, one layer, 2 epochs;
about 75 s on 2 cores) and the API on its windows store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.workflow.test_workflow import COST, ok, snakemake, tiny_config

pytestmark = pytest.mark.slow


def test_a_fine_tuned_regime_gives_the_same_metrics_summary_and_statistics_through_both(tmp_path):
    import eegfm
    from eegfm.windows_store import open_windows

    config = tiny_config(tmp_path / "cache", finetune={"backbones": ["cbramod"], "regimes": ["head"],
                                                       "optim": {"max_epochs": 2, "patience": 2}},
                         report={"n_permutations": 50, "n_bootstrap": 50})
    config["backbones"] = [{"name": "bandpower"}, {"name": "cbramod", "kwargs": {"n_layer": 1}}]
    ok(snakemake(tmp_path, config))
    store = open_windows(tmp_path / "results/tiny/windows")
    sections = {k: v for k, v in config.items() if k not in ("results", "datasets")}
    ours = eegfm.Experiment({**sections, "cv": config["datasets"]["tiny"]["cv"]}, out_dir=tmp_path / "api").run(
        np.asarray(store.X[:]), store.meta, sfreq=store.info["sfreq"], ch_names=store.info["ch_names"], name="tiny")
    theirs = eegfm.load_results(tmp_path / "results")
    assert set(theirs.metrics["regime"]) == {"probe", "head"} and (theirs.metrics["status"] == "ok").all()
    a = ours.metrics.set_index(["model", "regime", "fold"]).sort_index()
    b = theirs.metrics.set_index(["model", "regime", "fold"]).sort_index()
    assert list(a.columns) == list(b.columns) and list(a.index) == list(b.index)
    numbers = [c for c in b.columns if pd.api.types.is_float_dtype(b[c]) and c not in COST]
    pd.testing.assert_frame_equal(a[numbers], b[numbers], check_exact=False, atol=1e-6, rtol=0)
    keys = ["windows_key", "settings_hash", *(c for c in b.columns if c.startswith("version_"))]
    pd.testing.assert_frame_equal(a[keys], b[keys])
    for table in ("summary", "statistics"):
        x, y = getattr(ours, table), getattr(theirs, table)
        same = [c for c in y.columns if c not in COST]
        pd.testing.assert_frame_equal(x[same], y[same], check_exact=False, atol=1e-6, rtol=0)
