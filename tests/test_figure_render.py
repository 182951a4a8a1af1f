"""A figure renders to the same PNG and SVG bytes every time, one by one or in worker processes."""

from __future__ import annotations

import pandas as pd
import pytest

from eegfm import figure_render, figures


@pytest.fixture(scope="module")
def tables():
    rows = [{"dataset": "motor", "model": "cbramod", "regime": "probe", "fold": k, "status": "ok",
             "balanced_accuracy": score, "chance_balanced_accuracy": 0.5} for k, score in enumerate([0.6, 0.7, 0.8])]
    summary = [{"dataset": "motor", "model": "cbramod", "regime": "probe", "entry": "cbramod", "n_failed": 0,
                "balanced_accuracy_mean": 0.7, "balanced_accuracy_std": 0.1, "balanced_accuracy_pooled": 0.7,
                "balanced_accuracy_ci_low": 0.6, "balanced_accuracy_ci_high": 0.8, "balanced_accuracy_chance": 0.5,
                "chance_permutation_q": 0.6, "trainable_params": 130, "wall_time_s": 0.4}]
    return pd.DataFrame(rows), pd.DataFrame(summary)


def test_render_is_reproducible(tables):
    table, summary = tables
    first = figure_render.render(figures.scores_figure(table, summary, "balanced_accuracy"))
    second = figure_render.render(figures.scores_figure(table, summary, "balanced_accuracy"))
    assert first == second  # no dates, ids or jitter that change between runs


def test_render_all_in_worker_processes_gives_the_same_bytes(tables):
    table, summary = tables
    draw = {"scores": lambda: figures.scores_figure(table, summary, "balanced_accuracy"),
            "none": lambda: figures.placeholder("Nothing", "no fine-tuning runs"),
            "cost": lambda: figures.cost_figure(summary, "balanced_accuracy")}
    one_by_one = {name: figure_render.render(fig()) for name, fig in draw.items()}
    for workers in (1, 2):
        rendered = figure_render.render_all(draw, workers=workers)
        assert {name: (item["png"], item["svg"]) for name, item in rendered.items()} == one_by_one
        assert [item["placeholder"] for item in rendered.values()] == [None, "no fine-tuning runs", None]
