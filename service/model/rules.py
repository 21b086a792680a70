"""Symptom rules (rules/*.yaml) as frozen data: Rule, Matcher, Target, ProbeSpec, ActionSpec.

These models hold what a rule file says, validated for shape. Compiled forms (regexes, CEL programs,
Jinja templates) live in ``service.matching``, which builds them once when rules load.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

# Prometheus' duration syntax (model.ParseDuration): units largest first, each at most once
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_S = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_MAX_S = 100 * 365 * 86400  # a century: beyond it a duration is a typo (and timedelta would overflow)
_RULE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ID = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FACT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_ITEM_ID = re.compile(r"[^a-z0-9]+")


def parse_duration(value: object) -> timedelta:
    """Parse a duration the way Prometheus writes them — ``250ms``, ``90s``, ``2m``, ``1h30m``, ``1d``,
    ``2w``, ``1y`` (units ``ms s m h d w y``, largest first, each once) — or a number of seconds (``90``,
    ``1.5``, or an int/float). The one duration parser of the service: rule fields, settings, the API."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _bounded(float(value), value)
    if not isinstance(value, str):
        raise ValueError("duration must be a string such as '90s', '2m' or '1h'")
    text = value.strip()
    if _SECONDS.match(text):
        return _bounded(float(text), value)
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(
            f"invalid duration {value[:40]!r}; use e.g. '500ms', '90s', '2m', '1h30m', '1d', '1w'"
        )
    seconds = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_S, strict=True) if n)
    return _bounded(seconds, value)


def _bounded(seconds: float, value: object) -> timedelta:
    if seconds < 0:
        raise ValueError("duration must not be negative")
    if math.isnan(seconds) or seconds > _MAX_S:
        raise ValueError(f"duration {str(value)[:40]!r} is out of range (at most 100 years)")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """Templates for the Kubernetes object a rule acts on; rendered from each alert."""

    kind: str = "Deployment"
    namespace: str = "default"
    name: str
    selector: str | None = None


class ProbeSpec(_Frozen):
    """One diagnostic probe of a rule; its finding is reached in CEL as ``findings.<id>``."""

    id: str
    probe: str
    params: dict[str, Any] = Field(default_factory=dict, alias="with")
    timeout: Duration | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"probe id {value!r} must be a lower-case identifier (a-z, 0-9, _)")
        return value


class Attempts(_Frozen):
    count: int = Field(ge=1, le=100)
    per: Duration


class Verify(_Frozen):
    """Re-run the named probe until it reports ok or ``within`` expires.

    ``advances`` names numeric facts (``probe_id.fact``, e.g. ``consensus.height``) that must also grow: each
    named probe is re-run with the verify probe, and the fact must exceed the first value seen (the
    diagnosis finding's, else the first verification sample's). A stalled counter is not mitigated."""

    probe: str
    within: Duration = timedelta(seconds=90)
    advances: list[str] = Field(default_factory=list)

    @field_validator("advances")
    @classmethod
    def _advances(cls, value: list[str]) -> list[str]:
        for entry in value:
            probe, dot, fact = entry.partition(".")
            if not dot or not _ID.match(probe) or not _FACT.match(fact):
                raise ValueError(f"advances entry {entry!r} must be probe_id.fact (e.g. consensus.height)")
        return value


class ActionSpec(_Frozen):
    """One remediation of a rule, tried in order."""

    action: str
    safety: Literal["safe", "unsafe"]
    when: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, alias="with")
    cooldown: Duration = timedelta(minutes=10)
    max_attempts: Attempts = Attempts(count=2, per=timedelta(hours=1))
    verify: Verify | None = None
    reason: str | None = None
    #: the workload is a replicated consensus group needing ``quorum`` members: an automatic restart is
    #: refused (``blast_radius``) while fewer than quorum + 1 of its pods are ready
    quorum: int | None = Field(default=None, ge=1, le=1000)


class Suggestion(_Frozen):
    """A runbook command for humans; ``hazard`` marks a command nothing should automate."""

    command: str
    hazard: str | None = None


def _suggestion(value: object) -> object:
    return {"command": value} if isinstance(value, str) else value


Band = Literal["immediate", "short_term", "long_term"]
BANDS: tuple[Band, ...] = ("immediate", "short_term", "long_term")
#: how each band is shown: the runbooks' time bands
BAND_TITLES = {
    "immediate": "Immediate (0-1 hour)",
    "short_term": "Short-term (1-24 hours)",
    "long_term": "Long-term (1-7 days)",
}


