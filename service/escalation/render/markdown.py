"""A bundle as Markdown (pure): the generic webhook's ``markdown`` field, and what a human reads.

GitHub-flavoured Markdown: a facts table, the reason, a findings table, the actions tried, the proposals
with their approve/reject links, the suggested commands in ``sh`` fences (a hazardous command in a fence
of its own under its hazard), the alerts and the links. User data is escaped by ``text.md_text``
(backslashes before ``\\ ` * _ [ ] ( ) | ~ # ! { } $``; ``<``, ``>`` and ``&`` as entities; line breaks
gone; bare URLs, ``www.`` and e-mail addresses defanged so GFM auto-links nothing), so it forms no HTML,
link, image, heading or table cell; commands stay literal inside fences they cannot close, or are replaced
by a ``#`` note when they cannot be shown whole (``text.command``). The only links are the bundle's: our
own incident and approve/reject URLs (and those of the incidents this one is linked to: "Caused by …
— paged through it", "Linked incidents"), alert URLs that passed the allow-list when the bundle was built
and the rule's runbook_url; an alert URL that did not is shown as defanged text with the reason. The facts
show when the alert started and when it was detected, the MTTR clock counted from the start, when the
incident pages unless mitigated, and who already holds the page. The table and list helpers here are
shared with the incident report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.escalation.render import text
from service.model import incidents

#: the longest piece of user data in a cell or a line
ITEM = 400
#: the longest command shown (a fence cannot be escaped; a longer command is replaced by a note, not cut)
COMMAND = 4000


def render(bundle: incidents.Bundle) -> str:
    """The bundle as Markdown."""
    parts = [f"# {text.md_text(text.drilled(bundle, _title(bundle)), 500)}", facts_table(_facts(bundle))]
    if bundle.reason:
        parts.append(f"**Reason:** {text.md_text(bundle.reason, 2 * ITEM)}")
    parts += ["## Findings", findings_table(bundle.findings) if bundle.findings else "_No findings._"]
    if bundle.actions:
        parts += ["## Actions tried", "\n".join(action_item(a) for a in bundle.actions)]
    proposals = _proposals(bundle)
    if proposals:
        parts += ["## Awaiting approval", proposals]
    if bundle.suggested:
        parts += ["## Suggested commands", command_blocks(bundle.suggested)]
    if bundle.alerts:
        parts += ["## Alerts", "\n".join(_alert(a) for a in bundle.alerts)]
    links = [f"- {text.md_link(name, url)}" for name, url in bundle.links.items() if text.safe_link(url)]
    if links:
        parts += ["## Links", "\n".join(links)]
    return "\n\n".join(parts) + "\n"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GFM table of cells already escaped (``text.md_text``/``md_code``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def facts_table(rows: list[tuple[str, str]]) -> str:
    """A two-column table of facts; values already escaped."""
    return table(["", ""], [[f"**{name}**", value] for name, value in rows])


def findings_table(findings: Sequence[incidents.Finding | Mapping[str, Any]]) -> str:
    """The bundle's findings, or a findings round of the incident detail (the report)."""
    rows = [
        [
            text.md_text(text.string(text.field(f, "status")).upper(), 20),
            text.md_code(text.field(f, "id"), 100),
            text.md_code(text.field(f, "probe"), 100),
            text.md_text(text.field(f, "summary"), ITEM),
        ]
        for f in findings
    ]
    return table(["Status", "ID", "Probe", "Summary"], rows)


def action_item(record: incidents.ActionRecord | Mapping[str, Any]) -> str:
    """``- `kube.rollout_restart` (safe) — **succeeded** at …: reason`` with its requests and result; a
    bundle's action record, or a journal row of the incident detail (the report)."""

    def get(name: str) -> Any:
        return text.field(record, name)

    line = (
        f"- {text.md_code(get('action'), 100)} ({text.md_text(get('safety'), 20)}) — "
        f"**{text.md_text(text.string(get('status')).replace('_', ' '), 40)}**"
    )
    if get("guard"):
        line += f" by guard {text.md_code(get('guard'), 60)}"
    when = get("finished_at") or get("started_at") or get("requested_at")
    if when:
        line += f" at {text.clock(when)}"
    if get("reason"):
        line += f": {text.md_text(get('reason'), ITEM)}"
    details = []
    if get("approver"):
        verb = "rejected" if get("status") == "rejected" else "approved"
        details.append(f"{verb} by {text.md_text(get('approver'), 100)}")
    if get("dry_run"):
        details.append("dry run: nothing was written")
    details += [f"request: {text.md_code(r, 300)}" for r in text.requests_of(get("request"))[:5]]
    result = text.result_text(get("result"))
    if result:
        details.append(f"result: {text.md_text(result, 300)}")
    return "\n".join([line, *(f"  - {d}" for d in details)])


def command_blocks(suggested: Sequence[incidents.SuggestedCommand]) -> str:
    """Runbook commands in ``sh`` fences, in order; a hazardous one alone in its fence under its hazard."""
    blocks: list[str] = []
    plain: list[str] = []
    for suggestion in suggested:
        command = text.command(suggestion.command, COMMAND)
        if not suggestion.hazard:
            plain.append(command)
            continue
        if plain:
            blocks.append(text.md_fence(plain))
            plain = []
        blocks.append(f"**⚠ hazard:** {text.md_text(suggestion.hazard, ITEM)}")
        blocks.append(text.md_fence([command]))
    if plain:
        blocks.append(text.md_fence(plain))
    return "\n\n".join(blocks)


