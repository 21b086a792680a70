"""``kube.networkpolicies`` and ``kube.pvc`` through the real runner and the real Kubernetes client against
the API stand-in; volume use from a real Prometheus 2.42 scraping (``honor_labels``) a local exporter that
serves ``kubelet_volume_stats_*``. One Prometheus and one stand-in for the PVC tests (first scrape ~5.5 s);
the network-policy tests each get a fresh stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.kube import network, storage
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support import procs
from tests.support.exporter import MetricsExporter, scrape_config, wait_for_scrape
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "shop"
REGISTRY = {p.name: p for p in (*network.PROBES, *storage.PROBES)}
GiB = 2**30


def target(name: str, **extra: Any) -> incidents.TargetRef:
    return incidents.TargetRef(kind="Deployment", namespace=NS, name=name, **extra)


async def run(
    clients: Clients, probe: str, name: str, params: dict[str, Any] | None = None, **target_extra: Any
) -> incidents.Finding:
    params = params or {}
    spec = ProbeSpec.model_validate({"id": probe.split(".")[1], "probe": probe, "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=target(name, **target_extra),
        clients=clients,
        limits=runner.Limits(probe_timeout_s=3.0),
    )
    return finding


# ------------------------------------------------------------------------------------------- kube.networkpolicies

DENY_ALL_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"]}


@pytest_asyncio.fixture(loop_scope="module")
async def netpol(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Clients]]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(NS, "coordinator", replicas=2, labels={"app": "coordinator", "tier": "api"})
        async with kube_clients(started.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)) as hub:
            yield started, hub


async def test_no_policies_is_ok(netpol: tuple[KubeStandin, Clients]) -> None:
    _, clients = netpol
    finding = await run(clients, "kube.networkpolicies", "coordinator")
    assert finding.status == "ok"
    assert finding.summary == "0 policies"
    assert finding.facts == {
        "count": 0,
        "policies": [],
        "deny_all_ingress": False,
        "deny_all_egress": False,
        "selecting_target": [],
        "ingress_allowed": True,
    }


async def test_a_default_deny_all_ingress_alone_partitions_the_target(
    netpol: tuple[KubeStandin, Clients],
) -> None:
    standin, clients = netpol
    standin.add_network_policy(NS, "default-deny-all-ingress", DENY_ALL_INGRESS)
    finding = await run(clients, "kube.networkpolicies", "coordinator")
    assert finding.status == "degraded"
    assert (
        finding.summary
        == "deny-all ingress (default-deny-all-ingress) and no policy lets traffic reach the target"
    )
    assert finding.facts["deny_all_ingress"] is True
    assert finding.facts["deny_all_egress"] is False
    assert finding.facts["ingress_allowed"] is False
    assert finding.facts["selecting_target"] == []


async def test_a_policy_letting_traffic_in_to_the_target_makes_it_ok(
    netpol: tuple[KubeStandin, Clients],
) -> None:
    standin, clients = netpol
    standin.add_network_policy(NS, "default-deny-all-ingress", DENY_ALL_INGRESS)
    standin.add_network_policy(
        NS,
        "coordinator-from-gateway",
        {
            "podSelector": {"matchLabels": {"app": "coordinator"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "gateway"}}}], "ports": [{"port": 8080}]}
            ],
        },
    )
    standin.add_network_policy(  # selects other pods: not the target's
        NS,
        "db-from-coordinator",
        {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"podSelector": {}}]}]},
    )
    finding = await run(clients, "kube.networkpolicies", "coordinator")
    assert finding.status == "ok"
    assert finding.summary == "3 policies; 1 select the target"
    assert finding.facts["selecting_target"] == ["coordinator-from-gateway"]
    assert finding.facts["deny_all_ingress"] is True
    assert finding.facts["ingress_allowed"] is True
    assert sorted(finding.facts["policies"]) == [
        "coordinator-from-gateway",
        "db-from-coordinator",
        "default-deny-all-ingress",
    ]


async def test_a_selecting_policy_without_ingress_rules_does_not_help(
    netpol: tuple[KubeStandin, Clients],
) -> None:
    standin, clients = netpol
    standin.add_network_policy(NS, "default-deny-all-ingress", DENY_ALL_INGRESS)
    standin.add_network_policy(
        NS,
        "coordinator-egress-only",
        {
            "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}]},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {}}]}],
        },
    )
    finding = await run(clients, "kube.networkpolicies", "coordinator")
    assert finding.status == "degraded"
    assert finding.facts["selecting_target"] == ["coordinator-egress-only"]
    assert finding.facts["ingress_allowed"] is False


async def test_an_allow_within_the_namespace_policy_lets_traffic_in(
    netpol: tuple[KubeStandin, Clients],
) -> None:
    standin, clients = netpol
    standin.add_network_policy(NS, "default-deny-all-ingress", DENY_ALL_INGRESS)
    standin.add_network_policy(
        NS, "allow-same-namespace", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}
    )
    finding = await run(clients, "kube.networkpolicies", "coordinator")
    assert finding.status == "ok"
    assert finding.facts["ingress_allowed"] is True
    assert finding.facts["deny_all_ingress"] is True


async def test_deny_all_egress(netpol: tuple[KubeStandin, Clients]) -> None:
    standin, clients = netpol
    standin.add_network_policy(
        NS, "default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    )
    finding = await run(clients, "kube.networkpolicies", "coordinator")
    assert finding.status == "degraded"
    assert (finding.facts["deny_all_ingress"], finding.facts["deny_all_egress"]) == (True, True)


async def test_a_non_deployment_target_uses_its_selector_labels(netpol: tuple[KubeStandin, Clients]) -> None:
    standin, clients = netpol
    standin.add_network_policy(
        NS, "postgresql-ingress", {"podSelector": {"matchLabels": {"app": "postgresql"}}, "ingress": [{}]}
    )
    spec = ProbeSpec.model_validate({"id": "netpol", "probe": "kube.networkpolicies"})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params={})],
        registry=REGISTRY,
        target=incidents.TargetRef(
            kind="StatefulSet", namespace=NS, name="postgresql", selector="app=postgresql"
        ),
        clients=clients,
        limits=runner.Limits(),
    )
    assert finding.facts["selecting_target"] == ["postgresql-ingress"]


# ------------------------------------------------------------------------------------------- kube.pvc


def mount_claims(standin: KubeStandin, deployment: str, *claims: str) -> None:
    """Give the Deployment's pod template PVC volumes (a rollout replaces its pods)."""
    obj = standin.get("Deployment", NS, deployment)
    assert obj is not None
    pod_spec = obj["spec"]["template"]["spec"]
    pod_spec["volumes"] = [
        {"name": f"vol-{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    pod_spec["containers"][0]["volumeMounts"] = [
        {"name": f"vol-{i}", "mountPath": f"/data/{i}"} for i in range(len(claims))
    ]
    obj["metadata"]["generation"] += 1
    standin.put(obj)


class VolumeExporter(MetricsExporter):
    """Serves ``kubelet_volume_stats_{used,capacity}_bytes`` per claim from its own thread."""

    thread_name = "volume-exporter"

    def __init__(self, stats: dict[str, tuple[float, float]]) -> None:
        self.stats = stats  # claim -> (used, capacity)
        super().__init__()

    def render(self) -> list[str]:
        lines = []
        for claim, (used, capacity) in self.stats.items():
            labels = f'namespace="{NS}",persistentvolumeclaim="{claim}"'
            lines.append(f"kubelet_volume_stats_used_bytes{{{labels}}} {used:.0f}")
            lines.append(f"kubelet_volume_stats_capacity_bytes{{{labels}}} {capacity:.0f}")
        return lines


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Prometheus]:
    stats = {
        "postgresql-data": (9 * GiB, 10 * GiB),  # 90 %
        "postgresql-wal": (1 * GiB, 10 * GiB),
        "archive-data": (97 * GiB, 100 * GiB),  # 97 %
        "other-data": (99 * GiB, 100 * GiB),  # nobody's of ours: must not show
    }
    with VolumeExporter(stats) as exporter:
        config = scrape_config(
            "kubelet", exporter, {"scrape_interval": "500ms", "scrape_timeout": "500ms"}, honor_labels=True
        )
        with procs.start_prometheus(config, tmpdir=tmp_path_factory.mktemp("prom")) as started:
            wait_for_scrape(started, "kubelet_volume_stats_used_bytes", interval=0.1)
            yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def volumes() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.01) as started:
        started.add_storage_class("fast", allow_expansion=True)
        started.add_storage_class("slow", allow_expansion=False)
        started.add_pvc(NS, "postgresql-data", storage="10Gi", storage_class="fast")
        started.add_pvc(NS, "postgresql-wal", storage="10Gi", storage_class="fast")
        started.add_pvc(NS, "archive-data", storage="100Gi", storage_class="slow")
        started.add_pvc(NS, "other-data", storage="100Gi", storage_class="slow")
        started.add_pvc(NS, "queue-data", storage="5Gi", storage_class="fast", phase="Pending")
        started.add_pvc(NS, "legacy-data", storage="20Gi", storage_class="retired")  # no such StorageClass
        for name, claims in {
            "postgresql": ("postgresql-data", "postgresql-wal"),
            "archive": ("archive-data",),
            "queue": ("queue-data",),
            "legacy": ("legacy-data",),
            "stateless": (),
        }.items():
            started.add_deployment(NS, name, replicas=2)
            if claims:
                mount_claims(started, name, *claims)
        await started.settle()
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pvc_clients(
    volumes: KubeStandin, prometheus: procs.Prometheus, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Clients]:
    kubeconfig = volumes.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
    async with kube_clients(kubeconfig, prometheus_url=prometheus.url) as hub:
        yield hub


