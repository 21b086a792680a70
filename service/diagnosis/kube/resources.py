"""``kube.resources``: CPU and memory use of the target's pods against their limits.

Use comes from Prometheus (cAdvisor metrics: ``container_cpu_usage_seconds_total``,
``container_memory_working_set_bytes``, CFS throttling); limits from the pods' specs (Kubernetes API), so
kube-state-metrics is not needed. Params: ``window`` (rate window, "5m"), ``warn_ratio`` (0.9).
Facts: ``pods_measured``, ``cpu_cores`` and ``memory_bytes`` (highest pod), ``cpu_limit_cores`` and
``memory_limit_bytes`` (of that pod, null when unset), ``cpu_ratio`` and ``memory_ratio`` (highest use/limit
over the pods, null without limits), ``throttled_ratio`` (highest share of throttled CFS periods),
``per_pod`` (name → {cpu, memory, cpu_ratio, memory_ratio}).
Status: ``degraded`` when a ratio reaches ``warn_ratio`` or throttling exceeds 25 %, ``ok`` otherwise,
``skipped`` without Prometheus.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field

from service.clients import kube_fields
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common

_WINDOW = r"^[1-9][0-9]*(ms|[smhdwy])([0-9]+(ms|[smhdwy]))*$"  # a Prometheus duration
_UNITS = {
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "m": 1e-3,
}


class ResourcesParams(Params):
    window: str = Field("5m", pattern=_WINDOW)
    warn_ratio: float = Field(0.9, gt=0, le=10)


def quantity(value: str | None) -> float | None:
    """A Kubernetes quantity ("500m", "2", "512Mi") as a number (cores or bytes)."""
    if not value:
        return None
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    if not match or match.group(2) not in _UNITS:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def limits(pods: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per pod: the summed CPU and memory limits of its containers (None if any container has none)."""
    result: dict[str, dict[str, float | None]] = {}
    for pod in pods:
        cpu: float | None = 0.0
        memory: float | None = 0.0
        for container in (pod.get("spec") or {}).get("containers") or []:
            limit = (container.get("resources") or {}).get("limits") or {}
            c, m = quantity(limit.get("cpu")), quantity(limit.get("memory"))
            cpu = None if cpu is None or c is None else cpu + c
            memory = None if memory is None or m is None else memory + m
        result[kube_fields.name(pod)] = {"cpu": cpu, "memory": memory}
    return result


def _ratio(use: float | None, limit: float | None) -> float | None:
    return round(use / limit, 4) if use is not None and limit else None


def summarize(
    pod_limits: dict[str, dict[str, float | None]],
    cpu: dict[str, float],
    memory: dict[str, float],
    throttled: dict[str, float],
    *,
    warn_ratio: float,
) -> Observation:
    """Facts and status from per-pod use and limits (pure)."""
    per_pod = {
        pod: {
            "cpu": cpu.get(pod),
            "memory": memory.get(pod),
            "cpu_ratio": _ratio(cpu.get(pod), limit["cpu"]),
            "memory_ratio": _ratio(memory.get(pod), limit["memory"]),
        }
        for pod, limit in pod_limits.items()
    }
    measured = [p for p, v in per_pod.items() if v["cpu"] is not None or v["memory"] is not None]
    if not measured:
        return Observation(
            "skipped",
            "no CPU/memory samples in Prometheus for these pods",
            {"pods_measured": 0, "per_pod": per_pod},
        )

    def top(key: str) -> float | None:
        values = [v[key] for v in per_pod.values() if v[key] is not None]
        return max(values) if values else None  # type: ignore[type-var]

    hungriest = max(measured, key=lambda p: per_pod[p]["memory"] or 0)
    facts: dict[str, Any] = {
        "pods_measured": len(measured),
        "cpu_cores": top("cpu"),
        "memory_bytes": top("memory"),
        "cpu_limit_cores": pod_limits[hungriest]["cpu"],
        "memory_limit_bytes": pod_limits[hungriest]["memory"],
        "cpu_ratio": top("cpu_ratio"),
        "memory_ratio": top("memory_ratio"),
        "throttled_ratio": round(max(throttled.values()), 4) if throttled else None,
        "per_pod": per_pod,
    }
    hot = _hot(facts, warn_ratio=warn_ratio)
    summary = (
        f"highest of {len(measured)} pods: " + ", ".join(_use(facts)) + (f"; {', '.join(hot)}" if hot else "")
    )
    evidence = "\n".join(f"{p}: {v}" for p, v in per_pod.items())
    return Observation("degraded" if hot else "ok", summary, facts, evidence)


