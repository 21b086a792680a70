"""``decide``: which remediation of a rule to apply now, which are blocked and why, which to propose.

Remediations are taken in rule order; the first *safe* one whose ``when`` holds and that every guard allows is
the one applied. A safe one a guard blocks is recorded with the guard's code and the sentence a human reads
("cooldown: kube.rollout_restart ran 4 min ago; cooldown is 10 min"), and the next is tried. An *unsafe* one
is never applied automatically: when its ``when`` holds it becomes a proposal, shown whenever the incident is
escalated. A failing dependency (``GuardState.dependencies``, see ``decision.dependencies``) blocks every safe
step with guard ``dependency`` — acting on a dependent while its cause is elsewhere makes an outage worse —
and the plan escalates with that sentence; unsafe steps stay proposals. Pure: the guard state and the time
come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from service.matching import conditions
from service.matching.loader import CompiledRule
from service.model import alerts, incidents
from service.model.rules import ActionSpec

StepStatus = Literal["planned", "blocked", "awaiting_approval", "skipped"]


@dataclass(frozen=True)
class GuardState:
    """Everything the guards need to know, read before deciding (DESIGN §3.5)."""

    target: incidents.TargetRef
    dry_run: bool = False
    paused: bool = False
    #: the maintenance window that pauses automation on this rule or target (the sentence a human reads)
    window: str | None = None
    coordination_ok: bool = True
    allowed_namespaces: frozenset[str] | None = None  # None: every namespace but the denied ones
    denied_namespaces: frozenset[str] = frozenset({"kube-system"})
    truncated: int = 0  # Alertmanager truncated the group: never act on a partial group
    last_action: Mapping[str, float | None] = field(default_factory=dict)  # action name → last run (epoch s)
    attempts: Mapping[str, int] = field(default_factory=dict)  # action name → runs within its window
    budget_left: int = 10
    budget: str = "10/10m"
    acting: int = 0  # incidents acting at once, across replicas
    storm_brake: int = 5
    last_mitigated: float | None = None  # this rule and target were last mitigated at
    flap_window_s: float = 1800.0
    blast_radius: Mapping[str, str | None] = field(default_factory=dict)  # action name → reason to refuse
    #: failing dependency (probe id or rule name) → the sentence a human reads (``dependencies.failing``)
    dependencies: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    index: int
    action: str
    safety: Literal["safe", "unsafe"]
    status: StepStatus
    guard: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    apply: Step | None
    steps: tuple[Step, ...]
    escalate: bool
    reason: str

    @property
    def proposals(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.status == "awaiting_approval")

    @property
    def blocked(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.status == "blocked")


def condition_context(alert: alerts.Alert, found: Sequence[incidents.Finding]) -> dict[str, Any]:
    """What a CEL ``when`` sees: ``alert`` (labels, annotations, status) and ``findings.<id>``."""
    return {
        "alert": {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "status": alert.status,
            "name": alert.name,
        },
        "findings": {f.id: {"status": f.status, "summary": f.summary, "facts": dict(f.facts)} for f in found},
    }


def decide(
    rule: CompiledRule,
    alert: alerts.Alert,
    found: Sequence[incidents.Finding],
    guards: GuardState,
    *,
    now: float,
) -> Plan:
    context = condition_context(alert, found)
    steps: list[Step] = []
    chosen: Step | None = None
    for index, spec in enumerate(rule.rule.remediate):
        step = _step(rule, index, spec, context, guards, chosen, now=now)
        if step.status == "planned":
            chosen = step
        steps.append(step)
    if not guards.target.valid:  # nothing automatic, and nothing proposed, on a target that is not valid
        steps = [_invalid_target(s, guards.target) for s in steps]
        chosen = None
    if chosen is not None:
        return Plan(chosen, tuple(steps), escalate=False, reason=f"applying {chosen.action}")
    return Plan(None, tuple(steps), escalate=True, reason=_escalation_reason(steps))


def _step(
    rule: CompiledRule,
    index: int,
    spec: ActionSpec,
    context: Mapping[str, Any],
    guards: GuardState,
    chosen: Step | None,
    *,
    now: float,
) -> Step:
    """What becomes of ``rule.remediate[index]``: skipped, proposed (unsafe), planned or blocked."""
    holds, why = _holds(rule, index, context)
    if not holds:
        return Step(index, spec.action, spec.safety, "skipped", reason=why)
    if spec.safety == "unsafe":
        return Step(
            index, spec.action, "unsafe", "awaiting_approval", reason=spec.reason or "unsafe: a human decides"
        )
    if chosen is not None:
        return Step(index, spec.action, "safe", "skipped", reason=f"{chosen.action} applies first")
    block = first_block(spec, guards, now=now)
    if block is None:
        return Step(index, spec.action, "safe", "planned", reason=spec.reason or "its condition holds")
    return Step(index, spec.action, "safe", "blocked", guard=block[0], reason=block[1])


def _invalid_target(step: Step, target: incidents.TargetRef) -> Step:
    """A step that was not skipped, blocked because the target is not valid."""
    if step.status == "skipped":
        return step
    return Step(
        step.index, step.action, step.safety, "blocked", "invalid_target", f"invalid target: {target.error}"
    )


def _escalation_reason(steps: Sequence[Step]) -> str:
    blocked = [s for s in steps if s.status == "blocked"]
    if blocked:
        return f"{blocked[0].action} blocked — {blocked[0].reason}"
    if any(s.safety == "safe" for s in steps):
        return "no safe remediation's condition holds: a human must act"
    return "this rule has no safe remediation: a human must act"


def _holds(rule: CompiledRule, index: int, context: Mapping[str, Any]) -> tuple[bool, str]:
    condition = rule.conditions.get(index)
    if condition is None:
        return True, ""
    try:
        return (True, "") if condition.evaluate(context) else (False, f"when is false: {condition.source}")
    except conditions.ConditionError as exc:
        return False, f"when could not be evaluated: {exc}"


_Refusal: TypeAlias = tuple[str, str] | None


def first_block(spec: ActionSpec, g: GuardState, *, now: float) -> tuple[str, str] | None:
    """The first guard that refuses this safe action, as (code, sentence); None when all allow it.

    The guards are asked in the order of ``_GUARDS``; the order is part of the contract (the first refusal
    is the one journaled)."""
    for guard in _GUARDS:
        refusal = guard(spec, g, now)
        if refusal is not None:
            return refusal
    return None


def _target_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    return None if g.target.valid else ("invalid_target", f"invalid target: {g.target.error}")


def _coordination_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    if g.coordination_ok:
        return None
    return "coordination_unavailable", "coordination unavailable: no automatic action without shared guards"


def _paused_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    if g.paused:
        return "paused", "automatic actions are paused (kill switch)"
    return ("paused", g.window) if g.window else None


def _namespace_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    namespace = g.target.namespace
    if namespace in g.denied_namespaces:
        return "namespace", f"namespace {namespace} is never acted on"
    if g.allowed_namespaces is not None and namespace not in g.allowed_namespaces:
        return "namespace", f"namespace {namespace} is not in REMEDIATOR_NAMESPACES"
    return None


def _truncated_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    if not g.truncated:
        return None
    return (
        "blast_radius",
        f"Alertmanager truncated the group ({g.truncated} alerts missing): never acting on a partial one",
    )


#: how a refused action is named in the ``dependency`` sentence ("restarting coordinator would not help")
_DOING = {
    "kube.rollout_restart": "restarting",
    "kube.scale": "scaling",
    "kube.evict_pod": "evicting a pod of",
    "postgres.terminate_idle": "terminating idle sessions of",
}


def _dependency_guard(spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    """A failing dependency: acting on the dependent would not help (the first one is named)."""
    if not g.dependencies:
        return None
    (_first, sentence), *rest = g.dependencies.items()
    also = f" (also failing: {', '.join(name for name, _ in rest)})" if rest else ""
    doing = _DOING.get(spec.action, f"{spec.action} on")
    return "dependency", f"dependency: {sentence}{also}; {doing} {g.target.name} would not help"


def _flap_guard(_spec: ActionSpec, g: GuardState, now: float) -> _Refusal:
    if g.last_mitigated is None or now - g.last_mitigated >= g.flap_window_s:
        return None
    return "flap", (
        f"flapping: mitigated {_ago(now - g.last_mitigated)} ago and firing again "
        f"(window {_ago(g.flap_window_s)}); no more automation"
    )


def _blast_radius_guard(spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    radius = g.blast_radius.get(spec.action)
    return ("blast_radius", radius) if radius else None


def _cooldown_guard(spec: ActionSpec, g: GuardState, now: float) -> _Refusal:
    name, last, cooldown = spec.action, g.last_action.get(spec.action), spec.cooldown.total_seconds()
    if last is None or now - last >= cooldown:
        return None
    return "cooldown", f"cooldown: {name} ran {_ago(now - last)} ago; cooldown is {_ago(cooldown)}"


def _attempts_guard(spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    runs = g.attempts.get(spec.action, 0)
    if runs < spec.max_attempts.count:
        return None
    window = _ago(spec.max_attempts.per.total_seconds())
    return (
        "max_attempts",
        f"max attempts: {spec.action} ran {runs} times in {window} (limit {spec.max_attempts.count})",
    )


def _budget_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    return (
        ("budget", f"budget: the {g.budget} automatic-action budget is spent") if g.budget_left <= 0 else None
    )


def _storm_brake_guard(_spec: ActionSpec, g: GuardState, _now: float) -> _Refusal:
    if g.acting < g.storm_brake:
        return None
    return "storm_brake", f"storm brake: {g.acting} incidents are acting at once (limit {g.storm_brake})"


#: The guards of a safe action, in the order they are asked: the first refusal wins.
_GUARDS: tuple[Callable[[ActionSpec, GuardState, float], _Refusal], ...] = (
    _target_guard,
    _coordination_guard,
    _paused_guard,
    _namespace_guard,
    _truncated_guard,
    _dependency_guard,
    _flap_guard,
    _blast_radius_guard,
    _cooldown_guard,
    _attempts_guard,
    _budget_guard,
    _storm_brake_guard,
)


def approval_block(
    target: incidents.TargetRef,
    *,
    allowed_namespaces: frozenset[str] | None,
    blast_radius: str | None,
    denied_namespaces: frozenset[str] = frozenset({"kube-system"}),
) -> tuple[str, str] | None:
    """The guard that refuses a step a human approved, as (code, sentence); None when it may run.

    A human's approval lifts the automation guards (kill switch, cooldown, attempts, budget, storm brake,
    flap) but never these: an invalid target, a namespace outside the allow-list, a blast-radius refusal."""
    if not target.valid:
        return "invalid_target", f"invalid target: {target.error}"
    if target.namespace in denied_namespaces:
        return "namespace", f"namespace {target.namespace} is never acted on"
    if allowed_namespaces is not None and target.namespace not in allowed_namespaces:
        return "namespace", f"namespace {target.namespace} is not in REMEDIATOR_NAMESPACES"
    if blast_radius:
        return "blast_radius", blast_radius
    return None


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
