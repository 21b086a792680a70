"""What customers read about an incident: status-page and email drafts from templates, one per step
(Investigating → Identified → Monitoring → Resolved). Pure: no I/O, no clock (times come in the facts).

A draft says what customers feel (an outage or degraded service of the affected component), since when, and
what we are doing; it never names the rule, the runbook, the target (namespace, workload) or any label value,
except the labels on the allow-list (``REMEDIATOR_COMMS_LABELS``, e.g. ``component,region``), and those only
as plain words: letters, digits, spaces, ``.``, ``_``, ``-``, at most ``VALUE_LIMIT`` characters (anything
else is dropped, so no markup, URL, newline or quote reaches a customer).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

KINDS = ("statuspage", "email")
STEPS = ("investigating", "identified", "monitoring", "resolved")
#: the checklist item a published step of each kind ticks
CHECKLIST_ITEMS = {"statuspage": "status-page-updated", "email": "stakeholders-notified"}
#: the longest allow-listed value shown, and the most allow-listed labels shown
VALUE_LIMIT = 40
LABEL_LIMIT = 5
#: what the draft calls the affected component when no allow-listed label names it
SOME_SERVICES = "some of our services"

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._-]+")
_SPACES = re.compile(r"\s+")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

_OPENING = {
    "investigating": "We are investigating {impact} affecting {component}, starting at {start}.",
    "identified": "We have identified the cause of {impact} affecting {component} and are working on a fix.",
    "monitoring": "A fix for {impact} affecting {component} is in place; we are monitoring the results.",
    "resolved": "The issue affecting {component}, which started at {start}, has been resolved.",
}
_CLOSING = {
    "investigating": "We will post an update as soon as we know more.",
    "identified": "We will post an update when the fix is in place.",
    "monitoring": "We will post a final update once we are confident the service is stable.",
    "resolved": "Service is operating normally. We apologise for the inconvenience.",
}
_TITLES = {
    "investigating": "Investigating: {impact_title} of {component}",
    "identified": "Identified: {impact_title} of {component}",
    "monitoring": "Monitoring: {impact_title} of {component}",
    "resolved": "Resolved: {impact_title} of {component}",
}


@dataclass(frozen=True)
class Facts:
    """What a draft may say: the incident's severity, when its alert started, its first alert's labels
    (filtered by the allow-list before anything is shown), and whether it is a drill."""

    severity: str
    started_at: datetime
    labels: Mapping[str, str]
    drill: bool = False


@dataclass(frozen=True)
class Draft:
    """A customer-facing update: ``title`` (the status page's incident name, the email's subject) and
    ``body``."""

    kind: str
    step: str
    title: str
    body: str

    @property
    def text(self) -> str:
        """The stored form: the title, a blank line, the body."""
        return f"{self.title}\n\n{self.body}"


def parse(kind: str, step: str, text: str) -> Draft:
    """A stored draft back (``text`` as ``Draft.text`` wrote it)."""
    title, _sep, body = text.partition("\n\n")
    return Draft(kind=kind, step=step, title=title, body=body)


def allow_list(names: Collection[str]) -> tuple[str, ...]:
    """The usable label names of ``REMEDIATOR_COMMS_LABELS`` (Prometheus label-name syntax), in order."""
    return tuple(dict.fromkeys(n for n in names if _NAME.match(n)))[:LABEL_LIMIT]


def clean(value: str) -> str:
    """An allow-listed value as plain words: unsafe characters dropped, spaces collapsed, bounded."""
    words = _SPACES.sub(" ", _UNSAFE.sub(" ", value)).strip()
    return words[:VALUE_LIMIT].strip()


def shown_labels(labels: Mapping[str, str], allowed: Collection[str]) -> list[tuple[str, str]]:
    """(name, cleaned value) of the allow-listed labels present with a non-empty cleaned value."""
    shown = []
    for name in allow_list(allowed):
        value = clean(str(labels.get(name, "")))
        if value:
            shown.append((name, value))
    return shown


def draft(kind: str, step: str, facts: Facts, allowed: Collection[str] = ()) -> Draft:
    """The ``kind`` draft of ``step`` for an incident with ``facts``; ValueError for an unknown kind/step."""
    if kind not in KINDS or step not in STEPS:
        raise ValueError(f"no {kind!r} draft for step {step!r}")
    shown = shown_labels(facts.labels, allowed)
    named = dict(shown)
    component = named.pop("component", "") or SOME_SERVICES
    critical = facts.severity == "critical"
    values = {
        "impact": "an outage" if critical else "degraded performance",
        "impact_title": "outage" if critical else "degraded performance",
        "component": component,
        "start": facts.started_at.strftime("%H:%M UTC on %d %b %Y"),
    }
    lines = [_OPENING[step].format(**values)]
    if named:
        lines.append("Affected: " + ", ".join(f"{n} {v}" for n, v in named.items()) + ".")
    lines.append(_CLOSING[step])
    title = _TITLES[step].format(**values)
    if facts.drill:
        title = f"[DRILL] {title}"
    body = "\n\n".join(lines) if kind == "email" else " ".join(lines)
    return Draft(kind=kind, step=step, title=title, body=body)


def component_status(step: str, severity: str) -> str:
    """The Statuspage component status a step sets."""
    if step == "resolved":
        return "operational"
    if step == "monitoring":
        return "degraded_performance"
    return "major_outage" if severity == "critical" else "degraded_performance"
