"""Kubernetes adapter over kubernetes-asyncio: every Kubernetes HTTP call of the service goes through here.

Returns API-shaped dicts (camelCase, as ``kubectl get -o json`` shows them) so that probes and actions
read one format and unit tests can fake this class at our own boundary. Translates ``ApiException`` and
transport errors: 404 → ``NotFound``, 409 → ``Conflict``, 429/5xx → ``Transient`` (with Retry-After),
other 4xx → ``Permanent``; timeouts and connection errors → ``Transient``. Reads only in this module's
read section; the writes (patch, scale, evict) are added with the actions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from service import errors

T = TypeVar("T")


class NotFound(errors.Permanent):
    """The object does not exist (HTTP 404)."""


class Conflict(errors.Transient):
    """The object changed since it was read (HTTP 409): read again and retry."""


class KubeClient:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.policy = client.PolicyV1Api(api)

    @classmethod
    async def connect(cls, kubeconfig: Path | None) -> KubeClient | None:
        """From a kubeconfig file, else the in-cluster service account, else None (not configured)."""
        configuration = client.Configuration()
        if kubeconfig is not None:
            await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            return None
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self._api.close()

    def plain(self, obj: Any) -> Any:
        """A kubernetes-asyncio model as the API's JSON (camelCase dicts and lists)."""
        return self._api.sanitize_for_serialization(obj)

    async def call(
        self, what: str, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float, **kwargs: Any
    ) -> T:
        """Run one API call with a timeout, translating every failure to our errors."""
        try:
            return await fn(*args, _request_timeout=timeout, **kwargs)
        except ApiException as exc:
            raise translate(exc, what) from exc
        except TimeoutError as exc:
            raise errors.Transient(f"Kubernetes API timed out ({what})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.Transient(f"Kubernetes API unreachable ({what}): {type(exc).__name__}") from exc

    # -- reads -----------------------------------------------------------------------------------------

    async def list_pods(self, namespace: str, selector: str, *, timeout: float) -> list[dict[str, Any]]:
        result = await self.call(
            f"list pods {namespace} -l {selector}",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            timeout=timeout,
        )
        return list(self.plain(result).get("items", []))

    async def read_deployment(self, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
        result = await self.call(
            f"get deployment {namespace}/{name}",
            self.apps.read_namespaced_deployment,
            name,
            namespace,
            timeout=timeout,
        )
        return dict(self.plain(result))

    async def list_replicasets(
        self, namespace: str, selector: str, *, timeout: float
    ) -> list[dict[str, Any]]:
        result = await self.call(
            f"list replicasets {namespace}",
            self.apps.list_namespaced_replica_set,
            namespace,
            label_selector=selector,
            timeout=timeout,
        )
        return list(self.plain(result).get("items", []))

    async def list_events(
        self, namespace: str, *, field_selector: str, timeout: float
    ) -> list[dict[str, Any]]:
        result = await self.call(
            f"list events {namespace}",
            self.core.list_namespaced_event,
            namespace,
            field_selector=field_selector,
            timeout=timeout,
        )
        return list(self.plain(result).get("items", []))

    async def read_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        previous: bool,
        tail_lines: int,
        limit_bytes: int,
        timeout: float,
    ) -> str:
        """The log tail as text (read raw: a single JSON line would otherwise come back as a repr)."""
        kwargs: dict[str, Any] = {
            "previous": previous,
            "tail_lines": tail_lines,
            "limit_bytes": limit_bytes,
            "_preload_content": False,
        }
        if container:
            kwargs["container"] = container
        what = (
            f"logs {namespace}/{pod}"
            + (f" -c {container}" if container else "")
            + (" --previous" if previous else "")
        )
        response: Any = await self.call(
            what, self.core.read_namespaced_pod_log, pod, namespace, timeout=timeout, **kwargs
        )
        # unpreloaded, kubernetes-asyncio hands back the raw response of any status: check it here
        try:
            body: bytes = await response.read()
        except TimeoutError as exc:
            raise errors.Transient(f"Kubernetes API timed out ({what})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.Transient(f"Kubernetes API unreachable ({what}): {type(exc).__name__}") from exc
        finally:
            response.release()
        if not 200 <= response.status <= 299:
            failure = ApiException(status=response.status, reason=response.reason)
            failure.body = body
            failure.headers = response.headers
            raise translate(failure, what)
        return body.decode("utf-8", errors="replace")

    async def list_hpas(self, namespace: str, *, timeout: float) -> list[dict[str, Any]]:
        result = await self.call(
            f"list hpa {namespace}",
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
            timeout=timeout,
        )
        return list(self.plain(result).get("items", []))

    async def list_network_policies(self, namespace: str, *, timeout: float) -> list[dict[str, Any]]:
        result = await self.call(
            f"list networkpolicies {namespace}",
            self.networking.list_namespaced_network_policy,
            namespace,
            timeout=timeout,
        )
        return list(self.plain(result).get("items", []))

    async def list_pvcs(self, namespace: str, *, timeout: float) -> list[dict[str, Any]]:
        result = await self.call(
            f"list pvc {namespace}",
            self.core.list_namespaced_persistent_volume_claim,
            namespace,
            timeout=timeout,
        )
        return list(self.plain(result).get("items", []))

    async def read_storage_class(self, name: str, *, timeout: float) -> dict[str, Any]:
        result = await self.call(
            f"get storageclass {name}", self.storage.read_storage_class, name, timeout=timeout
        )
        return dict(self.plain(result))


def translate(exc: ApiException, what: str) -> errors.RemediatorError:
    """Our error for a Kubernetes API error answer, with the API's own message."""
    status = int(exc.status or 0)
    message = f"Kubernetes API {status} ({what}): {_status_message(exc)}"
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message, delay=0.0)
    if status == 429 or status >= 500:
        headers: Any = exc.headers or {}
        retry = headers.get("Retry-After")
        try:
            delay = float(retry) if retry else None
        except ValueError:
            delay = None
        return errors.Transient(message, delay=delay)
    return errors.Permanent(message)


def _status_message(exc: ApiException) -> str:
    import json

    try:
        body = json.loads(exc.body) if exc.body else {}
    except (ValueError, TypeError):
        body = {}
    text = body.get("message") if isinstance(body, dict) else None
    return str(text or exc.reason or "error")[:300]
