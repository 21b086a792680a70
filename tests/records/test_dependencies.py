"""``open_causes``: the open incidents of depended-on rules in a namespace, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.records import dependencies, schema
from service.records.store import Store

T0 = 1_800_000_000.0


def row(
    id_: str, rule: str, *, namespace: str = "default", state: str = "escalated", opened: float = T0
) -> dict[str, Any]:
    return {
        "id": id_,
        "rule": rule,
        "open_key": None if state == "resolved" else f"{rule}|{namespace}|{id_}",
        "target_kind": "Deployment",
        "target_namespace": namespace,
        "target_name": "postgresql" if rule == "database-failure" else "redis",
        "target_valid": True,
        "state": state,
        "severity": "critical",
        "runbook": rule,
        "mttr_target_s": 180.0,
        "escalation_level": 1,
        "opened_at": opened,
        "updated_at": opened,
    }


ROWS = [
    row("db-new", "database-failure", opened=T0 + 60),
    row("db-old", "database-failure", state="mitigated", opened=T0),
    row("db-done", "database-failure", state="resolved", opened=T0 - 600),
    row("db-shop", "database-failure", namespace="shop", opened=T0),
    row("redis-1", "redis-failure", state="open", opened=T0 + 30),
    row("cpu-1", "high-cpu-memory", opened=T0),
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'deps.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    opened = Store.open(url)
    try:
        await opened.migrate()
        async with opened.write() as conn:
            await conn.execute(sa.insert(schema.incidents), ROWS)
        yield opened
    finally:
        await opened.close()


async def test_unresolved_incidents_of_the_named_rules_in_the_namespace_oldest_first(store: Store) -> None:
    async with store.read() as conn:
        causes = await dependencies.open_causes(
            conn, rules=["database-failure", "redis-failure"], namespace="default"
        )
    assert [c.id for c in causes] == ["db-old", "redis-1", "db-new"]
    first = causes[0]
    assert (first.rule, first.target_kind, first.target_namespace, first.target_name) == (
        "database-failure",
        "Deployment",
        "default",
        "postgresql",
    )
    assert (first.severity, first.state, first.opened_at) == ("critical", "mitigated", T0)


async def test_since_other_namespaces_and_unnamed_rules_are_left_out(store: Store) -> None:
    async with store.read() as conn:
        recent = await dependencies.open_causes(
            conn, rules=["database-failure"], namespace="default", since=T0 + 60
        )
        shop = await dependencies.open_causes(conn, rules=["database-failure"], namespace="shop")
        nothing = await dependencies.open_causes(conn, rules=[], namespace="default")
        storage = await dependencies.open_causes(conn, rules=["storage-issues"], namespace="default")
    assert [c.id for c in recent] == ["db-new"]  # opened exactly at ``since`` counts
    assert [c.id for c in shop] == ["db-shop"]
    assert nothing == [] and storage == []
