"""The pipeline: the only module that calls every stage in order, for one inbox row.

firing:   match → render target → open or attach incident ─(commit)─► diagnose (probes, concurrently)
          ─(commit)─► findings, escalate (bundle → outbox), inbox row done
resolved: find the incident of the episode → mark the alert resolved → resolve the incident when no
          alert of it still fires (timeline, MTTR, resolve notification)

The inbox row stays claimed until the incident it opened is escalated: if the process dies during
diagnosis, the row is claimed again and the diagnosis of the incident it opened (``opened_by``) is run
again — probes only read, so repeating them is safe. Every other write of a row, the row's own "done"
included, shares one transaction. Remediation is not wired in yet: every matched incident is escalated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.clients.hub import Clients
from service.decision import plan as planning
from service.diagnosis import runner
from service.diagnosis.base import ProbeDef
from service.escalation.handoff import Handoff
from service.matching import select, templates
from service.matching.loader import CompiledRule, RuleSet
from service.model import alerts, incidents
from service.observability import Metrics
from service.records import actions as journal
from service.records import findings, inbox
from service.records import incidents as incident_rows
from service.records.coordination import CoordinationUnavailable
from service.records.ids import new_id
from service.records.sqlite_inline import Conn
from service.records.store import Store
from service.remediation import engine as remediation

log = structlog.get_logger(__name__)

NO_AUTOMATION = "no automatic remediation is available for this rule yet: a human must act"
DIAGNOSING = ("open", "diagnosing")
ACTING = ("remediating", "verifying")


@dataclass(frozen=True)
class Opened:
    """An incident whose diagnosis and escalation this row owns."""

    incident_id: str
    opened_at: float
    state: str


@dataclass(frozen=True)
class Case:
    """One firing alert on its way: its row, the incident it owns, rule, target, context."""

    row: inbox.InboxRow
    opened: Opened
    rule: CompiledRule
    target: incidents.TargetRef
    alert: alerts.Alert
    context: dict[str, Any]


@dataclass
class Pipeline:
    store: Store
    rules: RuleSet
    metrics: Metrics
    handoff: Handoff
    clients: Clients
    probes: Mapping[str, ProbeDef]
    limits: runner.Limits = field(default_factory=runner.Limits)
    engine: remediation.Engine | None = None
    on_notify: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.time

    async def process(self, row: inbox.InboxRow) -> None:
        alert = alerts.stored(row.payload)
        structlog.contextvars.bind_contextvars(alertname=alert.name)
        if alert.status == "resolved":
            await self._resolve(row, alert)
        else:
            await self._fire(row, alert)

    async def quarantine(self, row: inbox.InboxRow) -> None:
        """A row that was claimed again and again without finishing: escalate, never process it again.

        No probe and no action runs: whatever killed the worker each time is not tried again. The incident
        it opened (or opens now) is escalated with the reason, so a human hears of the alert."""
        reason = (
            f"quarantined: processing this alert was cut off {row.attempts - 1} times (the worker died or"
            " hung each time); it is not processed again and nothing automatic runs, a human must look"
        )
        alert = alerts.stored(row.payload)
        rule = select.select_rule(self.rules, alert.labels) if alert.status == "firing" else None
        if rule is None:
            async with self.store.write() as conn:
                await inbox.finish(conn, row.id, outcome="quarantined", incident_id=None, now=self.clock())
            log.warning("alert.processed", outcome="quarantined", reason=reason)
            return
        context = templates.alert_context(alert, rule)
        target = templates.render_target(rule.target, context)
        async with self.store.write() as conn:
            opened = await self._open_or_attach(conn, row, alert, rule, target)
        if opened is None:
            return
        case = Case(row, opened, rule, target, alert, templates.with_target(context, target))
        if opened.state in ACTING:
            async with self.store.write() as conn:
                await journal.mark_unknown(conn, opened.incident_id, now=self.clock())
        await self._escalate(case, [], reason, outcome="quarantined")

    async def _fire(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        rule = select.select_rule(self.rules, alert.labels)
        if rule is None:
            async with self.store.write() as conn:
                await inbox.finish(conn, row.id, outcome="unmatched", incident_id=None, now=self.clock())
            self.metrics.alerts_unmatched.inc()
            log.info("alert.unmatched", labels=alert.labels)
            return
        context = templates.alert_context(alert, rule)
        target = templates.render_target(rule.target, context)
        async with self.store.write() as conn:
            opened = await self._open_or_attach(conn, row, alert, rule, target)
        if opened is None:
            return
        case = Case(row, opened, rule, target, alert, templates.with_target(context, target))
        if opened.state in ACTING:  # we died while acting: never repeat, escalate
            await self._interrupted(case)
            return
        found = await self._diagnose(rule, target, case.context)
        now = self.clock()
        async with self.store.write() as conn:
            await findings.record(conn, opened.incident_id, found, round_=1, now=now)
            if found:
                await incident_rows.add_event(
                    conn,
                    opened.incident_id,
                    at=now,
                    kind="diagnosis.finished",
                    message=diagnosis_summary(found),
                    data={"findings": {f.id: f.status for f in found}},
                )
        if self.engine is None:
            await self._escalate(case, found, escalation_reason(target, row.truncated))
            return
        guards = await self.engine.guards(rule, target, case.context, truncated=row.truncated, now=now)
        plan = planning.decide(rule, alert, found, guards, now=now)
        async with self.store.write() as conn:
            await remediation.record_plan(
                conn,
                opened.incident_id,
                plan,
                rule,
                self.engine,
                case.context,
                now=now,
                escalating=plan.apply is None,
            )
            if plan.apply is not None:
                await incident_rows.update(conn, opened.incident_id, state="remediating", updated_at=now)
        if plan.apply is None:
            special = not target.valid or row.truncated
            await self._escalate(
                case, found, escalation_reason(target, row.truncated) if special else plan.reason
            )
            return
        await self._act(case, found, plan)

    async def _act(self, case: Case, found: list[incidents.Finding], plan: planning.Plan) -> None:
        assert self.engine is not None and plan.apply is not None
        step, incident_id = plan.apply, case.opened.incident_id
        status, _outcome, summary = await self.engine.execute(
            incident_id, case.rule, step, case.target, case.context
        )
        if status == "succeeded":
            async with self.store.write() as conn:
                await incident_rows.update(conn, incident_id, state="verifying", updated_at=self.clock())
                await incident_rows.add_event(
                    conn,
                    incident_id,
                    at=self.clock(),
                    kind="action.succeeded",
                    message=f"{step.action}: {summary}",
                )
            passed, checked = await self.engine.verify(case.rule, step, case.target, case.context)
            if passed:
                await self._mitigated(case, step, checked)
                return
            found = checked or found
            last = checked[0].summary if checked else "no result"
            reason = f"{step.action} applied but verification failed: {last}"
        elif status == "skipped":
            reason = (
                f"dry-run: would apply {step.action} (the exact request is recorded); nothing was written"
            )
        else:
            reason = f"{step.action} {status}: {summary}"
        await self._escalate(case, found, reason, propose=plan)

    async def _mitigated(self, case: Case, step: planning.Step, checked: list[incidents.Finding]) -> None:
        assert self.engine is not None
        now, incident_id = self.clock(), case.opened.incident_id
        async with self.store.write() as conn:
            document = await self._document(conn, case, checked, reason=None, state="mitigated", now=now)
            if checked:
                await findings.record(conn, incident_id, checked, round_=2, now=now)
                await incident_rows.add_event(
                    conn,
                    incident_id,
                    at=now,
                    kind="verify.passed",
                    message=f"{checked[0].id}: {checked[0].summary}",
                )
            await self.handoff.mitigate(
                conn,
                incident_id,
                opened_at=case.opened.opened_at,
                summary=f"mitigated by {step.action}",
                now=now,
                document=document,
            )
            await inbox.finish(conn, case.row.id, outcome="mitigated", incident_id=incident_id, now=now)
        try:
            await self.engine.coordination.mark_mitigated(
                remediation.target_key(case.rule, case.target),
                now=now,
                keep_s=self.engine.policy.flap_window_s,
            )
        except CoordinationUnavailable:
            log.warning("coordination.mark_mitigated_failed", incident_id=incident_id)
        self.on_notify()
        log.info("alert.processed", outcome="mitigated", incident_id=incident_id, action=step.action)

    async def _interrupted(self, case: Case) -> None:
        async with self.store.write() as conn:
            stale = await journal.mark_unknown(conn, case.opened.incident_id, now=self.clock())
        names = ", ".join(a["action"] for a in stale) or "an action"
        reason = (
            f"the service stopped while {names} was running: its result is unknown and it is not repeated"
        )
        await self._escalate(case, [], reason)

    async def _document(
        self,
        conn: Conn,
        case: Case,
        found: list[incidents.Finding],
        *,
        reason: str | None,
        state: incidents.IncidentState,
        now: float,
    ) -> dict[str, Any]:
        records = remediation.action_records(await journal.of_incident(conn, case.opened.incident_id))
        return self.handoff.document(
            incident_id=case.opened.incident_id,
            opened_at=case.opened.opened_at,
            rule=case.rule,
            target=case.target,
            alert=case.alert,
            suggested=templates.render_suggestions(case.rule, case.context),
            found=found,
            reason=reason,
            now=now,
            actions=records,
            state=state,
        )

    async def _escalate(
        self,
        case: Case,
        found: list[incidents.Finding],
        reason: str,
        *,
        propose: planning.Plan | None = None,
        outcome: str = "opened",
    ) -> None:
        now, incident_id = self.clock(), case.opened.incident_id
        async with self.store.write() as conn:
            if (
                propose is not None and self.engine is not None
            ):  # acted and failed: now propose the unsafe ones
                await remediation.record_plan(
                    conn,
                    incident_id,
                    _proposals_only(propose),
                    case.rule,
                    self.engine,
                    case.context,
                    now=now,
                    escalating=True,
                )
            document = await self._document(conn, case, found, reason=reason, state="escalated", now=now)
            await self.handoff.escalate(conn, incident_id, document=document, reason=reason, now=now)
            await inbox.finish(conn, case.row.id, outcome=outcome, incident_id=incident_id, now=now)
        self.metrics.incidents_opened.labels(rule=case.rule.rule.name).inc()
        self.on_notify()
        log.info(
            "alert.processed",
            outcome="escalated",
            incident_id=incident_id,
            rule=case.rule.rule.name,
            target=case.target.key,
            reason=reason,
        )

    async def _open_or_attach(
        self,
        conn: Conn,
        row: inbox.InboxRow,
        alert: alerts.Alert,
        rule: CompiledRule,
        target: incidents.TargetRef,
    ) -> Opened | None:
        """Open the incident (→ this row diagnoses it), or attach to the open one and finish the row."""
        now = self.clock()
        if await inbox.resolved_before(conn, row):
            await inbox.finish(conn, row.id, outcome="already-resolved", incident_id=None, now=now)
            log.info("alert.processed", outcome="already-resolved", rule=rule.rule.name)
            return None
        open_key = f"{rule.rule.name}|{target.key}"
        existing = await incident_rows.find_open(conn, open_key)
        if existing is None:
            incident_id = new_id(now)
            values = _new_incident(incident_id, rule, target, open_key, now, opened_by=row.id)
            if await incident_rows.create(self.store, conn, values):
                await self._opened(conn, incident_id, rule, target, alert, row, now)
                return Opened(incident_id, now, "diagnosing")
            existing = await incident_rows.find_open(conn, open_key)  # another worker won the race
            if existing is None:  # …and it was resolved since: roll back; the row is retried
                raise RuntimeError(f"incident for {open_key} changed under us; retrying")
        if existing["opened_by"] == row.id and existing["state"] in (*DIAGNOSING, *ACTING):
            log.info("incident.resumed", incident_id=existing["id"], state=existing["state"])  # we died on it
            return Opened(existing["id"], existing["opened_at"], existing["state"])
        fresh = await self._attach(conn, existing["id"], alert, row, now)
        if fresh and existing["state"] == "mitigated":  # it fires again after the fix: a flap, hand it over
            await self.handoff.reescalate(
                conn,
                existing,
                now=now,
                reason=f"flapping: {alert.name} fired again after it was mitigated; no more automation",
            )
            self.on_notify()
        await inbox.finish(conn, row.id, outcome="attached", incident_id=existing["id"], now=now)
        log.info(
            "alert.processed",
            outcome="attached",
            incident_id=existing["id"],
            rule=rule.rule.name,
            target=target.key,
        )
        return None

    async def _opened(
        self,
        conn: Conn,
        incident_id: str,
        rule: CompiledRule,
        target: incidents.TargetRef,
        alert: alerts.Alert,
        row: inbox.InboxRow,
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
                conn, incident_id, at=now, kind="target.invalid", message=target.error or "invalid target"
            )

    async def _diagnose(
        self, rule: CompiledRule, target: incidents.TargetRef, context: dict[str, Any]
    ) -> list[incidents.Finding]:
        planned = [
            runner.plan_probe(spec, params, context, target)
            for spec, params in zip(rule.rule.diagnose, rule.diagnose_params, strict=True)
        ]
        if not planned:
            return []
        return await runner.run_all(
            planned, registry=self.probes, target=target, clients=self.clients, limits=self.limits
        )

    async def _attach(
        self, conn: Conn, incident_id: str, alert: alerts.Alert, row: inbox.InboxRow, now: float
    ) -> bool:
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
        return new

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
                await self.handoff.close(conn, incident, now=now)
                resolved = True
            await inbox.finish(conn, row.id, outcome="resolved", incident_id=incident_id, now=now)
        if resolved:
            self.on_notify()
        log.info("alert.resolved", incident_id=incident_id, incident_resolved=resolved)


def _proposals_only(plan: planning.Plan) -> planning.Plan:
    return planning.Plan(None, plan.proposals, escalate=True, reason=plan.reason)


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


def diagnosis_summary(found: list[incidents.Finding]) -> str:
    """``4 probes: 1 failed, 1 error, 2 ok`` (pure)."""
    counts: dict[str, int] = {}
    for finding in found:
        counts[finding.status] = counts.get(finding.status, 0) + 1
    order = ("failed", "degraded", "error", "skipped", "ok")
    parts = [f"{counts[s]} {s}" for s in order if s in counts]
    return f"{len(found)} probe{'s' if len(found) != 1 else ''}: {', '.join(parts)}"


def _new_incident(
    incident_id: str,
    rule: CompiledRule,
    target: incidents.TargetRef,
    open_key: str,
    now: float,
    *,
    opened_by: int,
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
        "state": "diagnosing",
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
        "opened_by": opened_by,
    }
