"""``tcp.connect`` and ``dns.resolve`` through the real runner: open and refused ports, a name that resolves
and one that cannot exist (``.invalid`` is reserved by RFC 2606)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from service.clients import http
from service.clients.hub import Clients
from service.diagnosis import net, runner
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support import procs

TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="x")
REGISTRY = {p.name: p for p in net.PROBES}


async def run(
    clients: Clients, probe: str, params: dict[str, Any], timeout: float = 3.0
) -> incidents.Finding:
    spec = ProbeSpec.model_validate({"id": "net", "probe": probe, "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=TARGET,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=timeout),
    )
    return finding


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    async with aiohttp.ClientSession() as session:
        yield Clients(http=http.HttpClient(session))


@pytest.fixture
async def listening() -> AsyncIterator[int]:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_an_open_port_is_reachable(clients: Clients, listening: int) -> None:
    finding = await run(clients, "tcp.connect", {"host": "127.0.0.1", "port": listening})
    assert finding.status == "ok"
    assert finding.summary.startswith(f"TCP 127.0.0.1:{listening} accepts connections (")
    assert finding.facts["reachable"] is True
    assert finding.facts["timeout"] is False
    assert 0 <= finding.facts["connect_ms"] < 1000


async def test_a_refused_port_fails(clients: Clients) -> None:
    port = procs.free_port()
    finding = await run(clients, "tcp.connect", {"host": "127.0.0.1", "port": port})
    assert finding.status == "failed"
    assert finding.summary == f"TCP 127.0.0.1:{port}: connection refused"
    assert finding.facts == {
        "reachable": False,
        "connect_ms": None,
        "timeout": False,
        "reason": "connection refused",
    }


async def test_a_port_that_never_answers_fails_with_timeout(clients: Clients) -> None:
    # A listening socket whose backlog is full drops further SYNs: connect() hangs like a black hole.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            finding = await run(clients, "tcp.connect", {"host": "127.0.0.1", "port": port, "timeout_s": 0.3})
        finally:
            for filler in fillers:
                filler.close()
    assert finding.status == "failed"
    assert finding.summary == f"TCP 127.0.0.1:{port}: no connection within 0.3s"
    assert finding.facts["timeout"] is True
    assert finding.facts["reachable"] is False


async def test_an_unknown_host_fails(clients: Clients) -> None:
    finding = await run(clients, "tcp.connect", {"host": "does-not-exist.invalid", "port": 80})
    assert finding.status == "failed"
    assert finding.facts["reachable"] is False
    assert finding.facts["reason"].startswith("cannot resolve host")


async def test_localhost_resolves(clients: Clients) -> None:
    finding = await run(clients, "dns.resolve", {"name": "localhost"})
    assert finding.status == "ok"
    assert finding.summary == "DNS A localhost → 127.0.0.1"
    assert finding.facts["resolved"] is True
    assert finding.facts["addresses"] == ["127.0.0.1"]
    assert finding.facts["resolve_ms"] >= 0


async def test_a_name_that_does_not_exist_fails(clients: Clients) -> None:
    finding = await run(clients, "dns.resolve", {"name": "does-not-exist.invalid"})
    assert finding.status == "failed"
    assert finding.summary == "DNS A does-not-exist.invalid: name does not exist"
    assert finding.facts["resolved"] is False
    assert finding.facts["addresses"] == []


async def test_an_unknown_record_type_is_a_bad_param(clients: Clients) -> None:
    finding = await run(clients, "dns.resolve", {"name": "localhost", "type": "MX"})
    assert finding.status == "error"
    assert finding.summary.startswith("bad params: type:")
