"""A poison alert — one whose processing kills the worker every time — is quarantined after N claims, its
incident escalated, while the service keeps taking and processing other alerts between the crashes.

The poison is real: its rule probes a local HTTP endpoint that SIGKILLs the service when it is hit, as a
liveness probe would kill a pod whose loop stalls. The test restarts the service after each death, as
Kubernetes would, on the same SQLite store.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import ROOT, TOKEN, eventually
from tests.support import procs

MAX_CLAIMS = 3

RULES = """
name: poison
runbook: Poison
mttr_target: 5m
severity: critical
match: [alertname="Poison"]
target: {kind: Deployment, namespace: default, name: poison}
diagnose:
  - {id: kill, probe: http.get, with: {url: "KILL_URL"}}
---
"""

BENIGN = """
name: benign
runbook: Benign
mttr_target: 5m
severity: warning
match: [alertname="Benign"]
target: {kind: Deployment, namespace: default, name: "{{ labels.deployment }}"}
"""


def alert(name: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "r",
        "groupKey": fingerprint,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, **labels},
                "annotations": {},
                "startsAt": "2026-12-06T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": fingerprint,
            }
        ],
    }


def _rows(db: Path) -> dict[str, tuple[str, str | None, int, str | None]]:
    with sqlite3.connect(db) as conn:
        return {
            r[0]: (r[1], r[2], r[3], r[4])
            for r in conn.execute("SELECT fingerprint, state, outcome, attempts, incident_id FROM inbox")
        }


def _incident(db: Path, incident_id: str) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        state, reason = conn.execute(
            "SELECT state, reason FROM incidents WHERE id = ?", (incident_id,)
        ).fetchone()
    return state, reason


async def test_a_poison_alert_is_quarantined_and_the_service_keeps_working(tmp_path: Path) -> None:
    svc: procs.Proc | None = None
    hits: list[int] = []

    async def kill(_request: web.Request) -> web.Response:
        hits.append(1)
        assert svc is not None
        await asyncio.to_thread(svc.kill)  # the worker dies while processing the poison
        return web.Response(text="too late")

    killer_app = web.Application()
    killer_app.router.add_get("/kill", kill)
    killer = TestServer(killer_app, host="127.0.0.1")
    await killer.start_server()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "poison.yaml").write_text(RULES.replace("KILL_URL", str(killer.make_url("/kill"))).rstrip("-\n"))
    (rules / "benign.yaml").write_text(BENIGN)
    db = tmp_path / "poison.db"
    port = procs.free_port()
    svc = procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp_path / "service.log",
        name="remediator",
        port=port,
        workdir=tmp_path,
        env={
            **os.environ,
            "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
            "REMEDIATOR_STORE_URL": f"sqlite:///{db}",
            "REMEDIATOR_RULES_DIR": str(rules),
            "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
            "REMEDIATOR_MAX_CLAIMS": str(MAX_CLAIMS),
            "REMEDIATOR_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT),
        },
    )
    url = f"http://127.0.0.1:{port}/v1/alerts"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        async with aiohttp.ClientSession() as session:

            async def post(body: dict[str, Any]) -> int:
                async with session.post(url, data=json.dumps(body), headers=headers) as response:
                    return response.status

            await asyncio.to_thread(svc.start)
            assert await post(alert("Poison", "poison0")) == 200
            restarts = 0
            benign: list[str] = []
            deadline = asyncio.get_running_loop().time() + 90
            while _rows(db)["poison0"][0] != "done":
                assert asyncio.get_running_loop().time() < deadline, "no quarantine within 90 s"
                if svc.running:
                    await asyncio.sleep(0.05)
                    continue
                restarts += 1
                assert restarts <= MAX_CLAIMS, "the poison alert was not quarantined: a crash loop"
                try:  # restart, as Kubernetes would; the poison may kill it before it listens
                    await asyncio.to_thread(svc.start)
                except procs.ServerExited:
                    continue
                # between the crashes the service takes other alerts
                fingerprint = f"benign{restarts}"
                try:
                    if await post(alert("Benign", fingerprint, deployment=f"web-{restarts}")) == 200:
                        benign.append(fingerprint)
                except aiohttp.ClientError:
                    pass  # it died under our request: Alertmanager would re-send it
            await eventually(lambda: all(_rows(db)[f][0] == "done" for f in benign), timeout=30)
            assert benign, "no alert was accepted between the crashes"
            assert svc.running, "the service died after the quarantine"
            # and keeps taking new alerts after it
            assert await post(alert("Benign", "after", deployment="web-after")) == 200
            await eventually(lambda: _rows(db).get("after", ("",))[0] == "done", timeout=30)
    finally:
        await asyncio.to_thread(svc.stop)
        await killer.close()

    rows = _rows(db)
    state, outcome, attempts, incident_id = rows["poison0"]
    assert (state, outcome) == ("done", "quarantined")
    assert len(hits) == MAX_CLAIMS, "the poison was processed again after its quarantine"
    assert attempts == MAX_CLAIMS + 1
    assert incident_id is not None
    incident_state, reason = _incident(db, incident_id)
    assert incident_state == "escalated"
    assert f"cut off {MAX_CLAIMS} times" in reason and "quarantined" in reason
    for fingerprint in [*benign, "after"]:
        assert rows[fingerprint][1] == "opened", (
            f"{fingerprint} was not processed normally: {rows[fingerprint]}"
        )
        assert _incident(db, str(rows[fingerprint][3]))[0] == "escalated"
