"""Findings rows: what each probe of a round reported, kept for the API and the report.

A round is one run of probes on an incident, numbered 1, 2, … in the order they were stored, with its
phase: ``diagnosis`` (at opening), ``re-diagnosis`` (diagnosis ran again) or ``verification`` (after an
action). Every round is kept: a later round never hides an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
import sqlalchemy as sa

from service.model import incidents
from service.records import schema
from service.records.sqlite_inline import Conn
from service.records.store import iso

F = schema.findings
# Built once, as every incident's diagnosis runs them (a per-call statement costs SQLAlchemy ~4× more)
_LAST_ROUND = sa.select(sa.func.max(F.c.round)).where(F.c.incident_id == sa.bindparam("incident_id"))
_INSERT = sa.insert(F)

Phase = Literal["diagnosis", "re-diagnosis", "verification"]
#: How many rounds the incident detail returns (the newest; older ones stay stored).
MAX_ROUNDS = 20


async def record(
    conn: Conn, incident_id: str, found: Sequence[incidents.Finding], *, phase: Phase, now: float
) -> int | None:
    """Store ``found`` as the incident's next round; returns its number (None when nothing was found).

    A ``diagnosis`` of an incident that already has a round is stored as ``re-diagnosis``: the process
    died after the first one was stored, and the probes ran again."""
    if not found:
        return None
    last = await conn.scalar(_LAST_ROUND, {"incident_id": incident_id})
    if last is not None and phase == "diagnosis":
        phase = "re-diagnosis"
    number = (last or 0) + 1
    await conn.execute(
        _INSERT,
        [
            {
                "incident_id": incident_id,
                "round": number,
                "phase": phase,
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
    return number


async def rounds(conn: Conn, incident_id: str, *, limit: int = MAX_ROUNDS) -> list[dict[str, Any]]:
    """The incident's newest ``limit`` rounds, oldest first: ``{round, phase, at, findings}``, the findings
    in rule order as the API shows them."""
    newest = (
        sa.select(F.c.round)
        .where(F.c.incident_id == incident_id)
        .group_by(F.c.round)
        .order_by(F.c.round.desc())
        .limit(limit)
    )
    rows = await conn.execute(
        sa.select(F)
        .where(F.c.incident_id == incident_id, F.c.round.in_(newest.scalar_subquery()))
        .order_by(F.c.round, F.c.id)
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        if not out or out[-1]["round"] != r.round:
            out.append({"round": r.round, "phase": r.phase, "at": iso(r.at), "findings": []})
        out[-1]["findings"].append(
            {
                "id": r.probe_id,
                "probe": r.probe,
                "status": r.status,
                "summary": r.summary,
                "facts": orjson.loads(r.facts),
                "evidence": r.evidence,
                "duration_ms": r.duration_ms,
            }
        )
    return out
