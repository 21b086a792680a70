"""Findings rows: what each probe of a diagnosis round reported, kept for the API and the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from service.model import incidents
from service.records import schema
from service.records.sqlite_inline import Conn

F = schema.findings


async def record(
    conn: Conn, incident_id: str, found: Sequence[incidents.Finding], *, round_: int, now: float
) -> None:
    if not found:
        return
    await conn.execute(
        sa.insert(F),
        [
            {
                "incident_id": incident_id,
                "round": round_,
                "probe_id": f.id,
                "probe": f.probe,
                "status": f.status,
                "summary": f.summary,
                "facts": orjson.dumps(f.facts).decode(),
                "evidence": f.evidence,
                "duration_ms": f.duration_ms,
                "at": now,
            }
            for f in found
        ],
    )


async def latest(conn: Conn, incident_id: str) -> list[dict[str, Any]]:
    """The findings of the incident's latest round, in rule order, as the API shows them."""
    last = await conn.scalar(sa.select(sa.func.max(F.c.round)).where(F.c.incident_id == incident_id))
    if last is None:
        return []
    rows = await conn.execute(
        sa.select(F).where(F.c.incident_id == incident_id, F.c.round == last).order_by(F.c.id)
    )
    return [
        {
            "id": r.probe_id,
            "probe": r.probe,
            "status": r.status,
            "summary": r.summary,
            "facts": orjson.loads(r.facts),
            "evidence": r.evidence,
            "duration_ms": r.duration_ms,
        }
        for r in rows
    ]
