"""The action journal: one row per planned, blocked, proposed or executed action of an incident.

An action that will run is written ``running`` (the intent) and committed before anything is sent; its
result is written after. A row still ``running`` when its incident is picked up again means the process
died in between: it becomes ``unknown`` and is never repeated. ``round`` names the findings round the
action acted on (``records.findings``).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from service.records import schema
from service.records.sqlite_inline import Conn
from service.records.store import iso

A = schema.actions
# Built once (SQLAlchemy builds and keys a per-call statement at ~4× the cost of executing a prebuilt one)
_INSERT = sa.insert(A)
_OF_INCIDENT = (
    sa.select(A).where(A.c.incident_id == sa.bindparam("incident_id")).order_by(A.c.requested_at, A.c.id)
)
UNKNOWN_REASON = "the service stopped while this action was running: its result is unknown; not repeated"


async def add(conn: Conn, values: dict[str, Any]) -> None:
    row = dict(values)
    for key in ("params", "request", "result"):
        if key in row and row[key] is not None and not isinstance(row[key], str):
            row[key] = orjson.dumps(row[key]).decode()
    row.setdefault("params", "{}")
    await conn.execute(_INSERT, row)


async def update(conn: Conn, action_id: str, **values: Any) -> None:
    for key in ("params", "request", "result"):
        if key in values and values[key] is not None and not isinstance(values[key], str):
            values[key] = orjson.dumps(values[key]).decode()
    await conn.execute(sa.update(A).where(A.c.id == action_id).values(**values))


async def of_incident(conn: Conn, incident_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(_OF_INCIDENT, {"incident_id": incident_id})
    return [record(r._mapping) for r in rows]


async def get(conn: Conn, incident_id: str, action_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(sa.select(A).where(A.c.incident_id == incident_id, A.c.id == action_id))
    ).first()
    return record(row._mapping) if row else None


async def mark_unknown(conn: Conn, incident_id: str, *, now: float) -> list[dict[str, Any]]:
    """Every action of the incident left ``running`` by a dead process becomes ``unknown``; returns them."""
    rows = await conn.execute(sa.select(A).where(A.c.incident_id == incident_id, A.c.status == "running"))
    stale = [record(r._mapping) for r in rows]
    if stale:
        await conn.execute(
            sa.update(A)
            .where(A.c.incident_id == incident_id, A.c.status == "running")
            .values(
                status="unknown",
                finished_at=now,
                reason=UNKNOWN_REASON,
            )
        )
    return stale


def record(row: Any) -> dict[str, Any]:
    """The API shape of a journal row (DESIGN §3.1)."""
    return {
        "id": row["id"],
        "action": row["action"],
        "safety": row["safety"],
        "status": row["status"],
        "guard": row["guard"],
        "reason": row["reason"],
        "index": row["idx"],
        "round": row["round"],
        "dry_run": bool(row["dry_run"]),
        "requested_at": iso(row["requested_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "approver": row["approver"],
        "params": orjson.loads(row["params"]) if row["params"] else {},
        "request": orjson.loads(row["request"]) if row["request"] else None,
        "result": orjson.loads(row["result"]) if row["result"] else None,
    }
