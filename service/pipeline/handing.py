"""Handing an incident over: its bundle, escalation (with the proposals), mitigation, and the escalation
of an incident whose action's result is unknown (the process died while acting)."""

from __future__ import annotations

import dataclasses

import structlog

from service.decision import plan as planning
from service.lifecycle import transitions as lifecycle
from service.matching import templates
from service.model import incidents
from service.pipeline.base import Stages
from service.pipeline.cases import Case, proposals_only
from service.records import actions as journal
from service.records import findings, inbox
from service.records import incidents as incident_rows
from service.records.coordination import CoordinationUnavailable
from service.records.sqlite_inline import Conn
from service.remediation import engine as remediation

log = structlog.get_logger(__name__)


class Handing(Stages):
    def _engine_of(self, drill: bool) -> remediation.Engine | None:
        """The engine; for a drill, the same engine forced to dry-run whatever ``REMEDIATOR_DRY_RUN`` says:
        a drill journals the exact requests and writes nothing to the cluster."""
        engine = self.engine
        if engine is None or not drill or engine.policy.dry_run:
            return engine
        return dataclasses.replace(engine, policy=dataclasses.replace(engine.policy, dry_run=True))

    async def _escalate(
        self,
        case: Case,
        found: list[incidents.Finding],
        reason: str,
        *,
        propose: tuple[planning.Plan, remediation.Prepared] | None = None,
        diagnosed: int | None = None,
        outcome: str = "opened",
    ) -> None:
        now, incident_id = self.clock(), case.opened.incident_id
        engine = self._engine_of(case.drill)
        async with self.store.write() as conn:
            if propose is not None and engine is not None:  # acted and failed: propose the unsafe ones
                proposals = proposals_only(propose[0])
                await engine.record_plan(
                    conn, incident_id, proposals, propose[1], now=now, escalating=True, round_=diagnosed
                )
                await self.lifecycle.note(
                    conn,
                    incident_id,
                    "decision",
                    proposals.reason,
                    now=now,
                    data=remediation.plan_data(proposals),
                )
            document = await self._document(conn, case, found, reason=reason, state="escalated", now=now)
            handed = await self.lifecycle.escalate(
                conn, incident_id, document=document, reason=reason, now=now
            )
            if handed is None:  # already with a human (paged at the deadline while it verified)
                await self.lifecycle.restate(conn, incident_id, document=document, reason=reason, now=now)
            await inbox.finish(conn, case.row, outcome=outcome, incident_id=incident_id, now=now)
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
                started_at=case.opened.started_at,
                summary=f"mitigated by {step.action}",
                now=now,
                document=document,
            )
            await inbox.finish(conn, case.row, outcome="mitigated", incident_id=incident_id, now=now)
        try:
            if not case.drill:  # a drill leaves no trace in the guards of real incidents (flap detection)
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
    ) -> incidents.Bundle:
        records = remediation.action_records(await journal.of_incident(conn, case.opened.incident_id))
        row = await incident_rows.get_row(conn, case.opened.incident_id)
        caused_by, effects = await incident_rows.links_of(conn, row) if row else (None, [])
        document = self.lifecycle.document(
            lifecycle.Facts(
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
                started_at=incident_rows.clock_start(row) if row else case.opened.started_at,
                severity=row["severity"] if row else None,
                caused_by=caused_by,
                effects=effects,
                page_due_at=row["page_due_at"] if row else None,
            )
        )
        return document.model_copy(update={"drill": True}) if case.drill else document
