"""The Redis connector against a real password-protected Redis 7: the password comes from a file, probes
may move host/port/db but not the credentials, and failures are translated without the password."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from service import errors
from service.clients import redis as rd
from service.settings import Settings
from tests.support import procs

PASSWORD = "redis-S3cret-a41f"


async def require_password(server: procs.Redis, password: str) -> None:
    # Not ``--requirepass`` on the command line: procs' readiness check PINGs without a password.
    admin = redis.asyncio.Redis(host=procs.HOST, port=server.port)
    await admin.config_set("requirepass", password)
    await admin.aclose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Redis]:
    with procs.start_redis(tmp_path_factory.mktemp("redis")) as started:
        asyncio.run(require_password(started, PASSWORD))
        yield started


@pytest.fixture
def url(server: procs.Redis) -> str:
    return server.url


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    listener = await asyncio.start_server(hold, procs.HOST, 0)
    yield listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()


async def test_password_comes_from_the_secret_file(url: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    connector = rd.RedisConnector.from_settings(
        Settings(monitor_redis_url=url, monitor_redis_password_file=secret)
    )
    assert connector is not None
    assert connector.secrets() == {PASSWORD}
    async with connector.connect(timeout=2) as client:
        assert await client.ping() is True


def test_no_url_means_not_configured() -> None:
    assert rd.RedisConnector.from_settings(Settings()) is None


def test_a_url_that_is_not_redis_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="must start with redis:// or rediss://"):
        rd.RedisConnector("http://cache:6379", None)


async def test_a_wrong_password_is_permanent_and_not_shown(url: str) -> None:
    wrong = "Wrong-Redis-Pass-77"
    connector = rd.RedisConnector(url, wrong)
    with pytest.raises(errors.Permanent) as caught:
        async with connector.connect(timeout=2) as client:
            await client.ping()
    assert "authentication failed" in str(caught.value)
    assert wrong not in str(caught.value)


async def test_no_password_is_permanent(url: str) -> None:
    with pytest.raises(errors.Permanent, match="requires a password and none is configured"):
        async with rd.RedisConnector(url, None).connect(timeout=2) as client:
            await client.ping()


async def test_a_password_in_the_url_is_a_secret_and_used(server: procs.Redis) -> None:
    connector = rd.RedisConnector(f"redis://:{PASSWORD}@{procs.HOST}:{server.port}/0", None)
    assert connector.secrets() == {PASSWORD}
    async with connector.connect(timeout=2) as client:
        assert await client.ping() is True


async def test_probes_may_move_port_and_db(server: procs.Redis) -> None:
    admin = redis.asyncio.Redis(host=procs.HOST, port=server.port, db=3, password=PASSWORD)
    await admin.set("marker", "in-db-3")
    await admin.aclose()
    connector = rd.RedisConnector(f"redis://{procs.HOST}:{procs.free_port()}/0", PASSWORD)
    async with connector.connect(port=server.port, db=3, timeout=2) as client:
        assert await client.get("marker") == "in-db-3"
    assert connector.describe(port=server.port, db=3) == f"{procs.HOST}:{server.port}/3"


async def test_a_refused_connection_is_unreachable() -> None:
    port = procs.free_port()
    with pytest.raises(rd.Unreachable) as caught:
        async with rd.RedisConnector(f"redis://{procs.HOST}:{port}/0", PASSWORD).connect(timeout=2) as client:
            await client.ping()
    assert caught.value.timed_out is False
    assert str(caught.value) == f"cannot reach Redis {procs.HOST}:{port}/0: Connection refused"


async def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    connector = rd.RedisConnector(f"redis://{procs.HOST}:{silent_port}/0", None)
    with pytest.raises(rd.Unreachable) as caught:
        async with connector.connect(timeout=0.3) as client:
            await client.ping()
    assert caught.value.timed_out is True
    assert str(caught.value) == f"Redis {procs.HOST}:{silent_port}/0 did not answer within 0.3s"
