"""The Markdown incident report for a post-mortem (pure; deterministic for a given detail and ``now``).

Renders the incident detail of ``records.incidents.incident_detail`` (plus ``notifications`` when the API
added them) and the incident's bundle, typed (None when it was never handed over): the facts, the times
to mitigate and to resolve against the MTTR target (an open incident: the time so far), the timeline (the
incident's events and when each alert started firing, in time order, with the time since the clock
started), the findings at opening and after, the actions taken with their results and approvers, the
notifications, and the runbook's post-incident checklist in its three time bands, each item ``- [x]``
with who ticked it and when (the ``checklist.ticked`` events of the timeline) or ``- [ ]``, and a count
per band; it ends with the "Runbook update" (``render.runbook_update``: what the incident taught).

The clock: MTTR, time to mitigate and to resolve count from the alert's start (the detail's or the bundle's
``started_at``: the earliest ``startsAt`` of the incident's alerts), or from when the incident was opened
when that is unknown; when the service detected it is shown separately. Incidents this one is linked to
(``caused_by``, ``effects``) link to their own reports under the bundle's incident link, our base URL.

User data — and every time read from the detail, which a clock did not format — is escaped as in
``render.markdown`` (``text.md_text``: no link, image, HTML, heading or table break, bare URLs defanged).
Reads no clock: ``now`` comes in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from service.escalation.render import drill, markdown, runbook_update, text
from service.model import incidents, rules

ITEM = markdown.ITEM

#: an item of the checklist shown: the rule's (``ChecklistItem``) or the bundle's (``ChecklistEntry``)
Item = rules.ChecklistItem | incidents.ChecklistEntry


class Clock(NamedTuple):
    """Where the report's times count from: the alert's start when known (``from_alert``), else the
    opening; ``opened`` is when the service detected the incident."""

    origin: datetime | None
    opened: datetime | None
    from_alert: bool


class Tick(NamedTuple):
    by: str
    at: Any


def render(
    detail: dict[str, Any],
    bundle: incidents.Bundle | None,
    *,
    checklist: Sequence[rules.ChecklistItem],
    now: float,
) -> str:
    """The report; ``checklist`` is the rule's post-incident checklist (``rule.checklist.items()``; else
    the bundle's entries)."""
    target: incidents.TargetRef | Mapping[str, Any] = text.mapping(detail.get("target")) or (
        bundle.target if bundle is not None else {}
    )
    runbook = text.string(detail.get("runbook") or (bundle.runbook if bundle else "")) or "Incident"
    clock = _clock(detail, bundle)
    items: Sequence[Item] = checklist or (bundle.checklist if bundle else [])
    drilled = bool(detail.get("drill") or (bundle is not None and bundle.drill))
    title = f"Incident report: {text.md_text(runbook, 200)} on {text.md_text(text.target_text(target), 300)}"
    parts = [
        f"# {text.DRILL} {title}" if drilled else f"# {title}",
        markdown.facts_table(_facts(detail, bundle, target) + _related(detail, bundle)),
        *(drill.section(detail) if drilled else []),
        "## Time to recover",
        _recovery(detail, bundle, clock, now),
        "## Timeline",
        _timeline(detail, clock, {i.id: i.text for i in items}),
        *_findings(detail, bundle),
        "## Actions taken",
        "\n".join(markdown.action_item(a) for a in text.objects(detail.get("actions")))
        or "_No action was planned or taken._",
    ]
    notifications = text.objects(detail.get("notifications"))
    if notifications:
        parts += ["## Notifications", _notifications(notifications)]
    ticks = _ticks(detail, bundle)
    parts += [
        "## Post-incident checklist",
        _checklist(items, ticks, clock),
        runbook_update.section(detail, bundle, items=items, ticked=ticks, origin=clock.origin),
        f"_Report generated at {text.clock(now)}._",
    ]
    return "\n\n".join(parts) + "\n"


def _clock(detail: dict[str, Any], bundle: incidents.Bundle | None) -> Clock:
    opened = text.moment(detail.get("opened_at")) or (bundle.opened_at if bundle else None)
    started = text.moment(detail.get("started_at")) or (bundle.started_at if bundle else None)
    return Clock(origin=started or opened, opened=opened, from_alert=started is not None)


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
    started = pick("started_at", bundle and bundle.started_at)
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
        ("Alert started", text.md_text(text.clock(started)) if started else "—"),
        ("Detected", text.md_text(text.clock(pick("opened_at", bundle and bundle.opened_at)))),
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
    rows.extend(_war_room(bundle))
    return rows


def _war_room(bundle: incidents.Bundle | None) -> list[tuple[str, str]]:
    """The war room's row: its name linked to the channel, and the video bridge; none without a room."""
    room = bundle.war_room if bundle is not None else None
    if room is None:
        return []
    bridge = f" · {text.md_link('video bridge', room.bridge_url)}" if room.bridge_url else ""
    return [("War room", text.md_link(room.name, room.url) + bridge)]


