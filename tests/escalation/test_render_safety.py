"""Hostile alerts through the whole hand-off: suggested commands, the bundle and every rendering.

An alert whose labels and annotations hold anything an alert may hold (control characters, backticks,
brackets, ``](javascript:alert(1))``, ``<http://x|y>``, ``<!here>``, URLs, long strings) and whose links
point anywhere goes through the real path — rule templates render the target and the suggested commands,
``bundle.build`` applies the link allow-list — and then every rendering must hold:

- every suggested command is one line a human can copy: either a ``#`` note or a command in which
  ``shlex.split`` finds the label value as one argument;
- Markdown (the bundle and the incident report) parses, with markdown-it, into no HTML, no image, no link
  whose URL is not on the allow-list, no text GitHub would auto-link, only our own headings, table rows
  with the header's number of cells, and code fences holding exactly the commands;
- Slack stays within Block Kit's limits, and every ``<``/``>`` in its text is one of our links, to an
  allow-listed host;
- PagerDuty keeps its summary within 1024 characters on one line, and links only allow-listed URLs.
"""

from __future__ import annotations

import re
import shlex
import urllib.parse

import markdown_it
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it.token import Token

from service.escalation import bundle as bundles
from service.escalation import links
from service.escalation.render import markdown, pagerduty, report, slack
from service.matching import loader, templates
from service.model import alerts, incidents, rules
from tests.escalation.test_render_markdown import (
    ACTIONS,
    BASE_URL,
    FINDINGS,
    NOW,
    OPENED,
    label_name,
    label_value,
    sample_alert,
)
from tests.escalation.test_render_slack import LINK, assert_within_limits, header, texts

#: REMEDIATOR_LINK_HOSTS of this test; the base URL's host is allowed too
HOSTS = ["prometheus.example.com", "*.grafana.example.com"]
POLICY = links.policy(HOSTS, BASE_URL)
RULE = loader.parse_rule(
    """
name: hostile
runbook: Hostile Alerts
mttr_target: 5m
severity: critical
match: [alertname="Hostile"]
target:
  kind: Deployment
  namespace: "{{ labels.namespace }}"
  name: coordinator
suggest:
  - kubectl -n shop logs {{ labels.pod }} --tail=100
  - command: kubectl -n {{ target.namespace }} rollout undo deployment/{{ target.name }}
    hazard: "rolls back; {{ labels.pod }} is not quoted here"
  - echo {{ annotations.summary }}
"""
)

#: pieces that break renderers, shells and chat clients
PIECES = [
    "\n",
    "\r\n",
    "\t",
    "\x1b[2K",
    "\x85",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u2066",
    "`",
    "```",
    "~~~",
    "'",
    '"',
    "\\",
    "$(id)",
    "; rm -rf / #",
    "](javascript:alert(1))",
    "![x](https://evil.example/x.png)",
    "[click](https://evil.example/)",
    "<http://x|y>",
    "<!here>",
    "<!channel>",
    "@channel",
    "<@U123>",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "https://evil.example/phish",
    "HTTP://EVIL.EXAMPLE",
    "www.evil.example",
    "ops@evil.example",
    "mailto:ops@evil.example",
    "| a | b |",
    "# heading",
    "\n## heading",
    "* item",
    "{x}",
    "&lt;",
    "&#60;",
    "shop",
]
TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=8).map("".join),
    st.sampled_from(PIECES).map(lambda piece: piece * (3000 // len(piece))),
)
URLS = st.one_of(
    st.sampled_from(
        [
            "",
            "http://prometheus.example.com:9090/graph?g0.expr=up",
            "https://eu.grafana.example.com/d/x?a=(1)&b=[2]",
            "https://remediator.example.com/v1/incidents/x",
            "https://evil.example/graph",
            "https://prometheus.example.com@evil.example/",
            "http://evil.example\\.grafana.example.com/",
            "https://grafana.example.com/",  # the apex is not under *.grafana.example.com
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://prometheus.example.com/\n[x](javascript:alert(1))",
        ]
    ),
    st.text(max_size=40).map(lambda tail: "https://eu.grafana.example.com/" + tail),
    st.text(max_size=40).map(lambda tail: "https://evil.example/" + tail),
)
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: what GitHub-flavoured Markdown (and chat clients) would auto-link in text
AUTOLINK = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.|[\w.+-]+@[\w-]+\.[\w-])")
OUR_HEADINGS = {"Findings", "Actions tried", "Awaiting approval", "Suggested commands", "Alerts", "Links"}
REPORT_HEADINGS = {"Time to recover", "Timeline", "Findings", "Actions taken", "Post-incident checklist"} | {
    "Runbook update",
    "Probes that failed, errored or were skipped",
    "Guards that blocked automatic actions",
    "Proposals humans decided",
    "Steps humans took",
    "Checklist items still open",
}


