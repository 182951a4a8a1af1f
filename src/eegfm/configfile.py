"""Reading a config file: a YAML syntax error names the file, the line and the column.

Snakemake reads ``--configfile`` itself and reports a syntax error only as
"not valid JSON or YAML"; the workflow reads its default config file through
:func:`read_config_file` first, and ``eegfm check-config FILE`` (which
``make run CONFIG=FILE`` calls) does the same for any file.

A key written twice in one mapping (a second ``datasets:`` or ``probe:``
block pasted below the first) is an error naming both lines: YAML loaders,
Snakemake's included, silently keep the last one, which would drop the
first block's datasets or settings from the run. The workflow re-reads
every ``--configfile`` for this (Snakemake has parsed them already).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eegfm.config import ConfigError

__all__ = ["read_config_file"]


def _unique_keys_loader(path: Path):
    """A safe YAML loader that refuses a key written twice in one mapping (merge keys ``<<`` may be overridden)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the constructor below reports it
                continue
            if first != key_node.start_mark.line + 1:
                raise ConfigError(
                    f"config file {path}, line {key_node.start_mark.line + 1}: key {key!r} is written twice in the "
                    f"same mapping (first on line {first}); YAML would silently keep only the last one, dropping "
                    "the other's settings: merge the two into one"
                )
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a YAML (or JSON) config file holds.

    Raises
    ------
    ConfigError
        The file cannot be read, is not valid YAML (naming the line, the
        column, the problem and showing the line), holds a key twice in one
        mapping (naming both lines), or is not a mapping.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read ({err})") from None
    try:
        raw = yaml.load(text, Loader=_unique_keys_loader(path))  # noqa: S506 - a SafeLoader subclass
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
