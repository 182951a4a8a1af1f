"""The report's chance verdicts: several models of one dataset are tested against chance together (Holm)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eegfm.report import collect_warnings
from eegfm.report_stats import adjust_chance_tests, statistics_table, verdict

SCHEME = "labels shuffled within subjects"


def _entry(p: float, note: str | None = None) -> dict:
    return {"n_windows": 120, "p_permutation": p, "p_min": 1 / 200, "permutation_scheme": SCHEME,
            "permutation_note": note}


def test_the_best_of_nine_models_is_above_chance_only_by_its_holm_adjusted_p():
    # an audit found 4 of 10 null datasets (random labels) headlined "above chance": the best of nine
    # models was judged by its own p; under the null min(p) < 0.05 happens about 1 - 0.95**9 = 37 % of the time
    entries = {("d", f"m{i}", "probe"): _entry(p) for i, p in enumerate([0.01, *np.linspace(0.2, 0.9, 8)])}
    adjust_chance_tests(entries)
    best = entries["d", "m0", "probe"]
    assert best["n_chance_tests"] == 9 and best["p_permutation_holm"] == pytest.approx(0.09)
    assert verdict(best, 0.05) == ("not distinguishable from chance (permutation p = 0.010, Holm-adjusted over the "
                                   f"9 models tested p = 0.090, {SCHEME})")
    strong = {("d", f"m{i}", "probe"): _entry(p) for i, p in enumerate([0.005, *np.linspace(0.2, 0.9, 8)])}
    adjust_chance_tests(strong)
    assert verdict(strong["d", "m0", "probe"], 0.05).startswith("above chance (permutation p = 0.005, Holm-adjusted "
                                                                "over the 9 models tested p = 0.045")


def test_the_family_is_per_dataset_and_untestable_entries_are_not_counted():
    entries = {("a", "x", "probe"): _entry(0.01), ("a", "y", "probe"): _entry(0.02),
               ("a", "z", "probe"): _entry(0.05, note="too few subjects for p < 0.05"),
               ("a", "w", "probe"): {"n_windows": math.nan, "p_permutation": math.nan},
               ("b", "x", "probe"): _entry(0.03)}
    adjust_chance_tests(entries)
    assert entries["a", "x", "probe"]["n_chance_tests"] == 2
    assert entries["a", "x", "probe"]["p_permutation_holm"] == pytest.approx(0.02)
    assert entries["a", "y", "probe"]["p_permutation_holm"] == pytest.approx(0.02)
    assert math.isnan(entries["a", "z", "probe"]["p_permutation_holm"])
    # one model alone: its own p decides, and the verdict says nothing about an adjustment
    assert entries["b", "x", "probe"]["n_chance_tests"] == 1
    assert verdict(entries["b", "x", "probe"], 0.05) == f"above chance (permutation p = 0.030, {SCHEME})"


def _summary_rows(ps: list[float]) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(ps):
        rows.append({"dataset": "d", "entry": f"m{i}", "balanced_accuracy_pooled": 0.6, "p_permutation": p,
                     "n_permutations": 199, "permutation_note": None, "permutation_scheme": SCHEME,
                     "chance_permutation": 0.5, "chance_permutation_q": 0.55, "p_binomial": p, "binomial_p0": 0.5,
                     "majority_class": "a", "binomial_trials": "windows", "binomial_n": 120,
                     "binomial_accuracy": 0.6, "n_windows": 120, "p_min": 1 / 200})
    entries = {("d", r["entry"], "probe"): r for r in rows}
    adjust_chance_tests(entries)
    return pd.DataFrame(rows)


def test_statistics_tsv_marks_chance_tests_significant_by_the_adjusted_p():
    summary = _summary_rows([0.01, 0.02, 0.5])
    stats = statistics_table(pd.DataFrame({"dataset": [], "model": [], "fold": []}), summary,
                             "balanced_accuracy", 0.05)
    perm = stats[stats["test"] == "permutation"].set_index("entry_a")
    assert perm["p_holm"].tolist() == pytest.approx([0.03, 0.04, 0.5])
    assert perm["significant"].tolist() == [True, True, False]
    binom = stats[stats["test"] == "binomial"].set_index("entry_a")
    assert binom["p_holm"].tolist() == pytest.approx([0.03, 0.04, 0.5])
    nine = _summary_rows([0.006, *[0.5] * 8])  # raw p below alpha, Holm-adjusted 0.054
    stats = statistics_table(pd.DataFrame({"dataset": [], "model": [], "fold": []}), nine, "balanced_accuracy", 0.05)
    assert not stats.loc[stats["test"] == "permutation", "significant"].any()


def test_the_report_warns_when_the_permutations_cannot_reach_alpha_after_holm():
    summary = _summary_rows([0.005] * 10 + [0.5] * 2)  # 12 models: smallest adjusted p 12/200 = 0.06
    table = pd.DataFrame({"dataset": ["d"], "model": ["m0"], "regime": ["probe"], "fold": [0], "status": ["ok"]})
    warnings = collect_warnings(table, summary.assign(n_ok=1), [], [], 0.05)
    assert any("12 models are tested against chance together (Holm)" in w and "smallest adjusted p is 0.060" in w
               and "report.n_permutations to at least 240" in w for w in warnings), warnings
    assert not [w for w in collect_warnings(table, _summary_rows([0.005, 0.5]).assign(n_ok=1), [], [], 0.05)
                if "Holm" in w]
