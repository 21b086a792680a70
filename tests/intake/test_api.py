"""The read API, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from service.app import create_app
from tests.conftest import AM_FIXTURES, TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(aiohttp_client: Any, make_settings: Any) -> Any:
    return await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-token")))


async def incidents(client: Any, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get(f"/v1/incidents{query}", headers=headers or AUTH)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


#: (client, fingerprint) → the episode's startsAt: now when it first fires (the MTTR clock starts there)
_STARTS: dict[tuple[int, str], str] = {}


async def post_alert(client: Any, fingerprint: str, service: str, *, status: str = "firing") -> None:
    payload = load_fixture("am-0.25-firing.json" if status == "firing" else "am-0.25-resolved.json")
    payload["alerts"][0]["fingerprint"] = fingerprint
    started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload["alerts"][0]["startsAt"] = _STARTS.setdefault((id(client), fingerprint), started)
    payload["alerts"][0]["labels"]["service"] = service
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def test_quick_start_flow_one_escalated_incident_and_the_log_bundle(
    aiohttp_client: Any, make_settings: Any
) -> None:
    """The README quick start: post the captured alert twice → one escalated incident, bundle in the log.
    The runbook's host is allow-listed (``REMEDIATOR_LINK_HOSTS``), so the bundle links to it."""
    settings = make_settings(approver_tokens="alice=alice-token", link_hosts="runbooks.example")
    client = await aiohttp_client(create_app(settings))
    body = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    with capture_logs() as logs:
        for expected in ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1}):
            response = await client.post(
                "/v1/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"}
            )
            assert await response.json() == expected
        bundles = await eventually(lambda: [e for e in logs if e["event"] == "notify.bundle"])
        listed = await eventually(lambda: _nonempty(incidents(client)))
    assert len(listed) == 1
    incident = listed[0]
    assert incident["state"] == "escalated"
    assert incident["rule"] == "high-error-rate"
    assert incident["target"] == {
        "kind": "Deployment",
        "namespace": "default",
        "name": "checkout",
        "selector": "app.kubernetes.io/name=checkout",
        "valid": True,
        "error": None,
    }
    assert len(bundles) == 1
    bundle = bundles[0]["bundle"]
    assert bundle["runbook"] == "High HTTP Error Rate"
    assert bundle["mttr_target_s"] == 300
    assert bundle["alerts"][0]["labels"]["alertname"] == "HighErrorRate"
    assert bundle["links"]["runbook"] == "https://runbooks.example/high-error-rate"
    assert "kubectl -n default rollout restart deployment/checkout" in [
        s["command"] for s in bundle["suggested"]
    ]


async def _nonempty(coro: Any) -> Any:
    return (await coro)["incidents"]


async def test_detail_has_alerts_timeline_and_bundle(client: Any) -> None:
    await post_alert(client, "fp1", "checkout")
    [summary] = await eventually(lambda: _nonempty(incidents(client, "?state=escalated")))
    response = await client.get(f"/v1/incidents/{summary['id']}", headers=AUTH)
    detail = await response.json()
    assert detail["alerts"][0]["fingerprint"] == "fp1"
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds == ["incident.opened", "diagnosis.finished", "decision", "incident.escalated"]
    assert detail["bundle"]["state"] == "escalated"
    # no Kubernetes configured: the rule's kube probes say so instead of failing
    found = [(f["id"], f["status"]) for f in detail["findings"]]
    assert found == [("pods", "skipped"), ("events", "skipped")]
    assert "Kubernetes is not configured" in detail["findings"][0]["summary"]
    # the restart's condition cannot hold without pod facts; the unsafe rollback is proposed to a human
    assert [(a["action"], a["status"]) for a in detail["actions"]] == [
        ("kube.rollout_undo", "awaiting_approval")
    ]
    assert {n["channel"] for n in detail["notifications"]} == {"log"}


async def test_resolved_alert_resolves_its_incident_with_mttr(client: Any) -> None:
    await post_alert(client, "fp1", "checkout")
    [summary] = await eventually(lambda: _nonempty(incidents(client, "?state=escalated")))
    await post_alert(client, "fp1", "checkout", status="resolved")
    [resolved] = await eventually(lambda: _nonempty(incidents(client, "?state=resolved")))
    assert resolved["id"] == summary["id"]
    assert resolved["resolved_at"] is not None
    detail = await (await client.get(f"/v1/incidents/{summary['id']}", headers=AUTH)).json()
    closing = detail["timeline"][-1]
    assert closing["kind"] == "incident.resolved"
    assert closing["data"]["within_target"] is True


async def test_paging_newest_first_with_cursor(client: Any) -> None:
    for i in range(5):
        await post_alert(client, f"fp{i}", f"svc-{i}")
    await eventually(lambda: _count(incidents(client), 5))
    first = await incidents(client, "?limit=2")
    assert len(first["incidents"]) == 2 and "next" in first
    second = await incidents(client, f"?limit=2&cursor={first['next']}")
    third = await incidents(client, f"?limit=2&cursor={second['next']}")
    assert "next" not in third
    names = [i["target"]["name"] for page in (first, second, third) for i in page["incidents"]]
    assert names == ["svc-4", "svc-3", "svc-2", "svc-1", "svc-0"]


