"""``kube.pods`` through the real runner and the real Kubernetes client against the API stand-in: healthy,
crashlooping, OOM-killed, image-pull and pending pods; where the pod selector comes from; a hostile
selector, no Kubernetes, an invalid target, an API error and a slow API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.clients.http import HttpClient
from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.kube import pods
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin

NS = "shop"
TARGET = incidents.TargetRef(kind="Deployment", namespace=NS, name="coordinator")
REGISTRY = {p.name: p for p in pods.PROBES}
LIST_PODS = f"/api/v1/namespaces/{NS}/pods"


@pytest.fixture
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(NS, "coordinator", replicas=3)
        started.add_deployment(NS, "coordinator-db", replicas=1)
        yield started


@pytest.fixture
async def clients(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[Clients]:
    async with kube_clients(standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)) as hub:
        yield hub


async def run(
    clients: Clients,
    params: dict[str, Any] | None = None,
    *,
    target: incidents.TargetRef = TARGET,
    timeout: float = 3.0,
) -> incidents.Finding:
    params = params or {}
    spec = ProbeSpec.model_validate({"id": "pods", "probe": "kube.pods", "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=target,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=timeout),
    )
    return finding


def pod_lists(standin: KubeStandin) -> list[str]:
    """The label selectors of the pod lists the stand-in served."""
    return [r.query.get("labelSelector", "") for r in standin.requests if r.path == LIST_PODS]


async def test_three_healthy_pods_are_ok(clients: Clients, standin: KubeStandin) -> None:
    finding = await run(clients)
    assert finding.status == "ok"
    assert finding.summary == "3/3 ready"
    facts = finding.facts
    assert {k: facts[k] for k in ("desired", "total", "ready", "running", "pending", "restarts")} == {
        "desired": 3,
        "total": 3,
        "ready": 3,
        "running": 3,
        "pending": 0,
        "restarts": 0,
    }
    assert (facts["crashlooping"], facts["oomkilled"], facts["imagepull"]) == (0, 0, 0)
    assert facts["phases"] == {"Running": 3}
    names = sorted(p["metadata"]["name"] for p in standin.pods_of(NS, "coordinator"))
    assert sorted(p["name"] for p in facts["pods"]) == names  # coordinator-db's pod is not one of them
    assert all(p["reason"] == "" and p["ready"] for p in facts["pods"])
    assert finding.evidence.count("ready=true") == 3
    assert standin.writes() == []


async def test_a_crashlooping_deployment_is_failed_with_restarts_and_reasons(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.set_deployment_pods_state(NS, "coordinator", "crashloop")
    standin.set_deployment_pods_state(NS, "coordinator", "crashloop")  # restartCount 2 on each pod
    finding = await run(clients)
    assert finding.status == "failed"
    assert finding.summary == "0/3 ready, 3 crashlooping, 6 restarts"
    assert finding.facts["crashlooping"] == 3
    assert finding.facts["restarts"] == 6
    assert finding.facts["oomkilled"] == 0
    assert [
        (p["phase"], p["ready"], p["restarts"], p["reason"], p["last_terminated"])
        for p in finding.facts["pods"]
    ] == [("Running", False, 2, "CrashLoopBackOff", "Error")] * 3
    assert finding.evidence.count("CrashLoopBackOff (last: Error)") == 3


async def test_one_crashlooping_pod_of_three_is_degraded(clients: Clients, standin: KubeStandin) -> None:
    victim = standin.pods_of(NS, "coordinator")[1]["metadata"]["name"]
    standin.set_pod_state(NS, victim, "crashloop", restarts=7)
    finding = await run(clients)
    assert finding.status == "degraded"
    assert finding.summary == "2/3 ready, 1 crashlooping, 7 restarts"
    [row] = [p for p in finding.facts["pods"] if p["reason"]]
    assert (row["name"], row["restarts"], row["reason"]) == (victim, 7, "CrashLoopBackOff")


async def test_oom_killed_pods(clients: Clients, standin: KubeStandin) -> None:
    standin.set_deployment_pods_state(NS, "coordinator", "oomkilled")
    finding = await run(clients)
    assert finding.status == "failed"
    assert finding.summary == "0/3 ready, 3 crashlooping, 3 oomkilled, 3 restarts"
    assert (finding.facts["oomkilled"], finding.facts["crashlooping"]) == (3, 3)
    assert {p["last_terminated"] for p in finding.facts["pods"]} == {"OOMKilled"}
    assert finding.evidence.count("CrashLoopBackOff (last: OOMKilled)") == 3


async def test_pods_that_cannot_pull_their_image(clients: Clients, standin: KubeStandin) -> None:
    standin.set_deployment_pods_state(NS, "coordinator", "imagepull")
    finding = await run(clients)
    assert finding.status == "failed"
    assert finding.summary == "0/3 ready, 3 imagepull"
    assert finding.facts["imagepull"] == 3
    assert {p["reason"] for p in finding.facts["pods"]} == {"ImagePullBackOff"}


async def test_pending_pods_say_why(clients: Clients, standin: KubeStandin) -> None:
    pending = standin.pods_of(NS, "coordinator")[0]["metadata"]["name"]
    standin.set_pod_state(NS, pending, "pending")
    finding = await run(clients)
    assert finding.status == "degraded"
    assert finding.summary == "2/3 ready, 1 pending"
    assert finding.facts["pending"] == 1
    assert finding.facts["phases"] == {"Running": 2, "Pending": 1}
    [row] = [p for p in finding.facts["pods"] if p["name"] == pending]
    assert (row["phase"], row["reason"]) == ("Pending", "Unschedulable")


async def test_the_selector_comes_from_the_deployment_match_labels(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.add_deployment(NS, "gateway", replicas=2, labels={"app": "gw", "tier": "edge"})
    finding = await run(clients, target=TARGET.model_copy(update={"name": "gateway"}))
    assert finding.status == "ok"
    assert finding.summary == "2/2 ready"
    assert pod_lists(standin) == ["app=gw,tier=edge"]


async def test_the_rules_target_selector_wins(clients: Clients, standin: KubeStandin) -> None:
    standin.add_deployment(NS, "gateway", replicas=2, labels={"app": "gw", "tier": "edge"})
    target = TARGET.model_copy(update={"name": "gateway", "selector": "tier=edge"})
    finding = await run(clients, target=target)
    assert finding.summary == "2/2 ready"
    assert pod_lists(standin) == ["tier=edge"]


async def test_a_selector_param_is_used_as_is(clients: Clients, standin: KubeStandin) -> None:
    finding = await run(clients, {"selector": "app.kubernetes.io/name=coordinator-db"})
    assert finding.status == "ok"
    assert finding.summary == "1/1 ready"
    assert pod_lists(standin) == ["app.kubernetes.io/name=coordinator-db"]


async def test_no_selector_for_a_non_deployment_target_is_an_error(
    clients: Clients, standin: KubeStandin
) -> None:
    target = incidents.TargetRef(kind="StatefulSet", namespace=NS, name="postgresql")
    finding = await run(clients, target=target)
    assert finding.status == "error"
    assert (
        finding.summary == "no pod selector for StatefulSet/shop/postgresql: set target.selector in the rule"
    )
    assert standin.requests == []


@pytest.mark.parametrize("selector", ["app=x; rm -rf /", "app=$(reboot)", "app in (a,b)", ""])
async def test_a_hostile_selector_is_refused_before_any_request(
    clients: Clients, standin: KubeStandin, selector: str
) -> None:
    finding = await run(clients, {"selector": selector})
    assert finding.status == "error"
    assert finding.summary.startswith("bad params: selector: Value error, ")
    assert standin.requests == []


async def test_without_kubernetes_the_probe_is_skipped(standin: KubeStandin) -> None:
    async with aiohttp.ClientSession() as session:
        finding = await run(Clients(http=HttpClient(session), kube=None))
    assert finding.status == "skipped"
    assert finding.summary == "Kubernetes is not configured (REMEDIATOR_KUBECONFIG or in-cluster)"
    assert standin.requests == []


async def test_an_invalid_target_is_skipped_without_any_request(
    clients: Clients, standin: KubeStandin
) -> None:
    target = incidents.TargetRef(
        kind="Deployment", namespace=NS, name="Bad_Name", valid=False, error="'Bad_Name' is not a valid name"
    )
    finding = await run(clients, target=target)
    assert finding.status == "skipped"
    assert finding.summary == "target is invalid ('Bad_Name' is not a valid name); not probed"
    assert standin.requests == []


async def test_an_api_error_is_an_error_finding_with_the_reason(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.fail_next("GET", r"/pods$", 500)
    finding = await run(clients)
    assert finding.status == "error"
    assert finding.summary == (
        "Kubernetes API 500 (list pods shop -l app.kubernetes.io/name=coordinator): "
        "Internal error occurred: injected fault"
    )


async def test_a_missing_deployment_is_an_error_naming_it(clients: Clients) -> None:
    finding = await run(clients, target=TARGET.model_copy(update={"name": "ghost"}))
    assert finding.status == "error"
    assert (
        finding.summary
        == 'Kubernetes API 404 (get deployment shop/ghost): deployments.apps "ghost" not found'
    )


async def test_a_slow_api_is_cut_off_at_the_probe_timeout(clients: Clients, standin: KubeStandin) -> None:
    standin.delay(r"/pods$", 1.0, times=1)
    finding = await run(clients, timeout=0.3)
    assert finding.status == "error"
    assert finding.summary == "timeout after 0.3s"
    assert finding.facts == {"timeout": True}
    assert finding.duration_ms < 900
