"""``kube.rollout_undo`` (approval-only): ``kubectl rollout undo deployment/<target>``.

Finds the previous revision — among the ReplicaSets the Deployment controls, the highest
``deployment.kubernetes.io/revision`` below the current one — and replaces the Deployment's ``spec.template``
with that ReplicaSet's template, without its ``pod-template-hash`` label, by the JSON patch kubectl sends
(``replace /spec/template``: a merge would keep what the bad revision added, such as a new env var).
The Deployment controller then rolls back with a normal rolling update.

Refuses: a target that is not a Deployment; a paused Deployment (kubectl refuses too); no previous revision;
a previous revision whose template the Deployment already has. A rollout in progress is *not* refused: undoing
a stuck bad rollout is what this action is for.
Result: ``to_revision`` (the revision restored), ``from_revision``, ``generation``, ``images``.
Never deletes a ReplicaSet or pod, never edits anything but ``spec.template``.
"""

from __future__ import annotations

import copy
from typing import Any

from service.clients import kube as kube_client
from service.clients import kube_fields
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, Params, Request, action

HASH_LABEL = "pod-template-hash"


class RolloutUndoParams(Params):
    pass


def revision(obj: dict[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(common.REVISION, "0"))
    except ValueError:
        return 0


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(template)
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return result


def images(template: dict[str, Any]) -> list[str]:
    return [str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or []]


def undo_patch(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": "replace", "path": "/spec/template", "value": template}]


async def check(ctx: ActionContext, params: RolloutUndoParams) -> tuple[dict[str, Any], int, int]:
    """``(template to restore, its revision, current revision)``; refused when there is none."""
    kube = common.kube_of(ctx)
    deployment = await common.target_deployment(ctx, kube)
    common.check_not_paused(deployment)
    spec = deployment.get("spec") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    if not labels:
        raise common.refuse(f"deployment {ctx.target.name} has no matchLabels to find its ReplicaSets by")
    found = await kube.list_replicasets(
        ctx.target.namespace, kube_fields.selector_from_match_labels(labels), timeout=ctx.timeout_s
    )
    uid = (deployment.get("metadata") or {}).get("uid")
    owned = [rs for rs in found if kube_fields.owned_by(rs, "Deployment", ctx.target.name, uid)]
    current = revision(deployment) or max((revision(rs) for rs in owned), default=0)
    older = [rs for rs in owned if 0 < revision(rs) < current]
    if not older:
        raise common.refuse(f"deployment {ctx.target.name} has no revision before {current} to roll back to")
    previous = max(older, key=revision)
    template = without_hash((previous.get("spec") or {}).get("template") or {})
    if template == without_hash(spec.get("template") or {}):
        raise common.refuse(
            f"deployment {ctx.target.name} already runs the template of revision {revision(previous)}"
        )
    return template, revision(previous), current


async def preflight(ctx: ActionContext, params: RolloutUndoParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action("kube.rollout_undo", RolloutUndoParams, safe_capable=False, preflight=preflight)
async def rollout_undo(ctx: ActionContext, params: RolloutUndoParams) -> Outcome:
    kube = common.kube_of(ctx)
    template, to_revision, from_revision = await check(ctx, params)
    namespace, name = ctx.target.namespace, ctx.target.name
    body = undo_patch(template)
    request = Request("PATCH", common.deployment_path(namespace, name), body, kube_client.JSON_PATCH)
    facts: dict[str, Any] = {
        "to_revision": to_revision,
        "from_revision": from_revision,
        "images": images(template),
    }
    what = f"roll deployment {namespace}/{name} back from revision {from_revision} to {to_revision}"
    if ctx.dry_run:
        return common.dry_run(what, [request], **facts)
    patched = await kube.patch_deployment(
        namespace, name, body, timeout=ctx.timeout_s, content_type=kube_client.JSON_PATCH
    )
    facts["generation"] = common.generation(patched)
    summary = (
        f"rolled deployment {namespace}/{name} back from revision {from_revision} to {to_revision} "
        f"({', '.join(facts['images'])})"
    )
    return Outcome(ok=True, summary=summary, requests=[request], result=facts)


ACTIONS = (rollout_undo,)