def claims_by_name(finding: incidents.Finding) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in finding.facts["claims"]}


async def test_the_targets_claims_at_90_percent_are_degraded(
    pvc_clients: Clients, volumes: KubeStandin
) -> None:
    assert all("volumes" in p["spec"] for p in volumes.pods_of(NS, "postgresql") if p["status"].get("phase"))
    finding = await run(pvc_clients, "kube.pvc", "postgresql")
    assert finding.status == "degraded"
    assert finding.summary == "2 claims, fullest postgresql-data at 90%; storage class allows expansion"
    assert finding.facts["usage_ratio"] == 0.9
    assert finding.facts["expandable"] is True
    assert finding.facts["unbound"] == 0
    assert claims_by_name(finding) == {
        "postgresql-data": {
            "name": "postgresql-data",
            "phase": "Bound",
            "capacity_bytes": 10 * GiB,
            "used_bytes": 9 * GiB,
            "usage_ratio": 0.9,
            "storage_class": "fast",
            "expandable": True,
        },
        "postgresql-wal": {
            "name": "postgresql-wal",
            "phase": "Bound",
            "capacity_bytes": 10 * GiB,
            "used_bytes": 1 * GiB,
            "usage_ratio": 0.1,
            "storage_class": "fast",
            "expandable": True,
        },
    }


