"""What the kube probes share beyond reading objects: "not configured", the target's pod selector, PromQL.

Reading API-shaped objects (names, owners, pod state) is ``clients.kube_fields``, shared with the actions;
the ``Name``/``Selector`` param types are ``matching.names``. Never writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from service.clients import kube_fields
from service.clients.kube import KubeClient
from service.diagnosis.base import Observation, ProbeContext

NOT_CONFIGURED = Observation("skipped", "Kubernetes is not configured (REMEDIATOR_KUBECONFIG or in-cluster)")


def kube_of(ctx: ProbeContext) -> KubeClient | None:
    return ctx.clients.kube


async def pod_selector(kube: KubeClient, ctx: ProbeContext) -> tuple[str, dict[str, Any] | None]:
    """The target's pod selector — the rule's, else the Deployment's ``matchLabels`` — and the Deployment."""
    deployment = None
    if ctx.target.kind == "Deployment":
        deployment = await kube.read_deployment(ctx.target.namespace, ctx.target.name, timeout=ctx.timeout_s)
    if ctx.target.selector:
        return ctx.target.selector, deployment
    labels = ((deployment or {}).get("spec", {}).get("selector", {}) or {}).get("matchLabels") or {}
    if not labels:
        raise ValueError(f"no pod selector for {ctx.target.key}: set target.selector in the rule")
    return kube_fields.selector_from_match_labels(labels), deployment


def promql_one_of(values: Iterable[str]) -> str:
    """The inside of a PromQL ``=~"…"`` string matching exactly one of ``values``: regex-escaped, then
    escaped for the PromQL string literal (PromQL rejects a bare ``\\-`` as an invalid escape)."""
    pattern = "|".join(re.escape(value) for value in sorted(set(values)))
    return pattern.replace("\\", "\\\\").replace('"', '\\"')
