"""A bundle as a Slack incoming-webhook message (Block Kit), within Slack's limits (pure).

Limits kept: at most 50 blocks (a message has at most a dozen), a header of at most 150 characters, a
section text of at most 3000 and a field of at most 2000, counted as Slack counts (UTF-16 units); what
does not fit ends with ``… (truncated)``. Every value from alerts, probes or rules is mrkdwn-escaped
(``text.mrkdwn``: ``&``, ``<``, ``>`` as entities, bare URLs defanged to ``http[:]//…``), so ``<!channel>``,
``<@U123>`` or ``<http://evil|click>`` in a label shows as text; commands sit whole in code blocks they
cannot close, or a ``#`` note says why one is not shown (``text.mrkdwn_code``). Text objects are
``verbatim``: Slack auto-links no URL and parses no ``@here`` of its own accord. The only links are the
bundle's: http(s) alert links (generatorURL, runbook_url) that passed the allow-list when the bundle was
built or the rule's runbook_url — shown, never fetched; a refused one is defanged text with the reason —
and the incident and
approve/reject links from our own base URL, which also link the incidents this one is linked to. The only
mentions are the ones the caller passes (``mentions``: the escalation level's Slack user and user-group
ids from settings), on a line of their own before the message; a value that is not such an id is dropped,
never shown raw. Events: ``trigger``, ``escalate[:N]``, ``acknowledge``, ``mitigated``, ``resolve``,
``announce`` (automatic remediation in progress; the bundle's reason says which action, verifying until
when) and ``linked`` (the reason says to which incident). Never sends anything.

The Slack app's message (``render(…, console_url=…)``, sent by ``channels.slack_app``) is the same message
with an actions block instead of the approve/reject links (``controls``): Approve / Reject per proposal
(``action_id`` ``approve:<action id>``, value ``<incident id>:<action id>``; Approve asks to confirm),
Acknowledge while the incident is open and unacknowledged, and an "Open in console" link; its headline says
how the incident stands (``app_event``), and each later event adds a short thread reply (``reply``).
Button labels are plain text, never mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from service.escalation.render import text
from service.model import incidents

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

#: Slack user ids (``U…``, ``W…`` on Enterprise Grid) and user-group ids (``S…``): the only mentions made
_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
_GROUP = re.compile(r"S[A-Z0-9]{2,20}")

HEADLINES = {
    "trigger": "TRIGGERED",
    "escalate": "ESCALATED",
    "acknowledge": "ACKNOWLEDGED",
    "mitigated": "MITIGATED",
    "resolve": "RESOLVED",
    "announce": "AUTOMATIC REMEDIATION IN PROGRESS",
    "linked": "LINKED",
}


def headline(bundle: incidents.Bundle, event: str) -> str:
    """``RESOLVED``, ``ESCALATED to level 2`` … for an outbox event (``escalate:2`` or ``escalate``)."""
    name, level = text.event_name(event)
    reminder = text.reminder_headline(event)
    if reminder is not None:
        return reminder
    if name not in HEADLINES:
        raise ValueError(f"no Slack headline for event {event!r}")
    if name == "escalate":
        return f"ESCALATED to level {level if level is not None else bundle.escalation_level}"
    return HEADLINES[name]


def title(bundle: incidents.Bundle) -> str:
    """The bundle's title, or what can stand in for an empty one."""
    fallback = f"{bundle.runbook}: {text.target_key(bundle.target)}" if bundle.runbook else ""
    return text.one_line(bundle.title or fallback or bundle.incident_id or "incident")


def mention_line(mentions: Sequence[str]) -> str:
    """``<@U123> <!subteam^S456>`` for the user and user-group ids among ``mentions``; anything else is
    dropped, never shown raw (a configured value is still not trusted to be an id)."""
    shown = []
    for value in mentions:
        if _USER.fullmatch(value):
            shown.append(f"<@{value}>")
        elif _GROUP.fullmatch(value):
            shown.append(f"<!subteam^{value}>")
    return " ".join(dict.fromkeys(shown))