async def test_97_percent_is_failed_and_a_class_without_expansion_says_so(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "archive")
    assert finding.status == "failed"
    assert finding.summary == "1 claims, fullest archive-data at 97%; not expandable"
    assert finding.facts["usage_ratio"] == 0.97
    assert finding.facts["expandable"] is False


async def test_thresholds_are_params(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "postgresql", {"warn_ratio": 0.95, "fail_ratio": 0.99})
    assert finding.status == "ok"
    stricter = await run(pvc_clients, "kube.pvc", "postgresql", {"fail_ratio": 0.9})
    assert stricter.status == "failed"


async def test_one_claim_by_name(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "stateless", {"claim": "postgresql-wal"})
    assert finding.status == "ok"
    assert [c["name"] for c in finding.facts["claims"]] == ["postgresql-wal"]
    assert finding.facts["usage_ratio"] == 0.1


async def test_an_unknown_claim_is_skipped_saying_which(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "stateless", {"claim": "nope-data"})
    assert finding.status == "skipped"
    assert finding.summary == "no PersistentVolumeClaim nope-data in shop"


async def test_an_unbound_claim_is_failed(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "queue")
    assert finding.status == "failed"
    assert finding.facts["unbound"] == 1
    assert claims_by_name(finding)["queue-data"]["phase"] == "Pending"
    assert finding.summary == "1 claims, 1 not bound; storage class allows expansion"


async def test_a_storage_class_that_does_not_exist_is_not_expandable(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "legacy")
    assert finding.status == "ok"
    assert finding.facts["expandable"] is False
    assert claims_by_name(finding)["legacy-data"]["capacity_bytes"] == 20 * GiB  # from the claim's status
    assert claims_by_name(finding)["legacy-data"]["usage_ratio"] is None  # no stats for it


async def test_a_target_without_claims_is_skipped(pvc_clients: Clients) -> None:
    finding = await run(pvc_clients, "kube.pvc", "stateless")
    assert finding.status == "skipped"
    assert finding.summary == "no PersistentVolumeClaims for this target"


async def test_without_prometheus_capacity_comes_from_the_claim(pvc_clients: Clients) -> None:
    finding = await run(Clients(http=pvc_clients.http, kube=pvc_clients.kube), "kube.pvc", "postgresql")
    assert finding.status == "ok"
    assert finding.facts["usage_ratio"] is None
    assert claims_by_name(finding)["postgresql-data"]["capacity_bytes"] == 10 * GiB
    assert finding.summary == "2 claims; storage class allows expansion"


async def test_a_bad_claim_name_is_refused_before_any_request(
    pvc_clients: Clients, volumes: KubeStandin
) -> None:
    volumes.clear_requests()
    finding = await run(pvc_clients, "kube.pvc", "postgresql", {"claim": 'x"} or vector(1) #'})
    assert finding.status == "error"
    assert finding.summary.startswith("bad params: claim: Value error, ")
    assert volumes.requests == []
