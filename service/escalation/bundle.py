"""Build the context bundle of an incident (pure: no clock, no I/O — time comes in as arguments).

Links from alerts (generatorURL, runbook_url) are shown to humans, never fetched; ``links.Policy``
decides here, once, which are links (http(s), no userinfo, an allow-listed host). The others travel as
``RefusedLink`` text, so renderers need not decide again. The rule's own ``runbook_url`` comes from a
rule file (validated when rules load), not from an alert: it is a link when it is well-formed http(s)
(``links.usable``), without the host allow-list; an alert's allowed ``runbook_url`` still wins.

The clock: ``elapsed_s`` counts from ``started_at`` (the earliest ``startsAt`` of the incident's alerts)
when the caller knows it, else from ``opened_at``; ``detected_at`` is always ``opened_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NotRequired, TypedDict, Unpack, overload

from service.escalation import links as link_rules
from service.escalation.render import text
from service.model import alerts, incidents
from service.model.incidents import IncidentState
from service.model.rules import ChecklistItem

#: where a human opens an incident: its console page (a GET, where the Approve / Reject, Acknowledge and
#: checklist buttons are, behind an approver sign-in); the JSON API stays at ``/v1/incidents/{id}``
CONSOLE = "/ui/incidents"


def alert_ref(alert: alerts.Alert, link_policy: link_rules.Policy) -> incidents.AlertRef:
    graph, refused_graph = link_policy.judge("graph", alert.generator_url)
    runbook, refused_runbook = link_policy.judge("runbook", alert.annotations.get("runbook_url"))
    return incidents.AlertRef(
        name=alert.name,
        status=alert.status,
        fingerprint=alert.fingerprint,
        starts_at=alert.starts_at,
        ends_at=None if alert.ends_at is None or alert.ends_at.year <= 1 else alert.ends_at,
        labels=alert.labels,
        annotations=alert.annotations,
        generator_url=graph,
        runbook_url=runbook,
        refused_links=[r for r in (refused_graph, refused_runbook) if r is not None],
    )


class Facts(TypedDict):
    """What ``build`` makes a bundle of, each named by its caller.

    Twenty-six facts, all keyword-only: a TypedDict rather than twenty parameters (too-many-arguments) or a
    params dataclass the callers would have to build first. Call sites stay ``build(incident_id=…, …)``,
    mypy checks every keyword and its type, and the function body reads the facts by name."""

    incident_id: str
    rule_name: str
    runbook: str
    severity: str
    mttr_target_s: float
    state: IncidentState
    reason: str | None
    target: incidents.TargetRef
    opened_at: float
    now: float
    alert_list: Sequence[alerts.Alert]
    suggested: Sequence[incidents.SuggestedCommand]
    base_url: str
    link_policy: link_rules.Policy
    level: NotRequired[int]  # 1
    findings: NotRequired[Sequence[incidents.Finding]]
    actions: NotRequired[Sequence[incidents.ActionRecord]]
    checklist: NotRequired[Sequence[ChecklistItem]]
    next_level: NotRequired[int | None]
    next_at: NotRequired[float | None]
    started_at: NotRequired[float | None]  # earliest alert startsAt; else the clock counts from opened_at
    runbook_url: NotRequired[str | None]  # the rule's; an alert's allowed runbook_url annotation wins
    caused_by: NotRequired[incidents.LinkRef | None]
    effects: NotRequired[Sequence[incidents.LinkRef]]
    holders: NotRequired[Sequence[str]]
    page_due_at: NotRequired[float | None]


def build(**facts: Unpack[Facts]) -> incidents.Bundle:
    """The bundle a human receives; ``now`` fixes the elapsed time against the MTTR target (counted from
    ``started_at`` when given, else from ``opened_at``).

    ``link_policy`` decides which alert URLs are links; the incident and approve links are built here
    from ``base_url``, our own."""
    refs = [alert_ref(a, facts["link_policy"]) for a in facts["alert_list"]]
    base = f"{facts['base_url'].rstrip('/')}{CONSOLE}/{facts['incident_id']}"
    actions = facts.get("actions", ())
    started = facts.get("started_at")
    return incidents.Bundle(
        incident_id=facts["incident_id"],
        title=_title(facts["severity"], facts["runbook"], facts["target"], refs)[:500],
        severity=facts["severity"],
        rule=facts["rule_name"],
        runbook=facts["runbook"],
        state=facts["state"],
        reason=facts["reason"],
        target=facts["target"],
        mttr_target_s=facts["mttr_target_s"],
        elapsed_s=round(max(0.0, facts["now"] - (facts["opened_at"] if started is None else started)), 3),
        opened_at=_moment(facts["opened_at"]),
        started_at=None if started is None else _moment(started),
        detected_at=_moment(facts["opened_at"]),
        alerts=refs,
        findings=list(facts.get("findings", ())),
        actions=[a for a in actions if a.status != "awaiting_approval"],
        proposals=[a for a in actions if a.status == "awaiting_approval"],
        suggested=list(facts["suggested"]),
        escalation_level=facts.get("level", 1),
        next_escalation_level=facts.get("next_level"),
        next_escalation_at=_moment(facts.get("next_at")),
        links=_links(base, refs, facts.get("runbook_url")),
        approve_links={
            a.id: {"approve": f"{base}#action-{a.id}", "reject": f"{base}#action-{a.id}"}
            for a in actions
            if a.status == "awaiting_approval"
        },
        checklist=[
            incidents.ChecklistEntry(id=i.id, band=i.band, text=i.text) for i in facts.get("checklist", ())
        ],
        caused_by=facts.get("caused_by"),
        effects=list(facts.get("effects", ())),
        holders=list(facts.get("holders", ())),
        page_due_at=_moment(facts.get("page_due_at")),
    )


@overload
def _moment(epoch: float) -> datetime: ...
@overload
def _moment(epoch: float | None) -> datetime | None: ...
def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _title(
    severity: str, runbook: str, target: incidents.TargetRef, refs: Sequence[incidents.AlertRef]
) -> str:
    summary = refs[0].annotations.get("summary") if refs else None
    return f"[{severity.upper()}] {runbook}: {target.key}" + (f" — {summary}" if summary else "")


def _links(base: str, refs: Sequence[incidents.AlertRef], rule_runbook: str | None) -> dict[str, str]:
    """The incident's own link, the first alert's graph link, and the runbook: the first alert's when it
    is a link, else the rule's (from a rule file, so only checked to be well-formed http(s))."""
    first = refs[0] if refs else None
    links = {"incident": base}
    if first and first.generator_url:
        links["graph"] = first.generator_url
    runbook = (first.runbook_url if first else None) or link_rules.usable(rule_runbook)
    if runbook:
        links["runbook"] = runbook
    return links


def findings_table(findings: Sequence[incidents.Finding], *, width: int = 100) -> str:
    """The findings of a bundle as an aligned text table (id, probe, status, summary)."""
    if not findings:
        return "(no findings)"
    rows = [("ID", "PROBE", "STATUS", "SUMMARY")] + [
        (text.clip(f.id, 100), text.clip(f.probe, 100), text.clip(f.status, 20), text.one_line(f.summary))
        for f in findings
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3]))
        summary = row[3]
        room = max(20, width - len(head) - 2)
        lines.append(f"{head}  {summary if len(summary) <= room else summary[: room - 1] + '…'}")
    return "\n".join(lines)
