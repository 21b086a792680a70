"""PagerDuty Events v2: one alert per incident, resolve on resolution, retries on 429/5xx, none on 400."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from service import errors
from service.app import create_app
from service.escalation import bundle, links
from service.escalation.channels import pagerduty
from service.model import alerts, incidents
from service.records.outbox import Delivery
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"  # 32 characters, as PagerDuty's integration keys
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


def invalid(*problems: str) -> tuple[int, dict[str, Any]]:
    return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": list(problems)}


class PagerDutyReceiver:
    """Answers like ``events.pagerduty.com/v2/enqueue``: validates the event, 202 or 400 with ``errors``.

    ``script`` forces the answers of the first calls (status, headers); the rest are validated.
    """

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []
        self.alerts: dict[str, str] = {}  # dedup_key → triggered | acknowledged | resolved

    def validate(self, event: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(event, dict):
            return invalid("Event object must be a JSON object")
        if event.get("routing_key") != ROUTING_KEY:
            return invalid("Length of 'routing_key' is incorrect (should be 32 characters)")
        action = event.get("event_action")
        if action not in ACTIONS:
            return invalid("'event_action' is missing or blank")
        key = event.get("dedup_key")
        if action != "trigger" and not key:
            return invalid("'dedup_key' is required for acknowledge and resolve")
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            return invalid("'dedup_key' must be a string of at most 255 characters")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                return invalid("'payload' is missing")
            problems = [
                f"'payload.{f}' is missing or blank" for f in ("summary", "source") if not payload.get(f)
            ]
            if payload.get("severity") not in SEVERITIES:
                problems.append("'payload.severity' must be one of critical, error, warning, info")
            if len(str(payload.get("summary", ""))) > 1024:
                problems.append("'payload.summary' is longer than 1024 characters")
            if problems:
                return invalid(*problems)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.calls.append({"raw": raw, "at": time.monotonic()})
        if self.script:
            status, headers = self.script.pop(0)
            return web.json_response(
                {"status": "throttled" if status == 429 else "error"}, status=status, headers=headers
            )
        try:
            event = json.loads(raw)
        except ValueError:
            status, answer = invalid("Malformed JSON")
        else:
            status, answer = self.validate(event)
        if status == 202:
            state = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}
            self.alerts[event["dedup_key"]] = state[event["event_action"]]
        return web.json_response(answer, status=status)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(c["raw"]) for c in self.calls]


@pytest.fixture
async def pagerduty_factory() -> Any:
    servers: list[TestServer] = []

    async def start(script: list[tuple[int, dict[str, str]]] | None = None) -> tuple[PagerDutyReceiver, str]:
        receiver = PagerDutyReceiver(script or [])
        app = web.Application()
        app.router.add_post("/v2/enqueue", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return receiver, str(server.make_url("/v2/enqueue"))

    yield start
    for server in servers:
        await server.close()


def episode(status: str, starts_at: str, ends_at: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    """The captured Alertmanager notification for one episode (``startsAt``) of the same alert."""
    document = copy.deepcopy(load_fixture(f"am-0.25-{status}.json"))
    for alert in document["alerts"]:
        alert.update(startsAt=starts_at, endsAt=ends_at)
    return document


async def post(client: Any, document: dict[str, Any]) -> None:
    response = await client.post("/v1/alerts", data=json.dumps(document), headers=AUTH)
    assert response.status == 200


async def notifications(client: Any, incident_id: str, channel: str = "pagerduty") -> list[dict[str, Any]]:
    detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    return [n for n in detail["notifications"] if n["channel"] == channel]


async def test_one_pagerduty_alert_per_incident_however_often_alertmanager_resends(
    aiohttp_client: Any, make_settings: Any, pagerduty_factory: Any
) -> None:
    receiver, url = await pagerduty_factory()
    client = await aiohttp_client(
        create_app(make_settings(pagerduty_routing_key=ROUTING_KEY, pagerduty_url=url, outbox_backoff_s=0.05))
    )
    firing = load_fixture("am-0.25-firing.json")
    starts = [firing["alerts"][0]["startsAt"], "2026-11-27T10:31:00Z", "2026-11-27T11:02:00Z"]
    for _ in range(5):  # Alertmanager re-sends the group every repeat_interval
        await post(client, firing)
    for starts_at in starts[1:]:  # the alert stops and fires again while the incident is open
        await post(client, episode("firing", starts_at))

    [incident] = (await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"]
    incident_id = incident["id"]

    async def all_episodes_attached() -> bool:
        detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
        return len(detail["alerts"]) == 3

    await eventually(all_episodes_attached)
    await eventually(lambda: receiver.alerts.get(incident_id) == "triggered")

    for starts_at in starts:
        await post(client, episode("resolved", starts_at, ends_at="2026-11-27T11:30:00Z"))
    await eventually(lambda: receiver.alerts.get(incident_id) == "resolved")

    assert [(e["event_action"], e["dedup_key"]) for e in receiver.events] == [
        ("trigger", incident_id),
        ("resolve", incident_id),
    ]
    assert receiver.alerts == {incident_id: "resolved"}  # one PagerDuty alert, opened and closed
    trigger = receiver.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert "checkout" in trigger["payload"]["summary"]
    sent = await notifications(client, incident_id)
    assert [(n["event"], n["state"]) for n in sent] == [("trigger", "delivered"), ("resolve", "delivered")]


async def test_429_and_5xx_are_retried_with_the_same_body(
    aiohttp_client: Any, make_settings: Any, pagerduty_factory: Any
) -> None:
    receiver, url = await pagerduty_factory([(429, {"Retry-After": "1"}), (500, {}), (503, {})])
    client = await aiohttp_client(
        create_app(make_settings(pagerduty_routing_key=ROUTING_KEY, pagerduty_url=url, outbox_backoff_s=0.05))
    )
    await post(client, load_fixture("am-0.25-firing.json"))
    await eventually(lambda: len(receiver.calls) >= 4, timeout=15)
    incident_id = receiver.events[0]["dedup_key"]

    async def delivered() -> bool:
        return [n["state"] for n in await notifications(client, incident_id)] == ["delivered"]

    await eventually(delivered)
    assert len(receiver.calls) == 4
    assert len({c["raw"] for c in receiver.calls}) == 1  # byte for byte the same event each time
    assert receiver.calls[1]["at"] - receiver.calls[0]["at"] >= 0.9  # Retry-After: 1 was honoured
    assert receiver.alerts == {incident_id: "triggered"}


async def test_400_is_not_retried_and_pagerdutys_errors_are_recorded_without_the_routing_key(
    aiohttp_client: Any, make_settings: Any, pagerduty_factory: Any
) -> None:
    wrong_key = "not-the-routing-key-of-this-service"  # PagerDuty answers 400: the key is malformed
    receiver, url = await pagerduty_factory()
    with capture_logs() as logs:
        client = await aiohttp_client(
            create_app(
                make_settings(pagerduty_routing_key=wrong_key, pagerduty_url=url, outbox_backoff_s=0.05)
            )
        )
        await post(client, load_fixture("am-0.25-firing.json"))
        await eventually(lambda: receiver.calls)
        incident_id = receiver.events[0]["dedup_key"]

        async def failed() -> list[dict[str, Any]]:
            return [n for n in await notifications(client, incident_id) if n["state"] == "failed"]

        [notification] = await eventually(failed)
        started = time.monotonic()
        await eventually(lambda: time.monotonic() - started > 0.5)
    assert len(receiver.calls) == 1
    assert notification["attempts"] == 1
    assert "400" in notification["last_error"]
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in notification["last_error"]
    assert wrong_key not in notification["last_error"]
    assert wrong_key not in repr(logs)


def _bundle(incident_id: str) -> dict[str, Any]:
    alert = alerts.Alert.model_validate(load_fixture("am-0.25-firing.json")["alerts"][0])
    return bundle.build(
        incident_id=incident_id,
        rule_name="high-error-rate",
        runbook="High HTTP Error Rate",
        severity="warning",
        mttr_target_s=300.0,
        state="escalated",
        reason="no automatic remediation",
        target=incidents.TargetRef(kind="Deployment", namespace="default", name="checkout"),
        opened_at=1_790_000_000.0,
        now=1_790_000_060.0,
        alert_list=[alert],
        suggested=[],
        base_url="http://remediator.example",
        link_policy=links.policy(["runbooks.example", "prometheus.example"], "http://remediator.example"),
    ).model_dump(mode="json")


def _delivery(event: str, incident_id: str = "inc-1") -> Delivery:
    return Delivery(1, f"d-{event}", incident_id, "pagerduty", event, {"bundle": _bundle(incident_id)}, 1)


async def test_escalations_retrigger_the_same_alert_acknowledge_acknowledges_information_is_not_sent(
    pagerduty_factory: Any,
) -> None:
    receiver, url = await pagerduty_factory()
    async with ClientSession() as session:
        notifier = pagerduty.PagerDutyNotifier(
            session, routing_key=ROUTING_KEY, url=url, source="http://remediator.example"
        )
        with capture_logs() as logs:
            for event in ("trigger", "escalate:2", "announce", "acknowledge", "escalate:3", "resolve"):
                await notifier.send(_delivery(event))
    assert [(e["event_action"], e["dedup_key"]) for e in receiver.events] == [
        ("trigger", "inc-1"),
        ("trigger", "inc-1"),
        ("acknowledge", "inc-1"),
        ("trigger", "inc-1"),
        ("resolve", "inc-1"),
    ]
    assert receiver.alerts == {"inc-1": "resolved"}
    assert all(e["routing_key"] == ROUTING_KEY for e in receiver.events)
    [skipped] = [e for e in logs if e["event"] == "notify.skipped"]
    assert skipped["notification"] == "announce"  # information for the other channels, not a page
    assert ROUTING_KEY not in repr(logs)


async def test_an_unreachable_pagerduty_is_transient() -> None:
    closed = "http://127.0.0.1:9/v2/enqueue"  # the discard port: nothing listens
    async with ClientSession() as session:
        notifier = pagerduty.PagerDutyNotifier(session, routing_key=ROUTING_KEY, url=closed, source="s")
        with pytest.raises(errors.Transient) as caught:
            await notifier.send(_delivery("trigger"))
    assert "pagerduty unreachable" in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)
