"""The lifecycle's core: the owner's settings, and the one step every transition takes — compare-and-set the
incident, append its timeline event, queue the notifications it implies (``_move``) — with who hears an event
(``_channels``, ``_notify``: the routes and the matrix of people) and the helpers transitions share. The
transitions themselves are ``transitions.Lifecycle`` and its parts (``linking``, ``deadlines``, ``levels``,
``checklist``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from service.escalation import links, matrix, paging
from service.model import incidents
from service.observability import Metrics
from service.records import incidents as incident_rows
from service.records import outbox, schema
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn
from service.records.store import Store

T = schema.incidents
#: built once: every notification of every incident asks it (a per-call statement costs SQLAlchemy ~4× more)
_DRILL = sa.select(T.c.drill).where(T.c.id == sa.bindparam("incident_id"))

UNRESOLVED = frozenset({"open", "diagnosing", "remediating", "verifying", "mitigated", "escalated"})
#: a human is handed the incident from any state short of resolved but escalated (a flap re-escalates)
ESCALATE_FROM = UNRESOLVED - {"escalated"}


def _all_channels(channels: Sequence[str]) -> Callable[[str, str], Sequence[str]]:
    return lambda _severity, _rule: channels


@dataclass(frozen=True)
class Core:
    """What every transition reads: store, channels and routes, links, the paging plan, time limits."""

    store: Store
    channels: Sequence[str]
    base_url: str
    metrics: Metrics | None = None
    #: (severity, rule) → channels; default: every channel that is on
    route: Callable[[str, str], Sequence[str]] | None = None
    #: which alert URLs become links (``REMEDIATOR_LINK_HOSTS``); default: only our own ``base_url`` host
    link_policy: links.Policy | None = None
    #: who hears each event (``REMEDIATOR_ESCALATION_LEVELS`` met with the routes); None: levels unset,
    #: every level notifies ``route``'s channels
    paging: paging.Paging | None = None
    #: an incident opened this long after an open incident of a rule it depends on is not linked to it
    link_window_s: float = 900.0
    #: a linked incident still firing this long after its cause resolved stands alone and pages
    link_grace_s: float = 120.0
    #: the runbooks' level-1 response time: while an action verifies, the page goes out by alert start + this
    first_response_s: float = 300.0
    #: the one channel a runbook drill's notifications go to (``REMEDIATOR_DRILL_CHANNEL``; ``log`` when
    #: that channel is not on)
    drill_channel: str = "log"

    @property
    def _top(self) -> int:
        """The last level of the matrix of people (the runbooks' 4 when levels are unset)."""
        return self.paging.top if self.paging else matrix.TOP

    def _holders(self, level: int, document: incidents.Bundle | None) -> list[str]:
        """Who is paged at ``level``: the paging plan's recipients, else the channels of the incident."""
        severity_, rule = (document.severity, document.rule) if document else ("", "")
        plan = self.paging or paging.unset(self.route or _all_channels(self.channels))
        return plan.holders(level, severity_, rule)

    async def _move(
        self,
        conn: Conn,
        incident_id: str,
        *,
        now: float,
        from_states: Collection[str],
        values: dict[str, Any],
        event: tuple[str, str, dict[str, Any] | None],
        notify: tuple[str, incidents.Bundle | None] | None = None,
        where: Sequence[sa.ColumnElement[bool]] = (),
    ) -> IncidentRow | None:
        """Compare-and-set the incident (``updated_at`` = ``now``), then append its timeline event and queue
        the notification it implies; None, writing nothing more, when the from-state did not hold."""
        row = await incident_rows.transition(
            conn, incident_id, from_states=from_states, values={**values, "updated_at": now}, where=where
        )
        if row is None:
            return None
        await self._event(conn, incident_id, now, *event)
        if notify is not None:
            await self._notify(conn, incident_id, notify[0], notify[1], now)
        return row

    def _channels(self, document: incidents.Bundle | None, event: str = "trigger") -> Sequence[str]:
        """The channel keys that hear ``event`` (level 1's page by default) of this incident."""
        plan = self.paging or paging.unset(self.route or _all_channels(self.channels))
        severity_, rule = (document.severity, document.rule) if document else ("", "")
        return [notice.channel for notice in plan.notices(event, severity_, rule)]

    async def _event(
        self,
        conn: Conn,
        incident_id: str,
        now: float,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        await incident_rows.add_event(conn, incident_id, at=now, kind=kind, message=message, data=data)

    async def _notify(
        self, conn: Conn, incident_id: str, event: str, document: incidents.Bundle | None, now: float
    ) -> None:
        """Queue ``event`` with the bundle for everyone who hears it (``paging``), in the caller's
        transaction; a Slack entry carries the level's ``mentions``.

        ``resolve`` and ``acknowledge`` also go to every channel that was paged (``trigger`` or
        ``escalate:N``), whatever the routes say now, and ``mitigated`` to every PagerDuty service paged.
        An incident never handed over (no bundle yet) is announced without one.

        A drill's every event goes to the drill channel only — never PagerDuty, a status page or a war room.
        """
        # the row decides (a bundle built elsewhere may not carry the flag); one lookup by primary key
        if (document is not None and document.drill) or await conn.scalar(
            _DRILL, {"incident_id": incident_id}
        ):
            drilled = document.model_copy(update={"drill": True}) if document is not None else None
            channel = self.drill_channel if self.drill_channel in self.channels else "log"
            payload = {"bundle": drilled.model_dump(mode="json")} if drilled is not None else {}
            await outbox.enqueue(
                self.store,
                conn,
                incident_id=incident_id,
                channel=channel,
                event=event,
                payload=payload,
                now=now,
            )
            return
        carried = {"bundle": document.model_dump(mode="json")} if document is not None else {}
        plan = self.paging or paging.unset(self.route or _all_channels(self.channels))
        severity_, rule = (document.severity, document.rule) if document else ("", "")
        paged = (
            await outbox.triggered_channels(conn, incident_id)
            if event in (*paging.TO_PAGED, "mitigated")
            else []
        )
        for notice in plan.notices(event, severity_, rule, paged=paged):
            await outbox.enqueue(
                self.store,
                conn,
                incident_id=incident_id,
                channel=notice.channel,
                event=event,
                payload={**carried, "mentions": list(notice.mentions)} if notice.mentions else carried,
                now=now,
            )


def _clock(at: float) -> str:
    """``12:04:05 UTC`` for timeline messages."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


def _handed(
    reason: str, now: float, document: incidents.Bundle | None, *, level: int, next_at: float | None
) -> dict[str, Any]:
    """An incident handed to humans at ``level`` (0: held under its cause), next timer at ``next_at``."""
    return {
        "state": "escalated",
        "reason": reason,
        "escalated_at": now,
        **_stored(document),
        "escalation_level": level,
        "next_escalation_at": next_at,
        "page_due_at": None,
    }


def _changed(bundle: incidents.Bundle | None, **changes: Any) -> incidents.Bundle | None:
    """The stored bundle with ``changes`` (typed values: datetimes stay datetimes); None stays None."""
    return bundle.model_copy(update=changes) if bundle is not None else None


def _stored(bundle: incidents.Bundle | None) -> dict[str, str]:
    """The ``bundle`` column's new value; nothing to write when the incident has no bundle yet."""
    return {"bundle": incident_rows.dump_bundle(bundle)} if bundle is not None else {}
