"""docs/architecture.md stays true: the contracts it lists are the ones the code declares and writes."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "architecture.md").read_text()


def _section(title: str) -> str:
    """The text of the section whose heading is ``title`` (up to the next heading of any level)."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", DOC, flags=re.S | re.M)
    assert match, f"docs/architecture.md has no section '{title}'"
    return match.group(1)


def _ticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


def declared_outputs() -> dict[str, set[str]]:
    """Per rule, the last path component of every output it declares in workflow/rules/*.smk."""
    out: dict[str, set[str]] = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), flags=re.S | re.M):
            block = re.search(r"^    output:\n(.*?)(?=^    \w+:)", body, flags=re.S | re.M)
            names = set()
            # output paths start at a results folder ({RES}, {REPORT}); captions and dict keys do not
            for path in re.findall(r'f"(\{[A-Z]+\}/[^"]+)"', block.group(1) if block else ""):
                last = path.rstrip("/").split("/")[-1].replace("{{", "{").replace("}}", "}")
                folder = re.search(rf'directory\(f"{re.escape(path)}"\)', block.group(1))
                names.add(last + ("/" if folder else ""))
            out[rule] = names
    return out


def documented_outputs() -> dict[str, set[str]]:
    """Per rule, the files the data-flow table of §1 says it declares."""
    rows = re.findall(r"^\| `(\w+)` \|[^|]*\|[^|]*\| (.*) \|$", _section("1. Data flow"), flags=re.M)
    return {rule: {name.rsplit("/", 1)[-1] if not name.endswith("/") else name for name in _ticked(cells)}
            for rule, cells in rows}


def test_every_rule_declares_what_the_data_flow_table_lists():
    declared, documented = declared_outputs(), documented_outputs()
    assert set(declared) - {"all"} == set(documented), "rules missing from (or extra in) the table of §1"
    for rule, names in documented.items():
        assert declared[rule] == names, f"rule {rule}: declares {sorted(declared[rule])}, the doc lists {sorted(names)}"


def test_the_windows_table_columns_are_the_documented_ones():
    from eegfm.windows_store import META_COLUMNS

    documented = _ticked(_section("2.1 Windows store").split("`windows.tsv`", 1)[1].split("`windows.json`", 1)[0])
    assert set(META_COLUMNS) | {"content_hash"} <= documented


def test_the_embedding_pointer_fields_are_the_documented_ones():
    from eegfm.embed import POINTER_KEYS

    pointer = _section("2.4 Embedding store and pointer").split("The pointer", 1)[1]
    assert set(POINTER_KEYS) <= _ticked(pointer), set(POINTER_KEYS) - _ticked(pointer)


def test_fold_artifacts_are_those_the_probe_writes_and_the_finetune_rule_declares(tmp_path):
    section = _section("2.5 Fold artifacts")
    probe = _ticked(section.split("- probes:", 1)[1].split("\n-", 1)[0])
    trained = _ticked(section.split("- trained regimes:", 1)[1].split("\n\n", 1)[0]) - {"model.onnx",
                                                                                         "finetune.export: onnx"}
    assert declared_outputs()["finetune"] == trained
    assert probe == {"metrics.json", "predictions.tsv"}
    from eegfm.results import ARTIFACTS

    assert set(ARTIFACTS.values()) <= trained  # what Results.artifacts reads is what jobs write


def test_every_module_the_layers_name_exists_and_every_module_has_a_layer():
    layers = _section("4.1 Layers")
    named = {n.rstrip("/") for n in _ticked(layers) if re.fullmatch(r"[a-z_]+/?", n)}
    package = REPO / "src" / "eegfm"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert named <= modules, sorted(named - modules)
    assert modules <= named, f"modules without a layer in docs/architecture.md §4.1: {sorted(modules - named)}"


def test_code_cites_sections_that_exist():
    headings = set(re.findall(r"^#+ (\d+(?:\.\d+)?)\. ", DOC, flags=re.M)) | set(
        re.findall(r"^#+ (\d+\.\d+) ", DOC, flags=re.M))
    invariants = len(re.findall(r"^\d+\. \*\*", _section("3. Invariants"), flags=re.M))
    cited, bad = 0, []
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "workflow").rglob("*.smk")]:
        text = path.read_text()
        for section in re.findall(r"architecture\.md §(\d+(?:\.\d+)?)", text):
            cited += 1
            if section not in headings:
                bad.append(f"{path.relative_to(REPO)}: §{section}")
        for number in re.findall(r"architecture\.md,? invariants? (\d+)", text):
            cited += 1
            if not 1 <= int(number) <= invariants:
                bad.append(f"{path.relative_to(REPO)}: invariant {number}")
    assert cited >= 10 and not bad, bad
