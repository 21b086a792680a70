"""``prometheus.query`` through the real runner against a real Prometheus that scrapes (every second) a
local exporter whose metrics the tests change: thresholds over scraped series, no data, a bad query and a
Prometheus that is down. One Prometheus for the module: its first scrape takes ~6 s."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from service.clients import http
from service.clients import prometheus as prom
from service.clients.hub import Clients
from service.diagnosis import prometheus as prom_probes
from service.diagnosis import runner
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.conftest import eventually
from tests.support import procs
from tests.support.exporter import MetricsExporter, scrape_config, wait_for_scrape

TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="x")
REGISTRY = {p.name: p for p in prom_probes.PROBES}


class Exporter(MetricsExporter):
    """Serves ``/metrics`` (Prometheus text format) from a dict the tests change, in its own thread."""

    def __init__(self) -> None:
        self.gauges: dict[tuple[str, str, str], float] = {}  # (metric, label, label value) -> value
        self._lock = threading.Lock()
        super().__init__()

    def set(self, metric: str, label: str, value_of_label: str, value: float) -> None:
        with self._lock:
            self.gauges[(metric, label, value_of_label)] = value

    def render(self) -> list[str]:
        with self._lock:
            return [
                f'{metric}{{{label}="{lv}"}} {value}' for (metric, label, lv), value in self.gauges.items()
            ]


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    with Exporter() as started:
        started.set("app_queue_depth", "queue", "orders", 3)
        started.set("app_queue_depth", "queue", "emails", 12)
        started.set("app_peers", "node", "n1", 4)
        yield started


@pytest.fixture(scope="module")
def server(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Prometheus]:
    config = scrape_config("exporter", exporter, {"scrape_interval": "1s", "evaluation_interval": "1s"})
    with procs.start_prometheus(config, tmpdir=tmp_path_factory.mktemp("prom")) as started:
        wait_for_scrape(started, 'app_queue_depth{queue="emails"}')
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def clients(server: procs.Prometheus, session: aiohttp.ClientSession) -> Clients:
    return Clients(http=http.HttpClient(session), prometheus=prom.PrometheusClient(session, server.url))


async def run(clients: Clients, params: dict[str, Any], *, timeout: float = 3.0) -> incidents.Finding:
    spec = ProbeSpec.model_validate({"id": "prom", "probe": "prometheus.query", "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=TARGET,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=timeout),
    )
    return finding


async def test_a_scraped_vector_within_thresholds_is_ok(clients: Clients) -> None:
    finding = await run(clients, {"query": "app_queue_depth", "label": "queue", "warn_above": 50})
    assert finding.status == "ok"
    assert finding.summary == "2 samples, 3 to 12"
    assert finding.facts["values"] == {"orders": 3.0, "emails": 12.0}
    assert (finding.facts["samples"], finding.facts["max"], finding.facts["min"]) == (2, 12.0, 3.0)
    assert finding.facts["empty"] is False
    assert 'app_queue_depth{instance="' in finding.evidence


async def test_a_sample_over_warn_is_degraded_and_over_fail_is_failed(
    clients: Clients, exporter: Exporter
) -> None:
    params = {"query": "app_queue_depth", "label": "queue", "warn_above": 10, "fail_above": 100}
    warned = await run(clients, params)
    assert warned.status == "degraded"
    assert warned.summary == "2 samples; emails = 12 > 10"

    exporter.set("app_queue_depth", "queue", "emails", 150)
    try:

        async def scraped() -> incidents.Finding | None:
            found = await run(clients, params)
            return found if found.status == "failed" else None

        failed = await eventually(scraped, timeout=10, interval=0.25)
    finally:
        exporter.set("app_queue_depth", "queue", "emails", 12)
    assert failed.summary == "2 samples; emails = 150 > 100"
    assert failed.facts["max"] == 150.0
    assert failed.facts["values"]["emails"] == 150.0


async def test_below_thresholds_and_a_scalar(clients: Clients) -> None:
    finding = await run(clients, {"query": "scalar(sum(app_peers))", "warn_below": 5, "fail_below": 2})
    assert finding.status == "degraded"
    assert finding.summary == "1 sample; scalar = 4 < 5"
    assert (finding.facts["value"], finding.facts["values"]) == (4.0, {"0": 4.0})


async def test_no_data_is_ok_unless_data_is_expected(clients: Clients) -> None:
    finding = await run(clients, {"query": "app_missing_metric"})
    assert finding.status == "ok"
    assert finding.summary == "no data for app_missing_metric"
    assert finding.facts == {
        "samples": 0,
        "empty": True,
        "value": None,
        "max": None,
        "min": None,
        "values": {},
    }
    expected = await run(clients, {"query": "app_missing_metric", "expect_data": True})
    assert expected.status == "degraded"


async def test_a_bad_query_is_an_error_naming_the_problem(clients: Clients) -> None:
    finding = await run(clients, {"query": "sum(rate(app_queue_depth[5m]"})
    assert finding.status == "error"
    assert finding.summary.startswith("Prometheus rejected the query: bad_data: ")
    assert "unclosed left parenthesis" in finding.summary


async def test_a_range_query_is_an_error(clients: Clients) -> None:
    finding = await run(clients, {"query": "app_queue_depth[1m]"})
    assert finding.status == "error"
    assert finding.summary == "query returned a matrix result; only instant vectors and scalars are supported"


async def test_prometheus_down_is_an_error(session: aiohttp.ClientSession) -> None:
    down = prom.PrometheusClient(session, f"http://{procs.HOST}:{procs.free_port()}")
    finding = await run(Clients(http=http.HttpClient(session), prometheus=down), {"query": "up"})
    assert finding.status == "error"
    assert finding.summary == "Prometheus unreachable: Connection refused"


async def test_without_prometheus_the_probe_is_skipped(session: aiohttp.ClientSession) -> None:
    finding = await run(Clients(http=http.HttpClient(session)), {"query": "up"})
    assert finding.status == "skipped"
    assert finding.summary == "Prometheus not configured (REMEDIATOR_PROMETHEUS_URL)"


async def test_thresholds_in_the_wrong_order_are_bad_params(session: aiohttp.ClientSession) -> None:
    finding = await run(
        Clients(http=http.HttpClient(session)), {"query": "up", "warn_above": 10, "fail_above": 5}
    )
    assert finding.status == "error"
    assert "fail_above must not be lower than warn_above" in finding.summary
