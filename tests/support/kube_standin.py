"""An in-memory Kubernetes API server stand-in for tests, served over HTTPS (or HTTP) on loopback.

It serves a faithful subset of the REST API (JSON shapes, ``Status`` errors, resourceVersions, selectors,
patches, watches, discovery) so the real ``kubernetes_asyncio`` client and the real ``kubectl`` can drive it,
and simulates a Deployment/ReplicaSet controller: template changes roll out new ReplicaSets and Pods after
``rollout_delay`` seconds, scaling adds/removes Pods, deleted Pods are replaced.  Object shapes and API
semantics live in ``kube_objects.py``.

Usage::

    async with KubeStandin() as kube:
        kube.add_deployment("shop", "web", replicas=3)
        kube.set_deployment_pods_state("shop", "web", "crashloop")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        ...                                   # point the code under test at kubeconfig
        await kube.settle()                   # wait for pending rollouts
        assert kube.writes()[0].method == "PATCH"

Served (``/api/v1``, ``/apis/<group>/<version>``): pods (+ ``log``, ``eviction``, ``status``), events,
persistentvolumeclaims, namespaces, deployments (+ ``scale``, ``status``), replicasets,
horizontalpodautoscalers (autoscaling/v2), poddisruptionbudgets (policy/v1), networkpolicies
(networking.k8s.io/v1), storageclasses (storage.k8s.io/v1).  Every kind supports get, list (label and field
selectors, ``limit``/``continue``, ``watch``), create, replace, patch (strategic-merge, merge, JSON patch)
and delete (cascading through ownerReferences); ``kubectl get`` gets server-side ``Table`` output.

TLS by default: client-go (kubectl) never sends a bearer token to an ``http://`` server, so the server uses
the self-signed certificate in ``kube_standin_tls.pem`` and ``write_kubeconfig`` embeds it as
``certificate-authority-data``.  Not served: OpenAPI (``kubectl apply``/``create -f`` need
``--validate=false``), protobuf bodies (415: ``kubectl create deployment``/``run`` fail; ``apply``,
``replace``, ``patch``, ``scale``, ``rollout ...``, ``delete`` send JSON and work), server-side apply (415),
nodes, services, metrics.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import random
import re
import secrets
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml
from aiohttp import web

from tests.support.kube_objects import (
    KUBE_VERSION,
    PATCH_TYPES,
    POD_STATES,
    UNSUPPORTED_MEDIA,
    ApiError,
    FieldError,
    FieldSelector,
    LabelSelector,
    Obj,
    PatchError,
    ResourceType,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    bad_request,
    controller_of,
    default_deployment,
    default_pod_spec,
    invalid_error,
    label_selector_from_object,
    make_deployment,
    make_namespace,
    make_pod,
    make_replica_set,
    make_scale,
    new_metadata,
    not_found_path,
    now_ts,
    parse_field_selector,
    parse_label_selector,
    parse_quantity,
    percent_or_int,
    pod_is_ready,
    resource_by_name,
    resource_for,
    safe_encode,
    set_pod_status,
    status_failure,
    template_hash,
    to_table,
    validate_deployment,
    validate_metadata,
    validate_pod_spec,
    validate_replicas,
)

__all__ = ["POD_STATES", "KubeStandin", "RequestRecord"]

HOST = "127.0.0.1"
TLS_PEM = Path(__file__).with_name("kube_standin_tls.pem")  # self-signed cert + key for 127.0.0.1 (test-only)
NODES = ("node-1", "node-2", "node-3")
REVISION = "deployment.kubernetes.io/revision"
HISTORY_SIZE = 20000

log = logging.getLogger(__name__)

PODS = resource_by_name("pods")
EVENTS = resource_by_name("events")
PVCS = resource_by_name("persistentvolumeclaims")
NAMESPACES = resource_by_name("namespaces")
DEPLOYMENTS = resource_by_name("deployments")
REPLICA_SETS = resource_by_name("replicasets")
HPAS = resource_by_name("horizontalpodautoscalers")
PDBS = resource_by_name("poddisruptionbudgets")
NETWORK_POLICIES = resource_by_name("networkpolicies")
STORAGE_CLASSES = resource_by_name("storageclasses")


@dataclass
class RequestRecord:
    """One request as the stand-in saw it (``status`` is the HTTP status it answered)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any  # parsed JSON, or None
    status: int = 0
    user_agent: str = ""


@dataclass
class _Fault:
    method: str | None
    pattern: re.Pattern[str]
    status: int
    remaining: int | None
    message: str | None
    headers: dict[str, str]
    apply: bool

    def error(self) -> ApiError:
        default = {
            429: "Too many requests, please try again later.",
            500: "Internal error occurred: injected fault",
            503: "the server is currently unable to handle the request",
            504: "the server was unable to return a response in the time allotted",
        }.get(self.status, f"injected fault ({self.status})")
        headers = dict(self.headers)
        details: Obj = {}
        if self.status in {429, 503, 504} and "Retry-After" not in headers:
            headers["Retry-After"] = "1"
            details = {"retryAfterSeconds": 1}
        return ApiError(self.status, self.message or default, details=details, headers=headers)


@dataclass
class _Delay:
    method: str | None
    pattern: re.Pattern[str]
    seconds: float
    remaining: int | None


@dataclass(eq=False)
class _Watcher:
    rt: ResourceType
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    queue: asyncio.Queue[tuple[str, Obj] | None] = field(default_factory=asyncio.Queue)

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        metadata = obj["metadata"]
        if self.namespace is not None and metadata.get("namespace") != self.namespace:
            return False
        return self.labels.matches(metadata.get("labels")) and self.fields.matches(obj)

    def event_for(self, type_: str, obj: Obj, old: Obj | None) -> tuple[str, Obj] | None:
        """The event this watcher sees, translating selector transitions like the watch cache does."""
        now_matches = self._matches(obj)
        if type_ != "MODIFIED":
            return (type_, obj) if now_matches else None
        was_matching = self._matches(old)
        if now_matches:
            return ("MODIFIED" if was_matching else "ADDED", obj)
        return ("DELETED", obj) if was_matching else None


def _without(obj: Obj, *paths: tuple[str, ...]) -> Obj:
    result = copy.deepcopy(obj)
    for path in paths:
        node = result
        for part in path[:-1]:
            node = node.get(part) or {}
        node.pop(path[-1], None)
    return result


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in {"metadata", "status", "apiVersion", "kind"}}


def _revision(rs: Obj) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _pod_state(pod: Obj) -> str:
    """Which of ``POD_STATES`` a pod is in (the inverse of ``set_pod_status``)."""
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    if status.get("phase") == "Pending" and not statuses:
        return "pending"
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "ImagePullBackOff":
            return "imagepull"
        if waiting.get("reason") == "CrashLoopBackOff":
            terminated = (cs.get("lastState") or {}).get("terminated") or {}
            return "oomkilled" if terminated.get("reason") == "OOMKilled" else "crashloop"
    return "running" if pod_is_ready(pod) else "unready"


# ============================================================================================= store


