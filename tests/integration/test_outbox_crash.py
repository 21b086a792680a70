"""The outbox survives a crash: notifications accepted before SIGKILL are delivered after the restart,
exactly once per (incident, channel, event)."""

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

from tests.conftest import ROOT, TOKEN, eventually, load_fixture
from tests.support import procs

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def test_notifications_pending_at_sigkill_are_delivered_once_after_restart(
    tmp_path: Path, rules_dir: Path
) -> None:
    hook_port = procs.free_port()
    port = procs.free_port()
    db = tmp_path / "outbox.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": f"sqlite:///{db}",
        "REMEDIATOR_RULES_DIR": str(rules_dir),
        "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
        "REMEDIATOR_LOG_LEVEL": "warning",
        "REMEDIATOR_NOTIFY_WEBHOOK_URL": f"http://127.0.0.1:{hook_port}/hook",
        "REMEDIATOR_OUTBOX_BACKOFF_S": "0.2",
    }
    service = procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp_path / "service.log",
        port=port,
        workdir=tmp_path,
        env=env,
    )
    await asyncio.to_thread(service.start)
    received: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(5):  # five incidents; the receiver is down, so their pages wait in the outbox
                payload = load_fixture("am-0.25-firing.json")
                payload["alerts"][0]["labels"]["service"] = f"svc-{i}"
                payload["alerts"][0]["fingerprint"] = f"fp-{i}"
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/alerts", data=json.dumps(payload), headers=AUTH
                ) as response:
                    assert response.status == 200
            await eventually(lambda: _pending(db) == 5, timeout=20)
            service.kill()

            async def hook(request: web.Request) -> web.Response:
                received.append({"key": request.headers["Idempotency-Key"], **await request.json()})
                return web.json_response({})

            app = web.Application()
            app.router.add_post("/hook", hook)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", hook_port)
            await site.start()
            try:
                await asyncio.to_thread(service.start)
                await eventually(lambda: len(received) >= 5, timeout=30)
                await asyncio.sleep(1.0)  # nothing more arrives
            finally:
                await runner.cleanup()
    finally:
        await asyncio.to_thread(service.stop)
    per_incident = Counter((r["incident_id"], r["event"]) for r in received)
    assert len(per_incident) == 5 and set(per_incident.values()) == {1}, per_incident
    assert all(r["key"] == r["delivery_id"] for r in received)
    with sqlite3.connect(db) as conn:
        states = Counter(r[0] for r in conn.execute("SELECT state FROM outbox WHERE channel = 'webhook'"))
    assert states == {"delivered": 5}


def _pending(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM outbox WHERE channel = 'webhook' AND state = 'pending' AND attempts >= 1"
                ).fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0
