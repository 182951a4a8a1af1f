"""Windows tables for split, probe and report tests, without any recording behind them."""

from __future__ import annotations

import numpy as np
import pandas as pd


def timed_meta(subjects=("01",), sessions=("1",), runs=("1", "2", "3"), n=12, stride=2.0):
    """Windows in time: every recording holds ``n`` windows ``stride`` s apart, classes alternating."""
    rows = []
    for s in subjects:
        for ses in sessions:
            for run in runs:
                for k in range(n):
                    rows.append({"subject": s, "session": ses, "run": run, "label": ("left", "right")[k % 2],
                                 "onset_s": k * stride, "recording": f"sub-{s}_ses-{ses}_run-{run}.edf"})
    meta = pd.DataFrame(rows)
    meta.insert(0, "window_id", np.arange(len(meta)))
    return meta


def aged_meta(ages, n=6, stride=2.0):
    """Windows of one recording per subject labelled by a recording-level number (``ages``: subject -> value,
    written as the windows store keeps it: the raw text)."""
    rows = [{"subject": s, "session": None, "run": None, "label": str(age), "onset_s": k * stride,
             "recording": f"sub-{s}.edf"} for s, age in ages.items() for k in range(n)]
    meta = pd.DataFrame(rows)
    meta.insert(0, "window_id", np.arange(len(meta)))
    return meta
