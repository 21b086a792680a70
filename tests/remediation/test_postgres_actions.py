"""The PostgreSQL actions against a real PostgreSQL 15 with a non-superuser monitoring role: which sessions
``terminate_idle`` ends (old idle ones, oldest first, at most max_count) and which it never touches (active,
idle in transaction unless asked, superuser, its own); ``promote_replica`` on a real streaming standby made with
pg_basebackup, and its refusal on a primary."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from pydantic import ValidationError

from service import errors
from service.clients import http
from service.clients import postgres as pg
from service.clients.hub import Clients
from service.model import incidents
from service.remediation.actions import promote_replica, terminate_idle
from service.remediation.base import ActionContext, Outcome, Params
from tests.support import postgres_roles, procs

PASSWORD = "pg-Act10n-Secr3t"
NO_TARGET = incidents.TargetRef(kind="Database", namespace="-", name="-")
IDLE_FOR_S = (
    1  # below the params' minimum of 60: built with model_construct, so the test need not wait a minute
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Postgres]:
    with procs.start_postgres(tmp_path_factory.mktemp("pg")) as started:
        asyncio.run(
            postgres_roles.add_monitor_role(
                started,
                PASSWORD,
                in_roles="pg_monitor, pg_signal_backend",  # may also promote; ``app`` is a plain user
                extra_sql=[
                    "GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO monitor",
                    "CREATE ROLE app LOGIN",
                ],
            )
        )
        yield started


@pytest.fixture
async def clients(server: procs.Postgres) -> AsyncIterator[Clients]:
    connector = pg.PostgresConnector(postgres_roles.monitor_dsn(server), PASSWORD)
    async with aiohttp.ClientSession() as session:
        yield Clients(http=http.HttpClient(session), postgres=connector, secrets=connector.secrets())


def context(clients: Clients, *, dry_run: bool = False) -> ActionContext:
    return ActionContext(target=NO_TARGET, clients=clients, timeout_s=5.0, dry_run=dry_run)


def idle_params(**values: Any) -> terminate_idle.TerminateIdleParams:
    return terminate_idle.TerminateIdleParams.model_construct(idle_for_s=IDLE_FOR_S, **values)


async def terminate(clients: Clients, params: Params, *, dry_run: bool = False) -> Outcome:
    return await terminate_idle.terminate_idle.run(context(clients, dry_run=dry_run), params)


async def live_pids(server: procs.Postgres) -> set[int]:
    conn = await asyncpg.connect(server.dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'")
        return {int(r["pid"]) for r in rows}
    finally:
        await conn.close()


async def wait_for_termination(server: procs.Postgres, pids: set[int]) -> None:
    deadline = time.monotonic() + 5
    while pids & await live_pids(server):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def sessions(server: procs.Postgres) -> AsyncIterator[dict[str, Any]]:
    """Four idle ``app`` sessions (oldest first), one running pg_sleep, one idle in transaction, one idle
    superuser session — all older than IDLE_FOR_S."""
    app_dsn = f"postgresql://app@{procs.HOST}:{server.port}/postgres"
    opened: list[Any] = []

    async def connect(dsn: str) -> tuple[Any, int]:
        conn = await asyncpg.connect(dsn)
        opened.append(conn)
        return conn, int(await conn.fetchval("SELECT pg_backend_pid()"))

    idle = []
    for _ in range(4):
        idle.append((await connect(app_dsn))[1])
        await asyncio.sleep(0.02)  # distinct state_change times: "oldest first" is observable
    busy, busy_pid = await connect(app_dsn)
    sleeping = asyncio.create_task(busy.execute("SELECT pg_sleep(60)"))
    in_tx, in_tx_pid = await connect(app_dsn)
    await in_tx.execute("BEGIN")
    await in_tx.execute("SELECT 1")
    superuser_pid = (await connect(server.dsn))[1]
    await asyncio.sleep(IDLE_FOR_S + 0.2)
    try:
        yield {"idle": idle, "active": busy_pid, "in_transaction": in_tx_pid, "superuser": superuser_pid}
    finally:
        admin = await asyncpg.connect(server.dsn)
        await admin.execute("SELECT pg_terminate_backend($1)", busy_pid)
        await admin.close()
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await sleeping
        for conn in opened:
            conn.terminate()


async def test_terminates_old_idle_sessions_oldest_first_and_nothing_else(
    server: procs.Postgres, clients: Clients
) -> None:
    async with sessions(server) as pids:
        keep = {pids["active"], pids["in_transaction"], pids["superuser"]}

        dry = await terminate(clients, idle_params(max_count=3), dry_run=True)
        assert not dry.sent and dry.result["pids"] == pids["idle"][:3] and dry.result["terminated"] == 0
        assert dry.summary == (
            f"dry-run: would terminate 3 sessions idle for over 1s on {procs.HOST}:{server.port}/postgres"
        )
        assert set(pids["idle"]) | keep <= await live_pids(server)  # nothing terminated

        outcome = await terminate(clients, idle_params(max_count=3))
        assert outcome.ok and outcome.sent
        assert outcome.result["terminated"] == 3
        assert sorted(outcome.result["pids"]) == sorted(pids["idle"][:3])
        assert {s["user"] for s in outcome.result["sessions"]} == {"app"}
        assert (
            outcome.summary
            == f"terminated 3 sessions idle for over 1s on {procs.HOST}:{server.port}/postgres"
        )
        [request] = outcome.requests
        assert request.method == "SQL" and request.path == f"postgresql://{procs.HOST}:{server.port}/postgres"
        assert request.body["args"] == [1, 3, False]
        assert "pg_terminate_backend(pid)" in request.body["sql"] and "$1" in request.body["sql"]
        assert "pg_terminate_backend" not in dry.requests[0].body["sql"]

        await wait_for_termination(server, set(pids["idle"][:3]))  # termination is a signal: soon gone
        assert {pids["idle"][3], *keep} <= await live_pids(server)

        # idle in transaction only when asked; the active and the superuser session never
        widened = await terminate(clients, idle_params(max_count=20, include_idle_in_transaction=True))
        assert sorted(widened.result["pids"]) == sorted([pids["idle"][3], pids["in_transaction"]])
        await wait_for_termination(server, {pids["idle"][3], pids["in_transaction"]})
        assert {pids["active"], pids["superuser"]} <= await live_pids(server)


async def test_nothing_old_enough_is_refused_and_nothing_is_terminated(
    server: procs.Postgres, clients: Clients
) -> None:
    conn = await asyncpg.connect(f"postgresql://app@{procs.HOST}:{server.port}/postgres")
    try:
        params = terminate_idle.TerminateIdleParams()  # the default: idle for over an hour
        reason = (
            f"no session idle for over 3600s on {procs.HOST}:{server.port}/postgres: nothing to terminate"
        )
        assert terminate_idle.terminate_idle.preflight is not None
        assert await terminate_idle.terminate_idle.preflight(context(clients, dry_run=True), params) == reason
        for dry_run in (True, False):
            with pytest.raises(errors.Blocked) as blocked:
                await terminate(clients, params, dry_run=dry_run)
            assert (blocked.value.guard, blocked.value.reason) == ("preflight", reason)
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


def test_params_bound_the_blast_radius() -> None:
    model = terminate_idle.TerminateIdleParams
    assert model().idle_for_s == 3600 and model().max_count == 20
    assert model().include_idle_in_transaction is False
    for bad in ({"idle_for_s": 59}, {"max_count": 0}, {"max_count": 201}, {"user": "postgres"}):
        with pytest.raises(ValidationError):
            model.model_validate(bad)


# ------------------------------------------------------------------------------------- promote_replica


@pytest.fixture
def standby(server: procs.Postgres, tmp_path: Path) -> Iterator[postgres_roles.Standby]:
    with postgres_roles.start_standby(server, tmp_path / "standby") as replica:
        yield replica


async def in_recovery(port: int | None) -> bool:
    conn = await asyncpg.connect(f"postgresql://postgres@{procs.HOST}:{port}/postgres")
    try:
        return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
    finally:
        await conn.close()


async def test_promote_refuses_a_primary_and_promotes_a_standby(
    server: procs.Postgres, standby: postgres_roles.Standby, clients: Clients
) -> None:
    promote = promote_replica.promote_replica
    assert promote.preflight is not None
    on_primary = promote_replica.PromoteReplicaParams(port=server.port)
    reason = (
        f"PostgreSQL {procs.HOST}:{server.port}/postgres is a primary (not in recovery): nothing to promote"
    )
    assert await promote.preflight(context(clients, dry_run=True), on_primary) == reason
    with pytest.raises(errors.Blocked) as blocked:
        await promote.run(context(clients), on_primary)
    assert (blocked.value.guard, blocked.value.reason) == ("preflight", reason)
    assert not await in_recovery(server.port)

    on_standby = promote_replica.PromoteReplicaParams(port=standby.port)
    where = f"{procs.HOST}:{standby.port}/postgres"
    assert await promote.preflight(context(clients, dry_run=True), on_standby) is None
    dry = await promote.run(context(clients, dry_run=True), on_standby)
    assert (dry.ok, dry.sent, dry.summary) == (
        True,
        False,
        f"dry-run: would promote standby {where} (waiting up to 4s)",
    )
    assert [r.as_dict() for r in dry.requests] == [
        {
            "method": "SQL",
            "path": f"postgresql://{where}",
            "body": {"sql": "SELECT pg_promote(wait => true, wait_seconds => $1)", "args": [4]},
            "content_type": None,
        }
    ]
    assert await in_recovery(standby.port)

    outcome = await promote.run(context(clients), on_standby)
    assert outcome.ok and outcome.summary == f"promoted {where} to primary"
    assert outcome.result == {"promoted": True, "in_recovery": False, "server": where}
    assert outcome.requests == dry.requests
    assert not await in_recovery(standby.port)
    assert await promote.preflight(context(clients, dry_run=True), on_standby) == (
        f"PostgreSQL {where} is a primary (not in recovery): nothing to promote"
    )
