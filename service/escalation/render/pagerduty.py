"""A bundle as a PagerDuty Events API v2 body (pure): one alert per incident, ``dedup_key`` = incident id.

``trigger`` (and ``escalate``/``escalate:N``, a re-trigger that updates the same alert) carries a
``payload``: summary (at most 1024 characters, one line, bare URLs defanged so PagerDuty links none),
severity, source, component, group, class, the bundle as ``custom_details`` — led by what a human reads
first, as defanged text: ``started``/``detected`` times, ``mttr`` (counted from the alert's start) and
``paging`` ("Paging at … unless mitigated", "Caused by incident … — paged through it", "Linked
incidents: …", "Already paged: …") — and the links: only the bundle's (which passed the host allow-list
when it was built, or are our own, or the rule's runbook), and our own URLs of the incidents this one is
linked to; http(s) and percent-encoded; no ``images``.

``acknowledge`` and ``resolve`` carry only routing key, action and dedup key. ``mitigated`` maps to
``resolve``: a page made while an automatic action verified (the page was due before verification could
finish) is resolved when verification succeeds. ``announce`` (automatic remediation in progress) and
``linked`` (the incident pages through the one that caused it) are information, not pages: refused
(ValueError), so the notifier does not send them.

PagerDuty refuses events over 512 KB, so ``custom_details`` is shrunk step by step — finding evidence
first, then long strings and long lists everywhere — until the whole body fits, and says what was cut under
``custom_details["truncated"]``. Never sends anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from service.escalation import links
from service.escalation.render import text
from service.model import incidents

#: what the body may weigh, serialised; PagerDuty's limit is 512 KB, this keeps a margin
MAX_BYTES = 500_000
SUMMARY = 1024
FIELD = 255
MAX_LINKS = 10

ACTIONS = {
    "trigger": "trigger",
    "escalate": "trigger",
    "acknowledge": "acknowledge",
    "resolve": "resolve",
    "mitigated": "resolve",
}
LINK_TEXTS = {"incident": "incident in remediator", "graph": "alert graph", "runbook": "runbook"}
SEVERITIES = {"critical": "critical", "high": "error", "warning": "warning", "info": "info"}

#: (longest string, most items per list or object) of each shrinking step after the evidence
STEPS = ((4096, 200), (1024, 50), (256, 20), (64, 5))
EVIDENCE = 1000


def event_action(event: str) -> str:
    """The ``event_action`` of an event; ValueError for one PagerDuty has no use for (``announce``,
    ``linked``: information, not a page)."""
    name, _level = text.event_name(event)
    if name not in ACTIONS:
        raise ValueError(f"no PagerDuty event_action for event {event!r}")
    return ACTIONS[name]


def render(bundle: incidents.Bundle, *, event: str, routing_key: str, source: str) -> dict[str, Any]:
    """The Events API v2 body for ``event`` (trigger/escalate, acknowledge or resolve)."""
    action = event_action(event)
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": bundle.incident_id,
    }
    if action != "trigger":
        return body
    target = bundle.target
    payload: dict[str, Any] = {
        "summary": text.truncate(
            links.defang(text.clip(text.drilled(bundle, _summary(bundle)), SUMMARY)), SUMMARY
        ),
        "severity": SEVERITIES.get(bundle.severity, "error"),
        "source": text.clip(text.target_key(target), FIELD) or source,
    }
    optional = {
        "component": text.clip(target.name, FIELD),
        "group": text.clip(target.namespace, FIELD),
        "class": text.clip(bundle.rule, FIELD),
    }
    payload.update((key, value) for key, value in optional.items() if value)
    payload["timestamp"] = text.rfc3339(bundle.opened_at)
    body["payload"] = payload
    incident = text.safe_link(bundle.links.get("incident"))
    if incident:
        body["client"] = "remediator"
        body["client_url"] = incident
    shown = _links(bundle)
    if shown:
        body["links"] = shown
    document = _readable(bundle) | bundle.model_dump(
        mode="json"
    )  # the bundle's JSON form: PagerDuty shows it
    for details in _shrunk(document):
        payload["custom_details"] = details
        if len(orjson.dumps(body)) <= MAX_BYTES:
            break
    return body


def bare(incident_id: str, *, event: str, routing_key: str) -> dict[str, Any]:
    """The body for an incident that has no bundle (it was never handed over, so never triggered):
    routing key, action and dedup key — all that acknowledge and resolve carry."""
    return {"routing_key": routing_key, "event_action": event_action(event), "dedup_key": incident_id}


def _readable(bundle: incidents.Bundle) -> dict[str, Any]:
    """What a human reads first in ``custom_details``, as defanged one-line text."""
    mttr = text.mttr_line(bundle.state, text.number(bundle.elapsed_s), text.number(bundle.mttr_target_s))
    readable: dict[str, Any] = {
        "started": text.clock(bundle.started_at) if bundle.started_at else "unknown",
        "detected": text.clock(bundle.detected_at or bundle.opened_at),
        "mttr": f"{mttr} ({text.clock_origin(bundle.started_at)})",
    }
    paging = [links.defang(line) for line in text.paging_lines(bundle)]
    if paging:
        readable["paging"] = paging
    return readable


def _summary(bundle: incidents.Bundle) -> str:
    if bundle.title:
        return bundle.title
    parts = [bundle.runbook, text.target_key(bundle.target)]
    return ": ".join(p for p in parts if p) or f"incident {bundle.incident_id}"


def _links(bundle: incidents.Bundle) -> list[dict[str, str]]:
    """Incident API URL, graph (generatorURL) and runbook, of the bundle and of each alert; http(s) only."""
    candidates: list[tuple[str, str | None]] = [
        (LINK_TEXTS.get(name, name), url) for name, url in bundle.links.items()
    ]
    own = bundle.links.get("incident")
    related = [("caused by", bundle.caused_by)] if bundle.caused_by else []
    related += [("linked", ref) for ref in bundle.effects]
    candidates += [
        (f"{kind}: incident {text.clip(ref.incident_id, 60)}", text.incident_url(own, ref.incident_id))
        for kind, ref in related
    ]
    for alert in bundle.alerts:
        name = text.clip(alert.name, 100)
        candidates += [(f"graph: {name}", alert.generator_url), (f"runbook: {name}", alert.runbook_url)]
    shown: list[dict[str, str]] = []
    seen: set[str] = set()
    for label, url in candidates:
        href = text.safe_link(url)
        if href and href not in seen and len(shown) < MAX_LINKS:
            seen.add(href)
            shown.append({"href": href, "text": links.defang(text.clip(label, 100))})
    return shown


def _shrunk(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ever smaller versions of the details (the bundle's JSON document, which ``custom_details`` carries
    and which is cut here as JSON), each saying what was cut; the last one always fits."""
    yield bundle
    findings = text.objects(bundle.get("findings"))
    if any(len(text.string(f.get("evidence"))) > EVIDENCE for f in findings):
        yield {
            **bundle,
            "findings": [
                {**f, "evidence": text.truncate(text.string(f.get("evidence")), EVIDENCE)} for f in findings
            ],
            "truncated": f"finding evidence shortened to {EVIDENCE} characters",
        }
    lean = dict(bundle)
    dropped = any(f.get("evidence") for f in findings)
    if dropped:
        lean["findings"] = [{k: v for k, v in f.items() if k != "evidence"} for f in findings]
    for longest, items in STEPS:
        cut: set[str] = set()
        details = _shrink(lean, longest, items, cut)
        notes = ["finding evidence dropped"] if dropped else []
        if "strings" in cut:
            notes.append(f"strings longer than {longest} characters shortened")
        if "items" in cut:
            notes.append(f"lists and objects cut to {items} items")
        if notes:
            details["truncated"] = "; ".join(notes)
        yield details
    yield {
        "incident_id": text.clip(bundle.get("incident_id"), 100),
        "title": text.clip(bundle.get("title"), 256),
        "severity": text.clip(bundle.get("severity"), 20),
        "state": text.clip(bundle.get("state"), 20),
        "truncated": "the bundle was too large: only its summary is here; see the incident link",
    }


def _shrink(value: Any, longest: int, items: int, cut: set[str], depth: int = 0) -> Any:
    if isinstance(value, str):
        if len(value) > longest:
            cut.add("strings")
            return text.truncate(value, longest)
        return value
    if depth > 20 and isinstance(value, list | dict):
        cut.add("items")
        return "…"
    if isinstance(value, list):
        kept = [_shrink(v, longest, items, cut, depth + 1) for v in value[:items]]
        if len(value) > items:
            cut.add("items")
            kept.append(f"… {len(value) - items} more")
        return kept
    if isinstance(value, dict):
        pairs = list(value.items())
        shrunk = {
            text.truncate(str(k), longest): _shrink(v, longest, items, cut, depth + 1)
            for k, v in pairs[:items]
        }
        if len(pairs) > items:
            cut.add("items")
            shrunk["…"] = f"{len(pairs) - items} more"
        return shrunk
    return value
