"""Linked incidents: an incident opened while an incident of a rule it depends on is open is linked to it
(``caused_by``), held (no page of its own) while that cause is open and at least as severe, and stands alone
when it outlives its cause by the grace period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from service.escalation import matrix
from service.lifecycle.core import (
    ESCALATE_FROM,
    Core,
    T,
    _changed,
    _clock,
    _handed,
    _stored,
)
from service.model import incidents, severity
from service.records import dependencies
from service.records import incidents as incident_rows
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn


class Linking(Core):
    """Linked incidents: linking at opening, holding while the cause is open, standing alone after it."""

    async def _link(
        self,
        conn: Conn,
        created: IncidentRow,
        cause: dependencies.Cause,
        *,
        target: incidents.TargetRef,
        now: float,
    ) -> IncidentRow:
        """Link a new incident to the open incident of a rule it depends on, in both timelines; the cause's
        stored bundle lists it among its effects."""
        cause_key = f"{cause.target_kind}/{cause.target_namespace}/{cause.target_name}"
        await incident_rows.update(conn, created.id, caused_by=cause.id)
        await self._event(
            conn,
            created.id,
            now,
            "incident.linked",
            f"caused by {cause.rule} incident {cause.id} on {cause_key} (open since "
            f"{_clock(cause.opened_at)}): automation waits for it, and it pages for both",
            {"caused_by": cause.id, "rule": cause.rule},
        )
        await self._event(
            conn,
            cause.id,
            now,
            "incident.linked",
            f"{created.rule} incident {created.id} on {target.key} is linked to this one (caused by it)",
            {"effect": created.id, "rule": created.rule},
        )
        root = await incident_rows.get_row(conn, cause.id)
        stored = incident_rows.load_bundle(root["bundle"]) if root else None
        if stored is not None:
            effect = incidents.LinkRef(
                incident_id=created.id, rule=created.rule, target=target.key, state=created.state
            )
            await incident_rows.update(
                conn, cause.id, **_stored(_changed(stored, effects=[*stored.effects, effect]))
            )
        return replace(created, caused_by=cause.id)

    async def _holding_cause(self, conn: Conn, incident_id: str) -> dict[str, Any] | None:
        """The unresolved cause this incident is linked to, when it is at least as severe (it pages)."""
        row = await incident_rows.get_row(conn, incident_id)
        if row is None or not row.get("caused_by"):
            return None
        cause = await incident_rows.get_row(conn, row["caused_by"])
        if cause is None or cause["resolved_at"] is not None:
            return None
        return cause if severity.rank(row["severity"]) <= severity.rank(cause["severity"]) else None

    async def _hold(
        self,
        conn: Conn,
        incident_id: str,
        cause: dict[str, Any],
        *,
        document: incidents.Bundle | None,
        reason: str,
        now: float,
    ) -> IncidentRow | None:
        message = (
            f"{reason} — not paged on its own: linked to {cause['rule']} incident {cause['id']}, which pages"
            " for both; it pages if it outlives that one"
        )
        held = _changed(
            document, reason=message, next_escalation_level=None, next_escalation_at=None, page_due_at=None
        )
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states=ESCALATE_FROM,
            values=_handed(reason, now, held, level=0, next_at=None),
            event=("incident.escalated", message, {"level": 0, "held_by": cause["id"]}),
            notify=("linked", held),
        )

    async def _release_effects(self, conn: Conn, cause: dict[str, Any], *, now: float) -> None:
        """The cause resolved: every linked incident held under it that still fires is due to stand alone
        after ``link_grace_s`` (its own alerts usually resolve within that; then it closes unpaged)."""
        due = now + self.link_grace_s
        for effect in await incident_rows.effects_of(conn, cause["id"]):
            if effect["resolved_at"] is not None:
                continue
            held = effect["state"] == "escalated" and effect["escalation_level"] == 0
            if held:
                await incident_rows.update(conn, effect["id"], next_escalation_at=due)
            await self._event(
                conn,
                effect["id"],
                now,
                "incident.cause_resolved",
                f"its cause, {cause['rule']} incident {cause['id']}, resolved"
                + (f"; if it still fires at {_clock(due)} it pages on its own" if held else ""),
                {"caused_by": cause["id"], "stands_alone_at": due if held else None},
            )

    async def stand_alone(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """A held linked incident outlived its cause: page it now at level 1 (its own escalation starts)."""
        if incident["escalation_level"] != 0:
            return None
        reason = (
            f"still firing after its cause, incident {incident.get('caused_by')}, resolved: it stands alone"
            + (f" — {incident['reason']}" if incident.get("reason") else "")
        )
        stored = incident_rows.load_bundle(incident["bundle"])
        following = matrix.next_level(1, str(incident["severity"]), now, top=self._top)
        document = _changed(
            stored,
            state="escalated",
            reason=reason,
            holders=self._holders(1, stored),
            next_escalation_level=following[0] if following else None,
            next_escalation_at=datetime.fromtimestamp(following[1], UTC) if following else None,
            elapsed_s=round(now - incident_rows.clock_start(incident), 3),
        )
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states={"escalated"},
            where=(T.c.escalation_level == 0, T.c.resolved_at.is_(None)),
            values={
                "reason": reason,
                "escalated_at": now,
                "escalation_level": 1,
                "next_escalation_at": following[1] if following else None,
                **_stored(document),
            },
            event=("incident.unlinked", reason, {"level": 1, "caused_by": incident.get("caused_by")}),
            notify=("trigger", document),
        )
