"""The pipeline on a real store: open or attach, invalid targets, resolution order, one page per incident."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(aiohttp_client: Any, make_settings: Any) -> Any:
    return await aiohttp_client(create_app(make_settings()))


async def send(
    client: Any,
    *,
    labels: dict[str, str] | None = None,
    fingerprint: str = "fp",
    starts_at: str = "2026-11-27T10:01:44.97964Z",
    resolved: bool = False,
) -> None:
    payload = load_fixture("am-0.25-resolved.json" if resolved else "am-0.25-firing.json")
    alert = payload["alerts"][0]
    alert["labels"].update(labels or {})
    alert.update(fingerprint=fingerprint, startsAt=starts_at)
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def settled(client: Any) -> list[dict[str, Any]]:
    async def idle() -> bool:
        text = await (await client.get("/metrics")).text()
        return "remediator_inbox_backlog 0.0" in text

    await eventually(idle)
    answer = await (await client.get("/v1/incidents", headers=AUTH)).json()
    return list(answer["incidents"])


async def detail(client: Any, incident_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    return result


@pytest.mark.parametrize("hostile", ["default; rm -rf /", "../../x", "Prod", "a" * 70, "$(reboot)"])
async def test_hostile_namespace_opens_an_invalid_incident_that_says_why(client: Any, hostile: str) -> None:
    await send(client, labels={"namespace": hostile})
    [incident] = await settled(client)
    assert incident["state"] == "escalated"
    assert incident["target"]["valid"] is False
    assert "target.namespace" in incident["target"]["error"]
    assert "nothing automatic runs" in incident["reason"]
    timeline = (await detail(client, incident["id"]))["timeline"]
    assert any(e["kind"] == "target.invalid" for e in timeline)


async def test_new_episodes_and_other_alerts_of_a_target_attach_without_a_second_page(client: Any) -> None:
    await send(client, fingerprint="fp1")
    await send(client, fingerprint="fp1", starts_at="2026-11-27T10:30:00Z")  # a new episode
    await send(client, fingerprint="fp2", labels={"instance": "web-2:9100"})  # another alert, same target
    [incident] = await settled(client)
    full = await detail(client, incident["id"])
    assert len(full["alerts"]) == 3
    assert [e["kind"] for e in full["timeline"]].count("alert.attached") == 2
    assert [(n["channel"], n["event"]) for n in full["notifications"]] == [("log", "trigger")]


async def test_incident_resolves_only_when_every_attached_alert_resolved(client: Any) -> None:
    await send(client, fingerprint="fp1")
    await send(client, fingerprint="fp2", labels={"instance": "web-2:9100"})
    await send(client, fingerprint="fp1", resolved=True)
    [incident] = await settled(client)
    assert incident["state"] == "escalated"
    await send(client, fingerprint="fp2", labels={"instance": "web-2:9100"}, resolved=True)
    [incident] = await settled(client)
    assert incident["state"] == "resolved"


async def test_a_firing_resend_after_the_resolve_does_not_reopen(client: Any) -> None:
    await send(client, fingerprint="fp1", resolved=True)  # the firing notification was lost (e.g. a 503)
    await send(client, fingerprint="fp1")  # …and arrives late
    assert await settled(client) == []


async def test_after_resolution_a_new_firing_opens_a_new_incident(client: Any) -> None:
    await send(client, fingerprint="fp1")
    await send(client, fingerprint="fp1", resolved=True)
    await settled(client)
    await send(client, fingerprint="fp1", starts_at="2026-11-27T12:00:00Z")
    incidents = await settled(client)
    assert [i["state"] for i in incidents] == ["escalated", "resolved"]
