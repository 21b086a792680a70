"""The store-derived gauges of ``/metrics`` (incidents by state, inbox and outbox backlog, the kill switch),
counted by a background task so that a scrape — open to anyone — never queries the store.

The task counts every ``interval_s``, and again soon after the dispatcher finishes a row (at most once per
``min_gap_s``): the inbox backlog reads 0 about a second after the last alert was handled, whatever the
interval. In between, intake adds the rows it commits (``Metrics.inbox_pending``), so the backlog never reads
0 while an alert it accepted waits. When the store cannot answer, the gauges keep their last values.

Never writes to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from service import errors
from service.observability import Metrics
from service.records import inbox, outbox, switches
from service.records import incidents as incident_rows
from service.records.store import Store

log = structlog.get_logger(__name__)

Row = TypeVar("Row")
#: The least time between two counts triggered by finished rows (each is three COUNT queries).
MIN_GAP_S = 1.0


class GaugeRefresher:
    """Counts what the gauges show, off the request path."""

    def __init__(
        self, store: Store, metrics: Metrics, *, interval_s: float, min_gap_s: float = MIN_GAP_S
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._interval_s = interval_s
        self._min_gap_s = min(min_gap_s, interval_s)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Count now; False (and the last values kept) when the store cannot answer."""
        added = self._metrics.inbox_added
        try:
            by_state = await incident_rows.count_by_state(self._store)
            outbox_rows = await outbox.backlog(self._store)
            inbox_rows = await inbox.backlog(self._store)
            paused = await switches.paused(self._store)  # the stored switch: true after a restart too
        except errors.StoreUnavailable as exc:
            log.warning("metrics.refresh_failed", reason=str(exc)[:300])
            return False
        except Exception:  # a bug here must not end the task: the gauges just stay as they were
            log.exception("metrics.refresh_crashed")
            return False
        # rows intake committed while this counted may be counted twice: over, never under, until next time
        pending = inbox_rows + self._metrics.inbox_added - added
        self._metrics.set_store_gauges(by_state, outbox=outbox_rows, inbox=pending)
        self._metrics.kill_switch.set(1 if paused else 0)
        return True

    def wake(self) -> None:
        """Count again soon (a row was processed: the backlog and the incident states may have changed)."""
        self._wake.set()

    def after(self, process: Callable[[Row], Awaitable[None]]) -> Callable[[Row], Awaitable[None]]:
        """``process``, waking the refresher each time it finishes a row."""

        async def run(row: Row) -> None:
            try:
                await process(row)
            finally:
                self._wake.set()

        return run

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            counted_at = loop.time()
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()  # what finishes from now on wakes the next round
            await asyncio.sleep(max(0.0, counted_at + self._min_gap_s - loop.time()))
