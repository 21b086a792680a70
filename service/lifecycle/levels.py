"""The escalation matrix over time: the next level of people when nobody acknowledged (``raise_level``), and
the acknowledgement that stops it and reaches every page made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.escalation import matrix
from service.lifecycle.core import (
    UNRESOLVED,
    Core,
    T,
    _changed,
    _stored,
)
from service.records import incidents as incident_rows
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn


class Levels(Core):
    """The escalation matrix over time: the next level, and the acknowledgement that stops it."""

    async def raise_level(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """The next level of the matrix is due and nobody acknowledged: page it (with levels set, its own
        recipients; the bundle's ``holders`` say who already has it), set the following timer (or none).
        Compare-and-set on the level read, so two workers never skip or repeat a level. Level 4 only for a
        critical incident (its ``severity`` column); a held incident (level 0) is never raised."""
        level = int(incident["escalation_level"]) + 1
        if level < 2:  # held: linked to a cause that pages for it
            return None
        severity_, top = str(incident["severity"]), self.paging.top if self.paging else matrix.TOP
        escalated_at = float(incident["escalated_at"] or incident["opened_at"])
        if matrix.next_level(level - 1, severity_, escalated_at, top=top) is None:
            await incident_rows.update(conn, incident["id"], next_escalation_at=None)  # nothing further
            return None
        following = matrix.next_level(level, severity_, escalated_at, top=top)
        stored = incident_rows.load_bundle(incident["bundle"])
        document = _changed(
            stored,
            escalation_level=level,
            next_escalation_level=following[0] if following else None,
            next_escalation_at=datetime.fromtimestamp(following[1], UTC) if following else None,
            elapsed_s=round(now - incident_rows.clock_start(incident), 3),
            holders=[*(stored.holders if stored else ()), *self._holders(level, stored)],
        )
        return await self._move(  # None: another worker raised it meanwhile, or a human took it
            conn,
            incident["id"],
            now=now,
            from_states={"escalated"},
            where=(T.c.escalation_level == level - 1, T.c.acked_at.is_(None), T.c.resolved_at.is_(None)),
            values={
                "escalation_level": level,
                **_stored(document),
                "next_escalation_at": following[1] if following else None,
            },
            event=(
                "incident.escalation_level",
                f"not acknowledged: escalated to level {level}",
                {"level": level, "channels": list(self._channels(document, f"escalate:{level}"))},
            ),
            notify=(f"escalate:{level}", document),
        )

    async def acknowledge(
        self, conn: Conn, incident: dict[str, Any], *, by: str, now: float
    ) -> IncidentRow | None:
        """A human has it: stop the escalation timers (and a pending page), tell the channels and every
        recipient paged at any level (each PagerDuty service acknowledges its alert). None when it is
        resolved or acknowledged already."""
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]),
            next_escalation_level=None,
            next_escalation_at=None,
            page_due_at=None,
        )
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states=UNRESOLVED,
            where=(T.c.acked_at.is_(None),),
            values={
                "acked_at": now,
                "acked_by": by,
                "next_escalation_at": None,
                "page_due_at": None,
                **_stored(document),
            },
            event=(
                "incident.acknowledged",
                f"acknowledged by {by}",
                {"by": by, "level": incident["escalation_level"]},
            ),
            notify=("acknowledge", document),
        )
