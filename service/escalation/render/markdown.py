"""A bundle as Markdown (pure): the generic webhook's ``markdown`` field, and what a human reads.

GitHub-flavoured Markdown: a facts table, the reason, a findings table, the actions tried, the proposals
with their approve/reject links, the suggested commands in ``sh`` fences (a hazardous command in a fence
of its own under its hazard), the alerts and the links. User data is escaped by ``text.md_text``
(backslashes before ``\\ ` * _ [ ] ( ) | ~ # ! { } $``; ``<``, ``>`` and ``&`` as entities; line breaks
gone; bare URLs, ``www.`` and e-mail addresses defanged so GFM auto-links nothing), so it forms no HTML,
link, image, heading or table cell; commands stay literal inside fences they cannot close, or are replaced
by a ``#`` note when they cannot be shown whole (``text.command``). The only links are the bundle's: our
own incident and approve/reject URLs, and alert URLs that passed the allow-list when the bundle was built;
an alert URL that did not is shown as defanged text with the reason. The table and list helpers here are
shared with the incident report.
"""

from __future__ import annotations

from typing import Any

from service.escalation.render import text

#: the longest piece of user data in a cell or a line
ITEM = 400
#: the longest command shown (a fence cannot be escaped; a longer command is replaced by a note, not cut)
COMMAND = 4000


def render(bundle: dict[str, Any]) -> str:
    """The bundle document (``Bundle.model_dump(mode="json")``) as Markdown."""
    parts = [f"# {text.md_text(_title(bundle), 500)}", facts_table(_facts(bundle))]
    if bundle.get("reason"):
        parts.append(f"**Reason:** {text.md_text(bundle.get('reason'), 2 * ITEM)}")
    findings = text.objects(bundle.get("findings"))
    parts += ["## Findings", findings_table(findings) if findings else "_No findings._"]
    actions = text.objects(bundle.get("actions"))
    if actions:
        parts += ["## Actions tried", "\n".join(action_item(a) for a in actions)]
    proposals = _proposals(bundle)
    if proposals:
        parts += ["## Awaiting approval", proposals]
    suggested = text.objects(bundle.get("suggested"))
    if suggested:
        parts += ["## Suggested commands", command_blocks(suggested)]
    alerts = text.objects(bundle.get("alerts"))
    if alerts:
        parts += ["## Alerts", "\n".join(_alert(a) for a in alerts)]
    links = [
        f"- {text.md_link(text.string(name), url)}"
        for name, url in text.mapping(bundle.get("links")).items()
        if text.safe_link(url)
    ]
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


def findings_table(findings: list[dict[str, Any]]) -> str:
    rows = [
        [
            text.md_text(text.string(f.get("status")).upper(), 20),
            text.md_code(f.get("id"), 100),
            text.md_code(f.get("probe"), 100),
            text.md_text(f.get("summary"), ITEM),
        ]
        for f in findings
    ]
    return table(["Status", "ID", "Probe", "Summary"], rows)


def action_item(action: dict[str, Any]) -> str:
    """``- `kube.rollout_restart` (safe) — **succeeded** at …: reason`` with its requests and result."""
    line = (
        f"- {text.md_code(action.get('action'), 100)} ({text.md_text(action.get('safety'), 20)}) — "
        f"**{text.md_text(text.string(action.get('status')).replace('_', ' '), 40)}**"
    )
    if action.get("guard"):
        line += f" by guard {text.md_code(action.get('guard'), 60)}"
    when = action.get("finished_at") or action.get("started_at") or action.get("requested_at")
    if when:
        line += f" at {text.clock(when)}"
    if action.get("reason"):
        line += f": {text.md_text(action.get('reason'), ITEM)}"
    details = []
    if action.get("approver"):
        verb = "rejected" if action.get("status") == "rejected" else "approved"
        details.append(f"{verb} by {text.md_text(action.get('approver'), 100)}")
    if action.get("dry_run"):
        details.append("dry run: nothing was written")
    details += [f"request: {text.md_code(r, 300)}" for r in text.requests_of(action)[:5]]
    result = text.result_text(action.get("result"))
    if result:
        details.append(f"result: {text.md_text(result, 300)}")
    return "\n".join([line, *(f"  - {d}" for d in details)])


