"""Prometheus 2.42 + Alertmanager 0.25 + the service: Prometheus scrapes a local redis_exporter stand-in, the
shipped alerting rule RedisDown fires, Alertmanager delivers it, and the shipped rule redis-failure opens its
incident on Deployment default/redis.

The only change to the shipped alerting rules is ``for:`` shortened to 0s, so the test does not wait minutes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import ROOT, TOKEN, eventually
from tests.support import procs
from tests.support.exporter import MetricsExporter, scrape_config

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RedisExporter(MetricsExporter):
    """What redis_exporter reports while its Redis is down."""

    thread_name = "redis-exporter"

    def render(self) -> list[str]:
        return ['redis_up{namespace="default"} 0']


@pytest.fixture
async def service(make_settings: Any) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(make_settings()), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_a_shipped_alerting_rule_fires_through_alertmanager_into_its_incident(
    service: TestServer, tmp_path: Path
) -> None:
    shipped = (ROOT / "rules" / "alerts" / "aitbc.yaml").read_text()
    rules = re.sub(r"(?m)^(\s+)for: \S+$", r"\1for: 0s", shipped)
    am = await asyncio.to_thread(
        procs.start_alertmanager,
        procs.webhook_config(str(service.make_url("/v1/alerts")), bearer=TOKEN),
        tmpdir=tmp_path,
    )
    with RedisExporter() as exporter:
        config = scrape_config("redis", exporter, {"scrape_interval": "1s", "evaluation_interval": "1s"})
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am.port}"]}]}]}
        prometheus = await asyncio.to_thread(
            procs.start_prometheus, config, tmpdir=tmp_path, rule_files={"aitbc.yaml": rules}
        )
        try:
            async with aiohttp.ClientSession() as session:

                async def redis_incident() -> list[dict[str, Any]]:
                    async with session.get(str(service.make_url("/v1/incidents")), headers=AUTH) as response:
                        items = (await response.json())["incidents"]
                    return [i for i in items if i["rule"] == "redis-failure" and i["state"] == "escalated"]

                [incident] = await eventually(redis_incident, timeout=45)
                async with session.get(
                    str(service.make_url(f"/v1/incidents/{incident['id']}")), headers=AUTH
                ) as response:
                    detail = await response.json()
        finally:
            await asyncio.to_thread(prometheus.stop)
            await asyncio.to_thread(am.stop)
    assert incident["target"]["kind"] == "Deployment"
    assert (incident["target"]["namespace"], incident["target"]["name"]) == ("default", "redis")
    alert = detail["alerts"][0]["alert"]
    assert alert["labels"]["alertname"] == "RedisDown" and alert["labels"]["severity"] == "critical"
    assert alert["generatorURL"].startswith(prometheus.url)
    assert detail["bundle"]["runbook"] == "Redis Failure"
    assert (
        any(p["action"] == "kube.rollout_restart" for p in detail["bundle"]["proposals"])
        or detail["findings"]
    )
