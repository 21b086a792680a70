"""Intake's group commit on SQLite: the rows of every waiting request in one transaction, on the loop thread.

Requests hand their inbox rows to ``insert_inbox`` and wait on a future. Once the loop has run the
callbacks that are ready (every request that arrived together), ``_flush`` writes all waiting rows in one
``BEGIN IMMEDIATE … COMMIT`` with plain ``sqlite3`` — positional ``executemany``, no SQLAlchemy, no
thread — and answers them. A commit costs ~150 µs (locks, WAL frames) whatever it holds, shared by the
batch: less than the thread hops and loop wake-ups it replaces (the intake profile's biggest cost before).

A batch the database refuses because of what its rows hold (an integer over 64 bits, a value SQLite cannot
bind) is committed again one request at a time: the request that holds the bad row is refused alone
(``errors.Permanent``) and the others are stored. A failure of the database itself (locked, read-only, disk
full) fails the whole batch with ``errors.StoreUnavailable``: the senders retry.

The store's own write transactions hold SQLite's single write lock between awaits, so a flush never runs
while one is open (``Store.write`` holds an asyncio lock; the flush waits for it and is kicked when it is
released). The busy timeout only covers other processes (a migration): it is short, as it blocks the loop.
Its commits never checkpoint the WAL (``wal_autocheckpoint=0``: a checkpoint's fsync would run on the loop);
``records.checkpoints`` does that in a thread.

Never runs anything but the inbox INSERT built from our own column names; row values are bound parameters.
"""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from service import errors
from service.records import checkpoints, schema

log = structlog.get_logger(__name__)

_COLUMNS = frozenset(c.name for c in schema.inbox.columns)
#: The least time between two intake commits while requests keep coming (see ``SqliteWriter.kick``).
MIN_GAP_S = 0.001
#: Errors of the rows themselves (or of our own statement): the same rows fail again however often retried.
_ROWS_REFUSED = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError, sqlite3.ProgrammingError)

#: What one request learns: a flag per row (True: new), or why its rows were not stored.
Outcome = list[bool] | errors.StoreUnavailable | errors.Permanent


@dataclass(eq=False, slots=True)
class _Insert:
    rows: Sequence[Mapping[str, Any]]
    future: asyncio.Future[list[bool]]


class SqliteWriter:
    """Group-commits intake rows into one SQLite database file (see the module docstring)."""

    def __init__(
        self, path: str, *, busy_timeout_s: float, busy: Callable[[], bool], max_batch_rows: int = 5000
    ) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._busy = busy  # True while a store write transaction is open
        self._max_rows = max_batch_rows
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[_Insert] = []
        self._scheduled = False
        self._last = 0.0  # loop time of the last commit
        self._statements: dict[tuple[str, ...], tuple[str, Callable[[Mapping[str, Any]], Any]]] = {}

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA synchronous=NORMAL")
        checkpoints.no_autocheckpoint(self._conn)  # its commits never checkpoint: a thread does

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        waiting, self._waiting = self._waiting, []
        _answer(waiting, [errors.StoreUnavailable("service is shutting down")] * len(waiting))

    def insert_inbox(self, rows: Sequence[Mapping[str, Any]]) -> asyncio.Future[list[bool]]:
        """Queue inbox rows (``INSERT … ON CONFLICT DO NOTHING``); the future gets one flag per row, True
        when the row was new, once the batch holding it is committed."""
        if self._loop is None or self._conn is None:
            raise errors.StoreUnavailable("the SQLite writer is not running")
        future: asyncio.Future[list[bool]] = self._loop.create_future()
        self._waiting.append(_Insert(rows, future))
        self.kick()
        return future

    def kick(self) -> None:
        """Flush once the callbacks ready now have run (a store transaction that ends calls this too).

        Under load, commits are spaced by at least ``MIN_GAP_S``: a commit costs ~150 µs whatever it holds
        (locks, WAL frames), so the requests that arrive meanwhile join the next one instead of each paying
        for their own; an alert arriving after a quiet spell is committed at once."""
        if self._waiting and not self._scheduled and self._loop is not None:
            self._scheduled = True
            wait = self._last + MIN_GAP_S - self._loop.time()
            if wait > 0:
                self._loop.call_later(wait, self._flush)
            else:
                self._loop.call_soon(self._flush)

    def after_transaction(self) -> None:
        """A store transaction ended: the intake rows that waited for it are committed now, before the next
        transaction takes the lock (under a storm, workers queue for it back to back and intake would wait
        behind all of them)."""
        if self._waiting and self._loop is not None and self._loop.time() >= self._last + MIN_GAP_S:
            self._flush()
        else:
            self.kick()

    def _flush(self) -> None:
        self._scheduled = False
        if self._busy() or not self._waiting:
            return  # the store's transaction kicks again when it ends
        assert self._loop is not None
        self._last = self._loop.time()
        batch: list[_Insert] = []
        rows = 0
        while self._waiting and (not batch or rows + len(self._waiting[0].rows) <= self._max_rows):
            job = self._waiting.pop(0)
            batch.append(job)
            rows += len(job.rows)
        _answer(batch, self._outcomes([job.rows for job in batch]))
        self.kick()  # what is left over the row limit

    def _outcomes(self, requests: list[Sequence[Mapping[str, Any]]]) -> list[Outcome]:
        """Commit the batch; when its rows were refused, each request again on its own, so that one bad
        request never fails the others."""
        result = self._commit(requests)
        if isinstance(result, list):
            return list(result)
        if isinstance(result, errors.StoreUnavailable) or len(requests) == 1:
            return [result] * len(requests)
        log.warning("intake.batch_split", requests=len(requests), reason=str(result)[:200])
        return [self._single(rows) for rows in requests]

    def _single(self, rows: Sequence[Mapping[str, Any]]) -> Outcome:
        result = self._commit([rows])
        return result[0] if isinstance(result, list) else result

    def _commit(
        self, requests: list[Sequence[Mapping[str, Any]]]
    ) -> list[list[bool]] | errors.StoreUnavailable | errors.Permanent:
        conn = self._conn
        if conn is None:
            return errors.StoreUnavailable("service is shutting down")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = self._insert(conn, requests)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except _ROWS_REFUSED as exc:
            return _refused(exc)
        except sqlite3.Error as exc:  # the database itself: locked, read-only, full, corrupt
            log.warning("intake.commit_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return errors.StoreUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}")
        except Exception as exc:  # a value the driver cannot bind (OverflowError: an integer over 64 bits)
            return _refused(exc)
        return results

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


def _refused(exc: BaseException) -> errors.Permanent:
    log.warning("intake.rows_refused", error=f"{type(exc).__name__}: {str(exc)[:200]}")
    return errors.Permanent(f"{type(exc).__name__}: {str(exc)[:200]}")


def _answer(batch: list[_Insert], outcomes: list[Outcome]) -> None:
    for job, outcome in zip(batch, outcomes, strict=True):
        if job.future.done():  # its waiter gave up (timeout)
            continue
        if isinstance(outcome, list):
            job.future.set_result(outcome)
        else:
            job.future.set_exception(outcome)
            job.future.exception()  # retrieved: nobody may be left to read it


def _no_values(_row: Mapping[str, Any]) -> tuple[()]:
    return ()
