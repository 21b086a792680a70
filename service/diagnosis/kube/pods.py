"""``kube.pods``: the target's pods — what ``kubectl get pods`` and ``describe pod`` tell at 3 a.m.

Params: ``selector`` (optional; default the rule's target selector, else the Deployment's matchLabels).
Facts: ``desired`` (Deployment spec.replicas, else the number of pods), ``total``, ``ready``, ``running``,
``pending`` (phase Pending, not counting pods that cannot pull their image), ``crashlooping`` (waiting
CrashLoopBackOff), ``oomkilled`` (last state OOMKilled), ``imagepull`` (ErrImagePull / ImagePullBackOff),
``restarts`` (sum), ``phases`` ({phase: count}), ``pods`` (up to 20: name, phase, ready, restarts, reason —
the waiting reason, else the last terminated one, else the pod's own such as Unschedulable or Evicted —
and last_terminated).
Status: ``failed`` when none is ready of a desired > 0; ``degraded`` when fewer are ready than desired, or
any pod crashloops, is pending or cannot pull its image; else ``ok``.
"""

from __future__ import annotations

from typing import Any

from service.clients import kube_fields
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common
from service.matching import names
from service.model.incidents import FindingStatus

IMAGE_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName"}


class PodsParams(Params):
    selector: names.Selector | None = None


def summarize(pods: list[dict[str, Any]], desired: int | None) -> Observation:
    """Facts and status from the pods' status (pure)."""
    rows = []
    phases: dict[str, int] = {}
    counts = {"ready": 0, "running": 0, "pending": 0, "crashlooping": 0, "oomkilled": 0, "imagepull": 0}
    total_restarts = 0
    for pod in pods:
        pod_phase = kube_fields.phase(pod)
        phases[pod_phase] = phases.get(pod_phase, 0) + 1
        reason = kube_fields.waiting_reason(pod)
        last = kube_fields.last_terminated_reason(pod)
        ready = kube_fields.is_ready(pod)
        counts["ready"] += ready
        counts["running"] += pod_phase == "Running"
        counts["crashlooping"] += reason == "CrashLoopBackOff"
        counts["oomkilled"] += last == "OOMKilled"
        counts["imagepull"] += reason in IMAGE_PULL
        # like kubectl's STATUS column: a Pending pod that cannot pull its image is counted as imagepull
        counts["pending"] += pod_phase == "Pending" and reason not in IMAGE_PULL | {"CrashLoopBackOff"}
        pod_restarts = kube_fields.restarts(pod)
        total_restarts += pod_restarts
        rows.append(
            {
                "name": kube_fields.name(pod),
                "phase": pod_phase,
                "ready": ready,
                "restarts": pod_restarts,
                "reason": reason or last or kube_fields.pod_level_reason(pod) or "",
                "last_terminated": last or "",
            }
        )
    want = desired if desired is not None else len(pods)
    facts: dict[str, Any] = {
        "desired": want,
        "total": len(pods),
        **counts,
        "restarts": total_restarts,
        "phases": phases,
        "pods": rows[:20],
    }
    trouble = [f"{counts[k]} {k}" for k in ("crashlooping", "oomkilled", "imagepull", "pending") if counts[k]]
    summary = f"{counts['ready']}/{want} ready" + (f", {', '.join(trouble)}" if trouble else "")
    summary += f", {total_restarts} restarts" if total_restarts else ""
    status: FindingStatus
    if want > 0 and counts["ready"] == 0:
        status = "failed"
    elif counts["ready"] < want or trouble:
        status = "degraded"
    else:
        status = "ok"
    evidence = "\n".join(
        f"{r['name']:<50} {r['phase']:<10} ready={str(r['ready']).lower():<5} "
        f"restarts={r['restarts']:<4} {r['reason']}"
        + (f" (last: {r['last_terminated']})" if r["last_terminated"] not in ("", r["reason"]) else "")
        for r in rows
    )
    return Observation(status, summary, facts, evidence)


@probe("kube.pods", PodsParams, needs_target=True)
async def pods_probe(ctx: ProbeContext, params: PodsParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    if params.selector:
        selector, deployment = params.selector, None
    else:
        try:
            selector, deployment = await common.pod_selector(kube, ctx)
        except ValueError as exc:
            return Observation("error", str(exc))
    pods = await kube.list_pods(ctx.target.namespace, selector, timeout=ctx.timeout_s)
    desired = (deployment or {}).get("spec", {}).get("replicas") if deployment else None
    return summarize(pods, int(desired) if desired is not None else None)


PROBES = (pods_probe,)
