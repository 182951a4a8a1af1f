"""The top-level models: :class:`Config` (a workflow run) and :class:`ExperimentConfig` (an in-memory experiment).

They gather the sections and hold the checks that span sections: fine-tuned
backbones are configured, pretraining recipes and the weights that use them
fit, the primary metric fits an evaluated dataset.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from eegfm.backbones.registry import REGISTRY
from eegfm.config.backbones import Backbone, Embedding
from eegfm.config.base import NAME_PATTERN, StrictModel
from eegfm.config.cv import CrossValidation
from eegfm.config.datasets import Dataset, SignalChecks
from eegfm.config.finetune import Finetune
from eegfm.config.pretrain import Pretrain
from eegfm.config.probe import Probe
from eegfm.config.report import REGRESSION_METRIC_NAMES, Report


class _TrainsConfiguredBackbones(StrictModel):
    """The checks both top-level models make on their ``backbones`` and ``finetune`` sections."""

    @field_validator("backbones", check_fields=False)  # the field is declared by each subclass
    @classmethod
    def _unique_backbones(cls, backbones: list[Backbone]) -> list[Backbone]:
        if not backbones:
            raise ValueError("at least one backbone is needed")
        labels = [b.label for b in backbones]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"backbone labels must be unique; repeated: {duplicated} (set 'id' to tell them apart)")
        return backbones

    @model_validator(mode="after")
    def _finetune_backbones_exist(self) -> _TrainsConfiguredBackbones:
        """Fine-tuned labels must name configured backbones that have something to train."""
        by_label = {b.label: b for b in self.backbones}
        unknown = [name for name in self.finetune.backbones if name not in by_label]
        if unknown:
            raise ValueError(
                f"finetune.backbones: {unknown} not among the configured backbones; allowed: {', '.join(by_label)}"
            )
        frozen_only = [name for name in self.finetune.backbones if REGISTRY[by_label[name].name].kind != "braindecode"]
        if frozen_only:
            raise ValueError(f"finetune.backbones: {frozen_only} are feature baselines with nothing to train")
        return self


class Config(_TrainsConfiguredBackbones):
    """Top-level configuration of an eegfm run."""

    results: str = Field("results", description="Folder for every output of the workflow.")
    cache: str = Field(
        "results/cache",
        description="Folder of the content-addressed embedding stores; share it between runs and "
        "datasets to reuse embeddings.",
    )
    seed: int = Field(0, ge=0, description="Seed for splits, model initialisation and estimators.")
    datasets: dict[str, Dataset] = Field(
        default={"synthetic": Dataset()},
        description="Datasets by name (letters, digits, '_', '-', '.').",
    )
    backbones: list[Backbone] = Field(
        default=[Backbone(name="bandpower"), Backbone(name="cbramod")],
        description="Backbones to embed every dataset with.",
    )
    embedding: Embedding = Field(default=Embedding(), description="Embedding computation.")
    probe: Probe = Field(default=Probe(), description="Probe on frozen embeddings.")
    finetune: Finetune = Field(default=Finetune(), description="Per-fold training regimes.")
    pretrain: dict[str, Pretrain] = Field(
        default={},
        description="Pretraining recipes by name; a backbone uses one with weights: 'pretrain:<name>'.",
    )
    report: Report = Field(default=Report(), description="Report settings.")

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: dict[str, Dataset]) -> dict[str, Dataset]:
        if not value:
            raise ValueError("at least one dataset is needed")
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"dataset name '{name}' must match {NAME_PATTERN}")
        return value

    @model_validator(mode="after")
    def _pretraining_is_wired(self) -> Config:
        for name, recipe in self.pretrain.items():
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"pretrain name '{name}' must match {NAME_PATTERN}")
            if not recipe.datasets:
                raise ValueError(f"pretrain.{name}.datasets: name at least one dataset (role: pretrain)")
            for ds in recipe.datasets:
                if ds not in self.datasets:
                    raise ValueError(f"pretrain.{name}.datasets: unknown dataset '{ds}'; allowed: {', '.join(self.datasets)}")
                if self.datasets[ds].role != "pretrain":
                    raise ValueError(f"pretrain.{name}.datasets: '{ds}' must have role: pretrain (it is evaluated)")
            if REGISTRY[recipe.backbone].kind != "braindecode":
                raise ValueError(f"pretrain.{name}.backbone: '{recipe.backbone}' is a feature baseline, nothing to train")
        for b in self.backbones:
            ref = b.pretrain_ref
            if ref is None:
                continue
            if ref not in self.pretrain:
                raise ValueError(
                    f"backbones ({b.label}).weights: no recipe '{ref}' under pretrain; allowed: "
                    f"{', '.join(self.pretrain) or '(none defined)'}"
                )
            recipe = self.pretrain[ref]
            if (recipe.backbone, recipe.kwargs) != (b.name, b.kwargs):
                raise ValueError(
                    f"backbones ({b.label}): name/kwargs {b.name} {b.kwargs} differ from pretrain.{ref} "
                    f"({recipe.backbone} {recipe.kwargs}); the weights would not fit"
                )
        if not any(d.role == "evaluate" for d in self.datasets.values()):
            raise ValueError("datasets: at least one dataset needs role: evaluate")
        return self

    @model_validator(mode="after")
    def _primary_metric_fits_a_dataset(self) -> Config:
        metric = self.report.primary_metric
        if isinstance(metric, str) and "primary_metric" in self.report.model_fields_set:  # the default fits any
            kind = "regression" if metric in REGRESSION_METRIC_NAMES else "classification"
            kinds = {d.target for d in self.datasets.values() if d.role == "evaluate"}
            if kind not in kinds:
                raise ValueError(
                    f"report.primary_metric: '{metric}' is a {kind} metric, but no evaluated dataset has target: "
                    f"{kind}; use a {' or '.join(sorted(kinds))} metric (regression: pearson_r, r2, mae; "
                    "classification: balanced_accuracy, accuracy, cohen_kappa, f1_macro, f1_weighted, roc_auc, auprc)"
                )
        return self

    def backbone(self, label: str) -> Backbone:
        """The backbone entry whose label is ``label``."""
        return next(b for b in self.backbones if b.label == label)


class ExperimentConfig(_TrainsConfiguredBackbones):
    """The sections an in-memory experiment (:class:`eegfm.api.Experiment`) takes: the workflow's own models
    and defaults, with the study design (a dataset's ``cv``) at the top level and no datasets."""

    cv: CrossValidation = Field(default=CrossValidation(), description="The study design (as datasets.<name>.cv).")
    target: Literal["classification", "regression"] = Field(
        "classification", description="What the metadata's labels are (as datasets.<name>.target).")
    backbones: list[Backbone] = Field(default=[Backbone(name="bandpower")], description="As backbones.")
    embedding: Embedding = Field(default=Embedding(), description="As embedding.")
    probe: Probe = Field(default=Probe(), description="As probe.")
    finetune: Finetune = Field(default=Finetune(regimes=[]), description="As finetune (no regime by default).")
    report: Report = Field(default=Report(), description="As report.")
    seed: int = Field(0, ge=0, description="As seed.")
    cache: str | None = Field(None, description="Folder of the embedding stores; null: <out_dir>/cache.")
    preprocessing: SignalChecks = Field(
        default=SignalChecks(), description="The signal checks of preprocessing (amplitude_range_uv, signal_check), "
        "applied to each recording's windows; X is not filtered or resampled.")
