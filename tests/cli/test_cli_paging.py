"""``remediator incidents list --all`` follows the API's ``next`` cursor to the last page: every incident of a
2,500-incident store, each once, fetched in pages of at most 1,000 (the API's largest)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from service.app import create_app
from service.records import schema
from service.records.store import Store
from tests.cli.oncall import READER, running

INCIDENTS = 2500


def incident_row(n: int, now: float) -> dict[str, Any]:
    return {
        "id": f"inc-{n:05d}",
        "rule": "high-error-rate",
        "open_key": None,
        "target_kind": "Deployment",
        "target_namespace": "shop",
        "target_name": f"svc-{n}",
        "target_valid": True,
        "state": "resolved" if n % 2 else "escalated",
        "severity": "warning",
        "runbook": "High HTTP Error Rate",
        "mttr_target_s": 300.0,
        "escalation_level": 1,
        "opened_at": now - INCIDENTS + n // 3,  # three incidents share each second: the id breaks the tie
        "updated_at": now,
        "resolved_at": now if n % 2 else None,
    }


async def seed(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        await store.migrate()
        now = time.time()
        async with store.write() as conn:
            await conn.execute(sa.insert(schema.incidents), [incident_row(n, now) for n in range(INCIDENTS)])
    finally:
        await store.close()


async def test_list_all_returns_every_incident_of_a_large_store_page_by_page(make_settings: Any) -> None:
    settings = make_settings()
    await seed(settings.store_url)
    app = create_app(settings)
    asked: list[web.Request] = []

    async def record(request: web.Request, _response: web.StreamResponse) -> None:
        if request.path == "/v1/incidents":
            asked.append(request)

    app.on_response_prepare.append(record)
    async with running(app) as service:
        listing = await service.json("incidents", "list", "--all", env=READER)
        ids = [item["id"] for item in listing["incidents"]]
        assert len(ids) == INCIDENTS and len(set(ids)) == INCIDENTS
        assert set(ids) == {f"inc-{n:05d}" for n in range(INCIDENTS)}
        assert ids == sorted(ids, reverse=True), "newest first across page boundaries"
        assert "next" not in listing
        pages = [dict(request.query) for request in asked]
        assert [p.get("limit") for p in pages] == ["1000", "1000", "1000"]
        assert "cursor" not in pages[0] and all(p.get("cursor") for p in pages[1:])

        asked.clear()
        small = await service.json("incidents", "list", "--all", "--limit", "400", "--state", "escalated")
        assert len({i["id"] for i in small["incidents"]}) == INCIDENTS // 2
        assert {i["state"] for i in small["incidents"]} == {"escalated"}
        assert len(asked) == 4, "1,250 escalated incidents in pages of 400"

        one_page = await service.json("incidents", "list", "--limit", "10")
        assert len(one_page["incidents"]) == 10 and one_page["next"], "without --all: one page and its cursor"
        after = await service.json("incidents", "list", "--limit", "10", "--cursor", one_page["next"])
        assert after["incidents"][0]["id"] == f"inc-{INCIDENTS - 11:05d}"
