"""The SQLite write slot: one thread that owns it, commits intake batches itself and lends it out.

SQLite has one writer at a time. Going through aiosqlite, one intake commit costs half a dozen thread
hops and event-loop wake-ups (begin, cursor, execute, fetch, close, commit); the profile showed those hops,
not SQL, as the bound of intake. Here the intake rows of every request that is waiting are written by
this thread in one ``BEGIN IMMEDIATE … COMMIT`` with plain ``sqlite3``, and the loop is woken once per
batch to answer them all. At most one intake batch is in the thread at a time: requests that arrive while
it commits wait in the loop and go together as the next batch (group commit), so under load a thread
wake-up and a commit are shared by many requests. The store's other write transactions (SQLAlchemy over
aiosqlite) borrow the slot with ``hold()``: the thread grants it between two batches and waits until it
is returned, so the two writers never meet in SQLite's busy handler (whose sleeps would show up as
latency).

Never runs anything but the inbox INSERT built from our own column names; row values are bound
parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from service import errors
from service.records import schema

log = structlog.get_logger(__name__)

_COLUMNS = frozenset(c.name for c in schema.inbox.columns)


@dataclass(eq=False)
class _Insert:
    rows: Sequence[Mapping[str, Any]]
    future: asyncio.Future[list[bool]]


@dataclass(eq=False)
class _Batch:
    """The inserts handed to the thread together."""

    inserts: list[_Insert]


@dataclass(eq=False)
class _Hold:
    future: asyncio.Future[None]
    released: threading.Event = field(default_factory=threading.Event)


_Job = _Batch | _Hold | None  # None stops the thread


class SqliteWriter:
    """Owns the SQLite write slot of one database file (see the module docstring)."""

    def __init__(self, path: str, *, busy_timeout_s: float, max_batch_rows: int = 5000) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._max_rows = max_batch_rows
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._statements: dict[tuple[str, ...], tuple[str, Callable[[Mapping[str, Any]], Any]]] = {}
        self._waiting: list[_Insert] = []  # loop side: arrived while a batch is in the thread
        self._in_thread = False
        self._flush_scheduled = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10.0)
        self._thread = None
        self._flush()

    def insert_inbox(self, rows: Sequence[Mapping[str, Any]]) -> asyncio.Future[list[bool]]:
        """Queue inbox rows (``INSERT … ON CONFLICT DO NOTHING``); the future gets one flag per row, True
        when the row was new, once the batch holding it is committed."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            raise errors.StoreUnavailable("the SQLite writer is not running")
        future: asyncio.Future[list[bool]] = self._loop.create_future()
        self._waiting.append(_Insert(rows, future))
        if not self._in_thread and not self._flush_scheduled:
            self._flush_scheduled = True  # after the other requests of this loop iteration
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._in_thread or not self._waiting:
            return
        batch, self._waiting = _Batch(self._waiting), []
        if self._thread is None:  # stopped
            self._settle(batch, errors.StoreUnavailable("service is shutting down"))
            return
        self._in_thread = True
        self._queue.put(batch)

    def _settle(self, batch: _Batch, results: list[list[bool]] | errors.StoreUnavailable) -> None:
        """Loop side: answer a committed (or failed) batch, then send what arrived meanwhile."""
        self._in_thread = False
        for n, job in enumerate(batch.inserts):
            if job.future.done():  # its waiter gave up (timeout)
                continue
            if isinstance(results, errors.StoreUnavailable):
                job.future.set_exception(results)
                job.future.exception()  # retrieved: nobody may be left to read it
            else:
                job.future.set_result(results[n])
        self._flush()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Borrow the write slot: the writer thread writes nothing until the block exits."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            yield  # not started (or stopped): nothing to coordinate with
            return
        job = _Hold(self._loop.create_future())
        self._queue.put(job)
        try:
            await job.future
            yield
        finally:
            job.released.set()

    # --- the thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=True
        )
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            while True:
                job = self._queue.get()
                if job is None:
                    return
                if isinstance(job, _Hold):
                    self._lend(job)
                    continue
                self._commit(conn, job)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        results: list[list[bool]] | errors.StoreUnavailable
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = self._insert(conn, [job.rows for job in batch.inserts])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, ValueError) as exc:
            results = errors.StoreUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}")
        self._call(self._settle, batch, results)

    def _insert(
        self, conn: sqlite3.Connection, requests: list[Sequence[Mapping[str, Any]]]
    ) -> list[list[bool]]:
        """Insert each request's rows; per request, True for each row that was new. Fast path: every row
        is new (one ``executemany`` per request). When some were already stored, the transaction starts
        over and the rows go one by one, to tell which."""
        before = conn.total_changes
        total = 0
        for rows in requests:
            if rows:
                sql, values = self._statement(rows)
                conn.executemany(sql, map(values, rows))
                total += len(rows)
        if conn.total_changes - before == total:
            return [[True] * len(rows) for rows in requests]
        conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        flags: list[list[bool]] = []
        for rows in requests:
            sql, values = self._statement(rows) if rows else ("", _no_values)
            flags.append([conn.execute(sql, values(row)).rowcount == 1 for row in rows])
        return flags

    def _statement(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, Callable[[Mapping[str, Any]], Any]]:
        """The INSERT for these rows' columns (inbox columns, the same in every row) and the function that
        turns a row into its positional parameters."""
        names = tuple(rows[0])
        if any(row.keys() != rows[0].keys() for row in rows):
            raise ValueError("the inbox rows of one request must have the same columns")
        found = self._statements.get(names)
        if found is None:
            unknown = set(names) - _COLUMNS
            if unknown:
                raise ValueError(f"not inbox columns: {sorted(unknown)}")
            sql = (
                f"INSERT INTO inbox ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "  # noqa: S608 (our column names)
                "ON CONFLICT DO NOTHING"
            )
            getter = operator.itemgetter(*names)
            found = (sql, getter if len(names) > 1 else lambda row: (getter(row),))
            self._statements[names] = found
        return found

    def _lend(self, job: _Hold) -> None:
        self._call(_grant, job)
        job.released.wait()

    def _call(self, callback: Any, *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            if args and isinstance(args[0], _Hold):
                args[0].released.set()


def _no_values(_row: Mapping[str, Any]) -> tuple[()]:
    return ()


def _grant(job: _Hold) -> None:
    if job.future.done():  # the borrower gave up waiting
        job.released.set()
    else:
        job.future.set_result(None)
