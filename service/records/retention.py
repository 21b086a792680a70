"""Retention: what is deleted once it is older than ``retention_days``, in small batches, and the background
task that does it on one replica at a time.

Deleted, each in transactions of at most ``retention_batch`` incidents or rows, yielding to the loop between
them so that intake goes on:

- a **resolved incident** whose ``resolved_at`` is before the cutoff, with every row that names it
  (``CHILDREN``: alerts, findings, timeline, actions, deliveries, comms, war room, Slack message) — unless an
  incident that stays names it as ``caused_by`` (followed transitively: a kept link never dangles), or its
  war room still waits to be archived;
- a **done inbox row** received before the cutoff, unless its incident stays;
- a **delivered or failed** (failed for good) **outbox row** created before the cutoff, unless its incident
  stays (its ``dedup_key`` is what stops a live incident from sending a notification twice).

An open incident, and everything it reads, is never deleted. On PostgreSQL a round first takes a
transaction-level advisory lock (``pg_try_advisory_xact_lock``) on a connection it holds for the round;
a replica that does not get it skips the round. On SQLite the process is alone; freed pages go back to the
file system with ``PRAGMA incremental_vacuum`` (``records.store`` opens new databases with
``auto_vacuum=INCREMENTAL``; an older small database is switched once, with a full ``VACUUM``, when the task
starts — ``remediator prune --vacuum`` does it for a large one).

Never touches ``service_state`` (switches, windows) nor an incident that is not resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog

from service import errors
from service.observability import Metrics
from service.records import schema
from service.records.sqlite_inline import Conn
from service.records.store import Store, engine_url
from service.settings import Settings

log = structlog.get_logger(__name__)

INC, ROOM, OUT, INBOX = schema.incidents, schema.war_rooms, schema.outbox, schema.inbox
#: every table whose rows belong to one incident (``incident_id``), deleted with it
CHILDREN: tuple[sa.Table, ...] = (
    schema.incident_alerts,
    schema.findings,
    schema.timeline,
    schema.actions,
    schema.outbox,
    schema.comms,
    schema.war_rooms,
    schema.slack_messages,
)
#: the order a report lists its tables in
TABLES = ("incidents", *(t.name for t in CHILDREN), "inbox")
#: the advisory lock of a retention round (``Store.migrate`` uses 7270736900)
LOCK_KEY = 7270736901
#: pages ``incremental_vacuum`` frees per hold of the write lock: ~20 ms of the loop at most (measured)
VACUUM_PAGES = 200
#: an older SQLite database (auto_vacuum off) up to this size is switched to incremental at start
SWITCH_MAX_BYTES = 64 * 1024 * 1024
#: rows per ``IN (…)`` list (both drivers cap the parameters of one statement)
_IN_CHUNK = 1000

DAY_S = 86400.0


@dataclass
class Report:
    """Rows deleted (or that a dry run would delete) per table; ``skipped``: another replica held the lock."""

    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    skipped: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def cutoff_for(days: float, now: float) -> float:
    return now - days * DAY_S


# ---- what may go ------------------------------------------------------------------------------------------


def _old_resolved(table: sa.FromClause, cutoff: float) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.state == "resolved", table.c.resolved_at < cutoff)


def _needed(cutoff: float) -> sa.Select[Any]:
    """Incidents that an incident that stays names as ``caused_by``, directly or through a chain of them."""
    staying = INC.alias("staying")
    base = sa.select(staying.c.caused_by.label("id")).where(
        staying.c.caused_by.is_not(None), sa.not_(_old_resolved(staying, cutoff))
    )
    needed = base.cte("needed", recursive=True)
    linked = INC.alias("linked")
    needed = needed.union(
        sa.select(linked.c.caused_by).where(linked.c.id == needed.c.id, linked.c.caused_by.is_not(None))
    )
    return sa.select(needed.c.id)


def _deletable_incidents(cutoff: float, needed: Sequence[str]) -> sa.Select[Any]:
    """Resolved before the cutoff, not ``needed`` (read once a round: deleting never changes it), and no
    war room waiting to be archived. Unordered: the scan stops at the LIMIT instead of sorting them all."""
    room_pending = (
        sa.select(ROOM.c.incident_id)
        .where(ROOM.c.incident_id == INC.c.id, ROOM.c.channel_id.is_not(None), ROOM.c.archived_at.is_(None))
        .exists()
    )
    query = sa.select(INC.c.id).where(_old_resolved(INC, cutoff), sa.not_(room_pending))
    return query.where(INC.c.id.not_in(needed)) if needed else query


async def _read_needed(store: Store, cutoff: float) -> list[str]:
    async with store.read() as conn:
        return list((await conn.execute(_needed(cutoff))).scalars().all())


def _orphan(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """No incident of that id (any more): this round's incident pass deleted it, or there never was one."""
    return sa.not_(sa.select(INC.c.id).where(INC.c.id == column).exists())


