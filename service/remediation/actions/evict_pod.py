"""``kube.evict_pod`` (safe-capable): evict one pod of the target through the Eviction API.

Params: ``pod`` (optional; it must be one of the target's pods). By default the worst pod of the target is
chosen: not ready first, then the most restarts, then the oldest — among pods that are not ready or have
restarted; the target's pods are those of its selector, else of the Deployment's ``matchLabels``.
Posts a ``policy/v1`` Eviction, so the API server honours the pod's PodDisruptionBudget; the owning
controller then creates a replacement.

Refuses: no selector for the target, or one without a ``key=value`` requirement; a ``pod`` that is not one of
the target's pods; no pod that is not ready or has restarted (nothing to fix by evicting); a pod already
terminating; with the rule's ``quorum: Q``, a ready pod while fewer than Q + 1 pods are ready. A budget that
does not allow the disruption is ``errors.Blocked("pdb", <the API's message>)``.
Result: ``pod``, ``node``, ``ready``, ``restarts``.
Never DELETEs a pod, never retries an eviction the budget refused, never evicts a pod of another workload.
"""

from __future__ import annotations

from typing import Any

from service.clients import kube as kube_client
from service.clients import kube_fields
from service.matching import names
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, Params, Request, action


class EvictPodParams(Params):
    pod: names.Name | None = None


def worst(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The pod to evict: not ready first, then most restarts, then oldest; only unhealthy ones."""
    unhealthy = [p for p in candidates if not kube_fields.is_ready(p) or kube_fields.restarts(p) > 0]
    if not unhealthy:
        return None
    return min(
        unhealthy,
        key=lambda p: (
            kube_fields.is_ready(p),
            -kube_fields.restarts(p),
            str((p.get("metadata") or {}).get("creationTimestamp") or ""),
        ),
    )


async def check(ctx: ActionContext, params: EvictPodParams) -> dict[str, Any]:
    """The pod to evict, if there is one within the blast radius; else refused."""
    kube = common.kube_of(ctx)
    selector, found = await common.target_pods(ctx, kube)
    if params.pod is not None:
        chosen = next((p for p in found if kube_fields.name(p) == params.pod), None)
        if chosen is None:
            raise common.refuse(f"pod {params.pod} is not one of {ctx.target.key}'s pods ({selector})")
    else:
        chosen = worst([p for p in found if not common.terminating(p)])
        if chosen is None:
            raise common.refuse(
                f"all {len(found)} pods of {ctx.target.key} are ready and never restarted: nothing to evict"
            )
    if common.terminating(chosen):
        raise common.refuse(f"pod {kube_fields.name(chosen)} is already terminating")
    if kube_fields.is_ready(chosen):  # evicting an unready pod takes no ready member down
        await common.check_quorum(ctx, kube, "an eviction")
    return chosen


async def preflight(ctx: ActionContext, params: EvictPodParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action("kube.evict_pod", EvictPodParams, safe_capable=True, preflight=preflight)
async def evict_pod(ctx: ActionContext, params: EvictPodParams) -> Outcome:
    kube = common.kube_of(ctx)
    chosen = await check(ctx, params)
    namespace, pod = ctx.target.namespace, kube_fields.name(chosen)
    request = Request(
        "POST",
        common.eviction_path(namespace, pod),
        kube_client.eviction_body(namespace, pod),
        "application/json",
    )
    facts = {
        "pod": pod,
        "node": (chosen.get("spec") or {}).get("nodeName"),
        "ready": kube_fields.is_ready(chosen),
        "restarts": kube_fields.restarts(chosen),
    }
    state = f"{'ready' if facts['ready'] else 'not ready'}, {facts['restarts']} restarts"
    if ctx.dry_run:
        return common.dry_run(f"evict pod {namespace}/{pod} ({state})", [request], **facts)
    await kube.evict_pod(namespace, pod, timeout=ctx.timeout_s)  # a PDB refusal raises Blocked("pdb")
    summary = f"evicted pod {namespace}/{pod} ({state}); its controller replaces it"
    return Outcome(ok=True, summary=summary, requests=[request], result=facts)


ACTIONS = (evict_pod,)
