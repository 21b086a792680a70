"""``decide``: which remediation of a rule to apply now, which are blocked and why, which to propose.

Remediations are taken in rule order; the first *safe* one whose ``when`` holds and that every guard allows is
the one applied. A safe one a guard blocks is recorded with the guard's code and the sentence a human reads
("cooldown: kube.rollout_restart ran 4 min ago; cooldown is 10 min"), and the next is tried. An *unsafe* one
is never applied automatically: when its ``when`` holds it becomes a proposal, shown whenever the incident is
escalated. Pure: the guard state and the time come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
        holds, why = _holds(rule, index, context)
        if not holds:
            steps.append(Step(index, spec.action, spec.safety, "skipped", reason=why))
            continue
        if spec.safety == "unsafe":
            steps.append(
                Step(
                    index,
                    spec.action,
                    "unsafe",
                    "awaiting_approval",
                    reason=spec.reason or "unsafe: a human decides",
                )
            )
            continue
        if chosen is not None:
            steps.append(Step(index, spec.action, "safe", "skipped", reason=f"{chosen.action} applies first"))
            continue
        block = first_block(spec, guards, now=now)
        if block is None:
            chosen = Step(index, spec.action, "safe", "planned", reason=spec.reason or "its condition holds")
            steps.append(chosen)
        else:
            steps.append(Step(index, spec.action, "safe", "blocked", guard=block[0], reason=block[1]))
    if not guards.target.valid:  # nothing automatic, and nothing proposed, on a target that is not valid
        steps = [
            s
            if s.status == "skipped"
            else Step(
                s.index,
                s.action,
                s.safety,
                "blocked",
                "invalid_target",
                f"invalid target: {guards.target.error}",
            )
            for s in steps
        ]
        chosen = None
    if chosen is not None:
        return Plan(chosen, tuple(steps), escalate=False, reason=f"applying {chosen.action}")
    blocked = [s for s in steps if s.status == "blocked"]
    if blocked:
        reason = f"{blocked[0].action} blocked — {blocked[0].reason}"
    elif any(s.safety == "safe" for s in steps):
        reason = "no safe remediation's condition holds: a human must act"
    else:
        reason = "this rule has no safe remediation: a human must act"
    return Plan(None, tuple(steps), escalate=True, reason=reason)


def _holds(rule: CompiledRule, index: int, context: Mapping[str, Any]) -> tuple[bool, str]:
    condition = rule.conditions.get(index)
    if condition is None:
        return True, ""
    try:
        return (True, "") if condition.evaluate(context) else (False, f"when is false: {condition.source}")
    except conditions.ConditionError as exc:
        return False, f"when could not be evaluated: {exc}"


def first_block(spec: ActionSpec, g: GuardState, *, now: float) -> tuple[str, str] | None:
    """The first guard that refuses this safe action, as (code, sentence); None when all allow it."""
    name = spec.action
    target = g.target
    if not target.valid:
        return "invalid_target", f"invalid target: {target.error}"
    if not g.coordination_ok:
        return (
            "coordination_unavailable",
            "coordination unavailable: no automatic action without shared guards",
        )
    if g.paused:
        return "paused", "automatic actions are paused (kill switch)"
    if target.namespace in g.denied_namespaces:
        return "namespace", f"namespace {target.namespace} is never acted on"
    if g.allowed_namespaces is not None and target.namespace not in g.allowed_namespaces:
        return "namespace", f"namespace {target.namespace} is not in REMEDIATOR_NAMESPACES"
    if g.truncated:
        return (
            "blast_radius",
            f"Alertmanager truncated the group ({g.truncated} alerts missing): never acting on a partial one",
        )
    if g.last_mitigated is not None and now - g.last_mitigated < g.flap_window_s:
        return "flap", (
            f"flapping: mitigated {_ago(now - g.last_mitigated)} ago and firing again "
            f"(window {_ago(g.flap_window_s)}); no more automation"
        )
    radius = g.blast_radius.get(name)
    if radius:
        return "blast_radius", radius
    last = g.last_action.get(name)
    cooldown = spec.cooldown.total_seconds()
    if last is not None and now - last < cooldown:
        return "cooldown", f"cooldown: {name} ran {_ago(now - last)} ago; cooldown is {_ago(cooldown)}"
    runs = g.attempts.get(name, 0)
    if runs >= spec.max_attempts.count:
        window = _ago(spec.max_attempts.per.total_seconds())
        return (
            "max_attempts",
            f"max attempts: {name} ran {runs} times in {window} (limit {spec.max_attempts.count})",
        )
    if g.budget_left <= 0:
        return "budget", f"budget: the {g.budget} automatic-action budget is spent"
    if g.acting >= g.storm_brake:
        return "storm_brake", f"storm brake: {g.acting} incidents are acting at once (limit {g.storm_brake})"
    return None


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
