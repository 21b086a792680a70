"""The real Kubernetes client connected to the API stand-in through a kubeconfig, alone or in a ``Clients``
hub (with a Prometheus client when a test has a Prometheus)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from service.clients.http import HttpClient
from service.clients.hub import Clients
from service.clients.kube import KubeClient
from service.clients.prometheus import PrometheusClient


@contextlib.asynccontextmanager
async def connect_kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    """A KubeClient for ``kubeconfig`` (TLS and token from it), closed on exit."""
    kube = await KubeClient.connect(kubeconfig)
    assert kube is not None
    try:
        yield kube
    finally:
        await kube.close()


@contextlib.asynccontextmanager
async def kube_clients(kubeconfig: Path, *, prometheus_url: str | None = None) -> AsyncIterator[Clients]:
    """Clients with a KubeClient for ``kubeconfig`` and, given its URL, a Prometheus client."""
    async with connect_kube(kubeconfig) as kube, aiohttp.ClientSession() as session:
        prometheus = PrometheusClient(session, prometheus_url) if prometheus_url is not None else None
        yield Clients(http=HttpClient(session), kube=kube, prometheus=prometheus)


async def release(kubeconfig: Path, namespace: str, name: str, image: str) -> None:
    """Roll Deployment ``name`` to a new ``image`` through the real client (a new revision a human may undo)."""
    template = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
    async with connect_kube(kubeconfig) as kube:
        await kube.patch_deployment(namespace, name, template, timeout=5)
