"""The shape of the package: no import circles, no private names across modules, small modules.

The import graph of ``src/eegfm`` is read from the source (nothing is
imported): every ``import`` and ``from … import`` counts, at module level
and inside functions alike — a function-level import only defers a
dependency, it does not remove it. Imports under ``if TYPE_CHECKING:`` are
left out: they are never executed and only name types for annotations. The
registry imports every module of :mod:`eegfm.backbones.families` by
listing the package (``pkgutil``); those edges are added explicitly.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Every module of the package stays small (one responsibility each).
MAX_LINES = 500
#: Modules allowed above MAX_LINES for now, each with its reason. Registry *data* (a long table and nothing
#: else) would be the only lasting entry; there is none today: the registry is one short file per family.
LONG_MODULES: dict[str, str] = {}


def module_names(src: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module under ``src``."""
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return None


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def read_graph(src: Path, package: str) -> tuple[dict[str, set[str]], list[str]]:
    """The import edges between the modules of ``package`` under ``src``, and the private-name violations.

    A violation is ``from pkg.mod import _name``, ``import pkg._mod`` or
    ``alias._name`` where ``alias`` is a module of the package, in another
    module than the one defining it.
    """
    modules = {m: p for m, p in module_names(src).items() if m == package or m.startswith(package + ".")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    violations = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        bound: dict[str, str] = {}  # local name -> module of the package it refers to
        for node in _walk(tree):
            where = f"{path.relative_to(src)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _resolve(alias.name, modules)
                    if target is None:
                        continue
                    edges[module].add(target)
                    if any(part.startswith("_") and not part.startswith("__") for part in alias.name.split(".")):
                        violations.append(f"{where}: import {alias.name} (a private module)")
                    bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else package
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                if _resolve(base, modules) is None:
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    target = submodule if submodule in modules else _resolve(base, modules)
                    edges[module].add(target)
                    if submodule in modules:
                        bound[alias.asname or alias.name] = submodule
                    if alias.name.startswith("_") and not alias.name.startswith("__") and target != module:
                        violations.append(f"{where}: from {base} import {alias.name} (private to {target})")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = _dotted(node.value)
                head = owner.split(".")[0] if owner else None
                if head in bound:
                    target = _resolve(owner.replace(head, bound[head], 1), modules)
                    if target is not None and target != module:
                        violations.append(f"{where}: {owner}.{node.attr} (private to {target})")
        edges[module].discard(module)
    return edges, violations


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (``[a, b, …, a]``), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.fixture(scope="module")
def graph():
    from eegfm.backbones import registry

    edges, violations = read_graph(SRC, "eegfm")
    edges["eegfm.backbones.registry"] |= {module.__name__ for module in registry.family_modules()}
    return edges, violations


def test_no_import_circles(graph):
    edges, _ = graph
    assert find_cycle(edges) is None, f"import circle: {' -> '.join(find_cycle(edges))}"


def test_no_private_names_imported_across_modules(graph):
    _, violations = graph
    assert not violations, "\n".join(violations)


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others (``start`` included)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(edges.get(module, ()))
    return seen


def test_validating_the_config_does_not_import_the_probe(graph):
    """The config validator checks the estimator through :mod:`eegfm.estimators`, not the probe.

    The config is a package (one module per section): nothing it imports, directly or not, is the probe.
    """
    edges, _ = graph
    config = reachable(edges, "eegfm.config")
    assert "eegfm.probe" not in config and "eegfm.estimators" in edges["eegfm.config.load"]
    assert edges["eegfm.estimators"] == set()


def test_modules_stay_small():
    """No module of ``src/eegfm`` above 500 lines, but the listed exceptions (which must still exist)."""
    long = []
    for path in sorted((SRC / "eegfm").rglob("*.py")):
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and path.relative_to(SRC).as_posix() not in LONG_MODULES:
            long.append(f"{path.relative_to(SRC)}: {n} lines")
    assert not long, long
    assert all((SRC / name).exists() for name in LONG_MODULES), "drop the allow-list entries of removed modules"


def test_the_checker_sees_circles_private_names_and_skips_type_checking(tmp_path):
    """The rules above can fail: a small package breaks each of them once."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import helper\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.c import Thing\n"
        "def helper():\n    from pkg.a import _secret  # function level\n    return _secret\n"
    )
    (pkg / "c.py").write_text("from pkg import b\nb._hidden()\nfrom . import a\n")
    edges, violations = read_graph(tmp_path, "pkg")
    assert edges["pkg.a"] == {"pkg.b"} and edges["pkg.b"] == {"pkg.a"}  # TYPE_CHECKING: no edge to pkg.c
    assert edges["pkg.c"] == {"pkg.b", "pkg.a"}  # relative imports resolve too
    assert find_cycle(edges) == ["pkg.a", "pkg.b", "pkg.a"]
    assert len(violations) == 2
    assert "from pkg.a import _secret" in violations[0] and "b._hidden" in violations[1]
