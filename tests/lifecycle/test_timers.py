"""The escalation matrix with an injectable clock: levels 2, 3, 4 at 15, 30, 60 min for a critical incident;
level 4 never for a warning; ack stops it; a restart in between neither resets nor repeats a level."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from service import keys
from service.app import create_app
from service.lifecycle.timers import EscalationTimers
from service.records import schema
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-token"}


async def open_incident(client: Any, *, severity_rule: str = "high-error-rate") -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200
    [incident] = await eventually(lambda: _escalated(client))
    return incident


async def _escalated(client: Any) -> list[dict[str, Any]]:
    return list((await (await client.get("/v1/incidents?state=escalated", headers=AUTH)).json())["incidents"])


async def events(client: Any, incident_id: str) -> list[tuple[str, str]]:
    detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    return [(n["channel"], n["event"]) for n in detail["notifications"]]


def timers_of(client: Any) -> EscalationTimers:
    app = client.app
    return EscalationTimers(app[keys.STORE], app[keys.LIFECYCLE], on_notify=app[keys.OUTBOX].wake)


async def escalated_at(client: Any, incident_id: str) -> float:
    async with client.app[keys.STORE].read() as conn:
        value = await conn.scalar(
            sa.select(schema.incidents.c.escalated_at).where(schema.incidents.c.id == incident_id)
        )
    return float(value)


async def test_a_critical_incident_climbs_the_matrix_at_15_30_60_minutes(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    incident = await open_incident(client)  # high-error-rate is critical
    assert incident["escalation_level"] == 1
    t0 = await escalated_at(client, incident["id"])
    timers = timers_of(client)
    assert await timers.run_once(now=t0 + 14 * 60) == 0
    assert await timers.run_once(now=t0 + 15 * 60 + 1) == 1
    assert await timers.run_once(now=t0 + 16 * 60) == 0, "level 2 is raised once"
    assert await timers.run_once(now=t0 + 30 * 60 + 1) == 1
    assert await timers.run_once(now=t0 + 60 * 60 + 1) == 1
    assert await timers.run_once(now=t0 + 600 * 60) == 0, "the matrix ends at level 4"
    assert await events(client, incident["id"]) == [
        ("log", "trigger"),
        ("log", "escalate:2"),
        ("log", "escalate:3"),
        ("log", "escalate:4"),
    ]
    detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    assert detail["escalation_level"] == 4 and detail["bundle"]["escalation_level"] == 4
    assert detail["bundle"]["next_escalation_level"] is None


async def test_the_bundle_states_the_current_level_and_the_next(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    incident = await open_incident(client)
    detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    assert (detail["bundle"]["escalation_level"], detail["bundle"]["next_escalation_level"]) == (1, 2)
    assert detail["next_escalation_at"] == detail["bundle"]["next_escalation_at"]


async def test_ack_stops_the_timers_and_is_sent(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-token")))
    incident = await open_incident(client)
    t0 = await escalated_at(client, incident["id"])
    timers = timers_of(client)
    assert await timers.run_once(now=t0 + 15 * 60 + 1) == 1
    url = f"/v1/incidents/{incident['id']}/ack"
    assert (await client.post(url)).status == 401
    assert (await client.post(url, headers=AUTH)).status == 403
    acked = await client.post(url, headers=ALICE)
    assert acked.status == 200 and (await acked.json())["acknowledged_by"] == "alice"
    assert (await client.post(url, headers=ALICE)).status == 409
    assert await timers.run_once(now=t0 + 120 * 60) == 0, "no level after an ack"
    assert ("log", "acknowledge") in await events(client, incident["id"])
    detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    assert detail["acked_by"] == "alice" and detail["next_escalation_at"] is None
    assert any(e["kind"] == "incident.acknowledged" for e in detail["timeline"])


async def test_a_restart_between_levels_neither_resets_nor_repeats(
    aiohttp_client: Any, make_settings: Any
) -> None:
    settings = make_settings()
    first = await aiohttp_client(create_app(settings))
    incident = await open_incident(first)
    t0 = await escalated_at(first, incident["id"])
    assert await timers_of(first).run_once(now=t0 + 15 * 60 + 1) == 1
    await first.close()
    second = await aiohttp_client(create_app(settings))  # the same store, a new process
    timers = timers_of(second)
    assert await timers.run_once(now=t0 + 20 * 60) == 0, "level 2 is not raised again"
    assert await timers.run_once(now=t0 + 30 * 60 + 1) == 1
    assert await events(second, incident["id"]) == [
        ("log", "trigger"),
        ("log", "escalate:2"),
        ("log", "escalate:3"),
    ]


async def test_a_warning_incident_stops_at_level_3(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    payload = load_fixture("am-0.25-truncated.json")  # test-host-alerts is a warning rule
    payload["alerts"] = payload["alerts"][:1]
    payload["truncatedAlerts"] = 0
    await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    [incident] = await eventually(lambda: _escalated(client))
    t0 = await escalated_at(client, incident["id"])
    timers = timers_of(client)
    assert [await timers.run_once(now=t0 + m * 60 + 1) for m in (15, 30, 60)] == [1, 1, 0]
