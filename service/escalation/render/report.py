"""The Markdown incident report for a post-mortem (pure; deterministic for a given detail and ``now``).

Renders the incident detail of ``records.incidents.incident_detail`` (plus ``notifications`` when the API
added them) and the incident's bundle, typed (None when it was never handed over): the facts, the times
to mitigate and to resolve against the MTTR target (an open incident: the time so far), the timeline (the
incident's events and when each alert started firing, in time order, with the time since opening), the
findings at opening and after, the actions taken with their results and approvers, the notifications, and
the runbook's post-incident checklist as ``- [ ]`` items. User data — and every time read from the
detail, which a clock did not format — is escaped as in ``render.markdown`` (``text.md_text``: no link,
image, HTML, heading or table break, bare URLs defanged). Reads no clock: ``now`` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from service.escalation.render import markdown, text
from service.model import incidents

ITEM = markdown.ITEM


def render(
    detail: dict[str, Any], bundle: incidents.Bundle | None, *, checklist: list[str], now: float
) -> str:
    """The report; ``checklist`` is the runbook's post-incident checklist (else the bundle's)."""
    target: incidents.TargetRef | Mapping[str, Any] = text.mapping(detail.get("target")) or (
        bundle.target if bundle is not None else {}
    )
    runbook = text.string(detail.get("runbook") or (bundle.runbook if bundle else "")) or "Incident"
    opened = text.moment(detail.get("opened_at")) or (bundle.opened_at if bundle else None)
    parts = [
        f"# Incident report: {text.md_text(runbook, 200)} on {text.md_text(text.target_text(target), 300)}",
        markdown.facts_table(_facts(detail, bundle, target)),
        "## Time to recover",
        _recovery(detail, bundle, opened, now),
        "## Timeline",
        _timeline(detail, opened),
        *_findings(detail, bundle),
        "## Actions taken",
        "\n".join(markdown.action_item(a) for a in text.objects(detail.get("actions")))
        or "_No action was planned or taken._",
    ]
    notifications = text.objects(detail.get("notifications"))
    if notifications:
        parts += ["## Notifications", _notifications(notifications)]
    items = [text.clip(i, 1000) for i in (checklist or (bundle.checklist if bundle else []))]
    parts += [
        "## Post-incident checklist",
        "\n".join(f"- [ ] {text.md_text(item)}" for item in items if item)
        or "_The runbook has no post-incident checklist._",
        f"_Report generated at {text.clock(now)}._",
    ]
    return "\n\n".join(parts) + "\n"


def _facts(
    detail: dict[str, Any],
    bundle: incidents.Bundle | None,
    target: incidents.TargetRef | Mapping[str, Any],
) -> list[tuple[str, str]]:
    def pick(key: str, stored: Any) -> Any:
        """The detail's value, else the bundle's (``stored``)."""
        return detail.get(key) if detail.get(key) is not None else stored

    target_cell = text.md_text(text.target_text(target), ITEM)
    if text.field(target, "valid") is False:
        target_cell += f" — **invalid:** {text.md_text(text.field(target, 'error'), ITEM)}"
    links = bundle.links if bundle is not None else {}
    rows = [
        ("Incident", text.md_code(detail.get("id") or (bundle.incident_id if bundle else None), 100)),
        ("Rule", text.md_code(pick("rule", bundle and bundle.rule), 200)),
        (
            "Runbook",
            text.md_link(
                text.clip(pick("runbook", bundle and bundle.runbook), ITEM) or "runbook", links.get("runbook")
            ),
        ),
        ("Target", target_cell),
        ("Severity", text.md_text(pick("severity", bundle and bundle.severity), 40)),
        ("State", text.md_text(pick("state", bundle and bundle.state), 40)),
        ("Opened", text.md_text(text.clock(pick("opened_at", bundle and bundle.opened_at)))),
    ]
    for name, key in (
        ("Escalated", "escalated_at"),
        ("Mitigated", "mitigated_at"),
        ("Resolved", "resolved_at"),
    ):
        if detail.get(key):
            rows.append((name, text.md_text(text.clock(detail.get(key)))))
    if detail.get("acked_at"):
        by = f" by {text.md_text(detail.get('acked_by'), 100)}" if detail.get("acked_by") else ""
        rows.append(("Acknowledged", f"{text.md_text(text.clock(detail.get('acked_at')))}{by}"))
    level = pick("escalation_level", bundle and bundle.escalation_level)
    if level is not None and detail.get("escalated_at"):
        rows.append(("Escalation level reached", text.md_text(level, 10)))
    reason = pick("reason", bundle and bundle.reason)
    if reason:
        rows.append(("Reason", text.md_text(reason, 2 * ITEM)))
    return rows


def _since(opened: datetime | None, value: Any) -> float | None:
    moment = text.moment(value)
    return (moment - opened).total_seconds() if moment and opened else None


def _recovery(
    detail: dict[str, Any], bundle: incidents.Bundle | None, opened: datetime | None, now: float
) -> str:
    target = text.number(detail.get("mttr_target_s"))
    if target is None and bundle is not None:
        target = text.number(bundle.mttr_target_s)
    lines = [f"- **MTTR target:** {text.duration(target) if target else 'none'}"]
    escalated = _since(opened, detail.get("escalated_at"))
    if escalated is not None:
        lines.append(f"- **Escalated** to humans after {text.duration(escalated)}")
    acked = _since(opened, detail.get("acked_at"))
    if acked is not None:
        lines.append(f"- **Acknowledged** after {text.duration(acked)}")
    mitigated = _since(opened, detail.get("mitigated_at"))
    if mitigated is not None:
        lines.append(
            f"- **Mitigated** in {text.duration(mitigated)} — {text.against_target(mitigated, target)}"
        )
    elif escalated is not None:
        lines.append("- **Not mitigated automatically**: humans took over")
    resolved = _since(opened, detail.get("resolved_at"))
    if resolved is not None:
        lines.append(f"- **Resolved** in {text.duration(resolved)} — {text.against_target(resolved, target)}")
    elif opened is not None:
        so_far = now - opened.timestamp()
        lines.append(
            f"- **Still open** after {text.duration(so_far)} so far — "
            f"{text.against_target(so_far, target, still_open=True)}"
        )
    return "\n".join(lines)


def _timeline(detail: dict[str, Any], opened: datetime | None) -> str:
    """The events and the alerts' starts, in time order (events of equal time keep their recorded order)."""
    rows: list[tuple[datetime | None, int, str, str, str]] = []
    for index, event in enumerate(text.objects(detail.get("timeline"))):
        rows.append((text.moment(event.get("at")), index, text.string(event.get("at")), *_event(event)))
    for index, episode in enumerate(text.objects(detail.get("alerts"))):
        alert = text.mapping(episode.get("alert"))
        name = text.string(text.mapping(alert.get("labels")).get("alertname")) or "alert"
        summary = text.string(text.mapping(alert.get("annotations")).get("summary"))
        started = episode.get("starts_at") or alert.get("startsAt")
        message = f"{name} started firing (Alertmanager startsAt)" + (f": {summary}" if summary else "")
        rows.append((text.moment(started), -1000 + index, text.string(started), "alert.firing", message))
    if not rows:
        return "_No events recorded._"
    rows.sort(key=lambda r: (r[0] is None, r[0].timestamp() if r[0] else 0.0, r[1]))
    table_rows = []
    for at, _index, raw, kind, message in rows:
        offset = (at - opened).total_seconds() if at and opened else None
        relative = "" if offset is None else ("−" if offset < 0 else "+") + text.duration(offset)
        table_rows.append(
            [
                text.md_text(text.clock(at) if at else raw, 40),
                relative,
                text.md_code(kind, 60),
                text.md_text(message, 2 * ITEM),
            ]
        )
    return markdown.table(["Time (UTC)", "Since opening", "Event", "Details"], table_rows)


