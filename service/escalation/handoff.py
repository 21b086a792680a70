"""Hand an incident to humans, inside the caller's transaction: bundle → incident row → timeline → outbox.

``escalate``, ``raise_level``, ``acknowledge``, ``mitigate`` and ``close`` write the state change and queue
one notification per channel that is on; the outbox worker delivers them after the commit, at least once, each
(incident, channel, event) once. Never sends anything itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service.escalation import bundle as bundles
from service.escalation import links, matrix
from service.matching.loader import CompiledRule
from service.model import alerts, incidents
from service.observability import Metrics
from service.records import incidents as incident_rows
from service.records import outbox
from service.records.sqlite_inline import Conn
from service.records.store import Store, iso


def _all_channels(channels: Sequence[str]) -> Callable[[str, str], Sequence[str]]:
    return lambda _severity, _rule: channels


@dataclass(frozen=True)
class Handoff:
    store: Store
    channels: Sequence[str]
    base_url: str
    metrics: Metrics | None = None
    #: (severity, rule) → channels; default: every channel that is on
    route: Callable[[str, str], Sequence[str]] | None = None
    #: which alert URLs become links (``REMEDIATOR_LINK_HOSTS``); default: only our own ``base_url`` host
    link_policy: links.Policy | None = None

    def _channels(self, document: dict[str, Any]) -> Sequence[str]:
        route = self.route or _all_channels(self.channels)
        return route(str(document.get("severity", "")), str(document.get("rule", "")))

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
        following = matrix.next_level(1, rule.rule.severity, now) if state == "escalated" else None
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
            link_policy=self.link_policy or links.policy((), self.base_url),
            findings=found,
            actions=actions,
            checklist=rule.rule.checklist,
            next_level=following[0] if following else None,
            next_at=following[1] if following else None,
        ).model_dump(mode="json")

    async def escalate(
        self, conn: Conn, incident_id: str, *, document: dict[str, Any], reason: str, now: float
    ) -> None:
        """Hand the incident to humans with its bundle ``document``: level 1 now, the level-2 timer set."""
        following = matrix.next_level(1, str(document.get("severity", "")), now)
        await incident_rows.update(
            conn,
            incident_id,
            state="escalated",
            reason=reason,
            escalated_at=now,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
            escalation_level=1,
            next_escalation_at=following[1] if following else None,
        )
        await incident_rows.add_event(
            conn,
            incident_id,
            at=now,
            kind="incident.escalated",
            message=reason,
            data={"level": 1, "channels": list(self._channels(document))},
        )
        await self._notify(conn, incident_id, "trigger", document, now)

    async def reescalate(self, conn: Conn, incident: dict[str, Any], *, reason: str, now: float) -> None:
        """Hand an open incident (e.g. a mitigated one that flaps) back to humans with its stored bundle."""
        document = orjson.loads(incident["bundle"]) if incident["bundle"] else {}
        document.update(state="escalated", reason=reason, elapsed_s=round(now - incident["opened_at"], 3))
        await self.escalate(conn, incident["id"], document=document, reason=reason, now=now)

    async def raise_level(self, conn: Conn, incident: dict[str, Any], *, level: int, now: float) -> None:
        """The next level of the matrix is due: notify it, set the following timer (or none)."""
        document = orjson.loads(incident["bundle"]) if incident["bundle"] else {}
        escalated_at = float(incident["escalated_at"] or incident["opened_at"])
        following = matrix.next_level(level, str(incident["severity"]), escalated_at)
        document.update(
            escalation_level=level,
            next_escalation_level=following[0] if following else None,
            next_escalation_at=iso(following[1]) if following else None,
            elapsed_s=round(now - incident["opened_at"], 3),
        )
        await incident_rows.update(
            conn,
            incident["id"],
            escalation_level=level,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
            next_escalation_at=following[1] if following else None,
        )
        await incident_rows.add_event(
            conn,
            incident["id"],
            at=now,
            kind="incident.escalation_level",
            message=f"not acknowledged: escalated to level {level}",
            data={"level": level},
        )
        await self._notify(conn, incident["id"], f"escalate:{level}", document, now)

    async def acknowledge(self, conn: Conn, incident: dict[str, Any], *, by: str, now: float) -> None:
        """A human has it: stop the escalation timers, tell the channels (PagerDuty acknowledges)."""
        document = orjson.loads(incident["bundle"]) if incident["bundle"] else {}
        document.update(next_escalation_level=None, next_escalation_at=None)
        await incident_rows.update(
            conn,
            incident["id"],
            acked_at=now,
            acked_by=by,
            next_escalation_at=None,
            updated_at=now,
            bundle=orjson.dumps(document).decode(),
        )
        await incident_rows.add_event(
            conn,
            incident["id"],
            at=now,
            kind="incident.acknowledged",
            message=f"acknowledged by {by}",
            data={"by": by, "level": incident["escalation_level"]},
        )
        await self._notify(conn, incident["id"], "acknowledge", document, now)

    async def mitigate(
        self,
        conn: Conn,
        incident_id: str,
        *,
        opened_at: float,
        summary: str,
        now: float,
        document: dict[str, Any],
        rule: str = "",
    ) -> None:
        """The fix worked and was verified: state ``mitigated``, time to mitigate, an informational notice."""
        elapsed = now - opened_at
        await incident_rows.update(
            conn,
            incident_id,
            state="mitigated",
            mitigated_at=now,
            updated_at=now,
            next_escalation_at=None,
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
        if self.metrics is not None:
            self.metrics.time_to_mitigate.labels(rule=rule or str(document.get("rule", ""))).observe(elapsed)
        await self._notify(conn, incident_id, "mitigated", document, now)

    async def close(self, conn: Conn, incident: dict[str, Any], *, now: float) -> None:
        """Resolve the incident: MTTR against its target, the resolve notification, timers stopped."""
        incident_id = incident["id"]
        mttr = now - incident["opened_at"]
        within = mttr <= incident["mttr_target_s"]
        document = orjson.loads(incident["bundle"]) if incident["bundle"] else {}
        document.update(
            state="resolved", elapsed_s=round(mttr, 3), next_escalation_level=None, next_escalation_at=None
        )
        await incident_rows.update(
            conn,
            incident_id,
            state="resolved",
            resolved_at=now,
            open_key=None,
            updated_at=now,
            next_escalation_at=None,
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
        if self.metrics is not None:
            self.metrics.time_to_resolve.labels(rule=incident["rule"]).observe(mttr)
            counter = self.metrics.within_target if within else self.metrics.over_target
            counter.labels(rule=incident["rule"]).inc()
        await self._notify(conn, incident_id, "resolve", document, now)

    async def _notify(
        self, conn: Conn, incident_id: str, event: str, document: dict[str, Any], now: float
    ) -> None:
        """Queue ``event`` with the bundle for every channel of this incident, in the caller's transaction.

        ``resolve`` and ``acknowledge`` also go to every channel that was paged, whatever the routes say now.
        """
        targets = list(self._channels(document))
        if event in ("resolve", "acknowledge"):
            targets += [c for c in await outbox.triggered_channels(conn, incident_id) if c not in targets]
        for channel in targets:
            await outbox.enqueue(
                self.store,
                conn,
                incident_id=incident_id,
                channel=channel,
                event=event,
                payload={"bundle": document},
                now=now,
            )
