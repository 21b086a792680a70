"""What travels through the pipeline — a firing alert's ``Case`` and the incident it owns — and the pure
helpers the stages share (the escalation reason, the diagnosis summary, a new incident's row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.decision import plan as planning
from service.lifecycle import transitions as lifecycle
from service.matching.loader import CompiledRule
from service.model import alerts, incidents, severity
from service.records import inbox

NO_AUTOMATION = "no automatic remediation is available for this rule yet: a human must act"
DIAGNOSING = ("open", "diagnosing")
ACTING = ("remediating", "verifying")
#: the opening row found unfinished in these states died while acting: its action's result is unknown.
#: ``escalated`` too: the page deadline may have paged it while the action ran (the row finishes only after)
INTERRUPTED = (*ACTING, "escalated")


@dataclass(frozen=True)
class Opened:
    """An incident whose diagnosis and escalation this row owns."""

    incident_id: str
    opened_at: float
    state: str
    started_at: float  # the earliest startsAt of its alerts: the MTTR clock starts here


@dataclass(frozen=True)
class Case:
    """One firing alert on its way: its row, the incident it owns, rule, target, context."""

    row: inbox.InboxRow
    opened: Opened
    rule: CompiledRule
    target: incidents.TargetRef
    alert: alerts.Alert
    context: dict[str, Any]

    @property
    def drill(self) -> bool:
        """A runbook drill: its own incident, every action dry-run, heard only on the drill channel."""
        return self.row.drill


def proposals_only(plan: planning.Plan) -> planning.Plan:
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


def new_incident(
    incident_id: str,
    rule: CompiledRule,
    target: incidents.TargetRef,
    open_key: str,
    now: float,
    *,
    opened_by: int,
    alert: alerts.Alert,
    drill: bool = False,
) -> dict[str, Any]:
    """The row of a new incident: its severity is the alert's (the rule's when the alert has none), its
    clock starts when the alert started firing (never later than now, whatever the sender's clock says).
    A drill's incident is labelled ``drill`` and affects no customer (nothing customer-facing is drafted)."""
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
        "severity": severity.of_alert(alert.labels, rule.rule.severity),
        "root_severity": rule.rule.severity,
        "started_at": min(alert.starts_at.timestamp(), now),
        "customer_impact": rule.rule.customer_impact and not drill,
        "drill": drill,
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


def action_kind(status: str) -> lifecycle.NoteKind:
    """The timeline kind of an action's result."""
    kinds: dict[str, lifecycle.NoteKind] = {
        "succeeded": "action.succeeded",
        "failed": "action.failed",
        "blocked": "action.blocked",
        "skipped": "action.skipped",
        "unknown": "action.unknown",
    }
    return kinds.get(status, "action.failed")
