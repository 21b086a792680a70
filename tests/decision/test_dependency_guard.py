"""The ``dependency`` guard: failing dependency probes and open incidents of depended-on rules block every
automatic step with a sentence naming the cause; proposals stay proposals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from service.decision import dependencies, plan
from service.matching.loader import parse_rule
from service.model import alerts, incidents

RULE = parse_rule("""\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
depends_on: [database-failure, redis-failure, db, redis]
match: ['alertname="CoordinatorDown"']
target: {kind: Deployment, namespace: default, name: coordinator}
diagnose:
  - {id: health, probe: http.get, with: {url: "http://coordinator.default:8011/v1/health"}}
  - {id: usage, probe: kube.resources}
  - {id: db, probe: tcp.connect, with: {host: postgresql.default, port: 5432}}
  - {id: redis, probe: redis.ping}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.health.status == "failed"
  - action: kube.scale
    safety: safe
    with: {replicas: 5, max: 5}
    when: findings.usage.status == "degraded"
  - action: kube.rollout_undo
    safety: unsafe
""")
ALERT = alerts.Alert.model_validate(
    {
        "status": "firing",
        "labels": {"alertname": "CoordinatorDown"},
        "startsAt": "2026-11-27T10:00:00Z",
        "fingerprint": "f",
    }
)
TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="coordinator")
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Open:
    id: str
    rule: str
    target_kind: str = "Deployment"
    target_namespace: str = "default"
    target_name: str = "postgresql"


def finding(id_: str, status: str, summary: str = "", probe: str = "tcp.connect") -> incidents.Finding:
    return incidents.Finding(id=id_, probe=probe, status=status, summary=summary)  # type: ignore[arg-type]


HEALTH_DOWN = [finding("health", "failed", probe="http.get"), finding("usage", "degraded")]


def test_a_failed_dependency_probe_is_named_with_its_own_words() -> None:
    found = [*HEALTH_DOWN, finding("db", "failed", "TCP postgresql.default:5432: connection refused")]
    assert dependencies.failing(RULE.rule, found) == {
        "db": "probe db (tcp.connect) failed: TCP postgresql.default:5432: connection refused"
    }


def test_an_errored_dependency_probe_blocks_too_but_degraded_missing_and_other_probes_do_not() -> None:
    errored = [finding("redis", "error", "timeout after 5s", probe="redis.ping")]
    assert dependencies.failing(RULE.rule, errored) == {
        "redis": "probe redis (redis.ping) could not check its dependency: timeout after 5s"
    }
    healthy = [*HEALTH_DOWN, finding("db", "degraded"), finding("redis", "ok", probe="redis.ping")]
    assert dependencies.failing(RULE.rule, healthy) == {}  # health failed, but it is not a dependency


def test_an_open_incident_of_a_depended_on_rule_is_named_by_its_oldest() -> None:
    causes = [Open("01OLD", "database-failure"), Open("01NEW", "database-failure"), Open("x", "storage")]
    assert dependencies.failing(RULE.rule, [], causes) == {
        "database-failure": "database-failure incident 01OLD is open in default (Deployment postgresql)"
    }


def test_every_safe_step_is_blocked_by_the_dependency_and_the_proposal_stays() -> None:
    failing = dependencies.failing(RULE.rule, HEALTH_DOWN, [Open("01J", "database-failure")])
    guards = plan.GuardState(target=TARGET, dependencies=failing)
    result = plan.decide(RULE, ALERT, HEALTH_DOWN, guards, now=NOW)
    assert result.apply is None and result.escalate
    assert [(s.action, s.guard) for s in result.blocked] == [
        ("kube.rollout_restart", "dependency"),
        ("kube.scale", "dependency"),
    ]
    assert result.blocked[0].reason == (
        "dependency: database-failure incident 01J is open in default (Deployment postgresql); "
        "restarting coordinator would not help"
    )
    assert result.blocked[1].reason.endswith("; scaling coordinator would not help")
    assert [p.action for p in result.proposals] == ["kube.rollout_undo"]
    assert result.reason == f"kube.rollout_restart blocked — {result.blocked[0].reason}"


def test_several_failing_dependencies_name_the_first_and_list_the_others() -> None:
    found = [*HEALTH_DOWN, finding("db", "failed", "refused"), finding("redis", "failed", probe="redis.ping")]
    failing = dependencies.failing(RULE.rule, found, [Open("01J", "redis-failure", target_name="redis")])
    assert list(failing) == ["redis-failure", "db", "redis"]  # depends_on order
    result = plan.decide(RULE, ALERT, found, plan.GuardState(target=TARGET, dependencies=failing), now=NOW)
    assert result.blocked[0].reason == (
        "dependency: redis-failure incident 01J is open in default (Deployment redis) "
        "(also failing: db, redis); restarting coordinator would not help"
    )


def test_healthy_dependencies_let_the_restart_apply() -> None:
    found = [*HEALTH_DOWN, finding("db", "ok"), finding("redis", "ok", probe="redis.ping")]
    failing = dependencies.failing(RULE.rule, found, [])
    result = plan.decide(RULE, ALERT, found, plan.GuardState(target=TARGET, dependencies=failing), now=NOW)
    assert result.apply is not None and result.apply.action == "kube.rollout_restart"
