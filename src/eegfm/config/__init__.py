"""Typed configuration: the single source of truth for every config key.

Every field carries a description and a default. The JSON Schema in
``workflow/schemas/config.schema.yaml`` is generated from these models
(``eegfm schema``) and a test keeps the two in sync, so the workflow validates
the same contract twice: JSON Schema at parse time and these pydantic models
(``extra="forbid"``), whose errors name the offending key and the allowed
values.

Each rule receives only the sub-model it uses (e.g. :class:`Windowing`), so a
change to an unrelated key does not re-run it.

One module per section of the YAML file:

- :mod:`~eegfm.config.base`: the strict base model, :class:`ConfigError`, :data:`NAME_PATTERN`;
- :mod:`~eegfm.config.datasets`: ``datasets.<name>`` (sources, preprocessing, windows);
- :mod:`~eegfm.config.cv`: ``datasets.<name>.cv``, the study design;
- :mod:`~eegfm.config.backbones`: ``backbones`` and ``embedding``;
- :mod:`~eegfm.config.probe`: ``probe``;
- :mod:`~eegfm.config.parallel`: processes and nodes of a training job (``finetune``, ``pretrain.<name>``);
- :mod:`~eegfm.config.finetune`: ``finetune``;
- :mod:`~eegfm.config.pretrain`: ``pretrain.<name>``;
- :mod:`~eegfm.config.report`: ``report``;
- :mod:`~eegfm.config.top_level`: :class:`Config` and :class:`ExperimentConfig`, with the checks that span sections;
- :mod:`~eegfm.config.load`: :func:`load_config`, error messages and the JSON Schema.

Import from here (``from eegfm.config import Finetune``), not from the
modules: the config is one thing to its users, which file holds a model is
this package's business, and every model is listed once below. (The modules
import each other directly, never this package, so there is no import circle.)
"""

from eegfm.config.backbones import PRETRAIN_PREFIX, Backbone, Embedding
from eegfm.config.base import NAME_PATTERN, ConfigError, StrictModel
from eegfm.config.cv import CrossValidation
from eegfm.config.datasets import (
    BidsSource,
    ChannelType,
    Dataset,
    FilesSource,
    Preprocessing,
    SignalChecks,
    SyntheticSource,
    Windowing,
)
from eegfm.config.finetune import REGIMES, Finetune, Head, Lora, Optimisation, Regime
from eegfm.config.load import check_probe, format_errors, json_schema, load_config
from eegfm.config.parallel import DataParallel
from eegfm.config.pretrain import Augment, Pretrain
from eegfm.config.probe import Probe
from eegfm.config.report import (
    DEFAULT_PRIMARY,
    REGRESSION_METRIC_NAMES,
    ClassificationMetric,
    PrimaryMetrics,
    RegressionMetric,
    Report,
)
from eegfm.config.top_level import Config, ExperimentConfig

__all__ = [
    # the whole config, and loading it
    "Config",
    "ConfigError",
    "ExperimentConfig",
    "check_probe",
    "format_errors",
    "json_schema",
    "load_config",
    # shared
    "NAME_PATTERN",
    "StrictModel",
    # datasets.<name>
    "BidsSource",
    "ChannelType",
    "CrossValidation",
    "Dataset",
    "FilesSource",
    "Preprocessing",
    "SignalChecks",
    "SyntheticSource",
    "Windowing",
    # backbones, embedding, probe
    "PRETRAIN_PREFIX",
    "Backbone",
    "Embedding",
    "Probe",
    # finetune, pretrain.<name>
    "REGIMES",
    "Augment",
    "DataParallel",
    "Finetune",
    "Head",
    "Lora",
    "Optimisation",
    "Pretrain",
    "Regime",
    # report
    "DEFAULT_PRIMARY",
    "REGRESSION_METRIC_NAMES",
    "ClassificationMetric",
    "PrimaryMetrics",
    "RegressionMetric",
    "Report",
]
