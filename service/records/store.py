"""The store: one SQLAlchemy engine (SQLite inline on the loop thread, or PostgreSQL via asyncpg),
migrations, and the transaction boundaries every other records module works inside.

SQLite allows one writer at a time; the store serialises writes with an asyncio lock so that writers wait
in the event loop, not in a busy-retry loop of the driver; intake's group commit (``records.sqlite_writer``,
once ``start_writer`` ran) runs between those transactions. SQLite statements run inline on the loop
thread (``records.sqlite_inline``: cheaper than a thread hop each); none of them checkpoints the WAL — a
worker thread does (``records.checkpoints``), so no commit on the loop pays for a checkpoint's fsync.
Failures to reach or write the store are translated to ``errors.StoreUnavailable`` here, at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service import errors
from service.records.checkpoints import Checkpointer
from service.records.sqlite_inline import Conn, InlineConnection
from service.records.sqlite_writer import SqliteWriter

MIGRATIONS = Path(__file__).parent / "migrations"
#: Errors of our own SQL or data (a bug, not an outage): they propagate. Every other driver error — refused,
#: locked, shutting down, starting up, connection lost — means the store cannot answer now.
_OURS = (exc.IntegrityError, exc.ProgrammingError, exc.DataError, exc.NotSupportedError)
#: How long an inline SQLite statement may wait for a lock held by another process (it blocks the loop).
_INLINE_BUSY_S = 0.25


def engine_url(url: str) -> str:
    """Translate the user-facing store URL to the SQLAlchemy driver URL."""
    if url.startswith("sqlite:///"):
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    raise errors.ConfigError(f"unsupported store URL scheme in {url.split(':', 1)[0]!r}")


class Store:
    """Owns the engine; hands out read connections and serialised write transactions."""

    def __init__(
        self, *, timeout_s: float, sqlite: sa.Engine | None = None, postgres: AsyncEngine | None = None
    ) -> None:
        assert (sqlite is None) != (postgres is None), "one engine"
        self._sqlite = sqlite
        self._postgres = postgres
        self.dialect = "sqlite" if sqlite is not None else "postgresql"
        self.single_writer = sqlite is not None
        self.timeout_s = timeout_s
        self.writer: SqliteWriter | None = None
        self.checkpointer: Checkpointer | None = None
        self._write_lock = asyncio.Lock()

    @classmethod
    def open(cls, url: str, *, timeout_s: float = 2.0, pool_size: int = 5) -> Store:
        """Create the engine (no I/O yet). SQLite gets WAL, synchronous=NORMAL and a busy timeout."""
        target = engine_url(url)
        if target.startswith("sqlite"):
            path = target.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            busy = min(timeout_s, _INLINE_BUSY_S)
            # no overflow limit: a checkout that waited for a free connection would block the loop itself
            pool = {"pool_size": pool_size, "max_overflow": -1} if path and path != ":memory:" else {}
            engine = sa.create_engine(target, connect_args={"timeout": busy}, **pool)
            _sqlite_pragmas(engine, busy)
            return cls(timeout_s=timeout_s, sqlite=engine)
        postgres = create_async_engine(target, pool_size=pool_size, max_overflow=5, pool_pre_ping=True)
        return cls(timeout_s=timeout_s, postgres=postgres)

    def start_writer(self, *, checkpoint_s: float = 1.0) -> SqliteWriter | None:
        """SQLite on a file: start intake's group commit (requests hand their rows straight to it) and the
        task that checkpoints the WAL in a worker thread every ``checkpoint_s`` (``records.checkpoints``)."""
        database = self._sqlite.url.database if self._sqlite is not None else None
        if not database or database == ":memory:" or self.writer is not None:
            return self.writer
        self.writer = SqliteWriter(database, busy_timeout_s=_INLINE_BUSY_S, busy=self._write_lock.locked)
        self.writer.start()
        self.checkpointer = Checkpointer(database, interval_s=checkpoint_s, hold=self._no_writes)
        self.checkpointer.start()
        return self.writer

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.stop()
            self.checkpointer = None
        if self.writer is not None:
            await self.writer.stop()
            self.writer = None
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._postgres is not None:
            await self._postgres.dispose()

    async def migrate(self) -> None:
        """Apply every pending Alembic migration (idempotent). A store already at the head revision is left
        alone without importing Alembic (~12 MB that a serving process then never holds)."""
        if await self.at_head():
            return
        async with self.write() as conn:
            if self.dialect == "postgresql":  # replicas starting together migrate one at a time
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7270736900)"))
            await conn.run_sync(_upgrade)

    async def at_head(self) -> bool:
        """True when the store's schema is at the newest migration."""
        try:
            async with self.read() as conn:
                version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        except (exc.DBAPIError, errors.StoreUnavailable):  # no version table yet
            return False
        return bool(version == head_revision())

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except errors.StoreUnavailable:
            return False
        return True

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """A connection for reads; errors become StoreUnavailable."""
        try:
            if self._sqlite is not None:
                with self._sqlite.connect() as sync:
                    yield InlineConnection(sync)
            else:
                assert self._postgres is not None
                async with self._postgres.connect() as conn:
                    yield conn
        except _OURS:
            raise
        except (exc.DBAPIError, OSError) as error:
            raise errors.StoreUnavailable(_describe(error)) from error

    @contextlib.asynccontextmanager
    async def _no_writes(self) -> AsyncIterator[None]:
        """SQLite: no write transaction of this process is open meanwhile (lets a WAL checkpoint finish)."""
        try:
            async with self._write_lock:
                yield
        finally:
            if self.writer is not None:  # intake rows that waited meanwhile
                self.writer.after_transaction()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """One write transaction, committed on exit; serialised on SQLite."""
        try:
            if self._sqlite is not None:
                try:
                    async with self._write_lock:
                        with self._sqlite.begin() as sync:
                            yield InlineConnection(sync)
                finally:
                    if self.writer is not None:  # intake rows that waited for this transaction
                        self.writer.after_transaction()
            else:
                assert self._postgres is not None
                async with self._postgres.begin() as conn:
                    yield conn
        except _OURS:
            raise
        except (exc.DBAPIError, OSError) as error:
            raise errors.StoreUnavailable(_describe(error)) from error

    @contextlib.asynccontextmanager
    async def counting(self) -> AsyncIterator[Conn]:
        """``read()`` for a count a partial or small index can answer (the gauges' backlogs, every few
        seconds on every replica). On PostgreSQL its transaction plans without sequential scans: the planner
        takes the share of undecided rows from the last ANALYZE, and one taken mid-burst (a quarter of the
        inbox waiting) made it scan the whole inbox, 251 MB and 270 ms every 5 s at 400,000 rows, instead of
        the partial index that holds only the backlog."""
        async with self.read() as conn:
            if self.dialect == "postgresql":
                await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            yield conn

    def insert_ignore(self, table: sa.Table) -> Any:
        """``INSERT … ON CONFLICT DO NOTHING`` for this dialect."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            return sqlite.insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()


@functools.cache
def head_revision() -> str:
    """The newest migration: the one revision no other migration names as its ``down_revision``."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        found = _REVISION.search(text)
        if found is not None:
            down = _DOWN_REVISION.search(text)
            revisions[found.group(1)] = down.group(1) if down else None
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:
        raise errors.ConfigError(f"migrations must have exactly one head, found {sorted(heads)}")
    return heads.pop()


_REVISION = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"""^down_revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC (``…Z``), as the API shows times."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def plain(row: Any) -> dict[str, Any]:
    """A result row as a dict with plain ``str`` keys (SQLAlchemy's are a str subclass orjson refuses)."""
    return {str(key): value for key, value in row.items()}


def _describe(error: BaseException) -> str:
    """A short reason without the SQL or parameters (which may hold alert data)."""
    orig = getattr(error, "orig", None) or error
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:200] if str(orig) else ''}"


def _upgrade(sync_conn: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")


def _sqlite_pragmas(engine: sa.Engine, timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # before WAL: switching to WAL writes the header, after which a new file keeps auto_vacuum off
        # (records.retention gives freed pages back; older files are switched there, with a VACUUM)
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # a thread checkpoints (records.checkpoints)
        cursor.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        cursor.close()
