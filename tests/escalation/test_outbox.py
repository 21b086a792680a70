"""Webhook notifications through the durable outbox: retries, Retry-After, no retry on 4xx, stable ids."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Receiver:
    """A local webhook receiver answering a scripted sequence of statuses (then 200)."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            {"headers": dict(request.headers), "body": await request.json(), "at": time.monotonic()}
        )
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.json_response({"status": status}, status=status, headers=headers)


@pytest.fixture
async def receiver_factory() -> Any:
    servers: list[TestServer] = []

    async def start(script: list[tuple[int, dict[str, str]]]) -> tuple[Receiver, str]:
        receiver = Receiver(script)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return receiver, str(server.make_url("/hook"))

    yield start
    for server in servers:
        await server.close()


async def fire(client: Any) -> None:
    response = await client.post(
        "/v1/alerts", data=json.dumps(load_fixture("am-0.25-firing.json")), headers=AUTH
    )
    assert response.status == 200


async def test_5xx_and_429_are_retried_with_the_same_delivery_id(
    aiohttp_client: Any, make_settings: Any, receiver_factory: Any
) -> None:
    receiver, url = await receiver_factory([(500, {}), (429, {"Retry-After": "1"}), (503, {})])
    client = await aiohttp_client(
        create_app(
            make_settings(notify_webhook_url=url, notify_webhook_token="hook-secret", outbox_backoff_s=0.05)
        )
    )
    await fire(client)
    await eventually(lambda: len(receiver.calls) >= 4, timeout=15)
    ids = {c["headers"]["Idempotency-Key"] for c in receiver.calls}
    assert len(ids) == 1
    assert {c["body"]["delivery_id"] for c in receiver.calls} == ids
    assert all(c["headers"]["Authorization"] == "Bearer hook-secret" for c in receiver.calls)
    assert receiver.calls[0]["body"]["event"] == "trigger"
    assert receiver.calls[0]["body"]["bundle"]["rule"] == "high-error-rate"
    # Retry-After: 1 was honoured between the second and the third attempt
    assert receiver.calls[2]["at"] - receiver.calls[1]["at"] >= 0.9
    incident_id = receiver.calls[0]["body"]["incident_id"]

    async def delivered() -> bool:
        detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
        return any(n["channel"] == "webhook" and n["state"] == "delivered" for n in detail["notifications"])

    await eventually(delivered)
    assert len(receiver.calls) == 4


async def test_400_is_not_retried_and_is_recorded(
    aiohttp_client: Any, make_settings: Any, receiver_factory: Any
) -> None:
    receiver, url = await receiver_factory([(400, {})])
    client = await aiohttp_client(create_app(make_settings(notify_webhook_url=url, outbox_backoff_s=0.05)))
    await fire(client)
    await eventually(lambda: receiver.calls)
    incident_id = receiver.calls[0]["body"]["incident_id"]

    async def failed() -> list[dict[str, Any]]:
        detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
        return [n for n in detail["notifications"] if n["channel"] == "webhook" and n["state"] == "failed"]

    [notification] = await eventually(failed)
    assert "400" in notification["last_error"]
    time_after = time.monotonic()
    await eventually(lambda: time.monotonic() - time_after > 0.5)
    assert len(receiver.calls) == 1


async def test_resolve_is_sent_once_after_the_trigger(
    aiohttp_client: Any, make_settings: Any, receiver_factory: Any
) -> None:
    receiver, url = await receiver_factory([])
    client = await aiohttp_client(create_app(make_settings(notify_webhook_url=url)))
    await fire(client)
    resolved = load_fixture("am-0.25-resolved.json")
    response = await client.post("/v1/alerts", data=json.dumps(resolved), headers=AUTH)
    assert response.status == 200
    await eventually(lambda: len(receiver.calls) == 2)
    assert [c["body"]["event"] for c in receiver.calls] == ["trigger", "resolve"]
    assert receiver.calls[1]["body"]["bundle"]["state"] == "resolved"
    assert receiver.calls[0]["body"]["delivery_id"] != receiver.calls[1]["body"]["delivery_id"]


async def test_a_permanent_failure_goes_to_the_fallback_channel(
    aiohttp_client: Any, make_settings: Any, receiver_factory: Any
) -> None:
    webhook, webhook_url = await receiver_factory([(400, {})])
    slack, slack_url = await receiver_factory([])
    client = await aiohttp_client(
        create_app(
            make_settings(
                notify_webhook_url=webhook_url,
                slack_webhook_url=slack_url,
                notify_routes="critical=webhook",
                notify_fallback="slack",
                outbox_backoff_s=0.05,
            )
        )
    )
    await fire(client)
    await eventually(lambda: slack.calls, timeout=10)
    assert len(webhook.calls) == 1, "the 400 is not retried"
    assert "RESOLVED" not in slack.calls[0]["body"]["text"]
    incident_id = webhook.calls[0]["body"]["incident_id"]
    detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    states = {(n["channel"], n["event"]): n["state"] for n in detail["notifications"]}
    assert states[("webhook", "trigger")] == "failed"
    assert states[("slack", "trigger")] == "delivered"
