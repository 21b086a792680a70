"""The bundle as a Slack Block Kit message: golden rendering, Slack's limits, and hostile user data."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import given

from service.escalation.render import slack, text
from service.model import incidents
from tests.escalation.test_render_markdown import (
    EFFECT,
    FINDINGS,
    HOSTILE_SETTINGS,
    OPENED,
    check_golden,
    hostile_bundles,
    sample_alert,
    sample_bundle,
)

#: one of our links: ``<http(s)://…|label>`` (user data never produces a raw ``<``)
LINK = re.compile(r"<https?://[^\s<>|]+\|[^<>]*>")


def texts(payload: dict[str, Any]) -> list[str]:
    """Every mrkdwn text of the message (sections, fields, context elements) and the fallback."""
    found = [payload["text"]]
    for block in payload["blocks"]:
        if "text" in block and block["type"] != "header":
            found.append(block["text"]["text"])
        found += [field["text"] for field in block.get("fields", [])]
        found += [element["text"] for element in block.get("elements", [])]
    return found


def header(payload: dict[str, Any]) -> dict[str, Any]:
    """The header block: the first, or the second after the line of mentions."""
    blocks = payload["blocks"]
    return blocks[1] if blocks[0]["type"] == "section" else blocks[0]


def assert_within_limits(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    for block in blocks:  # Slack parses nothing in user data of its own accord (no auto-links, no @here)
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        assert all(o.get("verbatim") is True for o in objects if o and o["type"] == "mrkdwn")
    assert len(blocks) <= 50
    head = header(payload)
    assert head["type"] == "header" and text.units(head["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert text.units(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(text.units(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(text.units(e["text"]) <= 3000 for e in block["elements"])


def test_golden_slack_trigger() -> None:
    payload = slack.render(sample_bundle(), event="trigger")
    check_golden("slack.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    assert_within_limits(payload)


@pytest.mark.parametrize(
    ("event", "prefix"),
    [
        ("trigger", "TRIGGERED: "),
        ("resolve", "RESOLVED: "),
        ("acknowledge", "ACKNOWLEDGED: "),
        ("mitigated", "MITIGATED: "),
        ("escalate:2", "ESCALATED to level 2: "),
        ("escalate", "ESCALATED to level 1: "),
        ("announce", "AUTOMATIC REMEDIATION IN PROGRESS: "),
        ("linked", "LINKED: "),
    ],
)
def test_the_header_says_which_event(event: str, prefix: str) -> None:
    payload = slack.render(sample_bundle(), event=event)
    assert payload["blocks"][0]["text"]["text"].startswith(prefix + "[CRITICAL] High HTTP Error Rate")
    assert payload["text"].startswith(prefix)


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="no Slack headline"):
        slack.render(sample_bundle(), event="page-everyone")


def test_mentions_and_links_in_labels_show_as_text() -> None:
    alert = sample_alert(
        labels={"alertname": "HighErrorRate", "owner": "<!channel> <@U123>", "see": "<http://evil|click>"},
        annotations={"summary": "ping <!here>"},
    )
    payload = slack.render(sample_bundle(alert=alert), event="trigger")
    dumped = json.dumps(payload)
    assert "<!channel>" not in dumped and "<@U123>" not in dumped and "<!here>" not in dumped
    assert "<http://evil|click>" not in dumped
    alerts_text = next(t for t in texts(payload) if t.startswith("*Alerts*"))
    assert "owner=&lt;!channel&gt; &lt;@U123&gt;" in alerts_text
    assert "see=&lt;http[:]//evil|click&gt;" in alerts_text  # escaped, and defanged: no auto-link either


def test_backticks_in_a_command_cannot_close_its_code_block() -> None:
    bundle = sample_bundle(
        suggested=[
            incidents.SuggestedCommand(command="echo `x` <!channel> a&b", hazard="``` `danger`"),
            incidents.SuggestedCommand(command="echo ``` rm -rf /"),
        ]
    )
    section = next(t for t in texts(slack.render(bundle, event="trigger")) if t.startswith("*Suggested"))
    assert section.count("```") == 4  # only ours: open and close, twice
    assert "```\necho `x` &lt;!channel&gt; a&amp;b\n```" in section  # whole, escaped as Slack requires
    assert "# not shown here: the command holds three backticks in a row" in section
    assert "rm -rf" not in section  # not shown rather than shown changed (a copy would differ)


def test_a_multi_line_command_from_an_old_bundle_is_not_shown() -> None:
    bundle = sample_bundle(
        suggested=[incidents.SuggestedCommand(command="kubectl get pods -n 'shop\nkubectl delete ns prod #'")]
    )
    section = next(t for t in texts(slack.render(bundle, event="trigger")) if t.startswith("*Suggested"))
    assert "delete" not in section
    assert "# not shown: the command holds a line break" in section


def test_many_findings_are_cut_with_a_count_of_what_is_not_shown() -> None:
    many = [FINDINGS[0].model_copy(update={"id": f"pods-{i}", "summary": "x" * 300}) for i in range(100)]
    payload = slack.render(sample_bundle(findings=many), event="trigger")
    assert_within_limits(payload)
    findings = next(t for t in texts(payload) if t.startswith("*Findings*"))
    assert re.search(r"… \(truncated\): \d+ more not shown$", findings)


def test_a_huge_summary_is_truncated_with_the_marker() -> None:
    alert = sample_alert(annotations={"summary": "z" * 100_000})
    payload = slack.render(sample_bundle(alert=alert), event="trigger")
    assert_within_limits(payload)
    assert payload["blocks"][0]["text"]["text"].endswith("… (truncated)")


def test_links_are_only_http_and_cannot_break_out() -> None:
    bundle = sample_bundle().model_copy(
        update={"links": {"incident": "https://r.example/x?a=1&b=<2>|3", "evil": "javascript:alert(1)"}}
    )
    context = slack.render(bundle, event="trigger")["blocks"][-1]["elements"][0]["text"]
    assert "javascript" not in context
    assert "<https://r.example/x?a=1&amp;b=%3C2%3E%7C3|incident 01JPBM3Q8ZK4V7N2D5R9T6W1XC>" in context


def test_truncation_never_splits_an_entity_or_exceeds_the_limit() -> None:
    assert text.truncate("a" * 10, 10) == "a" * 10
    cut = text.truncate("ab&amp;" + "c" * 50, 16)
    assert cut == "ab… (truncated)" and text.units(cut) <= 16
    emoji = text.truncate("🚨" * 3000, 3000)
    assert text.units(emoji) <= 3000 and emoji.endswith("… (truncated)")


@HOSTILE_SETTINGS
@given(hostile_bundles())
def test_hostile_user_data_stays_text_and_within_limits(document: incidents.Bundle) -> None:
    for event in ("trigger", "escalate:3"):
        payload = slack.render(document, event=event)
        assert_within_limits(payload)
        orjson.dumps(payload)  # JSON-serialisable, valid UTF-8
        dumped = json.dumps(payload, ensure_ascii=False)
        for mention in ("<!channel>", "<!here", "<@U1>", "<@U123", "<http://x|y>", "<javascript:"):
            assert mention not in dumped
        for mrkdwn in [*texts(payload), payload["blocks"][0]["text"]["text"]]:
            assert "<" not in LINK.sub("", mrkdwn), mrkdwn[:500]  # every < starts one of our links
            assert mrkdwn.count("```") % 2 == 0  # code blocks stay closed


def test_mentions_start_the_message_and_only_slack_ids_are_mentioned() -> None:
    mentions = ["U024BE7LH", "W012A3CDE", "S0614TZR7", "<!channel>", "@here", "u024be7lh", "U1", "U024BE7LH"]
    payload = slack.render(sample_bundle(), event="escalate:2", mentions=mentions)
    first = payload["blocks"][0]
    assert first["type"] == "section"
    assert first["text"]["text"] == "<@U024BE7LH> <@W012A3CDE> <!subteam^S0614TZR7>"
    assert payload["text"].startswith("<@U024BE7LH> <@W012A3CDE> <!subteam^S0614TZR7> ESCALATED to level 2")
    dumped = json.dumps(payload)
    assert "<!channel>" not in dumped and "@here" not in dumped and "u024be7lh" not in dumped
    assert_within_limits(payload)


def test_without_mentions_the_message_starts_with_its_header() -> None:
    for mentions in ((), ["not-an-id", "<@U024BE7LH>"]):
        payload = slack.render(sample_bundle(), event="trigger", mentions=mentions)
        assert payload["blocks"][0]["type"] == "header"
        assert payload["text"].startswith("TRIGGERED: ")


def test_the_clock_counts_from_the_alert_start_and_detection_is_shown() -> None:
    fields = {
        f["text"].split("\n")[0]: f["text"]
        for f in slack.render(sample_bundle(), event="trigger")["blocks"][1]["fields"]
    }
    assert fields["*Started*"] == "*Started*\n2026-03-14 09:25:30 UTC"
    assert fields["*Detected*"] == "*Detected*\n2026-03-14 09:26:40 UTC"
    # escalated 250 s after detection, 320 s after the alert started: over the 5 min target
    assert fields["*MTTR (from the alert's start)*"].endswith(
        "open for 5 min 20 s — over the 5 min target by 20 s"
    )


def test_the_paging_section_says_who_holds_it_and_what_it_is_linked_to() -> None:
    cause = EFFECT.model_copy(
        update={"incident_id": "01JPBM0ROOT", "rule": "database-failure", "state": "open"}
    )
    bundle = sample_bundle(caused_by=cause, page_due_at=OPENED + 230, state="verifying")
    paging = next(t for t in texts(slack.render(bundle, event="announce")) if t.startswith("*Paging*"))
    lines = paging.split("\n")
    assert lines[1] == "Paging at 09:30 UTC unless mitigated"
    assert lines[2] == (
        "Caused by incident <https://remediator.example.com/ui/incidents/01JPBM0ROOT|01JPBM0ROOT>"
        " (database-failure on Deployment/shop/checkout, open) — paged through it"
    )
    assert lines[3] == (
        "Linked incidents: <https://remediator.example.com/ui/incidents/01JPBM4A7TQ2XH3M6P9S1V4Y7B"
        "|01JPBM4A7TQ2XH3M6P9S1V4Y7B> (checkout-latency on Deployment/shop/checkout, escalated)"
    )
    assert lines[4] == "Already paged: L1 pagerduty:primary, L1 slack"


def test_a_hostile_linked_incident_stays_text_and_links_only_to_us() -> None:
    evil = incidents.LinkRef(
        incident_id="x/../../evil|<!here>", rule="<!channel>", target="[a](javascript:1)"
    )
    bundle = sample_bundle(caused_by=evil, effects=[evil], holders=["<@U123> https://evil.example"])
    paging = next(t for t in texts(slack.render(bundle, event="linked")) if t.startswith("*Paging*"))
    assert "<https://remediator.example.com/ui/incidents/x%2F..%2F..%2Fevil%7C%3C%21here%3E|" in paging
    assert "<!channel>" not in paging and "<!here>" not in paging and "<@U123>" not in paging
    assert "https[:]//evil.example" in paging
