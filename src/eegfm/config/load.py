"""From a raw mapping (YAML, Snakemake's ``config``) to a validated :class:`~eegfm.config.top_level.Config`.

Errors become one ``key.path: message`` line each, naming the allowed keys for
a typo; the probe's estimators are checked here (through
:mod:`eegfm.estimators`, imported only when a config is loaded) and the JSON
Schema of the workflow is generated here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from eegfm.config.base import ConfigError
from eegfm.config.probe import Probe
from eegfm.config.top_level import Config


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at ``loc`` (for 'unknown key' messages)."""
    def is_model(tp: Any) -> bool:
        return isinstance(tp, type) and not hasattr(tp, "__origin__") and issubclass(tp, BaseModel)

    current: Any = model
    skip = 0  # loc parts that are list indices or dict keys, not field names
    for part in loc[:-1]:
        if skip:
            skip -= 1
            continue
        field = current.model_fields.get(part) if is_model(current) else None
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        skip = 1 if getattr(annotation, "__origin__", None) in (list, dict) else 0
        current = next((a for a in (annotation, *args) if is_model(a)), None)
        if current is None:
            return []
    return sorted(current.model_fields) if is_model(current) else []


def format_errors(err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Render pydantic errors as ``key.path: message`` lines, listing allowed keys for typos.

    ``model`` is the validated model (default :class:`Config`).
    """
    lines = []
    for item in err.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(part) for part in loc) or "<root>"
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(model or Config, loc)
            msg = f"unknown key '{loc[-1]}'" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        lines.append(f"  {key}: {msg}")
    return "invalid eegfm config:\n" + "\n".join(lines)


def load_config(raw: dict[str, Any] | None, *, checked_dir: str | os.PathLike | None = None) -> Config:
    """Validate a raw config mapping (e.g. Snakemake's ``config``) into a :class:`Config`.

    Parameters
    ----------
    raw
        The mapping read from YAML.
    checked_dir
        Optional folder remembering probe estimators that passed
        :func:`eegfm.estimators.resolve_estimator` (by estimator, parameters
        and scikit-learn version): checking one imports scikit-learn, a cost
        every ``snakemake`` invocation would otherwise pay at parse time.

    Raises
    ------
    ConfigError
        With one line per problem, naming the key and the allowed values.
    """
    try:
        cfg = Config.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None
    check_probe(cfg.probe, ("classification", "regression"), checked_dir=checked_dir)
    return cfg


def check_probe(probe: Probe, kinds: Sequence[str], *, checked_dir: str | os.PathLike | None = None) -> None:
    """The probe's estimator for each kind of target in ``kinds`` exists and takes its parameters.

    Checked here, not in the :class:`Probe` model, so importing the config
    stays cheap for every job (the check imports scikit-learn, once per
    ``checked_dir``: see :func:`eegfm.estimators.check_estimator`).

    Raises
    ------
    ConfigError
        Naming the key (``probe.estimator`` or ``probe.regressor``) and the problem.
    """
    from eegfm.estimators import KINDS, check_estimator

    chosen = {"classification": (probe.estimator, probe.params), "regression": (probe.regressor, probe.regressor_params)}
    for kind in kinds:
        try:
            check_estimator(*chosen[kind], kind, checked_dir=checked_dir)
        except ValueError as err:
            raise ConfigError(f"invalid eegfm config:\n  {KINDS[kind][1]}: {err}") from None


def json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`Config` (what ``workflow/schemas/config.schema.yaml`` holds)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
