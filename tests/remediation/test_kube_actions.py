"""The Kubernetes actions through the real kubernetes-asyncio client against the API stand-in: what the API saw
(method, path, content type, body), the cluster after the controller settled, and the refusals that send no
write at all — for restart, scale, evict, undo, delete and expand, each also in dry-run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service import errors
from service.clients.hub import Clients
from service.model import incidents
from service.remediation.actions import (
    delete_pods,
    evict_pod,
    expand_pvc,
    rollout_restart,
    rollout_undo,
    scale,
)
from service.remediation.base import ActionContext, ActionDef, Outcome
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin, RequestRecord

NS = "shop"
APP = "coordinator"
TARGET = incidents.TargetRef(kind="Deployment", namespace=NS, name=APP)
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/{APP}"
LABELS = {"app.kubernetes.io/name": APP}
NOW = datetime(2024, 5, 1, 3, 4, 5, tzinfo=UTC)
STRATEGIC = "application/strategic-merge-patch+json"


@pytest.fixture
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(NS, APP, replicas=3)
        yield started


@pytest.fixture
async def clients(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[Clients]:
    async with connected(standin, tmp_path) as hub:
        yield hub


@contextlib.asynccontextmanager
async def connected(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[Clients]:
    """Clients with a KubeClient for ``standin`` (the real client, TLS and token from a kubeconfig)."""
    async with kube_clients(standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)) as hub:
        yield hub


async def run(
    definition: ActionDef,
    clients: Clients,
    params: dict[str, Any] | None = None,
    *,
    dry_run: bool = False,
    target: incidents.TargetRef = TARGET,
) -> Outcome:
    ctx = ActionContext(target=target, clients=clients, timeout_s=3.0, dry_run=dry_run)
    return await definition.run(ctx, definition.params.model_validate(params or {}))


async def preflight(
    definition: ActionDef,
    clients: Clients,
    params: dict[str, Any] | None = None,
    *,
    target: incidents.TargetRef = TARGET,
) -> str | None:
    assert definition.preflight is not None
    ctx = ActionContext(target=target, clients=clients, timeout_s=3.0, dry_run=True)
    return await definition.preflight(ctx, definition.params.model_validate(params or {}))


async def refused(
    definition: ActionDef,
    clients: Clients,
    standin: KubeStandin,
    params: dict[str, Any] | None = None,
    *,
    target: incidents.TargetRef = TARGET,
) -> str:
    """Preflight's reason, which run raises as Blocked("preflight") too — with no write request sent."""
    reason = await preflight(definition, clients, params, target=target)
    assert reason is not None
    for dry_run in (True, False):
        with pytest.raises(errors.Blocked) as blocked:
            await run(definition, clients, params, dry_run=dry_run, target=target)
        assert (blocked.value.guard, blocked.value.reason) == ("preflight", reason)
    assert standin.writes() == []
    return reason


def as_sent(record: RequestRecord) -> dict[str, Any]:
    """A request the stand-in saw, in the shape of ``Request.as_dict()``."""
    return {
        "method": record.method,
        "path": record.path,
        "body": record.body,
        "content_type": record.content_type,
    }


def pod_names(standin: KubeStandin, deployment: str = APP) -> set[str]:
    return {p["metadata"]["name"] for p in standin.pods_of(NS, deployment)}


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


# ------------------------------------------------------------------------------------- rollout_restart


async def test_restart_sends_kubectls_patch_and_healthy_pods_replace_crashlooping_ones(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.set_deployment_pods_state(NS, APP, "crashloop", restarts=7)
    before = pod_names(standin)
    assert (
        await preflight(rollout_restart.rollout_restart, clients) is None
    )  # crashloop, all updated: no rollout

    outcome = await run(rollout_restart.rollout_restart, clients, {"now": NOW.isoformat()})

    [patch] = standin.writes()
    assert as_sent(patch) == {
        "method": "PATCH",
        "path": DEPLOYMENT,
        "body": {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T03:04:05Z"}}
                }
            }
        },
        "content_type": STRATEGIC,
    }
    assert [r.as_dict() for r in outcome.requests] == [as_sent(patch)]
    assert outcome.ok and outcome.sent
    assert outcome.result == {"generation": 2, "restarted_at": "2024-05-01T03:04:05Z", "replicas": 3}
    assert outcome.summary == f"restarted deployment {NS}/{APP}: 3 replicas roll (generation 2)"

    await standin.settle()
    after = standin.pods_of(NS, APP)
    assert len(after) == 3 and not before & pod_names(standin)
    assert all(ready(p) and p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in after)
    assert {p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] for p in after} == {
        "2024-05-01T03:04:05Z"
    }


