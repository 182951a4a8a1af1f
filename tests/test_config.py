"""Config validation: typos fail at parse time naming the key and the allowed values."""

from pathlib import Path

import pytest
import yaml

from eegfm.cli import config_keys, render_keys_table, render_schema
from eegfm.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_default_config_file_validates():
    cfg = load_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    assert [b.label for b in cfg.backbones] == ["bandpower", "cbramod_pre"]
    assert cfg.datasets["synthetic"].source == "synthetic"
    # the pretrained-vs-scratch comparison: pretraining on the source task, regimes on the target
    assert cfg.backbone("cbramod_pre").pretrain_ref == "cbramod_source"
    assert cfg.datasets["synthetic_source"].role == "pretrain"
    assert {"scratch", "head", "lora", "full"} <= set(cfg.finetune.regimes)


def test_pretraining_references_are_checked():
    base = {"datasets": {"t": {}, "s": {"role": "pretrain"}},
            "pretrain": {"p": {"backbone": "cbramod", "datasets": ["s"]}}}
    with pytest.raises(ConfigError, match="no recipe 'q' under pretrain"):
        load_config({**base, "backbones": [{"name": "cbramod", "weights": "pretrain:q"}]})
    with pytest.raises(ConfigError, match="differ from pretrain.p"):
        load_config({**base, "backbones": [{"name": "cbramod", "kwargs": {"n_layer": 2}, "weights": "pretrain:p"}]})
    with pytest.raises(ConfigError, match="must have role: pretrain"):
        load_config({**base, "pretrain": {"p": {"datasets": ["t"]}}})
    with pytest.raises(ConfigError, match=r"finetune.backbones: \['x'\] not among"):
        load_config({**base, "finetune": {"backbones": ["x"]}})


def test_empty_config_takes_documented_defaults():
    cfg = load_config({})
    assert cfg.datasets["synthetic"].windows.length_s == 4.0
    assert cfg.probe.estimator == "logistic_regression"


def test_the_target_kind_and_the_primary_metric_of_each_kind():
    regression = {"datasets": {"age": {"target": "regression"}}}
    cfg = load_config(regression)
    assert cfg.datasets["age"].target == "regression"
    assert load_config({}).datasets["synthetic"].target == "classification"  # the default
    # the default primary metric fits any config; a single metric sets its own kind, the other keeps its default
    assert cfg.report.primary_metrics == {"classification": "balanced_accuracy", "regression": "pearson_r"}
    assert load_config({**regression, "report": {"primary_metric": "mae"}}).report.primary_metrics == {
        "classification": "balanced_accuracy", "regression": "mae"}
    both = {"datasets": {"age": {"target": "regression"}, "task": {}},
            "report": {"primary_metric": {"classification": "roc_auc", "regression": "r2"}}}
    cfg = load_config(both)
    assert cfg.report.primary_metrics == {"classification": "roc_auc", "regression": "r2"}
    assert load_config(cfg.model_dump(mode="json")) == cfg  # a dumped config reads back
    assert load_config({"datasets": {"age": {"target": "regression", "windows": {"event_id": {"a": "1", "b": "2.5"}}}}})


