"""The PostgreSQL connector against a real PostgreSQL 15: the password comes from a file, sessions are
read-only, probes may move host/port/database but not the user, and every failure is translated into
our errors without the password in the message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from service import errors
from service.clients import postgres as pg
from service.settings import Settings
from tests.support import postgres_roles, procs

PASSWORD = "pg-Secr3t-4e1b7c"
MAX_CONNECTIONS = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Postgres]:
    tmpdir = tmp_path_factory.mktemp("pg")
    with procs.start_postgres(tmpdir, extra_args=["-c", f"max_connections={MAX_CONNECTIONS}"]) as started:
        asyncio.run(postgres_roles.add_monitor_role(started, PASSWORD))
        yield started


@pytest.fixture
def monitor_dsn(server: procs.Postgres) -> str:
    return postgres_roles.monitor_dsn(server)


def settings_for(dsn: str, password_file: Path | None) -> Settings:
    return Settings(monitor_postgres_dsn=dsn, monitor_postgres_password_file=password_file)


async def test_password_comes_from_the_secret_file(monitor_dsn: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")  # Secrets written by hand often end with a newline
    connector = pg.PostgresConnector.from_settings(settings_for(monitor_dsn, secret))
    assert connector is not None
    assert connector.secrets() == {PASSWORD}
    async with connector.connect(timeout=5) as conn:
        assert await conn.fetchval("SELECT current_user") == "monitor"
        assert await conn.fetchval(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ) == ("remediator-probe")


def test_no_dsn_means_not_configured() -> None:
    assert pg.PostgresConnector.from_settings(Settings()) is None


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="monitor_postgres_password_file"):
        pg.PostgresConnector.from_settings(
            settings_for("postgresql://monitor@db/postgres", tmp_path / "missing")
        )


async def test_sessions_are_read_only(monitor_dsn: str) -> None:
    connector = pg.PostgresConnector(monitor_dsn, PASSWORD)
    with pytest.raises(errors.Permanent, match="read-only transaction"):
        async with connector.connect(timeout=5) as conn:
            await conn.execute("CREATE TABLE probes_must_not_write (id int)")


async def test_a_wrong_password_is_permanent_and_not_shown(monitor_dsn: str) -> None:
    wrong = "not-the-Password-123"
    connector = pg.PostgresConnector(monitor_dsn, wrong)
    with pytest.raises(errors.Permanent) as caught:
        async with connector.connect(timeout=5):
            pass
    message = str(caught.value)
    assert "authentication failed" in message
    assert wrong not in message and PASSWORD not in message


async def test_a_password_written_in_the_dsn_is_a_secret_too(server: procs.Postgres) -> None:
    dsn = f"postgresql://monitor:wrong-In-Dsn-99@{procs.HOST}:{server.port}/nope"
    connector = pg.PostgresConnector(dsn, None)
    assert connector.secrets() == {"wrong-In-Dsn-99"}
    with pytest.raises(errors.Permanent) as caught:
        async with connector.connect(timeout=5):
            pass
    assert "wrong-In-Dsn-99" not in str(caught.value)


async def test_probes_may_move_host_port_and_database_but_keep_the_user(server: procs.Postgres) -> None:
    unused = procs.free_port()
    connector = pg.PostgresConnector(f"postgresql://monitor@{procs.HOST}:{unused}/postgres", PASSWORD)
    async with connector.connect(port=server.port, database="template1", timeout=5) as conn:
        assert await conn.fetchval("SELECT current_database()") == "template1"
        assert await conn.fetchval("SELECT current_user") == "monitor"
    assert connector.describe(port=server.port) == f"{procs.HOST}:{server.port}/postgres"
    with pytest.raises(errors.Permanent, match='database "nope" does not exist'):
        async with connector.connect(port=server.port, database="nope", timeout=5):
            pass


async def test_a_refused_connection_is_unreachable(monitor_dsn: str) -> None:
    port = procs.free_port()
    connector = pg.PostgresConnector(monitor_dsn, PASSWORD)
    with pytest.raises(pg.Unreachable) as caught:
        async with connector.connect(port=port, timeout=2):
            pass
    assert (
        str(caught.value) == f"cannot connect to PostgreSQL {procs.HOST}:{port}/postgres: Connection refused"
    )
    assert caught.value.timed_out is False


@contextlib.asynccontextmanager
async def saturated(server: procs.Postgres) -> AsyncIterator[None]:
    held = [await asyncpg.connect(server.dsn) for _ in range(MAX_CONNECTIONS)]
    try:
        yield
    finally:
        await asyncio.gather(*(conn.close() for conn in held))


async def test_too_many_connections_is_not_accepting(server: procs.Postgres) -> None:
    connector = pg.PostgresConnector(server.dsn, None)
    async with saturated(server):
        with pytest.raises(pg.NotAccepting) as caught:
            async with connector.connect(timeout=5):
                pass
    assert caught.value.reason == "sorry, too many clients already"
    assert isinstance(caught.value, errors.Transient)


async def test_errors_inside_the_block_are_translated(monitor_dsn: str) -> None:
    connector = pg.PostgresConnector(monitor_dsn, PASSWORD)
    with pytest.raises(errors.Permanent, match='relation "no_such_table" does not exist'):
        async with connector.connect(timeout=5) as conn:
            await conn.fetch("SELECT * FROM no_such_table")
    with pytest.raises(errors.Transient, match="canceling statement due to statement timeout"):
        async with connector.connect(timeout=5) as conn:
            await conn.execute("SET statement_timeout = 50")
            await conn.fetch("SELECT pg_sleep(2)")


async def test_credentials_are_never_sent_to_a_host_outside_the_allow_list(monitor_dsn: str) -> None:
    connector = pg.PostgresConnector(monitor_dsn, PASSWORD)
    with pytest.raises(errors.Permanent, match="REMEDIATOR_MONITOR_HOSTS"):
        async with connector.connect(host="attacker.example", timeout=2):
            pass
    allowed = pg.PostgresConnector(monitor_dsn, PASSWORD, allowed_hosts=["localhost"])
    async with allowed.connect(host="localhost", timeout=5) as conn:
        assert await conn.fetchval("SELECT 1") == 1
