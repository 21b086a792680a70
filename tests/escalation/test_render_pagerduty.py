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
    FINDINGS,
    HOSTILE_SETTINGS,
    INCIDENT_ID,
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


def test_mitigated_has_no_pagerduty_action() -> None:
    with pytest.raises(ValueError, match="no PagerDuty event_action"):
        render(sample_bundle(), "mitigated")


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
