"""Diagnosis inside the running service: probes against the Kubernetes stand-in and a local health
endpoint; findings in the API and in the log bundle; a crash during diagnosis resumes, not duplicates."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from service.app import create_app
from tests.conftest import ROOT, TOKEN, eventually, load_fixture
from tests.support import procs
from tests.support.kube_standin import KubeStandin

AUTH = {"Authorization": f"Bearer {TOKEN}"}

RULE = """\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match:
  - alertname="CoordinatorDown"
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: coordinator
diagnose:
  - {id: pods, probe: kube.pods}
  - {id: rollout, probe: kube.deployment}
  - {id: events, probe: kube.events}
  - {id: logs, probe: kube.logs}
  - {id: health, probe: http.get, with: {url: "HEALTH_URL"}}
suggest:
  - kubectl -n {{ target.namespace }} rollout restart deployment/{{ target.name }}
"""


@pytest.fixture
async def health() -> AsyncIterator[str]:
    """The coordinator's health endpoint, down."""

    async def handler(_request: web.Request) -> web.Response:
        return web.json_response({"status": "unavailable", "db": "timeout"}, status=503)

    app = web.Application()
    app.router.add_get("/v1/health", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/v1/health"))
    await server.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin() as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kube.set_deployment_pods_state("shop", "coordinator", "crashloop")
        pod = kube.pods_of("shop", "coordinator")[0]
        name = pod["metadata"]["name"]
        kube.set_logs(
            "shop",
            name,
            "starting\nERROR cannot connect to postgresql:5432 password=hunter22\n",
            previous=True,
        )
        kube.add_event(
            "shop",
            involved_kind="Pod",
            involved_name=name,
            reason="BackOff",
            message="Back-off restarting failed container",
        )
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def write_rule(rules_dir: Path, health_url: str) -> None:
    (rules_dir / "coordinator-api-outage.yaml").write_text(RULE.replace("HEALTH_URL", health_url))


def coordinator_down() -> str:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0]["labels"] = {
        "alertname": "CoordinatorDown",
        "namespace": "shop",
        "severity": "critical",
    }
    return json.dumps(payload)


async def test_findings_reach_the_api_and_the_log_bundle(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, health: str
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir, health)
    client = await aiohttp_client(create_app(make_settings(kubeconfig=kubeconfig)))
    with capture_logs() as logs:
        response = await client.post(
            "/v1/alerts", data=coordinator_down(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.status == 200
        bundle_logs = await eventually(lambda: [e for e in logs if e["event"] == "notify.bundle"], timeout=15)
    [summary] = (await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"]
    detail = await (await client.get(f"/v1/incidents/{summary['id']}", headers=AUTH)).json()
    findings = {f["id"]: f for f in detail["findings"]}
    assert list(findings) == ["pods", "rollout", "events", "logs", "health"]
    assert findings["pods"]["status"] == "failed"
    assert findings["pods"]["facts"]["crashlooping"] == 3 and findings["pods"]["facts"]["ready"] == 0
    assert findings["rollout"]["facts"]["replicas"] == 3
    assert findings["events"]["facts"]["reasons"] == {"BackOff": 1}
    assert findings["logs"]["facts"]["previous"] is True
    assert "cannot connect to postgresql" in findings["logs"]["evidence"]
    assert "hunter22" not in json.dumps(detail), "a password in a log never reaches the API"
    assert findings["health"]["status"] == "failed" and findings["health"]["facts"]["status_code"] == 503
    assert any(e["kind"] == "diagnosis.finished" for e in detail["timeline"])
    table = bundle_logs[0]["findings_table"]
    assert "kube.pods" in table and "failed" in table and "0/3 ready, 3 crashlooping" in table
    assert [f["id"] for f in bundle_logs[0]["bundle"]["findings"]] == list(findings)
    assert kube.writes() == [], "diagnosis never writes to the cluster"


async def test_a_crash_during_diagnosis_resumes_the_same_incident(
    tmp_path: Path, rules_dir: Path, cluster: Any, health: str
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir, health)
    kube.delay(r"/pods$", 4.0)  # the pods probe hangs: the service dies while diagnosing
    port = procs.free_port()
    db = tmp_path / "resume.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": f"sqlite:///{db}",
        "REMEDIATOR_RULES_DIR": str(rules_dir),
        "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
        "REMEDIATOR_KUBECONFIG": str(kubeconfig),
        "REMEDIATOR_PROBE_TIMEOUT_S": "10",
        "REMEDIATOR_LOG_LEVEL": "warning",
    }
    service = procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp_path / "service.log",
        port=port,
        workdir=tmp_path,
        env=env,
    )
    await asyncio.to_thread(service.start)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/v1/alerts",
                data=coordinator_down(),
                headers={**AUTH, "Content-Type": "application/json"},
            ) as response:
                assert response.status == 200

            async def state() -> str | None:
                async with session.get(f"{base}/v1/incidents", headers=AUTH) as answer:
                    items = (await answer.json())["incidents"]
                return items[0]["state"] if items else None

            assert await eventually(state) == "diagnosing"
            service.kill()
            kube.clear_faults()
            await asyncio.to_thread(service.start)
            assert await eventually(lambda: _escalated(session, base), timeout=20)
    finally:
        await asyncio.to_thread(service.stop)
    with sqlite3.connect(db) as conn:
        incidents = conn.execute("SELECT id, state FROM incidents").fetchall()
        opened = conn.execute("SELECT count(*) FROM timeline WHERE kind='incident.opened'").fetchone()[0]
        triggers = conn.execute("SELECT count(*) FROM outbox WHERE event='trigger'").fetchone()[0]
        rounds = conn.execute("SELECT count(DISTINCT round), count(*) FROM findings").fetchone()
    assert [state for _, state in incidents] == ["escalated"], "one incident, escalated after the restart"
    assert opened == 1 and triggers == 1
    assert rounds == (1, 5), (
        "the interrupted diagnosis left nothing behind; the resumed one recorded 5 findings"
    )


async def _escalated(session: aiohttp.ClientSession, base: str) -> bool:
    async with session.get(f"{base}/v1/incidents?state=escalated", headers=AUTH) as answer:
        return bool((await answer.json())["incidents"])
