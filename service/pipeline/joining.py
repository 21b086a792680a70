"""``Joiner``: the rows of one claim that join incidents already open, attached together (SQLite).

In a storm most alerts join an incident that an earlier alert opened. One by one, each such row is a write
transaction of five statements and a commit (resolved before? the open incident, the episode, its timeline
event, the row done). The rows the dispatcher runs at once ask here instead; one write transaction then
serves all of them with five statements in all (two reads, three ``executemany``), whatever their number.

Only the plain case is taken here: a new firing episode of an untruncated group, joining an open incident
it changes nothing in (severity, clock: ``Lifecycle.sharpens``) that is neither mitigated (a flap) nor
opened by this very row (a resumed row), no drill, no episode whose resolution arrived first. Every other
row — and every row of a batch that fails in any way (a lost claim, an episode attached already, the store
down) — answers ``None`` and takes the one-by-one path (``Pipeline._open_or_attach``), which decides it
exactly as before. PostgreSQL always takes that path (its ``executemany`` gives no per-row count to fence
the claims with). Never opens, escalates or notifies anything.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from service.lifecycle.transitions import Episode, Lifecycle
from service.matching.loader import CompiledRule
from service.model import alerts, incidents
from service.records import inbox
from service.records import incidents as incident_rows
from service.records.store import Store

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Join:
    """A firing row on its way to open or attach its incident."""

    row: inbox.InboxRow
    alert: alerts.Alert
    rule: CompiledRule
    target: incidents.TargetRef
    open_key: str


class _Duplicate(Exception):
    """An episode of the batch was attached already: roll the batch back."""


@dataclass
class Joiner:
    store: Store
    lifecycle: Lifecycle
    clock: Callable[[], float]
    _pending: list[tuple[Join, asyncio.Future[str | None]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def attached(self, join: Join) -> str | None:
        """The incident the row was attached to (its row is done), or None: open or attach it one by one."""
        if not self.store.single_writer or join.row.drill or join.row.truncated:
            return None
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append((join, future))
        if self._task is None or self._task.done():
            # a context of its own: the rows' log fields (bound per row) must not follow it
            self._task = asyncio.create_task(self._run(), name="joiner", context=contextvars.Context())
        return await future

    async def _run(self) -> None:
        batch: list[tuple[Join, asyncio.Future[str | None]]] = []
        try:
            while self._pending:
                await asyncio.sleep(0)  # the other rows of the claim arrive meanwhile
                batch, self._pending = self._pending, []
                try:
                    joined = await self._attach([join for join, _future in batch])
                except Exception as exc:  # every row of it takes the one-by-one path, which decides it
                    log.info("attach.batch_undone", rows=len(batch), reason=f"{type(exc).__name__}: {exc}")
                    joined = {}
                for join, future in batch:
                    if not future.done():
                        future.set_result(joined.get(join.row.id))
        finally:  # cancelled (shutdown): whoever still waits goes the one-by-one way
            for _join, future in [*batch, *self._pending]:
                if not future.done():
                    future.set_result(None)
            self._pending = []

    async def _attach(self, joins: list[Join]) -> dict[int, str]:
        """Attach the plain rows of ``joins`` in one transaction; their ids → the incident each joined."""
        now = self.clock()
        async with self.store.write() as conn:
            resolved = await inbox.resolved_among(conn, [j.row for j in joins])
            open_ = await incident_rows.find_open_many(conn, {j.open_key for j in joins})
            chosen: list[tuple[Join, str]] = []
            for join in joins:
                existing = open_.get(join.open_key)
                if (
                    existing is None
                    or join.row.id in resolved
                    or existing["opened_by"] == join.row.id
                    or existing["state"] == "mitigated"
                    or self.lifecycle.sharpens(existing, join.alert, now=now)
                ):
                    continue
                chosen.append((join, existing["id"]))
            if not chosen:
                return {}
            episodes = [
                (incident_id, j.alert, Episode(j.row.fingerprint, j.row.starts_at, j.row.payload))
                for j, incident_id in chosen
            ]
            if not await self.lifecycle.attach_many(conn, episodes, now=now):
                raise _Duplicate("an episode of the batch was attached already")
            await inbox.finish_many(
                conn,
                [j.row for j, _incident in chosen],
                outcome="attached",
                incidents=[incident_id for _j, incident_id in chosen],
                now=now,
            )
        return {j.row.id: incident_id for j, incident_id in chosen}
