"""Takeover on a real PostgreSQL: a replica SIGKILLed while it holds claims loses them to another replica
within seconds (the short lease its heartbeat no longer renews); a worker that stalled past its lease cannot
commit the row another worker took (fencing); rows caught by a PostgreSQL outage are decided soon after it
returns, by the worker that held them, without counting an attempt."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from service import errors
from service.app import create_app
from service.dispatcher import Dispatcher
from service.observability import Metrics
from service.records import inbox
from service.records.store import Store
from tests.conftest import ROOT, TOKEN, eventually
from tests.support import inbox_rows, procs

#: every alert of this rule waits DELAY_S on its one probe: a replica holds its claims that long
DELAY_S = 3.0
RULE = """\
name: slow-diagnosis
runbook: Slow Diagnosis
mttr_target: 2m
severity: critical
match: ['alertname="TakeoverTest"']
target: {kind: Deployment, namespace: shop, name: "{{ labels.target }}"}
diagnose:
  - {id: q, probe: prometheus.query, with: {query: up, timeout_s: 20}}
"""


async def slow_prometheus(delay_s: float) -> TestServer:
    """A Prometheus API that answers every instant query after ``delay_s`` (an empty vector)."""

    async def query(_request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    app.router.add_post("/api/v1/query", query)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def replica(tmp_path: Path, name: str, env: dict[str, str]) -> procs.Proc:
    port = procs.free_port()
    return procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp_path / f"{name}.log",
        name=name,
        port=port,
        workdir=tmp_path,
        env={**env, "REMEDIATOR_LISTEN": f"127.0.0.1:{port}"},
    )


def post(port: int, alerts: list[dict[str, Any]]) -> None:
    body = json.dumps(webhook_body(alerts)).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/alerts",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def webhook_body(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """An Alertmanager 0.25 webhook body carrying ``alerts`` (as Alertmanager would send them)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="TakeoverTest"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "remediator",
        "groupLabels": {"alertname": "TakeoverTest"},
        "commonLabels": {"alertname": "TakeoverTest"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": a["labels"],
                "annotations": {},
                "startsAt": a["startsAt"],
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": hashlib.sha256(a["labels"]["target"].encode()).hexdigest()[:16],
            }
            for a in alerts
        ],
    }


async def test_a_killed_replicas_alerts_are_taken_over_within_seconds(
    tmp_path: Path, postgres_url: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "slow.yaml").write_text(RULE)
    prometheus = await slow_prometheus(DELAY_S)
    with procs.start_redis(tmp_path) as redis:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REMEDIATOR_STORE_URL": postgres_url,
            "REMEDIATOR_REDIS_URL": redis.url,
            "REMEDIATOR_RULES_DIR": str(rules),
            "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
            "REMEDIATOR_PROMETHEUS_URL": str(prometheus.make_url("")).rstrip("/"),
            "REMEDIATOR_LOG_LEVEL": "warning",
            "REMEDIATOR_DIAGNOSIS_DEADLINE_S": "20",
            "REMEDIATOR_WORKERS": "8",  # neither replica can claim every alert at once
            # REMEDIATOR_INBOX_LEASE_S left at its default: the default is what is tested
        }
        doomed, survivor = replica(tmp_path, "doomed", env), replica(tmp_path, "survivor", env)
        await asyncio.gather(asyncio.to_thread(doomed.start), asyncio.to_thread(survivor.start))
        db = await asyncpg.connect(postgres_url)
        try:
            targets = [f"t-{i}" for i in range(24)]
            alerts = [procs.make_alert({"alertname": "TakeoverTest", "target": t}) for t in targets]
            await asyncio.to_thread(post, doomed.port, alerts)
            pid = doomed.pid
            mine = f"%-{pid}-%"

            async def held() -> list[int]:
                rows = await db.fetch(
                    "SELECT id FROM inbox WHERE state = 'claimed' AND claimed_by LIKE $1", mine
                )
                return [r["id"] for r in rows]

            claimed = await eventually(held, timeout=20)
            doomed.kill()  # SIGKILL while it holds claims
            killed_at = time.monotonic()

            async def taken_over() -> bool:
                done = await db.fetchval(
                    "SELECT count(*) FROM inbox WHERE id = ANY($1::bigint[]) AND state = 'done'", claimed
                )
                return int(done) == len(claimed)

            await eventually(taken_over, timeout=60, interval=0.1)
            takeover_s = time.monotonic() - killed_at

            async def settled() -> bool:
                left = await db.fetchval("SELECT count(*) FROM inbox WHERE state != 'done'")
                return int(left) == 0

            await eventually(settled, timeout=60, interval=0.2)
            incidents = await db.fetch("SELECT target_name FROM incidents")
            rows = await db.fetch(
                "SELECT id, claimed_by, outcome FROM inbox WHERE id = ANY($1::bigint[])", claimed
            )
        finally:
            await db.close()
            await asyncio.to_thread(survivor.stop)
            await asyncio.to_thread(doomed.stop)
    await prometheus.close()
    # the lease is 6 s, the probe 3 s: well under the 15 s a 2-minute MTTR can spare (60 s+ before)
    assert takeover_s < 15, f"the dead replica's {len(claimed)} alerts waited {takeover_s:.1f}s"
    assert all(r["claimed_by"] and f"-{pid}-" not in r["claimed_by"] for r in rows)
    assert all(r["outcome"] == "opened" for r in rows), "the survivor escalated them after diagnosis"
    assert sorted(i["target_name"] for i in incidents) == sorted(targets), (
        "one incident per alert, none twice"
    )


