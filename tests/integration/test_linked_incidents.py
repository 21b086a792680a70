"""Dependencies between runbooks, with real PostgreSQL and Redis: a database outage is one incident that pages
once. The coordinator's health alert it causes opens an incident linked to it (``caused_by``), runs no
automatic restart (guard ``dependency``) and pages nobody on its own; PostgreSQL back → both resolve, and each
report shows the link."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import eventually, load_fixture
from tests.integration.test_scenarios import AUTH, NS, cluster, http_server, localize, settings_for
from tests.support import procs

__all__ = ["cluster"]  # the fixture, shared with the runbook scenarios

ALICE = {"Authorization": "Bearer alice-approves"}
ROUTING_KEY = "R" * 32


@pytest.fixture
async def pagerduty() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    """A PagerDuty Events v2 endpoint that accepts every well-formed event and records it."""
    received: list[dict[str, Any]] = []

    async def enqueue(request: web.Request) -> web.Response:
        event = await request.json()
        assert event["routing_key"] == ROUTING_KEY and event["event_action"] in (
            "trigger",
            "acknowledge",
            "resolve",
        )
        received.append(event)
        return web.json_response({"status": "success", "dedup_key": event["dedup_key"]}, status=202)

    app = web.Application()
    app.router.add_post("/v2/enqueue", enqueue)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, received
    await server.close()


def alert(alertname: str, status: str = "firing") -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")
    payload["status"] = status
    [entry] = payload["alerts"]
    entry["status"] = status
    entry["labels"] = {"alertname": alertname, "namespace": NS, "severity": "critical"}
    entry["fingerprint"] = alertname.lower()
    if status == "resolved":
        entry["endsAt"] = "2026-11-27T10:30:00Z"
    return payload


async def post(client: Any, payload: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def incident_of(client: Any, rule: str, state: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        page = await (await client.get(f"/v1/incidents?rule={rule}&state={state}", headers=AUTH)).json()
        if not page["incidents"]:
            return None
        answer: dict[str, Any] = await (
            await client.get(f"/v1/incidents/{page['incidents'][0]['id']}", headers=AUTH)
        ).json()
        return answer

    detail: dict[str, Any] = await eventually(found, timeout=60)
    return detail


async def test_a_database_outage_pages_once_and_holds_the_coordinator_it_breaks(
    aiohttp_client: Any,
    make_settings: Any,
    rules_dir: Path,
    cluster: Any,
    tmp_path: Path,
    pagerduty: tuple[TestServer, list[dict[str, Any]]],
) -> None:
    kube, kubeconfig = cluster
    pd_server, pages = pagerduty
    db_up = {"value": False}
    health = await http_server(
        {"/v1/health": lambda: (200, {"ok": True}) if db_up["value"] else (503, {"db": "unreachable"})}
    )
    with procs.start_postgres(tmp_path) as pg, procs.start_redis(tmp_path) as redis_server:
        pg.stop()  # the database is down
        url = str(health.make_url("/v1/health"))
        localize(
            rules_dir,
            "coordinator-api-outage",
            {
                "http://coordinator.{{ target.namespace }}:8011/v1/health": url,
                'host: "postgresql.{{ target.namespace }}", port: 5432': f'host: "127.0.0.1", port: {pg.port}',
                '{host: "redis.{{ target.namespace }}"}': f'{{host: "127.0.0.1", port: {redis_server.port}}}',
            },
        )
        localize(
            rules_dir,
            "database-failure",
            {
                'host: "postgresql-replica.{{ target.namespace }}"': 'host: "127.0.0.1"',
                "http://coordinator.{{ target.namespace }}:8011/v1/health": url,
            },
        )
        settings = settings_for(
            make_settings,
            kubeconfig,
            monitor_postgres_dsn=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
            monitor_redis_url=redis_server.url,
            pagerduty_routing_key=ROUTING_KEY,
            pagerduty_url=str(pd_server.make_url("/v2/enqueue")),
        )
        client = await aiohttp_client(create_app(settings))

        await post(client, alert("PostgresDown"))
        database = await incident_of(client, "database-failure", "escalated")
        await post(client, alert("CoordinatorDown"))
        coordinator = await incident_of(client, "coordinator-api-outage", "escalated")

        # linked, in both directions; held under the database incident (level 0: no page of its own)
        assert coordinator["caused_by"] == database["id"]
        assert coordinator["escalation_level"] == 0
        assert coordinator["bundle"]["caused_by"]["incident_id"] == database["id"]
        linked = [e for e in coordinator["timeline"] if e["kind"] == "incident.linked"]
        assert linked and database["id"] in linked[0]["message"]
        # no automatic restart: the guard names the failing dependency
        restart = next(a for a in coordinator["actions"] if a["action"] == "kube.rollout_restart")
        assert restart["status"] == "blocked" and restart["guard"] == "dependency", restart
        assert "database-failure" in restart["reason"] or "db" in restart["reason"]
        assert not [w for w in kube.writes() if "restartedAt" in json.dumps(w.body)]
        # one page: the database incident's
        await eventually(lambda: len(pages) >= 1, timeout=20)
        triggers = [p for p in pages if p["event_action"] == "trigger"]
        assert [p["dedup_key"] for p in triggers] == [database["id"]]
        channels = {n["channel"]: n["event"] for n in coordinator["notifications"]}
        assert "pagerduty" not in channels and channels.get("log") == "linked"

        # PostgreSQL is back: both alerts resolve, both incidents resolve; still one page, now resolved
        pg.start()
        db_up["value"] = True
        await post(client, alert("CoordinatorDown", "resolved"))
        await post(client, alert("PostgresDown", "resolved"))
        coordinator = await incident_of(client, "coordinator-api-outage", "resolved")
        database = await incident_of(client, "database-failure", "resolved")
        await eventually(lambda: any(p["event_action"] == "resolve" for p in pages), timeout=20)
        assert [p["dedup_key"] for p in pages if p["event_action"] == "trigger"] == [database["id"]]
        assert [p["dedup_key"] for p in pages if p["event_action"] == "resolve"] == [database["id"]]

        for this, other in ((coordinator, database), (database, coordinator)):
            report = await (await client.get(f"/v1/incidents/{this['id']}/report", headers=AUTH)).text()
            assert other["id"] in report, f"the report of {this['rule']} does not show the link"
    await health.close()
