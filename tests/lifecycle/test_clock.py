"""The MTTR clock starts when the alert started firing, not when the service saw it: an alert that fired
10 minutes before it reached us is over its 5-minute target in the report, the list filter and the metrics;
the time we first saw it stays visible as "detected"."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def high_error_rate(status: str, started: float) -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")  # rule high-error-rate: MTTR target 5 min
    payload["status"] = status
    [entry] = payload["alerts"]
    entry["status"] = status
    entry["startsAt"] = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
    if status == "resolved":
        entry["endsAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return payload


async def post(client: Any, payload: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def listed(client: Any, query: str) -> list[dict[str, Any]]:
    page = await (await client.get(f"/v1/incidents?{query}", headers=AUTH)).json()
    return list(page["incidents"])


async def test_an_alert_that_fired_ten_minutes_before_it_arrived_is_over_a_five_minute_target(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    started = time.time() - 600
    await post(client, high_error_rate("firing", started))
    [incident] = await eventually(lambda: listed(client, "state=escalated"))
    assert incident["started_at"] < incident["detected_at"]
    assert incident["elapsed_s"] >= 600, "elapsed counts from the alert's start"
    assert [i["id"] for i in await listed(client, "over_target=true")] == [incident["id"]]
    assert await listed(client, "over_target=false") == []

    await post(client, high_error_rate("resolved", started))  # resolved seconds after we saw it
    [resolved] = await eventually(lambda: listed(client, "state=resolved"))
    detail = await (await client.get(f"/v1/incidents/{resolved['id']}", headers=AUTH)).json()
    [closing] = [e for e in detail["timeline"] if e["kind"] == "incident.resolved"]
    assert closing["data"]["within_target"] is False and closing["data"]["mttr_s"] >= 600

    report = await (await client.get(f"/v1/incidents/{resolved['id']}/report", headers=AUTH)).text()
    assert "over" in report.lower() and "detected" in report.lower()
    metrics = await (await client.get("/metrics")).text()
    assert 'remediator_incidents_over_mttr_target_total{rule="high-error-rate"} 1.0' in metrics
    assert 'remediator_incidents_within_mttr_target_total{rule="high-error-rate"}' not in metrics
    seconds = [
        line for line in metrics.splitlines() if line.startswith("remediator_time_to_resolve_seconds_sum")
    ]
    assert seconds and float(seconds[0].split()[-1]) >= 600


async def test_an_alert_whose_start_is_in_the_future_counts_from_when_we_saw_it(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    await post(client, high_error_rate("firing", time.time() + 3600))  # the sender's clock runs ahead
    [incident] = await eventually(lambda: listed(client, "state=escalated"))
    assert incident["started_at"] <= incident["detected_at"] and incident["elapsed_s"] < 60
    assert await listed(client, "over_target=true") == []
