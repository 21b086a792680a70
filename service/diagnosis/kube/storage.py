"""``kube.pvc``: capacity and use of the target's PersistentVolumeClaims, and whether they can grow.

Params: ``claim`` (optional: one claim by name; default every claim the target's pods mount), ``warn_ratio``
(0.85), ``fail_ratio`` (0.95). Use comes from Prometheus (``kubelet_volume_stats_used_bytes`` /
``…_capacity_bytes``) when configured. Facts: ``claims`` (name, phase, capacity_bytes, used_bytes,
usage_ratio, storage_class, expandable), ``usage_ratio`` (highest), ``expandable`` (all claims' storage
classes allow expansion), ``unbound`` (count).
Status: ``failed`` at ``fail_ratio`` or an unbound claim, ``degraded`` at ``warn_ratio``, else ``ok``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.clients import kube_fields
from service.clients.kube import NotFound
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common
from service.diagnosis.kube.resources import quantity
from service.matching import names
from service.model.incidents import FindingStatus


class PvcParams(Params):
    claim: names.Name | None = None
    warn_ratio: float = Field(0.85, gt=0, le=1)
    fail_ratio: float = Field(0.95, gt=0, le=1)


def claimed_by(pods: list[dict[str, Any]]) -> set[str]:
    names = set()
    for pod in pods:
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                names.add(str(claim))
    return names


def summarize(
    claims: list[dict[str, Any]],
    expandable: dict[str, bool],
    used: dict[str, float],
    capacity: dict[str, float],
    *,
    warn_ratio: float,
    fail_ratio: float,
) -> Observation:
    """Facts and status of the claims (pure)."""
    rows = []
    for claim in claims:
        name = kube_fields.name(claim)
        status = claim.get("status") or {}
        declared = quantity((status.get("capacity") or {}).get("storage"))
        cap = capacity.get(name) or declared
        use = used.get(name)
        storage_class = (claim.get("spec") or {}).get("storageClassName")
        rows.append(
            {
                "name": name,
                "phase": status.get("phase", "Unknown"),
                "capacity_bytes": cap,
                "used_bytes": use,
                "usage_ratio": round(use / cap, 4) if use is not None and cap else None,
                "storage_class": storage_class,
                "expandable": expandable.get(str(storage_class), False),
            }
        )
    if not rows:
        return Observation("skipped", "no PersistentVolumeClaims for this target", {"claims": []})
    ratios = [r["usage_ratio"] for r in rows if r["usage_ratio"] is not None]
    top = max(ratios) if ratios else None
    unbound = sum(1 for r in rows if r["phase"] != "Bound")
    facts = {
        "claims": rows,
        "usage_ratio": top,
        "expandable": all(r["expandable"] for r in rows),
        "unbound": unbound,
    }
    state: FindingStatus = "ok"
    if unbound or (top is not None and top >= fail_ratio):
        state = "failed"
    elif top is not None and top >= warn_ratio:
        state = "degraded"
    fullest = max(rows, key=lambda r: r["usage_ratio"] or 0)
    summary = f"{len(rows)} claims" + (f", fullest {fullest['name']} at {top:.0%}" if top is not None else "")
    summary += f", {unbound} not bound" if unbound else ""
    summary += "; storage class allows expansion" if facts["expandable"] else "; not expandable"
    return Observation(state, summary, facts, "\n".join(str(r) for r in rows))


@probe("kube.pvc", PvcParams, needs_target=True)
async def pvc_probe(ctx: ProbeContext, params: PvcParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    namespace = ctx.target.namespace
    claims = await kube.list_pvcs(namespace, timeout=ctx.timeout_s)
    if params.claim:
        wanted = {params.claim}
    else:
        try:
            selector, _ = await common.pod_selector(kube, ctx)
        except ValueError as exc:
            return Observation("error", str(exc))
        wanted = claimed_by(await kube.list_pods(namespace, selector, timeout=ctx.timeout_s))
    claims = [c for c in claims if kube_fields.name(c) in wanted]
    if params.claim and not claims:
        return Observation(
            "skipped", f"no PersistentVolumeClaim {params.claim} in {namespace}", {"claims": []}
        )
    expandable: dict[str, bool] = {}
    for storage_class in sorted(
        {str((c.get("spec") or {}).get("storageClassName") or "") for c in claims} - {""}
    ):
        try:
            sc = await kube.read_storage_class(storage_class, timeout=ctx.timeout_s)
        except NotFound:  # an answer, not a failure: a class that does not exist expands nothing
            sc = {}
        expandable[storage_class] = bool(sc.get("allowVolumeExpansion"))
    used: dict[str, float] = {}
    capacity: dict[str, float] = {}
    if ctx.clients.prometheus is not None and claims:
        names = common.promql_one_of(kube_fields.name(c) for c in claims)
        scope = f'namespace="{namespace}", persistentvolumeclaim=~"{names}"'
        for target, metric in ((used, "used"), (capacity, "capacity")):
            for sample in await ctx.clients.prometheus.query(
                f"max by (persistentvolumeclaim) (kubelet_volume_stats_{metric}_bytes{{{scope}}})",
                timeout=ctx.timeout_s,
            ):
                target[sample.labels.get("persistentvolumeclaim", "")] = sample.value
    return summarize(
        claims, expandable, used, capacity, warn_ratio=params.warn_ratio, fail_ratio=params.fail_ratio
    )


PROBES = (pvc_probe,)