def _hot(facts: dict[str, Any], *, warn_ratio: float) -> list[str]:
    """What runs hot: a use at ``warn_ratio`` of its limit or more, CPU throttled in over 25 % of periods."""
    hot = [
        f"{k.split('_')[0]} at {facts[k]:.0%} of limit"
        for k in ("cpu_ratio", "memory_ratio")
        if facts[k] is not None and facts[k] >= warn_ratio
    ]
    if facts["throttled_ratio"] is not None and facts["throttled_ratio"] > 0.25:
        hot.append(f"CPU throttled {facts['throttled_ratio']:.0%} of periods")
    return hot


def _use(facts: dict[str, Any]) -> list[str]:
    """The highest CPU and memory use, each with its share of the limit when there is one."""
    parts = []
    if facts["cpu_cores"] is not None:
        parts.append(
            f"cpu {facts['cpu_cores']:.3g} cores"
            + (f" ({facts['cpu_ratio']:.0%} of limit)" if facts["cpu_ratio"] is not None else "")
        )
    if facts["memory_bytes"] is not None:
        parts.append(
            f"memory {facts['memory_bytes'] / 2**20:.0f} MiB"
            + (f" ({facts['memory_ratio']:.0%} of limit)" if facts["memory_ratio"] is not None else "")
        )
    return parts


def _by_pod(samples: list[Any]) -> dict[str, float]:
    """Value by pod, leaving out NaN and infinities (0/0 throttling of an idle pod): facts stay valid JSON."""
    return {s.labels["pod"]: s.value for s in samples if s.labels.get("pod") and math.isfinite(s.value)}


@probe("kube.resources", ResourcesParams, needs_target=True)
async def resources_probe(ctx: ProbeContext, params: ResourcesParams) -> Observation:
    kube, prometheus = common.kube_of(ctx), ctx.clients.prometheus
    if kube is None:
        return common.NOT_CONFIGURED
    if prometheus is None:
        return Observation("skipped", "Prometheus is not configured (REMEDIATOR_PROMETHEUS_URL)")
    try:
        selector, _ = await common.pod_selector(kube, ctx)
    except ValueError as exc:
        return Observation("error", str(exc))
    pods = await kube.list_pods(ctx.target.namespace, selector, timeout=ctx.timeout_s)
    if not pods:
        return Observation("skipped", f"no pods match {selector}")
    names = common.promql_one_of(kube_fields.name(p) for p in pods)  # the namespace was validated (DNS-1123)
    scope = f'namespace="{ctx.target.namespace}", pod=~"{names}", container!="", container!="POD"'
    window = params.window
    cpu = await prometheus.query(
        f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{scope}}}[{window}]))", timeout=ctx.timeout_s
    )
    memory = await prometheus.query(
        f"sum by (pod) (container_memory_working_set_bytes{{{scope}}})", timeout=ctx.timeout_s
    )
    throttled = await prometheus.query(
        f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{scope}}}[{window}]))"
        f" / sum by (pod) (rate(container_cpu_cfs_periods_total{{{scope}}}[{window}]))",
        timeout=ctx.timeout_s,
    )
    return summarize(
        limits(pods), _by_pod(cpu), _by_pod(memory), _by_pod(throttled), warn_ratio=params.warn_ratio
    )


PROBES = (resources_probe,)
