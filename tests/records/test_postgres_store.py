"""The service on PostgreSQL: the same flows as on SQLite, and two replicas sharing one database take every
alert once — one incident per target, one page per incident, nothing left behind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import sqlalchemy as sa

from service.app import create_app
from service.records import schema
from service.records.store import Store
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def alert(fingerprint: str, service: str, *, resolved: bool = False) -> str:
    payload = load_fixture("am-0.25-resolved.json" if resolved else "am-0.25-firing.json")
    payload["alerts"][0]["fingerprint"] = fingerprint
    payload["alerts"][0]["labels"]["service"] = service
    return json.dumps(payload)


async def post(client: Any, body: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200
    result: dict[str, Any] = await response.json()
    return result


async def test_intake_incident_and_resolution_on_postgresql(
    aiohttp_client: Any, make_settings: Any, postgres_url: str
) -> None:
    client = await aiohttp_client(create_app(make_settings(store_url=postgres_url)))
    assert await post(client, alert("fp1", "checkout")) == {"accepted": 1, "duplicates": 0}
    assert await post(client, alert("fp1", "checkout")) == {"accepted": 0, "duplicates": 1}

    async def listed(query: str) -> list[dict[str, Any]]:
        return list((await (await client.get(f"/v1/incidents{query}", headers=AUTH)).json())["incidents"])

    [incident] = await eventually(lambda: listed("?state=escalated"))
    await post(client, alert("fp1", "checkout", resolved=True))
    [resolved] = await eventually(lambda: listed("?state=resolved"))
    assert resolved["id"] == incident["id"]
    detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    assert [e["kind"] for e in detail["timeline"]][-1] == "incident.resolved"
    assert [(f["id"], f["status"]) for f in detail["findings"]] == [
        ("pods", "skipped"),
        ("events", "skipped"),
    ]


async def test_two_replicas_on_one_database_take_every_alert_once(
    aiohttp_client: Any, make_settings: Any, postgres_url: str
) -> None:
    settings = make_settings(store_url=postgres_url)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    bodies = [alert(f"fp{i}", f"svc-{i % 10}") for i in range(50)]
    # Alertmanager HA: every alert reaches both replicas
    answers = await asyncio.gather(*(post(c, b) for b in bodies for c in (first, second)))
    assert sum(a["accepted"] for a in answers) == 50 and sum(a["duplicates"] for a in answers) == 50
    store = Store.open(postgres_url)
    try:

        async def settled() -> bool:
            async with store.read() as conn:
                pending = await conn.scalar(
                    sa.select(sa.func.count()).select_from(schema.inbox).where(schema.inbox.c.state != "done")
                )
            return pending == 0

        await eventually(settled, timeout=30)
        async with store.read() as conn:
            per_target = (
                await conn.execute(
                    sa.select(schema.incidents.c.target_name, sa.func.count()).group_by(
                        schema.incidents.c.target_name
                    )
                )
            ).all()
            attached = await conn.scalar(sa.select(sa.func.count()).select_from(schema.incident_alerts))
            pages = (
                await conn.execute(
                    sa.select(schema.outbox.c.incident_id, sa.func.count())
                    .where(schema.outbox.c.event == "trigger")
                    .group_by(schema.outbox.c.incident_id)
                )
            ).all()
    finally:
        await store.close()
    assert sorted(name for name, _ in per_target) == [f"svc-{i}" for i in range(10)]
    assert {count for _, count in per_target} == {1}, "one incident per target"
    assert attached == 50, "each alert attached once"
    assert len(pages) == 10 and {count for _, count in pages} == {1}, "one page per incident"
