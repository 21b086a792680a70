"""The HTTP client adapter against a real local aiohttp server: statuses are answers, not exceptions; bodies
are read with a limit; redirects are reported, not followed; failures to connect are ``Unreachable``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service import errors
from service.clients import http
from tests.support import procs


async def endless(request: web.Request) -> web.StreamResponse:
    """A body that never ends (the client must stop reading on its own)."""
    response = web.StreamResponse()
    await response.prepare(request)
    chunk = b"x" * 65536
    while True:
        await response.write(chunk)


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


def answer(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    return handle


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=request.headers.get("X-Probe", ""))


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok", answer(200, b"fine", {"X-Thing": "1"}))
    app.router.add_get("/down", answer(503, b"maintenance"))
    app.router.add_get("/moved", answer(302, b"", {"Location": "/ok"}))
    app.router.add_get("/big", answer(200, b"y" * 200_000))
    app.router.add_get("/endless", endless)
    app.router.add_get("/slow", slow)
    app.router.add_get("/echo", echo)
    return app


@pytest.fixture
async def base() -> AsyncIterator[str]:
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[http.HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield http.HttpClient(session)


async def test_a_200_comes_back_with_body_headers_and_timing(base: str, client: http.HttpClient) -> None:
    result = await client.get(f"{base}/ok", timeout=2, headers={"X-Probe": "yes"})
    assert (result.status, result.body, result.truncated) == (200, b"fine", False)
    assert result.headers["x-thing"] == "1"  # keys are lower-case
    assert 0 < result.elapsed_ms < 2000
    echoed = await client.get(f"{base}/echo", timeout=2, headers={"X-Probe": "yes"})
    assert echoed.body == b"yes"


async def test_an_error_status_is_an_answer_not_an_exception(base: str, client: http.HttpClient) -> None:
    result = await client.get(f"{base}/down", timeout=2)
    assert (result.status, result.body) == (503, b"maintenance")


async def test_redirects_are_reported_not_followed(base: str, client: http.HttpClient) -> None:
    result = await client.get(f"{base}/moved", timeout=2)
    assert result.status == 302
    assert result.location == "/ok"


async def test_a_large_body_is_cut_at_max_body(base: str, client: http.HttpClient) -> None:
    result = await client.get(f"{base}/big", timeout=2, max_body=1000)
    assert (len(result.body), result.truncated) == (1000, True)
    exact = await client.get(f"{base}/big", timeout=2, max_body=200_000)
    assert (len(exact.body), exact.truncated) == (200_000, False)


async def test_an_endless_body_is_not_read_to_the_end(base: str, client: http.HttpClient) -> None:
    started = time.monotonic()
    result = await client.get(f"{base}/endless", timeout=5, max_body=100_000)
    assert (len(result.body), result.truncated) == (100_000, True)
    assert time.monotonic() - started < 2


async def test_a_refused_connection_is_unreachable(client: http.HttpClient) -> None:
    port = procs.free_port()
    with pytest.raises(http.Unreachable) as caught:
        await client.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert caught.value.timed_out is False
    assert isinstance(caught.value, errors.Transient)


async def test_no_answer_in_time_is_unreachable_with_timed_out(base: str, client: http.HttpClient) -> None:
    with pytest.raises(http.Unreachable) as caught:
        await client.get(f"{base}/slow", timeout=0.3)
    assert caught.value.timed_out is True
    assert str(caught.value) == "no response within 0.3s"


async def test_an_unknown_host_is_unreachable(client: http.HttpClient) -> None:
    with pytest.raises(http.Unreachable, match=r"cannot resolve does-not-exist\.invalid"):
        await client.get("http://does-not-exist.invalid/", timeout=2)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "/relative", "http://"])
async def test_only_absolute_http_urls_are_allowed(client: http.HttpClient, url: str) -> None:
    with pytest.raises(errors.Permanent):
        await client.get(url, timeout=1)


async def test_a_url_with_userinfo_is_refused_without_showing_the_password(client: http.HttpClient) -> None:
    port = procs.free_port()
    with pytest.raises(errors.Permanent, match="userinfo") as caught:
        await client.get(f"http://user:hunter2-secret@127.0.0.1:{port}/", timeout=2)
    assert "hunter2-secret" not in str(caught.value)
    with pytest.raises(errors.Permanent, match="userinfo"):  # the host a reader sees is not the real one
        await client.get(f"http://coordinator.shop@127.0.0.1:{port}/", timeout=2)
