"""One owner of the incident's life: no module but ``service.lifecycle`` (over the store's own
``records/incidents.py``) writes an incident's state or its timeline."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
OWNERS = {SERVICE / "records" / "incidents.py", *(SERVICE / "lifecycle").glob("*.py")}
#: the store's writers of incidents, their alerts and their timeline
WRITERS = {"update", "create", "add_event", "attach_alert", "resolve_alert", "transition"}
TABLES = {"incidents", "timeline", "incident_alerts"}
STATEMENTS = {"update", "insert", "delete", "insert_ignore"}


def _table(node: ast.expr, aliases: set[str]) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in TABLES:
        return True
    return isinstance(node, ast.Name) and node.id in aliases


def writes_outside_the_lifecycle(path: Path, root: Path = SERVICE.parent) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    modules = {  # local names of service.records.incidents
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "service.records"
        for alias in node.names
        if alias.name == "incidents"
    }
    tables = {  # T = schema.incidents
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _table(node.value, set())
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in modules and node.func.attr in WRITERS:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {owner.id}.{node.func.attr}(…)")
        if node.func.attr in STATEMENTS and node.args and _table(node.args[0], tables):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {node.func.attr} of an incident table")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_only_the_lifecycle_writes_incident_state_and_timeline() -> None:
    found = [
        w
        for path in sorted(SERVICE.rglob("*.py"))
        if path not in OWNERS
        for w in writes_outside_the_lifecycle(path)
    ]
    assert found == [], "incident state or timeline written outside service/lifecycle:\n" + "\n".join(found)


def test_the_scan_sees_a_write(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlalchemy as sa\n"
        "from service.records import incidents as rows, schema\n"
        "T = schema.incidents\n"
        "async def f(conn):\n"
        "    await rows.add_event(conn, 'i', at=0, kind='x', message='y')\n"
        "    await conn.execute(sa.update(T).values(state='resolved'))\n"
        "    await conn.execute(sa.insert(schema.timeline))\n"
        "    await conn.execute(sa.select(T))\n"
    )
    found = writes_outside_the_lifecycle(sample, tmp_path)
    assert [line.split(":")[1] for line in found] == ["5", "6", "7"]
