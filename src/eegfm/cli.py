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

    header = "# Generated from the models of src/eegfm/config/ by `eegfm schema --write`; do not edit by hand.\n"
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


BACKBONE_COLUMNS = ("name", "class", "params", "sfreq", "window", "channels", "dim", "pretrained", "offline")

def backbone_size(spec, fast: bool = False) -> dict[str, str]:
    """``params`` (without the classification head) and embedding ``dim`` of a backbone, as table cells.

    Neural backbones are built and run at their nominal input (19 channels,
    native rate, ``nominal_seconds``; see :func:`eegfm.backbones.build.describe`)
    unless ``fast``; non-neural ones have no parameters and an input-dependent size.
    """
    if fast or spec.kind != "braindecode" or spec.offline:
        return {"params": "-", "dim": "-"}
    from eegfm.backbones.adapt import BackboneInputError
    from eegfm.backbones.build import describe
    from eegfm.backbones.checkpoints import BackboneWeightsError

    try:
        size = describe(spec)
    except (BackboneInputError, BackboneWeightsError, RuntimeError) as err:  # one broken entry: say so, list the rest
        print(f"eegfm backbones: {spec.name}: {err}", file=sys.stderr)
        return {"params": "error", "dim": "error"}
    return {"params": _count(size["params"]), "dim": str(size["dim"])}


def _count(n: int) -> str:
    """``4924000`` -> ``4.92M``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def backbone_row(spec, fast: bool = False) -> tuple[str, ...]:
    """One row of :func:`backbones_table`, in :data:`BACKBONE_COLUMNS` order."""
    size, inputs = backbone_size(spec, fast), spec.inputs
    asset = getattr(spec.family, "asset", None)  # a file eegfm supplies offline, for a class that downloads one
    offline = (asset.offline_note if asset else "yes") if spec.offline is None else f"no: {spec.offline}"
    return (
        spec.name,
        spec.model_class or spec.kind,
        size["params"],
        f"{inputs.sfreq:g}" if inputs.sfreq else "any",
        inputs.length.describe(inputs.sfreq, with_rate=False),
        inputs.channels.description,
        size["dim"],
        spec.pretrained_source or "-",
        offline,
    )


def backbones_table(names: list[str] | None = None, fast: bool = False, progress=None) -> str:
    """The backbone registry as a plain-text table.

    Parameters
    ----------
    names
        Registry names to list (default: all, in registry order).
    fast
        Skip building the models (parameters and dimensions shown as ``-``).
    progress
        Called with each backbone name before its row is made (building one
        can take seconds).
    """
    from eegfm.backbones.registry import REGISTRY, get_spec

    specs = [get_spec(n) for n in names] if names else list(REGISTRY.values())
    rows = []
    for spec in specs:
        if progress is not None:
            progress(spec.name)
        rows.append(backbone_row(spec, fast))
    header = BACKBONE_COLUMNS
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    return "\n".join(lines)


def _add_prefetch_parser(sub) -> None:
    prefetch = sub.add_parser(
        "prefetch",
        help="download the pretrained weights a config needs into a local folder (needs internet)",
        description="Fetch the braindecode/* Hugging Face repos of the config's backbones into "
        "<dest>/<org>/<repo>/ and print the weights: line for each; copy <dest> to offline machines.",
    )
    prefetch.add_argument("--configfile", default="config/config.yaml", help="config YAML (default: %(default)s)")
    prefetch.add_argument("--dest", required=True, help="local folder for the weights, e.g. models/")
    prefetch.add_argument("--source", help="copy from this folder laid out like the hub (<org>/<repo>/) instead of downloading")
    prefetch.add_argument("--repo", action="append", default=[], help="extra repo id to fetch (repeatable)")
    prefetch.add_argument("--revision", help="hub branch, tag or commit (default: main)")
    prefetch.add_argument("--allow-any-org", action="store_true", help="also fetch repos outside braindecode/")
    prefetch.add_argument("--force", action="store_true", help="fetch again even if the folder exists")


def _prefetch(args) -> int:
    import logging

    from eegfm.config import ConfigError, load_config
    from eegfm.prefetch import PrefetchError, prefetch

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = load_config(yaml.safe_load(Path(args.configfile).read_text()))
        prefetch(
            config, args.dest, source=args.source, repos=args.repo, allow_any_org=args.allow_any_org,
            revision=args.revision, force=args.force,
        )  # fmt: skip
    except (ConfigError, PrefetchError) as err:
        print(f"eegfm prefetch: {err}", file=sys.stderr)
        return 1
    return 0


def _backbones(args) -> int:
    from eegfm.backbones.registry import REGISTRY

    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        print(f"eegfm backbones: unknown backbone(s) {', '.join(unknown)}; registered: {', '.join(REGISTRY)}",
              file=sys.stderr)  # fmt: skip
        return 2

    def progress(name: str) -> None:
        if not args.fast:
            print(f"building {name} ...", file=sys.stderr, flush=True)

    print(backbones_table(args.names or None, fast=args.fast, progress=progress))
    return 0


def _check_config(args) -> int:
    """Check a config file as the workflow would, before running it: YAML syntax, keys and values, and
    :func:`eegfm.dag.check_before_jobs` (recordings and folds, regression targets, weights)."""
    from eegfm.config import ConfigError, load_config
    from eegfm.configfile import read_config_file
    from eegfm.dag import check_before_jobs
    from eegfm.recordings import RecordingError
    from eegfm.windowing import WindowsError

    try:
        check_before_jobs(load_config(read_config_file(args.path)))
    except (ConfigError, RecordingError, WindowsError, ValueError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.path}: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eegfm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    schema = sub.add_parser("schema", help="print (or --write) the config JSON Schema")
    schema.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_PATH}")
    backbones = sub.add_parser(
        "backbones",
        help="list the backbone registry",
        description="Build every neural backbone at its nominal input (19 channels, native rate) to count its "
        "parameters (without the classification head) and embedding size; tens of seconds on a CPU.",
    )
    backbones.add_argument("names", nargs="*", help="registry names to list (default: all)")
    backbones.add_argument("--fast", action="store_true", help="do not build the models (params and dim shown as -)")
    keys = sub.add_parser("config-keys", help="print (or --write) every config key as a markdown table")
    keys.add_argument("--write", action="store_true", help=f"update the table in {CONFIG_README}")
    check = sub.add_parser(
        "check-config",
        help="check a config file before running it: YAML syntax (file, line), keys and values, recordings and "
        "folds, regression targets, pretrained weights",
        description="Snakemake reports a YAML error in a --configfile only as 'not valid JSON or YAML'; this names "
        "the line. Relative paths in the file are resolved against the current directory, as the workflow does.",
    )
    check.add_argument("path", help="the config file")
    _add_prefetch_parser(sub)
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
    elif args.command == "prefetch":
        return _prefetch(args)
    elif args.command == "backbones":
        return _backbones(args)
    elif args.command == "check-config":
        return _check_config(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