async def test_restart_dry_run_returns_the_exact_request_and_sends_no_write(
    clients: Clients, standin: KubeStandin
) -> None:
    dry = await run(rollout_restart.rollout_restart, clients, {"now": NOW.isoformat()}, dry_run=True)
    assert dry.ok and not dry.sent
    assert dry.summary == f"dry-run: would restart deployment {NS}/{APP} (3 replicas, rolling)"
    assert standin.writes() == []
    assert standin.get("Deployment", NS, APP)["metadata"]["generation"] == 1  # type: ignore[index]

    real = await run(rollout_restart.rollout_restart, clients, {"now": NOW.isoformat()})
    assert dry.requests == real.requests
    assert [as_sent(r) for r in standin.writes()] == [r.as_dict() for r in dry.requests]


async def test_restart_without_now_stamps_the_current_time(clients: Clients, standin: KubeStandin) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    outcome = await run(rollout_restart.rollout_restart, clients)
    stamped = datetime.strptime(outcome.result["restarted_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert started <= stamped <= datetime.now(UTC)


async def test_restart_refuses_paused_single_replica_and_non_deployment_targets(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.add_deployment(NS, "paused", replicas=3, paused=True)
    standin.add_deployment(NS, "single", replicas=1, state="crashloop")
    paused = incidents.TargetRef(kind="Deployment", namespace=NS, name="paused")
    single = incidents.TargetRef(kind="Deployment", namespace=NS, name="single")
    statefulset = incidents.TargetRef(kind="StatefulSet", namespace=NS, name=APP)

    restart = rollout_restart.rollout_restart
    assert await refused(restart, clients, standin, target=paused) == (
        "deployment paused is paused (kubectl rollout resume first)"
    )
    assert await refused(restart, clients, standin, target=single) == (
        "deployment single has 1 replica(s): restarting fewer than 2 is an outage "
        "(allow_single_replica: true to accept it)"
    )
    assert (
        await refused(restart, clients, standin, target=statefulset)
        == "target is a StatefulSet, not a Deployment"
    )

    allowed = await run(restart, clients, {"allow_single_replica": True}, dry_run=True, target=single)
    assert allowed.ok and standin.writes() == []


async def test_restart_refuses_a_rollout_in_progress(tmp_path: Path) -> None:
    # a slow controller, so that the rollouts below are still in progress when the action looks
    async with KubeStandin(rollout_delay=30) as slow:
        slow.add_deployment(NS, APP, replicas=3)
        slow.add_deployment(NS, "web", replicas=3)
        async with connected(slow, tmp_path) as hub:
            assert hub.kube is not None
            image = {
                "spec": {"template": {"spec": {"containers": [{"name": APP, "image": "example/app:2"}]}}}
            }
            await hub.kube.patch_deployment(NS, APP, image, timeout=3)
            # a pod gone and not yet replaced: fewer updated replicas than spec
            slow.delete("Pod", NS, sorted(pod_names(slow, "web"))[0])
            slow.clear_requests()

            assert await refused(rollout_restart.rollout_restart, hub, slow) == (
                "a rollout is in progress (observedGeneration 1 < generation 2)"
            )
            web = incidents.TargetRef(kind="Deployment", namespace=NS, name="web")
            assert await refused(rollout_restart.rollout_restart, hub, slow, target=web) == (
                "a rollout is in progress (2 of 3 replicas updated)"
            )


# ------------------------------------------------------------------------------------- scale


async def test_scale_up_is_clamped_to_max_through_the_scale_subresource(
    clients: Clients, standin: KubeStandin
) -> None:
    outcome = await run(scale.scale, clients, {"replicas": 8, "max": 5})
    [patch] = standin.writes()
    assert as_sent(patch) == {
        "method": "PATCH",
        "path": f"{DEPLOYMENT}/scale",
        "body": {"spec": {"replicas": 5}},
        "content_type": "application/merge-patch+json",
    }
    assert [r.as_dict() for r in outcome.requests] == [as_sent(patch)]
    assert outcome.result == {"from": 3, "to": 5}
    assert outcome.summary == f"scaled deployment {NS}/{APP} from 3 to 5 replicas (clamped to max 5)"
    await standin.settle()
    assert len(standin.pods_of(NS, APP)) == 5


async def test_scale_refuses_down_equal_at_ceiling_and_hpa_owned(
    clients: Clients, standin: KubeStandin
) -> None:
    assert await refused(scale.scale, clients, standin, {"replicas": 2, "max": 10}) == (
        f"deployment {APP} has 3 replicas: scaling to 2 would scale down, which kube.scale never does"
    )
    assert await refused(scale.scale, clients, standin, {"replicas": 3, "max": 10}) == (
        f"deployment {APP} is already at 3 replicas"
    )
    assert await refused(scale.scale, clients, standin, {"replicas": 6, "max": 3}) == (
        f"deployment {APP} is already at 3 replicas, at or above max 3"
    )
    standin.add_hpa(NS, "coordinator-hpa", target_name=APP, min_replicas=2, max_replicas=10)
    assert await refused(scale.scale, clients, standin, {"replicas": 6, "max": 10}) == (
        f"HorizontalPodAutoscaler coordinator-hpa owns the scale of deployment {APP}"
    )
    assert standin.get("Deployment", NS, APP)["spec"]["replicas"] == 3  # type: ignore[index]


async def test_scale_dry_run(clients: Clients, standin: KubeStandin) -> None:
    outcome = await run(scale.scale, clients, {"replicas": 4, "max": 6}, dry_run=True)
    assert not outcome.sent and outcome.result == {"from": 3, "to": 4}
    assert outcome.summary == f"dry-run: would scale deployment {NS}/{APP} from 3 to 4 replicas"
    assert [r.as_dict() for r in outcome.requests] == [
        {
            "method": "PATCH",
            "path": f"{DEPLOYMENT}/scale",
            "body": {"spec": {"replicas": 4}},
            "content_type": "application/merge-patch+json",
        }
    ]
    assert standin.writes() == []


# ------------------------------------------------------------------------------------- evict_pod


async def test_evict_picks_the_crashlooping_pod_and_its_replacement_comes_up(
    clients: Clients, standin: KubeStandin
) -> None:
    pods = sorted(pod_names(standin))
    standin.set_pod_state(NS, pods[1], "crashloop", restarts=4)
    standin.set_pod_state(NS, pods[2], "crashloop", restarts=9)

    dry = await run(evict_pod.evict_pod, clients, dry_run=True)
    assert dry.summary == f"dry-run: would evict pod {NS}/{pods[2]} (not ready, 9 restarts)"
    assert standin.writes() == []

    outcome = await run(evict_pod.evict_pod, clients)
    [post] = standin.writes()
    assert as_sent(post) == {
        "method": "POST",
        "path": f"/api/v1/namespaces/{NS}/pods/{pods[2]}/eviction",
        "body": {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pods[2], "namespace": NS},
        },
        "content_type": "application/json",
    }
    assert dry.requests == outcome.requests
    assert outcome.result["pod"] == pods[2] and outcome.result["restarts"] == 9
    assert pods[2] not in pod_names(standin)
    await standin.settle()
    assert len(pod_names(standin)) == 3 and pods[2] not in pod_names(standin)


async def test_evict_blocked_by_the_disruption_budget_keeps_the_pod_and_never_deletes(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.add_pdb(NS, "coordinator", selector=LABELS, min_available=3)
    victim = sorted(pod_names(standin))[0]
    standin.set_pod_state(NS, victim, "crashloop", restarts=2)

    with pytest.raises(errors.Blocked) as blocked:
        await run(evict_pod.evict_pod, clients, {"pod": victim})
    assert blocked.value.guard == "pdb"
    assert blocked.value.reason == (
        "Cannot evict pod as it would violate the pod's disruption budget.; "
        "The disruption budget coordinator needs 3 healthy pods and has 2 currently"
    )
    assert victim in pod_names(standin)
    assert [(r.method, r.status) for r in standin.writes()] == [("POST", 429)]
    assert not [r for r in standin.requests if r.method == "DELETE"]


async def test_evict_throttled_by_the_api_is_transient_not_a_budget_refusal(
    clients: Clients, standin: KubeStandin
) -> None:
    victim = sorted(pod_names(standin))[0]
    standin.set_pod_state(NS, victim, "crashloop", restarts=2)
    standin.fail_next("POST", r"/eviction$", 429)  # API priority and fairness, no DisruptionBudget cause
    with pytest.raises(errors.Transient) as throttled:
        await run(evict_pod.evict_pod, clients)
    assert throttled.value.delay == 1.0
    assert victim in pod_names(standin)


async def test_evict_refuses_healthy_targets_and_foreign_pods(clients: Clients, standin: KubeStandin) -> None:
    standin.add_deployment(NS, "other", replicas=1)
    assert await refused(evict_pod.evict_pod, clients, standin) == (
        f"all 3 pods of Deployment/{NS}/{APP} are ready and never restarted: nothing to evict"
    )
    foreign = sorted(pod_names(standin, "other"))[0]
    assert await refused(evict_pod.evict_pod, clients, standin, {"pod": foreign}) == (
        f"pod {foreign} is not one of Deployment/{NS}/{APP}'s pods (app.kubernetes.io/name={APP})"
    )
    wildcard = incidents.TargetRef(kind="Deployment", namespace=NS, name=APP, selector="tier!=db")
    assert await refused(evict_pod.evict_pod, clients, standin, target=wildcard) == (
        "selector 'tier!=db' has no key=value requirement: it would select nearly every pod"
    )
    with pytest.raises(ValidationError):
        evict_pod.EvictPodParams.model_validate({"pod": "../../secrets"})


# ------------------------------------------------------------------------------------- rollout_undo


async def test_undo_reverts_to_the_previous_image(clients: Clients, standin: KubeStandin) -> None:
    assert clients.kube is not None
    assert await refused(rollout_undo.rollout_undo, clients, standin) == (
        f"deployment {APP} has no revision before 1 to roll back to"
    )
    bad = {"spec": {"template": {"spec": {"containers": [{"name": APP, "image": "example/app:2"}]}}}}
    await clients.kube.patch_deployment(NS, APP, bad, timeout=3)
    await standin.settle()
    standin.set_deployment_pods_state(NS, APP, "imagepull")
    standin.clear_requests()

    outcome = await run(rollout_undo.rollout_undo, clients)
    [patch] = standin.writes()
    assert (patch.method, patch.path, patch.content_type) == (
        "PATCH",
        DEPLOYMENT,
        "application/json-patch+json",
    )
    [replace] = patch.body
    assert (replace["op"], replace["path"]) == ("replace", "/spec/template")
    assert replace["value"]["spec"]["containers"][0]["image"] == "example/app:1"
    assert "pod-template-hash" not in replace["value"]["metadata"]["labels"]
    assert [r.as_dict() for r in outcome.requests] == [as_sent(patch)]
    assert outcome.result == {
        "to_revision": 1,
        "from_revision": 2,
        "images": ["example/app:1"],
        "generation": 3,
    }

    await standin.settle()
    deployment = standin.get("Deployment", NS, APP)
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "example/app:1"
    after = standin.pods_of(NS, APP)
    assert {p["spec"]["containers"][0]["image"] for p in after} == {"example/app:1"}
    assert len(after) == 3 and all(ready(p) for p in after)


# ------------------------------------------------------------------------------------- delete_pods


async def test_forced_delete_sends_grace_period_zero_for_each_pod(
    clients: Clients, standin: KubeStandin
) -> None:
    before = sorted(pod_names(standin))
    dry = await run(delete_pods.delete_pods, clients, {"force": True}, dry_run=True)
    assert dry.summary == (
        f"dry-run: would delete 3 pods of Deployment/{NS}/{APP} (app.kubernetes.io/name={APP}) "
        "--force --grace-period=0"
    )
    assert standin.writes() == []

    outcome = await run(delete_pods.delete_pods, clients, {"force": True})
    deletes = standin.writes()
    assert [(r.method, r.path) for r in deletes] == [
        ("DELETE", f"/api/v1/namespaces/{NS}/pods/{pod}") for pod in before
    ]
    assert {r.body["gracePeriodSeconds"] for r in deletes} == {0}
    assert (
        [as_sent(r) for r in deletes]
        == [r.as_dict() for r in outcome.requests]
        == [r.as_dict() for r in dry.requests]
    )
    assert outcome.result == {"deleted": before, "already_gone": [], "grace_period_seconds": 0}
    await standin.settle()
    assert len(pod_names(standin)) == 3 and not set(before) & pod_names(standin)

    with pytest.raises(ValidationError, match="give force or grace_period_s"):
        delete_pods.DeletePodsParams.model_validate({"force": True, "grace_period_s": 30})


async def test_delete_without_force_leaves_the_grace_period_to_the_pod(
    clients: Clients, standin: KubeStandin
) -> None:
    outcome = await run(delete_pods.delete_pods, clients, {"grace_period_s": 5})
    assert {r.body.get("gracePeriodSeconds") for r in standin.writes()} == {5}
    assert outcome.summary.endswith("--grace-period=5")
    nothing = incidents.TargetRef(kind="Deployment", namespace=NS, name=APP, selector="app=none")
    standin.clear_requests()
    assert await refused(delete_pods.delete_pods, clients, standin, target=nothing) == (
        f"no pod of Deployment/{NS}/{APP} matches app=none"
    )


# ------------------------------------------------------------------------------------- expand_pvc


async def test_expand_grows_the_claim(clients: Clients, standin: KubeStandin) -> None:
    standin.add_storage_class("standard", allow_expansion=True)
    standin.add_pvc(NS, "data", storage="10Gi", storage_class="standard")
    params = {"claim": "data", "size": "20Gi"}

    dry = await run(expand_pvc.expand_pvc, clients, params, dry_run=True)
    assert dry.summary == f"dry-run: would expand claim {NS}/data from 10Gi to 20Gi"
    assert standin.writes() == []

    outcome = await run(expand_pvc.expand_pvc, clients, params)
    [patch] = standin.writes()
    assert as_sent(patch) == {
        "method": "PATCH",
        "path": f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data",
        "body": {"spec": {"resources": {"requests": {"storage": "20Gi"}}}},
        "content_type": STRATEGIC,
    }
    assert dry.requests == outcome.requests
    assert outcome.result == {"claim": "data", "from": "10Gi", "to": "20Gi", "storage_class": "standard"}
    await standin.settle()
    claim = standin.get("PersistentVolumeClaim", NS, "data")
    assert claim is not None and claim["status"]["capacity"] == {"storage": "20Gi"}


async def test_expand_refuses_shrink_equal_missing_and_non_expandable(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.add_storage_class("standard", allow_expansion=True)
    standin.add_storage_class("fixed", allow_expansion=False)
    standin.add_pvc(NS, "data", storage="10Gi", storage_class="standard")
    standin.add_pvc(NS, "logs", storage="5Gi", storage_class="fixed")
    expand = expand_pvc.expand_pvc
    assert await refused(expand, clients, standin, {"claim": "data", "size": "5Gi"}) == (
        "claim data has 10Gi: 5Gi would shrink it (volumes never shrink)"
    )
    assert await refused(expand, clients, standin, {"claim": "data", "size": "10240Mi"}) == (
        "claim data already has 10Gi"
    )
    assert await refused(expand, clients, standin, {"claim": "logs", "size": "50Gi"}) == (
        "StorageClass fixed does not allow volume expansion"
    )
    assert await refused(expand, clients, standin, {"claim": "nope", "size": "50Gi"}) == (
        f"no PersistentVolumeClaim nope in namespace {NS}"
    )
    for size in ("lots", "-5Gi", "10GB", "0", "1e3", ""):
        with pytest.raises(ValidationError):
            expand_pvc.ExpandPvcParams.model_validate({"claim": "data", "size": size})


# ------------------------------------------------------------------------------------- quorum


async def test_quorum_refuses_restart_delete_and_evicting_a_ready_pod_while_too_few_are_ready(
    clients: Clients, standin: KubeStandin
) -> None:
    unready, other, _ = sorted(pod_names(standin))
    standin.set_pod_state(NS, unready, "unready")
    standin.clear_requests()
    quorum = ActionContext(target=TARGET, clients=clients, timeout_s=3.0, dry_run=True, quorum=2)
    sentence = "coordinator: 2 of 3 pods ready; quorum 2 needs 3 ready before {} takes one down"

    restart, delete, evict = rollout_restart.rollout_restart, delete_pods.delete_pods, evict_pod.evict_pod
    assert restart.preflight is not None and delete.preflight is not None and evict.preflight is not None
    assert await restart.preflight(quorum, restart.params()) == sentence.format("a rolling restart")
    assert await delete.preflight(quorum, delete.params()) == sentence.format("deleting its pods")
    ready_pod = evict.params.model_validate({"pod": other})
    assert await evict.preflight(quorum, ready_pod) == sentence.format("an eviction")
    assert await evict.preflight(quorum, evict.params()) is None, "evicting the unready pod loses no member"
    for definition, params in ((restart, restart.params()), (delete, delete.params())):
        with pytest.raises(errors.Blocked):
            await definition.run(
                ActionContext(target=TARGET, clients=clients, timeout_s=3.0, quorum=2), params
            )
    assert standin.writes() == []

    # quorum 1 needs 2 ready: two are, so the restart may take one down
    relaxed = ActionContext(target=TARGET, clients=clients, timeout_s=3.0, quorum=1)
    assert (await restart.run(relaxed, restart.params())).ok