def test_event_id_numbers_written_without_quotes_are_read_as_their_text():
    """Audit: YAML reads {T1: 1} and {1: left} as numbers, refused with "Input should be a valid string"."""
    import yaml

    raw = yaml.safe_load("datasets:\n  d:\n    target: regression\n    windows: {event_id: {T1: 1, T2: 2.5}}\n"
                         "  e:\n    windows: {stim_channel: Status, event_id: {1: left, 2: right}}\n")
    cfg = load_config(raw)
    assert cfg.datasets["d"].windows.event_id == {"T1": "1", "T2": "2.5"}
    assert cfg.datasets["e"].windows.event_id == {"1": "left", "2": "right"}
    with pytest.raises(ValueError, match="valid string"):  # a boolean (YAML yes/no) is no name
        load_config({"datasets": {"d": {"windows": {"event_id": {"T1": True}}}}})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"sed": 1}, ["sed", "unknown key", "allowed keys", "seed"]),
        ({"datasets": {"d": {"windows": {"lenght_s": 2}}}}, ["datasets.d.windows.lenght_s", "length_s", "stride_s"]),
        ({"backbones": [{"name": "cbramood"}]}, ["backbones.0.name", "unknown backbone 'cbramood'", "cbramod"]),
        ({"seed": "zero"}, ["seed", "integer"]),
        ({"datasets": {"d": {"cv": {"scheme": "kfold"}}}}, ["datasets.d.cv.scheme", "'group_kfold'", "'loso'"]),
        ({"datasets": {"d": {"source": "bids"}}}, ["bids.root"]),
        ({"datasets": {"d": {"preprocessing": {"l_freq": 40, "h_freq": 30}}}}, ["l_freq", "h_freq"]),
        ({"datasets": {"d": {"preprocessing": {"sfreq": 64, "h_freq": 45}}}}, ["Nyquist"]),
        ({"datasets": {"bad/name": {}}}, ["bad/name"]),
        ({"backbones": [{"name": "cbramod"}, {"name": "cbramod"}]}, ["unique", "cbramod", "id"]),
        ({"probe": {"estimator": "xgboost"}}, ["probe", "xgboost", "logistic_regression"]),
        ({"probe": {"params": {"CC": 1}}}, ["probe", "CC", "C"]),
        ({"datasets": {"d": {"target": "continuous"}}}, ["datasets.d.target", "'classification'", "'regression'"]),
        ({"datasets": {"d": {"target": "regression", "windows": {"event_id": {"T1": "left", "T2": "2.5"}}}}},
         ["datasets.d", "target: regression", "{'T1': 'left'}", "not finite numbers"]),
        ({"report": {"primary_metric": "r2"}},
         ["report.primary_metric", "'r2' is a regression metric", "no evaluated dataset has target: regression"]),
        ({"datasets": {"d": {"target": "regression"}}, "report": {"primary_metric": "balanced_accuracy"}},
         ["report.primary_metric", "'balanced_accuracy' is a classification metric"]),
        ({"report": {"primary_metric": {"regression": "balanced_accuracy"}}},
         ["report.primary_metric.PrimaryMetrics.regression", "'pearson_r'", "'r2'", "'mae'"]),
    ],
)
def test_bad_config_names_key_and_allowed_values(raw, expected):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    for fragment in expected:
        assert fragment in str(info.value)


def test_committed_schema_is_generated_from_the_models():
    committed = (REPO / "workflow/schemas/config.schema.yaml").read_text()
    assert committed == render_schema(), "run `eegfm schema --write`"


def test_every_key_has_description_and_default():
    keys = config_keys()
    assert len(keys) > 40
    for key, prop in keys:
        assert prop.get("description"), f"{key} has no description"
        assert "default" in prop, f"{key} has no default"


def test_config_readme_documents_every_key():
    readme = (REPO / "config/README.md").read_text()
    block = readme.split("<!-- keys:start -->\n")[1].split("<!-- keys:end -->")[0]
    assert block.strip() == render_keys_table().strip(), "regenerate with `eegfm config-keys`"


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ({"windows": {"marker_span": "next"}}, ["marker_span applies to mode: fixed"]),
        ({"windows": {"mode": "fixed", "marker_span": -1}}, ["marker_span", "positive"]),
        ({"windows": {"mode": "fixed", "marker_span": "last"}}, ["marker_span", "'next'"]),
        ({"source": "files", "files": {"paths": ["x"], "label_column": "g"}}, ["label_column needs files.metadata"]),
        ({"source": "files", "files": {"paths": ["x"], "pattern": r"sub-(?P<subject>\d+)_run-(?P<runs>\d+)"}},
         ["datasets.d.files.pattern", "unknown named group(s) 'runs'", "may name are subject, session, run"]),
        ({"preprocessing": {"amplitude_range_uv": [10, 1]}}, ["amplitude_range_uv", "0 < low < high"]),
        ({"preprocessing": {"channel_types": {"EOG1": "eyes"}}}, ["channel_types.EOG1", "'eog'"]),
        ({"preprocessing": {"keep_types": []}}, ["keep_types", "at least 1"]),
        ({"preprocessing": {"signal_check": "ignore"}}, ["signal_check", "'warn'"]),
    ],
)
def test_input_keys_are_checked(dataset, expected):
    with pytest.raises(ConfigError) as info:
        load_config({"datasets": {"d": dataset}})
    for fragment in expected:
        assert fragment in str(info.value)
