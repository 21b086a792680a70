"""Limits at the HTTP edge, against a real server and real slow clients (raw sockets): the body timeout (408),
the request-head timeout, the caps on requests and large bodies in flight (503 + Retry-After), ids and query
values with control characters (400), and credentials no client library would send (401, never 500)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from service.app import create_app
from tests.conftest import AM_FIXTURES, TOKEN, eventually

APPROVER = "approver-token-456"


async def served(aiohttp_client: Any, make_settings: Any, **overrides: Any) -> Any:
    return await aiohttp_client(create_app(make_settings(approver_tokens=f"alice={APPROVER}", **overrides)))


@contextlib.asynccontextmanager
async def connection(client: Any) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head(
    path: str = "/v1/alerts", *, length: int | None = None, token: str = TOKEN, extra: bytes = b""
) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1".encode(),
        b"Host: remediator",
        f"Authorization: Bearer {token}".encode(),
        b"Content-Type: application/json",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


async def status_of(reader: asyncio.StreamReader, timeout: float = 5) -> tuple[int, bytes]:
    """The status code and the rest of the answer (until the server closes or the timeout)."""
    line = await asyncio.wait_for(reader.readline(), timeout)
    rest = b""
    with contextlib.suppress(TimeoutError):
        rest = await asyncio.wait_for(reader.read(65536), 0.5)
    return int(line.split()[1]), rest


# ---- body and head timeouts -------------------------------------------------------------------------------


async def test_a_body_sent_too_slowly_is_408_at_the_body_timeout(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await served(aiohttp_client, make_settings, body_timeout_s=0.5)
    body = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    async with connection(client) as (reader, writer):
        writer.write(head(length=len(body)))
        started = time.monotonic()

        async def trickle() -> None:
            for i in range(0, len(body), 8):  # 8 bytes every 100 ms: the whole body would take a minute
                writer.write(body[i : i + 8])
                await writer.drain()
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(trickle())
        try:
            status, rest = await status_of(reader)
        finally:
            sender.cancel()
    assert status == 408
    assert b"not received within 0.5 s" in rest
    assert 0.4 < time.monotonic() - started < 3


async def test_a_request_head_sent_too_slowly_is_cut_off(aiohttp_client: Any, make_settings: Any) -> None:
    client = await served(aiohttp_client, make_settings, header_timeout_s=0.3)
    async with connection(client) as (reader, writer):
        started = time.monotonic()
        writer.write(b"POST /v1/alerts HTTP/1.1\r\nHost: remediator\r\n")

        async def trickle() -> None:
            for _ in range(100):  # a header byte every 50 ms, never the blank line that ends the head
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        try:
            assert await asyncio.wait_for(reader.read(), 3) == b"", "closed without an answer"
        finally:
            sender.cancel()
    assert 0.25 < time.monotonic() - started < 2


async def test_a_connection_that_sends_nothing_is_closed_and_others_are_served(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await served(aiohttp_client, make_settings, header_timeout_s=0.3)
    async with connection(client) as (reader, _writer):
        assert await asyncio.wait_for(reader.read(), 3) == b""
    # a client that sends its request in time, twice on one connection, is served
    async with connection(client) as (reader, writer):
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: remediator\r\n\r\n")
            assert (await asyncio.wait_for(reader.readline(), 3)).startswith(b"HTTP/1.1 200")
            await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 3)


# ---- requests and large bodies in flight ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def held(client: Any, count: int, *, length: int) -> AsyncIterator[None]:
    """``count`` authenticated requests whose body never finishes arriving: each holds its handler."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(count):
            _reader, writer = await stack.enter_async_context(connection(client))
            writer.write(head(length=length) + b"{")
            await writer.drain()
        yield


async def test_past_max_inflight_requests_are_503_with_retry_after_but_probes_answer(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await served(aiohttp_client, make_settings, max_inflight=3, body_timeout_s=30)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with held(client, 3, length=1000):
        busy = await eventually(lambda: _busy(client.get("/v1/incidents", headers=auth)))
        assert busy.headers["Retry-After"] == "1"
        assert "3 requests in flight" in (await busy.json())["error"]
        response = await client.post(
            "/v1/alerts", data=(AM_FIXTURES / "am-0.25-firing.json").read_bytes(), headers=auth
        )
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(probe)).status == 200, probe
        metrics = await (await client.get("/metrics")).text()
        assert 'remediator_http_refused_total{reason="inflight"} 2.0' in metrics
    # the held requests gave up (connections closed): their places are free again
    assert await eventually(lambda: _ok(client.get("/v1/incidents", headers=auth)))


async def _busy(request: Any) -> Any:
    response = await request
    return response if response.status == 503 else None


async def _ok(request: Any) -> bool:
    return bool((await request).status == 200)


