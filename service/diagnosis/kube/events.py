"""``kube.events``: recent Warning events of the target, its ReplicaSets and its pods.

Only the target's own objects count: the object named like the target, the Deployment's ReplicaSets (by
owner), the pods its selector lists (by owner, for a Deployment), and pods of those ReplicaSets that are
already gone (``<replicaset>-<5 chars>``) — never a sibling such as ``coordinator-db`` of ``coordinator``.
Params: ``since_s`` (900), ``limit`` (20). Facts: ``warnings`` (count of Warning events),
``reasons`` ({reason: occurrences}), ``latest`` (up to ``limit``: reason, object, message, count, last_seen).
Status: ``degraded`` when there are warnings, else ``ok``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from service.clients import kube_fields
from service.clients.kube import KubeClient
from service.diagnosis import redact
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common


class EventsParams(Params):
    since_s: float = Field(900, gt=0, le=86_400)
    limit: int = Field(20, ge=1, le=200)


def _when(event: dict[str, Any]) -> datetime | None:
    """When it was last seen: core/v1 ``lastTimestamp``, else the events.k8s.io fields, else creation."""
    candidates = (
        event.get("lastTimestamp"),
        (event.get("series") or {}).get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    )
    for value in candidates:
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class Owned:
    """The target's own objects: its name (any kind), ReplicaSets and pods (pure matching)."""

    name: str
    replicasets: frozenset[str] = frozenset()
    pods: frozenset[str] = frozenset()
    pod_pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def __call__(self, kind: str, name: str) -> bool:
        if name == self.name:
            return True
        if kind == "ReplicaSet":
            return name in self.replicasets
        if kind == "Pod":
            return name in self.pods or bool(self.pod_pattern and self.pod_pattern.fullmatch(name))
        return False


def owned(
    name: str,
    *,
    replicasets: set[str] | frozenset[str] = frozenset(),
    pods: set[str] | frozenset[str] = frozenset(),
    ordinal_pods: bool = False,
) -> Owned:
    """``Owned`` for a target; pods of the ReplicaSets that are gone match ``<replicaset>-<5 chars>``, and
    ``ordinal_pods`` (a StatefulSet) matches ``<name>-<n>``."""
    alternatives = [f"{re.escape(rs)}-[a-z0-9]{{5}}" for rs in sorted(replicasets)]
    if ordinal_pods:
        alternatives.append(f"{re.escape(name)}-[0-9]+")
    pattern = re.compile("|".join(alternatives)) if alternatives else None
    return Owned(name, frozenset(replicasets), frozenset(pods), pattern)


def summarize(
    events: list[dict[str, Any]],
    is_mine: Callable[[str, str], bool],
    *,
    now: datetime,
    since_s: float,
    limit: int,
    secrets: Iterable[str] = (),
) -> Observation:
    """Warnings about objects that ``is_mine(kind, name)`` accepts, within ``since_s`` of ``now`` (pure)."""
    mine = []
    for event in events:
        involved = event.get("involvedObject") or {}
        name = str(involved.get("name") or "")
        kind = str(involved.get("kind") or "")
        if event.get("type") != "Warning" or not is_mine(kind, name):
            continue
        when = _when(event)
        if when is not None and (now - when).total_seconds() > since_s:
            continue
        mine.append((when or now, event, f"{kind}/{name}"))
    mine.sort(key=lambda item: item[0], reverse=True)
    reasons: dict[str, int] = {}
    for _, event, _ in mine:
        reason = str(event.get("reason") or "Unknown")
        reasons[reason] = reasons.get(reason, 0) + int(event.get("count") or 1)
    latest = [
        {
            "reason": e.get("reason"),
            "object": obj,
            "message": redact.clean(str(e.get("message") or ""), limit=300, secrets=secrets),
            "count": int(e.get("count") or 1),
            "last_seen": when.isoformat(),
        }
        for when, e, obj in mine[:limit]
    ]
    if not mine:
        return Observation("ok", "no Warning events", {"warnings": 0, "reasons": {}, "latest": []})
    top = ", ".join(f"{r}×{n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
    evidence = "\n".join(
        f"{x['last_seen']} {x['object']} {x['reason']} (x{x['count']}): {x['message']}" for x in latest
    )
    return Observation(
        "degraded",
        f"{len(mine)} Warning events: {top}",
        {"warnings": len(mine), "reasons": reasons, "latest": latest},
        evidence,
    )


async def _owned(kube: KubeClient, ctx: ProbeContext) -> Owned:
    target = ctx.target
    try:
        selector, deployment = await common.pod_selector(kube, ctx)
    except ValueError:  # no selector (not a Deployment, none in the rule): the target's name only
        return owned(target.name, ordinal_pods=target.kind == "StatefulSet")
    pods = await kube.list_pods(target.namespace, selector, timeout=ctx.timeout_s)
    if deployment is None:
        return owned(
            target.name, pods={kube_fields.name(p) for p in pods}, ordinal_pods=target.kind == "StatefulSet"
        )
    uid = (deployment.get("metadata") or {}).get("uid")
    replicasets = {
        kube_fields.name(rs)
        for rs in await kube.list_replicasets(target.namespace, selector, timeout=ctx.timeout_s)
        if kube_fields.owned_by(rs, "Deployment", target.name, uid)
    }
    own_pods = {kube_fields.name(p) for p in pods if kube_fields.owned_by(p, "ReplicaSet", replicasets)}
    return owned(target.name, replicasets=replicasets, pods=own_pods)


@probe("kube.events", EventsParams, needs_target=True)
async def events_probe(ctx: ProbeContext, params: EventsParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    mine = await _owned(kube, ctx)
    events = await kube.list_events(
        ctx.target.namespace, field_selector="type=Warning", timeout=ctx.timeout_s
    )
    return summarize(
        events,
        mine,
        now=datetime.now(UTC),
        since_s=params.since_s,
        limit=params.limit,
        secrets=ctx.clients.secrets,
    )


PROBES = (events_probe,)
