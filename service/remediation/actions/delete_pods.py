"""``kube.delete_pods`` (approval-only): ``kubectl delete pods -l <selector> [--force --grace-period=0]``.

Deletes every pod of the target (its selector, else the Deployment's ``matchLabels``), one DELETE each, with
the DeleteOptions kubectl sends. ``force: true`` sends ``gracePeriodSeconds: 0`` — the runbook's
``--force --grace-period=0``, which skips the kubelet's confirmation that the containers stopped; it is
possible only because a human approved this action. ``grace_period_s`` sets another grace period
(without force).

Refuses: no selector for the target, or one without a ``key=value`` requirement; no pod matching it; with
the rule's ``quorum: Q``, fewer than Q + 1 ready pods.
A pod already gone when its turn comes is counted in ``already_gone``, not an error.
Result: ``deleted`` (names), ``already_gone``, ``grace_period_seconds``.
Never deletes anything but the pods listed for this target; never retries.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from service.clients import kube as kube_client
from service.clients import kube_fields
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, Params, Request, action


class DeletePodsParams(Params):
    force: bool = False
    grace_period_s: int | None = Field(None, ge=1, le=3600)

    @model_validator(mode="after")
    def _one_grace(self) -> Self:
        if self.force and self.grace_period_s is not None:
            raise ValueError(
                "force deletes with gracePeriodSeconds 0: give force or grace_period_s, not both"
            )
        return self

    @property
    def grace(self) -> int | None:
        return 0 if self.force else self.grace_period_s


async def check(ctx: ActionContext, params: DeletePodsParams) -> tuple[str, list[str]]:
    """``(selector, pod names)`` of the target; refused when there is no pod."""
    kube = common.kube_of(ctx)
    selector, found = await common.target_pods(ctx, kube)
    names = [kube_fields.name(p) for p in found]
    if not names:
        raise common.refuse(f"no pod of {ctx.target.key} matches {selector}")
    await common.check_quorum(ctx, kube, "deleting its pods")
    return selector, names


async def preflight(ctx: ActionContext, params: DeletePodsParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action("kube.delete_pods", DeletePodsParams, safe_capable=False, preflight=preflight)
async def delete_pods(ctx: ActionContext, params: DeletePodsParams) -> Outcome:
    kube = common.kube_of(ctx)
    selector, names = await check(ctx, params)
    namespace = ctx.target.namespace
    body = kube_client.delete_options(params.grace)
    requests = [Request("DELETE", common.pod_path(namespace, pod), body, "application/json") for pod in names]
    how = " --force --grace-period=0" if params.force else ""
    if params.grace_period_s is not None:
        how = f" --grace-period={params.grace_period_s}"
    what = f"delete {len(names)} pods of {ctx.target.key} ({selector}){how}"
    if ctx.dry_run:
        return common.dry_run(what, requests, pods=names, grace_period_seconds=params.grace)
    deleted: list[str] = []
    gone: list[str] = []
    for pod in names:
        try:
            await kube.delete_pod(namespace, pod, grace_period_seconds=params.grace, timeout=ctx.timeout_s)
        except kube_client.NotFound:
            gone.append(pod)
        else:
            deleted.append(pod)
    result: dict[str, Any] = {"deleted": deleted, "already_gone": gone, "grace_period_seconds": params.grace}
    summary = f"deleted {len(deleted)} pods of {ctx.target.key} ({selector}){how}"
    if gone:
        summary += f"; {len(gone)} already gone"
    return Outcome(ok=True, summary=summary, requests=requests, result=result)


ACTIONS = (delete_pods,)
