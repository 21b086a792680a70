"""A bundle as a Slack incoming-webhook message (Block Kit), within Slack's limits (pure).

Limits kept: at most 50 blocks (a message has at most a dozen), a header of at most 150 characters, a
section text of at most 3000 and a field of at most 2000, counted as Slack counts (UTF-16 units); what
does not fit ends with ``… (truncated)``. Every value from alerts, probes or rules is mrkdwn-escaped
(``text.mrkdwn``: ``&``, ``<``, ``>`` as entities, bare URLs defanged to ``http[:]//…``), so ``<!channel>``,
``<@U123>`` or ``<http://evil|click>`` in a label shows as text; commands sit whole in code blocks they
cannot close, or a ``#`` note says why one is not shown (``text.mrkdwn_code``). Text objects are
``verbatim``: Slack auto-links no URL and parses no ``@here`` of its own accord. The only links are the
bundle's: http(s) alert links (generatorURL, runbook_url) that passed the allow-list when the bundle was
built — shown, never fetched; a refused one is defanged text with the reason — and the incident and
approve/reject links from our own base URL. Never sends anything.
"""

from __future__ import annotations

from typing import Any

from service.escalation.render import text

MAX_BLOCKS = 50
HEADER = 150
SECTION = 3000
FIELD = 2000
FALLBACK = 1000
#: the longest piece of user data in one line of a section (a summary, a reason, a label set)
ITEM = 400
#: the longest command in a code block, escaped (``matching.templates.COMMAND_LIMIT`` characters fit
#: unless most are ``&``); a section still holds it with its hazard line
COMMAND = 2000

HEADLINES = {
    "trigger": "TRIGGERED",
    "escalate": "ESCALATED",
    "acknowledge": "ACKNOWLEDGED",
    "mitigated": "MITIGATED",
    "resolve": "RESOLVED",
}


def headline(bundle: dict[str, Any], event: str) -> str:
    """``RESOLVED``, ``ESCALATED to level 2`` … for an outbox event (``escalate:2`` or ``escalate``)."""
    name, level = text.event_name(event)
    if name not in HEADLINES:
        raise ValueError(f"no Slack headline for event {event!r}")
    if name == "escalate":
        shown = level if level is not None else bundle.get("escalation_level")
        return f"ESCALATED to level {shown}" if shown is not None else "ESCALATED"
    return HEADLINES[name]


def title(bundle: dict[str, Any]) -> str:
    """The bundle's title, or what can stand in for it in a partial document."""
    runbook = text.string(bundle.get("runbook"))
    target = text.mapping(bundle.get("target"))
    fallback = f"{runbook}: {text.target_key(target)}" if runbook and target else ""
    return text.one_line(
        text.string(bundle.get("title")) or fallback or text.string(bundle.get("incident_id")) or "incident"
    )