def _related(detail: dict[str, Any], bundle: incidents.Bundle | None) -> list[tuple[str, str]]:
    """The incident that caused this one and those it caused, each linked to its report, and who was
    paged."""
    own = bundle.links.get("incident") if bundle is not None else None
    rows = []
    cause = bundle.caused_by if bundle is not None else None
    if cause is not None:
        note = text.md_text(text.ref_note(cause), ITEM)
        link = markdown.incident_link(own, cause.incident_id)
        rows.append(("Caused by", f"incident {link} ({note}) — paged through it"))
    elif isinstance(detail.get("caused_by"), str) and detail["caused_by"]:
        link = markdown.incident_link(own, detail["caused_by"])
        rows.append(("Caused by", f"incident {link} — paged through it"))
    effects = bundle.effects if bundle is not None else []
    if effects:
        shown = [_effect(own, r) for r in effects[:50]]
        more = f" and {len(effects) - 50} more" if len(effects) > 50 else ""
        rows.append(("Linked incidents", ", ".join(shown) + more))
    if bundle is not None and bundle.holders:
        rows.append(("Paged", text.md_text(text.holders_text(bundle.holders), 2 * ITEM)))
    return rows


def _effect(own: str | None, ref: incidents.LinkRef) -> str:
    link = markdown.incident_link(own, ref.incident_id)
    return f"{link} ({text.md_text(text.ref_note(ref), ITEM)})"


def _since(origin: datetime | None, value: Any) -> float | None:
    moment = text.moment(value)
    return (moment - origin).total_seconds() if moment and origin else None


def _recovery(detail: dict[str, Any], bundle: incidents.Bundle | None, clock: Clock, now: float) -> str:
    target = text.number(detail.get("mttr_target_s"))
    if target is None and bundle is not None:
        target = text.number(bundle.mttr_target_s)
    lines = [f"- **MTTR target:** {text.duration(target) if target else 'none'}", _counted(clock)]
    origin = clock.origin
    escalated = _since(origin, detail.get("escalated_at"))
    if escalated is not None:
        lines.append(f"- **Escalated** to humans after {text.duration(escalated)}")
    acked = _since(origin, detail.get("acked_at"))
    if acked is not None:
        lines.append(f"- **Acknowledged** after {text.duration(acked)}")
    mitigated = _since(origin, detail.get("mitigated_at"))
    if mitigated is not None:
        lines.append(
            f"- **Mitigated** in {text.duration(mitigated)} — {text.against_target(mitigated, target)}"
        )
    elif escalated is not None:
        lines.append("- **Not mitigated automatically**: humans took over")
    resolved = _since(origin, detail.get("resolved_at"))
    if resolved is not None:
        lines.append(f"- **Resolved** in {text.duration(resolved)} — {text.against_target(resolved, target)}")
    elif origin is not None:
        so_far = now - origin.timestamp()
        lines.append(
            f"- **Still open** after {text.duration(so_far)} so far — "
            f"{text.against_target(so_far, target, still_open=True)}"
        )
    return "\n".join(line for line in lines if line)


def _counted(clock: Clock) -> str:
    """Where the times count from: ``the alert's start (…); detected … later``, or the opening."""
    if clock.origin is None:
        return ""
    if not clock.from_alert:
        return f"- **Counted from** detection ({text.clock(clock.origin)}): the alert's start is unknown"
    line = f"- **Counted from** the alert's start ({text.clock(clock.origin)})"
    late = _since(clock.origin, clock.opened)
    if late is not None:
        line += f"; **detected** {text.duration(late)} {'later' if late >= 0 else 'earlier'}"
    return line


def _timeline(detail: dict[str, Any], clock: Clock, names: Mapping[str, str]) -> str:
    """The events and the alerts' starts, in time order (events of equal time keep their recorded order)."""
    rows: list[tuple[datetime | None, int, str, str, str]] = []
    for index, event in enumerate(text.objects(detail.get("timeline"))):
        rows.append(
            (text.moment(event.get("at")), index, text.string(event.get("at")), *_event(event, names))
        )
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
        offset = (at - clock.origin).total_seconds() if at and clock.origin else None
        relative = "" if offset is None else ("−" if offset < 0 else "+") + text.duration(offset)
        table_rows.append(
            [
                text.md_text(text.clock(at) if at else raw, 40),
                relative,
                text.md_code(kind, 60),
                text.md_text(message, 2 * ITEM),
            ]
        )
    since = "Since alert start" if clock.from_alert else "Since opening"
    return markdown.table(["Time (UTC)", since, "Event", "Details"], table_rows)


def _event(event: dict[str, Any], names: Mapping[str, str]) -> tuple[str, str]:
    """The kind and the details of one timeline event: its message and the data worth reading."""
    kind = text.string(event.get("kind"))
    message = text.string(event.get("message"))
    data = text.mapping(event.get("data"))
    if not message.strip() and kind in _SENTENCES:  # the lifecycle writes one; an old or odd event may not
        return kind, _SENTENCES[kind](data, names)
    detail = _DETAILS.get(kind)
    extra = detail(data, names) if detail is not None else ""
    if extra:
        message = f"{message} — {extra}" if message else extra
    return kind, message