#: the line of configured mentions a message starts with: only well-formed user and group ids
MENTION = re.compile(r"^(?:(?:<@[UW][A-Z0-9]{2,20}>|<!subteam\^S[A-Z0-9]{2,20}>) ?)+")


def allowed(url: str) -> bool:
    """The allow-list, checked independently of ``links``."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    return (
        parts.scheme in ("http", "https")
        and "@" not in parts.netloc
        and (
            host in ("prometheus.example.com", "remediator.example.com")
            or host.endswith(".grafana.example.com")
        )
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[alerts.Alert, incidents.Bundle]:
    """A hostile alert, and its bundle built the way the pipeline builds it."""
    labels = {
        "alertname": "Hostile",
        "namespace": label_value(draw(TEXT)),
        "pod": label_value(draw(TEXT)),
        label_name(draw(TEXT)): label_value(draw(TEXT)),
    }
    annotations = {"summary": draw(TEXT), "description": draw(TEXT), "runbook_url": draw(URLS)}
    alert = sample_alert(labels=labels, annotations=annotations, generatorURL=draw(URLS))
    context = templates.alert_context(alert, RULE)
    target = templates.render_target(RULE.target, context)
    suggested = templates.render_suggestions(RULE, templates.with_target(context, target))
    findings = [
        FINDINGS[0].model_copy(update={"summary": draw(TEXT), "evidence": draw(TEXT)}),
        FINDINGS[1].model_copy(update={"summary": f"GET {draw(URLS)} answered 503: {draw(TEXT)}"}),
    ]
    actions = [a.model_copy(update={"reason": f"refused for {labels['pod']}: {draw(TEXT)}"}) for a in ACTIONS]
    built = bundles.build(
        incident_id="01JPBM3Q8ZK4V7N2D5R9T6W1XC",
        rule_name=RULE.rule.name,
        runbook=RULE.rule.runbook,
        severity=RULE.rule.severity,
        mttr_target_s=300.0,
        state="escalated",
        reason=target.error or f"no remediation for {labels['namespace']}",
        target=target,
        opened_at=OPENED,
        now=NOW,
        alert_list=[alert],
        suggested=suggested,
        base_url=BASE_URL,
        link_policy=POLICY,
        findings=findings,
        actions=actions,
        checklist=[
            rules.ChecklistItem(
                id="hostile", band=draw(st.sampled_from(rules.BANDS)), text="Check " + draw(TEXT)
            ),
            rules.ChecklistItem(id="find-the-cause", band="short_term", text="Find the cause"),
        ],
        next_level=2,
        next_at=NOW + 900,
        started_at=OPENED - 600,
        runbook_url=draw(st.sampled_from([None, "https://prometheus.example.com/runbooks/x"])),
        caused_by=draw(st.one_of(st.none(), link_refs())),
        effects=draw(st.lists(link_refs(), max_size=3)),
        holders=draw(st.lists(TEXT, max_size=3)),
        page_due_at=draw(st.sampled_from([None, NOW + 60])),
    )
    return alert, built


@st.composite
def link_refs(draw: st.DrawFn) -> incidents.LinkRef:
    """Another incident, its id, rule and target hostile (a stored bundle may hold anything)."""
    return incidents.LinkRef(incident_id=draw(TEXT) or "x", rule=draw(TEXT), target=draw(TEXT))


def walk(tokens: list[Token]) -> list[Token]:
    found = []
    for token in tokens:
        found.append(token)
        found += walk(token.children or [])
    return found


def check_markdown(rendered: str, headings: set[str], commands: list[str]) -> None:
    parser = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = parser.parse(rendered)
    flat = walk(tokens)
    for index, token in enumerate(flat):
        assert token.type not in ("html_block", "html_inline", "image"), token
        if token.type == "link_open":
            assert allowed(str(token.attrGet("href"))), token.attrGet("href")
        if token.type == "text":
            assert not AUTOLINK.search(token.content), token.content
        if token.type == "heading_open":
            title = flat[index + 1].content
            if token.tag == "h1":
                assert index == 0, title  # the one title, first
            else:
                assert (
                    title in headings
                    or title.startswith("Findings at opening (")
                    or title.startswith(tuple(f"{t} — " for t in rules.BAND_TITLES.values()))
                ), title
        if token.type == "fence":
            for line in token.content.splitlines():
                assert line in commands or line.startswith("# "), line
    for block in re.findall(r"(?:^\|.*\n)+", rendered, flags=re.M):
        cells = {len(re.findall(r"(?<!\\)\|", row.replace("\\\\", ""))) for row in block.splitlines()}
        assert len(cells) == 1, block  # every row has the header's cells


def check_command(command: str, alert: alerts.Alert) -> None:
    assert templates.unsafe_character(command) is None and len(command) <= templates.COMMAND_LIMIT
    if command.startswith("# "):  # a note: pasting it runs nothing
        return
    words = shlex.split(command)
    if words[0] == "kubectl" and words[3] == "logs":
        assert words == ["kubectl", "-n", "shop", "logs", alert.labels["pod"], "--tail=100"]
    elif words[0] == "echo":
        assert words == ["echo", alert.annotations["summary"]]


@SETTINGS
@given(cases())
def test_suggested_commands_are_one_line_and_quoted(case: tuple[alerts.Alert, incidents.Bundle]) -> None:
    alert, built = case
    assert len(built.suggested) == 3
    for suggestion in built.suggested:
        check_command(suggestion.command, alert)
    kind = templates.unsafe_character(alert.labels["pod"])
    if kind is not None:  # dropped, and the note says why and (when it can tell) which label
        note = built.suggested[0].command
        assert note.startswith(f"# dropped: a value holds {kind} (") and "labels.pod" in note


@SETTINGS
@given(cases())
def test_markdown_forms_no_foreign_link_html_heading_or_cell(
    case: tuple[alerts.Alert, incidents.Bundle],
) -> None:
    _alert, built = case
    document = built.model_dump(mode="json")
    commands = [s.command for s in built.suggested]
    check_markdown(markdown.render(built), OUR_HEADINGS, commands)
    detail = {
        "id": built.incident_id,
        "target": document["target"],
        "reason": built.reason,
        "acked_by": built.alerts[0].labels["pod"],
        "acked_at": NOW,
        "opened_at": OPENED,
        "timeline": [
            {"at": NOW, "kind": "incident.escalated", "message": built.reason, "data": {"channels": ["log"]}},
            {"at": NOW, "kind": built.alerts[0].labels["pod"], "message": built.title, "data": {}},
            {
                "at": NOW,
                "kind": "checklist.ticked",
                "message": "",
                "data": {"item": "hostile", "by": built.alerts[0].labels["pod"]},
            },
            {
                "at": NOW,
                "kind": "incident.linked",
                "message": built.alerts[0].annotations["summary"],
                "data": {"caused_by": built.alerts[0].labels["namespace"], "rule": built.title},
            },
        ],
        "alerts": [
            {
                "starts_at": OPENED,
                "alert": {"labels": built.alerts[0].labels, "annotations": built.alerts[0].annotations},
            }
        ],
        "findings": document["findings"],
        "actions": document["actions"],
    }
    rendered = report.render(detail, built, checklist=[], now=NOW)
    check_markdown(rendered, REPORT_HEADINGS | {"Latest check"}, [])
    assert "\n- [x] Check" in rendered.split("## Post-incident checklist", 1)[1]  # ticked, by anyone


@SETTINGS
@given(cases())
def test_slack_keeps_its_limits_and_links_only_allowed_hosts(
    case: tuple[alerts.Alert, incidents.Bundle],
) -> None:
    _alert, built = case
    commands = {s.command for s in built.suggested}
    mentions = ["U024BE7LH", "S0614TZR7", *(c for c in built.alerts[0].labels.values())]
    for event in ("trigger", "escalate:2", "resolve", "announce", "linked"):
        payload = slack.render(built, event=event, mentions=mentions)
        assert_within_limits(payload)
        orjson.dumps(payload)
        assert "<" not in header(payload)["text"]["text"]
        for content in texts(payload):
            for url in re.findall(r"<(https?://[^|>]+)\|", content):
                assert allowed(url), url
            prose = LINK.sub("", MENTION.sub("", content, count=1))
            assert "<" not in prose and ">" not in prose, prose[:300]  # Slack's <…> only in our links
            blocks = re.findall(r"```\n(.*?)\n```", prose, flags=re.S)
            for block in blocks:
                shown = block.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                assert shown in commands or shown.startswith("# "), block  # one whole command, or a note
            outside = re.sub(r"```\n.*?\n```", "", prose, flags=re.S)
            assert not AUTOLINK.search(outside), outside[:300]


@SETTINGS
@given(cases())
def test_pagerduty_keeps_its_limits_and_links_only_allowed_hosts(
    case: tuple[alerts.Alert, incidents.Bundle],
) -> None:
    _alert, built = case
    body = pagerduty.render(built, event="trigger", routing_key="k", source="s")
    summary = body["payload"]["summary"]
    assert len(summary) <= 1024 and templates.unsafe_character(summary) is None
    assert not AUTOLINK.search(summary)
    assert len(orjson.dumps(body)) < 512 * 1024
    assert "images" not in body
    assert all(allowed(link["href"]) for link in body.get("links", []))
    assert allowed(body["client_url"])
