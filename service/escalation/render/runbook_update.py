"""The report's last section, "Runbook update": what one incident taught, as the input of the runbooks'
monthly update (pure; deterministic for a given detail and bundle).

It lists, each under its own heading and only when there is something to say: the probes that failed,
errored or were skipped (their latest summary; statuses known only from the ``diagnosis.finished`` event
are listed without one), the guards that blocked or skipped an automatic action (code and reason; a drill's
forced ``dry_run`` is no lesson and is left out), the proposals humans approved (candidates to make
``safe``), rejected or left undecided, the other steps humans took in the service (every timeline event that
names who did it — ``by`` or ``approver`` — other than decisions and checklist ticks: an acknowledgement, a
published update…), and the checklist items still open.

User data is escaped as in ``render.markdown`` (``text.md_text``, ``text.md_code``). Reads no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from service.escalation.render import markdown, text
from service.model import incidents, rules

ITEM = markdown.ITEM
#: probe statuses a runbook should look at: the probe found the fault, broke, or could not run
_LESSONS = ("failed", "error", "skipped")
_PROBE_NOTES = {
    "failed": "found the fault",
    "error": "the probe itself failed: fix its params or the access it needs",
    "skipped": "did not run: check why (dependency down, deadline, invalid target)",
}
#: action statuses after a human approved a proposal, and how each reads
_APPROVED = {
    "approved": "not run yet",
    "running": "still running",
    "succeeded": "it succeeded",
    "failed": "it failed",
    "unknown": "its result is unknown",
}
#: human events another list of the section (or the checklist above it) already shows
_LISTED_APART = ("checklist.ticked", "action.approved", "action.rejected")
#: how many entries a list shows at most
_MAX = 50


def section(
    detail: Mapping[str, Any],
    bundle: incidents.Bundle | None,
    *,
    items: Sequence[rules.ChecklistItem | incidents.ChecklistEntry],
    ticked: Collection[str],
    origin: datetime | None,
) -> str:
    """``## Runbook update`` and its lists; ``items`` is the checklist shown, ``ticked`` the ids done and
    ``origin`` where the report's times count from."""
    drill = bool(detail.get("drill") or (bundle is not None and bundle.drill))
    actions = text.objects(detail.get("actions")) or [
        a.model_dump(mode="json") for a in (bundle.actions if bundle is not None else [])
    ]
    parts = [
        ("Probes that failed, errored or were skipped", _probes(detail, bundle)),
        ("Guards that blocked automatic actions", _guards(actions, drill=drill)),
        ("Proposals humans decided", _proposals(actions)),
        ("Steps humans took", _human_steps(detail, origin)),
        ("Checklist items still open", _open_items(items, ticked)),
    ]
    rule = text.md_code(detail.get("rule") or (bundle.rule if bundle is not None else "?"), 200)
    lines = [
        "## Runbook update",
        f"_What this incident taught, for the monthly update of rule {rule}'s runbook._",
    ]
    shown = [f"### {title}\n\n{body}" for title, body in parts if body]
    return "\n\n".join(
        lines + (shown or ["_Nothing to update: every probe answered, nothing was blocked or done by hand._"])
    )


def _bounded(lines: list[str]) -> str:
    more = [f"- … and {len(lines) - _MAX} more"] if len(lines) > _MAX else []
    return "\n".join(lines[:_MAX] + more)


def _probes(detail: Mapping[str, Any], bundle: incidents.Bundle | None) -> str:
    """Each probe id and lesson status once, with the latest summary seen for it."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}  # (id, status) → (probe, summary)
    opening = next(
        (
            text.mapping(text.mapping(e.get("data")).get("findings"))
            for e in text.objects(detail.get("timeline"))
            if e.get("kind") == "diagnosis.finished"
        ),
        {},
    )
    for probe_id, status in opening.items():
        seen[(text.string(probe_id), text.string(status))] = ("", "")
    rounds = [text.objects(r.get("findings")) for r in text.objects(detail.get("rounds"))]
    found: list[incidents.Finding | Mapping[str, Any]] = [
        *(bundle.findings if bundle is not None else []),
        *(f for kept in rounds for f in kept),
        *text.objects(detail.get("findings")),
    ]
    for finding in found:
        key = (text.string(text.field(finding, "id")), text.string(text.field(finding, "status")))
        seen[key] = (text.string(text.field(finding, "probe")), text.string(text.field(finding, "summary")))
    lines = []
    for (probe_id, status), (probe, summary) in seen.items():
        if status not in _LESSONS:
            continue
        line = f"- {text.md_code(probe_id, 100)}" + (f" ({text.md_code(probe, 100)})" if probe else "")
        line += f" — **{status}**, {_PROBE_NOTES[status]}"
        lines.append(line + (f": {text.md_text(summary, ITEM)}" if summary else ""))
    return _bounded(lines)


def _guards(actions: list[dict[str, Any]], *, drill: bool) -> str:
    lines = []
    for action in actions:
        guard = text.string(action.get("guard"))
        if not guard or action.get("status") not in ("blocked", "skipped") or (drill and guard == "dry_run"):
            continue
        reason = text.string(action.get("reason"))
        lines.append(
            f"- {text.md_code(action.get('action'), 100)} blocked by {text.md_code(guard, 60)}"
            + (f": {text.md_text(reason, ITEM)}" if reason else "")
        )
    return _bounded(lines)


def _proposals(actions: list[dict[str, Any]]) -> str:
    lines = []
    for action in actions:
        status = text.string(action.get("status"))
        name = text.md_code(action.get("action"), 100)
        who = text.md_text(action.get("approver"), 100)
        if status == "rejected":
            lines.append(f"- {name} **rejected** by {who}: keep it a proposal, or drop it from the rule")
        elif status in _APPROVED and action.get("approver"):
            safe = " — a candidate to make `safe`" if status == "succeeded" else ""
            lines.append(f"- {name} **approved** by {who} ({_APPROVED[status]}){safe}")
        elif status == "awaiting_approval":
            lines.append(f"- {name} proposed, **never decided**: should the runbook drop or reword it?")
    return _bounded(lines)


def _human_steps(detail: Mapping[str, Any], origin: datetime | None) -> str:
    lines = []
    for event in text.objects(detail.get("timeline")):
        data = text.mapping(event.get("data"))
        who = data.get("by") or data.get("approver")
        if not who or event.get("kind") in _LISTED_APART:
            continue
        at = text.moment(event.get("at"))
        when = f"+{text.duration((at - origin).total_seconds())} " if at and origin and at >= origin else ""
        message = text.string(event.get("message")) or text.string(event.get("kind"))
        lines.append(f"- {when}{text.md_code(event.get('kind'), 60)} {text.md_text(message, ITEM)}")
    return _bounded(lines)


def _open_items(
    items: Sequence[rules.ChecklistItem | incidents.ChecklistEntry], ticked: Collection[str]
) -> str:
    lines = [
        f"- {text.md_text(item.text)} — {rules.BAND_TITLES[item.band]}"
        for item in items
        if item.id not in ticked and text.clip(item.text, 1000)
    ]
    return _bounded(lines)
