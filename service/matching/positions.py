"""Where things are in a YAML rule file: parse text into (node tree, data), map a path to a line.

Owns the bridge between a location such as ``("remediate", 0, "when")`` (a pydantic error location, or
one of our own checks) and the 1-based line of that node in the file, and the check for duplicate keys
(PyYAML silently keeps the last one). Works on text; never opens files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

Loc = Sequence[str | int]
#: The C SafeLoader parses the same YAML into the same nodes, with marks, several times faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str) -> tuple[yaml.Node | None, Any]:
    """Compose and construct one YAML document (safe loader); raises ``yaml.YAMLError``."""
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data


def line_of(root: yaml.Node, loc: Loc) -> int:
    """The line of the node at ``loc``: of its key inside a mapping, else of the node itself.

    When ``loc`` leads somewhere that does not exist (a missing field), the line of the deepest node that
    does: the key holding the mapping that lacks the field.
    """
    node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not found:
                return line
            key, node = found[-1]  # PyYAML keeps the last of duplicate keys
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def duplicate_keys(root: yaml.Node) -> list[tuple[int, str]]:
    """``(line, message)`` for every key that repeats in its mapping."""
    found: list[tuple[int, str]] = []
    stack = [root]
    visited: set[int] = set()  # aliases share nodes, and may even make a cycle
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                stack.append(value)
                if not isinstance(key, yaml.ScalarNode):
                    continue
                line = key.start_mark.line + 1
                if key.value in seen:
                    found.append((line, f"duplicate key {key.value!r} (first at line {seen[key.value]})"))
                else:
                    seen[key.value] = line
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(found)
