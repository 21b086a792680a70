"""SQLite statements run on the event loop's own thread: ``InlineConnection`` and ``Conn``.

Through aiosqlite every statement is several thread hops (cursor, execute, fetch, close) plus SQLAlchemy's
greenlet adaptation; the storm profile showed write transactions holding SQLite's single write slot
through those hops, not through SQL, so the pipeline was bound by hop latency with the CPU half idle. A
SQLite statement on a local file takes microseconds: running it inline costs less than one hop. It never
waits on another writer of this process, because every write transaction holds the write slot first
(``Store.write``); WAL readers never wait. The busy timeout of these connections is short and they never
checkpoint (``wal_autocheckpoint=0``; a worker thread does, ``records.checkpoints``), so the loop cannot
stall on a lock held elsewhere or on a checkpoint's fsync.

``Conn`` is the surface the records modules use — ``execute``, ``scalar``, ``run_sync`` — which both
``InlineConnection`` and SQLAlchemy's ``AsyncConnection`` (PostgreSQL) provide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.base import Executable

T = TypeVar("T")
P = ParamSpec("P")


class Conn(Protocol):
    """A connection inside one of the store's transactions."""

    async def execute(self, statement: Executable, parameters: Any = None) -> Any: ...

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...

    async def run_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T: ...


class InlineConnection:
    """A synchronous SQLAlchemy connection behind the async ``Conn`` surface; each call runs inline."""

    def __init__(self, sync: sa.Connection) -> None:
        self._sync = sync

    async def execute(self, statement: Executable, parameters: Any = None) -> Any:
        return self._sync.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._sync.scalar(statement, parameters)

    async def run_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return fn(self._sync, *args, **kwargs)
