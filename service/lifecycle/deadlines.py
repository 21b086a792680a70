"""Automatic remediation in progress: the announcement to the information channels, the page deadline
(alert start + min(level-1 response time, MTTR target)) the timers keep, and what an incident already paged
learns afterwards (``restate``)."""

from __future__ import annotations

from datetime import UTC, datetime

from service.lifecycle.core import (
    Core,
    _changed,
    _clock,
    _stored,
)
from service.model import incidents
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn


class Deadlines(Core):
    """Automatic remediation in progress: the announcement to the information channels, the page deadline."""

    def page_deadline(self, started_at: float, mttr_target_s: float) -> float:
        """When a human must have been paged unless mitigated first: min(start + the level-1 response time,
        start + the MTTR target)."""
        return started_at + min(self.first_response_s, mttr_target_s)

    async def announce(
        self,
        conn: Conn,
        incident_id: str,
        *,
        document: incidents.Bundle,
        message: str,
        page_due_at: float,
        now: float,
    ) -> IncidentRow | None:
        """An automatic action starts (state ``remediating``): tell the information channels at once
        (``announce``), and set the page deadline the timers keep while it verifies."""
        announced = _changed(document, reason=message, page_due_at=datetime.fromtimestamp(page_due_at, UTC))
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"remediating"},
            values={"page_due_at": page_due_at, **_stored(announced)},
            event=(
                "incident.announced",
                f"{message}; paged at {_clock(page_due_at)} unless mitigated first",
                {"page_due_at": page_due_at},
            ),
            notify=("announce", announced),
        )

    async def restate(
        self, conn: Conn, incident_id: str, *, document: incidents.Bundle | None, reason: str, now: float
    ) -> IncidentRow | None:
        """An incident already with humans (paged at the deadline while its action verified) learns more —
        the action failed, or its result is unknown: the reason and the stored bundle say so now."""
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"escalated"},
            values={"reason": reason, **_stored(document)},
            event=("incident.updated", reason, None),
        )
