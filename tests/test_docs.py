"""The tests README.md and docs/ cite as proof of a guarantee exist: a renamed test cannot leave a dead citation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def cited_tests(text: str) -> list[tuple[str, str | None]]:
    """``(file, test)`` for every backticked ``tests/....py[::name]``; a bare ``::name`` cites the last file."""
    cited, last = [], None
    for ref in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)`", text):
        path, _, name = ref.partition("::")
        if path:
            last = path
        if last is not None and ref:
            cited.append((last, name or None))
    return cited


def test_every_cited_test_file_and_test_exists():
    missing = []
    for doc in DOCS:
        for path, name in cited_tests(doc.read_text()):
            file = REPO / path
            if not file.is_file():
                missing.append(f"{doc.name}: {path}")
            elif name and name not in _test_names(file):
                missing.append(f"{doc.name}: {path}::{name}")
    assert not missing, "docs cite tests that do not exist:\n" + "\n".join(missing)


def test_the_citation_reader_follows_bare_names_to_the_last_file():
    text = "see `tests/a.py::one`, `::two` and `tests/b/c.py`"
    assert cited_tests(text) == [("tests/a.py", "one"), ("tests/a.py", "two"), ("tests/b/c.py", None)]


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The API example is the user's first contact with the engine: it must run pasted as is (QA of issue 13:
    it read a windows.npy the reader does not have and listed channels as a literal '...')."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## From Python, on arrays in memory"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code, as a user runs it
    result = namespace["result"]
    assert set(result.summary["model"]) == {"bandpower", "cbramod"} and len(result.metrics) == 3 * 4
    assert (tmp_path / "eegfm-results/report/report.html").is_file()
    assert result.summary.loc[result.summary["model"] == "bandpower", "verdict"].iloc[0].startswith("above chance")
