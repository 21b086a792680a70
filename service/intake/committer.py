"""Group commit for the intake hot path: requests that arrive together share one transaction.

Each request hands its inbox rows to ``submit`` and waits; one committer task takes every waiting
request, inserts all their rows in one batched ``INSERT … ON CONFLICT DO NOTHING``, commits, and answers
each request with its own accepted/duplicate counts. A request is answered only after the commit.

A failure of the store fails the batch (``StoreUnavailable``: every sender retries). A batch refused for what
its rows hold (a value PostgreSQL cannot take) is committed again one request at a time, so that the request
holding it is refused alone (``errors.Permanent``) and the others are stored.

On SQLite (a file) the grouping is done by the store's SQLite writer (``records.sqlite_writer``), which
commits on the loop thread between the store's own transactions; there is no committer task then. The task
here serves PostgreSQL, through ``records.pg_intake`` (asyncpg on a connection of its own: one statement, one
round trip per batch, the replicas' wake-up included); an in-memory SQLite store goes through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from service import errors
from service.records import inbox, pg_intake
from service.records.store import Store

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Committed:
    """What one request's commit did: alerts newly stored, already stored, and new ones stored as done
    (decided at intake: a firing alert no rule matches)."""

    accepted: int
    duplicates: int
    decided: int


@dataclass
class _Request:
    rows: Sequence[dict[str, Any]]
    future: asyncio.Future[list[bool]]


class GroupCommitter:
    """Batches inbox inserts from concurrent requests into shared transactions."""

    def __init__(
        self,
        store: Store,
        *,
        on_commit: Callable[[], None],
        dsn: str | None = None,
        max_batch_rows: int = 5000,
    ) -> None:
        """``dsn``: the ``postgresql://`` URL of a PostgreSQL store (required then), for the committer's own
        connection."""
        if store.dialect == "postgresql" and dsn is None:
            raise errors.ConfigError("the intake committer needs the PostgreSQL store's DSN")
        self._store = store
        self._on_commit = on_commit
        self._max_rows = max_batch_rows
        # a statement may run this long before the batch counts as failed (the rows may still land)
        self._pg = (
            pg_intake.Inserter(
                dsn, connect_timeout_s=store.timeout_s, statement_timeout_s=10 * store.timeout_s
            )
            if dsn is not None and store.dialect == "postgresql"
            else None
        )
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, rows: Sequence[dict[str, Any]], *, timeout: float) -> Committed:
        """Store ``rows`` once committed, or raise StoreUnavailable (the sender retries)."""
        writer = self._store.writer
        if writer is not None:
            flags = await _within(writer.insert_inbox(rows), timeout)
            return self._settled(rows, flags)
        if self._task is None or self._task.done():
            raise errors.StoreUnavailable("intake committer is not running")
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(rows, future))
        self._wake.set()
        return self._settled(rows, await _within(future, timeout))

    def _settled(self, rows: Sequence[dict[str, Any]], flags: list[bool]) -> Committed:
        accepted = decided = 0
        pending = False
        for row, new in zip(rows, flags, strict=True):
            if new:
                accepted += 1
                if row["state"] == inbox.DONE:
                    decided += 1
                else:
                    pending = True
        if pending:
            self._on_commit()
        return Committed(accepted, len(rows) - accepted, decided)

    def start(self) -> None:
        if self._store.writer is None:
            self._task = asyncio.create_task(self._run(), name="intake-committer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pg is not None:
            await self._pg.close()
        for request in self._queue:
            if not request.future.done():
                request.future.set_exception(errors.StoreUnavailable("service is shutting down"))
        self._queue.clear()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._take()
                await self._commit(batch)

    def _take(self) -> list[_Request]:
        batch: list[_Request] = []
        count = 0
        while self._queue and (not batch or count + len(self._queue[0].rows) <= self._max_rows):
            request = self._queue.pop(0)
            batch.append(request)
            count += len(request.rows)
        return batch

    async def _commit(self, batch: list[_Request]) -> None:
        rows: list[dict[str, Any]] = []
        owners: dict[inbox.Key, tuple[_Request, int]] = {}
        for request in batch:
            for n, row in enumerate(request.rows):
                key = (row["fingerprint"], row["starts_at"], row["status"])
                if key not in owners:  # the first row to carry an alert is the one that stores it
                    owners[key] = (request, n)
                    rows.append(row)
        try:
            new = await self._insert(rows)
        except Exception as exc:
            await self._failed(batch, exc)
            return
        for request in batch:
            flags = [
                (new is None or key in new) and owners[key] == (request, n)
                for n, key in enumerate((r["fingerprint"], r["starts_at"], r["status"]) for r in request.rows)
            ]
            if not request.future.done():
                request.future.set_result(flags)

    async def _insert(self, rows: list[dict[str, Any]]) -> set[inbox.Key] | None:
        """The keys of ``rows`` that were new (None: every one was)."""
        if self._pg is not None:  # PostgreSQL: the rows, and the replicas woken if one is pending work
            return await self._pg.insert(rows)
        async with self._store.write() as conn:
            return await inbox.insert(self._store, conn, rows)

    async def _failed(self, batch: list[_Request], exc: Exception) -> None:
        """The batch's commit raised: a 503 if the store failed, a split if some rows were refused (each
        request then committed alone), a 400 for the one request whose rows the store refused."""
        failure: errors.RemediatorError
        if not _rows_refused(exc):  # the store itself: a 503, the sender retries
            log.warning("intake.commit_failed", error=str(exc)[:300], requests=len(batch))
            failure = exc if isinstance(exc, errors.StoreUnavailable) else errors.StoreUnavailable(str(exc))
        elif len(batch) > 1:  # the rows: find whose, and store the others
            log.warning("intake.batch_split", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            for request in batch:
                await self._commit([request])
            return
        else:
            log.warning("intake.rows_refused", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            failure = errors.Permanent(f"{type(exc).__name__}: {str(exc)[:200]}")
        for request in batch:
            if not request.future.done():
                request.future.set_exception(failure)
                request.future.exception()  # retrieved: a timed-out waiter must not warn


def _rows_refused(exc: BaseException) -> bool:
    """True when the store refused the rows for what they hold — the same rows fail again however often
    they are retried — rather than failed itself (``pg_intake.refused``). The store's path (in-memory SQLite)
    wraps the driver's error: the causes are looked at too."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is StoreUnavailable → SQLAlchemy → its driver → …
        if seen is None:
            return False
        if pg_intake.refused(seen):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


async def _within(future: asyncio.Future[list[bool]], timeout: float) -> list[bool]:
    """Wait for a commit; past ``timeout`` the store counts as unavailable (the rows may still land: the
    sender's retry is then a duplicate, never a loss)."""
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout, _expire, future, timeout)
    try:
        return await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[list[bool]], timeout: float) -> None:
    if not future.done():
        future.set_exception(errors.StoreUnavailable(f"store did not commit within {timeout:g}s"))
        future.exception()
