"""Where the Slack app posted each incident's message (``slack_messages``): one row per incident, written
once when ``chat.postMessage`` answered, read before every later event so that it updates that message
(``chat.update``) and replies in its thread. Only the ``slack_app`` channel writes this table."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from service.records import schema
from service.records.store import Store

M = schema.slack_messages


@dataclass(frozen=True, slots=True)
class Posted:
    """An incident's Slack message: the channel id and the message's ``ts`` (its id in that channel)."""

    channel: str
    ts: str


async def get(store: Store, incident_id: str) -> Posted | None:
    """The incident's message, or None when none was posted yet."""
    async with store.read() as conn:
        row = (
            await conn.execute(sa.select(M.c.channel, M.c.ts).where(M.c.incident_id == incident_id))
        ).first()
    return Posted(row.channel, row.ts) if row is not None else None


async def save(store: Store, incident_id: str, posted: Posted, *, now: float) -> Posted:
    """Remember the incident's message; when another writer remembered one first, that one is kept and
    returned (the caller's message is then a stray duplicate)."""
    async with store.write() as conn:
        await conn.execute(
            store.insert_ignore(M),
            [{"incident_id": incident_id, "channel": posted.channel, "ts": posted.ts, "updated_at": now}],
        )
        row = (await conn.execute(sa.select(M.c.channel, M.c.ts).where(M.c.incident_id == incident_id))).one()
    return Posted(row.channel, row.ts)


async def touch(store: Store, incident_id: str, *, now: float) -> None:
    """Note that the message was updated at ``now``."""
    async with store.write() as conn:
        await conn.execute(sa.update(M).where(M.c.incident_id == incident_id).values(updated_at=now))
