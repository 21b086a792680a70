"""The runner: eight probes against hanging and unreachable hosts finish within the deadline, every one
reported, and the event loop is never blocked while they wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from service.clients import http
from service.clients.hub import Clients
from service.clients.postgres import PostgresConnector
from service.clients.prometheus import PrometheusClient
from service.clients.redis import RedisConnector
from service.diagnosis import registry, runner
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support import procs

TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="x")


@pytest.fixture
async def blackhole() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers: the hanging host."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, procs.HOST, 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


class LagWatchdog:
    """Measures how late a 10 ms timer fires: the event loop's longest stall."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, loop.time() - before - 0.01)

    async def __aenter__(self) -> LagWatchdog:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def planned(probe_id: str, probe: str, params: dict[str, Any]) -> runner.PlannedProbe:
    return runner.PlannedProbe(ProbeSpec.model_validate({"id": probe_id, "probe": probe}), params)


async def test_eight_hanging_or_unreachable_probes_finish_within_the_deadline(blackhole: int) -> None:
    closed = procs.free_port()  # nothing listens there: connection refused
    hang = f"http://{procs.HOST}:{blackhole}"
    async with aiohttp.ClientSession() as session:
        clients = Clients(
            http=http.HttpClient(session),
            prometheus=PrometheusClient(session, hang),
            postgres=PostgresConnector(f"postgresql://monitor@{procs.HOST}:{blackhole}/postgres", "pw"),
            redis=RedisConnector(f"redis://{procs.HOST}:{blackhole}/0", None),
        )
        probes = [
            planned("web", "http.get", {"url": f"{hang}/v1/health"}),
            planned("peers", "http.json", {"url": f"{hang}/v1/peers", "facts": {"peers": "length(@)"}}),
            planned("refused", "tcp.connect", {"host": procs.HOST, "port": closed}),
            planned("web_refused", "http.get", {"url": f"http://{procs.HOST}:{closed}/"}),
            planned("dns", "dns.resolve", {"name": "does-not-exist.invalid"}),
            planned("pg", "postgres.ping", {}),
            planned("redis", "redis.ping", {}),
            planned("prom", "prometheus.query", {"query": "up"}),
        ]
        limits = runner.Limits(probe_timeout_s=1.0, deadline_s=2.0)
        started = time.monotonic()
        async with LagWatchdog() as watchdog:
            found = await runner.run_all(
                probes, registry=registry.probes(), target=TARGET, clients=clients, limits=limits
            )
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"diagnosis took {elapsed:.2f}s against a 2 s deadline"
    assert [f.id for f in found] == [p.spec.id for p in probes], "every probe is reported, in rule order"
    by_id = {f.id: f for f in found}
    assert all(f.status in ("failed", "error") for f in found), {f.id: (f.status, f.summary) for f in found}
    assert by_id["refused"].status == "failed" and by_id["refused"].facts["reachable"] is False
    assert "no response within" in by_id["web"].summary and by_id["web"].facts["timeout"] is True
    assert all(f.duration_ms <= 2100 for f in found)
    assert watchdog.worst < 0.1, f"the event loop stalled for {watchdog.worst * 1000:.0f} ms"


async def test_a_probe_past_the_deadline_is_cut_off_while_the_others_report(blackhole: int) -> None:
    async with aiohttp.ClientSession() as session:
        clients = Clients(http=http.HttpClient(session))
        probes = [
            planned("slow", "http.get", {"url": f"http://{procs.HOST}:{blackhole}/", "timeout_s": 30}),
            runner.PlannedProbe(
                ProbeSpec.model_validate({"id": "hang", "probe": "http.get", "timeout": "30s"}),
                {"url": f"http://{procs.HOST}:{blackhole}/slow"},
            ),
            planned("quick", "dns.resolve", {"name": "localhost"}),
        ]
        started = time.monotonic()
        found = await runner.run_all(
            probes,
            registry=registry.probes(),
            target=TARGET,
            clients=clients,
            limits=runner.Limits(probe_timeout_s=30, deadline_s=0.5),
        )
    assert time.monotonic() - started < 1.5
    by_id = {f.id: f for f in found}
    assert by_id["quick"].status == "ok"
    for cut in (by_id["slow"], by_id["hang"]):
        assert cut.status in ("failed", "error")
        assert "within" in cut.summary or "timeout" in cut.summary
        assert cut.duration_ms < 1000


async def test_bad_params_unknown_probes_and_render_errors_are_findings_not_crashes() -> None:
    async with aiohttp.ClientSession() as session:
        clients = Clients(http=http.HttpClient(session))
        probes = [
            planned("bad", "tcp.connect", {"host": "x", "port": "not-a-port"}),
            planned("typo", "tcp.connect", {"host": "x", "port": 1, "colour": "red"}),
            runner.PlannedProbe(
                ProbeSpec.model_validate({"id": "tmpl", "probe": "http.get"}),
                {},
                render_error="with.url: could not render: 'dict object' has no attribute 'x'",
            ),
            planned("kube", "kube.pods", {}),
        ]
        found = await runner.run_all(
            probes, registry=registry.probes(), target=TARGET, clients=clients, limits=runner.Limits()
        )
    by_id = {f.id: f for f in found}
    assert by_id["bad"].status == "error" and "bad params: port" in by_id["bad"].summary
    assert by_id["typo"].status == "error" and "colour" in by_id["typo"].summary
    assert by_id["tmpl"].status == "error" and "could not render" in by_id["tmpl"].summary
    assert by_id["kube"].status == "skipped" and "not configured" in by_id["kube"].summary
