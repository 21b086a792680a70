"""Acting on an incident: the decided safe step runs under the guards and is verified, or a step a
human approved runs through the engine's same path (``run_approved``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from service.clients.hub import Clients
from service.decision import plan as planning
from service.matching import templates
from service.model import alerts, incidents
from service.pipeline.cases import Case, action_kind, escalation_reason, proposals_only
from service.pipeline.handing import Handing
from service.records import actions as journal
from service.records import findings, inbox
from service.records import incidents as incident_rows
from service.records.sqlite_inline import Conn
from service.remediation import engine as remediation


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


class Acting(Handing):
    async def _decide(
        self,
        case: Case,
        found: list[incidents.Finding],
        diagnosed: int | None,
        *,
        clients: Clients | None = None,
    ) -> None:
        """Decide on the findings (pure ``decide`` over the guards read now); act, or hand over.
        ``clients``: the opening's (``reads.for_opening``), for the preflight's reads."""
        now = self.clock()
        engine = self._engine_of(case.drill)  # a drill's: dry-run, whatever the settings say
        if engine is None:
            await self._escalate(case, found, escalation_reason(case.target, case.row.truncated))
            return
        prepared = engine.prepare(case.rule, case.target, case.context)  # params rendered once
        guards = await engine.guards(
            prepared, truncated=case.row.truncated, now=now, found=found, clients=clients
        )
        plan = planning.decide(case.rule, case.alert, found, guards, now=now)
        async with self.store.write() as conn:
            await inbox.fence(conn, case.row)  # only the row's owner decides and starts remediating
            await engine.record_plan(
                conn,
                case.opened.incident_id,
                plan,
                prepared,
                now=now,
                escalating=plan.apply is None,
                round_=diagnosed,
            )
            await self.lifecycle.note(
                conn,
                case.opened.incident_id,
                "decision",
                plan.reason,
                now=now,
                data=remediation.plan_data(plan),
            )
            if plan.apply is not None and not await self.lifecycle.remediating(
                conn, case.opened.incident_id, now=now
            ):
                plan = proposals_only(plan)  # resolved while it was diagnosed: nothing runs on it
            elif plan.apply is not None and not guards.dry_run:
                await self._announce(conn, case, found, plan.apply, now=now)
        if plan.apply is None:
            special = not case.target.valid or case.row.truncated
            await self._escalate(
                case, found, escalation_reason(case.target, case.row.truncated) if special else plan.reason
            )
            return
        self.on_notify()  # the announcement, committed
        await self._act(case, prepared, found, plan, diagnosed)

    async def _announce(
        self, conn: Conn, case: Case, found: list[incidents.Finding], step: planning.Step, *, now: float
    ) -> None:
        """Tell the information channels at once that an automatic action starts and how long it verifies;
        the page goes out at the deadline (alert start + min(5 min, MTTR target)) unless mitigated first."""
        check = case.rule.rule.remediate[step.index].verify
        until = f", verifying until {_clock(now + check.within.total_seconds())}" if check else ""
        message = f"automatic remediation in progress: {step.action}{until}"
        document = await self._document(conn, case, found, reason=message, state="remediating", now=now)
        due = self.lifecycle.page_deadline(case.opened.started_at, case.rule.rule.mttr_target.total_seconds())
        await self.lifecycle.announce(
            conn, case.opened.incident_id, document=document, message=message, page_due_at=due, now=now
        )

    async def run_approved(self, incident_id: str, record: Mapping[str, Any], who: str) -> str:
        """A proposal a human approved: rebuild its incident's rule, target and context from the store, then
        the engine's own path (``Engine.run_approved``), as for an automatic step; returns the status. On a
        drill's incident the approved step runs dry: its exact request is journaled, nothing is written."""
        async with self.store.read() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            first_alert = (await incident_rows.alerts_of(conn, incident_id))[:1]
        engine = self._engine_of(bool(incident and incident["drill"]))
        assert engine is not None
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
        prepared = engine.prepare(rule, target, context)
        status = await engine.run_approved(incident_id, prepared, step, approver=who, action_id=record["id"])
        async with self.store.write() as conn:
            await self.lifecycle.note(
                conn,
                incident_id,
                action_kind(status),
                f"{record['action']} (approved by {who}): {status}",
                now=self.clock(),
            )
        if status == "succeeded" and rule.rule.remediate[step.index].verify is not None:
            task = asyncio.create_task(self._verify_approved(incident_id, prepared, step, who))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return status

    async def _verify_approved(
        self, incident_id: str, prepared: remediation.Prepared, step: planning.Step, who: str
    ) -> None:
        """An approved action ran: re-run its verify probe as for an automatic one (in the background, so
        the approver has the action's result at once); verified → the incident is mitigated (its page
        resolved), else its reason says the approved fix did not take."""
        assert self.engine is not None
        passed, checked = await self.engine.verify(prepared, step)
        now = self.clock()
        async with self.store.write() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            stored = incident_rows.load_bundle(incident["bundle"]) if incident else None
            if incident is None or stored is None:
                return
            await findings.record(conn, incident_id, checked, phase="verification", now=now)
            last = checked[0].summary if checked else "no result"
            if passed:
                summary = f"mitigated by {step.action} (approved by {who})"
                document = stored.model_copy(
                    update={"state": "mitigated", "reason": summary, "findings": checked}
                )
                await self.lifecycle.mitigate(
                    conn,
                    incident_id,
                    started_at=incident_rows.clock_start(incident),
                    summary=summary,
                    now=now,
                    document=document,
                )
            else:
                reason = f"{step.action} (approved by {who}) ran but verification failed: {last}"
                document = stored.model_copy(
                    update={"reason": reason, "findings": checked or stored.findings}
                )
                await self.lifecycle.restate(conn, incident_id, document=document, reason=reason, now=now)
        self.on_notify()

    async def _act(
        self,
        case: Case,
        prepared: remediation.Prepared,
        found: list[incidents.Finding],
        plan: planning.Plan,
        diagnosed: int | None,
    ) -> None:
        """Run the plan's step (decided on findings round ``diagnosed``), verify, mitigate or escalate."""
        engine = self._engine_of(case.drill)
        assert engine is not None and plan.apply is not None
        step, incident_id = plan.apply, case.opened.incident_id
        status, _outcome, summary = await engine.execute(incident_id, prepared, step, round_=diagnosed)
        if status == "succeeded":
            async with self.store.write() as conn:
                await self.lifecycle.verifying(
                    conn, incident_id, message=f"{step.action}: {summary}", now=self.clock()
                )
            passed, checked = await engine.verify(prepared, step, acted_on=found)
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
        await self._escalate(case, found, reason, propose=(plan, prepared), diagnosed=diagnosed)