@pytest.fixture
async def store(postgres_url: str) -> Any:
    store = Store.open(postgres_url)
    await store.migrate()
    yield store
    await store.close()


def inbox_row(fingerprint: str) -> dict[str, Any]:
    return inbox_rows.inbox_row(fingerprint, starts_at="2026-12-06T10:00:00.000000Z")


async def test_a_worker_that_stalled_past_its_lease_cannot_commit_the_row_another_took(store: Store) -> None:
    async with store.write() as conn:
        await inbox.insert(store, conn, [inbox_row("stalled")])
    committed: list[str] = []
    overtaken = asyncio.Event()

    def worker(who: str, *, stall_s: float) -> Any:
        async def process(row: inbox.InboxRow) -> None:
            if stall_s:
                await overtaken.wait()  # a pause longer than the lease: another worker took the row
            async with store.write() as conn:
                await inbox.finish(conn, row, outcome=f"done by {who}", incident_id=None, now=time.time())
            committed.append(who)
            overtaken.set()

        return process

    # the stalled worker never renews (heartbeat far apart), so its 2 s lease runs out while it waits
    stalled = Dispatcher(
        store, worker("stalled", stall_s=1), Metrics(), workers=1, lease_s=2.0, heartbeat_s=3600
    )
    other = Dispatcher(store, worker("other", stall_s=0), Metrics(), workers=1, lease_s=2.0)
    with structlog.testing.capture_logs() as logs:
        stalled.start()
        await eventually(lambda: stalled._inflight, timeout=5)
        other.start()
        await eventually(lambda: len(committed) == 1, timeout=15)
        await eventually(lambda: not stalled._inflight, timeout=5)
        await asyncio.gather(stalled.stop(), other.stop())
    async with store.read() as conn:
        state, outcome, attempts = (
            await conn.execute(
                sa.text("SELECT state, outcome, attempts FROM inbox WHERE fingerprint = 'stalled'")
            )
        ).one()
    assert committed == ["other"], "the row's work was committed once, by the worker that holds it"
    assert (state, outcome, attempts) == ("done", "done by other", 2)
    assert any(e["event"] == "inbox.claim_lost" for e in logs), "the stalled worker said it lost the row"


