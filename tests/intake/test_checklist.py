"""The post-incident checklist people tick: ``POST /v1/incidents/{id}/checklist/{item}`` (approver token) and
``remediator incidents check``; who and when go to the timeline, the report shows ticked and open items by band."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture
from tests.test_cli import run_cli

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-approves"}


async def escalated(client: Any) -> str:
    payload = load_fixture("am-0.25-firing.json")
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200

    async def found() -> list[dict[str, Any]]:
        page = await (await client.get("/v1/incidents?state=escalated", headers=AUTH)).json()
        return list(page["incidents"])

    [incident] = await eventually(found)
    return str(incident["id"])


async def test_ticking_two_items_shows_who_and_when_in_the_timeline_and_the_report(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-approves")))
    incident = await escalated(client)
    first = await client.post(f"/v1/incidents/{incident}/checklist/service-fully-restored", headers=ALICE)
    assert first.status == 200, await first.text()
    body = await first.json()
    assert (body["item"], body["band"], body["ticked_by"]) == ("service-fully-restored", "immediate", "alice")
    second = await client.post(f"/v1/incidents/{incident}/checklist/6", headers=ALICE)  # by number
    assert (await second.json())["item"] == "root-cause-identified"

    detail = await (await client.get(f"/v1/incidents/{incident}", headers=AUTH)).json()
    ticks = [e for e in detail["timeline"] if e["kind"] == "checklist.ticked"]
    assert [(t["data"]["item"], t["data"]["by"]) for t in ticks] == [
        ("service-fully-restored", "alice"),
        ("root-cause-identified", "alice"),
    ]
    entries = {e["id"]: e for e in detail["bundle"]["checklist"]}
    assert len(entries) == 12 and entries["service-fully-restored"]["ticked_by"] == "alice"
    assert {e["band"] for e in entries.values()} == {"immediate", "short_term", "long_term"}

    report = await (await client.get(f"/v1/incidents/{incident}/report", headers=AUTH)).text()
    assert "[x] Service fully restored" in report and "[x] Root cause identified" in report
    assert "[ ] Monitoring normal" in report and "[ ] Process updated" in report
    assert "alice" in report


async def test_unknown_items_are_404_repeats_409_and_the_webhook_token_403(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-approves")))
    incident = await escalated(client)
    unknown = await client.post(f"/v1/incidents/{incident}/checklist/feed-the-cat", headers=ALICE)
    assert unknown.status == 404 and (await unknown.json())["field"] == "item"
    out_of_range = await client.post(f"/v1/incidents/{incident}/checklist/13", headers=ALICE)
    assert out_of_range.status == 404
    no_incident = await client.post("/v1/incidents/nope/checklist/1", headers=ALICE)
    assert no_incident.status == 404 and (await no_incident.json())["field"] == "id"
    webhook = await client.post(f"/v1/incidents/{incident}/checklist/1", headers=AUTH)
    assert webhook.status == 403
    anonymous = await client.post(f"/v1/incidents/{incident}/checklist/1")
    assert anonymous.status == 401
    assert (await client.post(f"/v1/incidents/{incident}/checklist/1", headers=ALICE)).status == 200
    again = await client.post(f"/v1/incidents/{incident}/checklist/service-fully-restored", headers=ALICE)
    assert again.status == 409 and "alice" in (await again.json())["error"]
    detail = await (await client.get(f"/v1/incidents/{incident}", headers=AUTH)).json()
    assert len([e for e in detail["timeline"] if e["kind"] == "checklist.ticked"]) == 1


async def test_the_cli_ticks_an_item_with_an_approver_token(make_settings: Any) -> None:
    server = TestServer(create_app(make_settings(approver_tokens="alice=alice-approves")), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
            incident = await escalated(session)
        url = str(server.make_url("/"))
        ticked = await asyncio.to_thread(
            run_cli,
            "incidents",
            "check",
            incident,
            "post-mortem-scheduled",
            "--url",
            url,
            env={"REMEDIATOR_APPROVER_TOKEN": "alice-approves"},
        )
        assert ticked.returncode == 0, ticked.stderr
        assert "Post-mortem scheduled" in ticked.stdout and "alice" in ticked.stdout
        refused = await asyncio.to_thread(  # the webhook token is no approver token
            run_cli,
            "incidents",
            "check",
            incident,
            "1",
            "--url",
            url,
            env={"REMEDIATOR_APPROVER_TOKEN": TOKEN},
        )
        assert refused.returncode == 1 and "approver" in refused.stderr
    finally:
        await server.close()