async def _count(coro: Any, n: int) -> bool:
    return len((await coro)["incidents"]) == n


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=x", "limit"),
        ("?state=burning", "state"),
        ("?cursor=garbage", "cursor"),
    ],
)
async def test_bad_query_parameters_are_400(client: Any, query: str, field: str) -> None:
    response = await client.get(f"/v1/incidents{query}", headers=AUTH)
    assert response.status == 400
    assert (await response.json())["field"] == field


async def test_read_api_credentials(client: Any) -> None:
    assert (await client.get("/v1/incidents")).status == 401
    assert (await client.get("/v1/incidents", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/v1/incidents", headers={"Authorization": "Bearer alice-token"})).status == 200
    assert (await client.get("/v1/incidents/nope", headers=AUTH)).status == 404


async def test_health_readiness_metrics_and_openapi_are_open(client: Any) -> None:
    await post_alert(client, "fp1", "checkout")
    await eventually(lambda: _nonempty(incidents(client)))
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["store"] == "ok"
    text = await eventually(lambda: _metrics_with(client, 'remediator_incidents{state="escalated"} 1.0'))
    assert "remediator_alerts_received_total 1.0" in text
    assert 'remediator_incidents{state="open"} 0.0' in text, "every state has its gauge"
    assert "remediator_intake_latency_seconds_bucket" in text
    doc = await (await client.get("/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/alerts", "/v1/incidents", "/v1/incidents/{id}"} <= set(doc["paths"])


async def test_the_openapi_document_states_the_limits_and_the_busy_answers(client: Any) -> None:
    doc = await (await client.get("/v1/openapi.json")).json()
    webhook = doc["paths"]["/v1/alerts"]["post"]["responses"]
    assert {"400", "401", "408", "413", "415", "503"} <= set(webhook)
    for path, item in doc["paths"].items():
        for operation in item.values():
            if path not in ("/healthz", "/readyz", "/metrics"):
                assert "Retry-After" in operation["responses"]["503"]["headers"], path
    schema = doc["components"]["schemas"]
    assert schema["Webhook"]["properties"]["receiver"]["maxLength"] == 256
    assert schema["Webhook"]["properties"]["truncatedAlerts"]["maximum"] == 2**31 - 1
    assert schema["Alert"]["properties"]["labels"]["maxProperties"] == 64
    assert schema["Alert"]["properties"]["fingerprint"]["maxLength"] == 128


async def _metrics_with(client: Any, line: str) -> str | None:
    text: str = await (await client.get("/metrics")).text()
    return text if line in text else None


async def test_unmatched_alert_is_recorded_and_counted(client: Any) -> None:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0]["labels"]["alertname"] = "NobodyHandlesThis"
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert await response.json() == {"accepted": 1, "duplicates": 0}
    # decided by intake itself: counted and off the backlog when the 200 arrives, no dispatcher involved
    text = await (await client.get("/metrics")).text()
    assert "remediator_alerts_unmatched_total 1.0" in text and "remediator_inbox_backlog 0.0" in text
    again = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert await again.json() == {"accepted": 0, "duplicates": 1}
    assert "remediator_alerts_unmatched_total 1.0" in await (await client.get("/metrics")).text()
    assert (await incidents(client))["incidents"] == []


async def test_report_and_mttr_accounting(aiohttp_client: Any, make_settings: Any) -> None:
    """A resolved incident's report reads right; MTTR lands in /metrics; over-target filtering works."""
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-token")))
    await post_alert(client, "fp1", "checkout")
    [incident] = await eventually(lambda: _nonempty(incidents(client, "?state=escalated")))
    await post_alert(client, "fp1", "checkout", status="resolved")
    await eventually(lambda: _nonempty(incidents(client, "?state=resolved")))
    response = await client.get(f"/v1/incidents/{incident['id']}/report", headers=AUTH)
    assert response.status == 200 and response.content_type == "text/markdown"
    report = await response.text()
    assert "High HTTP Error Rate" in report and "Deployment/default/checkout" in report
    assert "within" in report  # resolved within the 5 min target
    assert "- [ ] Root cause identified" in report and "Long-term" in report, "the rule's checklist, by band"
    assert "incident.resolved" in report or "resolved" in report.lower()
    assert (await client.get("/v1/incidents/nope/report", headers=AUTH)).status == 404
    assert (await client.get(f"/v1/incidents/{incident['id']}/report")).status == 401
    metrics = await (await client.get("/metrics")).text()
    assert 'remediator_incidents_within_mttr_target_total{rule="high-error-rate"} 1.0' in metrics
    assert 'remediator_time_to_resolve_seconds_count{rule="high-error-rate"} 1.0' in metrics
    within = await incidents(client, "?over_target=false")
    over = await incidents(client, "?over_target=true")
    assert [i["id"] for i in within["incidents"]] == [incident["id"]] and over["incidents"] == []
    bad = await client.get("/v1/incidents?over_target=maybe", headers=AUTH)
    assert bad.status == 400 and (await bad.json())["field"] == "over_target"
