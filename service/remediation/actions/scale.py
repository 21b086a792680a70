"""``kube.scale`` (safe-capable): scale the target Deployment up, never down, never past ``max``.

Params: ``replicas`` (wanted), ``max`` (hard ceiling). Scales to ``min(replicas, max)`` through the scale
subresource with the merge patch ``kubectl scale`` sends (``{"spec": {"replicas": N}}``).

Refuses: a target that is not a Deployment; a Deployment that an HPA targets (the HPA owns its scale and would
undo ours); a current scale already at or above ``max``; ``replicas`` below the current scale (never scales
down); ``replicas`` equal to it ("already at N").
Result: ``from``, ``to`` (spec.replicas read back from the scale subresource's answer).
Never scales down, never touches the HPA, never patches the Deployment object itself.
"""

from __future__ import annotations

from pydantic import Field

from service.clients import kube as kube_client
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, Params, Request, action


class ScaleParams(Params):
    replicas: int = Field(ge=1, le=1000)
    max: int = Field(ge=1, le=1000)


async def check(ctx: ActionContext, params: ScaleParams) -> tuple[int, int]:
    """``(current, to)`` when scaling up is within the blast radius; else refused."""
    kube = common.kube_of(ctx)
    if ctx.target.kind != "Deployment":
        raise common.refuse(f"target is a {ctx.target.kind}, not a Deployment")
    namespace, name = ctx.target.namespace, ctx.target.name
    owner = common.hpa_owner(await kube.list_hpas(namespace, timeout=ctx.timeout_s), name)
    if owner is not None:
        raise common.refuse(f"HorizontalPodAutoscaler {owner} owns the scale of deployment {name}")
    scale = await kube.read_deployment_scale(namespace, name, timeout=ctx.timeout_s)
    current = int((scale.get("spec") or {}).get("replicas") or 0)
    if current >= params.max:
        raise common.refuse(
            f"deployment {name} is already at {current} replicas, at or above max {params.max}"
        )
    if params.replicas < current:
        raise common.refuse(
            f"deployment {name} has {current} replicas: scaling to {params.replicas} would scale down, "
            "which kube.scale never does"
        )
    if params.replicas == current:
        raise common.refuse(f"deployment {name} is already at {current} replicas")
    return current, min(params.replicas, params.max)


async def preflight(ctx: ActionContext, params: ScaleParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action("kube.scale", ScaleParams, safe_capable=True, preflight=preflight)
async def scale(ctx: ActionContext, params: ScaleParams) -> Outcome:
    kube = common.kube_of(ctx)
    current, to = await check(ctx, params)
    namespace, name = ctx.target.namespace, ctx.target.name
    request = Request(
        "PATCH", common.scale_path(namespace, name), kube_client.scale_patch(to), kube_client.MERGE
    )
    what = f"scale deployment {namespace}/{name} from {current} to {to} replicas"
    if ctx.dry_run:
        return common.dry_run(what, [request], **{"from": current, "to": to})
    answer = await kube.patch_deployment_scale(namespace, name, to, timeout=ctx.timeout_s)
    now = int((answer.get("spec") or {}).get("replicas") or 0)
    clamped = f" (clamped to max {params.max})" if params.replicas > to else ""
    summary = f"scaled deployment {namespace}/{name} from {current} to {now} replicas{clamped}"
    return Outcome(ok=True, summary=summary, requests=[request], result={"from": current, "to": now})


ACTIONS = (scale,)