def command_blocks(suggested: list[dict[str, Any]]) -> str:
    """Runbook commands in ``sh`` fences, in order; a hazardous one alone in its fence under its hazard."""
    blocks: list[str] = []
    plain: list[str] = []
    for suggestion in suggested:
        command = text.command(suggestion.get("command"), COMMAND)
        if not suggestion.get("hazard"):
            plain.append(command)
            continue
        if plain:
            blocks.append(text.md_fence(plain))
            plain = []
        blocks.append(f"**⚠ hazard:** {text.md_text(suggestion.get('hazard'), ITEM)}")
        blocks.append(text.md_fence([command]))
    if plain:
        blocks.append(text.md_fence(plain))
    return "\n\n".join(blocks)


def _title(bundle: dict[str, Any]) -> str:
    target = text.mapping(bundle.get("target"))
    return (
        text.string(bundle.get("title"))
        or " ".join(p for p in (text.string(bundle.get("runbook")), text.target_key(target)) if p)
        or f"Incident {text.string(bundle.get('incident_id'))}"
    )


def _facts(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    target = text.mapping(bundle.get("target"))
    target_cell = text.md_text(text.target_text(target), ITEM)
    if target.get("selector"):
        target_cell += f" (selector {text.md_code(target.get('selector'), 200)})"
    if target and target.get("valid") is False:
        target_cell += f" — **invalid:** {text.md_text(target.get('error'), ITEM)}"
    links = text.mapping(bundle.get("links"))
    escalation = f"level {text.md_text(bundle.get('escalation_level'), 10) or '—'}"
    if bundle.get("next_escalation_level") is not None:
        escalation += (
            f"; level {text.md_text(bundle.get('next_escalation_level'), 10)} at "
            f"{text.md_text(text.clock(bundle.get('next_escalation_at')))} unless acknowledged"
        )
    mttr = text.mttr_line(
        text.string(bundle.get("state")),
        text.number(bundle.get("elapsed_s")),
        text.number(bundle.get("mttr_target_s")),
    )
    return [
        ("Severity", text.md_text(bundle.get("severity"), 40)),
        ("State", text.md_text(bundle.get("state"), 40)),
        ("Target", target_cell),
        ("Rule", text.md_code(bundle.get("rule"), 200)),
        ("Runbook", text.md_link(text.clip(bundle.get("runbook"), ITEM) or "runbook", links.get("runbook"))),
        ("Opened", text.md_text(text.clock(bundle.get("opened_at")))),
        ("MTTR", text.md_text(mttr)),
        ("Escalation", escalation),
        ("Incident", text.md_code(bundle.get("incident_id"), 100)),
    ]


def _proposals(bundle: dict[str, Any]) -> str:
    links = text.mapping(bundle.get("approve_links"))
    lines = []
    for proposal in text.objects(bundle.get("proposals")):
        pair = text.mapping(links.get(text.string(proposal.get("id"))))
        line = f"- {text.md_code(proposal.get('action'), 100)} ({text.md_text(proposal.get('safety'), 20)})"
        if proposal.get("reason"):
            line += f": {text.md_text(proposal.get('reason'), ITEM)}"
        choices = [text.md_link(verb, pair.get(verb)) for verb in ("approve", "reject") if pair.get(verb)]
        if choices:
            line += " — " + " · ".join(choices)
        lines.append(line)
    if not lines:
        return ""
    return "\n".join(lines) + "\n\n_Approve and reject take a POST with an approver token._"


def _alert(alert: dict[str, Any]) -> str:
    line = (
        f"- **{text.md_text(alert.get('name'), 100) or '(unnamed)'}** {text.md_text(alert.get('status'), 20)}"
    )
    if alert.get("starts_at"):
        line += f" since {text.md_text(text.clock(alert.get('starts_at')))}"
    links = [
        text.md_link(label, alert.get(key))
        for label, key in (("graph", "generator_url"), ("runbook", "runbook_url"))
        if text.safe_link(alert.get(key))
    ]
    if links:
        line += " — " + " · ".join(links)
    details = [
        f"{text.md_text(r.get('name'), 40)}: {text.md_text(r.get('text'), 300)}"
        f" _(not a link: {text.md_text(r.get('reason'), 100)})_"
        for r in text.objects(alert.get("refused_links"))
    ]
    labels = text.mapping(alert.get("labels"))
    if labels:
        pairs = ", ".join(f"{text.clip(k, 100)}={text.clip(v, 200)}" for k, v in sorted(labels.items()))
        details.append(f"labels: {text.md_text(pairs, 2 * ITEM)}")
    annotations = text.mapping(alert.get("annotations"))
    details += [
        f"{key}: {text.md_text(annotations.get(key), ITEM)}"
        for key in ("summary", "description")
        if annotations.get(key)
    ]
    return "\n".join([line, *(f"  - {d}" for d in details)])
