"""``redis.ping`` and ``redis.info`` through the real runner against real Redis 7 servers: up, down and back,
memory near ``maxmemory`` with evictions, too many clients, and a password-protected Redis whose password
comes from a file and never shows in a finding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio

from service.clients import http
from service.clients import redis as rd
from service.clients.hub import Clients
from service.diagnosis import redis as redis_probes
from service.model import incidents
from service.settings import Settings
from tests.support import procs
from tests.support.probes import run_probes, shown

TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="x")
REGISTRY = {p.name: p for p in redis_probes.PROBES}
PASSWORD = "redis-S3cret-a41f"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Redis]:
    with procs.start_redis(tmp_path_factory.mktemp("redis")) as started:
        yield started


async def require_password(server: procs.Redis, password: str) -> None:
    # Not ``--requirepass`` on the command line: procs' readiness check PINGs without a password.
    admin = redis.asyncio.Redis(host=procs.HOST, port=server.port)
    await admin.config_set("requirepass", password)
    await admin.aclose()


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Redis]:
    with procs.start_redis(tmp_path_factory.mktemp("redis-auth")) as started:
        asyncio.run(require_password(started, PASSWORD))
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def make_clients(session: aiohttp.ClientSession, connector: rd.RedisConnector | None) -> Clients:
    secrets = connector.secrets() if connector else frozenset()
    return Clients(http=http.HttpClient(session), redis=connector, secrets=secrets)


@pytest.fixture
def clients(server: procs.Redis, session: aiohttp.ClientSession) -> Clients:
    return make_clients(session, rd.RedisConnector(server.url, None))


@pytest.fixture
async def admin(server: procs.Redis) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis(host=procs.HOST, port=server.port)
    yield client
    await client.flushall()
    await client.config_set("maxmemory", 0)
    await client.config_set("maxmemory-policy", "noeviction")
    await client.aclose()


async def run_many(
    clients: Clients, probes: list[tuple[str, dict[str, Any]]], *, timeout: float = 3.0
) -> list[incidents.Finding]:
    return await run_probes(clients, probes, registry=REGISTRY, target=TARGET, timeout=timeout)


async def run(clients: Clients, probe: str, params: dict[str, Any] | None = None) -> incidents.Finding:
    [finding] = await run_many(clients, [(probe, params or {})])
    return finding


async def test_ping_answers_with_role_and_latency(server: procs.Redis, clients: Clients) -> None:
    finding = await run(clients, "redis.ping")
    assert finding.status == "ok"
    assert finding.summary.startswith(f"Redis {procs.HOST}:{server.port}/0 answers PING in ")
    assert finding.summary.endswith("ms (master)")
    assert finding.facts["reachable"] is True
    assert finding.facts["loading"] is False
    assert finding.facts["role"] == "master"
    assert 0 < finding.facts["latency_ms"] < 1000


async def test_ping_fails_while_redis_is_down_and_recovers(server: procs.Redis, clients: Clients) -> None:
    server.stop()
    try:
        down = await run(clients, "redis.ping")
    finally:
        server.start()
    assert down.status == "failed"
    assert down.summary == f"cannot reach Redis {procs.HOST}:{server.port}/0: Connection refused"
    assert down.facts == {
        "latency_ms": None,
        "role": None,
        "reachable": False,
        "loading": False,
        "timeout": False,
        "reason": down.summary,
    }
    assert (await run(clients, "redis.ping")).status == "ok"


async def test_without_a_url_every_probe_is_skipped(session: aiohttp.ClientSession) -> None:
    findings = await run_many(make_clients(session, None), [(name, {}) for name in REGISTRY])
    assert [f.status for f in findings] == ["skipped", "skipped"]
    assert findings[0].summary == "Redis not configured (REMEDIATOR_MONITOR_REDIS_URL)"


async def test_info_on_a_healthy_redis(clients: Clients, admin: redis.asyncio.Redis) -> None:
    await admin.mset({"a": 1, "b": 2})
    finding = await run(clients, "redis.info")
    assert finding.status == "ok"
    facts = finding.facts
    assert facts["keyspace"] == {"db0": 2}
    assert facts["maxmemory"] == 0
    assert facts["memory_ratio"] is None
    assert facts["maxmemory_policy"] == "noeviction"
    assert facts["role"] == "master"
    assert facts["used_memory"] > 0
    assert facts["connected_clients"] >= 2
    assert facts["evicted_keys"] == 0
    assert "used_memory:" in finding.evidence
    assert "db0:keys=2" in finding.evidence
    assert finding.summary.startswith("memory ")
    assert "evicted keys" in finding.summary


async def test_info_is_degraded_when_memory_is_nearly_full(
    clients: Clients, admin: redis.asyncio.Redis
) -> None:
    used = int((await admin.info("memory"))["used_memory"])
    await admin.config_set("maxmemory", used + 512 * 1024)
    await admin.config_set("maxmemory-policy", "allkeys-lru")
    value = b"v" * 10_000
    async with admin.pipeline(transaction=False) as pipe:
        for i in range(200):  # ~2 MB into a budget of ~0.5 MB: Redis evicts
            pipe.set(f"fill:{i}", value)
        await pipe.execute()
    finding = await run(clients, "redis.info")
    assert finding.status == "degraded"
    ratio = finding.facts["memory_ratio"]
    assert 0.9 <= ratio <= 1.05
    assert finding.facts["maxmemory"] == used + 512 * 1024
    assert finding.facts["maxmemory_policy"] == "allkeys-lru"
    assert finding.facts["evicted_keys"] > 0
    assert f"(memory at {ratio:.0%} ≥ 90%)" in finding.summary


async def test_info_is_degraded_with_too_many_clients(server: procs.Redis, clients: Clients) -> None:
    extra = [redis.asyncio.Redis(host=procs.HOST, port=server.port) for _ in range(5)]
    try:
        await asyncio.gather(*(c.ping() for c in extra))
        finding = await run(clients, "redis.info", {"max_clients": 5})
    finally:
        await asyncio.gather(*(c.aclose() for c in extra))
    assert finding.status == "degraded"
    assert finding.facts["connected_clients"] >= 6
    assert f"({finding.facts['connected_clients']} clients ≥ 5)" in finding.summary


async def test_a_protected_redis_with_the_password_from_a_file(
    protected: procs.Redis, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")
    connector = rd.RedisConnector.from_settings(
        Settings(monitor_redis_url=protected.url, monitor_redis_password_file=secret)
    )
    findings = await run_many(make_clients(session, connector), [("redis.ping", {}), ("redis.info", {})])
    assert [f.status for f in findings] == ["ok", "ok"]
    for finding in findings:
        assert PASSWORD not in shown(finding)


async def test_the_password_never_appears_when_login_fails(
    protected: procs.Redis, session: aiohttp.ClientSession
) -> None:
    wrong = "Wrong-Redis-Pass-77"
    url = f"redis://:{wrong}@{procs.HOST}:{protected.port}/0"  # even when written into the URL
    findings = await run_many(
        make_clients(session, rd.RedisConnector(url, None)), [(n, {}) for n in REGISTRY]
    )
    for finding in findings:
        assert finding.status == "error"
        assert "authentication failed" in finding.summary
        assert wrong not in shown(finding)
        assert PASSWORD not in shown(finding)
