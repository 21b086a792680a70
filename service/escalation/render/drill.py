"""The drill's part of an incident report (pure): what would have been done, and how long each step took.

A runbook drill (``POST /v1/drills``, ``remediator drill RULE``) runs the full diagnosis and decision with
every action dry-run. Its report says, from the incident detail: the actions that would have been applied
(the dry-run records, with the exact requests the engine journaled and did not send), the proposals a human
would have been asked to approve, the steps a guard would have blocked; then a table of every step — the
opening, each probe of the first diagnosis round, the decision, each action, the hand-over — with how long
it took. User data is escaped as in ``render.markdown``. Reads no clock.
"""

from __future__ import annotations

import json
from typing import Any

from service.escalation.render import markdown, text

INTRO = (
    "**This incident is a runbook drill.** The rule's scenario alert ran through the full diagnosis and "
    "decision; every action was a dry run: nothing was written to the cluster, nothing paged or published."
)

#: the longest request body shown (after JSON encoding)
BODY = 600

#: action statuses → how the drill's report names them, in the order shown
GROUPS = (
    ("skipped", "Would have been applied automatically (dry run: the exact requests, not sent)"),
    ("awaiting_approval", "Would have been proposed to a human"),
    ("blocked", "Would have been blocked by a guard"),
)


def section(detail: dict[str, Any]) -> list[str]:
    """The report's drill parts (headings and bodies), to follow its facts."""
    return [
        "## Drill: what would have been done",
        _would(text.objects(detail.get("actions"))),
        "## Drill: how long each step took",
        _durations(detail),
    ]


def _would(actions: list[dict[str, Any]]) -> str:
    parts = [INTRO]
    for status, heading in GROUPS:
        shown = [_item(a) for a in actions if a.get("status") == status]
        if shown:
            parts += [f"**{heading}:**", "\n".join(shown)]
    if len(parts) == 1:
        parts.append("_No action would have been applied or proposed: a human would have been handed it._")
    return "\n\n".join(parts)


def _item(action: dict[str, Any]) -> str:
    """The action as the report lists it, and the body of each request it would have sent."""
    bodies = [
        f"  - body of {text.md_code(_line(r), 200)}: {text.md_code(_json(r['body']), BODY)}"
        for r in text.objects(action.get("request"))[:5]
        if r.get("body") is not None
    ]
    return "\n".join([markdown.action_item(action), *bodies])


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _line(request: dict[str, Any]) -> str:
    return f"{text.string(request.get('method'))} {text.string(request.get('path'))}"


def took(seconds: float | None) -> str:
    """``350 ms`` under ten seconds, else ``1 min 5 s``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if abs(seconds) < 10 else text.duration(seconds)


def _between(start: Any, end: Any) -> float | None:
    begun, ended = text.moment(start), text.moment(end)
    return (ended - begun).total_seconds() if begun and ended else None


def _durations(detail: dict[str, Any]) -> str:
    """One row per step: the timeline's events (each timed from the one before, the first from the alert's
    start), then each probe of the first round and each action."""
    rows: list[list[str]] = []
    previous: Any = detail.get("started_at")
    for event in text.objects(detail.get("timeline")):
        rows.append(
            [
                text.md_code(event.get("kind"), 60),
                text.md_text(event.get("message"), markdown.ITEM),
                took(_between(previous, event.get("at"))),
            ]
        )
        previous = event.get("at")
    rounds = text.objects(detail.get("rounds"))
    for finding in text.objects(rounds[0].get("findings")) if rounds else []:
        ms = text.number(finding.get("duration_ms"))
        rows.append(
            [
                f"probe {text.md_code(finding.get('id'), 60)} ({text.md_code(finding.get('probe'), 60)})",
                text.md_text(
                    f"{text.string(finding.get('status'))}: {text.string(finding.get('summary'))}", 300
                ),
                took(ms / 1000 if ms is not None else None),
            ]
        )
    for action in text.objects(detail.get("actions")):
        rows.append(
            [
                f"action {text.md_code(action.get('action'), 100)}",
                text.md_text(text.string(action.get("status")).replace("_", " "), 40),
                took(_between(action.get("started_at"), action.get("finished_at"))),
            ]
        )
    if not rows:
        return "_No step was recorded._"
    return markdown.table(["Step", "What", "Took"], rows)
