"""Slack incoming webhook: one message per incident, at most one per second, Retry-After honoured."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from service import errors
from service.app import create_app
from service.escalation.channels import slack
from service.records.outbox import Delivery
from tests.conftest import TOKEN, eventually, load_fixture
from tests.escalation.test_render_markdown import sample_bundle

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MAX_BLOCKS = 50


class SlackReceiver:
    """Answers like a Slack incoming webhook: ``ok``, 400 ``invalid_payload``/``invalid_blocks``, and 429
    ``rate_limited`` (Retry-After: 1) to a message less than a second after the previous one.

    ``script`` forces the answers of the first calls (status, text, headers).
    """

    def __init__(self, script: list[tuple[int, str, dict[str, str]]] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []
        self.last_accepted: float | None = None

    def answer(self, raw: bytes, at: float) -> tuple[int, str, dict[str, str]]:
        if self.last_accepted is not None and at - self.last_accepted < 1.0:
            return 429, "rate_limited", {"Retry-After": "1"}
        try:
            message = json.loads(raw)
        except ValueError:
            return 400, "invalid_payload", {}
        if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
            return 400, "no_text", {}
        if len(message.get("blocks", [])) > MAX_BLOCKS:
            return 400, "invalid_blocks", {}
        return 200, "ok", {}

    async def handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        raw = await request.read()
        status, text, headers = self.script.pop(0) if self.script else self.answer(raw, at)
        if status == 200:
            self.last_accepted = at
        self.calls.append({"raw": raw, "at": at, "status": status, "text": text})
        return web.Response(status=status, text=text, headers=headers, content_type="text/plain")

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["status"] == 200]


@pytest.fixture
async def slack_factory() -> Any:
    servers: list[TestServer] = []

    async def start(script: list[tuple[int, str, dict[str, str]]] | None = None) -> tuple[SlackReceiver, str]:
        receiver = SlackReceiver(script)
        app = web.Application()
        app.router.add_post("/services/T000/B000/XXXX", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return receiver, str(server.make_url("/services/T000/B000/XXXX"))

    yield start
    for server in servers:
        await server.close()


def burst(count: int) -> dict[str, Any]:
    """One Alertmanager notification with ``count`` alerts on ``count`` different Deployments."""
    document = copy.deepcopy(load_fixture("am-0.25-firing.json"))
    template = document["alerts"][0]
    document["alerts"] = []
    for i in range(count):
        alert = copy.deepcopy(template)
        alert["labels"]["service"] = f"shop-{i:02d}"
        alert["fingerprint"] = f"{0xAC36B8D065D40000 + i:016x}"
        document["alerts"].append(alert)
    return document


async def test_a_burst_of_incidents_is_paced_to_one_message_per_second_and_retry_after_is_honoured(
    aiohttp_client: Any, make_settings: Any, slack_factory: Any
) -> None:
    receiver, url = await slack_factory(
        [(200, "ok", {}), (200, "ok", {}), (429, "rate_limited", {"Retry-After": "2"})]
    )
    client = await aiohttp_client(create_app(make_settings(slack_webhook_url=url, outbox_backoff_s=0.05)))
    response = await client.post("/v1/alerts", data=json.dumps(burst(20)), headers=AUTH)
    assert response.status == 200

    await eventually(lambda: len(receiver.accepted) == 20, timeout=40)

    statuses = [c["status"] for c in receiver.calls]
    assert statuses.count(429) == 1 and statuses.count(200) == 20 and len(statuses) == 21
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(receiver.calls, receiver.calls[1:])]
    assert min(gaps) >= 0.95, gaps  # never faster than one message per second
    assert gaps[2] >= 1.95, gaps  # after "429, Retry-After: 2" nothing reached Slack for 2 s
    assert len({c["raw"] for c in receiver.accepted}) == 20  # one message per incident
    for call in receiver.calls:
        message = json.loads(call["raw"])
        assert len(message.get("blocks", [])) <= MAX_BLOCKS
        assert message.get("text")  # the notification text of clients that do not show blocks

    page = (await (await client.get("/v1/incidents?limit=100", headers=AUTH)).json())["incidents"]
    assert len(page) == 20

    async def all_delivered() -> bool:
        for incident in page:
            detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
            if [n["state"] for n in detail["notifications"] if n["channel"] == "slack"] != ["delivered"]:
                return False
        return True

    await eventually(all_delivered)


def _delivery(event: str = "trigger") -> Delivery:
    document = sample_bundle().model_dump(mode="json")  # the outbox carries the bundle's JSON
    return Delivery(1, "d-1", "inc-1", "slack", event, {"bundle": document}, 1)


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (400, "invalid_payload", errors.Permanent),
        (403, "action_prohibited", errors.Permanent),
        (404, "no_service", errors.Permanent),
        (410, "channel_is_archived", errors.Permanent),
        (500, "internal_error", errors.Transient),
        (503, "service_unavailable", errors.Transient),
    ],
)
async def test_slack_answers_are_translated(
    slack_factory: Any, status: int, text: str, expected: type[Exception]
) -> None:
    receiver, url = await slack_factory([(status, text, {})])
    async with ClientSession() as session:
        notifier = slack.SlackNotifier(session, url)
        with pytest.raises(expected) as caught:
            await notifier.send(_delivery("mitigated"))
    assert type(caught.value) is expected
    assert text in str(caught.value)
    assert url not in str(caught.value)
    assert len(receiver.calls) == 1


async def test_an_unreachable_webhook_is_transient_and_the_url_is_not_disclosed() -> None:
    url = "http://127.0.0.1:9/services/T000/B000/SECRET-PART"  # the discard port: nothing listens
    async with ClientSession() as session:
        with pytest.raises(errors.Transient) as caught:
            await slack.SlackNotifier(session, url).send(_delivery())
    assert "slack unreachable" in str(caught.value)
    assert "SECRET-PART" not in str(caught.value)


def test_the_webhook_url_must_be_http_and_is_never_quoted_when_refused(make_settings: Any) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        make_settings(slack_webhook_url="hooks.slack.com/services/T000/B000/SECRET-PART")
    assert "REMEDIATOR_SLACK_WEBHOOK_URL" in str(caught.value)
    assert "SECRET-PART" not in str(caught.value)
    assert make_settings(slack_webhook_url=" ").slack_webhook_url is None  # empty: Slack is off
