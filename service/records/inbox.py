"""The inbox: every received alert, unique per (fingerprint, startsAt, status), claimed by workers.

A row is claimable when it is pending (or its claim's lease expired) and no earlier row of the same
fingerprint is unfinished: the alerts of one label set are processed in the order they arrived.

Claims are fenced: a claim's lease is short and renewed by one ``heartbeat`` per worker; a worker whose
lease expired may have been overtaken, so every write that moves a row's work forward (``fence``, and
``finish`` in the transaction that did the work) checks that the worker still holds the claim and raises
``errors.LostClaim`` otherwise: the transaction rolls back and the new owner does the work, once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service import errors
from service.records import schema, wakeups
from service.records.sqlite_inline import Conn
from service.records.store import Store

Key = tuple[str, str, str]

PENDING, CLAIMED, DONE = "pending", "claimed", "done"


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    fingerprint: str
    starts_at: str
    status: str
    payload: str
    receiver: str
    group_key: str
    truncated: int
    received_at: float
    attempts: int
    rule: str | None = None  # the rule intake matched (None: not matched there, or stored before that)
    drill: bool = False  # a runbook drill's alert (``POST /v1/drills``): its incident is a drill
    claimed_by: str = ""  # the worker that claimed it (the fence of every write of its work)


async def insert(store: Store, conn: Conn, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Insert rows, skipping those already stored; returns the keys that were new."""
    if not rows:
        return set()
    t = schema.inbox
    stmt = store.insert_ignore(t).returning(t.c.fingerprint, t.c.starts_at, t.c.status)
    result = await conn.execute(stmt, list(rows))
    return {(r[0], r[1], r[2]) for r in result.all()}


#: the columns a claim returns, in ``InboxRow``'s order
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(InboxRow))


async def claim(
    store: Store, worker: str, *, limit: int, lease_s: float, now: float, take_expired: bool = True
) -> list[InboxRow]:
    """Claim up to ``limit`` claimable rows for ``worker`` until ``now + lease_s``.

    An expired claim of ``worker`` itself is not taken again: the worker still runs it (its heartbeat
    could not reach the store) and renews it as soon as it can. ``take_expired`` False: pending rows only
    (just after a store outage, every claim expired and their live owners have not renewed them yet)."""
    stmt = _claim_statement(store.dialect, limit, take_expired)
    params = {"worker": worker, "now": now, "until": now + lease_s}
    async with store.write() as conn:
        result = await conn.execute(stmt, params)
        rows = [InboxRow(*r) for r in result.all()]
    return sorted(rows, key=lambda r: r.id)


@functools.lru_cache(maxsize=16)
def _claim_statement(dialect: str, limit: int, take_expired: bool) -> sa.Update:
    """The claim, built once per shape (SQLAlchemy memoizes a reused statement's cache key; building it
    costs more than running it): binds ``worker``, ``now`` and ``until``."""
    t = schema.inbox
    earlier = schema.inbox.alias("earlier")
    worker: sa.BindParameter[str] = sa.bindparam("worker")
    now: sa.BindParameter[float] = sa.bindparam("now")
    blocked = (
        sa.select(sa.literal(1))
        .where(earlier.c.fingerprint == t.c.fingerprint, earlier.c.id < t.c.id, undecided(earlier))
        .exists()
    )
    # look only at the oldest rows (the partial (state, id) index), not the whole backlog: O(limit)
    window = limit * 16
    oldest_pending = (
        sa.select(t.c.id).where(t.c.state == PENDING, undecided(t)).order_by(t.c.id).limit(window)
    )
    expired = (
        sa.select(t.c.id)
        .where(t.c.state == CLAIMED, undecided(t), t.c.lease_until < now, t.c.claimed_by != worker)
        .order_by(t.c.id)
        .limit(window)
    )
    # one IN over a UNION ALL, not ``id IN (…) OR id IN (…)``: PostgreSQL cannot split that OR, so it walked
    # the whole primary key testing each row against both lists (19 ms at 100,000 rows, at every claim)
    pool = (
        sa.union_all(_ids(oldest_pending, "pending_ids"), _ids(expired, "expired_ids"))
        if take_expired
        else _ids(oldest_pending, "pending_ids")
    )
    candidates = sa.select(t.c.id).where(t.c.id.in_(pool), ~blocked).order_by(t.c.id).limit(limit)
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        sa.update(t)
        .where(t.c.id.in_(candidates.scalar_subquery()))
        .values(
            state=CLAIMED,
            claimed_by=worker,
            lease_until=sa.bindparam("until"),
            attempts=t.c.attempts + 1,
        )
        .returning(*(t.c[name] for name in _ROW_FIELDS))
    )


