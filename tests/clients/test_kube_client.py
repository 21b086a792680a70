"""The Kubernetes adapter's read methods against the API stand-in, through the real kubernetes-asyncio client
(TLS, bearer token from a kubeconfig): API-shaped dicts out, our errors for the API's error answers."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from service import errors
from service.clients.kube import Conflict, KubeClient, NotFound
from tests.support import procs
from tests.support.kube_clients import connect_kube
from tests.support.kube_standin import KubeStandin

NS = "shop"


@pytest.fixture
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(NS, "coordinator", replicas=2)
        yield started


@pytest.fixture
async def kube(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[KubeClient]:
    async with connect_kube(standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)) as connected:
        yield connected


def first_pod(standin: KubeStandin) -> str:
    return str(standin.pods_of(NS, "coordinator")[0]["metadata"]["name"])


def handwritten_kubeconfig(path: Path, server: str, ca_pem: str, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": server,
                            "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode(),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": NS}}],
                "current-context": "ctx",
            }
        )
    )
    return path


# ------------------------------------------------------------------------------------------- reads


async def test_reads_come_back_as_api_shaped_camel_case_dicts(kube: KubeClient) -> None:
    deployment = await kube.read_deployment(NS, "coordinator", timeout=2)
    assert deployment["metadata"]["name"] == "coordinator"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "coordinator"}}
    assert deployment["status"]["readyReplicas"] == 2
    assert isinstance(deployment["metadata"]["creationTimestamp"], str)  # datetimes serialized back

    pods = await kube.list_pods(NS, "app.kubernetes.io/name=coordinator", timeout=2)
    assert len(pods) == 2
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert pods[0]["status"]["containerStatuses"][0]["restartCount"] == 0
    assert await kube.list_pods(NS, "app.kubernetes.io/name=nothing", timeout=2) == []

    replicasets = await kube.list_replicasets(NS, "app.kubernetes.io/name=coordinator", timeout=2)
    assert [rs["metadata"]["ownerReferences"][0]["name"] for rs in replicasets] == ["coordinator"]


async def test_connect_without_kubeconfig_or_cluster_is_not_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert await KubeClient.connect(None) is None


async def test_a_single_json_log_line_comes_back_as_its_text(kube: KubeClient, standin: KubeStandin) -> None:
    pod = first_pod(standin)
    line = '{"level":"error","msg":"db down","attempt":3}'
    standin.set_logs(NS, pod, line + "\n")
    text = await kube.read_log(
        NS, pod, container=None, previous=False, tail_lines=10, limit_bytes=4096, timeout=2
    )
    assert text == line + "\n"
    assert json.loads(text) == {"level": "error", "msg": "db down", "attempt": 3}


async def test_read_log_passes_container_previous_tail_and_limit(
    kube: KubeClient, standin: KubeStandin
) -> None:
    pod = first_pod(standin)
    standin.set_pod_state(NS, pod, "crashloop")
    standin.set_logs(NS, pod, "one\ntwo\nthree\n", previous=True)
    standin.set_logs(NS, pod, "current\n")
    text = await kube.read_log(
        NS, pod, container="coordinator", previous=True, tail_lines=2, limit_bytes=4096, timeout=2
    )
    assert text == "two\nthree\n"
    request = standin.requests[-1]
    assert request.path == f"/api/v1/namespaces/{NS}/pods/{pod}/log"
    assert request.query == {
        "container": "coordinator",
        "previous": "True",
        "tailLines": "2",
        "limitBytes": "4096",
    }


async def test_read_log_errors_are_raised_not_returned_as_log_text(
    kube: KubeClient, standin: KubeStandin
) -> None:
    pod = first_pod(standin)
    with pytest.raises(errors.Permanent) as caught:  # 400: a running pod has no previous container
        await kube.read_log(NS, pod, container=None, previous=True, tail_lines=5, limit_bytes=100, timeout=2)
    assert not isinstance(caught.value, NotFound)
    assert str(caught.value) == (
        f"Kubernetes API 400 (logs {NS}/{pod} --previous): "
        f'previous terminated container "coordinator" in pod "{pod}" not found'
    )
    with pytest.raises(NotFound, match=r'Kubernetes API 404 \(logs shop/gone\): pods "gone" not found'):
        await kube.read_log(
            NS, "gone", container=None, previous=False, tail_lines=5, limit_bytes=100, timeout=2
        )
    standin.fail_next("GET", r"/log$", 503)
    with pytest.raises(errors.Transient) as transient:
        await kube.read_log(NS, pod, container=None, previous=False, tail_lines=5, limit_bytes=100, timeout=2)
    assert transient.value.delay == 1.0


# ------------------------------------------------------------------------------------------- errors


async def test_404_is_not_found_with_the_api_message(kube: KubeClient) -> None:
    with pytest.raises(NotFound) as caught:
        await kube.read_deployment(NS, "nope", timeout=2)
    assert isinstance(caught.value, errors.Permanent)
    assert (
        str(caught.value)
        == 'Kubernetes API 404 (get deployment shop/nope): deployments.apps "nope" not found'
    )


async def test_409_is_a_conflict_to_retry_at_once(kube: KubeClient, standin: KubeStandin) -> None:
    standin.fail_next("GET", r"/deployments/coordinator$", 409, message="the object has been modified")
    with pytest.raises(Conflict) as caught:
        await kube.read_deployment(NS, "coordinator", timeout=2)
    assert isinstance(caught.value, errors.Transient)
    assert caught.value.delay == 0.0
    assert "409" in str(caught.value) and "the object has been modified" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "headers", "delay", "message"),
    [
        (500, {}, None, "Internal error occurred: injected fault"),
        (500, {"Retry-After": "7"}, 7.0, "Internal error occurred: injected fault"),
        (429, {}, 1.0, "Too many requests, please try again later."),
        (429, {"Retry-After": "30"}, 30.0, "Too many requests, please try again later."),
        (503, {}, 1.0, "the server is currently unable to handle the request"),
    ],
)
async def test_5xx_and_429_are_transient_with_the_retry_after_delay(
    kube: KubeClient,
    standin: KubeStandin,
    status: int,
    headers: dict[str, str],
    delay: float | None,
    message: str,
) -> None:
    standin.fail_next("GET", r"/pods$", status, headers=headers)
    with pytest.raises(errors.Transient) as caught:
        await kube.list_pods(NS, "app.kubernetes.io/name=coordinator", timeout=2)
    assert not isinstance(caught.value, Conflict)
    assert caught.value.delay == delay
    assert str(caught.value) == (
        f"Kubernetes API {status} (list pods {NS} -l app.kubernetes.io/name=coordinator): {message}"
    )


async def test_a_wrong_token_is_permanent(standin: KubeStandin, tmp_path: Path) -> None:
    path = handwritten_kubeconfig(tmp_path / "kubeconfig", standin.url, standin.ca_pem, "not-the-token")
    kube = await KubeClient.connect(path)
    assert kube is not None
    try:
        with pytest.raises(errors.Permanent) as caught:
            await kube.list_pods(NS, "app=x", timeout=2)
    finally:
        await kube.close()
    assert not isinstance(caught.value, NotFound)
    assert str(caught.value) == f"Kubernetes API 401 (list pods {NS} -l app=x): Unauthorized"
    assert standin.requests[-1].status == 401


async def test_the_right_token_in_a_handwritten_kubeconfig_works(
    standin: KubeStandin, tmp_path: Path
) -> None:
    path = handwritten_kubeconfig(tmp_path / "kubeconfig", standin.url, standin.ca_pem, standin.token)
    kube = await KubeClient.connect(path)
    assert kube is not None
    try:
        assert len(await kube.list_pods(NS, "app.kubernetes.io/name=coordinator", timeout=2)) == 2
    finally:
        await kube.close()


async def test_a_slow_api_is_a_transient_timeout(kube: KubeClient, standin: KubeStandin) -> None:
    standin.delay(r"/deployments/coordinator$", 1.0, times=1)
    with pytest.raises(
        errors.Transient, match=r"^Kubernetes API timed out \(get deployment shop/coordinator\)$"
    ):
        await kube.read_deployment(NS, "coordinator", timeout=0.2)


async def test_an_unreachable_api_is_transient(standin: KubeStandin, tmp_path: Path) -> None:
    path = handwritten_kubeconfig(
        tmp_path / "kubeconfig", f"https://127.0.0.1:{procs.free_port()}", standin.ca_pem, standin.token
    )
    kube = await KubeClient.connect(path)
    assert kube is not None
    try:
        with pytest.raises(
            errors.Transient, match=r"^Kubernetes API unreachable \(get deployment shop/x\): "
        ):
            await kube.read_deployment(NS, "x", timeout=2)
    finally:
        await kube.close()