def render(bundle: dict[str, Any], *, event: str) -> dict[str, Any]:
    """The webhook payload: ``text`` (the notification fallback) and the ``blocks``."""
    head = f"{headline(bundle, event)}: {title(bundle)}"
    blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": text.truncate(text.mrkdwn(head), HEADER), "emoji": True},
        },
        _facts(bundle),
        _section(
            "Reason", [text.mrkdwn_line(bundle.get("reason"), 2 * ITEM)] if bundle.get("reason") else []
        ),
        {"type": "divider"},
        _section("Findings", [_finding(f) for f in text.objects(bundle.get("findings"))]),
        _section("Actions tried", [_action(a) for a in text.objects(bundle.get("actions"))]),
        _proposals(bundle),
        _section("Suggested commands", _commands(bundle)),
        _section("Alerts", [_alert(a) for a in text.objects(bundle.get("alerts"))]),
        _links(bundle),
    ]
    return {
        "text": text.truncate(text.mrkdwn(head), FALLBACK),
        "blocks": [b for b in blocks if b][:MAX_BLOCKS],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _facts(bundle: dict[str, Any]) -> dict[str, Any]:
    target = text.mapping(bundle.get("target"))
    target_line = text.mrkdwn_line(text.target_text(target), ITEM)
    if target and target.get("valid") is False:
        target_line += f"\ninvalid: {text.mrkdwn_line(target.get('error'), ITEM)}"
    runbook = text.clip(bundle.get("runbook"), ITEM) or "—"
    links = text.mapping(bundle.get("links"))
    level = text.clip(bundle.get("escalation_level"), 10)
    escalation = f"level {level}" if level else "—"
    if bundle.get("next_escalation_level") is not None:
        escalation += (
            f"; level {text.clip(bundle.get('next_escalation_level'), 10)} at "
            f"{text.clock(bundle.get('next_escalation_at'))} unless acknowledged"
        )
    mttr = text.mttr_line(
        text.string(bundle.get("state")),
        text.number(bundle.get("elapsed_s")),
        text.number(bundle.get("mttr_target_s")),
    )
    fields = [
        ("Severity", text.mrkdwn_line(bundle.get("severity"), ITEM) or "—"),
        ("State", text.mrkdwn_line(bundle.get("state"), ITEM) or "—"),
        ("Target", target_line),
        ("Runbook", text.slack_link(runbook, links.get("runbook"))),
        ("MTTR", text.mrkdwn(mttr)),
        ("Escalation", text.mrkdwn(escalation)),
        ("Rule", text.mrkdwn_line(bundle.get("rule"), ITEM) or "—"),
        ("Opened", text.mrkdwn(text.clock(bundle.get("opened_at"))) or "—"),
    ]
    return {
        "type": "section",
        "fields": [mrkdwn(fit(f"*{name}*\n{value}", FIELD)) for name, value in fields],
    }


def _section(heading: str, entries: list[str]) -> dict[str, Any] | None:
    """A section of whole entries (one per finding, action …) that fits 3000 units; the rest is counted."""
    if not entries:
        return None
    body = f"*{heading}*"
    for index, entry in enumerate(entries):
        rest = len(entries) - index
        tail = f"\n{text.MARKER}: {rest - 1} more not shown" if rest > 1 else ""
        if text.units(body) + 1 + text.units(entry) + text.units(tail) <= SECTION:
            body += "\n" + entry
            continue
        if index == 0:  # a single entry too long even alone: cut it (entries are kept far shorter)
            body += "\n" + fit(entry, SECTION - text.units(body) - 1 - 60)
            rest -= 1
        if rest:
            body += f"\n{text.MARKER}: {rest} more not shown"
        break
    return {"type": "section", "text": mrkdwn(fit(body, SECTION))}


def _finding(finding: dict[str, Any]) -> str:
    status = text.clip(finding.get("status"), 20).upper() or "?"
    name = text.mrkdwn_line(finding.get("id"), 100)
    probe = text.mrkdwn_line(finding.get("probe"), 100)
    summary = text.mrkdwn_line(finding.get("summary"), ITEM)
    return f"• {text.mrkdwn(status)} — {name} ({probe})" + (f": {summary}" if summary else "")


def _action(action: dict[str, Any]) -> str:
    name = text.mrkdwn_line(action.get("action"), 100)
    safety = text.mrkdwn_line(action.get("safety"), 20)
    status = text.mrkdwn_line(text.string(action.get("status")).replace("_", " "), 40)
    line = f"• {name} ({safety}) — *{status}*"
    if action.get("guard"):
        line += f" by guard {text.mrkdwn_line(action.get('guard'), 60)}"
    when = action.get("finished_at") or action.get("started_at") or action.get("requested_at")
    if when:
        line += f" at {text.mrkdwn(text.clock(when))}"
    if action.get("reason"):
        line += f": {text.mrkdwn_line(action.get('reason'), ITEM)}"
    if action.get("approver"):
        verb = "rejected" if action.get("status") == "rejected" else "approved"
        line += f" ({verb} by {text.mrkdwn_line(action.get('approver'), 100)})"
    for request in text.requests_of(action)[:3]:
        line += f"\n      ↳ {text.mrkdwn_line(request, 200)}"
    return line


def _proposals(bundle: dict[str, Any]) -> dict[str, Any] | None:
    links = text.mapping(bundle.get("approve_links"))
    entries = []
    for proposal in text.objects(bundle.get("proposals")):
        pair = text.mapping(links.get(text.string(proposal.get("id"))))
        line = (
            f"• {text.mrkdwn_line(proposal.get('action'), 100)} "
            f"({text.mrkdwn_line(proposal.get('safety'), 20)})"
        )
        if proposal.get("reason"):
            line += f": {text.mrkdwn_line(proposal.get('reason'), ITEM)}"
        choices = [text.slack_link(verb, pair.get(verb)) for verb in ("approve", "reject") if pair.get(verb)]
        if choices:
            line += " — " + " · ".join(choices)
        entries.append(line)
    if not entries:
        return None
    entries.append("_approve and reject take a POST with an approver token_")
    return _section("Awaiting approval", entries)


def _commands(bundle: dict[str, Any]) -> list[str]:
    """One code block per command; a hazard is marked on the line before its command."""
    entries = []
    for suggestion in text.objects(bundle.get("suggested")):
        block = f"```\n{text.mrkdwn_code(text.string(suggestion.get('command')), COMMAND)}\n```"
        if suggestion.get("hazard"):
            block = f"⚠ hazard: {text.mrkdwn_line(suggestion.get('hazard'), ITEM)}\n{block}"
        entries.append(block)
    return entries


def _alert(alert: dict[str, Any]) -> str:
    name = text.mrkdwn_line(alert.get("name"), 100) or "(unnamed)"
    line = f"• *{name}* {text.mrkdwn_line(alert.get('status'), 20)}"
    if alert.get("starts_at"):
        line += f" since {text.mrkdwn(text.clock(alert.get('starts_at')))}"
    links = [
        text.slack_link(label, alert.get(key))
        for label, key in (("graph", "generator_url"), ("runbook", "runbook_url"))
        if text.safe_link(alert.get(key))
    ]
    if links:
        line += " — " + " · ".join(links)
    for refused in text.objects(alert.get("refused_links")):
        name = text.mrkdwn_line(refused.get("name"), 40)
        shown = text.mrkdwn_line(refused.get("text"), 300)
        line += f"\n      {name}: {shown} _(not a link: {text.mrkdwn_line(refused.get('reason'), 100)})_"
    labels = text.mapping(alert.get("labels"))
    if labels:
        pairs = ", ".join(f"{text.clip(k, 100)}={text.clip(v, 200)}" for k, v in sorted(labels.items()))
        line += f"\n      labels: {text.mrkdwn_line(pairs, 2 * ITEM)}"
    annotations = text.mapping(alert.get("annotations"))
    for key in ("summary", "description"):
        if annotations.get(key):
            line += f"\n      {key}: {text.mrkdwn_line(annotations.get(key), ITEM)}"
    return line


def _links(bundle: dict[str, Any]) -> dict[str, Any] | None:
    links = text.mapping(bundle.get("links"))
    incident = "incident " + text.clip(bundle.get("incident_id"), 100)
    shown = [
        text.slack_link(incident if name == "incident" else name, url)
        for name, url in links.items()
        if text.safe_link(url)
    ]
    if "incident" not in links and bundle.get("incident_id"):
        shown.insert(0, text.mrkdwn(incident))
    if not shown:
        return None
    line = shown[0]
    for part in shown[1:]:
        if text.units(line) + 3 + text.units(part) > SECTION:
            break
        line += " · " + part
    return {"type": "context", "elements": [mrkdwn(fit(line, SECTION))]}


def mrkdwn(content: str) -> dict[str, Any]:
    """A mrkdwn text object that Slack takes verbatim: no auto-linked URLs, no parsed ``@here`` or
    ``#channel`` in user data; only our explicit ``<url|label>`` links are links."""
    return {"type": "mrkdwn", "text": content, "verbatim": True}


def fit(content: str, limit: int) -> str:
    """mrkdwn ``content`` cut to ``limit`` units without leaving half a link: user ``<`` are all escaped,
    so an unclosed ``<`` is one of our links, and the cut moves before it."""
    cut = text.truncate(content, limit)
    if cut == content:
        return cut
    kept = cut[: -len(text.MARKER)] if cut.endswith(text.MARKER) else cut
    if kept.rfind("<") > kept.rfind(">"):
        kept = kept[: kept.rfind("<")]
    return kept + text.MARKER