def _title(bundle: incidents.Bundle) -> str:
    return (
        bundle.title
        or " ".join(p for p in (bundle.runbook, text.target_key(bundle.target)) if p)
        or f"Incident {bundle.incident_id}"
    )


def _facts(bundle: incidents.Bundle) -> list[tuple[str, str]]:
    target = bundle.target
    target_cell = text.md_text(text.target_text(target), ITEM)
    if target.selector:
        target_cell += f" (selector {text.md_code(target.selector, 200)})"
    if not target.valid:
        target_cell += f" — **invalid:** {text.md_text(target.error, ITEM)}"
    escalation = f"level {text.md_text(bundle.escalation_level, 10) or '—'}"
    if bundle.next_escalation_level is not None:
        escalation += (
            f"; level {text.md_text(bundle.next_escalation_level, 10)} at "
            f"{text.md_text(text.clock(bundle.next_escalation_at))} unless acknowledged"
        )
    mttr = text.mttr_line(bundle.state, text.number(bundle.elapsed_s), text.number(bundle.mttr_target_s))
    started = text.md_text(text.clock(bundle.started_at)) if bundle.started_at else "—"
    return [
        ("Severity", text.md_text(bundle.severity, 40)),
        ("State", text.md_text(bundle.state, 40)),
        ("Target", target_cell),
        ("Rule", text.md_code(bundle.rule, 200)),
        ("Runbook", text.md_link(text.clip(bundle.runbook, ITEM) or "runbook", bundle.links.get("runbook"))),
        ("Started", started),
        ("Detected", text.md_text(text.clock(bundle.detected_at or bundle.opened_at))),
        (f"MTTR ({text.clock_origin(bundle.started_at)})", text.md_text(mttr)),
        ("Escalation", escalation),
        *_paging(bundle),
        ("Incident", text.md_code(bundle.incident_id, 100)),
    ]


def _paging(bundle: incidents.Bundle) -> list[tuple[str, str]]:
    """When it pages, the incident it was caused by and those it caused (linked to our own incident
    URLs), and who already holds the page."""
    own = bundle.links.get("incident")
    rows = [("Paging", text.md_text(text.page_due_text(bundle.page_due_at)))] if bundle.page_due_at else []
    cause = bundle.caused_by
    if cause is not None:
        note = text.md_text(text.ref_note(cause), ITEM)
        rows.append(
            ("Caused by", f"incident {incident_link(own, cause.incident_id)} ({note}) — paged through it")
        )
    if bundle.effects:
        shown = [
            f"{incident_link(own, r.incident_id)} ({text.md_text(text.ref_note(r), ITEM)})"
            for r in bundle.effects[:20]
        ]
        more = f" and {len(bundle.effects) - 20} more" if len(bundle.effects) > 20 else ""
        rows.append(("Linked incidents", ", ".join(shown) + more))
    if bundle.holders:
        rows.append(("Already paged", text.md_text(text.holders_text(bundle.holders), 2 * ITEM)))
    return rows


def incident_link(own: str | None, incident_id: str, suffix: str = "") -> str:
    """An incident id as a link to our own URL of it (``own`` is the bundle's incident link; ``suffix``
    ``/report`` links its report); the escaped id alone when there is no such URL."""
    return text.md_link(text.clip(incident_id, 100), text.incident_url(own, incident_id, suffix))


def _proposals(bundle: incidents.Bundle) -> str:
    lines = []
    for proposal in bundle.proposals:
        pair = bundle.approve_links.get(proposal.id, {})
        line = f"- {text.md_code(proposal.action, 100)} ({text.md_text(proposal.safety, 20)})"
        if proposal.reason:
            line += f": {text.md_text(proposal.reason, ITEM)}"
        choices = [text.md_link(verb, pair.get(verb)) for verb in ("approve", "reject") if pair.get(verb)]
        if choices:
            line += " — " + " · ".join(choices)
        lines.append(line)
    if not lines:
        return ""
    return "\n".join(lines) + "\n\n_Approve or reject on the incident's console page (approver sign-in)._"


def _alert(alert: incidents.AlertRef) -> str:
    line = f"- **{text.md_text(alert.name, 100) or '(unnamed)'}** {text.md_text(alert.status, 20)}"
    line += f" since {text.md_text(text.clock(alert.starts_at))}"
    links = [
        text.md_link(label, url)
        for label, url in (("graph", alert.generator_url), ("runbook", alert.runbook_url))
        if text.safe_link(url)
    ]
    if links:
        line += " — " + " · ".join(links)
    details = [
        f"{text.md_text(r.name, 40)}: {text.md_text(r.text, 300)}"
        f" _(not a link: {text.md_text(r.reason, 100)})_"
        for r in alert.refused_links
    ]
    if alert.labels:
        pairs = ", ".join(f"{text.clip(k, 100)}={text.clip(v, 200)}" for k, v in sorted(alert.labels.items()))
        details.append(f"labels: {text.md_text(pairs, 2 * ITEM)}")
    details += [
        f"{key}: {text.md_text(alert.annotations.get(key), ITEM)}"
        for key in ("summary", "description")
        if alert.annotations.get(key)
    ]
    return "\n".join([line, *(f"  - {d}" for d in details)])
