"""The ``comms`` table: one customer-facing draft per incident, kind (statuspage, email) and step.

A draft is written once (``insert_drafts`` ignores a step drafted before) and published at most once:
``claim`` is a compare-and-set ``draft → publishing`` (who and when recorded), then ``published`` sets
``publishing → published`` with the external id, or ``release`` puts it back to ``draft`` when sending failed.
A row left ``publishing`` by a process that died is never sent again by itself: whether it went out is
unknown, and a human decides (the console shows it). Only ``service.lifecycle`` calls the writers here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.records import schema
from service.records.sqlite_inline import Conn
from service.records.store import Store, iso, plain

C = schema.comms
DRAFT, PUBLISHING, PUBLISHED = "draft", "publishing", "published"


@dataclass(frozen=True)
class Row:
    """One draft as stored."""

    id: int
    incident_id: str
    kind: str
    step: str
    text: str
    state: str
    external_id: str | None
    published_by: str | None
    published_at: float | None
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        """The draft as the API and the console show it."""
        return {
            "kind": self.kind,
            "step": self.step,
            "text": self.text,
            "state": self.state,
            "external_id": self.external_id,
            "published_by": self.published_by,
            "published_at": iso(self.published_at),
            "created_at": iso(self.created_at),
        }


def _row(raw: Any) -> Row:
    return Row(**plain(raw))


async def insert_drafts(
    store: Store, conn: Conn, incident_id: str, texts: Sequence[tuple[str, str, str]], *, now: float
) -> list[tuple[str, str]]:
    """Write the (kind, step, text) drafts not written before; the (kind, step) pairs that are new."""
    new = []
    for kind, step, text in texts:
        row = {
            "incident_id": incident_id,
            "kind": kind,
            "step": step,
            "text": text,
            "state": DRAFT,
            "created_at": now,
            "updated_at": now,
        }
        result = await conn.execute(store.insert_ignore(C).returning(C.c.id), [row])
        if result.first() is not None:
            new.append((kind, step))
    return new


async def of_incident(conn: Conn, incident_id: str) -> list[Row]:
    """Every draft of the incident, oldest first."""
    stmt = sa.select(C).where(C.c.incident_id == incident_id).order_by(C.c.id)
    return [_row(r) for r in (await conn.execute(stmt)).mappings().all()]


async def get(conn: Conn, incident_id: str, kind: str, step: str) -> Row | None:
    stmt = sa.select(C).where(C.c.incident_id == incident_id, C.c.kind == kind, C.c.step == step)
    found = (await conn.execute(stmt)).mappings().first()
    return _row(found) if found is not None else None


async def claim(conn: Conn, draft_id: int, *, by: str, now: float) -> bool:
    """``draft → publishing`` by ``by``; False when someone else claimed or published it first."""
    changed = await conn.execute(
        sa.update(C)
        .where(C.c.id == draft_id, C.c.state == DRAFT)
        .values(state=PUBLISHING, published_by=by, updated_at=now)
    )
    return bool(changed.rowcount)


async def published(conn: Conn, draft_id: int, *, external_id: str | None, now: float) -> bool:
    """``publishing → published`` (the external id kept: the Statuspage incident, the SMTP answer)."""
    changed = await conn.execute(
        sa.update(C)
        .where(C.c.id == draft_id, C.c.state == PUBLISHING)
        .values(state=PUBLISHED, external_id=external_id, published_at=now, updated_at=now)
    )
    return bool(changed.rowcount)


async def release(conn: Conn, draft_id: int, *, now: float) -> bool:
    """``publishing → draft``: sending failed, so a human (or the next automatic try) may publish it."""
    changed = await conn.execute(
        sa.update(C)
        .where(C.c.id == draft_id, C.c.state == PUBLISHING)
        .values(state=DRAFT, published_by=None, updated_at=now)
    )
    return bool(changed.rowcount)


async def external_id(conn: Conn, incident_id: str, kind: str) -> str | None:
    """The external id of the incident's first published ``kind`` step (the Statuspage incident)."""
    stmt = (
        sa.select(C.c.external_id)
        .where(C.c.incident_id == incident_id, C.c.kind == kind, C.c.state == PUBLISHED)
        .where(C.c.external_id.is_not(None))
        .order_by(C.c.published_at)
        .limit(1)
    )
    value = await conn.scalar(stmt)
    return str(value) if value is not None else None


async def busy(conn: Conn, incident_id: str, kind: str) -> bool:
    """True while another step of the incident's ``kind`` is being published."""
    stmt = sa.select(sa.func.count()).where(
        C.c.incident_id == incident_id, C.c.kind == kind, C.c.state == PUBLISHING
    )
    return bool(await conn.scalar(stmt))


async def steps_of(conn: Conn, incident_ids: Collection[str]) -> dict[str, dict[tuple[str, str], str]]:
    """Per incident: (kind, step) → state, for the timers' one query over the incidents they look at."""
    found: dict[str, dict[tuple[str, str], str]] = {i: {} for i in incident_ids}
    if not incident_ids:
        return found
    stmt = sa.select(C.c.incident_id, C.c.kind, C.c.step, C.c.state).where(
        C.c.incident_id.in_(list(incident_ids))
    )
    for incident_id, kind, step, state in (await conn.execute(stmt)).all():
        found[incident_id][(kind, step)] = state
    return found


async def auto_due(
    conn: Conn, *, kind: str, steps: Collection[str], before: float, limit: int = 20
) -> list[Row]:
    """Drafts of ``kind`` and ``steps`` still unpublished — never tried, or last tried before ``before`` (a
    failed try waits) — of incidents that are not drills: what automatic publishing sends next."""
    I = schema.incidents  # noqa: E741 — the table
    stmt = (
        sa.select(C)
        .join(I, I.c.id == C.c.incident_id)
        .where(C.c.kind == kind, C.c.step.in_(list(steps)), C.c.state == DRAFT)
        .where(sa.or_(C.c.updated_at == C.c.created_at, C.c.updated_at <= before))
        .where(I.c.drill.is_(False))
        .order_by(C.c.id)
        .limit(limit)
    )
    return [_row(r) for r in (await conn.execute(stmt)).mappings().all()]
