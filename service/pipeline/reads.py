"""The Kubernetes reads one incident opening shares between its diagnosis and its guards' preflight.

The opening reads the target Deployment in the ``kube.pods`` probe (its pod selector) and again, a few ms
later, in the blast-radius preflight of the restart it may plan. ``OpeningKube`` answers the second read from
the first: one GET per target and opening instead of two (the storm's ~1,000 openings). Only the diagnosis
and the preflight see it; the action itself re-reads the Deployment fresh right before it writes (its own
``check``), and verification probes read fresh, so nothing that writes ever acts on a shared read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from service.clients.hub import Clients
from service.clients.kube import KubeClient


class OpeningKube(KubeClient):
    """A ``KubeClient`` whose ``read_deployment`` is read once per (namespace, name) for its lifetime (one
    opening); each caller gets its own copy. Every other call goes to the API as usual."""

    def __init__(self, inner: KubeClient) -> None:  # shares the inner client's API objects (no new session)
        self.__dict__.update(inner.__dict__)
        self._deployments: dict[tuple[str, str], bytes] = {}

    async def read_deployment(self, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
        key = (namespace, name)
        if key not in self._deployments:
            self._deployments[key] = orjson.dumps(
                await super().read_deployment(namespace, name, timeout=timeout)
            )
        found: dict[str, Any] = orjson.loads(self._deployments[key])
        return found


def for_opening(clients: Clients) -> Clients:
    """``clients`` with a Kubernetes client shared by one opening's diagnosis and preflight."""
    if clients.kube is None:
        return clients
    return dataclasses.replace(clients, kube=OpeningKube(clients.kube))