def _steps(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    steps = [
        f"{text.string(s.get('action'))} {text.string(s.get('status'))}"
        + (f" ({text.string(s.get('guard'))})" if s.get("guard") else "")
        for s in text.objects(data.get("steps"))
    ]
    return f"steps: {', '.join(steps)}" if steps else ""


def _notified(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    if not isinstance(data.get("channels"), list):
        return ""
    channels = ", ".join(text.string(c) for c in data["channels"])
    return f"level {text.string(data.get('level'))}, notified: {channels or 'none'}"


def _statuses_found(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    if not isinstance(data.get("findings"), dict):
        return ""
    return ", ".join(f"{k} {text.string(v)}" for k, v in data["findings"].items())


def _other(data: dict[str, Any], key: str) -> str:
    """``incident X (rule)``: the other incident an event names under ``key``, with its rule."""
    other = text.string(data.get(key))
    if not other:
        return ""
    return f"incident {other}" + (f" ({text.clip(data.get('rule'), 200)})" if data.get("rule") else "")


def _linked(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    if data.get("effect"):
        return f"{_other(data, 'effect')} linked to this one: this one caused it, and pages for both"
    cause = _other(data, "caused_by")
    return f"linked: caused by {cause}, pages through it" if cause else "linked to another incident"


def _unlinked(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    cause = _other(data, "caused_by")
    return f"no longer paged through {cause}: stands alone" if cause else "stands alone: pages on its own"


def _announced(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    until = data.get("until") or data.get("verify_until")
    parts = [
        "automatic remediation in progress"
        + (f": {text.clip(data.get('action'), 100)}" if data.get("action") else ""),
        f"verifying until {text.hhmm(until)}" if text.moment(until) else "",
        _page_due(data, _names),
    ]
    return ", ".join(p for p in parts if p)


def _page_due(data: dict[str, Any], _names: Mapping[str, str]) -> str:
    due = data.get("page_due_at") or data.get("at")
    return text.page_due_text(due) if text.moment(due) else ""


def _ticked(data: dict[str, Any], names: Mapping[str, str]) -> str:
    item = text.string(data.get("item"))
    by = text.string(data.get("by"))
    return f"checklist: “{names.get(item) or item or '?'}” ticked" + (f" by {by}" if by else "")


#: what each kind of timeline event adds to its message, from its data
_DETAILS: dict[str, Callable[[dict[str, Any], Mapping[str, str]], str]] = {
    "decision": _steps,
    "incident.escalated": _notified,
    "diagnosis.finished": _statuses_found,
}
#: the sentence of an event of this round's kinds when it came without a message (the lifecycle writes
#: a whole one: appending the data to it would say everything twice)
_SENTENCES: dict[str, Callable[[dict[str, Any], Mapping[str, str]], str]] = {
    "incident.linked": _linked,
    "incident.unlinked": _unlinked,
    "incident.announced": _announced,
    "incident.page_due": _page_due,
    "checklist.ticked": _ticked,
}


def _ticks(detail: dict[str, Any], bundle: incidents.Bundle | None) -> dict[str, Tick]:
    """Who ticked each checklist item and when: the timeline's ``checklist.ticked`` events (the first
    tick of an item counts), else what the bundle's entries recorded."""
    ticks = {
        e.id: Tick(e.ticked_by, e.ticked_at)
        for e in (bundle.checklist if bundle is not None else [])
        if e.ticked_by
    }
    seen: set[str] = set()
    for event in text.objects(detail.get("timeline")):
        data = text.mapping(event.get("data"))
        item = text.string(data.get("item"))
        if event.get("kind") == "checklist.ticked" and item and item not in seen:
            seen.add(item)
            ticks[item] = Tick(text.string(data.get("by")), event.get("at"))
    return ticks


def _checklist(items: Sequence[Item], ticks: Mapping[str, Tick], clock: Clock) -> str:
    """The checklist band by band (the runbooks' time bands), each with how many of its items are done."""
    parts = []
    for band in rules.BANDS:
        in_band = [i for i in items if i.band == band and text.clip(i.text, 1000)]
        if not in_band:
            continue
        done = sum(1 for i in in_band if i.id in ticks)
        lines = [_checklist_item(i, ticks.get(i.id), clock) for i in in_band]
        parts.append(f"### {rules.BAND_TITLES[band]} — {done} of {len(in_band)} done\n\n" + "\n".join(lines))
    return "\n\n".join(parts) or "_The runbook has no post-incident checklist._"


def _checklist_item(item: Item, tick: Tick | None, clock: Clock) -> str:
    if tick is None:
        return f"- [ ] {text.md_text(item.text)}"
    by = f" by {text.md_text(tick.by, 100)}" if tick.by else ""
    return f"- [x] {text.md_text(item.text)} — ticked{by} at {text.md_text(_tick_time(tick.at, clock))}"


def _tick_time(at: Any, clock: Clock) -> str:
    """``12:00 UTC`` on the day the incident opened; with the date on a later day (the long-term band
    runs for a week)."""
    moment = text.moment(at)
    if moment is None:
        return text.clip(at, 40)
    day = clock.opened or clock.origin
    return (
        text.hhmm(moment)
        if day is not None and moment.date() == day.date()
        else text.clock(moment)[:16] + " UTC"
    )


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
