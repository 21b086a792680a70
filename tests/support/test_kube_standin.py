"""The Kubernetes API stand-in, driven by the real kubernetes_asyncio client and the real kubectl."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.kube_standin import KubeStandin

NS = "shop"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
async def kube() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.2) as standin:
        standin.add_deployment(NS, "web", replicas=3)
        yield standin


@pytest.fixture
async def api(kube: KubeStandin, tmp_path: Path) -> AsyncIterator[ApiClient]:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with ApiClient(configuration) as api_client:
        yield api_client


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def status_body(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# ------------------------------------------------------------------------------------- kubernetes_asyncio


async def test_list_pods_by_label_selector(kube: KubeStandin, api: ApiClient) -> None:
    kube.add_deployment(
        NS, "worker", replicas=2, labels={"app.kubernetes.io/name": "worker", "tier": "batch"}
    )
    core = client.CoreV1Api(api)

    web = await core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=web")
    assert sorted(p.metadata.name for p in web.items) == sorted(
        p["metadata"]["name"] for p in kube.pods_of(NS, "web")
    )
    assert all(p.metadata.name.startswith("web-") for p in web.items) and len(web.items) == 3
    assert web.metadata.resource_version.isdigit()

    both = await core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name in (web,worker)")
    assert len(both.items) == 5
    not_batch = await core.list_namespaced_pod(NS, label_selector="tier!=batch")
    assert {p.metadata.labels["app.kubernetes.io/name"] for p in not_batch.items} == {"web"}
    without_tier = await core.list_namespaced_pod(NS, label_selector="!tier,app.kubernetes.io/name")
    assert len(without_tier.items) == 3
    node = web.items[0].spec.node_name
    on_node = await core.list_namespaced_pod(NS, field_selector=f"spec.nodeName={node},status.phase=Running")
    assert on_node.items and all(p.spec.node_name == node for p in on_node.items)

    with pytest.raises(ApiException) as bad:
        await core.list_namespaced_pod(NS, label_selector="app in web")
    assert bad.value.status == 400 and status_body(bad.value)["reason"] == "BadRequest"


async def test_crashlooping_pod_container_statuses(kube: KubeStandin, api: ApiClient) -> None:
    kube.set_deployment_pods_state(NS, "web", "crashloop")
    oom = kube.pods_of(NS, "web")[0]["metadata"]["name"]
    kube.set_pod_state(NS, oom, "oomkilled", restarts=7)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

    pods = (await core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=web")).items
    for pod in pods:
        (status,) = pod.status.container_statuses
        assert status.state.waiting.reason == "CrashLoopBackOff"
        assert status.ready is False and status.restart_count >= 1
        assert pod.status.phase == "Running"
        ready = next(c for c in pod.status.conditions if c.type == "Ready")
        assert ready.status == "False" and ready.reason == "ContainersNotReady"
    by_name = {p.metadata.name: p.status.container_statuses[0] for p in pods}
    assert by_name[oom].last_state.terminated.reason == "OOMKilled"
    assert by_name[oom].last_state.terminated.exit_code == 137 and by_name[oom].restart_count == 7
    assert {s.last_state.terminated.reason for n, s in by_name.items() if n != oom} == {"Error"}

    deployment = await apps.read_namespaced_deployment("web", NS)
    assert not deployment.status.ready_replicas and deployment.status.unavailable_replicas == 3
    available = next(c for c in deployment.status.conditions if c.type == "Available")
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")


async def test_previous_and_current_logs(kube: KubeStandin, api: ApiClient) -> None:
    pod = kube.pods_of(NS, "web")[0]["metadata"]["name"]
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as no_previous:
        await core.read_namespaced_pod_log(pod, NS, previous=True)
    assert no_previous.value.status == 400
    assert status_body(no_previous.value)["message"] == (
        f'previous terminated container "web" in pod "{pod}" not found'
    )

    kube.set_pod_state(NS, pod, "crashloop")
    kube.set_logs(NS, pod, 'starting\n{"level":"error","msg":"db unreachable"}\n', previous=True)
    kube.set_logs(NS, pod, "starting\n")
    response = await core.read_namespaced_pod_log(pod, NS, previous=True, _preload_content=False)
    assert response.status == 200 and response.content_type == "text/plain"
    assert await response.text() == 'starting\n{"level":"error","msg":"db unreachable"}\n'
    tail = await core.read_namespaced_pod_log(pod, NS, previous=True, tail_lines=1, _preload_content=False)
    assert await tail.text() == '{"level":"error","msg":"db unreachable"}\n'
    assert await core.read_namespaced_pod_log(pod, NS) == "starting\n"

    kube.add_deployment(
        NS, "api", replicas=1, containers=[{"name": "app", "image": "a:1"}, {"name": "proxy", "image": "p:1"}]
    )
    multi = kube.pods_of(NS, "api")[0]["metadata"]["name"]
    with pytest.raises(ApiException) as ambiguous:
        await core.read_namespaced_pod_log(multi, NS)
    assert ambiguous.value.status == 400
    assert "a container name must be specified" in status_body(ambiguous.value)["message"]
    kube.set_logs(NS, multi, "proxy ready\n", container="proxy")
    assert await core.read_namespaced_pod_log(multi, NS, container="proxy") == "proxy ready\n"


async def test_strategic_merge_patch_rolls_out_new_ready_pods(kube: KubeStandin, api: ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    old_pods = {p["metadata"]["name"] for p in kube.pods_of(NS, "web")}
    kube.clear_requests()

    patched = await apps.patch_namespaced_deployment(
        "web", NS, {"spec": {"template": {"metadata": {"annotations": {"example.com/restart": "1"}}}}}
    )
    assert patched.metadata.generation == 2
    assert patched.status.observed_generation == 1  # the controller has not seen it yet
    (write,) = kube.writes()
    assert write.method == "PATCH" and write.content_type == "application/strategic-merge-patch+json"
    current = await core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=web")
    assert {p.metadata.name for p in current.items} == old_pods

    async def rolled_out() -> bool:
        status = (await apps.read_namespaced_deployment_status("web", NS)).status
        return status.observed_generation == 2 and status.updated_replicas == status.replicas == 3

    await eventually(rolled_out)
    deployment = await apps.read_namespaced_deployment("web", NS)
    assert deployment.status.ready_replicas == deployment.status.available_replicas == 3
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    progressing = next(c for c in deployment.status.conditions if c.type == "Progressing")
    assert progressing.reason == "NewReplicaSetAvailable"
    pods = (await core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=web")).items
    assert len(pods) == 3 and not {p.metadata.name for p in pods} & old_pods
    assert all(p.status.container_statuses[0].ready for p in pods)
    assert all(p.metadata.annotations["example.com/restart"] == "1" for p in pods)
    replica_sets = (await apps.list_namespaced_replica_set(NS)).items
    revisions = {
        rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs.spec.replicas for rs in replica_sets
    }
    assert revisions == {"1": 0, "2": 3}
    assert all(rs.metadata.owner_references[0].uid == deployment.metadata.uid for rs in replica_sets)


async def test_merge_and_json_patch_content_types(kube: KubeStandin, api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    merged = await apps.patch_namespaced_deployment(
        "web",
        NS,
        {"metadata": {"labels": {"team": "payments"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels["team"] == "payments" and merged.metadata.generation == 1
    image_patch = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "example/app:2"}
    ]
    json_patched = await apps.patch_namespaced_deployment("web", NS, image_patch)
    assert json_patched.spec.template.spec.containers[0].image == "example/app:2"
    assert kube.requests[-1].content_type == "application/json-patch+json"
    with pytest.raises(ApiException) as failed_test:
        await apps.patch_namespaced_deployment(
            "web", NS, [{"op": "test", "path": "/spec/replicas", "value": 9}]
        )
    assert failed_test.value.status == 422
    with pytest.raises(ApiException) as apply:
        await apps.patch_namespaced_deployment(
            "web", NS, {"spec": {}}, _content_type="application/apply-patch+yaml"
        )
    assert apply.value.status == 415 and status_body(apply.value)["reason"] == "UnsupportedMediaType"
    await kube.settle()
    assert {p["spec"]["containers"][0]["image"] for p in kube.pods_of(NS, "web")} == {"example/app:2"}


async def test_replace_with_stale_resource_version_conflicts(kube: KubeStandin, api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    stale = await apps.read_namespaced_deployment("web", NS)
    await apps.patch_namespaced_deployment("web", NS, {"metadata": {"annotations": {"touched": "yes"}}})
    stale.spec.replicas = 4
    with pytest.raises(ApiException) as conflict:
        await apps.replace_namespaced_deployment("web", NS, stale)
    assert conflict.value.status == 409
    body = status_body(conflict.value)
    assert body["reason"] == "Conflict" and body["details"] == {
        "name": "web",
        "group": "apps",
        "kind": "deployments",
    }
    assert "the object has been modified" in body["message"]

    fresh = await apps.read_namespaced_deployment("web", NS)
    fresh.spec.replicas = 4
    replaced = await apps.replace_namespaced_deployment("web", NS, fresh)
    assert replaced.spec.replicas == 4 and int(replaced.metadata.resource_version) > int(
        fresh.metadata.resource_version
    )
    await kube.settle()
    assert len(kube.pods_of(NS, "web")) == 4


async def test_scale_subresource(kube: KubeStandin, api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    scale = await apps.read_namespaced_deployment_scale("web", NS)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 3 and scale.status.replicas == 3
    assert scale.status.selector == "app.kubernetes.io/name=web"

    patched = await apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 5}})
    assert patched.spec.replicas == 5
    await kube.settle()
    assert len(kube.pods_of(NS, "web")) == 5
    assert (await apps.read_namespaced_deployment_scale("web", NS)).status.replicas == 5

    with pytest.raises(ApiException) as negative:
        await apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": -1}})
    assert negative.value.status == 422
    assert status_body(negative.value)["message"] == (
        'Scale.autoscaling "web" is invalid: '
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    )
    await apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 1}})
    await kube.settle()
    assert len(kube.pods_of(NS, "web")) == 1


async def test_eviction_honours_pod_disruption_budget(kube: KubeStandin, api: ApiClient) -> None:
    kube.add_deployment(NS, "cache", replicas=3)
    kube.add_pdb(NS, "web-pdb", selector={"app.kubernetes.io/name": "web"}, min_available=3)
    kube.add_pdb(NS, "cache-pdb", selector={"app.kubernetes.io/name": "cache"}, max_unavailable=1)
    core, policy = client.CoreV1Api(api), client.PolicyV1Api(api)

    def eviction(name: str) -> client.V1Eviction:
        return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=NS))

    web_pod = kube.pods_of(NS, "web")[0]["metadata"]["name"]
    with pytest.raises(ApiException) as blocked:
        await core.create_namespaced_pod_eviction(web_pod, NS, eviction(web_pod))
    assert blocked.value.status == 429
    body = status_body(blocked.value)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert kube.get("Pod", NS, web_pod) is not None

    pdb = await policy.read_namespaced_pod_disruption_budget("cache-pdb", NS)
    assert (pdb.status.current_healthy, pdb.status.desired_healthy, pdb.status.disruptions_allowed) == (
        3,
        2,
        1,
    )
    first, second = (p["metadata"]["name"] for p in kube.pods_of(NS, "cache")[:2])
    await core.create_namespaced_pod_eviction(first, NS, eviction(first))
    assert kube.get("Pod", NS, first) is None
    assert kube.requests[-1].status == 201
    with pytest.raises(ApiException) as budget_spent:
        await core.create_namespaced_pod_eviction(second, NS, eviction(second))
    assert budget_spent.value.status == 429

    await kube.settle()  # the ReplicaSet replaced the evicted pod, so the budget allows a disruption again
    assert len(kube.pods_of(NS, "cache")) == 3
    await core.create_namespaced_pod_eviction(second, NS, eviction(second))
    assert kube.get("Pod", NS, second) is None


async def test_not_found_is_a_status(api: ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with pytest.raises(ApiException) as missing:
        await apps.read_namespaced_deployment("nope", NS)
    assert missing.value.status == 404
    assert status_body(missing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }
    with pytest.raises(ApiException) as no_pod:
        await core.delete_namespaced_pod("nope", NS)
    assert no_pod.value.status == 404 and status_body(no_pod.value)["message"] == 'pods "nope" not found'


async def test_create_validates_and_rolls_out(kube: KubeStandin, api: ApiClient) -> None:
    apps = client.AppsV1Api(api)

    def deployment(name: str) -> client.V1Deployment:
        labels = {"app": "jobs"}
        return client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="jobs", image="jobs:1")]),
                ),
            ),
        )

    with pytest.raises(ApiException) as invalid:
        await apps.create_namespaced_deployment(NS, deployment("Bad_Name"))
    assert invalid.value.status == 422
    body = status_body(invalid.value)
    assert body["reason"] == "Invalid" and body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["message"].startswith('Deployment.apps "Bad_Name" is invalid: metadata.name: Invalid value')

    created = await apps.create_namespaced_deployment(NS, deployment("jobs"))
    assert created.metadata.generation == 1 and created.spec.strategy.type == "RollingUpdate"
    assert kube.requests[-1].status == 201
    with pytest.raises(ApiException) as exists:
        await apps.create_namespaced_deployment(NS, deployment("jobs"))
    assert exists.value.status == 409 and status_body(exists.value)["reason"] == "AlreadyExists"
    await kube.settle()
    assert len(kube.pods_of(NS, "jobs")) == 2

    with pytest.raises(ApiException) as not_allowed:
        await api.call_api(
            "/api/v1/namespaces/{namespace}/pods",
            "PUT",
            path_params={"namespace": NS},
            auth_settings=["BearerToken"],
            response_types_map={},
        )
    assert not_allowed.value.status == 405 and status_body(not_allowed.value)["reason"] == "MethodNotAllowed"


async def test_requests_without_the_token_are_unauthorized(kube: KubeStandin, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    for token in (None, "not-the-token"):
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        if token is None:
            configuration.api_key = {}
        else:
            configuration.api_key = {"BearerToken": token}
        async with ApiClient(configuration) as unauthenticated:
            with pytest.raises(ApiException) as denied:
                await client.CoreV1Api(unauthenticated).list_namespaced_pod(NS)
        assert denied.value.status == 401
        assert status_body(denied.value)["reason"] == "Unauthorized"
    assert [r.status for r in kube.requests] == [401, 401]


async def test_events_by_field_selector(kube: KubeStandin, api: ApiClient) -> None:
    crashing, other = (p["metadata"]["name"] for p in kube.pods_of(NS, "web")[:2])
    kube.add_event(
        NS,
        involved_kind="Pod",
        involved_name=crashing,
        reason="BackOff",
        message="Back-off restarting",
        count=12,
    )
    kube.add_event(
        NS,
        involved_kind="Pod",
        involved_name=crashing,
        reason="Pulled",
        message="Image pulled",
        type="Normal",
    )
    kube.add_event(
        NS, involved_kind="Pod", involved_name=other, reason="Unhealthy", message="Readiness probe failed"
    )
    kube.add_event(
        NS,
        involved_kind="Deployment",
        involved_name="web",
        reason="ScalingReplicaSet",
        message="Scaled",
        type="Normal",
    )
    core = client.CoreV1Api(api)

    warnings = await core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={crashing},involvedObject.kind=Pod,type=Warning"
    )
    (event,) = warnings.items
    assert (event.reason, event.count, event.type) == ("BackOff", 12, "Warning")
    assert event.involved_object.uid == kube.get("Pod", NS, crashing)["metadata"]["uid"]
    all_warnings = await core.list_namespaced_event(NS, field_selector="type=Warning")
    assert {e.reason for e in all_warnings.items} == {"BackOff", "Unhealthy"}
    about_deployment = await core.list_namespaced_event(NS, field_selector="involvedObject.kind=Deployment")
    assert [e.reason for e in about_deployment.items] == ["ScalingReplicaSet"]
    with pytest.raises(ApiException) as unsupported:
        await core.list_namespaced_event(NS, field_selector="message=Scaled")
    assert unsupported.value.status == 400
    assert status_body(unsupported.value)["message"] == "field label not supported: message"


async def test_injected_faults_reach_the_client(kube: KubeStandin, api: ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    kube.fail_next("GET", r"/namespaces/shop/pods$", 500)
    with pytest.raises(ApiException) as failure:
        await core.list_namespaced_pod(NS)
    assert failure.value.status == 500 and status_body(failure.value)["reason"] == "InternalError"
    assert len((await core.list_namespaced_pod(NS)).items) == 3  # only the next request failed
    assert [r.status for r in kube.requests[-2:]] == [500, 200]

    kube.fail_next("PATCH", r"/deployments/web/scale$", 429, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as throttled:
            await apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 4}})
        assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "1"
    await apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 4}})
    assert kube.get("Deployment", NS, "web")["spec"]["replicas"] == 4

    kube.delay(r"/deployments/web$", 0.5, times=1)
    with pytest.raises(TimeoutError):
        await apps.read_namespaced_deployment("web", NS, _request_timeout=0.1)
    assert (await apps.read_namespaced_deployment("web", NS, _request_timeout=2)).metadata.name == "web"


async def test_watch_sees_a_rollout(kube: KubeStandin, api: ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    listed = await core.list_namespaced_pod(NS)
    old = {p.metadata.name for p in listed.items}

    async def restart() -> None:
        await asyncio.sleep(0.05)
        await apps.patch_namespaced_deployment(
            "web", NS, {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}}
        )

    restarting = asyncio.create_task(restart())
    events: list[tuple[str, str]] = []
    stream = watch.Watch()
    async for event in stream.stream(
        core.list_namespaced_pod, NS, resource_version=listed.metadata.resource_version, timeout_seconds=5
    ):
        events.append((event["type"], event["object"].metadata.name))
        if sum(kind == "DELETED" for kind, _ in events) == 3:
            stream.stop()
    await restarting
    added = {name for kind, name in events if kind == "ADDED"}
    assert len(added) == 3 and not added & old
    assert {name for kind, name in events if kind == "DELETED"} == old


async def test_pvc_expansion(kube: KubeStandin, api: ApiClient) -> None:
    kube.add_storage_class("standard", allow_expansion=True)
    kube.add_storage_class("fixed", allow_expansion=False)
    kube.add_pvc(NS, "data", storage="10Gi")
    kube.add_pvc(NS, "logs", storage="5Gi", storage_class="fixed")
    core = client.CoreV1Api(api)
    grow = {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}

    patched = await core.patch_namespaced_persistent_volume_claim("data", NS, grow)
    assert (
        patched.spec.resources.requests["storage"] == "20Gi" and patched.status.capacity["storage"] == "10Gi"
    )
    await kube.settle()
    assert (await core.read_namespaced_persistent_volume_claim("data", NS)).status.capacity[
        "storage"
    ] == "20Gi"
    with pytest.raises(ApiException) as shrink:
        await core.patch_namespaced_persistent_volume_claim(
            "data", NS, {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        )
    assert shrink.value.status == 422 and "can not be less than" in status_body(shrink.value)["message"]
    with pytest.raises(ApiException) as fixed:
        await core.patch_namespaced_persistent_volume_claim("logs", NS, grow)
    assert fixed.value.status == 403 and status_body(fixed.value)["reason"] == "Forbidden"
    storage_class = await client.StorageV1Api(api).read_storage_class("fixed")
    assert storage_class.allow_volume_expansion is False


async def test_rollout_keeps_crashloop_when_the_fault_is_in_the_template(
    kube: KubeStandin, api: ApiClient
) -> None:
    kube.add_deployment(NS, "broken", replicas=2, fixes_crashloop=False)
    kube.set_deployment_pods_state(NS, "broken", "crashloop")
    kube.set_deployment_pods_state(NS, "web", "crashloop")
    apps = client.AppsV1Api(api)
    restart = {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}
    }
    await apps.patch_namespaced_deployment("broken", NS, restart)
    await apps.patch_namespaced_deployment("web", NS, restart)
    await kube.settle()
    assert all(not p["status"]["containerStatuses"][0]["ready"] for p in kube.pods_of(NS, "broken"))
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in kube.pods_of(NS, "web"))
    assert (await apps.read_namespaced_deployment("web", NS)).status.ready_replicas == 3
    assert not (await apps.read_namespaced_deployment("broken", NS)).status.ready_replicas


async def test_other_kinds_are_served(kube: KubeStandin, api: ApiClient) -> None:
    kube.add_hpa(NS, "web", target_name="web", min_replicas=2, max_replicas=6)
    kube.add_network_policy(NS, "deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    hpa = await client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("web", NS)
    assert hpa.spec.scale_target_ref.name == "web" and hpa.status.current_replicas == 3
    policies = await client.NetworkingV1Api(api).list_namespaced_network_policy(NS)
    assert [p.metadata.name for p in policies.items] == ["deny-ingress"]
    assert policies.items[0].spec.policy_types == ["Ingress"]
    namespaces = await client.CoreV1Api(api).list_namespace()
    assert {n.metadata.name for n in namespaces.items} == {"default", NS}


# --------------------------------------------------------------------------------------------- kubectl


async def kubectl(kube: KubeStandin, tmp_path: Path, *args: str) -> str:
    """Run the real kubectl against the stand-in (async: the server runs in this event loop)."""
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
        "HOME": str(tmp_path),
    }
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        *args,
        "--request-timeout=5s",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed ({proc.returncode}): {err.decode()}"
    return out.decode()


async def test_kubectl_get_pods_json(kube: KubeStandin, tmp_path: Path) -> None:
    kube.set_pod_state(NS, kube.pods_of(NS, "web")[0]["metadata"]["name"], "imagepull")
    listing = json.loads(await kubectl(kube, tmp_path, "get", "pods", "-n", NS, "-o", "json"))
    assert listing["kind"] == "List"
    assert sorted(p["metadata"]["name"] for p in listing["items"]) == sorted(
        p["metadata"]["name"] for p in kube.pods_of(NS, "web")
    )
    reasons = sorted(
        (p["status"]["containerStatuses"][0]["state"].get("waiting") or {}).get("reason", "running")
        for p in listing["items"]
    )
    assert reasons == ["ImagePullBackOff", "running", "running"]
    table = await kubectl(kube, tmp_path, "get", "pods", "-n", NS)
    assert table.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "ImagePullBackOff" in table


async def test_kubectl_rollout_restart(kube: KubeStandin, tmp_path: Path) -> None:
    old = {p["metadata"]["name"] for p in kube.pods_of(NS, "web")}
    kube.clear_requests()
    out = await kubectl(kube, tmp_path, "rollout", "restart", "deployment/web", "-n", NS)
    assert out.strip() == "deployment.apps/web restarted"
    (patch,) = kube.writes()
    assert patch.method == "PATCH" and patch.path == f"/apis/apps/v1/namespaces/{NS}/deployments/web"
    assert patch.content_type == "application/strategic-merge-patch+json"
    annotations = patch.body["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    await kube.settle()
    new = kube.pods_of(NS, "web")
    assert len(new) == 3 and not {p["metadata"]["name"] for p in new} & old
    assert all(p["metadata"]["annotations"] == annotations for p in new)
    status = await kubectl(kube, tmp_path, "rollout", "status", "deployment/web", "-n", NS, "--timeout=10s")
    assert 'deployment "web" successfully rolled out' in status


async def test_kubectl_scale(kube: KubeStandin, tmp_path: Path) -> None:
    out = await kubectl(kube, tmp_path, "scale", "deployment/web", "--replicas=5", "-n", NS)
    assert out.strip() == "deployment.apps/web scaled"
    assert kube.writes()[-1].path.endswith("/deployments/web/scale")
    await kube.settle()
    assert len(kube.pods_of(NS, "web")) == 5
    listing = json.loads(
        await kubectl(
            kube, tmp_path, "get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=web", "-o", "json"
        )
    )
    assert len(listing["items"]) == 5


async def test_kubectl_jsonpath(kube: KubeStandin, tmp_path: Path) -> None:
    image = await kubectl(
        kube,
        tmp_path,
        "get",
        "deployment",
        "web",
        "-n",
        NS,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image == "example/app:1"
    ready = await kubectl(
        kube, tmp_path, "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}"
    )
    assert ready == "3"


async def test_kubectl_rollout_undo_restores_previous_template(
    kube: KubeStandin, api: ApiClient, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(api)
    await apps.patch_namespaced_deployment(
        "web",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "example/app:2"}]}}}},
    )
    await kube.settle()
    await kubectl(kube, tmp_path, "rollout", "undo", "deployment/web", "-n", NS)
    await kube.settle()
    deployment = await apps.read_namespaced_deployment("web", NS)
    assert deployment.spec.template.spec.containers[0].image == "example/app:1"
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert {p["spec"]["containers"][0]["image"] for p in kube.pods_of(NS, "web")} == {"example/app:1"}
    history = await kubectl(kube, tmp_path, "rollout", "history", "deployment/web", "-n", NS)
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
