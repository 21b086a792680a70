"""Service-wide switches kept in the store (``service_state``), so that they survive restarts of the service
and of Redis: today the kill switch."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from service.records import schema
from service.records.store import Store, iso

S = schema.service_state
PAUSED = "paused"
_READ = sa.select(S.c.value).where(S.c.key == PAUSED)  # built once: read before every automatic action


async def set_paused(store: Store, paused: bool, *, by: str, now: float) -> None:
    value = orjson.dumps({"paused": paused, "by": by, "since": now}).decode()
    async with store.write() as conn:
        changed = await conn.execute(
            sa.update(S).where(S.c.key == PAUSED).values(value=value, updated_at=now)
        )
        if not changed.rowcount:
            await conn.execute(sa.insert(S).values(key=PAUSED, value=value, updated_at=now))


async def paused(store: Store) -> bool:
    async with store.read() as conn:
        value = await conn.scalar(_READ)
    return bool(value and orjson.loads(value).get("paused"))


async def state(store: Store) -> dict[str, object]:
    """The kill switch as stored: paused, by whom, since when (RFC 3339); not paused when never set."""
    async with store.read() as conn:
        value = await conn.scalar(sa.select(S.c.value).where(S.c.key == PAUSED))
    data = orjson.loads(value) if value else {}
    paused_ = bool(data.get("paused"))
    return {
        "paused": paused_,
        "by": data.get("by"),
        "since": iso(data.get("since")) if data.get("since") else None,
    }
