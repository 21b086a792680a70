"""Open incidents of depended-on rules: what a rule's ``depends_on`` finds open in a namespace.

``open_causes`` answers "is one of the rules this symptom depends on already an open incident here?" — the
engine's ``dependency`` guard reads it before deciding, and the lifecycle links a new incident to the oldest
cause it returns. Reads only: never writes a row (the incident's life belongs to ``service.lifecycle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from service.records import schema
from service.records.sqlite_inline import Conn

T = schema.incidents


@dataclass(frozen=True, slots=True)
class Cause:
    """An unresolved incident of a depended-on rule: the likely cause of a dependent symptom."""

    id: str
    rule: str
    target_kind: str
    target_namespace: str
    target_name: str
    severity: str
    state: str
    opened_at: float


_COLUMNS = (
    T.c.id,
    T.c.rule,
    T.c.target_kind,
    T.c.target_namespace,
    T.c.target_name,
    T.c.severity,
    T.c.state,
    T.c.opened_at,
)


async def open_causes(
    conn: Conn, *, rules: Sequence[str], namespace: str, since: float | None = None
) -> list[Cause]:
    """Unresolved incidents whose rule is one of ``rules`` and whose target is in ``namespace`` — opened
    at or after ``since`` when given — oldest first (ties by id, so the answer is stable)."""
    if not rules:
        return []
    query = sa.select(*_COLUMNS).where(
        T.c.rule.in_(list(rules)),
        T.c.target_namespace == namespace,
        T.c.state != "resolved",
        T.c.drill.is_(False),  # a drill never holds, links or blocks a real incident
    )
    if since is not None:
        query = query.where(T.c.opened_at >= since)
    rows = await conn.execute(query.order_by(T.c.opened_at, T.c.id))
    return [
        Cause(
            id=r.id,
            rule=r.rule,
            target_kind=r.target_kind,
            target_namespace=r.target_namespace,
            target_name=r.target_name,
            severity=r.severity,
            state=r.state,
            opened_at=float(r.opened_at),
        )
        for r in rows
    ]
