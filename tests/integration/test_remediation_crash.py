"""Remediation across processes: two services sharing one Redis race on 50 alerts for one target and exactly
one restart runs; with Redis down nothing automatic runs; a kill between intent and result leaves the action
``unknown``, never repeated, and escalated."""

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

from tests.conftest import ROOT, TOKEN, eventually
from tests.integration.test_remediation_flow import RESTARTED_AT, alert, restarts, write_rule
from tests.support import procs
from tests.support.kube_standin import KubeStandin

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.3) as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kube.set_deployment_pods_state("shop", "coordinator", "crashloop")
        kube.clear_requests()
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def service(tmp_path: Path, name: str, rules: Path, kubeconfig: Path, **env: str) -> procs.Proc:
    port = procs.free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / name}.db",
        "REMEDIATOR_RULES_DIR": str(rules),
        "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
        "REMEDIATOR_KUBECONFIG": str(kubeconfig),
        "REMEDIATOR_VERIFY_INTERVAL_S": "0.2",
        "REMEDIATOR_LOG_LEVEL": "warning",
        **env,
    }
    return procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp_path / f"{name}.log",
        name=name,
        port=port,
        workdir=tmp_path,
        env=environment,
    )


async def incidents_of(session: aiohttp.ClientSession, proc: procs.Proc) -> list[dict[str, Any]]:
    async with session.get(f"http://127.0.0.1:{proc.port}/v1/incidents", headers=AUTH) as response:
        return list((await response.json())["incidents"])


async def backlog_empty(session: aiohttp.ClientSession, proc: procs.Proc) -> bool:
    async with session.get(f"http://127.0.0.1:{proc.port}/metrics") as response:
        return "remediator_inbox_backlog 0.0" in await response.text()


async def test_two_services_sharing_redis_restart_exactly_once(
    tmp_path: Path, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    with procs.start_redis(tmp_path) as redis:
        a = service(tmp_path, "a", rules_dir, kubeconfig, REMEDIATOR_REDIS_URL=redis.url)
        b = service(tmp_path, "b", rules_dir, kubeconfig, REMEDIATOR_REDIS_URL=redis.url)
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        try:
            async with aiohttp.ClientSession() as session:

                async def send(i: int) -> None:
                    proc = (a, b)[i % 2]
                    body = alert(
                        fingerprint=f"coord-{i}", starts_at=f"2026-11-27T10:{i // 60:02d}:{i % 60:02d}Z"
                    )
                    async with session.post(
                        f"http://127.0.0.1:{proc.port}/v1/alerts", data=body, headers=AUTH
                    ) as response:
                        assert response.status == 200

                await asyncio.gather(*(send(i) for i in range(50)))
                for proc in (a, b):
                    await eventually(lambda p=proc: backlog_empty(session, p), timeout=60)
                seen = [*(await incidents_of(session, a)), *(await incidents_of(session, b))]
        finally:
            await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
    assert len(restarts(kube)) == 1, [r.path for r in kube.writes()]
    states = sorted(i["state"] for i in seen)
    assert len(seen) == 2 and "mitigated" in states, states  # one incident per service; one acted
    other = next(i for i in seen if i["state"] != "mitigated")
    assert other["state"] == "escalated" and any(
        w in other["reason"] for w in ("lock", "cooldown", "flapping")
    )


async def test_with_redis_down_nothing_automatic_runs(tmp_path: Path, rules_dir: Path, cluster: Any) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    dead = f"redis://127.0.0.1:{procs.free_port()}/0"  # nothing listens there
    svc = service(tmp_path, "alone", rules_dir, kubeconfig, REMEDIATOR_REDIS_URL=dead)
    await asyncio.to_thread(svc.start)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"http://127.0.0.1:{svc.port}/v1/alerts", data=alert(), headers=AUTH
            ) as response:
                assert response.status == 200
            [incident] = await eventually(lambda: incidents_of(session, svc), timeout=30)
            await eventually(lambda: backlog_empty(session, svc), timeout=30)
            [incident] = await incidents_of(session, svc)
            async with session.get(f"http://127.0.0.1:{svc.port}/readyz") as ready:
                # readiness answers from the store alone: intake stays on the Service, coordination is reported
                assert ready.status == 200 and (await ready.json())["coordination"] == "unavailable"
    finally:
        await asyncio.to_thread(svc.stop)
    assert incident["state"] == "escalated" and "coordination unavailable" in incident["reason"]
    assert kube.writes() == []


async def test_a_kill_between_intent_and_result_is_unknown_and_never_repeated(
    tmp_path: Path, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    kube.delay(r"/deployments/coordinator$", 5.0, method="PATCH")  # the restart hangs: we die mid-action
    svc = service(tmp_path, "victim", rules_dir, kubeconfig)
    await asyncio.to_thread(svc.start)
    db = tmp_path / "victim.db"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"http://127.0.0.1:{svc.port}/v1/alerts", data=alert(), headers=AUTH
            ) as response:
                assert response.status == 200
            await eventually(lambda: _journal(db) == [("kube.rollout_restart", "running")], timeout=20)
            svc.kill()
            kube.clear_faults()
            await asyncio.to_thread(svc.start)
            await eventually(lambda: backlog_empty(session, svc), timeout=30)
            [incident] = await incidents_of(session, svc)
    finally:
        await asyncio.to_thread(svc.stop)
    assert _journal(db) == [("kube.rollout_restart", "unknown")]
    assert incident["state"] == "escalated" and "result is unknown" in incident["reason"]
    assert len(restarts(kube)) <= 1, "the restart was not repeated after the crash"
    assert all(RESTARTED_AT in json.dumps(r.body) for r in restarts(kube))


def _journal(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return [
                (r[0], r[1]) for r in conn.execute("SELECT action, status FROM actions WHERE safety='safe'")
            ]
    except sqlite3.OperationalError:
        return []
