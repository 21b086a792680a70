"""``kube.networkpolicies``: deny-all policies and the policies that select the target's pods.

Params: none. Facts: ``count``, ``policies`` (names), ``deny_all_ingress`` / ``deny_all_egress`` (a policy
with an empty pod selector and no rules for that direction), ``selecting_target`` (names of policies whose
non-empty podSelector matches the target's pod labels), ``ingress_allowed`` (a policy that applies to the
target — its own or one selecting every pod — has ingress rules, or no deny-all ingress exists). The pod
labels are the Deployment's template labels, else the ``key=value`` requirements of the target's selector.
Status: ``degraded`` when a deny-all ingress policy exists and no policy applying to the target allows
ingress — the "network partition" shape; else ``ok``.
"""

from __future__ import annotations

from typing import Any

from service.clients import kube_fields
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common


class NetworkPoliciesParams(Params):
    pass


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels + matchExpressions) selects ``labels`` (pure)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if (op == "In" and labels.get(key) not in values) or (
            op == "NotIn" and present and labels[key] in values
        ):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def selector_labels(selector: str) -> dict[str, str]:
    """The labels an equality selector (``a=b,c==d,e!=f``) requires of a pod (pure)."""
    labels = {}
    for requirement in selector.split(","):
        if "!=" in requirement:
            continue
        key, found, value = requirement.replace("==", "=").partition("=")
        if found:
            labels[key.strip()] = value.strip()
    return labels


def summarize(policies: list[dict[str, Any]], pod_labels: dict[str, str]) -> Observation:
    """Facts and status from the namespace's policies and the target's pod labels (pure)."""
    deny_in, deny_out, selecting, allows_in = [], [], [], False
    for policy in policies:
        spec = policy.get("spec") or {}
        selector = spec.get("podSelector") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
        everything = not selector.get("matchLabels") and not selector.get("matchExpressions")
        if everything and "Ingress" in types and not spec.get("ingress"):
            deny_in.append(kube_fields.name(policy))
        if everything and "Egress" in types and not spec.get("egress"):
            deny_out.append(kube_fields.name(policy))
        if not selects(selector, pod_labels):
            continue
        if not everything:
            selecting.append(kube_fields.name(policy))
        # policies add up: any policy that applies to the target's pods (an empty selector applies to every
        # pod) and has ingress rules lets some traffic in, whatever a deny-all says
        allows_in = allows_in or ("Ingress" in types and bool(spec.get("ingress")))
    facts = {
        "count": len(policies),
        "policies": [kube_fields.name(p) for p in policies],
        "deny_all_ingress": bool(deny_in),
        "deny_all_egress": bool(deny_out),
        "selecting_target": selecting,
        "ingress_allowed": allows_in or not deny_in,
    }
    if deny_in and not allows_in:
        return Observation(
            "degraded",
            f"deny-all ingress ({', '.join(deny_in)}) and no policy lets traffic reach the target",
            facts,
        )
    summary = f"{len(policies)} policies" + (f"; {len(selecting)} select the target" if selecting else "")
    return Observation("ok", summary, facts)


@probe("kube.networkpolicies", NetworkPoliciesParams, needs_target=True)
async def networkpolicies_probe(ctx: ProbeContext, params: NetworkPoliciesParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    policies = await kube.list_network_policies(ctx.target.namespace, timeout=ctx.timeout_s)
    labels = selector_labels(ctx.target.selector or "")
    if ctx.target.kind == "Deployment":
        deployment = await kube.read_deployment(ctx.target.namespace, ctx.target.name, timeout=ctx.timeout_s)
        labels = dict(
            (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        )
    return summarize(policies, labels)


PROBES = (networkpolicies_probe,)
