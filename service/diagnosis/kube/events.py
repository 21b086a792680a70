"""``kube.events``: recent Warning events of the target, its ReplicaSets and its pods.

Params: ``since_s`` (900), ``limit`` (20). Facts: ``warnings`` (count), ``reasons`` ({reason: count}),
``latest`` (up to ``limit``: reason, object, message, count, last_seen).
Status: ``degraded`` when there are warnings, else ``ok``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common


class EventsParams(Params):
    since_s: float = Field(900, gt=0, le=86_400)
    limit: int = Field(20, ge=1, le=200)


def _when(event: dict[str, Any]) -> datetime | None:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        value = event.get(key) or (event.get("metadata") or {}).get("creationTimestamp")
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def summarize(
    events: list[dict[str, Any]], prefix: str, *, now: datetime, since_s: float, limit: int
) -> Observation:
    """Warnings about objects named ``prefix`` or ``prefix-…`` within ``since_s`` of ``now`` (pure)."""
    mine = []
    for event in events:
        involved = event.get("involvedObject") or {}
        name = str(involved.get("name") or "")
        if event.get("type") != "Warning" or not (name == prefix or name.startswith(prefix + "-")):
            continue
        when = _when(event)
        if when is not None and (now - when).total_seconds() > since_s:
            continue
        mine.append((when or now, event, f"{involved.get('kind', '')}/{name}"))
    mine.sort(key=lambda item: item[0], reverse=True)
    reasons: dict[str, int] = {}
    for _, event, _ in mine:
        reason = str(event.get("reason") or "Unknown")
        reasons[reason] = reasons.get(reason, 0) + int(event.get("count") or 1)
    latest = [
        {
            "reason": e.get("reason"),
            "object": obj,
            "message": str(e.get("message") or "")[:300],
            "count": int(e.get("count") or 1),
            "last_seen": when.isoformat(),
        }
        for when, e, obj in mine[:limit]
    ]
    if not mine:
        return Observation("ok", "no Warning events", {"warnings": 0, "reasons": {}, "latest": []})
    top = ", ".join(f"{r}×{n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:4])
    evidence = "\n".join(
        f"{x['last_seen']} {x['object']} {x['reason']} (x{x['count']}): {x['message']}" for x in latest
    )
    return Observation(
        "degraded",
        f"{len(mine)} Warning events: {top}",
        {"warnings": len(mine), "reasons": reasons, "latest": latest},
        evidence,
    )


@probe("kube.events", EventsParams, needs_target=True)
async def events_probe(ctx: ProbeContext, params: EventsParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    events = await kube.list_events(
        ctx.target.namespace, field_selector="type=Warning", timeout=ctx.timeout_s
    )
    return summarize(
        events, ctx.target.name, now=datetime.now(UTC), since_s=params.since_s, limit=params.limit
    )


PROBES = (events_probe,)