def undecided(table: sa.FromClause) -> sa.ColumnElement[bool]:
    """``state <> 'done'`` on ``table`` (the inbox or an alias of it): the partial indexes' WHERE
    (``schema.INBOX_UNDECIDED``) with the constant inline, not bound, so that the planners may use them."""
    return table.c.state != sa.literal_column(f"'{DONE}'")


def _ids(ordered: sa.Select[tuple[int]], name: str) -> sa.Select[tuple[int]]:
    """``ordered`` (ids with ORDER BY and LIMIT) as a plain select from it, so it may stand in a UNION ALL
    (SQLite refuses a parenthesised member)."""
    sub = ordered.subquery(name)
    return sa.select(sub.c.id)


async def add_drill(store: Store, row: dict[str, Any]) -> int:
    """Store one drill alert (``drill`` true, its own fingerprint) and wake every replica; its row id."""
    t = schema.inbox
    async with store.write() as conn:
        row_id = await conn.scalar(sa.insert(t).values(**row, drill=True).returning(t.c.id))
        if store.dialect == "postgresql":
            await wakeups.notify(conn)
    return int(row_id)


async def drill_incident(store: Store, fingerprint: str) -> str | None:
    """The drill incident the drill alert ``fingerprint`` (one episode: drill fingerprints are never reused)
    opened, once it is open (None before). Through the alert's episode index, not a scan of incidents."""
    i, a = schema.incidents, schema.incident_alerts
    query = (
        sa.select(i.c.id)
        .join(a, a.c.incident_id == i.c.id)
        .where(a.c.fingerprint == fingerprint, i.c.drill.is_(True))
        .limit(1)
    )
    async with store.read() as conn:
        found = await conn.scalar(query)
    return str(found) if found is not None else None


#: Statements of the per-alert hot path, built once (SQLAlchemy memoizes their cache keys).
_HELD = sa.and_(
    schema.inbox.c.id == sa.bindparam("row_id"),
    schema.inbox.c.claimed_by == sa.bindparam("worker"),
    schema.inbox.c.state == CLAIMED,
)
_FINISH = (
    sa.update(schema.inbox)
    .where(_HELD)
    .values(
        state=DONE,
        outcome=sa.bindparam("outcome"),
        incident_id=sa.bindparam("incident"),
        processed_at=sa.bindparam("now"),
        lease_until=None,
    )
)
#: a no-op write on the row: it fails when the claim is lost, and on PostgreSQL it row-locks the claim
#: until the transaction ends (a claim by another worker skips locked rows), so the check cannot go stale
_FENCE = sa.update(schema.inbox).where(_HELD).values(lease_until=schema.inbox.c.lease_until)
_RESOLVED_BEFORE = (
    sa.select(sa.func.count())
    .select_from(schema.inbox)
    .where(
        schema.inbox.c.fingerprint == sa.bindparam("fingerprint"),
        schema.inbox.c.starts_at == sa.bindparam("starts_at"),
        schema.inbox.c.status == "resolved",
        schema.inbox.c.id < sa.bindparam("row_id"),
    )
)

_RESOLVED = schema.inbox.alias("resolved")
_RESOLVED_AMONG = sa.select(schema.inbox.c.id).where(
    schema.inbox.c.id.in_(sa.bindparam("ids", expanding=True)),
    sa.select(sa.literal(1))
    .where(
        _RESOLVED.c.fingerprint == schema.inbox.c.fingerprint,
        _RESOLVED.c.starts_at == schema.inbox.c.starts_at,
    )
    .where(_RESOLVED.c.status == "resolved", _RESOLVED.c.id < schema.inbox.c.id)
    .exists(),
)


def _lost(row: InboxRow) -> errors.LostClaim:
    return errors.LostClaim(f"inbox row {row.id} is no longer claimed by {row.claimed_by or 'this worker'}")


async def finish(conn: Conn, row: InboxRow, *, outcome: str, incident_id: str | None, now: float) -> None:
    """Mark a row done inside the transaction that did its work; ``errors.LostClaim`` (the transaction
    must roll back) when the worker that claimed it no longer holds the claim."""
    params = {
        "row_id": row.id,
        "worker": row.claimed_by,
        "outcome": outcome,
        "incident": incident_id,
        "now": now,
    }
    result = await conn.execute(_FINISH, params)
    if not result.rowcount:
        raise _lost(row)


