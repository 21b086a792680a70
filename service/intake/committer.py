"""Group commit for the intake hot path: requests that arrive together share one transaction.

Each request hands its inbox rows to ``submit`` and waits; one committer task takes every waiting
request, inserts all their rows in one batched ``INSERT … ON CONFLICT DO NOTHING``, commits, and answers
each request with its own accepted/duplicate counts. A request is answered only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from service import errors
from service.records import inbox, wakeups
from service.records.store import Store

log = structlog.get_logger(__name__)


@dataclass
class _Request:
    rows: Sequence[dict[str, Any]]
    future: asyncio.Future[tuple[int, int]]
    keys: list[inbox.Key] = field(default_factory=list)


class GroupCommitter:
    """Batches inbox inserts from concurrent requests into shared transactions."""

    def __init__(self, store: Store, *, on_commit: Callable[[], None], max_batch_rows: int = 5000) -> None:
        self._store = store
        self._on_commit = on_commit
        self._max_rows = max_batch_rows
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, rows: Sequence[dict[str, Any]], *, timeout: float) -> tuple[int, int]:
        """Store ``rows``; returns (accepted, duplicates) once committed, or raises StoreUnavailable."""
        if self._task is None or self._task.done():
            raise errors.StoreUnavailable("intake committer is not running")
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(rows, future))
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError as exc:
            raise errors.StoreUnavailable(f"store did not commit within {timeout:g}s") from exc

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="intake-committer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
        owners: dict[inbox.Key, _Request] = {}
        for request in batch:
            for row in request.rows:
                key = (row["fingerprint"], row["starts_at"], row["status"])
                request.keys.append(key)
                if key not in owners:  # the first request to carry an alert is the one that stores it
                    owners[key] = request
                    rows.append(row)
        try:
            async with self._store.write() as conn:
                new = await inbox.insert(self._store, conn, rows)
                if new and self._store.dialect == "postgresql":
                    await wakeups.notify(conn)  # the other replicas start on it at once
        except Exception as exc:  # every failure of the store is a 503 to the sender, who retries
            log.warning("intake.commit_failed", error=str(exc)[:300], requests=len(batch))
            failure = exc if isinstance(exc, errors.StoreUnavailable) else errors.StoreUnavailable(str(exc))
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(failure)
                    request.future.exception()  # retrieved: a timed-out waiter must not warn
            return
        for request in batch:
            accepted = sum(1 for key in set(request.keys) if key in new and owners[key] is request)
            if not request.future.done():
                request.future.set_result((accepted, len(request.keys) - accepted))
        if new:
            self._on_commit()
