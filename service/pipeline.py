"""The pipeline: the only module that calls every stage in order, for one inbox row.

firing:   rule (matched at intake) → render target → open or attach incident ─(commit)─► diagnose (probes,
          concurrently) ─(commit)─► decide → act under the guards → verify → mitigated, or escalate
          (bundle → outbox); inbox row done
resolved: find the incident of the episode → mark the alert resolved → resolve the incident when no
          alert of it still fires (timeline, MTTR, resolve notification)
approved: a proposal a human approved runs through the engine's own path (``run_approved``)

The inbox row stays claimed until the incident it opened is escalated or mitigated: if the process dies
during diagnosis, the row is claimed again and the diagnosis of the incident it opened (``opened_by``) is
run again — probes only read, so repeating them is safe; if it dies while acting, the action's result is
unknown and never repeated. Every state change goes through ``service.lifecycle`` in the caller's
transaction, the row's own "done" included.
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
from service.lifecycle import transitions as lifecycle
from service.lifecycle.transitions import Lifecycle
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
    lifecycle: Lifecycle
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
        rule = self._rule_of(row, alert) if alert.status == "firing" else None
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

    def _rule_of(self, row: inbox.InboxRow, alert: alerts.Alert) -> CompiledRule | None:
        """The rule intake matched and stored with the row; matched again only when the row has none (it
        was stored before intake kept it) or that rule is no longer loaded."""
        named = self.rules.by_name(row.rule) if row.rule is not None else None
        return named or select.select_rule(self.rules, alert.labels)

    async def _fire(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        rule = self._rule_of(row, alert)
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
            diagnosed = await findings.record(conn, opened.incident_id, found, phase="diagnosis", now=now)
            if found:
                await self.lifecycle.note(
                    conn,
                    opened.incident_id,
                    "diagnosis.finished",
                    diagnosis_summary(found),
                    now=now,
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
                round_=diagnosed,
            )
            await self.lifecycle.note(
                conn, opened.incident_id, "decision", plan.reason, now=now, data=remediation.plan_data(plan)
            )
            if plan.apply is not None and not await self.lifecycle.remediating(
                conn, opened.incident_id, now=now
            ):
                plan = _proposals_only(plan)  # resolved while it was diagnosed: nothing runs on it
        if plan.apply is None:
            special = not target.valid or row.truncated
            await self._escalate(
                case, found, escalation_reason(target, row.truncated) if special else plan.reason
            )
            return
        await self._act(case, found, plan, diagnosed)

    async def run_approved(self, incident_id: str, record: Mapping[str, Any], who: str) -> str:
        """A proposal a human approved: rebuild its incident's rule, target and context from the store, then
        the engine's own path (``Engine.run_approved``), as for an automatic step; returns the status."""
        assert self.engine is not None
        async with self.store.read() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            first_alert = (await incident_rows.alerts_of(conn, incident_id))[:1]
        rule = self.rules.by_name(incident["rule"]) if incident else None
        if incident is None or rule is None or not first_alert:
            async with self.store.write() as conn:
                await journal.update(
                    conn,
                    record["id"],
                    status="blocked",
                    guard="rule_unloaded",
                    reason="the rule of this incident is no longer loaded: nothing runs without it",
                )
            return "blocked"
        target = incidents.TargetRef.model_validate(incident_rows.target_of(incident))
        alert = alerts.stored(first_alert[0]["payload"])
        context = templates.with_target(templates.alert_context(alert, rule), target)
        step = planning.Step(record["index"], record["action"], record["safety"], "planned")
        status = await self.engine.run_approved(
            incident_id, rule, step, target, context, approver=who, action_id=record["id"]
        )
        async with self.store.write() as conn:
            await self.lifecycle.note(
                conn,
                incident_id,
                _action_kind(status),
                f"{record['action']} (approved by {who}): {status}",
                now=self.clock(),
            )
        return status

    async def _act(
        self, case: Case, found: list[incidents.Finding], plan: planning.Plan, diagnosed: int | None
    ) -> None:
        """Run the plan's step (decided on findings round ``diagnosed``), verify, mitigate or escalate."""
        assert self.engine is not None and plan.apply is not None
        step, incident_id = plan.apply, case.opened.incident_id
        status, _outcome, summary = await self.engine.execute(
            incident_id, case.rule, step, case.target, case.context, round_=diagnosed
        )
        if status == "succeeded":
            async with self.store.write() as conn:
                await self.lifecycle.verifying(
                    conn, incident_id, message=f"{step.action}: {summary}", now=self.clock()
                )
            passed, checked = await self.engine.verify(case.rule, step, case.target, case.context)
            if passed:
                await self._mitigated(case, step, checked)
                return
            async with self.store.write() as conn:  # the failed check is evidence too: its own round
                await findings.record(conn, incident_id, checked, phase="verification", now=self.clock())
            found = checked or found
            last = checked[0].summary if checked else "no result"
            reason = f"{step.action} applied but verification failed: {last}"
        elif status == "skipped":
            reason = (
                f"dry-run: would apply {step.action} (the exact request is recorded); nothing was written"
            )
        else:
            reason = f"{step.action} {status}: {summary}"
        await self._escalate(case, found, reason, propose=plan, diagnosed=diagnosed)

    async def _mitigated(self, case: Case, step: planning.Step, checked: list[incidents.Finding]) -> None:
        assert self.engine is not None
        now, incident_id = self.clock(), case.opened.incident_id
        async with self.store.write() as conn:
            document = await self._document(conn, case, checked, reason=None, state="mitigated", now=now)
            if checked:
                await findings.record(conn, incident_id, checked, phase="verification", now=now)
                await self.lifecycle.note(
                    conn, incident_id, "verify.passed", f"{checked[0].id}: {checked[0].summary}", now=now
                )
            await self.lifecycle.mitigate(
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
        return self.lifecycle.document(
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
        diagnosed: int | None = None,
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
                    round_=diagnosed,
                )
                proposals = _proposals_only(propose)
                await self.lifecycle.note(
                    conn,
                    incident_id,
                    "decision",
                    proposals.reason,
                    now=now,
                    data=remediation.plan_data(proposals),
                )
            document = await self._document(conn, case, found, reason=reason, state="escalated", now=now)
            await self.lifecycle.escalate(conn, incident_id, document=document, reason=reason, now=now)
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
            created = await self.lifecycle.open(
                conn,
                values,
                alert=alert,
                target=target,
                fingerprint=row.fingerprint,
                starts_at=row.starts_at,
                payload=row.payload,
                now=now,
            )
            if created is not None:
                return Opened(created.id, created.opened_at, created.state)
            existing = await incident_rows.find_open(conn, open_key)  # another worker won the race
            if existing is None:  # …and it was resolved since: roll back; the row is retried
                raise RuntimeError(f"incident for {open_key} changed under us; retrying")
        if existing["opened_by"] == row.id and existing["state"] in (*DIAGNOSING, *ACTING):
            log.info("incident.resumed", incident_id=existing["id"], state=existing["state"])  # we died on it
            return Opened(existing["id"], existing["opened_at"], existing["state"])
        fresh = await self.lifecycle.attach(
            conn,
            existing["id"],
            alert=alert,
            fingerprint=row.fingerprint,
            starts_at=row.starts_at,
            payload=row.payload,
            truncated=row.truncated,
            now=now,
        )
        if fresh and existing["state"] == "mitigated":  # it fires again after the fix: a flap, hand it over
            await self.lifecycle.reescalate(
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

    async def _resolve(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        now = self.clock()
        resolved = False
        async with self.store.write() as conn:
            incident = await incident_rows.find_by_episode(conn, row.fingerprint, row.starts_at)
            if incident is None:
                await inbox.finish(conn, row.id, outcome="resolved-unattached", incident_id=None, now=now)
                return
            incident_id = incident["id"]
            firing = await self.lifecycle.alert_resolved(
                conn, incident_id, alert=alert, fingerprint=row.fingerprint, starts_at=row.starts_at, now=now
            )
            if firing == 0:
                await self.lifecycle.close(conn, incident, now=now)
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


def _action_kind(status: str) -> lifecycle.NoteKind:
    """The timeline kind of an action's result."""
    kinds: dict[str, lifecycle.NoteKind] = {
        "succeeded": "action.succeeded",
        "failed": "action.failed",
        "blocked": "action.blocked",
        "skipped": "action.skipped",
        "unknown": "action.unknown",
    }
    return kinds.get(status, "action.failed")