async def finish_many(
    conn: Conn, rows: Sequence[InboxRow], *, outcome: str, incidents: Sequence[str], now: float
) -> None:
    """SQLite: ``finish`` for several rows in one ``executemany`` (``incidents`` in the rows' order), fenced
    as ``finish`` is: ``errors.LostClaim`` (roll back) unless every row's worker still holds its claim."""
    params = [
        {"row_id": row.id, "worker": row.claimed_by, "outcome": outcome, "incident": incident, "now": now}
        for row, incident in zip(rows, incidents, strict=True)
    ]
    result = await conn.execute(_FINISH, params)
    if result.rowcount != len(rows):
        raise errors.LostClaim(
            f"{len(rows) - result.rowcount} of inbox rows {[r.id for r in rows]} lost their claim"
        )


async def resolved_among(conn: Conn, rows: Sequence[InboxRow]) -> set[int]:
    """``resolved_before`` for several rows in one statement: the ids of those whose episode's resolved
    notification arrived before them."""
    found = await conn.execute(_RESOLVED_AMONG, {"ids": [row.id for row in rows]})
    return {int(row_id) for (row_id,) in found.all()}


async def fence(conn: Conn, row: InboxRow) -> None:
    """Inside a transaction that moves the row's work forward without finishing it: ``errors.LostClaim``
    unless its worker still holds the claim (held, on PostgreSQL, until the transaction ends)."""
    result = await conn.execute(_FENCE, {"row_id": row.id, "worker": row.claimed_by})
    if not result.rowcount:
        raise _lost(row)


async def heartbeat(store: Store, worker: str, *, until: float) -> int:
    """Renew every claim ``worker`` holds until ``until`` (one statement for all of them); how many."""
    t = schema.inbox
    async with store.write() as conn:
        result = await conn.execute(
            sa.update(t)
            .where(t.c.claimed_by == worker, t.c.state == CLAIMED, undecided(t))
            .values(lease_until=until)
        )
    return int(result.rowcount or 0)


async def fail(store: Store, row: InboxRow, *, error: str, now: float, give_up: bool) -> bool:
    """Record a processing error if the worker still holds the claim; the row becomes claimable again
    unless we give up on it. False: the claim was lost (the new owner decides)."""
    t = schema.inbox
    values: dict[str, Any] = {"error": error[:2000], "claimed_by": None, "lease_until": None}
    values.update({"state": DONE, "outcome": "error", "processed_at": now} if give_up else {"state": PENDING})
    held = sa.and_(t.c.id == row.id, t.c.claimed_by == row.claimed_by, t.c.state == CLAIMED)
    async with store.write() as conn:
        result = await conn.execute(sa.update(t).where(held).values(**values))
    return bool(result.rowcount)


async def release(
    store: Store, *, worker: str | None = None, ids: Sequence[int] = (), uncount: bool = False
) -> int:
    """Return claimed rows to pending: those of ``worker`` (only ``ids`` when given), or every claim
    (single-replica start-up: those claims died with their process, and keep their count).

    ``uncount``: the claim did not fail (a graceful stop, a batch put back) and does not count as an
    attempt, so it brings no row closer to quarantine."""
    t = schema.inbox
    cond = sa.and_(t.c.state == CLAIMED, undecided(t))
    if worker is not None:
        cond = sa.and_(cond, t.c.claimed_by == worker)
    if ids:
        cond = sa.and_(cond, t.c.id.in_(list(ids)))
    values: dict[str, Any] = {"state": PENDING, "claimed_by": None, "lease_until": None}
    if uncount:
        values["attempts"] = sa.case((t.c.attempts > 0, t.c.attempts - 1), else_=0)
    async with store.write() as conn:
        result = await conn.execute(sa.update(t).where(cond).values(**values))
    return int(result.rowcount or 0)


#: the rows not yet decided: exactly what the partial claim indexes hold
BACKLOG = sa.select(sa.func.count()).select_from(schema.inbox).where(undecided(schema.inbox))


async def backlog(store: Store) -> int:
    async with store.counting() as conn:
        value = await conn.scalar(BACKLOG)
    return int(value or 0)


async def resolved_before(conn: Conn, row: InboxRow) -> bool:
    """True when this episode's resolved notification arrived before this firing one (a late re-send)."""
    params = {"fingerprint": row.fingerprint, "starts_at": row.starts_at, "row_id": row.id}
    return bool(await conn.scalar(_RESOLVED_BEFORE, params))
