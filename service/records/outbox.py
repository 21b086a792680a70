"""The notification outbox: written with the change it announces, delivered at least once.

``dedup_key`` (incident, channel, event) makes each notification exist once however often the work that
writes it is repeated; ``delivery_id`` is the stable id receivers use to drop repeats of a delivery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from service.records import schema
from service.records.sqlite_inline import Conn
from service.records.store import Store, plain

O = schema.outbox  # noqa: E741 — the table, as in the other records modules
PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
#: the enqueue statement per dialect, built once (every escalation queues one per channel; a statement built
#: per call costs SQLAlchemy ~4× the execution of a prebuilt one)
_ENQUEUE: dict[str, Any] = {}
_MARK = sa.update(O).where(O.c.id == sa.bindparam("_row_id"))


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    delivery_id: str
    incident_id: str
    channel: str
    event: str
    payload: dict[str, Any]
    attempts: int


async def enqueue(
    store: Store,
    conn: Conn,
    *,
    incident_id: str,
    channel: str,
    event: str,
    payload: dict[str, Any],
    now: float,
) -> bool:
    """Queue one notification in the caller's transaction; False if it was already queued."""
    row = {
        "delivery_id": str(uuid.uuid4()),
        "dedup_key": f"{incident_id}:{channel}:{event}",
        "incident_id": incident_id,
        "channel": channel,
        "event": event,
        "payload": orjson.dumps(payload).decode(),
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    stmt = _ENQUEUE.get(store.dialect)
    if stmt is None:
        stmt = _ENQUEUE[store.dialect] = store.insert_ignore(O).returning(O.c.id)
    result = await conn.execute(stmt, [row])
    return result.first() is not None


async def claim_due(store: Store, *, now: float, limit: int, lease_s: float) -> list[Delivery]:
    due = sa.or_(
        sa.and_(O.c.state == PENDING, O.c.next_attempt_at <= now),
        sa.and_(O.c.state == SENDING, O.c.lease_until < now),
    )
    candidates = sa.select(O.c.id).where(due).order_by(O.c.next_attempt_at, O.c.id).limit(limit)
    if store.dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    stmt = (
        sa.update(O)
        .where(O.c.id.in_(candidates.scalar_subquery()))
        .values(state=SENDING, lease_until=now + lease_s, attempts=O.c.attempts + 1)
        .returning(
            O.c.id, O.c.delivery_id, O.c.incident_id, O.c.channel, O.c.event, O.c.payload, O.c.attempts
        )
    )
    async with store.write() as conn:
        rows = (await conn.execute(stmt)).all()
    return [Delivery(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6]) for r in rows]


async def mark_in(
    conn: Conn,
    row_id: int,
    *,
    state: str,
    now: float,
    error: str | None = None,
    next_attempt_at: float | None = None,
) -> None:
    """Set a delivery's state inside the caller's transaction."""
    values: dict[str, Any] = {"state": state, "lease_until": None, "last_error": error}
    if state == DELIVERED:
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    await conn.execute(_MARK, {**values, "_row_id": row_id})


async def triggered_channels(conn: Conn, incident_id: str) -> list[str]:
    """The channel keys that were paged for this incident, at any level (its ``trigger`` or an
    ``escalate:N`` entry), in the order they were first queued: resolve and acknowledge go there too."""
    paged = sa.or_(O.c.event == "trigger", O.c.event.like("escalate:%"))
    rows = await conn.execute(
        sa.select(O.c.channel, sa.func.min(O.c.id).label("first"))
        .where(O.c.incident_id == incident_id, paged)
        .group_by(O.c.channel)
        .order_by("first")
    )
    return [r[0] for r in rows]


async def mark(
    store: Store,
    row_id: int,
    *,
    state: str,
    now: float,
    error: str | None = None,
    next_attempt_at: float | None = None,
) -> None:
    async with store.write() as conn:
        await mark_in(conn, row_id, state=state, now=now, error=error, next_attempt_at=next_attempt_at)


async def next_due(store: Store) -> float | None:
    async with store.read() as conn:
        value = await conn.scalar(sa.select(sa.func.min(O.c.next_attempt_at)).where(O.c.state == PENDING))
    return None if value is None else float(value)


async def backlog(store: Store) -> int:
    async with store.counting() as conn:  # ix_outbox_due, never the whole outbox retention keeps
        value = await conn.scalar(
            sa.select(sa.func.count()).select_from(O).where(O.c.state.in_([PENDING, SENDING]))
        )
    return int(value or 0)


async def for_incident(store: Store, incident_id: str) -> list[dict[str, Any]]:
    async with store.read() as conn:
        rows = await conn.execute(
            sa.select(O.c.channel, O.c.event, O.c.state, O.c.attempts, O.c.last_error, O.c.delivery_id)
            .where(O.c.incident_id == incident_id)
            .order_by(O.c.id)
        )
        return [plain(r) for r in rows.mappings()]