def _inbox_rows(cutoff: float, *, doomed: sa.Select[Any] | None = None) -> sa.ColumnElement[bool]:
    """Done, received before the cutoff, of no incident — or (a dry run, before the incident pass) of one
    in ``doomed``."""
    of_none = _orphan(INBOX.c.incident_id)
    return sa.and_(
        INBOX.c.state == "done",
        INBOX.c.received_at < cutoff,
        of_none if doomed is None else sa.or_(of_none, INBOX.c.incident_id.in_(doomed)),
    )


def _outbox_rows(cutoff: float) -> sa.ColumnElement[bool]:
    """Finished deliveries of no incident (those of a deleted incident go with it, whatever their state)."""
    return sa.and_(
        OUT.c.state.in_(("delivered", "failed")), OUT.c.created_at < cutoff, _orphan(OUT.c.incident_id)
    )


# ---- a round ----------------------------------------------------------------------------------------------


async def prune(
    store: Store,
    *,
    cutoff: float,
    batch: int,
    dry_run: bool = False,
    on_deleted: Callable[[str, int], None] | None = None,
) -> Report:
    """Delete (or, ``dry_run``, count) what is older than ``cutoff``; ``on_deleted(table, rows)`` after each
    committed batch."""
    if dry_run:
        return await _count(store, cutoff)
    report = Report()

    def note(table: str, rows: int) -> None:
        report.deleted[table] += rows
        if on_deleted is not None and rows:
            on_deleted(table, rows)

    async with _round_lock(store) as got:
        if not got:
            return Report(skipped=True)
        await _prune_incidents(store, cutoff, batch, note)
        await _prune_rows(store, INBOX, _inbox_rows(cutoff), batch, note)
        await _prune_rows(store, OUT, _outbox_rows(cutoff), batch, note)
    return report


