"""No import cycle in ``service/``: the import graph, lazy imports included, is walked with ``ast``.

import-linter's ``layers`` contract (pyproject.toml) says which way imports may point between the
stages; this test says that no group of modules imports itself round, even through a function-local
import (a cycle "patched" by importing inside a function is still a cycle). Imports under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "service"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of every node inside an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) block."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imported(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> Iterator[str]:
    """The modules of ours that one import statement loads (``from p import m`` loads ``p.m`` if a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the modules of ``service`` it imports, at module level or inside functions."""
    files = {_module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_nodes(tree)
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
                edges.update(
                    name
                    for name in _imported(module, path.name == "__init__.py", node, known)
                    if name in known and name != module
                )
        graph[module] = edges
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(_cycle_through(sorted(group), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _cycle_through(group: list[str], graph: Mapping[str, set[str]]) -> list[str]:
    """One concrete cycle inside a strongly connected group, starting and ending at its first module."""
    members = set(group)
    start = group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for other in sorted(graph[node] & members):
            if other == start:
                return [*paths[node], start]
            if other not in paths:
                paths[other] = [*paths[node], other]
                queue.append(other)
    return [*group, start]  # not reached: a strongly connected group always closes


def test_the_service_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in service/:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_keys_and_settings_pull_in_nothing_above_them() -> None:
    """Handlers import ``keys`` and every stage imports ``settings``: neither may drag upper layers in."""
    graph = import_graph()
    assert graph["service.keys"] == set()  # its types are imported for mypy only
    assert {m.split(".")[1] for m in graph["service.settings"]} <= {"errors", "model"}


def test_the_walk_sees_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    """The checker itself: a cycle closed by a function-local import is found and named; one closed only
    under ``TYPE_CHECKING`` is not a cycle."""
    package = tmp_path / "service"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from service.sub import b\n")
    (package / "sub" / "b.py").write_text("def late():\n    from service import a\n")
    (package / "c.py").write_text("from service import d\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from service import c\n"
    )
    graph = import_graph(package)
    assert graph["service.d"] == set()
    assert cycles(graph) == [["service.a", "service.sub.b", "service.a"]]
