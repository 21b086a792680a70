"""The dispatcher: background workers that claim inbox rows and run the pipeline on each.

Bounded concurrency (``workers``); woken by intake after each commit, and by a 1 s tick for expired
leases. Rows of one fingerprint are never claimed together (see ``records.inbox``). On stop it finishes
what is running (up to a grace period) and releases the claims it still holds (uncounted).

Poison rows: every claim counts (``attempts``). A row claimed again after a claim that never finished —
the process died, hung and was killed, or lost its lease — is a *suspect*: when this dispatcher is idle it
runs alone (the other rows of its batch are released uncounted), so a row that kills the worker cannot
take its neighbours' counts up with it. A row claimed more than ``max_claims`` times is not processed
again: it is handed to ``quarantine`` (its incident is escalated with the reason), and a crash loop on one
alert ends. Known limit: a suspect claimed while other rows are in flight runs beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

import structlog

from service import errors
from service.observability import Metrics
from service.records import inbox
from service.records.store import Store

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5  # processing errors (exceptions) before a row is given up
MAX_CLAIMS = 3  # claims that never finished before a row is quarantined


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        process: Callable[[inbox.InboxRow], Awaitable[None]],
        metrics: Metrics,
        *,
        workers: int,
        lease_s: float,
        quarantine: Callable[[inbox.InboxRow], Awaitable[None]] | None = None,
        max_claims: int = MAX_CLAIMS,
    ) -> None:
        self.name = worker_name()
        self._store = store
        self._process = process
        self._metrics = metrics
        self._workers = workers
        self._lease_s = lease_s
        self._quarantine = quarantine
        self._max_claims = max_claims
        self._batch = max(1, workers // 4)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, let running rows finish for ``grace_s``, release the rest."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            _done, pending = await asyncio.wait(self._inflight, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(errors.StoreUnavailable):
            released = await inbox.release(self._store, worker=self.name, uncount=True)
            if released:
                log.info("dispatcher.released", rows=released)

    async def _run(self) -> None:
        while not self._stopping:
            free = self._workers - len(self._inflight)
            claimed: list[inbox.InboxRow] = []
            # claim in batches: under load, claiming each time one row finishes costs a claim per row
            if free > 0 and (free >= self._batch or not self._inflight):
                try:
                    claimed = await inbox.claim(
                        self._store, self.name, limit=free, lease_s=self._lease_s, now=time.time()
                    )
                except errors.StoreUnavailable as exc:
                    log.warning("dispatcher.store_unavailable", reason=str(exc))
            if claimed and not self._inflight:
                claimed = await self._isolate_suspects(claimed)
            for row in claimed:
                task = asyncio.create_task(self._one(row), name=f"inbox-{row.id}")
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()

    async def _isolate_suspects(self, claimed: list[inbox.InboxRow]) -> list[inbox.InboxRow]:
        """With nothing else in flight, a suspect row runs alone: the rest of the batch goes back uncounted.

        Rows due for quarantine are never processed, so they do not count as suspects here."""
        suspects = [r for r in claimed if 1 < r.attempts <= self._max_claims]
        if not suspects:
            return claimed
        keep = [r for r in claimed if r.attempts > self._max_claims or r is suspects[0]]
        others = [r.id for r in claimed if r not in keep]
        if others:
            try:
                await inbox.release(self._store, worker=self.name, ids=others, uncount=True)
            except errors.StoreUnavailable as exc:  # their leases expire; they are claimed again later
                log.warning("dispatcher.store_unavailable", reason=str(exc))
        log.info("dispatcher.suspect_alone", row=suspects[0].id, attempts=suspects[0].attempts)
        return keep

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # a finished row may unblock the next row of its fingerprint

    async def _one(self, row: inbox.InboxRow) -> None:
        structlog.contextvars.bind_contextvars(inbox_id=row.id, fingerprint=row.fingerprint)
        heartbeat = asyncio.create_task(self._keep_lease(row.id), name=f"lease-{row.id}")
        try:
            if row.attempts > self._max_claims and self._quarantine is not None:
                log.warning("inbox.quarantined", attempts=row.attempts, max_claims=self._max_claims)
                self._metrics.inbox_quarantined.inc()
                await self._quarantine(row)
            else:
                await self._process(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._metrics.pipeline_errors.inc()
            give_up = row.attempts >= MAX_ATTEMPTS
            log.exception("pipeline.failed", attempts=row.attempts, give_up=give_up)
            with contextlib.suppress(errors.StoreUnavailable):
                await inbox.fail(
                    self._store,
                    row.id,
                    error=f"{type(exc).__name__}: {exc}",
                    now=time.time(),
                    give_up=give_up,
                )
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            structlog.contextvars.unbind_contextvars("inbox_id", "fingerprint")

    async def _keep_lease(self, row_id: int) -> None:
        """Extend the claim while the row is worked on (diagnosis, actions and verification take time)."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            with contextlib.suppress(errors.StoreUnavailable):
                await inbox.extend(self._store, row_id, self.name, until=time.time() + self._lease_s)
