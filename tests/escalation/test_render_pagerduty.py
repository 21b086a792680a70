"""The bundle as a PagerDuty Events API v2 body: golden trigger, the lean resolve/ack, and the 512 KB cap."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given

from service.escalation.render import pagerduty
from service.model import incidents
from tests.escalation.test_render_markdown import (
    EFFECT,
    FINDINGS,
    HOSTILE_SETTINGS,
    INCIDENT_ID,
    OPENED,
    check_golden,
    hostile_bundles,
    sample_alert,
    sample_bundle,
)

KEY = "R0UTINGKEY0123456789abcdefghijkl"
LIMIT = 512 * 1024


def render(bundle: incidents.Bundle, event: str = "trigger") -> dict[str, Any]:
    return pagerduty.render(bundle, event=event, routing_key=KEY, source="remediator.example.com")


def test_golden_pagerduty_trigger() -> None:
    check_golden("pagerduty.json", json.dumps(render(sample_bundle()), indent=2, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("event", ["resolve", "acknowledge"])
def test_resolve_and_acknowledge_carry_only_the_key_the_action_and_the_dedup_key(event: str) -> None:
    assert render(sample_bundle(), event) == {
        "routing_key": KEY,
        "event_action": event,
        "dedup_key": INCIDENT_ID,
    }


def test_an_escalation_re_triggers_the_same_alert() -> None:
    body = render(sample_bundle(), "escalate:2")
    assert body["event_action"] == "trigger" and body["dedup_key"] == INCIDENT_ID


def test_mitigated_resolves_the_page() -> None:
    """A page made while an automatic action verified is resolved when verification succeeds."""
    assert render(sample_bundle(state="mitigated"), "mitigated") == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": INCIDENT_ID,
    }


@pytest.mark.parametrize("event", ["announce", "linked"])
def test_information_events_are_not_pages(event: str) -> None:
    with pytest.raises(ValueError, match="no PagerDuty event_action"):
        render(sample_bundle(), event)
    with pytest.raises(ValueError, match="no PagerDuty event_action"):
        pagerduty.bare(INCIDENT_ID, event=event, routing_key=KEY)


def test_the_details_lead_with_the_clock_and_who_holds_the_page() -> None:
    cause = EFFECT.model_copy(
        update={"incident_id": "01JPBM0ROOT", "rule": "database-failure", "state": "open"}
    )
    body = render(sample_bundle(caused_by=cause, page_due_at=OPENED + 230))
    details = body["payload"]["custom_details"]
    assert list(details)[:4] == ["started", "detected", "mttr", "paging"]
    assert details["started"] == "2026-03-14 09:25:30 UTC"
    assert details["detected"] == "2026-03-14 09:26:40 UTC"
    assert details["mttr"] == "open for 5 min 20 s — over the 5 min target by 20 s (from the alert's start)"
    assert details["paging"] == [
        "Paging at 09:30 UTC unless mitigated",
        "Caused by incident 01JPBM0ROOT (database-failure on Deployment/shop/checkout, open) — paged through it",
        f"Linked incidents: {EFFECT.incident_id} (checkout-latency on Deployment/shop/checkout, escalated)",
        "Already paged: L1 pagerduty:primary, L1 slack",
    ]
    assert details["started_at"] == "2026-03-14T09:25:30Z" and details["caused_by"] == cause.model_dump()
    base = "https://remediator.example.com/ui/incidents"
    assert {"href": f"{base}/01JPBM0ROOT", "text": "caused by: incident 01JPBM0ROOT"} in body["links"]
    assert {"href": f"{base}/{EFFECT.incident_id}", "text": f"linked: incident {EFFECT.incident_id}"} in body[
        "links"
    ]


def test_the_rules_runbook_is_linked_when_the_alert_has_none() -> None:
    alert = sample_alert(annotations={"summary": "5xx"})
    body = render(sample_bundle(alert=alert, runbook_url="https://docs.example.org/runbooks/high-error-rate"))
    assert {"href": "https://docs.example.org/runbooks/high-error-rate", "text": "runbook"} in body["links"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("high", "error"), ("warning", "warning"), ("info", "info"), ("odd", "error")],
)
def test_severity_maps_to_pagerduty_levels(severity: str, expected: str) -> None:
    bundle = sample_bundle().model_copy(update={"severity": severity})
    assert render(bundle)["payload"]["severity"] == expected


def test_source_falls_back_to_the_argument_without_a_target() -> None:
    bundle = sample_bundle().model_copy(
        update={"target": incidents.TargetRef(kind="", namespace="", name="")}
    )
    assert render(bundle)["payload"]["source"] == "remediator.example.com"


def test_links_are_only_http() -> None:
    document = sample_bundle().model_dump(mode="json")
    document["links"]["evil"] = "javascript:alert(1)"
    document["alerts"][0]["generator_url"] = "file:///etc/passwd"
    bundle = incidents.Bundle.model_validate(document)
    hrefs = [link["href"] for link in render(bundle)["links"]]
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs)


def test_huge_evidence_is_shortened_first_and_said_so() -> None:
    findings = [f.model_copy(update={"evidence": "E" * 200_000}) for f in FINDINGS]
    body = render(sample_bundle(findings=findings))
    details = body["payload"]["custom_details"]
    assert len(orjson.dumps(body)) < LIMIT
    assert details["truncated"] == "finding evidence shortened to 1000 characters"
    assert details["findings"][0]["summary"] == "0/3 ready, 3 crashlooping"
    assert details["findings"][0]["evidence"].endswith("… (truncated)")


def test_huge_labels_and_lists_are_cut_until_the_body_fits() -> None:
    labels = {f"label_{i}": "v" * 1_024 for i in range(63)}  # as many and as long as an alert may carry
    alert = sample_alert(labels={"alertname": "HighErrorRate", **labels})
    findings = [FINDINGS[0].model_copy(update={"id": f"p{i}", "summary": "s" * 5_000}) for i in range(200)]
    body = render(sample_bundle(alert=alert, findings=findings))
    details = body["payload"]["custom_details"]
    assert len(orjson.dumps(body)) < LIMIT
    assert "lists and objects cut" in details["truncated"] or "strings longer than" in details["truncated"]
    assert details["incident_id"] == INCIDENT_ID


@HOSTILE_SETTINGS
@given(hostile_bundles())
def test_hostile_user_data_keeps_the_summary_and_the_body_within_limits(document: incidents.Bundle) -> None:
    body = render(document)
    payload = body["payload"]
    assert len(payload["summary"]) <= 1024
    assert len(orjson.dumps(body)) < LIMIT
    assert payload["severity"] in {"critical", "error", "warning", "info"}
    assert all(link["href"].startswith(("http://", "https://")) for link in body.get("links", []))
