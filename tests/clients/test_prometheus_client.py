"""The Prometheus client against a real Prometheus 2.42 (instant queries over the HTTP API), and against a
small local server for what a healthy Prometheus will not do on demand (503, 429 with Retry-After)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service import errors
from service.clients import prometheus as prom
from tests.support import procs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Prometheus]:
    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": []}
    with procs.start_prometheus(config, tmpdir=tmp_path_factory.mktemp("prom")) as started:
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def client(server: procs.Prometheus, session: aiohttp.ClientSession) -> prom.PrometheusClient:
    return prom.PrometheusClient(session, server.url + "/")


async def test_a_vector_comes_back_as_samples_with_labels(client: prom.PrometheusClient) -> None:
    samples = await client.query('label_replace(vector(42), "queue", "orders", "", "")', timeout=2)
    assert samples == [prom.Sample(labels={"queue": "orders"}, value=42.0)]


async def test_a_scalar_is_one_sample_without_labels(client: prom.PrometheusClient) -> None:
    assert await client.query("1 + 1", timeout=2) == [prom.Sample(labels={}, value=2.0)]


async def test_an_empty_vector_is_no_samples(client: prom.PrometheusClient) -> None:
    assert await client.query("no_such_metric", timeout=2) == []


async def test_bad_promql_is_permanent_with_prometheus_words(client: prom.PrometheusClient) -> None:
    with pytest.raises(errors.Permanent) as caught:
        await client.query("sum(rate(http_requests_total[5m]", timeout=2)
    message = str(caught.value)
    assert message.startswith("Prometheus rejected the query: bad_data: ")
    assert "unclosed left parenthesis" in message


@pytest.mark.parametrize(("query", "kind"), [("up[1m]", "matrix"), ('"text"', "string")])
async def test_matrix_and_string_results_are_permanent(
    client: prom.PrometheusClient, query: str, kind: str
) -> None:
    with pytest.raises(errors.Permanent, match=f"query returned a {kind} result"):
        await client.query(query, timeout=2)


async def test_an_unreachable_prometheus_is_transient(session: aiohttp.ClientSession) -> None:
    client = prom.PrometheusClient(session, f"http://{procs.HOST}:{procs.free_port()}")
    with pytest.raises(errors.Transient, match="Prometheus unreachable: Connection refused"):
        await client.query("up", timeout=2)


def test_only_http_base_urls_are_accepted(session: aiohttp.ClientSession) -> None:
    with pytest.raises(errors.Permanent):
        prom.PrometheusClient(session, "prometheus:9090")


# ------------------------------------------------------------------ answers a healthy Prometheus rarely gives


async def overloaded(request: web.Request) -> web.Response:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    return web.json_response(body, status=503)


async def throttled(request: web.Request) -> web.Response:
    return web.Response(status=429, text="slow down", headers={"Retry-After": "7"})


async def html(request: web.Request) -> web.Response:
    return web.Response(text="<html>login page</html>", content_type="text/html")


async def hanging(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


@pytest.fixture
async def stub() -> AsyncIterator[str]:
    app = web.Application()
    for prefix, handler in (
        ("/overloaded", overloaded),
        ("/throttled", throttled),
        ("/html", html),
        ("/hang", hanging),
    ):
        app.router.add_get(f"{prefix}/api/v1/query", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_503_is_transient(stub: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(
        errors.Transient, match="Prometheus timeout: query timed out in expression evaluation"
    ):
        await prom.PrometheusClient(session, f"{stub}/overloaded").query("up", timeout=2)


async def test_a_429_is_transient_with_retry_after(stub: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(errors.Transient) as caught:
        await prom.PrometheusClient(session, f"{stub}/throttled").query("up", timeout=2)
    assert caught.value.delay == 7.0


async def test_a_page_that_is_not_the_api_is_permanent(stub: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(errors.Permanent, match="answered HTTP 200 without the API's JSON"):
        await prom.PrometheusClient(session, f"{stub}/html").query("up", timeout=2)


async def test_no_answer_in_time_is_transient(stub: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(errors.Transient, match=r"Prometheus did not answer within 0.3s"):
        await prom.PrometheusClient(session, f"{stub}/hang").query("up", timeout=0.3)
