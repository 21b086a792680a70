"""``kube.deployment``: the target Deployment's rollout state and who owns its scale.

Params: none. Facts: ``replicas`` (spec), ``updated``, ``ready``, ``available``, ``unavailable``, ``paused``,
``generation``, ``observed_generation``, ``rollout_in_progress`` (observedGeneration < generation, or fewer
updated replicas than spec — a crashloop with every pod already updated is not a rollout),
``progress_deadline_exceeded``, ``hpa`` (an HPA targets it), ``hpa_name``, ``revision``.
Status: ``failed`` when none is available of replicas > 0; ``degraded`` when some are unavailable or the
progress deadline was exceeded; else ``ok``.
"""

from __future__ import annotations

from typing import Any

from service.clients import kube_fields
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common
from service.model.incidents import FindingStatus


class DeploymentParams(Params):
    pass


def summarize(deployment: dict[str, Any], hpas: list[dict[str, Any]]) -> Observation:
    """Facts and status of a Deployment and the HPAs of its namespace (pure)."""
    meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    replicas = int(spec.get("replicas", 1) or 0)
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    deadline = progressing.get("reason") == "ProgressDeadlineExceeded"
    name = kube_fields.name(deployment)
    owner = next(
        (
            h
            for h in hpas
            if (h.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == "Deployment"
            and (h.get("spec") or {}).get("scaleTargetRef", {}).get("name") == name
        ),
        None,
    )
    facts: dict[str, Any] = {
        "replicas": replicas,
        "updated": updated,
        "ready": ready,
        "available": available,
        "unavailable": max(0, replicas - available),
        "paused": bool(spec.get("paused", False)),
        "generation": generation,
        "observed_generation": observed,
        "rollout_in_progress": observed < generation or updated < replicas,
        "progress_deadline_exceeded": deadline,
        "hpa": owner is not None,
        "hpa_name": kube_fields.name(owner) if owner else None,
        "revision": (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision"),
    }
    notes = [
        n
        for n, on in (
            ("paused", facts["paused"]),
            ("rollout in progress", facts["rollout_in_progress"]),
            ("progress deadline exceeded", deadline),
            (f"HPA {facts['hpa_name']}", owner),
        )
        if on
    ]
    summary = f"{available}/{replicas} available, {updated} updated" + (
        f"; {', '.join(notes)}" if notes else ""
    )
    state: FindingStatus = "ok"
    if replicas > 0 and available == 0:
        state = "failed"
    elif available < replicas or deadline:
        state = "degraded"
    evidence = "\n".join(
        f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}"
        for c in conditions.values()
    )
    return Observation(state, summary, facts, evidence)


@probe("kube.deployment", DeploymentParams, needs_target=True)
async def deployment_probe(ctx: ProbeContext, params: DeploymentParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    if ctx.target.kind != "Deployment":
        return Observation("skipped", f"target is a {ctx.target.kind}, not a Deployment")
    deployment = await kube.read_deployment(ctx.target.namespace, ctx.target.name, timeout=ctx.timeout_s)
    hpas = await kube.list_hpas(ctx.target.namespace, timeout=ctx.timeout_s)
    return summarize(deployment, hpas)


PROBES = (deployment_probe,)