def render(
    bundle: incidents.Bundle,
    *,
    event: str,
    mentions: Sequence[str] = (),
    console_url: str | None = None,
    acknowledged: bool = False,
) -> dict[str, Any]:
    """The webhook payload: ``text`` (the notification fallback) and the ``blocks``; with ``mentions``
    (Slack user or user-group ids) the message starts with a line mentioning them. With ``console_url``
    (the Slack app's message) the proposals carry no POST links: an actions block of buttons follows them
    (``controls``)."""
    head = text.drilled(bundle, f"{headline(bundle, event)}: {title(bundle)}")
    who = mention_line(mentions)
    blocks = [
        {"type": "section", "text": mrkdwn(fit(who, SECTION))} if who else None,
        {
            "type": "header",
            "text": {"type": "plain_text", "text": text.truncate(text.mrkdwn(head), HEADER), "emoji": True},
        },
        _facts(bundle),
        _section("Paging", _paging(bundle)),
        _section("Reason", [text.mrkdwn_line(bundle.reason, 2 * ITEM)] if bundle.reason else []),
        {"type": "divider"},
        _section("Findings", [_finding(f) for f in bundle.findings]),
        _section("Actions tried", [_action(a) for a in bundle.actions]),
        _proposals(bundle, buttons=console_url is not None),
        controls(bundle, console_url=console_url, acknowledged=acknowledged) if console_url else None,
        _section("Suggested commands", _commands(bundle)),
        _section("Alerts", [_alert(a) for a in bundle.alerts]),
        _links(bundle),
    ]
    fallback = text.mrkdwn(head) if not who else f"{who} {text.mrkdwn(head)}"
    return {
        "text": fit(fallback, FALLBACK),
        "blocks": [b for b in blocks if b][:MAX_BLOCKS],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def bare(incident_id: str, *, event: str) -> dict[str, Any]:
    """The message for an incident that has no bundle (it was never handed over): the headline and the
    incident id."""
    name, level = text.event_name(event)
    reminder = text.reminder_headline(event)
    if name not in HEADLINES and reminder is None:
        raise ValueError(f"no Slack headline for event {event!r}")
    shown = reminder or (
        f"{HEADLINES[name]} to level {level}" if name == "escalate" and level is not None else HEADLINES[name]
    )
    head = f"{shown}: incident {text.one_line(incident_id)}"
    return {
        "text": text.truncate(text.mrkdwn(head), FALLBACK),
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": text.truncate(text.mrkdwn(head), HEADER),
                    "emoji": True,
                },
            }
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _facts(bundle: incidents.Bundle) -> dict[str, Any]:
    target = bundle.target
    target_line = text.mrkdwn_line(text.target_text(target), ITEM)
    if not target.valid:
        target_line += f"\ninvalid: {text.mrkdwn_line(target.error, ITEM)}"
    runbook = text.clip(bundle.runbook, ITEM) or "—"
    escalation = f"level {text.clip(bundle.escalation_level, 10)}"
    if bundle.next_escalation_level is not None:
        escalation += (
            f"; level {text.clip(bundle.next_escalation_level, 10)} at "
            f"{text.clock(bundle.next_escalation_at)} unless acknowledged"
        )
    mttr = text.mttr_line(bundle.state, text.number(bundle.elapsed_s), text.number(bundle.mttr_target_s))
    fields = [
        ("Severity", text.mrkdwn_line(bundle.severity, ITEM) or "—"),
        ("State", text.mrkdwn_line(bundle.state, ITEM) or "—"),
        ("Target", target_line),
        ("Runbook", text.slack_link(runbook, bundle.links.get("runbook"))),
        (f"MTTR ({text.clock_origin(bundle.started_at)})", text.mrkdwn(mttr)),
        ("Escalation", text.mrkdwn(escalation)),
        ("Rule", text.mrkdwn_line(bundle.rule, ITEM) or "—"),
        ("Started", text.mrkdwn(text.clock(bundle.started_at)) if bundle.started_at else "—"),
        ("Detected", text.mrkdwn(text.clock(bundle.detected_at or bundle.opened_at))),
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


def _paging(bundle: incidents.Bundle) -> list[str]:
    """When it pages, the incident it was caused by and those it caused (linked to our own incident
    URLs), and who already holds the page."""
    own = bundle.links.get("incident")
    lines = [text.mrkdwn(text.page_due_text(bundle.page_due_at))] if bundle.page_due_at else []
    cause = bundle.caused_by
    if cause is not None:
        lines.append(
            f"Caused by incident {_incident(own, cause.incident_id)}"
            f" ({text.mrkdwn_line(text.ref_note(cause), ITEM)}) — paged through it"
        )
    if bundle.effects:
        shown = [
            f"{_incident(own, r.incident_id)} ({text.mrkdwn_line(text.ref_note(r), ITEM)})"
            for r in bundle.effects[:10]
        ]
        more = f" and {len(bundle.effects) - 10} more" if len(bundle.effects) > 10 else ""
        lines.append(f"Linked incidents: {', '.join(shown)}{more}")
    if bundle.holders:
        lines.append(f"Already paged: {text.mrkdwn_line(text.holders_text(bundle.holders), 2 * ITEM)}")
    return lines


def _incident(own: str | None, incident_id: str) -> str:
    """An incident id as a link to our own incident URL (the id escaped either way)."""
    return text.slack_link(text.clip(incident_id, 100), text.incident_url(own, incident_id))


def _finding(finding: incidents.Finding) -> str:
    status = text.clip(finding.status, 20).upper()
    name = text.mrkdwn_line(finding.id, 100)
    probe = text.mrkdwn_line(finding.probe, 100)
    summary = text.mrkdwn_line(finding.summary, ITEM)
    return f"• {text.mrkdwn(status)} — {name} ({probe})" + (f": {summary}" if summary else "")


def _action(action: incidents.ActionRecord) -> str:
    name = text.mrkdwn_line(action.action, 100)
    safety = text.mrkdwn_line(action.safety, 20)
    status = text.mrkdwn_line(action.status.replace("_", " "), 40)
    line = f"• {name} ({safety}) — *{status}*"
    if action.guard:
        line += f" by guard {text.mrkdwn_line(action.guard, 60)}"
    when = action.finished_at or action.started_at or action.requested_at
    if when:
        line += f" at {text.mrkdwn(text.clock(when))}"
    if action.reason:
        line += f": {text.mrkdwn_line(action.reason, ITEM)}"
    if action.approver:
        verb = "rejected" if action.status == "rejected" else "approved"
        line += f" ({verb} by {text.mrkdwn_line(action.approver, 100)})"
    for request in text.requests_of(action.request)[:3]:
        line += f"\n      ↳ {text.mrkdwn_line(request, 200)}"
    return line


def _proposals(bundle: incidents.Bundle, *, buttons: bool = False) -> dict[str, Any] | None:
    entries = []
    for proposal in bundle.proposals:
        pair = {} if buttons else bundle.approve_links.get(proposal.id, {})
        line = f"• {text.mrkdwn_line(proposal.action, 100)} ({text.mrkdwn_line(proposal.safety, 20)})"
        if proposal.reason:
            line += f": {text.mrkdwn_line(proposal.reason, ITEM)}"
        choices = [text.slack_link(verb, pair.get(verb)) for verb in ("approve", "reject") if pair.get(verb)]
        if choices:
            line += " — " + " · ".join(choices)
        entries.append(line)
    if not entries:
        return None
    if buttons:
        return _section("Awaiting approval", [*entries, "_approve or reject with the buttons below_"])
    entries.append("_approve or reject on the incident's page in the console (approver sign-in)_")
    return _section("Awaiting approval", entries)


def _commands(bundle: incidents.Bundle) -> list[str]:
    """One code block per command; a hazard is marked on the line before its command."""
    entries = []
    for suggestion in bundle.suggested:
        block = f"```\n{text.mrkdwn_code(suggestion.command, COMMAND)}\n```"
        if suggestion.hazard:
            block = f"⚠ hazard: {text.mrkdwn_line(suggestion.hazard, ITEM)}\n{block}"
        entries.append(block)
    return entries


def _alert(alert: incidents.AlertRef) -> str:
    name = text.mrkdwn_line(alert.name, 100) or "(unnamed)"
    line = f"• *{name}* {text.mrkdwn_line(alert.status, 20)}"
    line += f" since {text.mrkdwn(text.clock(alert.starts_at))}"
    links = [
        text.slack_link(label, url)
        for label, url in (("graph", alert.generator_url), ("runbook", alert.runbook_url))
        if text.safe_link(url)
    ]
    if links:
        line += " — " + " · ".join(links)
    for refused in alert.refused_links:
        name = text.mrkdwn_line(refused.name, 40)
        shown = text.mrkdwn_line(refused.text, 300)
        line += f"\n      {name}: {shown} _(not a link: {text.mrkdwn_line(refused.reason, 100)})_"
    if alert.labels:
        pairs = ", ".join(f"{text.clip(k, 100)}={text.clip(v, 200)}" for k, v in sorted(alert.labels.items()))
        line += f"\n      labels: {text.mrkdwn_line(pairs, 2 * ITEM)}"
    for key in ("summary", "description"):
        if alert.annotations.get(key):
            line += f"\n      {key}: {text.mrkdwn_line(alert.annotations.get(key), ITEM)}"
    return line


def _links(bundle: incidents.Bundle) -> dict[str, Any] | None:
    links = bundle.links
    incident = "incident " + text.clip(bundle.incident_id, 100)
    shown = [
        text.slack_link(incident if name == "incident" else name, url)
        for name, url in links.items()
        if text.safe_link(url)
    ]
    if "incident" not in links and bundle.incident_id:
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


# ---- the Slack app's message: buttons, thread replies ---------------------------------------------------

#: proposals that get buttons (two each); an actions block holds at most 25 elements
BUTTONED = 10
BUTTON_TEXT = 75
#: Slack ``action_id`` prefixes of our buttons; the value is ``<incident id>:<action id>`` (approve, reject)
#: or the incident id (acknowledge)
APPROVE, REJECT, ACKNOWLEDGE, OPEN = "approve:", "reject:", "acknowledge", "open"


def controls(bundle: incidents.Bundle, *, console_url: str, acknowledged: bool = False) -> dict[str, Any]:
    """The actions block: Approve / Reject per proposal and Acknowledge while the incident is open (and
    not acknowledged), and always an "Open in console" link to ``console_url``."""
    elements: list[dict[str, Any]] = []
    if bundle.state != "resolved":
        for proposal in bundle.proposals[:BUTTONED]:
            value = f"{bundle.incident_id}:{proposal.id}"
            approve = _button(f"Approve {proposal.action}", APPROVE + proposal.id, value, style="primary")
            approve["confirm"] = {
                "title": _plain("Run this action?"),
                "text": _plain(text.truncate(f"{proposal.action} on {text.target_key(bundle.target)}", 300)),
                "confirm": _plain("Approve"),
                "deny": _plain("Cancel"),
            }
            elements += [
                approve,
                _button(f"Reject {proposal.action}", REJECT + proposal.id, value, style="danger"),
            ]
        if not acknowledged:
            elements.append(_button("Acknowledge", ACKNOWLEDGE, bundle.incident_id))
    elements.append(
        {"type": "button", "text": _plain("Open in console"), "url": console_url, "action_id": OPEN}
    )
    return {"type": "actions", "block_id": "remediator", "elements": elements}


def _button(label: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button = {"type": "button", "text": _plain(label), "action_id": action_id[:255], "value": value[:2000]}
    return {**button, "style": style} if style else button


def _plain(content: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text.truncate(text.one_line(content), BUTTON_TEXT), "emoji": False}


def app_event(state: str, *, acknowledged: bool, held: bool = False) -> str:
    """The event whose headline the Slack app's message shows for the incident's ``state`` (the message is
    updated in place, so its headline says how the incident stands, not which event came last); ``held``:
    a linked incident paged through its cause (escalation level 0)."""
    if state in ("resolved", "mitigated"):
        return "resolve" if state == "resolved" else "mitigated"
    if acknowledged:
        return "acknowledge"
    if held:
        return "linked"
    return {"remediating": "announce", "verifying": "announce", "escalated": "escalate"}.get(state, "trigger")


def reply(bundle: incidents.Bundle | None, event: str, *, acknowledged_by: str | None = None) -> str:
    """The short thread reply that says what happened (``acknowledged by alice``, ``RESOLVED in …``)."""
    name, level = text.event_name(event)
    if name == "acknowledge":
        return f"Acknowledged by {text.mrkdwn_line(acknowledged_by or 'someone', 100)}"
    if bundle is None:
        return text.mrkdwn(HEADLINES.get(name, name.upper()) + (f" to level {level}" if level else ""))
    shown = name in HEADLINES or text.reminder_headline(event) is not None
    head = text.mrkdwn(text.drilled(bundle, headline(bundle, event) if shown else name.upper()))
    if name in ("resolve", "mitigated"):
        elapsed, target = text.number(bundle.elapsed_s), text.number(bundle.mttr_target_s)
        return f"{head} — {text.mrkdwn(text.mttr_line(bundle.state, elapsed, target))}"
    return f"{head} — {text.mrkdwn_line(bundle.reason, ITEM)}" if bundle.reason else head


def note(message: str) -> str:
    """A sentence of ours (``kube.rollout_undo approved by alice: succeeded``) as a thread reply."""
    return text.mrkdwn_line(message, 2 * ITEM)
