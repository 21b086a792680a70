"""``kube.rollout_restart`` (safe-capable): ``kubectl rollout restart deployment/<target>``, the same patch.

Sends the strategic-merge patch kubectl sends, setting the pod template annotation
``kubectl.kubernetes.io/restartedAt`` to now (RFC 3339, UTC; ``now`` param to inject the time), so that the
Deployment controller replaces every pod through a normal rolling update (maxSurge/maxUnavailable hold).

Refuses: a target that is not a Deployment; a paused Deployment; a rollout in progress
(``observedGeneration < generation`` or ``updatedReplicas < spec.replicas`` — a crashloop with every pod
already updated is not a rollout); fewer than 2 replicas, since restarting a single replica is an outage,
unless ``allow_single_replica: true``; with the rule's ``quorum: Q`` (a consensus workload), fewer than Q + 1
ready pods (the restart takes one down: quorum is lost).
Result: ``generation`` (of the patched Deployment), ``restarted_at``, ``replicas``.
Never deletes a pod, never changes anything but that one annotation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime

from service.clients import kube as kube_client
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, Params, Request, action

ANNOTATION = "kubectl.kubernetes.io/restartedAt"


class RolloutRestartParams(Params):
    allow_single_replica: bool = False
    #: the restart time written in the annotation (for tests and replays); default: the clock, when it runs
    now: AwareDatetime | None = None


def restart_patch(restarted_at: str) -> dict[str, Any]:
    """The body of ``kubectl rollout restart``."""
    return {"spec": {"template": {"metadata": {"annotations": {ANNOTATION: restarted_at}}}}}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def check(ctx: ActionContext, params: RolloutRestartParams) -> dict[str, Any]:
    """The target Deployment, if a restart of it is within the blast radius; else refused."""
    kube = common.kube_of(ctx)
    deployment = await common.target_deployment(ctx, kube)
    common.check_not_paused(deployment)
    common.check_no_rollout(deployment)
    count = common.replicas(deployment)
    if count < 2 and not params.allow_single_replica:
        raise common.refuse(
            f"deployment {ctx.target.name} has {count} replica(s): restarting fewer than 2 is an outage "
            "(allow_single_replica: true to accept it)"
        )
    await common.check_quorum(ctx, kube, "a rolling restart")
    return deployment


async def preflight(ctx: ActionContext, params: RolloutRestartParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action("kube.rollout_restart", RolloutRestartParams, safe_capable=True, preflight=preflight)
async def rollout_restart(ctx: ActionContext, params: RolloutRestartParams) -> Outcome:
    kube = common.kube_of(ctx)
    deployment = await check(ctx, params)
    namespace, name = ctx.target.namespace, ctx.target.name
    restarted_at = rfc3339(params.now or datetime.now(UTC))
    body = restart_patch(restarted_at)
    request = Request("PATCH", common.deployment_path(namespace, name), body, kube_client.STRATEGIC_MERGE)
    count = common.replicas(deployment)
    what = f"restart deployment {namespace}/{name} ({count} replicas, rolling)"
    if ctx.dry_run:
        return common.dry_run(what, [request], restarted_at=restarted_at, replicas=count)
    patched = await kube.patch_deployment(
        namespace, name, body, timeout=ctx.timeout_s, content_type=kube_client.STRATEGIC_MERGE
    )
    result = {"generation": common.generation(patched), "restarted_at": restarted_at, "replicas": count}
    summary = (
        f"restarted deployment {namespace}/{name}: {count} replicas roll (generation {result['generation']})"
    )
    return Outcome(ok=True, summary=summary, requests=[request], result=result)


ACTIONS = (rollout_restart,)
