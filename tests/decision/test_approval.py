"""What an approval does not lift: an invalid target, a namespace outside the allow-list, the blast radius."""

from __future__ import annotations

from service.decision import plan
from service.model import incidents


def target(namespace: str = "shop", *, valid: bool = True) -> incidents.TargetRef:
    return incidents.TargetRef(
        kind="Deployment",
        namespace=namespace,
        name="coordinator",
        valid=valid,
        error=None if valid else "target.namespace: 'Shop' is not a valid DNS-1123 label",
    )


def test_an_approved_step_runs_when_nothing_refuses_it() -> None:
    assert plan.approval_block(target(), allowed_namespaces=None, blast_radius=None) is None


def test_each_refusal_carries_its_own_guard() -> None:
    invalid = plan.approval_block(target(valid=False), allowed_namespaces=None, blast_radius=None)
    assert invalid is not None and invalid[0] == "invalid_target" and "DNS-1123" in invalid[1]
    denied = plan.approval_block(target("kube-system"), allowed_namespaces=None, blast_radius=None)
    assert denied == ("namespace", "namespace kube-system is never acted on")
    outside = plan.approval_block(target(), allowed_namespaces=frozenset({"billing"}), blast_radius=None)
    assert outside == ("namespace", "namespace shop is not in REMEDIATOR_NAMESPACES")
    radius = plan.approval_block(target(), allowed_namespaces=None, blast_radius="an HPA owns the scale")
    assert radius == ("blast_radius", "an HPA owns the scale")


def test_the_most_basic_refusal_comes_first() -> None:
    both = plan.approval_block(
        target("kube-system", valid=False), allowed_namespaces=frozenset({"x"}), blast_radius="r"
    )
    assert both is not None and both[0] == "invalid_target"
