"""One scenario per AITBC runbook, through the running service with the shipped rule, against real
components where they exist (PostgreSQL, Redis, Prometheus scraping a local exporter), the Kubernetes stand-in,
and local HTTP servers for the coordinator's health and the blockchain nodes' peers and consensus.

Each shipped rule is copied with its cluster addresses pointed at the local servers (``localize``); nothing else
in the rule changes, except windows shortened so that a test does not wait minutes (said where done)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture
from tests.support import procs
from tests.support.exporter import MetricsExporter, scrape_config
from tests.support.kube_standin import KubeStandin

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-approves"}
NS = "default"


def localize(rules_dir: Path, rule: str, replacements: dict[str, str]) -> None:
    path = rules_dir / f"{rule}.yaml"
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in the shipped rule {rule}"
        text = text.replace(old, new)
    path.write_text(text)


async def http_server(routes: dict[str, Callable[[], tuple[int, Any]]]) -> TestServer:
    async def handler(request: web.Request) -> web.Response:
        status, body = routes[request.path]()
        return web.json_response(body, status=status)

    app = web.Application()
    for path in routes:
        app.router.add_get(path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.2) as kube:
        for name in ("coordinator", "blockchain-node", "postgresql", "redis"):
            kube.add_deployment(
                NS,
                name,
                replicas=2 if name != "postgresql" else 1,
                containers=[
                    {
                        "name": name,
                        "image": f"aitbc/{name}:1",
                        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
                    }
                ],
            )
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)


async def fire(client: Any, alertname: str, **labels: str) -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0]["labels"] = {
        "alertname": alertname,
        "namespace": NS,
        "severity": "critical",
        **labels,
    }
    payload["alerts"][0]["fingerprint"] = alertname.lower()
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200

    async def settled() -> list[dict[str, Any]]:
        metrics = await (await client.get("/metrics")).text()
        if "remediator_inbox_backlog 0.0" not in metrics:
            return []
        return list((await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"])

    [incident] = await eventually(settled, timeout=60)
    detail: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    return detail


def findings(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in detail["findings"]}


def settings_for(make_settings: Any, kubeconfig: Path, **more: Any) -> Any:
    return make_settings(
        kubeconfig=kubeconfig,
        verify_interval_s=0.3,
        monitor_hosts="127.0.0.1",
        approver_tokens="alice=alice-approves",
        **more,
    )


async def test_coordinator_outage_is_restarted_and_verified(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    kube.set_deployment_pods_state(NS, "coordinator", "crashloop")
    restarted = lambda: any("restartedAt" in json.dumps(r.body) for r in kube.writes())  # noqa: E731
    health = await http_server(
        {"/v1/health": lambda: (200, {"ok": True}) if restarted() else (503, {"ok": False})}
    )
    workdir = Path(kubeconfig).parent
    with procs.start_postgres(workdir) as pg, procs.start_redis(workdir) as redis_server:
        localize(  # its dependencies (PostgreSQL, Redis) are up: the restart is the coordinator's own fix
            rules_dir,
            "coordinator-api-outage",
            {
                "http://coordinator.{{ target.namespace }}:8011/v1/health": str(
                    health.make_url("/v1/health")
                ),
                'host: "postgresql.{{ target.namespace }}", port: 5432': f'host: "127.0.0.1", port: {pg.port}',
                '{host: "redis.{{ target.namespace }}"}': f'{{host: "127.0.0.1", port: {redis_server.port}}}',
            },
        )
        settings = settings_for(make_settings, kubeconfig, monitor_redis_url=redis_server.url)
        client = await aiohttp_client(create_app(settings))
        detail = await fire(client, "CoordinatorDown")
    await health.close()
    assert detail["state"] == "mitigated", detail["reason"]
    restarts = [r for r in kube.writes() if "restartedAt" in json.dumps(r.body)]
    assert len(restarts) == 1
    kinds = [e["kind"] for e in detail["timeline"]]
    assert (
        kinds.index("diagnosis.finished")
        < kinds.index("action.succeeded")
        < kinds.index("incident.mitigated")
    )
    opening = next(e for e in detail["timeline"] if e["kind"] == "diagnosis.finished")["data"]["findings"]
    assert opening["pods"] == "failed" and opening["health"] == "failed" and opening["db"] == "ok"
    assert opening["redis"] == "ok"
    assert findings(detail)["health"]["status"] == "ok", "the verify probe passed"


async def test_network_partition_by_a_deny_all_policy_is_not_restarted(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    kube.add_network_policy(NS, "default-deny-all-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    node = await http_server(
        {"/v1/peers": lambda: (200, [{"id": "n1"}]), "/v1/consensus": lambda: (200, {"height": 1207})}
    )
    localize(
        rules_dir,
        "network-partition",
        {
            "http://blockchain-node.{{ target.namespace }}:8080/v1/peers": str(node.make_url("/v1/peers")),
            "http://blockchain-node.{{ target.namespace }}:8080/v1/consensus": str(
                node.make_url("/v1/consensus")
            ),
        },
    )
    client = await aiohttp_client(create_app(settings_for(make_settings, kubeconfig)))
    detail = await fire(client, "BlockchainPeerCountLow")
    await node.close()
    found = findings(detail)
    assert detail["state"] == "escalated" and kube.writes() == []
    assert found["peers"]["status"] == "degraded" and found["peers"]["facts"]["peers"] == 1
    assert found["consensus"]["facts"]["height"] == 1207
    assert found["netpol"]["status"] == "degraded" and found["netpol"]["facts"]["deny_all_ingress"] is True
    assert not [a for a in detail["actions"] if a["status"] == "awaiting_approval"], (
        "re-peering cannot beat a policy"
    )
    hazards = [s for s in detail["bundle"]["suggested"] if s["hazard"]]
    assert any("iptables -F" in s["command"] for s in hazards)


async def test_database_down_is_escalated_with_a_restart_proposal(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, tmp_path: Path
) -> None:
    kube, kubeconfig = cluster
    coordinator = await http_server({"/v1/health": lambda: (503, {"db": "unreachable"})})
    pg = procs.start_postgres(tmp_path)
    pg.stop()  # the database is down
    localize(
        rules_dir,
        "database-failure",
        {
            'host: "postgresql-replica.{{ target.namespace }}"': 'host: "127.0.0.1"',
            "http://coordinator.{{ target.namespace }}:8011/v1/health": str(
                coordinator.make_url("/v1/health")
            ),
        },
    )
    settings = settings_for(
        make_settings, kubeconfig, monitor_postgres_dsn=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    )
    client = await aiohttp_client(create_app(settings))
    detail = await fire(client, "PostgresDown")
    await coordinator.close()
    found = findings(detail)
    assert detail["state"] == "escalated" and kube.writes() == []
    assert found["ping"]["status"] == "failed" and found["ping"]["facts"]["reachable"] is False
    assert found["coordinator"]["status"] == "failed"
    proposals = [a["action"] for a in detail["actions"] if a["status"] == "awaiting_approval"]
    assert proposals == ["kube.rollout_restart"], (
        "no failover proposal: the replica is not a reachable standby"
    )


async def test_redis_at_maxmemory_is_escalated_with_its_memory_facts(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, tmp_path: Path
) -> None:
    kube, kubeconfig = cluster
    with procs.start_redis(tmp_path) as server:
        admin = aioredis.from_url(server.url)
        await admin.config_set("maxmemory", "2mb")
        await admin.config_set("maxmemory-policy", "allkeys-lru")
        for i in range(400):
            await admin.set(f"session:{i}", "x" * 20_000)
        await admin.aclose()
        coordinator = await http_server({"/v1/health": lambda: (200, {"ok": True})})
        localize(
            rules_dir,
            "redis-failure",
            {
                'host: "redis.{{ target.namespace }}"': 'host: "127.0.0.1"',
                "http://coordinator.{{ target.namespace }}:8011/v1/health": str(
                    coordinator.make_url("/v1/health")
                ),
            },
        )
        client = await aiohttp_client(
            create_app(settings_for(make_settings, kubeconfig, monitor_redis_url=server.url))
        )
        detail = await fire(client, "RedisEvictions")
        await coordinator.close()
    info = findings(detail)["info"]
    assert detail["state"] == "escalated" and kube.writes() == []
    assert info["status"] == "degraded" and info["facts"]["memory_ratio"] >= 0.9
    assert info["facts"]["evicted_keys"] > 0 and info["facts"]["maxmemory_policy"] == "allkeys-lru"
    assert findings(detail)["ping"]["status"] == "ok"
    assert not [a for a in detail["actions"] if a["status"] == "awaiting_approval"]
    hazards = " ".join(s["hazard"] or "" for s in detail["bundle"]["suggested"])
    assert "deletes EVERY key" in hazards and "three unrelated Redis servers" in hazards


class Cadvisor(MetricsExporter):
    """cAdvisor series for the coordinator pods; CPU burns while ``hot``; kubelet volume stats."""

    thread_name = "scenario-exporter"

    def __init__(self, pods: list[str]) -> None:
        self.pods = pods
        self.hot = True
        self.cpu_seconds = 0.0
        self.last = time.time()
        self.volume_used = 9.7 * 2**30
        self._lock = threading.Lock()
        super().__init__()

    def render(self) -> list[str]:
        with self._lock:
            now = time.time()
            self.cpu_seconds += (1.0 if self.hot else 0.01) * (now - self.last)
            self.last = now
            lines = []
            for pod in self.pods:
                labels = f'namespace="{NS}",pod="{pod}",container="coordinator"'
                lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {self.cpu_seconds:.4f}")
                lines.append(f"container_memory_working_set_bytes{{{labels}}} {200 * 2**20}")
            claim = f'namespace="{NS}",persistentvolumeclaim="postgresql-data"'
            lines.append(f"kubelet_volume_stats_used_bytes{{{claim}}} {self.volume_used}")
            lines.append(f"kubelet_volume_stats_capacity_bytes{{{claim}}} {10 * 2**30}")
            return lines


async def start_prometheus(exporter: Cadvisor, tmp_path: Path) -> procs.Prometheus:
    config = scrape_config("cadvisor", exporter, {"scrape_interval": "1s"}, honor_labels=True)
    server = await asyncio.to_thread(procs.start_prometheus, config, tmpdir=tmp_path)
    query = 'count(rate(container_cpu_usage_seconds_total{pod!=""}[10s]) > 0.6)'

    def scraped() -> bool:
        result = server.query(query)["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) >= len(exporter.pods)

    await eventually(lambda: asyncio.to_thread(scraped), timeout=30)
    return server


async def test_cpu_starved_coordinator_is_scaled_up_and_verified(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, tmp_path: Path
) -> None:
    kube, kubeconfig = cluster
    pods = [p["metadata"]["name"] for p in kube.pods_of(NS, "coordinator")]
    with Cadvisor(pods) as exporter:
        prometheus = await start_prometheus(exporter, tmp_path)
        try:
            # the shipped 5m rate window, shortened so the load can be seen to fall within seconds
            localize(
                rules_dir,
                "high-cpu-memory",
                {"{window: 5m, warn_ratio: 0.9}": "{window: 10s, warn_ratio: 0.9}"},
            )
            client = await aiohttp_client(
                create_app(settings_for(make_settings, kubeconfig, prometheus_url=prometheus.url))
            )

            async def cool_down_once_scaled() -> None:
                await eventually(lambda: any(r.path.endswith("/scale") for r in kube.writes()), timeout=60)
                exporter.hot = False  # the load spreads over five replicas

            cooling = asyncio.create_task(cool_down_once_scaled())
            detail = await fire(client, "ContainerCpuThrottled", deployment="coordinator")
            cooling.cancel()
        finally:
            await asyncio.to_thread(prometheus.stop)
    scales = [r for r in kube.writes() if r.path.endswith("/scale")]
    assert len(scales) == 1, (
        detail["state"],
        detail["reason"],
        {f["id"]: (f["status"], f["summary"]) for f in detail["findings"]},
    )
    [scale] = scales
    assert scale.body == {"spec": {"replicas": 5}}
    assert detail["state"] == "mitigated", detail["reason"]
    opening = next(e for e in detail["timeline"] if e["kind"] == "diagnosis.finished")["data"]["findings"]
    assert opening["usage"] == "degraded"
    assert len(kube.pods_of(NS, "coordinator")) == 5


async def test_a_full_volume_is_escalated_and_expanded_only_after_approval(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, tmp_path: Path
) -> None:
    kube, kubeconfig = cluster
    kube.add_storage_class("standard", allow_expansion=True)
    kube.add_pvc(NS, "postgresql-data", storage="10Gi", storage_class="standard")
    with Cadvisor([]) as exporter, procs.start_postgres(tmp_path) as pg:
        prometheus = await start_prometheus_volumes(exporter, tmp_path)
        try:
            settings = settings_for(
                make_settings,
                kubeconfig,
                prometheus_url=prometheus.url,
                monitor_postgres_dsn=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
            )
            client = await aiohttp_client(create_app(settings))
            detail = await fire(client, "PersistentVolumeFull", persistentvolumeclaim="postgresql-data")
            pvc = findings(detail)["pvc"]
            assert detail["state"] == "escalated" and kube.writes() == []
            assert (
                pvc["status"] == "failed"
                and pvc["facts"]["usage_ratio"] >= 0.95
                and pvc["facts"]["expandable"]
            )
            [proposal] = [a for a in detail["actions"] if a["status"] == "awaiting_approval"]
            assert proposal["action"] == "kube.expand_pvc" and proposal["params"]["size"] == "100Gi"
            assert any(
                "docker system prune" in s["command"] and s["hazard"] for s in detail["bundle"]["suggested"]
            )
            url = f"/v1/incidents/{detail['id']}/actions/{proposal['id']}/approve"
            approved = await client.post(url, headers=ALICE)
            assert approved.status == 200, await approved.text()
        finally:
            await asyncio.to_thread(prometheus.stop)
    [patch] = kube.writes()
    assert patch.path.endswith("/persistentvolumeclaims/postgresql-data")
    assert json.dumps(patch.body).count("100Gi") == 1


async def start_prometheus_volumes(exporter: Cadvisor, tmp_path: Path) -> procs.Prometheus:
    config = scrape_config("kubelet", exporter, {"scrape_interval": "1s"}, honor_labels=True)
    server = await asyncio.to_thread(procs.start_prometheus, config, tmpdir=tmp_path)
    await eventually(
        lambda: asyncio.to_thread(lambda: server.query("kubelet_volume_stats_used_bytes")["data"]["result"]),
        timeout=30,
    )
    return server
