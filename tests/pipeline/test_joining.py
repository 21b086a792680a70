"""Alerts that join an open incident together (one claim, one transaction, on SQLite): each one is in the
incident with its timeline event, nobody is paged again, and an alert that changes the incident (a higher
severity, an earlier start) still changes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
STARTED = "2026-11-27T10:01:44.97964Z"


@pytest.fixture
async def client(aiohttp_client: Any, make_settings: Any) -> Any:
    return await aiohttp_client(create_app(make_settings()))


def alert(fingerprint: str, *, severity: str = "warning", starts_at: str = STARTED) -> dict[str, Any]:
    one: dict[str, Any] = load_fixture("am-0.25-firing.json")["alerts"][0]
    one["labels"].update(severity=severity, instance=f"{fingerprint}:9100")
    one.update(fingerprint=fingerprint, startsAt=starts_at)
    return one


async def post(client: Any, alerts: list[dict[str, Any]]) -> None:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"] = alerts
    response = await client.post("/v1/alerts", data=json.dumps(payload), headers=AUTH)
    assert response.status == 200


async def the_incident(client: Any) -> dict[str, Any]:
    async def idle() -> bool:
        return "remediator_inbox_backlog 0.0" in await (await client.get("/metrics")).text()

    await eventually(idle)
    [summary] = (await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"]
    found: dict[str, Any] = await (await client.get(f"/v1/incidents/{summary['id']}", headers=AUTH)).json()
    return found


async def test_many_alerts_joining_an_open_incident_are_all_in_it_and_page_nobody_again(client: Any) -> None:
    await post(client, [alert("first")])
    opened = await the_incident(client)
    await post(client, [alert(f"storm-{n}") for n in range(40)])
    incident = await the_incident(client)
    assert incident["id"] == opened["id"]
    assert {a["fingerprint"] for a in incident["alerts"]} == {"first", *(f"storm-{n}" for n in range(40))}
    attached = [e for e in incident["timeline"] if e["kind"] == "alert.attached"]
    assert sorted(e["data"]["fingerprint"] for e in attached) == sorted(f"storm-{n}" for n in range(40))
    assert all("fired again" in e["message"] for e in attached)
    assert [(n["channel"], n["event"]) for n in incident["notifications"]] == [("log", "trigger")]
    assert incident["severity"] == opened["severity"] and incident["started_at"] == opened["started_at"]


async def test_an_alert_that_sharpens_the_incident_among_joiners_still_raises_it(client: Any) -> None:
    await post(client, [alert("first")])
    opened = await the_incident(client)
    earlier = "2026-11-27T09:00:00Z"
    await post(
        client,
        [
            *(alert(f"calm-{n}") for n in range(10)),
            alert("sharp", severity="critical"),
            alert("early", starts_at=earlier),
        ],
    )
    incident = await the_incident(client)
    assert len(incident["alerts"]) == 13
    assert opened["severity"] == "warning" and incident["severity"] == "critical"
    assert incident["started_at"] == "2026-11-27T09:00:00Z"
    kinds = [e["kind"] for e in incident["timeline"]]
    assert kinds.count("alert.attached") == 12 and kinds.count("incident.severity") == 1


async def test_an_alert_resolved_before_it_fired_is_not_attached(client: Any) -> None:
    await post(client, [alert("first")])
    resolved = alert("late")
    resolved.update(status="resolved", endsAt="2026-11-27T10:05:00Z")
    payload = load_fixture("am-0.25-firing.json")
    payload.update(status="resolved", alerts=[resolved])
    assert (await client.post("/v1/alerts", data=json.dumps(payload), headers=AUTH)).status == 200
    await the_incident(client)
    await post(client, [alert("late"), alert("on-time")])  # the late re-send of an episode already over
    incident = await the_incident(client)
    assert {a["fingerprint"] for a in incident["alerts"]} == {"first", "on-time"}
