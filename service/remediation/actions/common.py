"""What the actions share: API paths, reading the target, the checks, dry-run outcomes (reads only).

Kubernetes paths are built from the validated target and validated params only. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pydantic import Field

from service import errors
from service.clients import kube_fields
from service.clients.kube import KubeClient
from service.clients.postgres import PostgresConnector
from service.remediation.base import ActionContext, Outcome, Params, Request

GUARD = "preflight"
REVISION = "deployment.kubernetes.io/revision"


def refuse(reason: str) -> errors.Blocked:
    """The error a failed check raises (``preflight`` returns its reason instead)."""
    return errors.Blocked(GUARD, reason)


async def refusal(check: Awaitable[object]) -> str | None:
    """Run a check; its refusal reason, or None when it passes (other errors propagate)."""
    try:
        await check
    except errors.Blocked as exc:
        return exc.reason
    return None


def dry_run(summary: str, requests: list[Request], **result: Any) -> Outcome:
    return Outcome(ok=True, summary=f"dry-run: would {summary}", requests=requests, result=result, sent=False)


# -- Kubernetes -----------------------------------------------------------------------------------------


def kube_of(ctx: ActionContext) -> KubeClient:
    if not ctx.target.valid:
        raise errors.Permanent(f"invalid target: {ctx.target.error or ctx.target.key}")
    if ctx.clients.kube is None:
        raise errors.Permanent("Kubernetes is not configured (REMEDIATOR_KUBECONFIG or in-cluster)")
    return ctx.clients.kube


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def scale_path(namespace: str, name: str) -> str:
    return f"{deployment_path(namespace, name)}/scale"


def pod_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}"


def eviction_path(namespace: str, pod: str) -> str:
    return f"{pod_path(namespace, pod)}/eviction"


def pvc_path(namespace: str, claim: str) -> str:
    return f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"


async def target_deployment(ctx: ActionContext, kube: KubeClient) -> dict[str, Any]:
    """The target Deployment; refused when the target is another kind."""
    if ctx.target.kind != "Deployment":
        raise refuse(f"target is a {ctx.target.kind}, not a Deployment")
    return await kube.read_deployment(ctx.target.namespace, ctx.target.name, timeout=ctx.timeout_s)


def replicas(deployment: dict[str, Any]) -> int:
    return int((deployment.get("spec") or {}).get("replicas", 1) or 0)


def generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def check_not_paused(deployment: dict[str, Any]) -> None:
    if (deployment.get("spec") or {}).get("paused"):
        raise refuse(f"deployment {kube_fields.name(deployment)} is paused (kubectl rollout resume first)")


def check_no_rollout(deployment: dict[str, Any]) -> None:
    """Refuse while a rollout is in progress; a crashloop with every pod already updated is not one."""
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    wanted = replicas(deployment)
    if observed < generation(deployment):
        raise refuse(
            f"a rollout is in progress (observedGeneration {observed} < generation {generation(deployment)})"
        )
    if updated < wanted:
        raise refuse(f"a rollout is in progress ({updated} of {wanted} replicas updated)")


def hpa_owner(hpas: list[dict[str, Any]], deployment: str) -> str | None:
    """The name of an HPA whose scaleTargetRef is this Deployment, else None."""
    for hpa in hpas:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == "Deployment" and ref.get("name") == deployment:
            return kube_fields.name(hpa)
    return None


def check_narrow(selector: str) -> None:
    """Refuse a selector with no equality requirement (``app!=x`` selects nearly everything)."""
    for requirement in selector.split(","):
        if "=" in requirement and "!=" not in requirement:
            return
    raise refuse(f"selector {selector!r} has no key=value requirement: it would select nearly every pod")


async def target_pods(ctx: ActionContext, kube: KubeClient) -> tuple[str, list[dict[str, Any]]]:
    """The target's selector — the rule's, else the Deployment's matchLabels — and its pods."""
    selector = ctx.target.selector
    if not selector and ctx.target.kind == "Deployment":
        deployment = await kube.read_deployment(ctx.target.namespace, ctx.target.name, timeout=ctx.timeout_s)
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = kube_fields.selector_from_match_labels(labels) if labels else None
    if not selector:
        raise refuse(f"no pod selector for {ctx.target.key}: set target.selector in the rule")
    check_narrow(selector)
    pods = await kube.list_pods(ctx.target.namespace, selector, timeout=ctx.timeout_s)
    return selector, pods


def terminating(pod: dict[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


async def check_quorum(ctx: ActionContext, kube: KubeClient, doing: str) -> None:
    """Refuse ``doing`` (``a rolling restart``) on a consensus workload (``ctx.quorum`` set) while fewer than
    quorum + 1 of its pods are ready: taking one down then loses quorum. A terminating pod is not ready."""
    if ctx.quorum is None:
        return
    _selector, pods = await target_pods(ctx, kube)
    ready = sum(1 for p in pods if kube_fields.is_ready(p) and not terminating(p))
    needed = ctx.quorum + 1
    if ready < needed:
        raise refuse(
            f"{ctx.target.name}: {ready} of {len(pods)} pods ready; quorum {ctx.quorum} needs {needed} ready "
            f"before {doing} takes one down"
        )


# -- PostgreSQL -----------------------------------------------------------------------------------------


class PostgresParams(Params):
    """Where to connect, when not where the DSN says (credentials always come from settings)."""

    host: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = Field(None, min_length=1, max_length=63)


def connector_of(ctx: ActionContext) -> PostgresConnector:
    if ctx.clients.postgres is None:
        raise errors.Permanent("PostgreSQL is not configured (REMEDIATOR_MONITOR_POSTGRES_DSN)")
    return ctx.clients.postgres


def sql_request(connector: PostgresConnector, params: PostgresParams, sql: str, args: list[Any]) -> Request:
    """A SQL statement as a ``Request``: method ``SQL``, the server as ``postgresql://host:port/db``."""
    where = connector.describe(host=params.host, port=params.port, database=params.database)
    return Request(
        method="SQL", path=f"postgresql://{where}", body={"sql": " ".join(sql.split()), "args": args}
    )
