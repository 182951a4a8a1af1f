"""The ``report`` section: the aggregated report, its primary metrics and its statistics."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from eegfm.config.base import StrictModel

ClassificationMetric = Literal[
    "balanced_accuracy", "accuracy", "cohen_kappa", "f1_macro", "f1_weighted", "roc_auc", "auprc"
]
RegressionMetric = Literal["pearson_r", "r2", "mae"]
#: the primary metric of each kind of target when the config names none for it
DEFAULT_PRIMARY = {"classification": "balanced_accuracy", "regression": "pearson_r"}
REGRESSION_METRIC_NAMES = RegressionMetric.__args__


class PrimaryMetrics(StrictModel):
    """The primary metric of each kind of target (a config with classification and regression datasets)."""

    classification: ClassificationMetric = Field(
        "balanced_accuracy", description="Primary metric of the datasets with target: classification."
    )
    regression: RegressionMetric = Field(
        "pearson_r", description="Primary metric of the datasets with target: regression."
    )


class Report(StrictModel):
    """The aggregated report and its statistics (seeded by the top-level seed)."""

    title: str = Field("eegfm benchmark", description="Title of report.html.")
    primary_metric: ClassificationMetric | RegressionMetric | PrimaryMetrics = Field(
        "balanced_accuracy",
        description="Metric of the figures, the chance tests, the model comparisons and the best-model "
        "headline; first in the summary. A classification metric (balanced_accuracy, accuracy, cohen_kappa, "
        "f1_macro, f1_weighted, roc_auc, auprc) applies to classification datasets, a regression metric "
        "(pearson_r, r2, mae) to regression datasets; the other kind keeps its default (balanced_accuracy, "
        "pearson_r). With both kinds of dataset, name both: {classification: ..., regression: ...}.",
    )
    n_permutations: int = Field(
        1000,
        ge=0,
        description="Label permutations (within the design's held-out unit: subject, session, run or block; no "
        "refitting) of the empirical chance level and permutation p-value; 0 skips the test. The smallest "
        "attainable p is 1/(n_permutations+1).",
    )
    n_bootstrap: int = Field(
        1000,
        ge=0,
        description="Bootstrap resamples of the confidence intervals (of held-out units, or of time blocks "
        "within them when there are fewer than ci_min_units).",
    )
    ci_min_units: int = Field(
        8,
        ge=2,
        description="Fewest held-out units (subjects, sessions, runs or blocks) whose resampling gives the "
        "confidence interval; with fewer, contiguous blocks of windows are resampled within each unit, and "
        "the interval is then conditional on these units (the report says so); where each unit carries a "
        "single label or target value (recording-level labels), there is no interval below this count.",
    )
    ci_level: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap confidence intervals.")
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Significance level of the model comparisons (Holm-corrected Wilcoxon, Friedman, Nemenyi "
        "critical difference); fewer folds than can reach it mark the comparisons exploratory.",
    )

    @property
    def primary_metrics(self) -> dict[str, str]:
        """The primary metric of each kind of target: ``{"classification": ..., "regression": ...}``."""
        if isinstance(self.primary_metric, PrimaryMetrics):
            return self.primary_metric.model_dump()
        kind = "regression" if self.primary_metric in REGRESSION_METRIC_NAMES else "classification"
        return {**DEFAULT_PRIMARY, kind: self.primary_metric}
