"""Each report figure draws from small synthetic inputs, renders to PNG and SVG reproducibly, and says
in words when there is nothing to draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegfm import comparisons, data_figures, figure_render, figures, stats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENTRIES = [("bandpower", "probe"), ("cbramod", "probe"), ("cbramod", "full"), ("cbramod", "scratch")]


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    rows, summary = [], []
    for model, regime in ENTRIES:
        scores = rng.uniform(0.4, 0.9, 3)
        for fold, score in enumerate(scores):
            failed = (model, regime, fold) == ("cbramod", "full", 1)
            rows.append({"dataset": "motor", "model": model, "regime": regime, "fold": fold,
                         "status": "failed" if failed else "ok", "balanced_accuracy": np.nan if failed else score,
                         "chance_balanced_accuracy": 0.5})
        summary.append({
            "dataset": "motor", "model": model, "regime": regime, "entry": figures.entry_label(model, regime),
            "n_failed": int(model == "cbramod" and regime == "full"), "balanced_accuracy_mean": scores.mean(),
            "balanced_accuracy_std": scores.std(ddof=1), "balanced_accuracy_pooled": scores.mean(),
            "balanced_accuracy_ci_low": scores.min(), "balanced_accuracy_ci_high": scores.max(),
            "balanced_accuracy_chance": 0.5, "chance_permutation_q": 0.6,
            "trainable_params": {"probe": 130, "full": 4e6, "scratch": 4e6}[regime],
            "wall_time_s": {"probe": 0.4, "full": 60.0, "scratch": 30.0}[regime],
        })
    return pd.DataFrame(rows), pd.DataFrame(summary)


def _check(fig, placeholder=False):
    png, svg = figure_render.render(fig)
    assert png.startswith(PNG_MAGIC) and b"<svg" in svg
    assert (getattr(fig, "eegfm_placeholder", None) is not None) == placeholder
    return png, svg


def test_scores_figure_has_one_panel_per_dataset_with_legend(tables):
    table, summary = tables
    fig = figures.scores_figure(table, summary, "balanced_accuracy")
    _check(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Balanced accuracy" and "motor" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bandpower", "cbramod", "cbramod [full]",
                                                             "cbramod [scratch]"]
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"fold", "chance", "pooled, 95% CI", "permutation 95th pct."} <= labels
    assert any(t.get_text() == "1 failed" for t in ax.texts)


def test_training_curves_from_synthetic_histories(tables):
    _, summary = tables
    rng = np.random.default_rng(1)

    def history(n):
        return pd.DataFrame({"epoch": np.arange(n), "val_balanced_accuracy": rng.uniform(0.4, 0.8, n),
                             "val_loss": rng.uniform(0.5, 1.0, n)})

    histories = {("motor", "cbramod", "full"): [history(5), history(7)],
                 ("motor", "cbramod", "scratch"): [history(6), history(6), history(4)]}
    fig = figures.training_curves_figure(histories, summary, "balanced_accuracy")
    _check(fig)
    curve, bars, cost = fig.axes[:3]
    assert curve.get_xlabel() == "epoch" and curve.get_ylabel() == "validation balanced accuracy"
    assert [line.get_label() for line in curve.get_lines()] == ["cbramod [full]", "cbramod [scratch]"]
    np.testing.assert_array_equal(curve.get_lines()[0].get_xdata(), np.arange(7))  # epochs of the longest fold
    assert len(bars.patches) == len(summary)
    assert cost.get_xscale() == "log" and "trainable parameters" in cost.get_xlabel()
    _check(figures.training_curves_figure({}, summary, "balanced_accuracy"), placeholder=True)


def test_an_undefined_validation_r2_falls_back_to_the_validation_loss(tables):
    """Age from one validation subject: val_r2 is undefined every epoch; the panel was drawn empty under
    'validation R²'."""
    _, summary = tables
    history = pd.DataFrame({"epoch": [0, 1, 2], "val_loss": [0.9, 0.8, 0.85], "val_r2": [np.nan] * 3,
                            "val_pearson_r": [np.nan] * 3})
    fig = figures.training_curves_figure({("motor", "cbramod", "full"): [history, history]}, summary,
                                         "balanced_accuracy")
    curve = fig.axes[0]
    assert curve.get_ylabel() == "validation loss"
    np.testing.assert_allclose(curve.get_lines()[0].get_ydata(), [0.9, 0.8, 0.85])


def test_confusion_matrices_are_row_normalised():
    frame = pd.DataFrame({"subject": ["1"] * 4 + ["2"] * 4, "y_true": ["a", "a", "b", "b"] * 2,
                          "y_pred": ["a", "b", "b", "b"] * 2})
    pooled = stats.pool_predictions([(0, frame)], ["a", "b"])
    fig = figures.confusion_figure({("d", "m", "probe"): pooled, ("d", "x", "probe"): None})
    _check(fig)
    image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(image, [[0.5, 0.5], [0.0, 1.0]])
    assert fig.axes[0].get_xlabel() == "predicted" and fig.axes[0].get_ylabel() == "true"
    _check(figures.confusion_figure({}), placeholder=True)


def test_critical_difference_diagram():
    ranks = np.array([1.2, 2.1, 2.9, 3.8])
    results = {"motor": {"entries": ["a", "b", "c", "d"], "ranks": ranks, "cd": 1.0, "n": 6, "p_value": 0.01,
                         "cliques": comparisons.cliques(ranks, 1.0), "exploratory": False}}
    fig = figures.critical_difference_figure(results)
    _check(fig)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"a (1.20)", "d (3.80)", "CD = 1.00"} <= texts
    assert "Friedman p = 0.010" in fig.axes[0].get_title()
    _check(figures.critical_difference_figure({}), placeholder=True)


def test_cost_frontier(tables):
    _, summary = tables
    fig = figures.cost_figure(summary, "balanced_accuracy")
    _check(fig)
    assert all(ax.get_xscale() == "log" for ax in fig.axes[:2])
    assert figures.human_number(4e6) == "4M" and figures.human_number(1500) == "1.5k"
    assert figures.human_number(0.25) == "0.25"
    _check(figures.cost_figure(summary.drop(columns=["trainable_params", "wall_time_s"]), "balanced_accuracy"),
           placeholder=True)


def test_embeddings_figure_colours_by_label_and_subject():
    rng = np.random.default_rng(0)
    item = {"dataset": "motor", "backbone": "bandpower", "coords": rng.normal(size=(40, 2)),
            "explained": (0.4, 0.2), "labels": np.repeat(["a", "b"], 20), "subjects": np.tile(["1", "2", "3", "4"], 10),
            "n_total": 100}
    fig = data_figures.embeddings_figure([item])
    _check(fig)
    by_label, by_subject = fig.axes[:2]
    assert by_label.get_xlabel() == "PC1 (40.0% var.)" and "by label" in by_label.get_title()
    assert len(by_label.collections) == 2 and len(by_subject.collections) == 4
    assert "40 of 100 windows" in by_subject.get_title()
    _check(data_figures.embeddings_figure([]), placeholder=True)


def test_embeddings_of_a_run_wise_design_are_coloured_by_run():
    """One subject, three runs (leave-one-run-out): the right panel was one colour 'by subject'."""
    rng = np.random.default_rng(0)
    item = {"dataset": "motor", "backbone": "bandpower", "coords": rng.normal(size=(30, 2)),
            "explained": (0.4, 0.2), "labels": np.tile(["a", "b"], 15), "subjects": np.repeat("S001", 30),
            "groups": np.repeat(["S001/1/1", "S001/1/2", "S001/1/3"], 10), "group_word": "run", "n_total": 30}
    by_run = data_figures.embeddings_figure([item]).axes[1]
    assert "by run" in by_run.get_title() and len(by_run.collections) == 3


def test_channel_adaptation_and_leakage_panels():
    pointers = [{"dataset": "motor", "backbone": "labram",
                 "adaptation": {"mapped": ["C3", "C4"], "interpolated": ["Cz"], "zero_filled": ["Pz", "Oz"],
                                "dropped": ["EOG"]}},
                {"dataset": "motor", "backbone": "bandpower", "adaptation": {}}]
    assert data_figures.adaptation_counts(pointers[0]["adaptation"]) == {
        "mapped": 2, "bipolar": 0, "interpolated": 1, "zero_filled": 2, "projected": 0, "dropped": 1}
    fig = data_figures.channel_adaptation_figure(pointers)
    _check(fig)
    assert fig.axes[0].get_xlabel() == "channels"
    _check(data_figures.channel_adaptation_figure([]), placeholder=True)

    folds = {"motor": {"scheme": "group_kfold", "group_by": "subject", "folds": [
        {"fold": 0, "audit": {"train_groups": ["1", "2", "3"], "test_groups": ["4"]}},
        {"fold": 1, "audit": {"train_groups": ["1", "2", "4"], "test_groups": ["3", "4"]}},  # leaky
    ]}}
    fig = data_figures.leakage_figure(folds)
    _check(fig)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["overlap 0", "overlap 1"]
    assert fig.axes[0].get_ylabel() == "subjects"
    _check(data_figures.leakage_figure({}), placeholder=True)


def test_run_wise_folds_of_one_subject_are_drawn_as_runs_without_overlap():
    """Finding 2: run-wise CV was drawn as subject overlap 1 (red) on every fold although folds.json said 0."""
    from eegfm.config import CrossValidation
    from eegfm.splits import make_folds
    from tests.windows_tables import timed_meta

    folds = make_folds(timed_meta(), CrossValidation(scheme="loso", group_by="run"), seed=0)  # the config
    assert folds["audit"]["overlap_total"] == 0
    fig = data_figures.leakage_figure({"motor": folds})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["overlap 0"] * 3
    assert ax.get_ylabel() == "runs" and ax.get_title() == "motor: loso, held-out runs"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train runs", "test runs", "in both"]
    # a folds.json written before held-out units were recorded counts its group_by
    old = {k: v for k, v in folds.items() if k != "unit"}
    assert data_figures.leakage_figure({"motor": old}).axes[0].get_ylabel() == "runs"
    lor = make_folds(timed_meta(), CrossValidation(scheme="leave_one_run_out"), seed=0, window_s=2.0)
    assert data_figures.leakage_figure({"motor": lor}).axes[0].get_title() == "motor: leave_one_run_out, held-out runs"


def test_predicted_vs_true_titles_round_as_the_tables():
    """The panel said 'r = 0.57, R² = 0.30, MAE = 11.74' beside tables with 0.571, 0.304 and 11.741."""
    from eegfm.regression_figures import predicted_vs_true_figure

    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(6), 5)
    y = np.repeat([23.0, 31.0, 45.0, 52.0, 60.0, 71.0], 5)
    frame = pd.DataFrame({"window_id": np.arange(30), "subject": subject.astype(str), "session": "1", "run": "1",
                          "y_true": y, "y_pred": y + rng.normal(0, 9, 30)})
    pooled = stats.pool_regression([(0, frame)])
    scores = stats.pooled_scores(pooled)
    title = predicted_vs_true_figure({("ages", "bandpower", "probe"): pooled}).axes[0].get_title()
    assert f"r = {scores['pearson_r']:.3f}, R² = {scores['r2']:.3f}, MAE = {scores['mae']:.3f}\n30 windows, " \
           "6 subjects" in title


def _inside(fig, artist) -> bool:
    """Whether a drawn artist lies within the figure (the saved PNG would not clip it)."""
    fig.canvas.draw()
    box, page = artist.get_window_extent(), fig.bbox
    return box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1


def test_one_dataset_of_two_models_keeps_its_legend_and_titles_inside_the_figure(tables):
    """The audit's single-dataset report: the legend's 'pooled, 95% CI' was cut off at the right edge, and the
    predicted-vs-true title ('... (60 windows, 6 subjects)') too."""
    from eegfm.regression_figures import predicted_vs_true_figure

    table, summary = tables
    keep = summary["regime"] == "probe"
    fig = figures.scores_figure(table[table["regime"] == "probe"], summary[keep], "balanced_accuracy")
    assert _inside(fig, fig.legends[0]) and _inside(fig, fig._suptitle)
    subject = np.repeat(np.arange(6), 10)
    y = np.repeat([23.0, 31.0, 45.0, 52.0, 60.0, 71.0], 10)
    frame = pd.DataFrame({"window_id": np.arange(60), "subject": subject.astype(str), "session": "1", "run": "1",
                          "y_true": y, "y_pred": y + 3.0})
    fig = predicted_vs_true_figure({("ages", "cbramod", "probe"): stats.pool_regression([(0, frame)])})
    assert _inside(fig, fig.axes[0].title) and _inside(fig, fig._suptitle)
