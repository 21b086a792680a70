"""Outbound HTTP honours HTTP_PROXY / NO_PROXY and announces ``User-Agent: remediator/<version>``.

A real (minimal) forward proxy runs on loopback: it takes absolute-form requests (``POST http://host/path``)
and forwards them; a webhook notification from the running service goes through it, or straight to the
receiver when NO_PROXY names the receiver's host. The Kubernetes client sends the same User-Agent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import service
from service.app import create_app
from service.clients import sessions
from service.clients.prometheus import PrometheusClient
from tests.conftest import TOKEN, eventually, load_fixture
from tests.support import procs
from tests.support.kube_clients import connect_kube
from tests.support.kube_standin import KubeStandin

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class ForwardProxy:
    """An HTTP forward proxy for absolute-form requests; ``seen`` lists (method, absolute URL, User-Agent)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.server: TestServer | None = None
        self.upstream: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        assert self.upstream is not None
        url = request.raw_path  # absolute-form: the whole target URL
        if not url.startswith("http://"):
            return web.Response(status=400, text="not a proxy request")
        self.seen.append((request.method, url, request.headers.get("User-Agent", "")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self.upstream.request(
            request.method, url, headers=headers, data=await request.read(), allow_redirects=False
        ) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, body=body, headers=kept)

    async def __aenter__(self) -> ForwardProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.upstream = aiohttp.ClientSession(trust_env=False, auto_decompress=False)  # direct, bytes as sent
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None and self.upstream is not None
        await self.server.close()
        await self.upstream.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"


class Receiver:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append({"headers": dict(request.headers), "body": await request.json()})
        return web.json_response({"ok": True})


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Prometheus]:
    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": []}
    with procs.start_prometheus(config, tmpdir=tmp_path_factory.mktemp("prom")) as started:
        yield started


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as started:
        yield started


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield target, str(server.make_url("/hook"))
    await server.close()


def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


async def _notify(aiohttp_client: Any, make_settings: Any, url: str) -> None:
    client = await aiohttp_client(create_app(make_settings(notify_webhook_url=url, outbox_backoff_s=0.05)))
    response = await client.post(
        "/v1/alerts",
        data=json.dumps(load_fixture("am-0.25-firing.json")),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 200


async def test_a_notification_goes_through_the_proxy_with_our_user_agent(
    aiohttp_client: Any,
    make_settings: Any,
    proxy: ForwardProxy,
    receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy_settings(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    target, url = receiver
    await _notify(aiohttp_client, make_settings, url)
    await eventually(lambda: target.calls)
    assert target.calls[0]["headers"]["User-Agent"] == service.USER_AGENT
    assert service.USER_AGENT.startswith("remediator/")
    assert ("POST", url, service.USER_AGENT) in proxy.seen  # the delivery went through the proxy


async def test_no_proxy_sends_the_notification_direct(
    aiohttp_client: Any,
    make_settings: Any,
    proxy: ForwardProxy,
    receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy_settings(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    target, url = receiver
    await _notify(aiohttp_client, make_settings, url)
    await eventually(lambda: target.calls)
    assert target.calls[0]["headers"]["User-Agent"] == service.USER_AGENT
    assert proxy.seen == []


async def test_a_prometheus_query_goes_through_the_proxy(
    prometheus: procs.Prometheus, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_settings(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with sessions.new_session() as session:
        samples = await PrometheusClient(session, prometheus.url).query("vector(7)", timeout=5.0)
    assert [s.value for s in samples] == [7.0]
    assert [(m, u.split("?")[0], a) for m, u, a in proxy.seen] == [
        ("GET", f"{prometheus.url}/api/v1/query", service.USER_AGENT)
    ]


async def test_the_kubernetes_client_sends_our_user_agent(tmp_path: Path) -> None:
    async with KubeStandin() as standin:
        standin.add_deployment("shop", "api", replicas=1)
        async with connect_kube(standin.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")) as kube:
            await kube.call("list pods", kube.core.list_namespaced_pod, "shop", timeout=5.0)
        assert standin.requests and {r.user_agent for r in standin.requests} == {service.USER_AGENT}


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NETRC")


@pytest.mark.parametrize(
    ("variable", "value", "netrc", "trusted"),
    [
        (None, None, False, False),  # nothing to find: no thread hop per request for the look-ups
        ("HTTPS_PROXY", "http://proxy.internal:3128", False, True),
        ("http_proxy", "http://proxy.internal:3128", False, True),
        ("NETRC", "/etc/remediator/netrc", False, True),
        (None, None, True, True),  # ~/.netrc is still honoured
    ],
)
async def test_the_environment_is_trusted_only_when_it_names_a_proxy_or_a_netrc(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str | None,
    value: str | None,
    netrc: bool,
    trusted: bool,
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if variable is not None and value is not None:
        monkeypatch.setenv(variable, value)
    if netrc:
        (tmp_path / ".netrc").write_text("machine example.org login a password b\n")
    async with sessions.new_session() as session:
        assert session.trust_env is trusted
