"""Each incident's war room (``war_rooms``): one row per incident, claimed BEFORE Slack is asked to create the
channel, so that two replicas (or a restart) never create two channels for one incident.

A row's life: ``claim`` (name, no ``channel_id``: a worker is creating it) → ``created`` (Slack answered
with the channel id) → ``opened`` (``url`` set: people invited, bundle and bridge posted and pinned; later
events may be posted) → ``archive_at`` (the incident resolved) → ``archive_queued`` (the timers queued the
archive) → ``archived``. A claim whose worker died is taken over once it is ``stale_s`` old (its
``created_at`` is the claim's time until the room is opened). Only the war-room channel
(``escalation.channels.warroom``) writes this table; the timers read it (``unrecorded``, ``archive_due``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.records import schema
from service.records.sqlite_inline import Conn
from service.records.store import Store

W = schema.war_rooms
E = schema.timeline
I = schema.incidents  # noqa: E741 — read only: which bundles lack their room

#: the timeline event that records a room in the incident (written by the lifecycle)
OPENED_EVENT = "war_room.opened"


@dataclass(frozen=True, slots=True)
class Room:
    """An incident's war room as stored; ``url`` is set once it is open (``ready``)."""

    incident_id: str
    name: str
    channel_id: str | None
    url: str | None
    created_at: float
    archive_due_at: float | None
    archived_at: float | None

    @property
    def ready(self) -> bool:
        return self.channel_id is not None and self.url is not None


def _room(row: Any) -> Room:
    return Room(
        row.incident_id,
        row.name,
        row.channel_id,
        row.url,
        float(row.created_at),
        None if row.archive_due_at is None else float(row.archive_due_at),
        None if row.archived_at is None else float(row.archived_at),
    )


async def get(store: Store, incident_id: str) -> Room | None:
    """The incident's room, or None when nobody claimed one."""
    async with store.read() as conn:
        row = (await conn.execute(sa.select(W).where(W.c.incident_id == incident_id))).first()
    return _room(row) if row is not None else None


async def claim(store: Store, incident_id: str, *, name: str, now: float, stale_s: float) -> bool:
    """Claim the opening of the incident's room: True when this caller inserted its row, or took over a
    claim older than ``stale_s`` that never got as far as an open room (its worker died)."""
    async with store.write() as conn:
        row = {"incident_id": incident_id, "name": name, "created_at": now}
        inserted = await conn.execute(store.insert_ignore(W).returning(W.c.incident_id), [row])
        if inserted.first() is not None:
            return True
        taken = await conn.execute(
            sa.update(W)
            .where(W.c.incident_id == incident_id, W.c.url.is_(None), W.c.created_at < now - stale_s)
            .values(created_at=now)
            .returning(W.c.incident_id)
        )
        return taken.first() is not None


async def created(store: Store, incident_id: str, *, name: str, channel_id: str, now: float) -> None:
    """Slack created the channel: its final name and id (the claim's clock restarts at ``now``)."""
    async with store.write() as conn:
        await conn.execute(
            sa.update(W)
            .where(W.c.incident_id == incident_id)
            .values(name=name, channel_id=channel_id, created_at=now)
        )


async def release(store: Store, incident_id: str) -> None:
    """Give up a claim that created nothing (Slack refused for good), so that a later event tries again."""
    async with store.write() as conn:
        await conn.execute(sa.delete(W).where(W.c.incident_id == incident_id, W.c.channel_id.is_(None)))


async def opened(store: Store, incident_id: str, *, url: str) -> None:
    """The room is open (people invited, bundle and bridge posted): later events may be posted there."""
    async with store.write() as conn:
        await conn.execute(sa.update(W).where(W.c.incident_id == incident_id).values(url=url))


async def archive_at(store: Store, incident_id: str, *, at: float) -> None:
    """The incident resolved: archive its room at ``at`` (unless it is archived already)."""
    async with store.write() as conn:
        await conn.execute(
            sa.update(W)
            .where(W.c.incident_id == incident_id, W.c.archived_at.is_(None))
            .values(archive_due_at=at)
        )


async def archived(store: Store, incident_id: str, *, now: float) -> None:
    """Slack archived the room."""
    async with store.write() as conn:
        await conn.execute(
            sa.update(W).where(W.c.incident_id == incident_id).values(archived_at=now, archive_due_at=None)
        )


async def unrecorded(conn: Conn, *, limit: int = 100) -> list[Room]:
    """Open rooms whose incident's stored bundle shows no war room (the timers record them there). Asked
    of the bundle itself, not of the ``war_room.opened`` event: a transition that wrote a bundle it had
    read before the room was recorded dropped it, and the next tick puts it back."""
    missing = I.c.bundle.like('%"war_room":null%')  # orjson's compact form; a string value escapes '"'
    stmt = (
        sa.select(W)
        .join(I, I.c.id == W.c.incident_id)
        .where(W.c.channel_id.is_not(None), W.c.url.is_not(None), missing)
        .order_by(W.c.created_at)
        .limit(limit)
    )
    return [_room(r) for r in (await conn.execute(stmt)).all()]


async def recorded(conn: Conn, incident_id: str) -> bool:
    """Whether the incident's timeline already says its room opened."""
    found = await conn.execute(
        sa.select(E.c.id).where(E.c.incident_id == incident_id, E.c.kind == OPENED_EVENT).limit(1)
    )
    return found.first() is not None


async def archive_due(conn: Conn, *, now: float, limit: int = 100) -> list[Room]:
    """Rooms whose archive is due at ``now`` and not queued yet."""
    stmt = (
        sa.select(W)
        .where(
            W.c.archive_due_at.is_not(None),
            W.c.archive_due_at <= now,
            W.c.archived_at.is_(None),
            W.c.channel_id.is_not(None),
        )
        .order_by(W.c.archive_due_at)
        .limit(limit)
    )
    return [_room(r) for r in (await conn.execute(stmt)).all()]


async def archive_queued(conn: Conn, incident_id: str) -> None:
    """The archive of the room was queued (in the caller's transaction): not due any more."""
    await conn.execute(sa.update(W).where(W.c.incident_id == incident_id).values(archive_due_at=None))
