"""The pipeline: the only module that calls every stage in order, for one inbox row.

firing:   match → render target → open or attach incident → escalate (bundle → outbox)
resolved: find the incident of the episode → mark the alert resolved → resolve the incident when no
          alert of it still fires (timeline, MTTR, resolve notification)

All the writes of one row — incident, alerts, timeline, outbox, and the inbox row's own "done" — share
one transaction, so a crash at any point leaves the row to be processed again from scratch, exactly once.
Diagnosis and remediation are not wired in yet: every matched incident is escalated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from service.escalation import bundle as bundles
from service.matching import select, templates
from service.matching.loader import CompiledRule, RuleSet
from service.model import alerts, incidents
from service.observability import Metrics
from service.records import inbox, outbox
from service.records import incidents as incident_rows
from service.records.ids import new_id
from service.records.store import Store

log = structlog.get_logger(__name__)

NO_AUTOMATION = "no automatic remediation is available for this rule yet: a human must act"


@dataclass
class Pipeline:
    store: Store
    rules: RuleSet
    metrics: Metrics
    channels: list[str]
    base_url: str
    on_notify: Callable[[], None]
    clock: Callable[[], float] = time.time

    async def process(self, row: inbox.InboxRow) -> None:
        alert = alerts.Alert.model_validate_json(row.payload)
        structlog.contextvars.bind_contextvars(alertname=alert.name)
        if alert.status == "resolved":
            await self._resolve(row, alert)
        else:
            await self._fire(row, alert)

    async def _fire(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        rule = select.select_rule(self.rules, alert.labels)
        now = self.clock()
        if rule is None:
            async with self.store.write() as conn:
                await inbox.finish(conn, row.id, outcome="unmatched", incident_id=None, now=now)
            self.metrics.alerts_unmatched.inc()
            log.info("alert.unmatched", labels=alert.labels)
            return
        context = templates.alert_context(alert, rule)
        target = templates.render_target(rule.target, context)
        open_key = f"{rule.rule.name}|{target.key}"
        notified = False
        async with self.store.write() as conn:
            if await inbox.resolved_before(conn, row):
                await inbox.finish(conn, row.id, outcome="already-resolved", incident_id=None, now=now)
                log.info("alert.processed", outcome="already-resolved", rule=rule.rule.name)
                return
            existing = await incident_rows.find_open(conn, open_key)
            if existing is None:
                incident_id = new_id(now)
                created = await incident_rows.create(
                    self.store, conn, _new_incident(incident_id, rule, target, open_key, now)
                )
                if created:
                    await self._open(conn, incident_id, rule, target, alert, row, context, now)
                    notified = True
                    outcome = "opened"
                else:  # another worker opened it between our read and our insert
                    existing = await incident_rows.find_open(conn, open_key)
                    if existing is None:  # …and it was resolved since: roll back; the row is retried
                        raise RuntimeError(f"incident for {open_key} changed under us; retrying")
            if existing is not None:
                incident_id = existing["id"]
                await self._attach(conn, incident_id, alert, row, now)
                outcome = "attached"
            await inbox.finish(conn, row.id, outcome=outcome, incident_id=incident_id, now=now)
        if notified:
            self.metrics.incidents_opened.labels(rule=rule.rule.name).inc()
            self.on_notify()
        log.info(
            "alert.processed",
            outcome=outcome,
            incident_id=incident_id,
            rule=rule.rule.name,
            target=target.key,
        )

    async def _open(
        self,
        conn: AsyncConnection,
        incident_id: str,
        rule: CompiledRule,
        target: incidents.TargetRef,
        alert: alerts.Alert,
        row: inbox.InboxRow,
        context: dict[str, Any],
        now: float,
    ) -> None:
        await incident_rows.attach_alert(
            self.store,
            conn,
            incident_id,
            fingerprint=row.fingerprint,
            starts_at=row.starts_at,
            payload=row.payload,
            now=now,
        )
        await incident_rows.add_event(
            conn,
            incident_id,
            at=now,
            kind="incident.opened",
            message=f"{alert.name} matched rule {rule.rule.name} on {target.key}",
            data={"rule": rule.rule.name, "target": target.model_dump(), "fingerprint": row.fingerprint},
        )
        if not target.valid:
            await incident_rows.add_event(
                conn,
                incident_id,
                at=now,
                kind="target.invalid",
                message=target.error or "invalid target",
            )
        reason = escalation_reason(target, row.truncated)
        suggested = templates.render_suggestions(rule, templates.with_target(context, target))
        bundle = bundles.build(
            incident_id=incident_id,
            rule_name=rule.rule.name,
            runbook=rule.rule.runbook,
            severity=rule.rule.severity,
            mttr_target_s=rule.rule.mttr_target.total_seconds(),
            state="escalated",
            reason=reason,
            target=target,
            opened_at=now,
            now=now,
            alert_list=[alert],
            suggested=suggested,
            base_url=self.base_url,
        )
        document = bundle.model_dump(mode="json")
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
            data={"level": 1, "channels": self.channels},
        )
        await self._notify(conn, incident_id, "trigger", document, now)

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

    async def _attach(
        self, conn: AsyncConnection, incident_id: str, alert: alerts.Alert, row: inbox.InboxRow, now: float
    ) -> None:
        new = await incident_rows.attach_alert(
            self.store,
            conn,
            incident_id,
            fingerprint=row.fingerprint,
            starts_at=row.starts_at,
            payload=row.payload,
            now=now,
        )
        if new:
            await incident_rows.add_event(
                conn,
                incident_id,
                at=now,
                kind="alert.attached",
                message=f"{alert.name} fired again (episode {row.starts_at}); attached to the open incident",
                data={"fingerprint": row.fingerprint, "starts_at": row.starts_at},
            )
        if row.truncated:
            await incident_rows.add_event(
                conn,
                incident_id,
                at=now,
                kind="group.truncated",
                message=f"Alertmanager truncated the group: {row.truncated} alerts not delivered",
            )

    async def _resolve(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        now = self.clock()
        resolved = False
        async with self.store.write() as conn:
            incident = await incident_rows.find_by_episode(conn, row.fingerprint, row.starts_at)
            if incident is None:
                await inbox.finish(conn, row.id, outcome="resolved-unattached", incident_id=None, now=now)
                return
            incident_id = incident["id"]
            ends_at = alert.ends_at.isoformat() if alert.ends_at else None
            firing = await incident_rows.resolve_alert(
                conn, incident_id, fingerprint=row.fingerprint, starts_at=row.starts_at, ends_at=ends_at
            )
            await incident_rows.add_event(
                conn,
                incident_id,
                at=now,
                kind="alert.resolved",
                message=f"{alert.name} resolved",
                data={"still_firing": firing},
            )
            if firing == 0:
                await self._close(conn, incident, now)
                resolved = True
            await inbox.finish(conn, row.id, outcome="resolved", incident_id=incident_id, now=now)
        if resolved:
            self.on_notify()
        log.info("alert.resolved", incident_id=incident_id, incident_resolved=resolved)

    async def _close(self, conn: AsyncConnection, incident: dict[str, Any], now: float) -> None:
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


def escalation_reason(target: incidents.TargetRef, truncated: int) -> str:
    """Why a human must act (pure). The most serious reason first."""
    if not target.valid:
        return f"invalid target ({target.error}): nothing automatic runs on it"
    if truncated:
        return (
            f"Alertmanager truncated the alert group ({truncated} alerts not delivered): "
            "never acting on a partial group"
        )
    return NO_AUTOMATION


def _new_incident(
    incident_id: str, rule: CompiledRule, target: incidents.TargetRef, open_key: str, now: float
) -> dict[str, Any]:
    return {
        "id": incident_id,
        "rule": rule.rule.name,
        "open_key": open_key,
        "target_kind": target.kind,
        "target_namespace": target.namespace,
        "target_name": target.name,
        "target_selector": target.selector,
        "target_valid": target.valid,
        "target_error": target.error,
        "state": "open",
        "severity": rule.rule.severity,
        "runbook": rule.rule.runbook,
        "mttr_target_s": rule.rule.mttr_target.total_seconds(),
        "reason": None,
        "escalation_level": 1,
        "opened_at": now,
        "escalated_at": None,
        "mitigated_at": None,
        "resolved_at": None,
        "updated_at": now,
        "bundle": None,
    }
