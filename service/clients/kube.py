"""Kubernetes adapter over kubernetes-asyncio: every Kubernetes HTTP call of the service goes through here.

Returns API-shaped dicts (camelCase, as ``kubectl get -o json`` shows them) so that probes and actions
read one format and unit tests can fake this class at our own boundary. Translates ``ApiException`` and
transport errors: 404 → ``NotFound``, 409 → ``Conflict``, 429/5xx → ``Transient`` (with Retry-After),
other 4xx → ``Permanent``; timeouts and connection errors → ``Transient``. Probes use the read section;
only remediation actions call the write section (patch, scale, evict, delete a pod, patch a claim), one
request per call, never retried here. An eviction refused by a PodDisruptionBudget is ``errors.Blocked``.

kubernetes-asyncio (~60 MB of generated models) is imported when a client is first built, never when this
module is: a service without Kubernetes configured never loads it. Requests carry
``User-Agent: remediator/<version>`` and go through the proxy the environment names (``NO_PROXY`` honoured),
like every outbound request of the service (``clients.sessions``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import orjson

from service import USER_AGENT, errors
from service.model import retry

if TYPE_CHECKING:
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

T = TypeVar("T")

#: the patch content types (kubernetes-asyncio would pick strategic merge for any dict body)
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class NotFound(errors.Permanent):
    """The object does not exist (HTTP 404)."""


class Conflict(errors.Transient):
    """The object changed since it was read (HTTP 409): read again and retry."""


class KubeClient:
    def __init__(self, api: client.ApiClient) -> None:
        from kubernetes_asyncio import client

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
        if kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return None
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if kubeconfig is not None:
            await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        # kubernetes-asyncio opens its own aiohttp session, with trust_env (HTTPS_PROXY / NO_PROXY) on
        api = client.ApiClient(configuration)
        api.user_agent = USER_AGENT
        return cls(api)

    async def close(self) -> None:
        await self._api.close()

    def plain(self, obj: Any) -> Any:
        """A kubernetes-asyncio model as the API's JSON (camelCase dicts and lists)."""
        return self._api.sanitize_for_serialization(obj)

    async def call(
        self, what: str, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float, **kwargs: Any
    ) -> T:
        """Run one API call with a timeout, translating every failure to our errors."""
        from kubernetes_asyncio.client.exceptions import ApiException  # loaded already: ``__init__`` did

        try:
            return await fn(*args, _request_timeout=timeout, **kwargs)
        except ApiException as exc:
            raise translate(exc, what) from exc
        except TimeoutError as exc:
            raise errors.Transient(f"Kubernetes API timed out ({what})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.Transient(f"Kubernetes API unreachable ({what}): {type(exc).__name__}") from exc

    async def _items(
        self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """The ``items`` of a list call, as API-shaped dicts."""
        return list((await self._json(what, fn, *args, timeout=timeout, **kwargs)).get("items") or [])

    async def _json(
        self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float, **kwargs: Any
    ) -> dict[str, Any]:
        """A call's JSON body as API-shaped dicts, parsed with orjson. kubernetes-asyncio's models are
        skipped: building them (and their datetimes) and turning them back into dicts cost more than the
        request itself under a storm (docs/performance.md)."""
        body = await self._raw(what, fn, *args, timeout=timeout, _preload_content=False, **kwargs)
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise errors.Transient(f"Kubernetes API sent invalid JSON ({what})") from exc
        return value if isinstance(value, dict) else {}

    async def _raw(
        self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float, **kwargs: Any
    ) -> bytes:
        """The body of an unpreloaded call (``_preload_content=False``), its status checked here:
        kubernetes-asyncio hands back the raw response of any status when it does not preload."""
        from kubernetes_asyncio.client.exceptions import ApiException

        response: Any = await self.call(what, fn, *args, timeout=timeout, **kwargs)
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
        return body

    # -- reads -----------------------------------------------------------------------------------------

    async def list_pods(self, namespace: str, selector: str, *, timeout: float) -> list[dict[str, Any]]:
        return await self._items(
            f"list pods {namespace} -l {selector}",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            timeout=timeout,
        )

    async def read_deployment(self, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
        return await self._json(
            f"get deployment {namespace}/{name}",
            self.apps.read_namespaced_deployment,
            name,
            namespace,
            timeout=timeout,
        )

    async def list_replicasets(
        self, namespace: str, selector: str, *, timeout: float
    ) -> list[dict[str, Any]]:
        return await self._items(
            f"list replicasets {namespace}",
            self.apps.list_namespaced_replica_set,
            namespace,
            label_selector=selector,
            timeout=timeout,
        )

    async def list_events(
        self, namespace: str, *, field_selector: str, timeout: float
    ) -> list[dict[str, Any]]:
        return await self._items(
            f"list events {namespace}",
            self.core.list_namespaced_event,
            namespace,
            field_selector=field_selector,
            timeout=timeout,
        )

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
        body = await self._raw(
            what, self.core.read_namespaced_pod_log, pod, namespace, timeout=timeout, **kwargs
        )
        return body.decode("utf-8", errors="replace")

    async def list_hpas(self, namespace: str, *, timeout: float) -> list[dict[str, Any]]:
        return await self._items(
            f"list hpa {namespace}",
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
            timeout=timeout,
        )

    async def list_network_policies(self, namespace: str, *, timeout: float) -> list[dict[str, Any]]:
        return await self._items(
            f"list networkpolicies {namespace}",
            self.networking.list_namespaced_network_policy,
            namespace,
            timeout=timeout,
        )

    async def list_pvcs(self, namespace: str, *, timeout: float) -> list[dict[str, Any]]:
        return await self._items(
            f"list pvc {namespace}",
            self.core.list_namespaced_persistent_volume_claim,
            namespace,
            timeout=timeout,
        )

    async def read_storage_class(self, name: str, *, timeout: float) -> dict[str, Any]:
        return await self._json(
            f"get storageclass {name}", self.storage.read_storage_class, name, timeout=timeout
        )

    # -- writes (only remediation actions call these; each one request, errors translated) ---------

    async def patch_deployment(
        self,
        namespace: str,
        name: str,
        body: dict[str, Any] | list[dict[str, Any]],
        *,
        timeout: float,
        content_type: str = STRATEGIC_MERGE,
    ) -> dict[str, Any]:
        """PATCH the Deployment (strategic merge unless ``content_type`` says merge or JSON patch)."""
        return await self._json(
            f"patch deployment {namespace}/{name}",
            self.apps.patch_namespaced_deployment,
            name,
            namespace,
            body,
            timeout=timeout,
            _content_type=content_type,
        )

    async def read_deployment_scale(self, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
        return await self._json(
            f"get deployment {namespace}/{name} scale",
            self.apps.read_namespaced_deployment_scale,
            name,
            namespace,
            timeout=timeout,
        )

    async def patch_deployment_scale(
        self, namespace: str, name: str, replicas: int, *, timeout: float
    ) -> dict[str, Any]:
        """``spec.replicas`` through the scale subresource, by the merge patch ``kubectl scale`` sends."""
        return await self._json(
            f"scale deployment {namespace}/{name} --replicas={replicas}",
            self.apps.patch_namespaced_deployment_scale,
            name,
            namespace,
            scale_patch(replicas),
            timeout=timeout,
            _content_type=MERGE,
        )

    async def evict_pod(self, namespace: str, pod: str, *, timeout: float) -> dict[str, Any]:
        """POST a ``policy/v1`` Eviction: the API deletes the pod only if its PodDisruptionBudget allows.

        A refusal by a budget (429 with a ``DisruptionBudget`` cause, or the 500 the API answers for a pod
        under several budgets) is ``errors.Blocked("pdb", <the API's message>)``. Never falls back to DELETE.
        """
        from kubernetes_asyncio.client.exceptions import ApiException

        what = f"evict pod {namespace}/{pod}"
        try:
            result = await self.call(
                what,
                self.core.create_namespaced_pod_eviction,
                pod,
                namespace,
                eviction_body(namespace, pod),
                timeout=timeout,
            )
        except errors.RemediatorError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and _is_budget_refusal(cause):
                raise errors.Blocked("pdb", _budget_message(cause)) from cause
            raise
        return dict(self.plain(result) or {})

    async def delete_pod(
        self, namespace: str, pod: str, *, grace_period_seconds: int | None, timeout: float
    ) -> dict[str, Any]:
        """DELETE one pod (``grace_period_seconds=0`` is ``kubectl delete --force --grace-period=0``)."""
        result = await self.call(
            f"delete pod {namespace}/{pod}",
            self.core.delete_namespaced_pod,
            pod,
            namespace,
            body=delete_options(grace_period_seconds),
            timeout=timeout,
        )
        return dict(self.plain(result) or {})

    async def patch_pvc(
        self,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        timeout: float,
        content_type: str = STRATEGIC_MERGE,
    ) -> dict[str, Any]:
        result = await self.call(
            f"patch pvc {namespace}/{name}",
            self.core.patch_namespaced_persistent_volume_claim,
            name,
            namespace,
            body,
            timeout=timeout,
            _content_type=content_type,
        )
        return dict(self.plain(result))


def scale_patch(replicas: int) -> dict[str, Any]:
    """The body ``kubectl scale`` sends to the scale subresource (a merge patch)."""
    return {"spec": {"replicas": replicas}}


def eviction_body(namespace: str, pod: str) -> dict[str, Any]:
    """The ``policy/v1`` Eviction that ``kubectl drain`` posts."""
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}


def delete_options(grace_period_seconds: int | None) -> dict[str, Any]:
    """The DeleteOptions ``kubectl delete`` sends (``--grace-period``, background cascading)."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    body["propagationPolicy"] = "Background"
    return body


def _is_budget_refusal(exc: ApiException) -> bool:
    """A 429 that names a disruption budget (not API throttling), or the several-budgets 500."""
    status = int(exc.status or 0)
    text = _status_message(exc).lower()
    if status == 429:
        body = _status_body(exc)
        causes = ((body.get("details") or {}).get("causes") or []) if body else []
        return "disruption budget" in text or any(c.get("reason") == "DisruptionBudget" for c in causes)
    return status == 500 and "poddisruptionbudget" in text


def _budget_message(exc: ApiException) -> str:
    """The API's message, with its causes ("The disruption budget web needs 2 healthy pods…")."""
    body = _status_body(exc)
    causes = ((body.get("details") or {}).get("causes") or []) if body else []
    details = [str(c.get("message")) for c in causes if c.get("message")]
    return "; ".join([_status_message(exc), *details])[:500]


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
        delay = retry.retry_after(headers.get("Retry-After"), now=time.time())
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


def _status_body(exc: ApiException) -> dict[str, Any]:
    """The API's ``Status`` answer as a dict (empty when the body is not one)."""
    import json

    try:
        body = json.loads(exc.body) if exc.body else {}
    except (ValueError, TypeError):
        body = {}
    return body if isinstance(body, dict) else {}
