"""Customer communication on the runbooks' clock: drafts (``comms.drafted``), reminders to the information
channels as each deadline approaches and passes (``remind:KIND``, ``overdue:KIND``), and publishing
(``comms_claim`` → ``comms_published`` | ``comms_released``).

Only incidents whose rule has ``customer_impact`` and that are not drills get any of it. Drafts of the
Investigating step are written once the incident is handed to humans, the Resolved step once it resolves;
the runbooks' deadlines count from the alert's start: status page 5 min, email 15 min, social post 30 min
(critical incidents only; a reminder, there is no integration). A deadline is met once any step of its kind
is published. Each reminder exists once (its timeline event is checked first, its notification is keyed by
incident, channel and event). This part writes the ``comms`` table and never sends anything itself.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from service.comms import drafts
from service.lifecycle.core import Core, _changed, _clock
from service.records import comms as comms_rows
from service.records import incidents as incident_rows
from service.records import schema
from service.records.sqlite_inline import Conn

#: what is due, seconds after the alert's start, and whether only critical incidents owe it
DEADLINES = (("statuspage", 300.0, False), ("email", 900.0, False), ("social", 1800.0, True))
#: a reminder goes out this long before a deadline, and again when it passes
LEAD_S = 60.0
NAMES = {"statuspage": "status page update", "email": "email to stakeholders", "social": "social post"}
REMINDER = "comms.reminder"


@dataclass(frozen=True)
class Comms(Core):
    """Customer-communication transitions of the incident's life."""

    #: alert labels whose (cleaned) values drafts may show (``REMEDIATOR_COMMS_LABELS``)
    comms_labels: tuple[str, ...] = ()

    def comms_link(self, incident_id: str) -> str:
        """The console's drafts of the incident: ``…/ui/incidents/ID#comms``."""
        return f"{self.base_url.rstrip('/')}/ui/incidents/{urllib.parse.quote(incident_id, safe='')}#comms"

    async def comms_due(self, conn: Conn, incident: dict[str, Any], *, now: float) -> int:
        """Write the drafts the incident's state calls for and the reminders now due; how many."""
        if not incident.get("customer_impact") or incident.get("drill"):
            return 0
        step = "resolved" if incident["resolved_at"] is not None else "investigating"
        written = await self.comms_drafted(conn, incident, step, now=now)
        if incident["resolved_at"] is not None:
            return written
        return written + await self._remind(conn, incident, now=now)

    async def comms_drafted(self, conn: Conn, incident: dict[str, Any], step: str, *, now: float) -> int:
        """The status-page and email drafts of ``step`` (once; none before the incident has a bundle, and
        a Resolved draft only for an incident that had an Investigating one)."""
        known = {(r.kind, r.step) for r in await comms_rows.of_incident(conn, incident["id"])}
        if step != "investigating" and ("statuspage", "investigating") not in known:
            return 0
        if all((kind, step) in known for kind in drafts.KINDS):
            return 0
        stored = incident_rows.load_bundle(incident["bundle"])
        if stored is None:
            return 0
        facts = drafts.Facts(
            severity=stored.severity,
            started_at=datetime.fromtimestamp(incident_rows.clock_start(incident), UTC),
            labels=stored.alerts[0].labels if stored.alerts else {},
            drill=stored.drill,
        )
        texts = [(k, step, drafts.draft(k, step, facts, self.comms_labels).text) for k in drafts.KINDS]
        new = await comms_rows.insert_drafts(self.store, conn, incident["id"], texts, now=now)
        if new:
            await self._event(
                conn,
                incident["id"],
                now,
                "comms.drafted",
                f"customer update drafted ({step}): status page and email, to publish at "
                f"{self.comms_link(incident['id'])}",
                {"step": step, "drafts": [kind for kind, _ in new]},
            )
        return len(new)

    async def _remind(self, conn: Conn, incident: dict[str, Any], *, now: float) -> int:
        """The reminders due now and not sent before: ``remind:KIND`` a minute before each deadline,
        ``overdue:KIND`` once it passed (only the latter when both are due), until the kind is published."""
        rows = await comms_rows.of_incident(conn, incident["id"])
        if not rows:
            return 0
        published = {r.kind for r in rows if r.state == comms_rows.PUBLISHED}
        sent = await _reminded(conn, incident["id"])
        start = incident_rows.clock_start(incident)
        count = 0
        for kind, after_s, critical_only in DEADLINES:
            if kind in published or (critical_only and incident["severity"] != "critical"):
                continue
            deadline = start + after_s
            event = f"overdue:{kind}" if now >= deadline else f"remind:{kind}"
            if now < deadline - LEAD_S or event in sent:
                continue
            await self._reminder(conn, incident, event, deadline, now=now)
            count += 1
        return count

    async def _reminder(
        self, conn: Conn, incident: dict[str, Any], event: str, deadline: float, *, now: float
    ) -> None:
        kind = event.partition(":")[2]
        minutes = (deadline - incident_rows.clock_start(incident)) / 60
        when = "overdue since" if event.startswith("overdue") else "due at"
        manual = " (no integration: post it by hand)" if kind == "social" else ""
        sentence = (
            f"Customer communication: {NAMES[kind]} {when} {_clock(deadline)} ({minutes:.0f} min after the "
            f"alert's start){manual}; the draft: {self.comms_link(incident['id'])}"
        )
        await self._event(conn, incident["id"], now, REMINDER, sentence, {"event": event, "due_at": deadline})
        document = _changed(incident_rows.load_bundle(incident["bundle"]), reason=sentence)
        await self._notify(conn, incident["id"], event, document, now)

    async def comms_claim(self, conn: Conn, draft: comms_rows.Row, *, by: str, now: float) -> bool:
        """``by`` starts publishing the draft (compare-and-set from ``draft``); False if someone was first."""
        return await comms_rows.claim(conn, draft.id, by=by, now=now)

    async def comms_published(
        self, conn: Conn, draft: comms_rows.Row, *, external_id: str | None, by: str, now: float
    ) -> bool:
        """The draft went out: ``published`` with its external id, and the timeline says who published it."""
        if not await comms_rows.published(conn, draft.id, external_id=external_id, now=now):
            return False
        name = NAMES.get(draft.kind, draft.kind)
        await self._event(
            conn,
            draft.incident_id,
            now,
            "comms.published",
            f"{name} ({draft.step}) published by {by}",
            {"kind": draft.kind, "step": draft.step, "by": by, "external_id": external_id},
        )
        return True

    async def comms_released(
        self, conn: Conn, draft: comms_rows.Row, *, reason: str, by: str, now: float
    ) -> bool:
        """Sending failed: the draft is a draft again, and the timeline says why."""
        if not await comms_rows.release(conn, draft.id, now=now):
            return False
        name = NAMES.get(draft.kind, draft.kind)
        await self._event(
            conn,
            draft.incident_id,
            now,
            "comms.failed",
            f"{name} ({draft.step}) not published ({by}): {reason}",
            {"kind": draft.kind, "step": draft.step, "by": by},
        )
        return True


async def _reminded(conn: Conn, incident_id: str) -> set[str]:
    """The reminder events already written for the incident."""
    tl = schema.timeline
    stmt = sa.select(tl.c.data).where(tl.c.incident_id == incident_id, tl.c.kind == REMINDER)
    events = set()
    for (data,) in (await conn.execute(stmt)).all():
        event = orjson.loads(data).get("event") if data else None
        if isinstance(event, str):
            events.add(event)
    return events
