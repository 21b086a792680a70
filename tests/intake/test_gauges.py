"""The store-derived gauges of /metrics are counted off the request path: a scrape never queries the store,
a state no incident is in any more reads 0, and while the store is down the last values stay."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from service import keys
from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def post_alert(client: Any, *, status: str = "firing") -> None:
    payload = load_fixture("am-0.25-firing.json" if status == "firing" else "am-0.25-resolved.json")
    response = await client.post("/v1/alerts", data=json.dumps(payload), headers=AUTH)
    assert response.status == 200


async def metrics(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    text: str = await response.text()
    return text


async def showing(client: Any, *lines: str) -> str | None:
    text = await metrics(client)
    return text if all(line in text for line in lines) else None


async def test_a_scrape_shows_the_last_count_and_never_queries_the_store(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    """Counted at start and after the dispatcher finishes a row: a change made to the store behind the
    service's back shows in no number of scrapes until the next count (here: five minutes away)."""
    client = await aiohttp_client(create_app(make_settings(metrics_refresh_s=300)))
    await post_alert(client)
    await eventually(lambda: showing(client, 'remediator_incidents{state="escalated"} 1.0'))
    with sqlite3.connect(tmp_path / "remediator.db") as conn:
        conn.execute("UPDATE incidents SET state = 'mitigated'")
    for _ in range(20):
        text = await metrics(client)
        assert 'remediator_incidents{state="escalated"} 1.0' in text
        assert 'remediator_incidents{state="mitigated"} 0.0' in text


async def test_a_state_that_empties_reads_zero_and_the_last_values_stay_while_the_store_is_down(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(metrics_refresh_s=0.05)))
    await post_alert(client)
    await eventually(lambda: showing(client, 'remediator_incidents{state="escalated"} 1.0'))
    await post_alert(client, status="resolved")
    last = await eventually(
        lambda: showing(
            client,
            'remediator_incidents{state="escalated"} 0.0',
            'remediator_incidents{state="resolved"} 1.0',
            "remediator_inbox_backlog 0.0",
        )
    )
    # the store goes away: its file is gone, a directory in its place, every new connection refused
    await client.server.app[keys.STORE].close()
    database = tmp_path / "remediator.db"
    database.rename(tmp_path / "moved.db")
    database.mkdir()
    with capture_logs() as logs:
        await eventually(lambda: [e for e in logs if e["event"] == "metrics.refresh_failed"])
    assert (await client.get("/readyz")).status == 503
    refused = await client.post(
        "/v1/alerts", data=json.dumps(load_fixture("am-0.25-firing.json")), headers=AUTH
    )
    assert (refused.status, refused.headers["Retry-After"]) == (503, "1"), "Alertmanager retries"
    text = await metrics(client)
    for line in last.splitlines():
        if line.startswith(
            ("remediator_incidents{", "remediator_inbox_backlog", "remediator_outbox_backlog")
        ):
            assert line in text, f"{line!r} changed while the store was down"