@contextlib.asynccontextmanager
async def _round_lock(store: Store) -> AsyncIterator[bool]:
    """PostgreSQL: hold the round's advisory lock in a transaction of its own; SQLite: always ours."""
    if store.dialect != "postgresql":
        yield True
        return
    async with store.write() as conn:
        yield bool(await conn.scalar(sa.text(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY})")))


async def _prune_incidents(store: Store, cutoff: float, batch: int, note: Callable[[str, int], None]) -> None:
    candidates = _deletable_incidents(cutoff, await _read_needed(store, cutoff)).limit(batch)
    while True:
        counts: dict[str, int] = {}
        async with store.write() as conn:
            ids = list((await conn.execute(candidates)).scalars().all())
            for table in (*CHILDREN, INC):
                key = "id" if table is INC else "incident_id"
                counts[table.name] = await _delete_in(conn, table, table.c[key], ids)
        for name, rows in counts.items():
            note(name, rows)
        if len(ids) < batch:
            return
        await asyncio.sleep(0)  # intake's transactions go between ours


async def _prune_rows(
    store: Store, table: sa.Table, where: sa.ColumnElement[bool], batch: int, note: Callable[[str, int], None]
) -> None:
    candidates = sa.select(table.c.id).where(where).order_by(table.c.id).limit(batch)
    while True:
        async with store.write() as conn:
            ids = list((await conn.execute(candidates)).scalars().all())
            rows = await _delete_in(conn, table, table.c.id, ids)
        note(table.name, rows)
        if len(ids) < batch:
            return
        await asyncio.sleep(0)


async def _delete_in(conn: Conn, table: sa.Table, column: sa.ColumnElement[Any], ids: Sequence[Any]) -> int:
    deleted = 0
    for start in range(0, len(ids), _IN_CHUNK):
        result = await conn.execute(sa.delete(table).where(column.in_(ids[start : start + _IN_CHUNK])))
        deleted += int(result.rowcount)
    return deleted


async def _count(store: Store, cutoff: float) -> Report:
    """What ``prune`` would delete now, per table, in one read."""
    report = Report()
    doomed = _deletable_incidents(cutoff, await _read_needed(store, cutoff))
    counts: dict[str, sa.ColumnElement[bool]] = {"incidents": INC.c.id.in_(doomed)}
    for table in CHILDREN:
        counts[table.name] = table.c.incident_id.in_(doomed)
    counts["outbox"] = sa.or_(counts["outbox"], _outbox_rows(cutoff))
    counts["inbox"] = _inbox_rows(cutoff, doomed=doomed)
    tables = {t.name: t for t in (INC, *CHILDREN, INBOX)}
    async with store.read() as conn:
        for name, where in counts.items():
            query = sa.select(sa.func.count()).select_from(tables[name]).where(where)
            report.deleted[name] = int(await conn.scalar(query) or 0)
    return report


# ---- space ------------------------------------------------------------------------------------------------


def sqlite_path(store_url: str) -> str | None:
    """The database file of a SQLite store URL (None: PostgreSQL or in memory)."""
    target = engine_url(store_url)
    if not target.startswith("sqlite:///"):
        return None
    path = target.removeprefix("sqlite:///")
    return None if not path or path == ":memory:" else path


async def store_size(store: Store, path: str | None) -> int:
    """The SQLite file plus its WAL, or ``pg_database_size`` of the current database."""
    if store.dialect == "postgresql":
        async with store.read() as conn:
            return int(await conn.scalar(sa.text("SELECT pg_database_size(current_database())")) or 0)
    return 0 if path is None else _file_size(path)


def _file_size(path: str) -> int:
    """The file and its WAL (a stat each: no I/O worth a thread)."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


async def auto_vacuum_mode(store: Store) -> int:
    """SQLite's ``auto_vacuum``: 0 none, 1 full, 2 incremental."""
    async with store.read() as conn:
        return int(await conn.scalar(sa.text("PRAGMA auto_vacuum")) or 0)


async def reclaim(store: Store) -> int:
    """SQLite: give free pages back to the file system, ``VACUUM_PAGES`` per hold of the write lock; the
    pages freed (the file shrinks at the next checkpoint)."""
    if store.dialect != "sqlite" or await auto_vacuum_mode(store) != 2:
        return 0
    freed = 0
    while True:
        async with store.write() as conn:
            before = int(await conn.scalar(sa.text("PRAGMA freelist_count")) or 0)
            if before == 0:
                return freed
            # sqlite3's execute steps a pragma once (one page); a script steps it to the end
            await conn.run_sync(_script, f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
            freed += before - int(await conn.scalar(sa.text("PRAGMA freelist_count")) or 0)
        if before <= VACUUM_PAGES:
            return freed
        await asyncio.sleep(0)


async def switch_to_incremental(store: Store) -> bool:
    """SQLite with auto_vacuum off: turn incremental on, which only a full ``VACUUM`` applies to an existing
    file (it rewrites the whole file, holding the write lock). True when it switched."""
    if store.dialect != "sqlite" or await auto_vacuum_mode(store) == 2:
        return False
    async with store.write() as conn:
        await conn.run_sync(_script, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")
    return await auto_vacuum_mode(store) == 2


def _script(sync: sa.Connection, script: str) -> None:
    raw: Any = sync.connection.driver_connection
    raw.executescript(script)  # outside a transaction: store.write() has begun none before a DML statement


# ---- the background task ----------------------------------------------------------------------------------


class Retention:
    """Prunes every ``interval_s`` (first at start) and keeps ``remediator_store_size_bytes`` current."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        days: float,
        interval_s: float,
        batch: int,
        path: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._metrics = store, metrics
        self._days, self._interval_s, self._batch = days, interval_s, batch
        self._path = path
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, metrics: Metrics, *, clock: Callable[[], float] = time.time
    ) -> Retention:
        return cls(
            store,
            metrics,
            days=settings.retention_days,
            interval_s=settings.retention_interval_s,
            batch=settings.retention_batch,
            path=sqlite_path(settings.store_url),
            clock=clock,
        )

    async def prepare(self) -> None:
        """At start, before intake listens: switch a small older SQLite file to incremental auto-vacuum."""
        if self._store.dialect != "sqlite" or self._path is None or self._days == 0:
            return
        try:
            if await auto_vacuum_mode(self._store) == 2:
                return
            size = await store_size(self._store, self._path)
            if size > SWITCH_MAX_BYTES:
                log.warning("retention.vacuum_needed", size_bytes=size, hint="remediator prune --vacuum")
                return
            switched = await switch_to_incremental(self._store)
            log.info("retention.auto_vacuum", incremental=switched, size_bytes=size)
        except errors.StoreUnavailable as exc:
            log.warning("retention.prepare_failed", reason=str(exc)[:300])

    async def run_once(self) -> Report | None:
        """One round (None when retention is off or the store could not answer); then the store's size."""
        report: Report | None = None
        try:
            if self._days > 0:
                report = await prune(
                    self._store,
                    cutoff=cutoff_for(self._days, self._clock()),
                    batch=self._batch,
                    on_deleted=self._count,
                )
                if report.total:
                    pages = await reclaim(self._store)
                    log.info("retention.pruned", **report.deleted, pages_freed=pages)
                elif report.skipped:
                    log.info("retention.skipped", reason="another replica holds the retention lock")
            self._metrics.store_size.set(await store_size(self._store, self._path))
        except errors.StoreUnavailable as exc:
            log.warning("retention.failed", reason=str(exc)[:300])
        return report

    def _count(self, table: str, rows: int) -> None:
        self._metrics.retention_deleted.labels(table=table).inc(rows)

    async def start(self) -> None:
        """``prepare``, then prune in the background (first round at once)."""
        await self.prepare()
        self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a bug here must not end the task: the next round tries again
                log.exception("retention.crashed")
            await asyncio.sleep(self._interval_s)
