"""The dispatcher: background workers that claim inbox rows and run the pipeline on each.

Bounded concurrency (``workers``); woken by intake after each commit, and by a 1 s tick for expired
leases. Rows of one fingerprint are never claimed together (see ``records.inbox``). On stop it finishes
what is running (up to a grace period) and releases the claims it still holds (uncounted).

Takeover: a claim's lease is short (``lease_s``, a few seconds) and ONE heartbeat per dispatcher renews
every claim it holds in one statement (every ``heartbeat_s``), so a replica that dies loses its rows to
another one within a lease, and a long diagnosis keeps its row. A worker that stalled past its lease may
have been overtaken: the pipeline's writes are fenced (``errors.LostClaim``: the transaction rolls back,
the row is dropped here, the new owner does it). A row whose processing met ``errors.StoreUnavailable``
stays with this worker: it is run again as soon as the store answers (backoff with jitter), without
counting an attempt.

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
from service.model import retry
from service.observability import Metrics
from service.records import inbox
from service.records.store import Store

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5  # processing errors (exceptions) before a row is given up
MAX_CLAIMS = 3  # claims that never finished before a row is quarantined
HEARTBEAT_MAX_S = 1.0  # claims are renewed at least this often (and at least 4 times a lease)
OUTAGE_BASE_S, OUTAGE_CAP_S = 0.2, 2.0  # backoff while the store is unavailable (full jitter)


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
        heartbeat_s: float | None = None,
    ) -> None:
        self.name = worker_name()
        self._store = store
        self._process = process
        self._metrics = metrics
        self._workers = workers
        self._lease_s = lease_s
        self._heartbeat_s = heartbeat_s or min(HEARTBEAT_MAX_S, lease_s / 4)
        self._quarantine = quarantine
        self._max_claims = max_claims
        self._batch = max(1, workers // 4)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False
        #: when this dispatcher last failed to reach the store: for a lease after it, expired claims are not
        #: taken (they expired in the outage; their live owners renew them once their heartbeat gets through)
        self._outage_at = -float("inf")

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher")
        self._heartbeat = asyncio.create_task(self._keep_leases(), name="dispatcher-heartbeat")

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
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            free = self._workers - len(self._inflight)
            claimed: list[inbox.InboxRow] = []
            # claim in batches: under load, claiming each time one row finishes costs a claim per row
            if free > 0 and (free >= self._batch or not self._inflight):
                try:
                    claimed = await inbox.claim(
                        self._store,
                        self.name,
                        limit=free,
                        lease_s=self._lease_s,
                        now=time.time(),
                        take_expired=time.monotonic() - self._outage_at > self._lease_s,
                    )
                except errors.StoreUnavailable as exc:
                    self._outage_at = time.monotonic()
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
        try:
            outages = 0
            while True:
                try:
                    await self._run_row(row)
                    return
                except errors.StoreUnavailable as exc:  # not the row's fault: ours to run again, uncounted
                    outages += 1
                    log.warning("pipeline.store_unavailable", reason=str(exc), retry=outages)
                    await self._until_store_answers(outages)
        except asyncio.CancelledError:
            raise
        except errors.LostClaim:
            log.warning("inbox.claim_lost", attempts=row.attempts)  # the new owner does it; nothing committed
        except Exception as exc:
            self._metrics.pipeline_errors.inc()
            give_up = row.attempts >= MAX_ATTEMPTS
            log.exception("pipeline.failed", attempts=row.attempts, give_up=give_up)
            await self._fail(row, f"{type(exc).__name__}: {exc}", give_up=give_up)
        finally:
            structlog.contextvars.unbind_contextvars("inbox_id", "fingerprint")

    async def _run_row(self, row: inbox.InboxRow) -> None:
        if row.attempts > self._max_claims and self._quarantine is not None:
            log.warning("inbox.quarantined", attempts=row.attempts, max_claims=self._max_claims)
            self._metrics.inbox_quarantined.inc()
            await self._quarantine(row)
        else:
            await self._process(row)

    async def _until_store_answers(self, outages: int) -> None:
        """Back off (full jitter) until a write reaches the store again: the heartbeat itself, which also
        renews this worker's claims at once."""
        while True:
            await asyncio.sleep(retry.backoff(outages, OUTAGE_BASE_S, OUTAGE_CAP_S))
            try:
                await inbox.heartbeat(self._store, self.name, until=time.time() + self._lease_s)
                return
            except errors.StoreUnavailable:
                outages += 1

    async def _fail(self, row: inbox.InboxRow, error: str, *, give_up: bool) -> None:
        """Record the error (the row is then claimable again, counted); retried while the store is away:
        the claim stays ours (and renewed) until the error is recorded."""
        outages = 0
        while True:
            try:
                if not await inbox.fail(self._store, row, error=error, now=time.time(), give_up=give_up):
                    log.warning("inbox.claim_lost", attempts=row.attempts)
                return
            except errors.StoreUnavailable:
                outages += 1
                await self._until_store_answers(outages)

    async def _keep_leases(self) -> None:
        """One heartbeat for every row in flight: a single statement renews all of this worker's claims
        (diagnosis, actions and verification take far longer than a lease)."""
        while True:
            await asyncio.sleep(self._heartbeat_s)
            if not self._inflight:
                continue
            try:
                await inbox.heartbeat(self._store, self.name, until=time.time() + self._lease_s)
            except errors.StoreUnavailable as exc:
                self._outage_at = time.monotonic()
                log.warning("dispatcher.heartbeat_failed", reason=str(exc))
