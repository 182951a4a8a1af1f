"""``eegfm backbones``: the registry as a table, fast from the registry alone or with built models."""

from __future__ import annotations

import pytest

from eegfm.backbones.build import describe
from eegfm.backbones.registry import REGISTRY, get_spec
from eegfm.cli import BACKBONE_COLUMNS, backbones_table, main


def _rows(table: str) -> dict[str, list[str]]:
    """Table rows by backbone name, split on the column boundaries of the header."""
    lines = table.splitlines()
    header = lines[0]
    starts = [header.index(column) for column in BACKBONE_COLUMNS]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = cells
    return rows


def test_fast_lists_every_backbone_without_building(capsys, monkeypatch):
    import eegfm.backbones.build as build

    monkeypatch.setattr(build, "describe", lambda *a, **k: pytest.fail("--fast built a model"))
    assert main(["backbones", "--fast"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert out.splitlines()[0].split() == list(BACKBONE_COLUMNS)
    assert list(rows) == list(REGISTRY)
    labram = dict(zip(BACKBONE_COLUMNS, rows["labram"], strict=True))
    assert labram == {
        "name": "labram", "class": "Labram", "params": "-", "sfreq": "200", "window": "k x 200 (1 s)",
        "channels": get_spec("labram").inputs.channels.description, "dim": "-",
        "pretrained": "braindecode/labram-pretrained", "offline": "yes",
    }  # fmt: skip
    assert rows["reve"][-1].startswith("yes (position bank")
    assert rows["bandpower"][1] == "bandpower"


def test_full_build_counts_parameters_and_dimensions():
    """The same function as the CLI, building two cheap models at their nominal input."""
    table = backbones_table(["eegnet", "signal_jepa_post_local"])
    rows = _rows(table)
    assert list(rows) == ["eegnet", "signal_jepa_post_local"]
    for name, row in rows.items():
        cells = dict(zip(BACKBONE_COLUMNS, row, strict=True))
        size = describe(get_spec(name))
        assert cells["dim"] == str(size["dim"])
        assert cells["params"] in (str(size["params"]), f"{size['params'] / 1e3:.3g}k")
    assert rows["signal_jepa_post_local"][BACKBONE_COLUMNS.index("dim")] == "64"


def test_unknown_backbone_is_a_usage_error(capsys):
    assert main(["backbones", "--fast", "nope"]) == 2
    assert "unknown backbone(s) nope" in capsys.readouterr().err