async def test_finish_without_the_claim_raises_and_commits_nothing(store: Store) -> None:
    async with store.write() as conn:
        await inbox.insert(store, conn, [inbox_row("fenced")])
    now = time.time()
    [first] = await inbox.claim(store, "w1", limit=1, lease_s=2, now=now)
    [second] = await inbox.claim(store, "w2", limit=1, lease_s=2, now=now + 3)  # w1's lease expired
    with pytest.raises(errors.LostClaim):
        async with store.write() as conn:
            await inbox.finish(conn, first, outcome="by w1", incident_id=None, now=now + 4)
    assert not await inbox.fail(store, first, error="late", now=now + 4, give_up=True)
    async with store.write() as conn:
        await inbox.finish(conn, second, outcome="by w2", incident_id=None, now=now + 4)
    async with store.read() as conn:
        outcome = await conn.scalar(sa.text("SELECT outcome FROM inbox WHERE fingerprint = 'fenced'"))
    assert outcome == "by w2"


async def test_rows_caught_by_a_postgresql_outage_are_decided_soon_after_it_returns(
    make_settings: Any, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "slow.yaml").write_text(RULE)
    prometheus = await slow_prometheus(1.0)
    with procs.start_postgres(tmp_path / "pg") as pg:
        settings = make_settings(
            store_url=pg.dsn,
            store_timeout_s=1.0,
            prometheus_url=str(prometheus.make_url("")).rstrip("/"),
        )
        server = TestServer(create_app(settings), host="127.0.0.1")
        await server.start_server()
        try:
            alerts = [procs.make_alert({"alertname": "TakeoverTest", "target": f"o-{i}"}) for i in range(6)]
            await asyncio.to_thread(post, server.port or 0, alerts)
            db = await asyncpg.connect(pg.dsn)
            try:
                await eventually(
                    lambda: _count(db, "SELECT count(*) FROM inbox WHERE state = 'claimed'", 6), timeout=10
                )
            finally:
                await db.close()
            await asyncio.to_thread(pg.stop)  # the rows are in diagnosis: their writes fail
            await asyncio.sleep(8)  # longer than the 6 s lease: no heartbeat reaches the store
            await asyncio.to_thread(pg.start)
            back = time.monotonic()
            db = await asyncpg.connect(pg.dsn)
            try:
                await eventually(
                    lambda: _count(db, "SELECT count(*) FROM inbox WHERE state = 'done'", 6),
                    timeout=30,
                    interval=0.1,
                )
                decided_s = time.monotonic() - back
                rows = await db.fetch("SELECT attempts, outcome FROM inbox")
                incidents = await db.fetchval("SELECT count(*) FROM incidents")
            finally:
                await db.close()
        finally:
            await server.close()
    await prometheus.close()
    assert decided_s < 10, f"decided {decided_s:.1f}s after PostgreSQL returned"
    assert [(r["attempts"], r["outcome"]) for r in rows] == [(1, "opened")] * 6, "an outage is no attempt"
    assert incidents == 6


async def _count(db: asyncpg.Connection, sql: str, want: int) -> bool:
    return int(await db.fetchval(sql)) == want


async def test_right_after_an_outage_expired_claims_are_left_to_their_owners(store: Store) -> None:
    async with store.write() as conn:
        await inbox.insert(store, conn, [inbox_row("owned"), inbox_row("new")])
    now = time.time()
    [owned] = await inbox.claim(store, "owner", limit=1, lease_s=2, now=now)
    later = now + 10  # the store was away: the owner's lease ran out without a heartbeat getting through
    assert [
        r.fingerprint
        for r in await inbox.claim(store, "other", limit=5, lease_s=2, now=later, take_expired=False)
    ] == ["new"]
    assert await inbox.claim(store, "owner", limit=5, lease_s=2, now=later) == [], "never its own again"
    assert await inbox.heartbeat(store, "owner", until=later + 2) == 1
    async with store.write() as conn:
        await inbox.finish(conn, owned, outcome="by owner", incident_id=None, now=later)
