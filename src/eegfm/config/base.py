"""What every config model shares: strict, frozen pydantic models and the error they raise."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: Names a user gives (datasets, backbone ids, pretraining recipes): they become folder names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class ConfigError(ValueError):
    """A config that does not validate; the message names keys and allowed values."""


class StrictModel(BaseModel):
    """A config section: an unknown key is an error (``extra="forbid"``) and a validated section never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
