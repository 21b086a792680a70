"""Pages in time, with an injectable clock: a CPU incident whose scale-up verifies for up to 5 minutes is
announced to the information channels when the action starts, paged at alert start + 5 min while verification
goes on, and a later successful verification marks it mitigated and resolves the page.

Real Prometheus scrapes a local cAdvisor-like exporter (the verify probe reads it), the Kubernetes stand-in
takes the scale-up; the service's clock is a fake the test moves (the probes' own windows stay real)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service import keys
from service.app import create_app
from service.lifecycle.timers import EscalationTimers
from tests.conftest import eventually, load_fixture
from tests.integration.test_scenarios import (
    AUTH,
    NS,
    Cadvisor,
    cluster,
    localize,
    settings_for,
    start_prometheus,
)

__all__ = ["cluster"]

ROUTING_KEY = "K" * 32


class Clock:
    """The service's time: real time shifted by what the test adds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]], list[dict[str, Any]]]]:
    """PagerDuty Events v2 and a signed-webhook receiver, each recording what it got."""
    pages: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []

    async def enqueue(request: web.Request) -> web.Response:
        event = await request.json()
        pages.append(event)
        return web.json_response({"status": "success", "dedup_key": event["dedup_key"]}, status=202)

    async def hook(request: web.Request) -> web.Response:
        hooks.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v2/enqueue", enqueue)
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, pages, hooks
    await server.close()


async def test_verification_past_the_page_deadline_pages_then_mitigates_and_resolves_the_page(
    aiohttp_client: Any,
    make_settings: Any,
    rules_dir: Path,
    cluster: Any,
    tmp_path: Path,
    receivers: tuple[TestServer, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    kube, kubeconfig = cluster
    server, pages, hooks = receivers
    clock = Clock()
    pods = [p["metadata"]["name"] for p in kube.pods_of(NS, "coordinator")]
    with Cadvisor(pods) as exporter:
        prometheus = await start_prometheus(exporter, tmp_path)
        try:
            localize(
                rules_dir,
                "high-cpu-memory",
                {"{window: 5m, warn_ratio: 0.9}": "{window: 10s, warn_ratio: 0.9}"},
            )
            settings = settings_for(
                make_settings,
                kubeconfig,
                prometheus_url=prometheus.url,
                pagerduty_routing_key=ROUTING_KEY,
                pagerduty_url=str(server.make_url("/v2/enqueue")),
                notify_webhook_url=str(server.make_url("/hook")),
            )
            client = await aiohttp_client(create_app(settings, clock=clock))
            started = clock() - 60  # the alert fired a minute before it reached us
            payload = load_fixture("am-0.25-firing.json")
            [entry] = payload["alerts"]
            entry["labels"] = {
                "alertname": "ContainerCpuThrottled",
                "namespace": NS,
                "deployment": "coordinator",
            }
            entry["startsAt"] = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
            response = await client.post(
                "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
            )
            assert response.status == 200

            # the action starts: announced at once to the information channels, no page yet
            async def announced() -> dict[str, Any] | None:
                return next((h for h in hooks if h["event"] == "announce"), None)

            announcement = await eventually(announced, timeout=60)
            assert "automatic remediation in progress: kube.scale" in announcement["bundle"]["reason"]
            due = datetime.fromisoformat(announcement["bundle"]["page_due_at"]).timestamp()
            assert abs(due - (started + 300)) < 1, "paged at alert start + 5 min (= the MTTR target)"
            [incident] = (await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"]
            assert incident["state"] in ("remediating", "verifying") and pages == []

            # the verify probe still sees the load (the scaled pods take the load only later)
            timers = EscalationTimers(
                client.app[keys.STORE], client.app[keys.LIFECYCLE], on_notify=client.app[keys.OUTBOX].wake
            )
            assert await timers.run_once(now=due - 1) == 0
            clock.offset = due + 1 - time.time()  # the page deadline has passed
            assert await timers.run_once(now=clock()) == 1
            await eventually(lambda: [p for p in pages if p["event_action"] == "trigger"], timeout=20)
            paged = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
            assert paged["state"] == "escalated" and "page deadline" in paged["reason"]
            assert not [p for p in pages if p["event_action"] == "resolve"]

            exporter.hot = False  # the load spreads over five replicas: verification passes
            await eventually(lambda: [p for p in pages if p["event_action"] == "resolve"], timeout=60)
        finally:
            await asyncio.to_thread(prometheus.stop)
    detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    assert detail["state"] == "mitigated", detail["reason"]
    assert [p["event_action"] for p in pages] == ["trigger", "resolve"]
    assert {p["dedup_key"] for p in pages} == {incident["id"]}
    kinds = [e["kind"] for e in detail["timeline"]]
    assert (
        kinds.index("incident.announced")
        < kinds.index("incident.escalated")
        < kinds.index("incident.mitigated")
    )
    assert len([w for w in kube.writes() if w.path.endswith("/scale")]) == 1
