"""Scale-out: three service processes on one PostgreSQL and one Redis, fed by two Alertmanager 0.25 instances
clustered with real gossip, receive the same 500 alerts over 100 crashlooping targets; one replica is killed
with SIGKILL mid-run. Every target gets one incident and at most one restart, one page per incident, nothing
accepted is lost, no action runs twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import ROOT, TOKEN, eventually
from tests.support import procs
from tests.support.kube_standin import KubeStandin

TARGETS, PER_TARGET = 100, 5
RULE = """\
name: ha-restart
runbook: HA Restart
mttr_target: 2m
severity: critical
match: ['alertname="HATest"']
target: {kind: Deployment, namespace: shop, name: "{{ labels.target }}"}
diagnose:
  - {id: pods, probe: kube.pods}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    verify: {probe: pods, within: 30s}
"""


async def pages_receiver() -> tuple[TestServer, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, received


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


async def test_three_replicas_two_alertmanagers_one_killed(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ha-restart.yaml").write_text(RULE)
    async with KubeStandin(rollout_delay=0.2) as kube:
        for t in range(TARGETS):
            kube.add_deployment("shop", f"t-{t}", replicas=2)
            kube.set_deployment_pods_state("shop", f"t-{t}", "crashloop")
        kube.clear_requests()
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        hook, pages = await pages_receiver()
        with procs.start_postgres(tmp_path / "pg") as pg, procs.start_redis(tmp_path) as redis:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "REMEDIATOR_STORE_URL": pg.dsn,
                "REMEDIATOR_REDIS_URL": redis.url,
                "REMEDIATOR_RULES_DIR": str(rules),
                "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
                "REMEDIATOR_KUBECONFIG": str(kubeconfig),
                "REMEDIATOR_NOTIFY_WEBHOOK_URL": str(hook.make_url("/hook")),
                "REMEDIATOR_LOG_LEVEL": "warning",
                "REMEDIATOR_ACTION_BUDGET": "1000/10m",
                "REMEDIATOR_STORM_BRAKE": "500",
                "REMEDIATOR_VERIFY_INTERVAL_S": "0.3",
                "REMEDIATOR_DIAGNOSIS_DEADLINE_S": "5",
                "REMEDIATOR_INBOX_LEASE_S": "15",
            }
            replicas = [replica(tmp_path, name, env) for name in ("a", "b", "c")]
            await asyncio.gather(*(asyncio.to_thread(r.start) for r in replicas))
            receivers = [f"http://127.0.0.1:{r.port}/v1/alerts" for r in replicas]
            config = procs.webhook_config(receivers[0], bearer=TOKEN)
            config["receivers"][0]["webhook_configs"] = [
                {**config["receivers"][0]["webhook_configs"][0], "url": url} for url in receivers
            ]
            am1 = await asyncio.to_thread(
                procs.start_alertmanager,
                config,
                tmpdir=tmp_path,
                cluster_peers=[],
                extra_args=["--cluster.peer-timeout=1s"],
            )
            am2 = await asyncio.to_thread(
                procs.start_alertmanager,
                config,
                tmpdir=tmp_path,
                cluster_peers=[am1.cluster_address or ""],
                extra_args=["--cluster.peer-timeout=1s"],
            )
            db = await asyncpg.connect(pg.dsn)
            try:
                alerts = [
                    procs.make_alert({"alertname": "HATest", "target": f"t-{t}", "replica": str(r)})
                    for r in range(PER_TARGET)
                    for t in range(TARGETS)
                ]
                for start in range(
                    0, len(alerts), 100
                ):  # the same alerts to both members, as Prometheus does
                    batch = alerts[start : start + 100]
                    await asyncio.gather(
                        asyncio.to_thread(am1.post_alerts, batch), asyncio.to_thread(am2.post_alerts, batch)
                    )
                    if start == 200:
                        await eventually(lambda: _count(db, "SELECT count(*) FROM incidents"), timeout=30)
                        replicas[2].kill()  # SIGKILL mid-run
                await eventually(lambda: _settled(db), timeout=120, interval=0.5)
                incidents = await db.fetch("SELECT id, target_name, state FROM incidents")
                actions = await db.fetch(
                    "SELECT incident_id, action, status FROM actions WHERE safety = 'safe'"
                )
                stored = await db.fetchval("SELECT count(DISTINCT (fingerprint, starts_at)) FROM inbox")
                triggers = await db.fetch(
                    "SELECT incident_id, count(*) AS n FROM outbox "
                    "WHERE event = 'trigger' AND channel = 'webhook' GROUP BY incident_id"
                )
            finally:
                await db.close()
                await asyncio.to_thread(am2.stop)
                await asyncio.to_thread(am1.stop)
                await asyncio.gather(*(asyncio.to_thread(r.stop) for r in replicas))
        await hook.close()
        restarts = Counter(
            r.path.rsplit("/", 1)[-1]
            for r in kube.writes()
            if r.method == "PATCH" and "restartedAt" in json.dumps(r.body)
        )
    assert stored == TARGETS * PER_TARGET, "every alert Alertmanager sent was stored"
    per_target = Counter(i["target_name"] for i in incidents)
    assert len(per_target) == TARGETS and set(per_target.values()) == {1}, "one incident per target"
    assert all(n <= 1 for n in restarts.values()), f"a target was restarted twice: {restarts.most_common(3)}"
    assert sum(restarts.values()) >= TARGETS * 0.8, "most targets were restarted automatically"
    journaled = Counter(
        (a["incident_id"], a["action"]) for a in actions if a["status"] in ("succeeded", "running")
    )
    assert all(n == 1 for n in journaled.values()), "no action ran twice"
    assert {i["state"] for i in incidents} <= {"mitigated", "escalated"}
    assert all(t["n"] == 1 for t in triggers), "one page per incident"
    paged = Counter(p["incident_id"] for p in pages if p["event"] == "trigger")
    assert set(paged) == {t["incident_id"] for t in triggers}, "every page was delivered"


async def _count(db: asyncpg.Connection, sql: str) -> int:
    return int(await db.fetchval(sql))


async def _settled(db: asyncpg.Connection) -> bool:
    pending = await db.fetchval("SELECT count(*) FROM inbox WHERE state != 'done'")
    stored = await db.fetchval("SELECT count(DISTINCT (fingerprint, starts_at)) FROM inbox")
    open_work = await db.fetchval(
        "SELECT count(*) FROM incidents WHERE state NOT IN ('mitigated', 'escalated', 'resolved')"
    )
    return pending == 0 and stored == TARGETS * PER_TARGET and open_work == 0
