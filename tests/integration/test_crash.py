"""SIGKILL the service while 2,000 alerts are being posted: after restart every alert that got a 200 is
processed exactly once, one incident per target, one escalation per incident; nothing accepted is lost."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import ROOT, TOKEN, eventually
from tests.support import procs

TARGETS = 200
ALERTS_PER_TARGET = 10
PER_POST = 10


def batches() -> list[dict[str, Any]]:
    """2,000 alerts, 10 per target, posted 10 per request in an order that spreads targets."""
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "StormTest", "instance": f"host-{t}", "replica": str(r)},
            "annotations": {"summary": "storm"},
            "startsAt": "2026-11-27T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": f"{t:04d}{r:04d}",
        }
        for r in range(ALERTS_PER_TARGET)
        for t in range(TARGETS)
    ]
    return [
        {
            "version": "4",
            "status": "firing",
            "receiver": "r",
            "groupKey": f"g{i}",
            "truncatedAlerts": 0,
            "alerts": alerts[i : i + PER_POST],
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "",
        }
        for i in range(0, len(alerts), PER_POST)
    ]


def service(tmp_path: Path, rules: Path, hook_url: str) -> procs.Proc:
    port = procs.free_port()
    env = {
        **os.environ,
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'crash.db'}",
        "REMEDIATOR_RULES_DIR": str(rules),
        "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
        "REMEDIATOR_NOTIFY_WEBHOOK_URL": hook_url,
        "REMEDIATOR_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    return procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp_path / "service.log",
        name="remediator",
        port=port,
        workdir=tmp_path,
        env=env,
    )


async def test_sigkill_during_a_storm_loses_nothing_and_repeats_nothing(
    tmp_path: Path, rules_dir: Path
) -> None:
    deliveries: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        deliveries.append(await request.json())
        return web.json_response({})

    receiver_app = web.Application()
    receiver_app.router.add_post("/hook", hook)
    receiver = TestServer(receiver_app, host="127.0.0.1")
    await receiver.start_server()
    svc = service(tmp_path, rules_dir, str(receiver.make_url("/hook")))
    await asyncio.to_thread(svc.start)
    url = f"http://127.0.0.1:{svc.port}/v1/alerts"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    payloads = batches()
    ok: set[int] = set()
    killed = asyncio.Event()

    async def poster(session: aiohttp.ClientSession, queue: asyncio.Queue[int]) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            try:
                async with session.post(url, data=json.dumps(payloads[index]), headers=headers) as response:
                    if response.status == 200:
                        ok.add(index)
            except aiohttp.ClientError:
                pass
            if len(ok) >= len(payloads) // 3 and not killed.is_set():
                killed.set()
                svc.kill()  # SIGKILL, mid-storm, with requests in flight

    try:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(payloads)):
            queue.put_nowait(i)
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(poster(session, queue) for _ in range(8)))
        assert killed.is_set()
        accepted_before_kill = set(ok)
        assert 0 < len(accepted_before_kill) < len(payloads)

        # restart on the same store; Alertmanager would re-send what did not get a 200: so do we
        await asyncio.to_thread(svc.start)
        async with aiohttp.ClientSession() as session:
            for index in range(len(payloads)):
                if index not in ok:
                    async with session.post(
                        url, data=json.dumps(payloads[index]), headers=headers
                    ) as response:
                        assert response.status == 200
                        ok.add(index)
        db = tmp_path / "crash.db"
        await eventually(lambda: _pending(db) == 0, timeout=60)
        await eventually(lambda: len({d["delivery_id"] for d in deliveries}) >= TARGETS, timeout=60)
    finally:
        await asyncio.to_thread(svc.stop)
        await receiver.close()

    with sqlite3.connect(db) as conn:
        stored = {row[0]: row[1] for row in conn.execute("SELECT fingerprint, outcome FROM inbox")}
        per_target = Counter(r[0] for r in conn.execute("SELECT target_name FROM incidents"))
        attached = conn.execute(
            "SELECT count(*), count(DISTINCT fingerprint) FROM incident_alerts"
        ).fetchone()
        triggers = Counter(
            r[0]
            for r in conn.execute(
                "SELECT incident_id FROM outbox WHERE channel='webhook' AND event='trigger'"
            )
        )
    every_alert = {a["fingerprint"] for p in payloads for a in p["alerts"]}
    accepted_alerts = {a["fingerprint"] for i in accepted_before_kill for a in payloads[i]["alerts"]}
    assert accepted_alerts <= set(stored), "an alert that got a 200 before the kill was lost"
    assert set(stored) == every_alert
    assert set(stored.values()) <= {"opened", "attached"}
    assert len(per_target) == TARGETS and set(per_target.values()) == {1}, "one incident per target"
    assert attached == (TARGETS * ALERTS_PER_TARGET, TARGETS * ALERTS_PER_TARGET), "each alert attached once"
    assert len(triggers) == TARGETS and set(triggers.values()) == {1}, "one escalation per incident"
    delivered = Counter(d["incident_id"] for d in {d["delivery_id"]: d for d in deliveries}.values())
    assert len(delivered) == TARGETS and set(delivered.values()) == {1}


def _pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM inbox WHERE state != 'done'").fetchone()[0])