def _event(event: dict[str, Any]) -> tuple[str, str]:
    """The kind and the details of one timeline event: its message and the data worth reading."""
    kind = text.string(event.get("kind"))
    message = text.string(event.get("message"))
    data = text.mapping(event.get("data"))
    if kind == "decision":
        steps = [
            f"{text.string(s.get('action'))} {text.string(s.get('status'))}"
            + (f" ({text.string(s.get('guard'))})" if s.get("guard") else "")
            for s in text.objects(data.get("steps"))
        ]
        if steps:
            message += f" — steps: {', '.join(steps)}"
    elif kind == "incident.escalated" and isinstance(data.get("channels"), list):
        channels = ", ".join(text.string(c) for c in data["channels"])
        message += f" — level {text.string(data.get('level'))}, notified: {channels or 'none'}"
    elif kind == "diagnosis.finished" and isinstance(data.get("findings"), dict):
        statuses = ", ".join(f"{k} {text.string(v)}" for k, v in data["findings"].items())
        message += f" — {statuses}"
    return kind, message


def _findings(detail: dict[str, Any], bundle: incidents.Bundle | None) -> list[str]:
    """Findings at opening (the first diagnosis) and, when a later check differs, the latest ones.

    The opening statuses come from the ``diagnosis.finished`` event, and their summaries from the latest
    round, a kept earlier round (``rounds``) or the bundle when one is that same diagnosis.
    """
    latest = text.objects(detail.get("findings"))
    first = next(
        (
            e
            for e in text.objects(detail.get("timeline"))
            if e.get("kind") == "diagnosis.finished"
            and isinstance(text.mapping(e.get("data")).get("findings"), dict)
        ),
        None,
    )
    if first is None:
        return ["## Findings", markdown.findings_table(latest) if latest else "_No findings recorded._"]
    opening = text.mapping(text.mapping(first.get("data")).get("findings"))
    heading = f"## Findings at opening ({text.md_text(text.clock(first.get('at')))})"
    if _statuses(latest) == opening:
        return [heading, markdown.findings_table(latest)]
    kept: list[Sequence[incidents.Finding | Mapping[str, Any]]] = [
        text.objects(r.get("findings")) for r in text.objects(detail.get("rounds"))
    ]
    if bundle is not None:
        kept.append(bundle.findings)
    same = next((f for f in kept if _statuses(f) == opening), [])
    if same:
        return [heading, markdown.findings_table(same), "### Latest check", markdown.findings_table(latest)]
    rows = [[text.md_text(text.string(s).upper(), 20), text.md_code(k, 100)] for k, s in opening.items()]
    parts = [heading, markdown.table(["Status", "ID"], rows)]
    if latest:
        parts += ["### Latest check", markdown.findings_table(latest)]
    return parts


def _statuses(findings: Sequence[incidents.Finding | Mapping[str, Any]]) -> dict[str, Any]:
    return {text.string(text.field(f, "id")): text.field(f, "status") for f in findings}


def _notifications(notifications: list[dict[str, Any]]) -> str:
    rows = [
        [
            text.md_text(n.get("channel"), 40),
            text.md_text(n.get("event"), 40),
            text.md_text(n.get("state"), 20),
            text.md_text(n.get("attempts"), 10),
            text.md_text(n.get("last_error"), 200),
        ]
        for n in notifications
    ]
    return markdown.table(["Channel", "Event", "State", "Attempts", "Last error"], rows)
