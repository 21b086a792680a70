"""Shared reading of Kubernetes objects for the kube probes (pure functions over API-shaped dicts)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Annotated, Any

from pydantic import AfterValidator

from service.clients.kube import KubeClient
from service.diagnosis.base import Observation, ProbeContext
from service.matching import names


def _valid(check: Any) -> Any:
    def validate(value: str) -> str:
        problem = check(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(validate)


#: A label selector param (``app=x,tier!=db``), validated like a target selector before any API call.
Selector = Annotated[str, _valid(names.check_selector)]
#: A DNS-1123 name param (a PVC, a container), validated before it reaches a Kubernetes path.
Name = Annotated[str, _valid(names.check_dns1123_subdomain)]

NOT_CONFIGURED = Observation("skipped", "Kubernetes is not configured (REMEDIATOR_KUBECONFIG or in-cluster)")


def kube_of(ctx: ProbeContext) -> KubeClient | None:
    return ctx.clients.kube


def selector_from_match_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


async def pod_selector(kube: KubeClient, ctx: ProbeContext) -> tuple[str, dict[str, Any] | None]:
    """The target's pod selector — the rule's, else the Deployment's ``matchLabels`` — and the Deployment."""
    deployment = None
    if ctx.target.kind == "Deployment":
        deployment = await kube.read_deployment(ctx.target.namespace, ctx.target.name, timeout=ctx.timeout_s)
    if ctx.target.selector:
        return ctx.target.selector, deployment
    labels = ((deployment or {}).get("spec", {}).get("selector", {}) or {}).get("matchLabels") or {}
    if not labels:
        raise ValueError(f"no pod selector for {ctx.target.key}: set target.selector in the rule")
    return selector_from_match_labels(labels), deployment


def container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def restarts(pod: dict[str, Any]) -> int:
    return sum(int(c.get("restartCount") or 0) for c in container_statuses(pod))


def waiting_reason(pod: dict[str, Any]) -> str | None:
    for status in container_statuses(pod):
        waiting = (status.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return None


def last_terminated_reason(pod: dict[str, Any]) -> str | None:
    for status in container_statuses(pod):
        terminated = (status.get("lastState") or {}).get("terminated")
        if terminated and terminated.get("reason"):
            return str(terminated["reason"])
    return None


def pod_level_reason(pod: dict[str, Any]) -> str | None:
    """Why the pod itself is stuck when no container says: ``Evicted``, ``Unschedulable``… (else None)."""
    status = pod.get("status") or {}
    if status.get("reason"):
        return str(status["reason"])
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("reason") or "Unschedulable")
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    statuses = container_statuses(pod)
    return bool(statuses) and all(c.get("ready") for c in statuses)


def phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Unknown")


def promql_one_of(values: Iterable[str]) -> str:
    """The inside of a PromQL ``=~"…"`` string matching exactly one of ``values``: regex-escaped, then
    escaped for the PromQL string literal (PromQL rejects a bare ``\\-`` as an invalid escape)."""
    pattern = "|".join(re.escape(value) for value in sorted(set(values)))
    return pattern.replace("\\", "\\\\").replace('"', '\\"')


def name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def owned_by(obj: dict[str, Any], kind: str, names: str | Collection[str], uid: str | None = None) -> bool:
    """Whether ``obj``'s controller is a ``kind`` named ``names`` (one, or any of several), with ``uid``."""
    wanted = {names} if isinstance(names, str) else set(names)
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and ref.get("name") in wanted:
            return uid is None or ref.get("uid") == uid
    return False