def item_id(text: str) -> str:
    """A checklist item's stable id, from its text: ``Post-mortem scheduled`` → ``post-mortem-scheduled``."""
    return _ITEM_ID.sub("-", text.lower()).strip("-")[:64]


class ChecklistItem(_Frozen):
    """One item of the post-incident checklist: ``id`` (from the text) is what a human ticks."""

    id: str
    band: Band
    text: str


class Checklist(_Frozen):
    """The runbooks' post-incident checklist in its three time bands."""

    immediate: list[str] = Field(default_factory=list)
    short_term: list[str] = Field(default_factory=list)
    long_term: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Checklist:
        seen: set[str] = set()
        for item in self.items():
            if not item.id or item.id in seen:
                raise ValueError(f"checklist item {item.text!r} is empty or repeats the id {item.id!r}")
            seen.add(item.id)
        return self

    def items(self) -> list[ChecklistItem]:
        """Every item, band by band, with its id."""
        return [
            ChecklistItem(id=item_id(text), band=band, text=text)
            for band in BANDS
            for text in getattr(self, band)
        ]


#: the runbooks' twelve items: the checklist of a rule that does not write its own
DEFAULT_CHECKLIST = Checklist(
    immediate=["Service fully restored", "Monitoring normal", "Status page updated", "Stakeholders notified"],
    short_term=[
        "Incident document created",
        "Root cause identified",
        "Runbooks updated",
        "Post-mortem scheduled",
    ],
    long_term=[
        "Post-mortem completed",
        "Action items assigned",
        "Monitoring improved",
        "Process updated",
    ],
)


def _checklist(value: object) -> object:
    """A flat list (the format before bands) is read as the immediate band; omitted → the default."""
    if value is None:
        return DEFAULT_CHECKLIST
    return {"immediate": value} if isinstance(value, list) else value


class Rule(_Frozen):
    """One symptom: which alerts it takes, what to check, what to try, what to tell a human."""

    name: str
    runbook: str
    mttr_target: Duration
    severity: Literal["critical", "high", "warning", "info"] = "warning"
    match: list[Any] = Field(min_length=1)
    target: Target
    diagnose: list[ProbeSpec] = Field(default_factory=list)
    remediate: list[ActionSpec] = Field(default_factory=list)
    suggest: list[Annotated[Suggestion, BeforeValidator(_suggestion)]] = Field(default_factory=list)
    checklist: Annotated[Checklist, BeforeValidator(_checklist)] = DEFAULT_CHECKLIST
    owner: str | None = None
    reviewed: date | None = None
    description: str | None = None
    #: the runbook's page; every rendering links it (an alert's ``runbook_url`` annotation wins)
    runbook_url: str | None = Field(default=None, max_length=2048)
    #: what this symptom depends on: other rules (by name) and/or this rule's own probe ids. While a
    #: dependency probe failed or a depended-on rule has an open incident in the same namespace, automatic
    #: actions are blocked (guard ``dependency``) and a new incident is linked to that one
    depends_on: list[str] = Field(default_factory=list)
    #: customers feel this symptom: the service drafts status-page and email updates on the runbooks' clock
    customer_impact: bool = False

    @field_validator("runbook_url")
    @classmethod
    def _runbook_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/@]+(/\S*)?$", value):
            raise ValueError(f"runbook_url {value!r} must be an http(s) URL without credentials or spaces")
        return value

    @field_validator("depends_on")
    @classmethod
    def _depends_on(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not (_ID.match(entry) or _RULE_NAME.match(entry)):
                raise ValueError(f"depends_on entry {entry!r} is neither a probe id nor a rule name")
        if len(set(value)) != len(value):
            raise ValueError("depends_on names an entry twice")
        return value

    def dependency_probes(self) -> list[str]:
        """The ``depends_on`` entries that are this rule's own probe ids."""
        ids = {p.id for p in self.diagnose}
        return [d for d in self.depends_on if d in ids]

    def dependency_rules(self) -> list[str]:
        """The ``depends_on`` entries that name other rules (every entry that is not an own probe id)."""
        ids = {p.id for p in self.diagnose}
        return [d for d in self.depends_on if d not in ids]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RULE_NAME.match(value):
            raise ValueError(f"rule name {value!r} must be lower-case letters, digits and '-' (max 63)")
        return value
