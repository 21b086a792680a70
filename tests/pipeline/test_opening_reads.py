"""``pipeline.reads``: one opening's diagnosis and preflight share the target Deployment's read (one GET),
each caller gets its own copy, a new opening reads again, and other calls go to the API as usual; against
the Kubernetes stand-in through the real client."""

from __future__ import annotations

from pathlib import Path

from service.clients.hub import Clients
from service.pipeline import reads
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin


def gets(kube: KubeStandin, kind: str) -> int:
    return sum(1 for r in kube.requests if r.method == "GET" and f"/{kind}" in r.path)


async def test_an_opening_reads_the_deployment_once_and_each_caller_gets_its_own_copy(tmp_path: Path) -> None:
    async with KubeStandin(rollout_delay=0) as kube:
        kube.add_deployment("shop", "svc-0001", replicas=2)
        kube.clear_requests()
        async with kube_clients(kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")) as hub:
            opening = reads.for_opening(hub)
            assert opening.kube is not None and opening.kube is not hub.kube
            first = await opening.kube.read_deployment("shop", "svc-0001", timeout=5)
            first["spec"]["replicas"] = 99  # a caller's change is its own
            second = await opening.kube.read_deployment("shop", "svc-0001", timeout=5)
            assert second["spec"]["replicas"] == 2
            assert gets(kube, "deployments/") == 1
            await opening.kube.list_pods("shop", "app=svc-0001", timeout=5)
            await opening.kube.list_pods("shop", "app=svc-0001", timeout=5)
            assert gets(kube, "pods") == 2, "only the Deployment read is shared"
            again = reads.for_opening(hub)  # the next opening
            assert again.kube is not None
            await again.kube.read_deployment("shop", "svc-0001", timeout=5)
            assert gets(kube, "deployments/") == 2


def test_without_kubernetes_the_clients_are_unchanged() -> None:
    clients = Clients(http=None)  # type: ignore[arg-type]  # never used: no kube, nothing to share
    assert reads.for_opening(clients) is clients
