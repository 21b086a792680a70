"""``postgres.*`` probes through the real runner against a real PostgreSQL 15 (and a streaming standby made
with pg_basebackup): up, down and back, saturated, a long query with its pid, replication seen from both
ends — and the monitoring password never in a finding, even when the login fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from service.clients import http
from service.clients import postgres as pg
from service.clients.hub import Clients
from service.diagnosis import postgres as pg_probes
from service.model import incidents
from tests.conftest import eventually
from tests.support import postgres_roles, procs
from tests.support.probes import run_probes, shown

TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="x")
REGISTRY = {p.name: p for p in pg_probes.PROBES}
PASSWORD = "pg-Secr3t-4e1b7c"
MAX_CONNECTIONS = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Postgres]:
    tmpdir = tmp_path_factory.mktemp("pg")
    # one slot reserved for superusers: the (non-superuser) monitor role can use the other nine
    settings = ["-c", f"max_connections={MAX_CONNECTIONS}", "-c", "superuser_reserved_connections=1"]
    with procs.start_postgres(tmpdir, extra_args=settings) as started:
        asyncio.run(
            postgres_roles.add_monitor_role(started, PASSWORD, extra_sql=["CREATE TABLE locked (id int)"])
        )
        yield started


def make_clients(session: aiohttp.ClientSession, connector: pg.PostgresConnector | None) -> Clients:
    secrets = connector.secrets() if connector else frozenset()
    return Clients(http=http.HttpClient(session), postgres=connector, secrets=secrets)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def clients(server: procs.Postgres, session: aiohttp.ClientSession) -> Clients:
    dsn = postgres_roles.monitor_dsn(server)
    return make_clients(session, pg.PostgresConnector(dsn, PASSWORD))


async def run(
    clients: Clients, probe: str, params: dict[str, Any] | None = None, *, timeout: float = 5.0
) -> incidents.Finding:
    [finding] = await run_many(clients, [(probe, params or {})], timeout=timeout)
    return finding


async def run_many(
    clients: Clients, probes: list[tuple[str, dict[str, Any]]], *, timeout: float = 5.0
) -> list[incidents.Finding]:
    return await run_probes(clients, probes, registry=REGISTRY, target=TARGET, timeout=timeout)


@contextlib.asynccontextmanager
async def held_connections(server: procs.Postgres, count: int) -> AsyncIterator[list[Any]]:
    held = [await asyncpg.connect(server.dsn) for _ in range(count)]
    try:
        yield held
    finally:
        await asyncio.gather(*(conn.close() for conn in held))


# ------------------------------------------------------------------------------------------ ping


async def test_ping_reports_version_and_role(server: procs.Postgres, clients: Clients) -> None:
    finding = await run(clients, "postgres.ping")
    assert finding.status == "ok"
    assert finding.summary.startswith(f"PostgreSQL {procs.HOST}:{server.port}/postgres is up (15.")
    assert "primary) in " in finding.summary
    facts = finding.facts
    assert (facts["reachable"], facts["accepting"], facts["in_recovery"]) == (True, True, False)
    assert facts["server_version"].startswith("15.")
    assert facts["connect_ms"] > 0


async def test_ping_fails_while_the_server_is_stopped_and_recovers(
    server: procs.Postgres, clients: Clients
) -> None:
    server.stop()
    try:
        down = await run(clients, "postgres.ping")
    finally:
        server.start()
    assert down.status == "failed"
    assert (
        down.summary
        == f"cannot connect to PostgreSQL {procs.HOST}:{server.port}/postgres: Connection refused"
    )
    assert down.facts["reachable"] is False
    assert down.facts["server_version"] is None
    up = await run(clients, "postgres.ping")
    assert up.status == "ok"


async def test_ping_is_degraded_when_no_connection_is_left(server: procs.Postgres, clients: Clients) -> None:
    async with held_connections(server, MAX_CONNECTIONS):
        finding = await run(clients, "postgres.ping")
    assert finding.status == "degraded"
    assert finding.summary.endswith("refuses new sessions: sorry, too many clients already")
    assert (finding.facts["reachable"], finding.facts["accepting"]) == (True, False)
    assert finding.facts["reason"] == "sorry, too many clients already"


async def test_without_a_dsn_every_probe_is_skipped(session: aiohttp.ClientSession) -> None:
    clients = make_clients(session, None)
    findings = await run_many(clients, [(name, {}) for name in REGISTRY])
    assert {f.status for f in findings} == {"skipped"}
    assert findings[0].summary == "PostgreSQL not configured (REMEDIATOR_MONITOR_POSTGRES_DSN)"


# ------------------------------------------------------------------------------------------ activity


async def test_activity_degrades_near_max_connections(server: procs.Postgres, clients: Clients) -> None:
    quiet = await run(clients, "postgres.activity")
    assert quiet.status == "ok"
    assert (quiet.facts["connections"], quiet.facts["max_connections"]) == (0, MAX_CONNECTIONS)

    async with held_connections(server, 8) as held:
        locker, waiter = held[0], held[1]
        await locker.execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.create_task(waiter.fetch("SELECT * FROM locked"))
        try:

            async def probe_when_waiting() -> incidents.Finding | None:
                found = await run(clients, "postgres.activity")
                return found if found.facts["waiting_on_locks"] == 1 else None

            finding = await eventually(probe_when_waiting, timeout=5)
        finally:
            await locker.execute("ROLLBACK")
            await blocked
    assert finding.status == "degraded"
    assert finding.summary == ("8/10 connections (80%), 1 idle in transaction, 1 waiting on locks (≥ 80%)")
    assert finding.facts["usage_ratio"] == 0.8
    assert finding.facts["by_state"] == {"idle": 6, "idle in transaction": 1, "active": 1}
    assert finding.facts["idle_in_transaction"] == 1
    assert finding.facts["idle_over_1h"] == 0
    assert "postgres" in finding.evidence  # the user column of the top-groups table
    relaxed = await run(clients, "postgres.activity", {"warn_ratio": 0.95})
    assert relaxed.status == "ok"


# ------------------------------------------------------------------------------------------ long queries


async def test_a_long_query_is_reported_with_its_pid_and_redacted_text(
    server: procs.Postgres, clients: Clients
) -> None:
    none = await run(clients, "postgres.long_queries")
    assert (none.status, none.summary, none.facts["count"]) == ("ok", "no query running longer than 300s", 0)

    sleeper = await asyncpg.connect(server.dsn, server_settings={"application_name": "report-job"})
    pid = sleeper.get_server_pid()
    sleeping = asyncio.create_task(sleeper.fetch("SELECT pg_sleep(60), 'password=hunter2-in-query' AS q"))
    try:

        async def long_enough() -> incidents.Finding | None:
            found = await run(clients, "postgres.long_queries", {"min_duration_s": 1})
            return found if found.status != "ok" else None

        finding = await eventually(long_enough, timeout=10, interval=0.2)
    finally:
        sleeping.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await sleeping
        sleeper.terminate()
    assert finding.status == "degraded"
    assert finding.summary.startswith("1 query running longer than 1s; longest ")
    assert finding.summary.endswith(f"(pid {pid}, user postgres)")
    assert finding.facts["count"] == 1
    assert finding.facts["longest_s"] >= 1
    [query] = finding.facts["queries"]
    assert (query["pid"], query["state"], query["usename"]) == (pid, "active", "postgres")
    assert query["application_name"] == "report-job"
    assert query["query"] == "SELECT pg_sleep(60), 'password=[REDACTED] AS q"  # redact eats to the space
    assert "hunter2" not in shown(finding)


# ------------------------------------------------------------------------------------------ replication


async def test_a_primary_without_replicas(clients: Clients) -> None:
    finding = await run(clients, "postgres.replication")
    assert finding.status == "ok"
    assert finding.summary == "primary with 0 replicas"
    assert finding.facts["role"] == "primary"
    assert finding.facts["replicas"] == 0
    assert finding.facts["max_replay_lag_s"] is None
    assert finding.facts["replay_lag_s"] is None
    wanting = await run(clients, "postgres.replication", {"min_replicas": 1})
    assert wanting.status == "degraded"
    assert wanting.summary == "primary with 0 replicas (fewer than 1 replicas)"


@pytest.fixture
def standby(server: procs.Postgres, tmp_path: Path) -> Iterator[postgres_roles.Standby]:
    with postgres_roles.start_standby(server, tmp_path / "standby") as replica:
        yield replica


async def test_replication_seen_from_the_primary_and_the_standby(
    server: procs.Postgres, standby: postgres_roles.Standby, clients: Clients
) -> None:
    async def streaming() -> incidents.Finding | None:
        found = await run(clients, "postgres.replication")
        return (
            found
            if found.facts["replicas"] == 1 and found.facts["replicas_detail"][0]["state"] == "streaming"
            else None
        )

    primary = await eventually(streaming, timeout=10)
    assert primary.status == "ok"
    assert primary.summary.startswith("primary with 1 replica")
    [replica] = primary.facts["replicas_detail"]
    assert replica["client_addr"] == procs.HOST
    assert replica["sync_state"] == "async"

    ping = await run(clients, "postgres.ping", {"port": standby.port})
    assert (ping.status, ping.facts["in_recovery"]) == ("ok", True)
    assert "standby) in " in ping.summary
    seen = await run(clients, "postgres.replication", {"port": standby.port})
    assert seen.status == "ok"
    assert seen.facts["role"] == "standby"
    assert seen.facts["receiving"] is True
    assert seen.facts["replay_lag_s"] == 0.0  # everything received is replayed
    assert seen.facts["replicas"] is None
    assert seen.summary == "standby, receiving WAL, replay lag 0.0s"


# ------------------------------------------------------------------------------------------ secrets


async def test_the_password_never_appears_even_when_login_fails(
    server: procs.Postgres, session: aiohttp.ClientSession
) -> None:
    wrong = "Wrong-Pass-8c2d1e"
    dsn = postgres_roles.monitor_dsn(server)
    failing = make_clients(session, pg.PostgresConnector(dsn, wrong))
    findings = await run_many(failing, [(name, {}) for name in REGISTRY])
    for finding in findings:
        assert finding.status == "error"
        assert "authentication failed" in finding.summary
        assert wrong not in shown(finding)
        assert PASSWORD not in shown(finding)
    working = make_clients(session, pg.PostgresConnector(dsn, PASSWORD))
    for finding in await run_many(working, [(name, {}) for name in REGISTRY]):
        assert finding.status == "ok", finding.summary
        assert PASSWORD not in shown(finding)
