"""Cross-replica wake-ups on PostgreSQL: ``NOTIFY remediator_inbox`` when intake commits new rows, and a
``LISTEN`` connection per replica that wakes its dispatcher, so every replica starts on new work at once
instead of at its next poll. The dispatcher's own 1 s tick stays as the safety net (lease expiry).
``asyncpg`` is imported when a listener runs (PostgreSQL store only), not with this module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog

from service.records.sqlite_inline import Conn

log = structlog.get_logger(__name__)
CHANNEL = "remediator_inbox"


async def notify(conn: Conn) -> None:
    """Queue the notification in the caller's transaction: it is delivered when (and only if) it commits."""
    await conn.execute(sa.text(f"NOTIFY {CHANNEL}"))


class InboxListener:
    """Keeps one LISTEN connection open (reconnecting) and calls ``on_notify`` for each notification."""

    def __init__(self, dsn: str, on_notify: Callable[[], None]) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _heard(self, *_args: Any) -> None:
        self._on_notify()

    async def _run(self) -> None:
        import asyncpg

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, event=lost: event.set())
                await conn.add_listener(CHANNEL, self._heard)
                self._on_notify()  # catch up with what was committed while we were not listening
                await lost.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("wakeups.disconnected", reason=f"{type(exc).__name__}")
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            await asyncio.sleep(1.0)
