"""PostgreSQL restarted during a run: intake answers 503 while it is down, Alertmanager's retries land
afterwards, and no alert is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import TOKEN, eventually
from tests.support import procs

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_alerts_sent_while_postgresql_restarts_are_not_lost(make_settings: Any, tmp_path: Path) -> None:
    with procs.start_postgres(tmp_path / "pg") as pg:
        server = TestServer(
            create_app(make_settings(store_url=pg.dsn, store_timeout_s=1.0)), host="127.0.0.1"
        )
        await server.start_server()
        am = await asyncio.to_thread(
            procs.start_alertmanager,
            procs.webhook_config(str(server.make_url("/v1/alerts")), bearer=TOKEN),
            tmpdir=tmp_path,
        )
        try:
            async with aiohttp.ClientSession() as session:

                async def incidents() -> list[dict[str, Any]]:
                    async with session.get(str(server.make_url("/v1/incidents")), headers=AUTH) as response:
                        if response.status != 200:
                            return []
                        return list((await response.json())["incidents"])

                async def refused() -> bool:
                    async with session.get(str(server.make_url("/metrics"))) as response:
                        return 'remediator_intake_requests_total{code="503"}' in await response.text()

                first = procs.make_alert(
                    {"alertname": "HighErrorRate", "service": "before", "severity": "critical"}
                )
                await asyncio.to_thread(am.post_alerts, [first])
                await eventually(lambda: _names(incidents()), timeout=20)
                await asyncio.to_thread(pg.stop)  # the database goes away mid-run
                during = [
                    procs.make_alert(
                        {"alertname": "HighErrorRate", "service": f"during-{i}", "severity": "critical"}
                    )
                    for i in range(5)
                ]
                await asyncio.to_thread(am.post_alerts, during)
                await eventually(refused, timeout=20)
                await asyncio.sleep(1.0)
                await asyncio.to_thread(pg.start)  # …and comes back on the same data
                names = await eventually(lambda: _names(incidents(), at_least=6), timeout=60)
        finally:
            await asyncio.to_thread(am.stop)
            await server.close()
    assert names == {"before", *(f"during-{i}" for i in range(5))}


async def _names(pending: Any, *, at_least: int = 1) -> set[str] | None:
    items = await pending
    names = {i["target"]["name"] for i in items}
    return names if len(names) >= at_least else None
