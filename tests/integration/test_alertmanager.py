"""A real Alertmanager 0.25 delivers to the running service: firing → incident, resolved → resolved,
and a store that cannot commit answers 503 so that Alertmanager's retry lands later."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.settings import Settings
from tests.conftest import TOKEN, eventually
from tests.support import procs

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def service(make_settings: Any) -> Any:
    settings: Settings = make_settings(store_timeout_s=0.5)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server, settings
    await server.close()


async def list_incidents(server: TestServer, query: str = "") -> list[dict[str, Any]]:
    url = str(server.make_url(f"/v1/incidents{query}"))
    async with aiohttp.ClientSession() as session, session.get(url, headers=AUTH) as response:
        assert response.status == 200
        data = await response.json()
        return list(data["incidents"])


async def test_alert_posted_to_alertmanager_becomes_an_incident_and_resolves(
    service: Any, tmp_path: Path
) -> None:
    server, _settings = service
    config = procs.webhook_config(str(server.make_url("/v1/alerts")), bearer=TOKEN)
    am = await asyncio.to_thread(procs.start_alertmanager, config, tmpdir=tmp_path)
    try:
        labels = {
            "alertname": "HighErrorRate",
            "service": "payments",
            "namespace": "shop",
            "severity": "critical",
        }
        alert = procs.make_alert(labels, {"summary": "5xx above 5%"})
        await asyncio.to_thread(am.post_alerts, [alert])
        [incident] = await eventually(lambda: list_incidents(server, "?state=escalated"), timeout=20)
        assert incident["target"]["namespace"] == "shop" and incident["target"]["name"] == "payments"
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        await asyncio.to_thread(am.post_alerts, [{**alert, "endsAt": ended}])
        [resolved] = await eventually(lambda: list_incidents(server, "?state=resolved"), timeout=20)
        assert resolved["id"] == incident["id"]
    finally:
        await asyncio.to_thread(am.stop)


async def test_store_that_cannot_commit_answers_503_and_alertmanager_retry_lands(
    service: Any, tmp_path: Path
) -> None:
    server, settings = service
    db_path = settings.store_url.removeprefix("sqlite:///")
    # another process holds the write lock of the SQLite store: every commit of the service fails
    blocker = sqlite3.connect(db_path, timeout=5, isolation_level=None)
    await eventually(lambda: _try_exclusive(blocker))  # the service's own short transactions come and go
    config = procs.webhook_config(str(server.make_url("/v1/alerts")), bearer=TOKEN)
    am = await asyncio.to_thread(procs.start_alertmanager, config, tmpdir=tmp_path)
    try:
        labels = {"alertname": "HighErrorRate", "service": "billing", "severity": "critical"}
        await asyncio.to_thread(am.post_alerts, [procs.make_alert(labels)])

        async def refused() -> bool:
            async with (
                aiohttp.ClientSession() as session,
                session.get(str(server.make_url("/metrics"))) as response,
            ):
                return 'remediator_intake_requests_total{code="503"}' in await response.text()

        await eventually(refused, timeout=15)
        assert _count_inbox(blocker) == 0  # nothing was stored while the lock was held
        blocker.execute("ROLLBACK")
        [incident] = await eventually(lambda: list_incidents(server), timeout=30)
        assert incident["target"]["name"] == "billing"
    finally:
        blocker.close()
        await asyncio.to_thread(am.stop)


def _try_exclusive(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError:
        return False
    return True


def _count_inbox(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])
