"""Command line: ``eegfm schema`` and ``eegfm backbones``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

SCHEMA_PATH = Path("workflow/schemas/config.schema.yaml")
CONFIG_README = Path("config/README.md")
_KEYS_START, _KEYS_END = "<!-- keys:start -->\n", "<!-- keys:end -->"


def render_schema() -> str:
    """The config JSON Schema as YAML, as committed in ``workflow/schemas``."""
    from eegfm.config import json_schema

    header = "# Generated from src/eegfm/config.py by `eegfm schema --write`; do not edit by hand.\n"
    return header + yaml.safe_dump(json_schema(), sort_keys=False, width=100)


def _leaf_keys(schema: dict, node: dict, prefix: str = ""):
    """(dotted key, property schema) for every key of the config, depth first."""
    defs = schema.get("$defs", {})
    for name, prop in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        yield key, prop
        ref = prop.get("$ref") or next((a["$ref"] for a in prop.get("anyOf", []) if "$ref" in a), None)
        target = prop.get("additionalProperties") if prop.get("type") == "object" else None
        items = prop.get("items", {})
        if ref:
            yield from _leaf_keys(schema, defs[ref.split("/")[-1]], key + ".")
        elif isinstance(target, dict) and "$ref" in target:  # dict of models, e.g. datasets.<name>
            yield from _leaf_keys(schema, defs[target["$ref"].split("/")[-1]], key + ".<name>.")
        elif "$ref" in items:  # list of models, e.g. backbones[]
            yield from _leaf_keys(schema, defs[items["$ref"].split("/")[-1]], key + "[].")


def config_keys() -> list[tuple[str, dict]]:
    """Every config key with its schema (description, default, type)."""
    from eegfm.config import json_schema

    schema = json_schema()
    return list(_leaf_keys(schema, schema))


def render_keys_table() -> str:
    """Markdown table of every config key, its default and description."""
    import json

    lines = ["| key | default | description |", "|---|---|---|"]
    for key, prop in config_keys():
        default = json.dumps(prop.get("default"), separators=(", ", ": "))
        if len(default) > 60:
            default = "see config/config.yaml"
        lines.append(f"| `{key}` | `{default}` | {prop.get('description', '').replace('|', '/')} |")
    return "\n".join(lines)


def backbones_table() -> str:
    """The backbone registry as a plain-text table."""
    from eegfm.backbones.registry import REGISTRY

    header = ("name", "kind", "class", "sfreq", "window", "channels", "pretrained", "offline")
    rows = [
        (
            spec.name,
            spec.kind,
            spec.model_class or "-",
            f"{spec.sfreq:g}" if spec.sfreq else "any",
            f"={spec.n_times_fixed}" if spec.n_times_fixed else f"x{spec.n_times_multiple}",
            spec.channels,
            spec.pretrained_source or "-",
            "yes" if spec.offline is None else f"no: {spec.offline}",
        )
        for spec in REGISTRY.values()
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eegfm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    schema = sub.add_parser("schema", help="print (or --write) the config JSON Schema")
    schema.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_PATH}")
    sub.add_parser("backbones", help="list the backbone registry")
    keys = sub.add_parser("config-keys", help="print (or --write) every config key as a markdown table")
    keys.add_argument("--write", action="store_true", help=f"update the table in {CONFIG_README}")
    args = parser.parse_args(argv)

    if args.command == "schema":
        text = render_schema()
        if args.write:
            SCHEMA_PATH.write_text(text)
        else:
            sys.stdout.write(text)
    elif args.command == "config-keys":
        table = render_keys_table()
        if args.write:
            head, rest = CONFIG_README.read_text().split(_KEYS_START)
            CONFIG_README.write_text(head + _KEYS_START + table + "\n" + _KEYS_END + rest.split(_KEYS_END)[1])
        else:
            print(table)
    elif args.command == "backbones":
        print(backbones_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
