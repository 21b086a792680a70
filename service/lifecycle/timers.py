"""Escalation timers: raise unacknowledged incidents through the matrix when their next level is due.

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

import sqlalchemy as sa
import structlog

from service import errors
from service.lifecycle.transitions import Lifecycle
from service.records import schema
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
        """Raise every incident whose next level is due at ``now`` by one level; returns how many."""
        due = (
            sa.select(T)
            .where(
                T.c.state == "escalated",
                T.c.acked_at.is_(None),
                T.c.resolved_at.is_(None),
                T.c.next_escalation_at.is_not(None),
                T.c.next_escalation_at <= now,
            )
            .order_by(T.c.next_escalation_at)
            .limit(100)
        )
        raised = 0
        async with self._store.write() as conn:
            for row in (await conn.execute(due)).mappings().all():
                if await self._lifecycle.raise_level(conn, plain(row), now=now) is not None:
                    raised += 1
        if raised:
            self._on_notify()
            log.info("timers.raised", incidents=raised)
        return raised