class _Store:
    """Objects by resource and (namespace, name), the global resourceVersion, change history, watchers."""

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._rv = 1000
        self._history: deque[tuple[int, str, str, Obj, Obj | None]] = deque(maxlen=HISTORY_SIZE)
        self._watchers: set[_Watcher] = set()
        # kind → controller uid → (namespace, name) → object, in creation order: kept on every write, so that
        # finding what an owner controls costs what it owns, not a scan of the kind (1,000 Deployments)
        self._by_owner: dict[str, dict[str, dict[tuple[str, str], Obj]]] = {}
        # ReplicaSets and Deployments whose derived status may have changed since the last refresh: a write
        # marks the object and its controllers, so a refresh recomputes those, not the whole cluster
        self._dirty: dict[str, dict[tuple[str, str], None]] = {
            REPLICA_SETS.plural: {},
            DEPLOYMENTS.plural: {},
        }

    # -- identity

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _suffix(self, length: int = 5) -> str:
        return safe_encode(self._rng.getrandbits(64).to_bytes(8, "big"), length)

    # -- access

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(rt.plural, {})

    def _find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self._bucket(rt).get(((namespace or "") if rt.namespaced else "", name))

    def _all(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        """Objects in creation order (stored objects: never mutate them; copy, change, ``_save``)."""
        return [o for (ns, _), o in self._bucket(rt).items() if namespace is None or ns == namespace]

    # -- writes

    def _save(self, rt: ResourceType, obj: Obj) -> Obj:
        """Store ``obj`` (a fresh dict, owned by the store from now on) with the next resourceVersion."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace", "") if rt.namespaced else ""
        if rt.namespaced and self._find(NAMESPACES, None, namespace) is None:
            self._ensure_namespace(namespace)
        key = (namespace, metadata["name"])
        old = self._bucket(rt).get(key)
        self._rv += 1
        metadata["resourceVersion"] = str(self._rv)
        self._bucket(rt)[key] = obj
        self._index(rt, key, obj, old)
        self._publish(rt, "ADDED" if old is None else "MODIFIED", obj, old)
        return obj

    def _index(self, rt: ResourceType, key: tuple[str, str], obj: Obj | None, old: Obj | None) -> None:
        """Keep the owner index and the dirty marks in step with one write (``obj`` None: deleted)."""
        index = self._by_owner.setdefault(rt.plural, {})
        before = (controller_of(old) or {}).get("uid", "") if old is not None else None
        after = (controller_of(obj) or {}).get("uid", "") if obj is not None else None
        if before is not None and before != after:
            index.get(before, {}).pop(key, None)
        if obj is not None and after is not None:
            index.setdefault(after, {})[key] = obj
        self._mark(rt, key, obj if obj is not None else old)

    def _mark(self, rt: ResourceType, key: tuple[str, str], obj: Obj | None) -> None:
        """Mark ``key`` and its controllers up to the Deployment as needing their status recomputed."""
        while obj is not None:
            if rt.plural in self._dirty:
                self._dirty[rt.plural][key] = None
            ref = controller_of(obj)
            if ref is None or ref.get("kind") not in ("ReplicaSet", "Deployment"):
                return
            rt = REPLICA_SETS if ref["kind"] == "ReplicaSet" else DEPLOYMENTS
            key = (key[0], ref.get("name", ""))
            obj = self._bucket(rt).get(key)
            if obj is None:
                self._dirty[rt.plural][key] = None  # gone: nothing to recompute, harmless to list
                return

    def _ensure_namespace(self, name: str) -> None:
        self._save(NAMESPACES, make_namespace(name, uid=self._uid(), now=now_ts()))

    def _drop(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        key = ((namespace or "") if rt.namespaced else "", name)
        obj = self._bucket(rt).pop(key, None)
        if obj is not None:
            self._index(rt, key, None, obj)
            self._rv += 1
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._publish(rt, "DELETED", gone, obj)
        return obj

    # -- watch

    def _publish(self, rt: ResourceType, type_: str, obj: Obj, old: Obj | None) -> None:
        self._history.append((self._rv, rt.plural, type_, obj, old))
        for watcher in list(self._watchers):
            if watcher.rt is rt and (event := watcher.event_for(type_, obj, old)) is not None:
                watcher.queue.put_nowait(event)

    def _replay(self, watcher: _Watcher, since: int) -> list[tuple[str, Obj]] | None:
        """Events after resourceVersion ``since``; ``None`` if the history no longer reaches back that far."""
        if self._history and since < self._history[0][0] - 1:
            return None
        events = []
        for rv, plural, type_, obj, old in self._history:
            if rv > since and plural == watcher.rt.plural and (event := watcher.event_for(type_, obj, old)):
                events.append(event)
        return events


# ============================================================================================= cluster


class _Cluster(_Store):
    """Controller simulation (Deployments, ReplicaSets, PDB/HPA status, PVC resize) and state helpers."""

    def __init__(self, *, rollout_delay: float, seed: int | None) -> None:
        super().__init__(seed)
        self.rollout_delay = rollout_delay
        self._timers: dict[tuple[str, str, str], asyncio.TimerHandle] = {}
        self._logs: dict[tuple[str, str, str, bool], str] = {}
        self._rs_pod_state: dict[tuple[str, str], str] = {}  # state that new pods of a ReplicaSet start in
        self._fixes_crashloop: dict[tuple[str, str], bool] = {}
        self._ensure_namespace("default")

    # ---------------------------------------------------------------------------------- scheduling

    def _schedule(self, key: tuple[str, str, str], action: Callable[[], None]) -> None:
        """Run ``action`` (then refresh statuses) after ``rollout_delay`` s; replaces a pending one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self.rollout_delay <= 0 or loop is None:
            action()
            self._refresh()
            return
        if (pending := self._timers.pop(key, None)) is not None:
            pending.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            action()
            self._refresh()

        self._timers[key] = loop.call_later(self.rollout_delay, fire)

    def _kick(self, namespace: str, deployment: str) -> None:
        self._schedule(("deployment", namespace, deployment), lambda: self._reconcile(namespace, deployment))

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until no rollout, scaling or resize is pending (``TimeoutError`` after ``timeout`` s)."""
        async with asyncio.timeout(timeout):
            while self._timers:  # noqa: ASYNC110 - timers are loop callbacks, polling them is simplest
                await asyncio.sleep(0.01)

    @property
    def pending(self) -> int:
        """How many controller actions (rollouts, scalings, resizes) are scheduled."""
        return len(self._timers)

    # ---------------------------------------------------------------------------------- ownership

    def _owned(self, rt: ResourceType, owner: Obj) -> list[Obj]:
        """The objects of kind ``rt`` that ``owner`` controls, in creation order (the owner index)."""
        return list(self._by_owner.get(rt.plural, {}).get(owner["metadata"]["uid"], {}).values())

    def _replica_sets(self, dep: Obj) -> list[Obj]:
        return sorted(self._owned(REPLICA_SETS, dep), key=_revision)

    def _deployment_of_pod(self, pod: Obj) -> Obj | None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self._find(REPLICA_SETS, pod["metadata"]["namespace"], ref["name"])
        dep_ref = controller_of(rs) if rs is not None else None
        if dep_ref is None or dep_ref.get("kind") != "Deployment":
            return None
        return self._find(DEPLOYMENTS, pod["metadata"]["namespace"], dep_ref["name"])

    # ---------------------------------------------------------------------------------- deployment controller

    def _reconcile(self, namespace: str, name: str) -> None:
        """One pass of the Deployment controller: roll out the current template, scale, prune history."""
        stored = self._find(DEPLOYMENTS, namespace, name)
        if stored is None:
            return
        dep = copy.deepcopy(stored)
        spec = dep["spec"]
        owned = self._replica_sets(dep)
        newest = owned[-1] if owned else None
        top = _revision(newest) if newest is not None else 0
        pod_hash = template_hash(spec["template"])
        target = next(
            (rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash") == pod_hash), None
        )
        if spec.get("paused") and newest is not None:
            target = newest
        elif target is None:
            target = make_replica_set(dep, pod_hash=pod_hash, revision=top + 1, uid=self._uid(), now=now_ts())
            self._rs_pod_state[(namespace, target["metadata"]["name"])] = self._rollout_state(dep, newest)
            owned.append(target)
        elif target is not newest:  # back to an older template (rollout undo): it becomes the newest revision
            target = copy.deepcopy(target)
            annotations = target["metadata"]["annotations"]
            history = [
                h for h in annotations.get("deployment.kubernetes.io/revision-history", "").split(",") if h
            ]
            annotations["deployment.kubernetes.io/revision-history"] = ",".join(
                [*history, annotations[REVISION]]
            )
            annotations[REVISION] = str(top + 1)
            self._rs_pod_state[(namespace, target["metadata"]["name"])] = self._rollout_state(dep, newest)
            owned = [target if rs["metadata"]["uid"] == target["metadata"]["uid"] else rs for rs in owned]
        desired = spec.get("replicas", 1)
        surge = percent_or_int(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%"),
            desired,
            round_up=True,
        )
        for rs in sorted(
            owned, key=lambda rs: rs["metadata"]["uid"] != target["metadata"]["uid"]
        ):  # new first
            is_target = rs["metadata"]["uid"] == target["metadata"]["uid"]
            updated = copy.deepcopy(rs)
            updated["spec"]["replicas"] = desired if is_target else 0
            annotations = updated["metadata"].setdefault("annotations", {})
            annotations["deployment.kubernetes.io/desired-replicas"] = str(desired)
            annotations["deployment.kubernetes.io/max-replicas"] = str(desired + surge)
            stored_rs = self._find(REPLICA_SETS, namespace, rs["metadata"]["name"])
            if stored_rs is not None and updated["spec"] != stored_rs["spec"]:
                updated["metadata"]["generation"] = stored_rs["metadata"].get("generation", 1) + 1
            if updated != stored_rs:
                self._save(REPLICA_SETS, updated)
            self._sync_pods(updated)
        history_limit = spec.get("revisionHistoryLimit", 10)
        old = [rs for rs in self._replica_sets(dep) if rs["metadata"]["uid"] != target["metadata"]["uid"]]
        for rs in old[: max(len(old) - history_limit, 0)]:
            self._delete_object(REPLICA_SETS, namespace, rs["metadata"]["name"], kick=False)
        dep = copy.deepcopy(self._find(DEPLOYMENTS, namespace, name) or dep)
        dep["metadata"].setdefault("annotations", {})[REVISION] = target["metadata"]["annotations"][REVISION]
        dep.setdefault("status", {})["observedGeneration"] = dep["metadata"].get("generation", 1)
        if dep != self._find(DEPLOYMENTS, namespace, name):
            self._save(DEPLOYMENTS, dep)

    def _rollout_state(self, dep: Obj, previous: Obj | None) -> str:
        """The state a new revision's pods start in: healthy, unless the fault survives rollouts."""
        metadata = dep["metadata"]
        if previous is None or self._fixes_crashloop.get((metadata["namespace"], metadata["name"]), True):
            return "running"
        state = self._rs_pod_state.get((metadata["namespace"], previous["metadata"]["name"]), "running")
        if state != "running":
            return state
        states = [_pod_state(p) for p in self._owned(PODS, previous)]
        return next((s for s in states if s not in {"running", "unready"}), "running")

    def _sync_pods(self, rs: Obj) -> None:
        """Create or delete pods until the ReplicaSet has ``spec.replicas`` of them."""
        namespace, rs_name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        pods = self._owned(PODS, rs)
        want = rs["spec"].get("replicas", 0)
        for _ in range(want - len(pods)):
            self._save(PODS, self._new_pod(rs, self._rs_pod_state.get((namespace, rs_name), "running")))
        if len(pods) > want:
            victims = sorted(reversed(pods), key=pod_is_ready)[
                : len(pods) - want
            ]  # unready first, then newest
            for pod in victims:
                self._delete_object(PODS, namespace, pod["metadata"]["name"], kick=False)

    def _new_pod(self, rs: Obj, state: str) -> Obj:
        namespace = rs["metadata"]["namespace"]
        while True:
            name = f"{rs['metadata']['name']}-{self._suffix()}"
            if self._find(PODS, namespace, name) is None:
                break
        now = now_ts()
        node = self._rng.choice(NODES)
        pod = make_pod(rs, name=name, uid=self._uid(), now=now, node=node)
        set_pod_status(pod, state, now=now, node=node)
        return pod

    # ---------------------------------------------------------------------------------- derived status

    def _refresh(self) -> None:
        """Recompute the status the controllers would report (saved only where it changed).

        Only the ReplicaSets and Deployments a write marked since the last refresh are recomputed (``_mark``:
        an object and its controllers), so a write costs what it touches, not the cluster (setting up 1,000
        Deployments was quadratic); PDBs and HPAs, which select pods by label, are all recomputed."""
        for key in self._take_dirty(REPLICA_SETS):
            rs = self._bucket(REPLICA_SETS).get(key)
            if rs is None:
                continue
            pods = self._owned(PODS, rs)
            ready = sum(pod_is_ready(p) for p in pods)
            status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready}
            status.update(availableReplicas=ready, observedGeneration=rs["metadata"].get("generation", 1))
            self._save_status(REPLICA_SETS, rs, {k: v for k, v in status.items() if v or k == "replicas"})
        for key in self._take_dirty(DEPLOYMENTS):
            dep = self._bucket(DEPLOYMENTS).get(key)
            if dep is not None:
                self._save_status(DEPLOYMENTS, dep, self._deployment_status(dep))
        self._dirty[REPLICA_SETS.plural].clear()  # the status writes above marked themselves
        self._dirty[DEPLOYMENTS.plural].clear()
        for pdb in self._all(PDBS):
            self._save_status(PDBS, pdb, self._pdb_status(pdb))
        for hpa in self._all(HPAS):
            self._save_status(HPAS, hpa, self._hpa_status(hpa))

    def _take_dirty(self, rt: ResourceType) -> list[tuple[str, str]]:
        """The keys of kind ``rt`` marked since the last refresh, in the order they were marked (not creation
        order: sorting would scan the kind again); the marks cleared."""
        keys = list(self._dirty[rt.plural])
        self._dirty[rt.plural].clear()
        return keys

    def _save_status(self, rt: ResourceType, obj: Obj, status: Obj) -> None:
        if obj.get("status") != status:
            updated = copy.deepcopy(obj)
            updated["status"] = status
            self._save(rt, updated)

    def _deployment_status(self, dep: Obj) -> Obj:
        old = dep.get("status") or {}
        owned = self._replica_sets(dep)
        if not owned:
            return old
        newest = owned[-1]
        pods = [p for rs in owned for p in self._owned(PODS, rs)]
        updated = len(self._owned(PODS, newest))
        available = sum(pod_is_ready(p) for p in pods)
        spec = dep["spec"]
        desired = spec.get("replicas", 1)
        max_unavailable = percent_or_int(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%"),
            desired,
            round_up=False,
        )
        rs_name = newest["metadata"]["name"]
        if available >= desired - max_unavailable:
            available_cond = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            available_cond = (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        if spec.get("paused"):
            progressing = ("Unknown", "DeploymentPaused", "Deployment is paused")
        elif updated == desired == available == len(pods):
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        previous = {c["type"]: c for c in old.get("conditions") or []}
        conditions = [
            _deployment_condition(previous.get(type_), type_, *values)
            for type_, values in (("Available", available_cond), ("Progressing", progressing))
        ]
        status: Obj = {
            "observedGeneration": old.get("observedGeneration"),
            "replicas": len(pods),
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0),
            "conditions": conditions,
        }
        return {k: v for k, v in status.items() if v}

    def _pdb_pods(self, pdb: Obj) -> list[Obj]:
        selector = label_selector_from_object(pdb["spec"].get("selector"))
        return [
            p
            for p in self._all(PODS, pdb["metadata"]["namespace"])
            if selector.matches(p["metadata"].get("labels")) and not p["metadata"].get("deletionTimestamp")
        ]

    def _pdb_status(self, pdb: Obj) -> Obj:
        pods = self._pdb_pods(pdb)
        healthy = sum(pod_is_ready(p) for p in pods)
        spec = pdb["spec"]
        if "minAvailable" in spec and not isinstance(spec["minAvailable"], str):
            expected = len(pods)
            desired = int(spec["minAvailable"])
        else:
            scales: dict[str, int] = {}
            expected = 0
            for pod in pods:
                dep = self._deployment_of_pod(pod)
                if dep is None:
                    expected += 1
                else:
                    scales[dep["metadata"]["uid"]] = dep["spec"].get("replicas", 0)
            expected += sum(scales.values())
            if "minAvailable" in spec:
                desired = percent_or_int(spec["minAvailable"], expected, round_up=True)
            else:
                desired = max(
                    expected - percent_or_int(spec.get("maxUnavailable", 0), expected, round_up=True), 0
                )
        allowed = max(healthy - desired, 0)
        old = {c["type"]: c for c in (pdb.get("status") or {}).get("conditions") or []}
        condition = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
        generation = pdb["metadata"].get("generation", 1)
        previous = old.get("DisruptionAllowed")
        transition = (
            previous["lastTransitionTime"] if previous and previous["status"] == condition[0] else now_ts()
        )
        return {
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": condition[0],
                    "observedGeneration": generation,
                    "lastTransitionTime": transition,
                    "reason": condition[1],
                    "message": "",
                }
            ],
        }

    def _hpa_status(self, hpa: Obj) -> Obj:
        ref = hpa["spec"].get("scaleTargetRef") or {}
        target = None
        if ref.get("kind") == "Deployment":
            target = self._find(DEPLOYMENTS, hpa["metadata"]["namespace"], ref.get("name", ""))
        old = hpa.get("status") or {}
        if target is None:
            conditions = [
                (
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    f'deployments/scale.apps "{ref.get("name")}" not found',
                )
            ]
            current = 0
        else:
            conditions = [
                ("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
                (
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count",
                ),
                (
                    "ScalingLimited",
                    "False",
                    "DesiredWithinRange",
                    "the desired count is within the acceptable range",
                ),
            ]
            current = target["spec"].get("replicas", 0)
        low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"].get("maxReplicas", current)
        previous = {c["type"]: c for c in old.get("conditions") or []}
        return {
            "currentReplicas": (target or {}).get("status", {}).get("replicas", 0),
            "desiredReplicas": min(max(current, low), high) if target is not None else 0,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "lastTransitionTime": (previous.get(t) or {}).get("lastTransitionTime", now_ts())
                    if (previous.get(t) or {}).get("status") == s
                    else now_ts(),
                    "reason": r,
                    "message": m,
                }
                for t, s, r, m in conditions
            ],
        }

    # ---------------------------------------------------------------------------------- deletion

    def _delete_object(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        *,
        kick: bool = True,
    ) -> Obj | None:
        """Delete an object and (unless orphaning) what it owns; ``kick``: let the owning Deployment react."""
        obj = self._drop(rt, namespace, name)
        if obj is None:
            return None
        metadata = obj["metadata"]
        if propagation != "Orphan":
            uid = metadata["uid"]
            for child_rt in (REPLICA_SETS, PODS):
                for child in self._all(child_rt, metadata.get("namespace")):
                    if any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or []):
                        self._delete_object(
                            child_rt, child["metadata"]["namespace"], child["metadata"]["name"], kick=False
                        )
        if rt is NAMESPACES:
            for other in (r for r in self._objects if r != NAMESPACES.plural):
                for key in [k for k in self._objects[other] if k[0] == name]:
                    self._drop(resource_by_name(other), *key)
        elif rt is DEPLOYMENTS:
            if (timer := self._timers.pop(("deployment", namespace or "", name), None)) is not None:
                timer.cancel()
        elif rt is PODS:
            for key in [k for k in self._logs if k[:2] == (namespace, name)]:
                del self._logs[key]
        if kick and rt in (PODS, REPLICA_SETS) and (ref := controller_of(obj)) is not None:
            owner = (
                self._find(REPLICA_SETS, namespace, ref["name"]) if ref.get("kind") == "ReplicaSet" else None
            )
            dep_ref = controller_of(owner) if owner is not None else ref
            if (
                dep_ref is not None
                and dep_ref.get("kind") == "Deployment"
                and self._find(DEPLOYMENTS, namespace, dep_ref["name"])
            ):
                self._kick(namespace or "", dep_ref["name"])
        return obj

    # ---------------------------------------------------------------------------------- public helpers

    def _stored_or_raise(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._find(rt, namespace, name)
        if obj is None:
            raise KeyError(f"{rt.qualified} {namespace}/{name} not found")
        return obj

    def _create(self, rt: ResourceType, obj: Obj) -> Obj:
        metadata = obj["metadata"]
        if errors := validate_metadata(obj, namespace_name=rt is NAMESPACES):
            raise ValueError(
                invalid_error(rt.qualified_kind, rt.group, metadata.get("name", ""), errors).message
            )
        if self._find(rt, metadata.get("namespace"), metadata["name"]) is not None:
            raise ValueError(f"{rt.qualified} {metadata.get('namespace')}/{metadata['name']} already exists")
        saved = self._save(rt, obj)
        self._refresh()
        return copy.deepcopy(self._find(rt, metadata.get("namespace"), metadata["name"]) or saved)

    def add_namespace(self, name: str, *, labels: dict[str, str] | None = None) -> Obj:
        """Create a Namespace (namespaces are also created on demand by every ``add_*``)."""
        existing = self._find(NAMESPACES, None, name)
        if existing is not None and not labels:
            return copy.deepcopy(existing)
        namespace = (
            copy.deepcopy(existing) if existing else make_namespace(name, uid=self._uid(), now=now_ts())
        )
        namespace["metadata"]["labels"].update(labels or {})
        if existing is None:
            return self._create(NAMESPACES, namespace)
        return copy.deepcopy(self._save(NAMESPACES, namespace))

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 3,
        labels: dict[str, str] | None = None,
        image: str = "example/app:1",
        containers: list[Obj] | None = None,
        paused: bool = False,
        ready: bool = True,
        state: str | None = None,
        fixes_crashloop: bool = True,
    ) -> Obj:
        """A Deployment with its ReplicaSet (revision 1) and ``replicas`` Pods, already rolled out.

        ``labels`` (default ``{"app.kubernetes.io/name": name}``) are the selector and template labels.
        One container named ``name`` running ``image`` unless ``containers`` (``[{"name", "image"}, ...]``).
        Pods start ``state`` (one of ``POD_STATES``), by default ``running`` (``unready`` if not ``ready``).
        ``fixes_crashloop``: whether pods of a later rollout come up healthy (else they keep the fault).
        """
        if state is None:
            state = "running" if ready else "unready"
        if state not in POD_STATES:
            raise ValueError(f"unknown pod state {state!r}; choose one of {', '.join(POD_STATES)}")
        if validate_replicas(replicas):
            raise ValueError(f"replicas must be >= 0, not {replicas!r}")
        labels = dict(labels or {"app.kubernetes.io/name": name})
        containers = [dict(c) for c in containers] if containers else [{"name": name, "image": image}]
        dep = make_deployment(
            namespace,
            name,
            uid=self._uid(),
            now=now_ts(),
            replicas=replicas,
            labels=labels,
            containers=containers,
            paused=paused,
        )
        if errors := validate_deployment(dep, None):
            raise ValueError(invalid_error("Deployment.apps", "apps", name, errors).message)
        self._fixes_crashloop[(namespace, name)] = fixes_crashloop
        self._create(DEPLOYMENTS, dep)
        rs = make_replica_set(
            dep, pod_hash=template_hash(dep["spec"]["template"]), revision=1, uid=self._uid(), now=now_ts()
        )
        rs["spec"]["replicas"] = replicas
        self._rs_pod_state[(namespace, rs["metadata"]["name"])] = state
        self._save(REPLICA_SETS, rs)
        self._reconcile(namespace, name)  # scales the ReplicaSet up, even when paused
        self._refresh()
        return self.get(DEPLOYMENTS.kind, namespace, name) or {}

    def set_fixes_crashloop(self, namespace: str, name: str, value: bool) -> None:
        """Whether the pods of the next rollouts of this Deployment come up healthy."""
        self._stored_or_raise(DEPLOYMENTS, namespace, name)
        self._fixes_crashloop[(namespace, name)] = value

    def set_pod_state(
        self,
        namespace: str,
        pod_name: str,
        state: str,
        *,
        container: str | None = None,
        restarts: int | None = None,
    ) -> Obj:
        """Put a pod in one of ``POD_STATES``: ``running``, ``unready`` (running, readiness failing),
        ``crashloop`` (waiting CrashLoopBackOff, restartCount + 1 per call unless ``restarts``),
        ``oomkilled`` (crashloop whose lastState.terminated.reason is OOMKilled), ``imagepull``
        (waiting ImagePullBackOff), ``pending`` (unschedulable).  ``container``: only that container.
        """
        pod = copy.deepcopy(self._stored_or_raise(PODS, namespace, pod_name))
        if container is not None and container not in {c["name"] for c in pod["spec"]["containers"]}:
            raise KeyError(f"pod {namespace}/{pod_name} has no container {container!r}")
        set_pod_status(
            pod,
            state,
            now=now_ts(),
            node=pod["spec"].get("nodeName") or self._rng.choice(NODES),
            containers={container} if container else None,
            restarts=restarts,
        )
        self._save(PODS, pod)
        self._refresh()
        return copy.deepcopy(pod)

    def set_deployment_pods_state(
        self,
        namespace: str,
        name: str,
        state: str,
        *,
        container: str | None = None,
        restarts: int | None = None,
    ) -> list[Obj]:
        """``set_pod_state`` on every pod of the Deployment; replacement pods of its current ReplicaSet
        (after a pod deletion or scale-up) start in ``state`` too."""
        dep = self._stored_or_raise(DEPLOYMENTS, namespace, name)
        if state not in POD_STATES:
            raise ValueError(f"unknown pod state {state!r}; choose one of {', '.join(POD_STATES)}")
        for rs in self._replica_sets(dep)[-1:]:
            self._rs_pod_state[(namespace, rs["metadata"]["name"])] = state
        for pod in self.pods_of(namespace, name):
            self.set_pod_state(
                namespace, pod["metadata"]["name"], state, container=container, restarts=restarts
            )
        return self.pods_of(namespace, name)

    def pods_of(self, namespace: str, deployment: str) -> list[Obj]:
        """The Deployment's pods (all its ReplicaSets), oldest first."""
        dep = self._stored_or_raise(DEPLOYMENTS, namespace, deployment)
        uids = {rs["metadata"]["uid"] for rs in self._replica_sets(dep)}
        return [
            copy.deepcopy(p)
            for p in self._all(PODS, namespace)
            if (controller_of(p) or {}).get("uid") in uids
        ]

    def replica_sets_of(self, namespace: str, deployment: str) -> list[Obj]:
        """The Deployment's ReplicaSets, by revision (the current one last)."""
        return copy.deepcopy(self._replica_sets(self._stored_or_raise(DEPLOYMENTS, namespace, deployment)))

    def add_event(
        self,
        namespace: str,
        *,
        involved_kind: str,
        involved_name: str,
        reason: str,
        message: str,
        type: str = "Warning",
        count: int = 1,
        component: str | None = None,
        last_timestamp: str | None = None,
    ) -> Obj:
        """A core/v1 Event about ``involved_kind``/``involved_name`` (with its uid if that object exists)."""
        now = now_ts()
        try:
            involved_rt: ResourceType | None = resource_by_name(involved_kind)
        except KeyError:
            involved_rt = None
        involved = self._find(involved_rt, namespace, involved_name) if involved_rt else None
        reference: Obj = {
            "kind": involved_kind,
            "namespace": namespace,
            "name": involved_name,
            "uid": involved["metadata"]["uid"] if involved else "",
            "apiVersion": involved_rt.api_version if involved_rt else "v1",
            "resourceVersion": involved["metadata"]["resourceVersion"] if involved else "",
        }
        if involved_kind == "Pod" and involved:
            reference["fieldPath"] = f"spec.containers{{{involved['spec']['containers'][0]['name']}}}"
        component = component or (
            "kubelet" if involved_kind == "Pod" else f"{involved_kind.lower()}-controller"
        )
        node = (involved or {}).get("spec", {}).get("nodeName") if involved_kind == "Pod" else None
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": new_metadata(namespace, f"{involved_name}.{secrets.token_hex(8)}", self._uid(), now),
            "involvedObject": {k: v for k, v in reference.items() if v},
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": node} if node else {})},
            "firstTimestamp": last_timestamp or now,
            "lastTimestamp": last_timestamp or now,
            "count": count,
            "type": type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": node or "",
        }
        return self._create(EVENTS, event)

    def set_logs(
        self, namespace: str, pod: str, text: str, *, container: str | None = None, previous: bool = False
    ) -> None:
        """What ``pods/log`` returns for the pod's ``container`` (default: its first container)."""
        stored = self._stored_or_raise(PODS, namespace, pod)
        names = [c["name"] for c in stored["spec"]["containers"]]
        container = container or names[0]
        if container not in names:
            raise KeyError(f"pod {namespace}/{pod} has no container {container!r}")
        self._logs[(namespace, pod, container, previous)] = text

    def add_network_policy(self, namespace: str, name: str, spec: Obj) -> Obj:
        obj = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": new_metadata(namespace, name, self._uid(), now_ts(), generation=1),
            "spec": copy.deepcopy(spec),
        }
        return self._create(NETWORK_POLICIES, obj)

    def add_storage_class(
        self, name: str, *, allow_expansion: bool = True, provisioner: str = "csi.example.com"
    ) -> Obj:
        obj = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": new_metadata(None, name, self._uid(), now_ts()),
            "provisioner": provisioner,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": allow_expansion,
        }
        return self._create(STORAGE_CLASSES, obj)

    def add_pvc(
        self,
        namespace: str,
        name: str,
        *,
        storage: str = "10Gi",
        storage_class: str = "standard",
        phase: str = "Bound",
    ) -> Obj:
        """A PersistentVolumeClaim (bound: with its volume and ``status.capacity``)."""
        parse_quantity(storage)
        uid = self._uid()
        annotations = {"volume.kubernetes.io/storage-provisioner": "csi.example.com"}
        spec: Obj = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage}},
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
        }
        status: Obj = {"phase": phase}
        if phase == "Bound":
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            spec["volumeName"] = f"pvc-{uid}"
            status.update(accessModes=["ReadWriteOnce"], capacity={"storage": storage})
        obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": new_metadata(
                namespace,
                name,
                uid,
                now_ts(),
                annotations=annotations,
                finalizers=["kubernetes.io/pvc-protection"],
            ),
            "spec": spec,
            "status": status,
        }
        return self._create(PVCS, obj)

    def add_hpa(
        self,
        namespace: str,
        name: str,
        *,
        target_kind: str = "Deployment",
        target_name: str,
        min_replicas: int = 1,
        max_replicas: int = 10,
        cpu_utilization: int = 80,
    ) -> Obj:
        obj = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": new_metadata(namespace, name, self._uid(), now_ts()),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target_name},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": cpu_utilization},
                        },
                    }
                ],
            },
            "status": {},
        }
        return self._create(HPAS, obj)

    def add_pdb(
        self,
        namespace: str,
        name: str,
        *,
        selector: dict[str, Any],
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
    ) -> Obj:
        """A PodDisruptionBudget; ``selector`` is ``matchLabels`` or a full LabelSelector; exactly one of
        ``min_available`` / ``max_unavailable`` (an int or a percentage string)."""
        if (min_available is None) == (max_unavailable is None):
            raise ValueError("give exactly one of min_available and max_unavailable")
        if set(selector) <= {"matchLabels", "matchExpressions"} and selector:
            label_selector: Obj = copy.deepcopy(selector)
        else:
            label_selector = {"matchLabels": dict(selector)}
        label_selector_from_object(label_selector)
        spec: Obj = {"selector": label_selector}
        if min_available is not None:
            spec["minAvailable"] = min_available
        else:
            spec["maxUnavailable"] = max_unavailable
        obj = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": new_metadata(namespace, name, self._uid(), now_ts(), generation=1),
            "spec": spec,
            "status": {},
        }
        return self._create(PDBS, obj)

    def put(self, obj: Obj) -> Obj:
        """Store an arbitrary object of a served kind as-is (created or replaced; server fields filled in)."""
        rt = resource_by_name(obj["kind"])
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = rt.api_version
        metadata = obj.setdefault("metadata", {})
        existing = self._find(rt, metadata.get("namespace"), metadata["name"])
        base = (existing or {}).get("metadata", {})
        metadata.setdefault("uid", base.get("uid") or self._uid())
        metadata.setdefault("creationTimestamp", base.get("creationTimestamp") or now_ts())
        if rt.generation:
            metadata.setdefault("generation", base.get("generation", 1))
        self._save(rt, obj)
        if rt is DEPLOYMENTS:
            self._kick(metadata.get("namespace", ""), metadata["name"])
        self._refresh()
        return self.get(rt.kind, metadata.get("namespace"), metadata["name"]) or {}

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """A copy of the stored object (``kind``: ``Deployment``, ``deployments``, ``deploy``...), or None."""
        obj = self._find(resource_by_name(kind), namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        """Copies of all stored objects of ``kind`` (in ``namespace``), in creation order."""
        return copy.deepcopy(self._all(resource_by_name(kind), namespace))

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete like the API would (cascading to owned objects); False if there was no such object."""
        deleted = self._delete_object(resource_by_name(kind), namespace, name) is not None
        self._refresh()
        return deleted


def _deployment_condition(previous: Obj | None, type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_ts()
    unchanged = previous is not None and previous["status"] == status
    same_reason = unchanged and previous is not None and previous.get("reason") == reason
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": previous["lastUpdateTime"] if same_reason and previous else now,
        "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else now,
        "reason": reason,
        "message": message,
    }


# ============================================================================================= HTTP


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.body(), error.code, error.headers)


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _decode(raw: bytes, what: str = "body") -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"error decoding {what}: {exc}") from None


BODY_MEDIA = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json, application/yaml"
)


def _decode_body(request: web.Request, raw: bytes) -> Any:
    """A create/update body: JSON or YAML; 415 for anything else (protobuf, CBOR: not implemented)."""
    content_type = (request.content_type or "").lower()
    if content_type in {"application/json", "application/octet-stream", ""}:
        return _decode(raw)
    if content_type == "application/yaml":
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding body: {exc}") from None
    raise ApiError(415, BODY_MEDIA, details={})


def _strip_kind(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in {"apiVersion", "kind"}}


def _flag(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it."""
    return value in {"1", "t", "T", "true", "TRUE", "True"}


def _dry_run(request: web.Request) -> bool:
    return bool(request.query.getall("dryRun", []))


class KubeStandin(_Cluster):
    """The API stand-in: an aiohttp server on 127.0.0.1 plus the in-memory cluster it serves.

    Attributes: ``url``, ``port``, ``token`` (every request needs ``Authorization: Bearer <token>``),
    ``requests`` (``RequestRecord`` list), ``rollout_delay``, ``tls``, ``ca_pem``.

    TLS is on by default (a self-signed certificate for 127.0.0.1, trusted through the kubeconfig's
    ``certificate-authority-data``): kubectl/client-go never sends a bearer token to an ``http://`` server.
    ``tls=False`` serves plain http (fine for kubernetes_asyncio, useless for kubectl).
    """

    def __init__(
        self,
        *,
        rollout_delay: float = 0.2,
        token: str | None = None,
        seed: int | None = 0,
        host: str = HOST,
        tls: bool = True,
    ) -> None:
        super().__init__(rollout_delay=rollout_delay, seed=seed)
        self.token = token or secrets.token_urlsafe(24)
        self.host = host
        self.tls = tls
        self.port: int | None = None
        self.requests: list[RequestRecord] = []
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._paused: set[asyncio.Task[Any]] = set()  # handlers sleeping in a delay(); stop() ends them
        self._runner: web.AppRunner | None = None

    # ---------------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("KubeStandin is not started")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> str:
        """The server certificate (its own CA), PEM."""
        text = TLS_PEM.read_text()
        return (
            text[text.index("-----BEGIN CERTIFICATE-----") : text.index("-----END CERTIFICATE-----") + 25]
            + "\n"
        )

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting this server, for plain HTTP clients (aiohttp ``ssl=``)."""
        return ssl.create_default_context(cadata=self.ca_pem)

    async def start(self) -> Self:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        ssl_context = None
        if self.tls:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(TLS_PEM)
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        # a client that timed out has gone, so the server no longer waits for its handler: end it here
        paused, self._paused = self._paused, set()
        for task in paused:
            task.cancel()
        await asyncio.gather(*paused, return_exceptions=True)
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """A kubeconfig for this server (bearer token, CA data when TLS) with ``namespace`` as the default."""
        cluster: Obj = {"server": self.url}
        if self.tls:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem.encode()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": cluster}],
            "users": [{"name": "standin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "standin",
                    "context": {"cluster": "standin", "user": "standin", "namespace": namespace},
                }
            ],
            "current-context": "standin",
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ---------------------------------------------------------------------------------- request log, faults

    def writes(self) -> list[RequestRecord]:
        """Requests other than GET, in order."""
        return [r for r in self.requests if r.method != "GET"]

    def clear_requests(self) -> None:
        self.requests.clear()

    def fail_next(
        self,
        method: str | None,
        path_regex: str,
        status: int,
        times: int | None = 1,
        *,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        apply: bool = False,
    ) -> None:
        """Answer the next ``times`` (None: all) requests matching ``method`` (None or "*": any) and
        ``path_regex`` (``re.search`` on the path) with a ``status`` Status (429/503/504 get Retry-After: 1).

        ``apply=True`` processes the request first (the write happens) and then fails the response.
        """
        wanted = None if method in {None, "*"} else method.upper()  # type: ignore[union-attr]
        self._faults.append(
            _Fault(wanted, re.compile(path_regex), status, times, message, headers or {}, apply)
        )

    def delay(
        self, path_regex: str, seconds: float, *, method: str | None = None, times: int | None = None
    ) -> None:
        """Hold matching requests ``seconds`` before handling them (for ``times`` requests; None: all)."""
        wanted = None if method in {None, "*"} else method.upper()  # type: ignore[union-attr]
        self._delays.append(_Delay(wanted, re.compile(path_regex), seconds, times))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._delays.clear()

    def _take(self, rules: list[Any], method: str, path: str) -> Any:
        for rule in rules:
            if rule.method not in {None, method} or not rule.pattern.search(path):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.remove(rule)
            return rule
        return None

    # ---------------------------------------------------------------------------------- dispatch

    async def _pause(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._paused.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._paused.discard(task)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            content_type=request.headers.get("Content-Type"),
            body=_parse_json(raw),
            user_agent=request.headers.get("User-Agent", ""),
        )
        self.requests.append(record)
        response: web.StreamResponse
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized")
            pause = self._take(self._delays, request.method, request.path)
            if pause is not None:
                await self._pause(pause.seconds)
            fault = self._take(self._faults, request.method, request.path)
            if fault is not None and not fault.apply:
                raise fault.error()
            response = await self._route(request, raw, record)
            if fault is not None:
                response = _error_response(fault.error())
        except ApiError as exc:
            response = _error_response(exc)
        except Exception as exc:
            log.exception("kube stand-in failed on %s %s", request.method, request.path)
            response = _error_response(
                ApiError(500, f"Internal error occurred: {exc!r}", "InternalError", {})
            )
        record.status = response.status
        return response

    async def _route(self, request: web.Request, raw: bytes, record: RequestRecord) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) <= 3 and request.method == "GET":
            discovery = self._discovery(parts)
            if discovery is not None:
                return discovery
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return web.Response(status=404, text="404 page not found\n")
        if not rest:
            raise ApiError(405, "the server does not allow this method on the requested resource", details={})
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace: str | None = rest[1]
            plural, name, sub, extra = rest[2], *[*rest[3:6], None, None, None][:3]
        else:
            namespace = None
            plural, name, sub, extra = rest[0], *[*rest[1:4], None, None, None][:3]
        rt = resource_for(group, version, plural)
        if rt is None or extra is not None or (not rt.namespaced and namespace is not None):
            raise not_found_path()
        if rt.namespaced and namespace is None and (name is not None or request.method != "GET"):
            if name is None:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource", details={}
                )
            raise not_found_path()
        return await self._resource(request, raw, record, rt, namespace, name, sub)

    def _discovery(self, parts: list[str]) -> web.StreamResponse | None:
        body: Obj | None = None
        if parts == ["version"]:
            body = KUBE_VERSION
        elif parts == ["api"]:
            body = api_versions(f"{self.host}:{self.port}")
        elif parts == ["apis"]:
            body = api_group_list()
        elif parts == ["api", "v1"]:
            body = api_resource_list("", "v1")
        elif len(parts) == 2 and parts[0] == "apis":
            body = api_group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            body = api_resource_list(parts[1], parts[2])
        elif len(parts) == 1 and parts[0] in {"healthz", "readyz", "livez"}:
            return web.Response(text="ok")
        else:
            return None
        if body is None:
            raise not_found_path()
        return _json_response(body)

    async def _resource(
        self,
        request: web.Request,
        raw: bytes,
        record: RequestRecord,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        sub: str | None,
    ) -> web.StreamResponse:
        method = request.method
        not_allowed = ApiError(
            405, "the server does not allow this method on the requested resource", details={}
        )
        if name is None:
            if method == "GET":
                if _flag(request.query.get("watch")):
                    return await self._watch(request, record, rt, namespace)
                return self._list(request, rt, namespace)
            if method == "POST":
                return _json_response(self._http_create(request, rt, namespace, raw, _dry_run(request)), 201)
            raise not_allowed
        if sub is None:
            if method == "GET":
                return self._maybe_table(request, rt, [self._get_or_404(rt, namespace, name)], single=True)
            if method == "PUT":
                return _json_response(self._http_replace(request, rt, namespace, name, raw))
            if method == "PATCH":
                return _json_response(self._http_patch(request, rt, namespace, name, raw))
            if method == "DELETE":
                return self._http_delete(request, rt, namespace, name, raw)
            raise not_allowed
        handler = {
            ("pods", "log", "GET"): self._http_log,
            ("pods", "eviction", "POST"): self._http_evict,
            ("deployments", "scale", "GET"): self._http_scale,
            ("deployments", "scale", "PATCH"): self._http_scale,
            ("deployments", "scale", "PUT"): self._http_scale,
        }.get((rt.plural, sub, method))
        if handler is not None:
            return handler(request, rt, namespace or "", name, raw)
        if sub == "status" and any(s.name == "status" for s in rt.subresources):
            if method == "GET":
                return _json_response(self._get_or_404(rt, namespace, name))
            raise not_allowed
        if any(s.name == sub for s in rt.subresources):
            raise not_allowed
        raise not_found_path()

    # ---------------------------------------------------------------------------------- reads

    def _get_or_404(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._find(rt, namespace, name)
        if obj is None:
            raise rt.not_found(name)
        return obj

    def _selectors(self, request: web.Request, rt: ResourceType) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = parse_label_selector(request.query.get("labelSelector"))
            fields = parse_field_selector(request.query.get("fieldSelector"), rt.fields)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return labels, fields

    def _list(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.StreamResponse:
        labels, fields = self._selectors(request, rt)
        items = [
            o
            for o in self._all(rt, namespace)
            if labels.matches(o["metadata"].get("labels")) and fields.matches(o)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        metadata: Obj = {"resourceVersion": str(self._rv)}
        if token := request.query.get("continue"):
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())))
            except ValueError:
                raise bad_request("continue key is not valid: invalid token") from None
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        limit = int(request.query.get("limit") or 0)
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            key = json.dumps([last.get("namespace", ""), last["name"]]).encode()
            metadata["continue"] = base64.urlsafe_b64encode(key).decode()
            if not request.query.get("labelSelector") and not request.query.get("fieldSelector"):
                metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if "as=Table" in request.headers.get("Accept", ""):
            return self._maybe_table(request, rt, items, single=False)
        body = {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata}
        body["items"] = [_strip_kind(o) for o in items]
        return _json_response(body)

    def _maybe_table(
        self, request: web.Request, rt: ResourceType, objects: list[Obj], *, single: bool
    ) -> web.StreamResponse:
        if "as=Table" in request.headers.get("Accept", ""):
            include = request.query.get("includeObject", "Metadata")
            return _json_response(to_table(rt, objects, str(self._rv), include_object=include))
        return _json_response(objects[0] if single else objects)

    async def _watch(
        self, request: web.Request, record: RequestRecord, rt: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        labels, fields = self._selectors(request, rt)
        watcher = _Watcher(rt, namespace, labels, fields)
        since = request.query.get("resourceVersion", "")
        if since in {"", "0"}:
            initial: list[tuple[str, Obj]] | None = [
                ("ADDED", o)
                for o in self._all(rt, namespace)
                if labels.matches(o["metadata"].get("labels")) and fields.matches(o)
            ]
        else:
            try:
                initial = self._replay(watcher, int(since))
            except ValueError:
                raise bad_request(
                    f'resourceVersion: Invalid value: "{since}": must be a valid integer'
                ) from None
        self._watchers.add(watcher)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await response.prepare(request)
            record.status = 200
            if initial is None:
                gone = status_failure(410, f"too old resource version: {since} ({self._rv})", "Expired")
                await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                return response
            for event in initial:
                await response.write(json.dumps({"type": event[0], "object": event[1]}).encode() + b"\n")
            timeout = float(request.query.get("timeoutSeconds") or 1800)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                await response.write(json.dumps({"type": event[0], "object": event[1]}).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # ---------------------------------------------------------------------------------- writes

    def _http_create(
        self, request: web.Request, rt: ResourceType, namespace: str | None, raw: bytes, dry_run: bool
    ) -> Obj:
        body = _decode_body(request, raw)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be of type " + rt.kind + ")")
        if body.get("kind") not in {None, rt.kind}:
            raise bad_request(f"the kind of the provided object ({body['kind']}) does not match {rt.kind}")
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if metadata.get("namespace") not in {None, "", namespace}:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            metadata["namespace"] = namespace
            if self._find(NAMESPACES, None, namespace or "") is None:
                raise NAMESPACES.not_found(namespace or "")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = f"{metadata['generateName']}{self._suffix()}"
        name = metadata.get("name") or ""
        if rt is DEPLOYMENTS:
            errors = validate_deployment(default_deployment(obj), None)  # metadata included
        else:
            errors = validate_metadata(obj, namespace_name=rt is NAMESPACES)
        if rt is PODS:
            errors += validate_pod_spec(obj.get("spec"), "spec")
        if errors:
            raise rt.invalid(name, errors)
        if self._find(rt, namespace, name) is not None:
            raise rt.already_exists(name)
        for server_field in ("resourceVersion", "deletionTimestamp", "managedFields"):
            metadata.pop(server_field, None)
        metadata.update(uid=self._uid(), creationTimestamp=now_ts())
        if rt.generation:
            metadata["generation"] = 1
        if rt.status_subresource:
            obj["status"] = {}
        if rt is PODS:
            default_pod_spec(obj["spec"])
            node = obj["spec"].get("nodeName") or self._rng.choice(NODES)
            set_pod_status(obj, "running", now=metadata["creationTimestamp"], node=node)
        elif rt is NAMESPACES:
            obj = make_namespace(
                name, uid=metadata["uid"], now=metadata["creationTimestamp"], labels=metadata.get("labels")
            )
        if dry_run:
            return obj
        self._save(rt, obj)
        if rt is DEPLOYMENTS:
            self._kick(namespace or "", name)
        self._refresh()
        return copy.deepcopy(self._get_or_404(rt, namespace, name))

    def _http_replace(
        self, request: web.Request, rt: ResourceType, namespace: str | None, name: str, raw: bytes
    ) -> Obj:
        body = _decode_body(request, raw)
        if not isinstance(body, dict):
            raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind})")
        if body.get("kind") not in {None, rt.kind}:
            raise bad_request(f"the kind of the provided object ({body['kind']}) does not match {rt.kind}")
        old = self._get_or_404(rt, namespace, name)
        return self._write(rt, old, copy.deepcopy(body), dry_run=_dry_run(request))

    def _apply_patch(self, request: web.Request, target: Obj, raw: bytes) -> Any:
        content_type = (request.content_type or "").lower()
        patcher = PATCH_TYPES.get(content_type)
        if patcher is None:
            raise ApiError(415, UNSUPPORTED_MEDIA, details={})
        patch = _decode(raw, "patch")
        try:
            patched = patcher(copy.deepcopy(target), patch)
        except PatchError as exc:
            raise ApiError(exc.code, str(exc), details={}) from None
        if not isinstance(patched, dict):
            raise ApiError(422, "the patch did not produce an object", details={})
        return patched

    def _http_patch(
        self, request: web.Request, rt: ResourceType, namespace: str | None, name: str, raw: bytes
    ) -> Obj:
        old = self._get_or_404(rt, namespace, name)
        patched = self._apply_patch(request, old, raw)
        return self._write(rt, old, patched, dry_run=_dry_run(request))

    def _write(self, rt: ResourceType, old: Obj, new: Obj, *, dry_run: bool) -> Obj:
        """The common path of update and patch: concurrency check, server fields, validation, generation."""
        old_meta = old["metadata"]
        name, namespace = old_meta["name"], old_meta.get("namespace")
        metadata = new.get("metadata")
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        if metadata.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and metadata.get("namespace", namespace) not in {namespace, ""}:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if metadata.get("resourceVersion") and metadata["resourceVersion"] != old_meta["resourceVersion"]:
            raise rt.conflict(name)
        if metadata.get("uid") and metadata["uid"] != old_meta["uid"]:
            raise ApiError(
                409,
                f"Precondition failed: UID in precondition: {metadata['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
                "Conflict",
                rt.details(name),
            )
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        metadata["name"] = name
        if namespace is not None:
            metadata["namespace"] = namespace
        for server_field in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "resourceVersion",
        ):
            if server_field in old_meta:
                metadata[server_field] = old_meta[server_field]
            else:
                metadata.pop(server_field, None)
        if rt.status_subresource:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self._validate_update(rt, old, new)
        spec_changed = _spec_part(old) != _spec_part(new)
        if rt.generation and spec_changed:
            metadata["generation"] = old_meta.get("generation", 1) + 1
        if new == old or dry_run:
            return copy.deepcopy(new)
        self._save(rt, new)
        if rt is DEPLOYMENTS:  # the controller syncs on every update (e.g. restores its annotations)
            self._kick(namespace or "", name)
        elif rt is PVCS:
            self._after_pvc_update(old, new)
        self._refresh()
        return copy.deepcopy(self._get_or_404(rt, namespace, name))

    def _validate_update(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        name = old["metadata"]["name"]
        errors: list[FieldError] = []
        if rt is DEPLOYMENTS:
            default_deployment(new)
            errors = validate_deployment(new, old)
        elif rt is PODS:
            errors = validate_metadata(new)
            images = (("spec", "containers"), ("spec", "initContainers"))

            def masked(pod: Obj) -> Obj:
                spec = copy.deepcopy(pod.get("spec") or {})
                for _, key in images:
                    for container in spec.get(key) or []:
                        if isinstance(container, dict):
                            container.pop("image", None)
                spec.pop("activeDeadlineSeconds", None)
                spec.pop("tolerations", None)
                return spec

            if masked(old) != masked(new):
                errors.append(
                    FieldError(
                        "spec",
                        "Forbidden",
                        "pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                        "(allow it to be set to 1 if it was previously negative)",
                    )
                )
        elif rt is PVCS:
            errors = validate_metadata(new) + self._pvc_errors(old, new)
        else:
            errors = validate_metadata(new)
        if errors:
            raise rt.invalid(name, errors)

    def _pvc_errors(self, old: Obj, new: Obj) -> list[FieldError]:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        immutable = FieldError(
            "spec",
            "Forbidden",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName "
            "for bound claims",
        )

        def without_requests(spec: Obj) -> Obj:
            return _without(spec, ("resources", "requests"), ("volumeAttributesClassName",))

        if _prune_empty(without_requests(old_spec)) != _prune_empty(without_requests(new_spec)):
            return [immutable]
        old_size = ((old_spec.get("resources") or {}).get("requests") or {}).get("storage")
        new_size = ((new_spec.get("resources") or {}).get("requests") or {}).get("storage")
        if old_size == new_size:
            return []
        if (old.get("status") or {}).get("phase") != "Bound":
            return [immutable]
        path = "spec.resources.requests.storage"
        try:
            wanted = parse_quantity(new_size)
        except ValueError as exc:
            return [FieldError(path, "Invalid", str(exc), new_size)]
        capacity = ((old.get("status") or {}).get("capacity") or {}).get("storage", old_size)
        if wanted < parse_quantity(capacity):
            return [FieldError(path, "Forbidden", "field can not be less than status.capacity")]
        storage_class = self._find(STORAGE_CLASSES, None, new_spec.get("storageClassName") or "")
        if storage_class is None or not storage_class.get("allowVolumeExpansion"):
            raise PVCS.forbidden(
                old["metadata"]["name"],
                "only dynamically provisioned pvc can be resized and "
                "the storageclass that provisions the pvc must support resize",
            )
        return []

    def _after_pvc_update(self, old: Obj, new: Obj) -> None:
        size = ((new["spec"].get("resources") or {}).get("requests") or {}).get("storage")
        if size == ((old["spec"].get("resources") or {}).get("requests") or {}).get("storage"):
            return
        namespace, name = new["metadata"]["namespace"], new["metadata"]["name"]

        def resized() -> None:
            pvc = copy.deepcopy(self._find(PVCS, namespace, name))
            if pvc is None:
                return
            wanted = pvc["spec"]["resources"]["requests"]["storage"]
            pvc["status"]["capacity"] = {"storage": wanted}
            pvc["status"]["allocatedResources"] = {"storage": wanted}
            self._save(PVCS, pvc)

        self._schedule(("pvc", namespace, name), resized)

    def _http_delete(
        self, request: web.Request, rt: ResourceType, namespace: str | None, name: str, raw: bytes
    ) -> web.StreamResponse:
        obj = self._get_or_404(rt, namespace, name)
        options = _decode(raw) if raw.strip() else {}
        if not isinstance(options, dict):
            raise bad_request("DeleteOptions must be an object")
        preconditions = options.get("preconditions") or {}
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if preconditions.get(key) and preconditions[key] != obj["metadata"][key]:
                raise ApiError(
                    409,
                    f"Precondition failed: {label} in precondition: {preconditions[key]}, "
                    f"{label} in object meta: {obj['metadata'][key]}",
                    "Conflict",
                    rt.details(name),
                )
        propagation = (
            options.get("propagationPolicy") or request.query.get("propagationPolicy") or "Background"
        )
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        result = copy.deepcopy(obj)
        if not (_dry_run(request) or options.get("dryRun")):
            self._delete_object(rt, namespace, name, propagation)
            self._refresh()
        if rt is PODS:
            grace = options.get("gracePeriodSeconds", request.query.get("gracePeriodSeconds"))
            grace = int(grace) if grace is not None else obj["spec"].get("terminationGracePeriodSeconds", 30)
            result["metadata"]["deletionTimestamp"] = now_ts()
            result["metadata"]["deletionGracePeriodSeconds"] = grace
            return _json_response(result)
        details = rt.details(name, uid=obj["metadata"]["uid"])
        return _json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    # ---------------------------------------------------------------------------------- subresources

    def _http_scale(
        self, request: web.Request, rt: ResourceType, namespace: str, name: str, raw: bytes
    ) -> web.StreamResponse:
        dep = self._get_or_404(DEPLOYMENTS, namespace, name)
        if request.method == "GET":
            return _json_response(make_scale(dep))
        scale = (
            self._apply_patch(request, make_scale(dep), raw)
            if request.method == "PATCH"
            else _decode_body(request, raw)
        )
        if not isinstance(scale, dict):
            raise bad_request("the object provided is unrecognized (must be of type Scale)")
        metadata = scale.get("metadata") or {}
        if metadata.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
            )
        if (
            metadata.get("resourceVersion")
            and metadata["resourceVersion"] != dep["metadata"]["resourceVersion"]
        ):
            raise DEPLOYMENTS.conflict(name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if errors := validate_replicas(replicas):
            raise invalid_error("Scale.autoscaling", "autoscaling", name, errors)
        updated = copy.deepcopy(dep)
        updated["spec"]["replicas"] = replicas
        saved = self._write(DEPLOYMENTS, dep, updated, dry_run=_dry_run(request))
        return _json_response(make_scale(saved))

    def _http_log(
        self, request: web.Request, rt: ResourceType, namespace: str, name: str, raw: bytes
    ) -> web.StreamResponse:
        pod = self._get_or_404(PODS, namespace, name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container")
        if container is None:
            if len(names) > 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        previous = _flag(request.query.get("previous"))
        statuses = {cs["name"]: cs for cs in (pod.get("status") or {}).get("containerStatuses") or []}
        status = statuses.get(container) or {}
        text = self._logs.get((namespace, name, container, previous))
        if previous and text is None:
            if not (status.get("lastState") or {}).get("terminated"):
                raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            text = ""
        elif text is None:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if (
                pod["spec"].get("nodeName")
                and waiting
                and not status.get("lastState")
                and not status.get("restartCount")
            ):
                why = (
                    "trying and failing to pull image"
                    if waiting.get("reason") == "ImagePullBackOff"
                    else waiting.get("reason", "ContainerCreating")
                )
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
            text = ""
        if (tail := request.query.get("tailLines")) is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail) :]) if int(tail) > 0 else ""
        if (limit := request.query.get("limitBytes")) is not None:
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return web.Response(text=text, content_type="text/plain")

    def _http_evict(
        self, request: web.Request, rt: ResourceType, namespace: str, name: str, raw: bytes
    ) -> web.StreamResponse:
        body = _decode_body(request, raw)
        if not isinstance(body, dict) or body.get("kind") not in {None, "Eviction"}:
            raise bad_request("the object provided is unrecognized (must be of type Eviction)")
        if (body.get("metadata") or {}).get("name", name) != name:
            raise bad_request("name in URL does not match name in Eviction object")
        pod = self._get_or_404(PODS, namespace, name)
        labels = pod["metadata"].get("labels")
        budgets = [
            pdb
            for pdb in self._all(PDBS, namespace)
            if label_selector_from_object(pdb["spec"].get("selector")).matches(labels)
        ]
        if len(budgets) > 1:
            raise ApiError(
                500,
                "This pod has more than one PodDisruptionBudget, "
                "which the eviction subresource does not support.",
                "InternalError",
                {},
            )
        phase = (pod.get("status") or {}).get("phase")
        if budgets and phase not in {"Pending", "Succeeded", "Failed"}:
            pdb = budgets[0]
            status = self._pdb_status(pdb)
            healthy, desired = status["currentHealthy"], status["desiredHealthy"]
            always = pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
            if pod_is_ready(pod):
                allowed = status["disruptionsAllowed"] > 0
            else:
                allowed = always or (healthy >= desired and desired > 0)
            if not allowed:
                raise ApiError(
                    429,
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    "TooManyRequests",
                    {
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb['metadata']['name']} needs {desired} "
                                f"healthy pods and has {healthy} currently",
                            }
                        ]
                    },
                )
        if not (_dry_run(request) or (body.get("deleteOptions") or {}).get("dryRun")):
            self._delete_object(PODS, namespace, name)
            self._refresh()
        return _json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )


def _prune_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_empty(v) for k, v in value.items() if v not in (None, {}, [])}
    return value
