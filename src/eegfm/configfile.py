"""Reading a config file: a YAML syntax error names the file, the line and the column.

Snakemake reads ``--configfile`` itself and reports a syntax error only as
"not valid JSON or YAML"; the workflow reads its default config file through
:func:`read_config_file` first, and ``eegfm check-config FILE`` (which
``make run CONFIG=FILE`` calls) does the same for any file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eegfm.config import ConfigError

__all__ = ["read_config_file"]


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a YAML (or JSON) config file holds.

    Raises
    ------
    ConfigError
        The file cannot be read, is not valid YAML (naming the line, the
        column, the problem and showing the line), or is not a mapping.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read ({err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and context_mark is not None:
            problem += f" ({context} at line {context_mark.line + 1})"
        snippet = mark.get_snippet() if mark is not None else None
        raise ConfigError(
            f"config file {where}: YAML syntax error: {problem}; fix the syntax there (indent with spaces, not tabs; "
            "close every bracket and quote; put a space after each ':')" + (f"\n{snippet}" if snippet else "")
        ) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} holds a {type(raw).__name__}, not a mapping of keys (e.g. 'datasets:')")
    return raw
