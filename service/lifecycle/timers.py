"""Escalation timers: raise unacknowledged incidents through the matrix when their next level is due; page an
incident whose page deadline passed while an automatic action verifies; let a held linked incident that
outlived its cause stand alone.

The due time is stored on the incident (``next_escalation_at``), so timers survive restarts; raising a level
(``Lifecycle.raise_level``) is a compare-and-set on the level read, and its notification is keyed by
(incident, channel, ``escalate:N``), so two workers, or a restart between, never skip or repeat a level.
This module only finds what is due; it writes nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
import structlog

from service import errors
from service.lifecycle.transitions import Lifecycle
from service.records import comms as comms_rows
from service.records import schema, war_rooms
from service.records.sqlite_inline import Conn
from service.records.store import Store, plain

log = structlog.get_logger(__name__)
T = schema.incidents


class EscalationTimers:
    def __init__(
        self,
        store: Store,
        lifecycle: Lifecycle,
        *,
        on_notify: Callable[[], None],
        clock: Callable[[], float] = time.time,
        interval_s: float = 5.0,
        publish: Callable[[str, str, str], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._on_notify = on_notify
        self._clock = clock
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        #: ``REMEDIATOR_STATUSPAGE_AUTO``: publishes (incident, kind, step) without a click (None: off)
        self._publish = publish

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="escalation-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once(now=self._clock())
            except errors.StoreUnavailable as exc:
                log.warning("timers.store_unavailable", reason=str(exc))
            await asyncio.sleep(self._interval)

    async def run_once(self, *, now: float) -> int:
        """Everything due at ``now``: pages whose deadline passed while an action verifies, held linked
        incidents that outlived their cause, and the next escalation level; returns how many moved."""
        moved = 0
        # SQLite statements run inline and never suspend: ``_turn()`` after each incident gives the loop back,
        # so that a batch of due incidents (each a bundle to build) never holds it for the whole batch
        async with self._store.write() as conn:
            for row in await _due(conn, _PAGE_DUE, now):
                moved += await self._lifecycle.page_due(conn, row, now=now) is not None
                await _turn()
            for row in await _due(conn, _HELD, now):
                moved += await self._lifecycle.stand_alone(conn, row, now=now) is not None
                await _turn()
            for row in await _due(conn, _RAISE, now):
                moved += await self._lifecycle.raise_level(conn, row, now=now) is not None
                await _turn()
            comms = 0  # drafts and reminders of customer communication (not counted as moves)
            for row in await _comms_due(conn, now):
                comms += await self._lifecycle.comms_due(conn, row, now=now)
                await _turn()
        if comms:
            self._on_notify()
        await self._auto_publish(now)
        await self._war_rooms(now)
        if moved:
            self._on_notify()
            log.info("timers.raised", incidents=moved)
        return moved

    async def _war_rooms(self, now: float) -> None:
        """Record each war room the ``warroom`` channel opened in its incident, and queue the archive of
        every room whose ``archive_due_at`` passed (the channel archives it)."""
        async with self._store.write() as conn:
            for room in await war_rooms.unrecorded(conn):
                await self._lifecycle.war_room_opened(conn, room, now=now)
            due = await war_rooms.archive_due(conn, now=now)
            queued = [await self._lifecycle.war_room_archive(conn, room, now=now) for room in due]
        if any(queued):
            self._on_notify()

    async def _auto_publish(self, now: float) -> None:
        """Publish the Investigating and Resolved status-page drafts without a click (a failed try waits
        ``AUTO_RETRY_S``); the publishing itself is the one path humans take (``publish``)."""
        if self._publish is None:
            return
        async with self._store.read() as conn:
            due = await comms_rows.auto_due(
                conn, kind="statuspage", steps=AUTO_STEPS, before=now - AUTO_RETRY_S
            )
        for draft in due:
            await self._publish(draft.incident_id, draft.kind, draft.step)


#: the status-page steps ``REMEDIATOR_STATUSPAGE_AUTO`` publishes, and how long a failed try waits
AUTO_STEPS = ("investigating", "resolved")
AUTO_RETRY_S = 60.0
#: customer-impacting incidents handed to humans (drafts and reminders), or resolved within the hour
_COMMS_RECENT_S = 3600.0


async def _turn() -> None:
    """Let the event loop run other callbacks (the transaction stays open; other writers wait for it)."""
    await asyncio.sleep(0)


async def _comms_due(conn: Conn, now: float) -> list[dict[str, Any]]:
    """Incidents whose customer communication the lifecycle looks at: customers feel them, not a drill,
    handed to humans, still open or resolved within ``_COMMS_RECENT_S``."""
    stmt = (
        sa.select(T)
        .where(T.c.customer_impact.is_(True), T.c.drill.is_(False), T.c.escalated_at.is_not(None))
        .where(sa.or_(T.c.resolved_at.is_(None), T.c.resolved_at >= now - _COMMS_RECENT_S))
        .order_by(T.c.started_at)
        .limit(100)
    )
    return [plain(r) for r in (await conn.execute(stmt)).mappings().all()]


_UNACKED_OPEN = (T.c.acked_at.is_(None), T.c.resolved_at.is_(None))
#: an automatic action still runs or verifies at the page deadline
_PAGE_DUE = (T.c.state.in_(("remediating", "verifying")), T.c.resolved_at.is_(None), T.c.page_due_at)
#: a linked incident held under its cause (level 0) whose cause resolved a grace period ago
_HELD = (T.c.state == "escalated", T.c.escalation_level == 0, *_UNACKED_OPEN, T.c.next_escalation_at)
#: the next level of the matrix
_RAISE = (
    T.c.state == "escalated",
    T.c.escalation_level >= 1,
    T.c.drill.is_(False),  # a drill is not escalated through the matrix: nobody is on call for it
    *_UNACKED_OPEN,
    T.c.next_escalation_at,
)


async def _due(conn: Conn, query: tuple[Any, ...], now: float) -> list[dict[str, Any]]:
    """Rows matching ``query`` (conditions, then the timer column) whose timer is at or before ``now``."""
    *conditions, timer = query
    stmt = sa.select(T).where(*conditions, timer.is_not(None), timer <= now).order_by(timer).limit(100)
    return [plain(r) for r in (await conn.execute(stmt)).mappings().all()]
