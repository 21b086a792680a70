"""No function in ``service/`` is longer than 60 lines (issue 13), migrations excepted.

A function's length runs from its ``def`` line to its last line: decorators are left out, the docstring
counts. Nested functions are measured on their own too (and count in their parent's length). ruff keeps
complexity, arguments, branches and statements in bounds (pyproject.toml); this keeps the length, which
ruff does not measure.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "service"
MAX_LINES = 60

#: Alembic migrations are a script each, read once, never called from our code.
EXEMPT_DIRS = (PACKAGE / "records" / "migrations",)

#: Functions still over the limit while their owners restructure them, as "path/from/root.py:qualname".
#: Empty: the lead's pipeline package and the typed-bundle files had none left at the time of writing.
#: An entry that is no longer over the limit (or gone) fails ``test_allow_list_is_not_stale``.
ALLOWED: frozenset[str] = frozenset()


def _functions(
    tree: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method of ``tree``, with its dotted qualified name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None
    return node.end_lineno - node.lineno + 1  # ``lineno`` is the ``def`` line: decorators come before it


def long_functions(source: str, where: str) -> dict[str, int]:
    """``{"where:qualname": lines}`` of the functions in ``source`` longer than ``MAX_LINES``."""
    tree = ast.parse(source)
    return {f"{where}:{name}": _length(node) for name, node in _functions(tree) if _length(node) > MAX_LINES}


def _service_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not any(path.is_relative_to(exempt) for exempt in EXEMPT_DIRS):
            yield path


def _all_long_functions() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in _service_files():
        found |= long_functions(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return found


def test_no_function_in_service_is_longer_than_60_lines() -> None:
    too_long = {name: lines for name, lines in _all_long_functions().items() if name not in ALLOWED}
    assert not too_long, f"functions over {MAX_LINES} lines (split them into named steps): {too_long}"


def test_allow_list_is_not_stale() -> None:
    stale = ALLOWED - _all_long_functions().keys()
    assert not stale, f"no longer over {MAX_LINES} lines, remove from ALLOWED: {sorted(stale)}"


def test_the_measure_counts_the_docstring_not_the_decorators() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 2))  # def + docstring + body = MAX_LINES
    at_limit = f'@decorator\n@another\ndef f():\n    """Doc."""\n{body}\n'
    assert long_functions(at_limit, "m.py") == {}
    over = f'@decorator\ndef f():\n    """Doc."""\n    """more doc"""\n{body}\n'
    assert long_functions(over, "m.py") == {"m.py:f": MAX_LINES + 1}


def test_methods_and_nested_functions_are_measured() -> None:
    body = "\n".join(f"            x{i} = {i}" for i in range(MAX_LINES))
    source = f"class C:\n    async def m(self):\n        def inner():\n{body}\n"
    assert set(long_functions(source, "m.py")) == {"m.py:C.m", "m.py:C.m.inner"}


def test_migrations_are_exempt_and_the_rest_of_service_is_walked() -> None:
    files = list(_service_files())
    assert PACKAGE / "app.py" in files
    assert not [f for f in files if "migrations" in f.parts]
