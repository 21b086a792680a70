"""``kube.deployment`` through the real runner and the real Kubernetes client against the API stand-in:
a healthy Deployment, a paused one, a rollout in progress and done, a crashloop that is not a rollout, an HPA
that owns the scale, a Deployment that does not exist and a target that is not a Deployment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.kube import workload
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin

NS = "shop"
TARGET = incidents.TargetRef(kind="Deployment", namespace=NS, name="coordinator")
REGISTRY = {p.name: p for p in workload.PROBES}
ROLLOUT_DELAY = 0.3


@pytest.fixture
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=ROLLOUT_DELAY) as started:
        started.add_deployment(NS, "coordinator", replicas=3)
        yield started


@pytest.fixture
async def clients(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[Clients]:
    async with kube_clients(standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)) as hub:
        yield hub


async def run(clients: Clients, *, target: incidents.TargetRef = TARGET) -> incidents.Finding:
    spec = ProbeSpec.model_validate({"id": "deploy", "probe": "kube.deployment"})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params={})],
        registry=REGISTRY,
        target=target,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=3.0),
    )
    return finding


async def test_a_healthy_deployment_is_ok(clients: Clients, standin: KubeStandin) -> None:
    finding = await run(clients)
    assert finding.status == "ok"
    assert finding.summary == "3/3 available, 3 updated"
    assert finding.facts == {
        "replicas": 3,
        "updated": 3,
        "ready": 3,
        "available": 3,
        "unavailable": 0,
        "paused": False,
        "generation": 1,
        "observed_generation": 1,
        "rollout_in_progress": False,
        "progress_deadline_exceeded": False,
        "hpa": False,
        "hpa_name": None,
        "revision": "1",
    }
    assert "Available=True MinimumReplicasAvailable" in finding.evidence
    assert "Progressing=True NewReplicaSetAvailable" in finding.evidence
    assert standin.writes() == []


async def test_a_paused_deployment(clients: Clients, standin: KubeStandin) -> None:
    standin.add_deployment(NS, "batch", replicas=2, paused=True)
    finding = await run(clients, target=TARGET.model_copy(update={"name": "batch"}))
    assert finding.status == "ok"
    assert finding.facts["paused"] is True
    assert finding.summary == "2/2 available, 2 updated; paused"
    assert "Progressing=Unknown DeploymentPaused" in finding.evidence


async def test_a_rollout_in_progress_then_done(clients: Clients, standin: KubeStandin) -> None:
    deployment = standin.get("Deployment", NS, "coordinator")
    assert deployment is not None
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
    deployment["metadata"]["generation"] = 2
    standin.put(deployment)  # the controller acts after ROLLOUT_DELAY

    finding = await run(clients)
    assert finding.facts["rollout_in_progress"] is True
    assert (finding.facts["generation"], finding.facts["observed_generation"]) == (2, 1)
    assert finding.summary == "3/3 available, 3 updated; rollout in progress"
    assert finding.status == "ok"  # the old pods still serve

    await standin.settle()
    done = await run(clients)
    assert done.facts["rollout_in_progress"] is False
    assert (done.facts["generation"], done.facts["observed_generation"], done.facts["revision"]) == (
        2,
        2,
        "2",
    )
    assert done.status == "ok"
    assert done.summary == "3/3 available, 3 updated"


async def test_a_crashloop_with_every_pod_updated_is_not_a_rollout(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.set_deployment_pods_state(NS, "coordinator", "crashloop")
    finding = await run(clients)
    assert finding.status == "failed"
    assert finding.summary == "0/3 available, 3 updated"
    assert finding.facts["rollout_in_progress"] is False
    assert (finding.facts["available"], finding.facts["unavailable"]) == (0, 3)
    assert "Available=False MinimumReplicasUnavailable" in finding.evidence


async def test_some_unavailable_is_degraded(clients: Clients, standin: KubeStandin) -> None:
    standin.set_pod_state(NS, standin.pods_of(NS, "coordinator")[0]["metadata"]["name"], "unready")
    finding = await run(clients)
    assert finding.status == "degraded"
    assert finding.summary == "2/3 available, 3 updated"
    assert finding.facts["unavailable"] == 1


async def test_an_hpa_targeting_the_deployment(clients: Clients, standin: KubeStandin) -> None:
    standin.add_hpa(NS, "other-hpa", target_name="coordinator-db")
    standin.add_hpa(NS, "coordinator-hpa", target_name="coordinator", min_replicas=2, max_replicas=6)
    finding = await run(clients)
    assert finding.facts["hpa"] is True
    assert finding.facts["hpa_name"] == "coordinator-hpa"
    assert finding.summary == "3/3 available, 3 updated; HPA coordinator-hpa"


async def test_an_hpa_of_another_deployment_does_not_count(clients: Clients, standin: KubeStandin) -> None:
    standin.add_hpa(NS, "db-hpa", target_name="coordinator-db")
    finding = await run(clients)
    assert (finding.facts["hpa"], finding.facts["hpa_name"]) == (False, None)


async def test_a_missing_deployment_is_an_error_naming_it(clients: Clients) -> None:
    finding = await run(clients, target=TARGET.model_copy(update={"name": "ghost"}))
    assert finding.status == "error"
    assert (
        finding.summary
        == 'Kubernetes API 404 (get deployment shop/ghost): deployments.apps "ghost" not found'
    )


async def test_a_target_that_is_not_a_deployment_is_skipped(clients: Clients, standin: KubeStandin) -> None:
    finding = await run(clients, target=TARGET.model_copy(update={"kind": "StatefulSet"}))
    assert finding.status == "skipped"
    assert finding.summary == "target is a StatefulSet, not a Deployment"
    assert standin.requests == []


def test_a_progress_deadline_exceeded_is_degraded() -> None:
    deployment = {
        "metadata": {"name": "coordinator", "generation": 4},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 4,
            "updatedReplicas": 1,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": 'ReplicaSet "coordinator-5d4f" has timed out progressing.',
                }
            ],
        },
    }
    observation = workload.summarize(deployment, [])
    assert observation.status == "degraded"
    assert observation.summary == "3/3 available, 1 updated; rollout in progress, progress deadline exceeded"
    assert observation.facts["progress_deadline_exceeded"] is True
