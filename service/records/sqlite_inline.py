"""SQLite statements run on the event loop's own thread: ``InlineConnection`` and ``Conn``.

Through aiosqlite every statement is several thread hops (cursor, execute, fetch, close) plus SQLAlchemy's
greenlet adaptation; the storm profile showed write transactions holding SQLite's single write slot
through those hops, not through SQL, so the pipeline was bound by hop latency with the CPU half idle. A
SQLite statement on a local file takes microseconds: running it inline costs less than one hop. It never
waits on another writer of this process, because every write transaction holds the write slot first
(``Store.write``); WAL readers never wait. The busy timeout of these connections is short and they never
checkpoint (``wal_autocheckpoint=0``; a worker thread does, ``records.checkpoints``), so the loop cannot
stall on a lock held elsewhere or on a checkpoint's fsync.

A prebuilt write (an UPDATE, INSERT or DELETE without RETURNING, built once at import and seen a second
time) skips SQLAlchemy's per-statement work (cache key, execution context, result object: ~30 µs of a
~35 µs statement; the storm runs ~14,000 of them): ``_Prebuilt`` compiles it once and runs it on the DBAPI
cursor of the same connection, inside the same transaction, with SQLAlchemy's bind processors; its result
has ``rowcount`` only, and a driver error is raised as SQLAlchemy would raise it (``DBAPIError.instance``).
Anything else (selects, RETURNING, expanding or escaped parameters, Python-side column defaults, several
parameter sets) takes the ordinary path.

``Conn`` is the surface the records modules use — ``execute``, ``scalar``, ``run_sync`` — which both
``InlineConnection`` and SQLAlchemy's ``AsyncConnection`` (PostgreSQL) provide.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, Literal, NamedTuple, ParamSpec, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
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
        if isinstance(statement, _DML) and (parameters is None or isinstance(parameters, Mapping)):
            keys = tuple(sorted(parameters)) if parameters else ()
            prebuilt = _prebuilt(statement, self._sync.dialect, keys)
            if prebuilt is not None:
                return prebuilt.run(self._sync, parameters)
        return self._sync.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._sync.scalar(statement, parameters)

    async def run_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return fn(self._sync, *args, **kwargs)


_DML = (sa.Update, sa.Insert, sa.Delete)
#: per statement object, per set of parameter names (an INSERT's or UPDATE's columns come from them): None
#: (seen once: maybe built per call, not compiled), False (not eligible) or its compiled form
_SEEN: weakref.WeakKeyDictionary[Executable, dict[tuple[str, ...], _Prebuilt | Literal[False] | None]] = (
    weakref.WeakKeyDictionary()
)


class Written(NamedTuple):
    """The result of a prebuilt write: how many rows it changed."""

    rowcount: int


class _Prebuilt(NamedTuple):
    sql: str
    compiled: Any  # sqlalchemy.sql.compiler.SQLCompiler
    processors: Mapping[str, Callable[[Any], Any]]

    def run(self, sync: sa.Connection, parameters: Mapping[str, Any] | None) -> Written:
        values = self.compiled.construct_params(parameters)
        procs = self.processors
        args = tuple(procs[n](values[n]) if n in procs else values[n] for n in self.compiled.positiontup)
        cursor = sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, args)
            return Written(cursor.rowcount)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(self.sql, args, error, sqlite3.Error) from error
        finally:
            cursor.close()


def _prebuilt(
    statement: sa.Update | sa.Insert | sa.Delete, dialect: sa.Dialect, keys: tuple[str, ...]
) -> _Prebuilt | None:
    """The compiled form of a write seen before with these parameter names; None the first time and for
    writes that are not eligible."""
    forms = _SEEN.setdefault(statement, {})
    if keys not in forms:  # the first sighting: maybe a statement built per call, not worth compiling
        forms[keys] = None
        return None
    prebuilt = forms[keys]
    if prebuilt is None:
        prebuilt = forms[keys] = _compile(statement, dialect, keys) or False
    return prebuilt or None


def _compile(
    statement: sa.Update | sa.Insert | sa.Delete, dialect: sa.Dialect, keys: tuple[str, ...]
) -> _Prebuilt | None:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    table = getattr(statement, "table", None)
    columns = getattr(table, "columns", ())
    if (
        compiled.effective_returning
        or compiled.positiontup is None
        or compiled.escaped_bind_names
        or any(bind.expanding for bind in compiled.binds.values())
        or any(c.default is not None or c.onupdate is not None for c in columns)
    ):
        return None
    return _Prebuilt(compiled.string, compiled, dict(compiled._bind_processors))
