"""``kube.resources`` through the real runner: pods and their limits from the Kubernetes API stand-in (real
client), use from a real Prometheus 2.42 scraping (every 0.5 s, ``honor_labels``) a local exporter that serves
cAdvisor-style series — CPU counters that advance in real time, working-set memory and CFS throttling. One
stand-in and one Prometheus for the module: Prometheus's first scrape takes ~5.5 s."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.kube import resources
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support import procs
from tests.support.exporter import MetricsExporter, scrape_config, wait_for_scrape
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "shop"
REGISTRY = {p.name: p for p in resources.PROBES}
WINDOW = "2s"  # the rate window: 4 scrapes
MiB = 2**20


def target(name: str) -> incidents.TargetRef:
    return incidents.TargetRef(kind="Deployment", namespace=NS, name=name)


def container(name: str, cpu: str | None = None, memory: str | None = None) -> dict[str, Any]:
    limits = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"name": name, "image": f"example/{name}:1", "resources": {"limits": limits} if limits else {}}


class CadvisorExporter(MetricsExporter):
    """Serves ``/metrics`` in its own thread: gauges, and counters that grow at a set rate per second."""

    thread_name = "cadvisor-exporter"

    def __init__(self) -> None:
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.rates: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.started = time.time()
        self._lock = threading.Lock()
        super().__init__()

    def gauge(self, metric: str, value: float, **labels: str) -> None:
        with self._lock:
            self.gauges[(metric, tuple(sorted(labels.items())))] = value

    def counter(self, metric: str, per_second: float, **labels: str) -> None:
        with self._lock:
            self.rates[(metric, tuple(sorted(labels.items())))] = per_second

    def container(
        self,
        pod: str,
        name: str,
        *,
        cpu: float,
        memory: float,
        periods: float = 10.0,
        throttled: float = 0.0,
    ) -> None:
        """One container's cAdvisor series (cpu in cores, memory in bytes, CFS periods per second)."""
        labels = {"namespace": NS, "pod": pod, "container": name}
        self.counter("container_cpu_usage_seconds_total", cpu, **labels)
        self.gauge("container_memory_working_set_bytes", memory, **labels)
        self.counter("container_cpu_cfs_periods_total", periods, **labels)
        self.counter("container_cpu_cfs_throttled_periods_total", throttled, **labels)

    def render(self) -> list[str]:
        elapsed = time.time() - self.started
        with self._lock:
            series = [*self.gauges.items(), *((k, rate * elapsed) for k, rate in self.rates.items())]
        return [
            metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" + f" {value:.6f}"
            for (metric, labels), value in series
        ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(
            NS, "coordinator", replicas=2, containers=[container("coordinator", "500m", "256Mi")]
        )
        started.add_deployment(NS, "coordinator-db", replicas=1, containers=[container("db", "2", "1Gi")])
        started.add_deployment(
            NS,
            "gateway",
            replicas=1,
            containers=[container("app", "1", "512Mi"), container("proxy", "250m", "128Mi")],
        )
        started.add_deployment(NS, "nolimits", replicas=1, containers=[container("worker")])
        started.add_deployment(NS, "throttled", replicas=1, containers=[container("batch", "1", "1Gi")])
        started.add_deployment(NS, "unmeasured", replicas=1, containers=[container("quiet", "1", "1Gi")])
        started.add_deployment(NS, "idle", replicas=1, containers=[container("idle", "1", "1Gi")])
        yield started


def pods(standin: KubeStandin, deployment: str) -> list[str]:
    return [p["metadata"]["name"] for p in standin.pods_of(NS, deployment)]


@pytest.fixture(scope="module")
def exporter(standin: KubeStandin) -> Iterator[CadvisorExporter]:
    with CadvisorExporter() as started:
        hot, cool = pods(standin, "coordinator")
        started.container(hot, "coordinator", cpu=0.475, memory=128 * MiB)  # CPU at 95 % of 500m
        started.container(cool, "coordinator", cpu=0.1, memory=200 * MiB)  # memory at 78 % of 256Mi
        for pod in (hot, cool):  # cAdvisor's pause container and pod-level cgroup: never counted
            started.container(pod, "POD", cpu=5, memory=900 * MiB)
            started.container(pod, "", cpu=5, memory=900 * MiB)
        [db] = pods(standin, "coordinator-db")
        started.container(
            db, "db", cpu=1.9, memory=1000 * MiB
        )  # a sibling that must not be mistaken for coordinator
        [gateway] = pods(standin, "gateway")
        started.container(gateway, "app", cpu=0.3, memory=400 * MiB)
        started.container(gateway, "proxy", cpu=0.2, memory=100 * MiB)  # 500/640 MiB, 0.5 of 1.25 cores
        [free] = pods(standin, "nolimits")
        started.container(free, "worker", cpu=0.2, memory=100 * MiB)
        [batch] = pods(standin, "throttled")
        started.container(batch, "batch", cpu=0.3, memory=100 * MiB, periods=10, throttled=4)
        [idle] = pods(standin, "idle")
        started.container(idle, "idle", cpu=0.0, memory=64 * MiB, periods=0, throttled=0)  # 0/0 throttling
        yield started


@pytest.fixture(scope="module")
def prometheus(
    exporter: CadvisorExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[procs.Prometheus]:
    config = scrape_config(
        "kubelet-cadvisor",
        exporter,
        {"scrape_interval": "500ms", "scrape_timeout": "500ms", "evaluation_interval": "1s"},
        honor_labels=True,
    )
    with procs.start_prometheus(config, tmpdir=tmp_path_factory.mktemp("prom")) as started:
        # wait until the rate window is covered by scrapes, so rates are the exporter's rates
        wait_for_scrape(
            started,
            f'sum(rate(container_cpu_usage_seconds_total{{container="coordinator"}}[{WINDOW}]))',
            timeout=25,
            until=lambda result: bool(result) and abs(float(result[0]["value"][1]) - 0.575) < 0.002,
            message="Prometheus never covered the window: {result}",
        )
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(
    standin: KubeStandin, prometheus: procs.Prometheus, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Clients]:
    kubeconfig = standin.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", namespace=NS)
    async with kube_clients(kubeconfig, prometheus_url=prometheus.url) as hub:
        yield hub


async def run(clients: Clients, name: str, params: dict[str, Any] | None = None) -> incidents.Finding:
    params = {"window": WINDOW, **(params or {})}
    spec = ProbeSpec.model_validate({"id": "usage", "probe": "kube.resources", "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=target(name),
        clients=clients,
        limits=runner.Limits(probe_timeout_s=3.0),
    )
    return finding


async def test_cpu_near_its_limit_is_degraded(clients: Clients, standin: KubeStandin) -> None:
    hot, cool = pods(standin, "coordinator")
    finding = await run(clients, "coordinator")
    assert finding.status == "degraded", finding.summary
    facts = finding.facts
    assert facts["pods_measured"] == 2
    assert facts["cpu_ratio"] == pytest.approx(0.95, abs=0.01)
    assert facts["cpu_cores"] == pytest.approx(0.475, abs=0.005)
    assert facts["memory_ratio"] == pytest.approx(200 / 256, abs=0.001)
    assert facts["memory_bytes"] == 200 * MiB
    assert (facts["cpu_limit_cores"], facts["memory_limit_bytes"]) == (0.5, 256 * MiB)
    assert facts["throttled_ratio"] == 0.0
    assert set(facts["per_pod"]) == {hot, cool}
    assert facts["per_pod"][hot]["cpu_ratio"] == pytest.approx(0.95, abs=0.01)
    assert facts["per_pod"][cool]["memory"] == 200 * MiB
    # rates measured by a real Prometheus wobble in the third digit: the words are exact, the numbers close
    assert re.fullmatch(
        r"highest of 2 pods: cpu 0\.4[6-8]\d* cores \(9[4-6]% of limit\), memory 200 MiB \(78% of limit\); "
        r"cpu at 9[4-6]% of limit",
        finding.summary,
    ), finding.summary
    assert f"{hot}: " in finding.evidence


async def test_memory_ratio_over_the_containers_of_a_pod(clients: Clients) -> None:
    finding = await run(clients, "gateway", {"warn_ratio": 0.75})
    assert finding.status == "degraded"
    assert finding.facts["memory_ratio"] == pytest.approx(500 / 640, abs=0.001)
    assert finding.facts["cpu_ratio"] == pytest.approx(0.4, abs=0.01)
    assert (finding.facts["cpu_limit_cores"], finding.facts["memory_limit_bytes"]) == (1.25, 640 * MiB)
    assert re.fullmatch(
        r"highest of 1 pods: cpu 0\.(49\d*|5|50\d*) cores \((39|40|41)% of limit\), memory 500 MiB \(78% of limit\); "
        r"memory at 78% of limit",
        finding.summary,
    ), finding.summary
    relaxed = await run(clients, "gateway")  # warn_ratio 0.9
    assert relaxed.status == "ok"


async def test_without_limits_the_ratios_are_null_and_ok(clients: Clients) -> None:
    finding = await run(clients, "nolimits")
    assert finding.status == "ok"
    facts = finding.facts
    assert (facts["cpu_ratio"], facts["memory_ratio"]) == (None, None)
    assert (facts["cpu_limit_cores"], facts["memory_limit_bytes"]) == (None, None)
    assert facts["cpu_cores"] == pytest.approx(0.2, abs=0.005)
    assert re.fullmatch(
        r"highest of 1 pods: cpu 0\.(19\d*|2|20\d*) cores, memory 100 MiB", finding.summary
    ), finding.summary


async def test_cpu_throttling_is_degraded(clients: Clients) -> None:
    finding = await run(clients, "throttled")
    assert finding.status == "degraded"
    assert finding.facts["throttled_ratio"] == pytest.approx(0.4, abs=0.01)
    assert finding.summary.endswith("; CPU throttled 40% of periods")


async def test_an_idle_pod_has_no_throttling_ratio_rather_than_nan(clients: Clients) -> None:
    finding = await run(clients, "idle")
    assert finding.status == "ok"
    assert finding.facts["throttled_ratio"] is None  # 0 throttled of 0 periods: NaN in PromQL
    assert finding.facts["cpu_ratio"] == 0.0
    assert finding.summary == "highest of 1 pods: cpu 0 cores (0% of limit), memory 64 MiB (6% of limit)"
    json.dumps(finding.facts, allow_nan=False)  # the facts stay valid JSON for the store and CEL


async def test_pods_without_samples_are_skipped(clients: Clients) -> None:
    finding = await run(clients, "unmeasured")
    assert finding.status == "skipped"
    assert finding.summary == "no CPU/memory samples in Prometheus for these pods"
    assert finding.facts["pods_measured"] == 0


async def test_without_prometheus_the_probe_is_skipped(clients: Clients, standin: KubeStandin) -> None:
    standin.clear_requests()
    finding = await run(Clients(http=clients.http, kube=clients.kube), "coordinator")
    assert finding.status == "skipped"
    assert finding.summary == "Prometheus is not configured (REMEDIATOR_PROMETHEUS_URL)"
    assert standin.requests == []


async def test_without_kubernetes_the_probe_is_skipped(clients: Clients) -> None:
    finding = await run(Clients(http=clients.http, prometheus=clients.prometheus), "coordinator")
    assert finding.status == "skipped"
    assert finding.summary == "Kubernetes is not configured (REMEDIATOR_KUBECONFIG or in-cluster)"


async def test_a_bad_window_is_refused(clients: Clients) -> None:
    finding = await run(clients, "coordinator", {"window": "5m]) or vector(1"})
    assert finding.status == "error"
    assert finding.summary.startswith("bad params: window: String should match pattern")
