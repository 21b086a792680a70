"""Incidents and what hangs off them: findings, action records, timeline events, the bundle."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.model.rules import Band, item_id

IncidentState = Literal[
    "open", "diagnosing", "remediating", "verifying", "mitigated", "escalated", "resolved"
]
FindingStatus = Literal["ok", "degraded", "failed", "error", "skipped"]
ActionStatus = Literal[
    "planned",
    "skipped",
    "blocked",
    "running",
    "succeeded",
    "failed",
    "awaiting_approval",
    "approved",
    "rejected",
    "unknown",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TargetRef(_Frozen):
    """The rendered target of an incident; ``valid`` is false when a rendered name failed validation."""

    kind: str
    namespace: str
    name: str
    selector: str | None = None
    valid: bool = True
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class Finding(_Frozen):
    id: str
    probe: str
    status: FindingStatus
    summary: str = ""
    facts: dict[str, Any] = Field(default_factory=dict)
    evidence: str = ""
    duration_ms: float = 0.0


class ActionRecord(_Frozen):
    id: str
    action: str
    safety: Literal["safe", "unsafe"]
    status: ActionStatus
    guard: str | None = None
    reason: str | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    approver: str | None = None
    request: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


class TimelineEvent(_Frozen):
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class RefusedLink(_Frozen):
    """A URL from an alert shown as text, not as a link (``escalation.links`` decided, when the bundle was
    built): ``text`` is defanged and bounded (``hxxp[:]//evil.example/…``), ``reason`` says why."""

    name: str  # "graph" (generatorURL), "runbook" (runbook_url)
    text: str
    reason: str


class AlertRef(_Frozen):
    """An alert as the bundle shows it; links are shown, never fetched.

    ``generator_url`` and ``runbook_url`` are set only when they passed the link allow-list; a URL that
    did not is in ``refused_links``, to be shown as text.
    """

    name: str
    status: Literal["firing", "resolved"]
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None = None
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    generator_url: str | None = None
    runbook_url: str | None = None
    refused_links: list[RefusedLink] = Field(default_factory=list)


class SuggestedCommand(_Frozen):
    command: str
    hazard: str | None = None


class LinkRef(_Frozen):
    """Another incident this one is linked to (``caused_by`` / ``effects``)."""

    incident_id: str
    rule: str
    target: str  # TargetRef.key
    state: IncidentState | None = None


class ChecklistEntry(_Frozen):
    """A post-incident checklist item of the incident; ``ticked_*`` set once a human ticked it."""

    id: str
    band: Band
    text: str
    ticked_by: str | None = None
    ticked_at: datetime | None = None


def _entry(value: object) -> object:
    """Bundles stored before the bands held plain strings: read them as immediate items."""
    return {"id": item_id(value), "band": "immediate", "text": value} if isinstance(value, str) else value


class WarRoom(_Frozen):
    """The incident's war room: a Slack channel (``name``, ``url``) with the people and the bridge."""

    name: str
    url: str | None = None
    bridge_url: str | None = None


class Bundle(_Frozen):
    """Everything a human needs in the first minute of an escalated incident."""

    incident_id: str
    title: str
    severity: str
    rule: str
    runbook: str
    state: IncidentState
    reason: str | None = None
    target: TargetRef
    mttr_target_s: float
    elapsed_s: float
    opened_at: datetime  # when the service opened the incident (= ``detected_at``)
    #: the earliest ``startsAt`` of the incident's alerts: MTTR, elapsed and "over target" count from here
    started_at: datetime | None = None
    #: when the service first saw it (the incident was opened)
    detected_at: datetime | None = None
    alerts: list[AlertRef]
    findings: list[Finding] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)
    proposals: list[ActionRecord] = Field(default_factory=list)
    suggested: list[SuggestedCommand] = Field(default_factory=list)
    escalation_level: int = 1
    next_escalation_level: int | None = None
    next_escalation_at: datetime | None = None
    #: name → URL of every link shown: the incident, and the first alert's graph and runbook when allowed
    links: dict[str, str] = Field(default_factory=dict)
    #: per proposed action id: {"approve": URL, "reject": URL} (POST with an approver token)
    approve_links: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: the runbook's post-incident checklist, in its three bands
    checklist: list[Annotated[ChecklistEntry, BeforeValidator(_entry)]] = Field(default_factory=list)
    #: the open incident this one was linked to when it opened (its root cause); it pages through that one
    caused_by: LinkRef | None = None
    #: incidents linked to this one (this one is their cause)
    effects: list[LinkRef] = Field(default_factory=list)
    #: recipients already paged, by level (``L1 pagerduty:primary``): each new level is told who holds it
    holders: list[str] = Field(default_factory=list)
    #: while an automatic action verifies: when the incident will be paged unless mitigated first
    page_due_at: datetime | None = None
    #: the incident's war room, once opened
    war_room: WarRoom | None = None
    #: a runbook drill: nothing was written to the cluster, nothing paged or published; "[DRILL]" everywhere
    drill: bool = False
