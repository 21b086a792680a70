"""Reading Kubernetes objects as the adapter returns them (API-shaped dicts): names, owners, pod state.

Pure functions, shared by the kube probes (``diagnosis.kube``) and the actions (``remediation.actions``),
which both sit above this adapter. Never calls the API and never changes an object.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def owned_by(obj: dict[str, Any], kind: str, names: str | Collection[str], uid: str | None = None) -> bool:
    """Whether ``obj``'s controller is a ``kind`` named ``names`` (one, or any of several), with ``uid``."""
    wanted = {names} if isinstance(names, str) else set(names)
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and ref.get("name") in wanted:
            return uid is None or ref.get("uid") == uid
    return False


def selector_from_match_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


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
