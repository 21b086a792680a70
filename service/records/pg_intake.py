"""Intake's inbox insert on PostgreSQL: one statement, one round trip per group commit, through asyncpg.

A batch of inbox rows goes to PostgreSQL as arrays; one statement (``_INSERT``) unnests them into the inbox
with ``ON CONFLICT DO NOTHING`` and queues ``pg_notify('remediator_inbox')`` when one of the new rows is
pending work (the other replicas' listeners wake at once). It runs outside an explicit transaction: one
statement is one implicit transaction, so the rows and the notification commit together (a notification is
delivered at commit, never before or without it). asyncpg prepares the statement once per connection (its
statement cache) and sends the arrays in its binary format: no SQL is compiled per batch. ``asyncpg`` is
imported when the first connection opens (PostgreSQL stores only), not with this module.

What a batch costs here is per array element: asyncpg checks every element against two ``collections.abc``
classes before it encodes it (~0.25 µs a string, most of the insert's client CPU). So only the columns that
differ per alert travel as one element per row (``_PER_ROW``); the others (the alertname and status, the
request's receiver, group key and time, the row's state and rule, …) are nearly always the same for every
row of a request, and travel once per distinct combination (``_SHARED``), each row carrying that
combination's index. And the answer is one row, the number stored, unless some rows were already stored:
only then do the keys of the new rows come back (duplicates are the exception; decoding every key of every
batch cost as much as encoding it).

The connection is our own (not a pool's: a pool's release costs a reset round trip per batch), opened on
first use and again after it was lost. Errors are asyncpg's; the caller (``intake.committer``) tells the
rows' fault from the store's with ``refused``. Never writes anything but new inbox rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from service.records import inbox, wakeups

Key = tuple[str, str, str]

#: (column, PostgreSQL array type, value when a row leaves it out). Our own names only: no data in the SQL.
_PER_ROW: tuple[tuple[str, str, Any], ...] = (
    ("fingerprint", "text", None),
    ("starts_at", "text", None),
    ("payload", "text", None),
)
_SHARED: tuple[tuple[str, str, Any], ...] = (
    ("status", "text", None),  # firing or resolved
    ("alertname", "text", None),  # a notification's alerts share it when Alertmanager groups by it
    ("receiver", "text", None),
    ("group_key", "text", None),
    ("truncated", "int4", 0),
    ("received_at", "float8", None),
    ("state", "text", inbox.PENDING),
    ("attempts", "int4", 0),
    ("outcome", "text", None),
    ("processed_at", "float8", None),
    ("rule", "text", None),
    ("drill", "bool", False),
)
_SHARED_AT = len(_PER_ROW) + 1  # the first shared array's parameter number; the row's index comes before
_INSERT = (  # noqa: S608 -- built at import from our own column names and constants, no data
    "WITH ins AS (INSERT INTO inbox ({names}) SELECT {per_row}, {shared}"
    " FROM unnest({arrays}, ${index}::int4[]) AS r({per_row}, i)"
    " ON CONFLICT DO NOTHING RETURNING fingerprint, starts_at, status, state),"
    " n AS (SELECT count(*) AS stored,"
    " (SELECT pg_notify('{channel}', '') FROM ins WHERE state = '{pending}' LIMIT 1) AS woke FROM ins)"
    " SELECT NULL::text, NULL::text, NULL::text, stored, woke FROM n"
    " UNION ALL SELECT fingerprint, starts_at, status, NULL, NULL FROM ins"
    " WHERE (SELECT stored FROM n) < ${count}"
).format(
    names=", ".join(name for name, _, _ in _PER_ROW + _SHARED),
    per_row=", ".join(name for name, _, _ in _PER_ROW),
    shared=", ".join(f"(${n}::{kind}[])[i]" for n, (_, kind, _) in enumerate(_SHARED, start=_SHARED_AT + 1)),
    arrays=", ".join(f"${n}::{kind}[]" for n, (_, kind, _) in enumerate(_PER_ROW, start=1)),
    index=_SHARED_AT,
    count=_SHARED_AT + len(_SHARED) + 1,
    channel=wakeups.CHANNEL,
    pending=inbox.PENDING,
)
#: SQLSTATE classes of an error in what the rows hold: data exception, integrity violation, program limit
#: exceeded (a value too large for an index).
_ROW_SQLSTATES = ("22", "23", "54")


class Inserter:
    """Inserts inbox rows on one connection of its own; one batch at a time."""

    def __init__(self, dsn: str, *, connect_timeout_s: float, statement_timeout_s: float) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout_s
        self._statement_timeout = statement_timeout_s
        self._conn: Any = None  # asyncpg.Connection

    async def insert(self, rows: Sequence[Mapping[str, Any]]) -> set[Key] | None:
        """Store ``rows`` (distinct keys; those not already stored) and commit; None when every row was new,
        else the keys that were. Raises asyncpg's (or the socket's) error; a lost connection is dropped and
        opened again on the next call."""
        if not rows:
            return set()
        conn = await self._connection()
        try:
            records = await conn.fetch(_INSERT, *_arrays(rows), len(rows), timeout=self._statement_timeout)
        except BaseException as exc:
            if not refused(exc):  # the connection may be broken or mid-statement: start afresh
                await self.close()
            raise
        if any(r[3] == len(rows) for r in records):
            return None
        return {(r[0], r[1], r[2]) for r in records if r[3] is None}

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            import asyncpg

            self._conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 1)
            except (Exception, asyncio.CancelledError):
                conn.terminate()


def _arrays(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The statement's arrays: one element per row for ``_PER_ROW``, the row's index (1-based) into the
    batch's distinct ``_SHARED`` combinations, and one element per combination for ``_SHARED``."""
    arrays: list[list[Any]] = [[row[name] for row in rows] for name, _, _ in _PER_ROW]
    combinations: dict[tuple[Any, ...], int] = {}
    index = []
    for row in rows:
        shared = tuple(row.get(name, default) for name, _, default in _SHARED)
        at = combinations.get(shared)
        if at is None:
            at = combinations[shared] = len(combinations) + 1
        index.append(at)
    arrays.append(index)
    arrays += [list(column) for column in zip(*combinations, strict=True)]
    return arrays


def refused(exc: BaseException) -> bool:
    """True when PostgreSQL (or the driver, encoding them) refused the rows for what they hold — the same
    rows fail again however often they are retried — rather than the store failing: a SQLSTATE of
    ``_ROW_SQLSTATES``, a value asyncpg could not encode (its client-side ``DataError`` is a ValueError: an
    integer out of range), an overflow."""
    if isinstance(exc, ValueError | OverflowError):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state[:2] in _ROW_SQLSTATES
