"""Hand an incident to humans, inside the caller's transaction: bundle → incident row → timeline → outbox.

``escalate`` and ``close`` write the state change and queue one notification per channel that is on;
the outbox worker delivers them after the commit. Never sends anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from service.escalation import bundle as bundles
from service.matching.loader import CompiledRule
from service.model import alerts, incidents
from service.records import incidents as incident_rows
from service.records import outbox
from service.records.store import Store


@dataclass(frozen=True)
class Handoff:
    store: Store
    channels: Sequence[str]
    base_url: str

    async def escalate(
        self, conn: AsyncConnection, incident_id: str, *, document: dict[str, Any], reason: str, now: float
    ) -> None:
        """Hand the incident to humans with its bundle ``document`` (see ``document``)."""
        await incident_rows.update(
            conn,
            incident_id,
            state="escalated",
            reason=reason,
            escalated_at=now,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
        )
        await incident_rows.add_event(
            conn,
            incident_id,
            at=now,
            kind="incident.escalated",
            message=reason,
            data={"level": 1, "channels": list(self.channels)},
        )
        await self._notify(conn, incident_id, "trigger", document, now)

    def document(
        self,
        *,
        incident_id: str,
        opened_at: float,
        rule: CompiledRule,
        target: incidents.TargetRef,
        alert: alerts.Alert,
        suggested: Sequence[incidents.SuggestedCommand],
        found: Sequence[incidents.Finding],
        reason: str | None,
        now: float,
        actions: Sequence[incidents.ActionRecord] = (),
        state: incidents.IncidentState = "escalated",
    ) -> dict[str, Any]:
        """The bundle of an incident as the JSON document stored and sent (pure)."""
        return bundles.build(
            incident_id=incident_id,
            rule_name=rule.rule.name,
            runbook=rule.rule.runbook,
            severity=rule.rule.severity,
            mttr_target_s=rule.rule.mttr_target.total_seconds(),
            state=state,
            reason=reason,
            target=target,
            opened_at=opened_at,
            now=now,
            alert_list=[alert],
            suggested=suggested,
            base_url=self.base_url,
            findings=found,
            actions=actions,
            checklist=rule.rule.checklist,
        ).model_dump(mode="json")

    async def mitigate(
        self,
        conn: AsyncConnection,
        incident_id: str,
        *,
        opened_at: float,
        summary: str,
        now: float,
        document: dict[str, Any],
    ) -> None:
        """The fix worked and was verified: state ``mitigated``, time to mitigate, an informational notice."""
        elapsed = now - opened_at
        await incident_rows.update(
            conn,
            incident_id,
            state="mitigated",
            mitigated_at=now,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
        )
        await incident_rows.add_event(
            conn,
            incident_id,
            at=now,
            kind="incident.mitigated",
            message=f"{summary} ({elapsed:.0f}s after opening)",
            data={"time_to_mitigate_s": round(elapsed, 3)},
        )
        await self._notify(
            conn, incident_id, "mitigated", {"incident_id": incident_id, "summary": summary}, now
        )

    async def reescalate(
        self, conn: AsyncConnection, incident: dict[str, Any], *, reason: str, now: float
    ) -> None:
        """Hand an open incident (e.g. a mitigated one that flaps) back to humans with its stored bundle."""
        document = orjson.loads(incident["bundle"]) if incident["bundle"] else {}
        document.update(state="escalated", reason=reason, elapsed_s=round(now - incident["opened_at"], 3))
        await incident_rows.update(
            conn,
            incident["id"],
            state="escalated",
            reason=reason,
            escalated_at=now,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
        )
        await incident_rows.add_event(conn, incident["id"], at=now, kind="incident.escalated", message=reason)
        await self._notify(conn, incident["id"], "trigger", document, now)

    async def close(self, conn: AsyncConnection, incident: dict[str, Any], *, now: float) -> None:
        """Resolve the incident: MTTR against its target, the resolve notification."""
        incident_id = incident["id"]
        mttr = now - incident["opened_at"]
        within = mttr <= incident["mttr_target_s"]
        document = orjson.loads(incident["bundle"]) if incident["bundle"] else {}
        document.update(state="resolved", elapsed_s=round(mttr, 3))
        await incident_rows.update(
            conn,
            incident_id,
            state="resolved",
            resolved_at=now,
            open_key=None,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
        )
        await incident_rows.add_event(
            conn,
            incident_id,
            at=now,
            kind="incident.resolved",
            message=f"resolved after {mttr:.0f}s ({'within' if within else 'over'} the "
            f"{incident['mttr_target_s']:.0f}s MTTR target)",
            data={
                "mttr_s": round(mttr, 3),
                "mttr_target_s": incident["mttr_target_s"],
                "within_target": within,
            },
        )
        await self._notify(conn, incident_id, "resolve", document, now)

    async def _notify(
        self, conn: AsyncConnection, incident_id: str, event: str, document: dict[str, Any], now: float
    ) -> None:
        """Queue ``event`` with the bundle for every channel that is on, in the caller's transaction."""
        for channel in self.channels:
            await outbox.enqueue(
                self.store,
                conn,
                incident_id=incident_id,
                channel=channel,
                event=event,
                payload={"bundle": document},
                now=now,
            )
