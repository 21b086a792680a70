"""decide(): rule order, guards with their reasons, proposals — and properties that must always hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from service.decision import plan
from service.matching.loader import parse_rule
from service.model import alerts, incidents

RULE = parse_rule("""\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match: ['alertname="CoordinatorDown"']
target: {kind: Deployment, namespace: shop, name: coordinator}
diagnose:
  - {id: pods, probe: kube.pods}
  - {id: usage, probe: kube.resources}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    cooldown: 10m
    max_attempts: {count: 2, per: 1h}
    verify: {probe: pods, within: 90s}
  - action: kube.scale
    safety: safe
    with: {replicas: 5, max: 5}
    when: findings.usage.status == "degraded" && findings.pods.facts.crashlooping == 0
  - action: kube.rollout_undo
    safety: unsafe
    reason: a rollback changes what runs
""")
ALERT = alerts.Alert.model_validate(
    {
        "status": "firing",
        "labels": {"alertname": "CoordinatorDown"},
        "startsAt": "2026-11-27T10:00:00Z",
        "fingerprint": "f",
    }
)
TARGET = incidents.TargetRef(kind="Deployment", namespace="shop", name="coordinator")
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()


def found(crashlooping: int = 3, usage: str = "ok") -> list[incidents.Finding]:
    return [
        incidents.Finding(
            id="pods",
            probe="kube.pods",
            status="failed" if crashlooping else "ok",
            facts={"crashlooping": crashlooping},
        ),
        incidents.Finding(id="usage", probe="kube.resources", status=usage),  # type: ignore[arg-type]
    ]


def test_crashloop_restarts_and_proposes_nothing_while_acting() -> None:
    result = plan.decide(RULE, ALERT, found(), plan.GuardState(target=TARGET), now=NOW)
    assert result.apply is not None and result.apply.action == "kube.rollout_restart"
    assert not result.escalate
    assert [s.status for s in result.steps] == ["planned", "skipped", "awaiting_approval"]


def test_scale_applies_when_resources_are_degraded_without_crashloop() -> None:
    result = plan.decide(RULE, ALERT, found(0, "degraded"), plan.GuardState(target=TARGET), now=NOW)
    assert result.apply is not None and result.apply.action == "kube.scale"


def test_a_cooldown_blocks_with_the_sentence_a_human_reads() -> None:
    guards = plan.GuardState(target=TARGET, last_action={"kube.rollout_restart": NOW - 240})
    result = plan.decide(RULE, ALERT, found(), guards, now=NOW)
    assert result.apply is None and result.escalate
    [blocked] = result.blocked
    assert (blocked.guard, blocked.reason) == (
        "cooldown",
        "cooldown: kube.rollout_restart ran 4 min ago; cooldown is 10 min",
    )
    assert result.reason == "kube.rollout_restart blocked — " + blocked.reason
    assert [p.action for p in result.proposals] == ["kube.rollout_undo"]


def test_when_nothing_safe_holds_the_unsafe_one_is_proposed() -> None:
    result = plan.decide(RULE, ALERT, found(0, "ok"), plan.GuardState(target=TARGET), now=NOW)
    assert result.apply is None and result.escalate
    assert result.reason == "no safe remediation's condition holds: a human must act"
    assert [p.action for p in result.proposals] == ["kube.rollout_undo"]


def test_guard_order_and_codes() -> None:
    cases = {
        "coordination_unavailable": plan.GuardState(target=TARGET, coordination_ok=False),
        "paused": plan.GuardState(target=TARGET, paused=True),
        "namespace": plan.GuardState(target=TARGET, allowed_namespaces=frozenset({"billing"})),
        "flap": plan.GuardState(target=TARGET, last_mitigated=NOW - 600),
        "blast_radius": plan.GuardState(
            target=TARGET, blast_radius={"kube.rollout_restart": "Deployment is paused"}
        ),
        "max_attempts": plan.GuardState(target=TARGET, attempts={"kube.rollout_restart": 2}),
        "budget": plan.GuardState(target=TARGET, budget_left=0),
        "storm_brake": plan.GuardState(target=TARGET, acting=5),
    }
    for code, guards in cases.items():
        result = plan.decide(RULE, ALERT, found(), guards, now=NOW)
        assert result.apply is None, code
        assert result.blocked[0].guard == code

    # the order: with every guard tripped, the first one speaks; lift them one by one and the next one does
    tripped: list[tuple[str, str, dict[str, object]]] = [
        (
            "invalid_target",
            "invalid target",
            {"target": TARGET.model_copy(update={"valid": False, "error": "x"})},
        ),
        ("coordination_unavailable", "coordination unavailable", {"coordination_ok": False}),
        ("paused", "automatic actions are paused", {"paused": True}),
        ("namespace", "namespace shop is not in", {"allowed_namespaces": frozenset({"billing"})}),
        ("blast_radius", "Alertmanager truncated the group", {"truncated": 2}),
        ("dependency", "dependency: probe db", {"dependencies": {"db": "probe db (tcp.connect) failed"}}),
        ("flap", "flapping", {"last_mitigated": NOW - 600}),
        (
            "blast_radius",
            "Deployment is paused",
            {"blast_radius": {"kube.rollout_restart": "Deployment is paused"}},
        ),
        ("cooldown", "cooldown", {"last_action": {"kube.rollout_restart": NOW - 240}}),
        ("max_attempts", "max attempts", {"attempts": {"kube.rollout_restart": 2}}),
        ("budget", "budget", {"budget_left": 0}),
        ("storm_brake", "storm brake", {"acting": 5}),
    ]
    seen = []
    for lifted in range(len(tripped) + 1):
        fields: dict[str, object] = {"target": TARGET}
        for _, _, overrides in tripped[lifted:]:
            fields.update(overrides)
        result = plan.decide(RULE, ALERT, found(), plan.GuardState(**fields), now=NOW)  # type: ignore[arg-type]
        if lifted == len(tripped):
            assert result.apply is not None, "every guard lifted: the restart applies"
        else:
            assert result.apply is None, tripped[lifted]
            blocked = result.blocked[0]
            assert blocked.action == "kube.rollout_restart"
            seen.append((blocked.guard, blocked.reason.startswith(tripped[lifted][1])))
    assert seen == [(code, True) for code, _, _ in tripped]


def test_kube_system_is_never_acted_on() -> None:
    target = TARGET.model_copy(update={"namespace": "kube-system"})
    result = plan.decide(RULE, ALERT, found(), plan.GuardState(target=target), now=NOW)
    assert result.apply is None and result.blocked[0].guard == "namespace"


def test_an_invalid_target_gets_no_action_and_no_proposal() -> None:
    target = incidents.TargetRef(
        kind="Deployment", namespace="x; rm -rf /", name="c", valid=False, error="bad"
    )
    result = plan.decide(RULE, ALERT, found(), plan.GuardState(target=target), now=NOW)
    assert result.apply is None and result.proposals == ()
    assert {s.guard for s in result.blocked} == {"invalid_target"}


def test_a_condition_on_a_missing_finding_is_not_true_and_says_why() -> None:
    result = plan.decide(RULE, ALERT, [], plan.GuardState(target=TARGET), now=NOW)
    assert result.apply is None
    assert "could not be evaluated" in result.steps[0].reason


# -- properties ---------------------------------------------------------------------------------------

ACTIONS = ["kube.rollout_restart", "kube.scale", "kube.evict_pod", "postgres.terminate_idle"]
UNSAFE = ["kube.rollout_undo", "kube.delete_pods", "kube.expand_pvc", "postgres.promote_replica"]


@st.composite
def rules(draw: st.DrawFn) -> object:
    entries = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            action, safety = draw(st.sampled_from(ACTIONS)), "safe"
        else:
            action, safety = draw(st.sampled_from(UNSAFE)), "unsafe"
        when = draw(st.sampled_from(["", "findings.pods.facts.crashlooping > 0", '"1 == 1"', '"1 == 2"']))
        entries.append(
            f"  - action: {action}\n    safety: {safety}\n" + (f"    when: {when}\n" if when else "")
        )
    return parse_rule(
        "name: r\nrunbook: R\nmttr_target: 2m\nmatch: ['alertname=\"A\"']\n"
        "target: {kind: Deployment, namespace: shop, name: x}\ndiagnose:\n  - {id: pods, probe: kube.pods}\n"
        "remediate:\n" + "".join(entries)
    )


guard_states = st.builds(
    plan.GuardState,
    target=st.sampled_from(
        [
            TARGET,
            TARGET.model_copy(update={"valid": False, "error": "bad"}),
            TARGET.model_copy(update={"namespace": "kube-system"}),
        ]
    ),
    dry_run=st.booleans(),
    paused=st.booleans(),
    coordination_ok=st.booleans(),
    truncated=st.sampled_from([0, 0, 3]),
    last_action=st.dictionaries(st.sampled_from(ACTIONS), st.one_of(st.none(), st.floats(NOW - 7200, NOW))),
    attempts=st.dictionaries(st.sampled_from(ACTIONS), st.integers(0, 5)),
    budget_left=st.integers(-1, 3),
    acting=st.integers(0, 8),
    last_mitigated=st.one_of(st.none(), st.floats(NOW - 7200, NOW)),
    dependencies=st.sampled_from([{}, {}, {"db": "probe db (tcp.connect) failed"}]),
)


@settings(max_examples=400, deadline=None)
@given(rule=rules(), guards=guard_states, crashlooping=st.integers(0, 3))
def test_properties_of_every_plan(rule: object, guards: plan.GuardState, crashlooping: int) -> None:
    result = plan.decide(rule, ALERT, found(crashlooping), guards, now=NOW)  # type: ignore[arg-type]
    healthy = replace(guards, dependencies={})
    without = plan.decide(rule, ALERT, found(crashlooping), healthy, now=NOW)  # type: ignore[arg-type]
    assert result.proposals == without.proposals, "a failing dependency never changes the proposals"
    earlier = (
        not guards.target.valid
        or guards.target.namespace == "kube-system"
        or not guards.coordination_ok
        or guards.paused
        or guards.truncated
    )
    if guards.dependencies and not earlier:
        assert all(s.guard == "dependency" for s in result.blocked), "the dependency guard speaks first"
    applied = result.apply
    if applied is None:
        assert result.escalate
        return
    spec = rule.rule.remediate[applied.index]  # type: ignore[attr-defined]
    assert applied.safety == "safe" and spec.safety == "safe", "an unsafe action is never automatic"
    assert guards.target.valid and guards.target.namespace != "kube-system"
    assert guards.coordination_ok and not guards.paused and not guards.truncated
    assert guards.budget_left > 0, "the budget is never exceeded"
    assert guards.acting < guards.storm_brake, "the storm brake is never exceeded"
    last = guards.last_action.get(applied.action)
    assert last is None or NOW - last >= spec.cooldown.total_seconds(), "the cooldown is never broken"
    assert guards.attempts.get(applied.action, 0) < spec.max_attempts.count
    assert guards.last_mitigated is None or NOW - guards.last_mitigated >= guards.flap_window_s
    assert not guards.dependencies, "nothing automatic while a dependency fails"
    assert sum(1 for s in result.steps if s.status == "planned") == 1
