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
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog

from service import errors
from service.lifecycle.transitions import Lifecycle
from service.records import schema
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
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._on_notify = on_notify
        self._clock = clock
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

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
        async with self._store.write() as conn:
            for row in await _due(conn, _PAGE_DUE, now):
                moved += await self._lifecycle.page_due(conn, row, now=now) is not None
            for row in await _due(conn, _HELD, now):
                moved += await self._lifecycle.stand_alone(conn, row, now=now) is not None
            for row in await _due(conn, _RAISE, now):
                moved += await self._lifecycle.raise_level(conn, row, now=now) is not None
        if moved:
            self._on_notify()
            log.info("timers.raised", incidents=moved)
        return moved


_UNACKED_OPEN = (T.c.acked_at.is_(None), T.c.resolved_at.is_(None))
#: an automatic action still runs or verifies at the page deadline
_PAGE_DUE = (T.c.state.in_(("remediating", "verifying")), T.c.resolved_at.is_(None), T.c.page_due_at)
#: a linked incident held under its cause (level 0) whose cause resolved a grace period ago
_HELD = (T.c.state == "escalated", T.c.escalation_level == 0, *_UNACKED_OPEN, T.c.next_escalation_at)
#: the next level of the matrix
_RAISE = (T.c.state == "escalated", T.c.escalation_level >= 1, *_UNACKED_OPEN, T.c.next_escalation_at)


async def _due(conn: Conn, query: tuple[Any, ...], now: float) -> list[dict[str, Any]]:
    """Rows matching ``query`` (conditions, then the timer column) whose timer is at or before ``now``."""
    *conditions, timer = query
    stmt = sa.select(T).where(*conditions, timer.is_not(None), timer <= now).order_by(timer).limit(100)
    return [plain(r) for r in (await conn.execute(stmt)).mappings().all()]