async def test_past_max_large_bodies_a_large_body_is_503_a_small_one_is_served(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await served(aiohttp_client, make_settings, max_large_bodies=2, body_timeout_s=30)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    small = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    large = small.rstrip()[:-1] + b" " * (100 * 1024) + b"}"
    async with held(client, 2, length=len(large)):
        busy = await eventually(lambda: _busy(client.post("/v1/alerts", data=large, headers=auth)))
        assert busy.headers["Retry-After"] == "1"
        assert "2 large bodies in flight" in (await busy.json())["error"]

        async def chunked() -> AsyncIterator[bytes]:
            yield small  # no Content-Length: a body of unknown size counts as large

        assert (await client.post("/v1/alerts", data=chunked(), headers=auth)).status == 503
        compressed = {**auth, "Content-Encoding": "gzip"}  # 8 KiB of gzip may inflate to the whole limit
        assert (await client.post("/v1/alerts", data=gzip.compress(small), headers=compressed)).status == 503
        assert (await client.post("/v1/alerts", data=small, headers=auth)).status == 200
    assert await eventually(lambda: _ok(client.post("/v1/alerts", data=large, headers=auth)))


# ---- ids and query values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/v1/incidents/%00", "id"),
        ("GET", "/v1/incidents/a%0Ab/report", "id"),
        ("POST", "/v1/incidents/%00/ack", "id"),
        ("POST", "/v1/incidents/x/actions/%00/approve", "action"),
        ("POST", "/v1/incidents/x%E2%80%A8/actions/y/reject", "id"),
        ("GET", "/v1/incidents?rule=%00", "rule"),
        ("GET", "/v1/incidents?state=%00", "state"),
        ("GET", "/v1/incidents?cursor=a%0D%0Ab", "cursor"),
        ("GET", "/v1/incidents?limit=%001", "limit"),
    ],
)
async def test_a_control_character_in_an_id_or_a_query_value_is_400_naming_it(
    aiohttp_client: Any, make_settings: Any, method: str, path: str, field: str
) -> None:
    """NUL in an id would fail the PostgreSQL query it is bound to: a 500 before (SQLite just found nothing)."""
    client = await served(aiohttp_client, make_settings)
    token = TOKEN if method == "GET" else APPROVER
    response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 400
    assert (await response.json())["field"] == field


@pytest.mark.parametrize(
    "query",
    ["?limit=99999999999999999999999", "?limit=-1", "?limit=1e3", "?cursor=WyJOYU4iLCJ4Il0", "?cursor=%FF"],
)
async def test_odd_query_values_are_400(aiohttp_client: Any, make_settings: Any, query: str) -> None:
    client = await served(aiohttp_client, make_settings)
    response = await client.get(f"/v1/incidents{query}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 400


# ---- credentials no client library would send -------------------------------------------------------------

CREDENTIALS = {
    "non-UTF-8 bearer": b"Bearer \xff\xfe\xfd",
    "latin-1 bearer": b"Bearer t\xe9st",
    "non-UTF-8 basic password": b"Basic " + base64.b64encode(b"alertmanager:\xff\xfe"),
    "non-ASCII basic": "Basic é".encode(),
}
ENDPOINTS = [
    ("POST", "/v1/alerts"),
    ("GET", "/v1/incidents"),
    ("GET", "/v1/incidents/x"),
    ("GET", "/v1/incidents/x/report"),
    ("POST", "/v1/incidents/x/ack"),
    ("POST", "/v1/incidents/x/actions/y/approve"),
    ("POST", "/v1/incidents/x/actions/y/reject"),
    ("POST", "/v1/pause"),
    ("POST", "/v1/resume"),
]


async def test_undecodable_credentials_are_401_on_every_endpoint(
    aiohttp_client: Any, make_settings: Any
) -> None:
    """A header aiohttp cannot decode as UTF-8 used to raise before any credential was checked: a 500."""
    client = await served(aiohttp_client, make_settings)
    answers = {}
    for what, value in CREDENTIALS.items():
        for method, path in ENDPOINTS:
            request = (
                f"{method} {path} HTTP/1.1\r\nHost: remediator\r\n".encode()
                + b"Authorization: "
                + value
                + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            )
            async with connection(client) as (reader, writer):
                writer.write(request)
                answers[f"{what} on {method} {path}"] = (await status_of(reader))[0]
    assert answers == dict.fromkeys(answers, 401)
    async with connection(client) as (reader, writer):  # NUL: aiohttp's parser refuses it before us
        writer.write(b"GET /v1/incidents HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer a\x00b\r\n\r\n")
        assert (await status_of(reader))[0] == 400


async def test_a_client_that_leaves_mid_body_is_no_server_error(make_settings: Any) -> None:
    """Served as ``remediator serve`` serves it (web.run_app: handlers are not cancelled when the client
    goes): the body read fails with a ConnectionResetError, which used to end as a logged 500."""
    runner = web.AppRunner(create_app(make_settings()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with capture_logs() as logs:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head(length=1000) + b'{"version": "4"')
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
            await eventually(lambda: [e for e in logs if e["event"] == "http.body_abandoned"])
        assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    finally:
        await runner.cleanup()
