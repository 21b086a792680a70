"""``Pipeline``: one inbox row through every stage — open or attach, diagnose, decide, act or hand over;
or resolve. The stages it inherits: ``Acting`` (act, verify, approved steps) over ``Handing`` (bundle,
escalation, mitigation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.base import ProbeDef
from service.lifecycle.transitions import Episode, Lifecycle
from service.matching import select, templates
from service.matching.loader import CompiledRule, RuleSet
from service.model import alerts, incidents
from service.observability import Metrics
from service.pipeline import joining, reads
from service.pipeline.acting import Acting
from service.pipeline.cases import (
    DIAGNOSING,
    INTERRUPTED,
    Case,
    Opened,
    diagnosis_summary,
    new_incident,
)
from service.records import actions as journal
from service.records import findings, inbox
from service.records import incidents as incident_rows
from service.records.ids import new_id
from service.records.incidents import clock_start
from service.records.sqlite_inline import Conn
from service.records.store import Store
from service.remediation import engine as remediation

log = structlog.get_logger(__name__)


@dataclass
class Pipeline(Acting):
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
    background: set[asyncio.Task[None]] = field(default_factory=set)
    joins: joining.Joiner = field(init=False)

    def __post_init__(self) -> None:
        self.joins = joining.Joiner(self.store, self.lifecycle, self.clock)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for the verifications of approved actions still running, then cancel what is left (their
        incidents stay escalated, which is what a human already holds)."""
        if not self.background:
            return
        _done, pending = await asyncio.wait(set(self.background), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

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
                await inbox.finish(conn, row, outcome="quarantined", incident_id=None, now=self.clock())
            log.warning("alert.processed", outcome="quarantined", reason=reason)
            return
        case = await self._case(row, alert, rule)
        if case is None:
            return
        if case.opened.state in INTERRUPTED:
            async with self.store.write() as conn:
                await journal.mark_unknown(conn, case.opened.incident_id, now=self.clock())
        await self._escalate(case, [], reason, outcome="quarantined")

    async def _case(self, row: inbox.InboxRow, alert: alerts.Alert, rule: CompiledRule) -> Case | None:
        """Render the target, open or attach the incident; the case when this row owns the incident (None
        when it attached to another row's incident and is done)."""
        context = templates.alert_context(alert, rule)
        target = templates.render_target(rule.target, context)
        open_key = f"drill:{row.fingerprint}" if row.drill else f"{rule.rule.name}|{target.key}"
        joined = await self.joins.attached(joining.Join(row, alert, rule, target, open_key))
        if joined is not None:  # attached with the other rows of its claim
            log.info(
                "alert.processed",
                outcome="attached",
                incident_id=joined,
                rule=rule.rule.name,
                target=target.key,
            )
            return None
        async with self.store.write() as conn:
            opened = await self._open_or_attach(conn, row, alert, rule, target, open_key)
        if opened is None:
            return None
        return Case(row, opened, rule, target, alert, templates.with_target(context, target))

    def _rule_of(self, row: inbox.InboxRow, alert: alerts.Alert) -> CompiledRule | None:
        """The rule intake matched and stored with the row; matched again only when the row has none (it
        was stored before intake kept it) or that rule is no longer loaded."""
        named = self.rules.by_name(row.rule) if row.rule is not None else None
        return named or select.select_rule(self.rules, alert.labels)

    async def _fire(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        rule = self._rule_of(row, alert)
        if rule is None:
            async with self.store.write() as conn:
                await inbox.finish(conn, row, outcome="unmatched", incident_id=None, now=self.clock())
            self.metrics.alerts_unmatched.inc()
            log.info("alert.unmatched", labels=alert.labels)
            return
        case = await self._case(row, alert, rule)
        if case is None:
            return
        if case.opened.state in INTERRUPTED:  # we died while acting: never repeat, escalate
            await self._interrupted(case)
            return
        clients = reads.for_opening(self.clients)  # the diagnosis' Deployment read serves the preflight
        found, diagnosed = await self._diagnosed(case, clients)
        await self._decide(case, found, diagnosed, clients=clients)

    async def _diagnosed(self, case: Case, clients: Clients) -> tuple[list[incidents.Finding], int | None]:
        """Run the rule's probes and record them as the incident's diagnosis round."""
        found = await self._diagnose(case.rule, case.target, case.context, clients)
        now, incident_id = self.clock(), case.opened.incident_id
        async with self.store.write() as conn:
            await inbox.fence(conn, case.row)  # a worker that lost the row records no diagnosis round
            diagnosed = await findings.record(conn, incident_id, found, phase="diagnosis", now=now)
            if found:
                await self.lifecycle.note(
                    conn,
                    incident_id,
                    "diagnosis.finished",
                    diagnosis_summary(found),
                    now=now,
                    data={"findings": {f.id: f.status for f in found}},
                )
        return found, diagnosed

    async def _open_or_attach(
        self,
        conn: Conn,
        row: inbox.InboxRow,
        alert: alerts.Alert,
        rule: CompiledRule,
        target: incidents.TargetRef,
        open_key: str,
    ) -> Opened | None:
        """Open the incident (→ this row diagnoses it), or attach to the open one and finish the row.

        A drill's alert opens its own incident (its own ``open_key``, never linked to another): it never
        attaches to, opens or holds up a real incident."""
        now = self.clock()
        if await inbox.resolved_before(conn, row):
            await inbox.finish(conn, row, outcome="already-resolved", incident_id=None, now=now)
            log.info("alert.processed", outcome="already-resolved", rule=rule.rule.name)
            return None
        existing = await incident_rows.find_open(conn, open_key)
        if existing is None:
            values = new_incident(
                new_id(now), rule, target, open_key, now, opened_by=row.id, alert=alert, drill=row.drill
            )
            created = await self.lifecycle.open(
                conn,
                values,
                depends_on=() if row.drill else rule.rule.dependency_rules(),
                alert=alert,
                target=target,
                episode=Episode(row.fingerprint, row.starts_at, row.payload),
                now=now,
            )
            if created is not None:
                return Opened(created.id, created.opened_at, created.state, created.clock_start)
            existing = await incident_rows.find_open(conn, open_key)  # another worker won the race
            if existing is None:  # …and it was resolved since: roll back; the row is retried
                raise RuntimeError(f"incident for {open_key} changed under us; retrying")
        if existing["opened_by"] == row.id and existing["state"] in (*DIAGNOSING, *INTERRUPTED):
            log.info("incident.resumed", incident_id=existing["id"], state=existing["state"])  # we died on it
            return Opened(existing["id"], existing["opened_at"], existing["state"], clock_start(existing))
        await self._attach(conn, row, alert, existing, now=now)
        log.info(
            "alert.processed",
            outcome="attached",
            incident_id=existing["id"],
            rule=rule.rule.name,
            target=target.key,
        )
        return None

    async def _attach(
        self, conn: Conn, row: inbox.InboxRow, alert: alerts.Alert, existing: dict[str, Any], *, now: float
    ) -> None:
        """Attach the alert to the open incident and finish the row; a firing after a mitigation is a
        flap, handed back to humans."""
        fresh = await self.lifecycle.attach(
            conn,
            existing,
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
        await inbox.finish(conn, row, outcome="attached", incident_id=existing["id"], now=now)

    async def _diagnose(
        self, rule: CompiledRule, target: incidents.TargetRef, context: dict[str, Any], clients: Clients
    ) -> list[incidents.Finding]:
        planned = [
            runner.plan_probe(spec, params, context, target)
            for spec, params in zip(rule.rule.diagnose, rule.diagnose_params, strict=True)
        ]
        if not planned:
            return []
        return await runner.run_all(
            planned,
            registry=self.probes,
            target=target,
            clients=clients,
            limits=self.limits,
            metrics=self.metrics,
        )

    async def _resolve(self, row: inbox.InboxRow, alert: alerts.Alert) -> None:
        now = self.clock()
        resolved = False
        async with self.store.write() as conn:
            incident = await incident_rows.find_by_episode(conn, row.fingerprint, row.starts_at)
            if incident is None:
                await inbox.finish(conn, row, outcome="resolved-unattached", incident_id=None, now=now)
                return
            incident_id = incident["id"]
            firing = await self.lifecycle.alert_resolved(
                conn, incident_id, alert=alert, fingerprint=row.fingerprint, starts_at=row.starts_at, now=now
            )
            if firing == 0:
                await self.lifecycle.close(conn, incident, now=now)
                resolved = True
            await inbox.finish(conn, row, outcome="resolved", incident_id=incident_id, now=now)
        if resolved:
            self.on_notify()
        log.info("alert.resolved", incident_id=incident_id, incident_resolved=resolved)
