"""The outbox worker: delivers queued notifications, retrying transient failures with backoff.

429 and 5xx (and unreachable receivers) are retried, honouring Retry-After, else after a delay drawn
uniformly below a step doubling from ``outbox_backoff_s`` up to 5 minutes (full jitter, ``model.retry``:
deliveries that failed together do not retry together), ``outbox_max_attempts`` times; other 4xx fail
at once and are recorded. A notification whose delivery was cut by a crash is re-sent after its lease
expires, with the same ``delivery_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from service import errors
from service.escalation.channels.base import Notifier
from service.model import retry
from service.observability import Metrics
from service.records import outbox
from service.records.store import Store

log = structlog.get_logger(__name__)

BATCH = 50  # notifications claimed at once
LEASE_S = 60.0  # a claimed notification not marked within this is sent again (the worker died)
BACKOFF_CAP_S = 300.0  # the longest retry delay of our own (a receiver's Retry-After may ask for more)


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        notifiers: dict[str, Notifier],
        metrics: Metrics,
        *,
        max_attempts: int,
        backoff_s: float,
        fallback: Callable[[str], str | None] = lambda _channel: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._notifiers = notifiers
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._fallback = fallback
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                delivered = await self.run_once(now=self._clock())
                wait = 0.0 if delivered else await self._idle_wait()
            except errors.StoreUnavailable as exc:
                log.warning("outbox.store_unavailable", reason=str(exc))
                wait = 1.0
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def _idle_wait(self) -> float:
        due = await outbox.next_due(self._store)
        self._metrics.outbox_backlog.set(await outbox.backlog(self._store))
        if due is None:
            return 5.0
        return min(5.0, max(0.01, due - self._clock()))

    async def run_once(self, *, now: float) -> int:
        """Deliver what is due now; returns how many entries were attempted."""
        batch = await outbox.claim_due(self._store, now=now, limit=BATCH, lease_s=LEASE_S)
        if batch:
            await asyncio.gather(*(self._deliver(d) for d in batch))
        return len(batch)

    async def _deliver(self, delivery: outbox.Delivery) -> None:
        notifier = self._notifiers.get(delivery.channel)
        now = self._clock()
        if notifier is None:
            await self._fail(delivery, f"channel {delivery.channel!r} is not configured")
            return
        bound = log.bind(
            delivery_id=delivery.delivery_id,
            channel=delivery.channel,
            notification=delivery.event,
            incident_id=delivery.incident_id,
            attempt=delivery.attempts,
        )
        try:
            await notifier.send(delivery)
        except errors.Transient as exc:
            self._metrics.notifications.labels(channel=delivery.channel, result="retry").inc()
            if delivery.attempts >= self._max_attempts:
                bound.error("notify.failed", reason=str(exc))
                await self._fail(delivery, str(exc))
                return
            delay = retry.backoff(delivery.attempts, self._backoff_s, BACKOFF_CAP_S, exc.delay)
            bound.warning("notify.retry", reason=str(exc), delay_s=delay)
            await outbox.mark(
                self._store,
                delivery.id,
                state=outbox.PENDING,
                now=now,
                error=str(exc),
                next_attempt_at=self._clock() + delay,
            )
            return
        except errors.Permanent as exc:
            self._metrics.notifications.labels(channel=delivery.channel, result="failed").inc()
            bound.error("notify.failed", reason=str(exc))
            await self._fail(delivery, str(exc))
            return
        except Exception as exc:  # a bug in a notifier must not stop the others: record and give up on it
            self._metrics.notifications.labels(channel=delivery.channel, result="failed").inc()
            bound.exception("notify.crashed")
            await self._fail(delivery, f"{type(exc).__name__}: {exc}"[:500])
            return
        self._metrics.notifications.labels(channel=delivery.channel, result="delivered").inc()
        await outbox.mark(self._store, delivery.id, state=outbox.DELIVERED, now=self._clock())

    async def _fail(self, delivery: outbox.Delivery, error: str) -> None:
        """Record the permanent failure and, in the same transaction, queue the event to the fallback."""
        now = self._clock()
        fallback = self._fallback(delivery.channel)
        async with self._store.write() as conn:
            await outbox.mark_in(conn, delivery.id, state=outbox.FAILED, now=now, error=error)
            if fallback is not None:
                await outbox.enqueue(
                    self._store,
                    conn,
                    incident_id=delivery.incident_id,
                    channel=fallback,
                    event=delivery.event,
                    payload={
                        **delivery.payload,
                        "failed_channel": delivery.channel,
                        "failed_error": error[:500],
                    },
                    now=now,
                )
        if fallback is not None:
            log.warning(
                "notify.fallback", channel=delivery.channel, fallback=fallback, notification=delivery.event
            )
            self.wake()
